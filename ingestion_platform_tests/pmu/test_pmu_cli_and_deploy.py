"""The paths people actually use: the Dagster CLI against a (faulty) PMU-shaped server on
PostgreSQL, the production instance on dagster-postgres, and the operator CLI."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import sqlalchemy as sa

from ingestion_platform import cli
from ingestion_platform.defs.pmu import tables
from ingestion_platform.lib.ledger import Ledger
from ingestion_platform.lib.warehouse import Warehouse, get_warehouse
from ingestion_platform_tests.conftest import cli_env
from ingestion_platform_tests.pmu_helpers import SAMPLE_DAY, SAMPLE_DIR, copy_day, counts, run_pmu
from ingestion_platform_tests.pmu_server import FaultPlan, PmuServer

REPO = Path(__file__).resolve().parents[2]
DAGSTER = Path(sys.executable).parent / "dagster"


def _dagster_home(tmp_path: Path, config: Path) -> Path:
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copyfile(config, home / "dagster.yaml")
    return home


def test_dagster_cli_materialises_a_day_on_postgres_through_faults(pg_url: str, tmp_path: Path) -> None:
    faults = FaultPlan({"R1/C1/participants": ["503", "ok"], "rapports-definitifs": ["429:1", "ok"]})
    with PmuServer(SAMPLE_DIR, faults=faults) as srv:
        env = {
            **os.environ,
            "INGESTION_DATABASE_URL": pg_url,
            "INGESTION_DATA_DIR": str(tmp_path / "data"),
            "PMU_API_BASE_URL": srv.base_url,
            "PMU_BACKOFF_BASE_S": "0.05",
            "DAGSTER_HOME": str(_dagster_home(tmp_path, REPO / "dagster.yaml")),
        }
        command = [
            str(DAGSTER), "asset", "materialize", "-m", "ingestion_platform.definitions",
            "--select", "group:pmu", "--partition", SAMPLE_DAY,
        ]  # fmt: skip
        proc = subprocess.run(command, env=cli_env(env), cwd=env["DAGSTER_HOME"], capture_output=True, text=True,
                              timeout=600)  # fmt: skip
        seen = srv.counts()
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert seen.get("503") == 1 and seen.get("429") >= 1
    warehouse = Warehouse(pg_url)
    try:
        got = counts(warehouse)
        assert got["race"] > 0 and got["race_participant"] > 0 and got["bet_report"] > 0
        with warehouse.engine.connect() as conn:
            names = set(sa.inspect(conn).get_table_names(schema="pmu"))
        assert {t.name for t in tables.METADATA.sorted_tables} <= names
        assert {j["status"] for j in Ledger(warehouse).jobs()} == {"completed"}
    finally:
        warehouse.engine.dispose()


def test_production_instance_stores_runs_in_postgres(pg_url: str, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("DAGSTER_PG_URL", sa.make_url(pg_url).set(drivername="postgresql").render_as_string(False))
    home = _dagster_home(tmp_path, REPO / "deploy" / "dagster.yaml")
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
        result = run_pmu(
            database_url=pg_url, data_dir=tmp_path / "data", base_url=f"file://{SAMPLE_DIR}", instance=instance
        )
        assert result.success
        assert instance.get_run_by_id(result.run_id) is not None
        assert instance.get_latest_materialization_event(dg.AssetKey(["pmu", "programme"])) is not None


def test_operator_cli_prints_counts_and_dead_letters(sqlite_url: str, tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)  # the CLI reads .env of its working directory
    data = tmp_path / "data"
    assert run_pmu(database_url=sqlite_url, data_dir=data, base_url=f"file://{SAMPLE_DIR}").success
    monkeypatch.setenv("INGESTION_DATABASE_URL", sqlite_url)
    monkeypatch.setenv("INGESTION_DATA_DIR", str(data))
    assert cli.main(["counts", "--partition", SAMPLE_DAY]) == 0
    out = capsys.readouterr().out
    expected = counts(Warehouse(sqlite_url))
    line = next(x for x in out.splitlines() if x.startswith("pmu.race "))
    assert line.split()[1] == str(expected["race"])
    assert cli.main(["jobs"]) == 0
    assert "pmu/participants" in capsys.readouterr().out
    assert cli.main(["dead-letters"]) == 0
    assert "0 unresolved dead letter(s)" in capsys.readouterr().out


def test_cli_backfill_runs_a_range_in_chunks(tmp_path: Path, monkeypatch) -> None:
    replay = tmp_path / "replay"
    for day in ("14032025", "15032025", "16032025"):
        copy_day(SAMPLE_DIR, replay, dst=day)
    home = _dagster_home(tmp_path, REPO / "dagster.yaml")
    monkeypatch.chdir(tmp_path)  # the CLI reads .env of its working directory
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("INGESTION_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("INGESTION_DATABASE_URL", f"sqlite:///{tmp_path / 'data' / 'warehouse.db'}")
    monkeypatch.setenv("PMU_API_BASE_URL", f"file://{replay}")
    argv = ["backfill", "--select", "group:pmu", "--from", "2025-03-14", "--to", "2025-03-16", "--days-per-run", "2"]
    assert cli.main(argv) == 0
    wh = get_warehouse(f"sqlite:///{tmp_path / 'data' / 'warehouse.db'}")
    jobs = Ledger(wh).jobs(asset_key="pmu/programme")
    assert sorted(j["partition_key"] for j in jobs) == ["2025-03-14", "2025-03-15", "2025-03-16"]
    assert {j["status"] for j in jobs} == {"completed"}
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert len(instance.get_runs()) == 2  # 2 + 1 days
