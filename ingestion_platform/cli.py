"""Small operator commands: table counts, assets, ledger jobs, dead letters, ranged backfills, the local .env.

    python -m ingestion_platform.cli counts [--partition YYYY-MM-DD]
    python -m ingestion_platform.cli assets [--partition YYYY-MM-DD] [--select 'group:pmu']
    python -m ingestion_platform.cli jobs [--limit N]
    python -m ingestion_platform.cli dead-letters [--source pmu] [--partition YYYY-MM-DD]
    python -m ingestion_platform.cli backfill --select 'group:pmu' --from YYYY-MM-DD --to YYYY-MM-DD
    python -m ingestion_platform.cli local-env [--force]
    python -m ingestion_platform.cli odoo-check

Like the Dagster CLI, every command first reads ``.env`` from the working directory (its values win over
the shell's). ``assets`` and ``backfill`` use the Dagster instance of ``DAGSTER_HOME``; when it is not set
they use the repository's ``.dagster_home`` (created, linked to ``dagster.yaml`` and migrated once, as
``make`` does), run from the repository root.

Replaying dead letters after a fix is a re-materialisation with ``reprocess_from_raw: true``
(see the README); ``dead-letters`` prints the exact command for each affected partition.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import io
import json
import os
import shutil
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from ingestion_platform import local_env
from ingestion_platform.lib.contract import CONTRACTS, TableContract
from ingestion_platform.lib.ledger import ingestion_job
from ingestion_platform.lib.raw_store import RawStore
from ingestion_platform.lib.warehouse import get_warehouse, redact_url


class CliError(Exception):
    """A problem the operator can fix: printed as one line, exit status 2."""


def ensure_dagster_home(root: Path | None = None) -> Path:
    """``DAGSTER_HOME``, or ``<root>/.dagster_home`` (``root``: the working directory) set up as the Makefile
    does: ``dagster.yaml`` linked into it and the instance migrated once, when the link is made. Two
    commands starting at once on a new home wait for each other (a lock), so the instance is created once.
    """
    if os.environ.get("DAGSTER_HOME"):
        return Path(os.environ["DAGSTER_HOME"])
    root = Path.cwd() if root is None else root
    config = root / "dagster.yaml"
    if not config.is_file():
        raise CliError(
            f"DAGSTER_HOME is not set and {root} has no dagster.yaml: run from the repository root "
            "(or `make backfill`), or export DAGSTER_HOME=<a folder holding a dagster.yaml>"
        )
    home = root / ".dagster_home"
    home.mkdir(exist_ok=True)
    with _locked(home / ".setup.lock"):
        link = home / "dagster.yaml"
        if not link.exists():
            if link.is_symlink():  # dangling: the repository moved
                link.unlink()
            try:
                link.symlink_to(config.resolve())
            except OSError:  # no symlinks here: a copy
                shutil.copyfile(config, link)
            _migrate(home)
    os.environ["DAGSTER_HOME"] = str(home)
    return home


def _migrate(home: Path) -> None:
    import dagster as dg

    with contextlib.redirect_stdout(io.StringIO()), dg.DagsterInstance.from_config(str(home)) as instance:
        instance.upgrade(print_fn=lambda _line: None)  # storages print their progress too: kept out of stdout
    print(f"created the Dagster instance in {home} (migrated)", file=sys.stderr)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock
        yield
        return
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


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


def source_status(warehouse: Any = None, raw_store: RawStore | None = None) -> list[dict[str, Any]]:
    """Per declared source: its last sync (the latest ledger job and its run's totals), its last
    success, failed jobs since then, unresolved dead letters and the rows of its tables (its own rows
    where a table is shared by several sources through a ``source`` column)."""
    _definitions()
    from ingestion_platform.lib.source import SOURCES

    wh = warehouse or get_warehouse()
    wh.ensure_tables([ingestion_job])
    j = ingestion_job
    store = raw_store or RawStore()
    out = []
    for name, source in SOURCES.items():
        last = wh.fetch(sa.select(j).where(j.c.source == name).order_by(j.c.id.desc()).limit(1))
        run: dict[str, Any] = {}
        if last:
            sums = [sa.func.coalesce(sa.func.sum(j.c[c]), 0).label(c) for c in _FIGURES]
            totals = sa.select(*sums, sa.func.count().label("jobs"))
            totals = totals.where(j.c.source == name, j.c.run_id == last[0]["run_id"])
            run = {k: int(v) for k, v in wh.fetch(totals)[0].items()}
        success = wh.fetch(
            sa.select(j.c.id, j.c.finished_at).where(j.c.source == name, j.c.status == "completed")
            .order_by(j.c.id.desc()).limit(1)
        )  # fmt: skip
        since = success[0]["id"] if success else 0
        failed = wh.count(j, sa.and_(j.c.source == name, j.c.status == "failed", j.c.id > since))
        tables = {}
        for contract in source.tables():
            table = contract.table
            wh.ensure_tables([table])
            shared = "source" in table.c and any(
                c.table is table for other in SOURCES.values() if other is not source for c in other.tables()
            )
            where = _source_rows(table, name) if shared else None
            tables[table.fullname] = wh.count(table, where)
        row = last[0] if last else None
        out.append({
            "source": name,
            "group": source.group,
            "last_sync": None if row is None else {
                "job_id": row["id"], "asset": row["asset_key"], "partition": row["partition_key"],
                "status": row["status"], "run_id": row["run_id"], "message": row["message"],
                "started_at": _iso(row["started_at"]), "finished_at": _iso(row["finished_at"]), "run_totals": run,
            },
            "last_success_at": _iso(success[0]["finished_at"]) if success else None,
            "failed_jobs_since_success": failed,
            "dead_letters": len(store.dead_letters(name)),
            "rows": tables,
        })  # fmt: skip
    return out


_FIGURES = ("created", "updated", "unchanged", "rejected")


def _source_rows(table: sa.Table, name: str) -> sa.ColumnElement[bool]:
    """A source's rows of a shared table (iCalendar feeds are ``ics:<feed>``)."""
    return sa.or_(table.c.source == name, table.c.source.like(f"{name}:%"))


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def status(as_json: bool) -> int:
    report = source_status()
    if as_json:
        print(json.dumps(report, indent=2, default=str))
        return 0
    for entry in report:
        last = entry["last_sync"]
        shown = "never synced"
        if last is not None:
            when = last["finished_at"] or last["started_at"]
            shown = f"{last['status']} {last['asset']} {last['partition'] or '-'} at {when}"
        rows = sum(entry["rows"].values())
        print(f"{entry['source']:12} {shown}; rows={rows} failed_since_success={entry['failed_jobs_since_success']} "
              f"dead_letters={entry['dead_letters']}")  # fmt: skip
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


def backfill(select: str, first: str, last: str, days_per_run: int, log_level: str = "WARNING") -> int:
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
    try:
        start, end = dt.date.fromisoformat(first), dt.date.fromisoformat(last)
    except ValueError as exc:
        raise CliError(f"--from/--to: {exc}") from None
    if end < start:
        print("--to is before --from", file=sys.stderr)
        return 2
    failed = 0
    ensure_dagster_home()
    with dg.DagsterInstance.get() as instance:
        chunk_start = start
        while chunk_start <= end:
            chunk_end = min(end, chunk_start + dt.timedelta(days=days_per_run - 1))
            tags = {
                "dagster/asset_partition_range_start": chunk_start.isoformat(),
                "dagster/asset_partition_range_end": chunk_end.isoformat(),
            }
            result = job.execute_in_process(
                run_config={"loggers": {"console": {"config": {"log_level": log_level}}}},
                instance=instance,
                tags=tags,
                raise_on_error=False,
            )
            status = "ok" if result.success else "FAILED"
            failed += not result.success
            print(f"{chunk_start}..{chunk_end}: run {result.run_id} {status}")
            chunk_start = chunk_end + dt.timedelta(days=1)
    return 1 if failed else 0


def assets(partition: str | None, select: str | None) -> int:
    """One line per asset: its latest materialization (of ``partition`` for a partitioned asset), the run,
    the row count it reported and the checks evaluated in that run, from the instance of ``DAGSTER_HOME``."""
    import dagster as dg
    from dagster._core.events import DagsterEventType

    graph = _definitions().resolve_asset_graph()
    keys = (
        dg.AssetSelection.from_string(select).resolve(graph)
        if select
        else {n.key for n in graph.asset_nodes if n.is_materializable}
    )
    nodes = sorted((graph.get(k) for k in keys), key=lambda n: (n.group_name or "", n.key.to_user_string()))
    ensure_dagster_home()
    print(f"{'asset':24} {'group':18} {'partition':10}  {'materialized (UTC)':19}  {'run':8} {'rows':>6}  checks")
    with dg.DagsterInstance.get() as instance:
        for node in nodes:
            key = node.key
            part = partition if node.partitions_def is not None else None
            records = instance.fetch_materializations(
                dg.AssetRecordsFilter(asset_key=key, asset_partitions=[part] if part else None), limit=1
            ).records
            head = f"{key.to_user_string():24} {node.group_name or '-':18} {part or '-':10}"
            if not records:
                print(f"{head}  {'never':19}")
                continue
            record = records[0]
            when = dt.datetime.fromtimestamp(record.timestamp, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
            rows = record.asset_materialization.metadata.get("dagster/row_count")
            rows_text = str(rows.value) if rows is not None else "-"
            checks = [
                e.event_log_entry.dagster_event.event_specific_data
                for e in instance.get_records_for_run(
                    record.run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION
                ).records
            ]
            mine = [c for c in checks if c.asset_key == key and getattr(c, "partition", None) in (None, part)]
            print(f"{head}  {when:19}  {record.run_id[:8]:8} {rows_text:>6}  {_checks_text(mine)}")
    return 0


def _checks_text(evaluations: list[Any]) -> str:
    if not evaluations:
        return "-"
    passed = sum(1 for e in evaluations if e.passed)
    failed = sorted(f"{e.check_name} ({e.severity.value.lower()})" for e in evaluations if not e.passed)
    return f"{passed}/{len(evaluations)} passed" + (f"; failed: {', '.join(failed)}" if failed else "")


def write_env(force: bool) -> int:
    """``.env`` from ``.env.example`` in the working directory, the sources pointed at the shipped samples."""
    template, target = Path(".env.example"), Path(".env")
    if not template.is_file():
        raise CliError(f"no .env.example in {Path.cwd()}: run from the repository root")
    outcome = local_env.write_local_env(template, target, force=force)
    print(outcome.message)
    return 0


def odoo_check() -> int:
    """Log in to Odoo (ODOO_* settings) and check read access to each model the CRM sync reads."""
    from ingestion_platform.defs.crm.odoo.jobs import connection_report
    from ingestion_platform.defs.crm.odoo.resources import OdooApi

    probes = connection_report(OdooApi().client())
    for probe in probes:
        print(f"{'ok' if probe.ok else 'FAILED':6} {probe.name}: {probe.detail}")
    return 0 if all(p.ok for p in probes) else 1


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
    p.add_argument("--log-level", default="WARNING", help="Dagster console log level of the runs (WARNING)")
    p = sub.add_parser("assets", help="latest materialization of every asset (of a partition), row count and checks")
    p.add_argument("--partition")
    p.add_argument("--select", help="asset selection, e.g. 'group:pmu' (default: every asset)")
    p = sub.add_parser("status", help="per source: last sync, rows, errors (--json for tools)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p = sub.add_parser("local-env", help="write .env from .env.example with the sources on the shipped samples")
    p.add_argument("--force", action="store_true", help="overwrite an existing .env")
    sub.add_parser("odoo-check", help="log in to Odoo and check read access to each model the CRM sync reads")
    args = parser.parse_args(argv)
    try:
        if args.command == "local-env":
            return write_env(args.force)
        local_env.load_dotenv()
        if args.command == "backfill":
            return backfill(args.select, args.first, args.last, args.days_per_run, args.log_level.upper())
        if args.command == "assets":
            return assets(args.partition, args.select)
        if args.command == "counts":
            return counts(args.partition)
        if args.command == "jobs":
            return jobs(args.limit)
        if args.command == "odoo-check":
            return odoo_check()
        if args.command == "status":
            return status(args.json)
        return dead_letters(args.source, args.partition)
    except CliError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
