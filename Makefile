# The two commands in the README: `make run` and `make test`. Both build .venv first.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test lint bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# The CPU build of torch first, so nothing later pulls a multi-GB CUDA build.
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[ml,dev]'
	touch $(STAMP)

run: install
	$(BIN)/ssd serve

test: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	# pytest-xdist: one process per core (capped: each ML test process needs ~2 GB); every worker has its own
	# Redis database (tests/harness.py).
	$(BIN)/python -m pytest -q -ra -n auto --maxprocesses 4

bench: install
	$(BIN)/python bench/executor.py
	$(BIN)/python bench/webhook.py
	$(BIN)/python bench/generation.py

clean:
	rm -rf $(VENV) data .pytest_cache
