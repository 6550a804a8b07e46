"""REFUGE2 as re-packaged on Kaggle: ``REFUGE2/{train,val,test}/{images,mask}/`` (400 each).

The root may be the folder that contains ``REFUGE2/`` or ``REFUGE2/`` itself. Images (``.jpg``,
``.png``) decode to uint8 ``(H, W, 3)`` RGB; masks (``.bmp`` or ``.png``, in ``mask/`` or
``masks/``) use REFUGE's encoding (0 cup, 128 rim, 255 background) and decode, with the same
checks, to uint8 ``(H, W)`` classes 0 background, 1 rim, 2 cup
(:func:`benchmark.data.refuge.decode_refuge_mask`).
``Record.part`` comes from the folder: train -> "train", val -> "validation", test -> "test".

Ids: the file stems, as long as they are unique across the three parts (copies that keep
REFUGE's names g0001 / V0001 / T0001 keep those ids). Some copies number every part from
``0001``; when any stem occurs in more than one part, *every* id is prefixed with its part
folder (``train_0001``, ``val_0001``, ``test_0001``), so that ids stay consistent within a copy
and never depend on which files happen to collide.

``attributes()``: ``vcdr`` from the mask, and ``glaucoma`` <NA> (the re-package has no class
folders) unless an ``attributes.csv`` sidecar gives it.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from pathlib import Path

from benchmark.data.base import DatasetError, Record
from benchmark.data.refuge import REFUGE

#: Part folder -> ``Record.part``.
PART_FOLDERS = {"train": "train", "val": "validation", "test": "test"}
_FOLDER_OF = {part: folder for folder, part in PART_FOLDERS.items()}
MASK_FOLDERS = ("mask", "masks")


class REFUGE2(REFUGE):
    """Loader of the Kaggle REFUGE2 re-package (three part folders, each with images/ and mask/)."""

    def _base(self) -> Path:
        return self.root / "REFUGE2" if (self.root / "REFUGE2").is_dir() else self.root

    def _parts(self) -> list[tuple[str, Path, Path]]:
        parts = []
        for folder, part in PART_FOLDERS.items():
            masks = [self._base() / folder / name for name in MASK_FOLDERS]
            parts.append((part, self._base() / folder / "images", next((m for m in masks if m.is_dir()), masks[0])))
        return parts

    def _layout_error(self) -> DatasetError:
        return DatasetError(
            f"{self.root} holds no images: expected REFUGE2/{{train,val,test}}/images/ with masks in "
            "REFUGE2/{train,val,test}/mask/ (the root may also be REFUGE2/ itself); "
            "point prepare.datasets at the folder that contains them"
        )

    def _unique(self, records: list[Record]) -> list[Record]:
        """Prefix every id with its part folder when any id occurs in two parts, then check."""
        if max(Counter(record.id for record in records).values()) > 1:
            records = [dataclasses.replace(r, id=f"{_FOLDER_OF[r.part]}_{r.id}") for r in records]
        return super()._unique(records)
