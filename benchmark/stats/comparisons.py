"""Paired comparisons of two runs at the independent unit: one record per claim.

For runs A and B on the same test images (:mod:`benchmark.stats.units`):

1. per-image scores are averaged over seeds, then over the images of each unit;
2. ``delta`` = mean over units of (A − B); ``ci_low``/``ci_high``: percentile bootstrap 95 % CI
   resampling units; ``p``: two-sided exact Wilcoxon signed-rank test over the unit differences
   (scipy's exact null distribution, any n; where zero or tied differences make it inexact, the
   sign-flip permutation test of the mean instead); ``p_holm``: Holm over the rows of one table
   (:func:`finish_family`);
3. ``min_attainable_p`` = 2 / 2^n, the smallest two-sided signed-rank p that n units can give (all
   differences of one sign): with 5 units it is 0.0625, so no test can reach 0.05 and the table
   must say "underpowered" instead of a p-value;
4. ``mde_80``: the smallest true difference a paired test over these units detects with 80 %
   power at α = 0.05 (paired t approximation with the observed sd of the unit differences;
   the signed-rank test's efficiency relative to it is ≥ 0.86, 0.955 under normality);
5. ``seed_sd``: sd over seed indices of the per-seed unit-mean difference (seed-to-seed spread).

:func:`mixed_effects` is the sensitivity analysis: a linear mixed model on seed-averaged per-image
scores, ``score ~ run`` with a random intercept per unit (statsmodels MixedLM).
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd

from benchmark.stats.significance import bootstrap_ci, holm
from benchmark.stats.units import Units, unit_means

#: Columns of ``results/<dataset>/comparisons.csv``, in order.
COLUMNS = (
    "table",
    "run_a",
    "run_b",
    "metric",
    "unit",
    "n_units",
    "n_seeds",
    "delta",
    "ci_low",
    "ci_high",
    "seed_sd",
    "p",
    "p_holm",
    "min_attainable_p",
    "mde_80",
)
ALPHA = 0.05


def min_attainable_p(n_units: int) -> float:
    """Smallest two-sided p of an exact signed-rank (or sign-flip) test over ``n_units`` pairs: ``min(1, 2 / 2**n)``."""
    return 1.0 if n_units < 1 else float(min(1.0, 2.0 / 2.0**n_units))


def underpowered(n_units: int, alpha: float = ALPHA) -> bool:
    """True when no outcome over ``n_units`` units can reach ``p < alpha``."""
    return min_attainable_p(n_units) >= alpha


def mde_80(differences: np.ndarray, *, alpha: float = ALPHA, power: float = 0.8) -> float:
    """Minimal detectable mean difference of a two-sided paired test over these unit differences.

    ``d * sd`` where ``d`` solves the paired t-test's power equation (noncentral t, statsmodels
    ``TTestPower``) for ``n`` units at ``alpha`` and ``power``. NaN for fewer than 3 units or a zero sd.
    """
    differences = np.asarray(differences, dtype=float)
    n = differences.size
    sd = differences.std(ddof=1) if n > 1 else float("nan")
    if n < 3 or not sd > 0:
        return float("nan")
    from statsmodels.stats.power import TTestPower

    effect = TTestPower().solve_power(effect_size=None, nobs=n, alpha=alpha, power=power, alternative="two-sided")
    return float(effect * sd)


def signed_rank_p(differences: np.ndarray) -> float:
    """Two-sided exact Wilcoxon signed-rank p over unit differences (1.0 if all are zero).

    Exact null distribution when the differences hold no zero and no tied magnitude; otherwise
    (the exact distribution does not apply) the exact/Monte Carlo sign-flip permutation test
    (:func:`sign_flip_p`).
    """
    from scipy.stats import wilcoxon

    differences = np.asarray(differences, dtype=float)
    if differences.size == 0 or not np.any(differences != 0):
        return 1.0
    magnitudes = np.abs(differences)
    if np.any(magnitudes == 0) or np.unique(magnitudes).size < magnitudes.size:
        return sign_flip_p(differences)
    return float(wilcoxon(differences, alternative="two-sided", method="exact").pvalue)


def sign_flip_p(differences: np.ndarray, *, n_resamples: int = 100_000, seed: int = 0) -> float:
    """Two-sided sign-flip permutation p of the mean of paired differences.

    Exact (all 2^n sign patterns) for n <= 16, else ``(1 + hits) / (1 + n_resamples)`` over random flips.
    """
    differences = np.asarray(differences, dtype=float)
    n = differences.size
    if n == 0:
        return 1.0
    observed = abs(differences.mean())
    tolerance = 1e-12 * max(1.0, observed)
    if n <= 16:
        signs = np.array(list(itertools.product((1.0, -1.0), repeat=n)))
        means = np.abs(signs @ differences / n)
        return float(np.mean(means >= observed - tolerance))
    rng = np.random.default_rng(seed)
    signs = rng.choice((1.0, -1.0), size=(n_resamples, n))
    hits = int(np.sum(np.abs(signs @ differences / n) >= observed - tolerance))
    return float((1 + hits) / (1 + n_resamples))


def compare(
    per_image: pd.DataFrame,
    run_a: str,
    run_b: str,
    units: Units,
    *,
    metric: str = "dice",
    table: str = "",
    n_resamples: int = 10_000,
    seed: int = 0,
) -> dict:
    """One comparison record (the :data:`COLUMNS` of a row but ``p_holm``), ``run_a`` − ``run_b``.

    Args:
        per_image: rows of both runs: ``method`` (the run name), ``seed_index``, ``image_id``, ``metric``.
        units: the dataset's analysis unit.
        metric: score column (fractions).
        table: the family the record belongs to (Holm runs within it).
        n_resamples, seed: bootstrap settings.
    """
    both = per_image[per_image["method"].isin([run_a, run_b])]
    wide = unit_means(both, units, metric).reindex(columns=[run_a, run_b]).dropna()
    differences = (wide[run_a] - wide[run_b]).to_numpy()
    delta, low, high = bootstrap_ci(differences, n_resamples=n_resamples, seed=seed)
    seeds = unit_means(both, units, metric, by_seed=True).reindex(columns=[run_a, run_b]).dropna()
    per_seed = (seeds[run_a] - seeds[run_b]).groupby(level="seed_index").mean()
    n_seeds = int(min(both.loc[both["method"] == run, "seed_index"].nunique() for run in (run_a, run_b)))
    return {
        "table": table,
        "run_a": run_a,
        "run_b": run_b,
        "metric": metric,
        "unit": units.name,
        "n_units": int(len(differences)),
        "n_seeds": n_seeds,
        "delta": delta,
        "ci_low": low,
        "ci_high": high,
        "seed_sd": float(per_seed.std(ddof=1)) if len(per_seed) > 1 else float("nan"),
        "p": signed_rank_p(differences),
        "min_attainable_p": min_attainable_p(len(differences)),
        "mde_80": mde_80(differences),
    }


def finish_family(records: list[dict]) -> pd.DataFrame:
    """Rows of one table (one Holm family) as a frame with :data:`COLUMNS`; ``p_holm`` over the rows."""
    frame = pd.DataFrame(records, columns=[column for column in COLUMNS if column != "p_holm"])
    frame.insert(COLUMNS.index("p_holm"), "p_holm", holm(frame["p"].to_numpy()) if len(frame) else [])
    return frame[list(COLUMNS)]


def mixed_effects(per_image: pd.DataFrame, run_a: str, run_b: str, units: Units, *, metric: str = "dice") -> dict:
    """Sensitivity analysis: ``score ~ C(run)`` with a random intercept per unit (REML, statsmodels MixedLM).

    Seed-averaged per-image scores of both runs (two rows per image). Returns the fixed effect of
    ``run_a`` over ``run_b`` (``delta``), its Wald 95 % CI and p, the random-intercept variance,
    the number of units and images, and ``converged``.
    """
    import warnings

    import statsmodels.formula.api as smf

    both = per_image[per_image["method"].isin([run_a, run_b])]
    images = (
        both.groupby(["method", "image_id"])[metric].mean().unstack("method").reindex(columns=[run_a, run_b]).dropna()
    )
    long = images.stack().rename("score").reset_index()
    long["unit"] = units.labels(long["image_id"])
    long["is_a"] = (long["method"] == run_a).astype(float)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = smf.mixedlm("score ~ is_a", long, groups=long["unit"]).fit(reml=True)
    low, high = result.conf_int().loc["is_a"].tolist()
    return {
        "run_a": run_a,
        "run_b": run_b,
        "metric": metric,
        "unit": units.name,
        "n_units": int(long["unit"].nunique()),
        "n_images": int(len(images)),
        "delta": float(result.fe_params["is_a"]),
        "ci_low": float(low),
        "ci_high": float(high),
        "p": float(result.pvalues["is_a"]),
        "unit_variance": float(result.cov_re.iloc[0, 0]),
        "converged": bool(result.converged) and not any("converge" in str(w.message).lower() for w in caught),
    }


def p_text(row, unit_name: str | None = None, column: str = "p_holm") -> str:
    """A table cell for the p-value of a comparison row: "underpowered (n = 5 sequences)" when the
    units cannot reach p < 0.05 at all, else the p-value."""
    n = int(row["n_units"])
    if underpowered(n):
        return f"underpowered (n = {n} {unit_name or row['unit']}{'' if n == 1 else 's'})"
    return f"{row[column]:.2g}"
