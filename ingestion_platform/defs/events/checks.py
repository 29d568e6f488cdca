"""Asset checks of the events tables, scoped to the run's days and, for the source assets, to the source.

Blocking: (source, source_id) unique and non-null. Errors: end before start, coordinates out of
range, stored raw records missing from the table (reconciliation). Warnings: cross-source
duplicate pairs, dead letters.
"""

import datetime as dt
import os
import re
from collections.abc import Callable

import dagster as dg
import sqlalchemy as sa

from ingestion_platform.defs.events import ics, parse, tables
from ingestion_platform.defs.events.assets import DUPLICATES, EVENTBRITE, ICS, MONTREAL, PARTITIONS
from ingestion_platform.lib.checks import (
    CheckFn,
    CheckInputs,
    CheckOutcome,
    dead_letter_check,
    partition_label,
    unique_key_check,
    warehouse_check,
)
from ingestion_platform.lib.errors import RecordError

E = tables.event
SOURCES: dict[dg.AssetKey, tuple[str, sa.ColumnElement[bool]]] = {
    EVENTBRITE: ("eventbrite", E.c.source == "eventbrite"),
    MONTREAL: ("montreal", E.c.source == "montreal"),
    ICS: ("ics", E.c.source.like("ics:%")),
}


def _where(inputs: CheckInputs, source: sa.ColumnElement[bool]) -> sa.ColumnElement[bool]:
    return sa.and_(inputs.where(E, "start_date"), source)


def _rows_failing(condition: Callable[[], sa.ColumnElement[bool]], source: sa.ColumnElement[bool]) -> CheckFn:
    def fn(inputs: CheckInputs) -> CheckOutcome:
        where = _where(inputs, source)
        bad = sa.and_(where, condition())
        sample = inputs.warehouse.fetch(
            sa.select(E.c.source, E.c.source_id, E.c.title, E.c.starts_at, E.c.ends_at, E.c.latitude, E.c.longitude)
            .where(bad)
            .limit(20)
        )
        failures = inputs.warehouse.count(E, bad)
        return CheckOutcome(
            passed=failures == 0, checked=inputs.warehouse.count(E, where), failures=failures, sample=sample
        )

    return fn


def _end_before_start() -> sa.ColumnElement[bool]:
    return sa.and_(E.c.ends_at.is_not(None), E.c.starts_at.is_not(None), E.c.ends_at < E.c.starts_at)


def _bad_coordinates() -> sa.ColumnElement[bool]:
    return sa.or_(
        E.c.latitude < -90, E.c.latitude > 90, E.c.longitude < -180, E.c.longitude > 180,
        sa.and_(E.c.latitude.is_(None), E.c.longitude.is_not(None)),
        sa.and_(E.c.latitude.is_not(None), E.c.longitude.is_(None)),
    )  # fmt: skip


_ORG_PAGE = re.compile(r"^org_(.+)_page_\d+$")


def _raw_keys(source_name: str, inputs: CheckInputs) -> tuple[set[tuple[str, str]], int]:
    """(source, source_id) of every record of the run's stored raw payloads that starts in the window."""
    window = inputs.window
    assert window is not None
    label = partition_label(window.start, window.end - dt.timedelta(days=1))
    store = inputs.raw_store
    dead = {x.request for x in store.dead_letters(source_name, label)}
    keys: set[tuple[str, str]] = set()
    payloads = 0
    for request in store.requests(source_name, label):
        if request in dead:
            continue
        body = store.read(source_name, label, request).body
        try:
            if source_name == "ics":
                zone = os.environ.get("ICS_DEFAULT_TZ") or "America/Toronto"  # as the IcsFeeds resource
                rows = ics.parse_feed(
                    request.removeprefix("feed_"), body, window.start, window.end, default_tz=zone
                ).rows
            elif source_name == "montreal":
                rows = parse.parse_montreal_page(parse.decode_payload(body, request), request)[0]
            else:
                match = _ORG_PAGE.match(request)
                org = match.group(1) if match else ""
                rows = parse.parse_eventbrite_page(parse.decode_payload(body, request), org, request)[0]
        except RecordError:
            continue
        payloads += 1
        keys |= {(r["source"], r["source_id"]) for r in rows if window.start <= r["start_date"] < window.end}
    return keys, payloads


def _reconcile(source_name: str, source: sa.ColumnElement[bool]) -> CheckFn:
    def fn(inputs: CheckInputs) -> CheckOutcome:
        expected, payloads = _raw_keys(source_name, inputs)
        table = {
            (r["source"], r["source_id"])
            for r in inputs.warehouse.fetch(sa.select(E.c.source, E.c.source_id).where(_where(inputs, source)))
        }
        missing = sorted(expected - table)
        return CheckOutcome(
            passed=not missing,
            checked=len(expected),
            failures=len(missing),
            sample=[{"source": s, "source_id": i} for s, i in missing[:20]],
            details={"raw_payloads": payloads, "rows_in_table": len(table)},
        )

    return fn


def _duplicate_pairs(inputs: CheckInputs) -> CheckOutcome:
    d = tables.event_duplicate
    where = inputs.where(d, "start_date")
    sample = inputs.warehouse.fetch(
        sa.select(d.c.source_a, d.c.source_id_a, d.c.source_b, d.c.source_id_b, d.c.rule, d.c.score, d.c.cluster_id)
        .where(where)
        .order_by(d.c.score.desc())
        .limit(20)
    )
    count = inputs.warehouse.count(d, where)
    return CheckOutcome(passed=count == 0, checked=inputs.warehouse.count(E, inputs.where(E, "start_date")),
                        failures=count, sample=sample)  # fmt: skip


def _checks() -> list[dg.AssetChecksDefinition]:
    out = []
    for asset, (name, source) in SOURCES.items():
        out += [
            unique_key_check(
                asset=asset,
                table=E,
                key=["source", "source_id"],
                window_column="start_date",
                partitions_def=PARTITIONS,
                name="event_key_unique_not_null",
                scope=source,
                scope_label=f"rows of {name}",
            ),
            warehouse_check(
                asset=asset,
                name="end_not_before_start",
                description=f"events.event rows of {name}: ends_at is not before starts_at.",
                fn=_rows_failing(_end_before_start, source),
                partitions_def=PARTITIONS,
            ),
            warehouse_check(
                asset=asset,
                name="coordinates_in_range",
                description=f"{name} rows: latitude in [-90, 90], longitude in [-180, 180], or both NULL.",
                fn=_rows_failing(_bad_coordinates, source),
                partitions_def=PARTITIONS,
            ),
            warehouse_check(
                asset=asset,
                name="reconciles_with_raw",
                description=f"Every {name} record of the run's stored raw payloads that starts in the window is a row.",
                fn=_reconcile(name, source),
                partitions_def=PARTITIONS,
            ),
            dead_letter_check(asset=asset, source=name, partitions_def=PARTITIONS),
        ]
    out.append(
        warehouse_check(
            asset=DUPLICATES,
            name="cross_source_duplicates",
            description="Lists the cross-source duplicate candidate pairs of the window (see events.event_cluster).",
            fn=_duplicate_pairs,
            severity=dg.AssetCheckSeverity.WARN,
            partitions_def=PARTITIONS,
        )
    )
    return out


events_checks = _checks()


@dg.definitions
def events_check_definitions() -> dg.Definitions:
    return dg.Definitions(asset_checks=events_checks)
