# The few commands people need. `make demo` and `make test` set everything up on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export DAGSTER_HOME := $(CURDIR)/.dagster_home
DEMO_DAY ?= 2025-03-14
PORT ?= 3000
HOST ?= 127.0.0.1
SELECT ?= group:pmu
CRM_DEMO := crm/isavigne_customers,crm/isavigne_products,crm/isavigne_sales_lines,crm/isavigne_stock_levels,crm/isavigne_contact_history,crm/customer_purchases,crm/customer_match
DAYS_PER_RUN ?= 31
# Dagster CLI runs of the demo: in process, console logs from WARNING up, no Python warnings.
QUIET := --config-json '{"execution": {"config": {"in_process": {}}}, "loggers": {"console": {"config": {"log_level": "WARNING"}}}}'
MATERIALIZE := PYTHONWARNINGS=ignore $(BIN)/dagster asset materialize -m ingestion_platform.definitions

.PHONY: install demo test dev backfill lint format bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

install: $(VENV)/.installed

## Local settings: .env.example with the sources pointed at the shipped samples (file:// URLs of this clone).
## Written when missing; when .env.example is newer, an edited .env is kept and the new one goes to .env.new.
.env: .env.example | $(VENV)/.installed
	$(BIN)/python -m ingestion_platform.cli local-env

## The local Dagster instance (SQLite), migrated once when it is created.
$(DAGSTER_HOME)/dagster.yaml: dagster.yaml | $(VENV)/.installed
	mkdir -p $(DAGSTER_HOME)
	ln -sfn $(CURDIR)/dagster.yaml $@
	$(BIN)/dagster instance migrate > /dev/null

## Offline demo: the sample day of pmu, events (+ events/import_stats) and the iSaVigne exports + derived CRM assets into SQLite, then a line
## per asset and the per-table counts.
demo: install .env $(DAGSTER_HOME)/dagster.yaml
	@echo "materialize group:pmu --partition $(DEMO_DAY)   (sources from .env: the shipped samples)"
	@$(MATERIALIZE) --select 'group:pmu' --partition $(DEMO_DAY) $(QUIET)
	@echo "materialize group:events --partition $(DEMO_DAY)   (sources from .env: the shipped samples)"
	@$(MATERIALIZE) --select 'group:events' --partition $(DEMO_DAY) $(QUIET)
	@echo "materialize events/import_stats"
	@$(MATERIALIZE) --select 'events/import_stats' $(QUIET)
	@echo "materialize the iSaVigne sample exports of $(DEMO_DAY) and the derived CRM assets   (Odoo needs a server: not in the demo)"
	@$(MATERIALIZE) --select '$(CRM_DEMO)' --partition $(DEMO_DAY) $(QUIET)
	@$(BIN)/python -m ingestion_platform.cli assets --partition $(DEMO_DAY)
	@$(BIN)/python -m ingestion_platform.cli counts --partition $(DEMO_DAY)

## A range of days in runs of DAYS_PER_RUN days, on the instance of the UI: make backfill START=... END=...
backfill: install .env $(DAGSTER_HOME)/dagster.yaml
	@test -n "$(START)" -a -n "$(END)" || { echo "usage: make backfill START=YYYY-MM-DD END=YYYY-MM-DD [SELECT='group:pmu'] [DAYS_PER_RUN=31]"; exit 2; }
	$(BIN)/python -m ingestion_platform.cli backfill --select '$(SELECT)' --from $(START) --to $(END) --days-per-run $(DAYS_PER_RUN)

## Tests (SQLite always; PostgreSQL at INGESTION_TEST_DATABASE_URL, required when CI is set), on
## TEST_WORKERS processes (pytest-xdist; TEST_WORKERS=0 runs them in this process).
TEST_WORKERS ?= 2
test: install
	$(BIN)/python -m pytest -n $(TEST_WORKERS)

## The Dagster UI on http://$(HOST):$(PORT), from the repository root so that .env is read.
dev: install .env $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/dagster dev -h $(HOST) -p $(PORT)

## The sync API (carbon syncs, ingestion dashboard) on INGESTION_API_PORT; runs launch on DAGSTER_GRAPHQL_URL (make dev).
.PHONY: api
api: install .env
	$(BIN)/python -m ingestion_platform.api.app

lint: install
	$(BIN)/ruff check ingestion_platform ingestion_platform_tests benchmarks
	$(BIN)/ruff format --check ingestion_platform ingestion_platform_tests benchmarks

format: install
	$(BIN)/ruff format ingestion_platform ingestion_platform_tests benchmarks
	$(BIN)/ruff check --fix ingestion_platform ingestion_platform_tests benchmarks

## Benchmarks (not part of the tests): figures printed side by side, as ratios.
bench: install
	$(BIN)/python benchmarks/run.py

## The PMU sample day through the CLI and through dagster dev's "Materialize all", side by side (benchmarks/README.md).
.PHONY: bench-ui
bench-ui: install
	$(BIN)/python benchmarks/ui_vs_cli.py

## The production topology (ingestion_platform/prod.py): Dagster storage and warehouse on PostgreSQL, code server,
## webserver, daemon, PROD_WORKERS Celery workers on RabbitMQ; logs, pids and data in $(PROD_DIR). README "Production".
PROD_DIR ?= .prod
PROD_WORKERS ?= 2
PROD_PORT ?= 3000
PROD_DAGSTER_PG_URL ?= postgresql://root@127.0.0.1:5432/ingestion_prod_dagster
PROD_WAREHOUSE_URL ?= postgresql://root@127.0.0.1:5432/ingestion_prod_warehouse
.PHONY: prod-up prod-down prod-status test-prod
prod-up: install .env
	$(BIN)/python -W ignore -m ingestion_platform.prod up --dir $(PROD_DIR) --workers $(PROD_WORKERS) --host $(HOST) \
	    --port $(PROD_PORT) --dagster-pg-url $(PROD_DAGSTER_PG_URL) --warehouse-url $(PROD_WAREHOUSE_URL) --env-file .env

prod-down: install
	$(BIN)/python -W ignore -m ingestion_platform.prod down --dir $(PROD_DIR)

prod-status: install
	$(BIN)/python -W ignore -m ingestion_platform.prod status --dir $(PROD_DIR)

## The production figures: a 7-day backfill on 1 vs 2 Celery workers, schedule tick -> run start (benchmarks/README.md).
.PHONY: bench-prod
bench-prod: install
	$(BIN)/python benchmarks/prod_backfill.py

## The production end-to-end test alone (also part of make test).
test-prod: install
	$(BIN)/python -m pytest -m prod

clean:
	rm -rf .data .dagster_home
