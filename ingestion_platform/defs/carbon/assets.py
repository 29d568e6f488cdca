"""Carbon assets: ``carbon/data_entries`` (per day of activity), ``carbon/emission_factors`` (not
partitioned) and ``carbon/footprint`` (per day of activity).

Every sync is a ledger job (``defs.carbon.jobs``) run by the provider its (module, provider_type,
target_type) selects (``defs.carbon.providers``). A run launched by the sync API or the upload sensor
carries the job id in its config (``job_id``) and its tag ``carbon/job_id``; a run started from the UI or
the CLI without a job id creates its own job from ``module``, ``provider_type``, ``file`` ... .

Why factors are not partitioned: a factor file is reference data published per source and year
(the factor's own ``year`` and validity columns say which inventory years it serves), small (tens of
thousands of rows) and not tied to any day of activity. A day partition would create a ledger job
per day for one file; a year partition would still not say which entries a factor prices (an
inventory of 2024 is priced with the latest factors published up to 2024). Each load upserts by the
natural key, never deletes (an entry priced last year keeps its factor when this year's file drops
it), and is one ledger job filed under the day it was loaded.
"""

import datetime as dt
import json
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import dagster as dg
import sqlalchemy as sa

from ingestion_platform.defs.carbon import tableau as _tableau_provider  # noqa: F401  (registers it)
from ingestion_platform.defs.carbon import tables
from ingestion_platform.defs.carbon.checks import DATA_ENTRY_CHECKS, FACTOR_CHECKS, FOOTPRINT_CHECKS
from ingestion_platform.defs.carbon.jobs import SyncJobs
from ingestion_platform.defs.carbon.providers import GENERIC, InvalidProvider, provider_for_job
from ingestion_platform.defs.carbon.resources import CarbonSettings, TableauSettings
from ingestion_platform.defs.carbon.source import CARBON, DATA_ENTRIES, EMISSION_FACTORS, FOOTPRINT
from ingestion_platform.lib.checks import evaluate_checks
from ingestion_platform.lib.ingest import LoadConfig, PartitionLoad, SourceRun, load_metadata, table_schema
from ingestion_platform.lib.raw_store import RawStoreResource
from ingestion_platform.lib.warehouse import WarehouseResource


class SyncConfig(LoadConfig):
    """A carbon sync: ``job_id`` (set by the API and the sensor), or the fields of a new sync."""

    job_id: int = 0
    """The sync job this run executes (created by the sync API / upload sensor)."""
    module: str = ""
    """Without job_id: the module (travel, headcount, energy, purchases; generic for factors)."""
    provider_type: str = "csv_upload"
    file: str = ""
    """csv_upload: path of the CSV file."""
    layout: str = ""
    """factors: force the layout (oefdb, ademe, defra); default: detected from the header."""
    factor_type: str = GENERIC
    year: int = 0
    """factors without job_id: the year the sync is for (default: this year)."""
    filters_json: str = "{}"
    config_json: str = "{}"


def _job(
    context: dg.AssetExecutionContext,
    config: SyncConfig,
    jobs: SyncJobs,
    carbon: CarbonSettings,
    target: str,
    year: int,
) -> dict[str, Any]:
    if config.job_id:
        return jobs.get(config.job_id)
    if not config.module:
        raise dg.Failure(f"{context.asset_key.to_user_string()}: give job_id (a sync job) or module in the run config")
    extra = json.loads(config.config_json or "{}")
    if config.file:
        extra["file"] = config.file
    if config.layout:
        extra["layout"] = config.layout
    job_id = jobs.create(
        module_id=config.module,
        target_type=target,
        provider_type=config.provider_type,
        year=year,
        inventory_id=carbon.inventory_id(year),
        factor_type_id=config.factor_type if target == "factors" else None,
        filters=json.loads(config.filters_json or "{}"),
        config=extra,
        created_by=f"dagster run {context.run.run_id}",
    )
    return jobs.get(job_id)


def _provider(job: Mapping[str, Any], jobs: SyncJobs, carbon: CarbonSettings, tableau: TableauSettings) -> Any:
    try:
        return provider_for_job(job, {"carbon": carbon, "tableau": tableau})
    except InvalidProvider as exc:
        jobs.ledger.transition(job["id"], "failed", message=str(exc))
        raise


@dg.asset(**CARBON.asset(DATA_ENTRIES, tables=tables.DATA_ENTRIES_LOAD, checks=DATA_ENTRY_CHECKS))
def data_entries(
    context: dg.AssetExecutionContext,
    config: SyncConfig,
    warehouse: WarehouseResource,
    raw_store: RawStoreResource,
    carbon: CarbonSettings,
    tableau: TableauSettings,
) -> Iterator[Any]:
    """Data entries of one module and inventory year, from the provider of the sync (CSV upload or Tableau
    view): a sync of a year is one run over its days, replacing exactly the module's rows of those days."""
    run = SourceRun(context, CARBON, config=config, warehouse=warehouse, raw_store=raw_store, provider=None)
    jobs = SyncJobs(run.warehouse)
    job = _job(context, config, jobs, carbon, "data_entries", run.days[0].year)
    years = sorted({d.year for d in run.days})
    if years != [job["year"]]:
        message = f"sync job {job['id']} is for {job['year']}, the run covers {years}: run the year's days"
        jobs.fail(job["id"], message, 400)
        raise dg.Failure(message)
    provider = _provider(job, jobs, carbon, tableau)
    run.provider = f"{job['provider_type']} (sync job {job['id']})"
    for unit in run.units():
        with unit.open() as load:
            provider.run(load, jobs, run_id=run.run_id, close=False)
    e = tables.data_entries
    preview = sa.select(e).where(e.c.module_id == job["module_id"])
    try:
        yield from run.finish(lambda days: preview.where(e.c.activity_date.in_(days)).order_by(e.c.entry_key).limit(10))
    except Exception as exc:
        provider.fail_after_load(exc)
        raise
    provider.close()


