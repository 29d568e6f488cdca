"""The sync API in process (FastAPI TestClient): auth, validation, OpenAPI, the job contract, no secrets."""

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from ingestion_platform.api.app import create_app, parse_tokens
from ingestion_platform.api.launcher import LaunchError
from ingestion_platform.defs.carbon.jobs import SyncJobs
from ingestion_platform.defs.carbon.resources import CarbonSettings
from ingestion_platform.lib.settings import SettingError
from ingestion_platform.lib.warehouse import get_warehouse

ADMIN, READ = {"Authorization": "Bearer adm-123"}, {"Authorization": "Bearer ro-456"}


class FakeLauncher:
    def __init__(self) -> None:
        self.launched: list[dict[str, Any]] = []
        self.fail = False

    def launch(self, assets, *, run_config=None, tags=None) -> str:
        if self.fail:
            raise LaunchError("Dagster webserver unreachable at http://127.0.0.1:9/graphql: ConnectError")
        self.launched.append({"assets": assets, "run_config": run_config, "tags": tags})
        return f"run-{len(self.launched)}"


@pytest.fixture
def api(sqlite_url: str, tmp_path: Path) -> tuple[TestClient, FakeLauncher, SyncJobs, Path]:
    launcher = FakeLauncher()
    wh = get_warehouse(sqlite_url)
    app = create_app(
        warehouse=wh,
        launcher=launcher,
        tokens=parse_tokens("adm-123:admin,ro-456:read"),
        carbon=CarbonSettings(organisation="acme"),
        upload_dir=tmp_path / "uploads",
    )
    return TestClient(app), launcher, SyncJobs(wh), tmp_path / "uploads"


def test_tokens_401_403(api) -> None:
    client, launcher, _, _ = api
    assert client.get("/api/v1/jobs").status_code == 401
    assert client.get("/api/v1/jobs", headers={"Authorization": "Bearer nope"}).status_code == 401
    assert client.get("/api/v1/jobs", headers=READ).status_code == 200
    response = client.post(
        "/api/v1/sync/data-entries/travel", headers=READ, json={"provider_type": "tableau_api", "year": 2024}
    )
    assert response.status_code == 403 and launcher.launched == []
    with pytest.raises(SettingError, match="entry 2 is not token:admin or token:read"):
        parse_tokens("a:admin,secret-value:root")


def test_a_csv_upload_sync_stores_the_file_then_launches_a_tagged_run(api) -> None:
    client, launcher, _, uploads = api
    response = client.post(
        "/api/v1/sync/data-entries/headcount",
        headers=ADMIN,
        data={"year": "2024", "provider_type": "csv_upload", "config": '{"api_key": "hunter2", "day_first": true}'},
        files={"file": ("hc 2024.csv", b"date,department,fte\n2024-01-02,Ops,2\n", "text/csv")},
    )
    assert response.status_code == 202, response.text
    body = response.json()
    assert {k: body[k] for k in ("status", "status_code", "message")} == {
        "status": "pending",
        "status_code": 102,
        "message": "Sync initiated",
    }
    stored = list(uploads.rglob("hc_2024.csv"))
    assert len(stored) == 1 and stored[0].read_bytes().startswith(b"date,department")
    run = launcher.launched[0]
    assert run["assets"] == [["carbon", "data_entries"]]
    assert run["run_config"] == {"ops": {"carbon__data_entries": {"config": {"job_id": body["job_id"]}}}}
    assert run["tags"]["carbon/job_id"] == str(body["job_id"])
    assert run["tags"]["dagster/asset_partition_range_start"] == "2024-01-01"
    assert run["tags"]["dagster/asset_partition_range_end"] == "2024-12-31"
    status = client.get(f"/api/v1/sync/status/{body['job_id']}", headers=READ).json()
    assert status["status"] == "pending" and status["run_id"] == "run-1" and status["inventory_id"] == "acme-2024"
    assert status["progress"] == {"fetched": 0, "transformed": 0, "loaded": 0}
    assert "hunter2" not in str(status) and status["metadata"]["config"]["api_key"] == "***"
    history = client.get("/api/v1/sync/history/headcount?provider_type=csv_upload&limit=5", headers=READ).json()
    assert [h["job_id"] for h in history] == [body["job_id"]]


