# Spinner: `make run` starts it on this machine, `make test` runs every check.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP_RUN := $(VENV)/.installed-run
STAMP_DEV := $(VENV)/.installed-dev
PIP := $(BIN)/python -m pip install -q -c constraints.txt
CODE := spinner services gateway tests scripts bench
ARGS ?=

.PHONY: run test venv install install-dev lint typecheck pytest protos lock clean

$(BIN)/python:
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Spinner needs Python 3.11 or newer"'
	@# Debian ships venv separately: install it when missing and we may (root).
	$(PYTHON) -m venv $(VENV) || { [ "$$(id -u)" = 0 ] && rm -rf $(VENV) \
		&& apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null && $(PYTHON) -m venv $(VENV); }

venv: $(BIN)/python

$(STAMP_RUN): $(BIN)/python pyproject.toml constraints.txt
	$(PIP) -e .
	@touch $@

$(STAMP_DEV): $(BIN)/python pyproject.toml constraints.txt
	$(PIP) -e '.[dev]'
	@touch $@ $(STAMP_RUN)

install: $(STAMP_RUN)
install-dev: $(STAMP_DEV)

## Start Spinner standalone with the example DAGs (UI on http://127.0.0.1:8080).
run: install
	exec $(BIN)/spinner standalone --dags examples/dags $(ARGS)

## Everything CI checks: servers, lint, types, the whole test suite.
test: install-dev
	bash scripts/ensure-test-services.sh
	$(MAKE) --no-print-directory lint typecheck pytest

lint: install-dev
	$(BIN)/ruff check $(wildcard $(CODE))
	$(BIN)/ruff format --check $(wildcard $(CODE))

typecheck: install-dev
	$(BIN)/mypy $(filter-out tests,$(wildcard $(CODE)))

pytest: install-dev
	$(BIN)/python -m pytest -q -p no:cacheprovider $(PYTEST_ARGS)

## Regenerate spinner/v1 from protos/ (commit the result).
protos: install-dev
	$(BIN)/python scripts/gen_protos.py

## Re-resolve constraints.txt (the lock) from pyproject.toml in a clean environment.
lock:
	rm -rf /tmp/spinner-lock && $(PYTHON) -m venv /tmp/spinner-lock
	/tmp/spinner-lock/bin/pip install -q -e '.[dev]'
	/tmp/spinner-lock/bin/pip freeze --exclude-editable | grep -v '^-e ' > constraints.txt

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache build *.egg-info
