# Pulse: two commands to know — `make run` and `make test`. See README.md.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# Extra pytest arguments: make test ARGS="-k identity -x"
ARGS ?=

.PHONY: help run test lint bench install install-test

help:
	@echo "make run    install into .venv, migrate, create the admin user, load demo data,"
	@echo "            then run web + worker + scheduler (embedded SQLite and Redis) until Ctrl-C"
	@echo "make test   the pytest suite on PostgreSQL and on SQLite in parallel (ARGS=... for pytest)"
	@echo "make lint   ruff check . and the import-linter layers contract (make test runs it first)"
	@echo "make bench  benchmarks (docs/BENCHMARKS.md)"

install:
	@bash -c '. scripts/lib.sh && pulse_ensure_venv base'

install-test:
	@bash -c '. scripts/lib.sh && pulse_ensure_venv test'

run:
	@bash scripts/run.sh

test: lint
	@bash scripts/test.sh $(ARGS)

# ruff, and the import-linter layers contract in pyproject.toml
lint: install-test
	$(or $(PULSE_VENV),.venv)/bin/ruff check .
	cd $(CURDIR) && $(or $(PULSE_VENV),.venv)/bin/lint-imports

bench:
	@if [ -f scripts/bench.sh ]; then bash scripts/bench.sh $(ARGS); \
	else echo "scripts/bench.sh does not exist yet" >&2; exit 1; fi
