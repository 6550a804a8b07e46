"""The generator contract shared by every entry of ``GENERATORS`` (paper §3.1).

A generator inpaints a lesion described by a text prompt into a given region of a given
background image. Backends differ in scale (a small latent diffusion model trained here from
scratch; SDXL-inpainting fine-tuned from a local checkpoint) but not in interface:

- ``fit(examples, *, seed, checkpoint_dir)``: train (or fine-tune) on :class:`InpaintingExamples`;
  resumes from ``checkpoint_dir`` when an interrupted run left a checkpoint there.
- ``generate(backgrounds, masks, prompts, *, negative_prompt, steps, guidance_scale, seeds)``:
  uint8 images; sample i depends only on its own inputs and ``seeds[i]`` (not on the batch).
- ``save(directory)`` / ``load(directory)``: a round trip giving identical samples.
"""

from __future__ import annotations

import abc
import dataclasses
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd


@dataclasses.dataclass(frozen=True)
class InpaintingExamples:
    """Training pairs of an inpainting generator, all at one resolution S.

    Attributes:
        images: uint8 (N, S, S, 3) RGB images that show the lesion.
        normal_images: uint8 (N, S, S, 3) their lesion-free twins (procedural data), or the
            images themselves where no twin exists (real data); the outside of the mask must be
            reproduced from these (eq. 7's preservation term).
        masks: uint8 (N, S, S) in {0, 1}: the region to inpaint (1 = lesion).
        prompts: N prompts describing each image's lesion.
        negative_prompt: the unconditional prompt ("healthy mucosa", "normal optic disc"), used
            for the text-dropout share in training and as the unconditional branch of
            classifier-free guidance (eq. 8) at sampling.
    """

    images: np.ndarray
    normal_images: np.ndarray
    masks: np.ndarray
    prompts: tuple[str, ...]
    negative_prompt: str

    def __post_init__(self):
        check_images("images", self.images)
        check_images("normal_images", self.normal_images, like=self.images)
        check_masks("masks", self.masks, like=self.images)
        if len(self.prompts) != len(self.images) or not all(isinstance(p, str) for p in self.prompts):
            raise ValueError(f"prompts must be {len(self.images)} strings (empty = no text), got {len(self.prompts)}")
        if not isinstance(self.negative_prompt, str):
            raise ValueError(f"negative_prompt must be a string, got {self.negative_prompt!r}")
        if len(self.images) == 0:
            raise ValueError("InpaintingExamples is empty: the training split holds no lesion images")

    def __len__(self) -> int:
        return len(self.images)


def check_images(name: str, images: np.ndarray, *, like: np.ndarray | None = None) -> None:
    """Raise ValueError unless ``images`` is uint8 (N, S, S, 3) (and shaped like ``like``)."""
    if not isinstance(images, np.ndarray) or images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(
            f"{name} must be a uint8 array (N, S, S, 3), got {getattr(images, 'dtype', type(images))} "
            f"{getattr(images, 'shape', '')}"
        )
    if like is not None and images.shape != like.shape:
        raise ValueError(f"{name} has shape {images.shape}, expected {like.shape}")


def check_masks(name: str, masks: np.ndarray, *, like: np.ndarray) -> None:
    """Raise ValueError unless ``masks`` is (N, S, S) in {0, 1} matching ``like`` (N, S, S, 3)."""
    if not isinstance(masks, np.ndarray) or masks.shape != like.shape[:3]:
        raise ValueError(f"{name} must have shape {like.shape[:3]}, got {getattr(masks, 'shape', type(masks))}")
    if not np.isin(masks, (0, 1)).all():
        raise ValueError(f"{name} must hold only 0 and 1, found {np.unique(masks)[:6].tolist()}")


