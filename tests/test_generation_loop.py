"""The quality gate on hand-made masks and the generation–validation loop's bookkeeping."""

import functools

import numpy as np
import pytest
from prepared_fixtures import write_prepared

from benchmark.generators.jobs import draw_jobs
from benchmark.generators.loop import gate, iterate_jobs, mask_iou, new_lesion_iou, run_loop
from benchmark.generators.placement import gate_region, union_label


def test_gate_on_hand_made_masks():
    intended = np.zeros((4, 4, 4), np.uint8)
    intended[:, :2, :2] = 1  # 4 pixels
    everywhere = np.ones_like(intended)  # lesion-free backgrounds: the gate scores every pixel
    probabilities = np.zeros((4, 4, 4))
    probabilities[0, :2, :2] = 0.9  # exact: IoU 1
    probabilities[1, :2, :1] = 0.9  # half: IoU 2/4
    probabilities[2, :2, :2] = 0.9
    probabilities[2, 2, :] = 0.6  # 4 extra: IoU 4/8
    probabilities[3, :2, :2] = 0.49  # below 0.5: empty prediction, IoU 0
    iou, accepted = gate(probabilities, intended, everywhere, 0.7)
    np.testing.assert_allclose(iou, [1, 0.5, 0.5, 0])
    np.testing.assert_array_equal(accepted, [True, False, False, False])
    # IoU exactly at theta is rejected (strict inequality of the paper)
    assert not gate(probabilities[1:2], intended[1:2], everywhere[1:2], 0.5)[1][0]
    assert mask_iou(np.zeros((1, 3, 3)), np.zeros((1, 3, 3)))[0] == 1.0
    # a new mask with nothing inside the scored region can never pass (not "both empty -> 1")
    assert new_lesion_iou(np.zeros((1, 4, 4)), intended[:1], np.zeros((1, 4, 4)))[0] == 0.0
    with pytest.raises(ValueError, match="theta"):
        gate(probabilities, intended, everywhere, 1.0)


def _disc(size, radius, centre):
    rows, cols = np.mgrid[:size, :size]
    return (rows - centre[0]) ** 2 + (cols - centre[1]) ** 2 <= radius**2


def test_unpainted_polyp_background_with_a_large_own_lesion_passes_the_union_gate_not_the_new_one():
    """Real polyp data: the background's own polyp is 4x the new mask and the validator finds only it."""
    size = 32
    own = _disc(size, 8, (10, 10)).astype(np.uint8)  # ~200 px, segmented well
    new = _disc(size, 4, (24, 24)).astype(np.uint8)  # ~50 px, placed clear of it; nothing was painted
    assert own.sum() > 2.3 * new.sum()
    prediction = own.astype(np.float32)[None]  # the validator sees the own polyp and nothing where M_i is
    union = union_label(own, new)[None]
    assert mask_iou(prediction >= 0.5, union)[0] > 0.7  # eq. 14 on the union label: accepted
    scored = gate_region(own, "polyp")[None]
    assert not (new.astype(bool) & ~scored[0]).any()  # the new mask lies wholly in the scored region
    iou, accepted = gate(prediction, new[None], scored, 0.7)
    assert iou[0] == 0.0 and not accepted[0]
    # ...and when the new polyp IS drawn (and found), the new gate accepts it
    painted = np.maximum(own, new).astype(np.float32)[None]
    iou, accepted = gate(painted, new[None], scored, 0.7)
    assert iou[0] == 1.0 and accepted[0]


def test_unchanged_physiological_cup_passes_the_union_gate_not_the_new_one():
    """Fundus twins: the own cup (vCDR 0.45) sits inside the new enlarged cup (0.52); nothing was painted."""
    size = 64
    centre = (32, 32)
    disc = _disc(size, 25, centre)
    own = _disc(size, 0.45 * 25, centre) & disc
    new = _disc(size, 0.52 * 25, centre) & disc
    prediction = own.astype(np.float32)[None]  # the validator finds the unchanged physiological cup
    union = union_label(own, new)[None]
    assert mask_iou(prediction >= 0.5, union)[0] > 0.7  # about (0.45 / 0.52)^2 = 0.75: accepted by eq. 14
    scored = gate_region(own, "fundus")[None]
    iou, accepted = gate(prediction, new[None].astype(np.uint8), scored, 0.7)
    assert iou[0] == 0.0 and not accepted[0]
    iou, accepted = gate(new.astype(np.float32)[None], new[None].astype(np.uint8), scored, 0.7)  # enlarged cup drawn
    assert iou[0] == 1.0 and accepted[0]


