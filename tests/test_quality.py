"""Table 5's feature fallbacks and metrics: registered with torch-fidelity, exact against brute force."""

import numpy as np
import pytest
import torch

from benchmark.methods.unet import UNet
from benchmark.quality import features as domain
from benchmark.quality import fidelity


@pytest.fixture(scope="module")
def unet_folder(tmp_path_factory):
    torch.manual_seed(0)
    method = UNet(UNet.smoke_config())  # channels (8, 16, 32); random weights are enough for the arithmetic
    folder = tmp_path_factory.mktemp("unet") / "model"
    method.save(folder)
    return folder


def images(n, seed, shift=0):
    rng = np.random.default_rng(seed)
    return np.clip(rng.normal(120 + shift, 30, (n, 32, 32, 3)), 0, 255).astype(np.uint8)


def test_encoder_modules_follow_the_unet_levels(unet_folder):
    extractor = domain.UNetEncoderFeatures(
        domain.EXTRACTOR_NAME, ["pooled"], feature_extractor_weights_path=str(unet_folder)
    )
    levels = extractor.levels(torch.zeros(2, 3, 32, 32, dtype=torch.uint8))
    assert [level.shape[1] for level in levels] == [8, 16, 32]
    assert [level.shape[-1] for level in levels] == [16, 8, 8]  # strided down blocks, then the bottom block
    (pooled,) = extractor(torch.zeros(2, 3, 32, 32, dtype=torch.uint8))
    assert pooled.shape == (2, 16)
    with pytest.raises(FileNotFoundError, match=r"dvc repro train@<dataset>` \(with unet in train.methods\)"):
        domain.UNetEncoderFeatures(domain.EXTRACTOR_NAME, ["pooled"], feature_extractor_weights_path="/nonexistent")


def test_registered_extractor_runs_inside_torch_fidelity_and_agrees(unet_folder):
    import torch_fidelity

    domain.register()
    domain.register()  # idempotent
    a, b = images(40, 0), images(40, 1, shift=40)

    class Set(torch.utils.data.Dataset):
        def __init__(self, array):
            self.array = fidelity.to_tensor(array)

        def __len__(self):
            return len(self.array)

        def __getitem__(self, index):
            return self.array[index]

    metrics = torch_fidelity.calculate_metrics(
        input1=Set(a),
        input2=Set(b),
        fid=True,
        kid=True,
        kid_subset_size=20,
        cuda=False,
        feature_extractor=domain.EXTRACTOR_NAME,
        feature_extractor_weights_path=str(unet_folder),
        save_cpu_ram=True,
        verbose=False,
        cache=False,
    )
    extractor = domain.UNetEncoderFeatures(
        domain.EXTRACTOR_NAME, ["pooled"], feature_extractor_weights_path=str(unet_folder)
    )
    ours = fidelity.fid(fidelity.extract_features(extractor, a), fidelity.extract_features(extractor, b))
    assert ours == pytest.approx(metrics["frechet_inception_distance"], rel=1e-4)


def test_fid_zero_on_identical_sets_and_subsets_bracket_the_mean():
    rng = np.random.default_rng(0)
    a = torch.from_numpy(rng.normal(size=(60, 5)))
    assert fidelity.fid(a, a) == pytest.approx(0.0, abs=1e-6)
    b = torch.from_numpy(rng.normal(1.0, 1.0, size=(80, 5)))
    mean, low, high = fidelity.fid_over_subsets(a, b, 30, subsets=50, seed=1)
    assert low <= mean <= high and mean > 3  # squared mean shift of 5 dims at distance 1
    assert fidelity.fid_over_subsets(a, b, 30, subsets=50, seed=1) == (mean, low, high)
    with pytest.raises(ValueError, match="exceeds a pool"):
        fidelity.fid_over_subsets(a, b, 61)
    kid_mean, kid_std = fidelity.kid(a, b, subset_size=20, subsets=10)
    assert kid_mean > 0 and kid_std >= 0


def test_nearest_domain_distance_equals_brute_force(unet_folder):
    extractor = domain.UNetEncoderFeatures(
        domain.EXTRACTOR_NAME, ["pooled"], feature_extractor_weights_path=str(unet_folder)
    )
    generated, reference = images(5, 2), images(4, 3, shift=20)
    reference[2] = generated[1]  # an exact copy: distance 0
    fast = fidelity.nearest_domain_distance(extractor, generated, reference, batch_size=3)
    slow = []
    for g in generated:
        pairs = domain.lpips_style_distance(
            extractor.levels(fidelity.to_tensor(np.repeat(g[None], len(reference), 0))),
            extractor.levels(fidelity.to_tensor(reference)),
        )
        slow.append(float(pairs.min()))
    np.testing.assert_allclose(fast, slow, rtol=1e-5, atol=1e-7)
    assert fast[1] == pytest.approx(0.0, abs=1e-6)


def test_lpips_path_with_a_random_backbone():
    lpips = pytest.importorskip("lpips")
    model = lpips.LPIPS(net="alex", pretrained=False, pnet_rand=True, verbose=False).eval()  # no download
    generated, reference = images(3, 4), images(3, 5)
    reference[0] = generated[2]
    distances = fidelity.nearest_lpips(model, generated, reference)
    assert distances.shape == (3,) and distances[2] == pytest.approx(0.0, abs=1e-6) and (distances >= 0).all()
