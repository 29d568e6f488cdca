"""Pipeline features end to end, from YAML in a defs sandbox: partitions injected into SQL, load modes,
incremental cursors, schema policies, REST paging, replay from raw, checks."""

from __future__ import annotations

import datetime as dt
import json
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import ClassVar
from urllib.parse import parse_qs, urlsplit

import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from ingestion_platform.lib.ledger import Ledger
from ingestion_platform.lib.raw_store import RawStore
from ingestion_platform.lib.warehouse import get_warehouse, lineage_columns
from ingestion_platform_tests import local_http
from ingestion_platform_tests.pipelines.helpers import pipeline_defs, run_job

sales = sa.Table(
    "sale",
    sa.MetaData(schema="shop"),
    sa.Column("sale_id", sa.Integer, primary_key=True),
    sa.Column("sold_on", sa.Date),
    sa.Column("store", sa.Text),
    sa.Column("amount", sa.Float),
    sa.Column("updated_at", sa.DateTime(timezone=True)),
    *lineage_columns(),
)
DAY1, DAY2 = dt.date(2025, 3, 14), dt.date(2025, 3, 15)


def _sales(url: str, rows: list[tuple]) -> None:
    warehouse = get_warehouse(url)
    names = ["sale_id", "sold_on", "store", "amount", "updated_at"]
    warehouse.load(sales, [dict(zip(names, r, strict=True)) for r in rows])


def _rows(url: str, schema_name: str, table: str) -> list[dict]:
    warehouse = get_warehouse(url)
    reflected = sa.Table(table, sa.MetaData(schema=schema_name), autoload_with=warehouse.engine)
    return warehouse.fetch(sa.select(reflected))


T0 = dt.datetime(2025, 3, 15, 8, tzinfo=dt.UTC)
BASE = [
    (1, DAY1, "north", 10.0, T0), (2, DAY1, "north", 5.0, T0), (3, DAY1, "south", 7.5, T0),
    (4, DAY2, "north", 1.0, T0), (5, DAY2, "south", 2.0, T0),
]  # fmt: skip

DAILY = """\
type: ingestion_platform.components.pipeline.Pipeline
attributes:
  name: shop
  partitions: {start: "2025-03-01"}
  schedule: {cron: "0 6 * * *"}
  streams:
    - name: store_days
      extract:
        postgres:
          query: >
            SELECT sold_on, store, amount FROM shop.sale
            WHERE sold_on >= :partition_start AND sold_on < :partition_end
      transform:
        - aggregate:
            group_by: [sold_on, store]
            metrics: {sales: count(), total: sum(amount)}
      mode: replace
      key: [sold_on, store]
      load:
        - postgres: {schema: pipelines_test, table: store_day}
        - parquet: {path: PARQUET}
      checks:
        - row_count: {min: 1}
        - not_null: [store, total]
"""


