"""PartitionLoad: raw first, parse with dead letters, load, replay from raw, ledger and metadata."""

import datetime as dt
import json
from collections.abc import Callable
from typing import Any

import dagster as dg
import pytest
import sqlalchemy as sa

from ingestion_platform.lib.errors import RecordError
from ingestion_platform.lib.http import Fetched, InvalidPayload
from ingestion_platform.lib.ingest import MissingRaw, PartitionLoad, load_metadata, table_schema
from ingestion_platform.lib.ledger import COMPLETED, COMPLETED_WITH_ERRORS, FAILED, Ledger
from ingestion_platform.lib.raw_store import RawStore, RawStoreResource
from ingestion_platform.lib.warehouse import Warehouse, WarehouseResource, lineage_columns

SOURCE = "demo"
ASSET_KEY = "demo/runner"
DAY = "2025-03-14"


def runner_table() -> sa.Table:
    return sa.Table(
        "runner",
        sa.MetaData(schema="ing"),
        sa.Column("race", sa.String(10), primary_key=True),
        sa.Column("number", sa.Integer, primary_key=True),
        sa.Column("weight_kg", sa.Numeric(5, 1), comment="carried weight"),
        *lineage_columns(),
    )


PAYLOADS = {
    "R1C1": {"runners": [{"number": 1, "weight": 55.5}, {"number": 2, "weight": 57}]},
    "R1C2": {"runners": [{"number": 1, "weight": "heavy"}, {"number": 2, "weight": 60}]},
    "R1C3": {"runners": [{"number": 3, "weight": 58}]},
}


def fetched(request: str, body: bytes | None = None) -> Fetched:
    body = json.dumps(PAYLOADS[request]).encode() if body is None else body
    return Fetched(url=f"https://api.example/{request}", status=200, body=body, headers={}, attempts=1, elapsed_s=0.01)


def strict_parse(request: str) -> Callable[[Any], list[dict[str, Any]]]:
    def parse(payload: Any) -> list[dict[str, Any]]:
        rows = []
        for runner in payload["runners"]:
            if not isinstance(runner["weight"], (int, float)):
                raise RecordError(
                    f"weight {runner['weight']!r} is not a number",
                    record=f"{request} runner {runner['number']}",
                    field="weight",
                )
            rows.append({"race": request, "number": runner["number"], "weight_kg": runner["weight"]})
        return rows

    return parse


def lenient_parse(request: str) -> Callable[[Any], list[dict[str, Any]]]:
    """The fixed parser: unknown weights become NULL."""

    def parse(payload: Any) -> list[dict[str, Any]]:
        return [
            {
                "race": request,
                "number": r["number"],
                "weight_kg": r["weight"] if isinstance(r["weight"], (int, float)) else None,
            }
            for r in payload["runners"]
        ]

    return parse


def open_load(warehouse: Warehouse, raw_store: RawStore, **kwargs: Any) -> Any:
    kwargs.setdefault("target", [runner_table()])
    return PartitionLoad.open(
        source=SOURCE,
        asset_key=ASSET_KEY,
        partition=DAY,
        run_id=kwargs.pop("run_id", "run-1"),
        warehouse=warehouse,
        raw_store=raw_store,
        provider="api.example",
        **kwargs,
    )


def ingest_all(
    load: PartitionLoad, table: sa.Table, parser: Callable[[str], Callable[[Any], Any]], **fetch: Any
) -> None:
    for request in PAYLOADS:
        body = load.land(request, fetch.get(request, lambda r=request: fetched(r)))
        if body is None:
            continue
        rows = load.parse(request, body, parser(request))
        if rows is not None:
            load.load(table, rows)


