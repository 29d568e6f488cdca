"""The production topology on fresh databases, driven through its GraphQL API (the e2e test, the benchmark).

``running_topology(root, admin_url, workers=N, env=...)`` writes the offline PMU days (the 7 days
2025-03-13 .. 19 of ``DAYS`` and today and tomorrow, see ``sample_days``), creates the Dagster storage
and warehouse databases (unique names), brings ``ingestion_platform.prod.Topology`` up with the
sources on the samples, and yields a ``Prod`` driver; on exit, whatever happened, it stops every
process of the topology and drops the databases, then raises if a process survived.
"""

from __future__ import annotations

import datetime as dt
import re
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from ingestion_platform.lib import processes
from ingestion_platform.lib.webserver import WebserverClient
from ingestion_platform.local_env import sample_settings
from ingestion_platform.prod import Topology, free_port
from ingestion_platform_tests.pmu_helpers import PMU_ASSETS
from ingestion_platform_tests.prod.sample_days import write_days

DAYS = [(dt.date(2025, 3, 13) + dt.timedelta(days=i)).isoformat() for i in range(7)]
PMU_KEYS = [a.key.path for a in PMU_ASSETS]
EVENTS_KEYS = [["events", name] for name in ("eventbrite", "montreal", "ics", "duplicates")]
DONE = {"SUCCESS", "FAILURE", "CANCELED"}
TIMEOUT_S = 420.0

LAUNCH_BACKFILL = """mutation($params: LaunchBackfillParams!) { launchPartitionBackfill(backfillParams: $params) {
  __typename ... on LaunchBackfillSuccess { backfillId } ... on PythonError { message } } }"""
RUN_LOGS = """query($runId: ID!, $cursor: String) { logsForRun(runId: $runId, afterCursor: $cursor) { __typename
  ... on EventConnection { cursor hasMore events { __typename
    ... on MessageEvent { message stepKey timestamp }
    ... on EngineEvent { metadataEntries { label ... on TextMetadataEntry { text } } } } } } }"""
RUN_TIMES = """query($ids: [String!]) { runsOrError(filter: {runIds: $ids}) { ... on Runs {
  results { runId status creationTime startTime endTime tags { key value } } } } }"""


def today_paris() -> dt.date:
    return dt.datetime.now(ZoneInfo("Europe/Paris")).date()


def tags_of(run: Mapping[str, Any]) -> dict[str, str]:
    return {t["key"]: t["value"] for t in run["tags"]}


def celery_workers_of(events: list[dict]) -> dict[str, str]:
    """Step key -> the Celery worker (``worker-N@host``) that last executed it, from the run's events."""
    out = {}
    for event in events:
        # "[CeleryExecutor] Executing steps pmu__programme in celery worker", reported by the worker
        if re.search(r"Executing steps .* in celery worker", event.get("message") or ""):
            entries = {m["label"]: m.get("text") for m in event.get("metadataEntries") or []}
            out[event["stepKey"]] = entries.get("Celery worker")
    return out


def run_process_pid(events: list[dict]) -> int | None:
    """The pid of the run's process, from Dagster's ``Started process for run (pid: N)`` event."""
    for event in events:
        message = event.get("message") or ""
        if "Started process for run" in message and (found := re.search(r"pid: (\d+)", message)):
            return int(found.group(1))
    return None


