"""Seeds derived by hashing, so adding a component never shifts another component's results.

Every random stream in the suite starts from one base seed combined with the names of the
component that uses it, e.g. ``derive_seed(base, "train", "synth_polyp", "unet", 0)``.
Library code never touches a global RNG: it receives an explicit ``numpy.random.Generator``
or ``torch.Generator`` built from such a seed.
"""

from __future__ import annotations

import hashlib

import numpy as np

_SEED_MODULUS = 2**31 - 1  # fits every RNG (numpy, torch, python) and int32 fields


def derive_seed(base_seed: int, *names: object) -> int:
    """Return a seed in ``[0, 2**31 - 1)`` from a base seed and component names.

    The derivation is a SHA-256 of the base seed and the names joined by ``/``, so it is
    stable across Python versions, platforms and processes (unlike ``hash()``).

    Args:
        base_seed: the experiment's base seed (any int).
        *names: strings or ints that identify the component (stage, dataset, method, index).

    Returns:
        A non-negative int below ``2**31 - 1``.
    """
    if isinstance(base_seed, bool) or not isinstance(base_seed, (int, np.integer)):
        raise TypeError(f"base_seed must be an int, got {base_seed!r}")
    key = "/".join([str(int(base_seed)), *map(str, names)])
    digest = hashlib.sha256(key.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % _SEED_MODULUS


def numpy_rng(base_seed: int, *names: object) -> np.random.Generator:
    """A ``numpy.random.Generator`` (PCG64) seeded by :func:`derive_seed`."""
    return np.random.default_rng(derive_seed(base_seed, *names))


def torch_generator(base_seed: int, *names: object, device: str = "cpu"):
    """A ``torch.Generator`` on ``device`` seeded by :func:`derive_seed`."""
    import torch

    generator = torch.Generator(device=device)
    generator.manual_seed(derive_seed(base_seed, *names))
    return generator
