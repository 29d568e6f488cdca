"""The warehouse on SQLite and PostgreSQL: namespaces, load modes and their counts, value round trips,
transactions, errors and streaming."""

from __future__ import annotations

import datetime as dt
import decimal
import re
import sqlite3
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from ingestion_platform.lib import warehouse as warehouse_module
from ingestion_platform.lib.warehouse import (
    LoadResult,
    Warehouse,
    WarehouseError,
    WarehouseResource,
    lineage_columns,
    redact_url,
)

NS = "lt"
UTC = dt.UTC
PLUS2 = dt.timezone(dt.timedelta(hours=2))


def item_table(name: str = "item", schema: str = NS) -> sa.Table:
    return sa.Table(
        name,
        sa.MetaData(schema=schema),
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("label", sa.String(50)),
        sa.Column("qty", sa.Integer),
        *lineage_columns(),
    )


def daily_table() -> sa.Table:
    return sa.Table(
        "daily",
        sa.MetaData(schema=NS),
        sa.Column("day", sa.Date, primary_key=True),
        sa.Column("code", sa.String(10), primary_key=True),
        sa.Column("value", sa.Integer),
        *lineage_columns(),
    )


def rows_by_id(warehouse: Warehouse, table: sa.Table) -> dict[Any, dict[str, Any]]:
    key = table.primary_key.columns.values()[0].name
    return {r[key]: r for r in warehouse.fetch(sa.select(table))}


