"""CVC-ClinicDB (CVC-612) as published, and the procedural ``synth_polyp`` in the same layout.

Layouts, relative to the root (the first one present is read):

- ``Original/<n>.tif`` (RGB frames) + ``Ground Truth/<n>.tif`` (masks), n = 1..612, as published;
- ``TIF/Original`` + ``TIF/Ground Truth``, or ``PNG/Original/<n>.png`` + ``PNG/Ground Truth/<n>.png``
  (re-packages).

Images decode to uint8 ``(H, W, 3)`` RGB (real frames are 384 wide x 288 high). TIFFs are read with
tifffile (:func:`benchmark.data.base.read_array`): the published RGB TIFFs carry a malformed
BitsPerSample tag that Pillow rejects. Masks (grayscale or 3-channel) are binarised at ``> 127``
into uint8 ``(H, W)`` in {0, 1} (about 1 in 5 real masks holds stray grey values); every
CVC-ClinicDB frame shows a polyp, so a mask without one is an error naming the file.

Groups: each frame belongs to one of 29 video sequences (:data:`CVC_SEQUENCE_RANGES`), used to
keep sequences on one side of every split. Without a sidecar the frames must be exactly 1..612
(``n_frames=None`` accepts any subset of them). An ``attributes.csv`` sidecar with ``id`` and
``sequence`` columns (written by the procedural generator) gives the groups of other data instead
and adds per-frame attributes; its optional ``part`` column ("train", "test" or empty) marks the
frames of a separate test world, which then form the test split.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from benchmark.data.base import DatasetError, DatasetLoader, Record, list_images, pair_by_stem, read_gray

#: First and last frame (inclusive) of each of CVC-ClinicDB's 29 video sequences.
CVC_SEQUENCE_RANGES = (
    (1, 25),
    (26, 50),
    (51, 67),
    (68, 78),
    (79, 103),
    (104, 126),
    (127, 151),
    (152, 177),
    (178, 199),
    (200, 205),
    (206, 227),
    (228, 252),
    (253, 277),
    (278, 297),
    (298, 317),
    (318, 342),
    (343, 363),
    (364, 383),
    (384, 408),
    (409, 428),
    (429, 447),
    (448, 466),
    (467, 478),
    (479, 503),
    (504, 528),
    (529, 546),
    (547, 571),
    (572, 591),
    (592, 612),
)
N_FRAMES = 612
_LAYOUTS = (".", "TIF", "PNG")  # folders that may hold Original/ and Ground Truth/


def cvc_sequence(frame: int) -> int:
    """1-based video sequence of a CVC-ClinicDB frame number (1..612)."""
    for index, (first, last) in enumerate(CVC_SEQUENCE_RANGES, start=1):
        if first <= frame <= last:
            return index
    raise DatasetError(f"frame {frame} is outside CVC-ClinicDB's 612 frames")


def frame_sequences(images: dict[str, Path], folder: Path, n_frames: int | None = N_FRAMES) -> dict[str, str]:
    """Video sequence (as str) of every frame of a real CVC-ClinicDB copy.

    Args:
        images: image path by id (file stem); ids must be frame numbers 1..612.
        folder: the image folder, for messages.
        n_frames: how many frames the copy must hold (612), or ``None`` to accept a subset.

    Raises:
        DatasetError: on an id that is not a frame number 1..612 (naming the file), a frame
            number given twice (``1`` and ``01``), or missing frames (naming them).
    """
    frames: dict[int, Path] = {}
    for key, path in images.items():
        if not (key.isdigit() and 1 <= int(key) <= N_FRAMES):
            raise DatasetError(
                f"{path}: CVC-ClinicDB frames are named 1..{N_FRAMES} (e.g. 1.tif); rename or remove this file, "
                "or add an attributes.csv with 'id' and 'sequence' columns for data in this layout that is not CVC-ClinicDB"
            )
        if int(key) in frames:
            raise DatasetError(f"{frames[int(key)]} and {path} are the same frame {int(key)}; keep one")
        frames[int(key)] = path
    if n_frames is not None and len(frames) != n_frames:
        missing = sorted(set(range(1, N_FRAMES + 1)) - set(frames))
        raise DatasetError(
            f"{folder} holds {len(frames)} frames but CVC-ClinicDB has {n_frames}; missing e.g. "
            f"{', '.join(f'{frame}.*' for frame in missing[:5])}: complete the download"
        )
    return {key: str(cvc_sequence(int(key))) for key in images}


class CVCClinicDB(DatasetLoader):
    """Loader of the CVC-ClinicDB layout (TIFF original or TIF/PNG re-package).

    Args:
        root: folder holding ``Original/`` and ``Ground Truth/`` (or ``TIF/`` or ``PNG/`` with them).
        n_frames: number of frames a copy without ``attributes.csv`` must hold (612); ``None``
            accepts any subset of frames 1..612 (groups still follow the 29 sequences).
    """

    modality = "polyp"
    classes = ("background", "polyp")

    def __init__(self, root: str | Path, *, n_frames: int | None = N_FRAMES):
        super().__init__(root)
        self.n_frames = n_frames

    def _folders(self) -> tuple[Path, Path]:
        for base in (self.root / layout for layout in _LAYOUTS):
            if (base / "Original").is_dir() and (base / "Ground Truth").is_dir():
                return base / "Original", base / "Ground Truth"
        raise DatasetError(
            f"{self.root} has no 'Original/' and 'Ground Truth/' folders (nor TIF/ or PNG/ holding them); "
            "point prepare.datasets at the folder that contains them"
        )

    def records(self) -> list[Record]:
        image_dir, label_dir = self._folders()
        pairs = pair_by_stem(list_images(image_dir), list_images(label_dir), image_dir=image_dir, label_dir=label_dir)
        groups = self._sequences({key: image for key, image, _ in pairs}, image_dir)
        parts = self._parts()
        return [Record(key, image, label, group=groups[key], part=parts.get(key)) for key, image, label in pairs]

    def _parts(self) -> dict[str, str]:
        """id -> "test" for the frames a sidecar's ``part`` column puts in a separate test world."""
        sidecar = self.root / "attributes.csv"
        if not sidecar.is_file():
            return {}
        table = pd.read_csv(sidecar, dtype={"id": str, "part": str}, keep_default_na=False)
        if "part" not in table:
            return {}
        unknown = sorted(set(table["part"]) - {"", "train", "test"})
        if unknown:
            raise DatasetError(
                f"{sidecar}: column 'part' holds {unknown[0]!r}; it may only be 'train', 'test' or empty"
            )
        return {key: "test" for key, part in zip(table["id"], table["part"]) if part == "test"}

    def _sequences(self, images: dict[str, Path], folder: Path) -> dict[str, str]:
        sidecar = self.root / "attributes.csv"
        if sidecar.is_file():
            table = pd.read_csv(sidecar, dtype={"id": str})
            if "sequence" in table:
                mapping = dict(zip(table["id"], table["sequence"].astype(str)))
                missing = [key for key in images if key not in mapping]
                if missing:
                    raise DatasetError(
                        f"{sidecar} has no row for {images[missing[0]]} ({len(missing)} frames in all); regenerate the dataset"
                    )
                return {key: mapping[key] for key in images}
        return frame_sequences(images, folder, self.n_frames)

    def read_label(self, record: Record) -> np.ndarray:
        """Binary polyp mask, uint8 ``(H, W)`` in {0, 1} (threshold ``> 127``); an empty mask is an error."""
        values = read_gray(record.label)
        labels = (values > 127).astype(np.uint8)
        if not labels.any():
            hint = f" (largest value {values.max()}: a 0/1 mask? polyp pixels must be 255)" if values.max() else ""
            raise DatasetError(
                f"{record.label} holds no polyp (no value > 127){hint}; every CVC-ClinicDB frame shows one: "
                "restore the original mask"
            )
        return labels
