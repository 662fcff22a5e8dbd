# Slipstream developer tasks. GNU make, POSIX sh.
#
#   make demo       start the serverless stack on moto, deploy dags/, run one DAG, print its tasks
#   make test       ruff + mypy (chalicelib/core) + pytest
#   make lint | typecheck | bench | schemathesis | clean | distclean
#
# Every target creates $(VENV) on first use; the stamp file makes later runs
# skip the install until a requirements file or pyproject.toml changes.

SHELL := /bin/sh
.DEFAULT_GOAL := help

PYTHON ?= python3
PIP_VERSION ?= 26.2.1
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# The machine has 2 cores; more xdist workers only add start-up time.
PYTEST_WORKERS ?= 2
PYTEST_ARGS ?=

DEMO_DAG_ID ?= etl_hourly

.PHONY: help install demo test lint typecheck pytest bench chaos schemathesis screenshots clean distclean

help:
	@echo "make demo       run $(DEMO_DAG_ID) on the local serverless stack (moto), print its tasks"
	@echo "make test       ruff, mypy on chalicelib/core, pytest -n $(PYTEST_WORKERS)"
	@echo "make lint       ruff check ."
	@echo "make typecheck  mypy chalicelib/core"
	@echo "make bench      bench/local_test.py and bench/scheduler_cost.py"
	@echo "make chaos      200 seeded runs on the local stack under injected AWS faults and killed workers"
	@echo "make schemathesis  fuzz the served API against its OpenAPI document (no 5xx, answers match)"
	@echo "make screenshots  run the browser tests and save each UI view into docs/images/"
	@echo "make clean      remove caches and build leftovers (keeps $(VENV))"
	@echo "make distclean  clean, and remove $(VENV)"

install: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q pip==$(PIP_VERSION)  # chalice 1.34 needs pip < 26.3
	$(BIN)/python -m pip install -q -r requirements-dev.txt
	$(BIN)/python -m pip install -q -e . --no-deps
	touch $@

demo: $(STAMP)
	$(BIN)/slipstream dev demo $(DEMO_DAG_ID) --project .

# Make stops at the first failing recipe line, so `make test` fails if any step does.
test: lint typecheck pytest

lint: $(STAMP)
	$(BIN)/ruff check .

typecheck: $(STAMP)
	$(BIN)/mypy chalicelib/core

pytest: $(STAMP)
	$(BIN)/pytest -q -n $(PYTEST_WORKERS) $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python bench/local_test.py
	$(BIN)/python bench/scheduler_cost.py

# The full chaos suite (tests/chaos/harness.py); a 30-run variant is part of `make pytest`.
chaos: $(STAMP)
	$(BIN)/python -m tests.chaos.harness --runs 200

# Needs Debian's chromium and chromium-driver (.ci/run installs them).
screenshots: $(STAMP)
	SLIPSTREAM_SCREENSHOTS=docs $(BIN)/pytest -q -n 0 tests/ui/test_browser.py

# The fuzzing module alone, with its summary line (-s); it is also part of `make pytest`.
schemathesis: $(STAMP)
	$(BIN)/pytest -q -n 0 -s tests/api/test_schemathesis.py

clean:
	rm -rf .pytest_cache .mypy_cache .ruff_cache .hypothesis build dist *.egg-info
	find . -path ./$(VENV) -prune -o -type d -name __pycache__ -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV)