def test_raw_is_stored_before_parse_and_bad_payload_is_dead_lettered(warehouse: Warehouse, raw_store: RawStore) -> None:
    table = runner_table()
    seen_raw_at_parse: list[bytes] = []

    def checking_parser(request: str) -> Callable[[Any], Any]:
        def parse(payload: Any) -> Any:
            seen_raw_at_parse.append(raw_store.read(SOURCE, DAY, request).body)
            return strict_parse(request)(payload)

        return parse

    with open_load(warehouse, raw_store, config={"limit": 3}) as load:
        ingest_all(load, table, checking_parser)
    assert seen_raw_at_parse == [json.dumps(PAYLOADS[r]).encode() for r in PAYLOADS]
    assert raw_store.requests(SOURCE, DAY) == ["R1C1", "R1C2", "R1C3"]
    assert raw_store.read(SOURCE, DAY, "R1C2").meta["url"] == "https://api.example/R1C2"

    # The good payloads are loaded, the bad one not at all.
    assert sorted((r["race"], r["number"]) for r in warehouse.fetch(sa.select(table))) == [
        ("R1C1", 1),
        ("R1C1", 2),
        ("R1C3", 3),
    ]
    [letter] = raw_store.dead_letters(SOURCE, DAY)
    assert letter.request == "R1C2"
    assert letter.error == (
        "RecordError: request demo/2025-03-14/R1C2, record R1C2 runner 1, field 'weight': "
        "weight 'heavy' is not a number"
    )
    assert letter.payload() == json.dumps(PAYLOADS["R1C2"]).encode()
    assert letter.context == {"asset_key": ASSET_KEY, "ledger_job_id": load.job.job_id}

    job = Ledger(warehouse).get(load.job.job_id)
    assert job["status"] == COMPLETED_WITH_ERRORS
    assert (job["created"], job["updated"], job["unchanged"], job["rejected"]) == (3, 0, 0, 1)
    assert job["provider"] == "api.example" and job["target"] == "ing.runner"
    assert job["metadata"]["config"] == {"limit": 3}
    assert job["metadata"]["dead_letters"] == [{"request": "R1C2", "error": letter.error}]
    assert load.dead_letters == [{"request": "R1C2", "error": letter.error}]
    assert load.resolved == []


def test_invalid_json_is_dead_lettered(warehouse: Warehouse, raw_store: RawStore) -> None:
    with open_load(warehouse, raw_store) as load:
        body = load.land("R1C1", lambda: fetched("R1C1", b'{"runners": [tru'))
        assert body == b'{"runners": [tru'
        assert load.parse("R1C1", body, strict_parse("R1C1")) is None
    [letter] = raw_store.dead_letters(SOURCE, DAY)
    assert letter.error.startswith("JSONDecodeError: ")
    assert letter.payload() == b'{"runners": [tru'
    assert raw_store.exists(SOURCE, DAY, "R1C1")


def test_invalid_payload_after_retries_is_stored_and_dead_lettered(warehouse: Warehouse, raw_store: RawStore) -> None:
    last = fetched("R1C1", b'{"trunc')

    def fetch() -> Fetched:
        raise InvalidPayload("GET https://api.example/R1C1: body still invalid", fetched=last, error=ValueError("x"))

    with open_load(warehouse, raw_store) as load:
        assert load.land("R1C1", fetch) is None
    assert raw_store.read(SOURCE, DAY, "R1C1").body == b'{"trunc'
    [letter] = raw_store.dead_letters(SOURCE, DAY)
    assert letter.error.startswith("InvalidPayload: GET https://api.example/R1C1")
    assert letter.payload() == b'{"trunc'
    assert Ledger(warehouse).get(load.job.job_id)["status"] == COMPLETED_WITH_ERRORS


def test_nothing_published_stores_nothing(warehouse: Warehouse, raw_store: RawStore) -> None:
    with open_load(warehouse, raw_store) as load:
        assert load.land("R9C9", lambda: None) is None
        load.mark_pending("R9C9")
    assert not raw_store.exists(SOURCE, DAY, "R9C9")
    job = Ledger(warehouse).get(load.job.job_id)
    assert job["status"] == COMPLETED
    assert job["metadata"]["pending"] == ["R9C9"]