def as_utc(value: dt.datetime) -> dt.datetime:
    """SQLite reads timezone-aware columns back naive (UTC); PostgreSQL aware."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def counts(result: LoadResult) -> tuple[int, int, int, int, int]:
    return result.created, result.updated, result.unchanged, result.deleted, result.duplicates


# -- namespaces ------------------------------------------------------------------------------
def test_namespace_is_a_schema_or_an_attached_file(warehouse: Warehouse, warehouse_url: str) -> None:
    table = item_table()
    warehouse.ensure_tables([table])
    warehouse.load(table, [{"id": 1, "label": "a"}])
    if warehouse.dialect == "sqlite":
        main = Path(sa.make_url(warehouse_url).database)
        attached = main.with_name(f"{main.stem}.{NS}.db")
        assert attached.is_file()
        with sqlite3.connect(attached) as raw:
            assert raw.execute("SELECT label FROM item").fetchall() == [("a",)]
        with sqlite3.connect(main) as raw:
            assert raw.execute("SELECT name FROM sqlite_master WHERE name = 'item'").fetchall() == []
        # A new process finds the namespace file again and attaches it.
        fresh = Warehouse(warehouse_url)
        try:
            assert fresh.count(table) == 1
        finally:
            fresh.engine.dispose()
    else:
        with warehouse.engine.connect() as conn:
            schemas = conn.execute(sa.text("SELECT schema_name FROM information_schema.schemata")).scalars().all()
            where = sa.text("SELECT table_schema FROM information_schema.tables WHERE table_name = 'item'")
            assert NS in schemas
            assert conn.execute(where).scalars().all() == [NS]


def test_two_namespaces_side_by_side(warehouse: Warehouse) -> None:
    a, b = item_table(schema="ns_a"), item_table(schema="ns_b")
    warehouse.load(a, [{"id": 1, "label": "in a"}])
    warehouse.load(b, [{"id": 1, "label": "in b"}, {"id": 2, "label": "in b"}])
    assert warehouse.fetch(sa.select(a.c.label)) == [{"label": "in a"}]
    assert warehouse.count(b) == 2


def test_sqlite_rejects_unsafe_namespace_names(sqlite_url: str) -> None:
    warehouse = warehouse_module.get_warehouse(sqlite_url)
    with pytest.raises(ValueError, match="invalid namespace"):
        warehouse.ensure_tables([item_table(schema='x"; DROP')])


def test_sqlite_needs_a_file(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="file path"):
        Warehouse("sqlite://")


# -- load modes --------------------------------------------------------------------------------
def test_upsert_counts_first_load_rerun_and_ten_percent_changed(warehouse: Warehouse) -> None:
    table = item_table()
    rows = [{"id": i, "label": f"item {i}", "qty": i % 7} for i in range(200)]

    first = warehouse.load(table, rows, run_id="run-1")
    assert (first.table, first.mode, first.received) == (f"{NS}.item", "upsert", 200)
    assert counts(first) == (200, 0, 0, 0, 0)
    before = rows_by_id(warehouse, table)
    assert {r["_run_id"] for r in before.values()} == {"run-1"}
    assert all(r["_ingested_at"] is not None for r in before.values())

    rerun = warehouse.load(table, rows, run_id="run-2")
    assert counts(rerun) == (0, 0, 200, 0, 0)
    after_rerun = rows_by_id(warehouse, table)
    # Unchanged rows keep their lineage: neither _ingested_at nor _run_id moves.
    assert after_rerun == before

    changed_ids = set(range(0, 200, 10))
    changed = [{**r, "label": r["label"] + " (new)"} if r["id"] in changed_ids else r for r in rows]
    third = warehouse.load(table, changed, run_id="run-3")
    assert counts(third) == (0, 20, 180, 0, 0)
    after = rows_by_id(warehouse, table)
    for i, row in after.items():
        if i in changed_ids:
            assert row["label"] == f"item {i} (new)"
            assert row["_run_id"] == "run-3"
            assert as_utc(row["_ingested_at"]) > as_utc(before[i]["_ingested_at"])
        else:
            assert row == before[i]


def test_upsert_null_change_counts_as_update(warehouse: Warehouse) -> None:
    table = item_table()
    warehouse.load(table, [{"id": 1, "label": "a", "qty": 1}, {"id": 2, "label": None, "qty": None}])
    result = warehouse.load(table, [{"id": 1, "label": None, "qty": 1}, {"id": 2, "label": None, "qty": None}])
    assert counts(result) == (0, 1, 1, 0, 0)
    result = warehouse.load(table, [{"id": 1, "label": "a", "qty": 1}])
    assert counts(result) == (0, 1, 0, 0, 0)
    assert rows_by_id(warehouse, table)[1]["label"] == "a"


def test_missing_columns_are_null(warehouse: Warehouse) -> None:
    table = item_table()
    warehouse.load(table, [{"id": 1}])
    row = rows_by_id(warehouse, table)[1]
    assert (row["label"], row["qty"]) == (None, None)


def test_insert_missing_never_updates(warehouse: Warehouse) -> None:
    table = item_table()
    warehouse.load(table, [{"id": 1, "label": "a"}, {"id": 2, "label": "b"}], run_id="r1")
    before = rows_by_id(warehouse, table)
    result = warehouse.load(
        table, [{"id": 1, "label": "CHANGED"}, {"id": 3, "label": "c"}], mode="insert_missing", run_id="r2"
    )
    assert result.mode == "insert_missing"
    assert counts(result) == (1, 0, 1, 0, 0)
    after = rows_by_id(warehouse, table)
    assert after[1] == before[1]
    assert after[2] == before[2]
    assert (after[3]["label"], after[3]["_run_id"]) == ("c", "r2")


def test_replace_window_deletes_only_missing_rows_inside_the_window(warehouse: Warehouse) -> None:
    table = daily_table()
    d1, d2 = dt.date(2025, 3, 14), dt.date(2025, 3, 15)
    warehouse.load(
        table,
        [{"day": d1, "code": c, "value": 1} for c in "abc"] + [{"day": d2, "code": c, "value": 1} for c in "ab"],
    )
    new_d1 = [{"day": d1, "code": "a", "value": 1}, {"day": d1, "code": "c", "value": 2}, {"day": d1, "code": "d"}]

    result = warehouse.load(table, new_d1, mode="replace_window", window={"day": d1})
    assert counts(result) == (1, 1, 1, 1, 0)
    keys = {(r["day"], r["code"]) for r in warehouse.fetch(sa.select(table))}
    # b of day 1 is gone; day 2, outside the window, keeps the keys absent from this load.
    assert keys == {(d1, "a"), (d1, "c"), (d1, "d"), (d2, "a"), (d2, "b")}

    rerun = warehouse.load(table, new_d1, mode="replace_window", window=table.c.day == d1)
    assert counts(rerun) == (0, 0, 3, 0, 0)

    # An empty set empties exactly its window.
    emptied = warehouse.load(table, [], mode="replace_window", window=table.c.day == d2)
    assert counts(emptied) == (0, 0, 0, 2, 0)
    assert warehouse.count(table) == 3


def test_replace_window_with_rows_outside_the_window_does_not_delete_them(warehouse: Warehouse) -> None:
    table = daily_table()
    d1, d2 = dt.date(2025, 3, 14), dt.date(2025, 3, 15)
    warehouse.load(table, [{"day": d1, "code": "a"}, {"day": d2, "code": "z"}])
    result = warehouse.load(table, [{"day": d1, "code": "b"}], mode="replace_window", window={"day": d1})
    assert (result.created, result.deleted) == (1, 1)
    assert {(r["day"], r["code"]) for r in warehouse.fetch(sa.select(table))} == {(d1, "b"), (d2, "z")}


@pytest.mark.parametrize("mode", ["upsert", "insert_missing", "replace_window"])
def test_duplicate_keys_in_one_load_last_wins(warehouse: Warehouse, mode: str) -> None:
    table = item_table()
    window = table.c.id < 100 if mode == "replace_window" else None
    rows = [
        {"id": 1, "label": "first"},
        {"id": 2, "label": "only"},
        {"id": 1, "label": "second"},
        {"id": 1, "label": "last"},
    ]
    result = warehouse.load(table, rows, mode=mode, window=window)
    assert result.received == 4
    assert counts(result) == (2, 0, 0, 0, 2)
    assert {i: r["label"] for i, r in rows_by_id(warehouse, table).items()} == {1: "last", 2: "only"}


def test_duplicate_keys_against_existing_rows(warehouse: Warehouse) -> None:
    table = item_table()
    warehouse.load(table, [{"id": 1, "label": "a"}, {"id": 2, "label": "b"}])
    # The first copy of 1 equals the stored row, the last one differs: the last one wins.
    result = warehouse.load(table, [{"id": 1, "label": "a"}, {"id": 1, "label": "z"}, {"id": 2, "label": "b"}])
    assert counts(result) == (0, 1, 1, 0, 1)
    result = warehouse.load(table, [{"id": 2, "label": "b"}, {"id": 2, "label": "b"}])
    assert counts(result) == (0, 0, 1, 0, 1)
    assert {i: r["label"] for i, r in rows_by_id(warehouse, table).items()} == {1: "z", 2: "b"}


def test_key_only_table(warehouse: Warehouse) -> None:
    table = sa.Table(
        "tag", sa.MetaData(schema=NS), sa.Column("name", sa.String(20), primary_key=True), *lineage_columns()
    )
    assert counts(warehouse.load(table, [{"name": "x"}, {"name": "y"}, {"name": "x"}])) == (2, 0, 0, 0, 1)
    assert counts(warehouse.load(table, [{"name": "x"}, {"name": "y"}])) == (0, 0, 2, 0, 0)


# -- values --------------------------------------------------------------------------------------
def values_table() -> sa.Table:
    return sa.Table(
        "vals",
        sa.MetaData(schema=NS),
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("text", sa.Text),
        sa.Column("amount", sa.Numeric(14, 4)),
        sa.Column("ratio", sa.Float),
        sa.Column("flag", sa.Boolean),
        sa.Column("day", sa.Date),
        sa.Column("at", sa.DateTime(timezone=True)),
        sa.Column("doc", sa.JSON),
        *lineage_columns(),
    )


VALUE_ROWS = [
    {
        "id": 1,
        "text": "tab\there, newline\nthere, back\\slash, crlf\r\n, accents éàç, 𝔘nicode",
        "amount": decimal.Decimal("1234.5678"),
        "ratio": 0.1,
        "flag": True,
        "day": dt.date(2025, 3, 14),
        "at": dt.datetime(2025, 3, 14, 13, 15, 30, 123456, tzinfo=PLUS2),
        "doc": {"name": "x\ty", "nested": {"list": [1, 2.5, None, "s"], "ok": True}, "unicode": "é"},
    },
    {"id": 2, "text": None, "amount": None, "ratio": None, "flag": None, "day": None, "at": None, "doc": None},
    {
        "id": 3,
        "text": "",
        "amount": decimal.Decimal("-0.0001"),
        "ratio": -1.5e-10,
        "flag": False,
        "day": dt.date(1999, 12, 31),
        "at": dt.datetime(2025, 1, 1, 0, 0, tzinfo=UTC),
        "doc": ["a", {"b": "\\N"}],
    },
    {"id": 4, "text": "\\N", "doc": "just a string"},
]


def test_values_round_trip(warehouse: Warehouse) -> None:
    table = values_table()
    assert counts(warehouse.load(table, VALUE_ROWS)) == (4, 0, 0, 0, 0)
    stored = rows_by_id(warehouse, table)
    for expected in VALUE_ROWS:
        row = stored[expected["id"]]
        for name in ("text", "amount", "ratio", "flag", "day", "doc"):
            assert row[name] == expected.get(name), name
        if expected.get("at") is None:
            assert row["at"] is None
        else:
            # The same instant on both engines (SQLite stores it as UTC).
            assert as_utc(row["at"]) == expected["at"]
    assert stored[1]["amount"] == decimal.Decimal("1234.5678")
    assert isinstance(stored[1]["amount"], decimal.Decimal)
    assert as_utc(stored[1]["at"]) == dt.datetime(2025, 3, 14, 11, 15, 30, 123456, tzinfo=UTC)

    # Re-loading the same values is no change for any type.
    assert counts(warehouse.load(table, VALUE_ROWS)) == (0, 0, 4, 0, 0)


def test_same_instant_in_another_offset_is_unchanged(warehouse: Warehouse) -> None:
    table = values_table()
    warehouse.load(table, [{"id": 1, "at": dt.datetime(2025, 3, 14, 12, 0, tzinfo=PLUS2)}])
    result = warehouse.load(table, [{"id": 1, "at": dt.datetime(2025, 3, 14, 10, 0, tzinfo=UTC)}])
    assert counts(result) == (0, 0, 1, 0, 0)
    result = warehouse.load(table, [{"id": 1, "at": dt.datetime(2025, 3, 14, 12, 0, tzinfo=UTC)}])
    assert counts(result) == (0, 1, 0, 0, 0)


def test_json_changes_are_detected_and_compared_as_text(warehouse: Warehouse) -> None:
    table = values_table()
    warehouse.load(table, [{"id": 1, "doc": {"a": 1, "b": [1, 2]}}])
    assert counts(warehouse.load(table, [{"id": 1, "doc": {"a": 1, "b": [1, 2]}}])) == (0, 0, 1, 0, 0)
    assert counts(warehouse.load(table, [{"id": 1, "doc": {"a": 1, "b": [2, 1]}}])) == (0, 1, 0, 0, 0)
    # The module compares JSON "as its text" (warehouse._changed): reordered keys are a change.
    assert counts(warehouse.load(table, [{"id": 1, "doc": {"b": [2, 1], "a": 1}}])) == (0, 1, 0, 0, 0)
    assert rows_by_id(warehouse, table)[1]["doc"] == {"a": 1, "b": [2, 1]}


# -- transactions and errors -------------------------------------------------------------------
def test_load_in_callers_connection_rolls_back_with_it(warehouse: Warehouse) -> None:
    table, other = item_table(), item_table("other")
    warehouse.ensure_tables([table, other])

    class Abort(Exception):
        pass

    with pytest.raises(Abort), warehouse.engine.begin() as conn:
        result = warehouse.load(table, [{"id": i} for i in range(5)], connection=conn)
        assert result.created == 5
        assert conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one() == 5
        raise Abort
    assert warehouse.count(table) == 0

    with warehouse.engine.begin() as conn:
        warehouse.load(table, [{"id": 1}], connection=conn)
        warehouse.load(other, [{"id": 1}, {"id": 2}], connection=conn)
    assert (warehouse.count(table), warehouse.count(other)) == (1, 2)


def test_failed_load_names_the_table_and_leaves_nothing(warehouse: Warehouse) -> None:
    table = sa.Table(
        "strict",
        sa.MetaData(schema=NS),
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("required", sa.String(10), nullable=False),
        *lineage_columns(),
    )
    with pytest.raises(WarehouseError, match=rf"{NS}\.strict \(upsert\)"):
        warehouse.load(table, [{"id": 1, "required": "ok"}, {"id": 2, "required": None}])
    assert warehouse.count(table) == 0
    # The failed load left no staging table behind: the same load works once fixed.
    assert warehouse.load(table, [{"id": 1, "required": "ok"}]).created == 1


def test_unparseable_value_names_the_table(warehouse: Warehouse) -> None:
    table = item_table()
    with pytest.raises(WarehouseError, match=rf"load into {NS}\.item \(insert_missing\) failed"):
        warehouse.load(table, [{"id": "not a number"}], mode="insert_missing")
    assert warehouse.count(table) == 0


def test_argument_errors(warehouse: Warehouse) -> None:
    table = item_table()
    with pytest.raises(ValueError, match="unknown load mode"):
        warehouse.load(table, [], mode="merge")
    with pytest.raises(ValueError, match="needs a window"):
        warehouse.load(table, [], mode="replace_window")
    keyless = sa.Table("keyless", sa.MetaData(schema=NS), sa.Column("x", sa.Integer), *lineage_columns())
    with pytest.raises(ValueError, match=rf"{NS}\.keyless has no primary key"):
        warehouse.load(keyless, [{"x": 1}])


def test_redact_url_hides_passwords() -> None:
    url = "postgresql://ingest:s3cr3t-pw@db.example:5432/warehouse"
    redacted = redact_url(url)
    assert "s3cr3t-pw" not in redacted
    assert redacted.startswith("postgresql://ingest:")
    assert "@db.example:5432/warehouse" in redacted
    assert redact_url("sqlite:////tmp/w.db") == "sqlite:////tmp/w.db"
    assert "s3cr3t-pw" not in WarehouseResource(database_url=url).describe()
    with pytest.raises(ValueError, match="unsupported") as info:
        Warehouse("mysql://ingest:s3cr3t-pw@db.example/warehouse")
    assert "s3cr3t-pw" not in str(info.value)


def test_get_warehouse_is_one_instance_per_url(sqlite_url: str) -> None:
    assert warehouse_module.get_warehouse(sqlite_url) is warehouse_module.get_warehouse(sqlite_url)


# -- streaming -----------------------------------------------------------------------------------
def test_20k_rows_are_streamed(warehouse: Warehouse, monkeypatch: pytest.MonkeyPatch) -> None:
    table = item_table("big")
    warehouse.ensure_tables([table])
    total = 20_000
    produced = 0
    seen_at_write: list[int] = []

    def rows() -> Any:
        nonlocal produced
        for i in range(total):
            produced += 1
            yield {"id": i, "label": f"row {i:05d} " + "x" * 30, "qty": i}

    if warehouse.dialect == "postgresql":
        monkeypatch.setattr(warehouse_module, "_COPY_CHUNK_BYTES", 64 * 1024)
        original_read = warehouse_module._CopyStream.read

        def read(self: Any, size: int = -1) -> bytes:
            data = original_read(self, size)
            seen_at_write.append(produced)
            return data

        monkeypatch.setattr(warehouse_module._CopyStream, "read", read)
    else:

        def before(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
            if re.match(r'INSERT INTO "?_stage_', statement):
                seen_at_write.append(produced)

        sa.event.listen(warehouse.engine, "before_cursor_execute", before)

    try:
        result = warehouse.load(table, rows())
    finally:
        if warehouse.dialect == "sqlite":
            sa.event.remove(warehouse.engine, "before_cursor_execute", before)
    assert counts(result) == (total, 0, 0, 0, 0)
    assert result.received == total
    assert warehouse.count(table) == total
    # Rows reached the database while the generator was still producing: never all held at once.
    assert len(seen_at_write) >= 4
    assert seen_at_write[0] < total / 2
    assert seen_at_write == sorted(seen_at_write)
    assert counts(warehouse.load(table, rows())) == (0, 0, total, 0, 0)


def test_count_by_gives_the_figures_per_day_of_one_load(warehouse: Warehouse) -> None:
    import datetime as dt

    table = sa.Table(
        "per_day",
        sa.MetaData(schema="wh_by"),
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("day", sa.Date, nullable=False),
        sa.Column("value", sa.Text),
        *lineage_columns(),
    )
    d1, d2, d3 = dt.date(2026, 6, 1), dt.date(2026, 6, 2), dt.date(2026, 6, 3)
    first = [{"id": 1, "day": d1, "value": "a"}, {"id": 2, "day": d1, "value": "b"}, {"id": 3, "day": d2, "value": "c"},
             {"id": 4, "day": d3, "value": "d"}]  # fmt: skip
    warehouse.load(table, first)
    again = [
        {"id": 1, "day": d1, "value": "a"},
        {"id": 2, "day": d1, "value": "B"},
        {"id": 5, "day": d2, "value": "e"},
        {"id": 5, "day": d2, "value": "e2"},
    ]  # fmt: skip  (id 3 gone from d2, d3 not in the window)
    window = table.c.day.in_([d1, d2])
    result = warehouse.load(table, again, mode="replace_window", window=window, count_by="day")
    figures = {day: (r.received, r.created, r.updated, r.unchanged, r.deleted) for day, r in result.by.items()}
    assert figures == {d1: (2, 0, 1, 1, 0), d2: (2, 1, 0, 0, 1)}
    assert (result.created, result.updated, result.unchanged, result.deleted) == (1, 1, 1, 1)
    assert {r["id"]: r["value"] for r in warehouse.fetch(sa.select(table))} == {1: "a", 2: "B", 4: "d", 5: "e2"}


# -- column ownership and update guards -------------------------------------------------------------
def owned_table() -> sa.Table:
    return sa.Table(
        "owned",
        sa.MetaData(schema="wh_own"),
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("source", sa.String(10)),  # nullable: a load of the figures alone inserts no source
        sa.Column("name", sa.Text),
        sa.Column("day", sa.Date),
        sa.Column("total", sa.Integer),
        *lineage_columns(),
    )


def test_columns_limit_a_load_to_the_columns_it_owns(warehouse: Warehouse) -> None:
    table = owned_table()
    source_cols = ("source", "name")
    first = warehouse.load(table, [{"id": 1, "source": "a", "name": "x"}, {"id": 2, "source": "a", "name": "y"}],
                           columns=source_cols)  # fmt: skip
    assert counts(first) == (2, 0, 0, 0, 0)
    figures = warehouse.load(table, [{"id": 1, "total": 10}, {"id": 2, "total": 20}], columns=("total",))
    assert counts(figures) == (0, 2, 0, 0, 0)
    # the source loads again without the figures: they stay, and nothing counts as changed
    again = warehouse.load(table, [{"id": 1, "source": "a", "name": "x"}, {"id": 2, "source": "a", "name": "Y"}],
                           columns=source_cols)  # fmt: skip
    assert counts(again) == (0, 1, 1, 0, 0)
    assert {r["id"]: (r["name"], r["total"]) for r in warehouse.fetch(sa.select(table))} == {1: ("x", 10), 2: ("Y", 20)}
    with pytest.raises(ValueError, match="no column 'nope'"):
        warehouse.load(table, [], columns=("nope",))


def test_update_where_guards_rows_of_another_source(warehouse: Warehouse) -> None:
    table = owned_table()
    warehouse.load(table, [{"id": 1, "source": "odoo", "name": "from odoo"}, {"id": 2, "source": "csv", "name": "old"}])
    d = dt.date(2026, 1, 5)
    rows = [{"id": 1, "source": "csv", "name": "from csv", "day": d},
            {"id": 2, "source": "csv", "name": "new", "day": d},
            {"id": 3, "source": "csv", "name": "fresh", "day": d}]  # fmt: skip
    guard = lambda t: t.c.source == "csv"  # noqa: E731
    result = warehouse.load(table, rows, update_where=guard, count_by="day")
    assert counts(result) == (1, 1, 1, 0, 0)
    assert (result.by[d].created, result.by[d].updated, result.by[d].unchanged) == (1, 1, 1)
    names = {r["id"]: (r["source"], r["name"]) for r in warehouse.fetch(sa.select(table))}
    assert names == {1: ("odoo", "from odoo"), 2: ("csv", "new"), 3: ("csv", "fresh")}


def test_every_value_round_trips_whatever_it_holds(warehouse: Warehouse) -> None:
    """Text with the characters COPY escapes (tab, newline, CR, backslash, a literal ``\\N``), empty text and
    NULLs, booleans, integers, decimals, floats, dates, aware times and JSON, in blocks where the other values
    are plain (PostgreSQL renders a column of a block at once and takes the fast path only for plain ones)."""
    table = sa.Table(
        "values_rt",
        sa.MetaData(schema=NS),
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("label", sa.Text),
        sa.Column("flag", sa.Boolean),
        sa.Column("amount", sa.Numeric(12, 3)),
        sa.Column("ratio", sa.Float),
        sa.Column("day", sa.Date),
        sa.Column("at", sa.DateTime(timezone=True)),
        sa.Column("extra", sa.JSON),
        *lineage_columns(),
    )
    odd = ["a\tb", "line\nbreak", "cr\rhere", "back\\slash", "\\N", "", None, "é ü 漢字"]
    rows = []
    for i in range(2_500):
        label = odd[i // 300] if i % 300 == 7 and i // 300 < len(odd) else f"plain {i}"
        rows.append(
            {
                "id": i,
                "label": label,
                "flag": None if i % 11 == 0 else i % 2 == 0,
                "amount": None if i % 13 == 0 else (decimal.Decimal(i) / 8 if i % 2 else i),
                "ratio": i / 3,
                "day": None if i % 17 == 0 else dt.date(2026, 1, 1) + dt.timedelta(days=i % 300),
                "at": dt.datetime(2026, 1, 1, 12, tzinfo=PLUS2) + dt.timedelta(minutes=i),
                "extra": {"tab": "x\ty", "n": i} if i % 5 == 0 else None,
            }
        )
    assert counts(warehouse.load(table, rows)) == (2_500, 0, 0, 0, 0)
    stored = rows_by_id(warehouse, table)
    for row in rows:
        got = stored[row["id"]]
        assert got["label"] == row["label"]
        assert got["flag"] == row["flag"]
        assert (got["amount"] is None) == (row["amount"] is None)
        if row["amount"] is not None:
            assert decimal.Decimal(got["amount"]) == decimal.Decimal(row["amount"]).quantize(decimal.Decimal("0.001"))
        assert got["ratio"] == pytest.approx(row["ratio"])
        assert got["day"] == row["day"]
        assert as_utc(got["at"]) == row["at"].astimezone(UTC)
        assert got["extra"] == row["extra"]
    assert counts(warehouse.load(table, rows)) == (0, 0, 2_500, 0, 0)


def test_a_load_that_fills_or_doubles_a_table_refreshes_its_statistics(pg_url: str) -> None:
    """PostgreSQL: the planner's row estimate (``reltuples``) follows a load that fills a never-analysed
    table or doubles it, so the checks that join it get hash joins rather than nested loops."""
    warehouse = Warehouse(pg_url)
    table = item_table("analysed")
    warehouse.ensure_tables([table])

    def estimate() -> float:
        with warehouse.engine.connect() as conn:
            found = sa.text("SELECT reltuples FROM pg_class WHERE oid = CAST(:n AS regclass)")
            return conn.execute(found, {"n": f"{NS}.analysed"}).scalar()

    assert estimate() < 0  # never analysed
    warehouse.load(table, [{"id": i, "label": "x", "qty": i} for i in range(3_000)])
    assert estimate() == 3_000
    warehouse.load(table, [{"id": i, "label": "x", "qty": i} for i in range(3_000, 4_000)])
    assert estimate() == 3_000  # a third more: the estimate scales with the table's pages
    warehouse.load(table, [{"id": i, "label": "x", "qty": i} for i in range(4_000, 8_000)])
    assert estimate() == 8_000
