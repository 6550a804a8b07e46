"""The registered methods ``diffaug`` and ``sdseg``: one latent segmenter, two encoder configurations.

``diffaug`` is DiffAug's segmenter and quality gate (paper §3.2): frozen z_a plus a trainable
vision encoder, single-step latent estimation (eq. 11), trained with eq. 12. ``sdseg`` is a
re-implementation of SDSeg (Lin et al., MICCAI 2024) as the same code with ``encoder="single"``:
one trainable copy of the VAE encoder on the image, no frozen branch. Everything else (denoiser,
schedule, loss, inference, training) is shared, so their difference in the results is the
encoder. (The original SDSeg trains without the decoded-Dice term: set ``lambda_dice: 0``.)

Both need the dataset's latent autoencoder: attached by the train stage (:meth:`attach_autoencoder`),
loaded from ``autoencoder_path``, or, standalone, trained by ``fit`` on the training split.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from benchmark.data.prepared import SegmentationData
from benchmark.methods.base import SegmentationMethod
from benchmark.methods.latent_seg.config import SMOKE_AUTOENCODER, LatentSegmenterConfig
from benchmark.utils.seeding import derive_seed

AUTOENCODER_DIR, WEIGHTS_FILE = "autoencoder", "network.pt"


class LatentSegmenter(SegmentationMethod):
    """Shared implementation; subclasses set ``name``, ``display_name`` and the ``encoder`` default."""

    name = "latent_seg"
    display_name = "latent segmenter"
    Config = LatentSegmenterConfig
    #: the train stage attaches the dataset's autoencoder (``autoencoder@<dataset>``) before fit.
    needs_autoencoder = True

    @classmethod
    def smoke_config(cls) -> LatentSegmenterConfig:
        return cls.Config(
            vision_channels=16,
            vision_blocks=1,
            denoiser_channels=(16, 32),
            epochs=4,
            batch_size=8,
            learning_rate=3e-3,
            warmup_steps=2,
            autoencoder=SMOKE_AUTOENCODER,
        )

    def __init__(self, config: LatentSegmenterConfig | None = None):
        super().__init__(config)
        self.autoencoder = None
        self.network = None

    def attach_autoencoder(self, autoencoder) -> None:
        """Use this frozen ``LatentAutoencoder`` (the dataset's) instead of ``autoencoder_path`` / training one."""
        self.autoencoder = autoencoder

    def fit(
        self,
        train: SegmentationData,
        val: SegmentationData,
        *,
        seed: int,
        out_dir: Path,
        progress: bool = True,
        extra: SegmentationData | None = None,
    ) -> None:
        """Train on ``train`` (plus ``extra``, e.g. accepted synthetic pairs); select on ``val``; resumable.

        The autoencoder, when neither attached nor given by ``autoencoder_path``, is trained on the
        real ``train`` images and masks only (resumable under ``out_dir/autoencoder_training``).
        """
        from benchmark.methods.latent_seg.trainer import train_latent_segmenter

        out_dir = Path(out_dir)
        if self.autoencoder is None:
            self.autoencoder = self._obtain_autoencoder(train, seed=seed, out_dir=out_dir, progress=progress)
        if extra is not None:
            train = SegmentationData(
                train.ids + extra.ids,
                np.concatenate([train.images, extra.images]),
                np.concatenate([train.masks, extra.masks]),
            )
        self._check_size(train.images)
        with torch.random.fork_rng(devices=[]):  # seeded initialisation without touching the global RNG
            torch.manual_seed(derive_seed(seed, self.name, "init"))
            self.network = self._build(train.images.shape[1])
        train_latent_segmenter(
            self.network,
            self.autoencoder,
            train,
            val,
            self.config,
            seed=derive_seed(seed, self.name, "train"),
            checkpoint_dir=out_dir,
            progress=progress,
            description=f"{self.name} seed {seed}",
        )

    def predict(self, images: np.ndarray, *, batch_size: int | None = None) -> np.ndarray:
        return predict_latent_masks(self, images, batch_size=batch_size)

    def _obtain_autoencoder(self, train: SegmentationData, *, seed: int, out_dir: Path, progress: bool):
        from benchmark.generators.autoencoder import LatentAutoencoder, train_autoencoder

        path = self.config.autoencoder_path
        if path is not None:
            if "{dataset}" in path:
                raise ValueError(
                    f"autoencoder_path {path!r} still holds '{{dataset}}': the train stage fills it; "
                    f"standalone, pass a real folder or call attach_autoencoder()"
                )
            return LatentAutoencoder.load(path)
        autoencoder, _ = train_autoencoder(
            train.images,
            train.masks,
            self.config.autoencoder,
            seed=derive_seed(seed, self.name, "autoencoder"),
            checkpoint_dir=out_dir / "autoencoder_training",
            progress=progress,
        )
        return autoencoder

    def _build(self, image_size: int):
        from benchmark.methods.latent_seg.network import LatentSegmentationNetwork

        config, vae = self.config, self.autoencoder.vae
        return LatentSegmentationNetwork(
            encoder=config.encoder,
            vae=vae,
            latent_channels=vae.config.latent_channels,
            latent_size=image_size // self.autoencoder.downsampling_factor,
            vision_input=config.vision_input,
            vision_channels=config.vision_channels,
            vision_blocks=config.vision_blocks,
            fused_channels=config.fused_channels,
            denoiser_channels=config.denoiser_channels,
            denoiser_layers_per_block=config.denoiser_layers_per_block,
        ).to(self.autoencoder.device)

    def _check_size(self, images: np.ndarray) -> None:
        size, factor = images.shape[1], self.autoencoder.downsampling_factor
        levels = len(self.config.denoiser_channels) - 1
        if images.shape[1] != images.shape[2] or size % (factor * 2**levels):
            raise ValueError(
                f"{self.name}: images are {images.shape[1]}×{images.shape[2]}; they must be square with a side "
                f"divisible by {factor * 2**levels} (autoencoder factor {factor} × 2^{levels} UNet levels)"
            )

    def _save_weights(self, directory: Path) -> None:
        self._require_trained()
        self.autoencoder.save(directory / AUTOENCODER_DIR)  # small; makes the folder self-contained
        torch.save(
            {
                "image_size": self.network.denoiser.config.sample_size * self.autoencoder.downsampling_factor,
                "state": self.network.state_dict(),
            },
            directory / WEIGHTS_FILE,
        )

    def _load_weights(self, directory: Path) -> None:
        from benchmark.generators.autoencoder import LatentAutoencoder

        path = directory / WEIGHTS_FILE
        if not path.is_file() or not (directory / AUTOENCODER_DIR).is_dir():
            raise FileNotFoundError(
                f"{path} or {directory / AUTOENCODER_DIR} is missing; the model folder is incomplete, rerun `dvc repro`"
            )
        self.autoencoder = LatentAutoencoder.load(directory / AUTOENCODER_DIR)
        from benchmark.utils.io import load_torch_file

        payload = load_torch_file(path)
        self.network = self._build(payload["image_size"])
        self.network.load_state_dict(payload["state"])
        self.network.eval()

    def _require_trained(self) -> None:
        if self.network is None or self.autoencoder is None:
            raise RuntimeError(f"{self.name} has no trained network; call fit() or load() first")


def predict_latent_masks(
    method: LatentSegmenter,
    images: np.ndarray,
    *,
    batch_size: int | None = None,
    inference: str | None = None,
    steps: int | None = None,
) -> np.ndarray:
    """Foreground probabilities of a trained latent segmenter; the quality gate's predictor (eq. 14).

    Args:
        method: a fitted or loaded :class:`LatentSegmenter` (``diffaug`` or ``sdseg``).
        images: uint8 (N, S, S, 3) at the training resolution.
        batch_size: images per network call (default ``config.predict_batch_size``).
        inference: "single" or "iterative" (default ``config.inference``).
        steps: DDIM steps of "iterative" (default ``config.iterative_steps``).

    Returns:
        float32 (N, S, S) in [0, 1], deterministic (noise from ``config.inference_seed``).
    """
    from benchmark.methods.latent_seg.inference import predict_masks
    from benchmark.methods.latent_seg.trainer import schedule_of

    method._require_trained()
    config = method.config
    inference = inference or config.inference
    if inference not in ("single", "iterative"):
        raise ValueError(f"inference must be 'single' or 'iterative', got {inference!r}")
    return predict_masks(
        method.network,
        method.autoencoder,
        images,
        alphas_cumprod=schedule_of(config).alphas_cumprod(),
        steps=1 if inference == "single" else (steps or config.iterative_steps),
        seed=config.inference_seed,
        batch_size=batch_size or config.predict_batch_size,
        prediction_type=config.prediction_type,
    )


class DiffAugSegmenter(LatentSegmenter):
    """DiffAug's latent segmenter: frozen z_a + trainable V_ψ, single-step latent estimation."""

    name = "diffaug"
    display_name = "DiffAug latent segmenter (dual encoder)"


@dataclasses.dataclass(frozen=True)
class SDSegConfig(LatentSegmenterConfig):
    """``train.sdseg``: :class:`LatentSegmenterConfig` with ``encoder="single"``."""

    encoder: Literal["dual", "single"] = "single"


class SDSeg(LatentSegmenter):
    """SDSeg (Lin et al., MICCAI 2024) re-implemented: one trainable VAE-encoder copy on the image."""

    name = "sdseg"
    display_name = "SDSeg (re-implementation, single encoder)"
    Config = SDSegConfig
