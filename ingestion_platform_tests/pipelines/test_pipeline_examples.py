"""The shipped example pipelines, run from the code location as users run them."""

from __future__ import annotations

import copy
import csv
import json
import statistics
from collections import defaultdict
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import ClassVar
from urllib.parse import parse_qs, urlsplit

import dagster as dg
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from ingestion_platform.definitions import defs
from ingestion_platform.lib.ledger import Ledger
from ingestion_platform.lib.raw_store import RawStore
from ingestion_platform.lib.warehouse import get_warehouse
from ingestion_platform_tests import local_http
from ingestion_platform_tests.conftest import REPO_ROOT, require_shared

EXAMPLES = REPO_ROOT / "ingestion_platform" / "defs" / "pipelines"
CKAN_SAMPLE = REPO_ROOT / "ingestion_platform/defs/events/sample/montreal/api/3/action/datastore_search.json"


def _run(job: str, partition_key: str | None = None) -> dg.ExecuteInProcessResult:
    return (
        defs()
        .resolve_job_def(job)
        .execute_in_process(instance=dg.DagsterInstance.ephemeral(), partition_key=partition_key, raise_on_error=False)
    )


def _metadata(result: dg.ExecuteInProcessResult, node: str) -> dict:
    return {k: v.value for m in result.asset_materializations_for_node(node) for k, v in m.metadata.items()}


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("INGESTION_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data"


# -- example 1: emission factors CSV -> clean -> aggregate -> Parquet ----------------------------------
def _expected_by_sector(path: Path, encoding: str, delimiter: str, decimal: str) -> dict[tuple[str, str], dict]:
    """The aggregate computed with the csv module and statistics, independently of the pipeline."""
    groups: dict[tuple[str, str], list[tuple[float, str]]] = defaultdict(list)
    with path.open(encoding=encoding, newline="") as handle:
        for row in csv.DictReader(handle, delimiter=delimiter):
            text = (row["factor"] or "").strip()
            if decimal == ",":
                text = text.replace(".", "").replace(",", ".")
            try:
                factor, year = float(text), int(row["year"])
            except ValueError:
                continue
            if row["sector"].strip() and factor >= 0 and year >= 2000:
                groups[(row["sector"].strip(), row["unit"].strip())].append((factor, row["source"]))
    return {
        key: {"factors": len(v), "sources": len({s for _, s in v}), "mean_factor": statistics.fmean(f for f, _ in v),
              "min_factor": min(f for f, _ in v), "max_factor": max(f for f, _ in v)}
        for key, v in groups.items()
    }  # fmt: skip


def _parquet_rows(data_dir: Path) -> dict[tuple[str, str], dict]:
    table = pq.read_table(data_dir / "pipelines" / "emission_factors" / "factors_by_sector")
    return {(r["sector"], r["unit"]): r for r in table.to_pylist()}


def _assert_same(got: dict, expected: dict) -> None:
    assert set(got) == set(expected)
    for key, figures in expected.items():
        for name, value in figures.items():
            assert got[key][name] == pytest.approx(value), (key, name)


def test_emission_factors_sample_offline(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sample = EXAMPLES / "emission_factors" / "sample.csv"  # Windows-1252, ';', decimal commas, one bad factor
    monkeypatch.setenv("PIPELINES_EMISSION_FACTORS_CSV", str(sample))
    result = _run("pipeline_emission_factors")
    assert result.success
    _assert_same(_parquet_rows(data_dir), _expected_by_sector(sample, "cp1252", ";", ","))
    metadata = _metadata(result, "pipelines__emission_factors__factors_by_sector")
    steps = {s["step"]: s for s in metadata["steps"]}
    assert steps["extract csv"]["rows_out"] == 6
    assert steps["transform[0] clean"] == {"step": "transform[0] clean", "rows_in": 6, "rows_out": 5, "rejected": 1}
    assert metadata["column_types"]["mean_factor"] == "double"
    assert "Décharge" not in metadata["preview"] and "Waste" in metadata["preview"]
    # the bad value is one dead letter naming the file, the row and the field; the raw file is landed as is
    store = RawStore(data_dir)
    (letter,) = store.dead_letters("pipeline_emission_factors__factors_by_sector")
    assert "sample.csv" in letter.error and "row 6" in letter.error and "'factor'" in letter.error
    assert "non communiqué" in letter.error
    with store.open_payload("pipeline_emission_factors__factors_by_sector", "unpartitioned", "sample.csv") as handle:
        assert handle.read() == sample.read_bytes()
    (job,) = Ledger(get_warehouse()).jobs(asset_key="pipelines/emission_factors/factors_by_sector")
    assert job["status"] == "completed_with_errors" and job["rejected"] == 1
    assert {c.check_name: c.passed for c in result.get_asset_check_evaluations()} == {
        "not_null__sector_unit_mean_factor": True, "unique__sector_unit": True, "row_count": True,
        "accepted_values__sector": True,
    }  # fmt: skip


def test_emission_factors_on_the_shared_file(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = require_shared("carbon/emission_factors") / "OpenEmissionFactorsDB_2021-11-24.csv"
    monkeypatch.setenv("PIPELINES_EMISSION_FACTORS_CSV", str(path))
    result = _run("pipeline_emission_factors")
    assert result.success
    expected = _expected_by_sector(path, "utf-8", ",", ".")
    _assert_same(_parquet_rows(data_dir), expected)
    assert {s for s, _ in expected} == {"Transport", "Energy", "Computing", "Waste", "Buildings", "Water"}
    metadata = _metadata(result, "pipelines__emission_factors__factors_by_sector")
    assert metadata["rows_in"] == 1417 and metadata["rejected"] == 0
    # a re-run replaces the day's file: same rows, one file
    assert _run("pipeline_emission_factors").success
    _assert_same(_parquet_rows(data_dir), expected)
    files = list((data_dir / "pipelines" / "emission_factors" / "factors_by_sector").glob("*.parquet"))
    assert [f.name for f in files] == ["part-0.parquet"]


def test_emission_factors_default_path_is_the_shared_folder_beside_the_repository() -> None:
    text = (EXAMPLES / "emission_factors" / "defs.yaml").read_text(encoding="utf-8")
    (line,) = [line for line in text.splitlines() if line.strip().startswith("path: ../")]
    path = (EXAMPLES / "emission_factors" / line.split(":", 1)[1].strip()).resolve()
    expected = REPO_ROOT.parent / "shared" / "carbon" / "emission_factors" / "OpenEmissionFactorsDB_2021-11-24.csv"
    assert path == expected.resolve()  # ../shared may be a symbolic link (CI clones beside one)


# -- example 2: CKAN REST -> filter -> warehouse -------------------------------------------------------
class Ckan(BaseHTTPRequestHandler):
    """``datastore_search`` with CKAN's limit/offset paging over the Montréal sample (+ extra records)."""

    records: ClassVar[list[dict]] = []
    calls: ClassVar[list[dict]] = []

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        type(self).calls.append(query)
        if url.path != "/api/3/action/datastore_search":
            self.send_error(404)
            return
        limit, offset = int(query.get("limit", 100)), int(query.get("offset", 0))
        page = {"records": self.records[offset : offset + limit], "total": len(self.records)}
        local_http.send_json(self, {"success": True, "result": page})

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture
def ckan(monkeypatch: pytest.MonkeyPatch):
    sample = json.loads(CKAN_SAMPLE.read_text(encoding="utf-8"))["result"]["records"]
    records = copy.deepcopy(sample)
    bad = dict(records[0], _id=9001, date_debut="14/03/2025", titre="Date illisible", cout="Gratuit")
    records.append(bad)
    Ckan.records, Ckan.calls = records, []
    httpd, url = local_http.start(Ckan)
    monkeypatch.setenv("MONTREAL_CKAN_URL", url)
    yield sample
    local_http.stop(httpd)


def test_ckan_to_the_warehouse(ckan: list[dict], data_dir: Path, warehouse_url: str,
                               monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    monkeypatch.setenv("INGESTION_DATABASE_URL", warehouse_url)
    result = _run("pipeline_montreal_free_events")
    assert result.success
    expected = {int(r["_id"]): r for r in ckan if r["cout"] == "Gratuit" and r["date_debut"] not in (None, "nan")}
    warehouse = get_warehouse(warehouse_url)
    table = sa.Table("montreal_free_events", sa.MetaData(schema="pipelines"), autoload_with=warehouse.engine)
    rows = {r["record_id"]: r for r in warehouse.fetch(sa.select(table))}
    assert set(rows) == set(expected) and len(rows) >= 1
    some = next(iter(expected.values()))
    got = rows[int(some["_id"])]
    assert got["titre"] == some["titre"] and str(got["date_debut"]) == some["date_debut"]
    assert got["lat"] == pytest.approx(float(some["lat"])) and "x" not in got and "lon" in got
    # the unreadable date is one dead letter naming the page, the record and the field
    (letter,) = RawStore(data_dir).dead_letters("pipeline_montreal_free_events__free_events")
    assert "page_00001.json" in letter.error and "'date_debut'" in letter.error and "14/03/2025" in letter.error
    assert [c["offset"] for c in Ckan.calls] == ["0"] and Ckan.calls[0]["limit"] == "1000"
    # the ledger has the warehouse's counts; a re-run changes nothing
    jobs = Ledger(warehouse).jobs(asset_key="pipelines/montreal_free_events/free_events")
    assert jobs[-1]["created"] == len(expected) and jobs[-1]["rejected"] == 1
    assert _run("pipeline_montreal_free_events").success
    jobs = Ledger(warehouse).jobs(asset_key="pipelines/montreal_free_events/free_events")
    assert (jobs[-1]["created"], jobs[-1]["updated"], jobs[-1]["unchanged"]) == (0, 0, len(expected))
    checks = {c.check_name: c.passed for c in result.get_asset_check_evaluations()}
    assert checks == {"not_null__record_id_titre_date_debut": True, "unique__record_id": True, "row_count": True,
                      "accepted_values__cout": True}  # fmt: skip


def test_every_example_asset_carries_its_notification_channels() -> None:
    graph = defs().resolve_asset_graph()
    keys = [k for k in graph.get_all_asset_keys() if k.path[0] == "pipelines"]
    assert len(keys) >= 2
    for key in keys:
        notify = graph.get(key).metadata["ingestion/notify"]
        assert isinstance(notify.value, dict)
    events = graph.get(dg.AssetKey(["pipelines", "montreal_free_events", "free_events"])).metadata
    assert events["ingestion/notify"].value == {"email_to": ["events-team@example.org"]}
