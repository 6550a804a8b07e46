"""Network of Diff-Trans (Chowdary & Yin, MICCAI 2023): a transformer U-Net denoiser with
multi-size window attention, conditioned on the image by cross-attention.

The paper's two components, as we read them (there is no public code):

- *Transformer U-Net with multi-sized windows*: every block runs window self-attention at
  several window sizes in parallel (default 4 and 8 tokens) and fuses the branches with a
  1x1 projection, so one block sees pixel-level and wider context; the U-Net has patch
  merging down and transposed-convolution patch expanding up, with skip connections.
- *Cross-attention conditioning*: the image is encoded once (a small convolutional U-Net,
  :class:`~benchmark.methods.medsegdiff_network.ConditionUNet`, whose decoder maps at the
  token resolutions are projected to the token widths) and every block's noise tokens attend to the image tokens
  of the same level (within windows of the largest size; at the bottleneck the window covers
  the whole map, i.e. global attention). The paper says the cross-attention *enhances* the
  conditioning; as the base conditioning we add the first-level image features to the
  noise-mask embedding (``E^I + E^x``, as MedSegDiff and Wolleb et al. condition).

Interpretations: window attention carries Swin's relative-position bias; the time embedding
modulates the pre-norms (adaLN scale and shift); the feed-forward has a depth-wise 3x3
convolution (mixing across window borders, in place of Swin's shifted windows); the image
U-Net also emits an anchor segmentation ``anchor_logits`` that the trainer supervises only
when ``auxiliary_weight > 0`` (the paper trains on the diffusion loss alone).

Feature maps are ``(B, C, H, W)``; tokens ``(B * windows, tokens, C)`` inside attention only.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from benchmark.methods.mask_diffusion_layers import ChannelLayerNorm, TimeEmbedding
from benchmark.methods.medsegdiff_network import ConditionUNet


def _windows(x: torch.Tensor, window: int) -> torch.Tensor:
    """``(B, C, H, W)`` -> ``(B * H/w * W/w, w * w, C)``."""
    batch, channels, height, width = x.shape
    x = x.view(batch, channels, height // window, window, width // window, window)
    return x.permute(0, 2, 4, 3, 5, 1).reshape(-1, window * window, channels)


def _merge(tokens: torch.Tensor, batch: int, height: int, width: int, window: int) -> torch.Tensor:
    """Inverse of :func:`_windows`."""
    channels = tokens.shape[-1]
    x = tokens.view(batch, height // window, width // window, window, window, channels)
    return x.permute(0, 5, 1, 3, 2, 4).reshape(batch, channels, height, width)


class WindowAttention(nn.Module):
    """Multi-head attention within non-overlapping ``window x window`` windows, with a learnt
    relative-position bias per head (Swin), so a token can single out its neighbours.

    Self-attention when ``context`` is None; otherwise cross-attention with keys and values
    from ``context`` (same spatial size). The window shrinks to the map when the map is
    smaller. ``(B, C, H, W)`` -> ``(B, C, H, W)``.
    """

    def __init__(self, channels: int, heads: int, window: int):
        super().__init__()
        self.heads, self.window = heads, window
        self.query = nn.Linear(channels, channels)
        self.key_value = nn.Linear(channels, 2 * channels)
        self.out = nn.Linear(channels, channels)
        self.position_bias = nn.Parameter(torch.zeros(heads, 2 * window - 1, 2 * window - 1))

    def _bias(self, window: int) -> torch.Tensor:
        """``(heads, w*w, w*w)`` bias of the relative offset between query and key tokens."""
        coordinates = torch.stack(torch.meshgrid(torch.arange(window), torch.arange(window), indexing="ij")).flatten(1)
        offset = coordinates[:, :, None] - coordinates[:, None, :] + self.window - 1  # (2, w*w, w*w)
        return self.position_bias[:, offset[0], offset[1]]

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        batch, channels, height, width = x.shape
        window = min(self.window, height, width)
        if height % window or width % window:
            raise ValueError(
                f"a {height}x{width} feature map cannot be split into {window}x{window} windows; use an image size divisible by patch_size * 2**(levels-1) * window"
            )
        tokens = _windows(x, window)
        context_tokens = tokens if context is None else _windows(context, window)
        split = lambda t: t.view(t.shape[0], t.shape[1], self.heads, -1).transpose(1, 2)  # noqa: E731
        key, value = self.key_value(context_tokens).chunk(2, dim=-1)
        bias = self._bias(window).unsqueeze(0)
        attended = F.scaled_dot_product_attention(split(self.query(tokens)), split(key), split(value), attn_mask=bias)
        attended = self.out(attended.transpose(1, 2).reshape(tokens.shape))
        return _merge(attended, batch, height, width, window)


class MultiWindowBlock(nn.Module):
    """Multi-size window self-attention, image cross-attention, convolutional feed-forward.

    ``x``: ``(B, C, H, W)`` noise features; ``image``: ``(B, C, H, W)`` image features of the
    same level; ``time``: ``(B, time_dim)``. Returns ``(B, C, H, W)``.
    """

    def __init__(self, channels: int, heads: int, windows: tuple[int, ...], time_dim: int):
        super().__init__()
        self.norm_self, self.norm_cross, self.norm_ff = (ChannelLayerNorm(channels) for _ in range(3))
        self.modulation = nn.Linear(time_dim, 4 * channels)
        self.branches = nn.ModuleList(WindowAttention(channels, heads, w) for w in windows)
        self.fuse = nn.Conv2d(len(windows) * channels, channels, 1)
        self.cross = WindowAttention(channels, heads, max(windows))
        self.feed_forward = nn.Sequential(
            nn.Conv2d(channels, 2 * channels, 1),
            nn.Conv2d(2 * channels, 2 * channels, 3, padding=1, groups=2 * channels),
            nn.GELU(),
            nn.Conv2d(2 * channels, channels, 1),
        )

    def forward(self, x: torch.Tensor, image: torch.Tensor, time: torch.Tensor) -> torch.Tensor:
        scale_self, shift_self, scale_ff, shift_ff = self.modulation(F.silu(time))[:, :, None, None].chunk(4, dim=1)
        h = self.norm_self(x) * (1 + scale_self) + shift_self
        x = x + self.fuse(torch.cat([branch(h) for branch in self.branches], dim=1))
        x = x + self.cross(self.norm_cross(x), image)
        return x + self.feed_forward(self.norm_ff(x) * (1 + scale_ff) + shift_ff)


class DiffTransNetwork(nn.Module):
    """Image encoder + transformer U-Net denoiser (the :class:`~benchmark.methods.mask_diffusion.MaskDenoiser` protocol).

    Args:
        dims: token widths per level (each level halves the resolution).
        encoder_dims: widths of the image U-Net levels; it starts at stride ``min(2, patch_size)``,
            so it needs ``len(dims) + log2(patch_size / min(2, patch_size))`` levels, the last
            ``len(dims)`` of which (decoder side) are projected to ``dims``.
        patch_size: pixels per token side at the first level (pixel-unshuffle patch embedding), a power of 2.
        windows: window sizes of the parallel self-attention branches.
        head_channels: channels per attention head.
    """

    def __init__(
        self,
        dims: tuple[int, ...],
        *,
        encoder_dims: tuple[int, ...] | None = None,
        patch_size: int = 2,
        windows: tuple[int, ...] = (4, 8),
        head_channels: int = 16,
    ):
        super().__init__()
        image_stride = min(2, patch_size)
        self.skipped_levels = round(math.log2(patch_size / image_stride))
        if 2 ** round(math.log2(patch_size)) != patch_size:
            raise ValueError(f"patch_size must be a power of 2, got {patch_size}")
        encoder_dims = encoder_dims or (dims[0],) * self.skipped_levels + tuple(dims)
        if len(encoder_dims) != len(dims) + self.skipped_levels:
            raise ValueError(
                f"with patch_size {patch_size}, encoder_dims needs {len(dims) + self.skipped_levels} levels ({len(dims)} of dims + {self.skipped_levels} finer), got {encoder_dims}"
            )
        time_dim = 4 * dims[0]
        heads = [max(1, d // head_channels) for d in dims]
        self.image_encoder = ConditionUNet(tuple(encoder_dims), image_stride)
        self.image_projection = nn.ModuleList(
            nn.Conv2d(e, d, 1) for e, d in zip(encoder_dims[self.skipped_levels :], dims)
        )
        self.time = TimeEmbedding(time_dim)
        self.embed = nn.Sequential(nn.PixelUnshuffle(patch_size), nn.Conv2d(patch_size**2, dims[0], 3, padding=1))
        self.encoder = nn.ModuleList(MultiWindowBlock(d, h, windows, time_dim) for d, h in zip(dims, heads))
        self.merge = nn.ModuleList(nn.Conv2d(d, d_next, 2, stride=2) for d, d_next in zip(dims[:-1], dims[1:]))
        self.middle = MultiWindowBlock(dims[-1], heads[-1], windows, time_dim)
        self.expand = nn.ModuleList(
            nn.ConvTranspose2d(d_next, d, 2, stride=2) for d, d_next in zip(dims[:-1], dims[1:])
        )
        self.skip = nn.ModuleList(nn.Conv2d(2 * d, d, 1) for d in dims[:-1])
        self.decoder = nn.ModuleList(MultiWindowBlock(d, h, windows, time_dim) for d, h in zip(dims[:-1], heads[:-1]))
        self.head = nn.Sequential(
            ChannelLayerNorm(dims[0]), nn.Conv2d(dims[0], patch_size**2, 3, padding=1), nn.PixelShuffle(patch_size)
        )
        nn.init.zeros_(self.head[1].weight)
        nn.init.zeros_(self.head[1].bias)

    def encode_condition(self, images: torch.Tensor) -> dict:
        """``(B, 3, H, W)`` in [-1, 1] -> ``{"features": [(B, dims[l], ...)], "anchor_logits": (B, 1, H, W)}``."""
        encoded = self.image_encoder(images)
        decoded = encoded["decoded"][self.skipped_levels :]
        features = [project(f) for project, f in zip(self.image_projection, decoded)]
        return {"features": features, "anchor_logits": encoded["anchor_logits"]}

    def forward(self, noisy_masks: torch.Tensor, timesteps: torch.Tensor, condition: dict) -> torch.Tensor:
        """Predicted noise ``(B, 1, H, W)`` from ``x_t`` ``(B, 1, H, W)`` and timesteps ``(B,)``."""
        time, image = self.time(timesteps), condition["features"]
        h, skips = self.embed(noisy_masks) + image[0], []
        for level, block in enumerate(self.encoder):
            if level:
                h = self.merge[level - 1](h)
            h = block(h, image[level], time)
            skips.append(h)
        h = self.middle(h, image[-1], time)
        for level in reversed(range(len(self.decoder))):
            h = self.skip[level](torch.cat([self.expand[level](h), skips[level]], dim=1))
            h = self.decoder[level](h, image[level], time)
        return self.head(h)
