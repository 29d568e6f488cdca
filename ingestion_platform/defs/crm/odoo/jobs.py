"""Odoo jobs and schedules: deletion reconciliation, connection test, the hourly sync of today.

* ``crm_odoo_deletions_job`` (not an asset, so ``--select group:crm`` is untouched): for each canonical
  table, the ids Odoo still has (``search_read`` of ``['id']``, keyset by id, archived included) are
  compared with the rows loaded from Odoo; a row whose record vanished gets ``deleted_at`` (kept, never
  dropped), a row whose record is back (a quant that is internal again) gets it cleared.
  ``crm_odoo_deletions_schedule`` runs it daily at 03:00 Europe/Paris.
* ``crm_odoo_connection_test``: login, then read access to every model the sync reads; fails naming
  what is missing. The same from the CLI: ``python -m ingestion_platform.cli odoo-check``.
* ``crm_odoo_hourly_schedule``: every hour, the five Odoo assets over yesterday and today in one run
  (single-run backfill). The most recent window ends at the server's time minus ``ODOO_SYNC_LAG_S``,
  so the first runs of a day also close yesterday's window.
"""

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import dagster as dg
import sqlalchemy as sa

from ingestion_platform.defs.crm import tables
from ingestion_platform.defs.crm.odoo import models
from ingestion_platform.defs.crm.odoo.client import OdooClient, OdooError
from ingestion_platform.defs.crm.odoo.models import OdooModel
from ingestion_platform.defs.crm.odoo.parse import PARIS, SOURCE
from ingestion_platform.defs.crm.odoo.resources import OdooApi
from ingestion_platform.defs.crm.source import ODOO_ASSETS
from ingestion_platform.lib.settings import schedule_status
from ingestion_platform.lib.warehouse import Warehouse, WarehouseResource

RECONCILED: tuple[tuple[OdooModel, sa.Table], ...] = (
    (models.PARTNERS, tables.customers),
    (models.PRODUCTS, tables.product_catalog),
    (models.SALE_LINES, tables.sales_lines),
    (models.QUANTS, tables.stock_levels),
    (models.MESSAGES, tables.contact_history),
)


@dataclass
class Reconciled:
    table: str
    in_source: int
    marked_deleted: int
    restored: int


def reconcile_deletions(
    client: OdooClient, warehouse: Warehouse, *, page_size: int = 1000, now: dt.datetime | None = None
) -> list[Reconciled]:
    """Mark the rows of every canonical table whose Odoo record is gone (see the module docstring)."""
    now = now or dt.datetime.now(dt.UTC)
    warehouse.ensure_tables([t for _, t in RECONCILED])
    out = []
    for spec, table in RECONCILED:
        alive = {str(i) for i in client.ids(spec.name, list(spec.domain), page_size=page_size)}
        loaded = warehouse.fetch(sa.select(table.c.source_id, table.c.deleted_at).where(table.c.source == SOURCE))
        gone = [r["source_id"] for r in loaded if r["source_id"] not in alive and r["deleted_at"] is None]
        back = [r["source_id"] for r in loaded if r["source_id"] in alive and r["deleted_at"] is not None]
        with warehouse.engine.begin() as conn:
            for ids, value in ((gone, now), (back, None)):
                for start in range(0, len(ids), 1000):
                    chunk = ids[start : start + 1000]
                    conn.execute(
                        table.update()
                        .where(table.c.source == SOURCE, table.c.source_id.in_(chunk))
                        .values(deleted_at=value)
                    )
        out.append(Reconciled(table.fullname, len(alive), len(gone), len(back)))
    return out


@dg.op(description="Mark crm rows whose Odoo record was deleted (deleted_at), and clear it for those back.")
def crm_odoo_reconcile_deletions(
    context: dg.OpExecutionContext, odoo_api: OdooApi, warehouse: WarehouseResource
) -> dg.Output[None]:
    api = odoo_api.resolved()
    client = api.client()
    client.authenticate()
    results = reconcile_deletions(client, warehouse.get(), page_size=int(api.page_size))
    for r in results:
        context.log.info(
            "%s: %d in Odoo, %d marked deleted, %d restored", r.table, r.in_source, r.marked_deleted, r.restored
        )
    metadata = {r.table: dg.MetadataValue.json(r.__dict__) for r in results}
    metadata["marked_deleted"] = dg.MetadataValue.int(sum(r.marked_deleted for r in results))
    return dg.Output(None, metadata=metadata)


