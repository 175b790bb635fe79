# Every target sets up what it needs itself: pipenv (installed with pip when missing), the locked
# environment in .venv, local state under .local/.
SHELL := /bin/bash
PYTHON ?= python3
PIPENV_PIN := pipenv==2026.10.3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.synced-$(shell sha256sum Pipfile.lock | cut -c1-12)

export PIPENV_VENV_IN_PROJECT := 1
export PIPENV_NOSPIN := 1
export PIPENV_VERBOSITY := -1
export PIPENV_YES := 1
export DO_NOT_TRACK := 1
export MLFLOW_DISABLE_TELEMETRY := true
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR := false
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: setup demo test test-unit bench lint format model-registry stack simulate-file-drops simulate-stream evidently-ui clean

setup: $(STAMP)

$(STAMP): Pipfile.lock
	@$(PYTHON) -m pipenv --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet "$(PIPENV_PIN)"
	$(PYTHON) -m pipenv sync --dev
	@rm -f $(VENV)/.synced-*
	@touch $@

demo: setup  ## Run the whole pipeline on the embedded local stack (DEMO_FILES="a.csv b.csv" to choose files)
	$(PY) -m infra.local.demo

test: setup  ## The whole test suite: unit, integration (emulator, Postgres, MLflow, Prefect) and e2e
	$(PY) -m pytest

test-unit: setup
	$(PY) -m pytest tests/unit

bench: setup  ## Benchmarks; JSON results under .local/bench/
	$(PY) -m benchmarks

lint: setup
	ruff check .
	ruff format --check .
	pre-commit run --all-files

format: setup
	ruff check --fix .
	ruff format .

model-registry: setup  ## Train, register XGBoostChurnModel, set alias staging if the gate passes
	$(PY) -m training.train

stack: setup  ## The embedded local stack in the foreground (Ctrl-C stops it)
	$(PY) -m infra.local.stack

simulate-file-drops: setup  ## Upload the sample files to the running stack's input prefix at an interval
	$(PY) -m producer.simulate file-drops

simulate-stream: setup  ## Put generated records on the running stack's stream at a rate
	$(PY) -m producer.simulate stream

clean:
	rm -rf .local
