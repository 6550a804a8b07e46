"""The CVC-ClinicDB loader on tiny fixtures in the publisher's layouts, its errors, and the procedural copy."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tifffile
from PIL import Image

import benchmark.data
from benchmark.data import DatasetSpec
from benchmark.data.base import DatasetError, check_same_size
from benchmark.data.cvc_clinicdb import CVC_SEQUENCE_RANGES, CVCClinicDB, cvc_sequence, frame_sequences
from benchmark.data.prepare import PrepareOptions, prepare_dataset
from benchmark.data.procedural.polyp import SynthPolypConfig, generate

H, W = 40, 48
# two frames from each of the first six sequences (ids as published: 1..612, no padding)
FRAMES = (1, 2, 26, 27, 51, 52, 68, 69, 79, 80, 104, 105)


def rgb(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (H, W, 3), dtype=np.uint8)


def mask(seed: int, stray: bool = True) -> np.ndarray:
    """{0, 255} mask with a rectangular polyp, plus stray values in 1..254 as in real CVC masks."""
    values = np.zeros((H, W), np.uint8)
    values[10 + seed % 5 : 25, 12:30] = 255
    if stray:
        values[0, :4] = (1, 100, 127, 60)  # background despite the values
        values[12, 14:18] = (128, 200, 254, 140)  # polyp despite the values
    return values


def write_malformed_tif(path: Path, array: np.ndarray) -> None:
    """RGB TIFF whose BitsPerSample tag holds 2 values for 3 samples: Pillow rejects it, tifffile reads it."""
    tifffile.imwrite(path, array, photometric="rgb")
    with tifffile.TiffFile(path) as tif:
        entry = tif.pages[0].tags[258].offset
    data = bytearray(path.read_bytes())
    assert data[:2] == b"II"
    struct.pack_into("<HHI4s", data, entry, 258, 3, 2, struct.pack("<HH", 8, 8))  # SHORT, count 2, inline (8, 8)
    path.write_bytes(bytes(data))


def write_png16_rgb(path: Path, array: np.ndarray) -> None:
    """48-bit RGB PNG (Pillow cannot write one)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    height, width, _ = array.shape
    raw = b"".join(b"\0" + row.astype(">u2").tobytes() for row in array)
    header = struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
    )


def make_cvc(root: Path, frames=FRAMES, *, layout: str = "tif") -> Path:
    """CVC-ClinicDB fixture: ``Original/`` + ``Ground Truth/`` TIFFs (malformed RGB tag) or ``PNG/`` re-package."""
    base = root / "PNG" if layout == "png" else root
    (base / "Original").mkdir(parents=True)
    (base / "Ground Truth").mkdir()
    for frame in frames:
        if layout == "png":
            Image.fromarray(rgb(frame)).save(base / "Original" / f"{frame}.png")
            Image.fromarray(np.repeat(mask(frame)[..., None], 3, axis=2)).save(base / "Ground Truth" / f"{frame}.png")
        else:
            write_malformed_tif(base / "Original" / f"{frame}.tif", rgb(frame))
            tifffile.imwrite(base / "Ground Truth" / f"{frame}.tif", mask(frame), photometric="minisblack")
    return root


def subset_loader(root: Path) -> CVCClinicDB:
    return CVCClinicDB(root, n_frames=None)


# --- layouts ------------------------------------------------------------------------------------


def test_publisher_tiffs_with_malformed_bitspersample(tmp_path):
    root = make_cvc(tmp_path / "cvc")
    with pytest.raises(OSError, match="cannot identify"):  # the published RGB TIFFs defeat Pillow...
        Image.open(root / "Original" / "1.tif").load()
    loader = subset_loader(root)
    records = loader.records()
    assert [r.id for r in records] == [str(f) for f in FRAMES]
    assert [r.group for r in records] == [str(k) for k in (1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6)]
    assert {r.part for r in records} == {None}
    image = loader.read_image(records[0])  # ...but the loader reads them
    assert image.dtype == np.uint8 and image.shape == (H, W, 3)
    np.testing.assert_array_equal(image, rgb(1))
    label = loader.read_label(records[0])
    assert label.dtype == np.uint8 and set(np.unique(label)) == {0, 1}
    np.testing.assert_array_equal(label, (mask(1) > 127).astype(np.uint8))
    assert label[0, :4].tolist() == [0, 0, 0, 0] and label[12, 14:18].tolist() == [1, 1, 1, 1]


