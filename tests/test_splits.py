"""Splits: sorted ids, seeded, group-disjoint, persisted, and errors on unknown ids."""

import numpy as np
import pytest

from benchmark.data.base import DatasetError
from benchmark.data.cvc_clinicdb import CVC_SEQUENCE_RANGES, cvc_sequence
from benchmark.data.splits import group_disjoint_subset, load_or_make_split, make_split

CVC_IDS = [str(i) for i in range(1, 613)]
CVC_GROUPS = [str(cvc_sequence(i)) for i in range(1, 613)]


def test_cvc_sequences():
    assert len(CVC_SEQUENCE_RANGES) == 29
    assert sum(last - first + 1 for first, last in CVC_SEQUENCE_RANGES) == 612
    assert cvc_sequence(1) == 1 and cvc_sequence(25) == 1 and cvc_sequence(26) == 2 and cvc_sequence(612) == 29


def test_group_disjoint_subset_hits_exact_size():
    for seed in range(5):
        chosen = group_disjoint_subset(CVC_GROUPS, 124, np.random.default_rng(seed))
        assert sum(group in chosen for group in CVC_GROUPS) == 124


def test_make_split_is_sequence_disjoint_and_sized():
    split = make_split(
        CVC_IDS, rng=np.random.default_rng(0), val_fraction=0.15, test_fraction=124 / 612, groups=CVC_GROUPS
    )
    assert len(split["test"]) == 124
    assert len(split["train"]) + len(split["val"]) == 488
    assert len(split["val"]) == round(0.15 * 488)
    group_of = dict(zip(CVC_IDS, CVC_GROUPS))
    sides = [{group_of[key] for key in split[part]} for part in ("train", "val", "test")]
    assert not (sides[0] & sides[1]) and not (sides[0] & sides[2]) and not (sides[1] & sides[2])


def test_split_ignores_listing_order_and_depends_on_seed():
    rng_order = np.random.default_rng(3).permutation(len(CVC_IDS))
    shuffled_ids = [CVC_IDS[i] for i in rng_order]
    shuffled_groups = [CVC_GROUPS[i] for i in rng_order]
    a = make_split(CVC_IDS, rng=np.random.default_rng(7), val_fraction=0.15, test_fraction=0.2, groups=CVC_GROUPS)
    b = make_split(
        shuffled_ids, rng=np.random.default_rng(7), val_fraction=0.15, test_fraction=0.2, groups=shuffled_groups
    )
    c = make_split(CVC_IDS, rng=np.random.default_rng(8), val_fraction=0.15, test_fraction=0.2, groups=CVC_GROUPS)
    assert a == b
    assert a != c


def test_official_parts_define_test():
    ids = [f"g{i}" for i in range(10)] + [f"T{i}" for i in range(5)]
    parts = ["train"] * 10 + ["test"] * 5
    split = make_split(ids, rng=np.random.default_rng(0), val_fraction=0.2, parts=parts)
    assert split["test"] == sorted(f"T{i}" for i in range(5))
    assert len(split["val"]) == 2 and len(split["train"]) == 8


def test_duplicate_ids_rejected():
    with pytest.raises(DatasetError, match="duplicate"):
        make_split(["a", "a", "b"], rng=np.random.default_rng(0), val_fraction=0.3, test_fraction=0.3)


def test_split_file_written_once_and_checked(tmp_path):
    path = tmp_path / "split.json"
    ids = [str(i) for i in range(20)]
    calls = []

    def make():
        calls.append(1)
        return make_split(ids, rng=np.random.default_rng(0), val_fraction=0.2, test_fraction=0.2)

    first = load_or_make_split(path, ids, {"seed": 0}, make)
    second = load_or_make_split(path, ids, {"seed": 0}, make)
    assert first == second and len(calls) == 1
    with pytest.raises(DatasetError, match=r"names id '19'.*not in the dataset"):
        load_or_make_split(path, ids[:-1], {"seed": 0}, make)
    load_or_make_split(path, ids, {"seed": 1}, make)  # other meta: remade
    assert len(calls) == 2
