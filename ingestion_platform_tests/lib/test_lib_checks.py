"""The check builders, run by Dagster next to a small partitioned asset, on SQLite and PostgreSQL."""

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import sqlalchemy as sa

from ingestion_platform.lib.checks import (
    Check,
    CheckInputs,
    CheckOutcome,
    DateWindow,
    dead_letter_check,
    evaluate_checks,
    raw_reconciliation_check,
    reference_check,
    unique_key_check,
    warehouse_check,
)
from ingestion_platform.lib.raw_store import RawStore, RawStoreResource
from ingestion_platform.lib.warehouse import Warehouse, WarehouseResource, lineage_columns

NS = "chk"
DAILY = dg.DailyPartitionsDefinition(start_date="2025-03-01")
DAY = "2025-03-14"
D14, D13 = dt.date(2025, 3, 14), dt.date(2025, 3, 13)
ASSET = dg.AssetKey(["chk", "runner"])


def make_tables() -> tuple[sa.Table, sa.Table]:
    metadata = sa.MetaData(schema=NS)
    stable = sa.Table(
        "stable",
        metadata,
        sa.Column("code", sa.String(10), primary_key=True),
        sa.Column("name", sa.String(50)),
        *lineage_columns(),
    )
    runner = sa.Table(
        "runner",
        metadata,
        sa.Column("day", sa.Date, primary_key=True),
        sa.Column("seq", sa.Integer, primary_key=True),
        sa.Column("number", sa.Integer),
        sa.Column("stable_code", sa.String(10)),
        *lineage_columns(),
    )
    return stable, runner


@pytest.fixture
def tables(warehouse: Warehouse) -> tuple[sa.Table, sa.Table]:
    stable, runner = make_tables()
    warehouse.ensure_tables([stable, runner])
    warehouse.load(stable, [{"code": "S1", "name": "one"}, {"code": "S2", "name": "two"}])
    return stable, runner


