"""Events assets: Eventbrite, Montréal open data and iCalendar feeds -> ``events.event``.

A partition is a local day (America/Toronto) and holds the events (occurrences) whose
``start_date`` is that day. Each source is declared once (``lib.source.Source``) with
``fetch_unit="window"`` and ``BackfillPolicy.single_run()``: a range of days is one run and one
fetch of the source, stored raw under the run's range (``2025-03-01_2025-03-31``, or the day), and
its rows are loaded, counted and ledgered per day (``lib.ingest``).

Per source and day: one ledger job; raw payloads stored before parsing; a payload that cannot be
read is dead-lettered whole; a record that cannot be read is dead-lettered alone with the raw record
(under its day when known; the others load); a value that cannot be read is dropped with a warning in
the ledger and the Dagster metadata; rows are validated against the table contract. A replay
(``reprocess_from_raw``) of any range reads the latest stored fetch covering each of its days.

Deletions: Montréal and iCalendar rows of a day that the source no longer lists are deleted
(replace_window, only after a complete fetch). Eventbrite upcoming events that vanish are first
recorded in ``event_absence`` and set to ``cancelled`` after ``EVENTBRITE_GRACE_HOURS``.
"""

import datetime as dt
from typing import Any

import dagster as dg
import sqlalchemy as sa

from ingestion_platform.defs.events import dedupe, ics, parse, tables
from ingestion_platform.defs.events.resources import EventbriteApi, IcsFeeds, MontrealOpenData
from ingestion_platform.lib.contract import TableContract
from ingestion_platform.lib.errors import Parsed, Reject
from ingestion_platform.lib.ingest import LoadConfig, PartitionLoad, SourceRun, table_schema
from ingestion_platform.lib.raw_store import RawStoreResource
from ingestion_platform.lib.settings import definition_setting
from ingestion_platform.lib.source import Source
from ingestion_platform.lib.warehouse import LINEAGE_COLUMNS, WarehouseResource

TIMEZONE = "America/Toronto"
HORIZON_DAYS = definition_setting("EVENTS_HORIZON_DAYS", 60, "Days ahead of today the events partitions reach")
PARTITIONS = dg.DailyPartitionsDefinition(
    start_date=definition_setting("EVENTS_START_DATE", "2024-01-01", "First events daily partition (YYYY-MM-DD)"),
    timezone=TIMEZONE,
    end_offset=HORIZON_DAYS,  # upcoming days can be refreshed before they happen
)


def _source(name: str, pool: str, description: str) -> Source:
    return Source(
        name=name,
        group="events",
        partitions=PARTITIONS,
        fetch_unit="window",
        backfill_policy=dg.BackfillPolicy.single_run(),
        pool=pool,
        tags={"family": "events"},
        description=description,
    )


EVENTBRITE_SOURCE = _source("eventbrite", "eventbrite_api", "Eventbrite v3 organization events")
MONTREAL_SOURCE = _source("montreal", "montreal_open_data", "Ville de Montréal open data (CKAN datastore)")
ICS_SOURCE = _source("ics", "ics_feeds", "iCalendar feeds (ICS_FEEDS)")

EVENTBRITE = dg.AssetKey(["events", "eventbrite"])
MONTREAL = dg.AssetKey(["events", "montreal"])
ICS = dg.AssetKey(["events", "ics"])
DUPLICATES = dg.AssetKey(["events", "duplicates"])
IMPORT_STATS = dg.AssetKey(["events", "import_stats"])
SOURCE_ASSETS = (EVENTBRITE, MONTREAL, ICS)

# The loading contract: Montréal and iCalendar replace each day of their own rows after a complete
# fetch; Eventbrite never deletes (vanished events go through event_absence and a grace period).
_SOURCE_DAY = {"day_column": "start_date", "scope_columns": ("source",)}
EVENTBRITE_LOAD = (TableContract(tables.event, "upsert", day_column="start_date"), TableContract(tables.event_absence))
MONTREAL_LOAD = (TableContract(tables.event, "replace_window", **_SOURCE_DAY),)
ICS_LOAD = (TableContract(tables.event, "replace_window", **_SOURCE_DAY),)
DUPLICATES_LOAD = (
    TableContract(tables.event_duplicate, "replace_window", day_column="start_date"),
    TableContract(tables.event_cluster, "replace_window", day_column="start_date"),
)


