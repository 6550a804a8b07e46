"""The "does the text matter" check: proxies on hand-made images, binomial summary vs scipy,
and the paired protocol with a fake generator whose output does / does not follow the text."""

import numpy as np
import pytest
from prepared_fixtures import write_prepared
from scipy import stats

from benchmark.generators.text_check import (
    CONTRASTS,
    binomial_summary,
    changed_share,
    cup_pallor,
    lesion_departure,
    proxy_auc,
    run_contrast,
)


def _images(values_inside, background=100):
    images = np.full((len(values_inside), 4, 4, 3), background, np.uint8)
    masks = np.zeros((len(values_inside), 4, 4), np.uint8)
    masks[:, 1:3, 1:3] = 1
    for image, value in zip(images, values_inside):
        image[1:3, 1:3] = value
    return images, np.full_like(images, background), masks


def test_proxies_on_hand_computed_images():
    images, backgrounds, masks = _images([100, 130, 40])
    np.testing.assert_allclose(lesion_departure(images, backgrounds, masks), [0, 30, 60])
    images[1, 1, 1] = 100  # one of four mask pixels unchanged
    np.testing.assert_allclose(changed_share(images, backgrounds, masks), [0, 0.75, 1])
    discs = np.zeros_like(masks, bool)
    discs[:, :, :] = True
    rim = (16 - 4) * 100
    np.testing.assert_allclose(
        cup_pallor(images, backgrounds, masks, discs=discs), [0, (100 + 3 * 130) / 4 - rim / 12, -60]
    )


def test_binomial_summary_matches_scipy():
    follows = np.array([True] * 30 + [False] * 10)
    summary = binomial_summary(follows)
    test = stats.binomtest(30, 40, 0.5, alternative="greater")
    assert summary["share_follow"] == 0.75 and summary["p_value"] == pytest.approx(test.pvalue)
    two_sided = stats.binomtest(30, 40, 0.5).proportion_ci(method="wilson")
    assert summary["ci_low"] == pytest.approx(two_sided.low) and summary["ci_high"] == pytest.approx(two_sided.high)
    assert summary["ci_high"] < 1
    with pytest.raises(ValueError):
        binomial_summary(np.array([], bool))


class _FakeGenerator:
    """Paints the mask brighter when the prompt contains ``word`` (or ignores the text)."""

    def __init__(self, word: str | None):
        self.word = word

    def generate(self, backgrounds, masks, prompts, *, negative_prompt, steps, guidance_scale, seeds):
        out = backgrounds.copy()
        for image, mask, prompt, seed in zip(out, masks, prompts, seeds):
            noise = np.random.default_rng(seed).integers(0, 20)
            value = 60 + noise + (80 if self.word and self.word in prompt else 0)
            image[mask.astype(bool)] = np.clip(image[mask.astype(bool)].astype(int) + value, 0, 255)
        return out


def test_paired_protocol_detects_text_effect_and_its_absence():
    contrast = CONTRASTS["polyp"][0]
    images, backgrounds, masks = _images([100] * 12)
    discs = np.zeros_like(masks, bool)
    follows = run_contrast(
        _FakeGenerator("pedunculated"),
        contrast,
        backgrounds,
        masks,
        discs,
        list(range(12)),
        negative_prompt="n",
        steps=1,
        guidance_scale=1.0,
    )
    assert follows["follows"].all() and binomial_summary(follows["follows"])["p_value"] < 0.001
    ignores = run_contrast(
        _FakeGenerator(None),
        contrast,
        backgrounds,
        masks,
        discs,
        list(range(12)),
        negative_prompt="n",
        steps=1,
        guidance_scale=1.0,
    )
    assert not ignores["follows"].any()  # identical outputs are ties, which do not count as following


def test_proxy_auc_on_real_images(tmp_path):
    dataset = write_prepared(tmp_path, "polyp", n=36)
    result = proxy_auc(dataset, CONTRASTS["polyp"][0])
    assert result["n_high"] == 6 and result["n_low"] == 6 and 0 <= result["auc"] <= 1
