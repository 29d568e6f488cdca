"""Carbon syncs end to end in Dagster (in process): CSV data entries of a year, factors, footprint, retry."""

import datetime as dt
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa

from ingestion_platform.defs.carbon import assets, tables
from ingestion_platform.defs.carbon.jobs import SyncJobs
from ingestion_platform.defs.carbon.providers import InvalidProvider, provider_class, provider_for_job
from ingestion_platform.defs.carbon.resources import CarbonSettings, TableauSettings
from ingestion_platform.lib.ledger import InvalidTransition, Ledger
from ingestion_platform.lib.raw_store import RawStoreResource
from ingestion_platform.lib.warehouse import WarehouseResource, get_warehouse
from ingestion_platform_tests.conftest import require_shared

TRAVEL = (
    "trip_id,Flight Date,Origin,Destination,Class,Distance (km),Passengers\r\n"
    "T1,2024-01-15,CDG,JFK,Economy Class,5834,1\r\n"
    "T2,2024-01-15,CDG,LHR,Business,344,2\r\n"
    "T3,2024-02-01,CDG,NRT,Cargo,9714,1\r\n"
    "T4,2025-01-01,CDG,NRT,Economy,9714,1\r\n"
    'T5,2024-03-10,LHR,JFK,First,"5,540",1\r\n'
)


Q1 = "03-31"  # later syncs in a test run over the first quarter only (a year is 366 partitions: ~40 s)


def _resources(url: str, data: Path) -> dict:
    return {
        "warehouse": WarehouseResource(database_url=url),
        "raw_store": RawStoreResource(data_dir=str(data)),
        "carbon": CarbonSettings(organisation="acme", upload_dir=str(data / "drop")),
        "tableau": TableauSettings(),
    }


def _sync(url: str, data: Path, asset: dg.AssetsDefinition, job_id: int, year: int | None = None, last: str = "12-31"):
    """Run the sync job; data entries over ``year``'s days up to ``last`` (the whole year by default)."""
    tags = {}
    if year is not None:
        tags = {
            "dagster/asset_partition_range_start": f"{year}-01-01",
            "dagster/asset_partition_range_end": f"{year}-{last}",
        }
    op = "__".join(asset.key.path)
    return dg.materialize(
        [asset],
        resources=_resources(url, data),
        tags=tags,
        instance=dg.DagsterInstance.ephemeral(),
        run_config={"ops": {op: {"config": {"job_id": job_id}}}},
        raise_on_error=False,
    )


def _csv_job(jobs: SyncJobs, module: str, file: str) -> int:
    """A pending csv_upload sync of ``module``'s 2024 data entries from ``file``."""
    return jobs.create(
        module_id=module,
        target_type="data_entries",
        provider_type="csv_upload",
        year=2024,
        inventory_id="acme-2024",
        config={"file": file},
        created_by="test",
    )


def _upload(tmp_path: Path, name: str, body: str | bytes) -> str:
    path = tmp_path / "uploads" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(body.encode() if isinstance(body, str) else body)
    return str(path)


def test_a_year_of_travel_from_csv_is_one_run_and_a_resync_replaces_exactly_its_rows(
    warehouse_url: str, tmp_path: Path
) -> None:
    wh = get_warehouse(warehouse_url)
    jobs = SyncJobs(wh)
    file = _upload(tmp_path, "travel.csv", TRAVEL)
    job_id = _csv_job(jobs, "travel", file)
    assert jobs.get(job_id)["status"] == "pending" and jobs.get(job_id)["status_code"] == 102
    # the whole year once (366 partitions cost ~40 s of Dagster events): on SQLite; PostgreSQL runs the first quarter
    full = warehouse_url.startswith("sqlite")
    result = _sync(warehouse_url, tmp_path / "data", assets.data_entries, job_id, 2024, "12-31" if full else Q1)
    assert result.success
    job = jobs.get(job_id)
    assert (job["status"], job["status_code"], job["ledger_status"]) == ("completed", 207, "completed_with_errors")
    assert job["metadata"]["progress"] == {"fetched": 5, "transformed": 3, "loaded": 3}
    assert any("line 4, field 'travel_class': unknown travel class 'Cargo'" in e for e in job["metadata"]["errors"])
    assert any(
        "line 5, field 'date': activity date 2025-01-01 is outside the synced year 2024" in e
        for e in job["metadata"]["errors"]
    )
    e = tables.data_entries
    rows = wh.fetch(sa.select(e).order_by(e.c.entry_key))
    assert [
        (r["entry_key"], r["activity_date"], r["quantity"], r["fields"]["travel_class"], r["fields"]["distance_band"])
        for r in rows
    ] == [
        ("T1", dt.date(2024, 1, 15), 5834.0, "economy", "long_haul"),
        ("T2", dt.date(2024, 1, 15), 688.0, "business", "short_haul"),
        ("T5", dt.date(2024, 3, 10), 5540.0, "first", "long_haul"),
    ]
    assert rows[0]["factor_id"].endswith("distance_long_haul_gt_3700km-class_economy-contrails_included")
    assert {r["sync_job_id"] for r in rows} == {job_id} and rows[0]["source_line"] == 2
    # one ledger job per day of the year for the asset, under the one run
    day_jobs = Ledger(wh).jobs(asset_key="carbon/data_entries")
    assert len(day_jobs) == (366 if full else 91) and len({j["run_id"] for j in day_jobs}) == 1
    badge = wh.fetch(sa.select(tables.modules.c.last_sync_status).where(tables.modules.c.id == "travel"))[0]
    assert badge["last_sync_status"]["last_job_id"] == job_id and badge["last_sync_status"]["status"] == "completed"
    # the re-sync of the year without T2: T2 is deleted, the rest unchanged, another module untouched
    other = _csv_job(jobs, "headcount", _upload(tmp_path, "hc.csv", "date,department,fte\n2024-01-15,Ops,3\n"))
    assert _sync(warehouse_url, tmp_path / "data", assets.data_entries, other, 2024, Q1).success
    smaller = _upload(
        tmp_path, "travel2.csv", "\n".join(line for line in TRAVEL.splitlines() if not line.startswith("T2"))
    )
    again = _csv_job(jobs, "travel", smaller)
    assert _sync(warehouse_url, tmp_path / "data", assets.data_entries, again, 2024, Q1).success
    keys = [(r["module_id"], r["entry_key"]) for r in wh.fetch(sa.select(e).order_by(e.c.module_id, e.c.entry_key))]
    assert keys[:1] == [("headcount", keys[0][1])] and [k for k in keys if k[0] == "travel"] == [
        ("travel", "T1"),
        ("travel", "T5"),
    ]
    assert jobs.get(again)["metadata"]["deleted"] == 1
    assert [j["id"] for j in jobs.history("travel")] == [again, job_id]


