"""What the quality gate let through: the new-lesion gate against the union-label gate, on one synthesize folder.

    python benchmarks/gate_check.py data/synthetic/<dataset> [--theta 0.7] [--png gate_check.png]
                                    [--output results/benchmarks/gate_check_<name>.json]

Reads ``manifest.csv`` and ``samples.npz`` of a ``synthesize`` output (real or procedural data) and prints, for
the gate the stage used (``iou``: the new lesion, outside the background's own lesion) and the union-label gate
it replaced (``iou_union``: own ground truth ∪ new lesion):

- how many samples each accepts, and how many only the union gate accepts;
- the area of the background's own lesion over the new lesion's (median, and the share above 2.3, where an
  unpainted sample passes the union gate on polyps);
- whether a lesion is drawn where the new mask is: the contrast of the new region against a 3-px ring around it,
  |mean inside − mean ring| / std ring, on the grey image (a painted polyp stands out; plain mucosa does not);
- the new-lesion IoU of the samples only the union gate accepts.

``--png`` writes a grid of accepted samples (the new gate; green: the new mask's outline) and union-only ones
(red) to look at. Nothing here trains or generates; it reads what the stage wrote.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

import benchmark  # noqa: F401  (pins the CPU numerics before numpy is imported)


def region_contrast(image: np.ndarray, mask: np.ndarray, ring_px: int = 3) -> float:
    """|mean(inside) − mean(ring)| / std(ring) of the grey image. image uint8 (S, S, 3), mask {0, 1} (S, S)."""
    from scipy import ndimage

    grey = np.asarray(image, np.float64).mean(axis=-1)
    inside = np.asarray(mask, bool)
    if not inside.any():
        return float("nan")
    ring = ndimage.binary_dilation(inside, iterations=ring_px) & ~inside
    if ring.sum() < 2:
        return float("nan")
    return float(abs(grey[inside].mean() - grey[ring].mean()) / max(grey[ring].std(), 1.0))


def summarise(table, masks: np.ndarray, images: np.ndarray, theta: float) -> dict:
    """Figures of the two gates over one manifest (``table`` row i ↔ ``images[i]``, ``masks[i]``)."""
    new = table["iou"].to_numpy() > theta
    union = table["iou_union"].to_numpy() > theta
    ratio = table["own_area_px"].to_numpy() / np.maximum(table["new_area_px"].to_numpy(), 1)
    contrast = np.array([region_contrast(images[i], masks[i]) for i in range(len(table))])

    def describe(selected: np.ndarray) -> dict:
        n = int(selected.sum())
        if n == 0:
            return {"n": 0}
        return {
            "n": n,
            "median_own_over_new_area": float(np.median(ratio[selected])),
            "share_own_over_new_above_2_3": float((ratio[selected] > 2.3).mean()),
            "median_contrast": float(np.nanmedian(contrast[selected])),
            "median_new_lesion_iou": float(np.median(table["iou"].to_numpy()[selected])),
            "median_union_iou": float(np.median(table["iou_union"].to_numpy()[selected])),
        }

    return {
        "n_generated": len(table),
        "theta": theta,
        "accepted_new_gate": describe(new),
        "accepted_union_gate": describe(union),
        "union_only": describe(union & ~new),
        "new_only": describe(new & ~union),
        "rejected_by_both": describe(~new & ~union),
    }


def grid(
    images: np.ndarray, masks: np.ndarray, rows: list[tuple[str, np.ndarray]], path: Path, per_row: int = 12
) -> None:
    """A PNG: one row of up to ``per_row`` samples per (title, indices), the new mask outlined."""
    import matplotlib.pyplot as plt
    from scipy import ndimage

    fig, axes = plt.subplots(len(rows), per_row, figsize=(per_row * 1.1, len(rows) * 1.3), squeeze=False)
    for r, (title, indices) in enumerate(rows):
        colour = np.array([0, 255, 0] if "new" in title else [255, 0, 0], np.uint8)
        for c in range(per_row):
            ax = axes[r, c]
            ax.axis("off")
            if c < len(indices):
                i = indices[c]
                shown = images[i].copy()
                edge = masks[i].astype(bool) & ~ndimage.binary_erosion(masks[i].astype(bool))
                shown[edge] = colour
                ax.imshow(shown)
        axes[r, 0].set_title(title, fontsize=7, loc="left")
    fig.tight_layout()
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    tmp.replace(path)


def main() -> None:
    import pandas as pd

    cli = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    cli.add_argument("folder", help="a synthesize output folder (manifest.csv + samples.npz)")
    cli.add_argument("--theta", type=float, default=0.7)
    cli.add_argument("--png", default=None)
    cli.add_argument("--output", default=None)
    args = cli.parse_args()
    folder = Path(args.folder)
    for name in ("manifest.csv", "samples.npz"):
        if not (folder / name).is_file():
            raise SystemExit(
                f"{folder / name} is missing; point at a folder the synthesize stage wrote (data/synthetic/<dataset>)"
            )
    table = pd.read_csv(folder / "manifest.csv")
    with np.load(folder / "samples.npz") as archive:
        images, masks = archive["images"], archive["masks"]
    result = {"folder": str(folder), **summarise(table, masks, images, args.theta)}
    print(json.dumps(result, indent=1))
    if args.png:
        new = np.flatnonzero(table["iou"].to_numpy() > args.theta)
        union_only = np.flatnonzero(
            (table["iou_union"].to_numpy() > args.theta) & ~(table["iou"].to_numpy() > args.theta)
        )
        grid(
            images,
            masks,
            [
                ("accepted (new gate)", new[:12]),
                ("accepted (new gate), next", new[12:24]),
                ("union gate only (rejected now)", union_only[:12]),
            ],
            Path(args.png),
        )
    if args.output:
        from benchmark.utils.io import write_json

        write_json(args.output, result)


if __name__ == "__main__":
    main()