def test_png_repackage_with_colour_masks_and_odd_image_modes(tmp_path):
    root = make_cvc(tmp_path / "cvc", frames=(1, 2, 3, 30), layout="png")
    folder = root / "PNG" / "Original"
    Image.fromarray(np.dstack([rgb(2), np.full((H, W), 7, np.uint8)]), "RGBA").save(folder / "2.png")
    Image.fromarray(rgb(3)[..., 0].astype(np.uint16) * 257).save(folder / "3.png")  # 16-bit grayscale
    write_png16_rgb(folder / "30.png", rgb(30).astype(np.uint16) * 257)
    loader = subset_loader(root)
    records = {r.id: r for r in loader.records()}
    assert list(records) == ["1", "2", "3", "30"] and records["30"].group == "2"
    for key, expected in (("1", rgb(1)), ("2", rgb(2)), ("3", np.repeat(rgb(3)[..., :1], 3, axis=2)), ("30", rgb(30))):
        image = loader.read_image(records[key])
        assert image.dtype == np.uint8 and image.shape == (H, W, 3), key
        np.testing.assert_array_equal(image, expected)
    np.testing.assert_array_equal(loader.read_label(records["1"]), (mask(1) > 127).astype(np.uint8))


def test_sequence_mapping_of_all_612_frames_without_files(tmp_path):
    images = {str(i): tmp_path / f"{i}.tif" for i in range(1, 613)}
    groups = frame_sequences(images, tmp_path)
    sizes = pd.Series(groups).value_counts()
    assert len(sizes) == 29 and sizes.sum() == 612
    assert [sizes[str(k)] for k in range(1, 30)] == [last - first + 1 for first, last in CVC_SEQUENCE_RANGES]
    assert (groups["25"], groups["26"], groups["205"], groups["206"], groups["612"]) == ("1", "2", "10", "11", "29")
    assert cvc_sequence(1) == 1 and cvc_sequence(612) == 29
    with pytest.raises(DatasetError, match="outside"):
        cvc_sequence(613)
    del images["17"], images["300"]
    with pytest.raises(DatasetError, match=r"610 frames.*612.*17\.\*, 300\.\*"):
        frame_sequences(images, tmp_path)
    assert len(frame_sequences(images, tmp_path, n_frames=None)) == 610
    for bad in ("0", "613", "frame1"):
        with pytest.raises(DatasetError, match=f"{bad}.tif"):
            frame_sequences({**images, bad: tmp_path / f"{bad}.tif"}, tmp_path, n_frames=None)


def test_real_copy_must_hold_612_frames(tmp_path):
    root = make_cvc(tmp_path / "cvc", frames=(1, 2, 3))
    with pytest.raises(DatasetError, match=r"Original holds 3 frames but CVC-ClinicDB has 612; missing e\.g\. 4\.\*"):
        CVCClinicDB(root).records()


def test_procedural_synth_polyp_still_loads(tmp_path):
    table = generate(
        SynthPolypConfig(n_images=6, height=64, width=64, px_per_mm=2.0), 0, tmp_path / "synth", progress=False
    )
    loader = CVCClinicDB(tmp_path / "synth")  # the sidecar gives the groups: no 612-frame rule
    records = loader.records()
    assert [r.id for r in records] == [str(i) for i in range(1, 7)]
    assert [r.group for r in records] == table["sequence"].astype(str).tolist()
    for record in records:
        image, label = loader.read_image(record), loader.read_label(record)
        check_same_size(image, label, record)
        assert image.shape == (64, 64, 3) and label.dtype == np.uint8 and label.any()
    attributes = loader.attributes()
    assert attributes["id"].tolist() == [r.id for r in records] and "diameter_mm" in attributes


# --- problems on disk ---------------------------------------------------------------------------


def test_missing_root_and_empty_folders(tmp_path):
    with pytest.raises(DatasetError, match="nowhere.*does not exist"):
        CVCClinicDB(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match=r"empty has no 'Original/' and 'Ground Truth/'"):
        CVCClinicDB(tmp_path / "empty").records()
    (tmp_path / "empty" / "Original").mkdir()
    (tmp_path / "empty" / "Ground Truth").mkdir()
    with pytest.raises(DatasetError, match=r"empty/Original holds no image files"):
        CVCClinicDB(tmp_path / "empty").records()


def test_unpaired_files_are_named(tmp_path):
    root = make_cvc(tmp_path / "cvc", frames=(1, 2, 3))
    (root / "Ground Truth" / "2.tif").unlink()
    with pytest.raises(DatasetError, match=r"without a mask in .*Ground Truth, e\.g\. .*Original/2\.tif"):
        subset_loader(root).records()
    (root / "Original" / "2.tif").unlink()
    (root / "Original" / "3.tif").unlink()
    with pytest.raises(DatasetError, match=r"without an image in .*Original, e\.g\. .*Ground Truth/3\.tif"):
        subset_loader(root).records()


def test_duplicate_ids_and_junk_files(tmp_path):
    root = make_cvc(tmp_path / "cvc", frames=(1, 2))
    for folder in ("Original", "Ground Truth"):
        (root / folder / "Thumbs.db").write_bytes(b"\0junk")
        (root / folder / ".DS_Store").write_bytes(b"\0junk")
        (root / folder / "notes.txt").write_text("not an image")
    assert [r.id for r in subset_loader(root).records()] == ["1", "2"]
    Image.fromarray(rgb(1)).save(root / "Original" / "1.png")
    with pytest.raises(DatasetError, match=r"duplicate id '1' in .*Original: 1\.png and 1\.tif"):
        subset_loader(root).records()


