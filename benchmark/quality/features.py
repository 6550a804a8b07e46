"""Image features for FID / KID / LPIPS when the standard pretrained networks are not on disk.

torch-fidelity's FID and KID need the Inception-v3 file ``weights-inception-2015-12-05-6726825d.pth``
and lpips needs torchvision's AlexNet weights in ``$TORCH_HOME/hub/checkpoints/``; neither can be
downloaded here. The fallback is a *domain* network trained in this pipeline: the encoder of the
U-Net trained on the dataset's real training split (``models/<dataset>/runs/unet/seed_0/model``). It is
independent of the generator and of the validator that accepted or rejected the samples (using
either of those would make the comparison circular).

:class:`UNetEncoderFeatures` is registered with torch-fidelity (``register_feature_extractor``
under :data:`EXTRACTOR_NAME`), so ``torch_fidelity.calculate_metrics(feature_extractor=EXTRACTOR_NAME,
feature_extractor_weights_path=<unet model folder>, ...)`` works like the built-in extractors.

Features (input uint8 ``(N, 3, H, W)``, the U-Net's training resolution):

- ``"pooled"``: float32 ``(N, C_{L-2})``, global average pooling of the second-deepest encoder
  level (FID / KID; 128-d at the default width, fewer dimensions than images so the covariance
  of a few hundred samples stays well conditioned);
- :meth:`UNetEncoderFeatures.levels`: the list of every encoder level's maps ``(N, C_l, H_l, W_l)``
  (the LPIPS-style distance).
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch_fidelity.feature_extractor_base import FeatureExtractorBase

EXTRACTOR_NAME = "diffaug-unet-encoder"


def unet_encoder_modules(network: nn.Module) -> list[nn.Module]:
    """The encoder blocks of a MONAI ``UNet``, top level first, bottom block last.

    MONAI nests ``Sequential(down, SkipConnection(<deeper>), up)``; the bottom is a single block.
    """
    from monai.networks.layers.simplelayers import SkipConnection

    block = getattr(network, "model", network)
    modules = []
    while isinstance(block, nn.Sequential) and len(block) == 3 and isinstance(block[1], SkipConnection):
        modules.append(block[0])
        block = block[1].submodule
    modules.append(block)
    return modules


class UNetEncoderFeatures(FeatureExtractorBase):
    """torch-fidelity feature extractor on a trained U-Net's encoder (see the module docstring).

    Args:
        name: the registered name (torch-fidelity passes it).
        features_list: requested features, a subset of ``("pooled",)``.
        feature_extractor_weights_path: folder of a saved ``unet`` method (``config.json`` + ``model.pt``).
    """

    def __init__(self, name: str, features_list, feature_extractor_weights_path: str | None = None, **kwargs):
        super().__init__(name, features_list)
        if not feature_extractor_weights_path or not Path(feature_extractor_weights_path).is_dir():
            raise FileNotFoundError(
                f"domain feature extractor: U-Net model folder {feature_extractor_weights_path!r} not found; "
                "run `dvc repro train@<dataset>` (with unet in train.methods) first"
            )
        from benchmark.methods.unet import UNet

        method = UNet.load(feature_extractor_weights_path)
        self.network = method.network.eval().requires_grad_(False)
        self.blocks = unet_encoder_modules(self.network)

    @staticmethod
    def get_provided_features_list():
        return ("pooled",)

    @staticmethod
    def get_default_feature_layer_for_metric(metric):
        return "pooled"

    @staticmethod
    def can_be_compiled():
        return False

    @staticmethod
    def get_dummy_input_for_compile():
        return torch.zeros(1, 3, 64, 64, dtype=torch.uint8)

    @torch.no_grad()
    def levels(self, images: torch.Tensor) -> list[torch.Tensor]:
        """uint8 ``(N, 3, H, W)`` -> every encoder level's feature maps, float32."""
        if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"images must be uint8 (N, 3, H, W), got {images.dtype} {tuple(images.shape)}")
        h = images.float().div(127.5).sub(1.0).to(next(self.network.parameters()).device)
        outputs = []
        for block in self.blocks:
            h = block(h)
            outputs.append(h.float())
        return outputs

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, ...]:
        pooled = self.levels(images)[-2].mean(dim=(2, 3))
        return tuple(pooled for _ in self.features_list)


def register() -> None:
    """Register :class:`UNetEncoderFeatures` with torch-fidelity (idempotent)."""
    from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY, register_feature_extractor

    if EXTRACTOR_NAME not in FEATURE_EXTRACTORS_REGISTRY:
        register_feature_extractor(EXTRACTOR_NAME, UNetEncoderFeatures)


def lpips_style_distance(features_a: list[torch.Tensor], features_b: list[torch.Tensor]) -> torch.Tensor:
    """LPIPS's formula with uniform layer weights: per level, unit-normalise each position's channel
    vector, take the squared difference, average over space; average the levels.

    Args:
        features_a, features_b: lists of ``(N, C_l, H_l, W_l)`` maps of two image batches (same N).

    Returns:
        float32 ``(N,)`` distances (0 for identical images).
    """
    total = 0.0
    for a, b in zip(features_a, features_b, strict=True):
        a = F.normalize(a, dim=1, eps=1e-10)
        b = F.normalize(b, dim=1, eps=1e-10)
        total = total + (a - b).pow(2).sum(dim=1).mean(dim=(1, 2))
    return total / len(features_a)
