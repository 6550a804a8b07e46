"""The folder loader (``images/`` + ``masks/`` of your own) on tiny fixtures: formats, mask encodings,
attributes.csv and splits.csv, prepare end to end, broken copies, and the ``prepare.folders`` params."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tifffile
import yaml
from PIL import Image

from benchmark.config import ParamsError, load_section
from benchmark.data import DATASETS, FolderOptions, resolve_dataset
from benchmark.data.base import DatasetError
from benchmark.data.folder import FolderDataset
from benchmark.data.prepare import PrepareOptions, prepare_dataset
from benchmark.data.splits import make_split
from benchmark.reporting.tables import _stratum_masks
from benchmark.stats.units import units_from_attributes

ROOT = Path(__file__).resolve().parents[1]
H, W = 24, 32
OPTIONS = PrepareOptions(
    image_size=16, val_fraction=0.25, split_seed=0, fundus_target="cup", fundus_crop_scale=2.0, min_lesion_fraction=0.0
)


def rgb(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (H, W, 3), dtype=np.uint8)


def polyp_mask(seed: int = 0) -> np.ndarray:
    """0/255 mask with a block lesion; the block's place depends on ``seed``."""
    values = np.zeros((H, W), np.uint8)
    values[4 + seed % 4 : 16, 6:20] = 255
    return values


def fundus_mask() -> np.ndarray:
    """REFUGE encoding: background 255, disc rim 128, cup 0 inside the disc."""
    values = np.full((H, W), 255, np.uint8)
    values[4:20, 8:24] = 128
    values[8:16, 12:20] = 0
    return values