def test_file_names_with_spaces_given_a_sidecar(tmp_path):
    root = tmp_path / "my copy"
    (root / "Original").mkdir(parents=True)
    (root / "Ground Truth").mkdir()
    for i, name in enumerate(("frame 1", "frame 2")):
        Image.fromarray(rgb(i)).save(root / "Original" / f"{name}.png")
        Image.fromarray(mask(i)).save(root / "Ground Truth" / f"{name}.png")
    with pytest.raises(DatasetError, match=r"Original/frame 1\.png: CVC-ClinicDB frames are named 1\.\.612"):
        CVCClinicDB(root).records()
    pd.DataFrame({"id": ["frame 1", "frame 2"], "sequence": [1, 2]}).to_csv(root / "attributes.csv", index=False)
    loader = CVCClinicDB(root)
    records = loader.records()
    assert [(r.id, r.group) for r in records] == [("frame 1", "1"), ("frame 2", "2")]
    assert loader.read_image(records[1]).shape == (H, W, 3) and loader.read_label(records[1]).sum() > 0


def test_truncated_image_is_named(tmp_path):
    root = make_cvc(tmp_path / "cvc", frames=(1, 2))
    path = root / "Original" / "2.tif"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    loader = subset_loader(root)
    with pytest.raises(DatasetError, match=r"cannot read .*Original/2\.tif.*truncated"):
        loader.read_image(loader.records()[1])


def test_mask_of_another_size_is_named(tmp_path):
    root = make_cvc(tmp_path / "cvc", frames=(1, 2))
    tifffile.imwrite(root / "Ground Truth" / "2.tif", np.pad(mask(2), ((0, 2), (0, 0))), photometric="minisblack")
    loader = subset_loader(root)
    record = loader.records()[1]
    with pytest.raises(DatasetError, match=r"Ground Truth/2\.tif is 48x42 but .*Original/2\.tif is 48x40"):
        check_same_size(loader.read_image(record), loader.read_label(record), record)


def test_mask_without_polyp_is_named(tmp_path):
    root = make_cvc(tmp_path / "cvc", frames=(1, 2))
    tifffile.imwrite(root / "Ground Truth" / "1.tif", np.zeros((H, W), np.uint8), photometric="minisblack")
    tifffile.imwrite(
        root / "Ground Truth" / "2.tif", (mask(2, stray=False) > 0).astype(np.uint8), photometric="minisblack"
    )
    loader = subset_loader(root)
    first, second = loader.records()
    with pytest.raises(DatasetError, match=r"Ground Truth/1\.tif holds no polyp"):
        loader.read_label(first)
    with pytest.raises(DatasetError, match=r"Ground Truth/2\.tif holds no polyp .*largest value 1: a 0/1 mask"):
        loader.read_label(second)


# --- through prepare ----------------------------------------------------------------------------

OPTIONS = PrepareOptions(
    image_size=16,
    val_fraction=0.25,
    split_seed=0,
    fundus_target="cup",
    fundus_crop_scale=2.0,
    min_lesion_fraction=0.0005,
)


@pytest.fixture
def cvc_spec(monkeypatch):
    spec = DatasetSpec(
        loader=CVCClinicDB, description="CVC fixture", test_fraction=1 / 3, loader_options=(("n_frames", None),)
    )
    monkeypatch.setitem(benchmark.data.DATASETS, "cvc_fixture", spec)


def test_prepare_splits_by_sequence(tmp_path, cvc_spec):
    root = make_cvc(tmp_path / "cvc")
    manifest = prepare_dataset(
        "cvc_fixture", root, tmp_path / "prepared", tmp_path / "split.json", OPTIONS, progress=False
    )
    assert manifest["counts"] == {"train": 6, "val": 2, "test": 4} and manifest["n_images"] == 12
    table = pd.read_csv(tmp_path / "prepared" / "attributes.csv", dtype={"id": str, "group": str})
    sides = table.groupby("group")["split"].nunique()
    assert (sides == 1).all(), "a sequence sits on both sides of the split"
    with np.load(tmp_path / "prepared" / "arrays.npz") as arrays:
        assert arrays["images"].shape == (12, 16, 16, 3) and arrays["masks"].max() == 1


def test_prepare_leaves_nothing_behind_on_broken_input(tmp_path, cvc_spec):
    root = make_cvc(tmp_path / "cvc")
    path = root / "Original" / "79.tif"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(DatasetError, match=r"Original/79\.tif"):
        prepare_dataset("cvc_fixture", root, out / "prepared", out / "split.json", OPTIONS, progress=False)
    assert list(out.iterdir()) == []
