"""Asset checks of the events tables, scoped to the run's days and, for the source assets, to the source.

Blocking: (source, source_id) unique and non-null. Errors: end before start, coordinates out of
range, stored raw records missing from the table (reconciliation: the raw payloads are read here
without the parsers, see ``raw_keys``). Warnings: cross-source duplicate pairs, dead letters.
"""

import datetime as dt
from collections.abc import Callable

import dagster as dg
import sqlalchemy as sa

from ingestion_platform.defs.events import raw_keys, tables
from ingestion_platform.defs.events.sources import DUPLICATES, EVENTBRITE, ICS, MONTREAL, PARTITIONS
from ingestion_platform.lib.checks import (
    Check,
    CheckFn,
    CheckInputs,
    CheckOutcome,
    dead_letter_check,
    raw_reconciliation_check,
    unique_key_check,
    warehouse_check,
)

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


def _row_keys(source: sa.ColumnElement[bool]) -> Callable[[CheckInputs], set[tuple]]:
    def fn(inputs: CheckInputs) -> set[tuple]:
        rows = inputs.warehouse.fetch(
            sa.select(E.c.start_date, E.c.source, E.c.source_id).where(_where(inputs, source))
        )
        return {(r["start_date"], r["source"], r["source_id"]) for r in rows}

    return fn


def _ics_row_keys(inputs: CheckInputs) -> set[tuple]:
    rows = inputs.warehouse.fetch(
        sa.select(E.c.start_date, E.c.source, E.c.extra).where(_where(inputs, SOURCES[ICS][1]), E.c.series_id.is_(None))
    )
    return {(r["start_date"], r["source"], (r["extra"] or {}).get("uid")) for r in rows}


def _refused(row: dict) -> tuple:
    return (dt.date.fromisoformat(row["start_date"]), row["source"], row["source_id"])


def _ics_refused(row: dict) -> tuple:
    return (dt.date.fromisoformat(row["start_date"]), row["source"], (row.get("extra") or {}).get("uid"))


_RECONCILE = {
    EVENTBRITE: (
        raw_keys.eventbrite_keys,
        raw_keys.eventbrite_letter_keys,
        _row_keys(SOURCES[EVENTBRITE][1]),
        _refused,
    ),
    MONTREAL: (raw_keys.montreal_keys, raw_keys.montreal_letter_keys, _row_keys(SOURCES[MONTREAL][1]), _refused),
    ICS: (raw_keys.ics_keys, raw_keys.ics_letter_keys, _ics_row_keys, _ics_refused),
}


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


def _checks() -> list[Check]:
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
            raw_reconciliation_check(
                asset=asset,
                source=name,
                name="reconciles_with_raw",
                description=f"Every {name} record of the stored raw payloads of the window's days that starts in the "
                "window is a row (records read from the raw bytes, not by the parser; dead letters excepted"
                + ("; recurring series are expanded by the parser only and are not counted)" if asset == ICS else ")"),
                raw_keys=_RECONCILE[asset][0],
                record_keys=_RECONCILE[asset][1],
                row_keys=_RECONCILE[asset][2],
                refused_key=_RECONCILE[asset][3],
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
