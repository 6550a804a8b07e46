"""A resumable supervised trainer shared by the pixel-space segmenters (U-Net and kin).

Network, loss and trainer are kept apart: a method builds its network and calls
:func:`train_supervised`. The trainer shuffles and augments with one seeded
``torch.Generator``, evaluates validation Dice after every epoch, keeps the best state (by
validation Dice only — the test split is never seen here) and writes a resumable checkpoint
atomically after every epoch.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from benchmark.config import check_epoch_size
from benchmark.data.augment import standard_augment
from benchmark.data.prepared import SegmentationData
from benchmark.utils.io import atomic_path, load_torch_file


@dataclasses.dataclass(frozen=True)
class Schedule:
    """Optimisation settings of a supervised run."""

    epochs: int
    batch_size: int
    learning_rate: float
    weight_decay: float
    augmentation: str  # "none" or "standard"
    epoch_size: int | None = None  # samples per epoch (None: the whole training set; see epoch_order)


def epoch_samples(n_train: int, epoch_size: int | None) -> int:
    """Samples one epoch visits: ``epoch_size`` (at most ``n_train``), or all ``n_train`` when None."""
    check_epoch_size(epoch_size)
    return n_train if epoch_size is None else min(n_train, epoch_size)


def steps_per_epoch(n_train: int, epoch_size: int | None, batch_size: int) -> int:
    """Optimizer steps of one epoch, ``ceil(epoch_samples / batch_size)`` (>= 1): every trainer's count,
    and the one ``run.json`` records (``optimizer_steps`` = epochs × this)."""
    return max(1, -(-epoch_samples(n_train, epoch_size) // batch_size))


def epoch_order(n_train: int, epoch_size: int | None, generator: torch.Generator) -> torch.Tensor:
    """The sample order of one epoch: a seeded permutation of the ``n_train`` samples, cut to
    :func:`epoch_samples`. With ``epoch_size`` None (every real-only run) it is the plain permutation, so
    the random stream is the same as a trainer without this option. ``train.synthetic_budget``
    "equal_steps" sets ``epoch_size`` to the real training-set size for runs with synthetic data:
    the same optimizer steps, schedule and validation points as the real-only run, each epoch a
    fresh random draw from real + synthetic."""
    return torch.randperm(n_train, generator=generator)[: epoch_samples(n_train, epoch_size)]


def module_device(module, fallback: torch.device | str = "cpu") -> torch.device:
    """The device of ``module``'s first parameter; ``fallback`` for a module without parameters or any
    other callable (e.g. a test's stand-in denoiser)."""
    parameters = module.parameters() if isinstance(module, torch.nn.Module) else iter(())
    first = next(iter(parameters), None)
    return first.device if first is not None else torch.device(fallback)


def training_device() -> torch.device:
    """The device ``accelerate`` picks for one process: a CUDA (or MPS) accelerator when present, else
    the CPU (``ACCELERATE_USE_CPU=1`` forces the CPU). Data stay on the CPU and move per batch."""
    from accelerate import PartialState

    return PartialState().device


def images_to_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 (N, H, W, 3) -> float32 (N, 3, H, W) in [-1, 1]."""
    return torch.from_numpy(images).permute(0, 3, 1, 2).float().div_(127.5).sub_(1.0)


def masks_to_tensor(masks: np.ndarray) -> torch.Tensor:
    """{0,1} (N, H, W) -> float32 (N, 1, H, W)."""
    return torch.from_numpy(masks).float().unsqueeze(1)


def dice_bce_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy + soft Dice (per image, then averaged); logits (B, 1, H, W)."""
    bce = F.binary_cross_entropy_with_logits(logits, target)
    probability = torch.sigmoid(logits)
    intersection = (probability * target).sum(dim=(1, 2, 3))
    total = probability.sum(dim=(1, 2, 3)) + target.sum(dim=(1, 2, 3))
    soft_dice = (2 * intersection + 1.0) / (total + 1.0)
    return bce + (1 - soft_dice).mean()


@torch.no_grad()
def predict_probabilities(network: torch.nn.Module, images: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """Sigmoid of the network's logits; uint8 (N, H, W, 3) -> float32 (N, H, W)."""
    network.eval()
    device = module_device(network)
    outputs = [
        torch.sigmoid(network(images_to_tensor(images[start : start + batch_size]).to(device)))[:, 0].cpu()
        for start in range(0, len(images), batch_size)
    ]
    return torch.cat(outputs).numpy().astype(np.float32)


def mean_dice(probabilities: np.ndarray, masks: np.ndarray) -> float:
    """Mean per-image Dice at threshold 0.5 (both empty = 1), for checkpoint selection."""
    prediction = probabilities >= 0.5
    target = masks.astype(bool)
    intersection = (prediction & target).sum(axis=(1, 2))
    total = prediction.sum(axis=(1, 2)) + target.sum(axis=(1, 2))
    scores = np.where(total == 0, 1.0, 2 * intersection / np.maximum(total, 1))
    return float(scores.mean())


def train_supervised(
    network: torch.nn.Module,
    train: SegmentationData,
    val: SegmentationData,
    schedule: Schedule,
    *,
    seed: int,
    checkpoint_dir: Path,
    loss_fn=dice_bce_loss,
    progress: bool = True,
    description: str = "train",
    make_optimizer: Callable[
        [torch.nn.Module, Schedule, int], tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]
    ]
    | None = None,
) -> pd.DataFrame:
    """Train ``network`` in place and load the best validation state into it.

    Resumes from ``checkpoint_dir/checkpoint.pt`` when present. Returns the per-epoch log
    (epoch, train_loss, val_dice, best) and writes it to ``checkpoint_dir/train_log.csv``.

    ``make_optimizer(network, schedule, total_steps) -> (optimizer, scheduler)`` replaces the
    default AdamW + one-cycle schedule (e.g. SGD + poly decay for TransUNet); the scheduler is
    stepped once per batch and both are checkpointed. None keeps the default.
    """
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    checkpoint_path = checkpoint_dir / "checkpoint.pt"
    generator = torch.Generator().manual_seed(seed)  # CPU: batches, augmentation (same stream on any device)
    device = training_device()
    network.to(device)
    total_steps = schedule.epochs * steps_per_epoch(len(train), schedule.epoch_size, schedule.batch_size)
    if make_optimizer is not None:
        optimizer, scheduler = make_optimizer(network, schedule, total_steps)
    else:
        optimizer = torch.optim.AdamW(
            network.parameters(), lr=schedule.learning_rate, weight_decay=schedule.weight_decay
        )
        scheduler = torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=schedule.learning_rate, total_steps=total_steps, pct_start=0.1
        )
    history: list[dict] = []
    best_score, best_state, start_epoch = -1.0, None, 0
    if checkpoint_path.is_file():
        state = load_torch_file(checkpoint_path, weights_only=False)
        network.load_state_dict(state["network"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        generator.set_state(state["generator"])
        best_score, best_state, history = state["best_score"], state["best_state"], state["history"]
        start_epoch = state["epoch"] + 1

    images, masks = images_to_tensor(train.images), masks_to_tensor(train.masks)
    bar = tqdm(
        range(start_epoch, schedule.epochs),
        desc=description,
        disable=not progress,
        unit="epoch",
        initial=start_epoch,
        total=schedule.epochs,
    )
    for epoch in bar:
        network.train()
        order = epoch_order(len(train), schedule.epoch_size, generator)
        losses = []
        for start in range(0, len(order), schedule.batch_size):
            index = order[start : start + schedule.batch_size]
            batch_images, batch_masks = images[index], masks[index]
            if schedule.augmentation == "standard":
                batch_images, batch_masks = standard_augment(batch_images, batch_masks, generator)
            batch_images, batch_masks = batch_images.to(device), batch_masks.to(device)
            loss = loss_fn(network(batch_images), batch_masks)
            if not torch.isfinite(loss):
                raise FloatingPointError(
                    f"{description}: loss became {loss.item()} at epoch {epoch}; lower the learning rate"
                )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            losses.append(loss.item())
        score = mean_dice(predict_probabilities(network, val.images), val.masks)
        improved = score > best_score
        if improved:
            best_score = score
            best_state = {key: value.detach().clone() for key, value in network.state_dict().items()}
        history.append({"epoch": epoch, "train_loss": float(np.mean(losses)), "val_dice": score, "best": improved})
        bar.set_postfix(loss=f"{np.mean(losses):.3f}", val_dice=f"{score:.3f}", best=f"{best_score:.3f}")
        with atomic_path(checkpoint_path, suffix=".pt") as tmp:
            torch.save(
                {
                    "epoch": epoch,
                    "network": network.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(),
                    "generator": generator.get_state(),
                    "best_score": best_score,
                    "best_state": best_state,
                    "history": history,
                },
                tmp,
            )
    if best_state is not None:
        network.load_state_dict(best_state)
    log = pd.DataFrame(history)
    with atomic_path(checkpoint_dir / "train_log.csv", suffix=".csv") as tmp:
        log.to_csv(tmp, index=False)
    return log
