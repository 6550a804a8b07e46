"""Mask diffusion in pixel space: noise schedule, loss, DDIM ensemble sampler, resumable trainer.

Shared by the diffusion segmenters of Table 2 that diffuse the *mask* conditioned on the image
(MedSegDiff-V1/V2, Diff-Trans). Network, diffusion process, sampler and trainer are kept apart
(as in diffusers: models / schedulers / pipelines); a method supplies a network that follows
:class:`MaskDenoiser` and subclasses :class:`MaskDiffusionMethod`.

Conventions:

- Images enter networks as float32 ``(B, 3, H, W)`` in [-1, 1]
  (:func:`~benchmark.methods.supervised.images_to_tensor`).
- The diffused mask ``x_0`` is float32 ``(B, 1, H, W)`` in {-1, +1} (foreground = +1).
- Forward process: DDPM with linear betas 1e-4 -> 0.02 over ``T = 1000`` steps (MedSegDiff);
  the network predicts the noise ``eps`` as in MedSegDiff (``prediction_type="epsilon"``), the
  clean mask (``"sample"``, the CPU-scale default, see :class:`MaskDiffusionConfig`) or the
  velocity (``"v_prediction"``).
- Inference: deterministic DDIM (eta = 0, diffusers ``DDIMScheduler`` with "trailing" spacing,
  so the first step starts at ``t = T - 1``, and ``x_0`` clipped to [-1, 1]) from seeded
  Gaussian noise; ``K`` samples per image (the ensemble) are drawn in one batch and averaged;
  the probability is ``(mean + 1) / 2`` in [0, 1].
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from benchmark.config import check_epoch_size
from benchmark.data.augment import standard_augment
from benchmark.data.prepared import SegmentationData
from benchmark.methods.base import SegmentationMethod
from benchmark.methods.supervised import (
    dice_bce_loss,
    epoch_order,
    images_to_tensor,
    masks_to_tensor,
    mean_dice,
    module_device,
    steps_per_epoch,
    training_device,
)
from benchmark.utils.io import atomic_path, load_torch_file

TRAIN_TIMESTEPS = 1000
BETA_START, BETA_END = 1e-4, 0.02


class MaskDenoiser(Protocol):
    """What the loss and the sampler need from a network.

    ``encode_condition(images (B, 3, H, W) in [-1, 1]) -> condition``: everything computed from
    the image alone, once per image (not per diffusion step). A nested dict/list of tensors
    whose leading axis is B; the optional key ``"anchor_logits"`` ``(B, 1, H, W)`` is the
    condition branch's own segmentation, trained by the auxiliary loss.

    ``__call__(noisy_masks (B, 1, H, W), timesteps int64 (B,), condition) -> (B, 1, H, W)``: the
    predicted noise (or clean mask / velocity, per ``prediction_type``).
    """

    def encode_condition(self, images: torch.Tensor) -> Any: ...

    def __call__(self, noisy_masks: torch.Tensor, timesteps: torch.Tensor, condition: Any) -> torch.Tensor: ...


PredictionType = Literal["epsilon", "sample", "v_prediction"]


def training_scheduler(prediction_type: PredictionType = "epsilon", num_train_timesteps: int = TRAIN_TIMESTEPS):
    """The forward process: diffusers ``DDPMScheduler`` with linear betas."""
    from diffusers import DDPMScheduler

    return DDPMScheduler(
        num_train_timesteps=num_train_timesteps,
        beta_start=BETA_START,
        beta_end=BETA_END,
        beta_schedule="linear",
        prediction_type=prediction_type,
        clip_sample=True,
    )


def sampling_scheduler(
    steps: int, prediction_type: PredictionType = "epsilon", num_train_timesteps: int = TRAIN_TIMESTEPS
):
    """A DDIM scheduler over the same betas, set to ``steps`` inference steps."""
    from diffusers import DDIMScheduler

    scheduler = DDIMScheduler(
        num_train_timesteps=num_train_timesteps,
        beta_start=BETA_START,
        beta_end=BETA_END,
        beta_schedule="linear",
        prediction_type=prediction_type,
        clip_sample=True,
        set_alpha_to_one=True,
        timestep_spacing="trailing",
    )
    scheduler.set_timesteps(steps)
    return scheduler


def masks_to_diffusion(masks: torch.Tensor) -> torch.Tensor:
    """{0, 1} float ``(B, 1, H, W)`` -> {-1, +1}."""
    return masks * 2 - 1


def map_condition(condition: Any, function: Callable[[torch.Tensor], torch.Tensor]) -> Any:
    """Apply ``function`` to every tensor of a nested dict/list/tuple condition."""
    if torch.is_tensor(condition):
        return function(condition)
    if isinstance(condition, dict):
        return {key: map_condition(value, function) for key, value in condition.items()}
    if isinstance(condition, (list, tuple)):
        return type(condition)(map_condition(value, function) for value in condition)
    return condition


def denoising_loss(
    network: MaskDenoiser,
    images: torch.Tensor,
    masks: torch.Tensor,
    scheduler,
    generator: torch.Generator,
    *,
    auxiliary_weight: float = 0.0,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Diffusion MSE at a uniformly drawn timestep, plus ``auxiliary_weight`` x BCE+Dice on the anchor.

    The MSE compares the network output with the target of ``scheduler.config.prediction_type``:
    the noise (``"epsilon"``, the papers' loss), the clean mask (``"sample"``) or the velocity.

    Args:
        network: a :class:`MaskDenoiser`.
        images: float32 ``(B, 3, H, W)`` in [-1, 1].
        masks: float32 ``(B, 1, H, W)`` in {0, 1}.
        scheduler: the training scheduler (:func:`training_scheduler`), which sets the target.
        generator: CPU generator for timesteps and noise.
        auxiliary_weight: weight of the segmentation loss on ``condition["anchor_logits"]``
            (ignored when the condition has no such key).

    Returns:
        ``(loss, parts)``: the scalar to minimise and its float parts ``diffusion_mse``, ``auxiliary``.
    """
    batch = images.shape[0]
    clean = masks_to_diffusion(masks)
    noise = torch.randn(clean.shape, generator=generator).to(
        clean.device
    )  # drawn on the CPU: the same stream on any device
    timesteps = torch.randint(0, scheduler.config.num_train_timesteps, (batch,), generator=generator).to(clean.device)
    noisy = scheduler.add_noise(clean, noise, timesteps)
    condition = network.encode_condition(images)
    target = {"epsilon": noise, "sample": clean}.get(scheduler.config.prediction_type)
    if target is None:
        target = scheduler.get_velocity(clean, noise, timesteps)
    diffusion_mse = F.mse_loss(network(noisy, timesteps, condition), target)
    loss, parts = diffusion_mse, {"diffusion_mse": diffusion_mse.item(), "auxiliary": 0.0}
    if auxiliary_weight > 0 and isinstance(condition, dict) and "anchor_logits" in condition:
        auxiliary = dice_bce_loss(condition["anchor_logits"], masks)
        loss = loss + auxiliary_weight * auxiliary
        parts["auxiliary"] = auxiliary.item()
    return loss, parts


