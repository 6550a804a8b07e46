"""DiffAug's latent segmentation network (paper §3.2, eqs. 9, 10, 13) and SDSeg's single-encoder variant.

The network denoises the *mask* latent z_t (eq. 10) conditioned on the image::

    dual   (DiffAug):  z_a = E(I) frozen,  f_vision = V_ψ(z_a)  (eq. 9),  f = ψ([z_a; f_vision])  (eq. 13)
    single (SDSeg):    f = ψ(E'(I)), E' ONE trainable copy of the autoencoder's encoder on the pixels
    both:              ε̂ = UNet([z_t; f], t)

ψ is a learned 1×1-convolution projection in both modes, and the denoiser (a diffusers
``UNet2DModel`` conditioned on the timestep) is built identically; with the default
``vision_input="pixels"`` the only difference between the modes is the frozen z_a branch
(present in "dual", absent in "single"); with ``vision_input="latent"`` V_ψ also reads z_a.

Choice of V_ψ's input. Eq. 9 writes V_ψ(z_a) (``vision_input="latent"``: a small residual conv
encoder at latent resolution, the whole gate then works in latent space as §3.2 motivates). But
V_ψ(z_a) sees nothing z_a does not already hold; it can only re-express it. The default is
``vision_input="pixels"``: V_ψ is a trainable copy of the autoencoder's encoder on the pixels,
initialised from the frozen one (§4.3: "we initialize the encoder from pre-trained weights"), so
it can recover what the frozen encoder discards. On synth_polyp's validation split (64², the
default 6 epochs, 3 seeds; ``benchmarks/decisions.py``, ``results/benchmarks/decisions_val.json``)
DiffAug's mean validation Dice was 0.604 with "pixels" and 0.560 with "latent" (pixels ahead on 2
seeds, level on one) for ~15 % more training time, and it makes "dual" and "single" differ
*exactly* by the frozen z_a branch (one extra input of ψ), a clean encoder ablation.

Paper scale: 256² images, SD's VAE (f = 8) loaded from a local folder
(``autoencoder.pretrained_path``), 32×32×4 latents, an SD-sized UNet (e.g.
``denoiser_channels=(320, 640, 1280, 1280)``, ``layers_per_block=2``). CPU scale (defaults): 64²
images, a small trained VAE (f = 4, block widths 16/32/64), 16×16×4 latents, a ~1.1 M-parameter
UNet, ~1.4 M parameters in all with the pixel V_ψ (0.26 M).
"""

from __future__ import annotations

import copy
import math
from typing import Literal

import torch
from torch import nn


class ResidualBlock(nn.Module):
    """GroupNorm → SiLU → 3×3 conv, twice, plus the input (channels and resolution kept)."""

    def __init__(self, channels: int):
        super().__init__()
        groups = _groups(channels)
        self.body = nn.Sequential(
            nn.GroupNorm(groups, channels),
            nn.SiLU(),
            nn.Conv2d(channels, channels, 3, padding=1),
            nn.GroupNorm(groups, channels),
            nn.SiLU(),
            nn.Conv2d(channels, channels, 3, padding=1),
        )

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return features + self.body(features)


class LatentVisionEncoder(nn.Module):
    """V_ψ of eq. 9 on the image latent: float (B, C_z, h, w) -> (B, channels, h, w)."""

    def __init__(self, latent_channels: int, channels: int, blocks: int):
        super().__init__()
        self.layers = nn.Sequential(
            nn.Conv2d(latent_channels, channels, 3, padding=1), *(ResidualBlock(channels) for _ in range(blocks))
        )

    def forward(self, image_latents: torch.Tensor) -> torch.Tensor:
        return self.layers(image_latents)


class PixelEncoder(nn.Module):
    """A trainable copy of the autoencoder's encoder: pixels (B, 3, H, W) in [-1, 1] -> (B, 2·C_z, H/f, W/f).

    Returns the encoder's moments (posterior mean and log-variance, after ``quant_conv``), which
    the 1×1 fusion projects; initialised from the frozen VAE's weights, as SDSeg does.
    """

    def __init__(self, vae):
        super().__init__()
        self.encoder = copy.deepcopy(vae.encoder).requires_grad_(True)
        quant_conv = getattr(vae, "quant_conv", None)
        self.quant_conv = copy.deepcopy(quant_conv).requires_grad_(True) if quant_conv is not None else nn.Identity()
        self.out_channels = 2 * vae.config.latent_channels

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.quant_conv(self.encoder(pixels))


