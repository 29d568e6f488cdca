"""The ingestion job ledger (``platform.ingestion_job``) and its state machine.

One row per load of one asset partition. Status moves only along

    pending -> processing -> completed | completed_with_errors | failed
    pending -> failed                     (could not even start)

Every transition is a conditional ``UPDATE ... WHERE status IN (allowed sources)``: a transition
from the wrong state (a finished job finished again, a job completed twice by two racing workers)
raises ``InvalidTransition`` instead of silently rewriting history. A retry is a new job whose
``retry_of`` points at the failed one, so the history of attempts stays readable.

Columns mean one thing everywhere: ``source`` is the name of the source declaration
(``lib.source.Source.name``: the external system the data came from and the raw-store folder, e.g.
``pmu``, ``eventbrite``, ``montreal``, ``ics``), ``asset_key`` the Dagster asset, ``partition_key``
one day. A run over a window of days writes one job per day (``metadata.fetch_window`` names the
window when one fetch served several days).

The ledger tells the truth after a crash: counts are written as each table's load commits, and a job
left ``processing`` by a run that died is closed as ``failed`` (with the reason) when the next run of
the same asset and day starts; the new job links to it with ``retry_of``.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from ingestion_platform.lib.warehouse import LoadResult, Warehouse

METADATA = sa.MetaData(schema="platform")

PENDING = "pending"
PROCESSING = "processing"
COMPLETED = "completed"
COMPLETED_WITH_ERRORS = "completed_with_errors"
FAILED = "failed"
STATUSES = (PENDING, PROCESSING, COMPLETED, COMPLETED_WITH_ERRORS, FAILED)
TERMINAL = (COMPLETED, COMPLETED_WITH_ERRORS, FAILED)

#: target status -> the statuses it may be reached from
TRANSITIONS: dict[str, tuple[str, ...]] = {
    PROCESSING: (PENDING,),
    COMPLETED: (PROCESSING,),
    COMPLETED_WITH_ERRORS: (PROCESSING,),
    FAILED: (PENDING, PROCESSING),
}

ingestion_job = sa.Table(
    "ingestion_job",
    METADATA,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "source",
        sa.String(64),
        nullable=False,
        comment="source declaration (external system, raw-store folder): pmu, eventbrite, montreal, ics ...",
    ),
    sa.Column("asset_key", sa.String(255), nullable=False, comment="Dagster asset key, slash separated"),
    sa.Column("partition_key", sa.String(64), comment="Dagster partition key (one day)"),
    sa.Column("run_id", sa.String(64), comment="Dagster run id"),
    sa.Column("provider", sa.String(128), comment="where the data came from (API host, file, replay)"),
    sa.Column("target", sa.String(255), comment="tables written, comma separated"),
    sa.Column("status", sa.String(32), nullable=False, comment=" -> ".join(STATUSES)),
    sa.Column("message", sa.Text, comment="error or summary"),
    sa.Column("created", sa.Integer, nullable=False, default=0),
    sa.Column("updated", sa.Integer, nullable=False, default=0),
    sa.Column("unchanged", sa.Integer, nullable=False, default=0),
    sa.Column("rejected", sa.Integer, nullable=False, default=0, comment="records dead-lettered"),
    sa.Column("metadata", sa.JSON, comment="progress, config, per-table counts, errors"),
    sa.Column("started_at", sa.DateTime(timezone=True)),
    sa.Column("finished_at", sa.DateTime(timezone=True)),
    sa.Column("retry_of", sa.Integer, comment="id of the failed job this one retries"),
    sa.Index("ix_ingestion_job_asset_partition", "asset_key", "partition_key"),
)


class InvalidTransition(RuntimeError):
    """A ledger job was asked to move to a status its current status does not allow."""


@dataclass
class JobCounts:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    tables: dict[str, dict[str, int]] = field(default_factory=dict)

    def add(self, result: LoadResult) -> None:
        self.created += result.created
        self.updated += result.updated
        self.unchanged += result.unchanged
        entry = self.tables.setdefault(
            result.table, {"created": 0, "updated": 0, "unchanged": 0, "deleted": 0, "received": 0}
        )
        for name in entry:
            entry[name] += getattr(result, name)

    def as_dict(self) -> dict[str, int]:
        return {
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "rejected": self.rejected,
        }


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Ledger:
    """Reads and writes ``platform.ingestion_job`` through a ``Warehouse``."""

    def __init__(self, warehouse: Warehouse) -> None:
        self.warehouse = warehouse
        warehouse.ensure_tables([ingestion_job])

    def create(
        self,
        *,
        source: str,
        asset_key: str,
        partition_key: str | None,
        run_id: str | None,
        provider: str | None = None,
        target: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        is_alive: Callable[[str], bool] | None = None,
        start: bool = False,
        retry_of: int | None = None,
    ) -> int:
        """Record a pending job (``processing`` at once with ``start``); links it to the last failed
        attempt of the same partition, or to ``retry_of`` when given (an explicit retry).

        Jobs of the same asset and partition still ``processing`` whose run is not alive (by
        ``is_alive(run_id)``; without it, any other run counts as dead) are closed as ``failed``
        first: their run died before it could close them.
        """
        same = sa.and_(
            ingestion_job.c.asset_key == asset_key, _eq_or_null(ingestion_job.c.partition_key, partition_key)
        )
        with self.warehouse.engine.begin() as conn:
            earlier = conn.execute(
                sa.select(ingestion_job.c.id, ingestion_job.c.run_id, ingestion_job.c.status)
                .where(same)
                .order_by(ingestion_job.c.id.desc())
            ).all()
            last_status = earlier[0].status if earlier else None
            for job in earlier:
                if job.status != PROCESSING:
                    continue
                if job.run_id != run_id and is_alive is not None and job.run_id and is_alive(job.run_id):
                    continue
                if job is earlier[0]:
                    last_status = FAILED
                conn.execute(
                    sa.update(ingestion_job)
                    .where(ingestion_job.c.id == job.id, ingestion_job.c.status == PROCESSING)
                    .values(
                        status=FAILED,
                        finished_at=_now(),
                        message=f"abandoned: run {job.run_id} ended without closing this job "
                        f"(found processing when run {run_id} started)",
                    )
                )
            if retry_of is None:
                retry_of = earlier[0].id if earlier and last_status == FAILED else None
            return int(
                conn.execute(
                    sa.insert(ingestion_job)
                    .values(
                        source=source,
                        asset_key=asset_key,
                        partition_key=partition_key,
                        run_id=run_id,
                        provider=provider,
                        target=target,
                        status=PROCESSING if start else PENDING,
                        started_at=_now() if start else None,
                        metadata=jsonable(metadata or {}),
                        retry_of=retry_of,
                    )
                    .returning(ingestion_job.c.id)
                ).scalar_one()
            )

    def transition(
        self,
        job_id: int,
        status: str,
        *,
        message: str | None = None,
        counts: JobCounts | None = None,
        metadata: Mapping[str, Any] | None = None,
        merge: bool = True,
    ) -> None:
        """Move ``job_id`` to ``status`` or raise ``InvalidTransition``.

        ``metadata`` is merged into the stored metadata, or replaces it with ``merge=False`` (a
        handle that holds the whole metadata saves the read)."""
        if status not in TRANSITIONS:
            raise InvalidTransition(f"no transition leads to {status!r}")
        values: dict[str, Any] = {"status": status}
        if status == PROCESSING:
            values["started_at"] = _now()
        if status in TERMINAL:
            values["finished_at"] = _now()
        if message is not None:
            values["message"] = _clean(message)[:10_000]
        if counts is not None:
            values.update(counts.as_dict())
        with self.warehouse.engine.begin() as conn:
            if metadata is not None:
                values["metadata"] = {**(self._metadata(conn, job_id) if merge else {}), **jsonable(metadata)}
            result = conn.execute(
                sa.update(ingestion_job)
                .where(ingestion_job.c.id == job_id)
                .where(ingestion_job.c.status.in_(TRANSITIONS[status]))
                .values(**values)
            )
            if result.rowcount != 1:
                current = conn.execute(sa.select(ingestion_job.c.status).where(ingestion_job.c.id == job_id)).scalar()
                raise InvalidTransition(f"job {job_id}: cannot go from {current!r} to {status!r}")

    def record_counts(self, job_id: int, counts: JobCounts, metadata: Mapping[str, Any] | None = None) -> None:
        """Write the counts of a processing job (called as each table's load commits); ``metadata``
        is the job's whole metadata when the caller holds it (no read)."""
        with self.warehouse.engine.begin() as conn:
            base = dict(metadata) if metadata is not None else self._metadata(conn, job_id)
            merged = {**base, "tables": counts.tables}
            conn.execute(
                sa.update(ingestion_job)
                .where(ingestion_job.c.id == job_id)
                .where(ingestion_job.c.status == PROCESSING)
                .values(**counts.as_dict(), metadata=jsonable(merged))
            )

    def progress(self, job_id: int, **progress: Any) -> None:
        """Merge progress information into a processing job's metadata."""
        with self.warehouse.engine.begin() as conn:
            merged = {**self._metadata(conn, job_id)}
            merged["progress"] = {**merged.get("progress", {}), **jsonable(progress)}
            conn.execute(
                sa.update(ingestion_job)
                .where(ingestion_job.c.id == job_id)
                .where(ingestion_job.c.status == PROCESSING)
                .values(metadata=merged)
            )

    def get(self, job_id: int) -> dict[str, Any]:
        rows = self.warehouse.fetch(sa.select(ingestion_job).where(ingestion_job.c.id == job_id))
        if not rows:
            raise KeyError(job_id)
        return rows[0]

    def jobs(self, *, asset_key: str | None = None, partition_key: str | None = None) -> list[dict[str, Any]]:
        stmt = sa.select(ingestion_job).order_by(ingestion_job.c.id)
        if asset_key is not None:
            stmt = stmt.where(ingestion_job.c.asset_key == asset_key)
        if partition_key is not None:
            stmt = stmt.where(ingestion_job.c.partition_key == partition_key)
        return self.warehouse.fetch(stmt)

    @contextmanager
    def job(self, **kwargs: Any) -> Iterator[JobHandle]:
        """Create a job, mark it processing, and finish it: failed if the block raises.

        The block reports counts and errors on the handle; on a clean exit the job ends
        ``completed``, or ``completed_with_errors`` when records were rejected.
        """
        job_id = self.create(**kwargs, start=True)
        handle = JobHandle(self, job_id, metadata=jsonable(kwargs.get("metadata") or {}))
        try:
            yield handle
        except BaseException as exc:
            self.transition(
                job_id,
                FAILED,
                message=f"{type(exc).__name__}: {exc}",
                counts=handle.counts,
                metadata=handle.metadata,
                merge=False,
            )
            raise
        status = COMPLETED_WITH_ERRORS if handle.counts.rejected or handle.errors else COMPLETED
        handle.metadata["tables"] = handle.counts.tables
        if handle.errors:
            handle.metadata["errors"] = handle.errors[:100]
        self.transition(
            job_id, status, message=handle.summary(), counts=handle.counts, metadata=handle.metadata, merge=False
        )
        handle.status = status

    def _metadata(self, conn: sa.Connection, job_id: int) -> dict[str, Any]:
        value = conn.execute(sa.select(ingestion_job.c.metadata).where(ingestion_job.c.id == job_id)).scalar()
        return dict(value or {})


@dataclass
class JobHandle:
    """What a running load reports to its ledger job."""

    ledger: Ledger
    job_id: int
    counts: JobCounts = field(default_factory=JobCounts)
    errors: list[str] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)
    status: str = PROCESSING

    def loaded(self, result: LoadResult) -> None:
        """Count a committed load, and write the counts to the ledger now (a crash keeps them)."""
        self.counts.add(result)
        self.ledger.record_counts(self.job_id, self.counts, self.metadata)

    def rejected(self, error: str, count: int = 1) -> None:
        self.counts.rejected += count
        self.errors.append(_clean(error))

    def progress(self, **progress: Any) -> None:
        self.metadata["progress"] = {**self.metadata.get("progress", {}), **jsonable(progress)}
        self.ledger.record_counts(self.job_id, self.counts, self.metadata)

    def summary(self) -> str:
        c = self.counts
        text = f"created {c.created}, updated {c.updated}, unchanged {c.unchanged}, rejected {c.rejected}"
        if self.errors:
            text += f"; first error: {self.errors[0]}"
        return text


def _eq_or_null(column: sa.Column, value: Any) -> sa.ColumnElement[bool]:
    return column.is_(None) if value is None else column == value


def jsonable(value: Any) -> Any:
    """``value`` as plain JSON values (dates as ISO text, anything else as its text), without NUL
    characters (PostgreSQL refuses them in text and JSON). Used for ledger and Dagster metadata."""
    if isinstance(value, str):
        return _clean(value)
    if isinstance(value, Mapping):
        return {_clean(str(k)): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [jsonable(v) for v in value]
    if isinstance(value, (dt.date, dt.datetime, dt.time)):
        return value.isoformat()
    if isinstance(value, bool | int | None) or (isinstance(value, float) and math.isfinite(value)):
        return value
    return _clean(str(value))


def _clean(text: str) -> str:
    """``text`` with NUL characters written as the four characters ``\\x00``, so nothing is hidden."""
    return text.replace("\x00", "\\x00")
