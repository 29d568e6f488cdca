"""The production topology end to end (``-m prod``; ``make test-prod`` runs it alone).

``ingestion_platform.prod`` (what ``make prod-up`` runs) brings up, on two fresh PostgreSQL databases
(Dagster storage, warehouse): the code server, the webserver, the daemon and two Celery workers on
RabbitMQ, with ``deploy/dagster.yaml`` (queued run coordinator with the per-source tag, run
monitoring, run retries). Sources replay offline days: the three shipped PMU days and four more of the
same shape written by the sample's generator (2025-03-13 .. 19), plus today and tomorrow for the
schedule; the events samples. Then, against the running topology only through its GraphQL API:

* **schedule**: ``PMU_MORNING_CRON='* * * * *'`` makes ``pmu_morning_schedule`` (on, as production
  sets ``INGESTION_AUTOMATION=running``) fire within a minute; the daemon launches its run for today
  and the day's tables fill;
* **file sensor**: ``ISAVIGNE_EXPORT_DIR`` is an empty temporary drop folder; the test drops
  ``clients_2025-03-14.csv`` (a copy of the shipped sample) into it, and the daemon's tick of
  ``isavigne_exports_sensor`` (on, like every sensor in production) requests the run of
  ``crm/isavigne_customers`` for 2025-03-14, which loads the sample's customers into ``crm.customers``;
* **run-status sensor**: a successful events run makes ``events_stats_after_refresh`` request the
  statistics run, which fills ``events.import_stats``;
* **backfill on Celery**: the 7 days through ``launchPartitionBackfill``, every step executed by one of
  the Celery workers, the tables equal to in-process runs of the same partitions;
* **failure**: the backfill again; mid-run, a worker and the run's process are SIGKILLed; run
  monitoring marks the run failed, run retries launch its retry, which succeeds on the surviving
  workers, and the tables still equal the in-process ones.

The topology is stopped (every process group, then every process carrying its marker) and both
databases are dropped, whatever happened.
"""

from __future__ import annotations

import os
import shutil
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from ingestion_platform.defs.crm import tables as crm_tables
from ingestion_platform.defs.crm.isavigne import parse as isavigne_parse
from ingestion_platform.defs.events.stats import import_stats_table
from ingestion_platform.defs.pmu import tables as pmu_tables
from ingestion_platform.lib.warehouse import LINEAGE_COLUMNS, get_warehouse
from ingestion_platform_tests.conftest import _forget
from ingestion_platform_tests.pmu_helpers import PMU_ASSETS, dump, run_pmu
from ingestion_platform_tests.prod.harness import (
    DAYS,
    DONE,
    EVENTS_KEYS,
    PMU_KEYS,
    Prod,
    celery_workers_of,
    create_database,
    drop_database,
    run_process_pid,
    running_topology,
    tags_of,
    today_paris,
)

pytestmark = pytest.mark.prod


def comparable(rows: dict[str, list[tuple]]) -> dict[str, list[tuple]]:
    """``dump`` without ``horse.birth_year``: a horse keeps its last seen values, and the schedule's day
    (this year) and the backfill's (2025) give the same horses other ages, in an order that depends on
    which run wrote last. Every other column of every table is compared."""
    year = [c.name for c in pmu_tables.horse.columns if c.name not in LINEAGE_COLUMNS].index("birth_year")
    out = dict(rows)
    out["horse"] = sorted(row[:year] + row[year + 1 :] for row in rows["horse"])
    return out


ISAVIGNE_SAMPLE = Path(isavigne_parse.__file__).parent / "sample"
CLIENTS = "clients_2025-03-14.csv"


