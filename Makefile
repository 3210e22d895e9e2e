# Spinner: `make run` starts it on this machine, `make test` runs every check CI runs.
#
#   venv       .venv with python3.11 (else python3 >= 3.11); re-runs are no-ops
#   install    Spinner editable with the dev tools, pinned by constraints.txt (the lock)
#   run        Spinner standalone with the example DAGs (ARGS="..." adds flags)
#   test       install, start MariaDB/Mosquitto/Chromium when missing, then lint, typecheck, pytest
#   resilience the fault suite of issue 13 on real processes, local tries and pods, written to
#              docs/resilience.md; not part of test (local 49 min on 2 cores, pods 45 min on a busy
#              machine); ARGS="--backend kubernetes --faults kill-executor --runs 4 --tasks 3" runs less
#   lint       ruff check + ruff format --check
#   typecheck  mypy (strict, see pyproject.toml)
#   protos     regenerate spinner/v1 from protos/ (commit the result)
#   lock       re-resolve constraints.txt from pyproject.toml in a clean venv (commit the result)
SHELL := /bin/bash
.DELETE_ON_ERROR:

ifeq ($(origin PYTHON),undefined)
PYTHON := $(shell command -v python3.11 || command -v python3)
endif
VENV := .venv
BIN := $(VENV)/bin
STAMP_VENV := $(VENV)/.stamp-venv
STAMP_RUN := $(VENV)/.stamp-run
STAMP_DEV := $(VENV)/.stamp-dev
PIP := $(BIN)/python -m pip install -q --disable-pip-version-check -c constraints.txt
# Only the folders that exist: a checkout may not have every one yet.
CODE := $(wildcard spinner services gateway tests bench scripts)
TYPED := $(filter-out tests,$(CODE))
ARGS ?=
PYTEST_ARGS ?=
# Three pytest workers (pytest-xdist): most tests wait on real processes, not on the CPU. On two
# cores two workers kept the CPU 65% busy and three 78%: 11 min for the suite instead of 16.7 (2026-12-02).
# Each shared end-to-end stack stays on one worker (tests/e2e/conftest.py).
# TEST_WORKERS=0 runs everything in one process. The slowest tests are listed at the end of every run.
TEST_WORKERS ?= 3

.PHONY: venv install install-run run test resilience lint typecheck pytest protos lock clean

$(STAMP_VENV):
	@[ -n "$(PYTHON)" ] || { echo "make: no python3.11 or python3 on PATH" >&2; exit 1; }
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Spinner needs Python 3.11 or newer, found " + sys.version)'
	@# Debian ships venv separately (python3-venv): install it when missing and we are root.
	@if [ ! -x $(BIN)/python ] || ! $(BIN)/python -m pip --version >/dev/null 2>&1; then \
		rm -rf $(VENV); \
		if ! $(PYTHON) -m venv $(VENV); then \
			[ "$$(id -u)" = 0 ] || { echo "make: '$(PYTHON) -m venv' failed; install python3-venv" >&2; exit 1; }; \
			rm -rf $(VENV) && apt-get update -qq \
				&& DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null \
				&& $(PYTHON) -m venv $(VENV); \
		fi; \
	fi
	@touch $@

venv: $(STAMP_VENV)

# Runtime dependencies only, for `make run`.
$(STAMP_RUN): $(STAMP_VENV) pyproject.toml constraints.txt
	$(PIP) -e .
	@touch $@

# Runtime and dev dependencies; a dev install also satisfies `run`.
$(STAMP_DEV): $(STAMP_VENV) pyproject.toml constraints.txt
	$(PIP) -e '.[dev]'
	@touch $@ $(STAMP_RUN)

install: $(STAMP_DEV)
install-run: $(STAMP_RUN)

## Start Spinner standalone with the example DAGs (UI on http://127.0.0.1:8080).
run: install-run
	exec $(BIN)/spinner standalone --dags examples/dags $(ARGS)

## Everything CI checks. -k: one run reports lint, type and test failures together.
test: install
	bash scripts/ensure-test-services.sh
	@$(MAKE) --no-print-directory -k lint typecheck pytest

## Faults on real processes: each scenario starts its own MariaDB, Mosquitto and S3 and a standalone
## on them, injects one fault and counts runs, tries, executions and recovery (bench/resilience/).
## Needs mariadbd, mariadb-install-db and mosquitto on PATH (`make test` installs them as root).
resilience: install
	$(BIN)/python -m bench.resilience --write-docs $(ARGS)

lint: install
	$(BIN)/ruff check $(CODE)
	$(BIN)/ruff format --check $(CODE)

typecheck: install
	$(BIN)/mypy $(TYPED)

# Exit code 5 (no tests collected) is a failure like any other: a suite that runs nothing proves nothing.
pytest: install
	@rc=0; $(BIN)/pytest -q -p no:cacheprovider -n $(TEST_WORKERS) --dist loadgroup --durations=15 $(PYTEST_ARGS) || rc=$$?; \
	if [ $$rc = 5 ]; then echo "make: pytest collected no tests" >&2; fi; \
	exit $$rc

## Regenerate spinner/v1 from protos/ (commit the result).
protos: install
	$(BIN)/python scripts/gen_protos.py

## Re-resolve constraints.txt (the lock): a clean venv gets the newest versions pyproject.toml
## allows, and its `pip freeze` (without Spinner itself) becomes the new lock. Review the diff,
## run `make test`, commit both. To bump one package, widen its range in pyproject.toml first.
lock:
	@[ -n "$(PYTHON)" ] || { echo "make: no python3.11 or python3 on PATH" >&2; exit 1; }
	@tmp=$$(mktemp -d /tmp/spinner-lock.XXXXXX) && trap 'rm -rf "$$tmp"' EXIT \
		&& $(PYTHON) -m venv "$$tmp/venv" \
		&& "$$tmp/venv/bin/python" -m pip install -q --disable-pip-version-check -e '.[dev]' \
		&& "$$tmp/venv/bin/python" -m pip freeze --exclude-editable | grep -v -i -E '^(-e |spinner[ =@])' > "$$tmp/constraints.txt" \
		&& mv "$$tmp/constraints.txt" constraints.txt \
		&& echo "constraints.txt: $$(wc -l < constraints.txt) pins; review with git diff" >&2

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache build *.egg-info
