"""One load of one partition of one asset: raw first, parse, dead-letter, load, ledger, metadata.

``PartitionLoad`` is the piece every source asset uses, so that the promises of the platform
(lossless, idempotent, observable) are kept in one place:

    with PartitionLoad.open(source="pmu", asset_key="pmu/participants", partition="2025-03-14",
                            run_id=..., warehouse=..., raw_store=..., provider=...) as load:
        body = load.land("R1C1_participants", fetch)     # raw store first (or replay from it)
        records = load.parse("R1C1_participants", body, parse_fn)   # RecordError -> dead letter
        load.load(table, rows, mode="upsert")            # counted in the ledger job
    load.metadata()                                      # Dagster metadata for the run

The ledger job ends ``completed``, ``completed_with_errors`` (some records dead-lettered) or
``failed`` (the block raised). Requests that parse again after a fix resolve their dead letter.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import dagster as dg
import sqlalchemy as sa

from ingestion_platform.lib.errors import RecordError
from ingestion_platform.lib.http import Fetched, InvalidPayload
from ingestion_platform.lib.ledger import JobHandle, Ledger
from ingestion_platform.lib.raw_store import RawStore
from ingestion_platform.lib.warehouse import LoadResult, Warehouse

T = TypeVar("T")

#: errors that mean "this payload/record is bad", as opposed to a platform failure
PAYLOAD_ERRORS = (RecordError, json.JSONDecodeError, UnicodeDecodeError, InvalidPayload)


class MissingRaw(LookupError):
    """``reprocess_from_raw`` asked for a payload that was never stored."""


@dataclass
class PartitionLoad:
    source: str
    asset_key: str
    partition: str
    warehouse: Warehouse
    raw_store: RawStore
    job: JobHandle
    reprocess_from_raw: bool = False
    results: dict[str, LoadResult] = field(default_factory=dict)
    dead_letters: list[dict[str, str]] = field(default_factory=list)
    resolved: list[str] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _rejected_requests: set[str] = field(default_factory=set, repr=False)

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
        target: Iterable[sa.Table] = (),
        reprocess_from_raw: bool = False,
        config: Mapping[str, Any] | None = None,
    ) -> Iterator[PartitionLoad]:
        tables = list(target)
        warehouse.ensure_tables(tables)
        ledger = Ledger(warehouse)
        with ledger.job(
            source=source,
            asset_key=asset_key,
            partition_key=partition,
            run_id=run_id,
            provider="raw store replay" if reprocess_from_raw else provider,
            target=",".join(t.fullname for t in tables),
            metadata={"config": dict(config or {}), "reprocess_from_raw": reprocess_from_raw},
        ) as job:
            load = cls(source, asset_key, partition, warehouse, raw_store, job, reprocess_from_raw)
            yield load
            if load.pending:
                job.metadata["pending"] = load.pending
            if load.dead_letters:
                job.metadata["dead_letters"] = load.dead_letters

    # -- raw ------------------------------------------------------------------------------
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
            self.raw_store.write(self.source, self.partition, request, exc.fetched.body, exc.fetched.meta())
            self.reject(request, exc, payload=exc.fetched.body)
            return None
        if fetched is None:
            return None
        self.raw_store.write(self.source, self.partition, request, fetched.body, fetched.meta())
        return fetched.body

    # -- parse ----------------------------------------------------------------------------
    def parse(
        self, request: str, body: bytes, fn: Callable[[Any], T], *, decode: Callable[[bytes], Any] = json.loads
    ) -> T | None:
        """``fn(decode(body))``; a bad payload is dead-lettered and ``None`` returned."""
        try:
            result = fn(decode(body))
        except PAYLOAD_ERRORS as exc:
            if isinstance(exc, RecordError):
                exc = exc.with_request(f"{self.source}/{self.partition}/{request}")
            self.reject(request, exc, payload=body)
            return None
        if self.raw_store.resolve(self.source, self.partition, request):
            self.resolved.append(request)
        return result

    def reject(self, request: str, error: BaseException | str, *, payload: bytes | None = None) -> None:
        """Dead-letter ``request`` with its error and count it as rejected in the ledger."""
        message = f"{type(error).__name__}: {error}" if isinstance(error, BaseException) else error
        self._rejected_requests.add(request)
        self.raw_store.dead_letter(
            self.source,
            self.partition,
            request,
            error,
            payload=payload,
            context={"asset_key": self.asset_key, "ledger_job_id": self.job.job_id},
        )
        with self._lock:
            self.dead_letters.append({"request": request, "error": message})
            self.job.rejected(f"{request}: {message}")

    def mark_pending(self, request: str) -> None:
        """``request`` had nothing to load yet (not published); a later run fills it."""
        if request not in self._rejected_requests:
            self.pending.append(request)

    # -- load -----------------------------------------------------------------------------
    def load(
        self,
        table: sa.Table,
        rows: Iterable[Mapping[str, Any]],
        *,
        mode: str = "upsert",
        window: Any = None,
        run_id: str | None = None,
    ) -> LoadResult:
        result = self.warehouse.load(table, rows, mode=mode, window=window, run_id=run_id)
        self.job.loaded(result)
        previous = self.results.get(table.fullname)
        self.results[table.fullname] = result if previous is None else previous + result
        return result


def load_metadata(loads: list[PartitionLoad], warehouse: Warehouse, preview: sa.Select | None = None) -> dict[str, Any]:
    """Dagster metadata for one asset run over one or more partitions."""
    totals = {"created": 0, "updated": 0, "unchanged": 0, "deleted": 0, "rejected": 0}
    per_table: dict[str, dict[str, int]] = {}
    for load in loads:
        totals["rejected"] += load.job.counts.rejected
        for name, result in load.results.items():
            entry = per_table.setdefault(name, {"created": 0, "updated": 0, "unchanged": 0, "deleted": 0})
            for key in entry:
                entry[key] += getattr(result, key)
                totals[key] += getattr(result, key)
    metadata: dict[str, Any] = {name: dg.MetadataValue.int(value) for name, value in totals.items()}
    metadata["dagster/row_count"] = dg.MetadataValue.int(
        sum(v["created"] + v["updated"] + v["unchanged"] for v in per_table.values())
    )
    metadata["tables"] = dg.MetadataValue.json(per_table)
    metadata["partitions"] = dg.MetadataValue.int(len(loads))
    metadata["ledger_job_ids"] = dg.MetadataValue.text(", ".join(str(load.job.job_id) for load in loads))
    dead = [{"partition": load.partition, **d} for load in loads for d in load.dead_letters]
    if dead:
        metadata["dead_letters"] = dg.MetadataValue.json(dead[:50])
    pending = [f"{load.partition} {p}" for load in loads for p in load.pending]
    if pending:
        metadata["pending"] = dg.MetadataValue.json(pending[:200])
    resolved = [f"{load.partition} {r}" for load in loads for r in load.resolved]
    if resolved:
        metadata["dead_letters_resolved"] = dg.MetadataValue.json(resolved[:200])
    if preview is not None:
        rows = warehouse.fetch(preview)
        if rows:
            metadata["preview"] = dg.MetadataValue.md(_markdown(rows))
    return metadata


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