@torch.no_grad()
def sample_masks(
    network: MaskDenoiser,
    images: torch.Tensor,
    *,
    steps: int,
    ensemble: int,
    generator: torch.Generator,
    images_per_batch: int = 64,
    prediction_type: PredictionType = "epsilon",
) -> torch.Tensor:
    """DDIM-sample ``ensemble`` masks per image and average them.

    All initial noise ``(N, K, 1, H, W)`` is drawn from ``generator`` up front, so the result
    does not depend on ``images_per_batch``. Each batch runs ``images_per_batch * K`` samples
    through the denoiser per step; the condition is encoded once per image.

    Args:
        network: a :class:`MaskDenoiser` (put in eval mode by the caller).
        images: float32 ``(N, 3, H, W)`` in [-1, 1].
        steps: DDIM steps (>= 1).
        ensemble: K samples per image (>= 1).
        generator: CPU generator of the initial noise.
        images_per_batch: images per denoiser batch (each with K samples).
        prediction_type: what the network predicts (as in training).

    Returns:
        float32 ``(N, 1, H, W)``: the ensemble mean in [-1, 1].
    """
    if steps < 1 or ensemble < 1:
        raise ValueError(f"steps and ensemble must be >= 1, got {steps}, {ensemble}")
    count, _, height, width = images.shape
    noise = torch.randn((count, ensemble, 1, height, width), generator=generator)
    scheduler = sampling_scheduler(steps, prediction_type)
    device = module_device(network, images.device)  # the network's device (any callable denoiser: the images')
    means = []
    for start in range(0, count, images_per_batch):
        chunk = images[start : start + images_per_batch].to(device)
        condition = map_condition(network.encode_condition(chunk), lambda t: t.repeat_interleave(ensemble, dim=0))
        sample = noise[start : start + len(chunk)].reshape(-1, 1, height, width).to(device)
        for timestep in scheduler.timesteps:
            timesteps = torch.full((sample.shape[0],), int(timestep), dtype=torch.long, device=device)
            prediction = network(sample, timesteps, condition)
            sample = scheduler.step(prediction, int(timestep), sample, eta=0.0).prev_sample
        means.append(sample.clamp(-1, 1).view(len(chunk), ensemble, 1, height, width).mean(dim=1).cpu())
    return torch.cat(means) if means else torch.zeros((0, 1, height, width))


