"""Prompt bank of DiffAug (paper sections 3.3 and 4.3): lesion descriptions in medical wording.

A prompt describes the lesion that the inpainting mask carries, built from the attribute row of
the image the mask comes from (a row of ``attributes.csv`` of a prepared dataset, as a dict or a
pandas Series). Procedural data gives exact attributes (polyp diameter in mm, Paris type,
surface, vascular pattern; fundus vCDR and rim thinning); real data gives fewer (polyp area
fraction, Kvasir-Sessile membership ``flat``; REFUGE vCDR). An attribute that is absent or NaN is
never mentioned: the prompt states only what is known about the mask's lesion.

``variant="diverse"`` draws a paraphrase and an optional combination of secondary attributes
with the given generator; ``variant="basic"`` is one fixed prompt per modality (the paper's
"w/o diverse prompts" ablation); ``variant="none"`` is the empty prompt (a generator trained and
sampled without text: the "w/o text guidance" ablation).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np

MODALITIES = ("polyp", "fundus")
VARIANTS = ("diverse", "basic", "none")
NEGATIVE_PROMPTS: dict[str, str] = {"polyp": "healthy mucosa", "fundus": "normal optic disc"}
BASIC_PROMPTS: dict[str, str] = {
    "polyp": "a colonoscopy image of a polyp",
    "fundus": "a fundus photograph with an enlarged optic cup",
}
#: Real polyps: size word from the mask's share of the image (upper bounds, exclusive).
AREA_FRACTION_WORDS = ((0.05, "small"), (0.15, "medium-sized"), (math.inf, "large"))
#: Procedural polyps: (upper bound in mm, bin label, size word); "small" matches the data's ``small`` (< 5 mm).
DIAMETER_BINS = (
    (5.0, "under 5 mm", "small"),
    (10.0, "5-10 mm", "medium-sized"),
    (20.0, "10-20 mm", "large"),
    (math.inf, "over 20 mm", "large"),
)
P_SURFACE, P_VASCULAR, P_CDR_NUMBER = 0.7, 0.5, 0.75  # chance that an optional known attribute is stated

_MORPHOLOGY = {
    "pedunculated": ("pedunculated polyp", "pedunculated polyp on a stalk", "pedunculated polyp (Paris 0-Ip)"),
    "sessile": ("sessile polyp", "broad-based sessile polyp", "sessile polyp (Paris 0-Is)"),
    "flat": ("flat lesion with unclear borders", "flat polyp", "flat elevated lesion (Paris 0-II)"),
    "sessile or flat": ("sessile or flat polyp", "sessile or flat lesion"),
    None: ("polyp", "colorectal polyp"),
}
_SURFACE = {
    "smooth": ("a smooth surface", "a smooth even surface"),
    "lobulated": ("a lobulated surface", "a multilobulated surface"),
    "irregular": ("an irregular surface", "an irregular nodular surface"),
}
_VASCULAR = {
    "faint": ("a faint vascular pattern", "barely visible capillaries"),
    "regular": ("a visible capillary pattern", "a regular capillary network"),
    "irregular": ("an irregular vascular pattern", "dilated irregular vessels"),
}
_CUPPING = {  # every phrase names its stratum, so the stratum can be read back from the text
    "normal": ("physiological optic cup", "small physiological cup"),
    "early": ("early glaucomatous cupping", "early enlargement of the optic cup"),
    "advanced": (
        "advanced glaucomatous cupping",
        "advanced enlargement of the optic cup",
        "advanced rim loss with vessel displacement",
    ),
}
_RIM_THINNING = {"inferior", "superior", "diffuse", "none"}
_POLYP_LEADS = ("", "colonoscopy image of {a} ", "endoscopic view of {a} ", "{a} ")
_FUNDUS_LEADS = (
    "",
    "fundus photograph of an optic disc with ",
    "retinal fundus image showing ",
    "colour fundus photo with ",
)


def prompt_for(
    modality: str,
    attributes: Mapping[str, Any],
    *,
    variant: Literal["diverse", "basic", "none"],
    rng: np.random.Generator,
) -> str:
    """Text prompt for the lesion of one attribute row.

    Args:
        modality: "polyp" or "fundus".
        attributes: the image's attribute row (dict or pandas Series); see the module docstring.
        variant: "diverse" (attribute-based, paraphrased with ``rng``) or "basic" (fixed).
        rng: generator drawing the paraphrase; "basic" leaves it untouched.

    Returns:
        One lower-case English phrase of at most ~30 words (< 60 word-piece tokens).

    Raises:
        ValueError: unknown modality, variant, or categorical attribute value.
    """
    return prompt_and_attributes(modality, attributes, variant=variant, rng=rng)[0]


def prompt_and_attributes(
    modality: str,
    attributes: Mapping[str, Any],
    *,
    variant: Literal["diverse", "basic", "none"],
    rng: np.random.Generator,
) -> tuple[str, dict[str, Any]]:
    """:func:`prompt_for` and the attributes that this very prompt states (a subset of
    :func:`prompt_attributes`; empty for "basic" and "none"). Same draws, so the texts are equal for equal rng states."""
    _check(modality, variant)
    if variant == "basic":
        return BASIC_PROMPTS[modality], {}
    if variant == "none":
        return "", {}
    known = prompt_attributes(modality, attributes)
    compose = _polyp_prompt if modality == "polyp" else _fundus_prompt
    return compose(known, rng)


def prompt_attributes(modality: str, attributes: Mapping[str, Any]) -> dict[str, Any]:
    """Structured values that diverse prompts encode; keys are present only when known.

    Polyp: ``size_mm`` (int, diameter rounded down), ``size_bin`` (e.g. "5-10 mm") and
    ``size_word`` ("small" | "medium-sized" | "large"), ``morphology`` ("pedunculated" | "sessile" |
    "flat" | "sessile or flat"), ``surface`` and ``vascular_pattern`` (the data's values).
    Size and morphology are stated in every diverse prompt, surface and vascular pattern sometimes.
    Fundus: ``cup_stratum`` ("normal" < 0.5 <= "early" < 0.6 <= "advanced"), ``cdr`` (vCDR
    rounded down to 0.1, float) and ``rim_thinning`` ("inferior" | "superior" | "diffuse"). The
    stratum and the rim thinning are always stated, the ratio sometimes.
    """
    _check(modality, "diverse")
    out: dict[str, Any] = {}
    if modality == "polyp":
        diameter, fraction = _value(attributes, "diameter_mm"), _value(attributes, "target_area_fraction")
        if diameter is not None:
            bin_label, word = next((b, w) for limit, b, w in DIAMETER_BINS if float(diameter) < limit)
            out.update(size_mm=int(math.floor(float(diameter))), size_bin=bin_label, size_word=word)
        elif fraction is not None:
            out["size_word"] = next(w for limit, w in AREA_FRACTION_WORDS if float(fraction) < limit)
        paris, flat = _value(attributes, "paris_type"), _value(attributes, "flat")
        if paris is not None:
            out["morphology"] = _known(str(paris), _MORPHOLOGY, "paris_type")
        elif flat is not None and _truth(flat, "flat"):
            out["morphology"] = "sessile or flat"  # Kvasir-Sessile membership; non-members are of unknown shape
        for column, bank in (("surface", _SURFACE), ("vascular_pattern", _VASCULAR)):
            if (value := _value(attributes, column)) is not None:
                out[column] = _known(str(value), bank, column)
        return out
    from benchmark.data.procedural.fundus import stratum_of  # lazy: pulls in PIL and scipy

    vcdr, stratum = _value(attributes, "vcdr"), _value(attributes, "stratum")
    if vcdr is not None:
        out.update(cup_stratum=stratum_of(float(vcdr)), cdr=math.floor(float(vcdr) * 10 + 1e-9) / 10)
    elif stratum is not None:
        out["cup_stratum"] = _known(str(stratum), _CUPPING, "stratum")
    if (thinning := _value(attributes, "rim_thinning")) is not None and _known(
        str(thinning), _RIM_THINNING, "rim_thinning"
    ) != "none":
        out["rim_thinning"] = str(thinning)
    return out


def _polyp_prompt(known: dict[str, Any], rng: np.random.Generator) -> tuple[str, dict[str, Any]]:
    stated = {key: known[key] for key in ("morphology",) if key in known}
    core = _pick(rng, _MORPHOLOGY[known.get("morphology")])
    if "size_mm" in known:
        style = int(rng.integers(4))  # "small sessile polyp", "sessile polyp 5-10 mm", "8 mm ...", "small 4 mm ..."
        keys = (("size_word",), ("size_bin",), ("size_mm",), ("size_word", "size_mm"))[style]
        stated.update({key: known[key] for key in keys})
        if style == 1:
            core = f"{core} {known['size_bin']}"
        else:
            size = " ".join(f"{known[k]} mm" if k == "size_mm" else known[k] for k in keys)
            core = f"{size} {core}"
    elif "size_word" in known:
        stated["size_word"] = known["size_word"]
        core = f"{known['size_word']} {core}"
    details = []
    for key, bank, chance in (("surface", _SURFACE, P_SURFACE), ("vascular_pattern", _VASCULAR, P_VASCULAR)):
        if key in known and rng.random() < chance:
            stated[key] = known[key]
            details.append(_pick(rng, bank[known[key]]))
    if details:
        core += (", with " if " with " in core else " with ") + " and ".join(details)
    lead = _pick(rng, _POLYP_LEADS).format(a=_article(core))
    return lead + core, stated


def _fundus_prompt(known: dict[str, Any], rng: np.random.Generator) -> tuple[str, dict[str, Any]]:
    if "cup_stratum" not in known:  # nothing known about the cup: name the structure only
        return "fundus photograph of an optic disc and cup", {}
    stated: dict[str, Any] = {"cup_stratum": known["cup_stratum"]}
    parts = [_pick(rng, _CUPPING[known["cup_stratum"]])]
    if "cdr" in known and rng.random() < P_CDR_NUMBER:
        stated["cdr"] = known["cdr"]
        enlarged = "enlarged " if known["cup_stratum"] != "normal" and rng.random() < 0.5 else ""
        parts.append(f"{enlarged}cup-to-disc ratio {known['cdr']:.1f}")
    if "rim_thinning" in known:
        stated["rim_thinning"] = known["rim_thinning"]
        parts.append(
            _pick(rng, (f"{known['rim_thinning']} rim thinning", f"{known['rim_thinning']} neuroretinal rim thinning"))
        )
    return _pick(rng, _FUNDUS_LEADS) + ", ".join(parts), stated


def _check(modality: str, variant: str) -> None:
    if modality not in MODALITIES:
        raise ValueError(f"unknown modality {modality!r}; prompts exist for {', '.join(MODALITIES)}")
    if variant not in VARIANTS:
        raise ValueError(f"unknown prompt variant {variant!r}; use one of {', '.join(VARIANTS)}")


def _value(attributes: Mapping[str, Any], key: str) -> Any:
    """``attributes[key]`` as a Python value, or None when absent, None or NaN/NA (unknown)."""
    value = attributes.get(key)
    value = value.item() if isinstance(value, np.generic) else value
    try:  # NaN, pandas NA, empty CSV cell
        return None if value is None or value != value or str(value) in ("<NA>", "nan", "") else value
    except TypeError:  # pandas NA refuses bool()
        return None


def _truth(value: Any, column: str) -> bool:
    text = str(value).strip().lower()
    if text in ("true", "1", "1.0", "false", "0", "0.0"):  # bools, and bools read back from a CSV
        return text in ("true", "1", "1.0")
    raise ValueError(f"column {column!r} must be a boolean, got {value!r}")


def _known(value: str, bank: Mapping | set, column: str) -> str:
    if value not in bank:
        allowed = ", ".join(sorted(k for k in bank if k is not None and k != "sessile or flat"))
        raise ValueError(f"column {column!r} has value {value!r}; prompts know {allowed}")
    return value


def _pick(rng: np.random.Generator, options: Sequence[str]) -> str:
    return options[int(rng.integers(len(options)))]


def _article(phrase: str) -> str:
    """ "an" before a vowel sound ("an 8 mm", "an 11 mm"), else "a"."""
    return "an" if phrase[0] in "aeiou8" or phrase.split(" ")[0] in ("11", "18") else "a"
