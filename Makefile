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
# Local runs put many components on few cores: idle OpenMP threads (XGBoost) sleep instead of spinning.
export OMP_WAIT_POLICY ?= PASSIVE
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: setup browser demo test test-fast test-unit bench chaos lint format model-registry stack simulate-file-drops simulate-stream evidently-ui clean \
	checkov provider-schema docker-requirements plan apply destroy

setup: $(STAMP)

$(STAMP): Pipfile.lock
	@$(PYTHON) -m pipenv --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet "$(PIPENV_PIN)"
	$(PYTHON) -m pipenv sync --dev
	@rm -f $(VENV)/.synced-*
	@touch $@

demo: setup  ## Run the whole pipeline on the embedded local stack (DEMO_FILES="a.csv b.csv" to choose files)
	$(PY) -m infra.local.demo

# Test files run in parallel, each whole on one worker (its module fixtures built once), e2e files first
# (collection order kept): most of a test's time is waiting on servers and subprocesses, so four workers
# overlap well on two cores. TEST_WORKERS=0 runs in this process.
TEST_WORKERS ?= 4
PYTEST_PARALLEL := -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder

# Headless Chromium for the e2e test that opens the Prefect and Evidently UIs (tests/browser.py finds the same
# executables): Debian's package, installed with apt-get when none is there and the shell is root (as CI runs) or
# may sudo without a password; otherwise that test is skipped locally with its reason, and under CI (CI set) a
# missing browser is an error.
BROWSERS := chromium chromium-browser google-chrome
browser:  ## Debian's chromium for the UI test, installed when missing (needs root)
	@if for b in $(BROWSERS); do command -v $$b; done | grep -q .; then \
		:; \
	elif command -v apt-get >/dev/null 2>&1 && { [ "$$(id -u)" = 0 ] || sudo -n true 2>/dev/null; }; then \
		as_root=$$([ "$$(id -u)" = 0 ] || echo "sudo -n"); \
		$$as_root apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$as_root apt-get install -y -qq chromium >/dev/null; \
	elif [ -n "$$CI" ]; then \
		echo "error: no chromium, and it cannot be installed without root or sudo and apt-get" >&2; exit 1; \
	else \
		echo "note: no chromium: the UI test is skipped (as root: make browser)"; \
	fi

test: setup browser  ## The whole test suite: unit, integration (emulator, Postgres, MLflow, Prefect) and e2e
	$(PY) -m pytest $(PYTEST_PARALLEL)

test-fast: setup  ## Everything but the e2e group (whole pipeline runs on the local stack)
	$(PY) -m pytest $(PYTEST_PARALLEL) -m "not e2e"

test-unit: setup
	$(PY) -m pytest $(PYTEST_PARALLEL) tests/unit

bench: setup  ## Benchmarks; JSON results under .local/bench/
	$(PY) -m tests.benchmarks

chaos: setup  ## 100,000 rows through the local stack under injected faults, reconciled; .local/bench/chaos.json
	$(PY) -m infra.local.chaos

# checkov pins versions (boto3, packaging, ...) that conflict with Pipfile.lock: it gets a virtual
# environment of its own under .local/tools, created once per version of its requirements file.
CHECKOV_REQUIREMENTS := infra/lint/checkov-requirements.txt
CHECKOV_VENV := .local/tools/checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed-$(shell sha256sum $(CHECKOV_REQUIREMENTS) | cut -c1-12)
CHECKOV_SCAN := BC_SKIP_MAPPING=TRUE $(CHECKOV_VENV)/bin/checkov --directory . \
	--framework terraform dockerfile github_actions --skip-path '\.venv' --skip-path '\.local' \
	--skip-download --compact --quiet

# The AWS provider's schema that infra/terraform is checked against (terraform validate needs the provider
# plugin, which cannot be downloaded): extracted from the package pinned in infra/lint/provider-schema.txt
# into .local/tools/provider-schema, once per version of the pin or of the code that extracts it (about
# 32 MB fetched, 3 MB kept).
PROVIDER_SCHEMA_PIN := infra/lint/provider-schema.txt
PROVIDER_SCHEMA_DIR := .local/tools/provider-schema
PROVIDER_SCHEMA_STAMP := $(PROVIDER_SCHEMA_DIR)/.installed-$(shell sha256sum $(PROVIDER_SCHEMA_PIN) | cut -c1-12)

lint: setup $(CHECKOV_STAMP) $(PROVIDER_SCHEMA_STAMP)  ## ruff; pre-commit hooks (terraform fmt, hadolint, actionlint, shellcheck, image requirements); checkov; Terraform against the provider schema
	ruff check .
	ruff format --check .
	pre-commit run --all-files
	$(PY) -m infra.lint.provider_schema infra/terraform
	$(CHECKOV_SCAN)

$(CHECKOV_STAMP): $(CHECKOV_REQUIREMENTS)
	rm -rf $(CHECKOV_VENV)
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet --disable-pip-version-check --requirement $(CHECKOV_REQUIREMENTS)
	@touch $@

checkov: $(CHECKOV_STAMP)  ## checkov alone: Terraform, Dockerfiles, workflows; zero failed checks, every skip with its reason
	$(CHECKOV_SCAN)

$(PROVIDER_SCHEMA_STAMP): $(PROVIDER_SCHEMA_PIN) infra/lint/provider_schema/jsii.py infra/lint/provider_schema/fetch.py
	rm -rf $(PROVIDER_SCHEMA_DIR)
	$(PYTHON) -m infra.lint.provider_schema.fetch
	@touch $@