def window_of(context: dg.AssetExecutionContext) -> tuple[dt.date, dt.date]:
    """The run's days as ``[start, end)`` local dates."""
    window = context.partition_time_window
    return window.start.date(), window.end.date()


def _page(result: tuple[list[dict[str, Any]], list[Reject], Any]) -> Parsed[tuple[list[dict[str, Any]], Any, int]]:
    """A page parser's ``(rows, rejects, extra)`` as ``Parsed((rows, extra, records on the page), rejects)``."""
    rows, rejects, extra = result
    return Parsed((rows, extra, len(rows) + sum(1 for r in rejects if r.dropped)), rejects)


def _decode(request: str):
    return lambda body: parse.decode_payload(body, request)


def _in_unit(load: PartitionLoad, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    first, last = load.days[0], load.days[-1]
    return [r for r in rows if r.get("start_date") is not None and first <= r["start_date"] <= last]


def _source_rows(run: SourceRun, source: sa.ColumnElement[bool]) -> sa.ColumnElement[bool]:
    e = tables.event
    return sa.and_(source, e.c.start_date >= run.start, e.c.start_date < run.end)


def _result(run: SourceRun, source: sa.ColumnElement[bool]) -> dg.MaterializeResult:
    e = tables.event
    window = _source_rows(run, source)
    return run.result(
        sa.select(e).where(window).limit(10),
        events_in_window=dg.MetadataValue.int(run.warehouse.count(e, window)),
    )


@dg.asset(**EVENTBRITE_SOURCE.asset(EVENTBRITE, tables=EVENTBRITE_LOAD, main=tables.event))
def eventbrite(
    context: dg.AssetExecutionContext,
    config: LoadConfig,
    eventbrite_api: EventbriteApi,
    warehouse: WarehouseResource,
    raw_store: RawStoreResource,
) -> dg.MaterializeResult:
    """Events of the configured Eventbrite organizations (`source = eventbrite`), with venue,
    organizer, category and ticket availability expanded; continuation/page paging.

    An upcoming event that no longer comes back is recorded in `event_absence` and set to
    `cancelled` once `EVENTBRITE_GRACE_HOURS` have passed; it is never deleted.
    """
    api = eventbrite_api
    run = SourceRun(context, EVENTBRITE_SOURCE, config=config, warehouse=warehouse, raw_store=raw_store,
                    provider=api.provider)  # fmt: skip
    for unit in run.units():
        with unit.open() as load:
            rows: list[dict[str, Any]] = []
            complete = True
            with api.client() as client:
                for org in api.organization_ids:
                    complete = _eventbrite_organization(load, api, client, org, rows) and complete
            kept = _in_unit(load, rows)
            load.load(tables.event, kept)
            if complete and not config.reprocess_from_raw:
                _track_absences(load, kept, api.grace_hours)
            elif not complete:
                load.pending.append("absence tracking skipped: the fetch was incomplete")
            load.job.metadata["fetched"] = len(rows)
    return _result(run, tables.event.c.source == "eventbrite")


def _eventbrite_organization(load: PartitionLoad, api: EventbriteApi, client: Any, org: str, rows: list) -> bool:
    """Every page of one organization into ``rows``; False when the fetch stopped short."""
    params: dict[str, Any] = {}
    for page in range(1, api.max_pages + 1):
        request = f"org_{org}_page_{page}"
        body, ok = load.try_land(request, lambda params=params: api.events_page(client, org, params))
        if not ok or body is None:
            if ok:
                load.warn(f"organization {org}: not found (404)")
            return False
        parsed = load.parse(
            request,
            body,
            lambda payload, request=request: _page(parse.parse_eventbrite_page(payload, org, request)),
            decode=_decode(request),
        )
        if parsed is None:
            return False
        page_rows, pagination, _count = parsed
        rows.extend(page_rows)
        params = pagination.next_params or {}
        if not params:
            return True
    load.warn(f"organization {org}: stopped after {api.max_pages} pages")
    return False


def _track_absences(load: PartitionLoad, rows: list[dict], grace_h: float) -> None:
    """Upcoming Eventbrite events of the unit's days missing from a complete fetch: grace, then cancelled."""
    e, a = tables.event, tables.event_absence
    wh = load.warehouse
    now = dt.datetime.now(dt.UTC)
    seen = {r["source_id"] for r in rows}
    in_unit = sa.and_(e.c.source == "eventbrite", e.c.start_date >= load.days[0], e.c.start_date <= load.days[-1])
    upcoming = wh.fetch(
        sa.select(e.c.source_id, e.c.starts_at).where(in_unit, e.c.starts_at > now, e.c.status != "cancelled")
    )
    recorded = {r["source_id"]: r for r in wh.fetch(sa.select(a).where(a.c.source == "eventbrite"))}
    known = {sid: r for sid, r in recorded.items() if r["marked_cancelled_at"] is None}
    absences, to_cancel = [], []
    for row in upcoming:
        if row["source_id"] in seen:
            continue
        previous = known.get(row["source_id"])
        first = previous["first_missing_at"] if previous else now
        if first.tzinfo is None:
            first = first.replace(tzinfo=dt.UTC)
        cancel = now - first >= dt.timedelta(hours=grace_h)
        absences.append(
            {
                "source": "eventbrite",
                "source_id": row["source_id"],
                "starts_at": row["starts_at"],
                "last_seen_at": previous["last_seen_at"] if previous else None,
                "first_missing_at": first,
                "missed_fetches": (previous["missed_fetches"] + 1) if previous else 1,
                "marked_cancelled_at": now if cancel else None,
            }
        )
        if cancel:
            to_cancel.append(row["source_id"])
    back = [sid for sid in recorded if sid in seen]  # came back (even after being cancelled)
    if back:
        with wh.engine.begin() as conn:
            conn.execute(sa.delete(a).where(a.c.source == "eventbrite", a.c.source_id.in_(back)))
    if absences:
        load.load(a, absences)
    if to_cancel:  # through the contract, so the day's counts and lineage say what changed
        data = [c for c in e.columns if c.name not in LINEAGE_COLUMNS]
        cancelled = wh.fetch(sa.select(*data).where(e.c.source == "eventbrite", e.c.source_id.in_(to_cancel)))
        load.load(e, [{**r, "status": "cancelled"} for r in cancelled])
        load.warn(f"{len(absences)} upcoming events missing from the API ({len(to_cancel)} now marked cancelled)")
    elif absences:
        load.warn(f"{len(absences)} upcoming events missing from the API (within the grace period)")
    load.job.metadata["absent"] = len(absences)
    load.job.metadata["cancelled_after_grace"] = to_cancel[:50]


@dg.asset(**MONTREAL_SOURCE.asset(MONTREAL, tables=MONTREAL_LOAD, main=tables.event))
def montreal(
    context: dg.AssetExecutionContext,
    config: LoadConfig,
    montreal_open_data: MontrealOpenData,
    warehouse: WarehouseResource,
    raw_store: RawStoreResource,
) -> dg.MaterializeResult:
    """Public events of the Ville de Montréal open data portal (`source = montreal`), read from the
    CKAN datastore page by page; `source_id` is the numeric id at the end of `url_fiche`.
    """
    api = montreal_open_data
    run = SourceRun(context, MONTREAL_SOURCE, config=config, warehouse=warehouse, raw_store=raw_store,
                    provider=api.provider)  # fmt: skip
    for unit in run.units():
        with unit.open() as load:
            rows: list[dict[str, Any]] = []
            with api.client() as client:
                complete = _montreal_pages(load, api, client, rows)
            load.load(tables.event, rows, scope=[("montreal",)], complete=complete)
            load.job.metadata["fetched"] = len(rows)
    return _result(run, tables.event.c.source == "montreal")


def _montreal_pages(load: PartitionLoad, api: MontrealOpenData, client: Any, rows: list) -> bool:
    """Every datastore page into ``rows``; True when the portal's records were all read."""
    offset = 0
    for _ in range(api.max_pages):
        request = f"offset_{offset}"
        body, ok = load.try_land(request, lambda offset=offset: api.page(client, offset))
        if not ok or body is None:
            return False
        parsed = load.parse(
            request,
            body,
            lambda payload, request=request: _page(parse.parse_montreal_page(payload, request)),
            decode=_decode(request),
        )
        if parsed is None:
            return False
        page_rows, total, count = parsed
        rows.extend(page_rows)
        offset += count
        # The datastore's `total` decides when it is known (a portal may cap `limit` below the page size).
        if count == 0 or (offset >= total if total is not None else count < api.page_size):
            return True
    return False


@dg.asset(**ICS_SOURCE.asset(ICS, tables=ICS_LOAD, main=tables.event))
def ics_feeds(
    context: dg.AssetExecutionContext,
    config: LoadConfig,
    ics_feeds: IcsFeeds,
    warehouse: WarehouseResource,
    raw_store: RawStoreResource,
) -> dg.MaterializeResult:
    """Occurrences of the configured iCalendar feeds (`source = ics:<feed>`), recurrences expanded
    inside the run's days (EXDATE, RDATE, RECURRENCE-ID overrides, cancelled occurrences).

    A feed that cannot be fetched or read, or an event that cannot be expanded, is dead-lettered
    with the feed, UID and line or property; the other feeds and events load.
    """
    run = SourceRun(context, ICS_SOURCE, config=config, warehouse=warehouse, raw_store=raw_store,
                    provider=ics_feeds.provider)  # fmt: skip
    zone = ics_feeds.default_timezone
    for unit in run.units():
        with unit.open() as load:
            fetched = 0
            for feed in ics_feeds.feeds:
                name = feed["name"]
                request = f"feed_{name}"
                body, ok = load.try_land(request, lambda feed=feed: ics_feeds.fetch(feed))
                if not ok:
                    continue
                if body is None:
                    load.pending.append(f"{request} (not found)")
                    continue
                rows = load.parse(
                    request,
                    body,
                    lambda data, name=name, unit=unit: ics.parse_feed(
                        name, data, unit.start, unit.end, default_tz=zone
                    ),
                    decode=lambda data: data,
                )
                if rows is None:
                    continue  # an unreadable feed deletes nothing
                fetched += len(rows)
                load.load(tables.event, parse.add_dedupe_keys(rows), scope=[(f"ics:{name}",)])
            load.job.metadata["fetched"] = fetched
    return _result(run, tables.event.c.source.like("ics:%"))


@dg.asset(
    key=DUPLICATES,
    deps=list(SOURCE_ASSETS),
    group_name="events",
    partitions_def=PARTITIONS,
    backfill_policy=dg.BackfillPolicy.single_run(),
    owners=["team:data-platform"],
    kinds={"python", "sql"},
    metadata={
        "dagster/table_name": tables.event_duplicate.fullname,
        "dagster/column_schema": table_schema(tables.event_duplicate),
    },
)
def duplicates(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    """Cross-source duplicate candidates of the run's days (`event_duplicate`: pairs with score and
    rule, by normalised title + same local date + venue similarity) and one cluster per real-world
    event (`event_cluster`, canonical row chosen by source priority then earliest start).
    """
    wh = warehouse.get()
    start, end = window_of(context)
    e = tables.event
    wh.ensure_tables(tables.TABLES)
    rows = wh.fetch(sa.select(e).where(e.c.start_date >= start, e.c.start_date < end))
    pairs = dedupe.find_duplicates(rows)
    assignment = dedupe.clusters(pairs, rows)
    pair_rows = dedupe.duplicate_rows(pairs, assignment)
    window_d = sa.and_(tables.event_duplicate.c.start_date >= start, tables.event_duplicate.c.start_date < end)
    window_c = sa.and_(tables.event_cluster.c.start_date >= start, tables.event_cluster.c.start_date < end)
    pairs_load, clusters_load = DUPLICATES_LOAD
    pair_result = wh.load(pairs_load.table, pair_rows, mode=pairs_load.mode, window=window_d, run_id=context.run.run_id)
    cluster_result = wh.load(
        clusters_load.table,
        list(assignment.values()),
        mode=clusters_load.mode,
        window=window_c,
        run_id=context.run.run_id,
    )
    clusters_with_dupes = {c["cluster_id"] for c in assignment.values() if c["cluster_size"] > 1}
    by_rule: dict[str, int] = {}
    for p in pair_rows:
        by_rule[p["rule"]] = by_rule.get(p["rule"], 0) + 1
    return dg.MaterializeResult(
        metadata={
            "events": dg.MetadataValue.int(len(rows)),
            "duplicate_pairs": dg.MetadataValue.int(len(pair_rows)),
            "clusters_with_duplicates": dg.MetadataValue.int(len(clusters_with_dupes)),
            "pairs_by_rule": dg.MetadataValue.json(by_rule),
            "event_duplicate": dg.MetadataValue.json(pair_result.as_dict()),
            "event_cluster": dg.MetadataValue.json(cluster_result.as_dict()),
            "dagster/row_count": dg.MetadataValue.int(len(pair_rows)),
        }
    )
