# The two commands of the README: `make demo` (main job, end to end) and `make test`.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test venv lint bench clean

$(BIN)/drivewm: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0 || $(BIN)/pip install -q torch
	$(BIN)/pip install -q -e .[dev]
	touch $(BIN)/drivewm

venv: $(BIN)/drivewm

demo: venv
	$(BIN)/drivewm demo --out runs/demo

test: venv
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -n 2 -q tests

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: venv
	for b in bench/bench_*.py; do $(BIN)/python $$b || exit 1; done
