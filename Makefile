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
# `make serve`: the registered model to serve over HTTP, and where. MLflow execs `uvicorn` by name,
# so the venv's bin goes on PATH (no need to activate it). The tracking store defaults to the
# project's own, as in config.py; an exported MLFLOW_TRACKING_URI wins.
MODEL ?= models:/imdb-sentiment-cnn@champion
PORT ?= 5001
HOST ?= 127.0.0.1
MLFLOW_TRACKING_URI ?= sqlite:///$(CURDIR)/mlflow/mlflow.db

# `make up`: the local stack (Prefect server, work pool, deployments, worker, MLflow server).
PREFECT_PORT ?= 4200
MLFLOW_PORT ?= 5000
# STACK=postgres: both servers on PostgreSQL, behind authentication (flows/stack_postgres.py);
# unset: $$IMDB_SENTIMENT_STACK_BACKEND, else sqlite. POSTGRES_PORT: the stack's own cluster (5433).
STACK ?=
POSTGRES_PORT ?=

.PHONY: install run test serve up down status lint format clean

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

serve: install
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" MLFLOW_TRACKING_URI="$(MLFLOW_TRACKING_URI)" \
		$(CURDIR)/$(VENV)/bin/mlflow models serve -m "$(MODEL)" --env-manager local \
		-h $(HOST) -p $(PORT)

up: install
	$(PY) -m flows.stack up --prefect-port $(PREFECT_PORT) --mlflow-port $(MLFLOW_PORT) \
		$(if $(STACK),--backend $(STACK)) $(if $(POSTGRES_PORT),--postgres-port $(POSTGRES_PORT))

down: install
	$(PY) -m flows.stack down

status: install
	$(PY) -m flows.stack status --prefect-port $(PREFECT_PORT) --mlflow-port $(MLFLOW_PORT)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean:
	rm -rf $(VENV) .cache .pytest_cache
