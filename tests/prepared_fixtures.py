"""Tiny prepared datasets written in the layout of ``benchmark.data.prepare`` (no real data needed)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from benchmark.data.prepared import PreparedDataset


def write_prepared(
    root: Path, modality: str, n: int = 24, size: int = 32, *, twins: bool = True, seed: int = 0
) -> PreparedDataset:
    """A polyp (black-bordered frames, one disc lesion) or fundus (disc with a cup) dataset.

    Polyp attributes: ``paris_type``, ``diameter_mm``, ``target_area_fraction``; fundus: ``vcdr``,
    ``stratum``, ``rim_thinning``, ``glaucoma``. Split: first half train, then val, then test.
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    centre = (size - 1) / 2
    images = np.zeros((n, size, size, 3), np.uint8)
    normals = np.zeros_like(images)
    masks = np.zeros((n, size, size), np.uint8)
    labels = np.zeros_like(masks)
    normal_labels = np.zeros_like(masks)
    rows = []
    for i in range(n):
        if modality == "polyp":
            fov = (yy - centre) ** 2 + (xx - centre) ** 2 < (0.48 * size) ** 2
            normal = np.where(fov[..., None], rng.normal(120, 8, (size, size, 3)), 0)
            cy, cx = rng.uniform(0.35 * size, 0.65 * size, 2)
            radius = rng.uniform(0.08, 0.16) * size
            lesion = ((yy - cy) ** 2 + (xx - cx) ** 2 < radius**2) & fov
            image = np.where(lesion[..., None], normal + np.array([60, 10, 0]), normal)
            label = lesion.astype(np.uint8)
            paris = ["pedunculated", "sessile", "flat"][i % 3]
            rows.append({"paris_type": paris, "diameter_mm": 2 * radius / 2.0, "flat": paris == "flat"})
            normal_label = np.zeros_like(label)
        else:
            disc = (yy - centre) ** 2 + (xx - centre) ** 2 < (0.3 * size) ** 2
            vcdr = [0.35, 0.55, 0.7][i % 3]
            cup = (yy - centre) ** 2 + (xx - centre) ** 2 < (vcdr * 0.3 * size) ** 2
            normal_cup = (yy - centre) ** 2 + (xx - centre) ** 2 < (0.3 * 0.3 * size) ** 2
            base = rng.normal(90, 6, (size, size, 3)) + disc[..., None] * 60
            image, normal = base + cup[..., None] * 50, base + normal_cup[..., None] * 50
            label = disc.astype(np.uint8) + cup
            normal_label = disc.astype(np.uint8) + normal_cup
            rows.append(
                {
                    "vcdr": vcdr,
                    "stratum": ["normal", "early", "advanced"][i % 3],
                    "rim_thinning": "inferior",
                    "glaucoma": vcdr >= 0.5,
                }
            )
        images[i], normals[i] = np.clip(image, 0, 255), np.clip(normal, 0, 255)
        labels[i], normal_labels[i] = label, normal_label
        masks[i] = label == label.max() if label.max() > 0 else 0
    ids = [f"{modality[0]}{i:03d}" for i in range(n)]
    parts = np.array(["train"] * (n // 2) + ["val"] * (n // 4) + ["test"] * (n - n // 2 - n // 4))
    directory = root / f"tiny_{modality}"
    directory.mkdir(parents=True)
    arrays = {"ids": np.array(ids), "images": images, "masks": masks, "labels": labels}
    if twins:
        arrays.update(normal_images=normals, normal_labels=normal_labels)
    np.savez(directory / "arrays.npz", **arrays)
    table = pd.DataFrame(rows)
    table.insert(0, "split", parts)
    table.insert(0, "id", ids)
    table["target_area_fraction"] = masks.reshape(n, -1).mean(axis=1)
    table.to_csv(directory / "attributes.csv", index=False)
    manifest = {
        "dataset": f"tiny_{modality}",
        "modality": modality,
        "target": "polyp" if modality == "polyp" else "cup",
        "image_size": size,
        "has_normal_twins": twins,
    }
    (directory / "manifest.json").write_text(json.dumps(manifest))
    split = {part: [key for key, p in zip(ids, parts) if p == part] for part in ("train", "val", "test")}
    (root / f"tiny_{modality}.json").write_text(json.dumps(split))
    return PreparedDataset(directory, root / f"tiny_{modality}.json")
