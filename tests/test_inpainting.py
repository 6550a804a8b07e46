"""DiffAug's inpainting denoiser: network, eq. 7 objective, resumable training, DDIM + CFG sampling."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from resume_evidence import counting_optimizer_steps, resume_evidence

from benchmark.generators import inpainting
from benchmark.generators.inpainting import (
    InpaintingConfig,
    build_denoiser,
    generation_loss,
    load_denoiser,
    make_inputs,
    save_denoiser,
    train_inpainting,
)
from benchmark.generators.sampler import ddim_inpaint

torch.set_num_threads(1)

N, SIZE, L, D = 6, 8, 5, 16
TINY = InpaintingConfig(
    block_out_channels=(8, 16), steps=20, batch_size=4, learning_rate=2e-3, warmup_steps=2, checkpoint_every=5
)


@pytest.fixture(scope="module")
def problem():
    """A tiny fixed problem: random latents, square masks, two distinct 'prompts'."""
    g = torch.Generator().manual_seed(0)
    normal = torch.randn(N, 4, SIZE, SIZE, generator=g)
    mask = torch.zeros(N, 1, SIZE, SIZE)
    for i in range(N):
        y, x = torch.randint(0, SIZE - 3, (2,), generator=g).tolist()
        mask[i, :, y : y + 3, x : x + 3] = 1
    lesion = torch.where(mask > 0, torch.full_like(normal, 1.5), normal)
    masked = normal * (1 - mask)
    text = torch.randn(2, L, D, generator=g)[torch.arange(N) % 2]
    uncond = torch.randn(1, L, D, generator=g)
    return dict(
        latents=lesion,
        normal_latents=normal,
        mask_latents=mask,
        masked_image_latents=masked,
        text_embeddings=text,
        uncond_embedding=uncond,
    )


@pytest.fixture(scope="module")
def trained(problem, tmp_path_factory):
    return train_inpainting(
        **problem, config=TINY, seed=3, checkpoint_dir=tmp_path_factory.mktemp("ckpt"), progress=False
    )


def _sample(denoiser, problem, seed, **kwargs):
    b = 3
    args = dict(
        masked_image_latents=problem["masked_image_latents"][:b],
        mask_latents=problem["mask_latents"][:b],
        known_latents=problem["normal_latents"][:b],
        text_embeddings=problem["text_embeddings"][:b],
        uncond_embeddings=problem["uncond_embedding"],
        steps=4,
        guidance_scale=3.0,
        generator=torch.Generator().manual_seed(seed),
    )
    args.update(kwargs)
    return ddim_inpaint(denoiser, TINY, **args)


def test_config_validation_names_field():
    for field, value in [
        ("text_dropout", 1.0),
        ("steps", 0),
        ("block_out_channels", (8, 12)),
        ("beta_schedule", "cosine"),
        ("cross_attention_from_level", 2),
        ("lambda_preserve", -1.0),
    ]:
        with pytest.raises(ValueError, match=field if field != "block_out_channels" else "divisible"):
            dataclasses.replace(TINY, **{field: value})


def test_denoiser_shape_and_schedule():
    torch.manual_seed(0)
    net = build_denoiser(TINY, D, SIZE)
    assert net.config.in_channels == 9 and net.config.out_channels == 4 and net.config.sample_size == SIZE
    assert net.config.down_block_types == ("DownBlock2D", "CrossAttnDownBlock2D")
    inputs = make_inputs(torch.randn(2, 4, SIZE, SIZE), torch.ones(2, 1, SIZE, SIZE), torch.zeros(2, 4, SIZE, SIZE))
    assert inputs.shape == (2, 9, SIZE, SIZE) and (inputs[:, 4] == 1).all()
    out = net(inputs, torch.tensor([0, 999]), encoder_hidden_states=torch.randn(2, L, D)).sample
    assert out.shape == (2, 4, SIZE, SIZE)
    from benchmark.generators.sampler import make_scheduler

    assert torch.allclose(inpainting.alphas_cumprod(TINY), make_scheduler(TINY).alphas_cumprod)


def test_generation_loss_values():
    g = torch.Generator().manual_seed(1)
    noise, zn = torch.randn(2, 4, 4, 4, generator=g), torch.randn(2, 4, 4, 4, generator=g)
    alpha = torch.tensor([0.9, 0.3])
    a = alpha.view(-1, 1, 1, 1)
    mask = torch.zeros(2, 1, 4, 4)
    mask[:, :, :2] = 1
    noisy = a.sqrt() * zn + (1 - a).sqrt() * noise  # z_0 = z_n: then eps_hat = eps gives z0_hat = z_n
    assert generation_loss(noise, noise.clone(), noisy, alpha, mask, zn, 0.5).item() == pytest.approx(0, abs=1e-10)
    # known value: eps_hat = eps + 1 everywhere -> noise term 1; z0_hat - z_n = -sqrt((1-a)/a)
    loss, terms = generation_loss(noise, noise + 1, noisy, alpha, mask, zn, 0.5, return_terms=True)
    preserve = ((1 - alpha) / alpha).mean().item()
    assert terms["noise"] == pytest.approx(1.0, rel=1e-5) and terms["preserve"] == pytest.approx(preserve, rel=1e-5)
    assert loss.item() == pytest.approx(1.0 + 0.5 * preserve, rel=1e-5)
    # min-SNR bound: weight min(SNR, γ) on |z0_hat - z_n|^2 = (1-a)/a -> min(1, γ a / (1-a)) in ε-space
    _, bounded = generation_loss(noise, noise + 1, noisy, alpha, mask, zn, 0.5, return_terms=True, snr_gamma=2.0)
    snr = alpha / (1 - alpha)  # 9 and 0.43
    expected = (snr.clamp(max=2.0) / snr).mean().item()  # (2/9 + 1) / 2
    assert bounded["preserve"] == pytest.approx(expected, rel=1e-5) and bounded["preserve"] <= 1.0
    # the preserve term depends on the prediction outside the mask (the literal eq. 7 would not)
    changed = noise.clone()
    changed[:, :, 2:] += 0.3
    pred = changed.requires_grad_()
    loss, terms = generation_loss(noise, pred, noisy, alpha, mask, zn, 0.5, return_terms=True)
    assert terms["noise"] == 0 and terms["preserve"] > 0
    loss.backward()
    assert pred.grad[:, :, 2:].abs().sum() > 0
    # empty regions do not divide by zero
    empty = generation_loss(noise, noise + 1, noisy, alpha, torch.zeros_like(mask), zn, 0.0)
    full = generation_loss(noise, noise + 1, noisy, alpha, torch.ones_like(mask), zn, 1.0)
    assert empty.item() == 0 and full.item() == pytest.approx(1.0)


def test_training_loss_decreases(trained):
    _, log = trained
    assert len(log) == TINY.steps and log["loss"].notna().all()
    assert log["loss"].iloc[-5:].mean() < log["loss"].iloc[:5].mean()


def test_resume_is_bit_identical(problem, trained, tmp_path, monkeypatch):
    reference, log = trained
    original = inpainting.generation_loss
    calls = {"n": 0}

    def failing(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 13:  # after the checkpoint at step 10
            raise KeyboardInterrupt
        return original(*args, **kwargs)

    monkeypatch.setattr(inpainting, "generation_loss", failing)
    with pytest.raises(KeyboardInterrupt):
        train_inpainting(**problem, config=TINY, seed=3, checkpoint_dir=tmp_path, progress=False)
    assert torch.load(tmp_path / "checkpoint.pt", weights_only=False)["step"] == 10
    monkeypatch.setattr(inpainting, "generation_loss", original)
    with counting_optimizer_steps() as steps:  # the weights alone cannot tell a resume from a restart
        resumed, resumed_log = train_inpainting(**problem, config=TINY, seed=3, checkpoint_dir=tmp_path, progress=False)
    assert resume_evidence(steps.count, total_steps=TINY.steps, checkpoint_steps=10) == "resumed"
    for (name, a), b in zip(reference.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name
    assert resumed_log["loss"].tolist() == log["loss"].tolist()
    with pytest.raises(ValueError, match="another config or seed"):
        train_inpainting(**problem, config=TINY, seed=4, checkpoint_dir=tmp_path, progress=False)


def test_nan_loss_is_reported(problem, tmp_path):
    bad = dict(problem, latents=problem["latents"] * float("nan"))
    with pytest.raises(FloatingPointError, match="learning_rate"):
        train_inpainting(**bad, config=TINY, seed=0, checkpoint_dir=tmp_path, progress=False)


def test_save_load_identical(trained, problem, tmp_path):
    denoiser, _ = trained
    save_denoiser(denoiser, TINY, tmp_path / "model")
    loaded, config = load_denoiser(tmp_path / "model")
    assert config == TINY
    assert torch.equal(_sample(denoiser, problem, 0), _sample(loaded, problem, 0))


def test_sampler_shape_determinism_and_paste(trained, problem):
    denoiser, _ = trained
    a, b, c = _sample(denoiser, problem, 0), _sample(denoiser, problem, 0), _sample(denoiser, problem, 1)
    assert a.shape == (3, 4, SIZE, SIZE) and a.dtype == torch.float32 and torch.isfinite(a).all()
    assert torch.equal(a, b) and not torch.equal(a, c)
    outside = (problem["mask_latents"][:3] == 0).expand_as(a)
    assert torch.equal(a[outside], problem["normal_latents"][:3][outside])
    free = _sample(denoiser, problem, 0, paste_known=False)
    assert not torch.equal(free[outside], problem["normal_latents"][:3][outside])


class _Counting(torch.nn.Module):
    """Wraps a denoiser, recording the batch size of each call."""

    def __init__(self, inner):
        super().__init__()
        self.inner, self.batches = inner, []

    def forward(self, inputs, t, encoder_hidden_states):
        self.batches.append(inputs.shape[0])
        return self.inner(inputs, t, encoder_hidden_states=encoder_hidden_states)


def test_ddim_starts_at_the_last_training_timestep_for_any_step_count():
    from benchmark.generators.sampler import make_scheduler

    for steps in (5, 10, 50):
        scheduler = make_scheduler(TINY)
        scheduler.set_timesteps(steps)
        timesteps = [int(t) for t in scheduler.timesteps]
        assert timesteps[0] == TINY.num_train_timesteps - 1 and len(timesteps) == steps
        assert timesteps == sorted(set(timesteps), reverse=True)  # distinct, descending


def test_sampler_calls_once_per_step_with_both_branches(trained, problem):
    counting = _Counting(trained[0])
    _sample(counting, problem, 0, steps=7)
    assert counting.batches == [6] * 7


class _Stub(torch.nn.Module):
    """ε̂ = mean of the text embedding (per sample), broadcast: conditional and unconditional differ."""

    def __init__(self):
        super().__init__()
        self.dummy = torch.nn.Parameter(torch.zeros(()))

    def forward(self, inputs, t, encoder_hidden_states):
        value = encoder_hidden_states.mean(dim=(1, 2)).view(-1, 1, 1, 1)
        return type("Out", (), {"sample": value.expand(-1, 4, *inputs.shape[2:]) + 0 * inputs[:, :4]})()


def test_classifier_free_guidance_arithmetic(problem, trained):
    # a stub whose prediction is constant c (cond) or u (uncond): one DDIM step from x_T with
    # eps_hat gives the same result as a manual step with u + s (c - u)
    from benchmark.generators.sampler import make_scheduler

    stub = _Stub()
    for scale in (0.0, 1.0, 4.0):
        out = _sample(stub, problem, 5, steps=1, guidance_scale=scale, paste_known=False)
        scheduler = make_scheduler(TINY)
        scheduler.set_timesteps(1)
        start = torch.randn(3, 4, SIZE, SIZE, generator=torch.Generator().manual_seed(5))
        c = problem["text_embeddings"][:3].mean(dim=(1, 2)).view(-1, 1, 1, 1)
        u = problem["uncond_embedding"].mean()
        expected = scheduler.step((u + scale * (c - u)).expand_as(start), scheduler.timesteps[0], start).prev_sample
        assert torch.allclose(out, expected, atol=1e-6)
    # with the real network, scale 1 is the conditional prediction alone, in ONE pass of batch B;
    # it equals two-branch guidance whose unconditional branch is the conditional one
    denoiser = trained[0]
    counting = _Counting(denoiser)
    guided = _sample(counting, problem, 2, guidance_scale=1.0)
    assert counting.batches == [3] * 4
    same = _sample(denoiser, problem, 2, guidance_scale=3.0, uncond_embeddings=problem["text_embeddings"][:3])
    assert torch.allclose(guided, same, atol=1e-4)
    # scale 0 is the unconditional prediction alone, also one pass
    counting = _Counting(denoiser)
    unconditional = _sample(counting, problem, 2, guidance_scale=0.0)
    assert counting.batches == [3] * 4
    same = _sample(
        denoiser, problem, 2, guidance_scale=3.0, text_embeddings=problem["uncond_embedding"].expand(3, -1, -1)
    )
    assert torch.allclose(unconditional, same, atol=1e-4)
