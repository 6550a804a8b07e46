"""One thin CLI per DVC stage: ``python -m benchmark.stages.<stage>``. Logic lives in the library."""
