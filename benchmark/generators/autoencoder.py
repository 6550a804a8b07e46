"""The latent autoencoder shared by DiffAug's inpainting model and its latent segmentation gate.

DiffAug (paper §3.1–3.2) inpaints lesions in latent space and validates them with a latent
segmenter trained through the *decoded* mask (eq. 12), so one autoencoder must map images **and**
masks (as 3-channel ±1 images) to latents and back. The paper uses SD's VAE at 256² (f = 8); on
CPU at 64² we train a small diffusers ``AutoencoderKL`` (f = 4, 64² -> 4×16×16) or load a local
pretrained one. Losses are pixel L1 + MSE and a small KL only: SD's VAE adds LPIPS (VGG) and a
patch GAN, whose backbone weights cannot be downloaded here.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from benchmark.config import from_mapping, to_mapping
from benchmark.generators.configs import AutoencoderConfig
from benchmark.methods.supervised import images_to_tensor, mean_dice
from benchmark.utils.io import atomic_dir, atomic_path, read_json, write_json
from benchmark.utils.schedules import warmup_cosine
from benchmark.utils.seeding import derive_seed

WEIGHT_FILES = ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin")
METADATA_FILE = "latent_autoencoder.json"


def build_autoencoder(config: AutoencoderConfig):
    """A diffusers ``AutoencoderKL``: loaded from ``config.pretrained_path`` or freshly initialised.

    Initialisation draws from torch's global RNG; :func:`train_autoencoder` seeds it in a fork.

    Raises:
        FileNotFoundError: the pretrained folder is missing or lacks config.json / weights.
    """
    from diffusers import AutoencoderKL  # lazy: importing diffusers costs seconds

    if config.pretrained_path is not None:
        path = Path(config.pretrained_path)
        found = sorted(item.name for item in path.iterdir()) if path.is_dir() else None
        if found is None or "config.json" not in found or not set(WEIGHT_FILES) & set(found):
            raise FileNotFoundError(
                f"pretrained_path {path} is not a diffusers VAE folder: expected config.json and one of "
                f"{', '.join(WEIGHT_FILES)} (e.g. the vae/ folder of a Stable Diffusion checkpoint); "
                f"{'it does not exist' if found is None else f'it holds {found}'}"
            )
        vae = AutoencoderKL.from_pretrained(path, local_files_only=True)
        if vae.config.in_channels != 3 or vae.config.out_channels != 3:
            raise ValueError(f"pretrained_path {path}: the VAE must map 3 channels to 3, not {vae.config.in_channels}")
        return vae
    widths, common = tuple(config.block_out_channels), math.gcd(*config.block_out_channels)
    return AutoencoderKL(
        down_block_types=("DownEncoderBlock2D",) * len(widths),
        up_block_types=("UpDecoderBlock2D",) * len(widths),
        block_out_channels=widths,
        layers_per_block=config.layers_per_block,
        latent_channels=config.latent_channels,
        # GroupNorm needs a group count dividing every width; 32 is diffusers' (and SD's) choice.
        norm_num_groups=max(d for d in range(1, 33) if common % d == 0),
        mid_block_add_attention=config.mid_block_attention,
    )


class LatentAutoencoder:
    """A frozen VAE plus the scaling factor that gives its latents unit standard deviation.

    All numpy methods are batched, run under ``torch.no_grad`` in eval mode and are deterministic:
    they use the posterior mean, never a sample. Latents are float32 (N, C, H/f, W/f), already
    multiplied by ``scaling_factor`` (what a diffusion model sees).
    """

    def __init__(self, vae, scaling_factor: float, config: AutoencoderConfig, batch_size: int = 64):
        if not (math.isfinite(scaling_factor) and scaling_factor > 0):
            raise ValueError(f"scaling_factor must be positive and finite, got {scaling_factor}")
        self.vae = vae.eval().requires_grad_(False)
        self.vae.zero_grad(set_to_none=True)  # drop the last training step's gradients (memory)
        self.scaling_factor, self.config, self.batch_size = float(scaling_factor), config, batch_size

    @property
    def downsampling_factor(self) -> int:
        return 2 ** (len(self.vae.config.block_out_channels) - 1)

    @property
    def device(self) -> torch.device:
        return next(self.vae.parameters()).device

    def encode_images(self, images: np.ndarray) -> np.ndarray:
        """uint8 (N, H, W, 3) RGB -> float32 latents (N, C, H/f, W/f)."""
        if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
            raise ValueError(f"images must be uint8 (N, H, W, 3), got {images.dtype} {images.shape}")
        return self._encode(images_to_tensor(images))

    def encode_masks(self, masks: np.ndarray) -> np.ndarray:
        """{0, 1} (N, H, W) -> float32 latents (N, C, H/f, W/f) of the ±1 3-channel rendering."""
        return self._encode(masks_to_pixels(masks))

    def decode_images(self, latents) -> np.ndarray:
        """Latents (N, C, h, w) (numpy or tensor) -> uint8 (N, h·f, w·f, 3) RGB."""
        pixels = self._decode(latents).clamp(-1, 1)
        return ((pixels + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()

    def decode_masks(self, latents) -> np.ndarray:
        """Latents (N, C, h, w) -> float32 mask probability (N, h·f, w·f) in [0, 1]."""
        return _pixels_to_probability(self._decode(latents)).float().cpu().numpy()

    def decode_masks_tensor(self, latents: torch.Tensor) -> torch.Tensor:
        """Differentiable :meth:`decode_masks` (no ``no_grad``) for losses through the frozen decoder.

        Float (B, C, h, w) scaled latents, any device, may require grad -> (B, h·f, w·f) in [0, 1]
        on ``self.device`` in the VAE's dtype; gradients reach the latents, not the frozen VAE.
        """
        latents = latents.to(self.device, self.vae.dtype)
        return _pixels_to_probability(self.vae.decode(latents / self.scaling_factor).sample)

    @torch.no_grad()
    def _encode(self, pixels: torch.Tensor) -> np.ndarray:
        f = self.downsampling_factor
        if pixels.shape[-1] % f or pixels.shape[-2] % f:
            raise ValueError(f"image side {tuple(pixels.shape[-2:])} is not divisible by the VAE's factor {f}")
        self.vae.eval()
        latents = [
            self.vae.encode(pixels[start : start + self.batch_size].to(self.device, self.vae.dtype)).latent_dist.mean
            for start in range(0, len(pixels), self.batch_size)
        ]  # the posterior mean: deterministic
        return (torch.cat(latents).float() * self.scaling_factor).cpu().numpy()

    @torch.no_grad()
    def _decode(self, latents) -> torch.Tensor:
        latents = torch.as_tensor(latents)
        if latents.ndim != 4 or latents.shape[1] != self.vae.config.latent_channels:
            raise ValueError(
                f"latents must be (N, {self.vae.config.latent_channels}, h, w), got {tuple(latents.shape)}"
            )
        self.vae.eval()
        return torch.cat(
            [
                self.vae.decode(
                    latents[start : start + self.batch_size].to(self.device, self.vae.dtype) / self.scaling_factor
                ).sample
                for start in range(0, len(latents), self.batch_size)
            ]
        )

    def save(self, directory: str | Path) -> None:
        """Write ``vae/`` (diffusers, carrying the scaling factor) and the metadata json, atomically."""
        # Recording the factor in the VAE's own config lets ``vae/`` serve as a pretrained_path.
        self.vae.register_to_config(scaling_factor=self.scaling_factor)
        with atomic_dir(directory) as tmp:
            self.vae.save_pretrained(tmp / "vae")
            write_json(tmp / METADATA_FILE, {"scaling_factor": self.scaling_factor, "config": to_mapping(self.config)})

    @classmethod
    def load(cls, directory: str | Path) -> LatentAutoencoder:
        """Inverse of :meth:`save`; outputs are identical to the saved instance's."""
        from diffusers import AutoencoderKL

        directory = Path(directory)
        metadata = read_json(directory / METADATA_FILE)
        config = from_mapping(
            AutoencoderConfig, metadata["config"], where="autoencoder", source=str(directory / METADATA_FILE)
        )
        vae = AutoencoderKL.from_pretrained(directory / "vae", local_files_only=True)
        return cls(vae, metadata["scaling_factor"], config)