@pytest.fixture(scope="module")
def isavigne_drops(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The topology's ``ISAVIGNE_EXPORT_DIR``: empty until the test drops an export into it."""
    return tmp_path_factory.mktemp("isavigne_drops")


@pytest.fixture(scope="module")
def prod(pg_admin: sa.Engine, tmp_path_factory: pytest.TempPathFactory, isavigne_drops: Path) -> Iterator[Prod]:
    root = tmp_path_factory.mktemp("prod")
    env = {"PMU_MORNING_CRON": "* * * * *", "ISAVIGNE_EXPORT_DIR": str(isavigne_drops)}
    with running_topology(root, pg_admin, workers=2, env=env) as running:
        yield running
        _forget(running.topology.warehouse_url)


@pytest.fixture
def reference_url(pg_admin: sa.Engine) -> Iterator[str]:
    """The warehouse of the in-process runs the topology's tables are compared with."""
    url = create_database(pg_admin, "reference")
    yield url
    _forget(url)
    drop_database(pg_admin, url)


def test_topology_runs_schedules_sensors_backfills_on_celery_and_survives_kills(
    prod: Prod, reference_url: str, isavigne_drops: Path, tmp_path
) -> None:
    client = prod.client
    today = today_paris().isoformat()
    assert client.loaded_location() == "ingestion_platform"
    assert client.unhealthy_daemons() == []
    assert len(prod.topology.ping_workers()) == 2

    # Launched together: a dropped iSaVigne export, the 7-day PMU backfill and an events day; the
    # schedule fires meanwhile.
    def by_isavigne_sensor(run: dict) -> bool:
        return tags_of(run).get("dagster/sensor_name") == "isavigne_exports_sensor"

    # the drop folder is empty so far: a run of the sensor can only come from this drop
    assert list(isavigne_drops.iterdir()) == [] and not [r for r in client.runs() if by_isavigne_sensor(r)]
    shutil.copy(ISAVIGNE_SAMPLE / CLIENTS, isavigne_drops / f".{CLIENTS}")  # dropped atomically (docs/ISAVIGNE.md)
    (isavigne_drops / f".{CLIENTS}").rename(isavigne_drops / CLIENTS)
    pmu_backfill = prod.backfill(DAYS, PMU_KEYS)
    prod.backfill(["2025-03-14"], EVENTS_KEYS)

    # The reference: the same partitions in process (while the topology works).
    in_process = {"database_url": reference_url, "data_dir": tmp_path / "data", "base_url": prod.sample_url}
    assert run_pmu(**in_process, partition_range=(DAYS[0], DAYS[-1])).success
    morning = [a for a in PMU_ASSETS if a.key.path[-1] != "rapports"]  # pmu_day_job
    assert run_pmu(**in_process, partition_key=today, selection=morning).success
    expected = comparable(dump(get_warehouse(reference_url)))

    # -- the schedule: the daemon launched the run of today, which loaded the day
    scheduled = prod.finished_run(
        "the run of pmu_morning_schedule", lambda r: tags_of(r).get("dagster/schedule_name") == "pmu_morning_schedule"
    )
    assert scheduled["status"] == "SUCCESS", prod.failure_report(scheduled["runId"])
    prod.stop_schedule("pmu_morning_schedule")  # every minute otherwise: one run is the proof
    assert tags_of(scheduled)["dagster/partition"] == today
    assert tags_of(scheduled)["ingestion/source"] == "pmu"  # the coordinator's source tag
    warehouse = get_warehouse(prod.topology.warehouse_url)
    race = pmu_tables.race
    races_today = warehouse.fetch(sa.select(sa.func.count()).select_from(race).where(race.c.program_date == today))
    assert next(iter(races_today[0].values())) > 0

    # -- the file sensor: the daemon's tick of isavigne_exports_sensor requested the customers run of the
    # export's day, which loaded the sample's customers (29 readable lines of 31, see test_isavigne_e2e)
    dropped = prod.finished_run("the run of isavigne_exports_sensor", by_isavigne_sensor)
    assert dropped["status"] == "SUCCESS", prod.failure_report(dropped["runId"])
    assert tags_of(dropped)["dagster/partition"] == "2025-03-14"
    assert tags_of(dropped)["isavigne/file"] == CLIENTS
    assert prod.run_assets(dropped["runId"]) == [["crm", "isavigne_customers"]]
    customers = crm_tables.customers
    keys = warehouse.fetch(sa.select(customers.c.customer_key).where(customers.c.source == "isavigne"))
    codes = {row["customer_key"] for row in keys}
    assert len(codes) == 29 and {"isavigne-C1001", "isavigne-C1008"} <= codes, sorted(codes)

    # -- the run-status sensor: a successful events run made events_stats_after_refresh request the statistics
    stats = prod.finished_run(
        "the run of events_stats_after_refresh",
        lambda r: tags_of(r).get("dagster/sensor_name") == "events_stats_after_refresh",
    )
    assert stats["status"] == "SUCCESS", prod.failure_report(stats["runId"])
    warehouse.ensure_tables([import_stats_table])
    assert warehouse.count(import_stats_table) > 0

    # -- the backfill: every step on a Celery worker; the tables of in-process runs
    backfill = prod.backfill_done(pmu_backfill)
    assert backfill["status"] == "COMPLETED_SUCCESS", backfill
    runs = prod.backfill_runs(pmu_backfill)
    assert runs and all(r["status"] == "SUCCESS" for r in runs), runs
    workers = {}
    for run in runs:
        workers.update(celery_workers_of(prod.events(run["runId"])))
    assert set(workers) == {"pmu__programme", "pmu__participants", "pmu__performances", "pmu__rapports"}
    assert {w.split("@")[0] for w in workers.values()} <= {"worker-1", "worker-2"}, workers
    assert comparable(dump(warehouse)) == expected

    # -- failure: kill a worker and the run's process mid-run; failed, retried, the same tables
    again = prod.backfill(DAYS, PMU_KEYS)

    def executing() -> tuple[str, str, int] | None:
        for run in prod.backfill_runs(again):
            events = prod.events(run["runId"])
            pid, busy = run_process_pid(events), [w for w in celery_workers_of(events).values() if w]
            if pid is not None and busy and run["status"] == "STARTED":
                return run["runId"], busy[0].split("@")[0], pid
        return None

    run_id, worker, run_pid = prod.wait("a step of the second backfill on a worker", executing)
    os.killpg(prod.topology.state()["processes"][worker], signal.SIGKILL)
    os.kill(run_pid, signal.SIGKILL)
    prod.topology.start_worker(int(worker.split("-")[1]))  # the topology keeps its two workers
    failed = prod.wait(
        "run monitoring to fail the killed run", lambda: (r := client.run(run_id))["status"] in DONE and r
    )
    assert failed["status"] == "FAILURE"
    retry = prod.finished_run(
        "the retry of the killed run", lambda r: tags_of(r).get("dagster/parent_run_id") == run_id
    )
    assert retry["status"] == "SUCCESS", prod.failure_report(retry["runId"])
    assert tags_of(retry).get("dagster/retry_number") == "1"
    assert comparable(dump(warehouse)) == expected
