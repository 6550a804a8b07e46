"""MedSegDiff-V1 and -V2: diffusion of the mask, conditioned on the image (Table 2 baselines).

- V1 (Wu et al., MIDL 2024 / arXiv 2211.00611): a denoising U-Net on the noisy mask whose
  encoder fuses the multi-scale features of a separate image encoder by *dynamic conditional
  encoding* (``m_x + LN(m_I) ⊙ LN(m_x) ⊙ m_I``), with the *FF-Parser* (a learnable complex
  filter in the 2-D FFT domain) on the noisy-mask features before each fusion. Inference:
  iterative sampling, ensemble of 5.
- V2 (Wu et al., AAAI 2024 / arXiv 2301.11798): V1 plus the *anchor condition* (Uncertain
  Spatial Attention with a learnable Gaussian on the condition model's anchor segmentation)
  and the *semantic condition* (SS-Former: frequency-domain cross-attention between the noise
  and condition embeddings, filtered by the neural band-pass filter). The public code does not
  contain U-SA or SS-Former: this is a **paper-spec re-implementation**; our readings of the
  paper are listed in :mod:`benchmark.methods.medsegdiff_network`.

Shared by both (see :mod:`benchmark.methods.mask_diffusion`): linear betas, T = 1000, DDIM
sampling of ``ensemble_size`` masks averaged into the probability.

Where paper and public code disagree we follow the paper, except where the task asks otherwise:

- Loss. V1's paper trains on the noise MSE only; its public code adds a calibration loss on a
  segmentation output, and V2's paper adds the anchor loss (Dice + CE on the condition model)
  every ``alpha`` steps. Both versions here add ``auxiliary_weight`` x (BCE + Dice) on the
  condition branch's anchor at every step (V1: set ``auxiliary_weight: 0`` for the paper's).
- Ensemble fusion. The papers fuse the 5 samples with STAPLE; we take their mean, so the
  output is a probability that the evaluate stage thresholds at 0.5 like every method.
- Sampling. Deterministic DDIM with ``inference_steps`` steps (the papers: DDPM / DDIM 100).
- Target. The papers predict the noise; the CPU-scale default predicts the clean mask
  (``prediction_type: sample``, the same objective re-weighted by 1/SNR, see
  :class:`~benchmark.methods.mask_diffusion.MaskDiffusionConfig`): trained for a few hundred
  steps, the noise-predicting denoiser had not learnt to use the image.

Paper-scale configuration (256x256 images, one GPU; widths of the public code's 256x256
U-Net, 128 base channels with multipliers 1, 1, 2, 2, 4, 4; set epochs to your budget)::

    condition_channels: [128, 128, 256, 256, 512, 512]
    denoiser_channels: [128, 128, 256, 256, 512, 512]
    stem_stride: 1   image_size: 256   batch_size: 8   learning_rate: 1.0e-4 (AdamW)
    prediction_type: epsilon   inference_steps: 100   ensemble_size: 5   validation_steps: 10

The defaults below are the CPU-scale configuration of the default run (64x64, 2 cores): a
reduced width, a 2x pixel-unshuffle stem, a smaller denoiser than condition model (the
denoiser runs ``steps x ensemble`` times per image, the condition model once), 10 DDIM steps.
"""

from __future__ import annotations

import dataclasses

import torch

from benchmark.methods.mask_diffusion import MaskDiffusionConfig, MaskDiffusionMethod


@dataclasses.dataclass(frozen=True)
class MedSegDiffConfig(MaskDiffusionConfig):
    """Hyper-parameters of ``train.medsegdiff_v1`` / ``train.medsegdiff_v2``.

    Attributes (besides the shared :class:`~benchmark.methods.mask_diffusion.MaskDiffusionConfig`):
        condition_channels: widths of the condition U-Net levels (image branch).
        denoiser_channels: widths of the denoiser levels (same number of levels).
        stem_stride: pixel-unshuffle factor of both stems (1 = full resolution).
        image_size: side length the FF-Parser filters are sized for (the training resolution).
        anchor_attention: U-SA anchor condition (V2).
        ss_former_depth: SS-Former blocks at the bottleneck (V2; 0 = sum of embeddings, V1).
        ss_former_heads: attention heads per SS-Former block.
    """

    condition_channels: tuple[int, ...] = (16, 32, 64)
    denoiser_channels: tuple[int, ...] = (8, 16, 32)
    stem_stride: int = 2
    image_size: int = 64
    anchor_attention: bool = False
    ss_former_depth: int = 0
    ss_former_heads: int = 4

    def __post_init__(self):
        super().__post_init__()
        if len(self.condition_channels) != len(self.denoiser_channels) or len(self.denoiser_channels) < 2:
            raise ValueError(
                f"condition_channels {self.condition_channels} and denoiser_channels {self.denoiser_channels} need the same number (>= 2) of levels"
            )
        if (
            min(self.condition_channels + self.denoiser_channels) < 1
            or self.stem_stride < 1
            or self.ss_former_depth < 0
        ):
            raise ValueError("channels and stem_stride must be >= 1, ss_former_depth >= 0")
        if self.ss_former_depth and self.denoiser_channels[-1] % self.ss_former_heads:
            raise ValueError(
                f"the deepest denoiser width {self.denoiser_channels[-1]} must be divisible by ss_former_heads {self.ss_former_heads}"
            )


@dataclasses.dataclass(frozen=True)
class MedSegDiffV2Config(MedSegDiffConfig):
    """``train.medsegdiff_v2``: :class:`MedSegDiffConfig` with V2's anchor and semantic conditions on."""

    anchor_attention: bool = True
    ss_former_depth: int = 1


def _smoke(config_class: type = MedSegDiffConfig) -> MedSegDiffConfig:
    """Seconds on 32x32 images: a tiny network, few DDIM steps, no augmentation."""
    base = dict(
        condition_channels=(8, 16),
        denoiser_channels=(8, 16),
        image_size=32,
        epochs=6,
        batch_size=8,
        learning_rate=3e-3,
        warmup_fraction=0.0,
        augmentation="none",
        inference_steps=3,
        ensemble_size=2,
        validation_steps=2,
        validation_ensemble=1,
    )
    return config_class(**base)


class MedSegDiffV1(MaskDiffusionMethod):
    """MedSegDiff-V1 (re-implementation): dynamic conditional encoding + FF-Parser."""

    name = "medsegdiff_v1"
    display_name = "MedSegDiff-V1 (re-implementation)"
    Config = MedSegDiffConfig

    @classmethod
    def smoke_config(cls) -> MedSegDiffConfig:
        return _smoke()

    def build_network(self) -> torch.nn.Module:
        from benchmark.methods.medsegdiff_network import MedSegDiffNetwork

        c = self.config
        return MedSegDiffNetwork(
            c.condition_channels,
            c.denoiser_channels,
            stem_stride=c.stem_stride,
            image_size=c.image_size,
            anchor_attention=c.anchor_attention,
            ss_former_depth=c.ss_former_depth,
            ss_former_heads=c.ss_former_heads,
        )


class MedSegDiffV2(MedSegDiffV1):
    """MedSegDiff-V2 (paper-spec re-implementation): V1 + U-SA anchor + SS-Former semantic condition."""

    name = "medsegdiff_v2"
    display_name = "MedSegDiff-V2 (paper-spec re-implementation)"
    Config = MedSegDiffV2Config

    @classmethod
    def smoke_config(cls) -> MedSegDiffV2Config:
        return _smoke(MedSegDiffV2Config)
