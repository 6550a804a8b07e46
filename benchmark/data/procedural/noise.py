"""Noise and geometry primitives shared by the procedural generators (numpy only).

All functions take an explicit ``numpy.random.Generator`` and return float32 arrays, so a
generator is deterministic for a seed and never touches a global RNG.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage


def fractal_noise(
    rng: np.random.Generator,
    shape: tuple[int, int],
    *,
    octaves: int = 4,
    base_cells: int = 4,
    persistence: float = 0.5,
) -> np.ndarray:
    """Smooth value noise summed over octaves (a cheap Perlin substitute).

    Args:
        rng: random generator.
        shape: ``(H, W)`` of the output.
        octaves: number of frequency doublings; each adds finer detail.
        base_cells: grid cells across the shorter side at the coarsest octave.
        persistence: amplitude factor from one octave to the next.

    Returns:
        float32 array ``(H, W)`` rescaled to ``[0, 1]``.
    """
    height, width = shape
    total = np.zeros(shape, dtype=np.float32)
    amplitude = 1.0
    for octave in range(octaves):
        cells = base_cells * 2**octave
        grid_h = max(2, int(round(cells * height / min(shape))) + 1)
        grid_w = max(2, int(round(cells * width / min(shape))) + 1)
        grid = rng.random((grid_h, grid_w), dtype=np.float32)
        zoom = (height / grid_h, width / grid_w)
        layer = ndimage.zoom(grid, zoom, order=3, mode="reflect", grid_mode=True)[:height, :width]
        total += amplitude * layer
        amplitude *= persistence
    total -= total.min()
    peak = total.max()
    return total / peak if peak > 0 else total


def smooth(image: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur of a 2-D array (or each channel of an ``(H, W, C)`` array)."""
    if image.ndim == 3:
        return ndimage.gaussian_filter(image, sigma=(sigma, sigma, 0))
    return ndimage.gaussian_filter(image, sigma=sigma)


def coordinate_grid(shape: tuple[int, int], center: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    """Pixel offsets ``(dy, dx)`` from ``center=(cy, cx)``, float32 arrays of ``shape``."""
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float32)
    return yy - np.float32(center[0]), xx - np.float32(center[1])
