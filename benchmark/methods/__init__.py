"""Segmentation methods: one explicit registry, ``METHODS``, keyed by the name used in params.yaml
(``train.methods`` and the ``train.<name>`` section), run names (``<name>[+<data>]``)
and results folders (``results/<dataset>/runs/<name>[+<data>]``).

Methods are imported lazily so ``import benchmark.methods`` stays cheap; each entry maps the
name to ``"module:Class"``.
"""

from __future__ import annotations

import importlib

from benchmark.methods.base import SegmentationMethod

METHODS: dict[str, str] = {
    "diffaug": "benchmark.methods.latent_seg.method:DiffAugSegmenter",
    "difftrans": "benchmark.methods.difftrans:DiffTrans",
    "medsegdiff_v1": "benchmark.methods.medsegdiff:MedSegDiffV1",
    "medsegdiff_v2": "benchmark.methods.medsegdiff:MedSegDiffV2",
    "resnet50_unet": "benchmark.methods.resnet50_unet:ResNet50UNet",
    "sdseg": "benchmark.methods.latent_seg.method:SDSeg",
    "transunet": "benchmark.methods.transunet:TransUNet",
    "unet": "benchmark.methods.unet:UNet",
}


def get_method(name: str) -> type[SegmentationMethod]:
    """The method class registered as ``name``."""
    if name not in METHODS:
        raise KeyError(f"unknown method {name!r}; registered methods: {', '.join(sorted(METHODS))}")
    module_name, class_name = METHODS[name].split(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    if cls.name != name:
        raise RuntimeError(f"METHODS[{name!r}] points to {cls.__name__} whose name is {cls.name!r}")
    return cls


__all__ = ["METHODS", "SegmentationMethod", "get_method"]
