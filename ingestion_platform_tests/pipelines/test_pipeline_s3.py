"""Example 3: the PMU tables -> runners per racecourse and day -> Parquet on a real S3-compatible server
(moto's server over HTTP on 127.0.0.1, reached through pyarrow.fs.S3FileSystem)."""

from __future__ import annotations

import socket
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import boto3
import dagster as dg
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa
from moto.server import ThreadedMotoServer

from ingestion_platform.definitions import defs
from ingestion_platform.defs.pmu import tables
from ingestion_platform.defs.pmu.assets import participants, programme
from ingestion_platform.lib.ledger import Ledger
from ingestion_platform.lib.warehouse import get_warehouse
from ingestion_platform_tests.pmu_helpers import SAMPLE_DAY, SAMPLE_DIR, run_pmu

BUCKET = "pipelines-test"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def s3(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> pafs.S3FileSystem:
    for name, value in {"PIPELINES_S3_ENDPOINT": s3_endpoint, "PIPELINES_S3_ACCESS_KEY": "test",
                        "PIPELINES_S3_SECRET_KEY": "test", "PIPELINES_S3_BUCKET": BUCKET}.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    client = boto3.client("s3", endpoint_url=s3_endpoint, aws_access_key_id="test", aws_secret_access_key="test",
                          region_name="us-east-1")  # fmt: skip
    if BUCKET not in [b["Name"] for b in client.list_buckets().get("Buckets", [])]:
        client.create_bucket(Bucket=BUCKET)
    for item in client.list_objects_v2(Bucket=BUCKET).get("Contents", []):
        client.delete_object(Bucket=BUCKET, Key=item["Key"])
    return pafs.S3FileSystem(endpoint_override=s3_endpoint.split("://")[1], scheme="http", access_key="test",
                             secret_key="test", region="us-east-1")  # fmt: skip


def _expected(url: str) -> dict[str, dict]:
    """Runners per racecourse on the sample day, counted from the PMU tables in Python."""
    warehouse = get_warehouse(url)
    p, m = tables.race_participant, tables.race_meeting
    joined = p.join(m, sa.and_(m.c.program_date == p.c.program_date, m.c.meeting_num == p.c.meeting_num))
    every = warehouse.fetch(sa.select(p.c.program_date, m.c.hippodrome_code, p.c.race_num, p.c.is_non_runner)
                            .select_from(joined))  # fmt: skip
    rows = [r for r in every if str(r["program_date"]) == SAMPLE_DAY]
    out: dict[str, dict] = defaultdict(lambda: {"races": set(), "entries": 0, "non_runners": 0})
    for row in rows:
        entry = out[row["hippodrome_code"]]
        entry["races"].add(row["race_num"])
        entry["entries"] += 1
        entry["non_runners"] += int(bool(row["is_non_runner"]))
    return {k: {**v, "races": len(v["races"])} for k, v in out.items()}


def test_pmu_runners_to_s3(s3: pafs.S3FileSystem, warehouse_url: str, tmp_path: Path,
                           monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    monkeypatch.setenv("INGESTION_DATABASE_URL", warehouse_url)
    monkeypatch.setenv("INGESTION_DATA_DIR", str(tmp_path / "data"))
    loaded = run_pmu(database_url=warehouse_url, data_dir=tmp_path / "data", base_url=SAMPLE_DIR.as_uri(),
                     selection=[programme, participants])  # fmt: skip
    assert loaded.success
    expected = _expected(warehouse_url)
    assert sum(v["entries"] for v in expected.values()) == 38  # the sample day's runners

    job = defs().resolve_job_def("pipeline_pmu_runners")
    for _ in range(2):  # a re-run replaces the day's object
        result = job.execute_in_process(instance=dg.DagsterInstance.ephemeral(), partition_key=SAMPLE_DAY,
                                        raise_on_error=False)  # fmt: skip
        assert result.success
    folder = f"{BUCKET}/pipelines/pmu_runners/day={SAMPLE_DAY}"
    objects = [f.base_name for f in s3.get_file_info(pafs.FileSelector(folder))]
    assert objects == ["part-0.parquet"]  # no temporary object left behind
    table = pq.read_table(f"{folder}/part-0.parquet", filesystem=s3)
    got = {r["hippodrome_code"]: r for r in table.to_pylist()}
    assert set(got) == set(expected)
    for code, figures in expected.items():
        assert {k: got[code][k] for k in figures} == figures, code
    assert all(str(r["program_date"]) == SAMPLE_DAY for r in got.values())
    checks = {c.check_name: c.passed for c in result.get_asset_check_evaluations()}
    assert checks == {"not_null__hippodrome_code_entries": True, "unique__program_date_hippodrome_code": True,
                      "row_count": True}  # fmt: skip
    jobs = Ledger(get_warehouse(warehouse_url)).jobs(asset_key="pipelines/pmu_runners/runners_by_racecourse")
    assert [j["partition_key"] for j in jobs] == [SAMPLE_DAY, SAMPLE_DAY]
    assert jobs[-1]["status"] == "completed"
    # a day without races: nothing written, the warning check says so
    result = job.execute_in_process(instance=dg.DagsterInstance.ephemeral(), partition_key="2025-03-20",
                                    raise_on_error=False)  # fmt: skip
    assert result.success
    assert {c.check_name: c.passed for c in result.get_asset_check_evaluations()}["row_count"] is False
