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
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import dagster as dg
import sqlalchemy as sa

from ingestion_platform.defs.events import dedupe, ics, parse, tables
from ingestion_platform.defs.events.checks import events_checks
from ingestion_platform.defs.events.resources import EventbriteApi, IcsFeeds, MontrealOpenData
from ingestion_platform.defs.events.sources import (  # noqa: F401  (re-exported for callers)
    DUPLICATES,
    DUPLICATES_LOAD,
    EVENTBRITE,
    EVENTBRITE_LOAD,
    EVENTBRITE_SOURCE,
    HORIZON_DAYS,
    ICS,
    ICS_LOAD,
    ICS_SOURCE,
    IMPORT_STATS,
    MONTREAL,
    MONTREAL_LOAD,
    MONTREAL_SOURCE,
    PARTITIONS,
    SOURCE_ASSETS,
    TIMEZONE,
)
from ingestion_platform.lib.checks import evaluate_checks
from ingestion_platform.lib.errors import Parsed, Reject
from ingestion_platform.lib.ingest import LoadConfig, PartitionLoad, SourceRun, partition_result, table_schema
from ingestion_platform.lib.raw_store import RawStoreResource
from ingestion_platform.lib.warehouse import LINEAGE_COLUMNS, WarehouseResource


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


def _preview(source: sa.ColumnElement[bool]) -> Callable[[Sequence[dt.date]], sa.Select]:
    e = tables.event
    return lambda days: sa.select(e).where(source, e.c.start_date.in_(days)).order_by(e.c.starts_at).limit(10)


@dg.asset(**EVENTBRITE_SOURCE.asset(EVENTBRITE, tables=EVENTBRITE_LOAD, main=tables.event, checks=events_checks))
def eventbrite(
    context: dg.AssetExecutionContext,
    config: LoadConfig,
    eventbrite_api: EventbriteApi,
    warehouse: WarehouseResource,
    raw_store: RawStoreResource,
) -> Iterator[Any]:
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
    yield from run.finish(_preview(tables.event.c.source == "eventbrite"))


def _eventbrite_organization(load: PartitionLoad, api: EventbriteApi, client: Any, org: str, rows: list) -> bool:
    """Every page of one organization into ``rows``; False when the fetch stopped short."""
    params: dict[str, Any] = {}
    for page in range(1, api.max_pages + 1):
        request = f"org_{org}_page_{page}"
        body, ok = load.try_land(request, lambda params=params: api.events_page(client, org, params))
        if not ok or body is None:
            # a configured organization that refuses us (401/403), fails for good or does not exist
            load.fail(request, f"organization {org}: " + ("not found (404)" if ok else "request failed for good"))
            return False
        parsed = load.parse(
            request,
            body,
            lambda payload, request=request: _page(parse.parse_eventbrite_page(payload, org, request)),
            decode=_decode(request),
        )
        if parsed is None:
            load.fail(request, f"organization {org}: page {page} could not be read")
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


@dg.asset(**MONTREAL_SOURCE.asset(MONTREAL, tables=MONTREAL_LOAD, main=tables.event, checks=events_checks))
def montreal(
    context: dg.AssetExecutionContext,
    config: LoadConfig,
    montreal_open_data: MontrealOpenData,
    warehouse: WarehouseResource,
    raw_store: RawStoreResource,
) -> Iterator[Any]:
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
    yield from run.finish(_preview(tables.event.c.source == "montreal"))


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


