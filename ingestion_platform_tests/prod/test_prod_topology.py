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

import datetime as dt
import os
import re
import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from ingestion_platform.lib import processes
from ingestion_platform.lib.warehouse import LINEAGE_COLUMNS, get_warehouse
from ingestion_platform.lib.webserver import WebserverClient
from ingestion_platform.local_env import sample_settings
from ingestion_platform.prod import Topology, free_port
from ingestion_platform_tests.conftest import _admin_url, _forget
from ingestion_platform_tests.pmu_helpers import PMU_ASSETS, dump, run_pmu
from ingestion_platform_tests.prod.sample_days import write_days

pytestmark = pytest.mark.prod

DAYS = [(dt.date(2025, 3, 13) + dt.timedelta(days=i)).isoformat() for i in range(7)]
PMU_KEYS = [a.key.path for a in PMU_ASSETS]
EVENTS_KEYS = [["events", name] for name in ("eventbrite", "montreal", "ics", "duplicates")]
DONE = {"SUCCESS", "FAILURE", "CANCELED"}
TIMEOUT_S = 420.0

LAUNCH_BACKFILL = """mutation($params: LaunchBackfillParams!) { launchPartitionBackfill(backfillParams: $params) {
  __typename ... on LaunchBackfillSuccess { backfillId } ... on PythonError { message } } }"""
RUN_LOGS = """query($runId: ID!, $cursor: String) { logsForRun(runId: $runId, afterCursor: $cursor) { __typename
  ... on EventConnection { cursor hasMore events { __typename
    ... on MessageEvent { message stepKey }
    ... on EngineEvent { metadataEntries { label ... on TextMetadataEntry { text } } } } } } }"""


def _today_paris() -> dt.date:
    return dt.datetime.now(ZoneInfo("Europe/Paris")).date()


def _database(admin: sa.Engine, label: str) -> str:
    name = f"ip_prod_{label}_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    return _admin_url().set(database=name).render_as_string(hide_password=False)


def _drop(admin: sa.Engine, url: str) -> None:
    _forget(url)
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{sa.make_url(url).database}" WITH (FORCE)'))


class Prod:
    """The running topology, its GraphQL client and the in-process reference warehouse."""

    def __init__(self, topology: Topology, client: WebserverClient, reference_url: str, data: Path) -> None:
        self.topology, self.client, self.reference_url, self.data = topology, client, reference_url, data

    def wait(self, what: str, probe, timeout_s: float = TIMEOUT_S):
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            dead = [name for name, alive in self.topology.alive().items() if not alive]
            assert not dead, f"{dead} exited while waiting for {what}:\n" + "\n".join(
                self.topology.log_tail(n) for n in dead
            )
            value = probe()
            if value:
                return value
            time.sleep(2.0)
        logs = "\n".join(self.topology.log_tail(n, 25) for n in ("daemon", "code-server", "worker-1", "worker-2"))
        raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}\n{logs}")

    def backfill(self, partitions: list[str], keys: list[list[str]]) -> str:
        params = {"partitionNames": partitions, "assetSelection": [{"path": k} for k in keys]}
        answer = self.client.graphql(LAUNCH_BACKFILL, {"params": params})["launchPartitionBackfill"]
        assert answer["__typename"] == "LaunchBackfillSuccess", answer
        return answer["backfillId"]

    def backfill_runs(self, backfill_id: str) -> list[dict]:
        return [r for r in self.client.runs() if tags_of(r).get("dagster/backfill") == backfill_id]

    def finished_run(self, what: str, select) -> dict:
        """The first run ``select`` picks, once it has ended."""

        def probe():
            runs = [r for r in self.client.runs() if select(r)]
            return runs[0] if runs and runs[0]["status"] in DONE else None

        return self.wait(what, probe)

    def events(self, run_id: str) -> list[dict]:
        out, cursor = [], None
        while True:
            page = self.client.graphql(RUN_LOGS, {"runId": run_id, "cursor": cursor})["logsForRun"]
            out += page["events"]
            cursor = page["cursor"]
            if not page["hasMore"]:
                return out

    def failure_report(self, run_id: str) -> str:
        lines = [e.get("message", "") for e in self.events(run_id) if "Failure" in e["__typename"]]
        return "\n".join(lines[-5:])


def tags_of(run: dict) -> dict[str, str]:
    return {t["key"]: t["value"] for t in run["tags"]}


def celery_workers_of(events: list[dict]) -> dict[str, str]:
    """Step key -> the Celery worker (``worker-N@host``) that last executed it, from the run's events."""
    out = {}
    for event in events:
        if (event.get("message") or "").startswith("Executing steps "):
            entries = {m["label"]: m.get("text") for m in event.get("metadataEntries") or []}
            out[event["stepKey"]] = entries.get("Celery worker")
    return out