def build_denoiser(
    in_channels: int, out_channels: int, widths: tuple[int, ...], layers_per_block: int, latent_size: int
):
    """A diffusers ``UNet2DModel``: ``(inputs (B, in, h, w), t (B,) int64).sample`` -> (B, out, h, w).

    Plain ResNet blocks at the outer levels, self-attention at the innermost level and in the mid
    block (as SD's UNet, whose attention sits at low resolution). Every level but the last
    halves the resolution, so ``latent_size`` must be divisible by 2**(len(widths) - 1).
    """
    from diffusers import UNet2DModel  # lazy: importing diffusers costs seconds

    levels = len(widths)
    attention = [level == levels - 1 and levels > 1 for level in range(levels)]
    head = math.gcd(*widths, 8)
    return UNet2DModel(
        sample_size=latent_size,
        in_channels=in_channels,
        out_channels=out_channels,
        block_out_channels=tuple(widths),
        layers_per_block=layers_per_block,
        down_block_types=tuple("AttnDownBlock2D" if a else "DownBlock2D" for a in attention),
        up_block_types=tuple("AttnUpBlock2D" if a else "UpBlock2D" for a in reversed(attention)),
        attention_head_dim=head,
        norm_num_groups=_groups(math.gcd(*widths)),
    )


class LatentSegmentationNetwork(nn.Module):
    """ε̂ = UNet([z_t; ψ(condition)], t), the condition being [z_a; V_ψ(·)] ("dual") or E'(I) ("single").

    Use :meth:`encode_condition` once per image (it does not depend on t), then :meth:`forward`
    once per diffusion step.

    Args:
        encoder: "dual" (DiffAug) or "single" (SDSeg).
        vae: the frozen autoencoder's diffusers ``AutoencoderKL``; its encoder is copied (and
            trained) for "single" and for ``vision_input="pixels"``; not stored otherwise.
        latent_channels: C_z, channels of image and mask latents (4).
        latent_size: h = w of the latents.
        vision_input: what V_ψ reads in "dual" mode: "latent" (z_a, eq. 9) or "pixels".
        vision_channels: d', width of V_ψ on z_a.
        vision_blocks: residual blocks of V_ψ on z_a.
        fused_channels: width of ψ's output f_fused, concatenated with z_t.
        denoiser_channels: UNet widths per level.
        denoiser_layers_per_block: ResNet (+ attention) layers per UNet level.
    """

    def __init__(
        self,
        *,
        encoder: Literal["dual", "single"],
        vae,
        latent_channels: int,
        latent_size: int,
        vision_input: Literal["latent", "pixels"] = "latent",
        vision_channels: int = 32,
        vision_blocks: int = 2,
        fused_channels: int = 4,
        denoiser_channels: tuple[int, ...] = (32, 64, 64),
        denoiser_layers_per_block: int = 1,
    ):
        super().__init__()
        if encoder not in ("dual", "single") or vision_input not in ("latent", "pixels"):
            raise ValueError(
                f"encoder must be 'dual' or 'single' and vision_input 'latent' or 'pixels', got {encoder!r}, {vision_input!r}"
            )
        self.encoder_mode, self.latent_channels = encoder, latent_channels
        #: inputs :meth:`encode_condition` needs: the frozen image latent z_a and/or the pixels.
        self.uses_image_latents = encoder == "dual"
        self.uses_pixels = encoder == "single" or vision_input == "pixels"
        if self.uses_pixels:
            self.vision_encoder: nn.Module = PixelEncoder(vae)
            vision_width = self.vision_encoder.out_channels
        else:
            self.vision_encoder = LatentVisionEncoder(latent_channels, vision_channels, vision_blocks)
            vision_width = vision_channels
        fusion_inputs = (latent_channels if self.uses_image_latents else 0) + vision_width
        # ψ (eq. 13): 1×1 projections only, keeping spatial correspondence and no attention cost.
        self.fusion = nn.Sequential(
            nn.Conv2d(fusion_inputs, fused_channels, 1), nn.SiLU(), nn.Conv2d(fused_channels, fused_channels, 1)
        )
        self.denoiser = build_denoiser(
            latent_channels + fused_channels,
            latent_channels,
            tuple(denoiser_channels),
            denoiser_layers_per_block,
            latent_size,
        )

    def encode_condition(
        self, image_latents: torch.Tensor | None = None, pixels: torch.Tensor | None = None
    ) -> torch.Tensor:
        """f_fused (eq. 13), float (B, fused_channels, h, w).

        Args:
            image_latents: z_a = E(I) from the frozen autoencoder, float (B, C_z, h, w); needed
                when ``uses_image_latents``.
            pixels: the image, float (B, 3, H, W) in [-1, 1]; needed when ``uses_pixels``.
        """
        for name, needed, value in (
            ("image_latents", self.uses_image_latents, image_latents),
            ("pixels", self.uses_pixels, pixels),
        ):
            if needed and value is None:
                raise ValueError(f"the {self.encoder_mode}-encoder network needs {name}")
        vision = self.vision_encoder(pixels if self.uses_pixels else image_latents)
        return self.fusion(torch.cat([image_latents, vision], dim=1) if self.uses_image_latents else vision)

    def forward(self, noisy_latents: torch.Tensor, timesteps: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        """ε̂ (eq. 10 inverted), float (B, C_z, h, w), from z_t (B, C_z, h, w), t (B,) int64 in [0, T) and f_fused."""
        return self.denoiser(torch.cat([noisy_latents, condition], dim=1), timesteps).sample


def _groups(channels: int) -> int:
    """The largest GroupNorm group count <= 32 that divides ``channels`` (32 is SD's choice)."""
    return max(d for d in range(1, 33) if channels % d == 0)
