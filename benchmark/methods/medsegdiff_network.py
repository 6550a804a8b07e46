"""Networks of MedSegDiff-V1 (Wu et al. 2022, arXiv 2211.00611) and -V2 (Wu et al. 2023, arXiv 2301.11798).

Two branches, both convolutional U-Nets on ``(B, C, H, W)`` maps:

- :class:`ConditionUNet` sees the image once per image (not per diffusion step) and returns its
  encoder features ``f_c^l`` (one per level), its decoder features, its deepest embedding
  ``c^0`` and an anchor segmentation (logits ``(B, 1, H, W)``, supervised by the auxiliary loss).
- :class:`MedSegDiffNetwork` is the denoiser ``eps_theta(x_t, I, t)``: a U-Net on the noisy
  mask whose encoder level ``l`` passes its features through the FF-Parser and then fuses
  ``f_c^l`` by dynamic conditional encoding; V2 adds the anchor condition (U-SA on the first
  level) and the semantic condition (SS-Former between the deepest embeddings).

Interpretations where the papers leave room (all configurable through the method config):

- Both branches may start with a pixel-unshuffle stem (``stem_stride``), i.e. the U-Nets run
  at ``H / stem_stride``; the papers run at full resolution (set ``stem_stride: 1``).
- V1 applies dynamic conditional encoding to some encoder stages of a deeper U-Net; with
  three levels we apply it at every encoder level. We place the FF-Parser on the noisy-mask
  path just before each fusion; the deepest embeddings are summed (``E^I + E^x``).
- U-SA (V2): ``f_anc = Max(f_c^-1 * k_Gauss, f_c^-1)``;
  ``f_d^0' = Sigmoid(f_anc ⊙ C_1x1(f_d^0)) + f_d^0``. We take ``f_c^-1`` as the condition
  model's anchor probability (one channel, broadcast over the denoiser channels).
- SS-Former (V2): attention whose queries come from the noise embedding and keys/values from
  the condition embedding, computed between frequency tokens (real FFT of the embeddings); the
  attended spectrum is multiplied by the NBP-Filter, a complex band-pass gain produced by an
  MLP of the normalised frequency coordinates, then returned to space by the inverse FFT.
  We could not settle from the paper whether its blocks also attend condition->noise; ours
  stack noise->condition blocks only (``ss_former_depth``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from benchmark.methods.mask_diffusion_layers import (
    ChannelLayerNorm,
    FFParser,
    LearnableGaussianSmoothing,
    ResBlock,
    TimeEmbedding,
)


def _stem(in_channels: int, out_channels: int, stride: int) -> nn.Module:
    return nn.Sequential(
        nn.PixelUnshuffle(stride), nn.Conv2d(in_channels * stride * stride, out_channels, 3, padding=1)
    )


def _head(in_channels: int, stride: int) -> nn.Module:
    return nn.Sequential(
        nn.GroupNorm(1, in_channels),
        nn.SiLU(),
        nn.Conv2d(in_channels, stride * stride, 3, padding=1),
        nn.PixelShuffle(stride),
    )


class ConditionUNet(nn.Module):
    """Condition model: image ``(B, 3, H, W)`` in [-1, 1] -> features, embedding, anchor logits.

    Returns a dict with ``features`` (encoder maps, list of ``(B, channels[l], H / (s 2^l),
    W / (s 2^l))``), ``decoded`` (decoder maps of the same shapes, the deepest being the
    embedding), ``embedding`` (the deepest map, ``(B, channels[-1], ...)``) and
    ``anchor_logits`` ``(B, 1, H, W)``. H and W must be divisible by
    ``stem_stride * 2 ** (levels - 1)``.
    """

    def __init__(self, channels: tuple[int, ...], stem_stride: int):
        super().__init__()
        self.stem = _stem(3, channels[0], stem_stride)
        self.encoder = nn.ModuleList(
            ResBlock(c_in, c_out) for c_in, c_out in zip((channels[0], *channels[:-1]), channels)
        )
        self.down = nn.ModuleList(nn.Conv2d(c, c, 3, stride=2, padding=1) for c in channels[:-1])
        self.middle = ResBlock(channels[-1], channels[-1])
        self.up = nn.ModuleList(
            nn.ConvTranspose2d(c_deep, c, 2, stride=2) for c, c_deep in zip(channels[:-1], channels[1:])
        )
        self.decoder = nn.ModuleList(ResBlock(2 * c, c) for c in channels[:-1])
        self.head = _head(channels[0], stem_stride)

    def forward(self, images: torch.Tensor) -> dict:
        h = self.stem(images)
        features = []
        for level, block in enumerate(self.encoder):
            h = block(h)
            features.append(h)
            if level < len(self.down):
                h = self.down[level](h)
        embedding = self.middle(h)
        h, decoded = embedding, [embedding]
        for level in reversed(range(len(self.up))):
            h = self.decoder[level](torch.cat([self.up[level](h), features[level]], dim=1))
            decoded.insert(0, h)
        return {"features": features, "decoded": decoded, "embedding": embedding, "anchor_logits": self.head(h)}


class DynamicConditionalEncoding(nn.Module):
    """V1's dynamic conditional encoding: ``m_x + (LN(m_I) ⊙ LN(m_x)) ⊙ m_I``, ``m_I`` projected to m_x's width.

    ``m_x``: ``(B, C, h, w)`` noisy-mask features; ``m_I``: ``(B, C_I, h, w)`` image features.
    """

    def __init__(self, channels: int, condition_channels: int):
        super().__init__()
        self.project = nn.Conv2d(condition_channels, channels, 1)
        self.norm_condition, self.norm_mask = ChannelLayerNorm(channels), ChannelLayerNorm(channels)

    def forward(self, mask_features: torch.Tensor, condition_features: torch.Tensor) -> torch.Tensor:
        condition = self.project(condition_features)
        return mask_features + self.norm_condition(condition) * self.norm_mask(mask_features) * condition


class UncertainSpatialAttention(nn.Module):
    """V2 anchor condition: ``f + Sigmoid(Max(G * a, a) ⊙ C_1x1(f))`` with ``G`` a learnable Gaussian.

    ``features``: ``(B, C, h, w)``; ``anchor_logits``: ``(B, 1, H, W)`` (resized to h x w).
    """

    def __init__(self, channels: int, kernel_size: int = 5, sigma: float = 1.0):
        super().__init__()
        self.smooth = LearnableGaussianSmoothing(kernel_size, sigma)
        self.project = nn.Conv2d(channels, channels, 1)

    def forward(self, features: torch.Tensor, anchor_logits: torch.Tensor) -> torch.Tensor:
        anchor = torch.sigmoid(F.adaptive_avg_pool2d(anchor_logits, features.shape[-2:]))
        anchor = torch.maximum(self.smooth(anchor), anchor)
        return torch.sigmoid(anchor * self.project(features)) + features


class NeuralBandPassFilter(nn.Module):
    """NBP-Filter: complex gain ``(C, h, w // 2 + 1)`` from an MLP of normalised frequencies; starts at 1."""

    def __init__(self, channels: int, hidden: int = 32):
        super().__init__()
        self.channels = channels
        self.mlp = nn.Sequential(nn.Linear(2, hidden), nn.SiLU(), nn.Linear(hidden, 2 * channels))
        nn.init.zeros_(self.mlp[-1].weight)
        with torch.no_grad():
            self.mlp[-1].bias.copy_(torch.stack([torch.ones(channels), torch.zeros(channels)], dim=1).flatten())

    def forward(self, height: int, width: int) -> torch.Tensor:
        fy, fx = torch.fft.fftfreq(height) * 2, torch.fft.rfftfreq(width) * 2  # in [-1, 1]
        coordinates = torch.stack(torch.meshgrid(fy, fx, indexing="ij"), dim=-1)
        gain = self.mlp(coordinates).view(height, width // 2 + 1, self.channels, 2).permute(2, 0, 1, 3)
        return torch.view_as_complex(gain.contiguous())


class SpectrumSpaceAttention(nn.Module):
    """One SS-Former block: frequency-token cross-attention (noise -> condition), NBP-Filter, FFN.

    ``noise``, ``condition``: ``(B, C, h, w)`` -> ``(B, C, h, w)``.
    """

    def __init__(self, channels: int, heads: int = 4):
        super().__init__()
        if channels % heads:
            raise ValueError(f"SS-Former width {channels} is not divisible by its {heads} heads")
        self.heads = heads
        self.norm_noise, self.norm_condition = ChannelLayerNorm(channels), ChannelLayerNorm(channels)
        self.query, self.key, self.value = (nn.Conv2d(channels, channels, 1) for _ in range(3))
        self.band_pass = NeuralBandPassFilter(channels)
        self.out = nn.Conv2d(channels, channels, 1)
        self.feed_forward = nn.Sequential(
            ChannelLayerNorm(channels),
            nn.Conv2d(channels, 2 * channels, 1),
            nn.GELU(),
            nn.Conv2d(2 * channels, channels, 1),
        )

    def _tokens(self, spectrum: torch.Tensor) -> torch.Tensor:
        """complex (B, C, h, f) -> real (B, heads, h*f, 2 C / heads)."""
        batch, channels = spectrum.shape[:2]
        real = torch.view_as_real(spectrum).reshape(batch, self.heads, channels // self.heads, -1, 2)
        return real.permute(0, 1, 3, 2, 4).reshape(batch, self.heads, real.shape[3], -1)

    def forward(self, noise: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        batch, channels, height, width = noise.shape
        normed_condition = self.norm_condition(condition)
        spectra = [
            torch.fft.rfft2(x, norm="ortho")
            for x in (self.query(self.norm_noise(noise)), self.key(normed_condition), self.value(normed_condition))
        ]
        query, key, value = (self._tokens(s) for s in spectra)
        # a real dot product of [Re, Im] features is Re(q · conj(k)): the spectral correlation
        attended = F.scaled_dot_product_attention(query, key, value)  # (B, heads, tokens, 2 C / heads)
        frequencies = spectra[0].shape[-1]
        attended = attended.view(batch, self.heads, height, frequencies, channels // self.heads, 2)
        attended = torch.view_as_complex(
            attended.permute(0, 1, 4, 2, 3, 5).reshape(batch, channels, height, frequencies, 2).contiguous()
        )
        attended = attended * self.band_pass(height, width)
        noise = noise + self.out(torch.fft.irfft2(attended, s=(height, width), norm="ortho"))
        return noise + self.feed_forward(noise)


class MedSegDiffNetwork(nn.Module):
    """Condition model + denoiser; the :class:`~benchmark.methods.mask_diffusion.MaskDenoiser` protocol.

    Args:
        condition_channels: widths of the condition U-Net levels.
        denoiser_channels: widths of the denoiser levels (same count as ``condition_channels``).
        stem_stride: pixel-unshuffle factor of both stems (1 = full resolution, as the papers).
        image_size: the side the FF-Parser filters are built for (others are resampled).
        anchor_attention: V2's U-SA on the first denoiser level.
        ss_former_depth: V2's SS-Former blocks between the deepest embeddings (0 = V1's sum).
        ss_former_heads: attention heads of each SS-Former block.
    """

    def __init__(
        self,
        condition_channels: tuple[int, ...],
        denoiser_channels: tuple[int, ...],
        *,
        stem_stride: int = 2,
        image_size: int = 64,
        anchor_attention: bool = False,
        ss_former_depth: int = 0,
        ss_former_heads: int = 4,
    ):
        super().__init__()
        if len(condition_channels) != len(denoiser_channels):
            raise ValueError(
                f"condition_channels {condition_channels} and denoiser_channels {denoiser_channels} need the same number of levels"
            )
        levels, width = len(denoiser_channels), denoiser_channels[0]
        self.condition_model = ConditionUNet(condition_channels, stem_stride)
        self.time = TimeEmbedding(4 * width)
        time_dim = 4 * width
        self.stem = _stem(1, width, stem_stride)
        self.anchor_attention = UncertainSpatialAttention(width) if anchor_attention else None
        inputs = (width, *denoiser_channels[:-1])
        self.encoder = nn.ModuleList(ResBlock(c_in, c, time_dim) for c_in, c in zip(inputs, denoiser_channels))
        sizes = [max(1, image_size // (stem_stride * 2**level)) for level in range(levels)]
        self.ff_parsers = nn.ModuleList(FFParser(c, s, s) for c, s in zip(denoiser_channels, sizes))
        self.fusions = nn.ModuleList(
            DynamicConditionalEncoding(c, c_cond) for c, c_cond in zip(denoiser_channels, condition_channels)
        )
        self.down = nn.ModuleList(nn.Conv2d(c, c, 3, stride=2, padding=1) for c in denoiser_channels[:-1])
        deepest = denoiser_channels[-1]
        self.embedding_projection = nn.Conv2d(condition_channels[-1], deepest, 1)
        self.ss_former = nn.ModuleList(SpectrumSpaceAttention(deepest, ss_former_heads) for _ in range(ss_former_depth))
        self.middle = ResBlock(deepest, deepest, time_dim)
        self.up = nn.ModuleList(
            nn.ConvTranspose2d(c_deep, c, 2, stride=2)
            for c, c_deep in zip(denoiser_channels[:-1], denoiser_channels[1:])
        )
        self.decoder = nn.ModuleList(ResBlock(2 * c, c, time_dim) for c in denoiser_channels)
        self.head = _head(width, stem_stride)
        nn.init.zeros_(self.head[2].weight)
        nn.init.zeros_(self.head[2].bias)

    def encode_condition(self, images: torch.Tensor) -> dict:
        """``(B, 3, H, W)`` in [-1, 1] -> condition dict (see :class:`ConditionUNet`)."""
        return self.condition_model(images)

    def forward(self, noisy_masks: torch.Tensor, timesteps: torch.Tensor, condition: dict) -> torch.Tensor:
        """Predicted noise ``(B, 1, H, W)`` from ``x_t`` ``(B, 1, H, W)`` and timesteps ``(B,)``."""
        time = self.time(timesteps)
        h = self.stem(noisy_masks)
        skips = []
        for level, block in enumerate(self.encoder):
            h = block(h, time)
            if level == 0 and self.anchor_attention is not None:
                h = self.anchor_attention(h, condition["anchor_logits"])
            h = self.fusions[level](self.ff_parsers[level](h), condition["features"][level])
            skips.append(h)
            if level < len(self.down):
                h = self.down[level](h)
        embedding = self.embedding_projection(condition["embedding"])
        if len(self.ss_former):
            for block in self.ss_former:
                h = block(h, embedding)
        else:
            h = h + embedding
        h = self.middle(h, time)
        for level in reversed(range(len(self.decoder))):
            if level < len(self.up):
                h = self.up[level](h)
            h = self.decoder[level](torch.cat([h, skips[level]], dim=1), time)
        return self.head(h)


def count_parameters(module: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


__all__ = [
    "ConditionUNet",
    "DynamicConditionalEncoding",
    "MedSegDiffNetwork",
    "NeuralBandPassFilter",
    "SpectrumSpaceAttention",
    "UncertainSpatialAttention",
    "count_parameters",
]
