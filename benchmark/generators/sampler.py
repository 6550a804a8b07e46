"""DDIM sampling of the inpainting denoiser with classifier-free guidance (paper §3.1 eq. 8, §4.4).

The paper samples with 50 steps at guidance scale 7.5; on CPU fewer steps (e.g. 20) and a smaller
scale are the caller's choice. diffusers' DDIM scheduler defaults to ``clip_sample=True``, which
clips latents to [-1, 1] and damages them; we build it with ``clip_sample=False``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from benchmark.generators.inpainting import LATENT_CHANNELS, InpaintingConfig, make_inputs
from benchmark.methods.supervised import module_device

#: DDIM timestep spacing: "trailing" starts every sampling run at the last training timestep T − 1,
#: where the pure noise it starts from is what training saw. diffusers' default "leading" starts
#: at T − T/steps + 1 (t = 801 at 5 steps, signal amplitude 0.19), i.e. it feeds pure noise in as
#: a partly clean latent (see Lin et al., "Common diffusion noise schedules and sample steps are
#: flawed", WACV 2024). The latent segmenter's DDIM uses the same spacing.
TIMESTEP_SPACING = "trailing"


def make_scheduler(config: InpaintingConfig):
    """A deterministic (η = 0) ``DDIMScheduler`` with the config's training noise schedule.

    ``timestep_spacing="trailing"`` (:data:`TIMESTEP_SPACING`: the first step is at t = T − 1 for
    any step count), ``set_alpha_to_one=False``, ε-prediction, and ``clip_sample=False`` (latents
    are not bounded to [-1, 1]).
    """
    from diffusers import DDIMScheduler

    # steps_offset only shifts "leading" timesteps (Stable Diffusion's 1); "trailing" ignores it
    return DDIMScheduler(
        num_train_timesteps=config.num_train_timesteps,
        beta_start=config.beta_start,
        beta_end=config.beta_end,
        beta_schedule=config.beta_schedule,
        clip_sample=False,
        set_alpha_to_one=False,
        steps_offset=1,
        timestep_spacing=TIMESTEP_SPACING,
        prediction_type="epsilon",
    )


@torch.no_grad()
def ddim_inpaint(
    denoiser,
    config: InpaintingConfig,
    *,
    masked_image_latents: torch.Tensor,
    mask_latents: torch.Tensor,
    known_latents: torch.Tensor,
    text_embeddings: torch.Tensor,
    uncond_embeddings: torch.Tensor,
    steps: int = 50,
    guidance_scale: float = 7.5,
    generator: torch.Generator | Sequence[torch.Generator],
    paste_known: bool = True,
) -> torch.Tensor:
    """Inpaint the masked region of a batch of latents by DDIM with classifier-free guidance.

    Starts from z_T ~ N(0, I) drawn with ``generator``. At every step the conditional and the
    unconditional (negative-prompt) predictions come from ONE forward pass of batch 2B, and are
    combined as ε̂ = ε̂_u + s · (ε̂_c − ε̂_u) (eq. 8); s = 1 gives the conditional prediction.
    With ``paste_known``, after each step the outside of the mask is replaced by ``known_latents``
    noised to the step's new timestep (with noise from ``generator``), and after the last step by
    ``known_latents`` itself, so the background is exactly the known (normal image's) latent.
    The same generator state gives the same output; with one generator per sample, sample i
    depends only on its inputs and its own generator, not on the rest of the batch.

    Args:
        denoiser: a UNet from :func:`~benchmark.generators.inpainting.build_denoiser` (any mode;
            it is run under ``no_grad``), or any callable with the same signature returning an
            object with ``.sample`` (B, 4, h, w).
        config: the denoiser's :class:`InpaintingConfig` (noise schedule).
        masked_image_latents: latents of the images with the mask region blanked, float (B, 4, h, w).
        mask_latents: M at latent resolution, float (B, 1, h, w) in {0, 1}, 1 = generate here.
        known_latents: latents of the normal images whose background is kept, float (B, 4, h, w).
        text_embeddings: prompt token states, float (B, L, D).
        uncond_embeddings: negative-prompt token states, float (1, L, D) or (B, L, D).
        steps: DDIM steps in [1, T]; the denoiser is called exactly ``steps`` times.
        guidance_scale: s >= 0 (paper 7.5; 1 = no guidance, 0 = unconditional).
        generator: CPU ``torch.Generator`` for the initial and paste noise, or a list of B of them
            (one per sample).
        paste_known: paste the noised known latent outside the mask after each step.

    Returns:
        float32 (B, 4, h, w) latents on the denoiser's device; decode with
        ``LatentAutoencoder.decode_images``.
    """
    if not isinstance(steps, int) or not 1 <= steps <= config.num_train_timesteps:
        raise ValueError(f"steps must be an int in [1, {config.num_train_timesteps}], got {steps!r}")
    if guidance_scale < 0:
        raise ValueError(f"guidance_scale must be >= 0, got {guidance_scale}")
    batch = known_latents.shape[0]
    shape = tuple(known_latents.shape)
    if tuple(masked_image_latents.shape) != shape or tuple(mask_latents.shape) != (batch, 1, *shape[2:]):
        raise ValueError(
            f"masked_image_latents {tuple(masked_image_latents.shape)} must be {shape} and mask_latents "
            f"{tuple(mask_latents.shape)} must be {(batch, 1, *shape[2:])}"
        )
    if text_embeddings.ndim != 3 or text_embeddings.shape[0] != batch:
        raise ValueError(f"text_embeddings must be ({batch}, L, D), got {tuple(text_embeddings.shape)}")
    if uncond_embeddings.shape[0] not in (1, batch) or uncond_embeddings.shape[1:] != text_embeddings.shape[1:]:
        raise ValueError(
            f"uncond_embeddings must be (1 or {batch}, {text_embeddings.shape[1]}, {text_embeddings.shape[2]}), "
            f"got {tuple(uncond_embeddings.shape)}"
        )
    device = module_device(denoiser, known_latents.device)
    scheduler = make_scheduler(config)
    scheduler.set_timesteps(steps)

    mask = mask_latents.float().to(device)
    inside = mask > 0.5
    known = known_latents.float().to(device)
    conditioning = make_inputs(torch.zeros_like(known), mask, masked_image_latents.float().to(device))[
        :, LATENT_CHANNELS:
    ]  # mask + masked-image channels
    # s = 1 is the conditional prediction and s = 0 the unconditional one: one pass of batch B, not 2B
    branches = 2 if guidance_scale not in (0.0, 1.0) else 1
    if branches == 2:
        conditioning = torch.cat([conditioning, conditioning])
        text = torch.cat([uncond_embeddings.float().expand(batch, -1, -1), text_embeddings.float()]).to(device)
    else:
        text = (
            (text_embeddings if guidance_scale == 1.0 else uncond_embeddings.expand(batch, -1, -1)).float().to(device)
        )
    latents = (_randn(shape, generator) * scheduler.init_noise_sigma).to(device)
    timesteps = scheduler.timesteps
    for i, t in enumerate(timesteps):
        model_input = scheduler.scale_model_input(torch.cat([latents] * branches), t)
        inputs = torch.cat([model_input, conditioning], dim=1)
        prediction = denoiser(inputs, t.expand(branches * batch).to(device), encoder_hidden_states=text).sample.float()
        if branches == 2:
            uncond, cond = prediction.chunk(2)
            guided = uncond + guidance_scale * (cond - uncond)
        else:
            guided = prediction
        latents = scheduler.step(guided, t, latents).prev_sample
        if paste_known:
            if i + 1 < len(timesteps):
                noise = _randn(shape, generator).to(device)
                background = scheduler.add_noise(known, noise, timesteps[i + 1 : i + 2].expand(batch))
            else:
                background = known
            latents = torch.where(inside, latents, background)
    return latents


def _randn(shape: tuple[int, ...], generator: torch.Generator | Sequence[torch.Generator]) -> torch.Tensor:
    """Standard normal noise of ``shape``: from one generator, or row i from ``generator[i]``."""
    if isinstance(generator, torch.Generator):
        return torch.randn(shape, generator=generator)
    if len(generator) != shape[0]:
        raise ValueError(f"got {len(generator)} generators for a batch of {shape[0]}; pass one per sample")
    return torch.stack([torch.randn(shape[1:], generator=g) for g in generator])
