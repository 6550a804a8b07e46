"""Behaviour of the mask-diffusion building blocks (MedSegDiff-V1/V2, Diff-Trans)."""

import pytest
import torch
from resume_evidence import counting_optimizer_steps, resume_evidence

from benchmark.methods.difftrans_network import DiffTransNetwork
from benchmark.methods.mask_diffusion import (
    map_condition,
    masks_to_diffusion,
    probabilities_from_samples,
    sample_masks,
    sampling_scheduler,
)
from benchmark.methods.mask_diffusion_layers import FFParser, LearnableGaussianSmoothing
from benchmark.methods.medsegdiff_network import MedSegDiffNetwork, SpectrumSpaceAttention, UncertainSpatialAttention


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """These tensors are tiny: a single thread avoids waiting on a busy second core."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def disc_masks(count: int, size: int) -> torch.Tensor:
    """{0, 1} float (count, 1, size, size): discs of growing radius."""
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    radii = torch.linspace(size * 0.15, size * 0.35, count)
    return torch.stack([((yy - size / 2) ** 2 + (xx - size / 2) ** 2 < r**2).float() for r in radii])[:, None]


class OracleDenoiser:
    """Predicts the exact target (noise, clean mask or velocity) of x_t from the clean masks it holds."""

    def __init__(self, masks: torch.Tensor, prediction_type: str = "epsilon"):
        self.masks, self.prediction_type = masks, prediction_type
        self.alphas = sampling_scheduler(1).alphas_cumprod
        self.calls: list[int] = []
        self.encoded: list[int] = []

    def encode_condition(self, images):
        index = images[:, 0, 0, 0].long()  # the test images carry their row index
        self.encoded.append(len(images))
        return {"clean": masks_to_diffusion(self.masks[index])}

    def __call__(self, noisy, timesteps, condition):
        self.calls.append(noisy.shape[0])
        alpha = self.alphas[timesteps][:, None, None, None]
        clean = condition["clean"]
        noise = (noisy - alpha.sqrt() * clean) / (1 - alpha).sqrt()
        return {"epsilon": noise, "sample": clean, "v_prediction": alpha.sqrt() * noise - (1 - alpha).sqrt() * clean}[
            self.prediction_type
        ]


def indexed_images(count: int, size: int) -> torch.Tensor:
    images = torch.zeros(count, 3, size, size)
    images[:, 0, 0, 0] = torch.arange(count).float()
    return images


def test_ff_parser_with_unit_filter_is_identity():
    parser = FFParser(channels=3, height=8, width=8)
    features = torch.randn(2, 3, 8, 8)
    torch.testing.assert_close(parser(features), features, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(parser(torch.randn(1, 3, 16, 12)).shape, torch.Size([1, 3, 16, 12]))  # resampled filter


def test_ff_parser_zero_filter_removes_everything():
    parser = FFParser(channels=2, height=8, width=8)
    with torch.no_grad():
        parser.weight.zero_()
    assert parser(torch.randn(1, 2, 8, 8)).abs().max() < 1e-6


def test_gaussian_smoothing_preserves_a_constant_map_and_sums_to_one():
    smoothing = LearnableGaussianSmoothing(kernel_size=5, sigma=1.3)
    with torch.no_grad():
        smoothing.mean.copy_(torch.tensor([0.4, -0.7]))
    constant = torch.full((2, 3, 9, 7), 0.37)
    torch.testing.assert_close(smoothing(constant), constant)
    torch.testing.assert_close(smoothing.kernel().sum(), torch.tensor(1.0))


def test_uncertain_spatial_attention_shape():
    attention = UncertainSpatialAttention(channels=8)
    assert attention(torch.randn(2, 8, 16, 16), torch.randn(2, 1, 32, 32)).shape == (2, 8, 16, 16)


@pytest.mark.parametrize("prediction_type", ["epsilon", "sample", "v_prediction"])
def test_ddim_with_the_true_target_recovers_the_mask(prediction_type):
    masks = disc_masks(3, 16)
    oracle = OracleDenoiser(masks, prediction_type)
    generator = torch.Generator().manual_seed(0)
    mean = sample_masks(
        oracle, indexed_images(3, 16), steps=4, ensemble=2, generator=generator, prediction_type=prediction_type
    )
    assert len(oracle.calls) == 4
    torch.testing.assert_close(probabilities_from_samples(mean), masks[:, 0], atol=1e-4, rtol=0)


def test_sampler_batches_the_ensemble_and_is_seeded():
    masks = disc_masks(5, 8)
    oracle = OracleDenoiser(masks)
    first = sample_masks(
        oracle,
        indexed_images(5, 8),
        steps=3,
        ensemble=4,
        generator=torch.Generator().manual_seed(1),
        images_per_batch=2,
    )
    # images in batches of 2, 2, 1: each step sees images_per_batch x K samples; the condition is encoded once per batch
    assert oracle.encoded == [2, 2, 1]
    assert oracle.calls == [8] * 3 + [8] * 3 + [4] * 3
    second = sample_masks(
        OracleDenoiser(masks),
        indexed_images(5, 8),
        steps=3,
        ensemble=4,
        generator=torch.Generator().manual_seed(1),
        images_per_batch=5,
    )
    torch.testing.assert_close(first, second)


def test_ensemble_mean_is_the_mean_of_single_samples():
    """Samples differ with their initial noise; the ensemble of K returns their mean."""

    class ZeroNoise:
        def encode_condition(self, images):
            return {"images": images}

        def __call__(self, noisy, timesteps, condition):
            return torch.zeros_like(noisy)  # then x_0 = x_t / sqrt(alpha_t): depends on the initial noise

    images = torch.zeros(2, 3, 8, 8)
    ensemble = sample_masks(ZeroNoise(), images, steps=2, ensemble=3, generator=torch.Generator().manual_seed(5))
    # the same draws, one sample per row: noise (N, K, ...) and (N * K, 1, ...) are the same numbers in the same order
    singles = sample_masks(
        ZeroNoise(), torch.zeros(6, 3, 8, 8), steps=2, ensemble=1, generator=torch.Generator().manual_seed(5)
    )
    torch.testing.assert_close(ensemble, singles.view(2, 3, 1, 8, 8).mean(dim=1))
    assert singles.view(2, 3, -1).std(dim=1).mean() > 0.1  # the members really differ


def test_map_condition_repeats_nested_tensors():
    condition = {"a": torch.arange(2), "b": [torch.ones(2, 3)]}
    repeated = map_condition(condition, lambda t: t.repeat_interleave(3, dim=0))
    assert repeated["a"].tolist() == [0, 0, 0, 1, 1, 1] and repeated["b"][0].shape == (6, 3)


@pytest.mark.parametrize("anchor_attention, ss_former_depth", [(False, 0), (True, 1)])
def test_medsegdiff_network_shapes(anchor_attention, ss_former_depth):
    network = MedSegDiffNetwork(
        (8, 16, 32),
        (8, 16, 32),
        stem_stride=2,
        image_size=32,
        anchor_attention=anchor_attention,
        ss_former_depth=ss_former_depth,
    )
    condition = network.encode_condition(torch.randn(2, 3, 32, 32))
    assert condition["anchor_logits"].shape == (2, 1, 32, 32)
    assert [f.shape[-1] for f in condition["features"]] == [16, 8, 4]
    noise = network(torch.randn(2, 1, 32, 32), torch.tensor([0, 999]), condition)
    assert noise.shape == (2, 1, 32, 32) and torch.isfinite(noise).all()


def test_ss_former_block_shape_and_band_pass_starts_at_one():
    block = SpectrumSpaceAttention(channels=16, heads=4)
    assert block(torch.randn(2, 16, 4, 4), torch.randn(2, 16, 4, 4)).shape == (2, 16, 4, 4)
    gain = block.band_pass(4, 4)
    assert gain.shape == (16, 4, 3)
    torch.testing.assert_close(gain, torch.ones_like(gain))


def test_difftrans_network_shapes():
    network = DiffTransNetwork((16, 32), patch_size=2, windows=(2, 4), head_channels=8)
    condition = network.encode_condition(torch.randn(2, 3, 16, 16))
    assert [f.shape[1:] for f in condition["features"]] == [(16, 8, 8), (32, 4, 4)]
    assert condition["anchor_logits"].shape == (2, 1, 16, 16)
    noise = network(torch.randn(2, 1, 16, 16), torch.tensor([3, 500]), condition)
    assert noise.shape == (2, 1, 16, 16) and torch.isfinite(noise).all()


def test_denoising_loss_targets_and_auxiliary_term():
    from benchmark.methods.mask_diffusion import denoising_loss, training_scheduler

    masks = disc_masks(2, 8)

    class CleanPredictor(torch.nn.Module):
        def encode_condition(self, images):
            return {"anchor_logits": (masks * 2 - 1) * 20.0}  # a confident, correct anchor

        def forward(self, noisy, timesteps, condition):
            return masks * 2 - 1

    loss, parts = denoising_loss(
        CleanPredictor(),
        torch.zeros(2, 3, 8, 8),
        masks,
        training_scheduler("sample"),
        torch.Generator().manual_seed(0),
        auxiliary_weight=1.0,
    )
    assert (
        parts["diffusion_mse"] == 0
        and 0 < parts["auxiliary"] < 0.01
        and loss.item() == pytest.approx(parts["auxiliary"])
    )
    _, parts = denoising_loss(
        CleanPredictor(),
        torch.zeros(2, 3, 8, 8),
        masks,
        training_scheduler("epsilon"),
        torch.Generator().manual_seed(0),
    )
    assert parts["diffusion_mse"] > 0.5 and parts["auxiliary"] == 0  # the clean mask is not the noise


def _tiny_network():
    return MedSegDiffNetwork((4, 8), (4, 8), stem_stride=2, image_size=16)


def _small(data, count: int = 8, size: int = 16):
    """The first ``count`` images, cropped to ``size`` pixels: enough for trainer mechanics."""
    from benchmark.data.prepared import SegmentationData

    return SegmentationData(
        data.ids[:count], data.images[:count, :size, :size].copy(), data.masks[:count, :size, :size].copy()
    )


def test_trainer_resumes_an_interrupted_run_identically(tiny_splits, tmp_path):
    from benchmark.methods.mask_diffusion import MaskDiffusionConfig, train_mask_diffusion

    config = MaskDiffusionConfig(epochs=2, batch_size=4, augmentation="standard", warmup_fraction=0.0)
    train = _small(tiny_splits["train"])

    def run(directory, validate):
        torch.manual_seed(0)
        network = _tiny_network()
        log = train_mask_diffusion(
            network, train, config, seed=3, checkpoint_dir=directory, validate=validate, progress=False
        )
        return network, log

    with counting_optimizer_steps() as reference_steps:
        reference, reference_log = run(tmp_path / "straight", lambda: 0.5)

    calls = []

    def interrupt_after_first_epoch():
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return 0.5

    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "resumed", interrupt_after_first_epoch)
    with counting_optimizer_steps() as steps:  # the weights and log alone cannot tell a resume from a restart
        resumed, resumed_log = run(tmp_path / "resumed", lambda: 0.5)
    one_epoch = reference_steps.count // config.epochs
    assert resume_evidence(steps.count, total_steps=reference_steps.count, checkpoint_steps=one_epoch) == "resumed"
    assert list(resumed_log["epoch"]) == [0, 1]
    assert resumed_log["train_loss"].tolist() == reference_log["train_loss"].tolist()
    for key, value in reference.state_dict().items():
        torch.testing.assert_close(resumed.state_dict()[key], value, rtol=0, atol=0)


def test_trainer_stops_on_a_non_finite_loss(tiny_splits, tmp_path):
    from benchmark.methods.mask_diffusion import MaskDiffusionConfig, train_mask_diffusion

    class Exploding(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.weight = torch.nn.Parameter(torch.tensor(float("nan")))

        def encode_condition(self, images):
            return {}

        def forward(self, noisy, timesteps, condition):
            return noisy * self.weight

    with pytest.raises(FloatingPointError, match="lower learning_rate"):
        train_mask_diffusion(
            Exploding(),
            _small(tiny_splits["train"]),
            MaskDiffusionConfig(epochs=1),
            seed=0,
            checkpoint_dir=tmp_path,
            validate=lambda: 0.0,
            progress=False,
        )
