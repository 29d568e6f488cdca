"""Table contracts: rows validated before the load, one bad value rejects one record; the window
and deletion rules of replace_window; per-day jobs for a window fetch; dead letters resolved by any
later run covering their day; replays of any range; the ledger after a crash."""

from __future__ import annotations

import datetime as dt
import decimal
import json
from typing import Any

import pytest
import sqlalchemy as sa

from ingestion_platform.lib.contract import TableContract
from ingestion_platform.lib.errors import Parsed, RecordError, Reject
from ingestion_platform.lib.ingest import LoadBehind, PartitionLoad
from ingestion_platform.lib.ledger import COMPLETED, COMPLETED_WITH_ERRORS, FAILED, PROCESSING, Ledger
from ingestion_platform.lib.raw_store import RawStore
from ingestion_platform.lib.warehouse import Warehouse, lineage_columns

D1, D2, D3 = dt.date(2026, 6, 1), dt.date(2026, 6, 2), dt.date(2026, 6, 3)


def horse_table() -> sa.Table:
    return sa.Table(
        "horse",
        sa.MetaData(schema="ctr"),
        sa.Column("day", sa.Date, primary_key=True),
        sa.Column("num", sa.Integer, primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("coat", sa.String(10)),
        sa.Column("weight_kg", sa.Numeric(4, 1)),
        sa.Column("is_runner", sa.Boolean),
        *lineage_columns(),
    )


def rows(*specs: dict[str, Any]) -> list[dict[str, Any]]:
    base = {"day": D1, "name": "X", "coat": "bai", "weight_kg": decimal.Decimal("55.5"), "is_runner": True}
    return [{**base, "num": i + 1, **spec} for i, spec in enumerate(specs)]


@pytest.mark.parametrize(
    ("value", "column", "message"),
    [
        ("alezan brûlé très foncé", "coat", "is 23 characters long, longer than the column's 10"),
        ("Nul\x00Name", "name", "contains a NUL character"),
        (decimal.Decimal("1234.5"), "weight_kg", "is out of range for NUMERIC(4, 1)"),
        ("heavy", "weight_kg", "is str, expected a number"),
        ("yes", "is_runner", "is str, expected a boolean"),
        (None, "name", "is missing (the column is required)"),
        (2**40, "num", "is out of range for the column"),
        ("2026-06-01", "day", "is str, expected a date"),
    ],
)
def test_one_bad_value_rejects_one_row_naming_table_column_key_and_value(value: Any, column: str, message: str) -> None:
    contract = TableContract(horse_table(), "upsert", day_column="day")
    good, rejects = contract.validate(rows({}, {column: value}, {}))
    assert [r["num"] for r in good] == [1, 3]
    [reject] = rejects
    text = str(reject.error)
    assert message in text
    assert "table ctr.horse" in text and f"field {column!r}" in text and repr(value)[:40] in text
    if column not in ("num", "day"):
        assert "key day=datetime.date(2026, 6, 1), num=2" in text
        assert reject.key == {"day": D1, "num": 2}
    assert reject.table == "ctr.horse" and reject.dropped


@pytest.mark.parametrize(
    ("value", "refused"),
    [
        (decimal.Decimal("998.99"), None),  # below the fast bound
        (decimal.Decimal("999.94"), None),  # between the fast bound and the limit: exact rounding
        (decimal.Decimal("999.95"), "is out of range for NUMERIC(4, 1)"),  # rounds to 1000.0
        (decimal.Decimal("-999.95"), "is out of range for NUMERIC(4, 1)"),
        (999, None),
        (1000, "is out of range for NUMERIC(4, 1)"),
        (999.9, None),
        (999.96, "is out of range for NUMERIC(4, 1)"),
        (0, None),
        (decimal.Decimal("0E+5"), None),
        (True, "is bool, expected a number"),
        (float("nan"), "is not a finite number"),
        (decimal.Decimal("Infinity"), "is not a finite number"),
        (decimal.Decimal("sNaN"), "is not a finite number"),
    ],
)
def test_numeric_bounds_are_exact_at_the_limit(value: Any, refused: str | None) -> None:
    """A NUMERIC value is refused exactly when PostgreSQL would refuse it, at the limit too."""
    contract = TableContract(horse_table(), "upsert", day_column="day")
    problem = contract.problem(rows({"weight_kg": value})[0])
    assert (problem[1][: len(refused)] if problem else None) == refused
    assert problem is None or problem[0] == "weight_kg"


class _Text(str):
    pass


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("weight_kg", decimal.Decimal("998.99")),
        ("weight_kg", decimal.Decimal("999.95")),
        ("weight_kg", 999.96),
        ("weight_kg", float("nan")),
        ("weight_kg", float("inf")),
        ("weight_kg", decimal.Decimal("NaN")),
        ("weight_kg", decimal.Decimal("sNaN")),
        ("weight_kg", True),
        ("weight_kg", 12),
        ("num", True),
        ("num", 2**31),
        ("num", -(2**31)),
        ("day", dt.datetime(2026, 6, 1, 12)),
        ("coat", _Text("bai")),
        ("coat", "a" * 10),
        ("coat", "a" * 11),
        ("coat", ""),
        ("name", "x\x00"),
        ("name", ""),
        ("name", None),
        ("is_runner", 1),
        ("is_runner", None),
    ],
)
def test_batch_validation_agrees_with_the_row_check(column: str, value: Any) -> None:
    """``validate`` proves whole columns first; whatever it lets through or refuses, among 500 good rows,
    is exactly what the row-by-row check says of that row."""
    contract = TableContract(horse_table(), "upsert", day_column="day")
    batch = rows(*[{} for _ in range(250)], {column: value}, *[{} for _ in range(249)])
    expected = contract.problem(batch[250])
    good, rejects = contract.validate(batch)
    assert len(good) == 500 - (expected is not None)
    assert [r.error.field for r in rejects] == ([expected[0]] if expected else [])
    if expected:
        assert expected[1] in str(rejects[0].error)


