"""Training pairs and inpainting jobs drawn from a prepared dataset."""

import numpy as np
import pytest
from prepared_fixtures import write_prepared

from benchmark.generators.jobs import FUNDUS_MIN_GROWTH, draw_jobs, training_examples
from benchmark.generators.placement import field_of_view


@pytest.fixture(scope="module")
def polyp(tmp_path_factory):
    return write_prepared(tmp_path_factory.mktemp("p"), "polyp")


@pytest.fixture(scope="module")
def fundus(tmp_path_factory):
    return write_prepared(tmp_path_factory.mktemp("f"), "fundus")


def test_training_examples_pair_images_twins_masks_and_prompts(polyp):
    examples = training_examples(polyp, seed=1)
    train = polyp.subset("train")
    assert len(examples) == len(train)
    np.testing.assert_array_equal(examples.normal_images, polyp.normal_images(list(train.ids)))
    assert all("polyp" in p or "lesion" in p for p in examples.prompts)
    assert examples.negative_prompt == "healthy mucosa"
    assert training_examples(polyp, seed=1).prompts == examples.prompts
    assert set(training_examples(polyp, variant="basic").prompts) == {"a colonoscopy image of a polyp"}


def test_polyp_jobs_on_twins_stay_in_view_and_label_is_the_new_lesion(polyp):
    jobs = draw_jobs(polyp, n_variants=3, seed=0)
    assert len(jobs) == 3 * 12 and list(jobs.table["job"]) == list(range(len(jobs)))
    for background, mask, label in zip(jobs.backgrounds, jobs.masks, jobs.labels):
        assert mask.any() and not (mask.astype(bool) & ~field_of_view(background)).any()
        np.testing.assert_array_equal(label, mask)  # polyp twins are lesion-free
    assert jobs.scored.all()  # ...so the gate scores every pixel
    assert (jobs.table["donor_id"] != jobs.table["background_id"]).all()
    again = draw_jobs(polyp, n_variants=3, seed=0)
    np.testing.assert_array_equal(again.masks, jobs.masks)
    assert list(again.table["prompt"]) == list(jobs.table["prompt"])
    # a background's jobs do not depend on which other backgrounds are drawn
    one = draw_jobs(polyp, n_variants=3, seed=0, background_ids=[jobs.table["background_id"].iloc[5]])
    np.testing.assert_array_equal(one.masks, jobs.masks[3:6])


def test_real_data_without_twins_paints_outside_the_lesion_and_keeps_it_in_the_label(tmp_path):
    dataset = write_prepared(tmp_path, "polyp", twins=False)
    jobs = draw_jobs(dataset, n_variants=2, seed=0)
    train = dataset.subset("train")
    own = {key: mask for key, mask in zip(train.ids, train.masks)}
    for key, mask, label in zip(jobs.table["background_id"], jobs.masks, jobs.labels):
        assert not (mask.astype(bool) & own[key].astype(bool)).any()
        np.testing.assert_array_equal(label, own[key] | mask)
    for key, mask, scored in zip(jobs.table["background_id"], jobs.masks, jobs.scored):
        assert not (scored.astype(bool) & own[key].astype(bool)).any()  # the gate never scores the own lesion
        assert (mask <= scored).all()  # ...and sees the whole new one


def test_fundus_jobs_use_glaucomatous_donors_inside_the_disc(fundus):
    jobs = draw_jobs(fundus, n_variants=2, seed=0)
    strata = fundus.attributes.set_index("id")["stratum"]
    assert set(strata.loc[jobs.table["donor_id"]]) <= {"early", "advanced"}
    labels = fundus.normal_labels(list(fundus.subset("train").ids))
    disc = labels[0] >= 1  # every tiny fundus image has the same disc
    for mask, label in zip(jobs.masks, jobs.labels):
        assert not (mask.astype(bool) & ~disc).any()
        assert (label.astype(bool) >= (labels[0] == 2)).all()  # the twin's own cup stays in the label
    assert jobs.table["prompt"].str.contains("cup|cupping|rim").all()
    # every placed cup enlarges the twin's own: the gate scores the ring outside the own cup
    own_cup = labels[0] == 2
    for mask, scored in zip(jobs.masks, jobs.scored):
        np.testing.assert_array_equal(scored.astype(bool), ~own_cup)
        assert (mask.astype(bool) & ~own_cup).sum() >= FUNDUS_MIN_GROWTH * mask.sum()
    np.testing.assert_array_equal(jobs.table["own_area_px"], own_cup.sum())


def test_fundus_backgrounds_whose_own_cup_is_larger_get_no_job(fundus):
    from benchmark.generators.jobs import _enlarges_cup

    disc = np.zeros((32, 32), bool)
    disc[4:28, 4:28] = True
    own = np.zeros_like(disc)
    own[8:24, 8:24] = True  # a large own cup
    inside = np.zeros((32, 32), np.uint8)
    inside[10:22, 10:22] = 1  # a placed cup wholly inside it: nothing new
    assert not _enlarges_cup(inside, own, disc, int((inside.astype(bool) & ~own).sum()))
    bigger = np.zeros((32, 32), np.uint8)
    bigger[6:26, 6:26] = 1
    assert _enlarges_cup(bigger, own, disc, int((bigger.astype(bool) & ~own).sum()))


def test_jobs_refuse_the_test_split_and_bad_ids(polyp):
    with pytest.raises(ValueError, match="test split"):
        draw_jobs(polyp, n_variants=1, seed=0, part="test")
    with pytest.raises(ValueError, match="not in the train split"):
        draw_jobs(polyp, n_variants=1, seed=0, background_ids=["nope"])
