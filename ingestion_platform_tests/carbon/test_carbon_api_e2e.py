"""The sync API against a real ``dagster dev`` (webserver + daemon): runs launched over GraphQL, queued,
started by the daemon, tagged with the job id; sync, poll until completed, a failing sync, its retry.

Run alone with ``pytest -m e2e``. ``dagster dev`` and everything it starts are killed at the end.
"""

import datetime as dt
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from ingestion_platform.api.app import create_app, parse_tokens
from ingestion_platform.api.launcher import DagsterLauncher
from ingestion_platform.defs.carbon.resources import CarbonSettings
from ingestion_platform.lib.warehouse import get_warehouse
from ingestion_platform_tests.ui.dagster_dev import DagsterDev

pytestmark = pytest.mark.e2e
ADMIN, READ = {"Authorization": "Bearer e2e-admin"}, {"Authorization": "Bearer e2e-read"}


@pytest.fixture
def dagster(tmp_path: Path):
    server = DagsterDev(tmp_path / "dagster", tmp_path / "dagster-dev.log", {"INGESTION_AUTOMATION": "stopped"})
    try:
        server.start()
        server.wait_ready(timeout_s=150)
        yield server
    finally:
        server.stop()


def _poll(client: TestClient, job_id: int, timeout_s: float = 150.0) -> list[dict]:
    seen = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        status = client.get(f"/api/v1/sync/status/{job_id}", headers=READ).json()
        if not seen or status["status"] != seen[-1]["status"] or status["progress"] != seen[-1]["progress"]:
            seen.append(status)
        if status["status"] in ("completed", "failed"):
            return seen
        time.sleep(1.0)
    raise AssertionError(f"job {job_id} still {seen[-1]['status']} after {timeout_s} s: {seen[-1]}")


def _run_status(dagster: DagsterDev, run_id: str, timeout_s: float = 60.0) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        status = dagster.run(run_id)["status"]
        if status in ("SUCCESS", "FAILURE", "CANCELED"):
            return status
        time.sleep(1.0)
    return status


def test_sync_poll_fail_retry_through_a_real_webserver_and_daemon(dagster: DagsterDev, tmp_path: Path) -> None:
    warehouse = get_warehouse(f"sqlite:///{dagster.data_dir / 'warehouse.db'}")
    launcher = DagsterLauncher(url=f"{dagster.url}/graphql", location=dagster.location)
    app = create_app(
        warehouse=warehouse,
        launcher=launcher,
        tokens=parse_tokens("e2e-admin:admin,e2e-read:read"),
        carbon=CarbonSettings(organisation="e2e"),
        upload_dir=tmp_path / "uploads",
    )
    client = TestClient(app)
    entries = client.post(
        "/api/v1/sync/data-entries/headcount",
        headers=ADMIN,
        data={"year": "2024"},
        files={
            "file": ("hc.csv", b"date;department;fte\r\n02/01/2024;Ops;2,5\r\n03/01/2024;Sales;oops\r\n", "text/csv")
        },
    )
    assert entries.status_code == 202, entries.text
    bad = client.post(
        "/api/v1/sync/factors/generic/generic",
        headers=ADMIN,
        data={"year": "2024"},
        files={"file": ("factors.csv", b"what,is,this\n1,2,3\n", "text/csv")},
    )
    assert bad.status_code == 202, bad.text
    entries_id, bad_id = entries.json()["job_id"], bad.json()["job_id"]
    run = dagster.run(entries.json()["run_id"])
    assert {"key": "carbon/job_id", "value": str(entries_id)} in run["tags"]
    assert {"key": "dagster/max_retries", "value": "0"} in run["tags"]  # retried through the API, as a new job

    failed = _poll(client, bad_id)[-1]
    assert (failed["status"], failed["status_code"]) == ("failed", 400)
    assert "factors.csv: not an emission-factor file of a known layout" in failed["message"]
    assert _run_status(dagster, bad.json()["run_id"]) == "FAILURE"

    # fix the stored upload in place, then retry: a new job and run, linked to the failed one
    Path(failed["metadata"]["config"]["file"]).write_bytes(
        b"id,name,unit,factor,source,year,region\nelectricity-grid,Grid mix,kg-CO2e/kwh,0.052,ADEME,2021,FR\n"
    )
    retry = client.post(f"/api/v1/sync/retry/{bad_id}", headers=ADMIN)
    assert retry.status_code == 202, retry.text
    done = _poll(client, retry.json()["job_id"])[-1]
    assert (done["status"], done["status_code"], done["retry_of"]) == ("completed", 200, bad_id)
    assert done["counts"]["created"] == 1

    # the job stays processing until the run has reported every day and check: it completes after the run's
    # last materialisation and check evaluation (whether a poll saw it processing depends on timing alone)
    states = _poll(client, entries_id, timeout_s=300)
    final = states[-1]
    assert _run_status(dagster, entries.json()["run_id"]) == "SUCCESS"
    events = dagster.graphql(
        """query($id: ID!) { logsForRun(runId: $id, limit: 5000) { ... on EventConnection {
             events { __typename ... on MessageEvent { timestamp } } } } }""",
        {"id": entries.json()["run_id"]},
    )["logsForRun"]["events"]
    reported = [
        float(e["timestamp"]) / 1000
        for e in events
        if e["__typename"] in ("MaterializationEvent", "AssetCheckEvaluationEvent")
    ]
    assert reported, events
    completed = dt.datetime.fromisoformat(str(final["completed_at"]))
    completed = completed if completed.tzinfo else completed.replace(tzinfo=dt.UTC)
    assert completed.timestamp() >= max(reported), (final["completed_at"], max(reported))
    assert (final["status"], final["status_code"]) == ("completed", 207), final
    assert final["progress"] == {"fetched": 2, "transformed": 1, "loaded": 1}
    assert any("line 3, field 'fte': 'oops' is not a number" in e for e in final["metadata"]["errors"])
    history = client.get("/api/v1/sync/history/headcount", headers=READ).json()
    assert [h["job_id"] for h in history] == [entries_id]
