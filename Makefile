# Attune — the two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
# What running needs ([project] dependencies) and the dev toolchain on top (the `dev` extras:
# pytest, ruff, mypy, Playwright, …), each with its stamp: `make run` installs only the first,
# `make test`/`lint`/`bench` the second. CI's fresh venv touches the dev stamp itself.
RUN_STAMP := $(VENV)/.installed-run-stamp
DEV_STAMP := $(VENV)/.installed-stamp
PYTEST_ARGS ?=

.PHONY: help install run test test-clients lint format migrations bench bench-quick clean

help:
	@echo "make run      start web, worker and beat (embedded default unless DATABASE_URL/REDIS_URL);"
	@echo "             installs only what running needs"
	@echo "make test     lint's fast part, then the whole test suite"
	@echo "make test-clients  the Python and TypeScript clients against a live server (node 20)"
	@echo "make lint     ruff, mypy and makemigrations --check"
	@echo "make format   ruff format and ruff check --fix"
	@echo "make bench    decide, ingest and recompute against this machine's limits (PostgreSQL, Redis, wrk)"
	@echo "make install  the dev toolchain (make test, lint and bench install it themselves)"
	@echo "make clean    remove local state (var/) and caches"

# The venv's own pip (Python 3.11's) installs editable pyproject packages; no upgrade needed.
define make_venv
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
endef

# --no-compile: modules are byte-compiled when first imported, not all of scipy up front.
$(RUN_STAMP): pyproject.toml
	$(make_venv)
	$(BIN)/python -m pip install --quiet --no-compile -e .
	@touch $(RUN_STAMP)

# The dev install includes the runtime one, so it renews both stamps.
$(DEV_STAMP): pyproject.toml
	$(make_venv)
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	@touch $(DEV_STAMP) $(RUN_STAMP)

install: $(DEV_STAMP)

run: $(RUN_STAMP)
	$(BIN)/python -m config.stack

test: $(DEV_STAMP)
	$(BIN)/ruff check .
	$(BIN)/pytest $(PYTEST_ARGS)

test-clients: $(DEV_STAMP)
	bash clients/run-live-tests

lint: $(DEV_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .
	DJANGO_SETTINGS_MODULE=config.settings.test $(BIN)/python manage.py makemigrations --check --dry-run

format: $(DEV_STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(DEV_STAMP)
	$(BIN)/python -m tests.benchmarks.run $(BENCH_ARGS)

bench-quick: $(DEV_STAMP)
	$(BIN)/python -m tests.benchmarks.run --quick

migrations: $(RUN_STAMP)
	$(BIN)/python manage.py makemigrations

clean:
	rm -rf var .pytest_cache .mypy_cache .ruff_cache
