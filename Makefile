# The project's commands. A fresh machine needs only Python 3.11, Node 20, make and git: the first run creates
# the tool environments it needs (.venv-tools with pipenv, .venv from Pipfile.lock, .venv-checkov for the gate).
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
PIPENV_VERSION := 2026.10.3
export PIPENV_VENV_IN_PROJECT := 1
export PIPENV_NOSPIN := 1
export PIPENV_IGNORE_VIRTUALENVS := 1
export PIPENV_VERBOSITY := -1
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20

PIPENV := .venv-tools/bin/pipenv
VENV_PYTHON := .venv/bin/python
VENV_STAMP := .venv/.synced-from-lock
OUT ?= cdktf.out

.PHONY: help deps synth test lint bench deploy clean

help: ## List the commands
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

$(PIPENV):
	$(PYTHON) -m venv .venv-tools
	.venv-tools/bin/pip install --quiet --disable-pip-version-check pipenv==$(PIPENV_VERSION)

$(VENV_STAMP): Pipfile.lock | $(PIPENV)
	$(PIPENV) sync --dev
	touch $@

deps: $(VENV_STAMP) ## Install the locked dependencies (first run only)

synth: deps ## Synthesize every environment into cdktf.out (no AWS credentials needed)
	$(VENV_PYTHON) main.py

test: deps ## Run every test
	$(VENV_PYTHON) -m pytest

lint: deps ## Lint the Python code
	$(VENV_PYTHON) -m ruff check .

bench: deps ## Measure synth time and memory, lazy provider loading vs eager imports
	$(VENV_PYTHON) bench/bench_synth.py

node_modules/.package-lock.json: package-lock.json
	npm ci --no-audit --no-fund

deploy: deps node_modules/.package-lock.json ## Deploy one environment's stacks with the cdktf CLI: make deploy ENV=dev
	@test -n "$(ENV)" || { echo "usage: make deploy ENV=<dev|staging|prod>"; exit 2; }
	PATH="$(CURDIR)/.venv-tools/bin:$$PATH" npx --no-install cdktf deploy '$(ENV)-*'

clean: ## Remove build output (keeps the tool environments)
	rm -rf cdktf.out .cdktf.out.* reports .pytest_cache

# --- policy gate (checkov) -------------------------------------------------------------------------------------
