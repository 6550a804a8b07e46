"""The latent autoencoder: shapes, scaling, save/load, training, resume, pretrained loading."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from resume_evidence import counting_optimizer_steps, resume_evidence

import benchmark.generators.autoencoder as autoencoder_module
from benchmark.config import from_mapping
from benchmark.generators.autoencoder import (
    AutoencoderConfig,
    LatentAutoencoder,
    build_autoencoder,
    reconstruction_report,
    train_autoencoder,
)

TINY = AutoencoderConfig(
    block_out_channels=(8, 16), steps=30, batch_size=8, warmup_steps=3, checkpoint_every=10, learning_rate=2e-3
)


@pytest.fixture(scope="module")
def trained(tiny_splits, tmp_path_factory):
    train = tiny_splits["train"]
    directory = tmp_path_factory.mktemp("autoencoder")
    autoencoder, log = train_autoencoder(
        train.images, train.masks, TINY, seed=3, checkpoint_dir=directory, progress=False
    )
    return autoencoder, log, directory


def test_shapes_dtypes_and_ranges(trained, tiny_splits):
    autoencoder, _, _ = trained
    images, masks = tiny_splits["val"].images, tiny_splits["val"].masks
    latents = autoencoder.encode_images(images)
    assert latents.dtype == np.float32 and latents.shape == (8, 4, 16, 16)
    decoded = autoencoder.decode_images(latents)
    assert decoded.dtype == np.uint8 and decoded.shape == images.shape
    mask_latents = autoencoder.encode_masks(masks)
    assert mask_latents.dtype == np.float32 and mask_latents.shape == (8, 4, 16, 16)
    probability = autoencoder.decode_masks(mask_latents)
    assert probability.dtype == np.float32 and probability.shape == masks.shape
    assert probability.min() >= 0 and probability.max() <= 1
    # Deterministic (posterior mean), and a tensor input decodes the same as a numpy one.
    np.testing.assert_array_equal(autoencoder.encode_images(images), latents)
    np.testing.assert_array_equal(autoencoder.decode_images(torch.from_numpy(latents)), decoded)
    report = reconstruction_report(autoencoder, images, masks)
    assert (
        report["latent_shape"] == [4, 16, 16] and np.isfinite(report["image_psnr_db"]) and 0 <= report["mask_dice"] <= 1
    )


def test_scaling_factor_gives_unit_std_on_training_images(trained, tiny_splits):
    autoencoder, _, _ = trained
    assert np.isfinite(autoencoder.scaling_factor) and autoencoder.scaling_factor > 0
    assert abs(autoencoder.encode_images(tiny_splits["train"].images).std() - 1) < 1e-3


def test_loss_decreases_and_log_is_written(trained):
    _, log, directory = trained
    assert list(log["step"]) == list(range(TINY.steps))
    assert log["loss"].tail(5).mean() < 0.8 * log["loss"].head(5).mean()
    assert (directory / "train_log.csv").is_file() and (directory / "checkpoint.pt").is_file()


def test_save_load_round_trip_is_identical(trained, tiny_splits, tmp_path):
    autoencoder, _, _ = trained
    autoencoder.save(tmp_path / "saved")
    loaded = LatentAutoencoder.load(str(tmp_path / "saved"))  # str paths work as well as Path
    assert loaded.scaling_factor == autoencoder.scaling_factor and loaded.config == autoencoder.config
    images, masks = tiny_splits["val"].images, tiny_splits["val"].masks
    latents = autoencoder.encode_images(images)
    np.testing.assert_array_equal(loaded.encode_images(images), latents)
    np.testing.assert_array_equal(loaded.decode_images(latents), autoencoder.decode_images(latents))
    np.testing.assert_array_equal(
        loaded.decode_masks(loaded.encode_masks(masks)), autoencoder.decode_masks(autoencoder.encode_masks(masks))
    )


def test_interrupted_training_resumes_bit_identically(trained, tiny_splits, tmp_path, monkeypatch):
    reference, reference_log, _ = trained
    train = tiny_splits["train"]
    original = autoencoder_module.atomic_path
    calls = {"n": 0}

    def failing_atomic_path(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:  # the step-20 checkpoint: dies after the step-10 one was written
            raise KeyboardInterrupt
        return original(*args, **kwargs)

    monkeypatch.setattr(autoencoder_module, "atomic_path", failing_atomic_path)
    with pytest.raises(KeyboardInterrupt):
        train_autoencoder(train.images, train.masks, TINY, seed=3, checkpoint_dir=tmp_path, progress=False)
    monkeypatch.setattr(autoencoder_module, "atomic_path", original)
    assert torch.load(tmp_path / "checkpoint.pt", weights_only=False)["step"] == 10

    with counting_optimizer_steps() as steps:  # the weights alone cannot tell a resume from a restart
        resumed, resumed_log = train_autoencoder(
            train.images, train.masks, TINY, seed=3, checkpoint_dir=tmp_path, progress=False
        )
    assert resume_evidence(steps.count, total_steps=TINY.steps, checkpoint_steps=10) == "resumed"
    expected = reference.vae.state_dict()
    for key, value in resumed.vae.state_dict().items():
        assert torch.equal(value, expected[key]), key
    assert resumed.scaling_factor == reference.scaling_factor
    assert resumed_log.equals(reference_log)


def test_resume_refuses_a_checkpoint_of_another_config(trained, tiny_splits):
    _, _, directory = trained
    train = tiny_splits["train"]
    with pytest.raises(ValueError, match="another config or seed"):
        train_autoencoder(
            train.images,
            train.masks,
            dataclasses.replace(TINY, steps=40),
            seed=3,
            checkpoint_dir=directory,
            progress=False,
        )


def test_nan_loss_raises_a_clear_error(tiny_splits, tmp_path, monkeypatch):
    def nan_forward(self, pixels, generator):
        return torch.full_like(pixels, float("nan")), torch.zeros(len(pixels))

    monkeypatch.setattr(autoencoder_module._VAEWithKL, "forward", nan_forward)
    train = tiny_splits["train"]
    with pytest.raises(FloatingPointError, match="learning_rate"):
        train_autoencoder(train.images, train.masks, TINY, seed=0, checkpoint_dir=tmp_path, progress=False)


def test_pretrained_folder_is_loaded_with_its_scaling_factor(tiny_splits, tmp_path):
    torch.manual_seed(0)
    vae = build_autoencoder(TINY)
    vae.register_to_config(scaling_factor=0.5)
    vae.save_pretrained(tmp_path / "vae")
    config = AutoencoderConfig(pretrained_path=str(tmp_path / "vae"))
    train = tiny_splits["train"]
    autoencoder, log = train_autoencoder(
        train.images, train.masks, config, seed=0, checkpoint_dir=tmp_path / "run", progress=False
    )
    assert autoencoder.scaling_factor == 0.5 and log.empty
    for key, value in autoencoder.vae.state_dict().items():
        assert torch.equal(value, vae.state_dict()[key]), key
    latents = autoencoder.encode_images(train.images[:2])
    with torch.no_grad():
        expected = vae.encode(autoencoder_module.images_to_tensor(train.images[:2])).latent_dist.mean * 0.5
    np.testing.assert_allclose(latents, expected.numpy(), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("make", [lambda path: None, lambda path: path.mkdir()], ids=["missing", "empty"])
def test_unusable_pretrained_path_names_it(tmp_path, make):
    path = tmp_path / "no_vae_here"
    make(path)
    with pytest.raises(FileNotFoundError, match="no_vae_here.*config.json"):
        build_autoencoder(AutoencoderConfig(pretrained_path=str(path)))


@pytest.mark.parametrize(
    "field, value",
    [
        ("steps", 0),
        ("batch_size", 0),
        ("learning_rate", 0.0),
        ("mask_share", 1.0),
        ("kl_weight", -1.0),
        ("block_out_channels", ()),
        ("checkpoint_every", 0),
        ("latent_channels", 0),
    ],
)
def test_config_validation_names_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        AutoencoderConfig(**{field: value})


def test_config_loads_from_a_params_mapping():
    config = from_mapping(AutoencoderConfig, {"block_out_channels": [8, 16], "steps": 5}, where="autoencoder")
    assert config.block_out_channels == (8, 16) and config.steps == 5


def test_decode_masks_tensor_passes_gradients_to_latents(trained, tiny_splits):
    autoencoder, _, _ = trained
    latents = torch.from_numpy(autoencoder.encode_masks(tiny_splits["val"].masks[:2])).requires_grad_(True)
    probability = autoencoder.decode_masks_tensor(latents)
    assert probability.shape == (2, 32, 32)
    (1 - probability[:, 8:24, 8:24]).mean().backward()
    assert latents.grad is not None and torch.isfinite(latents.grad).all() and latents.grad.abs().sum() > 0
    assert all(parameter.grad is None for parameter in autoencoder.vae.parameters())


def test_bad_inputs_are_rejected(trained, tiny_splits):
    autoencoder, _, _ = trained
    with pytest.raises(ValueError, match="uint8"):
        autoencoder.encode_images(tiny_splits["val"].images.astype(np.float32))
    with pytest.raises(ValueError, match=r"\{0, 1\}"):
        autoencoder.encode_masks(tiny_splits["val"].masks * 255)
    with pytest.raises(ValueError, match="divisible"):
        autoencoder.encode_images(tiny_splits["val"].images[:, :31, :31])
