"""PMU assets: programme -> participants -> performances, and programme -> rapports.

Every asset is partitioned by day (Europe/Paris) and loops over the days of its partition window,
so one code path serves the daily schedule, a re-execution and a ranged backfill (several days per
run, see ``BACKFILL_POLICY``). Per day and asset: one ledger job, raw payloads stored before
parsing, one dead letter per race payload that cannot be parsed (the other races load), and set-based
loads that leave identical rows untouched. ``reprocess_from_raw`` rebuilds from the raw store
without calling the API (and replays the partition's dead letters).
"""

import datetime as dt
import os
import threading
from collections.abc import Callable, Iterable
from typing import Any

import dagster as dg
import sqlalchemy as sa

from ingestion_platform.defs.pmu import parse, tables
from ingestion_platform.defs.pmu.resources import PmuApi
from ingestion_platform.lib.http import Fetched, HttpClient, HttpError
from ingestion_platform.lib.ingest import MissingRaw, PartitionLoad, load_metadata, table_schema
from ingestion_platform.lib.raw_store import RawStoreResource
from ingestion_platform.lib.warehouse import Warehouse, WarehouseResource

SOURCE = "pmu"
POOL = "pmu_api"
PARTITIONS = dg.DailyPartitionsDefinition(
    start_date=os.environ.get("PMU_START_DATE") or "2013-03-01",
    timezone="Europe/Paris",
    end_offset=1,  # tomorrow's programme is published the day before
)
BACKFILL_POLICY = dg.BackfillPolicy.multi_run(max_partitions_per_run=int(os.environ.get("PMU_DAYS_PER_RUN") or 31))

PROGRAMME = dg.AssetKey(["pmu", "programme"])
PARTICIPANTS = dg.AssetKey(["pmu", "participants"])
PERFORMANCES = dg.AssetKey(["pmu", "performances"])
RAPPORTS = dg.AssetKey(["pmu", "rapports"])


class PmuLoadConfig(dg.Config):
    """Run configuration shared by the PMU assets."""

    reprocess_from_raw: bool = False
    """Rebuild the tables from the stored raw payloads instead of calling the API."""


def _common(tables_written: Iterable[sa.Table], main: sa.Table) -> dict[str, Any]:
    written = list(tables_written)
    return {
        "group_name": SOURCE,
        "partitions_def": PARTITIONS,
        "backfill_policy": BACKFILL_POLICY,
        "pool": POOL,
        "owners": ["team:data-platform"],
        "kinds": {"python", "sql"},
        "tags": {"source": SOURCE},
        "metadata": {
            "tables": dg.MetadataValue.text(", ".join(t.fullname for t in written)),
            "dagster/column_schema": table_schema(main),
            "dagster/table_name": main.fullname,
        },
    }


def _day(key: str) -> dt.date:
    return dt.date.fromisoformat(key)


def _races_of_day(warehouse: Warehouse, day: dt.date, where: sa.ColumnElement[bool] | None = None) -> list[dict]:
    race = tables.race
    stmt = sa.select(race).where(race.c.program_date == day).order_by(race.c.meeting_num, race.c.race_num)
    if where is not None:
        stmt = stmt.where(where)
    return warehouse.fetch(stmt)


def _ref(row: dict) -> parse.RaceRef:
    return parse.RaceRef(row["program_date"], row["meeting_num"], row["race_num"])


def _races_window(table: sa.Table, day: dt.date, refs: list[parse.RaceRef]) -> sa.ColumnElement[bool]:
    """The rows of ``table`` that belong to the given races of ``day`` (for replace_window)."""
    pairs = [(r.meeting_num, r.race_num) for r in refs] or [(-1, -1)]
    return sa.and_(
        table.c.program_date == day,
        sa.tuple_(table.c.meeting_num, table.c.race_num).in_(pairs),
    )