def test_replay_from_raw_resolves_the_dead_letter(warehouse: Warehouse, raw_store: RawStore) -> None:
    table = runner_table()
    with open_load(warehouse, raw_store) as first:
        ingest_all(first, table, strict_parse)
    assert len(raw_store.dead_letters(SOURCE, DAY)) == 1

    def never() -> Fetched:
        raise AssertionError("replay must not call the source")

    with open_load(warehouse, raw_store, reprocess_from_raw=True, run_id="run-2") as replay:
        ingest_all(replay, table, lenient_parse, R1C1=never, R1C2=never, R1C3=never)
    assert raw_store.dead_letters(SOURCE, DAY) == []
    assert replay.resolved == ["R1C2"]
    assert replay.results["ing.runner"].created == 2
    assert replay.results["ing.runner"].unchanged == 3
    weights = {(r["race"], r["number"]): r["weight_kg"] for r in warehouse.fetch(sa.select(table))}
    assert weights[("R1C2", 1)] is None and float(weights[("R1C2", 2)]) == 60.0
    job = Ledger(warehouse).get(replay.job.job_id)
    assert job["status"] == COMPLETED
    assert job["provider"] == "raw store replay"
    assert job["metadata"]["reprocess_from_raw"] is True
    assert job["retry_of"] is None  # the first job did not fail


def test_replay_of_something_never_stored_raises_missing_raw(warehouse: Warehouse, raw_store: RawStore) -> None:
    with (
        pytest.raises(MissingRaw, match="demo/2025-03-14/R7C7"),
        open_load(warehouse, raw_store, reprocess_from_raw=True) as load,
    ):
        load.land("R7C7", lambda: fetched("R1C1"))
    job = Ledger(warehouse).get(load.job.job_id)
    assert job["status"] == FAILED
    assert job["message"].startswith("MissingRaw: ")


def test_platform_error_fails_the_job_but_keeps_the_raw(warehouse: Warehouse, raw_store: RawStore) -> None:
    def buggy(payload: Any) -> Any:
        raise KeyError("a bug, not a bad payload")

    with pytest.raises(KeyError), open_load(warehouse, raw_store) as load:
        body = load.land("R1C1", lambda: fetched("R1C1"))
        load.parse("R1C1", body, buggy)
    assert raw_store.exists(SOURCE, DAY, "R1C1")
    assert raw_store.dead_letters() == []
    assert Ledger(warehouse).get(load.job.job_id)["status"] == FAILED
    # The retry is linked to the failed attempt.
    with open_load(warehouse, raw_store, reprocess_from_raw=True) as retry:
        retry.load(runner_table(), strict_parse("R1C1")(json.loads(retry.land("R1C1", lambda: None))))
    assert Ledger(warehouse).get(retry.job.job_id)["retry_of"] == load.job.job_id


def test_load_metadata(warehouse: Warehouse, raw_store: RawStore) -> None:
    table = runner_table()
    with open_load(warehouse, raw_store) as first:
        ingest_all(first, table, strict_parse)
        first.mark_pending("R1C9")
    with open_load(warehouse, raw_store, reprocess_from_raw=True) as second:
        ingest_all(second, table, lenient_parse)

    preview = sa.select(table.c.race, table.c.number, table.c._run_id).order_by(table.c.race, table.c.number).limit(2)
    metadata = load_metadata([first, second], warehouse, preview=preview)
    values = {k: getattr(v, "value", v) for k, v in metadata.items()}
    assert values["created"] == 5 and values["updated"] == 0 and values["unchanged"] == 3
    assert (values["deleted"], values["rejected"]) == (0, 1)
    assert values["dagster/row_count"] == 8
    assert values["tables"] == {"ing.runner": {"created": 5, "updated": 0, "unchanged": 3, "deleted": 0}}
    assert values["status"] == "loaded 8 row(s), 1 rejected, 1 pending"
    # One day's view: the same day here; another day of no load shows nothing of these.
    assert load_metadata([first, second], warehouse, day=dt.date.fromisoformat(DAY))["created"].value == 5
    other = load_metadata([first, second], warehouse, day=dt.date(2025, 3, 1))
    assert other["dagster/row_count"].value == 0 and other["ledger_job_ids"].value == ""
    assert values["ledger_job_ids"] == f"{first.job.job_id}, {second.job.job_id}"
    assert values["dead_letters"] == [{"partition": DAY, **first.dead_letters[0]}]
    assert values["pending"] == ["R1C9"]
    assert values["dead_letters_resolved"] == [f"{DAY} R1C2"]
    # The preview hides lineage columns.
    assert values["preview"].splitlines() == ["| race | number |", "|---|---|", "| R1C1 | 1 |", "| R1C1 | 2 |"]

    quiet = load_metadata([second], warehouse)
    assert "dead_letters" not in quiet and "pending" not in quiet and "preview" not in quiet


