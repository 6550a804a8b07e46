"""Inference settings chosen on the validation split, the same rule for every method.

Iterative methods have a free inference setting, the number of sampling steps, that the
paper-scale defaults fix (10 DDIM steps here, 50-1000 in the papers) but that a method's accuracy
depends on (with clean-mask prediction, fewer steps can be better). To compare methods fairly the
evaluate stage gives every method the same chance: each trained seed scores each of its inference
variants on the *validation* split (Dice at native resolution, the test protocol) and the best
one is used on the test split. Methods without a free setting have one variant ("default").

Variants:

- pixel mask diffusion (``predict(images, steps=...)``, MedSegDiff-V1/V2, Diff-Trans): DDIM with
  each step count of ``evaluate.inference_steps`` (ensemble size from the method config);
- latent segmenters (DiffAug, SDSeg): the single-step estimate (eq. 11) and N-step DDIM for each
  N > 1 of ``evaluate.inference_steps``.

Ties go to the cheaper variant (listed first).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable

import numpy as np


def inference_variants(method, candidate_steps: tuple[int, ...]) -> dict[str, Callable[[np.ndarray], np.ndarray]]:
    """Label -> ``predict(images uint8 (N, H, W, 3)) -> float32 (N, H, W)``, cheapest first.

    An empty ``candidate_steps`` gives the method's configured default only.
    """
    if not candidate_steps:
        return {"default": method.predict}
    if getattr(method, "needs_autoencoder", False):
        from benchmark.methods.latent_seg.method import predict_latent_masks

        variants = {"single step": functools.partial(predict_latent_masks, method, inference="single")}
        for n in sorted(set(candidate_steps)):
            if n > 1:
                variants[f"DDIM {n} steps"] = functools.partial(
                    predict_latent_masks, method, inference="iterative", steps=n
                )
        return variants
    if "steps" in inspect.signature(method.predict).parameters:
        return {f"DDIM {n} steps": functools.partial(method.predict, steps=n) for n in sorted(set(candidate_steps))}
    return {"default": method.predict}


def select_on_validation(variants: dict, score: Callable[[np.ndarray], float]) -> tuple[str, dict[str, float]]:
    """Score every variant with ``score(predict) -> float`` (higher is better; the caller runs
    ``predict`` on the validation split) and return the best label (first among ties) and all scores."""
    scores = {label: float(score(predict)) for label, predict in variants.items()}
    best = max(scores, key=lambda label: (scores[label], -list(scores).index(label)))
    return best, scores
