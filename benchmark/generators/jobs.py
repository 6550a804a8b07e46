"""From a prepared dataset to what the generator trains on and what it is asked to generate.

- :func:`training_examples`: the lesion images of a split, their lesion-free twins (or the images
  themselves for real data), the lesion masks and a prompt per image from its attributes.
- :func:`draw_jobs`: inpainting jobs on lesion-free backgrounds: for each background, several
  variants, each with a donor lesion mask placed by :mod:`.placement`, the prompt of the donor's
  (geometrically adjusted) attributes, the target label (own ground truth ∪ new lesion), the
  region the quality gate scores (outside the background's own lesion) and a sampling seed. Everything is drawn from seeds hashed from ``seed`` and the background id, so a
  job does not change when other backgrounds are added.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pandas as pd

from benchmark.data.prepared import PreparedDataset, shows_lesion
from benchmark.generators.base import InpaintingExamples
from benchmark.generators.placement import (
    donor_components,
    fundus_allowed_region,
    gate_region,
    place_mask,
    polyp_allowed_region,
    union_label,
    vertical_cdr,
)
from benchmark.generators.prompts import NEGATIVE_PROMPTS, prompt_and_attributes
from benchmark.utils.seeding import derive_seed, numpy_rng

#: The cup is placed near the disc centre: at most this share of the disc radius away.
FUNDUS_MAX_OFFSET = 0.15
#: A placed cup must enlarge the background's own cup: at least this share of it lies outside the
#: own cup (the ring the gate checks), and its vertical CDR exceeds the own one. (0.45 -> 0.52 is 25 %.)
FUNDUS_MIN_GROWTH = 0.25


def modality_of(dataset: PreparedDataset) -> str:
    """ "polyp" or "fundus"; fundus data must target the cup (DiffAug synthesises enlarged cups)."""
    modality = dataset.manifest["modality"]
    if modality == "fundus" and dataset.manifest.get("target") != "cup":
        raise ValueError(
            f"{dataset.directory} targets the {dataset.manifest.get('target')}; the generator synthesises "
            "enlarged optic cups, so set `prepare.fundus_target: cup`"
        )
    return modality


def training_examples(
    dataset: PreparedDataset, *, part: str = "train", variant: str = "diverse", seed: int = 0
) -> InpaintingExamples:
    """The generator's training pairs from one split (images without a lesion are left out).

    Prompts come from each image's attribute row (exact attributes for procedural data, what the
    labels support for real data) with a paraphrase drawn from ``derive_seed(seed, "prompt", id)``.
    """
    modality = modality_of(dataset)
    data = dataset.subset(part)
    keep = np.nonzero(data.masks.reshape(len(data), -1).any(axis=1))[0]
    if len(keep) == 0:
        raise ValueError(
            f"{dataset.directory}: the {part} split holds no lesion; the generator has nothing to learn from"
        )
    ids = [data.ids[i] for i in keep]
    normals = dataset.normal_images(ids)
    rows = dataset.attributes.set_index("id").loc[ids]
    prompts = tuple(
        prompt_and_attributes(modality, row, variant=variant, rng=numpy_rng(seed, "prompt", key))[0]
        for key, (_, row) in zip(ids, rows.iterrows())
    )
    return InpaintingExamples(
        images=data.images[keep],
        normal_images=normals if normals is not None else data.images[keep],
        masks=data.masks[keep],
        prompts=prompts,
        negative_prompt=NEGATIVE_PROMPTS[modality],
    )


@dataclasses.dataclass(frozen=True)
class Jobs:
    """Inpainting jobs, row-aligned.

    Attributes:
        table: one row per job: ``job`` (int), ``background_id``, ``variant`` (k-th of its
            background), ``donor_id``, ``donor_component`` (k-th lesion of the donor's mask, in
            :func:`~benchmark.generators.placement.donor_boxes` order), ``scale``, ``angle_deg``, ``prompt``, ``seed`` (sampling
            seed), ``mask_area_px``, ``own_area_px`` (the background's own target), ``new_area_px``
            (the new lesion inside ``scored``), ``target_area_fraction`` (of the label), ``target_vcdr``
            (fundus: the label's vertical CDR; NaN for polyps) and the stated prompt attributes as ``prompt_<key>`` columns.
        backgrounds: uint8 (J, S, S, 3): the lesion-free image each job paints into.
        masks: uint8 (J, S, S) in {0, 1}: the region to inpaint (the new lesion).
        labels: uint8 (J, S, S) in {0, 1}: the synthetic image's target (own GT ∪ new lesion).
        scored: uint8 (J, S, S) in {0, 1}: where the gate scores the new lesion, i.e. outside the
            background's own lesion (:func:`~benchmark.generators.placement.gate_region`).
    """

    table: pd.DataFrame
    backgrounds: np.ndarray
    masks: np.ndarray
    labels: np.ndarray
    scored: np.ndarray

    def __len__(self) -> int:
        return len(self.table)


def draw_jobs(
    dataset: PreparedDataset,
    *,
    n_variants: int,
    seed: int,
    variant: str = "diverse",
    part: str = "train",
    donor_part: str = "train",
    background_ids: list[str] | None = None,
    scale_range: tuple[float, float] = (0.75, 1.25),
) -> Jobs:
    """``n_variants`` jobs for every background of ``part`` (or of ``background_ids``).

    Backgrounds are the lesion-free twins when the dataset has them (their own label: zeros for
    polyps, the physiological cup for fundus), else the images themselves, painted only outside
    their annotated lesions. Donors are the lesions of the ``donor_part`` split other than the
    background's own (fundus: only glaucomatous cups, vCDR >= 0.5, or the glaucoma label where
    no vCDR is known); a polyp donor may go anywhere in the field of view away from lesions, a
    cup donor inside the disc near its centre (rotation limited to ±15° to keep cups upright).
    A placed cup must enlarge the background's own cup (:data:`FUNDUS_MIN_GROWTH`), so an eye
    whose own cup is already larger serves as no background for that donor. A job whose donor
    fits nowhere after redraws, or does not enlarge the cup, is skipped (the table says how many
    per background).

    Args:
        dataset: a prepared dataset.
        n_variants: jobs per background (paper: 5–10).
        seed: base seed of donors, placements, prompts and sampling seeds.
        variant: prompt variant, "diverse", "basic" or "none" (donors, placements and sampling seeds
            do not depend on it).
        part: split whose images serve as backgrounds (never "test").
        donor_part: split whose lesions serve as donor masks (never "test").
        background_ids: restrict to these ids (in this order).
        scale_range: donor scale range (linear).

    Returns:
        :class:`Jobs`.
    """
    if "test" in (part, donor_part):
        raise ValueError("generation must not use the test split (backgrounds or donors); use part='train'")
    if n_variants < 1:
        raise ValueError(f"n_variants must be >= 1, got {n_variants}")
    modality = modality_of(dataset)
    data = dataset.subset(part)
    ids = list(data.ids) if background_ids is None else list(background_ids)
    index = {key: i for i, key in enumerate(data.ids)}
    unknown = [key for key in ids if key not in index]
    if unknown:
        raise ValueError(f"background ids {unknown[:3]} are not in the {part} split of {dataset.directory}")
    normals = dataset.normal_images(list(data.ids))
    normal_labels = dataset.normal_labels(list(data.ids))
    class_maps = dataset.labels(list(data.ids))
    attributes = dataset.attributes.set_index("id")
    # donors: every lesion component of the split, remembered with its source image
    donors, donor_ids, donor_index = [], [], []
    donor_data = data if donor_part == part else dataset.subset(donor_part)
    for key, mask in zip(donor_data.ids, donor_data.masks):
        if not shows_lesion(attributes.loc[key], mask, modality):
            continue  # DiffAug synthesises enlarged cups: physiological cups are no donors (one shared rule)
        for c, component in enumerate(donor_components(mask[None])):
            donors.append(component)
            donor_ids.append(key)
            donor_index.append(c)
    if not donors:
        raise ValueError(f"{dataset.directory}: the {donor_part} split holds no lesion to use as a donor mask")

    rows, backgrounds, masks, labels, scored = [], [], [], [], []
    for key in ids:
        i = index[key]
        if normals is not None:
            background = normals[i]
            own_classes = normal_labels[i] if normal_labels is not None else np.zeros(background.shape[:2], np.uint8)
        else:
            background, own_classes = data.images[i], class_maps[i]
        own_target = (own_classes == 2) if modality == "fundus" else (own_classes > 0)
        if modality == "fundus":
            allowed, centre = fundus_allowed_region(own_classes)
            disc = own_classes >= 1
            radius = np.sqrt(disc.sum() / np.pi)
            options = {"target": centre, "max_offset_px": FUNDUS_MAX_OFFSET * radius, "max_rotation_deg": 15.0}
        else:
            allowed, options = polyp_allowed_region(background, own_target), {}
        region = gate_region(own_target, modality)
        rng = numpy_rng(seed, "jobs", key)
        prompt_rng = numpy_rng(
            seed, "prompts", key
        )  # apart: every prompt variant gets the same donors, placements and seeds
        candidates = [d for d, source in enumerate(donor_ids) if source != key] or list(range(len(donors)))
        for k in range(n_variants):
            d = int(candidates[int(rng.integers(len(candidates)))])
            placement = place_mask(donors[d], allowed, rng, scale_range=scale_range, **options)
            if placement is None:
                continue
            new_area = int((placement.mask.astype(bool) & region).sum())
            if modality == "fundus" and not _enlarges_cup(placement.mask, own_target, own_classes >= 1, new_area):
                continue
            label = union_label(own_target, placement.mask)
            stated_from = _placed_attributes(modality, attributes.loc[donor_ids[d]], placement, label, own_classes)
            prompt, stated = prompt_and_attributes(modality, stated_from, variant=variant, rng=prompt_rng)
            rows.append(
                {
                    "background_id": key,
                    "variant": k,
                    "donor_id": donor_ids[d],
                    "donor_component": donor_index[d],
                    "scale": placement.scale,
                    "angle_deg": placement.angle_deg,
                    "prompt": prompt,
                    "seed": derive_seed(seed, "sample", key, k),
                    "mask_area_px": int(placement.mask.sum()),
                    "own_area_px": int(own_target.sum()),
                    "new_area_px": new_area,
                    "target_area_fraction": float(label.mean()),
                    "target_vcdr": vertical_cdr(label, own_classes >= 1) if modality == "fundus" else np.nan,
                    **{f"prompt_{name}": value for name, value in stated.items()},
                }
            )
            backgrounds.append(background)
            masks.append(placement.mask)
            labels.append(label)
            scored.append(region)
    if not rows:
        raise ValueError(f"{dataset.directory}: no donor mask fits any background; widen scale_range {scale_range}")
    table = pd.DataFrame(rows)
    table.insert(0, "job", np.arange(len(table)))
    return Jobs(
        table,
        np.stack(backgrounds),
        np.stack(masks).astype(np.uint8),
        np.stack(labels).astype(np.uint8),
        np.stack(scored).astype(np.uint8),
    )


def _enlarges_cup(mask: np.ndarray, own_cup: np.ndarray, disc: np.ndarray, new_area: int) -> bool:
    """A placed cup enlarges the own one: >= FUNDUS_MIN_GROWTH of it lies outside, and its vCDR is larger."""
    if new_area < FUNDUS_MIN_GROWTH * max(int(mask.sum()), 1):
        return False
    own = np.asarray(own_cup, bool)
    return vertical_cdr(own | mask.astype(bool), disc) > vertical_cdr(own, disc)


def _placed_attributes(
    modality: str, donor: pd.Series, placement, label: np.ndarray, own_classes: np.ndarray
) -> dict[str, Any]:
    """The donor's attributes, corrected for what scaling and the new background change.

    Polyp: diameter × scale and the placed mask's area fraction; morphology, surface, vessels
    kept. Fundus: the vertical CDR measured on the new label against the background's disc (the
    stratum follows from it); rim thinning kept.
    """
    row = donor.to_dict()
    if modality == "polyp":
        if pd.notna(row.get("diameter_mm")):
            row["diameter_mm"] = float(row["diameter_mm"]) * placement.scale
        row["target_area_fraction"] = float(placement.mask.mean())
    else:
        row["vcdr"] = vertical_cdr(label, own_classes >= 1)
        row.pop("stratum", None)
    return row
