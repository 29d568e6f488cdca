"""Builders for reusable asset checks that query the warehouse.

Each builder returns a :class:`Check` bound to an asset. A source asset declares its checks as
check specs and evaluates them inside its own step, after its load (:func:`evaluate_checks`, called
by ``lib.ingest.SourceRun.finish``): one step per asset instead of one process per check, each
check still reported on its own in the UI. Checks are partitioned like their asset and evaluated
once per day of the run, on that day's rows (``window_column`` within the day), so each partition of
a range run shows its own result and a check on a ten-year table costs what one day costs. Failing
rows (a sample) go into the check metadata so the UI shows *which* rows are wrong, not only that
something is.

Key and reference checks are blocking by default: a failure fails the asset's step after every
result is reported, and the downstream assets of the run do not run.
"""

import array
import datetime as dt
import itertools
import json
import operator
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

import dagster as dg
import numpy as np
import sqlalchemy as sa
from dagster._core.definitions.asset_checks.asset_check_evaluation import (
    AssetCheckEvaluationTargetMaterializationData,
)

from ingestion_platform.lib.ledger import ingestion_job, jsonable
from ingestion_platform.lib.raw_store import DeadLetter, RawStore
from ingestion_platform.lib.warehouse import Warehouse

SAMPLE_ROWS = 20
CHECK_WORKERS = 2  # checks evaluated at once inside a step, on PostgreSQL (see evaluate_checks)
T = TypeVar("T")


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
    """What a check function gets: the warehouse, the raw store and the day window it checks.

    ``run`` is the window of the whole evaluation when a check is evaluated day by day over a range
    run; ``memo(key, fn)`` keeps what ``fn`` computes once for that whole window (raw payloads read,
    ledger jobs) so that the per-day evaluations only slice it.
    """

    warehouse: Warehouse
    raw_store: RawStore
    window: DateWindow | None
    run: DateWindow | None = None
    _memo: dict[Any, Any] = field(default_factory=dict, compare=False, repr=False)

    def memo(self, key: Any, fn: Callable[[], T]) -> T:
        if key not in self._memo:
            self._memo[key] = fn()
        return self._memo[key]

    def whole_run(self) -> "CheckInputs":
        """The same inputs over the evaluation's whole window (itself when not evaluated day by day)."""
        if self.run is None or self.run == self.window:
            return self
        return CheckInputs(self.warehouse, self.raw_store, self.run, self.run, self._memo)

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


