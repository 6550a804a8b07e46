"""FID, KID and an LPIPS distance of generated vs real lesion images, at equal n, with CIs (Table 5).

Feature sources, in order of preference (the result records which one was used):

- FID / KID: torch-fidelity's Inception-v3 (``inception-v3-compat``) when its weights file is
  given (``quality.inception_weights_path``); else the domain extractor of
  :mod:`benchmark.quality.features` (the real-data U-Net's encoder), registered with torch-fidelity.
  The metric arithmetic is torch-fidelity's own (``fid_features_to_statistics`` /
  ``fid_statistics_to_metric``, ``kid_features_to_metric``).
- LPIPS: the lpips package (AlexNet) when torchvision's AlexNet weights are in the torch hub cache;
  else the LPIPS formula with uniform weights on the domain extractor's levels
  (:func:`~benchmark.quality.features.lpips_style_distance`).

Protocol (DATASETS.md: FID is biased by n): every compared set is subsampled to the same n with a
fixed seed; FID is the mean and 95 % range over random equal-n subsets drawn without replacement
(:func:`fid_over_subsets`), KID the mean ± std over random subsets, LPIPS the mean ± std over samples of the distance from each generated image to its
nearest real lesion image among a fixed reference subset.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

LPIPS_ALEXNET_FILE = "alexnet-owt-7be5be79.pth"


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 ``(N, H, W, 3)`` -> uint8 ``(N, 3, H, W)`` (torch-fidelity's input convention)."""
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"images must be uint8 (N, H, W, 3), got {images.dtype} {images.shape}")
    return torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).contiguous()


def extract_features(extractor, images: np.ndarray, batch_size: int = 100) -> torch.Tensor:
    """float64 ``(N, D)`` features of the extractor's first requested layer (CPU)."""
    chunks = []
    with torch.no_grad():
        for start in range(0, len(images), batch_size):
            chunks.append(extractor(to_tensor(images[start : start + batch_size]))[0].double().cpu())
    return torch.cat(chunks)


def fid(features_a: torch.Tensor, features_b: torch.Tensor) -> float:
    """Fréchet distance of two ``(N, D)`` feature sets (torch-fidelity's statistics and formula)."""
    from torch_fidelity.metric_fid import KEY_METRIC_FID, fid_features_to_statistics, fid_statistics_to_metric

    return fid_statistics_to_metric(
        fid_features_to_statistics(features_a), fid_features_to_statistics(features_b), verbose=False
    )[KEY_METRIC_FID]


def fid_over_subsets(
    pool_a: torch.Tensor, pool_b: torch.Tensor, n: int, *, subsets: int = 200, level: float = 0.95, seed: int = 0
) -> tuple[float, float, float]:
    """FID at a fixed n: mean and central ``level`` range over random equal-n subsets of two pools.

    Each subset draws ``n`` rows from each pool without replacement, so every value is an FID at
    the same n (a with-replacement bootstrap duplicates images and biases FID upwards). With pools
    at least twice n the spread approximates sampling variability; it understates it as n
    approaches the pool size (finite pools), which the report states.

    Returns:
        ``(mean, low, high)``.
    """
    if n > min(len(pool_a), len(pool_b)):
        raise ValueError(f"n = {n} exceeds a pool ({len(pool_a)}, {len(pool_b)} rows)")
    rng = np.random.default_rng(seed)
    values = [
        fid(pool_a[rng.choice(len(pool_a), n, replace=False)], pool_b[rng.choice(len(pool_b), n, replace=False)])
        for _ in range(subsets)
    ]
    alpha = (1 - level) / 2
    low, high = np.quantile(values, [alpha, 1 - alpha])
    return float(np.mean(values)), float(low), float(high)


def kid(
    features_a: torch.Tensor, features_b: torch.Tensor, *, subset_size: int, subsets: int = 100, seed: int = 0
) -> tuple[float, float]:
    """KID mean and std over ``subsets`` random subsets (torch-fidelity's polynomial-kernel MMD)."""
    from torch_fidelity.metric_kid import KEY_METRIC_KID_MEAN, KEY_METRIC_KID_STD, kid_features_to_metric

    subset_size = min(subset_size, len(features_a), len(features_b))
    out = kid_features_to_metric(
        features_a,
        features_b,
        kid_subsets=subsets,
        kid_subset_size=subset_size,
        kid_degree=3,
        kid_gamma=None,
        kid_coef0=1,
        rng_seed=seed,
        verbose=False,
    )
    return out[KEY_METRIC_KID_MEAN], out[KEY_METRIC_KID_STD]


def nearest_domain_distance(
    extractor, generated: np.ndarray, reference: np.ndarray, batch_size: int = 100
) -> np.ndarray:
    """Per generated image, the smallest LPIPS-style distance to any reference image (domain features).

    Exact pairwise form of :func:`~benchmark.quality.features.lpips_style_distance`:
    ``mean_l mean_hw ||a - b||^2 = mean_l (|a|^2 + |b|^2 - 2 a·b) / (H_l W_l)`` with unit-normalised
    channel vectors (zero vectors stay zero), computed as one matrix product per level.
    """
    import torch.nn.functional as F

    def flat_levels(images):
        """Per level: unit-normalised maps of every image flattened to (N, C·H·W), and H·W."""
        batches = [
            extractor.levels(to_tensor(images[start : start + batch_size]))
            for start in range(0, len(images), batch_size)
        ]
        positions = [level.shape[2] * level.shape[3] for level in batches[0]]
        flat = [
            torch.cat([F.normalize(batch[k], dim=1, eps=1e-10).flatten(1).double() for batch in batches])
            for k in range(len(positions))
        ]
        return flat, positions

    (gen, positions), (ref, _) = flat_levels(generated), flat_levels(reference)
    distance = torch.zeros(len(generated), len(reference), dtype=torch.float64)
    for a, b, n in zip(gen, ref, positions):
        squared = (a * a).sum(1, keepdim=True) + (b * b).sum(1)[None, :] - 2 * a @ b.T
        distance += squared.clamp_min(0) / n
    return (distance / len(positions)).min(dim=1).values.numpy()


def lpips_weights_available() -> bool:
    """True when torchvision's AlexNet weights (lpips' backbone) are in the torch hub cache."""
    return (Path(torch.hub.get_dir()) / "checkpoints" / LPIPS_ALEXNET_FILE).is_file()


def nearest_lpips(model, generated: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Per generated image, the smallest lpips distance to any reference image (an ``lpips.LPIPS`` model)."""
    ref = to_tensor(reference).float().div(127.5).sub(1)
    out = np.empty(len(generated))
    with torch.no_grad():
        for i, image in enumerate(to_tensor(generated).float().div(127.5).sub(1)):
            out[i] = float(model(image[None].expand(len(ref), -1, -1, -1), ref).min())
    return out
