# Two commands do all the set-up (see README.md):
#   make repro   create the environment if needed, then run the default `dvc repro`
#   make test    create the environment if needed, then run the test suite
#   make verify  after make repro: compare the rerun with the committed results
# The environment is a virtualenv in .venv built from pyproject.toml (pinned versions).

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

# Offline by design: nothing is fetched from model hubs at run time.
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export HF_DATASETS_OFFLINE := 1
export DVC_NO_ANALYTICS := 1
export PYTHONHASHSEED := 0
export MPLBACKEND := Agg
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: env repro kvasir lint test test-all reports verify browser clean-results gpu-check

env: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade --quiet "pip>=23.2"
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	@touch $(STAMP)

repro: $(STAMP)
	$(BIN)/dvc repro

# The real-data profile (README, "Real-data profile: Kvasir-SEG"): params_kvasir.yaml in its own workspace
# profiles/kvasir/; needs data/raw/Kvasir-SEG (and data/raw/sessile-main-Kvasir-SEG for the flat stratum).
kvasir: $(STAMP)
	@test -d data/raw/Kvasir-SEG || (echo "data/raw/Kvasir-SEG is missing: put (or link) the publisher's Kvasir-SEG folder there, e.g. ln -s /datasets/Kvasir-SEG data/raw/Kvasir-SEG" >&2; exit 1)
	$(BIN)/dvc repro profiles/kvasir/dvc.yaml

# Lint and format check (ruff, configured in pyproject.toml), then the tests.
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: lint
	$(BIN)/python -m pytest -q -n 2 --dist loadfile

# Includes tests marked `slow` (several minutes each).
test-all: $(STAMP)
	$(BIN)/python -m pytest -q -n 2 --dist loadfile -m ""

# After `make repro`: how far the rerun is from the committed results (exact match, or each run's
# difference next to the seed-to-seed spread; exit status 1 only beyond seed noise). See README, "Reproducibility".
verify: $(STAMP)
	$(BIN)/python -m benchmark.verify

# Re-render the notebooks from existing results without re-running training. Needs the pipeline's
# intermediate files (data/prepared, data/synthetic, models/): on a fresh clone it stops at once and
# says to run `make repro` first, instead of letting `dvc repro report` retrain everything.
reports: $(STAMP)
	$(BIN)/python -m benchmark.reporting.inputs
	$(BIN)/dvc repro report

# Headless Chromium for tests/test_report_browser.py (Debian's `chromium` package); does nothing when
# a chromium is already on PATH. Uses sudo only when not root.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	  ($(SUDO) apt-get update -q && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium)
	@chromium --version 2>/dev/null || chromium-browser --version

# GPU readiness in one command (under 10 minutes on one CUDA GPU; README, "GPU readiness check"): a shortened
# paper-scale pipeline in a scratch workspace, timed -> results/benchmarks/gpu_<gpu name>.json (Table 4's report).
# Options pass through, e.g. the CPU fallback: make gpu-check GPU_CHECK_ARGS="--device cpu --tiny"
gpu-check: $(STAMP)
	benchmarks/gpu_check.sh $(GPU_CHECK_ARGS)

clean-results:
	rm -rf data/procedural data/prepared models results