def test_daily_partitions_inject_the_window_into_sql(warehouse_url: str, tmp_path: Path) -> None:
    _sales(warehouse_url, BASE)
    text = DAILY.replace("PARQUET", str(tmp_path / "out"))
    with pipeline_defs(text) as (defs, _folder):
        (asset,) = defs.assets
        assert asset.partitions_def.get_first_partition_key() == "2025-03-01"
        (schedule,) = defs.schedules
        assert schedule.cron_schedule == "0 6 * * *"
        out = run_job(defs, "pipeline_shop", warehouse_url=warehouse_url, data_dir=tmp_path, partition_key="2025-03-14")
        outcome = out["store_days"]
        assert outcome.result.success, outcome.error
        assert outcome.checks == {"row_count": True, "not_null__store_total": True}
        got = {(r["store"], r["sales"], r["total"]) for r in _rows(warehouse_url, "pipelines_test", "store_day")}
        assert got == {("north", 2, 15.0), ("south", 1, 7.5)}
        assert {r["_partition"] for r in _rows(warehouse_url, "pipelines_test", "store_day")} == {"2025-03-14"}
        assert not list((tmp_path / "out" / "day=2025-03-15").glob("*.parquet"))
        # the query's rows landed raw before the transform
        (landed,) = RawStore(tmp_path).requests("pipeline_shop__store_days", "2025-03-14")
        assert landed.startswith("query_part_")
        # another day is its own partition, folder and ledger job
        out = run_job(defs, "pipeline_shop", warehouse_url=warehouse_url, data_dir=tmp_path, partition_key="2025-03-15")
        assert out["store_days"].result.success
        days = sorted(p.name for p in (tmp_path / "out").iterdir())
        assert days == ["day=2025-03-14", "day=2025-03-15"]
        assert pq.read_table(tmp_path / "out" / "day=2025-03-15").num_rows == 2
        # a source row changes and one disappears: replace rewrites that day only
        warehouse = get_warehouse(warehouse_url)
        with warehouse.engine.begin() as conn:
            conn.execute(sa.delete(sales).where(sales.c.sale_id == 3))
            conn.execute(sa.update(sales).where(sales.c.sale_id == 2).values(amount=6.0))
        out = run_job(defs, "pipeline_shop", warehouse_url=warehouse_url, data_dir=tmp_path, partition_key="2025-03-14")
        assert out["store_days"].result.success
        rows = _rows(warehouse_url, "pipelines_test", "store_day")
        assert {(r["sold_on"] if isinstance(r["sold_on"], str) else r["sold_on"].isoformat(), r["store"], r["total"])
                for r in rows} == {("2025-03-14", "north", 16.0), ("2025-03-15", "north", 1.0),
                                   ("2025-03-15", "south", 2.0)}  # fmt: skip
        (load,) = [x for x in out["store_days"].metadata["loads"] if x["table"] == "pipelines_test.store_day"]
        assert (load["updated"], load["deleted"]) == (1, 1)
        jobs = Ledger(get_warehouse(warehouse_url)).jobs(asset_key="pipelines/shop/store_days")
        assert [j["partition_key"] for j in jobs] == ["2025-03-14", "2025-03-15", "2025-03-14"]
        assert all(j["status"] == "completed" for j in jobs)
        # the day's last sales vanish: replace empties the day, the check warns nothing was loaded
        with warehouse.engine.begin() as conn:
            conn.execute(sa.delete(sales).where(sales.c.sold_on == DAY2))
        out = run_job(defs, "pipeline_shop", warehouse_url=warehouse_url, data_dir=tmp_path, partition_key="2025-03-15")
        assert out["store_days"].checks["row_count"] is False
        assert {r["_partition"] for r in _rows(warehouse_url, "pipelines_test", "store_day")} == {"2025-03-14"}
        assert not list((tmp_path / "out" / "day=2025-03-15").glob("*.parquet"))


INCREMENTAL = """\
type: ingestion_platform.components.pipeline.Pipeline
attributes:
  name: shop_inc
  streams:
    - name: sales
      extract:
        postgres:
          query: >
            SELECT sale_id, store, amount, updated_at FROM shop.sale
            WHERE (:cursor IS NULL OR updated_at >= :cursor) ORDER BY sale_id
      transform:
        - clean: {cast: {updated_at: timestamp}}
      mode: incremental
      key: [sale_id]
      cursor: {column: updated_at, overlap: 1h}
      load:
        - postgres: {schema: pipelines_test, table: sales_copy}
"""


def test_incremental_reads_from_the_cursor_minus_the_overlap(warehouse_url: str, tmp_path: Path) -> None:
    _sales(warehouse_url, BASE)
    with pipeline_defs(INCREMENTAL) as (defs, _folder):
        out = run_job(defs, "pipeline_shop_inc", warehouse_url=warehouse_url, data_dir=tmp_path)["sales"]
        assert out.result.success, out.error
        assert out.metadata["rows_in"] == 5
        # 30 minutes later (inside the overlap) and 3 hours later (new)
        _sales(warehouse_url, [(2, DAY1, "north", 50.0, T0 + dt.timedelta(minutes=30)),
                               (6, DAY2, "east", 3.0, T0 + dt.timedelta(hours=3))])  # fmt: skip
        out = run_job(defs, "pipeline_shop_inc", warehouse_url=warehouse_url, data_dir=tmp_path)["sales"]
        assert out.result.success, out.error
        # the cursor was T0: rows since T0 - 1h are read again (all), the overlap catches the update
        (load,) = out.metadata["loads"]
        assert (load["created"], load["updated"]) == (1, 1)
        out = run_job(defs, "pipeline_shop_inc", warehouse_url=warehouse_url, data_dir=tmp_path)["sales"]
        assert out.metadata["rows_in"] == 1  # since the last cursor (T0 + 3h) minus 1h: only sale 6
        rows = {r["sale_id"]: r["amount"] for r in _rows(warehouse_url, "pipelines_test", "sales_copy")}
        assert rows == {1: 10.0, 2: 50.0, 3: 7.5, 4: 1.0, 5: 2.0, 6: 3.0}