@dg.asset(
    key=EMISSION_FACTORS,
    group_name="carbon",
    owners=list(CARBON.owners),
    kinds={"python", "sql"},
    pool=CARBON.pool,
    tags={"family": "carbon"},
    check_specs=[c.spec() for c in FACTOR_CHECKS],
    metadata={
        "tables": dg.MetadataValue.text(tables.emission_factors.fullname),
        "dagster/column_schema": table_schema(tables.emission_factors),
        "dagster/table_name": tables.emission_factors.fullname,
    },
)
def emission_factors(
    context: dg.AssetExecutionContext,
    config: SyncConfig,
    warehouse: WarehouseResource,
    raw_store: RawStoreResource,
    carbon: CarbonSettings,
    tableau: TableauSettings,
) -> Iterator[Any]:
    """Emission factors of one factor type from an OEFDB, ADEME Base Carbone or DEFRA/DESNZ file, upserted by
    natural key (see the module docstring for why factors are not partitioned)."""
    wh, raw = warehouse.get(), raw_store.get()
    jobs = SyncJobs(wh)
    job = _job(context, config, jobs, carbon, "factors", config.year or dt.date.today().year)
    provider = _provider(job, jobs, carbon, tableau)
    today = dt.datetime.now(dt.UTC).date()
    with PartitionLoad.open(
        source=CARBON.name,
        asset_key=EMISSION_FACTORS.to_user_string(),
        partition=today.isoformat(),
        days=[today],
        run_id=context.run.run_id,
        warehouse=wh,
        raw_store=raw,
        provider=f"{job['provider_type']} (sync job {job['id']})",
        target=tables.FACTORS_LOAD,
        reprocess_from_raw=config.reprocess_from_raw,
        config={"job_id": job["id"]},
    ) as load:
        provider.run(load, jobs, run_id=context.run.run_id, close=False)
    f = tables.emission_factors
    preview = sa.select(f).where(f.c.factor_type_id == (job["factor_type_id"] or GENERIC)).limit(10)
    metadata = load_metadata([load], wh, main=f.fullname, preview=preview)
    metadata["sync_job_id"] = dg.MetadataValue.int(job["id"])
    try:
        yield dg.MaterializeResult(metadata=metadata)
        yield from evaluate_checks(context, FACTOR_CHECKS, warehouse=wh, raw_store=raw, days=[today])
    except Exception as exc:
        provider.fail_after_load(exc)
        raise
    provider.close()


def match_factors(entries: Sequence[Mapping[str, Any]], factors: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """footprint rows: each entry with its factor, the one whose activity id is the entry's factor id and
    whose activity unit is the entry's unit, published for the entry's year or, failing that, the latest
    year before it (ties: the smallest key, so the choice is stable); no factor -> NULL factor and kg."""
    by_id: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for factor in factors:
        by_id.setdefault((factor["activity_id"], factor["per_unit"]), []).append(factor)
    rows = []
    for entry in entries:
        candidates = [f for f in by_id.get((entry["factor_id"] or "", entry["unit"]), []) if f["year"] <= entry["year"]]
        best = min(candidates, key=lambda f: (-f["year"], f["factor_type_id"], f["factor_key"])) if candidates else None
        rows.append(
            {
                **{
                    k: entry[k]
                    for k in (
                        "module_id",
                        "inventory_id",
                        "activity_date",
                        "entry_key",
                        "year",
                        "activity",
                        "quantity",
                        "unit",
                    )
                },
                "factor_type_id": best["factor_type_id"] if best else None,
                "factor_key": best["factor_key"] if best else None,
                "factor_value": best["value"] if best else None,
                "kg_co2e": entry["quantity"] * best["value"] if best else None,
            }
        )
    return rows


@dg.asset(
    **CARBON.asset(
        FOOTPRINT, tables=tables.FOOTPRINT_LOAD, checks=FOOTPRINT_CHECKS, deps=[DATA_ENTRIES, EMISSION_FACTORS]
    )
)
def footprint(
    context: dg.AssetExecutionContext, config: LoadConfig, warehouse: WarehouseResource, raw_store: RawStoreResource
) -> Iterator[Any]:
    """kg CO2e of every data entry of the run's days: its quantity times the matching emission factor
    (module, year and activity are kept, so the footprint sums per module, year and activity)."""
    run = SourceRun(context, CARBON, config=config, warehouse=warehouse, raw_store=raw_store, provider="warehouse")
    e, f = tables.data_entries, tables.emission_factors
    run.warehouse.ensure_tables([e, f])
    for unit in run.units():
        with unit.open() as load:
            entries = run.warehouse.fetch(sa.select(e).where(e.c.activity_date.in_(unit.days)))
            ids = sorted({x["factor_id"] for x in entries if x["factor_id"]})
            factors = run.warehouse.fetch(sa.select(f).where(f.c.activity_id.in_(ids))) if ids else []
            load.load(tables.footprint, match_factors(entries, factors))
    p = tables.footprint
    yield from run.finish(
        lambda days: sa.select(p).where(p.c.activity_date.in_(days)).order_by(p.c.entry_key).limit(10)
    )