class _DayRun:
    """Per-day plumbing shared by the per-race assets (concurrent fetch, parse, dead letters)."""

    def __init__(self, load: PartitionLoad, client: HttpClient) -> None:
        self.load = load
        self.client = client
        self._lock = threading.Lock()

    def fetch_all(
        self, refs: list[parse.RaceRef], endpoint: str, fetch: Callable[[parse.RaceRef], Fetched | None]
    ) -> list[tuple[parse.RaceRef, str, bytes | None]]:
        """Fetch (or replay) one payload per race, concurrently; failures are dead-lettered."""

        def one(ref: parse.RaceRef) -> bytes | None:
            return self.load.land(_request(ref, endpoint), lambda: fetch(ref))

        results = self.client.map(one, refs)
        out = []
        for ref, result in zip(refs, results, strict=True):
            request = _request(ref, endpoint)
            if isinstance(result, BaseException):
                if not isinstance(result, (MissingRaw, HttpError)):
                    raise result
                self.load.reject(request, result)
                out.append((ref, request, None))
            else:
                out.append((ref, request, result))
        return out


def _request(ref: parse.RaceRef, endpoint: str) -> str:
    return f"{ref.label}_{endpoint}"


def _open(context: dg.AssetExecutionContext, key: str, asset: dg.AssetKey, config: PmuLoadConfig, **kw: Any):
    return PartitionLoad.open(
        source=SOURCE,
        asset_key=asset.to_user_string(),
        partition=key,
        run_id=context.run.run_id,
        reprocess_from_raw=config.reprocess_from_raw,
        config={"reprocess_from_raw": config.reprocess_from_raw},
        **kw,
    )


@dg.asset(key=PROGRAMME, **_common(tables.PROGRAMME_TABLES, tables.race))
def programme(
    context: dg.AssetExecutionContext,
    config: PmuLoadConfig,
    pmu_api: PmuApi,
    warehouse: WarehouseResource,
    raw_store: RawStoreResource,
) -> dg.MaterializeResult:
    """The day's programme: meetings (`race_meeting`) and races (`race`), plus `daily_program`.

    Race status, arrival order and official flag come from here, so the evening run reloads it.
    A day without a published programme (404/204) loads nothing and is listed as pending.
    """
    wh, store = warehouse.get(), raw_store.get()
    loads = []
    with pmu_api.client() as client:
        for key in context.partition_keys:
            day = _day(key)
            with _open(
                context,
                key,
                PROGRAMME,
                config,
                warehouse=wh,
                raw_store=store,
                provider=pmu_api.provider,
                target=tables.PROGRAMME_TABLES,
            ) as load:
                body = load.land("programme", lambda day=day: pmu_api.programme(client, day))
                parsed = None
                if body is None:
                    load.pending.append("programme (not published)")
                else:
                    parsed = load.parse("programme", body, lambda payload, day=day: parse.parse_programme(payload, day))
                if parsed is not None:
                    day_window = {"program_date": day}
                    load.load(tables.daily_program, parsed["daily_program"], run_id=context.run.run_id)
                    load.load(
                        tables.race_meeting,
                        parsed["race_meeting"],
                        mode="replace_window",
                        window=day_window,
                        run_id=context.run.run_id,
                    )
                    load.load(
                        tables.race, parsed["race"], mode="replace_window", window=day_window, run_id=context.run.run_id
                    )
                    load.job.metadata["races"] = len(parsed["race"])
            loads.append(load)
            context.log.info("programme %s: %s", key, load.job.summary())
    days = [_day(k) for k in context.partition_keys]
    preview = sa.select(tables.race).where(tables.race.c.program_date.in_(days)).limit(10)
    return dg.MaterializeResult(metadata=load_metadata(loads, wh, preview))


