"""PMU assets: programme -> participants -> performances, and programme -> rapports.

The PMU source is declared once (``PMU``, a ``lib.source.Source``): daily partitions in Europe/Paris,
one fetch per day, a multi-run backfill policy (``PMU_DAYS_PER_RUN`` days per run), the pool
``pmu_api``. Every asset runs on the platform's load driver (``lib.ingest.SourceRun``): per day and
asset one ledger job, raw payloads stored before parsing, one dead letter per race payload or record
that cannot be read (the others load), rows validated against the table contracts of
``pmu.tables`` before set-based loads that leave identical rows untouched. ``reprocess_from_raw``
rebuilds from the raw store without calling the API (and replays the days' dead letters).
"""

import datetime as dt
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import dagster as dg
import sqlalchemy as sa

from ingestion_platform.defs.pmu import parse, tables
from ingestion_platform.defs.pmu.checks import pmu_checks
from ingestion_platform.defs.pmu.resources import PmuApi
from ingestion_platform.defs.pmu.source import (  # noqa: F401  (re-exported for callers)
    PARTICIPANTS,
    PARTITIONS,
    PERFORMANCES,
    PMU,
    POOL,
    PROGRAMME,
    RAPPORTS,
    SOURCE,
)
from ingestion_platform.lib.contract import row_check
from ingestion_platform.lib.http import Fetched, HttpClient
from ingestion_platform.lib.ingest import LoadConfig, PartitionLoad, SourceRun
from ingestion_platform.lib.raw_store import RawStoreResource
from ingestion_platform.lib.warehouse import Warehouse, WarehouseResource

#: the parsers check each record's rows against the table contracts: one bad value rejects its record once
CHECK = row_check([*tables.PROGRAMME_LOAD, *tables.PARTICIPANT_LOAD, *tables.RAPPORT_LOAD])


def _races_of_day(warehouse: Warehouse, day: dt.date, where: sa.ColumnElement[bool] | None = None) -> list[dict]:
    race = tables.race
    stmt = sa.select(race).where(race.c.program_date == day).order_by(race.c.meeting_num, race.c.race_num)
    if where is not None:
        stmt = stmt.where(where)
    return warehouse.fetch(stmt)


def _history_preview(days: Sequence[dt.date]) -> sa.Select:
    """Past races of the runners of ``days``."""
    h, rp = tables.horse_race_history, tables.race_participant
    runners = sa.select(rp.c.horse_key).where(rp.c.program_date.in_(days))
    return sa.select(h).where(h.c.horse_key.in_(runners)).order_by(h.c.horse_key, h.c.raced_on).limit(10)


def _ref(row: dict) -> parse.RaceRef:
    return parse.RaceRef(row["program_date"], row["meeting_num"], row["race_num"])


def _race_key(ref: parse.RaceRef) -> dict:
    return {"program_date": ref.program_date, "meeting_num": ref.meeting_num, "race_num": ref.race_num}


def _scope(refs: list[parse.RaceRef]) -> list[tuple[int, int]]:
    return [(r.meeting_num, r.race_num) for r in refs]


def _fetch_races(
    load: PartitionLoad,
    client: HttpClient,
    refs: list[parse.RaceRef],
    endpoint: str,
    fetch: Callable[[parse.RaceRef], Fetched | None],
) -> list[tuple[parse.RaceRef, str, bytes | None]]:
    """Fetch (or replay) one payload per race, concurrently; a race that fails for good is dead-lettered."""

    def one(ref: parse.RaceRef) -> tuple[bytes | None, bool]:
        return load.try_land(f"{ref.label}_{endpoint}", lambda: fetch(ref), key=_race_key(ref))

    out = []
    for ref, result in zip(refs, client.map(one, refs), strict=True):
        if isinstance(result, BaseException):
            raise result
        out.append((ref, f"{ref.label}_{endpoint}", result[0]))
    return out


