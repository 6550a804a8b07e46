"""REFUGE (official three-part layout), and the procedural ``synth_fundus`` in the same layout.

Parts: ``Training400/{Glaucoma,Non-Glaucoma}/*.jpg`` with masks in
``Annotation-Training400/Disc_Cup_Masks/{Glaucoma,Non-Glaucoma}/*.bmp``;
``REFUGE-Validation400/*.jpg`` with ``REFUGE-Validation400-GT/Disc_Cup_Masks/*.bmp``;
``Test400/*.jpg`` with ``REFUGE-Test-GT/Disc_Cup_Masks/{G,N}/*.bmp``.
Mask encoding: 0 = optic cup, 128 = disc rim, 255 = background, decoded with a lookup that also
accepts anti-aliased exports (cup ``<= 100``, disc ``<= 150``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from benchmark.data.base import DatasetError, DatasetLoader, Record, list_images, pair_by_stem, read_gray

CUP_MAX, DISC_MAX = 100, 150

# (part, image folders, mask folders) relative to the dataset root.
_PARTS = (
    ("train", ("Training400/Glaucoma", "Training400/Non-Glaucoma"),
     ("Annotation-Training400/Disc_Cup_Masks/Glaucoma", "Annotation-Training400/Disc_Cup_Masks/Non-Glaucoma")),
    ("validation", ("REFUGE-Validation400",), ("REFUGE-Validation400-GT/Disc_Cup_Masks",)),
    ("test", ("Test400",), ("REFUGE-Test-GT/Disc_Cup_Masks/G", "REFUGE-Test-GT/Disc_Cup_Masks/N")),
)  # fmt: skip


def decode_refuge_mask(values: np.ndarray, *, path: Path | None = None) -> np.ndarray:
    """Map a REFUGE mask (0 cup, 128 rim, 255 background) to classes 0 background, 1 rim, 2 cup.

    Args:
        values: uint8 ``(H, W)`` mask as stored.
        path: file name used in error messages.

    Raises:
        DatasetError: when no disc rim is present (a mask saved with only 0/255, or inverted).
    """
    labels = np.zeros(values.shape, dtype=np.uint8)
    labels[values <= DISC_MAX] = 1
    labels[values <= CUP_MAX] = 2
    if not (labels == 1).any():
        found = np.unique(values)[:6].tolist()
        raise DatasetError(
            f"{path or 'mask'} has no optic-disc rim (values {found}); REFUGE masks encode cup 0, rim 128, "
            "background 255. Use the original masks, not a binarised or relabelled export"
        )
    return labels


class REFUGE(DatasetLoader):
    """Loader of the official REFUGE layout (three parts, masks as BMP)."""

    modality = "fundus"
    classes = ("background", "disc_rim", "cup")

    def records(self) -> list[Record]:
        records: list[Record] = []
        for part, image_dirs, label_dirs in _PARTS:
            image_paths = [p for folder in image_dirs if (self.root / folder).is_dir() for p in list_images(self.root / folder)]
            label_paths = [p for folder in label_dirs if (self.root / folder).is_dir() for p in list_images(self.root / folder)]
            if not image_paths and not label_paths:
                continue
            pairs = pair_by_stem(image_paths, label_paths, image_dir=self.root / image_dirs[0], label_dir=self.root / label_dirs[0])
            records += [Record(key, image, label, part=part) for key, image, label in pairs]
        if not records:
            raise DatasetError(
                f"{self.root} holds none of REFUGE's parts (Training400/, REFUGE-Validation400/, Test400/); "
                "point prepare.datasets at the folder that contains them"
            )
        ids = [record.id for record in records]
        if len(set(ids)) != len(ids):
            duplicate = next(key for key in ids if ids.count(key) > 1)
            raise DatasetError(f"{self.root}: id {duplicate!r} appears in more than one part; keep one")
        return records

    def read_label(self, record: Record) -> np.ndarray:
        """Classes uint8 ``(H, W)``: 0 background, 1 disc rim, 2 cup."""
        return decode_refuge_mask(read_gray(record.label), path=record.label)
