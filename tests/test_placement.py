"""Where new lesions go: field of view, donor transforms, placement inside allowed regions, labels."""

import numpy as np
import pytest

from benchmark.generators.placement import (
    donor_components,
    field_of_view,
    fundus_allowed_region,
    place_mask,
    polyp_allowed_region,
    transform_component,
    union_label,
    vertical_cdr,
)


def test_field_of_view_excludes_black_border_and_erodes():
    image = np.zeros((20, 20, 3), np.uint8)
    image[4:16, 4:16] = 100
    fov = field_of_view(image, erode_px=1)
    assert fov.sum() == 10 * 10 and fov[5:15, 5:15].all()
    assert not field_of_view(np.zeros((8, 8, 3), np.uint8)).any()


def test_donor_components_split_lesions_and_crop():
    mask = np.zeros((1, 10, 10), np.uint8)
    mask[0, 1:3, 1:4] = 1  # 2 x 3
    mask[0, 6:9, 6:8] = 1  # 3 x 2
    mask[0, 0, 9] = 1  # a speck, skipped
    donors = donor_components(mask, min_pixels=2)
    assert [d.shape for d in donors] == [(2, 3), (3, 2)] and all(d.all() for d in donors)


def test_transform_component_scale_and_rotation():
    bar = np.ones((2, 6), bool)
    assert transform_component(bar, 1.0, 90.0).shape == (6, 2)
    assert transform_component(bar, 2.0, 0.0).sum() == pytest.approx(4 * 12, rel=0.2)
    with pytest.raises(ValueError, match="scale"):
        transform_component(bar, 0.0, 0.0)


def test_place_mask_stays_inside_allowed_and_is_reproducible():
    allowed = np.zeros((32, 32), bool)
    allowed[5:20, 8:30] = True
    donor = np.ones((5, 7), bool)
    for seed in range(20):
        placement = place_mask(donor, allowed, np.random.default_rng(seed))
        assert placement is not None
        assert not (placement.mask.astype(bool) & ~allowed).any()
        assert 0.75 * 0.75 * 35 * 0.6 < placement.mask.sum() < 1.25 * 1.25 * 35 * 1.6
    again = [place_mask(donor, allowed, np.random.default_rng(3)).mask for _ in range(2)]
    np.testing.assert_array_equal(*again)


def test_place_mask_near_target_and_none_when_impossible():
    allowed = np.ones((40, 40), bool)
    placement = place_mask(
        np.ones((4, 4), bool), allowed, np.random.default_rng(0), target=(20.0, 10.0), max_offset_px=1.5
    )
    assert abs(placement.centre[0] - 20) <= 1.5 and abs(placement.centre[1] - 10) <= 1.5
    tiny = np.zeros((40, 40), bool)
    tiny[0, 0] = True
    assert place_mask(np.ones((6, 6), bool), tiny, np.random.default_rng(0), tries=3) is None


def test_allowed_regions_and_labels():
    image = np.full((16, 16, 3), 100, np.uint8)
    lesion = np.zeros((16, 16), np.uint8)
    lesion[6:9, 6:9] = 1
    allowed = polyp_allowed_region(image, lesion, margin_px=1)
    assert not allowed[5:10, 5:10].any() and allowed[12, 12]
    classes = np.zeros((16, 16), np.uint8)
    classes[3:13, 4:12] = 1
    classes[6:9, 6:9] = 2
    inner, centre = fundus_allowed_region(classes, rim_px=1)
    assert inner.sum() == 8 * 6 and centre == pytest.approx((7.5, 7.5))
    with pytest.raises(ValueError, match="disc"):
        fundus_allowed_region(np.zeros((4, 4)))
    np.testing.assert_array_equal(union_label(lesion, 1 - lesion), np.ones((16, 16)))
    assert vertical_cdr(classes == 2, classes >= 1) == pytest.approx(3 / 10)
    assert vertical_cdr(np.zeros((16, 16)), classes >= 1) == 0.0