def runner_asset(runner: sa.Table, rows: dict[str, list[dict[str, Any]]]) -> dg.AssetsDefinition:
    """Loads ``rows[partition]`` into the runner table (replacing that day)."""

    @dg.asset(key=ASSET, partitions_def=DAILY, required_resource_keys={"warehouse"})
    def _runner(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        day = dt.date.fromisoformat(context.partition_key)
        result = context.resources.warehouse.get().load(
            runner,
            [{"day": day, **row} for row in rows.get(context.partition_key, [])],
            mode="replace_window",
            window={"day": day},
        )
        return dg.MaterializeResult(metadata={"created": result.created})

    return _runner


def run(
    asset: dg.AssetsDefinition, check: Check, warehouse_url: str, raw_store: RawStore, day: str = DAY
) -> dg.AssetCheckEvaluation:
    result = dg.materialize(
        [asset, check.definition()],
        partition_key=day,
        resources={
            "warehouse": WarehouseResource(database_url=warehouse_url),
            "raw_store": RawStoreResource(data_dir=str(raw_store.root)),
        },
        raise_on_error=False,
    )
    [evaluation] = result.get_asset_check_evaluations()
    return evaluation


def meta(evaluation: dg.AssetCheckEvaluation) -> dict[str, Any]:
    return {k: getattr(v, "value", v) for k, v in evaluation.metadata.items()}


# -- warehouse_check: the plumbing ---------------------------------------------------------------
def test_warehouse_check_gets_the_partition_window_and_reports_outcome(
    tables: tuple[sa.Table, sa.Table], warehouse_url: str, raw_store: RawStore
) -> None:
    _, runner = tables
    seen: list[CheckInputs] = []

    def fn(inputs: CheckInputs) -> CheckOutcome:
        seen.append(inputs)
        n = inputs.warehouse.count(runner, inputs.where(runner, "day"))
        return CheckOutcome(
            passed=n == 2,
            checked=n,
            failures=0 if n == 2 else 1,
            sample=[{"day": D14, "n": n}],
            details={"days": inputs.days(), "note": "custom"},
        )

    rows = {DAY: [{"seq": 1}, {"seq": 2}], "2025-03-13": [{"seq": 1}]}
    asset = runner_asset(runner, rows)
    check = warehouse_check(asset=ASSET, name="two_rows", description="d", fn=fn, partitions_def=DAILY)
    run(asset, check, warehouse_url, raw_store, day="2025-03-13")
    evaluation = run(asset, check, warehouse_url, raw_store)

    assert seen[-1].window == DateWindow(D14, dt.date(2025, 3, 15))
    assert seen[-1].days() == [D14]
    assert isinstance(seen[-1].raw_store, RawStore) and seen[-1].raw_store.root == raw_store.root
    assert (evaluation.check_name, evaluation.passed, evaluation.severity) == (
        "two_rows",
        True,
        dg.AssetCheckSeverity.ERROR,
    )
    m = meta(evaluation)
    assert (m["checked_rows"], m["failing_rows"]) == (2, 0)
    assert m["window"] == "2025-03-14 .. 2025-03-15 (exclusive)"
    assert m["sample"] == [{"day": "2025-03-14", "n": 2}]
    assert m["days"] == ["2025-03-14"] and m["note"] == "custom"

    # The earlier partition has one row: the same check fails there.
    evaluation = run(asset, check, warehouse_url, raw_store, day="2025-03-13")
    assert not evaluation.passed
    assert (meta(evaluation)["checked_rows"], meta(evaluation)["failing_rows"]) == (1, 1)


def test_unpartitioned_check_sees_no_window(
    tables: tuple[sa.Table, sa.Table], warehouse_url: str, raw_store: RawStore
) -> None:
    _, runner = tables
    seen: list[CheckInputs] = []

    def fn(inputs: CheckInputs) -> CheckOutcome:
        seen.append(inputs)
        return CheckOutcome(passed=True, checked=inputs.warehouse.count(runner, inputs.where(runner, "day")))

    asset = runner_asset(runner, {DAY: [{"seq": 1}], "2025-03-13": [{"seq": 1}]})
    check = warehouse_check(asset=ASSET, name="all_rows", description="d", fn=fn, severity=dg.AssetCheckSeverity.WARN)
    run(asset, check, warehouse_url, raw_store, day="2025-03-13")
    evaluation = run(asset, check, warehouse_url, raw_store)
    assert seen[-1].window is None and seen[-1].days() == []
    assert evaluation.severity == dg.AssetCheckSeverity.WARN
    assert meta(evaluation)["checked_rows"] == 2
    assert "window" not in meta(evaluation)


# -- unique_key_check ----------------------------------------------------------------------------
def key_check(runner: sa.Table) -> Check:
    return unique_key_check(asset=ASSET, table=runner, key=["day", "number"], window_column="day", partitions_def=DAILY)


def test_unique_key_check_passes(tables: tuple[sa.Table, sa.Table], warehouse_url: str, raw_store: RawStore) -> None:
    _, runner = tables
    rows = {DAY: [{"seq": 1, "number": 1}, {"seq": 2, "number": 2}]}
    evaluation = run(runner_asset(runner, rows), key_check(runner), warehouse_url, raw_store)
    assert evaluation.check_name == "runner_key_unique_not_null"
    assert evaluation.passed
    assert evaluation.blocking is True
    m = meta(evaluation)
    assert (m["checked_rows"], m["failing_rows"], m["key"]) == (2, 0, "day, number")
    assert "sample" not in m


def test_unique_key_check_finds_duplicates_and_nulls_in_the_window_only(
    tables: tuple[sa.Table, sa.Table], warehouse_url: str, raw_store: RawStore
) -> None:
    _, runner = tables
    rows = {
        DAY: [{"seq": 1, "number": 7}, {"seq": 2, "number": 7}, {"seq": 3, "number": 7}, {"seq": 4, "number": None}],
        "2025-03-13": [{"seq": 1, "number": 1}, {"seq": 2, "number": 1}],
    }
    asset = runner_asset(runner, rows)
    run(asset, key_check(runner), warehouse_url, raw_store, day="2025-03-13")
    evaluation = run(asset, key_check(runner), warehouse_url, raw_store)
    assert not evaluation.passed
    m = meta(evaluation)
    # One duplicated key (three copies) + one NULL key, counted in this day only.
    assert (m["checked_rows"], m["failing_rows"]) == (4, 2)
    assert {"day": "2025-03-14", "number": 7, "copies": 3} in m["sample"]
    assert {"day": "2025-03-14", "number": None} in m["sample"]

    # Fixing the day makes it pass, although the 13th is still broken.
    rows[DAY] = [{"seq": 1, "number": 7}, {"seq": 2, "number": 8}]
    assert run(asset, key_check(runner), warehouse_url, raw_store).passed
    assert not run(asset, key_check(runner), warehouse_url, raw_store, day="2025-03-13").passed


def test_unique_key_check_scope_limits_the_rows_checked(
    tables: tuple[sa.Table, sa.Table], warehouse_url: str, raw_store: RawStore
) -> None:
    _, runner = tables
    rows = {DAY: [{"seq": 1, "number": 7}, {"seq": 2, "number": 7}, {"seq": 3, "number": 9}]}
    scoped = unique_key_check(
        asset=ASSET,
        table=runner,
        key=["day", "number"],
        window_column="day",
        partitions_def=DAILY,
        scope=runner.c.number == 9,
        scope_label="number 9",
    )
    assert "(number 9)" in scoped.spec().description
    evaluation = run(runner_asset(runner, rows), scoped, warehouse_url, raw_store)
    assert evaluation.passed  # the duplicated 7s are outside the scope
    assert meta(evaluation)["checked_rows"] == 1
    assert not run(runner_asset(runner, rows), key_check(runner), warehouse_url, raw_store).passed


# -- reference_check -----------------------------------------------------------------------------
def ref_check(stable: sa.Table, runner: sa.Table) -> Check:
    return reference_check(
        asset=ASSET,
        child=runner,
        child_columns=["stable_code"],
        parent=stable,
        parent_columns=["code"],
        window_column="day",
        partitions_def=DAILY,
    )


def test_reference_check_passes_with_nulls(
    tables: tuple[sa.Table, sa.Table], warehouse_url: str, raw_store: RawStore
) -> None:
    stable, runner = tables
    rows = {DAY: [{"seq": 1, "stable_code": "S1"}, {"seq": 2, "stable_code": "S2"}, {"seq": 3, "stable_code": None}]}
    evaluation = run(runner_asset(runner, rows), ref_check(stable, runner), warehouse_url, raw_store)
    assert evaluation.check_name == "runner_references_stable"
    assert evaluation.passed
    assert (meta(evaluation)["checked_rows"], meta(evaluation)["failing_rows"]) == (3, 0)


def test_reference_check_reports_orphans_in_the_window(
    tables: tuple[sa.Table, sa.Table], warehouse_url: str, raw_store: RawStore
) -> None:
    stable, runner = tables
    rows = {
        DAY: [{"seq": 1, "stable_code": "S1"}, {"seq": 2, "stable_code": "GONE"}, {"seq": 3, "stable_code": "GONE"}],
        "2025-03-13": [{"seq": 1, "stable_code": "OTHER"}],
    }
    asset = runner_asset(runner, rows)
    check = ref_check(stable, runner)
    run(asset, check, warehouse_url, raw_store, day="2025-03-13")
    evaluation = run(asset, check, warehouse_url, raw_store)
    assert not evaluation.passed
    m = meta(evaluation)
    assert (m["checked_rows"], m["failing_rows"]) == (3, 2)
    assert m["sample"] == [{"stable_code": "GONE"}]
    assert m["reference"] == "runner(stable_code) -> stable"


# -- dead_letter_check ---------------------------------------------------------------------------
def test_dead_letter_check(tables: tuple[sa.Table, sa.Table], warehouse_url: str, raw_store: RawStore) -> None:
    _, runner = tables
    asset = runner_asset(runner, {DAY: [{"seq": 1}]})
    check = dead_letter_check(asset=ASSET, source="chk", partitions_def=DAILY)
    asset_key = ASSET.to_user_string()

    evaluation = run(asset, check, warehouse_url, raw_store)
    assert (evaluation.check_name, evaluation.passed) == ("no_dead_letters", True)
    assert evaluation.severity == dg.AssetCheckSeverity.WARN

    # Letters of another asset, another day or another source do not count.
    raw_store.dead_letter("chk", DAY, "other-asset", "x", context={"asset_key": "chk/other"})
    raw_store.dead_letter("chk", "2025-03-13", "other-day", "x", context={"asset_key": asset_key})
    raw_store.dead_letter("elsewhere", DAY, "other-source", "x", context={"asset_key": asset_key})
    assert run(asset, check, warehouse_url, raw_store).passed

    raw_store.dead_letter("chk", DAY, "R1C1", ValueError("bad weight"), context={"asset_key": asset_key})
    evaluation = run(asset, check, warehouse_url, raw_store)
    assert not evaluation.passed
    m = meta(evaluation)
    assert (m["checked_rows"], m["failing_rows"]) == (1, 1)
    assert m["sample"] == [{"partition": DAY, "request": "R1C1", "error": "ValueError: bad weight"}]

    raw_store.resolve("chk", DAY, "R1C1")
    assert run(asset, check, warehouse_url, raw_store).passed


def test_date_window_clause(tmp_path: Path) -> None:
    window = DateWindow(D13, D14)
    column = sa.column("day", sa.Date)
    compiled = str(window.clause(column).compile(compile_kwargs={"literal_binds": True}))
    assert compiled == "day >= '2025-03-13' AND day < '2025-03-14'"
    inputs = CheckInputs(warehouse=None, raw_store=RawStore(tmp_path), window=DateWindow(D13, dt.date(2025, 3, 16)))  # type: ignore[arg-type]
    assert inputs.days() == [D13, D14, dt.date(2025, 3, 15)]


# -- checks evaluated inside the asset's step, per partition --------------------------------------------
def test_checks_in_the_asset_step_report_each_partition_of_a_range_run(
    tables: tuple[sa.Table, sa.Table], warehouse_url: str, raw_store: RawStore
) -> None:
    """A range run of an asset carrying its checks: one evaluation per check and day, aimed at that
    day's materialisation; a blocking failure on one day fails the step after every result is in."""
    _, runner = tables
    rows = {"2025-03-13": [{"seq": 1}], "2025-03-14": [{"seq": 1}, {"seq": 2}], "2025-03-15": [{"seq": 1}]}

    def two_rows(inputs: CheckInputs) -> CheckOutcome:
        n = inputs.warehouse.count(runner, inputs.where(runner, "day"))
        return CheckOutcome(passed=n == 2, checked=n, failures=0 if n == 2 else 1)

    blocking = warehouse_check(asset=ASSET, name="two_rows", description="d", fn=two_rows, blocking=True,
                               partitions_def=DAILY)  # fmt: skip
    key_check = unique_key_check(asset=ASSET, table=runner, key=["day", "seq"], window_column="day",
                                 partitions_def=DAILY)  # fmt: skip
    checks = [blocking, key_check]

    @dg.asset(key=ASSET, partitions_def=DAILY, check_specs=[c.spec() for c in checks],
              required_resource_keys={"warehouse", "raw_store"})  # fmt: skip
    def runner_asset(context: dg.AssetExecutionContext):
        wh = context.resources.warehouse.get()
        days = [dt.date.fromisoformat(k) for k in context.partition_keys]
        for key, day in zip(context.partition_keys, days, strict=True):
            wh.load(runner, [{"day": day, **r} for r in rows[key]], mode="replace_window", window={"day": day})
            context.add_asset_metadata({"rows": len(rows[key])}, partition_key=key)
        yield dg.MaterializeResult()
        yield from evaluate_checks(context, checks, warehouse=wh, raw_store=context.resources.raw_store.get(),
                                   days=days, partition_keys=context.partition_keys)  # fmt: skip

    result = dg.materialize(
        [runner_asset],
        tags={"dagster/asset_partition_range_start": "2025-03-13", "dagster/asset_partition_range_end": "2025-03-15"},
        resources={
            "warehouse": WarehouseResource(database_url=warehouse_url),
            "raw_store": RawStoreResource(data_dir=str(raw_store.root)),
        },
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
    )
    assert not result.success  # two days have one row: the blocking check fails the step
    shown = {m.partition: m.metadata["rows"].value for m in result.asset_materializations_for_node("chk__runner")}
    assert shown == {"2025-03-13": 1, "2025-03-14": 2, "2025-03-15": 1}
    got = {(e.check_name, e.partition): e for e in result.get_asset_check_evaluations()}
    assert set(got) == {(c.name, d) for c in checks for d in ("2025-03-13", "2025-03-14", "2025-03-15")}
    assert [got[("two_rows", d)].passed for d in ("2025-03-13", "2025-03-14", "2025-03-15")] == [False, True, False]
    assert all(got[("runner_key_unique_not_null", d)].passed for d in ("2025-03-13", "2025-03-14", "2025-03-15"))
    assert meta(got[("two_rows", "2025-03-14")])["window"] == "2025-03-14 .. 2025-03-15 (exclusive)"
    # each evaluation points at its own partition's materialisation
    targets = {e.partition: e.target_materialization_data.storage_id for e in got.values()}
    assert len(set(targets.values())) == 3


def test_checks_in_the_step_run_at_once_on_postgresql_and_report_in_their_order(
    pg_url: str, raw_store: RawStore
) -> None:
    """On PostgreSQL two checks of a step are evaluated at the same time (each waits for the other at a
    barrier: evaluated one after the other, the first would time out and raise), yet reported in
    their declared order with their own outcomes."""
    import threading

    meeting = threading.Barrier(2, timeout=60)

    def meets(passed: bool) -> Callable[[CheckInputs], CheckOutcome]:
        def fn(inputs: CheckInputs) -> CheckOutcome:
            meeting.wait()
            return CheckOutcome(passed=passed, checked=1, failures=0 if passed else 1)

        return fn

    checks = [
        warehouse_check(asset=ASSET, name=f"meets_{i}", description="d", fn=meets(i != 1), partitions_def=DAILY)
        for i in range(2)
    ]

    @dg.asset(key=ASSET, partitions_def=DAILY, check_specs=[c.spec() for c in checks],
              required_resource_keys={"warehouse", "raw_store"})  # fmt: skip
    def runner_asset(context: dg.AssetExecutionContext):
        yield dg.MaterializeResult()
        yield from evaluate_checks(context, checks, warehouse=context.resources.warehouse.get(),
                                   raw_store=context.resources.raw_store.get(), days=[D14])  # fmt: skip

    result = dg.materialize(
        [runner_asset],
        partition_key=DAY,
        resources={
            "warehouse": WarehouseResource(database_url=pg_url),
            "raw_store": RawStoreResource(data_dir=str(raw_store.root)),
        },
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
    )
    assert result.success
    found = [(e.check_name, e.partition, e.passed) for e in result.get_asset_check_evaluations()]
    assert found == [("meets_0", DAY, True), ("meets_1", DAY, False)]


# -- raw_reconciliation_check ----------------------------------------------------------------------
def test_raw_reconciliation_compares_every_key_and_names_the_odd_ones(
    tables: tuple[sa.Table, sa.Table], warehouse_url: str, raw_store: RawStore
) -> None:
    """Raw records and rows are compared as key hashes by day: 3,000 matching keys pass; a raw record
    with no row (``-2`` beside a row ``-1``: ``hash(-1) == hash(-2)`` in Python) and a row inside a
    checked payload's scope that no raw record explains fail, each named in the sample."""
    _, runner = tables
    asset_key = ASSET.to_user_string()
    seqs = list(range(1, 3_001))
    for page in range(3):
        body = json.dumps([{"day": DAY, "seq": s} for s in seqs[page * 1000 : (page + 1) * 1000]]).encode()
        raw_store.write("chk", DAY, f"page_{page}", body, asset_key=asset_key)

    def raw_keys(request: str, body: bytes, label: str) -> list[tuple[Any, ...]]:
        return [(dt.date.fromisoformat(r["day"]), r["seq"]) for r in json.loads(body)]

    def row_keys(inputs: CheckInputs) -> Any:
        stmt = sa.select(runner.c.day, runner.c.seq).where(inputs.where(runner, "day"))
        return inputs.warehouse.stream_tuples(stmt)

    check = raw_reconciliation_check(
        asset=ASSET, source="chk", name="rows_match_raw", description="rows match the raw pages",
        raw_keys=raw_keys, row_keys=row_keys, scope_of=lambda request, label: (dt.date.fromisoformat(label),),
        partitions_def=DAILY,
    )  # fmt: skip
    rows = {DAY: [{"seq": s} for s in seqs]}
    evaluation = run(runner_asset(runner, rows), check, warehouse_url, raw_store)
    assert evaluation.passed and (meta(evaluation)["checked_rows"], meta(evaluation)["failing_rows"]) == (3000, 0)

    raw_store.write("chk", DAY, "page_3", json.dumps([{"day": DAY, "seq": -2}]).encode(), asset_key=asset_key)
    rows[DAY] += [{"seq": -1}, {"seq": 7_777}]
    evaluation = run(runner_asset(runner, rows), check, warehouse_url, raw_store)
    assert not evaluation.passed
    m = meta(evaluation)
    assert (m["checked_rows"], m["failing_rows"], m["rows_in_window"]) == (3001, 3, 3002)
    assert m["sample"] == [
        {"missing_row": [DAY, "-2"]},
        {"row_not_in_raw": [DAY, "-1"]},
        {"row_not_in_raw": [DAY, "7777"]},
    ]
