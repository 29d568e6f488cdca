"""Builders for reusable asset checks that query the warehouse.

Each builder returns a Dagster ``AssetChecksDefinition`` bound to an asset. Checks are
partitioned like their asset: they look only at the rows of the partitions being materialised
(``window_column`` between the first and last day of the run's partition window), so a check on a
ten-year table costs what one day costs. Failing rows (a sample) go into the check metadata so
the UI shows *which* rows are wrong, not only that something is.

Key and reference checks are blocking by default: downstream assets wait for them.
"""

import datetime as dt
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import dagster as dg
import sqlalchemy as sa

from ingestion_platform.lib.ledger import jsonable
from ingestion_platform.lib.raw_store import DeadLetter, RawStore
from ingestion_platform.lib.warehouse import Warehouse

SAMPLE_ROWS = 20


@dataclass
class CheckOutcome:
    """What a check found: ``failures`` rows out of ``checked``; ``sample`` shows some of them."""

    passed: bool
    checked: int = 0
    failures: int = 0
    sample: list[dict[str, Any]] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DateWindow:
    """Local calendar days covered by a run: ``start`` inclusive, ``end`` exclusive."""

    start: dt.date
    end: dt.date

    @classmethod
    def from_context(cls, context: dg.AssetCheckExecutionContext) -> "DateWindow | None":
        if not (context.has_partition_key or context.has_partition_key_range):
            return None
        window = context.partition_time_window
        return cls(window.start.date(), window.end.date())

    def clause(self, column: sa.ColumnElement[Any]) -> sa.ColumnElement[bool]:
        return sa.and_(column >= self.start, column < self.end)


@dataclass(frozen=True)
class CheckInputs:
    """What a check function gets: the warehouse, the raw store and the run's day window."""

    warehouse: Warehouse
    raw_store: RawStore
    window: DateWindow | None

    def where(self, table: sa.Table, column: str | None) -> sa.ColumnElement[bool]:
        """Rows of ``table`` inside the window (all rows when unpartitioned or no column)."""
        if self.window is None or column is None:
            return sa.true()
        return self.window.clause(table.c[column])

    def days(self) -> list[dt.date]:
        if self.window is None:
            return []
        return [self.window.start + dt.timedelta(days=i) for i in range((self.window.end - self.window.start).days)]


CheckFn = Callable[[CheckInputs], CheckOutcome]


