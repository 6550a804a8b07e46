"""Read what :mod:`benchmark.data.prepare` wrote: split arrays, attributes, native masks."""

from __future__ import annotations

import dataclasses
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd

from benchmark.data.base import DatasetError
from benchmark.utils.io import read_json


@dataclasses.dataclass(frozen=True)
class SegmentationData:
    """Images and binary targets of one split at training resolution.

    Attributes:
        ids: image ids, length N.
        images: uint8 (N, S, S, 3) RGB.
        masks: uint8 (N, S, S) in {0, 1}.
    """

    ids: tuple[str, ...]
    images: np.ndarray
    masks: np.ndarray

    def __post_init__(self):
        if self.images.ndim != 4 or self.images.shape[-1] != 3 or self.images.dtype != np.uint8:
            raise ValueError(f"images must be uint8 (N, H, W, 3), got {self.images.dtype} {self.images.shape}")
        if self.masks.shape != self.images.shape[:3]:
            raise ValueError(f"masks shape {self.masks.shape} does not match images {self.images.shape[:3]}")
        if len(self.ids) != len(self.images):
            raise ValueError(f"{len(self.ids)} ids for {len(self.images)} images")

    def __len__(self) -> int:
        return len(self.ids)


class PreparedDataset:
    """Lazy view of ``data/prepared/<name>`` and its split file."""

    def __init__(self, directory: str | Path, split_path: str | Path):
        self.directory = Path(directory)
        self.split_path = Path(split_path)
        if not (self.directory / "arrays.npz").is_file():
            raise DatasetError(f"{self.directory}/arrays.npz is missing; run `dvc repro prepare` first")
        self.manifest = read_json(self.directory / "manifest.json")
        stored = read_json(self.split_path)
        self.split = {part: list(stored[part]) for part in ("train", "val", "test")}

    @cached_property
    def _arrays(self) -> dict[str, np.ndarray]:
        with np.load(self.directory / "arrays.npz") as archive:
            return {key: archive[key] for key in archive.files}

    @cached_property
    def _index(self) -> dict[str, int]:
        return {str(key): i for i, key in enumerate(self._arrays["ids"])}

    def subset(self, part: str) -> SegmentationData:
        """``part`` in {"train", "val", "test"}."""
        ids = self.split[part]
        missing = [key for key in ids if key not in self._index]
        if missing:
            raise DatasetError(
                f"{self.split_path} names {missing[0]!r} ({part}) which {self.directory} lacks; rerun prepare"
            )
        rows = np.asarray([self._index[key] for key in ids], dtype=np.int64)
        return SegmentationData(tuple(ids), self._arrays["images"][rows], self._arrays["masks"][rows])

    def arrays(self, ids: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """``(images uint8 (N, S, S, 3), masks uint8 (N, S, S) in {0, 1})`` of ``ids``, in that order."""
        missing = [key for key in ids if key not in self._index]
        if missing:
            raise DatasetError(f"{self.directory} lacks {missing[0]!r}; rerun prepare")
        rows = np.asarray([self._index[key] for key in ids], dtype=np.int64)
        return self._arrays["images"][rows], self._arrays["masks"][rows]

    def normal_images(self, ids: list[str] | None = None) -> np.ndarray | None:
        """Lesion-free twins uint8 (N, S, S, 3) for ``ids`` (all when None), or None when absent."""
        if "normal_images" not in self._arrays:
            return None
        ids = ids if ids is not None else list(self._index)
        return self._arrays["normal_images"][[self._index[key] for key in ids]]

    def normal_labels(self, ids: list[str] | None = None) -> np.ndarray | None:
        """Class maps of the twins uint8 (N, S, S) for ``ids`` (all when None): zeros for polyp
        twins (lesion-free), disc rim 1 / cup 2 for fundus twins; None when there are no twins."""
        if "normal_labels" not in self._arrays:
            return None
        ids = ids if ids is not None else list(self._index)
        return self._arrays["normal_labels"][[self._index[key] for key in ids]]

    def labels(self, ids: list[str] | None = None) -> np.ndarray:
        """Class maps uint8 (N, S, S) of the images (``masks`` is the binary target derived from them)."""
        ids = ids if ids is not None else list(self._index)
        return self._arrays["labels"][[self._index[key] for key in ids]]

    @cached_property
    def attributes(self) -> pd.DataFrame:
        return pd.read_csv(self.directory / "attributes.csv", dtype={"id": str, "group": str})

    def native_masks(self, ids: list[str]) -> dict[str, np.ndarray]:
        """Binary targets at native resolution, bool (H_i, W_i) per id."""
        with np.load(self.directory / "native_masks.npz") as archive:
            return {key: archive[key] for key in ids}


#: Fundus: the vertical cup-to-disc ratio from which a cup counts as enlarged (glaucomatous).
ENLARGED_CUP_VCDR = 0.5


def shows_lesion(row: pd.Series | dict, mask: np.ndarray | None, modality: str) -> bool:
    """Whether one real image shows the lesion DiffAug synthesises: the one definition every stage uses.

    Polyp: its target mask is not empty. Fundus (the lesion is an enlarged cup): the vertical
    cup-to-disc ratio ``vcdr`` >= 0.5 where the attributes carry it (REFUGE, REFUGE2, procedural,
    ``folder`` datasets: measured from the mask at native size), else the ``glaucoma`` label where
    known (REFUGE's class folders), else a non-empty cup mask.

    Args:
        row: the image's row of the prepared ``attributes.csv`` (columns ``vcdr``, ``glaucoma`` optional).
        mask: uint8 / bool (S, S) target mask (the cup on fundus), or None when only attributes are known.
        modality: ``polyp`` or ``fundus``.
    """
    row = dict(row)
    has_mask = mask is not None and bool(np.asarray(mask).any())
    if modality != "fundus":
        return has_mask
    vcdr = row.get("vcdr")
    if vcdr is not None and pd.notna(vcdr):
        return float(vcdr) >= ENLARGED_CUP_VCDR
    glaucoma = row.get("glaucoma")
    if glaucoma is not None and pd.notna(glaucoma):
        return str(glaucoma).strip().lower() in ("true", "1", "1.0")
    return has_mask if mask is not None else True


def lesion_image_mask(dataset: PreparedDataset, part: str) -> np.ndarray:
    """bool (N,): which images of ``part`` show the lesion (:func:`shows_lesion`), in the subset's order."""
    data = dataset.subset(part)
    attributes = dataset.attributes.assign(id=lambda a: a["id"].astype(str)).set_index("id")
    modality = dataset.manifest["modality"]
    return np.array(
        [shows_lesion(attributes.loc[key], mask, modality) for key, mask in zip(data.ids, data.masks)], dtype=bool
    )