def test_a_failing_sync_fails_its_job_and_a_retry_rebuilt_from_the_job_links_to_it(
    sqlite_url: str, tmp_path: Path
) -> None:
    wh = get_warehouse(sqlite_url)
    jobs = SyncJobs(wh)
    job_id = _csv_job(jobs, "headcount", _upload(tmp_path, "bad.csv", "who,what\n1,2\n"))
    result = _sync(sqlite_url, tmp_path / "data", assets.data_entries, job_id, 2024, Q1)
    assert not result.success
    job = jobs.get(job_id)
    assert (job["status"], job["status_code"]) == ("failed", 400)
    assert "bad.csv: no header row with the columns of the headcount module layout" in job["message"]
    with pytest.raises(InvalidTransition):
        jobs.ledger.transition(job_id, "completed")
    # the retry: a new job from the failed one's record, the file fixed in place
    Path(job["metadata"]["config"]["file"]).write_text("date,department,fte\n2024-05-01,Ops,2\n")
    retry = jobs.retry(job_id, created_by="test")
    assert type(provider_for_job(jobs.get(retry), {})).__name__ == "CsvEntriesProvider"
    assert _sync(sqlite_url, tmp_path / "data", assets.data_entries, retry, 2024, "05-31").success
    assert jobs.get(retry)["retry_of"] == job_id and jobs.get(retry)["status_code"] == 200


def test_the_registry_refuses_an_invalid_combination_listing_the_valid_ones() -> None:
    with pytest.raises(InvalidProvider, match=r"valid combinations: .*\(travel, csv_upload, data_entries\)"):
        provider_class("headcount", "tableau_api", "data_entries")
    assert provider_class("energy", "csv_upload", "factors").__name__ == "CsvFactorsProvider"  # generic


def test_factors_from_oefdb_then_the_footprint_prices_the_entries(warehouse_url: str, tmp_path: Path) -> None:
    oefdb = require_shared("carbon/emission_factors") / "OpenEmissionFactorsDB_2021-11-24.csv"
    wh = get_warehouse(warehouse_url)
    jobs = SyncJobs(wh)
    factors = jobs.create(
        module_id="generic",
        target_type="factors",
        provider_type="csv_upload",
        year=2024,
        inventory_id=None,
        factor_type_id="generic",
        config={"file": str(oefdb)},
    )
    result = _sync(warehouse_url, tmp_path / "data", assets.emission_factors, factors)
    assert result.success
    assert wh.count(tables.emission_factors) == 1417 and jobs.get(factors)["status_code"] == 200
    checks = {c.check_name: c.passed for c in result.get_asset_check_evaluations()}
    assert checks == {"emission_factors_natural_key_unique": True, "emission_factors_key_unique_not_null": True}
    entries = _csv_job(jobs, "travel", _upload(tmp_path, "t.csv", TRAVEL))
    assert _sync(warehouse_url, tmp_path / "data", assets.data_entries, entries, 2024, Q1).success
    run = dg.materialize(
        [assets.footprint],
        resources=_resources(warehouse_url, tmp_path / "data"),
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
        tags={"dagster/asset_partition_range_start": "2024-01-01", "dagster/asset_partition_range_end": "2024-03-31"},
    )
    assert run.success
    f = tables.footprint
    rows = {r["entry_key"]: r for r in wh.fetch(sa.select(f))}
    assert rows["T1"]["factor_value"] == 0.14787 and rows["T1"]["kg_co2e"] == pytest.approx(
        5834 * 0.14787
    )  # BEIS GB 2021
    assert rows["T2"]["factor_value"] == 0.22652 and rows["T5"]["factor_value"] == 0.59147
    failed = [c for c in run.get_asset_check_evaluations() if not c.passed]
    assert failed == []
    # an entry without a factor is listed by the check
    jobs2 = _csv_job(jobs, "headcount", _upload(tmp_path, "h.csv", "date,department,fte\n2024-03-31,Ops,2\n"))
    assert _sync(warehouse_url, tmp_path / "data", assets.data_entries, jobs2, 2024, Q1).success
    run = dg.materialize(
        [assets.footprint],
        resources=_resources(warehouse_url, tmp_path / "data"),
        instance=dg.DagsterInstance.ephemeral(),
        partition_key="2024-03-31",
        raise_on_error=False,
    )
    evaluation = next(c for c in run.get_asset_check_evaluations() if c.check_name == "entries_without_factor")
    assert not evaluation.passed and evaluation.metadata["failing_rows"].value == 1
    assert '"activity": "headcount"' in str(evaluation.metadata["sample"].value).replace("'", '"')
