"""Your own dataset in the most common layout: ``images/`` and ``masks/`` with matching file names.

Layout, relative to the root named in ``prepare.datasets``::

    images/<id>.<ext>    the images (RGB, grey, palette, RGBA or 16-bit; decoded to uint8 (H, W, 3))
    masks/<id>.<ext>     one mask per image, same stem; <ext> any of .png .jpg .jpeg .tif .tiff .bmp
    attributes.csv       optional: ``id`` (= file stem) and any other columns
    splits.csv           optional: ``id`` and ``part`` ("train", "val" or "test")

Masks decode to uint8 ``(H, W)`` classes by ``modality``:

- ``polyp``: foreground = grey value > ``mask_threshold`` (127), so 0/255 masks, JPEG and anti-aliased
  masks binarise as CVC-ClinicDB's and Kvasir-SEG's do (a colour mask is reduced to its first channel,
  as there). An all-zero mask is a lesion-free image; a mask with values but none above the threshold
  (a 0/1 mask) is an error.
- ``fundus``: REFUGE's encoding, 0 cup, 128 disc rim, 255 background -> 0 background, 1 rim, 2 cup
  (:func:`benchmark.data.refuge.decode_refuge_mask`, with its checks).

``attributes.csv`` has exactly one row per image. ``group`` (video sequence, patient; becomes
``Record.group``) keeps a group's images on one side of every split and is the unit of the statistics;
``flat`` (true/false, yes/no, 1/0; empty = unknown) is Table 3's flat stratum, as Kvasir-Sessile
membership on Kvasir-SEG; every other column passes through to the prepared ``attributes.csv``
(``small`` gives the small-lesion stratum). Fundus data without a ``vcdr`` column get it from the mask.

``splits.csv`` has one row per image and defines the parts: ``test`` rows are the test split,
``val`` rows (also written ``validation``) the validation split used for checkpoint selection,
``train`` the rest; without ``val`` rows validation is carved from ``train`` by the pipeline
(``prepare.val_fraction``, whole groups). Without ``splits.csv`` the pipeline draws ``test_fraction``
of the images as test, whole groups at a time.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from benchmark.data.base import DatasetError, DatasetLoader, Record, list_images, natural_key, pair_by_stem, read_gray
from benchmark.data.procedural.fundus import vertical_cdr
from benchmark.data.refuge import decode_refuge_mask

CLASSES = {"polyp": ("background", "polyp"), "fundus": ("background", "disc_rim", "cup")}
#: splits.csv ``part`` -> ``Record.part`` (``make_split`` takes "test" and "val" as fixed parts)
PARTS = {"train": "train", "val": "val", "validation": "val", "test": "test"}
#: columns the prepared attributes.csv writes itself; a sidecar column of that name would be lost
RESERVED_COLUMNS = ("split", "part", "native_height", "native_width", "n_lesions", "target_area_fraction")
TRUE_VALUES, FALSE_VALUES = {"true", "t", "yes", "y", "1", "1.0"}, {"false", "f", "no", "n", "0", "0.0"}
_REFUGE_VALUES = np.array([255, 128, 0], dtype=np.uint8)  # class -> REFUGE value, for vertical_cdr


@dataclasses.dataclass(frozen=True)
class FolderOptions:
    """One entry of ``prepare.folders``: how the folder loader reads a dataset of your own.

    Attributes:
        modality: "polyp" (binary lesion masks) or "fundus" (REFUGE's 0 cup / 128 rim / 255 masks).
        test_fraction: share of the images drawn as test when the folder has no ``splits.csv``.
        mask_threshold: polyp masks: foreground = grey value > this (0..254).
    """

    modality: Literal["polyp", "fundus"]
    test_fraction: float = 0.2
    mask_threshold: int = 127

    def __post_init__(self):
        if self.modality not in CLASSES:
            raise ValueError(f"modality must be 'polyp' or 'fundus', got {self.modality!r}")
        if not 0 < self.test_fraction < 1:
            raise ValueError(f"test_fraction must be in (0, 1), got {self.test_fraction}")
        if not 0 <= self.mask_threshold < 255:
            raise ValueError(f"mask_threshold must be in 0..254, got {self.mask_threshold}")
        if self.modality == "fundus" and self.mask_threshold != 127:
            raise ValueError("mask_threshold applies to polyp masks only; fundus masks use REFUGE's 0/128/255")


class FolderDataset(DatasetLoader):
    """Loader of ``<root>/images/`` + ``<root>/masks/`` (matching stems) and optional sidecars.

    Args:
        root: the folder holding ``images/`` and ``masks/``.
        modality: "polyp" or "fundus" (see the module docstring for each mask encoding).
        mask_threshold: polyp masks: foreground = grey value > this.
    """

    modality = "polyp"  # the class default; an instance takes its configured modality
    classes = CLASSES["polyp"]

    def __init__(self, root: str | Path, *, modality: str = "polyp", mask_threshold: int = 127):
        super().__init__(root)
        try:
            FolderOptions(modality, mask_threshold=mask_threshold)
        except ValueError as error:
            raise DatasetError(f"{self.root}: {error} (prepare.folders)") from None
        self.modality, self.classes, self.mask_threshold = modality, CLASSES[modality], mask_threshold
        self.image_dir, self.mask_dir = self.root / "images", self.root / "masks"
        for folder in (self.image_dir, self.mask_dir):
            if not folder.is_dir():
                hint = "rename mask/ to masks/" if folder == self.mask_dir and (self.root / "mask").is_dir() else None
                raise DatasetError(
                    f"{folder} is missing; the folder loader reads {self.root}/images/ and {self.root}/masks/ "
                    f"(files with matching names): {hint or 'create it'}, or point prepare.datasets at the folder holding both"
                )
        self._records: list[Record] | None = None
        self._vcdr: dict[Path, float] = {}

    def records(self) -> list[Record]:
        if self._records is None:
            pairs = pair_by_stem(
                list_images(self.image_dir),
                list_images(self.mask_dir),
                image_dir=self.image_dir,
                label_dir=self.mask_dir,
            )
            images = {key: image for key, image, _ in pairs}
            sidecar = self._sidecar("attributes.csv", images)
            groups = {} if sidecar is None or "group" not in sidecar else self._groups(sidecar, images)
            parts = self._parts(images, groups)
            self._records = [
                Record(key, image, label, group=groups.get(key), part=parts.get(key)) for key, image, label in pairs
            ]
        return list(self._records)

    def _sidecar(self, name: str, images: dict[str, Path], required: tuple[str, ...] = ()) -> pd.DataFrame | None:
        """``<root>/<name>`` indexed by id in image order, after checking it has one row per image."""
        path = self.root / name
        if not path.is_file():
            return None
        try:
            table = pd.read_csv(path, dtype={"id": str, "group": str, "flat": str, "part": str}, skipinitialspace=True)
        except (ValueError, UnicodeDecodeError) as error:  # pandas' parser and empty-file errors are ValueErrors
            raise DatasetError(f"{path} is not a readable CSV ({error}); fix it or remove it") from error
        for column in ("id", *required):
            if column not in table:
                raise DatasetError(
                    f"{path} has no {column!r} column (columns: {', '.join(map(str, table.columns))}); "
                    f"its first line must name the columns, e.g. 'id,{required[0] if required else 'group'}'"
                )
        if table["id"].isna().any():
            raise DatasetError(
                f"{path}, line {int(table['id'].isna().argmax()) + 2}: empty id; give every row its file stem"
            )
        duplicated = table["id"][table["id"].duplicated()]
        if len(duplicated):
            raise DatasetError(f"{path} lists id {duplicated.iloc[0]!r} twice; keep one row per image")
        unknown = sorted(set(table["id"]) - set(images), key=natural_key)
        if unknown:
            raise DatasetError(
                f"{path} lists id {unknown[0]!r} ({len(unknown)} in all) with no image in {self.image_dir}; "
                "ids are file stems (images/<id>.png): fix the id, remove the row or add the image"
            )
        absent = [key for key in images if key not in set(table["id"])]
        if absent:
            raise DatasetError(
                f"{images[absent[0]]} has no row in {path} ({len(absent)} images in all); add a row with id {absent[0]!r}"
            )
        return table.set_index("id").loc[list(images)]

    def _groups(self, sidecar: pd.DataFrame, images: dict[str, Path]) -> dict[str, str]:
        empty = sidecar.index[sidecar["group"].isna()]
        if len(empty):
            raise DatasetError(
                f"{self.root / 'attributes.csv'}: image {images[empty[0]]} has an empty 'group'; give every image "
                "its video sequence or patient (an image of its own may use its id)"
            )
        return dict(sidecar["group"])

    def _parts(self, images: dict[str, Path], groups: dict[str, str]) -> dict[str, str]:
        """id -> "train" / "val" / "test" from ``splits.csv``; none without it."""
        path = self.root / "splits.csv"
        table = self._sidecar("splits.csv", images, required=("part",))
        if table is None:
            return {}
        parts = {}
        for key, value in table["part"].items():
            part = PARTS.get(str(value).strip().lower())
            if part is None:
                raise DatasetError(
                    f"{path}: id {key!r} has part {value!r}; parts are 'train', 'val' or 'test' (one per row)"
                )
            parts[key] = part
        for needed in ("train", "test"):
            if needed not in parts.values():
                raise DatasetError(
                    f"{path} has no '{needed}' rows; mark some images {needed}, or delete splits.csv to let the "
                    "pipeline draw the split"
                )
        part_of_group: dict[str, tuple[str, str]] = {}
        for key, group in groups.items():
            first = part_of_group.setdefault(group, (parts[key], key))
            if first[0] != parts[key]:
                raise DatasetError(
                    f"{path}: group {group!r} (attributes.csv) has {first[1]!r} in {first[0]} and {key!r} in "
                    f"{parts[key]}; a group's images leak across the split: put the whole group in one part"
                )
        return parts

    def read_label(self, record: Record) -> np.ndarray:
        """Classes uint8 ``(H, W)``: polyp {0, 1} (grey value > ``mask_threshold``); fundus 0 background, 1 rim, 2 cup."""
        values = read_gray(record.label)
        if self.modality == "fundus":
            try:
                return decode_refuge_mask(values, path=record.label)
            except DatasetError as error:
                raise DatasetError(
                    f"{error} (folder loader, modality fundus; binary lesion masks need modality polyp)"
                ) from None
        labels = (values > self.mask_threshold).astype(np.uint8)
        if not labels.any() and values.any():
            raise DatasetError(
                f"{record.label} holds values up to {values.max()} but none > {self.mask_threshold}: a 0/1 mask? "
                f"lesion pixels must be > {self.mask_threshold} (save them as 255), or set mask_threshold in prepare.folders"
            )
        return labels

    def attributes(self) -> pd.DataFrame:
        """``id``, the sidecar's columns (``flat`` as nullable bool; ``group`` goes to Record.group),
        and for fundus data ``vcdr`` from the mask where the sidecar lacks it."""
        records = self.records()
        table = pd.DataFrame({"id": [record.id for record in records]})
        path = self.root / "attributes.csv"
        if path.is_file():
            sidecar = self._sidecar("attributes.csv", {record.id: record.image for record in records})
            reserved = [column for column in RESERVED_COLUMNS if column in sidecar]
            if reserved:
                raise DatasetError(
                    f"{path}: column {reserved[0]!r} is reserved (the prepared attributes.csv writes it); rename it"
                    + (", and give parts in splits.csv (columns id, part)" if reserved[0] in ("split", "part") else "")
                )
            if "flat" in sidecar:
                sidecar["flat"] = pd.array(
                    [_truth(value, key, path) for key, value in sidecar["flat"].items()], "boolean"
                )
            table = table.join(sidecar.drop(columns=["group"], errors="ignore"), on="id")
        if self.modality == "fundus" and "vcdr" not in table:
            table["vcdr"] = [self.vcdr(record) for record in records]
        return table

    def vcdr(self, record: Record) -> float:
        """REFUGE's vertical cup-to-disc ratio of the record's mask (decoded once, then cached)."""
        if record.label not in self._vcdr:
            self._vcdr[record.label] = vertical_cdr(_REFUGE_VALUES[self.read_label(record)])
        return self._vcdr[record.label]

    def split_meta(self) -> dict:
        """A digest of every id's group and part: editing attributes.csv or splits.csv makes a new split."""
        listing = json.dumps([[record.id, record.group, record.part] for record in self.records()])
        return {"ids_groups_parts_sha256": hashlib.sha256(listing.encode()).hexdigest()}


def _truth(value, key: str, path: Path) -> bool | None:
    if pd.isna(value) or not str(value).strip():
        return None
    text = str(value).strip().lower()
    if text in TRUE_VALUES or text in FALSE_VALUES:
        return text in TRUE_VALUES
    raise DatasetError(f"{path}: id {key!r} has flat = {value!r}; write true or false (empty: unknown)")
