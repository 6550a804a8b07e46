"""Control data that calibrates DiffAug's verdict (Table 7 and the augmentation matrix; beyond the paper).

Each control is a training set of the same size as a DiffAug volume, trained at the same budget:

- **copy-paste** (:func:`copy_paste`): the cheap method a user would pick instead of a diffusion
  model. For job k of the synthesize stage (the same background, donor lesion, scale, rotation and
  placement the generator was asked to inpaint), the donor's own pixels are cut out with its mask,
  scaled and rotated exactly like the mask, and pasted with a feathered edge. Label: as DiffAug's
  (the background's own ground truth ∪ the placed mask). No gate.
- **oracle** (:func:`oracle_images`): fresh frames and masks from the procedural generator that made
  the dataset, from a world seed no other stage uses (never the test world): what perfect synthetic
  data from the training distribution would give, the upper bound of any generator. Procedural
  datasets only.
- **shuffled labels** (``accepted_subset(..., shuffle_labels=True)``): DiffAug's accepted images,
  each with the label of another accepted sample: a negative control that must hurt.

The copy-paste and oracle sets are written like a synthesize folder (``samples.npz`` + ``manifest.csv``
with every sample ``accepted``), so :func:`benchmark.generators.loop.accepted_subset` reads them.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import ndimage

from benchmark.generators.jobs import Jobs
from benchmark.generators.placement import donor_boxes


def transform_patch(
    patch: np.ndarray, component: np.ndarray, scale: float, angle_deg: float
) -> tuple[np.ndarray, np.ndarray]:
    """Scale then rotate an RGB patch exactly like :func:`~benchmark.generators.placement.transform_component` its mask.

    Args:
        patch: uint8 (h, w, 3): the donor image inside the component's bounding box.
        component: bool (h, w): the donor lesion in that box.
        scale, angle_deg: the job's placement (``Jobs.table`` ``scale``, ``angle_deg``).

    Returns:
        ``(rgb float32 (h', w', 3) in [0, 255], mask bool (h', w'))`` cropped to the transformed
        mask's bounding box; ``mask`` equals ``transform_component(component, scale, angle_deg)``.
    """
    padded_mask = np.pad(component.astype(np.float32), 1)
    mask = (
        ndimage.rotate(
            (ndimage.zoom(padded_mask, scale, order=1) >= 0.5).astype(np.float32), angle_deg, reshape=True, order=1
        )
        >= 0.5
    )
    channels = []
    for c in range(3):
        # pad with the edge, so the rim of the lesion does not blend with black
        channel = np.pad(patch[..., c].astype(np.float32), 1, mode="edge")
        channel = ndimage.rotate(
            ndimage.zoom(channel, scale, order=1), angle_deg, reshape=True, order=1, mode="nearest"
        )
        channels.append(channel)
    rgb = np.stack(channels, axis=-1)
    rows, cols = np.nonzero(mask)
    if len(rows) == 0:
        return np.zeros((0, 0, 3), np.float32), np.zeros((0, 0), bool)
    box = (slice(rows.min(), rows.max() + 1), slice(cols.min(), cols.max() + 1))
    return np.clip(rgb[box], 0, 255), mask[box]


def copy_paste(
    jobs: Jobs, donor_images: dict[str, np.ndarray], donor_masks: dict[str, np.ndarray], *, feather_px: float = 1.5
) -> np.ndarray:
    """Paste each job's donor lesion onto its background at the job's placement.

    Args:
        jobs: inpainting jobs (:func:`~benchmark.generators.jobs.draw_jobs`); uses ``donor_id``,
            ``donor_component``, ``scale``, ``angle_deg`` and ``masks`` (the placed region).
        donor_images: id -> uint8 (S, S, 3) of the donor split; donor_masks: id -> (S, S) {0, 1}.
        feather_px: σ in pixels of the Gaussian that softens the pasted edge (0: a hard edge). The
            blend weight is 1 on the placed mask eroded by ⌈σ⌉ and falls off across its border.

    Returns:
        uint8 (J, S, S, 3): the backgrounds with the pasted lesions; outside the dilated mask the
        background is unchanged.
    """
    out = jobs.backgrounds.copy()
    for j, row in enumerate(jobs.table.itertuples(index=False)):
        box, component = donor_boxes(donor_masks[row.donor_id])[int(row.donor_component)]
        rgb, shape = transform_patch(donor_images[row.donor_id][box], component, float(row.scale), float(row.angle_deg))
        placed = jobs.masks[j].astype(bool)
        rows, cols = np.nonzero(placed)
        top, left = rows.min(), cols.min()
        if shape.shape != (rows.max() - top + 1, cols.max() - left + 1) or not np.array_equal(
            shape, placed[top : top + shape.shape[0], left : left + shape.shape[1]]
        ):
            raise ValueError(
                f"job {row.job}: the donor {row.donor_id!r} transformed by scale {row.scale:.3f}, angle {row.angle_deg:.1f}° "
                "does not reproduce the placed mask; were the jobs drawn from another dataset?"
            )
        canvas = out[j].astype(np.float32)
        pasted = canvas.copy()
        pasted[top : top + shape.shape[0], left : left + shape.shape[1]][shape] = rgb[shape]
        weight = placed.astype(np.float32)
        if feather_px > 0:
            weight = ndimage.gaussian_filter(weight, feather_px) * placed  # soft inside the border, 0 outside
            core = ndimage.binary_erosion(placed, iterations=int(np.ceil(feather_px)))
            weight = np.maximum(weight / max(weight.max(), 1e-6), core)
        out[j] = np.clip(np.rint(canvas + weight[..., None] * (pasted - canvas)), 0, 255).astype(np.uint8)
    return out


def oracle_images(
    dataset_name: str, procedural_section, world_seed: int, count: int, options, *, progress: bool = False
):
    """``count`` fresh images and masks of a procedural dataset from ``world_seed``, prepared like the dataset.

    Renders a new world with the dataset's own generator settings (``procedural.<dataset_name>``),
    without a test world, into a temporary folder, and prepares it with the same options as the
    dataset (resolution, crop, target), so oracle pairs differ from training pairs only in being new.

    Args:
        dataset_name: "synth_polyp" or "synth_fundus".
        procedural_section: the ``procedural`` params section.
        world_seed: base seed of the oracle world (must differ from the training and test worlds').
        count: images wanted (>= 1).
        options: :class:`benchmark.data.prepare.PrepareOptions` of the dataset.

    Returns:
        ``(images uint8 (count, S, S, 3), masks uint8 (count, S, S) in {0, 1}, attributes DataFrame)``.
    """
    import dataclasses

    from benchmark.data.prepare import prepare_dataset
    from benchmark.data.prepared import PreparedDataset
    from benchmark.data.procedural import fundus, polyp

    if count < 1:
        raise ValueError(f"oracle count must be >= 1, got {count}")
    config = getattr(procedural_section, dataset_name, None)
    if dataset_name == "synth_polyp":
        config, module = dataclasses.replace(config, n_images=count, test_sequences=0), polyp
    elif dataset_name == "synth_fundus":
        config, module = dataclasses.replace(config, n_train=count, n_validation=1, n_test=1), fundus
    else:
        raise ValueError(
            f"oracle data exists only for the procedural datasets (synth_polyp, synth_fundus), not {dataset_name!r}; "
            "drop the +oracle runs for this dataset from ablation.runs"
        )
    with tempfile.TemporaryDirectory(prefix="oracle-") as tmp:
        root = Path(tmp)
        module.generate(config, world_seed, root / "raw", progress=progress)
        prepare_dataset(dataset_name, root / "raw", root / "prepared", root / "split.json", options, progress=progress)
        prepared = PreparedDataset(root / "prepared", root / "split.json")
        attributes = prepared.attributes
        # the training part only (fundus: the one-image validation / test stubs are not oracle data)
        held_out = (
            attributes["part"].astype(str).isin(["validation", "test"])
            if "part" in attributes
            else pd.Series(False, index=attributes.index)
        )
        ids = list(attributes.loc[~held_out, "id"])[:count]
        if len(ids) < count:
            raise RuntimeError(
                f"the oracle world of {dataset_name} holds {len(ids)} training images, {count} were asked for"
            )
        images, masks = prepared.arrays(ids)
        return images, masks, attributes.set_index("id").loc[ids].reset_index()


def write_control_set(
    directory: str | Path, images: np.ndarray, labels: np.ndarray, table: pd.DataFrame, summary: dict
) -> None:
    """Write a control set like a synthesize folder: every sample ``accepted``, ``order`` = its position."""
    from benchmark.utils.io import atomic_dir, write_json

    table = table.reset_index(drop=True).copy()
    table["order"], table["accepted"] = np.arange(len(table)), True
    with atomic_dir(directory) as tmp:
        np.savez_compressed(tmp / "samples.npz", images=images, labels=labels.astype(np.uint8))
        table.to_csv(tmp / "manifest.csv", index=False, float_format="%.6f")
        write_json(tmp / "manifest.json", summary)
