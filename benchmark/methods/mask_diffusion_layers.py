"""Network layers shared by the pixel-space mask-diffusion segmenters (MedSegDiff, Diff-Trans).

Only layers live here; the noise schedule, loss, sampler and trainer are in
:mod:`benchmark.methods.mask_diffusion`, and each method's network in its own module.

Conventions: feature maps are float32 ``(B, C, H, W)``; diffusion timesteps are int64 ``(B,)``
in ``[0, T)``; a time embedding is float32 ``(B, D)``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def timestep_embedding(timesteps: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal embedding of integer timesteps (DDPM / Transformer style).

    Args:
        timesteps: int or float ``(B,)``.
        dim: even embedding width.

    Returns:
        float32 ``(B, dim)`` with values in [-1, 1].
    """
    half = dim // 2
    frequencies = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32) / max(1, half - 1))
    angles = timesteps.float()[:, None] * frequencies[None]
    return torch.cat([angles.sin(), angles.cos()], dim=1)


class TimeEmbedding(nn.Module):
    """Sinusoidal embedding followed by a two-layer MLP: ``(B,)`` -> ``(B, dim)``."""

    def __init__(self, dim: int):
        super().__init__()
        self.dim = dim
        self.mlp = nn.Sequential(nn.Linear(dim, dim * 2), nn.SiLU(), nn.Linear(dim * 2, dim))

    def forward(self, timesteps: torch.Tensor) -> torch.Tensor:
        return self.mlp(timestep_embedding(timesteps, self.dim))


def group_norm(channels: int) -> nn.GroupNorm:
    """GroupNorm with the largest group count in (8, 4, 2, 1) that divides ``channels``."""
    return nn.GroupNorm(next(g for g in (8, 4, 2, 1) if channels % g == 0), channels)


class ResBlock(nn.Module):
    """Pre-activation residual block; with ``time_dim`` the time embedding scales and shifts it.

    ``(B, in_channels, H, W)`` (+ ``(B, time_dim)``) -> ``(B, out_channels, H, W)``.
    """

    def __init__(self, in_channels: int, out_channels: int, time_dim: int | None = None):
        super().__init__()
        self.norm1, self.conv1 = group_norm(in_channels), nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.norm2, self.conv2 = group_norm(out_channels), nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.time = nn.Linear(time_dim, 2 * out_channels) if time_dim else None
        self.skip = nn.Conv2d(in_channels, out_channels, 1) if in_channels != out_channels else nn.Identity()

    def forward(self, x: torch.Tensor, time: torch.Tensor | None = None) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.norm2(h)
        if self.time is not None and time is not None:
            scale, shift = self.time(F.silu(time))[:, :, None, None].chunk(2, dim=1)
            h = h * (1 + scale) + shift
        return self.skip(x) + self.conv2(F.silu(h))


class ChannelLayerNorm(nn.Module):
    """LayerNorm over the channel axis at every pixel of ``(B, C, H, W)``, with affine weights."""

    def __init__(self, channels: int, eps: float = 1e-5):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(1, channels, 1, 1))
        self.bias = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        centred = x - x.mean(dim=1, keepdim=True)
        variance = centred.square().mean(dim=1, keepdim=True)  # several times faster than Tensor.var over dim 1 on CPU
        return centred * torch.rsqrt(variance + self.eps) * self.weight + self.bias


def _resize_spectrum(weight: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Bilinearly resample a (C, h, w, 2) spectral filter to (C, height, width, 2)."""
    if weight.shape[1:3] == (height, width):
        return weight
    resized = F.interpolate(weight.permute(0, 3, 1, 2), size=(height, width), mode="bilinear", align_corners=True)
    return resized.permute(0, 2, 3, 1)


class FFParser(nn.Module):
    """Feature Frequency Parser of MedSegDiff-V1 (Wu et al. 2022).

    ``m' = F^-1[A ⊙ F[m]]``: a learnable complex attentive map ``A`` (one value per channel and
    frequency) multiplies the 2-D FFT of the feature map; the inverse FFT returns to space. We
    use the real FFT (``rfft2``/``irfft2``), which is the same operation restricted to the
    Hermitian half-spectrum, so the output is real by construction. ``A`` starts at 1 (identity).
    A map whose size differs from the one the filter was built for gets a bilinearly resampled
    filter (e.g. the 32x32 smoke tests of a network built for 64x64).

    Args:
        channels: C.
        height, width: the spatial size of the feature maps it will usually see.
    Shapes:
        ``(B, C, H, W)`` -> ``(B, C, H, W)``, float32.
    """

    def __init__(self, channels: int, height: int, width: int):
        super().__init__()
        weight = torch.zeros(channels, height, width // 2 + 1, 2)
        weight[..., 0] = 1.0
        self.weight = nn.Parameter(weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[-2:]
        spectrum = torch.fft.rfft2(x.float(), norm="ortho")
        weight = torch.view_as_complex(_resize_spectrum(self.weight, height, width // 2 + 1).contiguous())
        return torch.fft.irfft2(spectrum * weight, s=(height, width), norm="ortho").to(x.dtype)


class LearnableGaussianSmoothing(nn.Module):
    """Depth-wise smoothing by a normalised Gaussian kernel with learnable mean and deviation.

    The smoothing of MedSegDiff-V2's Uncertain Spatial Attention (``f_anc * k_Gauss``). The
    kernel sums to one and borders are replicated, so a constant map stays constant.

    Args:
        kernel_size: odd kernel width.
        sigma: initial standard deviation in pixels (learnt through its logarithm).
    Shapes:
        ``(B, C, H, W)`` -> ``(B, C, H, W)``.
    """

    def __init__(self, kernel_size: int = 5, sigma: float = 1.0):
        super().__init__()
        if kernel_size % 2 != 1:
            raise ValueError(f"kernel_size must be odd, got {kernel_size}")
        self.kernel_size = kernel_size
        self.log_sigma = nn.Parameter(torch.tensor(math.log(sigma)))
        self.mean = nn.Parameter(torch.zeros(2))  # sub-pixel offset of the kernel centre (y, x)

    def kernel(self) -> torch.Tensor:
        """The current kernel, float32 ``(k, k)`` summing to 1."""
        radius = self.kernel_size // 2
        grid = torch.arange(-radius, radius + 1, dtype=torch.float32)
        mean = self.mean.clamp(-radius, radius)
        sigma = self.log_sigma.exp().clamp(min=0.1)
        weights_y = torch.exp(-0.5 * ((grid - mean[0]) / sigma) ** 2)
        weights_x = torch.exp(-0.5 * ((grid - mean[1]) / sigma) ** 2)
        kernel = weights_y[:, None] * weights_x[None, :]
        return kernel / kernel.sum()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        channels = x.shape[1]
        radius = self.kernel_size // 2
        weight = self.kernel().to(x.dtype)[None, None].expand(channels, 1, -1, -1)
        padded = F.pad(x, (radius, radius, radius, radius), mode="replicate")
        return F.conv2d(padded, weight, groups=channels)