@dataclass(frozen=True)
class Check:
    """One warehouse check of one asset: ``fn(inputs)`` decides, per day of the run.

    A source asset evaluates its checks inside its own step (``check_specs`` on the asset, see
    ``lib.source.Source.asset`` and :func:`evaluate_checks`): no extra process per check, results
    reported one by one in the UI and, for a partitioned check, one result per partition of the run.
    ``definition()`` gives the same check as a separate ``@asset_check`` for an asset outside a source.
    """

    asset: dg.AssetKey
    name: str
    description: str
    fn: CheckFn
    blocking: bool = False
    severity: dg.AssetCheckSeverity = dg.AssetCheckSeverity.ERROR
    partitions_def: dg.PartitionsDefinition | None = None

    @property
    def key(self) -> dg.AssetCheckKey:
        return dg.AssetCheckKey(self.asset, self.name)

    def spec(self) -> dg.AssetCheckSpec:
        return dg.AssetCheckSpec(
            self.name,
            asset=self.asset,
            description=self.description,
            blocking=self.blocking,
            partitions_def=self.partitions_def,
        )

    def evaluate(self, inputs: CheckInputs) -> tuple[bool, dict[str, Any]]:
        """``(passed, metadata)`` of the check on ``inputs``."""
        outcome = self.fn(inputs)
        metadata: dict[str, Any] = {
            "checked_rows": dg.MetadataValue.int(outcome.checked),
            "failing_rows": dg.MetadataValue.int(outcome.failures),
        }
        if inputs.window is not None:
            metadata["window"] = dg.MetadataValue.text(f"{inputs.window.start} .. {inputs.window.end} (exclusive)")
        if outcome.sample:
            metadata["sample"] = dg.MetadataValue.json(jsonable(outcome.sample[:SAMPLE_ROWS]))
        for key, value in outcome.details.items():
            metadata[key] = jsonable(value) if isinstance(value, (list, dict)) else value
        return outcome.passed, metadata

    def definition(self) -> dg.AssetChecksDefinition:
        """The check as its own ``@asset_check`` (its own step), over the run's whole window."""

        @dg.asset_check(
            asset=self.asset,
            name=self.name,
            description=self.description,
            blocking=self.blocking,
            partitions_def=self.partitions_def,
            required_resource_keys={"warehouse", "raw_store"},
        )
        def _check(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
            window = DateWindow.from_context(context) if self.partitions_def is not None else None
            inputs = CheckInputs(context.resources.warehouse.get(), context.resources.raw_store.get(), window)
            passed, metadata = self.evaluate(inputs)
            return dg.AssetCheckResult(passed=passed, severity=self.severity, metadata=metadata)

        return _check


def warehouse_check(
    *,
    asset: dg.AssetKey | str | Sequence[str],
    name: str,
    description: str,
    fn: CheckFn,
    blocking: bool = False,
    severity: dg.AssetCheckSeverity = dg.AssetCheckSeverity.ERROR,
    partitions_def: dg.PartitionsDefinition | None = None,
) -> Check:
    """The general builder: ``fn(inputs)`` decides; the rest is Dagster plumbing."""
    return Check(dg.AssetKey.from_coercible(asset), name, description, fn, blocking, severity, partitions_def)


def evaluate_checks(
    context: dg.AssetExecutionContext,
    checks: Sequence[Check],
    *,
    warehouse: Warehouse,
    raw_store: RawStore,
    days: Sequence[dt.date],
    partition_keys: Sequence[str] | None = None,
) -> Iterator[dg.AssetCheckEvaluation | dg.Output]:
    """Evaluate the selected ``checks`` of the executing asset inside its step.

    A partitioned check gets one evaluation per day of the run (``partition_keys[i]`` is the key of
    ``days[i]``), aimed at that partition's materialisation, so a range run reports each day's own
    result. A blocking check that fails with ERROR severity fails the step once every evaluation is
    reported (Dagster then skips the downstream assets of the run). Yield this after the asset's
    ``MaterializeResult``.
    """
    selected = context.selected_asset_check_keys
    keys = list(partition_keys) if partition_keys is not None else [d.isoformat() for d in days]
    targets: dict[tuple[dg.AssetKey, str | None], AssetCheckEvaluationTargetMaterializationData | None] = {}

    def target(asset: dg.AssetKey, partition: str | None) -> AssetCheckEvaluationTargetMaterializationData | None:
        if (asset, partition) not in targets:
            records = context.instance.fetch_materializations(
                dg.AssetRecordsFilter(asset_key=asset, asset_partitions=[partition] if partition else None), limit=1
            ).records
            targets[(asset, partition)] = (
                AssetCheckEvaluationTargetMaterializationData(
                    storage_id=records[0].storage_id, run_id=records[0].run_id, timestamp=records[0].timestamp
                )
                if records
                else None
            )
        return targets[(asset, partition)]

    memo: dict[Any, Any] = {}
    run = DateWindow(min(days), max(days) + dt.timedelta(days=1)) if days else None
    chosen = [check for check in checks if check.key in selected]

    def evaluate(check: Check) -> list[tuple[str | None, bool, dict[str, Any]]]:
        if check.partitions_def is None:
            windows: list[tuple[str | None, DateWindow | None]] = [(None, None)]
        else:
            windows = [(key, DateWindow(day, day + dt.timedelta(days=1))) for key, day in zip(keys, days, strict=True)]
        found = []
        for partition, window in windows:
            inputs = CheckInputs(warehouse, raw_store, window, run if window is not None else None, memo)
            found.append((partition, *check.evaluate(inputs)))
        return found

    # on PostgreSQL the checks run CHECK_WORKERS at a time (a query's time on the server, a raw
    # reconciliation's in Python, overlap); reported in their declared order either way
    workers = CHECK_WORKERS if warehouse.dialect == "postgresql" and len(chosen) > 1 else 1
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="checks") as pool:
        futures = [pool.submit(evaluate, check) for check in chosen] if workers > 1 else []
        for index, check in enumerate(chosen):
            evaluations = futures[index].result() if futures else evaluate(check)
            for partition, passed, metadata in evaluations:
                yield dg.AssetCheckEvaluation(
                    asset_key=check.asset,
                    check_name=check.name,
                    passed=passed,
                    metadata=metadata,
                    severity=check.severity,
                    blocking=check.blocking,
                    partition=partition,
                    target_materialization_data=target(check.asset, partition),
                )
            yield dg.Output(None, output_name=context.assets_def.get_output_name_for_asset_check_key(check.key))


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
) -> Check:
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
) -> Check:
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
RowKeys = Callable[[CheckInputs], Iterable[tuple[Any, ...]]]
"""Keys of the table's rows in the check's window, shaped like the raw keys (may be streamed)."""


