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
from ingestion_platform.lib.contract import TableContract
from ingestion_platform.lib.ingest import table_schema
from ingestion_platform.lib.ledger import Ledger, ingestion_job
from ingestion_platform.lib.source import SOURCES
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


STATS_LOAD = TableContract(import_stats_table, "replace_window", scope_columns=("source",))
"""The statistics are rebuilt whole at each run (window: every row)."""


def _declared() -> dict[str, str]:
    """Events source declaration name -> its asset key (from the source registry, not a list kept here)."""
    return {
        source.name: next(iter(source.assets)).to_user_string()
        for source in SOURCES.values()
        if source.group == "events" and source.assets
    }


def _declaration_of(row_source: str, declared: dict[str, str]) -> str | None:
    """``ics:<feed>`` rows belong to the ``ics`` declaration; ``eventbrite`` rows to ``eventbrite``."""
    return row_source if row_source in declared else next((d for d in declared if row_source.startswith(f"{d}:")), None)


def compute_stats(wh: Warehouse) -> list[dict[str, Any]]:
    e = tables.event
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
    declared = _declared()
    sources = {r["source"]: r for r in per_source}
    for name in declared:
        if not any(_declaration_of(s, declared) == name for s in sources):
            sources[name] = {"source": name, "events": 0, "cancelled": 0}
    out = []
    for name, counts in sorted(sources.items()):
        declaration = _declaration_of(name, declared)
        runs = _recent_runs(wh, declared[declaration]) if declaration else []
        last = runs[0] if runs else {}
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
                    {k: (str(v) if isinstance(v, (dt.date, dt.datetime)) else v) for k, v in r.items()} for r in runs
                ],
            }
        )
    return out


def _recent_runs(wh: Warehouse, asset_key: str) -> list[dict[str, Any]]:
    """The last runs of an asset, newest first, each summed over its per-day ledger jobs: the last
    job id and status (the worst of the run's days), the days covered and the counts."""
    j = ingestion_job
    last_runs = (
        sa.select(j.c.run_id, sa.func.max(j.c.id).label("last_id"))
        .where(j.c.asset_key == asset_key)
        .group_by(j.c.run_id)
        .order_by(sa.func.max(j.c.id).desc())
        .limit(LAST_RUNS)
        .subquery()
    )
    jobs = wh.fetch(sa.select(j).join(last_runs, j.c.run_id == last_runs.c.run_id).order_by(j.c.id))
    runs: dict[str, dict[str, Any]] = {}
    for job in jobs:
        run = runs.setdefault(job["run_id"], {"id": job["id"], "run_id": job["run_id"], "status": job["status"],
                                              "partition_key": job["partition_key"], "days": 0, "finished_at": None,
                                              **{k: 0 for k in _COUNTS}})  # fmt: skip
        run["id"], run["days"] = job["id"], run["days"] + 1
        run["status"] = max(run["status"], job["status"], key=_SEVERITY.index)
        run["finished_at"] = job["finished_at"] or run["finished_at"]
        run["partition_key"] = (
            f"{run['partition_key'].split('...')[0]}...{job['partition_key']}"
            if run["days"] > 1
            else job["partition_key"]
        )
        for k in _COUNTS:
            run[k] += job[k] or 0
    return sorted(runs.values(), key=lambda r: r["id"], reverse=True)


_COUNTS = ("created", "updated", "unchanged", "rejected")
_SEVERITY = ["completed", "pending", "processing", "completed_with_errors", "failed"]


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
    result = wh.load(import_stats_table, rows, mode=STATS_LOAD.mode, window=sa.true(), run_id=context.run.run_id)
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
