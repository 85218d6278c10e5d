# Two commands do all the set-up: `make run` and `make test`. Both create .venv and install the
# project on first use (idempotent: later calls reuse it until pyproject.toml changes).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# Pinned so pip never resolves an unpinned `torch` to a multi-GB CUDA wheel on a CPU machine.
# On Linux with an NVIDIA GPU the same pin from PyPI is a CUDA build: training uses the GPU.
TORCH_VERSION ?= 2.13.0
ARGS ?=

.PHONY: install run test lint format clean

install: $(STAMP)

$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "torch==$(TORCH_VERSION)"
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

run: install
	$(PY) -m flows.pipeline $(ARGS)

test: install
	$(PY) -m pytest $(ARGS)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean:
	rm -rf $(VENV) .cache .pytest_cache