def warehouse_check(
    *,
    asset: dg.AssetKey | str | Sequence[str],
    name: str,
    description: str,
    fn: CheckFn,
    blocking: bool = False,
    severity: dg.AssetCheckSeverity = dg.AssetCheckSeverity.ERROR,
    partitions_def: dg.PartitionsDefinition | None = None,
) -> dg.AssetChecksDefinition:
    """The general builder: ``fn(inputs)`` decides; the rest is Dagster plumbing."""

    @dg.asset_check(
        asset=asset,
        name=name,
        description=description,
        blocking=blocking,
        partitions_def=partitions_def,
        required_resource_keys={"warehouse", "raw_store"},
    )
    def _check(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
        window = DateWindow.from_context(context) if partitions_def is not None else None
        outcome = fn(CheckInputs(context.resources.warehouse.get(), context.resources.raw_store.get(), window))
        metadata: dict[str, Any] = {
            "checked_rows": dg.MetadataValue.int(outcome.checked),
            "failing_rows": dg.MetadataValue.int(outcome.failures),
        }
        if window is not None:
            metadata["window"] = dg.MetadataValue.text(f"{window.start} .. {window.end} (exclusive)")
        if outcome.sample:
            metadata["sample"] = dg.MetadataValue.json(jsonable(outcome.sample[:SAMPLE_ROWS]))
        for key, value in outcome.details.items():
            metadata[key] = jsonable(value) if isinstance(value, (list, dict)) else value
        return dg.AssetCheckResult(passed=outcome.passed, severity=severity, metadata=metadata)

    return _check


def unique_key_check(
    *,
    asset: Any,
    table: sa.Table,
    key: Sequence[str],
    window_column: str | None = None,
    partitions_def: dg.PartitionsDefinition | None = None,
    blocking: bool = True,
    name: str | None = None,
    scope: sa.ColumnElement[bool] | None = None,
    scope_label: str | None = None,
) -> dg.AssetChecksDefinition:
    """No two rows share ``key`` and no key column is NULL (within the window, and ``scope`` when a
    table is shared by several assets, e.g. one source's rows of a unified table)."""

    def fn(inputs: CheckInputs) -> CheckOutcome:
        warehouse = inputs.warehouse
        where = inputs.where(table, window_column)
        if scope is not None:
            where = sa.and_(where, scope)
        cols = [table.c[k] for k in key]
        dupes = (
            sa.select(*cols, sa.func.count().label("copies")).where(where).group_by(*cols).having(sa.func.count() > 1)
        )
        nulls = sa.select(*cols).where(where).where(sa.or_(*[c.is_(None) for c in cols]))
        checked = warehouse.count(table, where)
        dupe_rows = warehouse.fetch(dupes.limit(SAMPLE_ROWS))
        null_rows = warehouse.fetch(nulls.limit(SAMPLE_ROWS))
        failures = _count_of(warehouse, dupes) + _count_of(warehouse, nulls)
        return CheckOutcome(
            passed=failures == 0,
            checked=checked,
            failures=failures,
            sample=dupe_rows + null_rows,
            details={"key": ", ".join(key)},
        )

    return warehouse_check(
        asset=asset,
        name=name or f"{table.name}_key_unique_not_null",
        description=f"{table.fullname}{' (' + scope_label + ')' if scope_label else ''}: "
        f"({', '.join(key)}) is unique and never NULL.",
        fn=fn,
        blocking=blocking,
        partitions_def=partitions_def,
    )


def reference_check(
    *,
    asset: Any,
    child: sa.Table,
    child_columns: Sequence[str],
    parent: sa.Table,
    parent_columns: Sequence[str] | None = None,
    window_column: str | None = None,
    partitions_def: dg.PartitionsDefinition | None = None,
    blocking: bool = True,
    name: str | None = None,
) -> dg.AssetChecksDefinition:
    """Every non-NULL reference in ``child`` exists in ``parent`` (an anti-join)."""
    parent_columns = list(parent_columns or child_columns)

    def fn(inputs: CheckInputs) -> CheckOutcome:
        warehouse = inputs.warehouse
        where = inputs.where(child, window_column)
        match = sa.and_(*[parent.c[p] == child.c[c] for c, p in zip(child_columns, parent_columns, strict=True)])
        present = sa.and_(*[child.c[c].is_not(None) for c in child_columns])
        orphans = sa.select(*[child.c[c] for c in child_columns]).where(where, present, ~sa.exists().where(match))
        count = _count_of(warehouse, orphans)
        return CheckOutcome(
            passed=count == 0,
            checked=warehouse.count(child, where),
            failures=int(count),
            sample=warehouse.fetch(orphans.distinct().limit(SAMPLE_ROWS)),
            details={"reference": f"{child.name}({', '.join(child_columns)}) -> {parent.name}"},
        )

    return warehouse_check(
        asset=asset,
        name=name or f"{child.name}_references_{parent.name}",
        description=(
            f"Every {child.fullname}({', '.join(child_columns)}) exists in "
            f"{parent.fullname}({', '.join(parent_columns)})."
        ),
        fn=fn,
        blocking=blocking,
        partitions_def=partitions_def,
    )


def _count_of(warehouse: Warehouse, stmt: sa.Select) -> int:
    return int(warehouse.fetch(sa.select(sa.func.count().label("n")).select_from(stmt.subquery()))[0]["n"])


RawKeys = Callable[[str, bytes, str], Iterable[tuple[Any, ...]]]
"""``(request, body, partition label) -> keys`` of the records of one raw payload; a key's first item is its day."""
RecordKeys = Callable[[DeadLetter], Iterable[tuple[Any, ...]]]
"""Keys of the record a record-level dead letter holds (its payload is the raw record)."""
RowKeys = Callable[[CheckInputs], set[tuple[Any, ...]]]
"""Keys of the table's rows in the check's window, shaped like the raw keys."""


def raw_reconciliation_check(
    *,
    asset: Any,
    source: str,
    name: str,
    description: str,
    raw_keys: RawKeys,
    row_keys: RowKeys,
    record_keys: RecordKeys | None = None,
    requests: Callable[[str], bool] = lambda request: True,
    scope_of: Callable[[str, str], tuple[Any, ...] | None] | None = None,
    refused_key: Callable[[dict[str, Any]], tuple[Any, ...] | None] | None = None,
    partitions_def: dg.PartitionsDefinition | None = None,
) -> dg.AssetChecksDefinition:
    """Every record of the stored raw payloads of the window's days is a row, read from the raw bytes
    independently of the parser.

    For each day of the window the latest stored fetch covering it is read (whatever range fetched
    it). Records dead-lettered (the whole payload, or one record) are not expected. With
    ``scope_of(request, label)`` (the key prefix a payload covers, e.g. a race), rows of the checked
    payloads' scopes that no raw record explains fail too (tables rebuilt from each payload).
    ``refused_key(row)`` gives the key of a row the table contract refused (its dead letter holds
    the row, dates as ISO text), so such rows are not expected either.
    """
    asset_key = dg.AssetKey.from_coercible(asset).to_user_string()

    def fn(inputs: CheckInputs) -> CheckOutcome:
        days = inputs.days()
        if not days:
            return CheckOutcome(passed=True, details={"raw_payloads": 0})
        letters = [
            x
            for x in inputs.raw_store.dead_letters_overlapping(source, days[0], days[-1])
            if x.context.get("asset_key") == asset_key
        ]
        dead_payloads = {(x.partition, x.request) for x in letters if x.origin == x.request}
        rejected: set[tuple[Any, ...]] = set()
        for letter in letters:
            if letter.origin.startswith("table "):  # a row the table contract refused
                row = json.loads(letter.payload() or b"null")
                key = refused_key(row) if refused_key is not None and isinstance(row, dict) else None
                if key is not None:
                    rejected.add(key)
            elif letter.origin != letter.request and record_keys is not None:
                rejected.update(record_keys(letter))
        expected: set[tuple[Any, ...]] = set()
        scopes: set[tuple[Any, ...]] = set()
        payloads = 0
        for label, served in inputs.raw_store.covering(source, days, asset_key).items():
            served_days = set(served)
            for request in inputs.raw_store.requests(source, label):
                if not requests(request) or (label, request) in dead_payloads:
                    continue
                payloads += 1
                body = inputs.raw_store.read(source, label, request).body
                try:
                    expected.update(k for k in raw_keys(request, body, label) if k[0] in served_days)
                except ValueError:  # not even JSON: its dead letter was resolved by hand
                    continue
                scope = scope_of(request, label) if scope_of is not None else None
                if scope is not None:
                    scopes.add(scope)
        expected -= rejected
        actual = row_keys(inputs)
        missing = sorted(expected - actual, key=str)
        size = len(next(iter(scopes))) if scopes else 0
        extra = sorted((k for k in actual - expected - rejected if k[:size] in scopes), key=str) if scopes else []
        sample = [{"missing_row": list(map(str, k))} for k in missing[:SAMPLE_ROWS]]
        sample += [{"row_not_in_raw": list(map(str, k))} for k in extra[:SAMPLE_ROWS]]
        return CheckOutcome(
            passed=not missing and not extra,
            checked=len(expected),
            failures=len(missing) + len(extra),
            sample=sample,
            details={"raw_payloads": payloads, "rows_in_window": len(actual), "rejected_records": len(rejected)},
        )

    return warehouse_check(
        asset=asset,
        name=name,
        description=description,
        fn=fn,
        partitions_def=partitions_def,
    )


def dead_letter_check(
    *,
    asset: Any,
    source: str,
    partitions_def: dg.PartitionsDefinition | None = None,
    name: str = "no_dead_letters",
) -> dg.AssetChecksDefinition:
    """Warns while payloads of this asset's partitions sit unresolved in the dead letters."""
    asset_key = dg.AssetKey.from_coercible(asset).to_user_string()

    def fn(inputs: CheckInputs) -> CheckOutcome:
        days = set(inputs.days())
        letters = [
            letter
            for letter in inputs.raw_store.dead_letters(source)
            if letter.context.get("asset_key") == asset_key and (not days or _days(letter) & days)
        ]
        sample = [{"partition": x.partition, "request": x.request, "error": x.error[:500]} for x in letters]
        return CheckOutcome(passed=not letters, checked=len(letters), failures=len(letters), sample=sample)

    return warehouse_check(
        asset=asset,
        name=name,
        description=(
            f"No unresolved dead letters for {asset_key}. Fix the parser, then re-materialise the "
            "partition with reprocess_from_raw: true to replay them."
        ),
        fn=fn,
        severity=dg.AssetCheckSeverity.WARN,
        partitions_def=partitions_def,
    )


def _days(letter: DeadLetter) -> set[dt.date]:
    span = letter.days()
    if span is None:
        return set()
    return {span[0] + dt.timedelta(days=i) for i in range((span[1] - span[0]).days + 1)}
