# MyKey: `make run` and `make test` do all their own set-up.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000
# pytest-xdist processes for `make test`: one per core; TEST_WORKERS=0 runs in this process
TEST_WORKERS ?= auto
# Some machines export PYTHONDONTWRITEBYTECODE=1: every `mykey` process a test starts would then
# compile the project's sources again. Let them be cached.
unexport PYTHONDONTWRITEBYTECODE

.DEFAULT_GOAL := help

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

$(STAMP): requirements.lock pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "MyKey needs Python 3.11 or newer")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --require-hashes -r requirements.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $(STAMP)

install: $(STAMP) ## create .venv with the locked dependencies

migrate: install ## bring the database up to date (idempotent)
	$(BIN)/mykey migrate

run: install ## migrate, load demo data once, serve on http://127.0.0.1:8000
	$(BIN)/mykey migrate
	$(BIN)/mykey demo
	$(BIN)/mykey serve --host $(HOST) --port $(PORT)

lint: install ## ruff, mypy --strict, import-linter contracts
	$(BIN)/ruff check src tests bench deploy
	$(BIN)/ruff format --check src tests bench deploy
	$(BIN)/mypy
	$(BIN)/lint-imports

test: lint ## lint, then every test (PostgreSQL ones skip visibly without a server)
	$(BIN)/pytest -n $(TEST_WORKERS) --dist worksteal

run-fleet: install ## the fleet on PostgreSQL: 2 web processes, 2 workers, the checkpointer (DATABASE_URL=…)
	$(BIN)/python deploy/run_fleet.py --host $(HOST) --port $(PORT) $(if $(DATABASE_URL),--database-url $(DATABASE_URL))

bench: install ## ledger benchmarks against pgbench on the same PostgreSQL; prints JSON
	@$(BIN)/python bench/ledger.py

bench-bulk: install ## bulk grant of 80,000 residents against one-by-one grants; prints JSON
	@$(BIN)/python bench/bulk_grants.py

bench-counter: install ## counter payments over HTTP (`mykey serve`) beside pgbench; prints JSON
	@$(BIN)/python bench/counter.py $(if $(WORKERS),--workers $(WORKERS))

bench-settle: install ## close and check a month of 1,000,000 transfers (settlement); prints JSON
	@$(BIN)/python bench/settle.py

bench-history: install ## history log: appends/s with and without it, proofs, full audit; prints JSON
	@$(BIN)/python bench/history.py

bench-scale: install ## 1,000,000 wallets, 10,000,000 transfers: payments, pages, proofs, close, audit, disk; prints JSON
	@$(BIN)/python bench/scale.py

bench-surge: install ## counter payments while residents' pages are flooded at 20x (loopback, bounded); prints JSON
	@$(BIN)/python bench/surge.py

lock: ## re-pin requirements.lock from pyproject.toml (needs uv)
	uv pip compile pyproject.toml --extra dev --python-version 3.11 --generate-hashes -o requirements.lock

.PHONY: help install migrate run run-fleet lint test bench bench-bulk bench-counter bench-settle bench-history bench-scale bench-surge lock
