"""The dataset contract: a loader lists records and decodes one image / label map at a time.

A loader reads a dataset exactly as its publisher ships it (no conversion by the user). It
returns :class:`Record` objects sorted by id, and decodes on demand:

- ``read_image(record)``  -> uint8 ``(H, W, 3)`` RGB at native resolution
- ``read_label(record)``  -> uint8 ``(H, W)`` class map at native resolution, classes given by
  ``loader.classes`` (polyp: 0 background, 1 polyp; fundus: 0 background, 1 disc rim, 2 cup)
- ``attributes()``        -> one row per record (``id`` plus whatever the dataset labels)

Every error names the file and the fix (:class:`DatasetError`).
"""

from __future__ import annotations

import abc
import dataclasses
from pathlib import Path
from typing import ClassVar

import numpy as np
import pandas as pd
from PIL import Image

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
# Files that image folders commonly contain and that are not data.
IGNORED_FILES = {"thumbs.db", ".ds_store", "desktop.ini"}


class DatasetError(ValueError):
    """A dataset on disk does not match its documented layout; the message names file and fix."""


@dataclasses.dataclass(frozen=True)
class Record:
    """One image of a dataset.

    Attributes:
        id: unique identifier (file stem), stable across runs.
        image: path of the image file.
        label: path of the mask file.
        group: grouping used by leak-free splits (video sequence, patient), or ``None``.
        part: the publisher's own split ("train", "validation", "test") when it ships one; "test"
            is the test split, the rest the training pool, from which validation is carved, except
            "val": a fixed validation split (a folder dataset's ``splits.csv``).
    """

    id: str
    image: Path
    label: Path
    group: str | None = None
    part: str | None = None


class DatasetLoader(abc.ABC):
    """Base class of a dataset loader. Subclasses are registered in ``benchmark.data.DATASETS``."""

    #: "polyp" or "fundus": decides label protocols and prompt banks downstream.
    modality: ClassVar[str]
    #: class names indexed by label value of :meth:`read_label`.
    classes: ClassVar[tuple[str, ...]]

    def __init__(self, root: str | Path):
        self.root = Path(root)
        if not self.root.is_dir():
            raise DatasetError(
                f"dataset folder {self.root} does not exist; place the download there "
                "(see README.md, 'Real datasets') or fix its path in params.yaml (prepare.datasets)"
            )

    @abc.abstractmethod
    def records(self) -> list[Record]:
        """All records, sorted by id; raises :class:`DatasetError` on unpaired or duplicate files."""

    @abc.abstractmethod
    def read_label(self, record: Record) -> np.ndarray:
        """Class map, uint8 ``(H, W)`` with values in ``range(len(classes))``."""

    def read_image(self, record: Record) -> np.ndarray:
        """RGB image, uint8 ``(H, W, 3)``."""
        return read_rgb(record.image)

    def attributes(self) -> pd.DataFrame:
        """Per-record attributes: an ``id`` column, plus the columns of an ``attributes.csv``
        sidecar when the dataset ships one (the procedural generators write one)."""
        table = pd.DataFrame({"id": [record.id for record in self.records()]})
        sidecar = self.root / "attributes.csv"
        if sidecar.is_file():
            table = table.merge(pd.read_csv(sidecar, dtype={"id": str}), on="id", how="left")
        return table

    def split_meta(self) -> dict:
        """What the split depends on besides the ids and the prepare params, for loaders whose
        groups or parts come from files a user may edit (stored in the split file's ``meta``, so
        an edit makes a new split); empty for the publisher layouts, whose groups and parts are fixed."""
        return {}


def list_images(folder: Path) -> list[Path]:
    """Image files of ``folder`` (non-recursive), skipping hidden and known non-image files."""
    if not folder.is_dir():
        raise DatasetError(f"expected folder {folder} is missing; check the dataset layout in README.md")
    files = []
    for path in sorted(folder.iterdir()):
        if path.name.startswith(".") or path.name.lower() in IGNORED_FILES or path.is_dir():
            continue
        if path.suffix.lower() in IMAGE_SUFFIXES:
            files.append(path)
    return files