def test_contract_declaration_errors() -> None:
    with pytest.raises(ValueError, match="unknown load mode"):
        TableContract(horse_table(), "merge")
    with pytest.raises(ValueError, match="no column 'when'"):
        TableContract(horse_table(), day_column="when")
    with pytest.raises(ValueError, match="needs a day column or scope columns"):
        TableContract(horse_table(), "replace_window")


def _open(warehouse: Warehouse, store: RawStore, contract: TableContract, partition: str, **kw: Any):
    return PartitionLoad.open(
        source="ctr",
        asset_key="ctr/horse",
        partition=partition,
        run_id=kw.pop("run_id", "run-1"),
        warehouse=warehouse,
        raw_store=store,
        target=[contract],
        **kw,
    )


def _names(warehouse: Warehouse, table: sa.Table) -> dict[tuple, str]:
    return {(r["day"], r["num"]): r["name"] for r in warehouse.fetch(sa.select(table))}


def test_bad_row_is_dead_lettered_and_the_day_loads(warehouse: Warehouse, raw_store: RawStore) -> None:
    contract = TableContract(horse_table(), "replace_window", day_column="day")
    with _open(warehouse, raw_store, contract, D1.isoformat()) as load:
        result = load.load(contract.table, rows({}, {"coat": "x" * 56}, {}))
    assert (result.created, load.job.counts.rejected) == (2, 1)
    [letter] = raw_store.dead_letters("ctr", D1.isoformat())
    assert "56 characters" in letter.error and "coat" in letter.error
    assert json.loads(letter.payload())["coat"] == "x" * 56  # the record is kept, replayable
    job = Ledger(warehouse).get(load.job.job_id)
    assert (job["status"], job["created"], job["rejected"]) == (COMPLETED_WITH_ERRORS, 2, 1)

    # The next run: the rejected row's previous version is never deleted, vanished rows are.
    with _open(warehouse, raw_store, contract, D1.isoformat(), run_id="run-2") as load:
        load.load(contract.table, rows({"name": "A"}, {"name": "B"}))  # 3 vanished, 2 fine now
    assert _names(warehouse, contract.table) == {(D1, 1): "A", (D1, 2): "B"}


def test_keyless_reject_makes_the_load_partial(warehouse: Warehouse, raw_store: RawStore) -> None:
    contract = TableContract(horse_table(), "replace_window", day_column="day")
    with _open(warehouse, raw_store, contract, D1.isoformat()) as load:
        load.load(contract.table, rows({}, {}, {}))
    with _open(warehouse, raw_store, contract, D1.isoformat(), run_id="run-2") as load:
        load.file_rejects("page_1", [Reject(RecordError("no id", record="records[4]"), record={"x": 1})])
        load.load(contract.table, rows({}))
    assert len(_names(warehouse, contract.table)) == 3  # nothing deleted: a record without key was rejected
    assert any("fetch incomplete" in p for p in load.pending)
    with _open(warehouse, raw_store, contract, D1.isoformat(), run_id="run-3") as load:
        load.load(contract.table, rows({}), complete=False)
    assert len(_names(warehouse, contract.table)) == 3  # nor after an incomplete fetch


