"""Splits made once from sorted ids with a seed, written to a file, and only read afterwards.

Two rules keep them leak-free: ids are sorted before any random draw (so the file system's
listing order never matters), and images that share a group (a video sequence, a patient) stay
on one side of every split.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from benchmark.data.base import DatasetError
from benchmark.utils.io import read_json, write_json


def group_disjoint_subset(groups: Sequence[str], size: int, rng: np.random.Generator) -> set[str]:
    """Pick whole groups whose image count is as close to ``size`` as possible.

    Groups are visited in a seeded random order and a subset-sum table finds a combination
    that hits ``size`` exactly when one exists (e.g. CVC-ClinicDB's 124 test frames), else the
    closest total.

    Args:
        groups: group label of every image (length N).
        size: wanted number of images in the subset, ``0 <= size <= N``.
        rng: random generator deciding which of the possible subsets is chosen.

    Returns:
        The chosen group labels.
    """
    labels, counts = np.unique(np.asarray(groups, dtype=str), return_counts=True)
    order = rng.permutation(len(labels))
    # reach[s] = index in `order` of the last group used to first reach total s (-1: unreachable)
    reach = np.full(len(groups) + 1, -1, dtype=np.int64)
    reach[0] = len(order)
    for position, group_index in enumerate(order):
        targets = np.flatnonzero(reach >= 0) + counts[group_index]  # totals reachable before this group
        targets = targets[targets < len(reach)]
        reach[targets[reach[targets] < 0]] = position
    totals = np.flatnonzero(reach >= 0)
    best = int(totals[np.argmin(np.abs(totals - size))])
    chosen: set[str] = set()
    total = best
    while total > 0:
        position = reach[total]
        group_index = order[position]
        chosen.add(str(labels[group_index]))
        total -= counts[group_index]
    return chosen


def make_split(
    ids: Sequence[str],
    *,
    rng: np.random.Generator,
    val_fraction: float,
    test_fraction: float | None = None,
    groups: Sequence[str] | None = None,
    parts: Sequence[str | None] | None = None,
) -> dict[str, list[str]]:
    """Train / val / test id lists.

    Test comes from the publisher's parts when ``parts`` holds "test" entries (everything else
    is the training pool), otherwise ``test_fraction`` of the images is drawn (group-disjoint
    when ``groups`` is given). Validation is the "val" entries of ``parts`` where there are
    any (a fixed validation list, e.g. a folder dataset's splits.csv; it needs a "test" part), else
    carved from the training pool, also group-disjoint. Ids are sorted before drawing.
    """
    order = np.argsort(np.asarray(ids, dtype=str), kind="stable")
    ids = [str(ids[i]) for i in order]
    groups = [str(groups[i]) for i in order] if groups is not None else list(ids)
    parts = [parts[i] for i in order] if parts is not None else [None] * len(ids)
    if len(set(ids)) != len(ids):
        raise DatasetError("duplicate ids in the dataset; every image needs a unique id")

    if any(part == "test" for part in parts):
        test = {key for key, part in zip(ids, parts) if part == "test"}
    elif test_fraction is not None:
        chosen = group_disjoint_subset(groups, round(test_fraction * len(ids)), rng)
        test = {key for key, group in zip(ids, groups) if group in chosen}
    else:
        raise DatasetError("the dataset ships no test part and no test_fraction is set for it")
    pool = [(key, group) for key, group in zip(ids, groups) if key not in test]
    fixed_val = {key for key, part in zip(ids, parts) if part == "val"}
    if fixed_val and not any(part == "test" for part in parts):
        raise DatasetError('a fixed validation part ("val") needs a "test" part too; mark the test images')
    if fixed_val:
        val = fixed_val
    else:
        chosen = group_disjoint_subset([group for _, group in pool], round(val_fraction * len(pool)), rng)
        val = {key for key, group in pool if group in chosen}
    train = [key for key, _ in pool if key not in val]
    split = {"train": train, "val": sorted(val), "test": sorted(test)}
    if not split["train"] or not split["test"]:
        raise DatasetError(
            f"split left an empty part ({ {k: len(v) for k, v in split.items()} }); the dataset is too small"
        )
    return split


def load_or_make_split(path: Path, ids: Sequence[str], meta: dict, make) -> dict[str, list[str]]:
    """Read the split file when it exists and was made with the same ``meta``; else make and write it.

    Args:
        path: split file (JSON with ``train``, ``val``, ``test`` and ``meta``).
        ids: every id of the dataset; a split naming an unknown id is an error.
        meta: what the split depends on (seed, fractions, protocol); stored in the file.
        make: zero-argument callable returning a new split.
    """
    if path.is_file():
        stored = read_json(path)
        if stored.get("meta") == meta:
            known = set(ids)
            for part in ("train", "val", "test"):
                unknown = [key for key in stored.get(part, []) if key not in known]
                if unknown:
                    raise DatasetError(
                        f"{path} names id {unknown[0]!r} in '{part}', which is not in the dataset; "
                        "delete the split file to make a new one, or restore the missing image"
                    )
            return {part: list(stored[part]) for part in ("train", "val", "test")}
    split = make()
    write_json(path, {**split, "meta": meta})
    return split