def comparable(rows: dict[str, list[tuple]]) -> dict[str, list[tuple]]:
    """``dump`` without ``horse.birth_year``: a horse keeps its last seen values, and the schedule's day
    (this year) and the backfill's (2025) give the same horses other ages, in an order that depends on
    which run wrote last. Every other column of every table is compared."""
    from ingestion_platform.defs.pmu import tables

    year = [c.name for c in tables.horse.columns if c.name not in LINEAGE_COLUMNS].index("birth_year")
    out = dict(rows)
    out["horse"] = sorted(row[:year] + row[year + 1 :] for row in rows["horse"])
    return out


@pytest.fixture(scope="module")
def prod(pg_admin: sa.Engine, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prod]:
    root = tmp_path_factory.mktemp("prod")
    sample = root / "pmu_sample"
    today = _today_paris()
    write_days(sample, [dt.date.fromisoformat(d) for d in DAYS] + [today, today + dt.timedelta(days=1)])
    env = {
        **sample_settings(),
        "PMU_API_BASE_URL": sample.as_uri(),
        "PMU_MORNING_CRON": "* * * * *",
        "INGESTION_DATA_DIR": str(root / "data"),
    }
    urls = {label: _database(pg_admin, label) for label in ("dagster", "warehouse", "reference")}
    topology = Topology(
        root / "topology", urls["dagster"], urls["warehouse"], workers=2, port=free_port(), extra_env=env
    )
    client = WebserverClient(topology.url)
    try:
        topology.up(timeout_s=TIMEOUT_S)
        yield Prod(topology, client, urls["reference"], root / "reference_data")
    finally:
        client.close()
        state = topology.state() or {}
        survivors = topology.down(grace_s=5.0)
        for url in urls.values():
            _drop(pg_admin, url)
        assert not survivors, processes.describe(survivors)
        if state.get("marker"):
            assert processes.marked_processes(state["marker"]) == []


def test_topology_runs_schedules_sensors_backfills_on_celery_and_survives_kills(prod: Prod) -> None:
    client = prod.client
    today = _today_paris().isoformat()
    assert client.loaded_location() == "ingestion_platform"
    assert client.unhealthy_daemons() == []
    assert len(prod.topology.ping_workers()) == 2

    # Launched together: the 7-day PMU backfill and an events day; the schedule fires meanwhile.
    pmu_backfill = prod.backfill(DAYS, PMU_KEYS)
    prod.backfill(["2025-03-14"], EVENTS_KEYS)

    # The reference: the same partitions in process (while the topology works).
    reference = prod.reference_url
    assert run_pmu(database_url=reference, data_dir=prod.data, base_url=prod.topology.extra_env["PMU_API_BASE_URL"],
                   partition_range=(DAYS[0], DAYS[-1])).success  # fmt: skip
    morning = [a for a in PMU_ASSETS if a.key.path[-1] != "rapports"]  # pmu_day_job
    assert run_pmu(database_url=reference, data_dir=prod.data, base_url=prod.topology.extra_env["PMU_API_BASE_URL"],
                   partition_key=today, selection=morning).success  # fmt: skip
    expected = comparable(dump(get_warehouse(reference)))

    # -- the schedule: the daemon launched the run of today, which loaded the day
    scheduled = prod.finished_run(
        "the run of pmu_morning_schedule", lambda r: tags_of(r).get("dagster/schedule_name") == "pmu_morning_schedule"
    )
    assert scheduled["status"] == "SUCCESS", prod.failure_report(scheduled["runId"])
    assert tags_of(scheduled)["dagster/partition"] == today
    assert tags_of(scheduled)["ingestion/source"] == "pmu"  # the coordinator's source tag
    warehouse = get_warehouse(prod.topology.warehouse_url)
    from ingestion_platform.defs.events import tables as events_tables
    from ingestion_platform.defs.pmu import tables as pmu_tables

    race = pmu_tables.race
    races_today = warehouse.fetch(sa.select(sa.func.count()).select_from(race).where(race.c.program_date == today))
    assert next(iter(races_today[0].values())) > 0

    # -- the sensor: a successful events run made events_stats_after_refresh request the statistics
    stats = prod.finished_run(
        "the run of events_stats_after_refresh",
        lambda r: tags_of(r).get("dagster/sensor_name") == "events_stats_after_refresh",
    )
    assert stats["status"] == "SUCCESS", prod.failure_report(stats["runId"])
    import_stats = events_tables.import_stats
    warehouse.ensure_tables([import_stats])
    assert warehouse.count(import_stats) > 0

    # -- the backfill: every step on a Celery worker; the tables of in-process runs
    prod.wait("the PMU backfill", lambda: client.backfill(pmu_backfill)["status"].startswith("COMPLETED"))
    backfill = client.backfill(pmu_backfill)
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
            started = [re.search(r"pid: (\d+)", e.get("message") or "") for e in events]
            pids = [int(m.group(1)) for m in started if m and "Started process for run" in m.string]
            busy = [w for w in celery_workers_of(events).values() if w]
            if pids and busy:
                return run["runId"], busy[0].split("@")[0], pids[-1]
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
