"""DiffAug's latent segmenter and SDSeg: eqs. 10–12 by hand, inference call counts, the encoder difference, resume."""

import dataclasses
import math

import numpy as np
import pytest
import torch
from resume_evidence import counting_optimizer_steps, resume_evidence

import benchmark.methods.latent_seg.trainer as trainer
from benchmark.data.prepared import SegmentationData
from benchmark.generators.autoencoder import LatentAutoencoder, build_autoencoder
from benchmark.methods.latent_seg.config import SMOKE_AUTOENCODER
from benchmark.methods.latent_seg.diffusion import (
    NoiseSchedule,
    add_noise,
    ddim_timesteps,
    estimate_clean_latent,
    noise_from_output,
    sample_clean_latents,
    segmentation_loss,
)
from benchmark.methods.latent_seg.method import DiffAugSegmenter, SDSeg, predict_latent_masks
from benchmark.methods.latent_seg.network import LatentSegmentationNetwork

# Linear betas 0.1, 0.2, 0.3, 0.4: ᾱ = 0.9, 0.9·0.8, 0.9·0.8·0.7, 0.9·0.8·0.7·0.6.
TINY_SCHEDULE = NoiseSchedule(num_train_timesteps=4, beta_schedule="linear", beta_start=0.1, beta_end=0.4)
TINY_ALPHAS = [0.9, 0.72, 0.504, 0.3024]


@pytest.fixture(scope="module")
def tiny_autoencoder():
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        vae = build_autoencoder(SMOKE_AUTOENCODER)
    return LatentAutoencoder(vae, 1.0, SMOKE_AUTOENCODER)


def tiny_network(autoencoder, encoder="dual", vision_input="latent"):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(1)
        return LatentSegmentationNetwork(
            encoder=encoder,
            vae=autoencoder.vae,
            latent_channels=4,
            latent_size=4,
            vision_input=vision_input,
            vision_channels=8,
            vision_blocks=1,
            fused_channels=4,
            denoiser_channels=(16, 32),
        ).eval()


def test_schedules_match_hand_values_and_diffusers():
    from diffusers import DDIMScheduler

    np.testing.assert_allclose(TINY_SCHEDULE.alphas_cumprod().numpy(), TINY_ALPHAS, rtol=1e-6)
    default = NoiseSchedule()  # SDSeg's scaled-linear 0.0015 -> 0.0155, T = 1000
    reference = DDIMScheduler(
        num_train_timesteps=1000, beta_start=0.0015, beta_end=0.0155, beta_schedule="scaled_linear"
    )
    torch.testing.assert_close(default.alphas_cumprod(), reference.alphas_cumprod.float())
    assert ddim_timesteps(1000, 1) == [999] and ddim_timesteps(1000, 4) == [999, 749, 499, 249]


def test_single_step_estimate_is_equation_11(tiny_autoencoder):
    network = tiny_network(tiny_autoencoder)
    image_latents, noise = torch.randn(2, 4, 4, 4, generator=torch.Generator().manual_seed(0)).chunk(2)
    condition = network.encode_condition(image_latents)
    seen = []

    def denoise(latents, timesteps):
        seen.append(timesteps.tolist())
        return network(latents, timesteps, condition)

    estimate = sample_clean_latents(denoise, noise, TINY_SCHEDULE.alphas_cumprod(), steps=1)
    assert seen == [[3]]  # t = T - 1
    with torch.no_grad():
        noise_pred = network(noise, torch.tensor([3]), condition)
    alpha = TINY_ALPHAS[3]
    torch.testing.assert_close(estimate, (noise - math.sqrt(1 - alpha) * noise_pred) / math.sqrt(alpha))


@pytest.mark.parametrize("steps", [1, 2, 4])
def test_true_noise_recovers_clean_latent(steps):
    generator = torch.Generator().manual_seed(3)
    clean, noise = torch.randn(3, 4, 8, 8, generator=generator), torch.randn(3, 4, 8, 8, generator=generator)
    alphas = NoiseSchedule().alphas_cumprod()
    for t in (0, 500, 999):
        noisy = add_noise(clean, noise, alphas[[t] * 3])
        torch.testing.assert_close(estimate_clean_latent(noisy, noise, alphas[[t] * 3]), clean, atol=2e-4, rtol=0)
    # An oracle that always answers the true ε: single-step and DDIM both land on z_0.
    start = add_noise(clean, noise, alphas[[999] * 3])
    torch.testing.assert_close(sample_clean_latents(lambda z, t: noise, start, alphas, steps), clean, atol=2e-4, rtol=0)


