"""Turn a dataset on disk into the arrays every method trains on, plus its split and attributes.

Output folder ``data/prepared/<dataset>/``:

- ``arrays.npz``: ``ids`` (N,) str; ``images`` uint8 (N, S, S, 3); ``masks`` uint8 (N, S, S)
  in {0, 1} (the segmentation target at training resolution S); ``labels`` uint8 (N, S, S)
  class map; ``normal_images`` uint8 (N, S, S, 3) and ``normal_labels`` uint8 (N, S, S) (the
  twins' class maps: zeros for polyp twins, disc/cup for fundus twins) when the dataset has
  lesion-free twins.
- ``native_masks.npz``: the target of every image at native resolution (after the fundus
  disc crop), one array per id: metrics are computed at this resolution.
- ``attributes.csv``: one row per image: id, split, group, native size, lesion count, target
  area fraction, and the dataset's own attributes (strata).
- ``manifest.json``: what was done (dataset, root, protocol, sizes, counts).

The split itself lives in ``data/splits/<dataset>.json`` (committed, made once).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image
from scipy import ndimage
from tqdm.auto import tqdm

from benchmark.data import DATASETS, DatasetError, get_dataset
from benchmark.data.base import Record, check_same_size, read_rgb
from benchmark.data.splits import load_or_make_split, make_split
from benchmark.utils.io import atomic_dir, write_json
from benchmark.utils.seeding import numpy_rng

EIGHT_CONNECTED = np.ones((3, 3), dtype=bool)


@dataclasses.dataclass(frozen=True)
class PrepareOptions:
    """Options shared by every dataset (the ``prepare`` section of params.yaml, minus roots)."""

    image_size: int
    val_fraction: float
    split_seed: int
    fundus_target: str  # "cup" or "disc"
    fundus_crop_scale: float
    min_lesion_fraction: float


def target_from_labels(labels: np.ndarray, modality: str, fundus_target: str) -> np.ndarray:
    """Binary target uint8 (H, W) in {0, 1} from a loader's class map."""
    if modality == "polyp":
        return (labels == 1).astype(np.uint8)
    if fundus_target == "cup":
        return (labels == 2).astype(np.uint8)
    return (labels >= 1).astype(np.uint8)


def disc_crop_box(labels: np.ndarray, scale: float, *, path: Path | None = None) -> tuple[int, int, int]:
    """Square crop ``(top, left, side)`` centred on the optic disc, ``side = scale * disc height``.

    The centre comes from the annotation, as in the disc-centred REFUGE2 re-packages; every
    method sees the same crops, so the comparison stays fair.
    """
    rows, cols = np.nonzero(labels >= 1)
    if rows.size == 0:
        raise DatasetError(f"{path or 'mask'} has no optic disc; every REFUGE image needs a disc annotation")
    extent = max(rows.max() - rows.min() + 1, cols.max() - cols.min() + 1)
    side = int(round(scale * extent))
    centre_y, centre_x = (rows.min() + rows.max()) / 2, (cols.min() + cols.max()) / 2
    return int(round(centre_y - side / 2)), int(round(centre_x - side / 2)), side


def crop_padded(array: np.ndarray, top: int, left: int, side: int, fill: int) -> np.ndarray:
    """``array[top:top+side, left:left+side]`` with ``fill`` where the box leaves the image."""
    height, width = array.shape[:2]
    out = np.full((side, side, *array.shape[2:]), fill, dtype=array.dtype)
    y0, x0 = max(top, 0), max(left, 0)
    y1, x1 = min(top + side, height), min(left + side, width)
    if y1 > y0 and x1 > x0:
        out[y0 - top : y1 - top, x0 - left : x1 - left] = array[y0:y1, x0:x1]
    return out


def resize_image(image: np.ndarray, size: int) -> np.ndarray:
    """uint8 (H, W, 3) -> uint8 (size, size, 3), antialiased bilinear."""
    return np.asarray(Image.fromarray(image).resize((size, size), Image.Resampling.BILINEAR, reducing_gap=None))


def resize_binary(mask: np.ndarray, size: int) -> np.ndarray:
    """{0,1} (H, W) -> {0,1} (size, size) by area coverage > 0.5 (keeps small lesions' area)."""
    coverage = Image.fromarray(mask.astype(np.float32)).resize((size, size), Image.Resampling.BOX)
    return (np.asarray(coverage) > 0.5).astype(np.uint8)


def resize_labels(labels: np.ndarray, size: int) -> np.ndarray:
    """Class map (H, W) -> (size, size): nested classes resized one by one (cup inside disc)."""
    out = np.zeros((size, size), dtype=np.uint8)
    for value in range(1, int(labels.max()) + 1):
        out[resize_binary((labels >= value).astype(np.uint8), size) == 1] = value
    return out


def count_lesions(mask: np.ndarray, min_fraction: float) -> int:
    """8-connected components of a binary mask, ignoring specks below ``min_fraction`` of the image."""
    components, count = ndimage.label(mask, structure=EIGHT_CONNECTED)
    if count == 0:
        return 0
    sizes = np.bincount(components.ravel())[1:]
    return int(np.count_nonzero(sizes >= min_fraction * mask.size))