def paste_back(
    generated: np.ndarray, background: np.ndarray, masks: np.ndarray, *, feather_px: float = 1.5
) -> np.ndarray:
    """Keep the background exactly outside the (slightly widened) mask, blending at the border.

    The decoder of a latent model alters every pixel a little; pasting the generated pixels back
    into the untouched background keeps the synthetic image's outside identical to its source,
    as in diffusers' inpainting ``mask_image`` overlay. The blend weight is 1 on the mask and
    falls linearly to 0 over ``feather_px`` pixels outside it.

    Args:
        generated, background: uint8 (N, S, S, 3).
        masks: (N, S, S) in {0, 1}.
        feather_px: width of the transition outside the mask (0 = hard paste).

    Returns:
        uint8 (N, S, S, 3); equal to ``background`` wherever the distance to the mask exceeds
        ``feather_px``, equal to ``generated`` on the mask.
    """
    from scipy import ndimage

    check_images("generated", generated)
    check_images("background", background, like=generated)
    check_masks("masks", masks, like=generated)
    weights = np.empty(masks.shape, np.float32)
    for i, mask in enumerate(masks.astype(bool)):
        distance = ndimage.distance_transform_edt(~mask) if mask.any() else np.full(mask.shape, np.inf)
        weights[i] = np.clip(1.0 - distance / feather_px, 0.0, 1.0) if feather_px > 0 else mask
    blended = weights[..., None] * generated.astype(np.float32) + (1 - weights[..., None]) * background.astype(
        np.float32
    )
    return np.round(blended).clip(0, 255).astype(np.uint8)


class InpaintingGenerator(abc.ABC):
    """Base class of a registered generator backend."""

    #: registry key (``generator.backend`` in params.yaml).
    name: ClassVar[str]
    #: label used in reports.
    display_name: ClassVar[str]
    #: frozen dataclass of hyper-parameters.
    Config: ClassVar[type]

    def __init__(self, config: Any | None = None):
        self.config = config if config is not None else self.Config()

    @abc.abstractmethod
    def fit(
        self, examples: InpaintingExamples, *, seed: int, checkpoint_dir: str | Path, progress: bool = True
    ) -> pd.DataFrame:
        """Train on ``examples``; return the per-step log (at least ``step`` and ``loss``)."""

    @abc.abstractmethod
    def generate(
        self,
        backgrounds: np.ndarray,
        masks: np.ndarray,
        prompts: list[str],
        *,
        negative_prompt: str,
        steps: int,
        guidance_scale: float,
        seeds: list[int],
        progress: bool = False,
    ) -> np.ndarray:
        """Inpaint ``prompts[i]`` into ``masks[i]`` of ``backgrounds[i]``.

        Args:
            backgrounds: uint8 (B, S, S, 3) lesion-free images (or regions without lesions).
            masks: (B, S, S) in {0, 1}: where to generate.
            prompts: B lesion descriptions; negative_prompt: the unconditional branch of eq. 8.
            steps: DDIM steps (paper 50); guidance_scale: s of eq. 8 (paper 7.5).
            seeds: B ints; sample i is a function of its inputs and ``seeds[i]`` only.

        Returns:
            uint8 (B, S, S, 3), identical to ``backgrounds`` away from the mask (:func:`paste_back`).
        """

    @abc.abstractmethod
    def save(self, directory: str | Path) -> None:
        """Write everything :meth:`load` needs into ``directory`` (atomically)."""

    @classmethod
    @abc.abstractmethod
    def load(cls, directory: str | Path) -> InpaintingGenerator:
        """Inverse of :meth:`save`."""

    def check_generate_inputs(
        self, backgrounds: np.ndarray, masks: np.ndarray, prompts: list[str], seeds: list[int]
    ) -> None:
        """Shared argument checks of :meth:`generate` (clear errors naming the argument)."""
        check_images("backgrounds", backgrounds)
        check_masks("masks", masks, like=backgrounds)
        if len(prompts) != len(backgrounds) or not all(isinstance(p, str) for p in prompts):
            raise ValueError(f"prompts must be a list of {len(backgrounds)} strings, got {len(prompts)}")
        if len(seeds) != len(backgrounds):
            raise ValueError(f"seeds must hold {len(backgrounds)} ints (one per sample), got {len(seeds)}")
