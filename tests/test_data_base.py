"""Image decoding shared by every loader: palette, 16-bit, RGBA, TIFF, and clear errors."""

import numpy as np
import pytest
import tifffile
from PIL import Image

from benchmark.data import DATASETS
from benchmark.data.base import DatasetError, read_gray, read_rgb


def test_palette_mask_decodes_to_grey_values(tmp_path):
    values = np.array([[0, 128], [255, 128]], np.uint8)
    image = Image.fromarray(values).convert("P")
    image.save(tmp_path / "mask.png")
    np.testing.assert_array_equal(read_gray(tmp_path / "mask.png"), values)


def test_sixteen_bit_tiff_and_png(tmp_path):
    rgb16 = np.arange(4 * 5 * 3, dtype=np.uint16).reshape(4, 5, 3) * 1000
    tifffile.imwrite(tmp_path / "a.tif", rgb16, photometric="rgb")
    assert read_rgb(tmp_path / "a.tif").dtype == np.uint8
    np.testing.assert_array_equal(read_rgb(tmp_path / "a.tif"), (rgb16 // 257).astype(np.uint8))
    grey16 = np.full((3, 3), 65535, np.uint16)
    Image.fromarray(grey16).save(tmp_path / "g.png")
    np.testing.assert_array_equal(read_gray(tmp_path / "g.png"), np.full((3, 3), 255, np.uint8))


def test_rgba_drops_alpha(tmp_path):
    rgba = np.zeros((2, 2, 4), np.uint8)
    rgba[..., 0], rgba[..., 3] = 200, 10
    Image.fromarray(rgba, "RGBA").save(tmp_path / "x.png")
    out = read_rgb(tmp_path / "x.png")
    assert out.shape == (2, 2, 3) and (out[..., 0] == 200).all()


def test_truncated_and_non_image_files_name_the_file(tmp_path):
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(tmp_path / "t.jpg")
    data = (tmp_path / "t.jpg").read_bytes()
    (tmp_path / "t.jpg").write_bytes(data[: len(data) // 2])
    with pytest.raises(DatasetError, match=r"t\.jpg.*corrupt or truncated"):
        read_rgb(tmp_path / "t.jpg")
    (tmp_path / "n.png").write_text("not an image")
    with pytest.raises(DatasetError, match=r"n\.png"):
        read_gray(tmp_path / "n.png")


def test_every_registry_entry_names_a_loader_and_protocol():
    for name, spec in DATASETS.items():
        assert spec.loader.modality in ("polyp", "fundus"), name
        assert spec.description and spec.split_protocol(grouped=True), name
        if not spec.keep_groups_together:
            assert "LEAKS" in spec.split_protocol(grouped=True)
