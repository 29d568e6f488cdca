# The few commands people need. `make demo` and `make test` set everything up on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export DAGSTER_HOME := $(CURDIR)/.dagster_home
DEMO_DAY ?= 2025-03-14
SAMPLE := $(CURDIR)/ingestion_platform/defs/pmu/sample

.PHONY: install demo test dev lint format bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

install: $(VENV)/.installed

$(DAGSTER_HOME)/dagster.yaml: dagster.yaml
	mkdir -p $(DAGSTER_HOME)
	ln -sfn $(CURDIR)/dagster.yaml $@

## Main job offline: materialise the shipped PMU sample day into SQLite, then print per-table counts.
demo: install $(DAGSTER_HOME)/dagster.yaml
	PMU_API_BASE_URL=file://$(SAMPLE) $(BIN)/dagster asset materialize \
		-m ingestion_platform.definitions --select 'group:pmu' --partition $(DEMO_DAY) \
		--config-json '{"execution": {"config": {"in_process": {}}}}'
	$(BIN)/python -m ingestion_platform.cli counts --partition $(DEMO_DAY)

## Tests (SQLite always; PostgreSQL at INGESTION_TEST_DATABASE_URL, required when CI is set).
test: install
	$(BIN)/python -m pytest

dev: install $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/dagster dev

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

clean:
	rm -rf .data .dagster_home