class Prod:
    """A running topology, its GraphQL client and the URL of the offline PMU days."""

    def __init__(self, topology: Topology, sample_url: str) -> None:
        self.topology, self.sample_url = topology, sample_url
        self.client = WebserverClient(topology.url)

    def wait(self, what: str, probe: Callable[[], Any], timeout_s: float = TIMEOUT_S, every_s: float = 2.0) -> Any:
        """``probe()``'s first true value; fails when a process of the topology exited, or after ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            dead = [name for name, alive in self.topology.alive().items() if not alive]
            assert not dead, f"{dead} exited while waiting for {what}:\n" + "\n".join(
                self.topology.log_tail(n) for n in dead
            )
            value = probe()
            if value:
                return value
            time.sleep(every_s)
        logs = "\n".join(self.topology.log_tail(n, 25) for n in ("daemon", "code-server", "worker-1", "worker-2"))
        raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}\n{logs}")

    def backfill(self, partitions: list[str], keys: list[list[str]]) -> str:
        params = {"partitionNames": partitions, "assetSelection": [{"path": k} for k in keys]}
        answer = self.client.graphql(LAUNCH_BACKFILL, {"params": params})["launchPartitionBackfill"]
        assert answer["__typename"] == "LaunchBackfillSuccess", answer
        return answer["backfillId"]

    def backfill_done(self, backfill_id: str) -> dict[str, Any]:
        return self.wait(
            f"backfill {backfill_id}",
            lambda: (b := self.client.backfill(backfill_id))["status"].startswith("COMPLETED") and b,
        )

    def backfill_runs(self, backfill_id: str) -> list[dict]:
        return [r for r in self.client.runs() if tags_of(r).get("dagster/backfill") == backfill_id]

    def finished_run(self, what: str, select: Callable[[dict], bool]) -> dict:
        """The first run ``select`` picks (the oldest), once it has ended."""

        def probe():
            runs = [r for r in self.client.runs() if select(r)]  # newest first
            return runs[-1] if runs and runs[-1]["status"] in DONE else None

        return self.wait(what, probe)

    def stop_schedule(self, name: str) -> None:
        """Stop the schedule ``name`` (a cron of every minute would launch a run each minute)."""
        data = self.client.graphql(
            """{ repositoriesOrError { ... on RepositoryConnection { nodes {
                 schedules { name scheduleState { id status } } } } } }"""
        )
        (state,) = [
            s["scheduleState"]
            for r in data["repositoriesOrError"]["nodes"]
            for s in r["schedules"]
            if s["name"] == name
        ]
        answer = self.client.graphql(
            """mutation($id: String!) { stopRunningSchedule(id: $id) { __typename
                 ... on ScheduleStateResult { scheduleState { status } } ... on PythonError { message } } }""",
            {"id": state["id"]},
        )["stopRunningSchedule"]
        assert answer.get("scheduleState", {}).get("status") == "STOPPED", answer

    def run_assets(self, run_id: str) -> list[list[str]]:
        """The asset keys the run ``run_id`` was asked to materialize (its asset selection)."""
        data = self.client.graphql(
            """query($ids: [String!]) { runsOrError(filter: {runIds: $ids}) { ... on Runs {
                 results { assetSelection { path } } } } }""",
            {"ids": [run_id]},
        )
        (run,) = data["runsOrError"]["results"]
        return sorted(key["path"] for key in run["assetSelection"] or [])

    def run_times(self, run_ids: list[str]) -> list[dict]:
        return self.client.graphql(RUN_TIMES, {"ids": run_ids})["runsOrError"]["results"]

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


def create_database(admin: sa.Engine, label: str) -> str:
    name = f"ip_prod_{label}_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    return admin.url.set(database=name).render_as_string(hide_password=False)


def drop_database(admin: sa.Engine, url: str) -> None:
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{sa.make_url(url).database}" WITH (FORCE)'))


@contextmanager
def running_topology(
    root: Path, admin: sa.Engine, *, workers: int, env: Mapping[str, str] | None = None
) -> Iterator[Prod]:
    sample = root / "pmu_sample"
    today = today_paris()
    write_days(sample, [dt.date.fromisoformat(d) for d in DAYS] + [today, today + dt.timedelta(days=1)])
    settings = {
        **sample_settings(),
        "PMU_API_BASE_URL": sample.as_uri(),
        "INGESTION_DATA_DIR": str(root / "data"),
        **(env or {}),
    }
    urls = [create_database(admin, "dagster"), create_database(admin, "warehouse")]
    topology = Topology(root / "topology", *urls, workers=workers, port=free_port(), extra_env=settings)
    prod = Prod(topology, sample.as_uri())
    survivors: list[int] = []
    try:
        topology.up(timeout_s=TIMEOUT_S)
        yield prod
    finally:
        prod.client.close()
        marker = (topology.state() or {}).get("marker")
        survivors = topology.down(grace_s=5.0)
        if marker:
            survivors += processes.marked_processes(marker)
        for url in urls:
            drop_database(admin, url)
    assert not survivors, "processes of the topology survived:\n" + processes.describe(survivors)