@pytest.mark.parametrize(
    ("path", "payload", "field", "text"),
    [
        (
            "/api/v1/sync/data-entries/headcount",
            {"provider_type": "tableau_api", "year": 2024},
            "provider_type",
            "valid combinations: ",
        ),
        (
            "/api/v1/sync/data-entries/travel",
            {"provider_type": "tableau_api", "year": 1800},
            "year",
            "greater than or equal",
        ),
        ("/api/v1/sync/data-entries/travel", {"provider_type": "tableau_api", "year": 2010}, "year", "between"),
        ("/api/v1/sync/data-entries/travel", {"year": 2024}, "provider_type", "Field required"),
        ("/api/v1/sync/data-entries/travel", {"provider_type": "csv_upload", "year": 2024}, "file", "needs a file"),
        (
            "/api/v1/sync/data-entries/rockets",
            {"provider_type": "csv_upload", "year": 2024},
            "module_id",
            "unknown module",
        ),
        (
            "/api/v1/sync/data-entries/travel",
            {"provider_type": "tableau_api", "year": 2024, "filters": [1]},
            "filters",
            "dictionary",
        ),
    ],
)
def test_invalid_inputs_are_422_naming_the_field(api, path: str, payload: dict, field: str, text: str) -> None:
    client, launcher, _, _ = api
    response = client.post(path, headers=ADMIN, json=payload)
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert any(field in [str(x) for x in d["loc"]] and text in d["msg"] for d in detail), detail
    assert launcher.launched == []


def test_retry_only_a_failed_job_and_link_it(api) -> None:
    client, _, jobs, _ = api
    first = client.post(
        "/api/v1/sync/data-entries/travel",
        headers=ADMIN,
        json={"provider_type": "tableau_api", "year": 2024, "filters": {"Region": "EU"}},
    ).json()
    assert client.post(f"/api/v1/sync/retry/{first['job_id']}", headers=ADMIN).status_code == 409  # pending
    jobs.start(first["job_id"])
    jobs.fail(first["job_id"], "ProviderError: Tableau sign-in refused", 401)
    assert client.get(f"/api/v1/sync/status/{first['job_id']}", headers=READ).json()["status_code"] == 401
    retry = client.post(f"/api/v1/sync/retry/{first['job_id']}", headers=ADMIN)
    assert retry.status_code == 202
    new = client.get(f"/api/v1/sync/status/{retry.json()['job_id']}", headers=READ).json()
    assert (
        new["retry_of"] == first["job_id"]
        and new["metadata"]["filters"] == {"Region": "EU"}
        and new["status"] == "pending"
    )
    assert client.post("/api/v1/sync/retry/999", headers=ADMIN).status_code == 404
    assert client.post(f"/api/v1/sync/retry/{first['job_id']}", headers=READ).status_code == 403


def test_a_launch_failure_fails_the_job(api) -> None:
    client, launcher, jobs, _ = api
    launcher.fail = True
    response = client.post(
        "/api/v1/sync/data-entries/travel", headers=ADMIN, json={"provider_type": "tableau_api", "year": 2024}
    )
    assert response.status_code == 503
    job = jobs.get(response.json()["job_id"])
    assert (job["status"], job["status_code"]) == ("failed", 503) and "unreachable" in job["message"]


def test_openapi_and_dashboard(api) -> None:
    client, launcher, _, _ = api
    spec = client.get("/openapi.json").json()
    assert {
        "/api/v1/sync/data-entries/{module_id}",
        "/api/v1/sync/factors/{module_id}/{factor_type_id}",
        "/api/v1/sync/status/{job_id}",
        "/api/v1/sync/history/{module_id}",
        "/api/v1/sync/retry/{job_id}",
        "/api/v1/jobs",
        "/api/v1/stats",
        "/api/v1/ingest/{source}",
        "/api/v1/ingest-all",
    } <= set(spec["paths"])
    assert "bearer" in str(spec["components"]["securitySchemes"]).lower()
    client.post("/api/v1/sync/data-entries/travel", headers=ADMIN, json={"provider_type": "tableau_api", "year": 2024})
    page = client.get("/api/v1/jobs?limit=1&offset=0", headers=READ).json()
    assert page["total"] == 1 and page["items"][0]["source"] == "carbon"
    assert client.get("/api/v1/jobs?limit=0", headers=READ).status_code == 422
    stats = {s["source"]: s for s in client.get("/api/v1/stats", headers=READ).json()["sources"]}
    assert {"pmu", "carbon"} <= set(stats) and stats["carbon"]["last_status"] == "pending"
    response = client.post("/api/v1/ingest/pmu", headers=ADMIN, json={"partition": "2025-03-14"})
    assert response.status_code == 202 and launcher.launched[-1]["tags"]["dagster/partition"] == "2025-03-14"
    assert client.post("/api/v1/ingest/nope", headers=ADMIN).status_code == 422
    refused = client.post("/api/v1/ingest/carbon", headers=ADMIN)
    assert refused.status_code == 422 and "/api/v1/sync/" in refused.text
    assert client.post("/api/v1/ingest/pmu", headers=ADMIN, json={"partition": "14/03/2025"}).status_code == 422