def test_v_prediction_converts_to_the_same_noise_and_clean_estimate():
    generator = torch.Generator().manual_seed(4)
    clean, noise = torch.randn(2, 4, 4, 4, generator=generator), torch.randn(2, 4, 4, 4, generator=generator)
    alphas = TINY_SCHEDULE.alphas_cumprod()[[1, 3]]
    noisy = add_noise(clean, noise, alphas)
    a = alphas.view(-1, 1, 1, 1)
    velocity = a.sqrt() * noise - (1 - a).sqrt() * clean  # v of Salimans & Ho (2022)
    torch.testing.assert_close(noise_from_output(velocity, noisy, alphas, "v_prediction"), noise)
    assert noise_from_output(velocity, noisy, alphas, "epsilon") is velocity
    # Eq. 11 on the converted ε̂ reads the clean latent off the output: ẑ_0 = sqrt(ᾱ) z_t − sqrt(1 − ᾱ) v̂.
    output = torch.randn(2, 4, 4, 4, generator=generator)
    estimate = estimate_clean_latent(noisy, noise_from_output(output, noisy, alphas, "v_prediction"), alphas)
    torch.testing.assert_close(estimate, a.sqrt() * noisy - (1 - a).sqrt() * output)


def test_denoiser_call_counts(tiny_autoencoder):
    calls = []
    result = {
        steps: sample_clean_latents(
            lambda z, t: calls.append(t) or 0.5 * z, torch.ones(1, 4, 2, 2), TINY_SCHEDULE.alphas_cumprod(), steps
        )
        for steps in (1, 3)
    }
    assert len(calls) == 4  # 1 + 3
    assert not torch.equal(result[1], result[3])
    # Through the method: one UNet call per batch single-step, N per batch iterative.
    method = DiffAugSegmenter(DiffAugSegmenter.smoke_config())
    method.autoencoder, method.network = tiny_autoencoder, tiny_network(tiny_autoencoder)
    images = np.random.default_rng(0).integers(0, 256, (5, 16, 16, 3), dtype=np.uint8)
    counted = []
    original = method.network.denoiser.forward
    method.network.denoiser.forward = lambda *a, **k: counted.append(1) or original(*a, **k)
    single = predict_latent_masks(method, images, batch_size=5)
    assert len(counted) == 1
    iterative = predict_latent_masks(method, images, batch_size=5, inference="iterative", steps=7)
    assert len(counted) == 1 + 7
    one_step = predict_latent_masks(method, images, batch_size=2, inference="iterative", steps=1)
    np.testing.assert_allclose(
        one_step, single, atol=1e-4
    )  # DDIM with N = 1 is eq. 11; noise independent of batch size (float noise only)
    assert single.shape == iterative.shape == (5, 16, 16) and single.dtype == np.float32


def test_dual_and_single_differ_exactly_by_the_frozen_branch(tiny_autoencoder):
    dual, single = tiny_network(tiny_autoencoder, "dual", "pixels"), tiny_network(tiny_autoencoder, "single")
    dual_shapes = {name: p.shape for name, p in dual.named_parameters()}
    single_shapes = {name: p.shape for name, p in single.named_parameters()}
    assert dual_shapes.keys() == single_shapes.keys()
    different = {name for name in dual_shapes if dual_shapes[name] != single_shapes[name]}
    assert different == {"fusion.0.weight"}  # ψ's first 1×1 projection reads z_a's 4 extra channels
    assert dual_shapes["fusion.0.weight"][1] == single_shapes["fusion.0.weight"][1] + 4
    count = lambda net: sum(p.numel() for p in net.parameters())  # noqa: E731
    assert count(dual) - count(single) == 4 * 4  # fused_channels × latent_channels
    assert (dual.uses_image_latents, single.uses_image_latents) == (True, False)
    # SDSeg's encoder: a trainable copy of the VAE encoder, initialised from it; the VAE stays frozen.
    vae_encoder = dict(tiny_autoencoder.vae.encoder.named_parameters())
    for name, parameter in single.vision_encoder.encoder.named_parameters():
        assert parameter.requires_grad and torch.equal(parameter, vae_encoder[name])
    assert not any(p.requires_grad for p in tiny_autoencoder.vae.parameters())
    # The paper's default V_ψ(z_a) holds no copy of the VAE encoder; the denoiser is the same in all modes.
    latent_dual = tiny_network(tiny_autoencoder, "dual", "latent")
    assert not any(name.startswith("vision_encoder.encoder.") for name, _ in latent_dual.named_parameters())
    assert count(latent_dual.denoiser) == count(dual.denoiser) == count(single.denoiser)
    with pytest.raises(ValueError, match="needs image_latents"):
        latent_dual.encode_condition(pixels=torch.zeros(1, 3, 16, 16))