def test_window_unit_writes_one_job_per_day_and_files_letters_by_day(warehouse: Warehouse, raw_store: RawStore) -> None:
    contract = TableContract(horse_table(), "replace_window", day_column="day")
    window = f"{D1}_{D3}"
    body = json.dumps([{"day": str(d), "num": n} for d in (D1, D2, D3) for n in (1, 2)]).encode()

    def parse(payload: list[dict]) -> Parsed[list[dict]]:
        out, rejects = [], []
        for record in payload:
            day = dt.date.fromisoformat(record["day"])
            if day == D2 and record["num"] == 2:
                error = RecordError("bad", record=f"{day} #2", field="name")
                rejects.append(Reject(error, record=record, day=day, key={"day": day, "num": 2}, name=f"r_{day}_2"))
                continue
            out.append({**rows({})[0], "day": day, "num": record["num"]})
        return Parsed(out, rejects)

    with _open(warehouse, raw_store, contract, window) as load:
        data = load.land("page_1", lambda: _fetched(body))
        load.load(contract.table, load.parse("page_1", data, parse))
    jobs = Ledger(warehouse).jobs(asset_key="ctr/horse")
    assert [(j["partition_key"], j["created"], j["rejected"], j["status"]) for j in jobs] == [
        ("2026-06-01", 2, 0, COMPLETED),
        ("2026-06-02", 1, 1, COMPLETED_WITH_ERRORS),
        ("2026-06-03", 2, 0, COMPLETED),
    ]
    assert jobs[0]["metadata"]["fetch_window"] == [str(D1), str(D3), window]
    [letter] = raw_store.dead_letters("ctr")
    assert (letter.partition, letter.request, letter.origin) == ("2026-06-02", "r_2026-06-02_2", "page_1")

    # A later one-day run over D2 reads the page cleanly: the letter of its day is resolved ...
    def lenient(payload: list[dict]) -> list[dict]:
        return [{**rows({})[0], "day": dt.date.fromisoformat(r["day"]), "num": r["num"]} for r in payload]

    with _open(warehouse, raw_store, contract, D2.isoformat(), run_id="run-2") as day_load:
        data = day_load.land("page_1", lambda: _fetched(body))
        day_load.load(contract.table, day_load.parse("page_1", data, lenient))
    assert raw_store.dead_letters("ctr") == [] and day_load.resolved == ["r_2026-06-02_2"]
    assert day_load.job.counts.created == 1  # only its own day is loaded

    # ... and a replay of any sub-range finds the payloads of the fetch that covered it.
    covered = raw_store.covering("ctr", [D1, D3])
    assert covered == {window: [D1, D3]}


def test_a_job_left_processing_by_a_dead_run_is_closed_and_linked(warehouse: Warehouse, raw_store: RawStore) -> None:
    contract = TableContract(horse_table(), "upsert", day_column="day")
    ledger = Ledger(warehouse)
    dead = ledger.create(source="ctr", asset_key="ctr/horse", partition_key=D1.isoformat(), run_id="dead-run")
    ledger.transition(dead, PROCESSING)
    alive = ledger.create(source="ctr", asset_key="ctr/horse", partition_key=D2.isoformat(), run_id="live-run")
    ledger.transition(alive, PROCESSING)

    with _open(warehouse, raw_store, contract, f"{D1}_{D2}", run_id="run-2",
               is_alive=lambda run_id: run_id == "live-run") as load:  # fmt: skip
        load.load(contract.table, rows({}))
        # Counts are in the ledger as soon as the load committed, before the job ends.
        assert ledger.get(load.jobs[D1].job_id)["created"] == 1
    closed = ledger.get(dead)
    assert closed["status"] == FAILED and "dead-run" in closed["message"] and "run-2" in closed["message"]
    assert ledger.get(load.jobs[D1].job_id)["retry_of"] == dead
    assert ledger.get(alive)["status"] == PROCESSING  # a live run's job is left alone
    assert ledger.get(load.jobs[D2].job_id)["retry_of"] is None


