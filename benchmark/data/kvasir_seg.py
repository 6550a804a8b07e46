"""Kvasir-SEG as published, with the Kvasir-Sessile "flat polyp" stratum when present.

Layout: ``Kvasir-SEG/images/<id>.jpg``, ``Kvasir-SEG/masks/<id>.jpg`` and
``Kvasir-SEG/kavsir_bboxes.json`` (sic: ``{"<id>": {"height": H, "width": W, "bbox": [...]}}``);
the root may be that folder or the one holding it. Masks are RGB JPEGs, binarised at ``> 127``.
Kvasir-Sessile (``sessile-main-Kvasir-SEG/images/<id>.jpg``, 196 ids, all Kvasir-SEG ids) is
found beside or inside the Kvasir-SEG folder (or at ``sessile_root``) and gives ``flat``.

Two protocols: ``official_split=False`` (the paper's 800/200, drawn by the pipeline, ``part``
is None) or ``official_split=True`` (the published ``train.txt`` / ``val.txt``, 880/120; the
official validation list is the held-out "test" part).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from benchmark.data.base import DatasetError, DatasetLoader, Record, list_images, pair_by_stem, read_gray, read_rgb

BOXES_FILE = "kavsir_bboxes.json"  # sic, as published
SESSILE_FOLDER = "sessile-main-Kvasir-SEG"
OFFICIAL_LISTS = (("train.txt", "train"), ("val.txt", "test"))


class KvasirSEG(DatasetLoader):
    """Loader of the published Kvasir-SEG layout (JPEG images and masks, boxes json).

    Args:
        root: the ``Kvasir-SEG`` folder, or a folder containing ``Kvasir-SEG/``.
        official_split: mark records with the official ``train.txt`` / ``val.txt`` parts.
        sessile_root: the ``sessile-main-Kvasir-SEG`` folder, when not beside or inside ``root``.
    """

    modality = "polyp"
    classes = ("background", "polyp")

    def __init__(self, root: str | Path, *, official_split: bool = False, sessile_root: str | Path | None = None):
        super().__init__(root)
        candidates = (self.root, self.root / "Kvasir-SEG")
        self.folder = next((c for c in candidates if (c / "images").is_dir() and (c / "masks").is_dir()), None)
        if self.folder is None:
            raise DatasetError(
                f"{self.root} has no 'images/' and 'masks/' folders (nor Kvasir-SEG/images, Kvasir-SEG/masks); "
                "point prepare.datasets at the unzipped Kvasir-SEG folder"
            )
        self.official_split = official_split
        self.sessile_root = None if sessile_root is None else Path(sessile_root)
        if self.sessile_root is not None and not self.sessile_root.is_dir():
            raise DatasetError(f"Kvasir-Sessile folder {self.sessile_root} does not exist; fix sessile_root or drop it")
        self._boxes: dict | None = None

    def boxes(self) -> dict:
        """The parsed ``kavsir_bboxes.json``: id -> ``{"height", "width", "bbox": [...]}``."""
        if self._boxes is None:
            path = self.folder / BOXES_FILE
            if not path.is_file():
                raise DatasetError(
                    f"{path} is missing; Kvasir-SEG ships it beside images/ and masks/: restore it from the download"
                )
            try:
                self._boxes = json.loads(path.read_text())
            except (ValueError, UnicodeDecodeError) as error:
                raise DatasetError(f"{path} is not valid JSON ({error}); restore it from the download") from error
        return self._boxes

    def _entry(self, key: str) -> dict:
        path, entry = self.folder / BOXES_FILE, self.boxes().get(key)
        if entry is None:
            raise DatasetError(
                f"{path} has no entry for image {key!r}; restore the file from the same download as images/"
            )
        if not isinstance(entry, dict) or not all(isinstance(entry.get(k), int) for k in ("height", "width")):
            raise DatasetError(
                f"{path}: entry {key!r} lacks integer 'height' and 'width'; restore the file from the download"
            )
        return entry

    def records(self) -> list[Record]:
        image_dir, label_dir = self.folder / "images", self.folder / "masks"
        pairs = pair_by_stem(list_images(image_dir), list_images(label_dir), image_dir=image_dir, label_dir=label_dir)
        for key, _, _ in pairs:
            self._entry(key)
        unknown = sorted(set(self.boxes()) - {key for key, _, _ in pairs})
        if unknown:
            raise DatasetError(
                f"{self.folder / BOXES_FILE} lists {len(unknown)} id(s) without an image in {image_dir}, e.g. {unknown[0]!r}; "
                "is the download complete?"
            )
        parts = self._official_parts([key for key, _, _ in pairs]) if self.official_split else {}
        return [Record(key, image, label, part=parts.get(key)) for key, image, label in pairs]

    def _official_parts(self, ids: list[str]) -> dict[str, str]:
        known, parts, source = set(ids), {}, {}
        for name, part in OFFICIAL_LISTS:
            path = next((p for p in (self.folder / name, self.root / name) if p.is_file()), None)
            if path is None:
                raise DatasetError(
                    f"official_split=True needs Kvasir-SEG's official lists train.txt and val.txt; {name} was not found: "
                    f"put it in {self.folder} (one id per line), or set official_split to false (the 800/200 protocol)"
                )
            for number, line in enumerate(path.read_text().splitlines(), start=1):
                key = line.strip().removesuffix(".jpg")
                if not key:
                    continue
                if key not in known:
                    raise DatasetError(
                        f"{path}, line {number}: id {key!r} is not a Kvasir-SEG image in {self.folder / 'images'}"
                    )
                if key in parts:
                    raise DatasetError(
                        f"{path}, line {number}: id {key!r} is already listed in {source[key]}; keep it in one list"
                    )
                parts[key], source[key] = part, path
        missing = [key for key in ids if key not in parts]
        if missing:
            raise DatasetError(
                f"{len(missing)} image(s) are in neither {self.folder / 'train.txt'} nor val.txt, e.g. {missing[0]!r}; "
                "use the official lists unchanged"
            )
        return parts

    def read_image(self, record: Record) -> np.ndarray:
        """RGB image, uint8 ``(H, W, 3)``; its size must match its ``kavsir_bboxes.json`` entry."""
        image, entry = read_rgb(record.image), self._entry(record.id)
        if image.shape[:2] != (entry["height"], entry["width"]):
            raise DatasetError(
                f"{record.image} is {image.shape[1]}x{image.shape[0]} but {self.folder / BOXES_FILE} says "
                f"{entry['width']}x{entry['height']} (width x height); the image was resized or replaced: re-download it"
            )
        return image

    def read_label(self, record: Record) -> np.ndarray:
        """Binary polyp mask, uint8 ``(H, W)`` in {0, 1} (threshold ``> 127``); must hold a polyp."""
        label = (read_gray(record.label) > 127).astype(np.uint8)
        if not label.any():
            raise DatasetError(
                f"{record.label} has no polyp pixel (> 127); every Kvasir-SEG mask shows one: re-download it"
            )
        return label

    def sessile_folder(self) -> Path | None:
        """The Kvasir-Sessile folder in use, or ``None`` when there is none."""
        if self.sessile_root is not None:
            return self.sessile_root
        # resolve(): a symlinked Kvasir-SEG (data/raw/kvasir_seg -> the download) still finds its sibling
        candidates = (
            self.folder / SESSILE_FOLDER,
            self.folder.parent / SESSILE_FOLDER,
            self.folder.resolve().parent / SESSILE_FOLDER,
        )
        return next((p for p in candidates if p.is_dir()), None)

    def attributes(self) -> pd.DataFrame:
        """Columns ``id``, ``bbox_count``, ``json_width``, ``json_height``, and ``flat`` (bool,
        Kvasir-Sessile membership) only when Kvasir-Sessile is present ("unknown" is not "not flat")."""
        ids = [record.id for record in self.records()]
        entries = [self._entry(key) for key in ids]
        table = pd.DataFrame(
            {
                "id": ids,
                "bbox_count": [len(entry.get("bbox", [])) for entry in entries],
                "json_width": [entry["width"] for entry in entries],
                "json_height": [entry["height"] for entry in entries],
            }
        )
        sessile = self.sessile_folder()
        if sessile is not None:
            image_dir, label_dir = sessile / "images", sessile / "masks"
            flat = pair_by_stem(
                list_images(image_dir), list_images(label_dir), image_dir=image_dir, label_dir=label_dir
            )
            known = set(ids)
            stray = [path for key, path, _ in flat if key not in known]
            if stray:
                raise DatasetError(
                    f"{stray[0]} is in Kvasir-Sessile but not in Kvasir-SEG ({self.folder / 'images'}); "
                    f"{len(stray)} such id(s): use the Kvasir-Sessile release that matches this Kvasir-SEG"
                )
            table["flat"] = table["id"].isin({key for key, _, _ in flat})
        return table
