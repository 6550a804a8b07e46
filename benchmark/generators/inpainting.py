"""DiffAug's generator core (paper §3.1, eqs. 2–7): a text- and mask-conditioned latent inpainting UNet.

The denoiser ε_θ(z_t, t, e_text, M, z_n) is a diffusers ``UNet2DConditionModel`` in Stable
Diffusion's inpainting layout: its 9 input channels are the noisy latent (4), the mask at latent
resolution (1) and the latent of the image with the mask region blanked (4), see
:func:`make_inputs`; the text enters through cross-attention. The paper fine-tunes SDXL-inpainting
at 256² (32×32 latents); on CPU at 64² (16×16 latents) we train a small one from scratch.

Everything the frozen autoencoder and text encoder produce is computed ONCE before training
(:func:`train_inpainting` takes tensors), so a step costs one UNet forward + backward only.
Sampling (DDIM + classifier-free guidance, eq. 8) lives in :mod:`benchmark.generators.sampler`.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from benchmark.config import from_mapping, to_mapping
from benchmark.generators.configs import InpaintingConfig
from benchmark.utils.io import atomic_dir, atomic_path, read_json, write_json
from benchmark.utils.schedules import warmup_cosine
from benchmark.utils.seeding import derive_seed

METADATA_FILE = "inpainting.json"
LATENT_CHANNELS = 4
IN_CHANNELS = 2 * LATENT_CHANNELS + 1  # noisy latent, mask, masked-image latent


def build_denoiser(config: InpaintingConfig, cross_attention_dim: int, latent_size: int = 16):
    """A freshly initialised ``UNet2DConditionModel`` for 9-channel inpainting input.

    Args:
        config: see :class:`InpaintingConfig`.
        cross_attention_dim: width D of the text token states (``TextEncoder.dim``; 384 for MiniLM).
        latent_size: side h = w of the latents (recorded as ``sample_size``; any size divisible by
            2**(levels - 1) works at run time).

    Returns:
        The UNet (float32, train mode): ``forward(inputs (B, 9, h, w), t (B,) int64 in [0, T),
        encoder_hidden_states (B, L, D)).sample`` is the predicted noise ε̂, float32 (B, 4, h, w).
        Initialisation draws from torch's global RNG; :func:`train_inpainting` seeds it in a fork.
    """
    from diffusers import UNet2DConditionModel  # lazy: importing diffusers costs seconds

    widths = tuple(config.block_out_channels)
    levels = range(len(widths))
    cross = [level >= config.cross_attention_from_level for level in levels]
    common = math.gcd(*widths)
    return UNet2DConditionModel(
        sample_size=latent_size,
        in_channels=IN_CHANNELS,
        out_channels=LATENT_CHANNELS,
        down_block_types=tuple("CrossAttnDownBlock2D" if c else "DownBlock2D" for c in cross),
        up_block_types=tuple("CrossAttnUpBlock2D" if c else "UpBlock2D" for c in reversed(cross)),
        mid_block_type="UNetMidBlock2DCrossAttn",
        block_out_channels=widths,
        layers_per_block=config.layers_per_block,
        cross_attention_dim=int(cross_attention_dim),
        # diffusers' (legacy) ``attention_head_dim`` argument is the number of HEADS per level.
        attention_head_dim=tuple(w // config.attention_head_dim for w in widths),
        # GroupNorm needs a group count dividing every width; 32 is diffusers' (and SD's) choice.
        norm_num_groups=max(d for d in range(1, 33) if common % d == 0),
    )


def alphas_cumprod(config: InpaintingConfig) -> torch.Tensor:
    """ᾱ_t = ∏_{s<=t} (1 - β_s) for t = 0 .. T-1, float32 (T,) in (0, 1), decreasing.

    Identical to the ``alphas_cumprod`` of diffusers' DDPM / DDIM schedulers built from the config.
    """
    if config.beta_schedule == "scaled_linear":
        betas = (
            torch.linspace(
                config.beta_start**0.5, config.beta_end**0.5, config.num_train_timesteps, dtype=torch.float32
            )
            ** 2
        )
    else:
        betas = torch.linspace(config.beta_start, config.beta_end, config.num_train_timesteps, dtype=torch.float32)
    return torch.cumprod(1.0 - betas, dim=0)


def make_inputs(noisy: torch.Tensor, mask_latent_res: torch.Tensor, masked_image_latents: torch.Tensor) -> torch.Tensor:
    """Concatenate the denoiser's input along channels, in Stable Diffusion inpainting's order.

    Args:
        noisy: z_t, float (B, 4, h, w).
        mask_latent_res: M at latent resolution, float (B, 1, h, w) in {0, 1} (1 = inpaint here).
        masked_image_latents: latent of the image with the mask region blanked, float (B, 4, h, w).

    Returns:
        float (B, 9, h, w): channels 0–3 noisy latent, 4 mask, 5–8 masked-image latent.
    """
    if not noisy.shape[0] == mask_latent_res.shape[0] == masked_image_latents.shape[0]:
        raise ValueError(
            f"batch sizes differ: noisy {tuple(noisy.shape)}, mask {tuple(mask_latent_res.shape)}, "
            f"masked image {tuple(masked_image_latents.shape)}"
        )
    if mask_latent_res.shape[1] != 1:
        raise ValueError(f"mask_latent_res must have 1 channel, got shape {tuple(mask_latent_res.shape)}")
    return torch.cat([noisy, mask_latent_res.to(noisy.dtype), masked_image_latents.to(noisy.dtype)], dim=1)


def downsample_masks(masks: torch.Tensor, latent_size: int) -> torch.Tensor:
    """Pixel masks {0,1} (N, H, W) (tensor or array) -> float32 (N, 1, h, w) in {0, 1} at latent size.

    A latent cell is 1 when any pixel it covers is lesion (max pooling), so the inpainted region
    never leaves lesion pixels outside the mask.
    """
    masks = torch.as_tensor(masks).float()
    if masks.ndim != 3:
        raise ValueError(f"masks must be (N, H, W), got shape {tuple(masks.shape)}")
    return F.adaptive_max_pool2d(masks.unsqueeze(1), latent_size)


def generation_loss(
    noise: torch.Tensor,
    noise_pred: torch.Tensor,
    noisy: torch.Tensor,
    alphas_cumprod_t: torch.Tensor,
    mask: torch.Tensor,
    normal_latents: torch.Tensor,
    lambda_preserve: float,
    *,
    normalizers: tuple[float, float] | None = None,
    return_terms: bool = False,
    snr_gamma: float | None = None,
):
    """DiffAug's training objective (paper eq. 7), in the form that trains the network.

    Eq. 7 reads ``|M ⊙ (ε − ε̂)|² + λ |(1 − M) ⊙ (z_t − sqrt(ᾱ_t) z_n)|²``. Taken literally its
    second term does not depend on the network (z_t and z_n are data), so it would add a constant
    and no gradient. We implement its evident intent — keep the outside of the mask consistent
    with the normal image's latent z_n — through the network's clean-latent estimate

        ẑ_0 = (z_t − sqrt(1 − ᾱ_t) ε̂) / sqrt(ᾱ_t)          (eq. 3 solved for z_0)

        L = mean_{M}(|ε − ε̂|²) + λ_preserve · mean_{1−M}(|ẑ_0 − z_n|²)

    where ``mean_R`` averages over the elements (all 4 channels) inside region R of the whole
    batch; an empty region contributes 0 (its count is clamped to 1). For real data without a
    lesion-free twin, z_n = z_0 and the second term is an SNR-weighted noise loss outside the mask
    (weight (1 − ᾱ_t)/ᾱ_t = 1/SNR_t: mean 20 over t and 213 at t = T − 1 under SD's schedule), so
    high-t batches are dominated by the outside, which sampling overwrites anyway. ``snr_gamma``
    bounds it (min-SNR-γ weighting of a clean-latent loss, Hang et al. 2023):

        L = mean_{M}(|ε − ε̂|²) + λ_preserve · mean_{1−M}(min(SNR_t, γ) · |ẑ_0 − z_n|²)

    whose ε-space weight min(SNR_t, γ) / SNR_t = min(1, γ / SNR_t) never exceeds the noise term's.
    Decided on validation (``benchmarks/generator_choices.py``, synth_polyp, 400 steps, 192 jobs on
    validation backgrounds; ``results/benchmarks/generator_choices_synth_polyp.json``): γ = 5 left
    the inside ε-MSE unchanged (0.104 vs 0.100) but raised the outside clean-latent error fivefold
    (4.98 vs 0.98) at the same acceptance (8.9 % both), so the default stays unweighted (γ = None).

    Args:
        noise: ε, float (B, 4, h, w) ~ N(0, 1).
        noise_pred: ε̂, float (B, 4, h, w), the network's output.
        noisy: z_t = sqrt(ᾱ_t) z_0 + sqrt(1 − ᾱ_t) ε, float (B, 4, h, w).
        alphas_cumprod_t: ᾱ_t per sample, float (B,) in (0, 1].
        mask: M, float (B, 1, h, w) or (B, 4, h, w) in {0, 1}, 1 = lesion region.
        normal_latents: z_n, float (B, 4, h, w).
        lambda_preserve: λ_preserve >= 0.
        normalizers: (inside, outside) element counts to divide the two sums by instead of this
            batch's own counts; the trainer passes the GLOBAL batch's counts / n_processes, so
            that the DDP average of the per-process losses is exactly the global-batch loss.
        return_terms: also return the two terms (detached floats) as a dict.
        snr_gamma: γ of the min-SNR bound (None: the unweighted clean-latent error).

    Returns:
        The scalar loss (float32, differentiable), or ``(loss, {"noise": ..., "preserve": ...})``.
    """
    if not noise.shape == noise_pred.shape == noisy.shape == normal_latents.shape:
        raise ValueError(
            f"shapes differ: noise {tuple(noise.shape)}, noise_pred {tuple(noise_pred.shape)}, "
            f"noisy {tuple(noisy.shape)}, normal_latents {tuple(normal_latents.shape)}"
        )
    inside = mask.to(noise_pred.dtype).expand_as(noise_pred)
    outside = 1.0 - inside
    noise_pred = noise_pred.float()
    inside_count, outside_count = (
        (inside.sum(), outside.sum()) if normalizers is None else map(torch.tensor, normalizers)
    )
    noise_term = (inside * (noise.float() - noise_pred).square()).sum() / inside_count.clamp(min=1.0)
    alpha = alphas_cumprod_t.float().view(-1, 1, 1, 1)
    clean_estimate = (noisy.float() - (1.0 - alpha).sqrt() * noise_pred) / alpha.sqrt()
    error = (clean_estimate - normal_latents.float()).square()
    if snr_gamma is not None:
        error = error * (alpha / (1.0 - alpha)).clamp(max=snr_gamma)
    preserve_term = (outside * error).sum() / outside_count.clamp(min=1.0)
    loss = noise_term + lambda_preserve * preserve_term
    if return_terms:
        return loss, {"noise": noise_term.item(), "preserve": preserve_term.item()}
    return loss


def _check_inputs(latents, normal_latents, mask_latents, masked_image_latents, text_embeddings, uncond_embedding):
    n, c, h, w = latents.shape
    expected = {
        "normal_latents": (normal_latents, (n, c, h, w)),
        "mask_latents": (mask_latents, (n, 1, h, w)),
        "masked_image_latents": (masked_image_latents, (n, c, h, w)),
    }
    for name, (tensor, shape) in expected.items():
        if tuple(tensor.shape) != shape:
            raise ValueError(f"{name} must have shape {shape} (matching latents), got {tuple(tensor.shape)}")
    if c != LATENT_CHANNELS:
        raise ValueError(f"latents must have {LATENT_CHANNELS} channels, got shape {tuple(latents.shape)}")
    if not torch.isin(mask_latents, torch.tensor([0.0, 1.0], dtype=mask_latents.dtype)).all():
        raise ValueError("mask_latents must hold only 0 and 1")
    if text_embeddings.ndim != 3 or text_embeddings.shape[0] != n:
        raise ValueError(f"text_embeddings must be (N={n}, L, D), got {tuple(text_embeddings.shape)}")
    if tuple(uncond_embedding.shape) != (1, *text_embeddings.shape[1:]):
        raise ValueError(
            f"uncond_embedding must be (1, {text_embeddings.shape[1]}, {text_embeddings.shape[2]}), "
            f"got {tuple(uncond_embedding.shape)}"
        )


def train_inpainting(
    latents: torch.Tensor,
    normal_latents: torch.Tensor,
    mask_latents: torch.Tensor,
    masked_image_latents: torch.Tensor,
    text_embeddings: torch.Tensor,
    uncond_embedding: torch.Tensor,
    config: InpaintingConfig,
    *,
    seed: int,
    checkpoint_dir: str | Path,
    progress: bool = True,
):
    """Train the inpainting denoiser from precomputed latents and text embeddings.

    Each step draws ``batch_size`` samples (with replacement), timesteps t ~ U{0..T-1} and noise
    ε ~ N(0, I) from one seeded ``torch.Generator``; forms z_t (eq. 3) from the lesion latents;
    replaces the text of a ``text_dropout`` share of the samples by ``uncond_embedding``; and
    minimises :func:`generation_loss`. AdamW, linear warm-up, cosine decay to zero, gradient-norm
    clipping; model and optimiser go through ``accelerate.Accelerator().prepare`` (one CPU process
    by default). A checkpoint (weights, optimiser, scheduler, generator, step, log, config, seed)
    is written atomically every ``checkpoint_every`` steps and at the end; rerunning with the same
    arguments resumes from it and ends bit-identical to an uninterrupted run on CPU. Under
    ``accelerate launch`` with n processes, ``batch_size`` is the global batch: every process
    draws the same batch and trains on its 1/n slice, gradients are averaged by DDP.

    Args:
        latents: z_0 of the lesion images, float32 (N, 4, h, w) (scaled autoencoder latents, ~unit std).
        normal_latents: z_n of their lesion-free twins, float32 (N, 4, h, w); for real data without
            twins pass ``latents`` itself.
        mask_latents: M at latent resolution, float32 (N, 1, h, w) in {0, 1} (:func:`downsample_masks`).
        masked_image_latents: latents of the images with the mask region blanked, float32 (N, 4, h, w).
        text_embeddings: per-sample prompt token states, float32 (N, L, D).
        uncond_embedding: token states of the negative prompt, float32 (1, L, D).
        config: see :class:`InpaintingConfig`.
        seed: seeds initialisation, batches, timesteps, noise and text dropout.
        checkpoint_dir: holds ``checkpoint.pt`` and ``train_log.csv``.
        progress: show a tqdm bar.

    Returns:
        ``(denoiser, log)``: the trained ``UNet2DConditionModel`` (eval mode, CPU or the
        accelerator's device) and the per-step log (step, loss, noise, preserve, learning_rate).

    Raises:
        ValueError: inconsistent input shapes, or a checkpoint written for another config / seed.
        FloatingPointError: the loss became NaN or infinite.
    """
    from accelerate import Accelerator

    _check_inputs(latents, normal_latents, mask_latents, masked_image_latents, text_embeddings, uncond_embedding)
    checkpoint_dir = Path(checkpoint_dir)
    checkpoint_path = checkpoint_dir / "checkpoint.pt"
    accelerator = Accelerator()
    with torch.random.fork_rng(devices=[]):  # seeded initialisation without leaking into the global RNG
        torch.manual_seed(derive_seed(seed, "inpainting", "init"))
        denoiser = build_denoiser(config, text_embeddings.shape[-1], latents.shape[-1])
    optimizer = torch.optim.AdamW(denoiser.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    scheduler = warmup_cosine(optimizer, config.warmup_steps, config.steps)
    # The scheduler stays unprepared: accelerate would step it once per process per step, but
    # batch_size is already the global batch, so the schedule counts our loop's steps.
    model, optimizer = accelerator.prepare(denoiser, optimizer)
    rank, world = accelerator.process_index, accelerator.num_processes
    if config.batch_size % world:
        raise ValueError(
            f"batch_size {config.batch_size} is the global batch and must be divisible by the "
            f"{world} processes of `accelerate launch`; change inpainting batch_size or --num_processes"
        )
    # Every rank draws the same GLOBAL batch from the same stream and keeps its slice, so n
    # processes take the same optimisation path as one process (up to the masked-mean weighting).
    generator = torch.Generator().manual_seed(seed)
    mine = slice(rank * config.batch_size // world, (rank + 1) * config.batch_size // world)
    history, start = [], 0
    if checkpoint_path.is_file():
        state = torch.load(checkpoint_path, map_location="cpu", weights_only=False)
        if state["config"] != to_mapping(config) or state["seed"] != seed:
            raise ValueError(f"{checkpoint_path} was written for another config or seed; delete it to start over")
        accelerator.unwrap_model(model).load_state_dict(state["denoiser"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        history, start = state["history"], state["step"]
        generator.set_state(state["generator"])

    device = accelerator.device
    data = [t.float() for t in (latents, normal_latents, mask_latents, masked_image_latents, text_embeddings)]
    uncond = uncond_embedding.float()
    alphas = alphas_cumprod(config)
    n = len(latents)
    bar = tqdm(range(start, config.steps), desc="inpainting", disable=not progress, initial=start, total=config.steps)
    for step in bar:
        model.train()
        index = torch.randint(n, (config.batch_size,), generator=generator)
        z0, zn, mask, masked, text = (t[index] for t in data)
        timesteps = torch.randint(config.num_train_timesteps, (config.batch_size,), generator=generator)
        noise = torch.randn(z0.shape, generator=generator)
        drop = torch.rand(config.batch_size, generator=generator) < config.text_dropout
        text = torch.where(drop.view(-1, 1, 1), uncond, text)
        inside = mask.sum().item() * LATENT_CHANNELS  # element counts of the GLOBAL batch, shared by every process
        normalizers = (inside / world, (mask.numel() * LATENT_CHANNELS - inside) / world)
        z0, zn, mask, masked, text, timesteps, noise = (t[mine] for t in (z0, zn, mask, masked, text, timesteps, noise))
        alpha = alphas[timesteps]
        a = alpha.view(-1, 1, 1, 1)
        noisy = a.sqrt() * z0 + (1 - a).sqrt() * noise
        inputs = make_inputs(noisy, mask, masked)
        noise_pred = model(inputs.to(device), timesteps.to(device), encoder_hidden_states=text.to(device)).sample
        loss, terms = generation_loss(
            noise.to(device),
            noise_pred,
            noisy.to(device),
            alpha.to(device),
            mask.to(device),
            zn.to(device),
            config.lambda_preserve,
            normalizers=normalizers,
            return_terms=True,
            snr_gamma=config.preserve_snr_gamma,
        )
        if not torch.isfinite(loss):
            raise FloatingPointError(
                f"inpainting loss became {loss.item()} at step {step}; lower learning_rate "
                f"({config.learning_rate}) or lambda_preserve ({config.lambda_preserve})"
            )
        optimizer.zero_grad(set_to_none=True)
        accelerator.backward(loss)
        if config.max_grad_norm > 0:
            accelerator.clip_grad_norm_(model.parameters(), config.max_grad_norm)
        optimizer.step()
        scheduler.step()
        history.append({"step": step, "loss": loss.item(), **terms, "learning_rate": scheduler.get_last_lr()[0]})
        bar.set_postfix(loss=f"{loss.item():.4f}")
        if (step + 1) % config.checkpoint_every == 0 or step + 1 == config.steps:
            if accelerator.is_main_process:
                state = {
                    "step": step + 1,
                    "denoiser": accelerator.unwrap_model(model).state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(),
                    "generator": generator.get_state(),
                    "history": history,
                    "config": to_mapping(config),
                    "seed": seed,
                }
                with atomic_path(checkpoint_path, suffix=".pt") as tmp:
                    torch.save(state, tmp)
            accelerator.wait_for_everyone()

    denoiser = accelerator.unwrap_model(model).eval()
    log = pd.DataFrame(history, columns=["step", "loss", "noise", "preserve", "learning_rate"])
    if accelerator.is_main_process:
        with atomic_path(checkpoint_dir / "train_log.csv", suffix=".csv") as tmp:
            log.to_csv(tmp, index=False)
    return denoiser, log


def save_denoiser(denoiser, config: InpaintingConfig, directory: str | Path) -> None:
    """Write ``unet/`` (diffusers ``save_pretrained``) and ``inpainting.json`` (the config), atomically."""
    with atomic_dir(directory) as tmp:
        denoiser.save_pretrained(tmp / "unet")
        write_json(tmp / METADATA_FILE, {"config": to_mapping(config)})


def load_denoiser(directory: str | Path):
    """Inverse of :func:`save_denoiser`: ``(denoiser in eval mode, config)``; outputs equal the saved model's."""
    from diffusers import UNet2DConditionModel

    directory = Path(directory)
    metadata = read_json(directory / METADATA_FILE)
    config = from_mapping(
        InpaintingConfig, metadata["config"], where="inpainting", source=str(directory / METADATA_FILE)
    )
    denoiser = UNet2DConditionModel.from_pretrained(directory / "unet", local_files_only=True)
    return denoiser.eval(), config