def test_equation_12_terms_by_hand():
    noise, noise_pred = torch.tensor([[1.0, -2.0]]), torch.tensor([[0.0, 0.0]])  # mean |ε − ε̂| = 1.5
    clean, clean_pred = torch.tensor([[0.5, 0.5]]), torch.tensor([[0.0, 1.5]])  # mean |z_0 − ẑ_0| = 0.75
    decoded, target = torch.tensor([[[1.0, 0.5], [0.0, 0.0]]]), torch.tensor([[[1.0, 1.0], [0.0, 0.0]]])
    dice = 1 - (2 * 1.5 + 1) / (1.5 + 2 + 1)  # soft Dice with smoothing 1
    loss, terms = segmentation_loss(
        noise, noise_pred, clean, clean_pred, decoded, target, lambda_latent=2.0, lambda_dice=3.0
    )
    assert terms == pytest.approx({"noise": 1.5, "latent": 0.75, "dice": dice})
    assert loss.item() == pytest.approx(1.5 + 2.0 * 0.75 + 3.0 * dice)
    loss, terms = segmentation_loss(
        noise, noise_pred, clean, clean_pred, None, None, lambda_latent=1.0, lambda_dice=0.0
    )
    assert loss.item() == pytest.approx(2.25) and terms["dice"] == 0.0


def test_gradient_reaches_network_through_frozen_decoder(tiny_autoencoder):
    clean_pred = torch.zeros(1, 4, 8, 8, requires_grad=True)
    decoded = tiny_autoencoder.decode_masks_tensor(clean_pred)
    segmentation_loss(
        torch.zeros(1),
        torch.zeros(1),
        torch.zeros(1),
        torch.zeros(1),
        decoded,
        torch.ones(1, 32, 32),
        lambda_latent=0.0,
        lambda_dice=1.0,
    )[0].backward()
    assert clean_pred.grad.abs().sum() > 0
    assert all(p.grad is None for p in tiny_autoencoder.vae.parameters())


def test_interrupted_training_resumes_identically(tiny_splits, tiny_autoencoder, tmp_path, monkeypatch):
    config = dataclasses.replace(DiffAugSegmenter.smoke_config(), epochs=2)
    train, val = (
        SegmentationData(data.ids[:n], data.images[:n], data.masks[:n])
        for data, n in ((tiny_splits["train"], 12), (tiny_splits["val"], 4))
    )
    reference = DiffAugSegmenter(config)
    reference.attach_autoencoder(tiny_autoencoder)
    with counting_optimizer_steps() as reference_steps:
        reference.fit(train, val, seed=5, out_dir=tmp_path / "reference", progress=False)

    calls, original = {"n": 0}, trainer.mean_dice

    def failing_mean_dice(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:  # dies during epoch 1, after epoch 0 was checkpointed
            raise KeyboardInterrupt
        return original(*args, **kwargs)

    monkeypatch.setattr(trainer, "mean_dice", failing_mean_dice)
    interrupted = DiffAugSegmenter(config)
    interrupted.attach_autoencoder(tiny_autoencoder)
    with pytest.raises(KeyboardInterrupt):
        interrupted.fit(train, val, seed=5, out_dir=tmp_path / "resumed", progress=False)
    monkeypatch.setattr(trainer, "mean_dice", original)
    resumed = DiffAugSegmenter(config)
    resumed.attach_autoencoder(tiny_autoencoder)
    with counting_optimizer_steps() as steps:  # the weights alone cannot tell a resume from a restart
        resumed.fit(train, val, seed=5, out_dir=tmp_path / "resumed", progress=False)
    one_epoch = reference_steps.count // config.epochs
    assert resume_evidence(steps.count, total_steps=reference_steps.count, checkpoint_steps=one_epoch) == "resumed"
    expected, actual = reference.network.state_dict(), resumed.network.state_dict()
    assert expected.keys() == actual.keys() and all(torch.equal(expected[k], actual[k]) for k in expected)


def test_configs_differ_only_in_encoder_and_placeholder_path_is_rejected(tiny_splits, tmp_path):
    diffaug, sdseg = DiffAugSegmenter.Config(), SDSeg.Config()
    assert (diffaug.encoder, sdseg.encoder) == ("dual", "single")
    assert {k: v for k, v in vars(diffaug).items() if k != "encoder"} == {
        k: v for k, v in vars(sdseg).items() if k != "encoder"
    }
    method = DiffAugSegmenter(DiffAugSegmenter.Config(autoencoder_path="models/{dataset}/autoencoder/model"))
    with pytest.raises(ValueError, match="train stage fills it"):
        method.fit(tiny_splits["train"], tiny_splits["val"], seed=0, out_dir=tmp_path, progress=False)
