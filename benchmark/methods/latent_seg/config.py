"""``train.diffaug`` / ``train.sdseg``: the latent segmenter's frozen configuration (no torch import)."""

from __future__ import annotations

import dataclasses
from typing import Literal

from benchmark.config import check_epoch_size
from benchmark.generators.configs import AutoencoderConfig

#: A tiny autoencoder for the standalone fallback of the contract and smoke tests (32² -> 8² latents).
SMOKE_AUTOENCODER = AutoencoderConfig(
    block_out_channels=(8, 16, 16),
    mid_block_attention=False,
    steps=40,
    batch_size=8,
    learning_rate=3e-3,
    warmup_steps=5,
    checkpoint_every=20,
)


@dataclasses.dataclass(frozen=True)
class LatentSegmenterConfig:
    """Hyper-parameters of DiffAug's latent segmenter (and of SDSeg, its single-encoder variant).

    Attributes:
        encoder: "dual" (DiffAug: frozen z_a + trainable V_ψ, fused by ψ) or "single" (SDSeg:
            one trainable copy of the autoencoder's encoder on the pixels).
        vision_input: what V_ψ reads in "dual" mode: "pixels" (a trainable copy of the VAE
            encoder, initialised from it; default, see :mod:`~benchmark.methods.latent_seg.network`
            for why) or "latent" (z_a, eq. 9 literally). Ignored by "single".
        vision_channels, vision_blocks: width d' and residual blocks of V_ψ on z_a ("latent" only).
        fused_channels: width of f_fused (eq. 13), concatenated with z_t (SDSeg concatenates a
            4-channel latent; 16 measured better on CPU).
        denoiser_channels: UNet widths per level (each level but the last halves the latent).
        denoiser_layers_per_block: ResNet (+ attention) layers per UNet level.
        num_train_timesteps, beta_schedule, beta_start, beta_end: the forward process (SDSeg's
            scaled-linear 0.0015 → 0.0155 over T = 1000).
        prediction_type: what the UNet outputs: "epsilon" (ε̂ itself, the paper's wording) or
            "v_prediction" (v̂, converted to ε̂ = sqrt(1 − ᾱ_t) z_t + sqrt(ᾱ_t) v̂ before eqs. 11–12,
            see :func:`~benchmark.methods.latent_seg.diffusion.noise_from_output`).
        lambda_latent: λ_latent of eq. 12 (L1 on ẑ_0).
        lambda_dice: λ_dice of eq. 12 (Dice of the decoded ẑ_0; 0 skips the decode).
        dice_samples: how many samples of each batch are decoded for the Dice term; None decodes
            all. The backward pass through the frozen decoder at pixel resolution costs about as
            much per sample as the denoiser's whole step on CPU, hence a subset.
        dice_timesteps: which samples: "random" (an unbiased estimate of the batch mean) or
            "highest" (the largest t, where single-step inference runs; at small t, ẑ_0 ≈ z_0 and
            the term is nearly flat). On synth_polyp's validation split (DiffAug, 6 epochs, 3
            seeds; ``benchmarks/decisions.py``) the mean validation Dice was 0.604 with
            "highest" and 0.481 with "random" (higher on every seed).
        inference: "single" (one call at t = T − 1, eq. 11) or "iterative" (DDIM, Table 6's
            "w/o latent estimation"); validation during training always uses "single".
        iterative_steps: DDIM steps of "iterative".
        inference_seed: seed of the inference noise (predictions are deterministic).
        predict_batch_size: images per network call at inference.
        epochs, batch_size, learning_rate, weight_decay, warmup_steps, max_grad_norm: AdamW with
            linear warm-up and cosine decay to 0, gradient-norm clipping (0 disables).
        augmentation: "none" (latents encoded once); "dihedral" (flips and 90° turns: the 8
            variants of every training image encoded once, exact, but 8× the encoding, ~28 s CPU
            for 415 images at 64²; no gain at 12 epochs); or "standard" (flip, rotation, scale,
            elastic on pixels, then the batch is encoded by the frozen VAE every step).
        epoch_size: samples per epoch (None: the whole training set); set by
            ``train.synthetic_budget`` "equal_steps" for runs with synthetic data
            (:func:`benchmark.methods.supervised.epoch_order`).
        autoencoder_path: folder written by ``LatentAutoencoder.save`` (the ``autoencoder@<dataset>``
            stage's ``models/{dataset}/autoencoder/model``; ``{dataset}`` is filled by the train
            stage). None with nothing attached: ``fit`` trains one with ``autoencoder``.
        autoencoder: settings of that fallback autoencoder.
    """

    encoder: Literal["dual", "single"] = "dual"
    vision_input: Literal["latent", "pixels"] = "pixels"
    vision_channels: int = 64
    vision_blocks: int = 2
    fused_channels: int = 16
    denoiser_channels: tuple[int, ...] = (32, 64, 64)
    denoiser_layers_per_block: int = 1
    num_train_timesteps: int = 1000
    beta_schedule: Literal["scaled_linear", "linear"] = "scaled_linear"
    beta_start: float = 0.0015
    beta_end: float = 0.0155
    prediction_type: Literal["epsilon", "v_prediction"] = "v_prediction"
    lambda_latent: float = 1.0
    lambda_dice: float = 1.0
    dice_samples: int | None = 4
    dice_timesteps: Literal["random", "highest"] = "highest"
    inference: Literal["single", "iterative"] = "single"
    iterative_steps: int = 10
    inference_seed: int = 0
    predict_batch_size: int = 100
    epochs: int = 12
    batch_size: int = 16
    learning_rate: float = 1e-3
    weight_decay: float = 0.01
    warmup_steps: int = 20
    max_grad_norm: float = 1.0
    augmentation: Literal["none", "dihedral", "standard"] = "none"
    epoch_size: int | None = None
    autoencoder_path: str | None = None
    autoencoder: AutoencoderConfig = AutoencoderConfig()

    def __post_init__(self):
        check_epoch_size(self.epoch_size)
        positive = (
            "vision_channels",
            "fused_channels",
            "denoiser_layers_per_block",
            "num_train_timesteps",
            "iterative_steps",
            "predict_batch_size",
            "epochs",
            "batch_size",
        )
        for name in positive:
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)!r}")
        for name in ("vision_blocks", "lambda_latent", "lambda_dice", "weight_decay", "warmup_steps", "max_grad_norm"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)!r}")
        if self.dice_samples is not None and self.dice_samples < 1:
            raise ValueError(f"dice_samples must be >= 1 or null (decode the whole batch), got {self.dice_samples!r}")
        if not self.denoiser_channels or min(self.denoiser_channels) < 1:
            raise ValueError(f"denoiser_channels needs at least one positive width, got {self.denoiser_channels}")
        if not 0 < self.beta_start < self.beta_end < 1:
            raise ValueError(f"need 0 < beta_start < beta_end < 1, got {self.beta_start}, {self.beta_end}")
        if self.iterative_steps > self.num_train_timesteps:
            raise ValueError(
                f"iterative_steps {self.iterative_steps} exceeds num_train_timesteps {self.num_train_timesteps}"
            )
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate}")
        if self.autoencoder_path is not None and not self.autoencoder_path:
            raise ValueError("autoencoder_path must be a folder path or null, got an empty string")
