"""TransUNet (Chen et al., arXiv 2102.04306) re-implemented: the paper's strongest Table 2 baseline.

Training follows the TransUNet paper: loss 0.5 * cross-entropy + 0.5 * Dice, SGD with
learning rate 0.01, momentum 0.9, weight decay 1e-4, poly decay lr * (1 - step/total)^0.9 per
step, random flips/rotations (here the benchmark's "standard" augmentation). For one foreground
class the cross-entropy is BCE on a single logit, which equals 2-class softmax CE with the
background logit fixed at 0; the Dice term is the foreground soft Dice over the batch with
squared denominators (the public code's form). The public code averages Dice over all classes
including background; here only the foreground counts. The checkpoint is the epoch of best
validation Dice (shared trainer). Nothing is pretrained: the paper starts from ImageNet-21k
R50+ViT-B/16 weights, which cannot be downloaded here, so absolute scores are lower.

Paper-scale config (224x224 input, as in the paper; 256 for the DiffAug datasets)::

    image_size: 224, stem_width: 64, stage_widths: [64, 128, 256], stage_blocks: [3, 4, 9],
    hidden_size: 768, num_layers: 12, num_heads: 12, mlp_dim: 3072, dropout: 0.1,
    attention_dropout: 0.0, head_channels: 512, decoder_channels: [256, 128, 64, 16],
    batch_size: 24, learning_rate: 0.01 (14k iterations on Synapse)

CPU-scale defaults shrink every width and depth (ResNet stages of 1, 1, 2 bottlenecks at a
quarter of the width, hidden 128, 2 layers, 4 heads, MLP 512, CUP 128 -> 64, 32, 16, 16, no
dropout) and train 20 epochs of batch 8 on 64x64 images, about half a minute on two cores.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F

from benchmark.config import check_epoch_size
from benchmark.data.prepared import SegmentationData
from benchmark.methods.base import SegmentationMethod
from benchmark.methods.supervised import Schedule, predict_probabilities, train_supervised


@dataclasses.dataclass(frozen=True)
class TransUNetConfig:
    """Hyper-parameters of ``train.transunet`` (paper-scale values in the module docstring).

    Attributes:
        image_size: training side in pixels, a multiple of 16; fixes the position-embedding grid.
        stem_width: channels of the 7x7 stem (skip at 1/2).
        stage_widths: bottleneck widths of the three ResNet stages (outputs are 4x these).
        stage_blocks: bottlenecks per stage.
        hidden_size, num_layers, num_heads, mlp_dim: the ViT encoder on the 1/16 grid.
        dropout: embedding, attention-output and MLP dropout; attention_dropout: on attention weights.
            Dropout masks come from torch's global RNG (seeded once per fit), so with either > 0
            a resumed run is reproducible but not bit-identical to an uninterrupted one.
        head_channels: channels of the CUP's first conv3x3 at 1/16.
        decoder_channels: channels of the four CUP blocks (1/8, 1/4, 1/2, 1/1).
        epochs, batch_size: training length; learning_rate, momentum, weight_decay, poly_power: SGD + poly.
        augmentation: "standard" (flip, rotation, scale, elastic) or "none".
        epoch_size: samples per epoch (None: the whole training set); set by ``train.synthetic_budget``
            "equal_steps" for runs with synthetic data (:func:`benchmark.methods.supervised.epoch_order`).
    """

    image_size: int = 64
    stem_width: int = 16
    stage_widths: tuple[int, ...] = (16, 32, 64)
    stage_blocks: tuple[int, ...] = (1, 1, 2)
    hidden_size: int = 128
    num_layers: int = 2
    num_heads: int = 4
    mlp_dim: int = 512
    dropout: float = 0.0
    attention_dropout: float = 0.0
    head_channels: int = 128
    decoder_channels: tuple[int, ...] = (64, 32, 16, 16)
    epochs: int = 20
    batch_size: int = 8
    learning_rate: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 1e-4
    poly_power: float = 0.9
    augmentation: Literal["none", "standard"] = "standard"
    epoch_size: int | None = None

    def __post_init__(self):
        check_epoch_size(self.epoch_size)
        if self.image_size < 16 or self.image_size % 16:
            raise ValueError(
                f"image_size must be a positive multiple of 16 (the encoder downsamples 16x), got {self.image_size}"
            )
        if self.hidden_size % self.num_heads:
            raise ValueError(f"hidden_size {self.hidden_size} must be divisible by num_heads {self.num_heads}")
        for key, length in (("stage_widths", 3), ("stage_blocks", 3), ("decoder_channels", 4)):
            if len(getattr(self, key)) != length:
                raise ValueError(f"{key} needs {length} entries, got {getattr(self, key)}")
        positive = {
            "stem_width": (self.stem_width,),
            "stage_widths": self.stage_widths,
            "stage_blocks": self.stage_blocks,
            "num_layers": (self.num_layers,),
            "mlp_dim": (self.mlp_dim,),
            "head_channels": (self.head_channels,),
            "decoder_channels": self.decoder_channels,
            "epochs": (self.epochs,),
            "batch_size": (self.batch_size,),
        }
        for key, values in positive.items():
            if min(values) < 1:
                raise ValueError(f"{key} must be >= 1, got {values}")
        if not (0 <= self.dropout < 1 and 0 <= self.attention_dropout < 1):
            raise ValueError(
                f"dropout and attention_dropout must be in [0, 1), got {self.dropout}, {self.attention_dropout}"
            )
        if self.learning_rate <= 0 or not 0 <= self.momentum < 1 or self.poly_power <= 0:
            raise ValueError(
                f"need learning_rate > 0, momentum in [0, 1), poly_power > 0; got {self.learning_rate}, {self.momentum}, {self.poly_power}"
            )


def ce_dice_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """0.5 * BCE + 0.5 * (1 - foreground soft Dice over the batch); logits, target (B, 1, H, W)."""
    cross_entropy = F.binary_cross_entropy_with_logits(logits, target)
    probability = torch.sigmoid(logits)
    soft_dice = (2 * (probability * target).sum() + 1e-5) / (
        (probability * probability).sum() + (target * target).sum() + 1e-5
    )
    return 0.5 * cross_entropy + 0.5 * (1 - soft_dice)


def sgd_poly(momentum: float, power: float):
    """``make_optimizer`` for :func:`train_supervised`: SGD and lr * (1 - step/total)^power."""

    def make(network: torch.nn.Module, schedule: Schedule, total_steps: int):
        optimizer = torch.optim.SGD(
            network.parameters(), lr=schedule.learning_rate, momentum=momentum, weight_decay=schedule.weight_decay
        )
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: max(0.0, 1 - step / total_steps) ** power)
        return optimizer, scheduler

    return make


class TransUNet(SegmentationMethod):
    """TransUNet re-implementation, trained from scratch, 3 -> 1 channels."""

    name = "transunet"
    display_name = "TransUNet (re-implementation)"
    Config = TransUNetConfig

    @classmethod
    def smoke_config(cls) -> TransUNetConfig:
        return TransUNetConfig(
            image_size=32,
            stem_width=8,
            stage_widths=(8, 8, 16),
            stage_blocks=(1, 1, 1),
            hidden_size=32,
            num_layers=1,
            num_heads=2,
            mlp_dim=64,
            head_channels=32,
            decoder_channels=(16, 16, 8, 8),
            epochs=3,
            batch_size=8,
        )

    def __init__(self, config: TransUNetConfig | None = None):
        super().__init__(config)
        self.network = self._build()

    def _build(self) -> torch.nn.Module:
        from benchmark.methods.transunet.network import TransUNetNetwork

        return TransUNetNetwork(self.config)

    def fit(
        self, train: SegmentationData, val: SegmentationData, *, seed: int, out_dir: Path, progress: bool = True
    ) -> None:
        config = self.config
        side = train.images.shape[1:3]
        if side != (config.image_size, config.image_size):
            raise ValueError(
                f"train.{self.name}.image_size is {config.image_size} but the training images are {side[0]}x{side[1]}; "
                f"set train.{self.name}.image_size: {side[0]} in params.yaml (it must equal prepare.image_size)"
            )
        schedule = Schedule(
            config.epochs,
            config.batch_size,
            config.learning_rate,
            config.weight_decay,
            config.augmentation,
            config.epoch_size,
        )
        with torch.random.fork_rng():
            # initialisation and dropout masks draw from torch's global RNG; augmentation and
            # shuffling use the trainer's own generator
            torch.manual_seed(seed)
            self.network = self._build()
            train_supervised(
                self.network,
                train,
                val,
                schedule,
                seed=seed,
                checkpoint_dir=Path(out_dir),
                progress=progress,
                description=f"{self.name} seed {seed}",
                loss_fn=ce_dice_loss,
                make_optimizer=sgd_poly(config.momentum, config.poly_power),
            )

    def predict(self, images: np.ndarray) -> np.ndarray:
        return predict_probabilities(self.network, images)