@dg.asset(**ICS_SOURCE.asset(ICS, tables=ICS_LOAD, main=tables.event, checks=events_checks))
def ics_feeds(
    context: dg.AssetExecutionContext,
    config: LoadConfig,
    ics_feeds: IcsFeeds,
    warehouse: WarehouseResource,
    raw_store: RawStoreResource,
) -> Iterator[Any]:
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
                if not ok or body is None:  # a configured feed that fails for good or is not there (404)
                    load.fail(request, f"feed {name}: " + ("not found (404)" if ok else "request failed for good"))
                    continue
                rows = load.parse(
                    request,
                    body,
                    lambda data, name=name, unit=unit: ics.parse_feed(
                        name, data, unit.start, unit.end, default_tz=zone
                    ),
                    decode=lambda data: data,
                )
                if rows is None:  # an unreadable feed deletes nothing
                    load.fail(request, f"feed {name}: could not be read")
                    continue
                fetched += len(rows)
                load.load(tables.event, parse.add_dedupe_keys(rows), scope=[(f"ics:{name}",)])
            load.job.metadata["fetched"] = fetched
    yield from run.finish(_preview(tables.event.c.source.like("ics:%")))


@dg.asset(
    key=DUPLICATES,
    deps=list(SOURCE_ASSETS),
    group_name="events",
    partitions_def=PARTITIONS,
    backfill_policy=dg.BackfillPolicy.single_run(),
    owners=["team:data-platform"],
    kinds={"python", "sql"},
    check_specs=[c.spec() for c in events_checks if c.asset == DUPLICATES],
    metadata={
        "dagster/table_name": tables.event_duplicate.fullname,
        "dagster/column_schema": table_schema(tables.event_duplicate),
    },
)
def duplicates(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, raw_store: RawStoreResource
) -> Iterator[Any]:
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
    pairs_load, clusters_load = DUPLICATES_LOAD
    day_column = pairs_load.day_column
    window_d = sa.and_(tables.event_duplicate.c.start_date >= start, tables.event_duplicate.c.start_date < end)
    window_c = sa.and_(tables.event_cluster.c.start_date >= start, tables.event_cluster.c.start_date < end)
    run_id = context.run.run_id
    pair_result = wh.load(pairs_load.table, pair_rows, mode=pairs_load.mode, window=window_d, run_id=run_id,
                          count_by=day_column)  # fmt: skip
    cluster_rows = list(assignment.values())
    cluster_result = wh.load(clusters_load.table, cluster_rows, mode=clusters_load.mode, window=window_c,
                             run_id=run_id, count_by=day_column)  # fmt: skip
    days = [start + dt.timedelta(days=i) for i in range((end - start).days)]
    keys = list(context.partition_keys)
    per_day = {}
    for day in days:
        day_pairs = [p for p in pair_rows if p[day_column] == day]
        day_clusters = [c for c in cluster_rows if c[day_column] == day]
        by_rule: dict[str, int] = {}
        for pair in day_pairs:
            by_rule[pair["rule"]] = by_rule.get(pair["rule"], 0) + 1
        empty = {"received": 0, "created": 0, "updated": 0, "unchanged": 0, "deleted": 0}
        per_day[day] = {
            "events": dg.MetadataValue.int(sum(1 for r in rows if r["start_date"] == day)),
            "duplicate_pairs": dg.MetadataValue.int(len(day_pairs)),
            "clusters_with_duplicates": dg.MetadataValue.int(
                len({c["cluster_id"] for c in day_clusters if c["cluster_size"] > 1})
            ),
            "pairs_by_rule": dg.MetadataValue.json(by_rule),
            "event_duplicate": dg.MetadataValue.json(_figures(pair_result.by.get(day)) or empty),
            "event_cluster": dg.MetadataValue.json(_figures(cluster_result.by.get(day)) or empty),
            "dagster/row_count": dg.MetadataValue.int(len(day_pairs)),
        }
    yield partition_result(context, dict(zip(keys, (per_day[d] for d in days), strict=True)))
    yield from evaluate_checks(context, [c for c in events_checks if c.asset == DUPLICATES], warehouse=wh,
                               raw_store=raw_store.get(), days=days, partition_keys=keys)  # fmt: skip


def _figures(result: Any) -> dict[str, int] | None:
    if result is None:
        return None
    return {k: getattr(result, k) for k in ("received", "created", "updated", "unchanged", "deleted")}
