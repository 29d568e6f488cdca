"""The load driver: fetch -> raw -> parse -> validate -> load -> ledger -> metadata, the same for every source.

``SourceRun`` drives one asset run over the run's days; each fetch unit of the run is a
``PartitionLoad`` (one day for ``fetch_unit="day"`` sources, the whole window for ``"window"``
sources, see ``lib.source``)::

    run = SourceRun(context, SOURCE, config=config, warehouse=warehouse, raw_store=raw_store,
                    provider=api.provider)
    for unit in run.units():
        with unit.open() as load:                          # one ledger job per day of the unit
            body = load.land("R1C1_participants", fetch)   # raw store first (or replay from it)
            rows = load.parse("R1C1_participants", body, parse_fn)  # payload errors -> dead letter;
                                                           # Parsed(value, rejects): rejects filed
            load.load(table, rows)                         # validated, split per day, counted
    return run.result(preview)                             # Dagster metadata of the run

Promises kept here, once for all sources:

* Raw first: every payload is stored before it is parsed; ``reprocess_from_raw`` replays the latest
  stored fetch covering each day, whatever range fetched it.
* One bad value rejects one record: parsers return ``lib.errors.Parsed`` with their rejects, and rows
  are validated against the table contract (``lib.contract``) before the load. A rejected record is
  a dead letter filed under its day (under the fetch window when its day is unknown), with the raw
  record, and counted ``rejected`` in that day's ledger job.
* Per day: ledger jobs, loads and counts are per day whatever the fetch unit; a dead letter is
  resolved by any later clean read of its request in a run that covers its day.
* Deletes only after a complete fetch: a ``replace_window`` table deletes the rows of the day the
  source no longer has only when the fetch was complete and no rejected record of that table lacks
  a key; rows of rejected records are never deleted.
* The ledger tells the truth after a crash: counts are written as each load commits; a job left
  ``processing`` by a dead run is closed ``failed`` when the next run of the asset and day starts.
"""

from __future__ import annotations

import datetime as dt
import gc
import json
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import dagster as dg
import sqlalchemy as sa

from ingestion_platform.lib.contract import TableContract
from ingestion_platform.lib.errors import Parsed, RecordError, Reject
from ingestion_platform.lib.http import Fetched, HttpError, InvalidPayload
from ingestion_platform.lib.ledger import JobHandle, Ledger, jsonable
from ingestion_platform.lib.raw_store import DeadLetter, RawStore, label_days, window_label
from ingestion_platform.lib.warehouse import LoadResult, Warehouse

if TYPE_CHECKING:
    from ingestion_platform.lib.source import Source

T = TypeVar("T")

#: errors that mean "this payload/record is bad", as opposed to a platform failure
PAYLOAD_ERRORS = (RecordError, json.JSONDecodeError, UnicodeDecodeError, InvalidPayload)
MAX_WARNINGS = 200
_ALIVE = {
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
}


class MissingRaw(LookupError):
    """``reprocess_from_raw`` asked for a payload that was never stored."""


class LoadConfig(dg.Config):
    """Run configuration of every source asset."""

    reprocess_from_raw: bool = False
    """Rebuild the tables from the stored raw payloads instead of calling the source."""