def pair_by_stem(
    images: list[Path], labels: list[Path], *, image_dir: Path, label_dir: Path
) -> list[tuple[str, Path, Path]]:
    """Pair image and mask files by file stem, with errors naming the unpaired files."""
    image_by_id = _unique_by_stem(images, image_dir)
    label_by_id = _unique_by_stem(labels, label_dir)
    if not image_by_id:
        raise DatasetError(f"{image_dir} holds no image files ({', '.join(IMAGE_SUFFIXES)}); is the download complete?")
    missing_labels = sorted(set(image_by_id) - set(label_by_id))
    if missing_labels:
        raise DatasetError(
            f"{len(missing_labels)} image(s) without a mask in {label_dir}, e.g. {image_by_id[missing_labels[0]]}; "
            "restore the missing masks or remove those images"
        )
    missing_images = sorted(set(label_by_id) - set(image_by_id))
    if missing_images:
        raise DatasetError(
            f"{len(missing_images)} mask(s) without an image in {image_dir}, e.g. {label_by_id[missing_images[0]]}; "
            "restore the missing images or remove those masks"
        )
    return [(key, image_by_id[key], label_by_id[key]) for key in sorted(image_by_id, key=natural_key)]


def _unique_by_stem(paths: list[Path], folder: Path) -> dict[str, Path]:
    by_stem: dict[str, Path] = {}
    for path in paths:
        if path.stem in by_stem:
            raise DatasetError(
                f"duplicate id '{path.stem}' in {folder}: {by_stem[path.stem].name} and {path.name}; keep one"
            )
        by_stem[path.stem] = path
    return by_stem


def natural_key(text: str) -> tuple:
    """Sort key that orders "2" before "10" and keeps other ids lexicographic."""
    return (0, int(text), "") if text.isdigit() else (1, 0, text)


def read_array(path: Path) -> np.ndarray:
    """Decode an image file to a numpy array, naming the file on failure.

    TIFFs go through tifffile (CVC-ClinicDB's RGB TIFFs carry a malformed BitsPerSample tag
    that Pillow rejects); everything else through Pillow, with palette images converted to
    their grey or RGB values (not their palette indices).
    """
    if path.suffix.lower() in (".tif", ".tiff"):
        import tifffile

        try:
            return np.asarray(tifffile.imread(path))
        except Exception as error:  # tifffile raises many types for broken files
            raise DatasetError(
                f"cannot read {path}: {error}; the file is corrupt or truncated, re-download it"
            ) from error
    try:
        with Image.open(path) as image:
            image.load()
            if image.mode in ("P", "PA"):
                image = image.convert("RGBA" if image.mode == "PA" or "transparency" in image.info else "RGB")
            return np.asarray(image).copy()
    except Exception as error:
        raise DatasetError(f"cannot read {path}: {error}; the file is corrupt or truncated, re-download it") from error


def _read_uint8(path: Path) -> np.ndarray:
    """Decoded image as uint8: 16-bit scaled down, 1-bit expanded to {0, 255}."""
    array = read_array(path)
    if array.dtype == np.uint16:
        array = (array // 257).astype(np.uint8)
    if array.dtype == bool:
        array = array.astype(np.uint8) * 255
    if array.dtype != np.uint8:
        raise DatasetError(f"{path} has pixel type {array.dtype}; expected 8- or 16-bit images")
    return array


def read_rgb(path: Path) -> np.ndarray:
    """uint8 ``(H, W, 3)`` from an RGB, grayscale, palette, RGBA (alpha dropped) or 16-bit image."""
    array = _read_uint8(path)
    if array.ndim == 2:
        array = np.repeat(array[..., None], 3, axis=2)
    if array.ndim != 3 or array.shape[2] not in (3, 4):
        raise DatasetError(f"{path} has shape {array.shape}; expected an RGB image")
    return np.ascontiguousarray(array[..., :3])


def read_gray(path: Path) -> np.ndarray:
    """uint8 ``(H, W)`` mask; colour masks are reduced to their first channel (all equal in practice)."""
    array = _read_uint8(path)
    if array.ndim == 3:
        array = array[..., 0]
    if array.ndim != 2:
        raise DatasetError(f"{path} has shape {array.shape}; expected a single-channel or grey RGB mask")
    return array


def check_same_size(image: np.ndarray, label: np.ndarray, record: Record) -> None:
    """Raise when a mask's size differs from its image's, naming both files."""
    if image.shape[:2] != label.shape[:2]:
        raise DatasetError(
            f"{record.label} is {label.shape[1]}x{label.shape[0]} but {record.image} is "
            f"{image.shape[1]}x{image.shape[0]} (width x height); the pair does not belong together"
        )
