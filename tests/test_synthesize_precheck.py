"""The synthesize stage's up-front check of the gate's ceiling, and the one shared lesion-image rule."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from benchmark.data.prepared import shows_lesion
from benchmark.stages.synthesize import check_validator_ceiling


def _metrics(tmp_path, rate, n=40, theta=0.7):
    path = tmp_path / "metrics.json"
    path.write_text(json.dumps({"pass_rate": rate, "n_lesion_images": n, "theta": theta}))
    return path


def test_weak_validator_stops_before_generating(tmp_path):
    with pytest.raises(ValueError, match=r"5\.0% of 40 real validation lesion images.*validator\.epochs"):
        check_validator_ceiling(_metrics(tmp_path, 0.05), 0.1, "cvc_clinicdb")


def test_strong_enough_validator_prints_its_ceiling(tmp_path):
    line = check_validator_ceiling(_metrics(tmp_path, 0.338, 68), 0.1, "synth_polyp")
    assert "33.8% of 68" in line and "θ = 0.7" in line


def test_zero_minimum_never_stops(tmp_path):
    assert "0.0% of 40" in check_validator_ceiling(_metrics(tmp_path, 0.0), 0.0, "x")


def test_missing_metrics_names_the_stage(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"dvc repro validator@kvasir_seg"):
        check_validator_ceiling(tmp_path / "absent.json", 0.1, "kvasir_seg")


def test_unknown_ceiling_does_not_stop(tmp_path):
    assert "unknown" in check_validator_ceiling(_metrics(tmp_path, float("nan"), 0), 0.1, "x")


@pytest.mark.parametrize(
    ("row", "mask", "modality", "expected"),
    [
        ({}, np.ones((4, 4)), "polyp", True),
        ({}, np.zeros((4, 4)), "polyp", False),
        ({"vcdr": 0.55, "glaucoma": False}, np.ones((4, 4)), "fundus", True),  # vCDR first
        ({"vcdr": 0.35, "glaucoma": True}, np.ones((4, 4)), "fundus", False),
        ({"vcdr": np.nan, "glaucoma": "True"}, np.ones((4, 4)), "fundus", True),  # REFUGE2 Kaggle: vCDR only
        ({"vcdr": np.nan, "glaucoma": pd.NA}, np.ones((4, 4)), "fundus", True),  # neither: any cup
        ({"vcdr": np.nan, "glaucoma": pd.NA}, np.zeros((4, 4)), "fundus", False),
    ],
)
def test_one_lesion_image_rule(row, mask, modality, expected):
    assert shows_lesion(pd.Series(row, dtype=object), mask, modality) is expected


def test_quality_reads_vcdr_when_the_glaucoma_label_is_missing(tmp_path):
    """REFUGE2's Kaggle layout has no glaucoma labels: Table 5's real lesion images come from vCDR,
    the same rule the job drawing uses (the stage once stopped with "no real training image shows the lesion")."""
    from prepared_fixtures import write_prepared

    from benchmark.stages.quality import real_lesion_images

    dataset = write_prepared(tmp_path, "fundus")
    table = dataset.attributes
    table["glaucoma"] = pd.NA  # as the Kaggle re-package: unknown
    table.to_csv(dataset.directory / "attributes.csv", index=False)
    dataset = type(dataset)(dataset.directory, dataset.split_path)
    train_vcdr = table.set_index("id").loc[list(dataset.subset("train").ids), "vcdr"]
    assert len(real_lesion_images(dataset)) == int((train_vcdr >= 0.5).sum()) > 0


def test_job_donors_follow_the_same_rule(tmp_path):
    """Fundus donors are exactly the training images that show the lesion (enlarged cups)."""
    from prepared_fixtures import write_prepared

    from benchmark.data.prepared import lesion_image_mask
    from benchmark.generators.jobs import draw_jobs

    dataset = write_prepared(tmp_path, "fundus")
    jobs = draw_jobs(dataset, seed=0, variant="diverse", part="train", n_variants=2)
    train = dataset.subset("train")
    lesion_ids = {key for key, keep in zip(train.ids, lesion_image_mask(dataset, "train")) if keep}
    assert set(jobs.table["donor_id"]) <= lesion_ids and len(set(jobs.table["donor_id"])) > 1
