"""Tests of the ``synth_polyp`` generator (benchmark/data/procedural/polyp.py).

Small configurations keep the file fast: 96x128 frames at 2 px/mm for layout and determinism,
a few native-size (288x384, 6 px/mm) frames for the diameter check.
"""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pandas as pd
import pytest
import tifffile
from scipy import ndimage

from benchmark.data.procedural.polyp import (
    COLUMNS,
    SynthPolypConfig,
    generate,
    sample_polyp_attributes,
    sequence_of_frames,
)
from benchmark.utils.seeding import numpy_rng

SMALL = SynthPolypConfig(n_images=24, height=96, width=128, px_per_mm=2.0)
FOLDERS = ("Original", "Ground Truth", "Normal")
CVC_RANGES = [
    (1, 25),
    (26, 50),
    (51, 67),
    (68, 78),
    (79, 103),
    (104, 126),
    (127, 151),
    (152, 177),
    (178, 199),
    (200, 205),
    (206, 227),
    (228, 252),
    (253, 277),
    (278, 297),
    (298, 317),
    (318, 342),
    (343, 363),
    (364, 383),
    (384, 408),
    (409, 428),
    (429, 447),
    (448, 466),
    (467, 478),
    (479, 503),
    (504, 528),
    (529, 546),
    (547, 571),
    (572, 591),
    (592, 612),
]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Three runs of SMALL: seed 0 twice (separate dirs) and seed 1."""
    root = tmp_path_factory.mktemp("synth_polyp")
    out = {}
    for name, seed in (("a", 0), ("b", 0), ("c", 1)):
        table = generate(SMALL, seed, root / name, progress=False)
        out[name] = (root / name, table)
    return out


def _read(folder, index):
    return [tifffile.imread(folder / sub / f"{index}.tif") for sub in FOLDERS]


def test_layout_dtypes_and_table(runs):
    folder, table = runs["a"]
    n, h, w = SMALL.n_images, SMALL.height, SMALL.width
    assert sorted(p.name for p in folder.iterdir()) == sorted([*FOLDERS, "attributes.csv"])
    for sub in FOLDERS:
        assert sorted(p.name for p in (folder / sub).iterdir()) == sorted(f"{i}.tif" for i in range(1, n + 1))
    image, mask, twin = _read(folder, 1)
    assert image.shape == (h, w, 3) and image.dtype == np.uint8
    assert twin.shape == (h, w, 3) and twin.dtype == np.uint8
    assert mask.shape == (h, w) and mask.dtype == np.uint8
    assert list(table.columns) == list(COLUMNS)
    assert table["id"].tolist() == [str(i) for i in range(1, n + 1)]
    on_disk = pd.read_csv(folder / "attributes.csv", dtype={"id": str})
    pd.testing.assert_frame_equal(on_disk, table, check_dtype=False)
    assert table["sequence"].tolist() == sequence_of_frames(n).tolist()
    assert set(table["paris_type"]) <= {"pedunculated", "sessile", "flat"}
    assert set(table["surface"]) <= {"smooth", "lobulated", "irregular"}
    assert set(table["vascular_pattern"]) <= {"faint", "regular", "irregular"}
    assert (table["small"] == (table["diameter_mm"] < 5)).all()
    assert (table["flat"] == (table["paris_type"] == "flat")).all()
    assert table["diameter_mm"].between(2, SMALL.max_diameter_mm).all()
    assert (table["height_mm"] > 0).all() and (table["contrast"] > 0).all()
    assert np.allclose(table["area_fraction"], table["area_px"] / (h * w))


def test_same_seed_same_bytes_other_seed_differs(runs):
    (a, table_a), (b, table_b), (c, table_c) = runs["a"], runs["b"], runs["c"]
    pd.testing.assert_frame_equal(table_a, table_b)
    for path in sorted(a.rglob("*")):
        if path.is_file():
            assert path.read_bytes() == (b / path.relative_to(a)).read_bytes(), path.relative_to(a)
    assert (a / "Original" / "1.tif").read_bytes() != (c / "Original" / "1.tif").read_bytes()
    assert not table_a.drop(columns=["id", "sequence"]).equals(table_c.drop(columns=["id", "sequence"]))


def test_masks_are_one_component_inside_the_view(runs):
    folder, table = runs["a"]
    for row in table.itertuples():
        image, mask, twin = _read(folder, row.id)
        assert set(np.unique(mask).tolist()) == {0, 255}
        polyp = mask == 255
        _, count = ndimage.label(polyp, structure=np.ones((3, 3)))
        assert count == 1, f"frame {row.id}: {count} components"
        assert polyp.sum() == row.area_px
        ys, xs = np.nonzero(polyp)
        assert abs(xs.mean() - row.center_x) < 0.01 and abs(ys.mean() - row.center_y) < 0.01
        assert not (polyp[0].any() or polyp[-1].any() or polyp[:, 0].any() or polyp[:, -1].any())
        assert twin[polyp].sum(axis=-1).min() > 30, f"frame {row.id}: polyp on the black border"


def test_twin_equals_image_outside_the_polyp(runs):
    folder, table = runs["a"]
    for row in table.itertuples():
        image, mask, twin = _read(folder, row.id)
        margin = math.ceil(2 + 0.2 * row.diameter_mm * SMALL.px_per_mm) + 2
        near = ndimage.binary_dilation(mask > 0, np.ones((3, 3), bool), iterations=margin)
        assert np.array_equal(image[~near], twin[~near]), f"frame {row.id}"
        assert not np.array_equal(image[mask > 0], twin[mask > 0]), f"frame {row.id}: no polyp drawn"


def test_table_attributes_are_the_frame_streams_first_draws(runs):
    _, table = runs["a"]
    for row in table.head(6).to_dict("records"):
        drawn = sample_polyp_attributes(numpy_rng(0, "synth_polyp", "frame", int(row["id"])), SMALL)
        assert drawn == {key: row[key] for key in drawn}


def test_sequences_follow_cvc_clinicdb():
    sequences = sequence_of_frames(612)
    assert sequences.shape == (612,) and np.issubdtype(sequences.dtype, np.integer)
    ranges = [
        (int(np.flatnonzero(sequences == k)[0]) + 1, int(np.flatnonzero(sequences == k)[-1]) + 1) for k in range(1, 30)
    ]
    assert ranges == CVC_RANGES
    assert ranges[0] == (1, 25) and ranges[-1] == (592, 612) and sequences.max() == 29


@pytest.mark.parametrize("n", [1, 2, 12, 29, 30, 100, 611, 1000])
def test_sequences_are_contiguous_near_equal_blocks(n):
    sequences = sequence_of_frames(n)
    assert sequences.shape == (n,) and sequences[0] == 1 and sequences[-1] == min(29, n)
    assert set(np.diff(sequences).tolist()) <= {0, 1}
    sizes = np.bincount(sequences)[1:]
    assert sizes.max() - sizes.min() <= 1


def test_frames_of_a_sequence_share_the_scene(tmp_path):
    config = dataclasses.replace(SMALL, n_images=40)  # 29 sequences, 11 of them with two frames
    table = generate(config, 5, tmp_path / "seq", progress=False)
    twins = [tifffile.imread(tmp_path / "seq" / "Normal" / f"{i}.tif").astype(np.float32) for i in table["id"]]
    sequences = table["sequence"].to_numpy()
    same = [np.abs(twins[i] - twins[i + 1]).mean() for i in range(39) if sequences[i] == sequences[i + 1]]
    other = [np.abs(twins[i] - twins[i + 1]).mean() for i in range(39) if sequences[i] != sequences[i + 1]]
    assert len(same) == 11 and 0 < max(same) < np.median(other)


def test_attribute_strata_and_rates():
    config = SynthPolypConfig()
    rng = np.random.default_rng(123)
    table = pd.DataFrame([sample_polyp_attributes(rng, config) for _ in range(2000)])
    assert (table["small"] == (table["diameter_mm"] < 5)).all()
    assert (table["flat"] == (table["paris_type"] == "flat")).all()
    assert table["diameter_mm"].between(2, config.max_diameter_mm).all()
    assert abs(table["small"].mean() - config.p_small) < 0.03
    assert abs(table["flat"].mean() - config.p_flat) < 0.03
    assert abs((table["paris_type"] == "pedunculated").mean() - config.p_pedunculated) < 0.04
    for column, values in (
        ("paris_type", {"pedunculated", "sessile", "flat"}),
        ("surface", {"smooth", "lobulated", "irregular"}),
        ("vascular_pattern", {"faint", "regular", "irregular"}),
    ):
        assert set(table[column]) == values
    by_type = table.groupby("paris_type")["height_mm"]
    assert by_type.max()["flat"] < 1.0 < by_type.mean()["sessile"] < by_type.mean()["pedunculated"]
    large = table.loc[~table["small"], "diameter_mm"]
    assert large.median() < (5 + config.max_diameter_mm) / 2  # more mass at moderate sizes
    other = pd.DataFrame([sample_polyp_attributes(rng, SynthPolypConfig(p_small=0.5, p_flat=0.4)) for _ in range(2000)])
    assert abs(other["small"].mean() - 0.5) < 0.04 and abs(other["flat"].mean() - 0.4) < 0.04


def test_flat_polyps_are_lower_and_subtler(tmp_path):
    config = dataclasses.replace(SMALL, n_images=20, p_flat=0.5, p_pedunculated=0.0)
    table = generate(config, 7, tmp_path / "flat", progress=False)
    means = table.groupby("paris_type")[["height_mm", "contrast"]].mean()
    assert {"flat", "sessile"} <= set(means.index)
    assert means.loc["flat", "height_mm"] < means.loc["sessile", "height_mm"]
    assert means.loc["flat", "contrast"] < means.loc["sessile", "contrast"]


def test_recorded_diameter_matches_the_mask(tmp_path):
    config = SynthPolypConfig(n_images=16, p_small=0.3)
    table = generate(config, 3, tmp_path / "native", progress=False)
    equivalent = 2 * np.sqrt(table["area_px"] / np.pi) / config.px_per_mm
    ratio = equivalent / table["diameter_mm"]
    regular = table["surface"] != "irregular"
    assert regular.sum() >= 8
    assert (ratio[regular] - 1).abs().max() <= 0.25, ratio[regular].tolist()
    assert (ratio - 1).abs().max() <= 0.4


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("n_images", 0),
        ("n_images", 2.5),
        ("height", 31),
        ("width", 16),
        ("px_per_mm", 0.0),
        ("p_small", -0.1),
        ("p_small", 1.5),
        ("p_flat", 1.5),
        ("p_pedunculated", float("nan")),
        ("max_diameter_mm", 4.0),
        ("max_diameter_mm", 40.0),
    ],
)
def test_config_errors_name_the_field(field, value):
    with pytest.raises(ValueError, match=rf"synth_polyp\.{field} must be"):
        SynthPolypConfig(**{field: value})


def test_config_errors_give_the_valid_range():
    with pytest.raises(ValueError, match=r"synth_polyp\.p_flat must be in \[0, 1\], got 1\.5"):
        SynthPolypConfig(p_flat=1.5)
    with pytest.raises(ValueError, match=r"synth_polyp\.p_pedunculated .*p_flat \+ p_pedunculated <= 1"):
        SynthPolypConfig(p_flat=0.6, p_pedunculated=0.5)
    with pytest.raises(ValueError, match=r"synth_polyp\.max_diameter_mm .*px_per_mm"):
        SynthPolypConfig(height=96, width=128)  # 25 mm at 6 px/mm does not fit a 96 px frame


def test_every_config_field_is_documented():
    for field in dataclasses.fields(SynthPolypConfig):
        assert f"{field.name}:" in SynthPolypConfig.__doc__, field.name


def test_test_world_has_its_own_seed_and_sequences(tmp_path):
    """The reported test world: its own sequences, drawn from test_seed only; the split takes exactly it as test."""
    from benchmark.data import DATASETS
    from benchmark.data.prepare import PrepareOptions, prepare_dataset

    config = dataclasses.replace(SMALL, n_images=12, test_sequences=4, test_frames=2)
    table = generate(config, 0, tmp_path / "a", test_seed=7, progress=False)
    test = table[table["part"] == "test"]
    assert (
        len(test) == 8
        and test["sequence"].nunique() == 4
        and set(test["sequence"]).isdisjoint(table.loc[table["part"] == "train", "sequence"])
    )
    assert test.groupby("sequence").size().eq(2).all()
    other_training_seed = generate(config, 1, tmp_path / "b", test_seed=7, progress=False)
    other_test_seed = generate(config, 0, tmp_path / "c", test_seed=8, progress=False)

    def same(folder_x, folder_y, ids) -> bool:
        return all(
            np.array_equal(
                tifffile.imread(tmp_path / folder_x / "Original" / f"{i}.tif"),
                tifffile.imread(tmp_path / folder_y / "Original" / f"{i}.tif"),
            )
            for i in ids
        )

    test_ids, train_ids = list(test["id"]), list(table.loc[table["part"] == "train", "id"])
    assert same("a", "b", test_ids) and not same("a", "b", train_ids)  # the training seed never touches the test world
    assert same("a", "c", train_ids) and not same("a", "c", test_ids)  # the test seed never touches the training world
    assert other_training_seed["part"].tolist() == other_test_seed["part"].tolist() == table["part"].tolist()
    with pytest.raises(ValueError, match="test_seed"):
        generate(config, 0, tmp_path / "d", progress=False)

    options = PrepareOptions(
        image_size=16,
        val_fraction=0.25,
        split_seed=0,
        fundus_target="cup",
        fundus_crop_scale=2.0,
        min_lesion_fraction=0.0,
    )
    manifest = prepare_dataset(
        "synth_polyp", tmp_path / "a", tmp_path / "prepared", tmp_path / "split.json", options, progress=False
    )
    split = json.loads((tmp_path / "split.json").read_text())
    assert sorted(split["test"]) == sorted(test_ids) and manifest["counts"]["test"] == 8
    assert manifest["split_protocol"] == DATASETS["synth_polyp"].test_world_protocol
