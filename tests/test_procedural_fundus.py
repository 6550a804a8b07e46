"""Tests of the procedural ``synth_fundus`` generator (REFUGE layout, exact vCDR, normal twins)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from scipy import ndimage

from benchmark.data.procedural.fundus import (
    COLUMNS,
    STRATA,
    SynthFundusConfig,
    generate,
    sample_fundus_attributes,
    stratum_of,
    vertical_cdr,
)
from benchmark.utils.seeding import numpy_rng

SMALL = SynthFundusConfig(n_train=6, n_validation=6, n_test=6, size=128, p_early=0.3, p_advanced=0.3)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> tuple[Path, pd.DataFrame]:
    root = tmp_path_factory.mktemp("fundus") / "synth_fundus"
    return root, generate(SMALL, 0, root, progress=False)


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _gray(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        assert image.mode == "L" and image.format == "BMP", path
        return np.asarray(image)


def _rgb(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        assert image.mode == "RGB" and image.format == "JPEG", path
        return np.asarray(image).astype(np.int16)


# --- vertical_cdr -----------------------------------------------------------------------------


def test_vertical_cdr_hand_made_maps():
    label = np.full((20, 20), 255, dtype=np.uint8)
    label[5:15, 8:12] = 128  # disc 10 px tall
    label[7:12, 9:11] = 0  # cup 5 px tall
    assert vertical_cdr(label) == 0.5
    assert np.isnan(vertical_cdr(np.full((8, 8), 255, dtype=np.uint8)))
    # Maxima are taken per column independently: the tallest cup column need not be the tallest disc column.
    label = np.full((20, 20), 255, dtype=np.uint8)
    label[2:18, 5] = 128  # disc column 16 px tall
    label[6:14, 9] = 128
    label[8:12, 9] = 0  # cup 4 px tall, in a column whose disc is only 8 px
    assert vertical_cdr(label) == 4 / 16
    label[:, :] = 255
    label[3:9, 3:6] = 0  # a cup that is the whole disc
    assert vertical_cdr(label) == 1.0


def test_stratum_boundaries():
    assert [stratum_of(v) for v in (0.25, 0.4999, 0.5, 0.5999, 0.6, 0.85)] == [
        "normal",
        "normal",
        "early",
        "early",
        "advanced",
        "advanced",
    ]


# --- configuration ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"n_train": 0}, "n_train"),
        ({"n_validation": -1}, "n_validation"),
        ({"n_test": 2.5}, "n_test"),
        ({"size": 63}, "size"),
        ({"p_early": 1.5}, "p_early"),
        ({"p_advanced": -0.1}, "p_advanced"),
        ({"p_early": 0.6, "p_advanced": 0.6}, "p_early + p_advanced"),
        ({"glaucoma_vcdr": 1.0}, "glaucoma_vcdr"),
    ],
)
def test_config_validation_names_the_field(kwargs, field):
    with pytest.raises(ValueError, match=re.escape(f"synth_fundus.{field} must be")):
        SynthFundusConfig(**kwargs)


def test_config_error_states_the_range():
    with pytest.raises(ValueError, match=re.escape("synth_fundus.p_early must be in [0, 1], got 1.5")):
        SynthFundusConfig(p_early=1.5)


# --- attribute sampling -----------------------------------------------------------------------


def test_strata_rates_in_attribute_sample():
    config = SynthFundusConfig()
    rng = numpy_rng(0, "test_strata")
    draws = [sample_fundus_attributes(rng, config) for _ in range(2000)]
    strata = pd.Series([d["stratum"] for d in draws])
    rates = strata.value_counts(normalize=True)
    assert abs(rates["early"] - config.p_early) < 0.03
    assert abs(rates["advanced"] - config.p_advanced) < 0.03
    for draw in draws:
        low, high, _ = STRATA[draw["stratum"]]
        assert low <= draw["vcdr_target"] <= high
        assert stratum_of(draw["vcdr_target"]) == draw["stratum"]
        assert 0.25 <= draw["normal_vcdr_target"] <= 0.4
        assert (draw["rim_thinning"] == "none") == (draw["stratum"] == "normal")
    thinning = pd.Series([d["rim_thinning"] for d in draws if d["stratum"] != "normal"]).value_counts()
    assert thinning.idxmax() == "inferior"  # ISNT: the inferior rim thins first
    centres = np.array([[d["disc_cx"], d["disc_cy"]] for d in draws])
    assert centres.std(axis=0).min() > 0.02 * config.size  # the disc moves, so a later stage must crop


# --- generated dataset ------------------------------------------------------------------------


def test_table_columns_and_ids(dataset):
    root, table = dataset
    assert list(table.columns) == COLUMNS
    assert len(table) == 18 and table["id"].is_unique
    on_disk = pd.read_csv(root / "attributes.csv", dtype={"id": str})
    pd.testing.assert_frame_equal(on_disk, table, check_dtype=False)
    assert table.groupby("part").size().to_dict() == {"train": 6, "validation": 6, "test": 6}
    train = table[table["part"] == "train"]
    for prefix, glaucoma in (("g", True), ("n", False)):
        ids = train.loc[train["glaucoma"] == glaucoma, "id"].tolist()
        assert ids == [f"{prefix}{k:04d}" for k in range(1, len(ids) + 1)]
    assert table.loc[table["part"] == "validation", "id"].tolist() == [f"V{k:04d}" for k in range(1, 7)]
    assert table.loc[table["part"] == "test", "id"].tolist() == [f"T{k:04d}" for k in range(1, 7)]
    assert table["glaucoma"].any() and not table["glaucoma"].all()


def test_layout_matches_refuge(dataset):
    root, table = dataset
    expected = {"attributes.csv"}
    for row in table.itertuples():
        if row.part == "train":
            folder = "Glaucoma" if row.glaucoma else "Non-Glaucoma"
            image, mask = (
                f"Training400/{folder}/{row.id}.jpg",
                f"Annotation-Training400/Disc_Cup_Masks/{folder}/{row.id}.bmp",
            )
        elif row.part == "validation":
            image, mask = f"REFUGE-Validation400/{row.id}.jpg", f"REFUGE-Validation400-GT/Disc_Cup_Masks/{row.id}.bmp"
        else:
            image, mask = (
                f"Test400/{row.id}.jpg",
                f"REFUGE-Test-GT/Disc_Cup_Masks/{'G' if row.glaucoma else 'N'}/{row.id}.bmp",
            )
        assert (row.image, row.mask) == (image, mask)
        assert (row.normal_image, row.normal_mask) == (f"Normal/{row.id}.jpg", f"Normal/{row.id}.bmp")
        expected |= {image, mask, row.normal_image, row.normal_mask}
    assert set(_files(root)) == expected
    for name in ("Training400/Glaucoma", "Training400/Non-Glaucoma", "REFUGE-Test-GT/Disc_Cup_Masks/G"):
        assert (root / name).is_dir()
    assert not [p for p in root.parent.iterdir() if p.name != root.name]  # no temporary folders left


def test_masks_are_refuge_label_maps(dataset):
    root, table = dataset
    for row in table.itertuples():
        for relative in (row.mask, row.normal_mask):
            label = _gray(root / relative)
            assert label.shape == (SMALL.size, SMALL.size)
            assert set(np.unique(label).tolist()) == {0, 128, 255}, relative
            cup, background = label == 0, label == 255
            # The rim encloses the cup: no cup pixel touches the background.
            assert not (ndimage.binary_dilation(cup) & background).any(), relative


def test_recorded_vcdr_is_measured_on_the_written_mask(dataset):
    root, table = dataset
    for row in table.itertuples():
        label = _gray(root / row.mask)
        assert vertical_cdr(label) == row.vcdr
        assert row.disc_diameter_px == ((label == 0) | (label == 128)).sum(axis=0).max()
        assert row.cup_diameter_px == (label == 0).sum(axis=0).max()
        assert row.stratum == stratum_of(row.vcdr) == stratum_of(row.vcdr_target)  # lands in the target stratum
        assert row.glaucoma == (row.vcdr >= SMALL.glaucoma_vcdr)
        assert (row.rim_thinning == "none") == (row.stratum == "normal")
        twin = _gray(root / row.normal_mask)
        assert vertical_cdr(twin) == row.normal_vcdr
        assert 0.25 <= row.normal_vcdr <= 0.4
        np.testing.assert_array_equal(twin == 255, label == 255)  # same disc, only the cup changes


def test_normal_twin_equals_image_outside_the_disc(dataset):
    root, table = dataset
    changed_inside = 0
    for row in table.itertuples():
        image, twin = _rgb(root / row.image), _rgb(root / row.normal_image)
        assert image.shape == twin.shape == (SMALL.size, SMALL.size, 3)
        disc = _gray(root / row.mask) != 255
        diff = np.abs(image - twin).max(axis=2)
        # JPEG codes 16x16 blocks (chroma subsampled), so blocks that hold disc pixels may differ a little.
        far = ~ndimage.binary_dilation(disc, np.ones((3, 3), bool), iterations=18)
        assert diff[far].max() <= 2, row.id
        assert diff[~disc].mean() < 1.0, row.id
        changed_inside += diff[disc].mean() > 1.0
    assert changed_inside >= len(table) // 2


def test_images_look_like_a_fundus(dataset):
    root, table = dataset
    cup_to_rim = []
    for row in table.itertuples():
        image = _rgb(root / row.image).astype(float)
        label = _gray(root / row.mask)
        assert image[:4, :4].max() <= 12 and image[-4:, -4:].max() <= 12  # black outside the field of view
        luminance = image @ np.array([0.3, 0.59, 0.11])
        disc = label != 255
        ring = ndimage.binary_dilation(disc, iterations=8) & ~ndimage.binary_dilation(disc, iterations=3)
        assert luminance[disc].mean() > 1.2 * luminance[ring].mean(), row.id  # the disc is bright
        assert image[ring].mean(axis=0)[0] > image[ring].mean(axis=0)[1]  # the retina is red-orange
        cup_to_rim.append(luminance[label == 0].mean() / luminance[label == 128].mean())
    # The cup is paler than the rim on average, but not in every image by much: pallor contrast
    # varies per image and some cups are barely paler than their rim.
    cup_to_rim = np.array(cup_to_rim)
    assert cup_to_rim.mean() > 1.05 and (cup_to_rim > 1).mean() >= 2 / 3
    assert cup_to_rim.min() < 1.1


def _best_threshold_dice(luminance: np.ndarray, disc: np.ndarray, cup: np.ndarray) -> float:
    """Best Dice between the cup and "disc pixels brighter than t" over 49 quantile thresholds t."""
    best = 0.0
    for t in np.quantile(luminance[disc], np.linspace(0.02, 0.98, 49)):
        pale = disc & (luminance >= t)
        best = max(best, 2 * (pale & cup).sum() / (pale.sum() + cup.sum()))
    return best


def test_pallor_does_not_trace_the_annotated_cup(dataset):
    # The annotated cup is the 3-D excavation, not the pale area: thresholding the brightness of
    # the disc (vessels removed by a grey closing) must not recover it. With a pallor whose edge
    # is the cup edge this Dice is about 0.8 on average; the pale area only overlaps the cup.
    root, table = dataset
    scores = []
    for row in table.itertuples():
        luminance = _rgb(root / row.image).astype(float) @ np.array([0.3, 0.59, 0.11])
        label = _gray(root / row.mask)
        width = max(3, int(0.12 * row.disc_diameter_px) | 1)  # wider than the vessels
        luminance = ndimage.grey_closing(luminance, size=(width, width))
        scores.append(_best_threshold_dice(luminance, label != 255, label == 0))
    assert np.mean(scores) < 0.72


def test_same_seed_same_bytes_other_seed_differs(dataset, tmp_path):
    root, table = dataset
    again = generate(SMALL, 0, tmp_path / "again", progress=False)
    pd.testing.assert_frame_equal(again, table)
    assert _files(tmp_path / "again") == _files(root)
    other = generate(SMALL, 1, tmp_path / "other", progress=False)
    assert not other[["vcdr_target", "disc_cx"]].equals(table[["vcdr_target", "disc_cx"]])
    assert (root / table["image"][0]).read_bytes() != (tmp_path / "other" / other["image"][0]).read_bytes()


def test_an_image_does_not_depend_on_other_images(dataset, tmp_path):
    root, table = dataset
    small = SynthFundusConfig(n_train=3, n_validation=2, n_test=1, size=SMALL.size, p_early=0.3, p_advanced=0.3)
    subset = generate(small, 0, tmp_path / "subset", progress=False)
    full = table.set_index("id")
    for row in subset.itertuples():
        assert row.image == full.loc[row.id, "image"]
        for column in ("image", "mask", "normal_image", "normal_mask"):
            assert (tmp_path / "subset" / getattr(row, column)).read_bytes() == (
                root / full.loc[row.id, column]
            ).read_bytes()


def test_generate_replaces_an_existing_folder(tmp_path):
    target = tmp_path / "synth_fundus"
    (target / "stale").mkdir(parents=True)
    config = SynthFundusConfig(n_train=1, n_validation=1, n_test=1, size=64)
    generate(config, 3, target, progress=False)
    assert not (target / "stale").exists()
    assert len(pd.read_csv(target / "attributes.csv")) == 3


def test_test_part_draws_from_its_own_seed(tmp_path):
    config = SynthFundusConfig(n_train=2, n_validation=1, n_test=2, size=64)
    a = generate(config, 0, tmp_path / "a", test_seed=5, progress=False)
    b = generate(config, 0, tmp_path / "b", test_seed=6, progress=False)
    c = generate(config, 1, tmp_path / "c", test_seed=5, progress=False)
    key = ["vcdr", "disc_cx", "disc_cy"]
    part = lambda t, p: t[t["part"] == p][key].reset_index(drop=True)  # noqa: E731
    pd.testing.assert_frame_equal(part(a, "train"), part(b, "train"))
    assert not part(a, "test").equals(part(b, "test"))
    pd.testing.assert_frame_equal(part(a, "test"), part(c, "test"))
    assert not part(a, "train").equals(part(c, "train"))
