"""TableauFlightsProvider against a fake Tableau REST server built from ../shared/tableau fixtures."""

import datetime as dt
from pathlib import Path

import pytest
import sqlalchemy as sa

from ingestion_platform.defs.carbon import tables
from ingestion_platform.defs.carbon.jobs import SyncJobs
from ingestion_platform.defs.carbon.providers import ProviderError, provider_for_job
from ingestion_platform.defs.carbon.reading import Table, read_table
from ingestion_platform.defs.carbon.resources import TableauSettings
from ingestion_platform.defs.carbon.tableau import pivot_measures
from ingestion_platform.lib.ingest import PartitionLoad
from ingestion_platform.lib.raw_store import RawStore
from ingestion_platform.lib.warehouse import get_warehouse
from ingestion_platform_tests.carbon.tableau_server import FakeTableau
from ingestion_platform_tests.conftest import require_shared

FLIGHTS = [
    {
        "Flight Date": "1/15/2024",
        "Origin": "CDG",
        "Destination": "JFK",
        "Cabin Class": "Economy Class",
        "Distance (km)": "5,834",
        "Number of Records": "2",
        "Cost": "$1,711.83",
        "Year": "2024",
    },
    {
        "Flight Date": "2/3/2024",
        "Origin": "LHR",
        "Destination": "EDI",
        "Cabin Class": "Premium Economy",
        "Distance (km)": "534",
        "Number of Records": "1",
        "Cost": "$211.00",
        "Year": "2024",
    },
    {
        "Flight Date": "12/31/2024",
        "Origin": "NRT",
        "Destination": "CDG",
        "Cabin Class": "First",
        "Distance (km)": "9,714",
        "Number of Records": "1",
        "Cost": "$9,004.10",
        "Year": "2024",
    },
    {
        "Flight Date": "6/1/2023",
        "Origin": "CDG",
        "Destination": "JFK",
        "Cabin Class": "Business",
        "Distance (km)": "5,834",
        "Number of Records": "1",
        "Cost": "$4,004.00",
        "Year": "2023",
    },
]


def _sync(url: str, tmp_path: Path, settings: TableauSettings, *, filters=None, config=None, days=None):
    wh = get_warehouse(url)
    jobs = SyncJobs(wh)
    job_id = jobs.create(
        module_id="travel",
        target_type="data_entries",
        provider_type="tableau_api",
        year=2024,
        inventory_id="acme-2024",
        filters=filters or {},
        config=config or {},
    )
    days = days or [dt.date(2024, 1, 1) + dt.timedelta(days=i) for i in range(366)]
    provider = provider_for_job(jobs.get(job_id), {"tableau": settings})
    error = None
    try:
        with PartitionLoad.open(
            source="carbon",
            asset_key="carbon/data_entries",
            partition="2024-01-01_2024-12-31",
            days=days,
            run_id="r1",
            warehouse=wh,
            raw_store=RawStore(tmp_path / "data"),
            target=tables.DATA_ENTRIES_LOAD,
        ) as load:
            provider.run(load, jobs)
    except ProviderError as exc:
        error = exc
    return wh, jobs.get(job_id), error


@pytest.fixture
def tableau() -> FakeTableau:
    with FakeTableau(require_shared("tableau/tsc_test_assets"), FLIGHTS) as server:
        yield server


def test_pat_sign_in_vf_year_filter_and_export_quirks(warehouse_url: str, tmp_path: Path, tableau: FakeTableau) -> None:
    settings = TableauSettings(
        server_url=tableau.url, site="Samples", pat_name="etl", pat_secret="pat-secret", view="Flights"
    )
    wh, job, error = _sync(warehouse_url, tmp_path, settings, config={"columns": {"passengers": "Number of Records"}})
    assert error is None and job["status"] == "completed" and job["status_code"] == 200, job["message"]
    assert any("vf_Year=2024" in path for _, path in tableau.requests)
    e = tables.data_entries
    rows = {r["activity_date"]: r for r in wh.fetch(sa.select(e))}
    assert sorted(rows) == [dt.date(2024, 1, 15), dt.date(2024, 2, 3), dt.date(2024, 12, 31)]
    jan = rows[dt.date(2024, 1, 15)]
    assert (jan["quantity"], jan["fields"]["travel_class"], jan["fields"]["distance_band"]) == (
        11668.0,
        "economy",
        "long_haul",
    )
    assert rows[dt.date(2024, 2, 3)]["fields"]["travel_class"] == "premium_economy"
    assert rows[dt.date(2024, 12, 31)]["activity"] == "flight first long_haul"
    assert jan["provider_type"] == "tableau_api" and jan["source_ref"] == "tableau:Flights"
    assert tableau.sessions == {}  # signed out: the PAT's one session is free again
    assert "pat-secret" not in str(job)


def test_jwt_sign_in_and_a_misspelt_filter_field_is_ignored_by_tableau(
    sqlite_url: str, tmp_path: Path, tableau: FakeTableau
) -> None:
    settings = TableauSettings(
        server_url=tableau.url,
        site="Samples",
        jwt_client_id="client-1",
        jwt_secret_id="kid-1",
        jwt_secret="jwt-secret",
        username="etl@example.com",
        view="Travel/sheets/Flights",
    )
    wh, job, error = _sync(sqlite_url, tmp_path, settings, config={"year_field": "year"})  # not "Year": ignored
    assert error is None and tableau.signins == ["jwt:etl@example.com"]
    assert job["status_code"] == 207 and any("outside the synced year 2024" in e for e in job["metadata"]["errors"])
    assert wh.count(tables.data_entries) == 3


def test_refused_credentials_fail_the_job_with_401_and_no_secret(
    sqlite_url: str, tmp_path: Path, tableau: FakeTableau
) -> None:
    settings = TableauSettings(server_url=tableau.url, site="Samples", pat_name="etl", pat_secret="wrong-secret")
    _, job, error = _sync(sqlite_url, tmp_path, settings)
    assert isinstance(error, ProviderError) and job["status"] == "failed" and job["status_code"] == 401
    assert "Tableau sign-in refused" in job["message"] and "wrong-secret" not in job["message"]
    missing = TableauSettings(server_url=tableau.url, view="Flights")
    _, job, _ = _sync(sqlite_url, tmp_path, missing)
    assert job["status_code"] == 400 and "TABLEAU_PAT_NAME" in job["message"]


def test_an_unknown_view_is_refused_listing_the_views(sqlite_url: str, tmp_path: Path, tableau: FakeTableau) -> None:
    settings = TableauSettings(
        server_url=tableau.url, site="Samples", pat_name="etl", pat_secret="pat-secret", view="Nope"
    )
    _, job, _ = _sync(sqlite_url, tmp_path, settings)
    assert job["status_code"] == 404 and "views: ENDANGERED SAFARI, Flights, Overview" in job["message"]


def test_the_measure_names_layout_of_a_real_export_is_pivoted() -> None:
    body = (require_shared("tableau/tsc_test_assets") / "populate_csv.csv").read_bytes()
    table = pivot_measures(read_table(body, "populate.csv", [["Measure Names"], ["Measure Values"]]))
    assert isinstance(table, Table) and "Sales" in table.header and "Measure Names" not in table.header
    south = next(cells for _, cells in table.rows if cells[table.header.index("Region")] == "South")
    assert south[table.header.index("Sales")] == "311,783.644" and south[table.header.index("Quantity")] == "5,004"