@dg.asset(key=PARTICIPANTS, deps=[PROGRAMME], **_common(tables.PARTICIPANT_TABLES, tables.race_participant))
def participants(
    context: dg.AssetExecutionContext,
    config: PmuLoadConfig,
    pmu_api: PmuApi,
    warehouse: WarehouseResource,
    raw_store: RawStoreResource,
) -> dg.MaterializeResult:
    """Runners of every race of the day (`race_participant`) and the horses, jockeys and trainers.

    One request per race, concurrently. Keys of horses, jockeys and trainers are stable across
    days (see `pmu.tables`). A race whose payload cannot be parsed is dead-lettered; the others load.
    """
    wh, store = warehouse.get(), raw_store.get()
    loads = []
    with pmu_api.client() as client:
        for key in context.partition_keys:
            day = _day(key)
            races = _races_of_day(wh, day)
            with _open(
                context,
                key,
                PARTICIPANTS,
                config,
                warehouse=wh,
                raw_store=store,
                provider=pmu_api.provider,
                target=tables.PARTICIPANT_TABLES,
            ) as load:
                run = _DayRun(load, client)
                refs = [_ref(r) for r in races]
                arrival = {_ref(r): r["arrival_order"] for r in races}
                fetched = run.fetch_all(
                    refs,
                    "participants",
                    lambda ref: pmu_api.participants(client, ref.program_date, ref.meeting_num, ref.race_num),
                )
                rows: dict[str, list[dict]] = {"horse": [], "jockey": [], "trainer": [], "race_participant": []}
                loaded_refs = []
                for ref, request, body in fetched:
                    if body is None:
                        load.mark_pending(request)
                        continue
                    order = arrival.get(ref)
                    parsed = load.parse(
                        request, body, lambda p, ref=ref, order=order: parse.parse_participants(p, ref, order)
                    )
                    if parsed is None:
                        continue
                    loaded_refs.append(ref)
                    for name, items in parsed.items():
                        rows[name].extend(items)
                load.load(tables.horse, parse.merge_unique(rows["horse"], ["horse_key"]), run_id=context.run.run_id)
                load.load(tables.jockey, parse.merge_unique(rows["jockey"], ["jockey_key"]), run_id=context.run.run_id)
                load.load(
                    tables.trainer, parse.merge_unique(rows["trainer"], ["trainer_key"]), run_id=context.run.run_id
                )
                load.load(
                    tables.race_participant,
                    rows["race_participant"],
                    mode="replace_window",
                    window=_races_window(tables.race_participant, day, loaded_refs),
                    run_id=context.run.run_id,
                )
                load.job.metadata["races"] = {"total": len(refs), "loaded": len(loaded_refs)}
            loads.append(load)
            context.log.info("participants %s: %s", key, load.job.summary())
    days = [_day(k) for k in context.partition_keys]
    preview = sa.select(tables.race_participant).where(tables.race_participant.c.program_date.in_(days)).limit(10)
    return dg.MaterializeResult(metadata=load_metadata(loads, wh, preview))


@dg.asset(key=PERFORMANCES, deps=[PARTICIPANTS], **_common(tables.PERFORMANCE_TABLES, tables.horse_race_history))
def performances(
    context: dg.AssetExecutionContext,
    config: PmuLoadConfig,
    pmu_api: PmuApi,
    warehouse: WarehouseResource,
    raw_store: RawStoreResource,
) -> dg.MaterializeResult:
    """Past races of every runner of the day (`horse_race_history`), one row per (horse, past race).

    The horse's own line in each past race is the one flagged `itsHim`; times there are in
    centiseconds (not milliseconds as in participants) and are stored in seconds.
    """
    wh, store = warehouse.get(), raw_store.get()
    part = tables.race_participant
    loads = []
    with pmu_api.client() as client:
        for key in context.partition_keys:
            day = _day(key)
            races = _races_of_day(wh, day, ~tables.race.c.is_cancelled)
            runners = wh.fetch(
                sa.select(part.c.meeting_num, part.c.race_num, part.c.horse_num, part.c.horse_key).where(
                    part.c.program_date == day
                )
            )
            horse_keys: dict[tuple[int, int], dict[int, str]] = {}
            for r in runners:
                horse_keys.setdefault((r["meeting_num"], r["race_num"]), {})[r["horse_num"]] = r["horse_key"]
            refs = [_ref(r) for r in races if (r["meeting_num"], r["race_num"]) in horse_keys]
            with _open(
                context,
                key,
                PERFORMANCES,
                config,
                warehouse=wh,
                raw_store=store,
                provider=pmu_api.provider,
                target=tables.PERFORMANCE_TABLES,
            ) as load:
                run = _DayRun(load, client)
                fetched = run.fetch_all(
                    refs,
                    "performances",
                    lambda ref: pmu_api.performances(client, ref.program_date, ref.meeting_num, ref.race_num),
                )
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
                load.load(tables.horse_race_history, parse.merge_unique(history, key_cols), run_id=context.run.run_id)
            loads.append(load)
            context.log.info("performances %s: %s", key, load.job.summary())
    return dg.MaterializeResult(metadata=load_metadata(loads, wh, sa.select(tables.horse_race_history).limit(10)))


