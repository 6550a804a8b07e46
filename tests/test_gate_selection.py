"""Table 5's "what the gate selects": acceptance by stratum and the validator's real-image ceiling, on hand-made tables."""

import numpy as np
import pandas as pd
import pytest

from benchmark.quality.strata import acceptance_by_stratum, strata
from benchmark.stages.validator import real_pass_rates


def test_acceptance_by_stratum_on_a_hand_made_manifest():
    table = pd.DataFrame(
        {
            "mask_area_px": [10, 12, 14, 40, 42, 44, 90, 95, 99],
            "donor_id": ["a", "b", "c"] * 3,
            "accepted": [False, False, True, True, False, True, True, True, True],
            "iou": [0.1, 0.2, 0.8, 0.9, 0.5, 0.75, 0.95, 0.9, 0.85],
            "iou_union": [0.8, 0.2, 0.8, 0.9, 0.5, 0.75, 0.95, 0.9, 0.85],
        }
    )
    attributes = pd.DataFrame({"id": ["a", "b", "c"], "paris_type": ["0-Is", "0-IIa", "0-Ip"]})
    out = acceptance_by_stratum(table, attributes).set_index(["kind", "stratum"])
    sizes = out.loc["size"]
    assert list(sizes["n"]) == [3, 3, 3]  # tertiles, smallest first
    np.testing.assert_allclose(sizes["acceptance_rate"], [1 / 3, 2 / 3, 1.0])
    assert sizes["iou_accepted"].iloc[0] == pytest.approx(0.8) and sizes["iou_rejected"].iloc[0] == pytest.approx(0.15)
    assert np.isnan(sizes["iou_rejected"].iloc[2])  # nothing rejected among the largest
    assert sizes["iou_union_rejected"].iloc[0] == pytest.approx(0.5)
    types = out.loc["type"]
    assert types.loc["Paris 0-Is", "n"] == 3 and types.loc["Paris 0-Is", "acceptance_rate"] == pytest.approx(2 / 3)
    assert types.loc["Paris 0-IIa", "acceptance_rate"] == pytest.approx(1 / 3)


def test_vcdr_bands_and_flatness():
    table = pd.DataFrame(
        {
            "mask_area_px": [5, 6, 7, 8],
            "donor_id": ["x", "y", "x", "y"],
            "accepted": [True, False, True, True],
            "iou": [0.8, 0.3, 0.9, 0.75],
            "target_vcdr": [0.45, 0.55, 0.65, 0.6],
        }
    )
    groups = strata(table, pd.DataFrame({"id": ["x", "y"], "flat": [True, False]}))
    assert list(groups["vcdr"]) == ["normal (< 0.5)", "early (0.5–0.6)", "advanced (≥ 0.6)", "advanced (≥ 0.6)"]
    assert list(groups["type"]) == ["flat", "not flat", "flat", "not flat"]


def test_real_pass_rate_counts_lesion_images_only():
    masks = np.zeros((5, 4, 4), np.uint8)
    masks[:4, :2, :2] = 1  # four lesion images, one empty
    iou = np.array([0.9, 0.71, 0.7, 0.2, 1.0])  # the empty image's IoU 1 must not count
    rates = real_pass_rates(iou, masks, 0.7, thetas=[0.5, 0.9])
    assert rates["n_lesion_images"] == 4 and rates["pass_rate"] == pytest.approx(0.5)  # strictly above θ
    assert rates["pass_rate_by_theta"] == {"0.5": 0.75, "0.7": 0.5, "0.9": 0.0}
    assert np.isnan(real_pass_rates(np.ones(2), np.zeros((2, 3, 3)), 0.7)["pass_rate"])
