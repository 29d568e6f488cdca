"""Events assets: Eventbrite, Montréal open data and iCalendar feeds -> ``events.event``.

A partition is a local day (America/Toronto) and holds the events (occurrences) whose
``start_date`` is that day. Every asset uses ``BackfillPolicy.single_run()``: a range of days is
one run and one fetch of each source, whose rows are filtered to the range. The raw payloads of a
run are stored under the run's range (``2025-03-01_2025-03-31``, or the day for one day).

Per source and run: one ledger job; raw payloads stored before parsing; a payload that cannot
be read is dead-lettered whole; a record that cannot be read is dead-lettered alone with the raw
record (the others load); a value that cannot be read is dropped with a warning in the ledger
and the Dagster metadata. ``reprocess_from_raw`` rebuilds from the stored payloads.

Deletions: Montréal and iCalendar rows of the range that the source no longer lists are deleted
(replace_window, only after a complete fetch). Eventbrite upcoming events that vanish are first
recorded in ``event_absence`` and set to ``cancelled`` after ``EVENTBRITE_GRACE_HOURS``.
"""

import datetime as dt
import json
import os
from collections.abc import Callable, Iterable
from typing import Any

import dagster as dg
import sqlalchemy as sa

from ingestion_platform.defs.events import dedupe, ics, parse, tables
from ingestion_platform.defs.events.resources import EventbriteApi, IcsFeeds, MontrealOpenData
from ingestion_platform.lib.checks import partition_label
from ingestion_platform.lib.http import HttpError
from ingestion_platform.lib.ingest import MissingRaw, PartitionLoad, load_metadata, table_schema
from ingestion_platform.lib.raw_store import RawStore, RawStoreResource
from ingestion_platform.lib.warehouse import Warehouse, WarehouseResource

TIMEZONE = "America/Toronto"
HORIZON_DAYS = int(os.environ.get("EVENTS_HORIZON_DAYS") or 60)
PARTITIONS = dg.DailyPartitionsDefinition(
    start_date=os.environ.get("EVENTS_START_DATE") or "2024-01-01",
    timezone=TIMEZONE,
    end_offset=HORIZON_DAYS,  # upcoming days can be refreshed before they happen
)
EVENTBRITE = dg.AssetKey(["events", "eventbrite"])
MONTREAL = dg.AssetKey(["events", "montreal"])
ICS = dg.AssetKey(["events", "ics"])
DUPLICATES = dg.AssetKey(["events", "duplicates"])
IMPORT_STATS = dg.AssetKey(["events", "import_stats"])
SOURCE_ASSETS = (EVENTBRITE, MONTREAL, ICS)
MAX_WARNINGS = 200


class EventsLoadConfig(dg.Config):
    """Run configuration shared by the events source assets."""

    reprocess_from_raw: bool = False
    """Rebuild from the stored raw payloads of this range instead of calling the source."""


def _common(description_table: sa.Table = tables.event) -> dict[str, Any]:
    return {
        "group_name": "events",
        "partitions_def": PARTITIONS,
        "backfill_policy": dg.BackfillPolicy.single_run(),
        "owners": ["team:data-platform"],
        "kinds": {"python", "sql"},
        "metadata": {
            "dagster/table_name": description_table.fullname,
            "dagster/column_schema": table_schema(description_table),
        },
    }


def window_of(context: dg.AssetExecutionContext) -> tuple[dt.date, dt.date]:
    """The run's days as ``[start, end)`` local dates."""
    window = context.partition_time_window
    return window.start.date(), window.end.date()


def _in_window(rows: Iterable[dict[str, Any]], start: dt.date, end: dt.date) -> list[dict[str, Any]]:
    return [r for r in rows if r.get("start_date") is not None and start <= r["start_date"] < end]


def _source_window(source: sa.ColumnElement[bool], start: dt.date, end: dt.date) -> sa.ColumnElement[bool]:
    e = tables.event
    return sa.and_(source, e.c.start_date >= start, e.c.start_date < end)


