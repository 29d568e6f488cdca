"""Small operator commands: table counts, ledger jobs, dead letters.

    python -m ingestion_platform.cli counts [--partition YYYY-MM-DD]
    python -m ingestion_platform.cli jobs [--limit N]
    python -m ingestion_platform.cli dead-letters [--source pmu] [--partition YYYY-MM-DD]
    python -m ingestion_platform.cli backfill --select 'group:pmu' --from YYYY-MM-DD --to YYYY-MM-DD

Replaying dead letters after a fix is a re-materialisation with ``reprocess_from_raw: true``
(see the README); ``dead-letters`` prints the exact command for each affected partition.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from ingestion_platform.lib.contract import CONTRACTS, TableContract
from ingestion_platform.lib.ledger import ingestion_job
from ingestion_platform.lib.raw_store import RawStore
from ingestion_platform.lib.warehouse import get_warehouse, redact_url


def _definitions() -> Any:
    """The code location, loaded quietly; importing it declares every source and its table contracts."""
    import warnings

    import dagster as dg

    warnings.filterwarnings("ignore", category=dg.BetaWarning)
    warnings.filterwarnings("ignore", category=dg.PreviewWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    from ingestion_platform.definitions import defs

    return defs()


def counted_tables() -> list[TableContract]:
    """Every table a declared source or asset loads, grouped by namespace (from the declarations)."""
    _definitions()
    return sorted(CONTRACTS.values(), key=lambda c: (c.table.schema or "", c.day_column is None, c.table.name))


def counts(partition: str | None) -> int:
    contracts = counted_tables()
    wh = get_warehouse()
    wh.ensure_tables([c.table for c in contracts] + [ingestion_job])
    day = dt.date.fromisoformat(partition) if partition else None
    print(f"warehouse: {redact_url(str(wh.url))}")
    print(f"{'table':32} {'rows':>10}" + (f" {'on ' + partition:>16}" if day else ""))
    for contract in contracts:
        table = contract.table
        line = f"{table.fullname:32} {wh.count(table):>10}"
        if day and contract.day_column:
            line += f" {wh.count(table, table.c[contract.day_column] == day):>16}"
        print(line)
    return 0


def jobs(limit: int) -> int:
    wh = get_warehouse()
    wh.ensure_tables([ingestion_job])
    j = ingestion_job
    rows = wh.fetch(sa.select(j).order_by(j.c.id.desc()).limit(limit))
    for r in reversed(rows):
        print(
            f"#{r['id']:<5} {r['asset_key']:24} {r['partition_key'] or '-':12} {r['status']:22} "
            f"c={r['created']} u={r['updated']} n={r['unchanged']} r={r['rejected']}"
        )
    return 0


def dead_letters(source: str | None, partition: str | None) -> int:
    letters = RawStore().dead_letters(source, partition)
    for letter in letters:
        print(f"{letter.source}/{letter.partition}/{letter.request}: {letter.error}")
    for asset, day in sorted(
        {(x.context.get("asset_key"), x.partition) for x in letters if x.context.get("asset_key")}
    ):
        where = f"--partition-range {day.replace('_', '...')}" if "_" in day else f"--partition {day}"
        print(
            "replay: dagster asset materialize -m ingestion_platform.definitions "
            f"--select '{asset}' {where} "
            '--config-json \'{"ops": {"' + asset.replace("/", "__") + '": {"config": {"reprocess_from_raw": true}}}}\''
        )
    print(f"{len(letters)} unresolved dead letter(s)")
    return 0


def backfill(select: str, first: str, last: str, days_per_run: int) -> int:
    """Materialise ``select`` over ``first`` .. ``last`` in runs of ``days_per_run`` days, in process,
    on the Dagster instance of ``DAGSTER_HOME`` (the runs show in the UI). Works whatever the assets'
    backfill policy, unlike ``dagster asset materialize --partition-range`` (single-run policies only).
    """
    import dagster as dg

    definitions = _definitions()
    selection = dg.AssetSelection.from_string(select)
    if not selection.resolve(definitions.resolve_asset_graph()):
        print(f"nothing matches {select!r}", file=sys.stderr)
        return 2
    job_name = "__cli_backfill"
    job = dg.Definitions.merge(
        definitions, dg.Definitions(jobs=[dg.define_asset_job(job_name, selection=selection)])
    ).resolve_job_def(job_name)
    start, end = dt.date.fromisoformat(first), dt.date.fromisoformat(last)
    if end < start:
        print("--to is before --from", file=sys.stderr)
        return 2
    failed = 0
    with dg.DagsterInstance.get() as instance:
        chunk_start = start
        while chunk_start <= end:
            chunk_end = min(end, chunk_start + dt.timedelta(days=days_per_run - 1))
            tags = {
                "dagster/asset_partition_range_start": chunk_start.isoformat(),
                "dagster/asset_partition_range_end": chunk_end.isoformat(),
            }
            result = job.execute_in_process(instance=instance, tags=tags, raise_on_error=False)
            status = "ok" if result.success else "FAILED"
            failed += not result.success
            print(f"{chunk_start}..{chunk_end}: run {result.run_id} {status}")
            chunk_start = chunk_end + dt.timedelta(days=1)
    return 1 if failed else 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ingestion_platform.cli", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("counts", help="rows per table (and for one partition day)")
    p.add_argument("--partition")
    p = sub.add_parser("jobs", help="latest ingestion ledger jobs")
    p.add_argument("--limit", type=int, default=20)
    p = sub.add_parser("dead-letters", help="unresolved dead letters and how to replay them")
    p.add_argument("--source")
    p.add_argument("--partition")
    p = sub.add_parser("backfill", help="materialise a range of days in runs of N days (any backfill policy)")
    p.add_argument("--select", required=True, help="asset selection, e.g. 'group:pmu' or 'pmu/programme'")
    p.add_argument("--from", dest="first", required=True, help="first day, YYYY-MM-DD")
    p.add_argument("--to", dest="last", required=True, help="last day, YYYY-MM-DD (inclusive)")
    p.add_argument("--days-per-run", type=int, default=31)
    args = parser.parse_args(argv)
    if args.command == "backfill":
        return backfill(args.select, args.first, args.last, args.days_per_run)
    if args.command == "counts":
        return counts(args.partition)
    if args.command == "jobs":
        return jobs(args.limit)
    return dead_letters(args.source, args.partition)


if __name__ == "__main__":
    sys.exit(main())