def test_loop_records_both_ious_and_gates_on_the_new_lesion(tmp_path):
    """On real data (no twins) an unpainted sample whose own lesion the validator finds is rejected."""
    dataset = write_prepared(tmp_path, "polyp", n=24, twins=False)
    draw = functools.partial(draw_jobs, dataset, seed=0)

    def unpainted(jobs):
        return jobs.backgrounds.copy()

    def finds_own_lesion_only(images):  # a validator that sees each background's own lesion and nothing else
        return np.stack([label.astype(np.float32) for label in own_labels[: len(images)]])

    jobs = next(iterate_jobs(draw, n_variants=1, batch_size=200))
    own_labels = [label & ~mask for label, mask in zip(jobs.labels, jobs.masks)]
    table, *_ = run_loop(unpainted, finds_own_lesion_only, iter([jobs]), target=1, theta=0.7, progress=False)
    assert {"iou", "iou_union", "accepted"} <= set(table.columns)
    assert not table["accepted"].any() and (table["iou"] == 0).all()
    assert (table["iou_union"] > 0).all()


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return write_prepared(tmp_path_factory.mktemp("loop"), "polyp", n=24)


def _fake(jobs, keep_every=2):
    """Generator: paints the mask; validator: returns the mask for every other job, else nothing."""
    images = jobs.backgrounds.copy()
    images[jobs.masks.astype(bool)] = 255
    return images


def _segment_every_other(images):
    probabilities = (images[..., 0] == 255).astype(np.float32)
    probabilities[1::2] = 0
    return probabilities


def test_loop_stops_at_target_and_records_everything(dataset):
    draw = functools.partial(draw_jobs, dataset, seed=0)
    batches = iterate_jobs(draw, n_variants=4, batch_size=5)
    table, images, labels, masks, timings = run_loop(
        _fake, _segment_every_other, batches, target=7, theta=0.7, progress=False
    )
    assert table["accepted"].sum() >= 7 and len(table) == len(images) == len(labels) == len(masks)
    assert len(table) <= 7 * 2 + 5  # stopped within one batch of the target
    assert (table.loc[table["accepted"], "iou"] > 0.7).all() and (table.loc[~table["accepted"], "iou"] <= 0.7).all()
    assert list(table["order"]) == list(range(len(table)))
    # variant-major: every background's first variant comes before any second variant
    first_second = table.index[table["variant"] == 1]
    assert len(first_second) == 0 or (table.loc[: first_second[0] - 1, "variant"] == 0).all()
    assert set(timings) == {"generate_s", "validate_s"}


def test_no_regeneration_without_top_up_and_top_up_reaches_target(dataset):
    draw = functools.partial(draw_jobs, dataset, seed=0)
    planned = 12 * 2  # 12 backgrounds x 2 variants
    table, *_ = run_loop(
        _fake, _segment_every_other, iterate_jobs(draw, 2, 5, top_up_rounds=3), target=100, theta=0.7, progress=False
    )
    assert len(table) == planned and not table["top_up"].any()
    table, *_ = run_loop(
        _fake,
        _segment_every_other,
        iterate_jobs(draw, 2, 5, top_up_rounds=3),
        target=15,
        theta=0.7,
        top_up=True,
        progress=False,
    )
    assert table["accepted"].sum() >= 15 and table["top_up"].any()


def test_loop_is_reproducible(dataset):
    draw = functools.partial(draw_jobs, dataset, seed=3)
    runs = [
        run_loop(_fake, _segment_every_other, iterate_jobs(draw, 3, 4), target=9, theta=0.7, progress=False)
        for _ in range(2)
    ]
    assert runs[0][0].equals(runs[1][0])
    np.testing.assert_array_equal(runs[0][1], runs[1][1])


def test_accepted_subset_takes_prefixes_and_reports_shortfall(tmp_path):
    import pandas as pd

    from benchmark.generators.loop import accepted_subset

    table = pd.DataFrame({"order": range(6), "accepted": [True, False, True, True, False, True]})
    table.to_csv(tmp_path / "manifest.csv", index=False)
    images = np.arange(6, dtype=np.uint8).reshape(6, 1, 1, 1) * np.ones((6, 2, 2, 3), np.uint8)
    np.savez(tmp_path / "samples.npz", images=images, labels=np.ones((6, 2, 2), np.uint8))
    half = accepted_subset(tmp_path, 0.5, 4)  # 2 samples
    assert half.ids == ("syn0", "syn2") and half.images[:, 0, 0, 0].tolist() == [0, 2]
    assert accepted_subset(tmp_path, 1.0, 4).ids[:2] == half.ids  # prefixes
    with pytest.raises(ValueError, match="holds 4 accepted"):
        accepted_subset(tmp_path, 2.0, 4)
    with pytest.warns(UserWarning, match="only 4"):
        assert len(accepted_subset(tmp_path, 2.0, 4, strict=False)) == 4
