"""Import statistics per events source (the "ImportJob dashboard"): a table and asset metadata.

``events.import_stats`` has one row per source (``eventbrite``, ``montreal``, ``ics:<feed>``)
with its event count and what its last ledger jobs did; the asset's numeric metadata
(``events/<source>``, ``created/<source>`` ...) is plotted by the Dagster UI across runs.
"""

import datetime as dt
from typing import Any

import dagster as dg
import sqlalchemy as sa

from ingestion_platform.defs.events import tables
from ingestion_platform.defs.events.assets import IMPORT_STATS, SOURCE_ASSETS
from ingestion_platform.lib.ingest import table_schema
from ingestion_platform.lib.ledger import Ledger, ingestion_job
from ingestion_platform.lib.warehouse import Warehouse, WarehouseResource, lineage_columns

LAST_RUNS = 10

import_stats_table = sa.Table(
    "import_stats",
    tables.METADATA,
    sa.Column("source", sa.String(200), primary_key=True, comment="eventbrite, montreal or ics:<feed>"),
    sa.Column("events", sa.Integer, nullable=False, comment="Rows in events.event for this source"),
    sa.Column("cancelled", sa.Integer, nullable=False, comment="Of which status = cancelled"),
    sa.Column("first_start_date", sa.Date),
    sa.Column("last_start_date", sa.Date),
    sa.Column("last_job_id", sa.Integer, comment="platform.ingestion_job id of the last job of the source asset"),
    sa.Column("last_job_status", sa.String(32)),
    sa.Column("last_job_finished_at", sa.DateTime(timezone=True)),
    sa.Column("last_job_partition", sa.String(64)),
    sa.Column("last_created", sa.Integer),
    sa.Column("last_updated", sa.Integer),
    sa.Column("last_unchanged", sa.Integer),
    sa.Column("last_rejected", sa.Integer),
    sa.Column("recent_runs", sa.JSON, comment=f"The last {LAST_RUNS} jobs: id, status, counts"),
    *lineage_columns(),
    comment="Per-source import statistics of the events sources.",
)

_ASSET_OF_SOURCE = {"eventbrite": "events/eventbrite", "montreal": "events/montreal"}


def compute_stats(wh: Warehouse) -> list[dict[str, Any]]:
    e, j = tables.event, ingestion_job
    Ledger(wh)  # creates the ledger table before the first job
    wh.ensure_tables([e, import_stats_table])
    per_source = wh.fetch(
        sa.select(
            e.c.source,
            sa.func.count().label("events"),
            sa.func.sum(sa.case((e.c.status == "cancelled", 1), else_=0)).label("cancelled"),
            sa.func.min(e.c.start_date).label("first_start_date"),
            sa.func.max(e.c.start_date).label("last_start_date"),
        ).group_by(e.c.source)
    )
    sources = {r["source"]: r for r in per_source}
    for name in _ASSET_OF_SOURCE:
        sources.setdefault(name, {"source": name, "events": 0, "cancelled": 0})
    out = []
    for name, counts in sorted(sources.items()):
        asset = _ASSET_OF_SOURCE.get(name, "events/ics")
        jobs = wh.fetch(sa.select(j).where(j.c.asset_key == asset).order_by(j.c.id.desc()).limit(LAST_RUNS))
        last = jobs[0] if jobs else {}
        out.append(
            {
                "source": name,
                "events": int(counts["events"] or 0),
                "cancelled": int(counts["cancelled"] or 0),
                "first_start_date": counts.get("first_start_date"),
                "last_start_date": counts.get("last_start_date"),
                "last_job_id": last.get("id"),
                "last_job_status": last.get("status"),
                "last_job_finished_at": last.get("finished_at"),
                "last_job_partition": last.get("partition_key"),
                "last_created": last.get("created"),
                "last_updated": last.get("updated"),
                "last_unchanged": last.get("unchanged"),
                "last_rejected": last.get("rejected"),
                "recent_runs": [
                    {k: (str(v) if isinstance(v, dt.datetime) else v) for k, v in job.items() if k in _RUN_KEYS}
                    for job in jobs
                ],
            }
        )
    return out


_RUN_KEYS = {"id", "status", "partition_key", "created", "updated", "unchanged", "rejected", "finished_at"}


@dg.asset(
    key=IMPORT_STATS,
    deps=list(SOURCE_ASSETS),
    # Not in group `events`: that group is daily-partitioned with single-run backfills, so that
    # `--select 'group:events' --partition-range A...B` works on the CLI.
    group_name="events_monitoring",
    owners=["team:data-platform"],
    kinds={"python", "sql"},
    metadata={
        "dagster/table_name": import_stats_table.fullname,
        "dagster/column_schema": table_schema(import_stats_table),
    },
)
def import_stats(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    """Per-source import statistics (`events.import_stats`): events, cancelled, last job status and
    created/updated/unchanged/rejected of the last runs, from the ledger. Refreshed after every
    successful events run (`events_stats_after_refresh` sensor); numeric metadata is plotted in the UI.
    """
    wh = warehouse.get()
    rows = compute_stats(wh)
    result = wh.load(import_stats_table, rows, mode="replace_window", window=sa.true(), run_id=context.run.run_id)
    metadata: dict[str, Any] = {"dagster/row_count": dg.MetadataValue.int(len(rows))}
    for row in rows:
        name = row["source"]
        metadata[f"events/{name}"] = dg.MetadataValue.int(row["events"])
        for key in ("created", "updated", "unchanged", "rejected"):
            if row[f"last_{key}"] is not None:
                metadata[f"{key}/{name}"] = dg.MetadataValue.int(row[f"last_{key}"])
    metadata["last_jobs"] = dg.MetadataValue.md(
        "| source | events | last job | status | created | updated | unchanged | rejected |\n"
        + "|---|---|---|---|---|---|---|---|\n"
        + "\n".join(
            f"| {r['source']} | {r['events']} | {r['last_job_id']} | {r['last_job_status']} | {r['last_created']} "
            f"| {r['last_updated']} | {r['last_unchanged']} | {r['last_rejected']} |"
            for r in rows
        )
    )
    metadata["load"] = dg.MetadataValue.json(result.as_dict())
    return dg.MaterializeResult(metadata=metadata)