def masks_to_pixels(masks: np.ndarray) -> torch.Tensor:
    """{0, 1} (N, H, W) -> float32 (N, 3, H, W), foreground +1 and background -1."""
    if masks.ndim != 3 or not np.isin(masks, (0, 1)).all():
        raise ValueError(
            f"masks must be (N, H, W) in {{0, 1}}, got {masks.dtype} {masks.shape} with values {np.unique(masks)[:5]}"
        )
    return torch.from_numpy(masks.astype(np.float32) * 2 - 1).unsqueeze(1).expand(-1, 3, -1, -1).contiguous()


def _pixels_to_probability(pixels: torch.Tensor) -> torch.Tensor:
    return ((pixels.mean(dim=1) + 1) / 2).clamp(0, 1)


class _VAEWithKL(torch.nn.Module):
    """One forward for training, so DDP (under ``accelerate launch``) sees encode and decode."""

    def __init__(self, vae):
        super().__init__()
        self.vae = vae

    def forward(self, pixels: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        posterior = self.vae.encode(pixels).latent_dist
        reconstruction = self.vae.decode(posterior.sample(generator=generator)).sample
        return reconstruction, posterior.kl()  # kl: (B,), summed over latent elements


def train_autoencoder(
    images: np.ndarray,
    masks: np.ndarray,
    config: AutoencoderConfig,
    *,
    seed: int,
    checkpoint_dir: str | Path,
    progress: bool = True,
) -> tuple[LatentAutoencoder, pd.DataFrame]:
    """Train the VAE on images and masks (or load a pretrained one) and fit its scaling factor.

    Each step draws ``round(mask_share · batch_size)`` masks and the rest images, randomly flipped,
    from one seeded ``torch.Generator``; loss = L1 + mse_weight · MSE + KL term; AdamW, linear
    warm-up, cosine decay. A checkpoint (weights, optimiser, scheduler, generator, step, log) is
    written atomically every ``checkpoint_every`` steps; rerunning resumes and ends bit-identical
    to an uninterrupted run on CPU. Under ``accelerate launch`` ranks > 0 use derived seeds. With
    ``pretrained_path`` nothing is trained and the VAE config's ``scaling_factor`` is kept.

    Args:
        images: uint8 (N, S, S, 3) RGB; masks: uint8 (N, S, S) in {0, 1}; S divisible by f.
        config: see :class:`AutoencoderConfig`.
        seed: seeds initialisation, batches, flips and posterior samples.
        checkpoint_dir: receives ``checkpoint.pt`` and ``train_log.csv``.
        progress: show a tqdm bar.

    Returns:
        The frozen autoencoder and the per-step log (step, loss, l1, mse, kl, learning_rate).

    Raises:
        FloatingPointError: the loss became NaN or infinite.
    """
    from accelerate import Accelerator

    if config.pretrained_path is not None:
        vae = build_autoencoder(config)
        return LatentAutoencoder(vae, float(vae.config.scaling_factor), config), pd.DataFrame(columns=["step", "loss"])
    if images.shape[:3] != masks.shape:
        raise ValueError(f"masks {masks.shape} do not match images {images.shape}")
    image_pixels, mask_pixels = images_to_tensor(images), masks_to_pixels(masks)
    checkpoint_path = Path(checkpoint_dir) / "checkpoint.pt"
    accelerator = Accelerator()
    with torch.random.fork_rng(devices=[]):  # seeded initialisation without leaking into global RNG
        torch.manual_seed(derive_seed(seed, "autoencoder", "init"))
        vae = build_autoencoder(config)
    optimizer = torch.optim.AdamW(vae.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    scheduler = warmup_cosine(optimizer, config.warmup_steps, config.steps)
    # The scheduler stays unprepared: accelerate would step it once per process, but it counts our loop's steps.
    model, optimizer = accelerator.prepare(_VAEWithKL(vae), optimizer)
    rank = accelerator.process_index
    generator = torch.Generator().manual_seed(seed if rank == 0 else derive_seed(seed, "autoencoder", "rank", rank))
    history, start = [], 0
    if checkpoint_path.is_file():
        state = torch.load(checkpoint_path, map_location="cpu", weights_only=False)
        if state["config"] != to_mapping(config) or state["seed"] != seed:
            raise ValueError(f"{checkpoint_path} was written for another config or seed; delete it to start over")
        accelerator.unwrap_model(model).vae.load_state_dict(state["vae"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        history, start = state["history"], state["step"]
        if rank == 0:
            generator.set_state(state["generator"])
        else:  # only rank 0's stream is stored; other ranks restart a derived one
            generator.manual_seed(derive_seed(seed, "autoencoder", "rank", rank, start))

    n_masks = round(config.mask_share * config.batch_size)
    pixels_per_image = image_pixels[0].numel()
    bar = tqdm(range(start, config.steps), desc="autoencoder", disable=not progress, initial=start, total=config.steps)
    for step in bar:
        model.train()
        batch = torch.cat(
            [
                image_pixels[torch.randint(len(images), (config.batch_size - n_masks,), generator=generator)],
                mask_pixels[torch.randint(len(masks), (n_masks,), generator=generator)],
            ]
        )
        for dim in (-1, -2):  # horizontal and vertical flips, each with probability 1/2 per sample
            flip = (torch.rand(len(batch), generator=generator) < 0.5).view(-1, 1, 1, 1)
            batch = torch.where(flip, batch.flip(dim), batch)
        batch = batch.to(accelerator.device)
        reconstruction, kl = model(batch, generator)
        error = reconstruction.float() - batch
        l1, mse = error.abs().mean(), error.square().mean()
        # Divide by pixels per image: LDM weighs KL against the per-image *sum* of pixel losses.
        kl_term = kl.mean() / pixels_per_image
        loss = l1 + config.mse_weight * mse + config.kl_weight * kl_term
        if not torch.isfinite(loss):
            raise FloatingPointError(
                f"autoencoder loss became {loss.item()} at step {step}; lower learning_rate ({config.learning_rate})"
            )
        learning_rate = optimizer.param_groups[0]["lr"]  # the rate this step uses, for the log
        optimizer.zero_grad(set_to_none=True)
        accelerator.backward(loss)
        optimizer.step()
        scheduler.step()
        history.append(
            {
                "step": step,
                "loss": loss.item(),
                "l1": l1.item(),
                "mse": mse.item(),
                "kl": kl.mean().item(),
                "learning_rate": learning_rate,
            }
        )
        bar.set_postfix(l1=f"{l1.item():.4f}")
        if (step + 1) % config.checkpoint_every == 0 or step + 1 == config.steps:
            if accelerator.is_main_process:
                state = {
                    "step": step + 1,
                    "vae": accelerator.unwrap_model(model).vae.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(),
                    "generator": generator.get_state(),
                    "history": history,
                    "config": to_mapping(config),
                    "seed": seed,
                }
                with atomic_path(checkpoint_path, suffix=".pt") as tmp:
                    torch.save(state, tmp)
            accelerator.wait_for_everyone()

    vae = accelerator.unwrap_model(model).vae
    # Stable Diffusion's 0.18215 is 1 / std of its training images' latents; we fit ours the same way.
    unscaled = LatentAutoencoder(vae, 1.0, config).encode_images(images)
    log = pd.DataFrame(history)
    if accelerator.is_main_process:
        with atomic_path(Path(checkpoint_dir) / "train_log.csv", suffix=".csv") as tmp:
            log.to_csv(tmp, index=False)
    return LatentAutoencoder(vae, 1.0 / float(unscaled.std()), config), log


def reconstruction_report(autoencoder: LatentAutoencoder, images: np.ndarray, masks: np.ndarray) -> dict:
    """How faithfully images and masks survive encode -> decode.

    Args:
        autoencoder: the trained or loaded autoencoder.
        images: uint8 (N, H, W, 3); masks: {0, 1} (N, H, W), typically a validation split.

    Returns:
        ``image_psnr_db`` (mean per-image PSNR of the uint8 round trip), ``lesion_psnr_db`` (the
        same inside the mask, over images with a lesion; NaN if none), ``mask_dice`` (mean
        per-image Dice of the decoded mask at 0.5; both empty = 1), ``latent_shape`` [C, h, w],
        ``scaling_factor``, and the std of the scaled image and mask latents.
    """
    latents = autoencoder.encode_images(images)
    squared = np.square(autoencoder.decode_images(latents).astype(np.float64) - images).mean(axis=-1)
    mse = np.maximum(squared.mean(axis=(1, 2)), 1e-10)  # a perfect image would give inf
    # Whole-image PSNR is dominated by smooth background; the lesion is what DiffAug generates.
    lesion = masks.sum(axis=(1, 2)) > 0
    lesion_mse = np.maximum((squared * masks).sum(axis=(1, 2))[lesion] / masks.sum(axis=(1, 2))[lesion], 1e-10)
    mask_latents = autoencoder.encode_masks(masks)
    return {
        "image_psnr_db": float(np.mean(10 * np.log10(255.0**2 / mse))),
        "lesion_psnr_db": float(np.mean(10 * np.log10(255.0**2 / lesion_mse))) if lesion.any() else float("nan"),
        "mask_dice": mean_dice(autoencoder.decode_masks(mask_latents), masks),
        "latent_shape": list(latents.shape[1:]),
        "scaling_factor": autoencoder.scaling_factor,
        "image_latent_std": float(latents.std()),
        "mask_latent_std": float(mask_latents.std()),
    }
