"""Side-by-side benchmarks: warehouse upsert vs plain COPY, one PMU day sequential vs concurrent, the events path.

Not part of the test run. Usage (from the repository root, with the project installed: ``make install``)::

    .venv/bin/python benchmarks/run.py                 # 100k and 1M rows, then the PMU day and the events
    .venv/bin/python benchmarks/run.py --quick         # 10k and 100k rows
    .venv/bin/python benchmarks/run.py --only pmu      # just the PMU day (or warehouse, events)

The recorded data is read from ``../shared`` beside the repository, or ``INGESTION_SHARED_DIR``.

(a) Warehouse, on PostgreSQL, in a scratch database created and dropped by this script.
    Rows are shaped like ``pmu.horse_race_history`` (4-column text/date key, 15 value columns
    including numerics, a JSON column, a boolean and a timestamptz, plus the lineage columns) and
    generated lazily. For each size N:

    COPY      baseline: ``COPY ... FROM STDIN`` (psycopg2 ``copy_expert``, streamed from the same
              generator) into an empty, logged table with the same columns and primary key.
    first     ``Warehouse.load(mode="upsert")`` into the empty target table.
    rerun     the same rows again: every row must come back unchanged.
    changed   10 % of the rows differ: exactly N/10 rows must be updated.

    Each phase runs in a fresh subprocess so its peak RSS growth (``ru_maxrss`` after the phase
    minus ``ru_maxrss`` after a warm-up load) is comparable between sizes. Timings are the best of
    ``--repeats`` runs, wall clock including the commit; the target table is vacuumed and
    analysed (untimed) before every timed repetition. "x COPY" is COPY seconds / upsert seconds:
    the upsert's throughput as a fraction of plain COPY's. The ``stage``/``merge`` columns split
    the upsert into the COPY into its temporary stage and the set-based merge statements.

(b) PMU day: the recorded day 05/11/2025 (``shared/pmu/05112025``) is laid out as a replay
    directory in a temporary directory and served by ``ingestion_platform_tests.pmu_server``
    with a fixed latency per request. The fetch phase (programme, then participants of every race
    through ``PmuApi.client()``) runs with ``max_concurrency`` 1, 8 (the default) and 16; then, when the PMU
    assets import, a full ``dg.materialize`` of programme + participants on a SQLite warehouse
    with concurrency 1 and 8, and 8 again with the assets' checks (each in a subprocess, so Dagster's
    logs stay out of the report).

(c) Events: ``--events`` records shaped like the recorded Montréal sample (``shared/events/montreal``),
    as CKAN pages: decode + parse + map, cross-source dedupe, validation against the Montréal table
    contract, then on PostgreSQL a plain ``Warehouse.load`` upsert (first, re-run) and the asset's own
    load step: ``lib.ingest.PartitionLoad`` over a 92-day window (rows re-dated onto it), one
    ``replace_window`` load and one ledger job per day (first, re-run).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import decimal
import gc
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa

import ingestion_platform
from ingestion_platform.lib.warehouse import LINEAGE_COLUMNS, lineage_columns

REPO_ROOT = Path(__file__).resolve().parents[1]
# The recorded data lives beside the repository (as for the tests); a git worktree elsewhere points at it
# with INGESTION_SHARED_DIR.
SHARED = Path(os.environ.get("INGESTION_SHARED_DIR") or REPO_ROOT.parent / "shared")

DEFAULT_URL = "postgresql://root@127.0.0.1:5432/test"
SCRATCH_DB = "ingestion_bench"
SCHEMA = "bench"
TARGET = "horse_race_history"
BASELINE = "horse_race_history_copy"
WARMUP = "warmup"
PHASES = ("copy", "first", "rerun", "changed")
PMU_DAY = dt.date(2025, 11, 5)
PMU_CAPTURES = SHARED / "pmu" / PMU_DAY.strftime("%d%m%Y")
CHUNK_BYTES = 1 << 20

TARGET_FIRST = 0.5
TARGET_RERUN = 0.8
TARGET_SPEEDUP = 5.0
FLAT_RATIO = 1.5  # peak RSS growth at the largest size <= 1.5 x the smallest's (+ slack below)
FLAT_SLACK_MB = 8.0


# -- rows -----------------------------------------------------------------------------------
def history_table(metadata: sa.MetaData, name: str) -> sa.Table:
    """A table shaped like ``pmu.horse_race_history``."""
    return sa.Table(
        name,
        metadata,
        sa.Column("horse_key", sa.String(200), primary_key=True),
        sa.Column("raced_on", sa.Date, primary_key=True),
        sa.Column("hippodrome", sa.String(100), primary_key=True),
        sa.Column("race_name", sa.String(200), primary_key=True),
        sa.Column("raced_at", sa.DateTime(timezone=True)),
        sa.Column("discipline", sa.String(20)),
        sa.Column("prize_eur", sa.Numeric(14, 2)),
        sa.Column("distance_m", sa.Integer),
        sa.Column("runners", sa.Integer),
        sa.Column("winner_time_s", sa.Numeric(10, 2)),
        sa.Column("place", sa.Integer),
        sa.Column("finish_status", sa.String(20)),
        sa.Column("jockey_name", sa.String(100)),
        sa.Column("jockey_weight_kg", sa.Numeric(5, 1)),
        sa.Column("reduction_km_s", sa.Numeric(10, 2)),
        sa.Column("disqualified", sa.Boolean),
        sa.Column("comment", sa.Text),
        sa.Column("details", sa.JSON),
        *lineage_columns(),
        schema=SCHEMA,
    )


def bench_tables() -> tuple[sa.MetaData, sa.Table, sa.Table, sa.Table]:
    metadata = sa.MetaData()
    return metadata, history_table(metadata, TARGET), history_table(metadata, BASELINE), history_table(metadata, WARMUP)


HIPPODROMES = ("VINCENNES", "LONGCHAMP", "CHANTILLY", "DEAUVILLE", "ENGHIEN", "AUTEUIL", "CAGNES-SUR-MER", "PAU")
DISCIPLINES = ("ATTELE", "PLAT", "MONTE", "HAIES", "STEEPLECHASE", "CROSS")
JOCKEYS = ("E. RAFFIN", "M. ABRIVARD", "C. SOUMILLON", "M. GUYON", "B. ROCHARD", "Y. LEBOURGEOIS", "A. ABRIVARD")
COMMENTS = (None, "Bien parti, a fini fort", "Gêné dans le dernier tournant", "Toujours\tdans le peloton", "Déferré")
HORSES = 40_000
BASE_DAY = dt.date(2015, 1, 4)
BASE_TIME = dt.datetime(2015, 1, 4, 12, 50, tzinfo=dt.UTC)


def history_rows(n: int, variant: int = 0) -> Iterator[dict[str, Any]]:
    """N history rows, lazily; ``variant`` != 0 changes the odds-like value of every 10th row."""
    cents = decimal.Decimal("0.01")
    for i in range(n):
        horse, week = i % HORSES, i // HORSES  # (horse, week) is unique, so is the key
        h = (i * 2654435761) % 1_000_003
        raced_on = BASE_DAY + dt.timedelta(days=7 * week + horse % 7)
        place = None if h % 11 == 0 else 1 + h % 16
        bump = variant if i % 10 == 0 else 0
        yield {
            "horse_key": f"H{horse:06d}_{'ABCDEFGHIJ'[horse % 10]}",
            "raced_on": raced_on,
            "hippodrome": HIPPODROMES[(horse + week) % len(HIPPODROMES)],
            "race_name": f"PRIX DE {HIPPODROMES[h % len(HIPPODROMES)]} {h % 37}",
            "raced_at": BASE_TIME + dt.timedelta(days=7 * week + horse % 7, minutes=30 * (h % 12)),
            "discipline": DISCIPLINES[h % len(DISCIPLINES)],
            "prize_eur": decimal.Decimal(5_000 + 250 * (h % 400)).quantize(cents),
            "distance_m": 1_600 + 25 * (h % 80),
            "runners": 8 + h % 10,
            "winner_time_s": (decimal.Decimal(60 + h % 140) + decimal.Decimal(h % 100) / 100 + bump).quantize(cents),
            "place": place,
            "finish_status": "NON_PLACE" if place is None else "PLACE",
            "jockey_name": JOCKEYS[h % len(JOCKEYS)],
            "jockey_weight_kg": decimal.Decimal(f"{52 + h % 10}.{h % 10}"),
            "reduction_km_s": None if h % 7 == 0 else decimal.Decimal(h % 9_000 + 6_000) / 100,
            "disqualified": h % 29 == 0,
            "comment": COMMENTS[h % len(COMMENTS)],
            "details": {"musique": f"{h % 9}a{h % 7}a{h % 5}m", "oeilleres": h % 3 == 0, "gains": h % 100_000},
        }


# -- plain COPY baseline ----------------------------------------------------------------------
_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _text(value: Any) -> str:
    if value is None:
        return "\\N"
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, str):
        return value.translate(_ESCAPES)
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    return str(value)


def _json(value: Any) -> str:
    return "\\N" if value is None else json.dumps(value, separators=(",", ":")).translate(_ESCAPES)


class LineReader:
    """A read()-able file object over an iterator of text lines (what ``copy_expert`` streams)."""

    def __init__(self, lines: Iterator[str]) -> None:
        self.lines = lines
        self.pending = bytearray()
        self.done = False

    def read(self, size: int = -1) -> bytes:
        size = CHUNK_BYTES if size is None or size < 0 else size
        while not self.done and len(self.pending) < size:
            line = next(self.lines, None)
            if line is None:
                self.done = True
            else:
                self.pending += line.encode()
        out = bytes(self.pending[:size])
        del self.pending[:size]
        return out

    def readline(self, size: int = -1) -> bytes:  # not used by COPY FROM, present for completeness
        return self.read(size)


def copy_rows(dbapi_conn: Any, table: sa.Table, rows: Iterator[dict[str, Any]], run_id: str) -> None:
    """Plain COPY of ``rows`` (plus constant lineage values) into ``table``, streamed."""
    data = [c.name for c in table.columns if c.name not in LINEAGE_COLUMNS]
    convs = [(name, _json if isinstance(table.c[name].type, sa.JSON) else _text) for name in data]
    lineage = "\t" + dt.datetime.now(dt.UTC).isoformat() + "\t" + run_id + "\n"

    def lines() -> Iterator[str]:
        for row in rows:
            yield "\t".join([conv(row[name]) for name, conv in convs]) + lineage

    columns = ", ".join(f'"{n}"' for n in [*data, *LINEAGE_COLUMNS])
    with dbapi_conn.cursor() as cur:
        sql = f'COPY "{table.schema}"."{table.name}" ({columns}) FROM STDIN'
        cur.copy_expert(sql, LineReader(lines()), size=CHUNK_BYTES)


# -- warehouse child: one (size, phase) per process -------------------------------------------
def _maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: kilobytes


def _timed(fn: Callable[..., Any], bucket: list[float]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            bucket.append(time.perf_counter() - started)

    return wrapper


def child_warehouse(url: str, phase: str, size: int, repeats: int, first_rep: int, measure_gen: bool) -> dict[str, Any]:
    from ingestion_platform.lib import warehouse as wh_module

    # Split the upsert into "COPY into the stage" and "merge" without touching warehouse.py.
    stage_s: list[float] = []
    merge_s: list[float] = []
    wh_module._copy_into = _timed(wh_module._copy_into, stage_s)
    wh_module._pg_merge = _timed(wh_module._pg_merge, merge_s)

    _, target, baseline, warmup = bench_tables()
    wh = wh_module.Warehouse(url)
    admin = sa.create_engine(wh.url, isolation_level="AUTOCOMMIT")
    run_id = f"bench-{phase}-{size}"

    # Warm-up (imports, statement caches, connection), rolled back, then the RSS baseline.
    with wh.engine.connect() as conn:
        trans = conn.begin()
        if phase == "copy":
            copy_rows(conn.connection.dbapi_connection, warmup, history_rows(1_000), run_id)
        else:
            wh.load(warmup, history_rows(1_000), run_id=run_id, connection=conn)
        trans.rollback()
    stage_s.clear()
    merge_s.clear()
    gc.collect()
    rss_before = _maxrss_mb()

    table = baseline if phase == "copy" else target
    timings, splits, results = [], [], []
    for rep in range(repeats):
        with admin.connect() as conn:
            if phase in ("copy", "first"):
                conn.exec_driver_sql(f'TRUNCATE "{SCHEMA}"."{table.name}"')
            conn.exec_driver_sql(f'VACUUM (ANALYZE) "{SCHEMA}"."{table.name}"')
        # changed: even repetitions change 10 % of the rows, odd ones change them back.
        variant = (1 if (first_rep + rep) % 2 == 0 else 0) if phase == "changed" else 0
        rows = history_rows(size, variant)
        stage_s.clear()
        merge_s.clear()
        started = time.perf_counter()
        if phase == "copy":
            with wh.engine.begin() as conn:
                copy_rows(conn.connection.dbapi_connection, table, rows, run_id)
            result = None
        else:
            result = wh.load(table, rows, mode="upsert", run_id=run_id)
        timings.append(time.perf_counter() - started)
        splits.append((sum(stage_s), sum(merge_s)))
        if result is not None:
            expected = {
                "first": {"created": size, "updated": 0, "unchanged": 0},
                "rerun": {"created": 0, "updated": 0, "unchanged": size},
                "changed": {"created": 0, "updated": size // 10, "unchanged": size - size // 10},
            }[phase]
            got = {k: getattr(result, k) for k in expected}
            if got != expected:
                raise AssertionError(f"{phase} N={size}: expected {expected}, got {got}")
            results.append(got)
    rss_after = _maxrss_mb()
    with admin.connect() as conn:
        count = conn.exec_driver_sql(f'SELECT count(*) FROM "{SCHEMA}"."{table.name}"').scalar_one()
    if count != size:
        raise AssertionError(f"{phase} N={size}: {count} rows in {table.name}")
    best = min(range(repeats), key=lambda i: timings[i])
    generate_s = None
    if measure_gen:  # the Python cost shared by both sides: building the row dicts only
        started = time.perf_counter()
        for _ in history_rows(size):
            pass
        generate_s = time.perf_counter() - started
    admin.dispose()
    wh.engine.dispose()
    return {
        "seconds": timings[best],
        "all_seconds": timings,
        "stage_s": splits[best][0],
        "merge_s": splits[best][1],
        "rss_growth_mb": max(rss_after - rss_before, 0.0),
        "rss_peak_mb": rss_after,
        "result": results[best] if results else None,
        "generate_s": generate_s,
    }


def child_materialize(base_url: str, concurrency: int, with_checks: bool = False) -> dict[str, Any]:
    from ingestion_platform.defs.pmu.assets import participants, programme
    from ingestion_platform_tests.pmu_helpers import run_pmu

    with tempfile.TemporaryDirectory(prefix="pmu-bench-") as tmp:
        root = Path(tmp)
        started = time.perf_counter()
        result = run_pmu(
            database_url=f"sqlite:///{root / 'wh' / 'warehouse.db'}",
            data_dir=root / "data",
            base_url=base_url,
            partition_key=PMU_DAY.isoformat(),
            selection=[programme, participants],
            with_checks=with_checks,
            max_concurrency=concurrency,
        )
        seconds = time.perf_counter() - started
        if not result.success:
            raise RuntimeError(f"materialize with max_concurrency={concurrency} failed")
        checks = result.get_asset_check_evaluations()
        failed = [c.check_name for c in checks if not c.passed]
        if with_checks and (not checks or failed):
            raise RuntimeError(f"materialize with checks: {len(checks)} checks ran, failed: {failed}")
        events = result.asset_materializations_for_node(participants.op.name)
        meta = {k: getattr(v, "value", v) for k, v in events[-1].metadata.items()} if events else {}
    return {
        "seconds": seconds,
        "checks": len(checks),
        "metadata": {k: v for k, v in meta.items() if isinstance(v, (int, float, str))},
    }


def run_child(args: list[str], timeout: float = 1800) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO_ROOT,
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("@@RESULT ")]
    if proc.returncode != 0 or not lines:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-15:])
        raise RuntimeError(f"child {' '.join(args[:6])} failed (exit {proc.returncode}):\n{tail}")
    return json.loads(lines[-1].removeprefix("@@RESULT "))


# -- output -----------------------------------------------------------------------------------
def table_text(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [[str(h) for h in headers], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]

    def fmt(row: list[str]) -> str:
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True)))

    return "\n".join([fmt(cells[0]), "  ".join("-" * w for w in widths), *[fmt(r) for r in cells[1:]]])


# -- (c) events ------------------------------------------------------------------------------
MONTREAL_SAMPLE = SHARED / "events" / "montreal"


def montreal_pages(n: int, page_size: int = 1000) -> list[bytes]:
    """``n`` records shaped like the real Montréal sample (ids and titles varied), as CKAN pages."""
    sample = json.loads(next(MONTREAL_SAMPLE.glob("*.json")).read_text(encoding="utf-8"))
    records = sample if isinstance(sample, list) else sample["result"]["records"]
    pages = []
    for offset in range(0, n, page_size):
        page = []
        for i in range(offset, min(n, offset + page_size)):
            record = dict(records[i % len(records)])
            record["url_fiche"] = f"https://montreal.ca/evenements/bench-event-{i}-{100000 + i}"
            record["titre"] = f"{record.get('titre') or 'Événement'} #{i // len(records)}"
            page.append(record)
        envelope = {"success": True, "result": {"records": page, "total": n, "offset": offset, "limit": page_size}}
        pages.append(json.dumps(envelope, ensure_ascii=False).encode("utf-8"))
    return pages


EVENTS_WINDOW_START = dt.date(2026, 10, 1)
EVENTS_WINDOW_DAYS = 92  # a quarter: the window of a ranged Montréal run (one fetch, rows split per day)


def in_window(rows: list[dict[str, Any]], start: dt.date, days: int) -> list[dict[str, Any]]:
    """The rows re-dated onto ``days`` days from ``start`` (row i on day i mod days), dates and instants shifted
    alike; every other value is kept."""
    out = []
    for i, row in enumerate(rows):
        shift = start + dt.timedelta(days=i % days) - row["start_date"]
        moved = dict(row)
        for name in ("start_date", "end_date", "starts_at", "ends_at", "start_local"):
            if moved.get(name) is not None:
                moved[name] += shift
        out.append(moved)
    return out


def load_as_asset(wh: Any, rows: list[dict[str, Any]], days: list[dt.date], contracts: Any, run_id: str) -> Any:
    """The Montréal asset's load step after a complete fetch: ``lib.ingest.PartitionLoad`` over the run's days
    (one ledger job per day), rows validated against the contract and loaded one ``replace_window`` per day."""
    from ingestion_platform.defs.events import tables
    from ingestion_platform.lib.ingest import PartitionLoad
    from ingestion_platform.lib.raw_store import RawStore, window_label

    with (
        tempfile.TemporaryDirectory(prefix="events-bench-raw-") as raw,
        PartitionLoad.open(
            source="montreal",
            asset_key="events/montreal",
            partition=window_label(days[0], days[-1]),
            run_id=run_id,
            warehouse=wh,
            raw_store=RawStore(raw),
            target=contracts,
            days=days,
        ) as load,
    ):
        return load.load(tables.event, rows, scope=[("montreal",)])


def bench_events(url: str, n: int) -> None:
    from ingestion_platform.defs.events import dedupe, parse, tables
    from ingestion_platform.lib.warehouse import Warehouse

    if not MONTREAL_SAMPLE.is_dir():
        say(f"skipped: {MONTREAL_SAMPLE} not found")
        return
    with warnings.catch_warnings():  # Dagster beta/preview warnings at import time
        warnings.simplefilter("ignore")
        from ingestion_platform.defs.events.assets import MONTREAL_LOAD
    pages = montreal_pages(n)
    started = time.perf_counter()
    rows: list[dict[str, Any]] = []
    rejects = 0
    for index, body in enumerate(pages):
        page_rows, page_rejects, _ = parse.parse_montreal_page(parse.decode_payload(body, f"p{index}"), f"p{index}")
        rows += page_rows
        rejects += sum(1 for r in page_rejects if r.dropped)
    parse_s = time.perf_counter() - started
    started = time.perf_counter()
    pairs = dedupe.find_duplicates(rows)
    dedupe.clusters(pairs, rows)
    dedupe_s = time.perf_counter() - started
    (contract,) = MONTREAL_LOAD  # TableContract(tables.event, "replace_window", day_column="start_date", ...)
    started = time.perf_counter()
    valid, invalid = contract.validate(rows)
    validate_s = time.perf_counter() - started
    if invalid or len(valid) != len(rows):
        raise AssertionError(f"validation rejected {len(invalid)} rows, first: {invalid[0].message}")
    figures = [
        ("parse (decode + map)", len(rows), parse_s),
        ("dedupe (pairs + clusters)", len(rows), dedupe_s),
        ("validate (table contract)", len(rows), validate_s),
    ]
    seconds: dict[str, float] = {}
    days = [EVENTS_WINDOW_START + dt.timedelta(days=d) for d in range(EVENTS_WINDOW_DAYS)]
    windowed = in_window(rows, days[0], len(days))
    with scratch_database(url, name=f"{SCRATCH_DB}_events") as scratch:
        wh = Warehouse(scratch)
        for phase in ("upsert, first", "upsert, re-run"):
            started = time.perf_counter()
            result = wh.load(tables.event, rows, run_id=phase)
            seconds[phase] = time.perf_counter() - started
            what = f"{phase} ({result.created} new / {result.unchanged} unchanged)"
            figures.append((what, len(rows), seconds[phase]))
        with wh.engine.begin() as conn:
            conn.exec_driver_sql(f"TRUNCATE {tables.event.fullname}")
        for phase in ("first", "re-run"):
            started = time.perf_counter()
            result = load_as_asset(wh, windowed, days, MONTREAL_LOAD, run_id=f"asset {phase}")
            seconds[f"asset, {phase}"] = time.perf_counter() - started
            what = f"asset load, {phase} ({result.created} new / {result.unchanged} unchanged)"
            figures.append((what, len(rows), seconds[f"asset, {phase}"]))
        wh.engine.dispose()
    say(f"{len(rows)} rows parsed, {rejects} records rejected, {len(pairs)} duplicate pairs (same-source never paired)")
    say(table_text(["step", "rows", "seconds", "rows/s"], [(w, r, f"{t:.2f}", f"{r / t:,.0f}") for w, r, t in figures]))
    say(
        f"validate = {validate_s / seconds['upsert, first']:.1%} of the first upsert's time "
        f"({validate_s / seconds['upsert, re-run']:.1%} of the re-run's)."
    )
    say(
        f"asset load = lib.ingest.PartitionLoad over {EVENTS_WINDOW_DAYS} days from {days[0]} (rows re-dated onto "
        "them): validate, one replace_window load and one ledger job per day. Asset load / plain upsert: first "
        f"{seconds['asset, first'] / seconds['upsert, first']:.2f}x, "
        f"re-run {seconds['asset, re-run'] / seconds['upsert, re-run']:.2f}x the time."
    )


def say(text: str = "") -> None:
    print(text, flush=True)


def human(n: int) -> str:
    if n >= 1_000_000 and n % 1_000_000 == 0:
        return f"{n // 1_000_000}M"
    if n >= 1_000 and n % 1_000 == 0:
        return f"{n // 1_000}k"
    return str(n)


# -- (a) warehouse ----------------------------------------------------------------------------
@contextlib.contextmanager
def scratch_database(url: str, name: str = SCRATCH_DB) -> Iterator[str]:
    admin_url = sa.make_url(url).set(drivername="postgresql+psycopg2")
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield admin_url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def bench_warehouse(url: str, sizes: list[int], repeats: int) -> dict[str, Any]:
    out: dict[str, Any] = {"rows": [], "errors": []}
    with scratch_database(url) as bench_url:
        engine = sa.create_engine(bench_url)
        with engine.connect() as conn:
            server = conn.exec_driver_sql("SHOW server_version").scalar_one()
            settings = {
                name: conn.exec_driver_sql(f"SHOW {name}").scalar_one()
                for name in ("shared_buffers", "synchronous_commit", "max_wal_size")
            }
        say(f"PostgreSQL {server} ({', '.join(f'{k}={v}' for k, v in settings.items())}); scratch db {SCRATCH_DB}")
        say(
            "COPY baseline: logged table, same columns and primary key, COPY FROM STDIN streamed from the same "
            "generator; upsert = Warehouse.load(mode='upsert')."
        )
        say(
            f"Per size and phase, {repeats} alternating COPY/upsert runs, each in a fresh subprocess (peak RSS "
            "comparable between sizes); best time of each side kept."
        )
        say()
        for size in sizes:
            metadata = bench_tables()[0]
            with engine.begin() as conn:
                conn.exec_driver_sql(f'CREATE SCHEMA IF NOT EXISTS "{SCHEMA}"')
                metadata.drop_all(conn)
                metadata.create_all(conn)
            gen_s = None
            for phase in PHASES[1:]:
                copies: list[dict[str, Any]] = []
                upserts: list[dict[str, Any]] = []
                for rep_index in range(repeats):
                    # COPY and upsert alternate, one run per fresh process, so drift hits both alike.
                    pair = []
                    for kind in ("copy", phase):
                        argv = ["--child", "warehouse", "--phase", kind, "--size", str(size), "--repeats", "1"]
                        argv += ["--first-rep", str(rep_index), "--database-url", bench_url]
                        if kind == "copy" and gen_s is None:
                            argv.append("--measure-gen")
                        try:
                            m = run_child(argv)
                        except Exception as exc:
                            out["errors"].append(f"N={human(size)} {kind} (for {phase}): {exc}")
                            say(f"  ! N={human(size)} {kind} (for {phase}): {exc}")
                            break
                        if m.get("generate_s") is not None:
                            gen_s = m["generate_s"]
                        (copies if kind == "copy" else upserts).append(m)
                        pair.append(m["seconds"])
                    if len(pair) == 2:
                        say(
                            f"  N={human(size):>5} {phase:<8} run {rep_index + 1}: COPY {pair[0]:6.2f} s, "
                            f"upsert {pair[1]:6.2f} s, x COPY {pair[0] / pair[1]:.2f}"
                        )
                if not copies or not upserts:
                    continue
                best_copy = min(copies, key=lambda m: m["seconds"])
                best_up = min(upserts, key=lambda m: m["seconds"])
                copy = {**best_copy, "rss_growth_mb": max(m["rss_growth_mb"] for m in copies), "generate_s": gen_s}
                upsert = {**best_up, "rss_growth_mb": max(m["rss_growth_mb"] for m in upserts)}
                out["rows"].append({"size": size, "phase": phase, "copy": copy, "upsert": upsert})
            with engine.begin() as conn:
                metadata.drop_all(conn)
        engine.dispose()
    return out


def report_warehouse(data: dict[str, Any]) -> None:
    rows = []
    for r in data["rows"]:
        copy, up = r["copy"], r["upsert"]
        res = up["result"] or {}
        rows.append(
            [
                human(r["size"]),
                r["phase"],
                f"{copy['generate_s']:.2f}" if copy and copy.get("generate_s") is not None else "-",
                f"{copy['seconds']:.2f}" if copy else "-",
                f"{up['seconds']:.2f}",
                f"{up['stage_s']:.2f}",
                f"{up['merge_s']:.2f}",
                f"{r['size'] / up['seconds']:,.0f}",
                f"{copy['seconds'] / up['seconds']:.2f}" if copy else "-",
                f"{res.get('created', 0)}/{res.get('updated', 0)}/{res.get('unchanged', 0)}",
                f"{copy['rss_growth_mb']:.1f}" if copy else "-",
                f"{up['rss_growth_mb']:.1f}",
            ]
        )
    headers = [
        "rows",
        "phase",
        "gen s",
        "COPY s",
        "upsert s",
        "stage s",
        "merge s",
        "upsert rows/s",
        "x COPY",
        "created/updated/unchanged",
        "COPY RSS+ MB",
        "upsert RSS+ MB",
    ]
    say(table_text(headers, rows))
    say("gen s = generating the row dicts alone (no database), included in both COPY s and upsert s.")
    say("stage s / merge s = the upsert's COPY into its temporary stage / its merge statements (count + INSERT).")
    say("x COPY = COPY s / upsert s (upsert throughput as a fraction of plain COPY's).")
    say("RSS+ = peak RSS growth of one run's process (ru_maxrss after - after a warm-up), max over the runs.")
    sizes = sorted({r["size"] for r in data["rows"]})
    if len(sizes) >= 2:
        lo, hi = sizes[0], sizes[-1]
        mem_rows = []
        for phase in ("copy", *PHASES[1:]):
            vals: dict[int, float] = {}
            for r in data["rows"]:
                side = r["copy"] if phase == "copy" else r["upsert"]
                if (phase == "copy" or r["phase"] == phase) and side:
                    vals[r["size"]] = max(vals.get(r["size"], 0.0), side["rss_growth_mb"])
            if lo in vals and hi in vals:
                ratio = vals[hi] / vals[lo] if vals[lo] > 0 else float("inf")
                mem_rows.append([phase, f"{vals[lo]:.1f}", f"{vals[hi]:.1f}", f"{ratio:.2f}"])
        say()
        say(f"Peak RSS growth, {human(lo)} vs {human(hi)} rows ({hi // lo}x the rows):")
        say(table_text(["phase", f"{human(lo)} MB", f"{human(hi)} MB", f"{human(hi)}/{human(lo)}"], mem_rows))


# -- (b) PMU day ------------------------------------------------------------------------------
def build_replay(root: Path, captures: Path) -> int:
    """Lay the recorded day out as the API paths, in a temporary directory. Returns files copied."""
    code = captures.name  # DDMMYYYY
    copied = 0
    for path in sorted(captures.glob("*.json")):
        name = path.name
        race = re.search(r"_R(\d+)C(\d+)\.json$", name)
        if name == f"programme_{code}.json":
            rel = f"rest/client/1/programme/{code}.json"
        elif race and name.startswith("participants_"):
            rel = f"rest/client/61/programme/{code}/R{race[1]}/C{race[2]}/participants.json"
        elif race and name.startswith("performances_"):
            rel = f"rest/client/61/programme/{code}/R{race[1]}/C{race[2]}/performances-detaillees/pretty.json"
        elif race and name.startswith("rapports_"):
            rel = f"rest/client/1/programme/{code}/R{race[1]}/C{race[2]}/rapports-definitifs.json"
        else:
            continue
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
        copied += 1
    return copied


def _races(programme_body: bytes) -> list[tuple[int, int]]:
    programme = json.loads(programme_body)["programme"]
    pairs = []
    for meeting in programme.get("reunions", []):
        for race in meeting.get("courses", []):
            pairs.append((int(meeting["numOfficiel"]), int(race["numOrdre"])))
    return pairs


def _request_count(server: Any) -> int:
    requests = server.requests
    if isinstance(requests, int):
        return requests
    return len(requests)


def fetch_day(base_url: str, concurrency: int) -> dict[str, Any]:
    from ingestion_platform.defs.pmu.resources import PmuApi

    api = PmuApi(base_url=base_url, max_concurrency=concurrency, max_attempts=3, backoff_base_s=0.01)
    started = time.perf_counter()
    with api.client() as client:
        programme = api.programme(client, PMU_DAY)
        if programme is None:
            raise RuntimeError("the replay server has no programme for the day")
        pairs = _races(programme.body)
        results = client.map(lambda rc: api.participants(client, PMU_DAY, rc[0], rc[1]), pairs)
        stats = dict(client.stats)
    seconds = time.perf_counter() - started
    errors = [r for r in results if isinstance(r, BaseException)]
    if errors:
        raise RuntimeError(f"{len(errors)} participants requests failed, first: {errors[0]!r}")
    found = sum(1 for r in results if r is not None)
    return {"seconds": seconds, "races": len(pairs), "found": found, "client_requests": stats["requests"]}


def _load_pmu_server(wait_s: float) -> Any:
    deadline = time.monotonic() + wait_s
    while True:
        try:
            from ingestion_platform_tests.pmu_server import PmuServer

            return PmuServer
        except ImportError as exc:
            if time.monotonic() >= deadline:
                raise RuntimeError(f"ingestion_platform_tests.pmu_server is not available: {exc}") from exc
            time.sleep(5)


def bench_pmu(latency_ms: float, repeats: int, wait_s: float) -> dict[str, Any]:
    out: dict[str, Any] = {"fetch": [], "materialize": [], "errors": [], "latency_ms": latency_ms}
    if not PMU_CAPTURES.is_dir():
        out["errors"].append(f"{PMU_CAPTURES} not found")
        return out
    pmu_server = _load_pmu_server(wait_s)
    with tempfile.TemporaryDirectory(prefix="pmu-replay-") as tmp:
        root = Path(tmp)
        files = build_replay(root, PMU_CAPTURES)
        say(f"Replay: {files} recorded files of {PMU_DAY:%d/%m/%Y} from {PMU_CAPTURES}, {latency_ms:g} ms per request")
        with pmu_server(root, latency_s=latency_ms / 1000) as server:
            for concurrency in (1, 8, 16):
                best = None
                for _ in range(repeats):
                    before = _request_count(server)
                    m = fetch_day(server.base_url, concurrency)
                    m["requests"] = _request_count(server) - before
                    if best is None or m["seconds"] < best["seconds"]:
                        best = m
                best["concurrency"] = concurrency
                out["fetch"].append(best)
                say(f"  fetch max_concurrency={concurrency:<2} {best['seconds']:6.2f} s, {best['requests']} requests")
            try:
                with warnings.catch_warnings():  # Dagster beta/preview warnings at import time
                    warnings.simplefilter("ignore")
                    from ingestion_platform.defs.pmu import parse, tables  # noqa: F401
                    from ingestion_platform_tests import pmu_helpers  # noqa: F401
            except Exception as exc:
                out["errors"].append(f"materialize skipped: PMU assets do not import ({exc!r})")
                return out
            for concurrency, with_checks in ((1, False), (8, False), (8, True)):
                what = f"materialize max_concurrency={concurrency}" + (" + checks" if with_checks else "")
                before = _request_count(server)
                argv = ["--child", "materialize", "--base-url", server.base_url, "--concurrency", str(concurrency)]
                try:
                    m = run_child(argv + (["--with-checks"] if with_checks else []))
                except Exception as exc:
                    out["errors"].append(f"{what}: {exc}")
                    say(f"  ! {what}: {exc}")
                    continue
                m["requests"] = _request_count(server) - before
                m["concurrency"] = concurrency
                m["with_checks"] = with_checks
                out["materialize"].append(m)
                say(f"  {what:<38} {m['seconds']:6.2f} s, {m['requests']} requests, {m['checks']} checks")
    return out


def report_pmu(data: dict[str, Any]) -> None:
    rows = []
    seq = next((m for m in data["fetch"] if m["concurrency"] == 1), None)
    for m in data["fetch"]:
        speed = f"{seq['seconds'] / m['seconds']:.2f}" if seq else "-"
        found = f"{m['found']}/{m['races']}"
        what = "fetch (programme + participants)"
        rows.append([what, m["concurrency"], m["requests"], found, f"{m['seconds']:.2f}", speed])
    mseq = next((m for m in data["materialize"] if m["concurrency"] == 1 and not m["with_checks"]), None)
    for m in data["materialize"]:
        speed = f"{mseq['seconds'] / m['seconds']:.2f}" if mseq else "-"
        what = "dg.materialize programme+participants" + (f" + {m['checks']} checks" if m["with_checks"] else "")
        rows.append([what, m["concurrency"], m["requests"], "-", f"{m['seconds']:.2f}", speed])
    if rows:
        say(table_text(["what", "max_concurrency", "requests", "races found", "seconds", "speed-up"], rows))
    if seq and seq["requests"]:
        per = seq["seconds"] / seq["requests"] * 1000
        say(f"Sequential wall time per request: {per:.0f} ms (server latency {data['latency_ms']:g} ms + overheads).")


# -- targets ----------------------------------------------------------------------------------
def report_targets(wh: dict[str, Any] | None, pmu: dict[str, Any] | None) -> bool:
    rows: list[list[str]] = []
    ok = True

    def add(name: str, value: str, passed: bool | None, note: str = "") -> None:
        nonlocal ok
        status = "n/a" if passed is None else ("PASS" if passed else "MISS")
        ok = ok and passed is not False
        rows.append([name, value, status, note])

    if wh is not None:
        by_phase: dict[str, list[tuple[float, int]]] = {}
        for r in wh["rows"]:
            if r["copy"]:
                by_phase.setdefault(r["phase"], []).append((r["copy"]["seconds"] / r["upsert"]["seconds"], r["size"]))
        for phase, name, target in (
            ("first", "first load >= 0.5x COPY", TARGET_FIRST),
            ("rerun", "idempotent re-run >= 0.8x COPY", TARGET_RERUN),
        ):
            vals = by_phase.get(phase)
            if not vals:
                add(name, "-", False, "not measured")
                continue
            worst = min(vals)
            detail = ", ".join(f"{human(s)}: {v:.2f}x" for v, s in sorted(vals, key=lambda t: t[1]))
            note = ""
            if worst[0] < target:
                note = f"short by {target - worst[0]:.2f}x ({worst[0] / target:.0%} of target)"
            add(name, f"worst {worst[0]:.2f}x ({detail})", worst[0] >= target, note)
        vals = by_phase.get("changed")
        if vals:
            add("10% changed (no target)", ", ".join(f"{human(s)}: {v:.2f}x" for v, s in vals), None)
        sizes = sorted({r["size"] for r in wh["rows"]})
        if len(sizes) >= 2:
            lo, hi = sizes[0], sizes[-1]
            worst_ratio, worst_phase, flat = 0.0, "", True
            for phase in PHASES[1:]:
                for getter, label in ((lambda r: r["upsert"], phase), (lambda r: r["copy"], "copy")):
                    vals_mb = {r["size"]: getter(r)["rss_growth_mb"] for r in wh["rows"] if r["phase"] == phase}
                    if lo not in vals_mb or hi not in vals_mb:
                        continue
                    ratio = vals_mb[hi] / max(vals_mb[lo], 0.1)
                    flat = flat and vals_mb[hi] <= FLAT_RATIO * vals_mb[lo] + FLAT_SLACK_MB
                    if ratio > worst_ratio and label != "copy":
                        worst_ratio, worst_phase = ratio, label
            add(
                "peak memory flat in rows",
                f"{human(hi)}/{human(lo)} RSS growth worst {worst_ratio:.2f} ({worst_phase})",
                flat,
                f"flat = growth at {human(hi)} <= {FLAT_RATIO}x growth at {human(lo)} + {FLAT_SLACK_MB:g} MB",
            )
        else:
            add("peak memory flat in rows", "-", None, "needs two sizes")
    if pmu is not None:
        fetch = {m["concurrency"]: m for m in pmu["fetch"]}
        if 1 in fetch and 8 in fetch:
            speed6 = fetch[1]["seconds"] / fetch[8]["seconds"]
            note = ""
            if 16 in fetch:
                note = f"max_concurrency=16: {fetch[1]['seconds'] / fetch[16]['seconds']:.2f}x"
            if speed6 < TARGET_SPEEDUP:
                note = f"short by {TARGET_SPEEDUP - speed6:.2f}x; " + note
            add("concurrent day >= 5x sequential", f"{speed6:.2f}x (max_concurrency=8, PMU default)", speed6 >= 5, note)
        else:
            add("concurrent day >= 5x sequential", "-", False, "; ".join(pmu["errors"]) or "not measured")
        mat = {m["concurrency"]: m for m in pmu["materialize"] if not m["with_checks"]}
        if 1 in mat and 8 in mat:
            add("dg.materialize 8 vs 1 (no target)", f"{mat[1]['seconds'] / mat[8]['seconds']:.2f}x", None)
        checked = next((m for m in pmu["materialize"] if m["with_checks"]), None)
        if checked and 8 in mat:
            ratio = f"{checked['seconds'] / mat[8]['seconds']:.2f}x"
            add("dg.materialize 8 with / without checks (no target)", ratio, None, f"{checked['checks']} checks")
    say(table_text(["target", "measured", "result", "note"], rows))
    return ok


# -- main -------------------------------------------------------------------------------------
def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--database-url",
        default=os.environ.get("INGESTION_BENCH_DATABASE_URL") or DEFAULT_URL,
        help=f"PostgreSQL admin URL; the scratch database {SCRATCH_DB!r} is created and dropped through it",
    )
    parser.add_argument("--sizes", default="100000,1000000", help="comma-separated row counts (default 100k,1M)")
    parser.add_argument("--quick", action="store_true", help="sizes 10k,100k")
    parser.add_argument("--only", choices=("warehouse", "pmu", "events"), help="run one part only")
    parser.add_argument("--events", type=int, default=50_000, help="Montréal-shaped records for (c) (default 50k)")
    parser.add_argument("--latency-ms", type=float, default=50.0, help="latency the PMU server adds per request")
    parser.add_argument("--repeats", type=int, default=2, help="timed runs per phase, best kept (default 2)")
    parser.add_argument("--wait-server-s", type=float, default=0.0, help="wait this long for pmu_server to appear")
    parser.add_argument("--child", choices=("warehouse", "materialize"), help=argparse.SUPPRESS)
    parser.add_argument("--phase", choices=PHASES, help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--first-rep", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--measure-gen", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--base-url", help=argparse.SUPPRESS)
    parser.add_argument("--concurrency", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--with-checks", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child == "warehouse":
        result = child_warehouse(
            args.database_url, args.phase, args.size, args.repeats, args.first_rep, args.measure_gen
        )
        print("@@RESULT " + json.dumps(result), flush=True)
        return 0
    if args.child == "materialize":
        result = child_materialize(args.base_url, args.concurrency, args.with_checks)
        print("@@RESULT " + json.dumps(result, default=str), flush=True)
        return 0

    sizes = [10_000, 100_000] if args.quick else [int(s.replace("_", "")) for s in args.sizes.split(",") if s.strip()]
    started = time.perf_counter()
    say(f"ingestion_platform benchmarks  {dt.datetime.now():%Y-%m-%d %H:%M}  python {sys.version.split()[0]}")
    say(f"host: {os.cpu_count()} CPUs, {os.uname().sysname} {os.uname().release}")
    say(f"package: {Path(ingestion_platform.__file__).parent}; recorded data: {SHARED}")
    wh = pmu = None
    if args.only in (None, "warehouse"):
        say()
        say(f"== (a) warehouse upsert vs plain COPY, sizes {', '.join(human(s) for s in sizes)} ==")
        wh = bench_warehouse(args.database_url, sizes, args.repeats)
        say()
        report_warehouse(wh)
        for err in wh["errors"]:
            say(f"ERROR {err}")
    if args.only in (None, "pmu"):
        say()
        say("== (b) PMU day: sequential vs concurrent client ==")
        try:
            pmu = bench_pmu(args.latency_ms, args.repeats, args.wait_server_s)
        except Exception as exc:
            pmu = {"fetch": [], "materialize": [], "errors": [str(exc)], "latency_ms": args.latency_ms}
        say()
        report_pmu(pmu)
        for err in pmu["errors"]:
            say(f"ERROR {err}")
    if args.only in (None, "events"):
        say()
        say(f"== (c) events: {human(args.events)} Montréal-shaped records through parse, dedupe, validation, load ==")
        bench_events(args.database_url, args.events)
    say()
    say("== targets ==")
    ok = report_targets(wh, pmu)
    say()
    say(f"total {time.perf_counter() - started:.0f} s")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