class _Run:
    """One source asset run: the ledger job, dead letters per payload and per record, warnings."""

    def __init__(self, load: PartitionLoad) -> None:
        self.load = load
        self.warnings: list[str] = []
        self.record_letters: set[str] = set()

    def warn(self, message: str) -> None:
        if len(self.warnings) < MAX_WARNINGS:
            self.warnings.append(message)
        self.load.job.metadata["warnings"] = len(self.warnings)

    def record_rejects(self, request: str, rejects: Iterable[parse.EventReject]) -> None:
        """Dropped records are dead-lettered one by one (with the raw record); the rest are warnings."""
        for index, reject in enumerate(rejects):
            if not reject.dropped:
                self.warn(reject.message)
                continue
            name = f"{request}__{reject.error.record or f'record_{index}'}"  # e.g. offset_0__records[12]
            payload = json.dumps(reject.record, ensure_ascii=False, default=str).encode()
            self.load.reject(name, reject.error, payload=payload)
            self.record_letters.add(name)

    def resolve_records(self, requests: Iterable[str]) -> None:
        """Record dead letters of pages read again now without that record failing are resolved."""
        store: RawStore = self.load.raw_store
        prefixes = tuple(f"{r}__" for r in requests)
        for letter in store.dead_letters(self.load.source, self.load.partition):
            name = letter.request
            if (
                name.startswith(prefixes)
                and name not in self.record_letters
                and store.resolve(self.load.source, self.load.partition, name)
            ):
                self.load.resolved.append(name)

    def finish(self) -> None:
        if self.warnings:
            self.load.job.metadata["warning_sample"] = self.warnings[:20]


def _open(context: dg.AssetExecutionContext, source: str, asset: dg.AssetKey, config: EventsLoadConfig, **kw: Any):
    start, end = window_of(context)
    return PartitionLoad.open(
        source=source,
        asset_key=asset.to_user_string(),
        partition=partition_label(start, end - dt.timedelta(days=1)),
        run_id=context.run.run_id,
        reprocess_from_raw=config.reprocess_from_raw,
        config={"reprocess_from_raw": config.reprocess_from_raw, "window": [str(start), str(end)]},
        target=tables.TABLES,
        **kw,
    )


def _land(load: PartitionLoad, request: str, fetch: Callable[[], Any]) -> tuple[bytes | None, bool]:
    """``(body, ok)``: ok is False when the fetch failed for good (dead-lettered) or raw is missing."""
    try:
        return load.land(request, fetch), True
    except (MissingRaw, HttpError) as exc:
        load.reject(request, exc)
        return None, False


def _metadata(loads: list[PartitionLoad], run: _Run, wh: Warehouse, source: sa.ColumnElement[bool], start, end):
    e = tables.event
    meta = load_metadata(loads, wh, sa.select(e).where(_source_window(source, start, end)).limit(10))
    meta["events_in_window"] = dg.MetadataValue.int(wh.count(e, _source_window(source, start, end)))
    meta["warnings"] = dg.MetadataValue.int(len(run.warnings))
    if run.warnings:
        meta["warning_sample"] = dg.MetadataValue.json(run.warnings[:20])
    return meta


