# Two entry points on a fresh machine: `make run` and `make test`.
# Both create .venv once (torch first, then the pinned project); later calls reuse it.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export DVC_NO_ANALYTICS := 1

.PHONY: install run test test-fast clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	# torch first, pinned: letting pip resolve it pulls a newer release with CUDA packages.
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -c constraints.txt -e '.[test]'
	touch $(STAMP)

run: install
	test -d .dvc || $(BIN)/dvc init --no-scm --quiet
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/dvc repro
	$(BIN)/rechub summary

# one pytest-xdist worker per core (tests/conftest.py gives each one torch thread); the slowest tests listed
test: install
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python -m pytest -q -n auto --dist worksteal --durations=15

# unit and component tests only (skips the learning, pipeline and DAG runs)
test-fast: install
	$(BIN)/python -m pytest -q -n auto --dist worksteal -m "not slow"

clean:
	rm -rf data/raw data/processed data/samples models metrics plots reports bundle