def test_nul_in_an_error_never_blocks_the_ledger(warehouse: Warehouse, raw_store: RawStore) -> None:
    contract = TableContract(horse_table(), "upsert", day_column="day")
    with pytest.raises(ValueError), _open(warehouse, raw_store, contract, D1.isoformat()) as load:
        load.reject("feed_bin", "cannot read \x00\x01 binary", payload=b"\x00\x89PNG")
        raise ValueError("boom \x00 in the message")
    job = Ledger(warehouse).get(load.job.job_id)
    assert job["status"] == FAILED and "\\x00" in job["message"] and "\x00" not in json.dumps(job["metadata"])


def _fetched(body: bytes):
    from ingestion_platform.lib.http import Fetched

    return Fetched(url="https://api.example/x", status=200, body=body, headers={}, attempts=1, elapsed_s=0.0)


def test_a_day_the_source_no_longer_lists_is_emptied(warehouse: Warehouse, raw_store: RawStore) -> None:
    contract = TableContract(horse_table(), "replace_window", day_column="day")
    with _open(warehouse, raw_store, contract, f"{D1}_{D2}") as load:
        load.load(contract.table, [*rows({}, {}), *[{**r, "day": D2} for r in rows({})]])
    with _open(warehouse, raw_store, contract, f"{D1}_{D2}", run_id="run-2") as load:
        result = load.load(contract.table, [{**r, "day": D2} for r in rows({})])
    assert (result.deleted, result.unchanged) == (2, 1)
    assert load.day_results[D1][contract.name].deleted == 2
    assert _names(warehouse, contract.table) == {(D2, 1): "X"}


def test_a_refused_row_is_resolved_when_a_valid_row_with_its_key_loads(
    warehouse: Warehouse, raw_store: RawStore
) -> None:
    contract = TableContract(horse_table(), "upsert", day_column="day")
    with _open(warehouse, raw_store, contract, D1.isoformat()) as load:
        load.load(contract.table, rows({}, {"coat": "x" * 56}))
    [letter] = raw_store.dead_letters("ctr")
    assert letter.context["key"] == {"day": "2026-06-01", "num": 2}
    with _open(warehouse, raw_store, contract, D1.isoformat(), run_id="run-2") as load:
        load.load(contract.table, rows({}, {"coat": "x" * 60}))  # still refused: kept (filed again)
    assert len(raw_store.dead_letters("ctr")) == 1 and load.resolved == []
    with _open(warehouse, raw_store, contract, D1.isoformat(), run_id="run-3") as load:
        load.load(contract.table, rows({}, {"coat": "alezan"}))  # the source (or the contract) is fixed
    assert raw_store.dead_letters("ctr") == [] and load.resolved == [letter.request]


def test_loads_behind_the_parsing_land_in_order_and_fail_in_the_callers_thread(
    warehouse: Warehouse, raw_store: RawStore
) -> None:
    """``LoadBehind``: batches load in the background one at a time, in order (the later batch's value wins),
    rejects are counted as with a direct load, and a load that fails raises in the caller's thread."""
    contract = TableContract(horse_table(), "upsert", day_column="day")
    with _open(warehouse, raw_store, contract, D1.isoformat()) as load:
        with LoadBehind(load) as behind:
            for name in ("first", "second", "third"):
                behind.submit(contract.table, rows(*[{"name": name} for _ in range(300)]))
            behind.submit(contract.table, rows({"name": "last"}, {"coat": "x" * 56}))
        assert load.job.counts.rejected == 1
    names = _names(warehouse, contract.table)
    assert len(names) == 300 and names[(D1, 1)] == "last" and names[(D1, 3)] == "third"

    broken = TableContract(horse_table(), "upsert", day_column="day")
    with _open(warehouse, raw_store, broken, D1.isoformat(), run_id="run-2") as load:
        original = load.warehouse.load

        def failing(table: sa.Table, rows: Any, **kwargs: Any) -> Any:
            if any(r["name"] == "boom" for r in rows):
                raise RuntimeError("the warehouse refused the batch")
            return original(table, rows, **kwargs)

        load.warehouse.load = failing  # type: ignore[method-assign]
        with pytest.raises(RuntimeError, match="refused the batch"), LoadBehind(load) as behind:
            behind.submit(broken.table, rows({"name": "boom"}))
            behind.submit(broken.table, rows({"name": "never"}))
        load.warehouse.load = original  # type: ignore[method-assign]
    assert _names(warehouse, contract.table)[(D1, 1)] == "last"
