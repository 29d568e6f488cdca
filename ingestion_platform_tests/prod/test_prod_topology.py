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
* **sensor**: no sensor of the platform watches a file yet (the drop-folder source comes later), so
  the sensor path is proved with ``events_stats_after_refresh``: a successful events run makes it
  request the statistics run, which fills ``events.import_stats``;
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
import signal
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

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


@pytest.fixture(scope="module")
def prod(pg_admin: sa.Engine, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prod]:
    root = tmp_path_factory.mktemp("prod")
    with running_topology(root, pg_admin, workers=2, env={"PMU_MORNING_CRON": "* * * * *"}) as running:
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
    prod: Prod, reference_url: str, tmp_path
) -> None:
    client = prod.client
    today = today_paris().isoformat()
    assert client.loaded_location() == "ingestion_platform"
    assert client.unhealthy_daemons() == []
    assert len(prod.topology.ping_workers()) == 2

    # Launched together: the 7-day PMU backfill and an events day; the schedule fires meanwhile.
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

    # -- the sensor: a successful events run made events_stats_after_refresh request the statistics
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
