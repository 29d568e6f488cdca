"""The ingestion job ledger on SQLite and PostgreSQL: lifecycle, counts, transitions, retries, job()."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from ingestion_platform.lib.ledger import (
    COMPLETED,
    COMPLETED_WITH_ERRORS,
    FAILED,
    PENDING,
    PROCESSING,
    InvalidTransition,
    JobCounts,
    Ledger,
    ingestion_job,
)
from ingestion_platform.lib.warehouse import LoadResult, Warehouse

JOB = {"source": "demo", "asset_key": "demo/things", "partition_key": "2025-03-14", "run_id": "run-1"}


@pytest.fixture
def ledger(warehouse: Warehouse) -> Ledger:
    return Ledger(warehouse)


def utc(value: dt.datetime) -> dt.datetime:
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value


def test_lifecycle_and_counts(ledger: Ledger) -> None:
    job_id = ledger.create(**JOB, provider="api.example", target="demo.thing", metadata={"config": {"x": 1}})
    row = ledger.get(job_id)
    assert row["status"] == PENDING
    assert (row["source"], row["asset_key"], row["partition_key"], row["run_id"]) == tuple(JOB.values())
    assert (row["provider"], row["target"]) == ("api.example", "demo.thing")
    assert (row["created"], row["updated"], row["unchanged"], row["rejected"]) == (0, 0, 0, 0)
    assert row["started_at"] is None and row["finished_at"] is None and row["retry_of"] is None
    assert row["metadata"] == {"config": {"x": 1}}

    ledger.transition(job_id, PROCESSING)
    row = ledger.get(job_id)
    assert row["status"] == PROCESSING
    assert row["started_at"] is not None and row["finished_at"] is None

    ledger.progress(job_id, requests=3)
    ledger.progress(job_id, done=2)
    assert ledger.get(job_id)["metadata"] == {"config": {"x": 1}, "progress": {"requests": 3, "done": 2}}

    counts = JobCounts()
    counts.add(LoadResult("demo.thing", "upsert", received=6, created=3, updated=2, unchanged=1))
    counts.add(LoadResult("demo.other", "upsert", received=4, created=4))
    counts.add(LoadResult("demo.thing", "replace_window", received=1, unchanged=1, deleted=2))
    assert counts.tables == {
        "demo.thing": {"created": 3, "updated": 2, "unchanged": 2, "deleted": 2, "received": 7},
        "demo.other": {"created": 4, "updated": 0, "unchanged": 0, "deleted": 0, "received": 4},
    }
    ledger.transition(job_id, COMPLETED, message="done", counts=counts, metadata={"when": dt.date(2025, 3, 14)})
    row = ledger.get(job_id)
    assert row["status"] == COMPLETED
    assert (row["created"], row["updated"], row["unchanged"], row["rejected"]) == (7, 2, 2, 0)
    assert row["message"] == "done"
    # Metadata is merged, and made JSON-safe.
    assert row["metadata"] == {"config": {"x": 1}, "progress": {"requests": 3, "done": 2}, "when": "2025-03-14"}
    assert utc(row["finished_at"]) >= utc(row["started_at"])


def test_progress_only_while_processing(ledger: Ledger) -> None:
    job_id = ledger.create(**JOB)
    ledger.progress(job_id, requests=1)
    assert "progress" not in ledger.get(job_id)["metadata"]


@pytest.mark.parametrize(
    ("path", "illegal"),
    [
        ([], COMPLETED),
        ([], COMPLETED_WITH_ERRORS),
        ([PROCESSING], PROCESSING),
        ([PROCESSING, COMPLETED], COMPLETED),
        ([PROCESSING, COMPLETED], FAILED),
        ([PROCESSING, COMPLETED], PROCESSING),
        ([PROCESSING, COMPLETED_WITH_ERRORS], COMPLETED),
        ([PROCESSING, FAILED], PROCESSING),
        ([FAILED], COMPLETED),
        ([], PENDING),
        ([], "bogus"),
    ],
)
def test_illegal_transitions_raise(ledger: Ledger, path: list[str], illegal: str) -> None:
    job_id = ledger.create(**JOB)
    for status in path:
        ledger.transition(job_id, status)
    before = ledger.get(job_id)
    with pytest.raises(InvalidTransition, match=repr(illegal)):
        ledger.transition(job_id, illegal, message="should not stick")
    assert ledger.get(job_id) == before


def test_pending_may_fail_directly(ledger: Ledger) -> None:
    job_id = ledger.create(**JOB)
    ledger.transition(job_id, FAILED, message="x" * 20_000)
    row = ledger.get(job_id)
    assert row["status"] == FAILED
    assert row["started_at"] is None and row["finished_at"] is not None
    assert len(row["message"]) == 10_000


def test_unknown_job_cannot_transition(ledger: Ledger) -> None:
    with pytest.raises(InvalidTransition, match="job 999"):
        ledger.transition(999, PROCESSING)
    with pytest.raises(KeyError):
        ledger.get(999)


def test_retry_of_links_to_the_last_failed_job_of_the_same_partition(ledger: Ledger) -> None:
    first = ledger.create(**JOB)
    ledger.transition(first, FAILED)
    second = ledger.create(**JOB)
    assert ledger.get(second)["retry_of"] == first
    ledger.transition(second, PROCESSING)
    ledger.transition(second, FAILED)
    third = ledger.create(**JOB)
    assert ledger.get(third)["retry_of"] == second  # the last failed attempt, not the first
    ledger.transition(third, PROCESSING)
    ledger.transition(third, COMPLETED)
    # After a success, a new run is not a retry.
    assert ledger.get(ledger.create(**JOB))["retry_of"] is None

    # Another partition or another asset is never linked.
    failed_other = ledger.create(**{**JOB, "partition_key": "2025-03-15"})
    ledger.transition(failed_other, FAILED)
    assert ledger.get(ledger.create(**{**JOB, "partition_key": "2025-03-16"}))["retry_of"] is None
    assert (
        ledger.get(ledger.create(**{**JOB, "asset_key": "demo/else", "partition_key": "2025-03-15"}))["retry_of"]
        is None
    )
    assert ledger.get(ledger.create(**{**JOB, "partition_key": "2025-03-15"}))["retry_of"] == failed_other


def test_retry_of_for_unpartitioned_assets(ledger: Ledger) -> None:
    unpartitioned = {**JOB, "partition_key": None}
    failed = ledger.create(**unpartitioned)
    ledger.transition(failed, FAILED)
    assert ledger.get(ledger.create(**unpartitioned))["retry_of"] == failed
    assert ledger.get(ledger.create(**JOB))["retry_of"] is None


def test_jobs_listing(ledger: Ledger) -> None:
    a = ledger.create(**JOB)
    b = ledger.create(**{**JOB, "partition_key": "2025-03-15"})
    c = ledger.create(**{**JOB, "asset_key": "demo/else"})
    assert [j["id"] for j in ledger.jobs()] == [a, b, c]
    assert [j["id"] for j in ledger.jobs(asset_key="demo/things")] == [a, b]
    assert [j["id"] for j in ledger.jobs(asset_key="demo/things", partition_key="2025-03-15")] == [b]


def test_job_context_completes(ledger: Ledger) -> None:
    with ledger.job(**JOB) as handle:
        assert ledger.get(handle.job_id)["status"] == PROCESSING
        handle.loaded(LoadResult("demo.thing", "upsert", received=3, created=2, unchanged=1))
        handle.progress(step="loaded")
    row = ledger.get(handle.job_id)
    assert handle.status == COMPLETED
    assert row["status"] == COMPLETED
    assert (row["created"], row["updated"], row["unchanged"], row["rejected"]) == (2, 0, 1, 0)
    assert row["message"] == "created 2, updated 0, unchanged 1, rejected 0"
    assert row["metadata"]["tables"]["demo.thing"]["created"] == 2
    assert row["metadata"]["progress"] == {"step": "loaded"}
    assert "errors" not in row["metadata"]


def test_job_context_completed_with_errors_when_records_rejected(ledger: Ledger) -> None:
    with ledger.job(**JOB) as handle:
        handle.loaded(LoadResult("demo.thing", "upsert", received=1, created=1))
        handle.rejected("R1C1: bad weight", count=2)
        handle.rejected("R1C2: bad date")
    row = ledger.get(handle.job_id)
    assert handle.status == COMPLETED_WITH_ERRORS
    assert row["status"] == COMPLETED_WITH_ERRORS
    assert row["rejected"] == 3
    assert row["message"] == "created 1, updated 0, unchanged 0, rejected 3; first error: R1C1: bad weight"
    assert row["metadata"]["errors"] == ["R1C1: bad weight", "R1C2: bad date"]


def test_job_context_marks_failed_and_reraises(ledger: Ledger) -> None:
    class Boom(RuntimeError):
        pass

    with pytest.raises(Boom, match="source exploded"), ledger.job(**JOB) as handle:
        handle.loaded(LoadResult("demo.thing", "upsert", received=1, created=1))
        handle.metadata["stage"] = "parse"
        raise Boom("source exploded")
    row = ledger.get(handle.job_id)
    assert row["status"] == FAILED
    assert row["message"] == "Boom: source exploded"
    assert row["created"] == 1
    assert row["metadata"]["stage"] == "parse"
    assert row["finished_at"] is not None
    # The next attempt is linked to it.
    with ledger.job(**JOB) as retry:
        pass
    assert ledger.get(retry.job_id)["retry_of"] == handle.job_id


def test_ledger_table_lives_in_the_platform_namespace(ledger: Ledger, warehouse: Warehouse) -> None:
    assert ingestion_job.fullname == "platform.ingestion_job"
    ledger.create(**JOB)
    assert warehouse.count(ingestion_job, ingestion_job.c.status == PENDING) == 1
    assert warehouse.fetch(sa.select(ingestion_job.c.asset_key)) == [{"asset_key": "demo/things"}]
