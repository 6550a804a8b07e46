"""The latent segmenter's diffusion process: noise schedule, eq. 10–12, single-step and DDIM inference.

Conventions (SDSeg's, used for both DiffAug and SDSeg):

- Forward process (eq. 10) z_t = sqrt(ᾱ_t) z_0 + sqrt(1 − ᾱ_t) ε on the *mask* latent z_0,
  with Latent Diffusion's "scaled_linear" betas 0.0015 → 0.0155 over T = 1000 steps.
- The network predicts ε; the clean latent follows in closed form (eq. 11)
  ẑ_0 = (z_t − sqrt(1 − ᾱ_t) ε̂) / sqrt(ᾱ_t).
- Single-step inference: z_{T−1} ~ N(0, I), ONE network call at t = T − 1, ẑ_0 by eq. 11.
- Iterative inference (Table 6, "w/o latent estimation"): deterministic DDIM (η = 0) from the same
  noise, N steps with "trailing" spacing (the first step is t = T − 1) and ᾱ = 1 after the last,
  so N = 1 is exactly the single-step estimate.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np
import torch


@dataclasses.dataclass(frozen=True)
class NoiseSchedule:
    """β_t schedule of the forward process.

    Attributes:
        num_train_timesteps: T.
        beta_schedule: "scaled_linear" (β_t = (linspace(sqrt β_start, sqrt β_end))²) or "linear".
        beta_start, beta_end: β_0 and β_{T−1}.
    """

    num_train_timesteps: int = 1000
    beta_schedule: str = "scaled_linear"
    beta_start: float = 0.0015
    beta_end: float = 0.0155

    def __post_init__(self):
        if self.num_train_timesteps < 1 or self.beta_schedule not in ("scaled_linear", "linear"):
            raise ValueError(
                f"need num_train_timesteps >= 1 and beta_schedule 'scaled_linear' or 'linear', "
                f"got {self.num_train_timesteps}, {self.beta_schedule!r}"
            )
        if not 0 < self.beta_start < self.beta_end < 1:
            raise ValueError(f"need 0 < beta_start < beta_end < 1, got {self.beta_start}, {self.beta_end}")

    def alphas_cumprod(self) -> torch.Tensor:
        """ᾱ_t for t = 0 .. T−1, float32 (T,), decreasing; equal to diffusers' DDIM/DDPM schedulers'."""
        steps = self.num_train_timesteps
        if self.beta_schedule == "scaled_linear":
            betas = torch.linspace(self.beta_start**0.5, self.beta_end**0.5, steps, dtype=torch.float32) ** 2
        else:
            betas = torch.linspace(self.beta_start, self.beta_end, steps, dtype=torch.float32)
        return torch.cumprod(1.0 - betas, dim=0)


def add_noise(clean: torch.Tensor, noise: torch.Tensor, alphas_cumprod_t: torch.Tensor) -> torch.Tensor:
    """Eq. 10: z_t from z_0 (B, C, h, w), ε (same shape) and ᾱ_t (B,)."""
    alpha = alphas_cumprod_t.to(clean.dtype).view(-1, 1, 1, 1)
    return alpha.sqrt() * clean + (1 - alpha).sqrt() * noise


def estimate_clean_latent(
    noisy: torch.Tensor, noise_pred: torch.Tensor, alphas_cumprod_t: torch.Tensor
) -> torch.Tensor:
    """Eq. 11: ẑ_0 = (z_t − sqrt(1 − ᾱ_t) ε̂) / sqrt(ᾱ_t); z_t, ε̂ (B, C, h, w), ᾱ_t (B,)."""
    alpha = alphas_cumprod_t.to(noisy.dtype).view(-1, 1, 1, 1)
    return (noisy - (1 - alpha).sqrt() * noise_pred) / alpha.sqrt()


def noise_from_output(
    output: torch.Tensor, noisy: torch.Tensor, alphas_cumprod_t: torch.Tensor, prediction_type: str
) -> torch.Tensor:
    """ε̂ from the UNet's raw output: itself ("epsilon") or ε̂ = sqrt(1 − ᾱ_t) z_t + sqrt(ᾱ_t) v̂ ("v_prediction").

    v-prediction (Salimans & Ho 2022; SD 2.x) is the same model with a t-dependent skip from z_t:
    sqrt(1 − ᾱ_t) z_t is the best linear guess of ε from z_t, and the UNet supplies the rest at
    unit scale. At t = T − 1, where single-step inference runs, ε ≈ z_t, and eq. 11 gives
    ẑ_0 = sqrt(ᾱ_t) z_t − sqrt(1 − ᾱ_t) v̂: the clean latent is read off the output directly
    instead of from a 1/sqrt(ᾱ_t) ≈ 38× amplified difference of two nearly equal tensors.
    """
    if prediction_type == "epsilon":
        return output
    if prediction_type != "v_prediction":
        raise ValueError(f"prediction_type must be 'epsilon' or 'v_prediction', got {prediction_type!r}")
    alpha = alphas_cumprod_t.to(noisy.dtype).view(-1, 1, 1, 1)
    return (1 - alpha).sqrt() * noisy + alpha.sqrt() * output


def soft_dice_loss(probabilities: torch.Tensor, targets: torch.Tensor, smooth: float = 1.0) -> torch.Tensor:
    """1 − (2|P∩G| + s) / (|P| + |G| + s) per image, averaged; both (B, H, W) in [0, 1]."""
    dims = tuple(range(1, probabilities.ndim))
    intersection = (probabilities * targets).sum(dim=dims)
    total = probabilities.sum(dim=dims) + targets.sum(dim=dims)
    return (1 - (2 * intersection + smooth) / (total + smooth)).mean()


def segmentation_loss(
    noise: torch.Tensor,
    noise_pred: torch.Tensor,
    clean: torch.Tensor,
    clean_pred: torch.Tensor,
    decoded_masks: torch.Tensor | None,
    target_masks: torch.Tensor | None,
    *,
    lambda_latent: float,
    lambda_dice: float,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Eq. 12: mean|ε − ε̂| + λ_latent · mean|z_0 − ẑ_0| + λ_dice · Dice(D(ẑ_0), M_gt).

    Args:
        noise, noise_pred: ε and ε̂, float (B, C, h, w).
        clean, clean_pred: z_0 and ẑ_0 (eq. 11), float (B, C, h, w).
        decoded_masks: D(ẑ_0) in [0, 1], (B, H, W), differentiable through the frozen decoder;
            None when ``lambda_dice`` is 0 (the decode is then skipped).
        target_masks: M_gt in {0, 1}, (B, H, W).
        lambda_latent, lambda_dice: weights >= 0.

    Returns:
        The scalar loss and its three terms as floats ``{"noise", "latent", "dice"}``.
    """
    noise_term = (noise - noise_pred).abs().mean()
    latent_term = (clean - clean_pred).abs().mean()
    loss = noise_term + lambda_latent * latent_term
    dice_term = torch.zeros((), device=loss.device)
    if lambda_dice > 0:
        dice_term = soft_dice_loss(decoded_masks.to(loss.dtype), target_masks.to(loss.device, loss.dtype))
        loss = loss + lambda_dice * dice_term
    return loss, {"noise": noise_term.item(), "latent": latent_term.item(), "dice": dice_term.item()}