def prepare_dataset(
    name: str, root: Path, out_dir: Path, split_path: Path, options: PrepareOptions, *, progress: bool = True
) -> dict:
    """Load ``name`` from ``root``, write the prepared folder atomically and return its manifest."""
    spec = get_dataset(name)
    loader = spec.make_loader(root)
    records = loader.records()
    if not records:
        raise DatasetError(f"{root} holds no images; is the download complete?")
    attributes = loader.attributes().set_index("id")
    normal_dir = root / "Normal"
    size = options.image_size

    images, masks, labels, normals, normal_labels, native_masks, rows = [], [], [], [], [], {}, []
    for record in tqdm(records, desc=f"prepare {name}", disable=not progress, unit="img"):
        image, label = loader.read_image(record), loader.read_label(record)
        check_same_size(image, label, record)
        native_size = image.shape[:2]
        normal, normal_label = _read_normal(normal_dir, record, loader)
        if loader.modality == "fundus":
            top, left, side = disc_crop_box(label, options.fundus_crop_scale, path=record.label)
            image = crop_padded(image, top, left, side, 0)
            label = crop_padded(label, top, left, side, 0)
            normal = None if normal is None else crop_padded(normal, top, left, side, 0)
            normal_label = None if normal_label is None else crop_padded(normal_label, top, left, side, 0)
        target = target_from_labels(label, loader.modality, options.fundus_target)
        images.append(resize_image(image, size))
        masks.append(resize_binary(target, size))
        labels.append(resize_labels(label, size))
        if normal is not None:
            normals.append(resize_image(normal, size))
            # a twin without its own mask file is lesion-free by construction (polyp twins)
            normal_labels.append(
                resize_labels(normal_label, size) if normal_label is not None else np.zeros((size, size), np.uint8)
            )
        native_masks[record.id] = target.astype(bool)
        rows.append(
            {
                "id": record.id,
                "group": record.group if record.group is not None else record.id,
                "part": record.part,
                "native_height": native_size[0],
                "native_width": native_size[1],
                "n_lesions": count_lesions(target, options.min_lesion_fraction),
                "target_area_fraction": float(target.mean()),
            }
        )
    if normals and len(normals) != len(records):
        raise DatasetError(
            f"{normal_dir} holds twins for only {len(normals)} of {len(records)} images; regenerate the dataset"
        )

    ids = [record.id for record in records]
    meta = {
        "dataset": name,
        "split_seed": options.split_seed,
        "val_fraction": options.val_fraction,
        "test_fraction": spec.test_fraction,
        "keep_groups_together": spec.keep_groups_together,
        "n_images": len(ids),
    }
    split = load_or_make_split(
        split_path,
        ids,
        meta,
        lambda: make_split(
            ids,
            rng=numpy_rng(options.split_seed, "split", name),
            val_fraction=options.val_fraction,
            test_fraction=spec.test_fraction,
            groups=[r.group if r.group is not None and spec.keep_groups_together else r.id for r in records],
            parts=[r.part for r in records],
        ),
    )
    part_of = {key: part for part, keys in split.items() for key in keys}
    table = pd.DataFrame(rows).set_index("id")
    table.insert(0, "split", [part_of.get(key, "unused") for key in table.index])
    table = table.join(attributes.drop(columns=[c for c in attributes.columns if c in table.columns]), how="left")

    manifest = {
        "dataset": name,
        "description": spec.description,
        "loader": spec.loader.__name__,
        "modality": loader.modality,
        "root": str(root),
        "image_size": size,
        "target": "polyp" if loader.modality == "polyp" else options.fundus_target,
        "fundus_crop_scale": options.fundus_crop_scale if loader.modality == "fundus" else None,
        "classes": list(loader.classes),
        "has_normal_twins": bool(normals),
        "split_protocol": spec.split_protocol(
            grouped=any(record.group is not None for record in records),
            has_test_part=any(record.part == "test" for record in records),
        ),
        "counts": {part: len(keys) for part, keys in split.items()},
        "n_images": len(ids),
    }
    with atomic_dir(out_dir) as tmp:
        arrays = {
            "ids": np.asarray(ids),
            "images": np.stack(images),
            "masks": np.stack(masks),
            "labels": np.stack(labels),
        }
        if normals:
            arrays["normal_images"] = np.stack(normals)
            arrays["normal_labels"] = np.stack(normal_labels)
        np.savez(tmp / "arrays.npz", **arrays)
        np.savez_compressed(tmp / "native_masks.npz", **native_masks)
        table.reset_index().to_csv(tmp / "attributes.csv", index=False)
        write_json(tmp / "manifest.json", manifest)
    return manifest


def _read_normal(normal_dir: Path, record: Record, loader) -> tuple[np.ndarray | None, np.ndarray | None]:
    """The lesion-free twin of ``record`` and its class map (fundus twins carry a disc/cup mask)."""
    if not normal_dir.is_dir():
        return None, None
    image_path = next(
        (
            normal_dir / f"{record.id}{suffix}"
            for suffix in (record.image.suffix, ".tif", ".png", ".jpg")
            if (normal_dir / f"{record.id}{suffix}").is_file()
        ),
        None,
    )
    if image_path is None:
        return None, None
    label_path = next(
        (
            normal_dir / f"{record.id}{suffix}"
            for suffix in (".bmp", ".png")
            if (normal_dir / f"{record.id}{suffix}").is_file() and normal_dir / f"{record.id}{suffix}" != image_path
        ),
        None,
    )
    image = read_rgb(image_path)
    if label_path is None:
        return image, None
    label = loader.read_label(dataclasses.replace(record, label=label_path))
    check_same_size(image, label, dataclasses.replace(record, image=image_path, label=label_path))
    return image, label


__all__ = ["DATASETS", "PrepareOptions", "prepare_dataset"]
