"""``prepare.workers``: prepare in worker processes writes the same bytes as in one process, and a
broken file read in a worker fails with the same message, naming it."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from benchmark.data import DatasetError
from benchmark.data.prepare import PrepareOptions, prepare_dataset
from benchmark.data.procedural.fundus import SynthFundusConfig
from benchmark.data.procedural.fundus import generate as generate_fundus
from benchmark.data.procedural.polyp import SynthPolypConfig
from benchmark.data.procedural.polyp import generate as generate_polyp

OUTPUTS = ("arrays.npz", "native_masks.npz", "attributes.csv", "manifest.json")
OPTIONS = PrepareOptions(
    image_size=16,
    val_fraction=0.25,
    split_seed=0,
    fundus_target="cup",
    fundus_crop_scale=2.0,
    min_lesion_fraction=0.0005,
)
N_IMAGES = 12


def make_kvasir(root: Path) -> Path:
    """``root/Kvasir-SEG`` as published: 12 JPEG pairs of different sizes, one or two polyps each."""
    folder, rng, boxes = root / "Kvasir-SEG", np.random.default_rng(0), {}
    for index in range(N_IMAGES):
        key, height, width = f"cju{index:03d}", 40 + 4 * index, 56 - 2 * index
        image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        mask = np.zeros((height, width), np.uint8)
        mask[5:20, 6:24] = 255
        if index % 3 == 0:  # a second polyp: more than one component
            mask[height - 12 : height - 4, width - 12 : width - 4] = 255
        for sub, array in (("images", image), ("masks", mask)):
            (folder / sub).mkdir(parents=True, exist_ok=True)
            Image.fromarray(array).convert("RGB").save(folder / sub / f"{key}.jpg", quality=80)
        boxes[key] = {"height": height, "width": width, "bbox": []}
    (folder / "kavsir_bboxes.json").write_text(json.dumps(boxes))
    return folder


def prepare_twice(name: str, root: Path, out: Path) -> tuple[Path, Path]:
    """``name`` prepared with workers=1 and workers=2 into ``out/w1`` and ``out/w2``."""
    folders = []
    for workers in (1, 2):
        folder = out / f"w{workers}"
        options = dataclasses.replace(OPTIONS, workers=workers)
        prepare_dataset(name, root, folder / "prepared", folder / "split.json", options, progress=False)
        folders.append(folder)
    return folders[0], folders[1]


def assert_same_bytes(serial: Path, parallel: Path) -> None:
    assert json.loads((serial / "prepared" / "manifest.json").read_text())["n_images"] > 1
    for name in OUTPUTS:
        assert (serial / "prepared" / name).read_bytes() == (parallel / "prepared" / name).read_bytes(), name
    assert (serial / "split.json").read_bytes() == (parallel / "split.json").read_bytes()


def test_kvasir_seg_same_bytes_with_two_workers(tmp_path):
    root = make_kvasir(tmp_path / "data")
    serial, parallel = prepare_twice("kvasir_seg", root, tmp_path)
    assert_same_bytes(serial, parallel)
    with np.load(parallel / "prepared" / "native_masks.npz") as native:  # native masks survive the bit-packed trip
        assert native["cju011"].shape == (84, 34) and native["cju011"].dtype == bool


@pytest.mark.parametrize("name", ["synth_polyp", "synth_fundus"])
def test_twins_and_disc_crops_same_bytes_with_two_workers(tmp_path, name):
    """Procedural copies carry lesion-free twins (Normal/), and fundus images are cropped around the disc."""
    root = tmp_path / "data"
    if name == "synth_polyp":
        generate_polyp(SynthPolypConfig(n_images=10, height=64, width=64, px_per_mm=2.0), 0, root, progress=False)
    else:
        generate_fundus(SynthFundusConfig(n_train=4, n_validation=2, n_test=2, size=64), 0, root, progress=False)
    serial, parallel = prepare_twice(name, root, tmp_path)
    assert_same_bytes(serial, parallel)
    with np.load(parallel / "prepared" / "arrays.npz") as arrays:
        assert "normal_images" in arrays and len(arrays["normal_labels"]) == len(arrays["ids"])


def test_broken_image_read_in_a_worker_is_named(tmp_path):
    root = make_kvasir(tmp_path / "data")
    broken = root / "images" / "cju009.jpg"  # 12 records in chunks of 2: read by a worker, not first
    broken.write_bytes(broken.read_bytes()[:40])
    out = tmp_path / "out"
    out.mkdir()
    options = dataclasses.replace(OPTIONS, workers=2)
    with pytest.raises(DatasetError, match=rf"cannot read {re.escape(str(broken))}: .* re-download it"):
        prepare_dataset("kvasir_seg", root, out / "prepared", out / "split.json", options, progress=False)
    assert list(out.iterdir()) == []