@dg.asset(key=RAPPORTS, deps=[PROGRAMME], **_common(tables.RAPPORT_TABLES, tables.bet_report))
def rapports(
    context: dg.AssetExecutionContext,
    config: PmuLoadConfig,
    pmu_api: PmuApi,
    warehouse: WarehouseResource,
    raw_store: RawStoreResource,
) -> dg.MaterializeResult:
    """Final bet reports of the day's official races: `race_bet` (per bet type), `bet_report` (per line).

    Only official, non-cancelled races are asked for. A race whose rapports are not published yet
    (empty array, 204 or 404) loads nothing and is listed as pending; a later run fills it.
    """
    wh, store = warehouse.get(), raw_store.get()
    race = tables.race
    loads = []
    with pmu_api.client() as client:
        for key in context.partition_keys:
            day = _day(key)
            races = _races_of_day(wh, day, sa.and_(race.c.is_official, ~race.c.is_cancelled))
            refs = [_ref(r) for r in races]
            with _open(
                context,
                key,
                RAPPORTS,
                config,
                warehouse=wh,
                raw_store=store,
                provider=pmu_api.provider,
                target=tables.RAPPORT_TABLES,
            ) as load:
                run = _DayRun(load, client)
                fetched = run.fetch_all(
                    refs,
                    "rapports",
                    lambda ref: pmu_api.rapports(client, ref.program_date, ref.meeting_num, ref.race_num),
                )
                bets: list[dict] = []
                lines: list[dict] = []
                loaded_refs = []
                for ref, request, body in fetched:
                    parsed = None
                    if body is not None:
                        parsed = load.parse(request, body, lambda p, ref=ref: parse.parse_rapports(p, ref))
                        if parsed is None:
                            continue
                    if not parsed or not parsed["race_bet"]:
                        load.mark_pending(request)
                        continue
                    loaded_refs.append(ref)
                    bets.extend(parsed["race_bet"])
                    lines.extend(parsed["bet_report"])
                load.load(
                    tables.race_bet,
                    bets,
                    mode="replace_window",
                    window=_races_window(tables.race_bet, day, loaded_refs),
                    run_id=context.run.run_id,
                )
                load.load(
                    tables.bet_report,
                    lines,
                    mode="replace_window",
                    window=_races_window(tables.bet_report, day, loaded_refs),
                    run_id=context.run.run_id,
                )
                load.job.metadata["races"] = {"official": len(refs), "loaded": len(loaded_refs)}
            loads.append(load)
            context.log.info("rapports %s: %s", key, load.job.summary())
    days = [_day(k) for k in context.partition_keys]
    preview = sa.select(tables.bet_report).where(tables.bet_report.c.program_date.in_(days)).limit(10)
    return dg.MaterializeResult(metadata=load_metadata(loads, wh, preview))
