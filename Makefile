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

.PHONY: env repro test test-all reports verify clean-results

env: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade --quiet "pip>=23.2"
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	@touch $(STAMP)

repro: $(STAMP)
	$(BIN)/dvc repro

test: $(STAMP)
	$(BIN)/python -m pytest -q -n 2 --dist loadfile

# Includes tests marked `slow` (several minutes each).
test-all: $(STAMP)
	$(BIN)/python -m pytest -q -n 2 --dist loadfile -m ""

# After `make repro`: how far the rerun is from the committed results (exact match, or each run's
# difference next to the seed-to-seed spread; exit status 1 only beyond seed noise). See README, "Reproducibility".
verify: $(STAMP)
	$(BIN)/python -m benchmark.verify

# Re-render the notebooks from existing results without re-running training.
reports: $(STAMP)
	$(BIN)/dvc repro report

clean-results:
	rm -rf data/procedural data/prepared models results
