"""One thin CLI per DVC stage: ``python -m benchmark.stages.<stage>``. Logic lives in the library."""

from benchmark import numerics as _numerics

_numerics.fix_hash_seed()  # a stage run without the Makefile (plain `dvc repro`) gets PYTHONHASHSEED=0 too
