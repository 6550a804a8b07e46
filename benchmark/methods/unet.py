"""U-Net (Ronneberger et al., MICCAI 2015), MONAI's residual-unit implementation.

The paper's "U-Net, traditional augmentation" baseline. Trained from scratch with BCE + Dice,
AdamW and a one-cycle schedule; the checkpoint is the epoch with the best validation Dice.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from benchmark.config import check_epoch_size
from benchmark.data.prepared import SegmentationData
from benchmark.methods.base import SegmentationMethod
from benchmark.methods.supervised import Schedule, predict_probabilities, train_supervised


@dataclasses.dataclass(frozen=True)
class UNetConfig:
    """Hyper-parameters of ``train.unet``.

    Attributes:
        channels: feature channels per resolution level (each level halves the resolution).
        num_res_units: residual units per level (MONAI ``UNet``).
        dropout: dropout probability inside the units.
        epochs: training epochs.
        batch_size: images per step.
        learning_rate: peak learning rate of the one-cycle schedule.
        weight_decay: AdamW weight decay.
        augmentation: "standard" (flip, rotation, scale, elastic) or "none".
        epoch_size: samples per epoch (None: the whole training set); set by ``train.synthetic_budget``
            "equal_steps" for runs with synthetic data (:func:`benchmark.methods.supervised.epoch_order`).
    """

    channels: tuple[int, ...] = (16, 32, 64, 128, 256)
    num_res_units: int = 2
    dropout: float = 0.0
    epochs: int = 30
    batch_size: int = 16
    learning_rate: float = 2e-3
    weight_decay: float = 1e-4
    augmentation: Literal["none", "standard"] = "standard"
    epoch_size: int | None = None

    def __post_init__(self):
        check_epoch_size(self.epoch_size)
        if len(self.channels) < 2 or min(self.channels) < 1:
            raise ValueError(f"channels needs at least two positive entries, got {self.channels}")
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError(f"epochs and batch_size must be >= 1, got {self.epochs}, {self.batch_size}")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.learning_rate <= 0:
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate}")


class UNet(SegmentationMethod):
    """U-Net baseline (MONAI ``UNet``, 2-D, 3 -> 1 channels)."""

    name = "unet"
    display_name = "U-Net"
    Config = UNetConfig

    @classmethod
    def smoke_config(cls) -> UNetConfig:
        return UNetConfig(channels=(8, 16, 32), num_res_units=1, epochs=3, batch_size=8, learning_rate=5e-3)

    def __init__(self, config: UNetConfig | None = None):
        super().__init__(config)
        self.network = self._build()

    def _build(self) -> torch.nn.Module:
        from monai.networks.nets import UNet as MonaiUNet

        return MonaiUNet(
            spatial_dims=2,
            in_channels=3,
            out_channels=1,
            channels=self.config.channels,
            strides=(2,) * (len(self.config.channels) - 1),
            num_res_units=self.config.num_res_units,
            dropout=self.config.dropout,
        )

    def fit(
        self, train: SegmentationData, val: SegmentationData, *, seed: int, out_dir: Path, progress: bool = True
    ) -> None:
        with torch.random.fork_rng():
            torch.manual_seed(seed)  # weight initialisation draws from torch's global RNG
            self.network = self._build()
        config = self.config
        schedule = Schedule(
            config.epochs,
            config.batch_size,
            config.learning_rate,
            config.weight_decay,
            config.augmentation,
            config.epoch_size,
        )
        train_supervised(
            self.network,
            train,
            val,
            schedule,
            seed=seed,
            checkpoint_dir=Path(out_dir),
            progress=progress,
            description=f"unet seed {seed}",
        )

    def predict(self, images: np.ndarray) -> np.ndarray:
        return predict_probabilities(self.network, images)
