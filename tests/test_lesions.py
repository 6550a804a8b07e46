"""Lesion-level detection on hand-made masks (rules of DATASETS.md)."""

import numpy as np
import pytest

from benchmark.metrics.evaluate import score_images_and_lesions
from benchmark.metrics.lesions import lesion_detections


def _square(shape, top, left, size):
    mask = np.zeros(shape, dtype=bool)
    mask[top : top + size, left : left + size] = True
    return mask


def test_detected_missed_and_partial():
    target = _square((40, 40), 2, 2, 10) | _square((40, 40), 25, 25, 6)  # 100 px and 36 px lesions
    prediction = _square((40, 40), 2, 2, 10) | _square((40, 40), 25, 25, 2)  # second: 4 of 36 px
    records = lesion_detections(prediction, target, min_area_fraction=0.0)
    assert [r["area_px"] for r in records] == [100, 36]  # sorted by area, numbered from 1
    assert [r["lesion"] for r in records] == [1, 2]
    assert records[0]["best_iou"] == 1.0 and records[0]["detected"]
    assert records[1]["best_iou"] == pytest.approx(4 / 36)
    assert not records[1]["detected"] and records[1]["any_overlap"]


def test_best_component_is_chosen_and_eight_connectivity():
    target = _square((30, 30), 0, 0, 10)
    # two predicted blobs on the lesion: IoU 50/100 = 0.5 (detected) and 10/100
    prediction = np.zeros((30, 30), dtype=bool)
    prediction[0:5, 0:10] = True
    prediction[8:9, 0:10] = True
    record = lesion_detections(prediction, target, min_area_fraction=0.0)[0]
    assert record["best_iou"] == pytest.approx(0.5) and record["detected"]
    # diagonal touching pixels form one lesion under 8-connectivity
    diagonal = np.zeros((10, 10), dtype=bool)
    diagonal[2, 2] = diagonal[3, 3] = True
    assert len(lesion_detections(np.zeros_like(diagonal), diagonal, min_area_fraction=0.0)) == 1


def test_specks_ignored_empty_and_shape_error():
    target = _square((100, 100), 10, 10, 20) | _square((100, 100), 80, 80, 1)  # 1 px speck = 0.0001
    assert len(lesion_detections(target, target, min_area_fraction=0.0005)) == 1
    assert lesion_detections(target, np.zeros_like(target)) == []
    missed = lesion_detections(np.zeros_like(target), target)[0]
    assert missed["best_iou"] == 0.0 and not missed["detected"] and not missed["any_overlap"]
    with pytest.raises(ValueError, match="shape"):
        lesion_detections(np.zeros((3, 3)), np.zeros((4, 4)))


def test_score_images_and_lesions_upsamples_then_detects():
    native = {"a": _square((32, 32), 8, 8, 16)}
    probability = np.zeros((1, 16, 16), dtype=np.float32)
    probability[0, 4:12, 4:12] = 1.0
    per_image, lesions = score_images_and_lesions(probability, ["a"], native, 0.5)
    assert per_image.loc[0, "dice"] > 0.9
    assert list(lesions["image_id"]) == ["a"] and bool(lesions.loc[0, "detected"])