@dataclass
class PartitionLoad:
    """One fetch unit of one asset: a day, or a window of days served by one fetch."""

    source: str
    asset_key: str
    partition: str
    days: list[dt.date]
    warehouse: Warehouse
    raw_store: RawStore
    jobs: dict[dt.date, JobHandle]
    contracts: dict[str, TableContract]
    reprocess_from_raw: bool = False
    run_id: str | None = None
    results: dict[str, LoadResult] = field(default_factory=dict)
    day_results: dict[dt.date, dict[str, LoadResult]] = field(default_factory=dict)
    dead_letters: list[dict[str, str]] = field(default_factory=list)
    resolved: list[str] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)
    failures: list[dict[str, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    warning_count: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _rejected_requests: set[str] = field(default_factory=set, repr=False)
    _filed: set[tuple[str, str]] = field(default_factory=set, repr=False)
    _rejects: list[Reject] = field(default_factory=list, repr=False)
    _letters: dict[str, list[DeadLetter]] | None = field(default=None, repr=False)

    @classmethod
    @contextmanager
    def open(
        cls,
        *,
        source: str,
        asset_key: str,
        partition: str,
        run_id: str | None,
        warehouse: Warehouse,
        raw_store: RawStore,
        provider: str | None = None,
        target: Iterable[sa.Table | TableContract] = (),
        reprocess_from_raw: bool = False,
        config: Mapping[str, Any] | None = None,
        days: Sequence[dt.date] | None = None,
        is_alive: Callable[[str], bool] | None = None,
    ) -> Iterator[PartitionLoad]:
        """Open the ledger jobs (one per day) of a unit whose raw partition is ``partition``."""
        contracts = [t if isinstance(t, TableContract) else TableContract(t) for t in target]
        unit_days = list(days) if days else _days_of(partition)
        warehouse.ensure_tables([c.table for c in contracts])
        ledger = Ledger(warehouse)
        metadata: dict[str, Any] = {"config": dict(config or {}), "reprocess_from_raw": reprocess_from_raw}
        if len(unit_days) > 1 or partition != unit_days[0].isoformat():
            metadata["fetch_window"] = [unit_days[0].isoformat(), unit_days[-1].isoformat(), partition]
        with ExitStack() as stack:
            jobs = {
                day: stack.enter_context(
                    ledger.job(
                        source=source,
                        asset_key=asset_key,
                        partition_key=day.isoformat(),
                        run_id=run_id,
                        provider="raw store replay" if reprocess_from_raw else provider,
                        target=",".join(c.name for c in contracts),
                        metadata=metadata,
                        is_alive=is_alive,
                    )
                )
                for day in unit_days
            }
            load = cls(
                source=source,
                asset_key=asset_key,
                partition=partition,
                days=unit_days,
                warehouse=warehouse,
                raw_store=raw_store,
                jobs=jobs,
                contracts={c.name: c for c in contracts},
                reprocess_from_raw=reprocess_from_raw,
                run_id=run_id,
            )
            yield load
            load._close()

    # -- days and jobs --------------------------------------------------------------------------------
    @property
    def job(self) -> JobHandle:
        """The job of the unit's first day (the only one for a one-day unit)."""
        return self.jobs[self.days[0]]

    @property
    def day(self) -> dt.date:
        return self.days[0]

    def _job_of(self, day: dt.date | None) -> JobHandle:
        return self.jobs.get(day, self.job) if day is not None else self.job

    def _close(self) -> None:
        for day, job in self.jobs.items():
            if self.pending:
                job.metadata["pending"] = self.pending[:200]
            failed = [f for f in self.failures if f.get("day") in (None, day.isoformat())]
            if failed:
                job.metadata["failures"] = [{k: v for k, v in f.items() if k != "day"} for f in failed[:100]]
                job.errors.extend(f"{f['request']}: {f['error']}" for f in failed[:10])
            letters = [d for d in self.dead_letters if d.get("day") in (None, day.isoformat())]
            if letters:
                job.metadata["dead_letters"] = [{k: v for k, v in d.items() if k != "day"} for d in letters[:100]]
                if not job.errors:  # a letter of the whole window concerns every day of it
                    job.errors.append(letters[0]["error"])
            if self.warning_count:
                job.metadata["warnings"] = self.warning_count
                job.metadata["warning_sample"] = self.warnings[:20]

    # -- raw ------------------------------------------------------------------------------------------
    def land(self, request: str, fetch: Callable[[], Fetched | None]) -> bytes | None:
        """Return the payload of ``request``: fetched and stored raw, or replayed from raw.

        ``fetch`` returns ``None`` when the source has nothing (404/204): nothing is stored. A
        body that stayed invalid after retries is stored raw and dead-lettered; ``None`` is
        returned so the caller skips it.
        """
        if self.reprocess_from_raw:
            if not self.raw_store.exists(self.source, self.partition, request):
                raise MissingRaw(f"no raw payload stored for {self.source}/{self.partition}/{request}")
            return self.raw_store.read(self.source, self.partition, request).body
        try:
            fetched = fetch()
        except InvalidPayload as exc:
            self.raw_store.write(
                self.source, self.partition, request, exc.fetched.body, exc.fetched.meta(), asset_key=self.asset_key
            )
            self.reject(request, exc, payload=exc.fetched.body)
            return None
        if fetched is None:
            return None
        self.raw_store.write(
            self.source, self.partition, request, fetched.body, fetched.meta(), asset_key=self.asset_key
        )
        return fetched.body

    def try_land(
        self, request: str, fetch: Callable[[], Fetched | None], *, key: Mapping[str, Any] | None = None
    ) -> tuple[bytes | None, bool]:
        """``land``, with a request that failed for good (or is missing from raw) dead-lettered:
        ``(body, ok)``; ``ok`` is False when the request failed (the fetch is then incomplete)."""
        try:
            return self.land(request, fetch), request not in self._rejected_requests
        except (MissingRaw, HttpError) as exc:
            self.reject(request, exc, key=key)
            return None, False

    # -- parse ----------------------------------------------------------------------------------------
    def parse(
        self,
        request: str,
        body: bytes,
        fn: Callable[[Any], T | Parsed[T]],
        *,
        decode: Callable[[bytes], Any] = json.loads,
        key: Mapping[str, Any] | None = None,
    ) -> T | None:
        """``fn(decode(body))``; a bad payload is dead-lettered and ``None`` returned.

        When ``fn`` returns ``Parsed(value, rejects)``, the rejects are filed (dropped records as dead
        letters, the others as warnings) and ``value`` is returned. A clean read resolves the dead
        letters of ``request`` (and of its records not rejected again) for the unit's days. ``key``
        names what the payload covers (e.g. a race): a rejected payload spares those rows from
        deletion instead of making the whole load partial.
        """
        try:
            result = fn(decode(body))
        except PAYLOAD_ERRORS as exc:
            if isinstance(exc, RecordError):
                exc = exc.with_request(f"{self.source}/{self.partition}/{request}")
            self.reject(request, exc, payload=body, key=key)
            return None
        if isinstance(result, Parsed):
            self.file_rejects(request, result.rejects)
            result = result.value
        self._resolve(request)
        return result

    def file_rejects(self, request: str, rejects: Iterable[Reject]) -> None:
        """File the rejects a parser returned for ``request`` (records outside the unit's days are
        left to the run that covers their day)."""
        for index, reject in enumerate(rejects):
            if reject.day is not None and reject.day not in self.jobs:
                continue
            if reject.error.request is None:  # name the payload, as for a payload that fails whole
                reject.error = reject.error.with_request(f"{self.source}/{self.partition}/{request}")
            if not reject.dropped:
                self.warn(reject.message)
                continue
            name = reject.name or f"{request}__{reject.error.record or f'record_{index}'}"
            payload = reject.record
            if payload is not None and not isinstance(payload, bytes):
                payload = json.dumps(payload, ensure_ascii=False, default=str).encode()
            self.reject(name, reject.error, payload=payload, day=reject.day, origin=request, filed=reject)

    def warn(self, message: str) -> None:
        with self._lock:
            self.warning_count += 1
            if len(self.warnings) < MAX_WARNINGS:
                self.warnings.append(message)

    def reject(
        self,
        request: str,
        error: BaseException | str,
        *,
        payload: bytes | None = None,
        day: dt.date | None = None,
        origin: str | None = None,
        key: Mapping[str, Any] | None = None,
        filed: Reject | None = None,
    ) -> None:
        """Dead-letter ``request`` (under ``day``, else the unit) and count it rejected in the ledger.

        ``filed`` is the parser's or the contract's reject (its key and table spare rows from
        deletion); without it, the reject concerns every table of the load, sparing ``key``.
        """
        message = f"{type(error).__name__}: {error}" if isinstance(error, BaseException) else error
        day = day if day in self.jobs else None
        label = day.isoformat() if day is not None else self.partition
        job = self._job_of(day)
        context: dict[str, Any] = {"asset_key": self.asset_key, "ledger_job_id": job.job_id}
        if origin is not None and origin.startswith(_TABLE_ORIGIN) and filed is not None and filed.key:
            context["key"] = jsonable(filed.key)  # resolved when a valid row with this key loads
        self.raw_store.dead_letter(self.source, label, request, error, payload=payload, context=context, origin=origin)
        with self._lock:
            self._rejected_requests.add(request)
            self._filed.add((label, request))
            self._rejects.append(filed or Reject(RecordError(message), key=key, day=day))
            entry = {"request": request, "error": message}
            if day is not None and len(self.days) > 1:
                entry["day"] = day.isoformat()
            self.dead_letters.append(entry)
            job.rejected(f"{request}: {message}")

    def fail(self, request: str, error: BaseException | str, *, day: dt.date | None = None) -> None:
        """The source answered but ``request`` could not be loaded at all, and it matters: a configured
        feed or account that is refused, missing or unreadable. Recorded in the day's ledger job
        (``failures``); the asset's blocking ``source_loaded`` check then fails (see ``lib.source``).
        The request is dead-lettered too when it was landed or rejected; this only says it counts."""
        message = f"{type(error).__name__}: {error}" if isinstance(error, BaseException) else error
        entry = {"request": request, "error": message}
        if day is not None and day in self.jobs and len(self.days) > 1:
            entry["day"] = day.isoformat()
        with self._lock:
            self.failures.append(entry)

    def mark_pending(self, request: str) -> None:
        """``request`` had nothing to load yet (not published); a later run fills it."""
        if request not in self._rejected_requests:
            self.pending.append(request)

    def _index(self) -> dict[str, list[DeadLetter]]:
        """The unresolved dead letters of this asset for the unit's days, by the request they came from."""
        if self._letters is None:
            self._letters = {}
            first, last = self.days[0], self.days[-1]
            for letter in self.raw_store.dead_letters_overlapping(self.source, first, last):
                if letter.context.get("asset_key") == self.asset_key:
                    self._letters.setdefault(letter.origin, []).append(letter)
        return self._letters

    def _resolve(self, request: str) -> None:
        """Dead letters of this asset, for the unit's days, that came from ``request`` and were not
        filed again by this read: resolved."""
        for letter in self._index().pop(request, []):
            if (letter.partition, letter.request) in self._filed:
                continue
            if self.raw_store.resolve(self.source, letter.partition, letter.request):
                self.resolved.append(letter.request)

    # -- load -----------------------------------------------------------------------------------------
    def load(
        self,
        table: sa.Table,
        rows: Iterable[Mapping[str, Any]],
        *,
        scope: Iterable[Sequence[Any]] | None = None,
        complete: bool = True,
        run_id: str | None = None,
    ) -> LoadResult:
        """Validate ``rows`` against the table's contract and load them, one transaction per day.

        ``scope`` lists the values of the contract's scope columns the load covers (e.g. the races
        fetched); ``complete=False`` says the fetch missed data, so nothing is deleted.
        """
        contract = self.contracts.get(table.fullname) or TableContract(table)
        good, rejects = contract.validate(rows)
        for reject in rejects:
            self.reject(reject.name or table.name, reject.error, payload=_json(reject.record), day=reject.day,
                        origin=f"{_TABLE_ORIGIN}{table.fullname}", filed=reject)  # fmt: skip
        run_id = run_id or self.run_id
        scope_values = [tuple(v) for v in scope] if scope is not None else None
        if contract.mode == "replace_window" and contract.scope_columns and scope_values is None:
            raise ValueError(f"{table.fullname}: replace_window over {contract.scope_columns} needs a scope")
        total = LoadResult(table=table.fullname, mode=contract.mode)
        if contract.day_column is None:
            total = self._load_day(contract, good, None, scope_values, complete, run_id)
        else:
            by_day: dict[dt.date, list[Mapping[str, Any]]] = {day: [] for day in self.days}
            for row in good:
                day_rows = by_day.get(row[contract.day_column])
                if day_rows is not None:
                    day_rows.append(row)
            if len(self.days) == 1:
                total = self._load_day(contract, by_day[self.day], self.day, scope_values, complete, run_id)
            else:
                total = self._load_days(contract, by_day, scope_values, complete, run_id)
        total.table, total.mode = table.fullname, contract.mode
        self._resolve_loaded(contract, good)
        return total

    def _resolve_loaded(self, contract: TableContract, rows: list[Mapping[str, Any]]) -> None:
        """Dead letters of rows the table contract refused are resolved once a valid row with the
        same key loads (the fix may be in the parser, the contract or the source)."""
        letters = self._index().get(f"{_TABLE_ORIGIN}{contract.name}")
        if not letters:
            return
        loaded = {_key_text({k: row.get(k) for k in contract.key}) for row in rows}
        for letter in list(letters):
            key = letter.context.get("key")
            if key is None or (letter.partition, letter.request) in self._filed or _key_text(key) not in loaded:
                continue
            letters.remove(letter)
            if self.raw_store.resolve(self.source, letter.partition, letter.request):
                self.resolved.append(letter.request)

    def _load_day(
        self,
        contract: TableContract,
        rows: list[Mapping[str, Any]],
        day: dt.date | None,
        scope: list[tuple[Any, ...]] | None,
        complete: bool,
        run_id: str | None,
    ) -> LoadResult:
        table = contract.table
        mode, window = contract.mode, None
        if mode == "replace_window":
            spared, partial = self._spared_keys(contract, day)
            if complete and not partial:
                window = self._window(contract, day, scope, spared)
            else:
                mode = "upsert"
                note = f"{table.fullname}: fetch incomplete, rows the source no longer lists were not deleted"
                if note not in self.pending:
                    self.pending.append(note)
        if rows or window is None:
            result = self.warehouse.load(
                table, rows, mode=mode, window=window, run_id=run_id, **contract.load_options()
            )
        else:  # nothing left on this day: the delete alone (no staging)
            result = self.warehouse.delete_window(table, window)
        self._job_of(day).loaded(result)
        with self._lock:
            previous = self.results.get(table.fullname)
            self.results[table.fullname] = result if previous is None else previous + result
            per_day = self.day_results.setdefault(day or self.day, {})
            previous = per_day.get(table.fullname)
            per_day[table.fullname] = result if previous is None else previous + result
        return result

    def _load_days(
        self,
        contract: TableContract,
        by_day: dict[dt.date, list[Mapping[str, Any]]],
        scope: list[tuple[Any, ...]] | None,
        complete: bool,
        run_id: str | None,
    ) -> LoadResult:
        """The unit's days in one load (one transaction), counted per day (``count_by`` the day column)."""
        table, mode, window = contract.table, contract.mode, None
        if mode == "replace_window":
            allowed, spared = [], []
            for day in self.days:
                keys, partial = self._spared_keys(contract, day)
                if complete and not partial:
                    allowed.append(day)
                    spared += [k for k in keys if k not in spared]
            if len(allowed) < len(self.days):
                note = f"{table.fullname}: fetch incomplete, rows the source no longer lists were not deleted"
                if note not in self.pending:
                    self.pending.append(note)
            if allowed:
                window = self._window(contract, None, scope, spared, days=allowed)
            else:
                mode = "upsert"
        rows = [row for day_rows in by_day.values() for row in day_rows]
        result = self.warehouse.load(
            table,
            rows,
            mode=mode,
            window=window,
            run_id=run_id,
            count_by=contract.day_column,
            **contract.load_options(),
        )
        for day in self.days:
            day_result = result.by.get(day) or LoadResult(table=table.fullname, mode=mode)
            self._job_of(day).loaded(day_result)
            with self._lock:
                per_day = self.day_results.setdefault(day, {})
                previous = per_day.get(table.fullname)
                per_day[table.fullname] = day_result if previous is None else previous + day_result
        with self._lock:
            plain = LoadResult(table.fullname, mode, result.received, result.created, result.updated,
                               result.unchanged, result.deleted)  # fmt: skip
            previous = self.results.get(table.fullname)
            self.results[table.fullname] = plain if previous is None else previous + plain
        return plain

    def _spared_keys(self, contract: TableContract, day: dt.date | None) -> tuple[list[Mapping[str, Any]], bool]:
        """Keys of the records rejected for this table and day (never deleted), and whether one of them
        had no key (then the load is partial: nothing is deleted)."""
        spared, partial = [], False
        for reject in self._rejects:
            if reject.table not in (None, contract.name):
                continue
            if day is not None and reject.day is not None and reject.day != day:
                continue
            key = {k: v for k, v in (reject.key or {}).items() if k in contract.table.c}
            if key:
                spared.append(key)
            else:
                partial = True
        return spared, partial

    @staticmethod
    def _window(
        contract: TableContract,
        day: dt.date | None,
        scope: list[tuple[Any, ...]] | None,
        spared: list[Mapping[str, Any]],
        days: list[dt.date] | None = None,
    ) -> sa.ColumnElement[bool]:
        table = contract.table
        terms: list[sa.ColumnElement[bool]] = []
        if contract.day_column is not None and day is not None:
            terms.append(table.c[contract.day_column] == day)
        if contract.day_column is not None and days:
            terms.append(table.c[contract.day_column].in_(days))
        if contract.scope_columns:
            columns = [table.c[c] for c in contract.scope_columns]
            values = scope or [(None,) * len(columns)]
            terms.append(
                sa.tuple_(*columns).in_(values) if len(columns) > 1 else columns[0].in_([v[0] for v in values])
            )
        for key in spared:
            terms.append(sa.not_(sa.and_(*[table.c[k] == v for k, v in key.items()])))
        return sa.and_(*terms) if terms else sa.true()


def _days_of(partition: str) -> list[dt.date]:
    span = label_days(partition)
    if span is None:
        raise ValueError(f"partition {partition!r} is not a day or a window of days")
    first, last = span
    return [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]


_TABLE_ORIGIN = "table "  # origin of a dead letter the table contract refused (a row, not a request)


def _key_text(key: Mapping[str, Any]) -> str:
    return json.dumps(jsonable(dict(key)), sort_keys=True)


def _json(record: Any) -> bytes | None:
    if record is None:
        return None
    return json.dumps(record, ensure_ascii=False, default=str).encode()


# -- the run --------------------------------------------------------------------------------------------
_frozen_lock = threading.Lock()
_frozen_depth = 0


@contextmanager
def frozen_heap() -> Iterator[None]:
    """A bulk load's block (each ``Unit.open`` and the checks of ``SourceRun.finish``, for every source):
    the objects alive when it starts (Dagster's definitions, the loaded modules:
    millions of them) are moved out of the garbage collector's reach (``gc.freeze``) and put back at the
    end (``gc.unfreeze``). Without it every full collection, which parsing many records sets off again
    and again, walks that whole heap: measured on the Odoo path (120,000 records), a quarter of the
    step's CPU time. Only unreachable cycles among the frozen objects wait for the end of the block to be
    collected; reference counting frees everything else as usual. Nested and concurrent blocks share
    one freeze (the outermost one ends it)."""
    global _frozen_depth
    with _frozen_lock:
        if _frozen_depth == 0:
            gc.freeze()
        _frozen_depth += 1
    try:
        yield
    finally:
        with _frozen_lock:
            _frozen_depth -= 1
            if _frozen_depth == 0:
                gc.unfreeze()


class LoadBehind:
    """Loads of one :class:`PartitionLoad` run in a background thread, one at a time and in order, while
    the caller reads and parses what comes next: the database merges a batch while Python parses the
    following one. ``submit`` waits for the previous load first (two batches in memory at most); leaving
    the ``with`` block waits for the last one; a failed load raises in the caller's thread, at the next
    ``submit`` or at the end.

    ``PartitionLoad.load`` touches the ledger job and the dead-letter index; the caller's own calls
    (``parse``, ``reject``) go on beside it under the load's lock, the index being read before."""

    def __init__(self, load: PartitionLoad) -> None:
        self.load = load
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="load-behind")
        self._pending: Future | None = None
        load._index()  # built here, not from both threads

    def submit(self, table: sa.Table, rows: list[Mapping[str, Any]], **kwargs: Any) -> None:
        self.wait()
        self._pending = self._pool.submit(self.load.load, table, rows, **kwargs)

    def wait(self) -> None:
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()

    def __enter__(self) -> LoadBehind:
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            if exc[0] is None:
                self.wait()
            elif self._pending is not None:  # the caller failed: let the load in flight end, quietly
                self._pending.exception()
        finally:
            self._pool.shutdown(wait=True)


class _Days:
    """``start`` .. ``end`` (exclusive) of an ordered run of ``days``."""

    days: Sequence[dt.date]

    @property
    def start(self) -> dt.date:
        return self.days[0]

    @property
    def end(self) -> dt.date:
        """The day after the last day."""
        return self.days[-1] + dt.timedelta(days=1)


@dataclass(frozen=True)
class Unit(_Days):
    """One fetch unit of a run: its days and raw partition; ``open()`` opens its PartitionLoad."""

    run: SourceRun
    days: tuple[dt.date, ...]
    partition: str

    @contextmanager
    def open(self) -> Iterator[PartitionLoad]:
        run = self.run
        with (
            frozen_heap(),
            PartitionLoad.open(
                source=run.source.name,
                asset_key=run.asset_key.to_user_string(),
                partition=self.partition,
                days=list(self.days),
                run_id=run.run_id,
                warehouse=run.warehouse,
                raw_store=run.raw_store,
                provider=run.provider,
                target=run.source.contracts_of(run.asset_key),
                reprocess_from_raw=run.reprocess_from_raw,
                config={"reprocess_from_raw": run.reprocess_from_raw},
                is_alive=run.is_alive,
            ) as load,
        ):
            run.loads.append(load)
            yield load
            run.context.log.info("%s %s: %s", run.asset_key.to_user_string(), self.partition, _summary(load))


class SourceRun(_Days):
    """One run of one asset of a declared source over the run's days (see the module docstring)."""

    def __init__(
        self,
        context: dg.AssetExecutionContext,
        source: Source,
        *,
        config: LoadConfig,
        warehouse: Any,
        raw_store: Any,
        provider: str | None,
    ) -> None:
        self.context = context
        self.source = source
        self.asset_key = context.asset_key
        self.run_id = context.run.run_id
        self.warehouse: Warehouse = warehouse.get() if hasattr(warehouse, "get") else warehouse
        self.raw_store: RawStore = raw_store.get() if hasattr(raw_store, "get") else raw_store
        self.provider = provider
        self.reprocess_from_raw = config.reprocess_from_raw
        window = context.partition_time_window
        start, end = window.start.date(), window.end.date()
        self.days = [start + dt.timedelta(days=i) for i in range((end - start).days)]
        self.loads: list[PartitionLoad] = []
        instance = context.instance

        def is_alive(run_id: str) -> bool:
            other = instance.get_run_by_id(run_id)
            return other is not None and other.status in _ALIVE

        self.is_alive = is_alive

    def units(self) -> Iterator[Unit]:
        """The fetch units of the run: each day, or the window (replays: each stored fetch covering it)."""
        if self.source.fetch_unit == "day":
            for day in self.days:
                yield Unit(self, (day,), day.isoformat())
            return
        if not self.reprocess_from_raw:
            yield Unit(self, tuple(self.days), window_label(self.days[0], self.days[-1]))
            return
        covered = self.raw_store.covering(self.source.name, self.days, self.asset_key.to_user_string())
        for label, days in sorted(covered.items(), key=lambda item: item[1][0]):
            yield Unit(self, tuple(days), label)
        missing = sorted(set(self.days) - {d for days in covered.values() for d in days})
        if missing:  # nothing stored for them: their unit fails with MissingRaw, naming the days
            yield Unit(self, tuple(missing), window_label(missing[0], missing[-1]))

    @property
    def partition_keys(self) -> list[str]:
        """The run's partition keys, one per day (in order)."""
        return list(self.context.partition_keys)

    def finish(
        self, preview: Callable[[Sequence[dt.date]], sa.Select] | None = None
    ) -> Iterator[dg.MaterializeResult | dg.AssetCheckEvaluation | dg.Output]:
        """Report the run: each partition's own metadata, then the asset's checks, per partition.

        In a range run every partition gets the figures of its own day (``add_asset_metadata`` per
        partition key), never the run's totals: an empty day shows 0 rows and what was pending.
        ``preview(days)`` selects the preview rows of those days. ``dagster/row_count`` counts the rows
        of the day in the table ``dagster/table_name`` names (loaded or confirmed unchanged).
        """
        from ingestion_platform.lib.checks import evaluate_checks

        declared = self.source.assets[self.asset_key]
        main = declared.main.fullname
        keys = self.partition_keys
        per_day = {
            day: load_metadata(self.loads, self.warehouse, day=day, main=main, preview=preview) for day in self.days
        }
        yield partition_result(self.context, dict(zip(keys, (per_day[d] for d in self.days), strict=True)))
        with frozen_heap():  # a raw reconciliation reads every stored payload again
            yield from evaluate_checks(
                self.context,
                declared.checks,
                warehouse=self.warehouse,
                raw_store=self.raw_store,
                days=self.days,
                partition_keys=keys,
            )


def partition_result(
    context: dg.AssetExecutionContext, by_partition: Mapping[str, Mapping[str, Any]]
) -> dg.MaterializeResult:
    """The materialisation of a run in which each partition shows its own metadata (``by_partition``):
    one partition's metadata as the result's, or each partition's through ``add_asset_metadata``."""
    if len(by_partition) == 1:
        return dg.MaterializeResult(metadata=dict(next(iter(by_partition.values()))))
    for key, metadata in by_partition.items():
        context.add_asset_metadata(dict(metadata), partition_key=key)
    return dg.MaterializeResult()


def _summary(load: PartitionLoad) -> str:
    return "; ".join(f"{day}: {job.summary()}" for day, job in list(load.jobs.items())[:3]) + (
        f" (+{len(load.jobs) - 3} days)" if len(load.jobs) > 3 else ""
    )


_FIGURES = ("created", "updated", "unchanged", "deleted")


def load_metadata(
    loads: list[PartitionLoad],
    warehouse: Warehouse,
    *,
    day: dt.date | None = None,
    main: str | None = None,
    preview: Callable[[Sequence[dt.date]], sa.Select] | sa.Select | None = None,
) -> dict[str, Any]:
    """Dagster metadata of one partition (``day``) from the loads that covered it, or of every day of
    ``loads`` when ``day`` is None. ``main`` names the table ``dagster/row_count`` counts (default: the
    first table loaded)."""
    covering = [load for load in loads if day is None or day in load.jobs]
    days = [d for load in covering for d in load.days if day is None or d == day]
    totals = dict.fromkeys((*_FIGURES, "rejected"), 0)
    per_table: dict[str, dict[str, int]] = {}
    jobs = []
    for load in covering:
        for d in load.days:
            if d not in days:
                continue
            jobs.append(load.jobs[d])
            totals["rejected"] += load.jobs[d].counts.rejected
            for name, result in load.day_results.get(d, {}).items():
                entry = per_table.setdefault(name, dict.fromkeys(_FIGURES, 0))
                for key in _FIGURES:
                    entry[key] += getattr(result, key)
                    totals[key] += getattr(result, key)
    main = main or next(iter(per_table), None)
    shown = per_table.get(main or "", dict.fromkeys(_FIGURES, 0))
    rows = shown["created"] + shown["updated"] + shown["unchanged"]
    pending = [p for load in covering for p in load.pending]
    failures = [
        {k: v for k, v in f.items() if k != "day"}
        for load in covering
        for f in load.failures
        if day is None or f.get("day") in (None, day.isoformat())
    ]
    metadata: dict[str, Any] = {name: dg.MetadataValue.int(value) for name, value in totals.items()}
    metadata["dagster/row_count"] = dg.MetadataValue.int(rows)
    dead = [
        {"partition": d.get("day", load.partition), **{k: v for k, v in d.items() if k != "day"}}
        for load in covering
        for d in load.dead_letters
        if day is None or d.get("day") in (None, day.isoformat())
    ]
    rejected = max(totals["rejected"], len(dead))  # a letter of the whole fetch window concerns each day
    metadata["status"] = dg.MetadataValue.text(_status(rows, rejected, pending, failures))
    metadata["tables"] = dg.MetadataValue.json(per_table)
    metadata["ledger_job_ids"] = dg.MetadataValue.text(", ".join(str(job.job_id) for job in jobs))
    windows = sorted(
        {load.partition for load in covering if len(load.days) > 1 or load.partition != load.day.isoformat()}
    )
    if windows:
        metadata["fetch_window"] = dg.MetadataValue.text(", ".join(windows))
    if dead:
        metadata["dead_letters"] = dg.MetadataValue.json(dead[:50])
    if failures:
        metadata["failures"] = dg.MetadataValue.json(failures[:50])
    if pending:
        metadata["pending"] = dg.MetadataValue.json(pending[:200])
    resolved = [f"{load.partition} {r}" for load in covering for r in load.resolved]
    if resolved:
        metadata["dead_letters_resolved"] = dg.MetadataValue.json(resolved[:200])
    warnings = sum(load.warning_count for load in covering)
    metadata["warnings"] = dg.MetadataValue.int(warnings)
    if warnings:
        metadata["warning_sample"] = dg.MetadataValue.json([w for load in covering for w in load.warnings][:20])
    if preview is not None:
        stmt = preview if isinstance(preview, sa.Select) else preview(days)
        sample = warehouse.fetch(stmt)
        if sample:
            metadata["preview"] = dg.MetadataValue.md(_markdown(sample))
    return metadata


def _status(rows: int, rejected: int, pending: list[str], failures: list[dict[str, str]]) -> str:
    """One line a user reads first: what this partition holds."""
    if failures:
        return f"failed: {failures[0]['request']}: {failures[0]['error']}"[:300]
    if rows == 0 and rejected:
        return f"nothing loaded: {rejected} record(s) or payload(s) rejected (see dead_letters)"
    if rows == 0 and pending:
        return f"nothing published yet: {pending[0]}"[:300]
    if rows == 0:
        return "no rows for this day"
    text = f"loaded {rows} row(s)"
    if rejected:
        text += f", {rejected} rejected"
    if pending:
        text += f", {len(pending)} pending"
    return text


def table_schema(table: sa.Table) -> dg.TableSchema:
    """The Dagster column schema of a warehouse table (types and comments)."""
    return dg.TableSchema(
        columns=[
            dg.TableColumn(
                name=c.name,
                type=str(c.type.compile(dialect=sa.dialects.postgresql.dialect())),
                description=c.comment,
                constraints=dg.TableColumnConstraints(nullable=c.nullable, unique=False),
            )
            for c in table.columns
        ]
    )


def _markdown(rows: list[dict[str, Any]]) -> str:
    columns = [c for c in rows[0] if not c.startswith("_")]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        cells = [str(row[c]).replace("|", "\\|").replace("\n", " ")[:60] if row[c] is not None else "" for c in columns]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
