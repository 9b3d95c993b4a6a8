# Attune — the two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PYTEST_ARGS ?=

.PHONY: help install run test test-clients lint format migrations bench bench-quick clean

help:
	@echo "make run      start web, worker and beat (embedded default unless DATABASE_URL/REDIS_URL)"
	@echo "make test     lint's fast part, then the whole test suite"
	@echo "make test-clients  the Python and TypeScript clients against a live server (node 20)"
	@echo "make lint     ruff, mypy and makemigrations --check"
	@echo "make format   ruff format and ruff check --fix"
	@echo "make bench    decide, ingest and recompute against this machine's limits (PostgreSQL, Redis, wrk)"
	@echo "make clean    remove local state (var/) and caches"

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	@touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/python -m config.stack

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/pytest $(PYTEST_ARGS)

test-clients: $(STAMP)
	bash clients/run-live-tests

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .
	DJANGO_SETTINGS_MODULE=config.settings.test $(BIN)/python manage.py makemigrations --check --dry-run

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(STAMP)
	$(BIN)/python -m tests.benchmarks.run $(BENCH_ARGS)

bench-quick: $(STAMP)
	$(BIN)/python -m tests.benchmarks.run --quick

migrations: $(STAMP)
	$(BIN)/python manage.py makemigrations

clean:
	rm -rf var .pytest_cache .mypy_cache .ruff_cache