provider-schema: $(PROVIDER_SCHEMA_STAMP)  ## Fetch the pinned AWS provider schema that `make lint` and the tests check infra/terraform against

docker-requirements: setup  ## Regenerate infra/docker/requirements-<image>.txt from Pipfile.lock
	$(PY) -m infra.docker.requirements

format: setup
	ruff check --fix .
	ruff format .

model-registry: setup  ## Train, register XGBoostChurnModel, set alias staging if the gate passes
	$(PY) -m training.train

stack: setup  ## The embedded local stack in the foreground (Ctrl-C stops it)
	$(PY) -m infra.local.stack

simulate-file-drops: setup  ## Upload the sample files to the running local stack's input prefix at an interval (SIMULATE_ARGS="--aws": to AWS, after showing the account and asking)
	$(PY) -m infra.local.simulate file-drops $(SIMULATE_ARGS)

simulate-stream: setup  ## Put generated records, unlabelled, on the running local stack's stream at a rate (SIMULATE_ARGS="--label-share 0.5 --label-delay 30": half their labels later as label files; "--aws": to AWS, after showing the account and asking)
	$(PY) -m infra.local.simulate stream $(SIMULATE_ARGS)

evidently-ui: setup  ## Evidently UI on the monitor's local workspace (EVIDENTLY_WORKSPACE, port EVIDENTLY_UI_PORT)
	$(PY) -m batch_monitor.reports

clean:
	rm -rf .local

# ---------------------------------------------------------------------------------------------------
# AWS deployment (see "Deploy to AWS" in README.md). Terraform: the `terraform` on PATH, else the one
# of the locked environment (python -m infra.lint.terraform, which cannot prompt: plans are saved and
# applied as files, destroy asks for CONFIRM_DESTROY).
# ---------------------------------------------------------------------------------------------------
DEPLOY_ENV ?= dev
TF_DIR := infra/terraform
TF_BACKEND_CONFIG ?= $(TF_DIR)/vars/$(DEPLOY_ENV).backend.hcl
TF_VAR_FILE ?= $(TF_DIR)/vars/$(DEPLOY_ENV).tfvars
TF_PLAN := .local/terraform/$(DEPLOY_ENV).tfplan
TF_PLAN_ARGS ?=
IMAGE_TAG ?= $(shell git rev-parse HEAD 2>/dev/null)
TERRAFORM ?= $(if $(shell command -v terraform 2>/dev/null),terraform,$(PY) -m infra.lint.terraform)
TF := $(TERRAFORM) -chdir=$(TF_DIR)

define deploy_preflight
	@test -f "$(TF_BACKEND_CONFIG)" || { echo "error: no backend configuration $(TF_BACKEND_CONFIG): copy $(TF_DIR)/vars/dev.backend.hcl.template to it and name the state bucket (README: Deploy to AWS)" >&2; exit 1; }
	@! grep -q REPLACE "$(TF_BACKEND_CONFIG)" || { echo "error: $(TF_BACKEND_CONFIG) still has REPLACE placeholders: name your state bucket" >&2; exit 1; }
	@test -f "$(TF_VAR_FILE)" || { echo "error: no variables file $(TF_VAR_FILE): copy $(TF_DIR)/vars/dev.tfvars.template to it and fill it in (README: Deploy to AWS)" >&2; exit 1; }
	@$(PY) -c 'import sys, boto3; sys.exit(boto3.Session().get_credentials() is None)' 2>/dev/null || { echo "error: no AWS credentials: set AWS_PROFILE (e.g. after aws sso login) or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (README: Deploy to AWS, IAM permissions)" >&2; exit 1; }
	@test -n "$(IMAGE_TAG)" || { echo "error: IMAGE_TAG is empty: pass the tag of the pushed images, e.g. IMAGE_TAG=<git sha>" >&2; exit 1; }
endef

plan: setup  ## Terraform plan of the AWS stack, saved for `make apply` (DEPLOY_ENV=dev IMAGE_TAG=<git sha> TF_PLAN_ARGS=...)
	$(deploy_preflight)
	@mkdir -p $(dir $(TF_PLAN))
	$(TF) init -input=false -reconfigure -backend-config=$(abspath $(TF_BACKEND_CONFIG))
	$(TF) plan -input=false -var-file=$(abspath $(TF_VAR_FILE)) -var=image_tag=$(IMAGE_TAG) -out=$(abspath $(TF_PLAN)) $(TF_PLAN_ARGS)

apply: setup  ## Apply the plan that `make plan` saved (and nothing else)
	$(deploy_preflight)
	@test -f "$(TF_PLAN)" || { echo "error: no saved plan $(TF_PLAN): run make plan first and review it" >&2; exit 1; }
	$(TF) apply -input=false $(abspath $(TF_PLAN))
	@rm -f $(TF_PLAN)

destroy: setup  ## Delete the AWS stack: make destroy CONFIRM_DESTROY=<DEPLOY_ENV> (README: Tear down)
	$(deploy_preflight)
	@test "$(CONFIRM_DESTROY)" = "$(DEPLOY_ENV)" || { echo "error: this deletes the $(DEPLOY_ENV) stack and its data: run make destroy CONFIRM_DESTROY=$(DEPLOY_ENV)" >&2; exit 1; }
	$(TF) init -input=false -reconfigure -backend-config=$(abspath $(TF_BACKEND_CONFIG))
	$(TF) destroy -input=false -auto-approve -var-file=$(abspath $(TF_VAR_FILE)) -var=image_tag=$(IMAGE_TAG)
