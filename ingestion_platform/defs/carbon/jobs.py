"""The sync job contract (``data_ingestion_jobs``), built on the platform ledger: one job concept.

A sync job is a row of ``platform.ingestion_job`` (source ``carbon``, asset key ``carbon/sync``): its
status (transitions enforced by ``lib.ledger``), message, metadata (progress, filters, config,
errors), started_at, finished_at, run_id and retry_of live there. ``carbon.data_ingestion_jobs`` holds,
under the same id, what only a carbon sync has: inventory, module, factor type, provider type,
target type, year, status code and created_by. :meth:`SyncJobs.get` returns the plan's record:

    id, inventory_id, module_id, factor_type_id, provider_type, target_type, year, status,
    status_code, message, metadata, created_by, started_at, completed_at  (+ retry_of, run_id)

Statuses: the plan's ``pending -> processing -> completed | failed``. The ledger's fifth status,
``completed_with_errors`` (some records were dead-lettered, the others loaded), is shown as
``completed`` with ``status_code`` 207 and the rejected records under ``metadata.errors``.
Status codes: 102 pending / processing, 200 completed, 207 completed with rejected records,
400 refused input (unreadable file, bad filters), 401 refused credentials, 502 the provider failed,
500 anything else.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from ingestion_platform.defs.carbon import tables
from ingestion_platform.lib import ledger as ledger_lib
from ingestion_platform.lib.ledger import Ledger, ingestion_job, jsonable
from ingestion_platform.lib.warehouse import Warehouse

SOURCE = "carbon"
SYNC_ASSET = "carbon/sync"
TARGET_TYPES = ("data_entries", "factors")
PLAN_STATUS = {
    ledger_lib.PENDING: "pending",
    ledger_lib.PROCESSING: "processing",
    ledger_lib.COMPLETED: "completed",
    ledger_lib.COMPLETED_WITH_ERRORS: "completed",
    ledger_lib.FAILED: "failed",
}
PENDING_CODE, COMPLETED_CODE, PARTIAL_CODE = 102, 200, 207
_SECRET = re.compile(r"secret|password|token|passwd|api_?key|jwt", re.I)


class JobNotFound(KeyError):
    pass


def redact(config: Mapping[str, Any]) -> dict[str, Any]:
    """``config`` with the values of secret-looking keys replaced: a job's metadata is shown by the API."""
    return {k: ("***" if _SECRET.search(str(k)) else v) for k, v in config.items()}


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class SyncJobs:
    """Creates, moves and reads carbon sync jobs (ledger row + companion row, same id)."""

    def __init__(self, warehouse: Warehouse) -> None:
        self.warehouse = warehouse
        self.ledger = Ledger(warehouse)
        warehouse.ensure_tables([tables.data_ingestion_jobs, tables.modules])

    def create(
        self,
        *,
        module_id: str,
        target_type: str,
        provider_type: str,
        year: int,
        inventory_id: str | None,
        factor_type_id: str | None = None,
        filters: Mapping[str, Any] | None = None,
        config: Mapping[str, Any] | None = None,
        created_by: str | None = None,
        retry_of: int | None = None,
    ) -> int:
        if target_type not in TARGET_TYPES:
            raise ValueError(f"target_type must be one of {TARGET_TYPES}")
        job_id = self.ledger.create(
            source=SOURCE,
            asset_key=SYNC_ASSET,
            partition_key=f"{target_type}:{module_id}:{factor_type_id or '-'}:{year}"[:64],
            run_id=None,
            provider=provider_type,
            target=tables.data_entries.fullname if target_type == "data_entries" else tables.emission_factors.fullname,
            metadata={
                "filters": dict(filters or {}),
                "config": redact(config or {}),
                "progress": {"fetched": 0, "transformed": 0, "loaded": 0},
            },
            is_alive=lambda _run: True,  # a sync job is closed by its own run, never by another sync
            retry_of=retry_of,
        )
        with self.warehouse.engine.begin() as conn:
            conn.execute(
                sa.insert(tables.data_ingestion_jobs).values(
                    id=job_id,
                    inventory_id=inventory_id,
                    module_id=module_id,
                    factor_type_id=factor_type_id,
                    provider_type=provider_type,
                    target_type=target_type,
                    year=year,
                    status_code=PENDING_CODE,
                    created_by=created_by,
                    created_at=_now(),
                )
            )
        self._badge(job_id)
        return job_id

    def retry(self, job_id: int, *, created_by: str | None = None) -> int:
        """A new pending job doing what the failed ``job_id`` did (same module, provider, target, year,
        filters and config), linked to it by ``retry_of``; ValueError when the job has not failed."""
        job = self.get(job_id)
        if job["ledger_status"] != ledger_lib.FAILED:
            raise ValueError(f"job {job_id} is {job['status']}: only a failed sync can be retried")
        meta = job["metadata"]
        return self.create(
            module_id=job["module_id"],
            target_type=job["target_type"],
            provider_type=job["provider_type"],
            year=job["year"],
            inventory_id=job["inventory_id"],
            factor_type_id=job["factor_type_id"],
            filters=meta.get("filters"),
            config=meta.get("config"),
            created_by=created_by,
            retry_of=job_id,
        )

    # -- transitions ------------------------------------------------------------------------------
    def attach_run(self, job_id: int, run_id: str) -> None:
        with self.warehouse.engine.begin() as conn:
            conn.execute(sa.update(ingestion_job).where(ingestion_job.c.id == job_id).values(run_id=run_id))
        self._badge(job_id)

    def start(self, job_id: int, run_id: str | None = None) -> None:
        if run_id:
            self.attach_run(job_id, run_id)
        self.ledger.transition(job_id, ledger_lib.PROCESSING, message="Processing")
        self._badge(job_id)

    def progress(self, job_id: int, **progress: Any) -> None:
        self.ledger.progress(job_id, **progress)

    def complete(self, job_id: int, *, rejected: int, summary: str, metadata: Mapping[str, Any]) -> None:
        status = ledger_lib.COMPLETED_WITH_ERRORS if rejected else ledger_lib.COMPLETED
        counts = ledger_lib.JobCounts(
            created=int(metadata.get("created", 0)),
            updated=int(metadata.get("updated", 0)),
            unchanged=int(metadata.get("unchanged", 0)),
            rejected=rejected,
        )
        self.ledger.transition(job_id, status, message=summary, counts=counts, metadata=metadata)
        self._code(job_id, PARTIAL_CODE if rejected else COMPLETED_CODE)

    def fail(self, job_id: int, message: str, status_code: int = 500) -> None:
        self.ledger.transition(job_id, ledger_lib.FAILED, message=message)
        self._code(job_id, status_code)

    def _code(self, job_id: int, code: int) -> None:
        with self.warehouse.engine.begin() as conn:
            conn.execute(
                sa.update(tables.data_ingestion_jobs)
                .where(tables.data_ingestion_jobs.c.id == job_id)
                .values(status_code=code)
            )
        self._badge(job_id)

    def _badge(self, job_id: int) -> None:
        """``modules.last_sync_status`` of the job's module (a UI badge without a history query)."""
        job = self.get(job_id)
        badge = {
            "provider": job["provider_type"],
            "status": job["status"],
            "status_code": job["status_code"],
            "last_run": job["run_id"],
            "last_job_id": job_id,
            "target_type": job["target_type"],
            "year": job["year"],
            "message": job["message"],
            "updated_at": _now(),
        }
        m = tables.modules
        with self.warehouse.engine.begin() as conn:
            done = conn.execute(sa.update(m).where(m.c.id == job["module_id"]).values(last_sync_status=jsonable(badge)))
            if done.rowcount == 0:
                conn.execute(
                    sa.insert(m).values(id=job["module_id"], name=job["module_id"], last_sync_status=jsonable(badge))
                )

    # -- reads ------------------------------------------------------------------------------------
    def _select(self) -> sa.Select:
        j, c = ingestion_job, tables.data_ingestion_jobs
        return sa.select(
            c.c.id,
            c.c.inventory_id,
            c.c.module_id,
            c.c.factor_type_id,
            c.c.provider_type,
            c.c.target_type,
            c.c.year,
            j.c.status.label("ledger_status"),
            c.c.status_code,
            j.c.message,
            j.c.metadata,
            c.c.created_by,
            c.c.created_at,
            j.c.started_at,
            j.c.finished_at.label("completed_at"),
            j.c.run_id,
            j.c.retry_of,
            j.c.created,
            j.c.updated,
            j.c.unchanged,
            j.c.rejected,
        ).join(j, j.c.id == c.c.id)

    @staticmethod
    def _record(row: Mapping[str, Any]) -> dict[str, Any]:
        record = dict(row)
        record["status"] = PLAN_STATUS[record["ledger_status"]]
        record["metadata"] = dict(record["metadata"] or {})
        return record

    def get(self, job_id: int) -> dict[str, Any]:
        rows = self.warehouse.fetch(self._select().where(tables.data_ingestion_jobs.c.id == job_id))
        if not rows:
            raise JobNotFound(job_id)
        return self._record(rows[0])

    def history(self, module_id: str, *, provider_type: str | None = None, limit: int = 20) -> list[dict[str, Any]]:
        c = tables.data_ingestion_jobs
        stmt = self._select().where(c.c.module_id == module_id)
        if provider_type:
            stmt = stmt.where(c.c.provider_type == provider_type)
        return [self._record(r) for r in self.warehouse.fetch(stmt.order_by(c.c.id.desc()).limit(limit))]
