"""DiffAug's generator family: text- and mask-conditioned latent diffusion inpainting (paper §3.1).

Pieces, kept apart: the prompt bank (``prompts``), the frozen text encoder (``text_encoder``), the
latent autoencoder (``autoencoder``), the inpainting denoiser and its eq. 7 trainer
(``inpainting``), the DDIM + guidance sampler (``sampler``), mask placement (``placement``) and
the dataset-level job drawing (``jobs``). Complete generators follow the contract of ``base``
and are registered in ``GENERATORS`` (lazy ``"module:Class"`` strings, keyed by
``generator.backend`` in params.yaml).
"""

from __future__ import annotations

import importlib

GENERATORS: dict[str, str] = {
    "latent": "benchmark.generators.latent:LatentInpaintingGenerator",
    "sdxl_inpainting": "benchmark.generators.sdxl:SDXLInpaintingGenerator",
}


def get_generator(name: str):
    """The generator class registered as ``name``."""
    if name not in GENERATORS:
        raise KeyError(f"unknown generator backend {name!r}; registered: {', '.join(sorted(GENERATORS))}")
    module_name, class_name = GENERATORS[name].split(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    if cls.name != name:
        raise RuntimeError(f"GENERATORS[{name!r}] points to {cls.__name__} whose name is {cls.name!r}")
    return cls


__all__ = ["GENERATORS", "get_generator"]