@dg.job(description="Deletion reconciliation of the Odoo rows of the crm tables (deleted_at, never dropped).")
def crm_odoo_deletions_job() -> None:
    crm_odoo_reconcile_deletions()


@dg.schedule(
    job=crm_odoo_deletions_job,
    cron_schedule="0 3 * * *",
    execution_timezone="Europe/Paris",
    default_status=schedule_status(),
)
def crm_odoo_deletions_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    """Daily: rows whose Odoo record was deleted get deleted_at."""
    day = context.scheduled_execution_time.astimezone(PARIS).date().isoformat()
    return dg.RunRequest(run_key=f"odoo-deletions-{day}")


# -- connection test -----------------------------------------------------------------------------------
@dataclass
class Probe:
    name: str
    ok: bool
    detail: str


def connection_report(
    client: OdooClient, specs: Sequence[OdooModel] = (*models.SYNCED, *models.LOOKUPS)
) -> list[Probe]:
    """Login, then one ``search_read`` (limit 1, fields ``['id']``) per model: what works and what does not."""
    try:
        uid = client.authenticate()
    except OdooError as exc:
        return [Probe("login", False, exc.reason)]
    probes = [
        Probe(
            "login",
            True,
            f"user {client.login_name!r} (uid {uid}) on database {client.db!r}, Odoo {client.major_version}",
        )
    ]
    for spec in specs:
        try:
            client.search_read(spec.name, [], ["id"], limit=1)
            client.pick_fields(spec.name, spec.required)
            probes.append(Probe(f"read {spec.name}", True, "readable, required fields present"))
        except OdooError as exc:
            probes.append(Probe(f"read {spec.name}", False, exc.reason))
    return probes


@dg.op(description="Log in to Odoo and check read access to every model the CRM sync reads.")
def crm_odoo_check_connection(context: dg.OpExecutionContext, odoo_api: OdooApi) -> dg.Output[None]:
    probes = connection_report(odoo_api.client())
    for probe in probes:
        (context.log.info if probe.ok else context.log.error)(
            "%s: %s: %s", probe.name, "ok" if probe.ok else "FAILED", probe.detail
        )
    failed = [p for p in probes if not p.ok]
    if failed:
        raise dg.Failure(
            description="; ".join(f"{p.name}: {p.detail}" for p in failed),
            metadata={p.name: dg.MetadataValue.text(("ok: " if p.ok else "FAILED: ") + p.detail) for p in probes},
        )
    return dg.Output(None, metadata={p.name: dg.MetadataValue.text(p.detail) for p in probes})


@dg.job(description="Odoo connection test: login and read access to each synced model (naming a missing right).")
def crm_odoo_connection_test() -> None:
    crm_odoo_check_connection()


# -- the hourly sync -----------------------------------------------------------------------------------
crm_odoo_sync_job = dg.define_asset_job(
    "crm_odoo_sync_job",
    selection=dg.AssetSelection.assets(*ODOO_ASSETS),
    description="The five Odoo assets over a range of days, in one run.",
)


@dg.schedule(
    job=crm_odoo_sync_job,
    cron_schedule="5 * * * *",
    execution_timezone="Europe/Paris",
    default_status=schedule_status(),
)
def crm_odoo_hourly_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    """Every hour: yesterday and today (the window ends at the server's time minus ODOO_SYNC_LAG_S)."""
    today = context.scheduled_execution_time.astimezone(PARIS).date()
    yesterday = today - dt.timedelta(days=1)
    return dg.RunRequest(
        run_key=f"odoo-hourly-{context.scheduled_execution_time:%Y%m%dT%H%M}",
        tags={
            "dagster/asset_partition_range_start": yesterday.isoformat(),
            "dagster/asset_partition_range_end": today.isoformat(),
            "crm/trigger": "hourly",
        },
    )
