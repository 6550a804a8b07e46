"""Inference variants chosen on validation: the same rule for every method."""

import numpy as np

from benchmark.methods import get_method
from benchmark.metrics.selection import inference_variants, select_on_validation


def test_variants_per_method_family():
    unet = get_method("unet")(get_method("unet").smoke_config())
    assert list(inference_variants(unet, (1, 5))) == ["default"]
    v1 = get_method("medsegdiff_v1")(get_method("medsegdiff_v1").smoke_config())
    assert list(inference_variants(v1, (10, 1, 5))) == ["DDIM 1 steps", "DDIM 5 steps", "DDIM 10 steps"]
    latent = get_method("diffaug")(get_method("diffaug").smoke_config())
    assert list(inference_variants(latent, (1, 10))) == ["single step", "DDIM 10 steps"]
    assert list(inference_variants(v1, ())) == ["default"]


def test_selection_takes_the_best_and_the_cheapest_among_ties():
    variants = {"a": lambda: 0.5, "b": lambda: 0.7, "c": lambda: 0.7}
    best, scores = select_on_validation(variants, lambda predict: predict())
    assert best == "b" and scores == {"a": 0.5, "b": 0.7, "c": 0.7}
    best, _ = select_on_validation({"only": lambda: np.nan}, lambda predict: 0.1)
    assert best == "only"