def _key_hash(key: tuple[Any, ...]) -> int:
    """A 64-bit hash of a key (raw and row keys are compared within one process). ``hash(-1) == hash(-2)``
    in Python, so ``(d, -1)`` and ``(d, -2)`` would share one: a key holding -1 is hashed by its ``repr``."""
    return hash(key) if -1 not in key else hash(repr(key))


class _KeyHashes:
    """A set of keys whose first item is their day, kept as sorted 64-bit hashes per day: 8 bytes a key
    (a set of 500,000 tuples holds about 75 MB). Two distinct keys of a day share a hash with probability
    about n^2 / 2^65 (10^-8 for a million keys)."""

    def __init__(self, keys: Iterable[tuple[Any, ...]] = ()) -> None:
        self._by_day: dict[Any, array.array] = {}
        self.extend(keys)

    def extend(self, keys: Iterable[tuple[Any, ...]]) -> None:
        """Add ``keys``, a block at a time (its runs of one day appended at once)."""
        source = iter(keys)
        while block := list(itertools.islice(source, 10_000)):
            pairs = zip(map(_first, block), map(_key_hash, block), strict=True)
            for day, run in itertools.groupby(pairs, key=_first):
                part = self._by_day.get(day)
                if part is None:
                    part = self._by_day[day] = array.array("q")
                part.extend(map(_second, run))

    def of(self, days: Iterable[Any]) -> np.ndarray:
        """The distinct hashes of the keys of ``days``, sorted (one copy, sorted in place)."""
        parts = [np.frombuffer(self._by_day[d], dtype=np.int64) for d in days if d in self._by_day]
        if not parts:
            return np.empty(0, dtype=np.int64)
        found = parts[0].copy() if len(parts) == 1 else np.concatenate(parts)
        found.sort()
        if len(found) > 1:
            keep = np.empty(len(found), dtype=bool)
            keep[0] = True
            np.not_equal(found[1:], found[:-1], out=keep[1:])
            if not keep.all():
                found = found[keep]
        return found


def _without(these: np.ndarray, others: np.ndarray) -> np.ndarray:
    """The hashes of ``these`` not in ``others`` (both sorted and distinct)."""
    if not len(others) or not len(these):
        return these
    at = np.searchsorted(others, these)
    np.minimum(at, len(others) - 1, out=at)
    return these[others[at] != these]


_first, _second = operator.itemgetter(0), operator.itemgetter(1)


