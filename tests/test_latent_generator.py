"""The default generator backend end to end on a tiny problem, and the shared generator contract."""

import numpy as np
import pytest
import torch
from prepared_fixtures import write_prepared

from benchmark.generators import GENERATORS, get_generator
from benchmark.generators.autoencoder import AutoencoderConfig, LatentAutoencoder, build_autoencoder
from benchmark.generators.base import InpaintingExamples, paste_back
from benchmark.generators.configs import InpaintingConfig, LatentGeneratorConfig
from benchmark.generators.jobs import draw_jobs, training_examples
from benchmark.generators.latent import LatentInpaintingGenerator

torch.set_num_threads(1)
TINY = LatentGeneratorConfig(
    max_length=16,
    batch_size=4,
    denoiser=InpaintingConfig(block_out_channels=(8, 16), steps=3, batch_size=4, warmup_steps=1, checkpoint_every=2),
)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    dataset = write_prepared(tmp_path_factory.mktemp("data"), "polyp")
    with torch.random.fork_rng():
        torch.manual_seed(0)
        vae = build_autoencoder(AutoencoderConfig(block_out_channels=(8, 16), mid_block_attention=False))
    generator = LatentInpaintingGenerator(
        TINY, autoencoder=LatentAutoencoder(vae, 1.0, AutoencoderConfig(block_out_channels=(8, 16)))
    )
    log = generator.fit(
        training_examples(dataset), seed=0, checkpoint_dir=tmp_path_factory.mktemp("ckpt"), progress=False
    )
    jobs = draw_jobs(dataset, n_variants=1, seed=0, part="val")
    return generator, log, jobs, tmp_path_factory


def _generate(generator, jobs, seeds, **kwargs):
    return generator.generate(
        jobs.backgrounds[: len(seeds)],
        jobs.masks[: len(seeds)],
        list(jobs.table["prompt"][: len(seeds)]),
        negative_prompt="healthy mucosa",
        steps=2,
        guidance_scale=2.0,
        seeds=seeds,
        **kwargs,
    )


def test_registry_resolves_every_backend():
    assert set(GENERATORS) == {"latent", "sdxl_inpainting"}
    for name in GENERATORS:
        assert get_generator(name).name == name
    with pytest.raises(KeyError, match="registered"):
        get_generator("dalle")


def test_fit_logs_every_step(setup):
    _, log, _, _ = setup
    assert list(log["step"]) == [0, 1, 2] and np.isfinite(log["loss"]).all()


def test_generate_keeps_background_outside_the_mask_and_times_its_parts(setup):
    generator, _, jobs, _ = setup
    out = _generate(generator, jobs, [1, 2, 3])
    assert out.shape == jobs.backgrounds[:3].shape and out.dtype == np.uint8
    from scipy import ndimage

    for image, background, mask in zip(out, jobs.backgrounds, jobs.masks):
        far = ~ndimage.binary_dilation(mask.astype(bool), iterations=2)
        np.testing.assert_array_equal(image[far], background[far])
    assert set(generator.last_timings) == {"text_s", "encode_s", "denoise_s", "decode_s", "paste_s"}


def test_sample_depends_only_on_its_own_seed(setup):
    generator, _, jobs, _ = setup
    batch = _generate(generator, jobs, [7, 8, 9])
    np.testing.assert_array_equal(_generate(generator, jobs, [7])[0], batch[0])
    assert not np.array_equal(_generate(generator, jobs, [6])[0], batch[0])


def test_save_load_round_trip(setup):
    generator, _, jobs, tmp = setup
    directory = tmp.mktemp("saved") / "generator"
    generator.save(directory)
    loaded = LatentInpaintingGenerator.load(directory)
    np.testing.assert_array_equal(_generate(loaded, jobs, [4, 5]), _generate(generator, jobs, [4, 5]))
    with pytest.raises(FileNotFoundError, match="generator.json"):
        LatentInpaintingGenerator.load(tmp.mktemp("empty"))


def test_bad_generate_inputs_name_the_argument(setup):
    generator, _, jobs, _ = setup
    with pytest.raises(ValueError, match="seeds"):
        generator.generate(
            jobs.backgrounds[:2], jobs.masks[:2], ["a", "b"], negative_prompt="", steps=1, guidance_scale=1.0, seeds=[1]
        )
    with pytest.raises(ValueError, match="masks"):
        generator.generate(
            jobs.backgrounds[:2],
            jobs.masks[:2] * 3,
            ["a", "b"],
            negative_prompt="",
            steps=1,
            guidance_scale=1.0,
            seeds=[1, 2],
        )


def test_examples_reject_inconsistent_inputs():
    images = np.zeros((2, 8, 8, 3), np.uint8)
    with pytest.raises(ValueError, match="prompts"):
        InpaintingExamples(images, images, np.zeros((2, 8, 8), np.uint8), ("only one",), "n")
    with pytest.raises(ValueError, match="normal_images"):
        InpaintingExamples(images, images[:1], np.zeros((2, 8, 8), np.uint8), ("a", "b"), "n")


def test_paste_back_blends_only_near_the_mask():
    generated = np.full((1, 9, 9, 3), 200, np.uint8)
    background = np.zeros((1, 9, 9, 3), np.uint8)
    mask = np.zeros((1, 9, 9), np.uint8)
    mask[0, 4, 4] = 1
    out = paste_back(generated, background, mask, feather_px=2.0)[0, ..., 0]
    assert out[4, 4] == 200 and out[4, 5] == 100 and out[4, 6] == 0 and out[0, 0] == 0
    np.testing.assert_array_equal(paste_back(generated, background, mask, feather_px=0)[0, ..., 0], mask[0] * 200)
