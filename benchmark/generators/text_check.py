"""Does the text matter? Paired prompt contrasts scored by measurable proxies of the attribute.

For a contrast (e.g. "pedunculated" vs "flat"), each pair of samples shares background, mask and
sampling seed and differs only in the prompt. A proxy that measures the attribute on the image
(e.g. how far the lesion departs from the mucosa beneath it: a tall polyp shades and colours
much more than a flat lesion) is computed on both; the pair "follows the prompt" when the proxy
is larger under the "high" prompt. Without any text effect the share of such pairs is 1/2; we
report the share, a Wilson 95 % CI and the exact one-sided binomial p-value (H0: share <= 1/2).

Each proxy is validated on REAL training images too: the AUC with which it separates the real
images of the two attribute classes (1 = perfect, 0.5 = useless), so a reader sees that the
proxy measures what the prompt says.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np
import pandas as pd

from benchmark.data.prepared import PreparedDataset

LUMINANCE = np.array([0.299, 0.587, 0.114])


def luminance(images: np.ndarray) -> np.ndarray:
    """uint8 (N, S, S, 3) -> float64 (N, S, S) in [0, 255] (Rec. 601 luma)."""
    return images.astype(np.float64) @ LUMINANCE


def lesion_departure(images: np.ndarray, backgrounds: np.ndarray, masks: np.ndarray, **_) -> np.ndarray:
    """Height/contrast proxy of a polyp: mean |Δ luminance| between image and lesion-free
    background inside the mask, float (N,) in [0, 255]. Flat lesions barely change the mucosa."""
    difference = np.abs(luminance(images) - luminance(backgrounds))
    return _masked_mean(difference, masks)


def changed_share(
    images: np.ndarray, backgrounds: np.ndarray, masks: np.ndarray, *, threshold: float = 12.0, **_
) -> np.ndarray:
    """Size proxy of a polyp: share of the mask whose luminance changed by more than
    ``threshold`` grey levels, float (N,) in [0, 1]. A small polyp in a large mask changes less."""
    changed = np.abs(luminance(images) - luminance(backgrounds)) > threshold
    return _masked_mean(changed.astype(np.float64), masks)


def cup_pallor(images: np.ndarray, backgrounds: np.ndarray, masks: np.ndarray, *, discs: np.ndarray, **_) -> np.ndarray:
    """Cup-size proxy of a fundus image: mean luminance inside the mask minus that of the rim
    (disc pixels outside the mask), float (N,) in [-255, 255]. A physiological cup drawn in a
    large mask leaves much of it rim-coloured; an advanced cup makes all of it pale."""
    lum = luminance(images)
    rim = discs.astype(bool) & ~masks.astype(bool)
    return _masked_mean(lum, masks) - _masked_mean(lum, rim)


def _masked_mean(values: np.ndarray, masks: np.ndarray) -> np.ndarray:
    weights = masks.astype(np.float64)
    return (values * weights).sum(axis=(1, 2)) / np.maximum(weights.sum(axis=(1, 2)), 1)


@dataclasses.dataclass(frozen=True)
class Contrast:
    """Two prompts that differ in one attribute, and the proxy that should order them.

    Attributes:
        name: short label ("morphology", "size", "cupping").
        attribute: what the proxy measures, in words.
        high_prompt / low_prompt: the prompts expected to give the larger / smaller proxy.
        proxy: ``f(images, backgrounds, masks, discs=...) -> (N,)``.
        real_classes: (column, high values, low values) of the attribute table that define the
            real images the proxy is validated on.
        mask_scale: the donor mask is scaled by this for the contrast (large masks leave room
            for a small lesion).
    """

    name: str
    attribute: str
    high_prompt: str
    low_prompt: str
    proxy: Callable[..., np.ndarray]
    real_classes: tuple[str, tuple, tuple]
    mask_scale: tuple[float, float] = (0.9, 1.1)


CONTRASTS: dict[str, tuple[Contrast, ...]] = {
    "polyp": (
        Contrast(
            "morphology",
            "height/contrast: mean |Δ luminance| vs the mucosa in the mask",
            "colonoscopy image of a pedunculated polyp (Paris 0-Ip)",
            "colonoscopy image of a flat elevated lesion (Paris 0-II)",
            lesion_departure,
            ("paris_type", ("pedunculated",), ("flat",)),
        ),
        Contrast(
            "size",
            "share of the mask changed by > 12 grey levels",
            "colonoscopy image of a large 15 mm sessile polyp",
            "colonoscopy image of a small 3 mm sessile polyp",
            changed_share,
            ("small", (False, "False"), (True, "True")),
            (1.1, 1.3),
        ),
    ),
    "fundus": (
        Contrast(
            "cupping",
            "cup pallor: luminance in the mask minus the rim's",
            "retinal fundus image showing advanced glaucomatous cupping, cup-to-disc ratio 0.8",
            "retinal fundus image showing small physiological cup, cup-to-disc ratio 0.3",
            cup_pallor,
            ("stratum", ("advanced",), ("normal",)),
        ),
    ),
}


def binomial_summary(follows: np.ndarray) -> dict[str, float]:
    """Share of True, two-sided Wilson 95 % CI and the exact one-sided binomial p-value against 1/2.

    Ties (proxy equal under both prompts) count as not following. ``scipy.stats.binomtest``.
    """
    from scipy import stats

    follows = np.asarray(follows, bool)
    n, k = len(follows), int(follows.sum())
    if n == 0:
        raise ValueError("no pairs to summarise")
    test = stats.binomtest(k, n, 0.5, alternative="greater")
    # the CI is two-sided (a one-sided test's interval would end at 1)
    low, high = stats.binomtest(k, n, 0.5).proportion_ci(confidence_level=0.95, method="wilson")
    return {
        "n_pairs": n,
        "n_follow": k,
        "share_follow": k / n,
        "ci_low": float(low),
        "ci_high": float(high),
        "p_value": float(test.pvalue),
    }


def proxy_auc(dataset: PreparedDataset, contrast: Contrast, part: str = "train") -> dict[str, float]:
    """How well the proxy separates the real images of the contrast's two classes.

    Needs lesion-free twins (the proxy compares with the background). Returns ``auc`` (Mann–
    Whitney U / (n_high · n_low), in [0, 1]), ``n_high``, ``n_low``; NaNs when a class is empty.
    """
    from scipy import stats

    data = dataset.subset(part)
    normals = dataset.normal_images(list(data.ids))
    if normals is None:
        return {"auc": float("nan"), "n_high": 0, "n_low": 0}
    column, high_values, low_values = contrast.real_classes
    table = dataset.attributes.set_index("id").loc[list(data.ids)]
    if column not in table:
        return {"auc": float("nan"), "n_high": 0, "n_low": 0}
    values = table[column].astype(str)
    discs = dataset.labels(list(data.ids)) >= 1
    scores = contrast.proxy(data.images, normals, data.masks, discs=discs)
    high = scores[values.isin([str(v) for v in high_values]).to_numpy()]
    low = scores[values.isin([str(v) for v in low_values]).to_numpy()]
    if len(high) == 0 or len(low) == 0:
        return {"auc": float("nan"), "n_high": len(high), "n_low": len(low)}
    u = stats.mannwhitneyu(high, low, alternative="two-sided").statistic
    return {"auc": float(u / (len(high) * len(low))), "n_high": int(len(high)), "n_low": int(len(low))}


def run_contrast(
    generator,
    contrast: Contrast,
    backgrounds: np.ndarray,
    masks: np.ndarray,
    discs: np.ndarray,
    seeds: list[int],
    *,
    negative_prompt: str,
    steps: int,
    guidance_scale: float,
) -> pd.DataFrame:
    """Generate every pair under both prompts and score it.

    Args:
        generator: a trained :class:`~benchmark.generators.base.InpaintingGenerator`.
        contrast: the prompt pair and proxy.
        backgrounds: uint8 (P, S, S, 3); masks: {0,1} (P, S, S); discs: bool (P, S, S) (fundus
            discs; zeros for polyps); seeds: P sampling seeds, shared by both prompts of a pair.
        negative_prompt, steps, guidance_scale: sampling settings.

    Returns:
        One row per pair: ``pair``, ``proxy_high``, ``proxy_low``, ``follows`` (bool).
    """
    n = len(backgrounds)
    images = generator.generate(
        np.concatenate([backgrounds, backgrounds]),
        np.concatenate([masks, masks]),
        [contrast.high_prompt] * n + [contrast.low_prompt] * n,
        negative_prompt=negative_prompt,
        steps=steps,
        guidance_scale=guidance_scale,
        seeds=list(seeds) * 2,
    )
    proxies = contrast.proxy(
        images,
        np.concatenate([backgrounds, backgrounds]),
        np.concatenate([masks, masks]),
        discs=np.concatenate([discs, discs]),
    )
    high, low = proxies[:n], proxies[n:]
    return pd.DataFrame(
        {"contrast": contrast.name, "pair": np.arange(n), "proxy_high": high, "proxy_low": low, "follows": high > low}
    )


#: Gallery rows: (label, prompt, (attribute column, values) selecting real lesions of that kind).
GALLERY_PROMPTS: dict[str, tuple[tuple[str, str, tuple[str, tuple]], ...]] = {
    "polyp": (
        ("pedunculated", "colonoscopy image of a pedunculated polyp (Paris 0-Ip)", ("paris_type", ("pedunculated",))),
        ("sessile", "colonoscopy image of a sessile polyp (Paris 0-Is)", ("paris_type", ("sessile",))),
        ("flat", "colonoscopy image of a flat elevated lesion (Paris 0-II)", ("paris_type", ("flat",))),
        ("negative prompt", "healthy mucosa", ("paris_type", ())),
    ),
    "fundus": (
        (
            "advanced",
            "retinal fundus image showing advanced glaucomatous cupping, cup-to-disc ratio 0.8",
            ("stratum", ("advanced",)),
        ),
        (
            "early",
            "retinal fundus image showing early glaucomatous cupping, cup-to-disc ratio 0.5",
            ("stratum", ("early",)),
        ),
        (
            "normal",
            "retinal fundus image showing small physiological cup, cup-to-disc ratio 0.3",
            ("stratum", ("normal",)),
        ),
        ("negative prompt", "normal optic disc", ("stratum", ())),
    ),
}


def real_examples(
    dataset: PreparedDataset, column: str, values: tuple, k: int, rng: np.random.Generator, part: str = "train"
) -> tuple[np.ndarray, list[str]]:
    """Up to ``k`` real lesion images of the split whose ``column`` is in ``values``: uint8 (≤k, S, S, 3) and their ids."""
    data = dataset.subset(part)
    table = dataset.attributes.set_index("id").loc[list(data.ids)]
    if column not in table or not values:
        return np.zeros((0, *data.images.shape[1:]), np.uint8), []
    rows = np.nonzero(table[column].astype(str).isin([str(v) for v in values]).to_numpy())[0]
    chosen = rng.choice(rows, size=min(k, len(rows)), replace=False) if len(rows) else rows
    return data.images[chosen], [data.ids[i] for i in chosen]
