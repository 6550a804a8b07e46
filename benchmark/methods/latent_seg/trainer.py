"""Resumable training of the latent segmentation network with eq. 12.

The frozen autoencoder's outputs are computed once where augmentation allows it: with
"none" and "dihedral" every image latent z_a and mask latent z_0 a step needs is precomputed (the
8 dihedral variants are encoded from the *transformed pixels*: flipping or turning a latent is not
the latent of the flipped image, the VAE is far from equivariant, ~20 % relative error), and a
step costs the network's forward and backward plus, for the Dice term, one decode through the
frozen decoder. "standard" resamples pixels, so it encodes every batch through the frozen encoder.

CPU cost at 64² (415 training images, f = 4 VAE, one thread, measured under load): encoding the
training set (images + masks) once ~3.6 s, so "none" adds ~3.6 s per run, "dihedral" ~28 s per run
and "standard" ~3.6 s per *epoch*, against ~5–6 s per epoch for the steps themselves (denoiser
forward/backward ~0.11 s per batch of 16, Dice decode + backward of 4 samples ~0.09 s) and ~1 s
for the validation pass (73 images, dominated by the decoder).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from benchmark.config import to_mapping
from benchmark.data.augment import standard_augment
from benchmark.data.prepared import SegmentationData
from benchmark.generators.autoencoder import masks_to_pixels
from benchmark.methods.latent_seg.config import LatentSegmenterConfig
from benchmark.methods.latent_seg.diffusion import (
    NoiseSchedule,
    add_noise,
    estimate_clean_latent,
    noise_from_output,
    segmentation_loss,
)
from benchmark.methods.latent_seg.inference import predict_masks
from benchmark.methods.latent_seg.network import LatentSegmentationNetwork
from benchmark.methods.supervised import epoch_order, images_to_tensor, mean_dice, steps_per_epoch
from benchmark.utils.io import atomic_path, load_torch_file
from benchmark.utils.schedules import warmup_cosine

LOG_COLUMNS = ["epoch", "train_loss", "noise", "latent", "dice", "val_dice", "best", "seconds"]


def schedule_of(config: LatentSegmenterConfig) -> NoiseSchedule:
    return NoiseSchedule(config.num_train_timesteps, config.beta_schedule, config.beta_start, config.beta_end)


class TrainingBatches:
    """Training tensors (CPU) and how a batch is drawn from them under the chosen augmentation."""

    def __init__(self, data: SegmentationData, autoencoder, network: LatentSegmentationNetwork, augmentation: str):
        self.autoencoder, self.augmentation, self.n = autoencoder, augmentation, len(data)
        self.uses_image_latents, self.uses_pixels = network.uses_image_latents, network.uses_pixels
        images, masks = data.images, data.masks
        if augmentation == "dihedral":  # variant v of image i sits at row v·N + i
            images, masks = dihedral_variants(images), dihedral_variants(masks)
        self.pixels, self.masks = images_to_tensor(images), torch.from_numpy(masks.astype(np.float32))
        if augmentation != "standard":
            self.image_latents = (
                torch.from_numpy(autoencoder.encode_images(images)) if self.uses_image_latents else None
            )
            self.mask_latents = torch.from_numpy(autoencoder.encode_masks(masks))

    def draw(self, index: torch.Tensor, generator: torch.Generator) -> dict[str, torch.Tensor | None]:
        """``image_latents``, ``pixels``, ``mask_latents`` and ``masks`` of the samples ``index`` (N-based)."""
        if self.augmentation == "dihedral":
            index = index + self.n * torch.randint(8, (len(index),), generator=generator)
        if self.augmentation != "standard":
            return {
                "image_latents": self.image_latents[index] if self.uses_image_latents else None,
                "pixels": self.pixels[index] if self.uses_pixels else None,
                "mask_latents": self.mask_latents[index],
                "masks": self.masks[index],
            }
        pixels, masks = standard_augment(self.pixels[index], self.masks[index].unsqueeze(1), generator)
        return {
            "image_latents": self._encode(pixels) if self.uses_image_latents else None,
            "pixels": pixels if self.uses_pixels else None,
            "mask_latents": self._encode(masks_to_pixels(masks[:, 0].round().to(torch.uint8).numpy())),
            "masks": masks[:, 0],
        }

    @torch.no_grad()
    def _encode(self, pixels: torch.Tensor) -> torch.Tensor:
        vae = self.autoencoder.vae
        posterior = vae.encode(pixels.to(self.autoencoder.device, vae.dtype)).latent_dist
        return posterior.mean.float().cpu() * self.autoencoder.scaling_factor  # as LatentAutoencoder: the mean, scaled


def stratified_timesteps(count: int, num_train_timesteps: int, generator: torch.Generator) -> torch.Tensor:
    """``count`` timesteps, one per equal stratum of [0, T) in random order; each is marginally U{0..T−1}.

    Same objective as i.i.d. uniform t, lower variance: eq. 12's latent term grows as
    sqrt((1 − ᾱ_t)/ᾱ_t) (≈ 38 at t = T − 1), so a batch with a few more high-t samples than
    another has a much larger loss; one draw per stratum makes every batch cover all noise levels.
    """
    strata = torch.randperm(count, generator=generator).double() + torch.rand(
        count, generator=generator, dtype=torch.float64
    )
    return (strata * num_train_timesteps / count).long().clamp_(max=num_train_timesteps - 1)


def dice_selection(timesteps: torch.Tensor, count: int | None, rule: str) -> torch.Tensor:
    """Indices of the batch samples whose ẑ_0 is decoded for eq. 12's Dice term.

    "random": the first ``count`` (the batch is in random order); "highest": the ``count`` with the
    largest t, the regime of single-step inference (at small t, ẑ_0 ≈ z_0 and the term is flat).
    """
    count = len(timesteps) if count is None else min(count, len(timesteps))
    if rule == "highest":
        return torch.argsort(timesteps, descending=True, stable=True)[:count]
    return torch.arange(count)


def dihedral_variants(array: np.ndarray) -> np.ndarray:
    """(N, H, W, ...) -> (8N, H, W, ...): the 4 rotations by 90° of the array and of its mirror image."""
    mirrored = array[:, :, ::-1]
    return np.ascontiguousarray(
        np.concatenate([np.rot90(a, k, axes=(1, 2)) for a in (array, mirrored) for k in range(4)])
    )


def train_latent_segmenter(
    network: LatentSegmentationNetwork,
    autoencoder,
    train: SegmentationData,
    val: SegmentationData,
    config: LatentSegmenterConfig,
    *,
    seed: int,
    checkpoint_dir: str | Path,
    progress: bool = True,
    description: str = "latent_seg",
) -> pd.DataFrame:
    """Train ``network`` in place with eq. 12 and load the state with the best validation Dice.

    Each epoch visits the training set in a seeded random order; per sample t ~ U{0..T−1}
    (stratified within the batch, :func:`stratified_timesteps`) and ε ~ N(0, I), all from one
    ``torch.Generator``. Validation Dice (at 0.5) uses single-step inference
    with the configured inference seed. A checkpoint (network, optimiser, scheduler, generator,
    best state, log, config, seed) is written atomically after every epoch; rerunning resumes and
    ends bit-identical to an uninterrupted run on CPU. The device is ``accelerate``'s (one process).

    Args:
        network: freshly built (seeded) network; trained in place.
        autoencoder: the frozen ``LatentAutoencoder`` (moved to the training device).
        train, val: training and checkpoint-selection data, uint8 images S×S, S divisible by f.
        config: see :class:`LatentSegmenterConfig`.
        seed: seeds batches, timesteps and noise.
        checkpoint_dir: receives ``checkpoint.pt`` and ``train_log.csv``.
        progress: show a tqdm bar.
        description: label of the bar and of errors.

    Returns:
        The per-epoch log (epoch, train_loss, noise, latent, dice, val_dice, best, seconds).

    Raises:
        ValueError: a checkpoint of another config or seed is in ``checkpoint_dir``.
        FloatingPointError: the loss became NaN or infinite.
    """
    from accelerate import Accelerator

    accelerator = Accelerator()
    if accelerator.num_processes > 1:
        raise RuntimeError(
            f"{description}: the latent segmenter trains in one process; run it without `accelerate launch`"
        )
    checkpoint_dir = Path(checkpoint_dir)
    checkpoint_path = checkpoint_dir / "checkpoint.pt"
    device = accelerator.device
    autoencoder.vae.to(device)
    network.to(device)
    alphas = schedule_of(config).alphas_cumprod()
    batches = TrainingBatches(train, autoencoder, network, config.augmentation)
    total_steps = config.epochs * steps_per_epoch(len(train), config.epoch_size, config.batch_size)
    optimizer = torch.optim.AdamW(network.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    scheduler = warmup_cosine(optimizer, config.warmup_steps, total_steps)
    generator = torch.Generator().manual_seed(seed)
    history, best_score, best_state, start_epoch = [], -1.0, None, 0
    if checkpoint_path.is_file():
        state = load_torch_file(checkpoint_path, weights_only=False)
        if state["config"] != to_mapping(config) or state["seed"] != seed:
            raise ValueError(f"{checkpoint_path} was written for another config or seed; delete it to start over")
        network.load_state_dict(state["network"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        generator.set_state(state["generator"])
        history, best_score, best_state, start_epoch = (
            state["history"],
            state["best_score"],
            state["best_state"],
            state["epoch"] + 1,
        )

    bar = tqdm(
        range(start_epoch, config.epochs),
        desc=description,
        disable=not progress,
        unit="epoch",
        initial=start_epoch,
        total=config.epochs,
    )
    for epoch in bar:
        began = time.perf_counter()
        network.train()
        order = epoch_order(len(train), config.epoch_size, generator)
        terms = []
        for start in range(0, len(order), config.batch_size):
            batch = batches.draw(order[start : start + config.batch_size], generator)
            clean = batch["mask_latents"]
            timesteps = stratified_timesteps(len(clean), config.num_train_timesteps, generator)
            noise = torch.randn(clean.shape, generator=generator)
            clean, noise, alpha = clean.to(device), noise.to(device), alphas[timesteps].to(device)
            noisy = add_noise(clean, noise, alpha)
            condition = network.encode_condition(
                *(batch[k].to(device) if batch[k] is not None else None for k in ("image_latents", "pixels"))
            )
            noise_pred = noise_from_output(
                network(noisy, timesteps.to(device), condition), noisy, alpha, config.prediction_type
            )
            clean_pred = estimate_clean_latent(noisy, noise_pred, alpha)
            chosen = dice_selection(timesteps, config.dice_samples, config.dice_timesteps)
            decoded = autoencoder.decode_masks_tensor(clean_pred[chosen.to(device)]) if config.lambda_dice > 0 else None
            loss, parts = segmentation_loss(
                noise,
                noise_pred,
                clean,
                clean_pred,
                decoded,
                batch["masks"][chosen],
                lambda_latent=config.lambda_latent,
                lambda_dice=config.lambda_dice,
            )
            if not torch.isfinite(loss):
                raise FloatingPointError(
                    f"{description}: loss became {loss.item()} at epoch {epoch}; lower learning_rate "
                    f"({config.learning_rate}) or lambda_latent ({config.lambda_latent})"
                )
            optimizer.zero_grad(set_to_none=True)
            accelerator.backward(loss)
            if config.max_grad_norm > 0:
                torch.nn.utils.clip_grad_norm_(network.parameters(), config.max_grad_norm)
            optimizer.step()
            scheduler.step()
            terms.append({"train_loss": loss.item(), **parts})
        # Checkpoint selection on validation only, with the inference the quality gate uses.
        probabilities = predict_masks(
            network,
            autoencoder,
            val.images,
            alphas_cumprod=alphas,
            steps=1,
            seed=config.inference_seed,
            batch_size=config.predict_batch_size,
            prediction_type=config.prediction_type,
        )
        score = mean_dice(probabilities, val.masks)
        improved = score > best_score
        if improved:
            best_score = score
            best_state = {key: value.detach().cpu().clone() for key, value in network.state_dict().items()}
        means = pd.DataFrame(terms).mean().to_dict()
        history.append(
            {"epoch": epoch, **means, "val_dice": score, "best": improved, "seconds": time.perf_counter() - began}
        )
        bar.set_postfix(loss=f"{means['train_loss']:.3f}", val_dice=f"{score:.3f}", best=f"{best_score:.3f}")
        state = {
            "epoch": epoch,
            "network": network.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "generator": generator.get_state(),
            "best_score": best_score,
            "best_state": best_state,
            "history": history,
            "config": to_mapping(config),
            "seed": seed,
        }
        with atomic_path(checkpoint_path, suffix=".pt") as tmp:
            torch.save(state, tmp)
    if best_state is not None:
        network.load_state_dict(best_state)
    network.eval()
    log = pd.DataFrame(history, columns=LOG_COLUMNS)
    with atomic_path(checkpoint_dir / "train_log.csv", suffix=".csv") as tmp:
        log.to_csv(tmp, index=False)
    return log
