"""The independent unit of a dataset: what every paired test, CI and power figure runs over.

Frames of one video sequence share the scene, the polyp and the camera path: they are not
independent, and a test over frames counts one sequence many times (pseudo-replication). The
unit is therefore the loader's ``group`` (prepared ``attributes.csv``, column ``group``):

- the video sequence where the dataset has them (synth_polyp, CVC-ClinicDB: 29 sequences, from
  the publisher's frame ranges or the procedural sidecar);
- the image otherwise (Kvasir-SEG, REFUGE, REFUGE2, synth_fundus: ``group`` equals the id).

Per-image values are averaged over seeds first, then over the images of a unit
(:func:`unit_means`); tests and bootstrap CIs then treat each unit once.
"""

from __future__ import annotations

import dataclasses

import pandas as pd


@dataclasses.dataclass(frozen=True)
class Units:
    """The analysis unit of one dataset.

    Attributes:
        name: "sequence" (video data), "group" (other grouped data) or "image".
        of_image: image id -> unit label (str), for every image of the dataset.
    """

    name: str
    of_image: dict[str, str]

    def describe(self, n: int) -> str:
        """``"5 sequences"`` / ``"1 image"``: a count of units in words."""
        return f"{n} {self.name}{'' if n == 1 else 's'}"

    def labels(self, image_ids) -> list[str]:
        """Unit label of each image id (an unknown id is an error naming it)."""
        missing = [str(key) for key in image_ids if str(key) not in self.of_image]
        if missing:
            raise KeyError(
                f"image {missing[0]!r} has no unit: the results and data/prepared disagree; rerun `dvc repro`"
            )
        return [self.of_image[str(key)] for key in image_ids]


def units_from_attributes(attributes: pd.DataFrame, modality: str) -> Units:
    """The unit of a prepared dataset from its ``attributes.csv`` (columns ``id``, ``group``).

    Args:
        attributes: one row per image; ``group`` is the loader's group (video sequence, patient)
            or the image id when the dataset has none.
        modality: "polyp" or "fundus" (names the unit: polyp groups are video sequences).

    Returns:
        :class:`Units`; the image is the unit when every group holds one image.
    """
    if "group" not in attributes or "id" not in attributes:
        raise KeyError("attributes.csv lacks 'id' or 'group'; rerun `dvc repro prepare@<dataset>` with this version")
    ids = attributes["id"].astype(str)
    groups = attributes["group"].astype(str)
    if groups.nunique() == len(groups):
        return Units("image", dict(zip(ids, ids)))
    return Units("sequence" if modality == "polyp" else "group", dict(zip(ids, groups)))


def dataset_units(prepared) -> Units:
    """:func:`units_from_attributes` of a :class:`~benchmark.data.prepared.PreparedDataset`."""
    return units_from_attributes(prepared.attributes, prepared.manifest["modality"])


def unit_means(per_image: pd.DataFrame, units: Units, metric: str, *, by_seed: bool = False) -> pd.DataFrame:
    """Average per-image scores over seeds, then over the images of each unit.

    Args:
        per_image: rows ``method, seed_index, image_id, <metric>`` (several methods allowed).
        units: the dataset's unit.
        metric: column to average (NaN values are skipped).
        by_seed: keep seeds apart (rows = (seed_index, unit)): the per-seed unit means that the
            seed-to-seed spread is computed from.

    Returns:
        Wide frame, index = unit (or (seed_index, unit)), one column per method.
    """
    frame = per_image[["method", "seed_index", "image_id", metric]].copy()
    frame["image_id"] = frame["image_id"].astype(str)
    frame["unit"] = units.labels(frame["image_id"])
    if by_seed:
        return frame.groupby(["seed_index", "unit", "method"])[metric].mean().unstack("method")
    per_image_mean = frame.groupby(["method", "unit", "image_id"])[metric].mean()
    return per_image_mean.groupby(["unit", "method"]).mean().unstack("method")
