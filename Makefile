# prectr — one short target per verb. `make run` and `make test` are all a fresh clone needs.
SHELL := /bin/bash
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
REDIS_PORT ?= 6379
DATA_DIR ?= artifacts/data/synthetic-small
BUNDLE_DIR ?= artifacts/bundles/tiny
PREFS_DIR ?= artifacts/prefs/synthetic-small
EXTRAS ?= train,dev,loadtest
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)

.PHONY: run test lint format typecheck venv redis data bundle prefs loadtest clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	# torch first and exactly pinned: the local CPU wheel satisfies it, anything else pulls CUDA.
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e ".[$(EXTRAS)]"
	rm -f $(VENV)/.installed-* && touch $@

venv: $(STAMP)

redis:
	@bash scripts/ensure_redis.sh $(REDIS_PORT)

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

format: venv
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

typecheck: venv
	$(BIN)/mypy

# duckdb's nanobind bindings print a "leaked instances" report at interpreter exit; it is noise, so it is
# filtered out to keep pytest's summary the last line (pipefail keeps pytest's exit status).
test: venv redis lint typecheck
	set -o pipefail; PRECTR_TEST_REDIS_PORT=$(REDIS_PORT) $(BIN)/pytest -q 2>&1 \
		| grep --line-buffered -v -E '^(nanobind: |See https://nanobind| - leaked | - \.\.\. skipped)'

data: venv
	@test -f $(DATA_DIR)/meta.json || $(BIN)/prectr data build --source synthetic --profile small --seed 0 --out $(DATA_DIR)

bundle: data
	@test -f $(BUNDLE_DIR)/manifest.json || $(BIN)/prectr export tiny --data $(DATA_DIR) --out $(BUNDLE_DIR)

prefs: data
	@test -f $(PREFS_DIR)/meta.json || $(BIN)/prectr prefs mine --data $(DATA_DIR) --out $(PREFS_DIR)

# Serves the bundle on the embedded preference store; with PRECTR_REDIS__URL set, publishes the mined
# preferences there first and reads them from Redis.
run: bundle prefs
	@if [ -n "$$PRECTR_REDIS__URL" ]; then $(BIN)/prectr prefs publish --in $(PREFS_DIR) --redis "$$PRECTR_REDIS__URL"; fi
	$(BIN)/prectr run --data $(DATA_DIR) --bundle $(BUNDLE_DIR) --prefs $(PREFS_DIR)

# Load test: headless locust against LOADTEST_URL (starts the service when nothing answers), then the report.
# With Redis: PRECTR_REDIS__URL=redis://127.0.0.1:$(REDIS_PORT)/0 make loadtest
LOADTEST_URL ?= http://127.0.0.1:8000
LOADTEST_SHAPE ?= steady
LOADTEST_USERS ?= 2
LOADTEST_SECONDS ?= 60
LOADTEST_MAX_ERROR_RATE ?= 0.01
LOADTEST_MAX_P99_MS ?= 250
LOADTEST_ARGS ?=

loadtest: bundle prefs
	@if [ -n "$$PRECTR_REDIS__URL" ]; then $(BIN)/prectr prefs publish --in $(PREFS_DIR) --redis "$$PRECTR_REDIS__URL"; fi
	$(BIN)/python -m loadtest.run --url $(LOADTEST_URL) --shape $(LOADTEST_SHAPE) -u $(LOADTEST_USERS) \
		-t $(LOADTEST_SECONDS) --data-dir $(DATA_DIR) --max-error-rate $(LOADTEST_MAX_ERROR_RATE) \
		--max-p99-ms $(LOADTEST_MAX_P99_MS) \
		--start-cmd "$(BIN)/prectr run --data $(DATA_DIR) --bundle $(BUNDLE_DIR) --prefs $(PREFS_DIR)" $(LOADTEST_ARGS)

clean:
	rm -rf artifacts .pytest_cache .ruff_cache .mypy_cache