def test_table_schema() -> None:
    schema = table_schema(runner_table())
    columns = {c.name: c for c in schema.columns}
    assert list(columns) == ["race", "number", "weight_kg", "_ingested_at", "_run_id"]
    assert columns["weight_kg"].type == "NUMERIC(5, 1)"
    assert columns["weight_kg"].description == "carried weight"
    assert columns["_ingested_at"].type == "TIMESTAMP WITH TIME ZONE"
    assert columns["race"].constraints.nullable is False


def test_partition_load_inside_a_dagster_asset(warehouse_url: str, raw_store: RawStore) -> None:
    table = runner_table()
    partitions = dg.DailyPartitionsDefinition(start_date="2025-03-01")

    @dg.asset(key=["demo", "runner"], partitions_def=partitions, required_resource_keys={"warehouse", "raw_store"})
    def runner(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        wh, store = context.resources.warehouse.get(), context.resources.raw_store.get()
        with PartitionLoad.open(
            source=SOURCE,
            asset_key=context.asset_key.to_user_string(),
            partition=context.partition_key,
            run_id=context.run.run_id,
            warehouse=wh,
            raw_store=store,
            target=[table],
        ) as load:
            ingest_all(load, table, strict_parse)
        return dg.MaterializeResult(metadata=load_metadata([load], wh))

    result = dg.materialize(
        [runner],
        partition_key=DAY,
        resources={
            "warehouse": WarehouseResource(database_url=warehouse_url),
            "raw_store": RawStoreResource(data_dir=str(raw_store.root)),
        },
    )
    assert result.success
    [materialization] = result.asset_materializations_for_node("demo__runner")
    assert materialization.partition == DAY
    assert materialization.metadata["created"].value == 3
    assert materialization.metadata["rejected"].value == 1
    [letter] = raw_store.dead_letters(SOURCE, DAY)
    assert letter.context["asset_key"] == ASSET_KEY
    ledger = Ledger(WarehouseResource(database_url=warehouse_url).get())
    [job] = ledger.jobs(asset_key=ASSET_KEY, partition_key=DAY)
    assert (job["status"], job["run_id"]) == (COMPLETED_WITH_ERRORS, result.run_id)
    assert dt.date.fromisoformat(job["partition_key"]) == dt.date(2025, 3, 14)


def test_frozen_heap_freezes_what_is_alive_for_the_block_and_nests() -> None:
    """Inside the block the objects alive at its start are out of the collector's reach (a full
    collection no longer walks them); nested blocks share the freeze; the outer end lifts it and a
    cycle made garbage meanwhile is collected then."""
    import gc
    import weakref

    from ingestion_platform.lib.ingest import frozen_heap

    class Node:
        pass

    cycle = Node()
    cycle.me = cycle  # type: ignore[attr-defined]
    alive = weakref.ref(cycle)
    assert gc.get_freeze_count() == 0
    with frozen_heap():
        frozen = gc.get_freeze_count()
        assert frozen > 1000  # Dagster, SQLAlchemy, the test run: all frozen
        with frozen_heap():
            assert gc.get_freeze_count() == frozen  # one freeze
        del cycle
        gc.collect()
        assert alive() is not None  # a frozen cycle waits for the end of the block
        assert gc.get_freeze_count() == frozen
    assert gc.get_freeze_count() == 0
    gc.collect()
    assert alive() is None