@dg.asset(key=EVENTBRITE, **_common())
def eventbrite(
    context: dg.AssetExecutionContext,
    config: EventsLoadConfig,
    eventbrite_api: EventbriteApi,
    warehouse: WarehouseResource,
    raw_store: RawStoreResource,
) -> dg.MaterializeResult:
    """Events of the configured Eventbrite organizations (`source = eventbrite`), with venue,
    organizer, category and ticket availability expanded; continuation/page paging.

    An upcoming event that no longer comes back is recorded in `event_absence` and set to
    `cancelled` once `EVENTBRITE_GRACE_HOURS` have passed; it is never deleted.
    """
    wh, store = warehouse.get(), raw_store.get()
    start, end = window_of(context)
    source = tables.event.c.source == "eventbrite"
    with _open(context, "eventbrite", EVENTBRITE, config, warehouse=wh, raw_store=store,
               provider=eventbrite_api.provider) as load:  # fmt: skip
        run = _Run(load)
        rows: list[dict[str, Any]] = []
        complete = True
        pages: list[str] = []
        with eventbrite_api.client() as client:
            for org in eventbrite_api.organization_ids:
                params: dict[str, Any] = {}
                for page in range(1, eventbrite_api.max_pages + 1):
                    request = f"org_{org}_page_{page}"
                    body, ok = _land(
                        load, request, lambda org=org, params=params: eventbrite_api.events_page(client, org, params)
                    )
                    if not ok or body is None:
                        if ok:
                            run.warn(f"organization {org}: not found (404)")
                        complete = False
                        break
                    parsed = load.parse(
                        request,
                        body,
                        lambda payload, org=org, request=request: parse.parse_eventbrite_page(payload, org, request),
                        decode=lambda b, request=request: parse.decode_payload(b, request),
                    )
                    if parsed is None:
                        complete = False
                        break
                    page_rows, rejects, pagination = parsed
                    pages.append(request)
                    run.record_rejects(request, rejects)
                    rows.extend(page_rows)
                    params = pagination.next_params or {}
                    if not params:
                        break
                else:
                    run.warn(f"organization {org}: stopped after {eventbrite_api.max_pages} pages")
        run.resolve_records(pages)
        kept = _in_window(rows, start, end)
        load.load(tables.event, kept, run_id=context.run.run_id)
        if complete and not config.reprocess_from_raw:
            _track_absences(load, run, kept, start, end, eventbrite_api.grace_hours, context.run.run_id)
        elif not complete:
            load.pending.append("absence tracking skipped: the fetch was incomplete")
        load.job.metadata["fetched"] = len(rows)
        run.finish()
    return dg.MaterializeResult(metadata=_metadata([load], run, wh, source, start, end))


