"""DiffAug benchmark suite: diffusion-based data augmentation for medical image segmentation.

The package is grouped by family (see README.md):

- ``benchmark.data``       datasets (``DATASETS`` registry), procedural generators, splits
- ``benchmark.methods``    segmentation methods (``METHODS`` registry)
- ``benchmark.metrics``    per-image metric functions (pure numpy)
- ``benchmark.stats``      aggregation over seeds, significance tests
- ``benchmark.reporting``  tables and figures that the notebooks call
- ``benchmark.stages``     one thin CLI per DVC stage (``python -m benchmark.stages.<stage>``)
- ``benchmark.utils``      seeding, atomic I/O, provenance

Importing ``benchmark`` is cheap: heavy libraries (torch, diffusers) load lazily in the modules
that need them.
"""

__version__ = "0.1.0"

# Before anything imports NumPy or torch: one CPU code path on every x86-64 machine (bit-identical
# reruns of the default; see benchmark/numerics.py). BENCHMARK_NUMERICS=native switches it off.
from benchmark import numerics as _numerics  # noqa: E402

_numerics.pin()
