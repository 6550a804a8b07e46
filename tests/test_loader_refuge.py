"""The REFUGE and REFUGE2 loaders on tiny fixtures in the publishers' layouts, mask checks, attributes,
errors, and the procedural ``synth_fundus`` copy."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

import benchmark.data
from benchmark.data import DatasetSpec
from benchmark.data.base import DatasetError, check_same_size
from benchmark.data.prepare import PrepareOptions, prepare_dataset
from benchmark.data.procedural.fundus import SynthFundusConfig, generate
from benchmark.data.refuge import REFUGE, decode_refuge_mask
from benchmark.data.refuge2 import REFUGE2

H, W = 40, 48
DISC_ROWS = (8, 32)  # disc 24 px tall: vCDR = cup height / 24
ENCODING = "cup 0, disc rim 128, background 255"
# id -> (image, mask, cup height in px) in the official layout
OFFICIAL = {
    "g0001": ("Training400/Glaucoma/g0001.jpg", "Annotation-Training400/Disc_Cup_Masks/Glaucoma/g0001.bmp", 15),
    "n0001": ("Training400/Non-Glaucoma/n0001.jpg", "Annotation-Training400/Disc_Cup_Masks/Non-Glaucoma/n0001.bmp", 8),
    "n0002": ("Training400/Non-Glaucoma/n0002.jpg", "Annotation-Training400/Disc_Cup_Masks/Non-Glaucoma/n0002.bmp", 12),
    "V0001": ("REFUGE-Validation400/V0001.jpg", "REFUGE-Validation400-GT/Disc_Cup_Masks/V0001.bmp", 13),
    "V0002": ("REFUGE-Validation400/V0002.jpg", "REFUGE-Validation400-GT/Disc_Cup_Masks/V0002.bmp", 6),
    "T0001": ("Test400/T0001.jpg", "REFUGE-Test-GT/Disc_Cup_Masks/G/T0001.bmp", 14),
    "T0002": ("Test400/T0002.jpg", "REFUGE-Test-GT/Disc_Cup_Masks/N/T0002.bmp", 9),
}
# The Kaggle re-package: (part folder, image, mask, cup height); stems collide across parts.
REPACKAGED = [
    ("train", "0001.jpg", "0001.bmp", 15),
    ("train", "0002.jpg", "0002.bmp", 8),
    ("train", "case 3.png", "case 3.png", 12),
    ("val", "0001.jpg", "0001.png", 13),
    ("val", "0002.jpg", "0002.png", 6),
    ("test", "0001.jpg", "0001.bmp", 14),
    ("test", "0002.jpg", "0002.bmp", 9),
]


def fundus(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (H, W, 3), dtype=np.uint8)


def refuge_mask(cup_height: int) -> np.ndarray:
    """REFUGE-encoded mask: a 24 px tall disc (rim 128) holding a ``cup_height`` px tall cup (0)."""
    values = np.full((H, W), 255, np.uint8)
    values[DISC_ROWS[0] : DISC_ROWS[1], 14:34] = 128
    top = 20 - cup_height // 2
    values[top : top + cup_height, 19:29] = 0
    return values


def classes(cup_height: int) -> np.ndarray:
    return np.select([refuge_mask(cup_height) == 0, refuge_mask(cup_height) == 128], [2, 1], 0).astype(np.uint8)


def save(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def make_refuge(root: Path) -> Path:
    for seed, (image, mask, cup) in enumerate(OFFICIAL.values()):
        save(root / image, fundus(seed))
        save(root / mask, refuge_mask(cup))
    return root


def make_refuge2(root: Path) -> Path:
    for seed, (part, image, mask, cup) in enumerate(REPACKAGED):
        save(root / "REFUGE2" / part / "images" / image, fundus(seed))
        save(root / "REFUGE2" / part / "mask" / mask, refuge_mask(cup))
    return root


# --- official layout ----------------------------------------------------------------------------


def test_official_layout(tmp_path):
    loader = REFUGE(make_refuge(tmp_path / "refuge"))
    records = loader.records()
    assert [r.id for r in records] == ["T0001", "T0002", "V0001", "V0002", "g0001", "n0001", "n0002"]
    assert [r.part for r in records] == ["test", "test", "validation", "validation", "train", "train", "train"]
    assert {r.group for r in records} == {None}
    for record in records:
        image, label = loader.read_image(record), loader.read_label(record)
        check_same_size(image, label, record)
        assert image.dtype == np.uint8 and image.shape == (H, W, 3)
        assert label.dtype == np.uint8 and label.shape == (H, W)
        np.testing.assert_array_equal(label, classes(OFFICIAL[record.id][2]))


def test_attributes_glaucoma_and_vcdr(tmp_path):
    root = make_refuge(tmp_path / "refuge")
    loader = REFUGE(root)
    table = loader.attributes().set_index("id")
    assert str(table["glaucoma"].dtype) == "boolean"
    assert table["glaucoma"].isna().to_dict() == {key: key.startswith("V") for key in OFFICIAL}
    assert table["glaucoma"].dropna().to_dict() == {
        "T0001": True,
        "T0002": False,
        "g0001": True,
        "n0001": False,
        "n0002": False,
    }
    assert table["vcdr"].to_dict() == {key: cup / 24 for key, (_, _, cup) in OFFICIAL.items()}
    # vCDR is decoded once per mask, then cached
    record = next(r for r in loader.records() if r.id == "g0001")
    (root / OFFICIAL["g0001"][1]).unlink()
    assert loader.vcdr(record) == 15 / 24


def test_test_images_in_class_subfolders(tmp_path):
    root = make_refuge(tmp_path / "refuge")
    (root / "Test400" / "G").mkdir()
    shutil.move(root / "Test400" / "T0001.jpg", root / "Test400" / "G" / "T0001.jpg")
    loader = REFUGE(root)
    record = next(r for r in loader.records() if r.id == "T0001")
    assert record.part == "test" and record.image.parent.name == "G" and loader.glaucoma(record) is True


def test_contradicting_class_folders_are_named(tmp_path):
    root = make_refuge(tmp_path / "refuge")
    masks = root / "Annotation-Training400" / "Disc_Cup_Masks"
    shutil.move(masks / "Glaucoma" / "g0001.bmp", masks / "Non-Glaucoma" / "g0001.bmp")
    loader = REFUGE(root)
    record = next(r for r in loader.records() if r.id == "g0001")
    with pytest.raises(DatasetError, match=r"Glaucoma/g0001\.jpg and .*Non-Glaucoma/g0001\.bmp sit in contradicting"):
        loader.glaucoma(record)


# --- mask encoding ------------------------------------------------------------------------------


def test_anti_aliased_values_decode():
    values = np.full((5, 12), 255, np.uint8)
    values[2, 1:11] = (0, 50, 100, 101, 128, 150, 151, 200, 254, 255)
    labels = decode_refuge_mask(values)
    assert labels[2, 1:11].tolist() == [2, 2, 2, 1, 1, 1, 0, 0, 0, 0]
    assert labels.dtype == np.uint8 and (labels[[0, 1, 3, 4]] == 0).all()


def _relabelled(values: np.ndarray) -> np.ndarray:
    return np.where(values == 255, 0, values).astype(np.uint8)


@pytest.mark.parametrize(
    "make_bad, problem",
    [
        (lambda v: np.where(v == 128, 255, v).astype(np.uint8), "no optic-disc rim"),  # binarised 0/255
        (lambda v: np.where(v == 255, 0, 255).astype(np.uint8), "no optic-disc rim"),  # binarised disc, inverted
        (lambda v: np.full_like(v, 255), "no optic disc"),
        (lambda v: np.where(v == 0, 128, v).astype(np.uint8), "no optic cup"),
        (_relabelled, "optic cup on the image border"),  # background relabelled as cup
        (lambda v: np.select([v == 0, v == 128], [2, 1], 0).astype(np.uint8), "no optic-disc rim"),  # class indices
    ],
)
def test_masks_outside_the_encoding_are_named(tmp_path, make_bad, problem):
    root = make_refuge(tmp_path / "refuge")
    save(root / OFFICIAL["V0002"][1], make_bad(refuge_mask(6)))
    loader = REFUGE(root)
    record = next(r for r in loader.records() if r.id == "V0002")
    with pytest.raises(DatasetError, match=rf"Disc_Cup_Masks/V0002\.bmp has {problem}.*{ENCODING}"):
        loader.read_label(record)


# --- problems on disk ---------------------------------------------------------------------------


def test_missing_root_and_empty_folders(tmp_path):
    with pytest.raises(DatasetError, match="nowhere.*does not exist"):
        REFUGE(tmp_path / "nowhere")
    for folder in ("Training400/Glaucoma", "Annotation-Training400/Disc_Cup_Masks/Glaucoma", "Test400"):
        (tmp_path / "empty" / folder).mkdir(parents=True)
    expected = (
        r"empty holds no images of any part: expected Training400/ with masks in Annotation-Training400/Disc_Cup_Masks/"
    )
    with pytest.raises(DatasetError, match=expected):
        REFUGE(tmp_path / "empty").records()


def test_unpaired_files_are_named(tmp_path):
    root = make_refuge(tmp_path / "refuge")
    (root / OFFICIAL["n0002"][1]).unlink()
    expected = r"without a mask in .*Annotation-Training400/Disc_Cup_Masks, e\.g\. .*Non-Glaucoma/n0002\.jpg"
    with pytest.raises(DatasetError, match=expected):
        REFUGE(root).records()
    shutil.rmtree(root / "Training400")
    shutil.rmtree(root / "Annotation-Training400")
    (root / OFFICIAL["V0001"][0]).unlink()
    with pytest.raises(
        DatasetError, match=r"without an image in .*REFUGE-Validation400, e\.g\. .*Disc_Cup_Masks/V0001\.bmp"
    ):
        REFUGE(root).records()


def test_duplicate_ids_and_junk_files(tmp_path):
    root = make_refuge(tmp_path / "refuge")
    for folder in ("Training400/Glaucoma", "REFUGE-Validation400", "REFUGE-Test-GT/Disc_Cup_Masks/G"):
        (root / folder / "Thumbs.db").write_bytes(b"\0junk")
        (root / folder / ".DS_Store").write_bytes(b"\0junk")
        (root / folder / "._g0001.jpg").write_bytes(b"\0AppleDouble")
    assert len(REFUGE(root).records()) == 7
    save(root / "Test400" / "g0001.jpg", fundus(0))
    save(root / "REFUGE-Test-GT/Disc_Cup_Masks/G/g0001.bmp", refuge_mask(10))
    with pytest.raises(
        DatasetError, match=r"duplicate id 'g0001': .*Training400/Glaucoma/g0001\.jpg and .*Test400/g0001\.jpg"
    ):
        REFUGE(root).records()


def test_truncated_image_is_named(tmp_path):
    root = make_refuge(tmp_path / "refuge")
    path = root / OFFICIAL["T0002"][0]
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    loader = REFUGE(root)
    with pytest.raises(DatasetError, match=r"cannot read .*Test400/T0002\.jpg.*truncated"):
        loader.read_image(next(r for r in loader.records() if r.id == "T0002"))


def test_mask_of_another_size_is_named(tmp_path):
    root = make_refuge(tmp_path / "refuge")
    save(root / OFFICIAL["n0001"][1], np.pad(refuge_mask(8), ((0, 0), (0, 4)), constant_values=255))
    loader = REFUGE(root)
    record = next(r for r in loader.records() if r.id == "n0001")
    with pytest.raises(DatasetError, match=r"Non-Glaucoma/n0001\.bmp is 52x40 but .*Non-Glaucoma/n0001\.jpg is 48x40"):
        check_same_size(loader.read_image(record), loader.read_label(record), record)


# --- REFUGE2 (Kaggle re-package) ----------------------------------------------------------------


def test_refuge2_parts_prefixed_ids_and_both_roots(tmp_path):
    root = make_refuge2(tmp_path / "kaggle")
    for where in (root, root / "REFUGE2"):
        loader = REFUGE2(where)
        records = loader.records()
        # "0001" is in every part, so every id carries its part folder (also "case 3", which is unique)
        assert [(r.id, r.part) for r in records] == [
            ("test_0001", "test"),
            ("test_0002", "test"),
            ("train_0001", "train"),
            ("train_0002", "train"),
            ("train_case 3", "train"),
            ("val_0001", "validation"),
            ("val_0002", "validation"),
        ]
    by_id = {r.id: r for r in records}
    np.testing.assert_array_equal(loader.read_label(by_id["val_0001"]), classes(13))  # .png mask
    np.testing.assert_array_equal(loader.read_image(by_id["train_case 3"]), fundus(2))  # .png image, name with a space
    table = loader.attributes().set_index("id")
    assert table["glaucoma"].isna().all()
    assert table.loc["train_0001", "vcdr"] == 15 / 24 and table.loc["val_0002", "vcdr"] == 6 / 24


def test_refuge2_keeps_unique_stems_and_reads_masks_folder(tmp_path):
    base = tmp_path / "REFUGE2"
    for part, name, cup in (("train", "g0001", 15), ("val", "V0001", 13), ("test", "T0001", 14)):
        save(base / part / "images" / f"{name}.jpg", fundus(cup))
        save(base / part / "masks" / f"{name}.png", np.repeat(refuge_mask(cup)[..., None], 3, axis=2))  # 3-channel
    loader = REFUGE2(base)
    assert [(r.id, r.part) for r in loader.records()] == [
        ("T0001", "test"),
        ("V0001", "validation"),
        ("g0001", "train"),
    ]
    assert loader.attributes()["vcdr"].tolist() == [14 / 24, 13 / 24, 15 / 24]


def test_refuge2_errors_name_files_and_folders(tmp_path):
    (tmp_path / "empty" / "REFUGE2" / "train" / "images").mkdir(parents=True)
    expected = r"expected REFUGE2/\{train,val,test\}/images/ with masks in REFUGE2/\{train,val,test\}/mask/"
    with pytest.raises(DatasetError, match=expected):
        REFUGE2(tmp_path / "empty").records()
    root = make_refuge2(tmp_path / "kaggle")
    (root / "REFUGE2" / "test" / "mask" / "0002.bmp").unlink()
    with pytest.raises(DatasetError, match=r"without a mask in .*REFUGE2/test/mask, e\.g\. .*test/images/0002\.jpg"):
        REFUGE2(root).records()
    save(root / "REFUGE2" / "test" / "mask" / "0002.bmp", refuge_mask(9))
    save(root / "REFUGE2" / "test" / "images" / "0002.png", fundus(0))
    with pytest.raises(DatasetError, match=r"duplicate id '0002' in .*test/images: 0002\.jpg and 0002\.png"):
        REFUGE2(root).records()


# --- procedural copy ----------------------------------------------------------------------------


def test_procedural_synth_fundus_still_loads(tmp_path):
    table = generate(
        SynthFundusConfig(n_train=3, n_validation=2, n_test=2, size=64), 0, tmp_path / "synth", progress=False
    )
    loader = REFUGE(tmp_path / "synth")
    records = loader.records()
    assert sorted(r.id for r in records) == sorted(table["id"]) and {r.part for r in records} == {
        "train",
        "validation",
        "test",
    }
    attributes = loader.attributes().set_index("id")  # the sidecar's glaucoma and vcdr...
    for record in records:
        label = loader.read_label(record)
        check_same_size(loader.read_image(record), label, record)
        assert set(np.unique(label)) == {0, 1, 2}
        assert loader.vcdr(record) == attributes.loc[record.id, "vcdr"]  # ...agree with the masks and folders
        assert loader.glaucoma(record) in (None, attributes.loc[record.id, "glaucoma"])
        assert (loader.glaucoma(record) is None) == (record.part == "validation")


# --- through prepare ----------------------------------------------------------------------------

OPTIONS = PrepareOptions(
    image_size=16,
    val_fraction=0.4,
    split_seed=0,
    fundus_target="cup",
    fundus_crop_scale=2.0,
    min_lesion_fraction=0.0005,
)
LOADERS = {
    "refuge": (REFUGE, make_refuge, "REFUGE-Validation400-GT/Disc_Cup_Masks/V0002.bmp"),
    "refuge2": (REFUGE2, make_refuge2, "REFUGE2/val/mask/0002.png"),
}


@pytest.mark.parametrize("name", sorted(LOADERS))
def test_prepare_uses_the_official_parts(tmp_path, monkeypatch, name):
    loader, make, _ = LOADERS[name]
    monkeypatch.setitem(benchmark.data.DATASETS, name, DatasetSpec(loader=loader, description="fixture"))
    root = make(tmp_path / "data")
    manifest = prepare_dataset(name, root, tmp_path / "prepared", tmp_path / "split.json", OPTIONS, progress=False)
    assert manifest["counts"] == {"train": 3, "val": 2, "test": 2} and manifest["modality"] == "fundus"
    table = pd.read_csv(tmp_path / "prepared" / "attributes.csv").set_index("id")
    assert (table.loc[table["part"] == "test", "split"] == "test").all()
    assert table["vcdr"].notna().all() and "glaucoma" in table
    with np.load(tmp_path / "prepared" / "arrays.npz") as arrays:
        assert arrays["labels"].shape == (7, 16, 16) and arrays["labels"].max() == 2


@pytest.mark.parametrize("name", sorted(LOADERS))
def test_prepare_leaves_nothing_behind_on_broken_input(tmp_path, monkeypatch, name):
    loader, make, mask = LOADERS[name]
    monkeypatch.setitem(benchmark.data.DATASETS, name, DatasetSpec(loader=loader, description="fixture"))
    root = make(tmp_path / "data")
    save(root / mask, np.where(refuge_mask(6) == 128, 255, refuge_mask(6)).astype(np.uint8))  # binarised
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(DatasetError, match=rf"{mask} has no optic-disc rim"):
        prepare_dataset(name, root, out / "prepared", out / "split.json", OPTIONS, progress=False)
    assert list(out.iterdir()) == []