def _track_absences(
    load: PartitionLoad, run: _Run, rows: list[dict], start: dt.date, end: dt.date, grace_h: float, run_id: str
) -> None:
    """Upcoming Eventbrite events of the window missing from a complete fetch: grace, then cancelled."""
    e, a = tables.event, tables.event_absence
    wh = load.warehouse
    now = dt.datetime.now(dt.UTC)
    seen = {r["source_id"] for r in rows}
    upcoming = wh.fetch(
        sa.select(e.c.source, e.c.source_id, e.c.starts_at).where(
            _source_window(e.c.source == "eventbrite", start, end), e.c.starts_at > now, e.c.status != "cancelled"
        )
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
    with wh.engine.begin() as conn:
        if back:
            conn.execute(sa.delete(a).where(a.c.source == "eventbrite", a.c.source_id.in_(back)))
        if absences:
            load.results[a.fullname] = wh.load(a, absences, run_id=run_id, connection=conn)
        if to_cancel:
            updated = conn.execute(
                sa.update(e)
                .where(e.c.source == "eventbrite", e.c.source_id.in_(to_cancel))
                .values(status="cancelled", _ingested_at=now, _run_id=run_id)
            ).rowcount
            load.results[e.fullname].updated += updated
            load.job.counts.updated += updated
    if absences:
        run.warn(f"{len(absences)} upcoming events missing from the API ({len(to_cancel)} now marked cancelled)")
    load.job.metadata["absent"] = len(absences)
    load.job.metadata["cancelled_after_grace"] = to_cancel[:50]


@dg.asset(key=MONTREAL, **_common())
def montreal(
    context: dg.AssetExecutionContext,
    config: EventsLoadConfig,
    montreal_open_data: MontrealOpenData,
    warehouse: WarehouseResource,
    raw_store: RawStoreResource,
) -> dg.MaterializeResult:
    """Public events of the Ville de Montréal open data portal (`source = montreal`), read from the
    CKAN datastore page by page; `source_id` is the numeric id at the end of `url_fiche`.
    """
    wh, store = warehouse.get(), raw_store.get()
    start, end = window_of(context)
    source = tables.event.c.source == "montreal"
    api = montreal_open_data
    with _open(context, "montreal", MONTREAL, config, warehouse=wh, raw_store=store, provider=api.provider) as load:
        run = _Run(load)
        rows: list[dict[str, Any]] = []
        complete = False
        pages: list[str] = []
        offset = 0
        with api.client() as client:
            for _ in range(api.max_pages):
                request = f"offset_{offset}"
                body, ok = _land(load, request, lambda offset=offset: api.page(client, offset))
                if not ok or body is None:
                    break
                parsed = load.parse(
                    request,
                    body,
                    lambda payload, request=request: parse.parse_montreal_page(payload, request),
                    decode=lambda b, request=request: parse.decode_payload(b, request),
                )
                if parsed is None:
                    break
                page_rows, rejects, total = parsed
                pages.append(request)
                run.record_rejects(request, rejects)
                rows.extend(page_rows)
                count = len(page_rows) + sum(1 for r in rejects if r.dropped)  # records on this page
                offset += count
                # The datastore's `total` decides when it is known (a portal may cap `limit` below the page size).
                done = offset >= total if total is not None else count < api.page_size
                if count == 0 or done:
                    complete = True
                    break
        run.resolve_records(pages)
        kept = _in_window(rows, start, end)
        if complete:
            load.load(tables.event, kept, mode="replace_window", window=_source_window(source, start, end),
                      run_id=context.run.run_id)  # fmt: skip
        else:
            load.load(tables.event, kept, run_id=context.run.run_id)
            load.pending.append("fetch incomplete: rows missing from the portal were not deleted")
        load.job.metadata["fetched"] = len(rows)
        run.finish()
    return dg.MaterializeResult(metadata=_metadata([load], run, wh, source, start, end))


@dg.asset(key=ICS, **_common())
def ics_feeds(
    context: dg.AssetExecutionContext,
    config: EventsLoadConfig,
    ics_feeds: IcsFeeds,
    warehouse: WarehouseResource,
    raw_store: RawStoreResource,
) -> dg.MaterializeResult:
    """Occurrences of the configured iCalendar feeds (`source = ics:<feed>`), recurrences expanded
    inside the run's days (EXDATE, RDATE, RECURRENCE-ID overrides, cancelled occurrences).

    A feed that cannot be fetched or read, or an event that cannot be expanded, is dead-lettered
    with the feed, UID and line or property; the other feeds and events load.
    """
    wh, store = warehouse.get(), raw_store.get()
    start, end = window_of(context)
    e = tables.event
    source = e.c.source.like("ics:%")
    with _open(context, "ics", ICS, config, warehouse=wh, raw_store=store, provider=ics_feeds.provider) as load:
        run = _Run(load)
        fetched = 0
        for feed in ics_feeds.feeds:
            name = feed["name"]
            request = f"feed_{name}"
            body, ok = _land(load, request, lambda feed=feed: ics_feeds.fetch(feed))
            if not ok:
                continue
            if body is None:
                load.pending.append(f"{request} (not found)")
                continue
            result = ics.parse_feed(name, body, start, end, default_tz=ics_feeds.default_timezone)
            dropped = []  # event- or feed-level: the event (or feed) produced no rows
            for reject in result.rejects:
                if reject.where.startswith("property") or reject.where == "encoding":
                    run.warn(reject.message)  # the event still loaded
                else:
                    dropped.append(reject)
            for index, reject in enumerate(dropped):
                letter = f"{request}__{reject.uid or reject.where}_{index}"
                load.reject(letter, reject.as_record_error(), payload=body)
                run.record_letters.add(letter)
            if not dropped and load.raw_store.resolve(load.source, load.partition, request):
                load.resolved.append(request)
            run.resolve_records([request])
            rows = _in_window(parse.add_dedupe_keys(result.rows), start, end)
            fetched += len(result.rows)
            feed_window = _source_window(e.c.source == f"ics:{name}", start, end)
            if any(r.where == "feed" for r in dropped):
                continue  # an unreadable feed deletes nothing
            load.load(e, rows, mode="replace_window", window=feed_window, run_id=context.run.run_id)
        load.job.metadata["fetched"] = fetched
        run.finish()
    return dg.MaterializeResult(metadata=_metadata([load], run, wh, source, start, end))


@dg.asset(key=DUPLICATES, deps=list(SOURCE_ASSETS), **_common(tables.event_duplicate))
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
    pair_result = wh.load(
        tables.event_duplicate, pair_rows, mode="replace_window", window=window_d, run_id=context.run.run_id
    )
    cluster_result = wh.load(
        tables.event_cluster,
        list(assignment.values()),
        mode="replace_window",
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