def ddim_timesteps(num_train_timesteps: int, steps: int) -> list[int]:
    """Trailing DDIM timesteps, descending, first = T − 1 (diffusers' ``timestep_spacing="trailing"``)."""
    if not 1 <= steps <= num_train_timesteps:
        raise ValueError(f"steps must be in [1, {num_train_timesteps}], got {steps}")
    return [
        int(t) for t in np.round(np.arange(num_train_timesteps, 0, -num_train_timesteps / steps)).astype(np.int64) - 1
    ]


@torch.no_grad()
def sample_clean_latents(
    denoise: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    initial_noise: torch.Tensor,
    alphas_cumprod: torch.Tensor,
    steps: int = 1,
) -> torch.Tensor:
    """Mask latents ẑ_0 from pure noise by deterministic DDIM (η = 0); ``steps=1`` is the single-step estimate.

    Args:
        denoise: ``(z_t (B, C, h, w), t (B,) int64) -> ε̂``, called exactly ``steps`` times (the
            condition is bound by the caller, computed once).
        initial_noise: z_{T−1} ~ N(0, I), float (B, C, h, w).
        alphas_cumprod: ᾱ of the training schedule, (T,).
        steps: DDIM steps N in [1, T].

    Returns:
        ẑ_0, float (B, C, h, w) on ``initial_noise``'s device.
    """
    alphas = alphas_cumprod.to(initial_noise.device)
    timesteps = ddim_timesteps(len(alphas), steps)
    latents = initial_noise
    for i, t in enumerate(timesteps):
        t_batch = torch.full((len(latents),), t, dtype=torch.long, device=latents.device)
        noise_pred = denoise(latents, t_batch)
        clean = estimate_clean_latent(latents, noise_pred, alphas[t_batch])
        if i + 1 == len(timesteps):
            return clean  # ᾱ = 1 after the last step: the latent is the clean estimate
        alpha_prev = alphas[timesteps[i + 1]]
        latents = alpha_prev.sqrt() * clean + (1 - alpha_prev).sqrt() * noise_pred
    return latents