POLICY = """\
type: ingestion_platform.components.pipeline.Pipeline
attributes:
  name: drops
  defaults:
    extract:
      csv: {path: "in/*.csv"}
    transform:
      - clean: {cast: {qty: int}}
    load:
      - postgres: {schema: pipelines_test, table: TABLE}
    mode: append
  streams:
    - name: items
      schema_policy: POLICY
"""


@pytest.mark.parametrize("policy", ["evolve", "freeze", "discard"])
def test_schema_policies(policy: str, sqlite_url: str, tmp_path: Path) -> None:
    text = POLICY.replace("POLICY", policy).replace("TABLE", f"items_{policy}")
    first = b"sku,qty\nA,1\nB,2\n"
    with pipeline_defs(text, {"in/a.csv": first}) as (defs, folder):
        out = run_job(defs, "pipeline_drops", warehouse_url=sqlite_url, data_dir=tmp_path)["items"]
        assert out.result.success, out.error
        (folder / "in" / "a.csv").write_bytes(b"sku,qty,colour\nA,1,red\nC,3,blue\n")
        out = run_job(defs, "pipeline_drops", warehouse_url=sqlite_url, data_dir=tmp_path)["items"]
        rows = sorted(_rows(sqlite_url, "pipelines_test", f"items_{policy}"), key=lambda r: (r["sku"], r["qty"]))
        if policy == "freeze":
            assert not out.result.success
            assert "freeze refuses the drift: new column(s) ['colour']" in out.error
            assert [(r["sku"], r["qty"]) for r in rows] == [("A", 1), ("B", 2)]
        elif policy == "evolve":
            assert out.result.success, out.error
            assert [(r["sku"], r["qty"], r["colour"]) for r in rows] == [
                ("A", 1, None),
                ("A", 1, "red"),
                ("B", 2, None),
                ("C", 3, "blue"),
            ]
        else:
            assert out.result.success, out.error
            assert "colour" not in rows[0]
            # append: the identical record A,1 is not inserted twice
            assert [(r["sku"], r["qty"]) for r in rows] == [("A", 1), ("B", 2), ("C", 3)]


class Paged(BaseHTTPRequestHandler):
    """An API paged by page number, by cursor or by Link header; wants a token header."""

    items: ClassVar[list[dict]] = [{"id": i, "name": f"item {i}", "meta": {"rank": i % 3}} for i in range(1, 8)]
    calls: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        type(self).calls.append(self.path)
        if self.headers.get("X-Token") != "s3cret":
            self.send_error(401)
            return
        size, headers = 3, {}
        if url.path == "/page":
            page = int(query["page"])
            chunk, body = self.items[(page - 1) * size : page * size], None
            body = {"data": {"items": chunk}}
        elif url.path == "/cursor":
            start = int(query.get("after", 0))
            chunk = self.items[start : start + size]
            more = start + size < len(self.items)
            body = {"items": chunk, "next": str(start + size) if more else None}
        else:
            start = int(query.get("from", 0))
            chunk = self.items[start : start + size]
            body = chunk
            if start + size < len(self.items):
                headers["Link"] = f'<{"/link?from=" + str(start + size)}>; rel="next"'
        local_http.send_json(self, body, headers)

    def log_message(self, *_args: object) -> None:
        pass


PAGED = """\
type: ingestion_platform.components.pipeline.Pipeline
attributes:
  name: paged
  defaults:
    extract:
      rest:
        url: URL
        headers_env: {X-Token: PIPELINES_TEST_TOKEN}
    mode: upsert
    key: [id]
  streams:
    - name: by_page
      extract:
        rest: {path: page, records_path: data.items, pagination: {type: page, param: page}}
      load: [{parquet: {path: OUT/by_page}}]
    - name: by_cursor
      extract:
        rest: {path: cursor, records_path: items, pagination: {type: cursor, param: after, cursor_path: next}}
      load: [{parquet: {path: OUT/by_cursor}}]
    - name: by_link
      extract:
        rest: {path: link, pagination: {type: link}}
      load: [{parquet: {path: OUT/by_link}}]
"""