def _originals(keys: Iterable[tuple[Any, ...]], hashes: np.ndarray) -> list[tuple[Any, ...]]:
    """The first keys (by ``str``, at most ``SAMPLE_ROWS``) among ``keys`` whose hash is in ``hashes``."""
    wanted = set(hashes.tolist())
    found = {k for k in keys if _key_hash(k) in wanted}
    return sorted(found, key=str)[:SAMPLE_ROWS]


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
    current: Callable[[dict[str, dict[str, Any]]], Iterable[str]] | None = None,
    scope_of: Callable[[str, str], tuple[Any, ...] | None] | None = None,
    refused_key: Callable[[dict[str, Any]], tuple[Any, ...] | None] | None = None,
    partitions_def: dg.PartitionsDefinition | None = None,
) -> Check:
    """Every record of the stored raw payloads of the window's days is a row, read from the raw bytes
    independently of the parser.

    For each day of the window the latest stored fetch covering it is read (whatever range fetched
    it). Records dead-lettered (the whole payload, or one record) are not expected. With
    ``scope_of(request, label)`` (the key prefix a payload covers, e.g. a race), rows of the checked
    payloads' scopes that no raw record explains fail too (tables rebuilt from each payload).
    ``refused_key(row)`` gives the key of a row the table contract refused (its dead letter holds
    the row, dates as ISO text), so such rows are not expected either. ``current(stored)`` picks, among
    a label's stored requests (``{request: metadata}``), those of its latest fetch, when a later fetch
    of the same label may leave payloads of an earlier one under other names (paged by the last id).
    """
    asset_key = dg.AssetKey.from_coercible(asset).to_user_string()

    def payloads_of(inputs: CheckInputs, dead: set[tuple[str, str]]) -> Iterator[tuple[str, str, set[dt.date]]]:
        """``(label, request, days it serves)`` of the stored payloads checked for the inputs' window."""
        for label, served in inputs.raw_store.covering(source, inputs.days(), asset_key).items():
            stored = inputs.raw_store.stored(source, label)
            for request in current(stored) if current is not None else stored:
                if requests(request) and (label, request) not in dead:
                    yield label, request, set(served)

    def raw_of(inputs: CheckInputs, dead: set[tuple[str, str]]) -> Iterator[tuple[Any, ...]]:
        """The keys of the raw records of the window's days, read again from the stored payloads."""
        for label, request, served_days in payloads_of(inputs, dead):
            try:
                found = raw_keys(request, inputs.raw_store.read(source, label, request).body, label)
                yield from (k for k in found if k[0] in served_days)
            except ValueError:  # not even JSON: its dead letter was resolved by hand
                continue

    def state_of(inputs: CheckInputs) -> dict[str, Any]:
        """Raw records, rejects and row keys over the inputs' whole window (read once per evaluation).

        The keys of the raw records and of the rows are kept as 64-bit hashes by day (``_KeyHashes``), so
        the memory a check needs stays flat in the number of rows; the few keys a failure shows are read
        again."""
        days = inputs.days()
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
        scopes: set[tuple[Any, ...]] = set()
        payloads: dict[dt.date, int] = {}
        for label, request, served_days in payloads_of(inputs, dead_payloads):
            for day in served_days:
                payloads[day] = payloads.get(day, 0) + 1
            scope = scope_of(request, label) if scope_of is not None else None
            if scope is not None:
                scopes.add(scope)
        expected = _KeyHashes(raw_of(inputs, dead_payloads))
        size = len(next(iter(scopes))) if scopes else 0
        actual, scoped = _KeyHashes(), _KeyHashes()  # scoped: rows inside a checked payload's scope
        if scopes:
            keys = list(row_keys(inputs))  # tables rebuilt per payload (races, feeds): a day's rows at most
            actual.extend(keys)
            scoped.extend(k for k in keys if k[:size] in scopes)
        else:
            actual.extend(row_keys(inputs))
        return {"expected": expected, "rejected": _KeyHashes(rejected), "scopes": scopes, "payloads": payloads,
                "actual": actual, "scoped": scoped, "dead": dead_payloads}  # fmt: skip

    def fn(inputs: CheckInputs) -> CheckOutcome:
        days = inputs.days()
        if not days:
            return CheckOutcome(passed=True, details={"raw_payloads": 0})
        whole = inputs.whole_run()
        state = inputs.memo(("reconcile", source, asset_key, name), lambda: state_of(whole))
        rejected = state["rejected"].of(days)
        expected = _without(state["expected"].of(days), rejected)
        actual = state["actual"].of(days)
        missing = _without(expected, actual)
        extra = _without(_without(state["scoped"].of(days), expected), rejected)
        sample = []
        if len(missing):  # the keys behind the hashes: the raw records read again (a failure only)
            shown = _originals(raw_of(inputs, state["dead"]), missing)
            sample += [{"missing_row": list(map(str, k))} for k in shown]
        if len(extra):
            shown = _originals((k for k in row_keys(inputs) if k[0] in set(days)), extra)
            sample += [{"row_not_in_raw": list(map(str, k))} for k in shown]
        return CheckOutcome(
            passed=not len(missing) and not len(extra),
            checked=len(expected),
            failures=len(missing) + len(extra),
            sample=sample,
            details={
                "raw_payloads": sum(state["payloads"].get(d, 0) for d in days),
                "rows_in_window": len(actual),
                "rejected_records": len(rejected),
            },
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
) -> Check:
    """Warns while payloads of this asset's partitions sit unresolved in the dead letters."""
    asset_key = dg.AssetKey.from_coercible(asset).to_user_string()

    def fn(inputs: CheckInputs) -> CheckOutcome:
        days = set(inputs.days())
        stored = inputs.memo(("dead_letters", source), lambda: inputs.raw_store.dead_letters(source))
        letters = [
            letter
            for letter in stored
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


def _day_jobs(inputs: CheckInputs, asset_key: str) -> list[tuple[dt.date, dict[str, Any] | None]]:
    """The latest ledger job of ``asset_key`` for each day of the window (None when never loaded)."""

    def latest() -> dict[str, dict[str, Any]]:
        days = [d.isoformat() for d in inputs.whole_run().days()]
        j = ingestion_job
        rows = inputs.warehouse.fetch(
            sa.select(j).where(j.c.asset_key == asset_key, j.c.partition_key.in_(days)).order_by(j.c.id)
        )
        return {r["partition_key"]: r for r in rows}  # the last (latest) job of each day wins

    by_day = inputs.memo(("ledger", asset_key), latest)
    return [(day, by_day.get(day.isoformat())) for day in inputs.days()]


def _rows_of(job: dict[str, Any], table: str) -> int:
    counts = ((job.get("metadata") or {}).get("tables") or {}).get(table) or {}
    return int(counts.get("created", 0)) + int(counts.get("updated", 0)) + int(counts.get("unchanged", 0))


def load_checks(
    *,
    asset: dg.AssetKey,
    main: str,
    partitions_def: dg.PartitionsDefinition,
    empty_day_warns: bool,
    sparse_days: bool = False,
) -> list[Check]:
    """The checks every source asset gets, read from its ledger jobs of the window's days.

    ``source_loaded`` (blocking): the source answered and what it sent could be loaded. It fails for a
    day whose job failed, recorded a failed request that matters (a configured feed or organization
    refused, missing or unreadable: ``PartitionLoad.fail``), or rejected records and loaded no row
    of ``main``. One bad record among good ones does not fail it (``no_dead_letters`` warns). With
    ``sparse_days`` (a source whose days hold a handful of records from one fetch, e.g. carbon entries by
    day of activity) a day whose only records were rejected does not fail it either.
    ``day_has_rows`` (warning, when ``empty_day_warns``): the day has rows in ``main``; a day with
    nothing published yet is materialised with 0 rows and this warning, until a later run fills it.
    """
    key = asset.to_user_string()

    def loaded(inputs: CheckInputs) -> CheckOutcome:
        bad = []
        checked = 0
        for day, job in _day_jobs(inputs, key):
            if job is None:
                continue
            checked += 1
            meta = job.get("metadata") or {}
            # a payload of a whole fetch window that failed is listed on each of its days
            rows = _rows_of(job, main)
            rejected = max(int(job.get("rejected") or 0), len(meta.get("dead_letters") or []))
            reason = None
            if job["status"] == "failed":
                reason = job.get("message") or "the load failed"
            elif meta.get("failures"):
                first = meta["failures"][0]
                reason = f"{first['request']}: {first['error']}"
            elif rejected and rows == 0 and not sparse_days:
                reason = f"nothing loaded: {rejected} record(s) or payload(s) rejected"
            if reason is not None:
                bad.append({"day": day.isoformat(), "ledger_job_id": job["id"], "reason": str(reason)[:500],
                            "failures": meta.get("failures", [])[:5], "rejected": rejected, "rows": rows})  # fmt: skip
        return CheckOutcome(passed=not bad, checked=checked, failures=len(bad), sample=bad)

    def has_rows(inputs: CheckInputs) -> CheckOutcome:
        empty = []
        checked = 0
        for day, job in _day_jobs(inputs, key):
            if job is None:
                continue
            checked += 1
            if _rows_of(job, main) == 0:
                pending = (job.get("metadata") or {}).get("pending", [])
                empty.append({"day": day.isoformat(), "ledger_job_id": job["id"], "pending": pending[:10]})
        return CheckOutcome(passed=not empty, checked=checked, failures=len(empty), sample=empty)

    checks = [
        Check(
            asset,
            "source_loaded",
            f"The source answered and its records loaded into {main}: no configured request failed for good, "
            "and a day with rejected records still has rows (one bad record among good ones only warns).",
            loaded,
            blocking=True,
            partitions_def=partitions_def,
        )
    ]
    if empty_day_warns:
        checks.append(
            Check(
                asset,
                "day_has_rows",
                f"The day has rows in {main}. A day with nothing published yet is materialised with 0 rows and "
                "fails this warning until a later run fills it.",
                has_rows,
                severity=dg.AssetCheckSeverity.WARN,
                partitions_def=partitions_def,
            )
        )
    return checks
