"""CVC-ClinicDB (CVC-612) as published, and the procedural ``synth_polyp`` in the same layout.

Layout: ``Original/<n>.tif`` (RGB frames) and ``Ground Truth/<n>.tif`` (masks), n = 1..612,
or the PNG re-package ``PNG/Original/<n>.png`` + ``PNG/Ground Truth/<n>.png``. Masks are
binarised at ``> 127`` (about 1 in 5 real masks holds stray grey values). Each frame belongs to
one of 29 video sequences (:data:`CVC_SEQUENCE_RANGES`); splits keep sequences together.
A sidecar ``attributes.csv`` (written by the procedural generator) adds per-frame attributes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from benchmark.data.base import DatasetError, DatasetLoader, Record, list_images, pair_by_stem, read_gray

#: First and last frame (inclusive) of each of CVC-ClinicDB's 29 video sequences.
CVC_SEQUENCE_RANGES = (
    (1, 25), (26, 50), (51, 67), (68, 78), (79, 103), (104, 126), (127, 151), (152, 177),
    (178, 199), (200, 205), (206, 227), (228, 252), (253, 277), (278, 297), (298, 317),
    (318, 342), (343, 363), (364, 383), (384, 408), (409, 428), (429, 447), (448, 466),
    (467, 478), (479, 503), (504, 528), (529, 546), (547, 571), (572, 591), (592, 612),
)  # fmt: skip


def cvc_sequence(frame: int) -> int:
    """1-based video sequence of a CVC-ClinicDB frame number (1..612)."""
    for index, (first, last) in enumerate(CVC_SEQUENCE_RANGES, start=1):
        if first <= frame <= last:
            return index
    raise DatasetError(f"frame {frame} is outside CVC-ClinicDB's 612 frames")


class CVCClinicDB(DatasetLoader):
    """Loader of the CVC-ClinicDB layout (TIFF original or PNG re-package)."""

    modality = "polyp"
    classes = ("background", "polyp")

    def _folders(self) -> tuple[Path, Path]:
        for base in (self.root, self.root / "PNG"):
            if (base / "Original").is_dir() and (base / "Ground Truth").is_dir():
                return base / "Original", base / "Ground Truth"
        raise DatasetError(
            f"{self.root} has no 'Original/' and 'Ground Truth/' folders (nor PNG/Original, PNG/Ground Truth); "
            "point prepare.datasets at the folder that contains them"
        )

    def records(self) -> list[Record]:
        image_dir, label_dir = self._folders()
        pairs = pair_by_stem(list_images(image_dir), list_images(label_dir), image_dir=image_dir, label_dir=label_dir)
        groups = self._sequences([key for key, _, _ in pairs])
        return [Record(key, image, label, group=groups[key]) for key, image, label in pairs]

    def _sequences(self, ids: list[str]) -> dict[str, str]:
        sidecar = self.root / "attributes.csv"
        if sidecar.is_file():
            table = pd.read_csv(sidecar, dtype={"id": str})
            if "sequence" in table:
                mapping = dict(zip(table["id"], table["sequence"].astype(str)))
                missing = [key for key in ids if key not in mapping]
                if missing:
                    raise DatasetError(f"{sidecar} has no row for frame(s) {missing[:5]}; regenerate the dataset")
                return {key: mapping[key] for key in ids}
        if not all(key.isdigit() for key in ids):
            raise DatasetError(f"{self.root}: CVC-ClinicDB frames are named 1..612; found ids such as {ids[0]!r}")
        return {key: str(cvc_sequence(int(key))) for key in ids}

    def read_label(self, record: Record) -> np.ndarray:
        """Binary polyp mask, uint8 ``(H, W)`` in {0, 1} (threshold ``> 127``)."""
        return (read_gray(record.label) > 127).astype(np.uint8)
