"""Tests of the DiffAug prompt bank: fixed basic prompts, diverse attribute-based prompts."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest

from benchmark.generators.prompts import (
    BASIC_PROMPTS,
    MODALITIES,
    NEGATIVE_PROMPTS,
    prompt_and_attributes,
    prompt_attributes,
    prompt_for,
)

SMALL_SESSILE = {
    "diameter_mm": 4.37,
    "small": True,
    "paris_type": "sessile",
    "flat": False,
    "surface": "smooth",
    "vascular_pattern": "faint",
    "height_mm": 1.8,
    "target_area_fraction": 0.01,
}
LARGE_PEDUNCULATED = {
    "diameter_mm": 13.9,
    "small": False,
    "paris_type": "pedunculated",
    "flat": False,
    "surface": "irregular",
    "vascular_pattern": "irregular",
    "height_mm": 12.0,
}
FLAT = {
    "diameter_mm": 7.2,
    "small": False,
    "paris_type": "flat",
    "flat": True,
    "surface": "lobulated",
    "vascular_pattern": "regular",
    "height_mm": 0.5,
}
REAL_POLYP = {
    "id": "cju0qkwl35piu0993l0dewei2",
    "target_area_fraction": 0.21,
    "n_lesions": 1,
}  # CVC / Kvasir without Sessile
SESSILE_MEMBER = {"id": "cju1", "target_area_fraction": 0.03, "flat": True}
EARLY_FUNDUS = {"vcdr": 0.55, "stratum": "early", "rim_thinning": "inferior", "glaucoma": True}
ADVANCED_FUNDUS = {"vcdr": 0.72, "stratum": "advanced", "rim_thinning": "diffuse", "glaucoma": True}
REAL_FUNDUS = pd.Series({"id": "V0001", "vcdr": 0.41, "glaucoma": pd.NA, "target_area_fraction": 0.08})
POLYPS = [SMALL_SESSILE, LARGE_PEDUNCULATED, FLAT, REAL_POLYP, SESSILE_MEMBER]
FUNDI = [EARLY_FUNDUS, ADVANCED_FUNDUS, REAL_FUNDUS]
# words a stated attribute must show in the prompt
VASCULAR_WORDS = {
    "faint": ("faint", "barely visible"),
    "regular": ("visible capillary", "regular capillary"),
    "irregular": ("irregular vascular", "irregular vessels"),
}


def draws(modality, attributes, n=40, seed=0, variant="diverse"):
    rng = np.random.default_rng(seed)
    return [prompt_for(modality, attributes, variant=variant, rng=rng) for _ in range(n)]


@pytest.mark.parametrize("modality", MODALITIES)
def test_basic_prompt_is_fixed_and_ignores_attributes(modality):
    rng = np.random.default_rng(3)
    state = rng.bit_generator.state
    prompts = {prompt_for(modality, attributes, variant="basic", rng=rng) for attributes in POLYPS + FUNDI + [{}]}
    assert prompts == {BASIC_PROMPTS[modality]}
    assert rng.bit_generator.state == state  # basic draws nothing
    assert prompt_and_attributes(modality, FLAT, variant="basic", rng=rng)[1] == {}


@pytest.mark.parametrize(
    ("modality", "attributes"), [("polyp", row) for row in POLYPS] + [("fundus", row) for row in FUNDI]
)
def test_diverse_prompts_vary_and_are_seeded(modality, attributes):
    prompts = draws(modality, attributes)
    assert len(set(prompts)) >= 4
    assert prompts == draws(modality, attributes)
    assert prompts != draws(modality, attributes, seed=1)
    for prompt in prompts:
        assert prompt == prompt.strip() and len(prompt.split()) <= 30


def test_polyp_attributes_are_mentioned():
    for prompt in draws("polyp", SMALL_SESSILE):
        assert "small" in prompt or "4 mm" in prompt or "under 5 mm" in prompt, prompt
        assert "sessile" in prompt and "flat" not in prompt
    for prompt in draws("polyp", FLAT):
        assert "flat" in prompt
    surfaces = []
    for prompt in draws("polyp", LARGE_PEDUNCULATED):
        assert "pedunculated" in prompt and ("large" in prompt or "13 mm" in prompt or "10-20 mm" in prompt), prompt
        surfaces.append("irregular surface" in prompt or "irregular nodular surface" in prompt)
        assert "smooth" not in prompt and "lobulated" not in prompt
    assert any(surfaces)  # the surface is optional per prompt, but stated often


def test_real_polyps_state_only_what_is_known():
    for prompt in draws("polyp", REAL_POLYP):
        assert "large" in prompt and "flat" not in prompt and "sessile" not in prompt and " mm" not in prompt, prompt
    for prompt in draws("polyp", SESSILE_MEMBER):
        assert "sessile or flat" in prompt and "small" in prompt, prompt
    not_member = dict(SESSILE_MEMBER, flat=False)  # outside Kvasir-Sessile: shape unknown, not "not flat"
    assert not any("flat" in p or "sessile" in p or "pedunculated" in p for p in draws("polyp", not_member))
    assert prompt_attributes("polyp", {"target_area_fraction": 0.1}) == {"size_word": "medium-sized"}
    assert prompt_attributes("polyp", {"flat": np.nan, "target_area_fraction": float("nan")}) == {}


def test_fundus_attributes_are_mentioned():
    for prompt in draws("fundus", EARLY_FUNDUS):
        assert "early" in prompt and "inferior" in prompt and "0.7" not in prompt, prompt
    assert any("cup-to-disc ratio 0.5" in p for p in draws("fundus", EARLY_FUNDUS))
    for prompt in draws("fundus", ADVANCED_FUNDUS):
        assert "advanced" in prompt and "diffuse" in prompt and "0.5" not in prompt, prompt
    for prompt in draws("fundus", REAL_FUNDUS):  # no rim_thinning column: never mentioned
        assert "physiological" in prompt and "thinning" not in prompt, prompt
    assert prompt_attributes("fundus", {"vcdr": 0.6, "rim_thinning": "none"}) == {"cup_stratum": "advanced", "cdr": 0.6}
    assert prompt_attributes("fundus", {"stratum": "early"}) == {"cup_stratum": "early"}


def test_rows_read_back_from_csv():
    table = pd.DataFrame([SMALL_SESSILE, FLAT, dict(REAL_POLYP, flat=None)])
    rows = pd.read_csv(io.StringIO(table.to_csv(index=False)))
    known = [prompt_attributes("polyp", row) for _, row in rows.iterrows()]
    assert known[0]["size_mm"] == 4 and known[1]["morphology"] == "flat"
    assert known[2] == {"size_word": "large"}


@pytest.mark.parametrize(("modality", "rows"), [("polyp", POLYPS), ("fundus", FUNDI)])
def test_stated_attributes_match_the_text(modality, rows):
    rng = np.random.default_rng(7)
    for row in rows:
        known = prompt_attributes(modality, row)
        for _ in range(30):
            text, stated = prompt_and_attributes(modality, row, variant="diverse", rng=rng)
            assert stated.items() <= known.items()
            checks = {
                "size_mm": lambda v: f"{v} mm" in text,
                "size_bin": lambda v: v in text,
                "size_word": lambda v: v in text,
                "morphology": lambda v: v in text,
                "surface": lambda v: v in text,
                "vascular_pattern": lambda v: any(w in text for w in VASCULAR_WORDS[v]),
                "cup_stratum": lambda v: {"normal": "physiological"}.get(v, v) in text,
                "cdr": lambda v: f"cup-to-disc ratio {v:.1f}" in text,
                "rim_thinning": lambda v: f"{v} " in text and "rim thinning" in text,
            }
            for key, value in stated.items():
                assert checks[key](value), (key, value, text)
            absent = {
                "surface": ("surface",),
                "vascular_pattern": ("vascul", "capillar", "vessels"),
                "cdr": ("ratio",),
                "rim_thinning": ("thinning",),
            }
            for key, words in absent.items():
                assert key in stated or not any(word in text for word in words), (key, text)
    # the same draws as prompt_for
    assert prompt_and_attributes(modality, rows[0], variant="diverse", rng=np.random.default_rng(1))[0] == prompt_for(
        modality, rows[0], variant="diverse", rng=np.random.default_rng(1)
    )


def test_negative_prompts():
    assert NEGATIVE_PROMPTS == {"polyp": "healthy mucosa", "fundus": "normal optic disc"}
    assert set(NEGATIVE_PROMPTS) == set(MODALITIES) == set(BASIC_PROMPTS)


def test_errors_name_the_bad_value():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="'dermoscopy'"):
        prompt_for("dermoscopy", {}, variant="diverse", rng=rng)
    with pytest.raises(ValueError, match="'fancy'"):
        prompt_for("polyp", FLAT, variant="fancy", rng=rng)
    with pytest.raises(ValueError, match="'dermoscopy'"):
        prompt_attributes("dermoscopy", {})
    with pytest.raises(ValueError, match="paris_type.*'0-Is'"):
        prompt_for("polyp", dict(FLAT, paris_type="0-Is"), variant="diverse", rng=rng)
    with pytest.raises(ValueError, match="rim_thinning.*'nasal'"):
        prompt_attributes("fundus", dict(EARLY_FUNDUS, rim_thinning="nasal"))