@pytest.fixture
def paged(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("PIPELINES_TEST_TOKEN", "s3cret")
    Paged.calls = []
    httpd, url = local_http.start(Paged)
    yield url
    local_http.stop(httpd)


def test_rest_paging_kinds_and_replay(paged: str, sqlite_url: str, tmp_path: Path) -> None:
    text = PAGED.replace("URL", paged).replace("OUT", str(tmp_path / "out"))
    with pipeline_defs(text) as (defs, _folder):
        out = run_job(defs, "pipeline_paged", warehouse_url=sqlite_url, data_dir=tmp_path)
        for stream in ("by_page", "by_cursor", "by_link"):
            assert out[stream].result.success, out[stream].error
            rows = pq.read_table(tmp_path / "out" / stream).sort_by("id").to_pylist()
            assert [r["id"] for r in rows] == list(range(1, 8)), stream
            assert json.loads(rows[0]["meta"]) == {"rank": 1}
        pages = [c for c in Paged.calls if c.startswith("/page")]
        assert len(pages) == 4  # 3 + 3 + 1, then an empty page
        assert len([c for c in Paged.calls if c.startswith("/cursor")]) == 3
        assert len([c for c in Paged.calls if c.startswith("/link")]) == 3
        # replay: nothing is asked of the API, the stored pages give the same rows
        before = len(Paged.calls)
        out = run_job(defs, "pipeline_paged", warehouse_url=sqlite_url, data_dir=tmp_path, replay=True)
        assert all(o.result.success for o in out.values())
        assert len(Paged.calls) == before
        assert out["by_cursor"].metadata["rows_out"] == 7
        (load,) = out["by_cursor"].metadata["loads"]
        assert (load["created"], load["updated"]) == (0, 7)  # upsert by id over the previous run's file


CHECKED = """\
type: ingestion_platform.components.pipeline.Pipeline
attributes:
  name: checked
  streams:
    - name: rows
      extract:
        csv: {path: data.csv}
      transform:
        - clean: {cast: {n: int, seen: timestamp}}
      load: [{parquet: {path: OUT}}]
      checks:
        - not_null: [name]
          severity: warn
        - unique: [id]
        - accepted_values: {column: kind, values: [a, b]}
        - row_count: {min: 1, max: 2}
        - freshness: {column: seen, max_age: 2d}
        - name: ids_not_null
          not_null: [id]
          blocking: true
"""


def test_checks_fail_on_the_loaded_rows(sqlite_url: str, tmp_path: Path) -> None:
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    old = (now - dt.timedelta(days=5)).isoformat()
    body = f"id,name,kind,n,seen\n1,x,a,1,{old}\n1,,c,2,{old}\n,z,b,3,{old}\n".encode()
    with pipeline_defs(CHECKED.replace("OUT", str(tmp_path / "out")), {"data.csv": body}) as (defs, _folder):
        out = run_job(defs, "pipeline_checked", warehouse_url=sqlite_url, data_dir=tmp_path)["rows"]
        assert out.checks == {"not_null__name": False, "unique__id": False, "accepted_values__kind": False,
                              "row_count": False, "freshness__seen": False, "ids_not_null": False}  # fmt: skip
        # the blocking error check fails the step, after the materialisation and every result
        assert not out.result.success and "blocking check(s) failed: ids_not_null" in out.error
        evaluations = {c.check_name: c for c in out.result.get_asset_check_evaluations()}
        assert evaluations["not_null__name"].severity.value == "WARN"
        assert evaluations["accepted_values__kind"].metadata["refused_values"].value == ["c"]
        assert out.metadata["null_counts"]["id"] == 1 and out.metadata["rows_out"] == 3


TEMPLATED = """\
type: ingestion_platform.components.pipeline.Pipeline
attributes:
  name: templated
  description: "{{ env.PIPELINES_TEST_DESCRIPTION }}"
  streams:
    - name: rows
      extract:
        csv: {path: data.csv}
      load: [{parquet: {path: "{{ env.PIPELINES_TEST_OUT }}"}}]
"""


def test_env_templates_are_rendered_when_the_definitions_load(
    sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PIPELINES_TEST_DESCRIPTION", "rows of the drop")
    monkeypatch.setenv("PIPELINES_TEST_OUT", str(tmp_path / "templated"))
    with pipeline_defs(TEMPLATED, {"data.csv": b"a,b\n1,x\n2,y\n"}) as (defs, _folder):
        (asset,) = defs.assets
        assert asset.descriptions_by_key[asset.key] == "rows of the drop"
        out = run_job(defs, "pipeline_templated", warehouse_url=sqlite_url, data_dir=tmp_path)["rows"]
        assert out.result.success, out.error
        assert pq.read_table(tmp_path / "templated").to_pylist() == [{"a": "1", "b": "x"}, {"a": "2", "b": "y"}]
