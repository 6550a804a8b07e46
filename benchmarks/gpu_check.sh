#!/usr/bin/env bash
# GPU readiness in one command (about 10 minutes on one GPU): a shortened paper-scale pipeline in a scratch
# workspace, timed; writes results/benchmarks/gpu_<gpu name>.json, which Table 4's report shows.
#   benchmarks/gpu_check.sh                      # CUDA when present, else the CPU (gpu_cpu.json)
#   benchmarks/gpu_check.sh --device cpu --tiny  # the CPU fallback, well under a minute
# Options: python benchmarks/gpu_check.py --help
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-.venv/bin/python}"
[ -x "$PYTHON" ] || PYTHON=python3
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 DVC_NO_ANALYTICS=1 PYTHONHASHSEED=0 MPLBACKEND=Agg
exec "$PYTHON" benchmarks/gpu_check.py "$@"
