# prectr — one short target per verb. `make run` and `make test` are all a fresh clone needs.
SHELL := /bin/bash
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
REDIS_PORT ?= 6379
DATA_DIR ?= artifacts/data/synthetic-small
EXTRAS ?= train,dev,loadtest
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)

.PHONY: run test lint format typecheck venv redis data bundle clean

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

test: venv redis lint
	PRECTR_TEST_REDIS_PORT=$(REDIS_PORT) $(BIN)/pytest -q

data: venv
	@test -f $(DATA_DIR)/meta.json || $(BIN)/prectr data build --source synthetic --profile small --seed 0 --out $(DATA_DIR)

run: venv data
	$(BIN)/prectr run --data $(DATA_DIR)

clean:
	rm -rf artifacts .pytest_cache .ruff_cache .mypy_cache
