"""Kvasir-SEG loader: a tiny fake copy in the published layout, the real copy when present, and
the prepare pipeline on the fake copy."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

import benchmark.data
from benchmark.data import DatasetError, DatasetSpec
from benchmark.data.base import check_same_size, read_gray
from benchmark.data.kvasir_seg import KvasirSEG
from benchmark.data.prepare import PrepareOptions, prepare_dataset

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
REAL = DATA / "Kvasir-SEG"
REAL_SESSILE = DATA / "sessile-main-Kvasir-SEG"
needs_real = pytest.mark.skipif(not (REAL / "images").is_dir(), reason=f"real Kvasir-SEG not at {REAL}")

BOXES_NAME = "kavsir_bboxes.json"
WIDTH, HEIGHT = 40, 32
IDS = ("cju0qkwl35piu0993l0dewei2", "cju0roawvklrq0799vmjorwfv", "cju1 with space", "cju2aaa", "cju3bbb")
FLAT = ("cju0roawvklrq0799vmjorwfv", "cju2aaa")
BOXES = {key: [(8, 8, 24, 24)] for key in IDS} | {"cju0roawvklrq0799vmjorwfv": [(8, 8, 16, 24), (24, 8, 32, 24)]}


def polyp_mask(key: str) -> np.ndarray:
    mask = np.zeros((HEIGHT, WIDTH), np.uint8)
    for x0, y0, x1, y1 in BOXES[key]:
        mask[y0:y1, x0:x1] = 255
    return mask


def save_jpeg(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).convert("RGB").save(path, quality=70)


def make_kvasir(base: Path, *, lists: bool = False, sessile: tuple[str, ...] | None = FLAT) -> Path:
    """``base/Kvasir-SEG`` as published (RGB JPEG masks), plus optional lists and sibling Sessile."""
    folder, rng = base / "Kvasir-SEG", np.random.default_rng(0)
    boxes = {}
    for key in IDS:
        save_jpeg(folder / "images" / f"{key}.jpg", rng.integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8))
        save_jpeg(folder / "masks" / f"{key}.jpg", polyp_mask(key))
        bbox = [{"label": "polyp", "xmin": x0, "ymin": y0, "xmax": x1, "ymax": y1} for x0, y0, x1, y1 in BOXES[key]]
        boxes[key] = {"height": HEIGHT, "width": WIDTH, "bbox": bbox}
    (folder / BOXES_NAME).write_text(json.dumps(boxes))
    for junk in ("images/Thumbs.db", "masks/Thumbs.db", "images/.DS_Store", "masks/.DS_Store"):
        (folder / junk).write_bytes(b"\0junk")
    if lists:
        (folder / "train.txt").write_text("\n".join(IDS[:4]) + "\n")
        (folder / "val.txt").write_text(IDS[4] + "\n")
    if sessile is not None:
        for key in sessile:
            for sub in ("images", "masks"):
                save_jpeg(
                    base / "sessile-main-Kvasir-SEG" / sub / f"{key}.jpg", np.full((HEIGHT, WIDTH), 200, np.uint8)
                )
        (base / "sessile-main-Kvasir-SEG" / "images" / ".DS_Store").write_bytes(b"junk")
    return folder


@pytest.fixture
def kvasir(tmp_path) -> Path:
    return make_kvasir(tmp_path)


def load_all(loader: KvasirSEG) -> None:
    """What the pipeline does with every record."""
    loader.attributes()
    for record in loader.records():
        check_same_size(loader.read_image(record), loader.read_label(record), record)


def test_records_sorted_paired_and_junk_ignored(kvasir):
    records = KvasirSEG(kvasir).records()
    assert [r.id for r in records] == sorted(IDS)
    assert all(r.image.name == f"{r.id}.jpg" and r.label.parent.name == "masks" for r in records)
    assert all(r.part is None and r.group is None for r in records)


def test_images_and_labels(kvasir):
    loader = KvasirSEG(kvasir)
    for record in loader.records():
        image, label = loader.read_image(record), loader.read_label(record)
        raw = read_gray(record.label)
        assert image.shape == (HEIGHT, WIDTH, 3) and image.dtype == np.uint8
        assert label.shape == (HEIGHT, WIDTH) and label.dtype == np.uint8 and set(np.unique(label)) == {0, 1}
        assert not np.isin(raw, (0, 255)).all(), "the fixture's JPEG masks should carry noise around 0/255"
        assert (label == (polyp_mask(record.id) > 0)).mean() > 0.99


def test_attributes_with_sessile(kvasir):
    table = KvasirSEG(kvasir).attributes()
    assert list(table.columns) == ["id", "bbox_count", "json_width", "json_height", "flat"]
    assert table["id"].tolist() == sorted(IDS)
    assert dict(zip(table["id"], table["bbox_count"])) == {key: len(BOXES[key]) for key in IDS}
    assert (table["json_width"] == WIDTH).all() and (table["json_height"] == HEIGHT).all()
    assert table["flat"].dtype == bool and set(table.loc[table["flat"], "id"]) == set(FLAT)


def test_flat_absent_without_sessile(tmp_path):
    assert "flat" not in KvasirSEG(make_kvasir(tmp_path, sessile=None)).attributes()


def test_sessile_inside_and_explicit(tmp_path):
    folder = make_kvasir(tmp_path / "a", sessile=None)
    make_kvasir(tmp_path / "b", sessile=FLAT[:1])
    (tmp_path / "b" / "sessile-main-Kvasir-SEG").rename(folder / "sessile-main-Kvasir-SEG")
    assert KvasirSEG(folder).attributes()["flat"].sum() == 1
    explicit = KvasirSEG(make_kvasir(tmp_path / "c", sessile=None), sessile_root=folder / "sessile-main-Kvasir-SEG")
    assert explicit.attributes()["flat"].sum() == 1
    with pytest.raises(DatasetError, match="nowhere"):
        KvasirSEG(folder, sessile_root=tmp_path / "nowhere")


def test_parent_folder(kvasir):
    loader = KvasirSEG(kvasir.parent)
    assert [r.id for r in loader.records()] == sorted(IDS)
    assert loader.attributes()["flat"].sum() == len(FLAT)


def test_official_split(tmp_path):
    records = KvasirSEG(make_kvasir(tmp_path, lists=True), official_split=True).records()
    assert {r.id: r.part for r in records} == {key: "test" if key == IDS[4] else "train" for key in IDS}


def test_official_split_errors(tmp_path):
    folder = make_kvasir(tmp_path, lists=True)
    (folder / "val.txt").unlink()
    with pytest.raises(DatasetError, match=r"val\.txt.*put it in"):
        KvasirSEG(folder, official_split=True).records()
    assert all(r.part is None for r in KvasirSEG(folder).records())
    cases = {f"{IDS[4]}\nnot_an_id\n": "not_an_id", f"{IDS[4]}\n{IDS[0]}\n": IDS[0], "\n": IDS[4]}
    for text, named in cases.items():
        (folder / "val.txt").write_text(text)
        with pytest.raises(DatasetError, match=named) as error:
            KvasirSEG(folder, official_split=True).records()
        assert "val.txt" in str(error.value) or "train.txt" in str(error.value)


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def resize_mask(path: Path) -> None:
    Image.open(path).resize((WIDTH - 8, HEIGHT)).save(path)


def edit_json(folder: Path, change) -> None:
    boxes = json.loads((folder / BOXES_NAME).read_text())
    change(boxes)
    (folder / BOXES_NAME).write_text(json.dumps(boxes))


# (how to break the fixture, the path that the message must name)
BREAKAGES = {
    "empty images folder": (
        lambda f: [p.unlink() for p in (f / "images").glob("*.jpg")],
        "Kvasir-SEG/images holds no image",
    ),
    "image without mask": (lambda f: (f / "masks" / f"{IDS[1]}.jpg").unlink(), f"images/{IDS[1]}.jpg"),
    "mask without image": (lambda f: (f / "images" / f"{IDS[1]}.jpg").unlink(), f"masks/{IDS[1]}.jpg"),
    "truncated image": (lambda f: truncate(f / "images" / f"{IDS[2]}.jpg"), f"images/{IDS[2]}.jpg"),
    "truncated mask": (lambda f: truncate(f / "masks" / f"{IDS[2]}.jpg"), f"masks/{IDS[2]}.jpg"),
    "mask of another size": (lambda f: resize_mask(f / "masks" / f"{IDS[3]}.jpg"), f"masks/{IDS[3]}.jpg"),
    "empty mask": (
        lambda f: save_jpeg(f / "masks" / f"{IDS[0]}.jpg", np.zeros((HEIGHT, WIDTH), np.uint8)),
        f"masks/{IDS[0]}.jpg",
    ),
    "json missing": (lambda f: (f / BOXES_NAME).unlink(), BOXES_NAME),
    "json id without image": (
        lambda f: [(f / sub / f"{IDS[3]}.jpg").unlink() for sub in ("images", "masks")],
        BOXES_NAME,
    ),
    "json malformed": (lambda f: (f / BOXES_NAME).write_text("{"), BOXES_NAME),
    "id missing from json": (lambda f: edit_json(f, lambda b: b.pop(IDS[2])), BOXES_NAME),
    "wrong size in json": (lambda f: edit_json(f, lambda b: b[IDS[3]].update(width=41)), f"images/{IDS[3]}.jpg"),
    "sessile id not in Kvasir-SEG": (
        lambda f: save_jpeg(
            f.parent / "sessile-main-Kvasir-SEG" / "images" / "stranger.jpg", np.zeros((4, 4), np.uint8)
        ),
        "sessile-main-Kvasir-SEG/images/stranger.jpg",
    ),
}


@pytest.mark.parametrize("case", list(BREAKAGES))
def test_bad_input_names_the_file(kvasir, case):
    breakage, named = BREAKAGES[case]
    breakage(kvasir)
    if case == "sessile id not in Kvasir-SEG":  # pair it so that only the membership check fails
        save_jpeg(kvasir.parent / "sessile-main-Kvasir-SEG" / "masks" / "stranger.jpg", np.zeros((4, 4), np.uint8))
    with pytest.raises(DatasetError) as error:
        load_all(KvasirSEG(kvasir))
    assert named in str(error.value), str(error.value)


def test_missing_root(tmp_path):
    with pytest.raises(DatasetError, match="nowhere"):
        KvasirSEG(tmp_path / "nowhere")
    with pytest.raises(DatasetError, match="images/"):
        KvasirSEG(tmp_path)


# ---------------------------------------------------------------- prepare pipeline on the fixture

OPTIONS = PrepareOptions(
    image_size=16,
    val_fraction=0.25,
    split_seed=0,
    fundus_target="cup",
    fundus_crop_scale=2.0,
    min_lesion_fraction=0.0005,
)


@pytest.mark.parametrize("official", [False, True])
def test_prepare_dataset(tmp_path, monkeypatch, official):
    folder = make_kvasir(tmp_path / "raw", lists=official)
    spec = DatasetSpec(
        loader=KvasirSEG,
        description="x",
        test_fraction=None if official else 0.2,
        loader_options=(("official_split", True),) if official else (),
    )
    monkeypatch.setitem(benchmark.data.DATASETS, "kvasir_seg", spec)
    out, split_path = tmp_path / "prepared" / "kvasir_seg", tmp_path / "splits" / "kvasir_seg.json"
    manifest = prepare_dataset("kvasir_seg", folder, out, split_path, OPTIONS, progress=False)
    assert sorted(p.name for p in out.iterdir()) == [
        "arrays.npz",
        "attributes.csv",
        "manifest.json",
        "native_masks.npz",
    ]
    arrays = np.load(out / "arrays.npz")
    assert arrays["ids"].tolist() == sorted(IDS) and arrays["images"].shape == (len(IDS), 16, 16, 3)
    assert set(np.unique(arrays["masks"])) == {0, 1} and manifest["n_images"] == len(IDS)
    split = json.loads(split_path.read_text())
    assert sorted(split["train"] + split["val"] + split["test"]) == sorted(IDS)
    assert len(split["test"]) == 1 and (split["test"] == [IDS[4]] or not official)  # official: val.txt's id
    table = pd.read_csv(out / "attributes.csv")
    assert {"split", "bbox_count", "json_width", "flat"} <= set(table.columns)
    assert set(table.loc[table["flat"], "id"]) == set(FLAT)


def test_prepare_leaves_nothing_on_bad_input(tmp_path, monkeypatch):
    folder = make_kvasir(tmp_path / "raw")
    save_jpeg(folder / "masks" / f"{IDS[-1]}.jpg", np.zeros((HEIGHT, WIDTH), np.uint8))  # the last record fails
    monkeypatch.setitem(
        benchmark.data.DATASETS, "kvasir_seg", DatasetSpec(loader=KvasirSEG, description="x", test_fraction=0.2)
    )
    out, split_path = tmp_path / "prepared" / "kvasir_seg", tmp_path / "splits" / "kvasir_seg.json"
    with pytest.raises(DatasetError, match=f"{IDS[-1]}.jpg"):
        prepare_dataset("kvasir_seg", folder, out, split_path, OPTIONS, progress=False)
    assert not out.exists() and not split_path.exists()
    assert not (out.parent.exists() and any(out.parent.iterdir()))


# ---------------------------------------------------------------- the real copy, when present


@needs_real
def test_real_pairs_and_json_sizes():
    loader = KvasirSEG(REAL)
    records = loader.records()
    assert len(records) == 1000
    boxes = loader.boxes()
    sizes = set()
    for record in records:
        with Image.open(record.image) as image, Image.open(record.label) as mask:  # headers only: fast
            assert image.size == (boxes[record.id]["width"], boxes[record.id]["height"]), record.image
            assert mask.size == image.size, record.label
            sizes.add(image.size)
    assert len(sizes) == 333  # DATASETS.md: 333 distinct sizes, 332x487 .. 1920x1072
    assert min(sizes, key=lambda s: s[0] * s[1]) == (332, 487) and max(sizes, key=lambda s: s[0] * s[1]) == (1920, 1072)
    record = records[0]
    check_same_size(loader.read_image(record), loader.read_label(record), record)


@needs_real
def test_real_masks_binarise_cleanly():
    records = KvasirSEG(REAL).records()[::10]
    assert len(records) == 100
    for record in records:
        raw = read_gray(record.label)
        assert ((raw >= 64) & (raw <= 191)).mean() < 0.02, record.label
        assert (raw > 127).any(), record.label


@needs_real
@pytest.mark.skipif(not (REAL_SESSILE / "images").is_dir(), reason=f"Kvasir-Sessile not at {REAL_SESSILE}")
def test_real_sessile_is_flat_and_parent_folder_works():
    sessile = {p.stem for p in (REAL_SESSILE / "images").glob("*.jpg")}
    assert len(sessile) == 196
    for root in (REAL, DATA):
        table = KvasirSEG(root).attributes()
        assert len(table) == 1000 and sessile <= set(table["id"])
        assert set(table.loc[table["flat"], "id"]) == sessile
