"""REFUGE (official three-part layout), and the procedural ``synth_fundus`` in the same layout.

Parts, relative to the root (a part whose folders hold no files is skipped):

- train: ``Training400/{Glaucoma,Non-Glaucoma}/<id>.jpg``, masks
  ``Annotation-Training400/Disc_Cup_Masks/{Glaucoma,Non-Glaucoma}/<id>.bmp``;
- validation: ``REFUGE-Validation400/<id>.jpg``, masks ``REFUGE-Validation400-GT/Disc_Cup_Masks/<id>.bmp``;
- test: ``Test400/<id>.jpg``, masks ``REFUGE-Test-GT/Disc_Cup_Masks/{G,N}/<id>.bmp``.

Each folder is read flat and through its class subfolders (``Glaucoma``, ``Non-Glaucoma``, ``G``,
``N``; so ``Test400/{G,N}/`` works too), which give the ``glaucoma`` attribute. Ids (file stems)
are unique across parts; ``Record.part`` is "train", "validation" or "test".
Images: uint8 ``(H, W, 3)`` RGB. Masks (8-bit or 3-channel; 0 cup, 128 rim, 255 background)
decode to uint8 ``(H, W)`` classes 0 background, 1 rim, 2 cup (:func:`decode_refuge_mask`).
``attributes()``: ``glaucoma`` (nullable bool, <NA> where no class folder says: validation) and
``vcdr`` (REFUGE's vertical cup-to-disc ratio, from each mask once, on first use); columns of an
``attributes.csv`` sidecar (the procedural generator's) take precedence.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from benchmark.data.base import DatasetError, DatasetLoader, Record, list_images, natural_key, pair_by_stem, read_gray
from benchmark.data.procedural.fundus import vertical_cdr

CUP_MAX, DISC_MAX = 100, 150
#: Class folders (lower case) and the glaucoma label they give.
CLASS_FOLDERS = {"glaucoma": True, "non-glaucoma": False, "g": True, "n": False}
# (part, image folder, mask folder) relative to the dataset root.
_PARTS = (
    ("train", "Training400", "Annotation-Training400/Disc_Cup_Masks"),
    ("validation", "REFUGE-Validation400", "REFUGE-Validation400-GT/Disc_Cup_Masks"),
    ("test", "Test400", "REFUGE-Test-GT/Disc_Cup_Masks"),
)
_ENCODING = np.array([255, 128, 0], dtype=np.uint8)  # class -> REFUGE value, for vertical_cdr


def decode_refuge_mask(values: np.ndarray, *, path: Path | None = None) -> np.ndarray:
    """Map a REFUGE mask (0 cup, 128 rim, 255 background) to classes 0 background, 1 rim, 2 cup.

    Args:
        values: uint8 ``(H, W)`` mask as stored.
        path: file name used in error messages.

    The lookup accepts anti-aliased exports (cup ``<= 100``, disc ``<= 150``). Cup next to
    background with no rim between is *not* rejected: a focal notch can take the rim to zero.

    Raises:
        DatasetError: when the mask has no disc, no rim (only 0/255: binarised, or relabelled),
            no cup, or cup on the image border (background relabelled as cup by a converter).
    """
    labels = np.zeros(values.shape, dtype=np.uint8)
    labels[values <= DISC_MAX] = 1
    labels[values <= CUP_MAX] = 2
    border = np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]])
    if not labels.any():
        problem = "no optic disc (every pixel is background)"
    elif not (labels == 1).any():
        problem = "no optic-disc rim, as in a binarised (0/255) or relabelled export"
    elif not (labels == 2).any():
        problem = "no optic cup"
    elif (border == 2).any():
        problem = "optic cup on the image border (background relabelled as cup?)"
    else:
        return labels
    found = np.unique(values)
    shown = ", ".join(map(str, found[:6])) + (", ..." if found.size > 6 else "")
    raise DatasetError(
        f"{path or 'mask'} has {problem}; values found: {shown}. REFUGE masks encode cup 0, disc rim 128, "
        "background 255 (cup inside the disc): use the publisher's original masks, not a converted export"
    )


def class_files(folder: Path) -> list[Path]:
    """Image files of ``folder`` and of its class subfolders; none when ``folder`` is absent."""
    if not folder.is_dir():
        return []
    subfolders = [sub for sub in sorted(folder.iterdir()) if sub.is_dir() and sub.name.lower() in CLASS_FOLDERS]
    return [path for sub in (folder, *subfolders) for path in list_images(sub)]


class REFUGE(DatasetLoader):
    """Loader of the official REFUGE layout (three parts, masks as BMP)."""

    modality = "fundus"
    classes = ("background", "disc_rim", "cup")

    def __init__(self, root: str | Path):
        super().__init__(root)
        self._vcdr: dict[Path, float] = {}

    def _parts(self) -> list[tuple[str, Path, Path]]:
        """``(part, image folder, mask folder)`` of every part the layout may hold."""
        return [(part, self.root / images, self.root / masks) for part, images, masks in _PARTS]

    def _layout_error(self) -> DatasetError:
        relative = [(images.relative_to(self.root), masks.relative_to(self.root)) for _, images, masks in self._parts()]
        parts = [f"{images}/ with masks in {masks}/" for images, masks in relative]
        return DatasetError(
            f"{self.root} holds no images of any part: expected {'; '.join(parts)}; "
            "point prepare.datasets at the folder that contains them"
        )

    def _unique(self, records: list[Record]) -> list[Record]:
        """The records, after checking that no id occurs in two parts."""
        first: dict[str, Record] = {}
        for record in records:
            if record.id in first:
                raise DatasetError(f"duplicate id {record.id!r}: {first[record.id].image} and {record.image}; keep one")
            first[record.id] = record
        return records

    def records(self) -> list[Record]:
        records: list[Record] = []
        for part, image_dir, mask_dir in self._parts():
            images, masks = class_files(image_dir), class_files(mask_dir)
            if images or masks:
                pairs = pair_by_stem(images, masks, image_dir=image_dir, label_dir=mask_dir)
                records += [Record(key, image, label, part=part) for key, image, label in pairs]
        if not records:
            raise self._layout_error()
        return sorted(self._unique(records), key=lambda record: natural_key(record.id))

    def read_label(self, record: Record) -> np.ndarray:
        """Classes uint8 ``(H, W)``: 0 background, 1 disc rim, 2 cup."""
        return decode_refuge_mask(read_gray(record.label), path=record.label)

    def glaucoma(self, record: Record) -> bool | None:
        """Glaucoma label from the class folders of image and mask; ``None`` when neither has one."""
        folders = [path.parent.name.lower() for path in (record.image, record.label)]
        found = {CLASS_FOLDERS[folder] for folder in folders if folder in CLASS_FOLDERS}
        if len(found) > 1:
            raise DatasetError(
                f"{record.image} and {record.label} sit in contradicting class folders (glaucoma vs not); move one"
            )
        return found.pop() if found else None

    def vcdr(self, record: Record) -> float:
        """REFUGE's vertical cup-to-disc ratio of the record's mask (decoded once, then cached)."""
        if record.label not in self._vcdr:
            self._vcdr[record.label] = vertical_cdr(_ENCODING[self.read_label(record)])
        return self._vcdr[record.label]

    def attributes(self) -> pd.DataFrame:
        """``id``, sidecar columns, and ``glaucoma`` / ``vcdr`` where the sidecar lacks them."""
        table = super().attributes()
        records = self.records()
        if "glaucoma" not in table:
            table["glaucoma"] = pd.array([self.glaucoma(record) for record in records], dtype="boolean")
        if "vcdr" not in table:
            table["vcdr"] = [self.vcdr(record) for record in records]
        return table