def probabilities_from_samples(mean_sample: torch.Tensor) -> torch.Tensor:
    """Ensemble mean ``(N, 1, H, W)`` in [-1, 1] -> float32 ``(N, H, W)`` in [0, 1]."""
    return ((mean_sample[:, 0] + 1) / 2).clamp(0, 1).float()


# ----------------------------------------------------------------------------------------------
# Configuration, trainer and method base class
# ----------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class MaskDiffusionConfig:
    """Hyper-parameters shared by every mask-diffusion method (extended by each method's Config).

    Attributes:
        epochs: training epochs.
        batch_size: images per optimiser step.
        learning_rate: peak AdamW learning rate (linear warm-up, then cosine decay to 0).
        weight_decay: AdamW weight decay.
        warmup_fraction: share of the optimiser steps spent warming up.
        gradient_clip: maximum global gradient norm (0 = no clipping).
        augmentation: "standard" (flip, rotation, scale, elastic) or "none".
        prediction_type: the network's target: "epsilon" (noise, as MedSegDiff), "sample"
            (clean mask) or "v_prediction". The default is "sample": the x_0 loss is the noise
            loss re-weighted by 1 / SNR(t), which stresses the noisy timesteps where only the
            image tells where the mask is. With the few hundred optimiser steps of the CPU-scale
            run, epsilon-trained denoisers had not learnt to use the image (MedSegDiff-V1 on
            synth_polyp's validation split, the default 8 epochs, 3 seeds, 10 DDIM steps × 5:
            mean validation Dice 0.079 with "epsilon", 0.613 with "sample";
            ``benchmarks/decisions.py``).
        auxiliary_weight: weight of the BCE + Dice loss on the condition branch's anchor
            segmentation, added to the noise MSE (0 = noise MSE only).
        inference_steps: DDIM steps at test time.
        ensemble_size: samples averaged per image at test time.
        validation_steps: DDIM steps of the per-epoch validation Dice (checkpoint selection);
            fewer than at test time to keep validation cheap.
        validation_ensemble: samples per image of the per-epoch validation.
        epoch_size: samples per epoch (None: the whole training set); set by
            ``train.synthetic_budget`` "equal_steps" for runs with synthetic data
            (:func:`benchmark.methods.supervised.epoch_order`).
    """

    epochs: int = 15
    batch_size: int = 16
    learning_rate: float = 2e-3
    weight_decay: float = 1e-4
    warmup_fraction: float = 0.05
    gradient_clip: float = 1.0
    augmentation: Literal["none", "standard"] = "standard"
    prediction_type: PredictionType = "sample"
    auxiliary_weight: float = 1.0
    inference_steps: int = 10
    ensemble_size: int = 5
    validation_steps: int = 3
    validation_ensemble: int = 1
    epoch_size: int | None = None

    def __post_init__(self):
        check_epoch_size(self.epoch_size)
        for name in (
            "epochs",
            "batch_size",
            "inference_steps",
            "ensemble_size",
            "validation_steps",
            "validation_ensemble",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.learning_rate <= 0 or self.weight_decay < 0 or self.gradient_clip < 0 or self.auxiliary_weight < 0:
            raise ValueError("learning_rate must be > 0; weight_decay, gradient_clip and auxiliary_weight >= 0")
        if not 0 <= self.warmup_fraction < 1:
            raise ValueError(f"warmup_fraction must be in [0, 1), got {self.warmup_fraction}")


def train_mask_diffusion(
    network: torch.nn.Module,
    train: SegmentationData,
    config: MaskDiffusionConfig,
    *,
    seed: int,
    checkpoint_dir: Path,
    validate: Callable[[], float],
    progress: bool = True,
    description: str = "train",
) -> pd.DataFrame:
    """Train ``network`` in place with :func:`denoising_loss`; load its best validation state.

    One seeded ``torch.Generator`` drives shuffling, augmentation, timesteps and noise. After
    every epoch ``validate()`` returns the validation Dice of the current weights (the method's
    own, cheap inference); the best state is kept (validation only, never test) and a resumable
    checkpoint is written atomically to ``checkpoint_dir/checkpoint.pt``; an interrupted run
    resumes from it. Returns the per-epoch log (epoch, train_loss, diffusion_mse, auxiliary,
    val_dice, best), also written to ``checkpoint_dir/train_log.csv``.

    Raises:
        FloatingPointError: the loss became NaN or infinite.
    """
    from benchmark.utils.schedules import warmup_cosine

    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    checkpoint_path = checkpoint_dir / "checkpoint.pt"
    generator = torch.Generator().manual_seed(
        seed
    )  # CPU: batches, augmentation, t and noise (same stream on any device)
    device = training_device()
    network.to(device)
    scheduler = training_scheduler(config.prediction_type)
    optimizer = torch.optim.AdamW(network.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    total_steps = config.epochs * steps_per_epoch(len(train), config.epoch_size, config.batch_size)
    learning_rate = warmup_cosine(optimizer, int(config.warmup_fraction * total_steps), total_steps)
    history: list[dict] = []
    best_score, best_state, start_epoch = -1.0, None, 0
    if checkpoint_path.is_file():
        state = load_torch_file(checkpoint_path, weights_only=False)
        network.load_state_dict(state["network"])
        optimizer.load_state_dict(state["optimizer"])
        learning_rate.load_state_dict(state["learning_rate"])
        generator.set_state(state["generator"])
        best_score, best_state, history = state["best_score"], state["best_state"], state["history"]
        start_epoch = state["epoch"] + 1

    images, masks = images_to_tensor(train.images), masks_to_tensor(train.masks)
    bar = tqdm(
        range(start_epoch, config.epochs),
        desc=description,
        disable=not progress,
        unit="epoch",
        initial=start_epoch,
        total=config.epochs,
    )
    for epoch in bar:
        network.train()
        order = epoch_order(len(train), config.epoch_size, generator)
        totals = {"train_loss": [], "diffusion_mse": [], "auxiliary": []}
        for start in range(0, len(order), config.batch_size):
            index = order[start : start + config.batch_size]
            batch_images, batch_masks = images[index], masks[index]
            if config.augmentation == "standard":
                batch_images, batch_masks = standard_augment(batch_images, batch_masks, generator)
            batch_images, batch_masks = batch_images.to(device), batch_masks.to(device)
            loss, parts = denoising_loss(
                network, batch_images, batch_masks, scheduler, generator, auxiliary_weight=config.auxiliary_weight
            )
            if not torch.isfinite(loss):
                raise FloatingPointError(
                    f"{description}: loss became {loss.item()} at epoch {epoch} (diffusion MSE {parts['diffusion_mse']}, "
                    f"auxiliary {parts['auxiliary']}); lower learning_rate (now {config.learning_rate}) or set gradient_clip"
                )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if config.gradient_clip > 0:
                torch.nn.utils.clip_grad_norm_(network.parameters(), config.gradient_clip)
            optimizer.step()
            learning_rate.step()
            totals["train_loss"].append(loss.item())
            totals["diffusion_mse"].append(parts["diffusion_mse"])
            totals["auxiliary"].append(parts["auxiliary"])
        network.eval()
        score = float(validate())
        improved = score > best_score
        if improved:
            best_score = score
            best_state = {key: value.detach().clone() for key, value in network.state_dict().items()}
        means = {key: float(np.mean(values)) for key, values in totals.items()}
        history.append({"epoch": epoch, **means, "val_dice": score, "best": improved})
        bar.set_postfix(loss=f"{means['train_loss']:.3f}", val_dice=f"{score:.3f}", best=f"{best_score:.3f}")
        with atomic_path(checkpoint_path, suffix=".pt") as tmp:
            torch.save(
                {
                    "epoch": epoch,
                    "network": network.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "learning_rate": learning_rate.state_dict(),
                    "generator": generator.get_state(),
                    "best_score": best_score,
                    "best_state": best_state,
                    "history": history,
                },
                tmp,
            )
    if best_state is not None:
        network.load_state_dict(best_state)
    network.eval()
    log = pd.DataFrame(history)
    with atomic_path(checkpoint_dir / "train_log.csv", suffix=".csv") as tmp:
        log.to_csv(tmp, index=False)
    return log


class MaskDiffusionMethod(SegmentationMethod):
    """Base of the mask-diffusion methods: fit / predict / save / load around :meth:`build_network`.

    Subclasses set ``name``, ``display_name``, ``Config`` (a :class:`MaskDiffusionConfig`
    subclass) and implement :meth:`build_network`. Sampling noise comes from a generator seeded
    by a seed derived from the training seed and stored with the weights, so a saved and
    reloaded model predicts identically, and so does a second fit with the same seed.
    """

    def __init__(self, config: MaskDiffusionConfig | None = None):
        super().__init__(config)
        self.network = self.build_network()
        self.sampling_seed = 0

    @abc.abstractmethod
    def build_network(self) -> torch.nn.Module:
        """A fresh :class:`MaskDenoiser` network for ``self.config``."""

    def fit(
        self, train: SegmentationData, val: SegmentationData, *, seed: int, out_dir: Path, progress: bool = True
    ) -> None:
        from benchmark.utils.seeding import derive_seed

        with torch.random.fork_rng():
            torch.manual_seed(seed)  # weight initialisation draws from torch's global RNG
            self.network = self.build_network()
        self.sampling_seed = derive_seed(seed, self.name, "sampling")
        validation_seed = derive_seed(seed, self.name, "validation")
        config = self.config

        def validate() -> float:
            probabilities = self.predict(
                val.images, steps=config.validation_steps, ensemble=config.validation_ensemble, seed=validation_seed
            )
            return mean_dice(probabilities, val.masks)

        train_mask_diffusion(
            self.network,
            train,
            config,
            seed=seed,
            checkpoint_dir=Path(out_dir),
            validate=validate,
            progress=progress,
            description=f"{self.name} seed {seed}",
        )

    def predict(
        self, images: np.ndarray, *, steps: int | None = None, ensemble: int | None = None, seed: int | None = None
    ) -> np.ndarray:
        """uint8 ``(N, H, W, 3)`` -> float32 ``(N, H, W)`` in [0, 1]: mean of the DDIM ensemble.

        ``steps``, ``ensemble`` and ``seed`` default to the config's test-time values and the
        stored sampling seed.
        """
        self.network.eval()
        generator = torch.Generator().manual_seed(self.sampling_seed if seed is None else seed)
        mean = sample_masks(
            self.network,
            images_to_tensor(images),
            steps=steps or self.config.inference_steps,
            ensemble=ensemble or self.config.ensemble_size,
            generator=generator,
            prediction_type=self.config.prediction_type,
        )
        return probabilities_from_samples(mean).numpy().astype(np.float32)

    def _save_weights(self, directory: Path) -> None:
        torch.save({"network": self.network.state_dict(), "sampling_seed": self.sampling_seed}, directory / "model.pt")

    def _load_weights(self, directory: Path) -> None:
        from benchmark.utils.io import load_torch_file

        state = load_torch_file(directory / "model.pt")
        self.network.load_state_dict(state["network"])
        self.sampling_seed = int(state["sampling_seed"])
        self.network.eval()