def save(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() in (".tif", ".tiff"):
        tifffile.imwrite(path, array, photometric="rgb" if array.ndim == 3 else "minisblack")
    else:
        Image.fromarray(array).save(path, **({"quality": 95} if path.suffix.lower() in (".jpg", ".jpeg") else {}))


def make_folder(root: Path, ids=("a", "b", "c", "d", "e", "f"), *, fundus: bool = False, suffix: str = ".png") -> Path:
    for index, key in enumerate(ids):
        save(root / "images" / f"{key}{suffix}", rgb(index))
        save(root / "masks" / f"{key}.png", fundus_mask() if fundus else polyp_mask(index))
    return root


def write_csv(path: Path, text: str) -> None:
    path.write_text(text.strip() + "\n")


# --- layouts and mask encodings -----------------------------------------------------------------


def test_every_image_format_pairs_by_stem(tmp_path):
    """PNG, JPEG, TIFF and BMP pairs (suffixes in any case, images and masks in different formats)."""
    root = tmp_path / "data"
    formats = {"p1": (".png", ".PNG"), "j1": (".JPG", ".jpeg"), "t1": (".tif", ".TIFF"), "b1": (".bmp", ".Bmp")}
    for index, (key, (image_suffix, mask_suffix)) in enumerate(formats.items()):
        save(root / "images" / f"{key}{image_suffix}", rgb(index))
        save(root / "masks" / f"{key}{mask_suffix}", polyp_mask(index))
    (root / "images" / "Thumbs.db").write_bytes(b"\0junk")
    loader = FolderDataset(root)
    records = loader.records()
    assert [r.id for r in records] == sorted(formats)
    assert all(r.group is None and r.part is None for r in records)
    for index, record in enumerate(sorted(records, key=lambda r: list(formats).index(r.id))):
        image, label = loader.read_image(record), loader.read_label(record)
        assert image.shape == (H, W, 3) and image.dtype == np.uint8
        assert label.shape == (H, W) and label.dtype == np.uint8 and set(np.unique(label)) == {0, 1}
        expected = (polyp_mask(index) > 127).astype(np.uint8)
        if record.image.suffix.lower() in (".jpg", ".jpeg"):  # lossy: compare where JPEG keeps the values
            assert (label == expected).mean() > 0.98
        else:
            np.testing.assert_array_equal(image, rgb(index))
            np.testing.assert_array_equal(label, expected)


def test_threshold_127_is_background_128_foreground(tmp_path):
    root = make_folder(tmp_path / "data", ids=("a",))
    values = np.zeros((H, W), np.uint8)
    values[:, :10], values[:, 10:20], values[:, 20:] = 127, 128, 255
    save(root / "masks" / "a.png", values)
    record = FolderDataset(root).records()[0]
    label = FolderDataset(root).read_label(record)
    assert (label[:, :10] == 0).all() and (label[:, 10:] == 1).all()
    stricter = FolderDataset(root, mask_threshold=200).read_label(record)  # prepare.folders.<name>.mask_threshold
    assert (stricter[:, :20] == 0).all() and (stricter[:, 20:] == 1).all()


def test_rgb_mask_is_read_like_the_publisher_loaders(tmp_path):
    root = make_folder(tmp_path / "data", ids=("a",))
    save(root / "masks" / "a.png", np.repeat(polyp_mask(0)[..., None], 3, axis=2))
    loader = FolderDataset(root)
    np.testing.assert_array_equal(loader.read_label(loader.records()[0]), (polyp_mask(0) > 127).astype(np.uint8))


def test_lesion_free_image_is_allowed(tmp_path):
    root = make_folder(tmp_path / "data", ids=("a",))
    save(root / "masks" / "a.png", np.zeros((H, W), np.uint8))
    loader = FolderDataset(root)
    assert not loader.read_label(loader.records()[0]).any()


def test_fundus_encoding_and_vcdr(tmp_path):
    root = make_folder(tmp_path / "data", ids=("a", "b"), fundus=True)
    loader = FolderDataset(root, modality="fundus")
    assert loader.modality == "fundus" and loader.classes == ("background", "disc_rim", "cup")
    label = loader.read_label(loader.records()[0])
    expected = np.select([fundus_mask() == 0, fundus_mask() == 128], [2, 1], 0).astype(np.uint8)
    np.testing.assert_array_equal(label, expected)
    assert loader.attributes()["vcdr"].tolist() == [0.5, 0.5]  # cup 8 rows of a 16-row disc


# --- attributes.csv, splits.csv, prepare end to end ----------------------------------------------

IDS = tuple(f"f{index:02d}" for index in range(12))
GROUPS = {key: f"patient{index // 2}" for index, key in enumerate(IDS)}  # 6 groups of 2 images


def grouped_folder(root: Path) -> Path:
    make_folder(root, ids=IDS)
    rows = "\n".join(
        f"{key},{GROUPS[key]},{'yes' if index % 3 == 0 else 'no' if index % 3 == 1 else ''},site{index % 2}"
        for index, key in enumerate(IDS)
    )
    write_csv(root / "attributes.csv", "id,group,flat,site\n" + rows)
    return root


def prepare(root: Path, out: Path, name: str = "my_polyps", **options):
    folders = {name: FolderOptions(**{"modality": "polyp", **options})}
    manifest = prepare_dataset(
        name, root, out / "prepared", out / "split.json", OPTIONS, progress=False, folders=folders
    )
    table = pd.read_csv(out / "prepared" / "attributes.csv", dtype={"id": str, "group": str})
    return manifest, table, json.loads((out / "split.json").read_text())


def test_attributes_pass_through_and_the_split_keeps_groups_together(tmp_path):
    root = grouped_folder(tmp_path / "data")
    loader = FolderDataset(root)
    assert [r.group for r in loader.records()] == [GROUPS[key] for key in IDS]
    attributes = loader.attributes()
    assert attributes["flat"].dtype == "boolean"
    assert attributes["flat"].tolist()[:3] == [True, False, pd.NA]
    assert attributes["site"].tolist()[:2] == ["site0", "site1"]

    manifest, table, split = prepare(root, tmp_path / "out")
    assert manifest["loader"] == "FolderDataset" and manifest["modality"] == "polyp" and manifest["target"] == "polyp"
    assert manifest["n_images"] == 12 and sum(manifest["counts"].values()) == 12
    assert manifest["split_protocol"] == "20.0% test, sequence-disjoint"
    assert {"split", "group", "flat", "site", "n_lesions"} <= set(table.columns)
    assert dict(zip(table["id"], table["group"])) == GROUPS
    assert table.groupby("group")["split"].nunique().eq(1).all(), "a group sits on both sides of the split"
    flat = _stratum_masks(table, "polyp")["flat"]  # what Table 1 and Table 3 count as the flat stratum
    assert set(table.loc[flat, "id"]) == {key for index, key in enumerate(IDS) if index % 3 == 0}
    assert len(split["test"]) == 2  # 0.2 * 12 = 2.4 -> one whole group of 2
    units = units_from_attributes(table, manifest["modality"])  # the group is the unit of the statistics
    assert set(units.of_image.values()) == set(GROUPS.values()) and units.of_image["f03"] == "patient1"


def test_spreadsheet_csv_with_byte_order_mark(tmp_path):
    root = make_folder(tmp_path / "data", ids=("a", "b"))
    (root / "attributes.csv").write_bytes("id,group\na,p1\nb,p2\n".encode("utf-8-sig"))
    assert [r.group for r in FolderDataset(root).records()] == ["p1", "p2"]


def test_without_attributes_the_image_is_the_unit(tmp_path):
    manifest, table, _ = prepare(make_folder(tmp_path / "data"), tmp_path / "out")
    assert manifest["split_protocol"] == "20.0% test, random images"
    assert units_from_attributes(table, "polyp").name == "image"


def test_splits_csv_defines_the_parts(tmp_path):
    root = grouped_folder(tmp_path / "data")
    parts = {key: "test" if key in ("f00", "f01") else "val" if key in ("f02", "f03") else "train" for key in IDS}
    parts["f04"] = parts["f05"] = "Train"  # case-insensitive
    write_csv(root / "splits.csv", "id,part\n" + "\n".join(f"{key},{part}" for key, part in parts.items()))
    manifest, table, split = prepare(root, tmp_path / "out")
    assert split["test"] == ["f00", "f01"] and split["val"] == ["f02", "f03"] and split["train"] == list(IDS[4:])
    assert manifest["split_protocol"].startswith("the dataset's splits.csv")
    # without 'val' rows, validation is carved from the train rows (whole groups), test stays the file's
    write_csv(
        root / "splits.csv", "id,part\n" + "\n".join(f"{k},{'test' if k in ('f10', 'f11') else 'train'}" for k in IDS)
    )
    _, table, split = prepare(root, tmp_path / "out")  # same split path: remade, since splits.csv changed
    assert split["test"] == ["f10", "f11"] and len(split["val"]) == 2 and len(split["train"]) == 8
    assert table.groupby("group")["split"].nunique().eq(1).all()


def test_split_is_remade_when_a_group_changes(tmp_path):
    root = grouped_folder(tmp_path / "data")
    _, _, first = prepare(root, tmp_path / "out")
    assert prepare(root, tmp_path / "out")[2] == first  # unchanged: the stored split is read
    write_csv(root / "attributes.csv", "id,group\n" + "\n".join(f"{key},one_patient_each_{key}" for key in IDS))
    stored = json.loads((tmp_path / "out" / "split.json").read_text())["meta"]
    prepare(root, tmp_path / "out")
    assert json.loads((tmp_path / "out" / "split.json").read_text())["meta"] != stored


def test_fundus_folder_prepares_with_disc_crop(tmp_path):
    root = make_folder(tmp_path / "data", fundus=True)
    manifest, table, _ = prepare(root, tmp_path / "out", name="my_fundus", modality="fundus")
    assert manifest["modality"] == "fundus" and manifest["target"] == "cup" and manifest["fundus_crop_scale"] == 2.0
    assert manifest["classes"] == ["background", "disc_rim", "cup"] and (table["vcdr"] == 0.5).all()
    with np.load(tmp_path / "out" / "prepared" / "arrays.npz") as arrays:
        assert set(np.unique(arrays["labels"])) == {0, 1, 2}


def test_fixed_validation_part_in_make_split():
    ids = [f"i{k}" for k in range(10)]
    parts = ["test"] * 2 + ["val"] * 3 + ["train"] * 5
    split = make_split(ids, rng=np.random.default_rng(0), val_fraction=0.5, parts=parts)
    assert split == {"train": ids[5:], "val": ids[2:5], "test": ids[:2]}
    with pytest.raises(DatasetError, match=r'"val"\) needs a "test" part'):
        make_split(ids, rng=np.random.default_rng(0), val_fraction=0.5, test_fraction=0.2, parts=["val"] + [None] * 9)


# --- broken copies: every error names the file and the fix ----------------------------------------


def _rows(text: str) -> str:
    return text.strip() + "\n"


BROKEN = {
    # case: (break the folder, where the error shows: "records" | "read" | "attributes" | "prepare", message)
    "images folder missing": (
        lambda r: (r / "images").rename(r / "pictures"),
        "init",
        r"data/images is missing.*create it",
    ),
    "masks folder named mask": (
        lambda r: (r / "masks").rename(r / "mask"),
        "init",
        r"data/masks is missing.*rename mask/ to masks/",
    ),
    "image without mask": (
        lambda r: (r / "masks" / "b.png").unlink(),
        "records",
        r"without a mask .* e\.g\. .*images/b\.png",
    ),
    "mask without image": (
        lambda r: (r / "images" / "b.png").unlink(),
        "records",
        r"without an image .* e\.g\. .*masks/b\.png",
    ),
    "duplicate stem": (
        lambda r: save(r / "images" / "b.jpg", rgb(1)),
        "records",
        r"duplicate id 'b' in .*images: b\.jpg and b\.png",
    ),
    "empty dataset": (
        lambda r: [p.unlink() for p in [*(r / "images").iterdir(), *(r / "masks").iterdir()]],
        "records",
        r"data/images holds no image files",
    ),
    "unreadable image": (
        lambda r: (r / "images" / "b.png").write_bytes((r / "images" / "b.png").read_bytes()[:40]),
        "prepare",
        r"images/b\.png.*corrupt or truncated, re-download it",
    ),
    "mask of another size": (
        lambda r: save(r / "masks" / "b.png", np.zeros((H - 4, W), np.uint8)),
        "prepare",
        r"masks/b\.png is 32x20 but .*images/b\.png is 32x24",
    ),
    "0/1 polyp mask": (
        lambda r: save(r / "masks" / "b.png", (polyp_mask() > 0).astype(np.uint8)),
        "read",
        r"masks/b\.png holds values up to 1 but none > 127: a 0/1 mask\?",
    ),
    "attributes.csv names an unknown id": (
        lambda r: write_csv(r / "attributes.csv", "id,group\na,1\nb,1\nc,2\nzz,3"),
        "records",
        r"attributes\.csv lists id 'zz' .*no image in .*images; .*fix the id, remove the row or add the image",
    ),
    "attributes.csv lacks an image": (
        lambda r: write_csv(r / "attributes.csv", "id,group\na,1\nb,1"),
        "records",
        r"images/c\.png has no row in .*attributes\.csv .*add a row with id 'c'",
    ),
    "attributes.csv repeats an id": (
        lambda r: write_csv(r / "attributes.csv", "id,group\na,1\nb,1\nc,2\nb,2"),
        "records",
        r"attributes\.csv lists id 'b' twice; keep one row per image",
    ),
    "attributes.csv without id column": (
        lambda r: write_csv(r / "attributes.csv", "name,group\na,1\nb,1\nc,2"),
        "records",
        r"attributes\.csv has no 'id' column \(columns: name, group\)",
    ),
    "attributes.csv with an empty group": (
        lambda r: write_csv(r / "attributes.csv", "id,group\na,1\nb,\nc,2"),
        "records",
        r"attributes\.csv: image .*images/b\.png has an empty 'group'",
    ),
    "attributes.csv with a bad flat value": (
        lambda r: write_csv(r / "attributes.csv", "id,flat\na,true\nb,maybe\nc,"),
        "attributes",
        r"attributes\.csv: id 'b' has flat = 'maybe'; write true or false",
    ),
    "attributes.csv with a reserved column": (
        lambda r: write_csv(r / "attributes.csv", "id,split\na,train\nb,test\nc,train"),
        "attributes",
        r"attributes\.csv: column 'split' is reserved.*splits\.csv",
    ),
    "splits.csv with an unknown part": (
        lambda r: write_csv(r / "splits.csv", "id,part\na,train\nb,holdout\nc,test"),
        "records",
        r"splits\.csv: id 'b' has part 'holdout'; parts are 'train', 'val' or 'test'",
    ),
    "splits.csv without test rows": (
        lambda r: write_csv(r / "splits.csv", "id,part\na,train\nb,val\nc,train"),
        "records",
        r"splits\.csv has no 'test' rows.*delete splits\.csv",
    ),
    "splits.csv without part column": (
        lambda r: write_csv(r / "splits.csv", "id,split\na,train\nb,test\nc,train"),
        "records",
        r"splits\.csv has no 'part' column",
    ),
    "splits.csv splits a group": (
        lambda r: (
            write_csv(r / "attributes.csv", "id,group\na,p1\nb,p1\nc,p2"),
            write_csv(r / "splits.csv", "id,part\na,train\nb,test\nc,train"),
        ),
        "records",
        r"splits\.csv: group 'p1' .* 'a' in train and 'b' in test.*put the whole group in one part",
    ),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_broken_copies_name_the_file_and_the_fix(case, tmp_path):
    root = make_folder(tmp_path / "data", ids=("a", "b", "c"))
    change, where, message = BROKEN[case]
    change(root)
    out = tmp_path / "out"
    with pytest.raises(DatasetError, match=message):
        if where == "init":
            FolderDataset(root)
        loader = FolderDataset(root)
        if where == "records":
            loader.records()
        elif where == "read":
            for record in loader.records():
                loader.read_label(record)
        elif where == "attributes":
            loader.attributes()
        else:
            prepare(root, out)
    assert not (out / "prepared").exists() and not (out / "split.json").exists()


def test_fundus_mask_outside_the_encoding_is_named(tmp_path):
    root = make_folder(tmp_path / "data", ids=("a", "b"), fundus=True)
    save(root / "masks" / "b.png", polyp_mask())  # a binary 0/255 export
    loader = FolderDataset(root, modality="fundus")
    with pytest.raises(DatasetError, match=r"masks/b\.png has no optic-disc rim.*cup 0, disc rim 128.*modality polyp"):
        loader.read_label(loader.records()[1])


def test_bad_loader_options(tmp_path):
    root = make_folder(tmp_path / "data", ids=("a",))
    with pytest.raises(DatasetError, match=r"modality must be 'polyp' or 'fundus', got 'xray'"):
        FolderDataset(root, modality="xray")


# --- registry and params -------------------------------------------------------------------------


def test_registry_entry_and_resolve(tmp_path):
    spec = DATASETS["folder"]
    assert spec.loader is FolderDataset and spec.test_fraction == 0.2
    assert spec.make_loader(make_folder(tmp_path / "data")).modality == "polyp"
    assert resolve_dataset("kvasir_seg", {}) is DATASETS["kvasir_seg"]
    mine = resolve_dataset("mine", {"mine": {"modality": "fundus", "test_fraction": 0.3}})
    assert mine.loader is FolderDataset and mine.test_fraction == 0.3
    assert dict(mine.loader_options) == {"modality": "fundus", "mask_threshold": 127}
    with pytest.raises(DatasetError, match=r"unknown dataset 'other'; add it under prepare\.folders"):
        resolve_dataset("other", {"mine": {"modality": "polyp"}})


def committed_prepare(**changes) -> dict:
    content = yaml.safe_load((ROOT / "params.yaml").read_text())
    content["prepare"].update(changes)
    return content


def write_params(tmp_path: Path, content: dict) -> Path:
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(content))
    return path


def test_params_folders_entry_resolves(tmp_path):
    content = committed_prepare(
        datasets={"my_polyps": "data/raw/my_polyps"},
        folders={"my_polyps": {"modality": "polyp", "mask_threshold": 100}},
    )
    params = load_section("prepare", write_params(tmp_path, content))
    assert params.folders == {"my_polyps": FolderOptions("polyp", mask_threshold=100)}
    spec = resolve_dataset("my_polyps", params.folders)
    assert spec.loader is FolderDataset and ("mask_threshold", 100) in spec.loader_options


@pytest.mark.parametrize(
    "datasets, folders, message",
    [
        (
            {"mine": "x"},
            {"mine": {"modality": "polyp", "treshold": 1}},
            r"unknown key 'prepare\.folders\.mine\.treshold'",
        ),
        ({"mine": "x"}, {"mine": {}}, r"missing required key 'prepare\.folders\.mine\.modality'"),
        (
            {"mine": "x"},
            {"mine": {"modality": "ct"}},
            r"'prepare\.folders\.mine\.modality' must be one of 'polyp', 'fundus'",
        ),
        ({"mine": "x"}, {"mine": {"modality": "polyp", "test_fraction": 1.5}}, r"test_fraction must be in \(0, 1\)"),
        ({"mine": "x"}, {}, r"unknown dataset 'mine'; known: .*add it under prepare\.folders"),
        (
            {"a": "x"},
            {"a": {"modality": "polyp"}, "b": {"modality": "polyp"}},
            r"folders lists 'b', which datasets does not",
        ),
        ({"kvasir_seg": "x"}, {"kvasir_seg": {"modality": "polyp"}}, r"'kvasir_seg', a registered dataset name"),
        ({"my.data": "x"}, {"my.data": {"modality": "polyp"}}, r"letters, digits, '_' and '-' only"),
    ],
)
def test_params_folders_errors(datasets, folders, message, tmp_path):
    with pytest.raises(ParamsError, match=message):
        load_section("prepare", write_params(tmp_path, committed_prepare(datasets=datasets, folders=folders)))


def test_prepare_stage_reads_prepare_folders(tmp_path):
    """The stage CLI threads prepare.folders through: a name of your own prepares with the folder loader."""
    root = make_folder(tmp_path / "raw" / "mine", fundus=True)
    content = committed_prepare(datasets={"mine": str(root)}, folders={"mine": {"modality": "fundus"}})
    path = write_params(tmp_path, content)
    result = subprocess.run(
        [sys.executable, "-m", "benchmark.stages.prepare", "--dataset", "mine", "--params", str(path), "--no-progress"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert result.returncode == 0, result.stderr
    manifest = json.loads((tmp_path / "data" / "prepared" / "mine" / "manifest.json").read_text())
    assert manifest["loader"] == "FolderDataset" and manifest["modality"] == "fundus"
    assert (tmp_path / "data" / "splits" / "mine.json").is_file()


def test_gallery_reads_a_folder_dataset(tmp_path):
    from benchmark.reporting.figures import dataset_gallery

    root = make_folder(tmp_path / "data")
    _, table, _ = prepare(root, tmp_path / "out")
    figure = dataset_gallery("my_polyps", str(root), table, 2, folders={"my_polyps": FolderOptions("polyp")})
    test_ids = table.loc[table["split"] == "test", "id"].tolist()
    assert len(figure.axes) == 2 * len(test_ids) and figure.axes[1].get_xlabel() == test_ids[0]
