"""Small operator commands: table counts, ledger jobs, dead letters.

    python -m ingestion_platform.cli counts [--partition YYYY-MM-DD]
    python -m ingestion_platform.cli jobs [--limit N]
    python -m ingestion_platform.cli dead-letters [--source pmu] [--partition YYYY-MM-DD]

Replaying dead letters after a fix is a re-materialisation with ``reprocess_from_raw: true``
(see the README); ``dead-letters`` prints the exact command for each affected partition.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from collections.abc import Sequence

import sqlalchemy as sa

from ingestion_platform.defs.pmu import tables as pmu_tables
from ingestion_platform.lib.ledger import ingestion_job
from ingestion_platform.lib.raw_store import RawStore
from ingestion_platform.lib.warehouse import get_warehouse, redact_url

# (table, column holding the partition day) per source; None = not partitioned by day
COUNTED: list[tuple[sa.Table, str | None]] = [
    (pmu_tables.daily_program, "program_date"),
    (pmu_tables.race_meeting, "program_date"),
    (pmu_tables.race, "program_date"),
    (pmu_tables.horse, None),
    (pmu_tables.jockey, None),
    (pmu_tables.trainer, None),
    (pmu_tables.race_participant, "program_date"),
    (pmu_tables.horse_race_history, None),
    (pmu_tables.race_bet, "program_date"),
    (pmu_tables.bet_report, "program_date"),
]


def counts(partition: str | None) -> int:
    wh = get_warehouse()
    wh.ensure_tables([t for t, _ in COUNTED] + [ingestion_job])
    day = dt.date.fromisoformat(partition) if partition else None
    print(f"warehouse: {redact_url(str(wh.url))}")
    print(f"{'table':32} {'rows':>10}" + (f" {'on ' + partition:>16}" if day else ""))
    for table, column in COUNTED:
        line = f"{table.fullname:32} {wh.count(table):>10}"
        if day and column:
            line += f" {wh.count(table, table.c[column] == day):>16}"
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
        print(
            "replay: dagster asset materialize -m ingestion_platform.definitions "
            f"--select '{asset}' --partition {day} "
            '--config-json \'{"ops": {"' + asset.replace("/", "__") + '": {"config": {"reprocess_from_raw": true}}}}\''
        )
    print(f"{len(letters)} unresolved dead letter(s)")
    return 0


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
    args = parser.parse_args(argv)
    if args.command == "counts":
        return counts(args.partition)
    if args.command == "jobs":
        return jobs(args.limit)
    return dead_letters(args.source, args.partition)


if __name__ == "__main__":
    sys.exit(main())