@dg.asset(**PMU.asset(PROGRAMME, tables=tables.PROGRAMME_LOAD, main=tables.race, checks=pmu_checks))
def programme(
    context: dg.AssetExecutionContext,
    config: LoadConfig,
    pmu_api: PmuApi,
    warehouse: WarehouseResource,
    raw_store: RawStoreResource,
) -> Iterator[Any]:
    """The day's programme: meetings (`race_meeting`) and races (`race`), plus `daily_program`.

    Race status, arrival order and official flag come from here, so the evening run reloads it.
    A day without a published programme (404/204) loads nothing and is listed as pending; a race
    that cannot be read is dead-lettered alone (its stored row is kept), the others load.
    """
    run = SourceRun(context, PMU, config=config, warehouse=warehouse, raw_store=raw_store, provider=pmu_api.provider)
    with pmu_api.client() as client:
        for unit in run.units():
            with unit.open() as load:
                day = load.day
                body = load.land("programme", lambda day=day: pmu_api.programme(client, day))
                parsed = None
                if body is None:
                    load.pending.append("programme (not published)")
                else:
                    parsed = load.parse(
                        "programme", body, lambda payload, day=day: parse.parse_programme(payload, day, CHECK)
                    )
                if parsed is not None:
                    for table in (tables.daily_program, tables.race_meeting, tables.race):
                        load.load(table, parsed[table.name])
                    load.job.metadata["races"] = len(parsed["race"])
    yield from run.finish(lambda days: sa.select(tables.race).where(tables.race.c.program_date.in_(days)).limit(10))


@dg.asset(
    **PMU.asset(
        PARTICIPANTS, tables=tables.PARTICIPANT_LOAD, main=tables.race_participant, deps=[PROGRAMME], checks=pmu_checks
    )
)
def participants(
    context: dg.AssetExecutionContext,
    config: LoadConfig,
    pmu_api: PmuApi,
    warehouse: WarehouseResource,
    raw_store: RawStoreResource,
) -> Iterator[Any]:
    """Runners of every race of the day (`race_participant`) and the horses, jockeys and trainers.

    One request per race, concurrently. Keys of horses, jockeys and trainers are stable across
    days (see `pmu.tables`). A race whose payload cannot be parsed is dead-lettered, and so is a
    runner that cannot be read; the others load.
    """
    run = SourceRun(context, PMU, config=config, warehouse=warehouse, raw_store=raw_store, provider=pmu_api.provider)
    with pmu_api.client() as client:
        for unit in run.units():
            with unit.open() as load:
                races = _races_of_day(run.warehouse, load.day)
                if not races:
                    load.mark_pending("no race in the day's programme (not loaded or not published yet)")
                refs = [_ref(r) for r in races]
                arrival = {_ref(r): r["arrival_order"] for r in races}
                fetched = _fetch_races(
                    load, client, refs, "participants",
                    lambda ref: pmu_api.participants(client, ref.program_date, ref.meeting_num, ref.race_num),
                )  # fmt: skip
                rows: dict[str, list[dict]] = {c.table.name: [] for c in tables.PARTICIPANT_LOAD}
                loaded = []
                for ref, request, body in fetched:
                    if body is None:
                        load.mark_pending(request)
                        continue
                    order = arrival.get(ref)
                    parsed = load.parse(
                        request,
                        body,
                        lambda p, ref=ref, order=order: parse.parse_participants(p, ref, order, CHECK),
                        key=_race_key(ref),
                    )
                    if parsed is None:
                        continue
                    loaded.append(ref)
                    for name, items in parsed.items():
                        rows[name].extend(items)
                for table in (tables.horse, tables.jockey, tables.trainer):
                    load.load(table, parse.merge_unique(rows[table.name], [c.name for c in table.primary_key]))
                load.load(tables.race_participant, rows["race_participant"], scope=_scope(loaded))
                load.job.metadata["races"] = {"total": len(refs), "loaded": len(loaded)}
    rp = tables.race_participant
    yield from run.finish(lambda days: sa.select(rp).where(rp.c.program_date.in_(days)).limit(10))


@dg.asset(**PMU.asset(PERFORMANCES, tables=tables.PERFORMANCE_LOAD, deps=[PARTICIPANTS], checks=pmu_checks))
def performances(
    context: dg.AssetExecutionContext,
    config: LoadConfig,
    pmu_api: PmuApi,
    warehouse: WarehouseResource,
    raw_store: RawStoreResource,
) -> Iterator[Any]:
    """Past races of every runner of the day (`horse_race_history`), one row per (horse, past race).

    The horse's own line in each past race is the one flagged `itsHim`; times there are in
    centiseconds (not milliseconds as in participants) and are stored in seconds.
    """
    run = SourceRun(context, PMU, config=config, warehouse=warehouse, raw_store=raw_store, provider=pmu_api.provider)
    part = tables.race_participant
    with pmu_api.client() as client:
        for unit in run.units():
            with unit.open() as load:
                day = load.day
                races = _races_of_day(run.warehouse, day, ~tables.race.c.is_cancelled)
                runners = run.warehouse.fetch(
                    sa.select(part.c.meeting_num, part.c.race_num, part.c.horse_num, part.c.horse_key).where(
                        part.c.program_date == day
                    )
                )
                horse_keys: dict[tuple[int, int], dict[int, str]] = {}
                for r in runners:
                    horse_keys.setdefault((r["meeting_num"], r["race_num"]), {})[r["horse_num"]] = r["horse_key"]
                refs = [_ref(r) for r in races if (r["meeting_num"], r["race_num"]) in horse_keys]
                if not refs:
                    load.mark_pending("no runner of the day loaded yet (participants)")
                fetched = _fetch_races(
                    load, client, refs, "performances",
                    lambda ref: pmu_api.performances(client, ref.program_date, ref.meeting_num, ref.race_num),
                )  # fmt: skip
                history: list[dict] = []
                for ref, request, body in fetched:
                    if body is None:
                        load.mark_pending(request)
                        continue
                    keys = horse_keys[(ref.meeting_num, ref.race_num)]
                    parsed = load.parse(
                        request, body, lambda p, ref=ref, keys=keys: parse.parse_performances(p, ref, keys)
                    )
                    if parsed is not None:
                        history.extend(parsed)
                key_cols = [c.name for c in tables.horse_race_history.primary_key.columns]
                load.load(tables.horse_race_history, parse.merge_unique(history, key_cols))
    yield from run.finish(_history_preview)


@dg.asset(
    **PMU.asset(RAPPORTS, tables=tables.RAPPORT_LOAD, main=tables.bet_report, deps=[PROGRAMME], checks=pmu_checks)
)
def rapports(
    context: dg.AssetExecutionContext,
    config: LoadConfig,
    pmu_api: PmuApi,
    warehouse: WarehouseResource,
    raw_store: RawStoreResource,
) -> Iterator[Any]:
    """Final bet reports of the day's official races: `race_bet` (per bet type), `bet_report` (per line).

    Only official, non-cancelled races are asked for. A race whose rapports are not published yet
    (empty array, 204 or 404) loads nothing and is listed as pending; a later run fills it.
    """
    run = SourceRun(context, PMU, config=config, warehouse=warehouse, raw_store=raw_store, provider=pmu_api.provider)
    race, br = tables.race, tables.bet_report
    with pmu_api.client() as client:
        for unit in run.units():
            with unit.open() as load:
                races = _races_of_day(run.warehouse, load.day, sa.and_(race.c.is_official, ~race.c.is_cancelled))
                if not races:
                    load.mark_pending("no official race of the day yet")
                refs = [_ref(r) for r in races]
                fetched = _fetch_races(
                    load, client, refs, "rapports",
                    lambda ref: pmu_api.rapports(client, ref.program_date, ref.meeting_num, ref.race_num),
                )  # fmt: skip
                bets: list[dict] = []
                lines: list[dict] = []
                loaded = []
                for ref, request, body in fetched:
                    parsed = None
                    if body is not None:
                        parsed = load.parse(
                            request, body, lambda p, ref=ref: parse.parse_rapports(p, ref, CHECK), key=_race_key(ref)
                        )
                        if parsed is None:
                            continue
                    if not parsed or not parsed["race_bet"]:
                        load.mark_pending(request)
                        continue
                    loaded.append(ref)
                    bets.extend(parsed["race_bet"])
                    lines.extend(parsed["bet_report"])
                load.load(tables.race_bet, bets, scope=_scope(loaded))
                load.load(tables.bet_report, lines, scope=_scope(loaded))
                load.job.metadata["races"] = {"official": len(refs), "loaded": len(loaded)}
    yield from run.finish(lambda days: sa.select(br).where(br.c.program_date.in_(days)).limit(10))
