"""One test per trap of a real Odoo (see ../shared/odoo/SOURCES.md), on the fake server through odoorpc,
on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import decimal
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import sqlalchemy as sa

from ingestion_platform.defs.crm import tables
from ingestion_platform.defs.crm.odoo import assets, jobs
from ingestion_platform.lib.ledger import Ledger
from ingestion_platform.lib.raw_store import RawStore
from ingestion_platform.lib.warehouse import get_warehouse
from ingestion_platform_tests.crm.fake_odoo import FakeOdoo
from ingestion_platform_tests.crm.test_odoo_assets import materialize, resources, rows

DAY = dt.date(2026, 11, 22)
UTC_MIDNIGHT_PARIS = dt.datetime(2026, 11, 21, 23, 0, 0)  # 2026-11-22 00:00 in Paris, naive UTC


def customers(url: str) -> dict[str, dict[str, Any]]:
    return rows(url, tables.customers)


def partners(fake: FakeOdoo, count: int, prefix: str = "Client") -> list[int]:
    return fake.create("res.partner", [{"name": f"{prefix} {i:04d}", "email": f"c{i}@x.example"} for i in range(count)])


@pytest.fixture
def fake() -> Any:
    with FakeOdoo(version=17, now=UTC_MIDNIGHT_PARIS + dt.timedelta(hours=9, microseconds=400000)) as server:
        yield server


def test_write_date_cut_to_seconds_keeps_each_record_in_its_paris_day(
    fake: FakeOdoo, warehouse_url: str, tmp_path: Path
) -> None:
    """The API says 22:59:59 for 22:59:59.7 (UTC) and 23:00:00 for 23:00:00.3: the boundary of the Paris
    day is exact with ``>=`` / ``<`` on the server's microseconds."""
    fake.now = UTC_MIDNIGHT_PARIS + dt.timedelta(days=1) - dt.timedelta(microseconds=300000)  # 23:59:59.7 Paris
    [late] = partners(fake, 1, "Late")
    fake.now = UTC_MIDNIGHT_PARIS + dt.timedelta(days=1, microseconds=300000)  # next day 00:00:00.3 Paris
    [early] = partners(fake, 1, "Early")
    fake.tick(3600)
    res = resources(fake, warehouse_url, tmp_path / "data")
    assert materialize(res, DAY, selection=[assets.odoo_customers]).success
    assert set(customers(warehouse_url)) == {f"odoo-{late}"}
    assert materialize(res, DAY + dt.timedelta(days=1), selection=[assets.odoo_customers]).success
    loaded = customers(warehouse_url)
    assert loaded[f"odoo-{late}"]["partition_day"] == DAY
    assert loaded[f"odoo-{early}"]["partition_day"] == DAY + dt.timedelta(days=1)
    # the API's values are seconds-cut: the record read says 23:00:00 for the one after midnight
    assert loaded[f"odoo-{early}"]["last_updated"].replace(tzinfo=None) == dt.datetime(2026, 11, 22, 23, 0)


@pytest.mark.parametrize(
    ("readers", "size", "pages", "bounded"),
    [
        (1, 1000, [0, 1000, 2000], []),
        (2, 1000, [0, 1000, 2000], []),  # 1,500 ids after the first page: not two ranges of a page
        # the first page, then two id ranges read at once, (500, 1500] and (1500, ...), each keyset by id
        (2, 500, [0, 500, 1000, 1500, 2000, 2500], [500, 1000]),
    ],
)
def test_a_same_second_group_larger_than_a_page_arrives_whole(
    fake: FakeOdoo, warehouse_url: str, tmp_path: Path, readers: int, size: int, pages: list[int], bounded: list[int]
) -> None:
    """2,500 partners of one ``create`` share one write_date: keyset by id reads them whole, by one reader
    or in ranges read at once; a replay reads the same pages again, without Odoo."""
    ids = partners(fake, 2500)
    fake.tick(3600)
    res = resources(fake, warehouse_url, tmp_path / "data", page_size=size, max_concurrency=readers)
    result = materialize(res, DAY, selection=[assets.odoo_customers])
    assert result.success
    assert set(customers(warehouse_url)) == {f"odoo-{i}" for i in ids}
    [job] = Ledger(get_warehouse(warehouse_url)).jobs(asset_key="crm/odoo_customers")
    assert (job["created"], job["metadata"]["odoo_pages"]) == (2500, len(pages))
    reads = [c for c in fake.calls if c["model"] == "res.partner" and c["method"] == "search_read"]
    page_reads = [c for c in reads if c["kwargs"]["limit"] == size]
    assert sorted(c["args"][0][-1][2] for c in page_reads) == pages  # ("id", ">", last id)
    assert all(c["args"][0][-1][:2] == ["id", ">"] for c in page_reads)
    assert sorted(c["args"][0][-1][2] for c in page_reads if c["args"][0][-2] == ["id", "<=", 1500]) == bounded
    assert len(reads) == len(page_reads) + (readers > 1)  # and the window's largest id, with two readers
    fake.calls.clear()
    replayed = materialize(res, DAY, selection=[assets.odoo_customers], replay=True)
    assert replayed.success and not fake.calls
    jobs = Ledger(get_warehouse(warehouse_url)).jobs(asset_key="crm/odoo_customers")
    assert [(j["unchanged"], j["metadata"]["odoo_pages"]) for j in jobs if j["unchanged"]] == [(2500, len(pages))]


def test_a_late_commit_with_an_older_write_date_is_read_by_the_next_run(
    fake: FakeOdoo, warehouse_url: str, tmp_path: Path
) -> None:
    """A long transaction stamps its start time and commits after a run read past it: the most recent
    window ends at server time minus the lag and is read again by the next run."""
    slow = fake.begin()  # write_date = now, visible only once committed
    [late] = slow.create("res.partner", [{"name": "Slow Import"}])
    fake.tick(1)
    [quick] = partners(fake, 1, "Quick")
    fake.tick(400)  # lag 300 s: the window ends 100 s after both write_dates
    res = resources(fake, warehouse_url, tmp_path / "data")
    assert materialize(res, DAY, selection=[assets.odoo_customers]).success
    assert set(customers(warehouse_url)) == {f"odoo-{quick}"}
    fake.tick(100)
    slow.commit()  # 500 s after its write_date
    [fresh] = partners(fake, 1, "Fresh")  # written now: after the next run's window end (now - lag)
    fake.tick(60)
    assert materialize(res, DAY, selection=[assets.odoo_customers]).success
    assert set(customers(warehouse_url)) == {f"odoo-{quick}", f"odoo-{late}"}
    assert f"odoo-{fresh}" not in customers(warehouse_url)
    window = Ledger(get_warehouse(warehouse_url)).jobs(asset_key="crm/odoo_customers")[-1]["metadata"]["odoo_window"]
    assert window["write_date_before"] == (fake.now - dt.timedelta(seconds=300)).strftime("%Y-%m-%d %H:%M:%S")


def test_keyset_paging_does_not_skip_the_rows_offset_paging_loses(
    fake: FakeOdoo, warehouse_url: str, tmp_path: Path
) -> None:
    """Records of page 1 edited while the sync pages leave the window: an offset then skips as many
    unchanged records for good; ``id > last_id`` does not."""
    ids = partners(fake, 2500)
    fake.tick(3600)
    moved = ids[:50]

    def edit_once(model: str, kwargs: dict, result: list) -> None:
        if model == "res.partner" and fake.after_read is not None and len(result) == 1000:
            fake.after_read = None
            fake.write("res.partner", moved, {"city": "Colmar"})  # their write_date is now "now"

    # the trap exists on the fake: offset paging of the same window loses 50 unchanged records
    import odoorpc

    odoo = odoorpc.ODOO("127.0.0.1", port=fake.port)
    odoo.login(fake.db, fake.login, fake.api_key)
    window = [("write_date", "<", (fake.now - dt.timedelta(seconds=300)).strftime("%Y-%m-%d %H:%M:%S"))]
    fake.after_read = edit_once
    seen: set[int] = set()
    for offset in (0, 1000, 2000):
        page = odoo.execute_kw(
            "res.partner",
            "search_read",
            [window],
            {"fields": ["id"], "order": "id asc", "limit": 1000, "offset": offset, "context": {"active_test": False}},
        )
        seen.update(r["id"] for r in page)
    assert len(set(ids) - set(moved) - seen) == 50  # unchanged records never read

    fake.unlink("res.partner", ids)
    fake.tick(3600)
    ids = partners(fake, 2500, "Again")
    moved = ids[:50]
    fake.tick(3600)
    fake.after_read = edit_once
    res = resources(fake, warehouse_url, tmp_path / "data")
    assert materialize(res, DAY, selection=[assets.odoo_customers]).success
    loaded = customers(warehouse_url)
    assert {f"odoo-{i}" for i in ids if i not in moved} <= set(loaded)  # none skipped
    fake.tick(3600)  # the edited ones are read by the next run of their (new) window
    assert materialize(res, DAY, selection=[assets.odoo_customers]).success
    assert all(customers(warehouse_url)[f"odoo-{i}"]["city"] == "Colmar" for i in moved)


def test_archived_records_arrive_inactive(fake: FakeOdoo, warehouse_url: str, tmp_path: Path) -> None:
    ids = partners(fake, 3)
    [product] = fake.create("product.product", [{"name": "Riesling 2021 75cl", "type": "product", "list_price": 15}])
    fake.tick(600)
    fake.write("res.partner", ids[:1], {"active": False})
    fake.write("product.product", [product], {"active": False})
    fake.tick(600)
    res = resources(fake, warehouse_url, tmp_path / "data")
    assert materialize(res, DAY, selection=[assets.odoo_customers, assets.odoo_products]).success
    loaded = customers(warehouse_url)
    assert [loaded[f"odoo-{i}"]["active"] for i in ids] == [False, True, True]
    [catalog] = rows(warehouse_url, tables.product_catalog).values()
    assert catalog["active"] is False and catalog["product_key"] == "RIESLING-2021-75CL"


def test_deletions_are_reconciled_never_dropped(fake: FakeOdoo, warehouse_url: str, tmp_path: Path) -> None:
    from ingestion_platform_tests.crm.odoo_helpers import seed_estate

    ids = seed_estate(fake)
    fake.tick(3 * 3600)
    res = resources(fake, warehouse_url, tmp_path / "data")
    assert materialize(res, dt.date(2026, 11, 22)).success
    fake.unlink("stock.quant", ids["quants"][:1])  # Odoo deletes empty quants itself
    fake.unlink("res.partner", ids["partners"][2:])
    fake.write("sale.order.line", ids["lines"][1:2], {"state": "cancel"})  # no longer a sale
    result = jobs.crm_odoo_deletions_job.execute_in_process(
        resources={"odoo_api": res["odoo_api"], "warehouse": res["warehouse"]}, instance=dg.DagsterInstance.ephemeral()
    )
    assert result.success
    stock = rows(warehouse_url, tables.stock_levels)
    assert stock[f"odoo-{ids['quants'][0]}"]["deleted_at"] is not None  # kept, marked
    assert stock[f"odoo-{ids['quants'][1]}"]["deleted_at"] is None
    loaded = customers(warehouse_url)
    assert [loaded[f"odoo-{i}"]["deleted_at"] is not None for i in ids["partners"]] == [False, False, True]
    lines = rows(warehouse_url, tables.sales_lines)
    assert lines[f"odoo-{ids['lines'][1]}"]["deleted_at"] is not None and len(lines) == 5
    # a sync run never writes deleted_at back
    fake.tick(3600)
    assert materialize(res, dt.date(2026, 11, 22)).success
    assert rows(warehouse_url, tables.stock_levels)[f"odoo-{ids['quants'][0]}"]["deleted_at"] is not None
    metadata = result.output_for_node("crm_odoo_reconcile_deletions")
    assert metadata is None


def test_a_day_re_run_changes_nothing_and_a_replay_needs_no_odoo(
    fake: FakeOdoo, warehouse_url: str, tmp_path: Path
) -> None:
    from ingestion_platform_tests.crm.odoo_helpers import seed_estate

    seed_estate(fake)
    fake.tick(3 * 3600)
    res = resources(fake, warehouse_url, tmp_path / "data")
    assert materialize(res).success
    before = {t.name: rows(warehouse_url, t) for t in tables.CANONICAL_TABLES}
    again = materialize(res)
    assert again.success
    for node in ("crm__odoo_customers", "crm__odoo_sales_lines", "crm__odoo_stock_levels"):
        metadata = again.asset_materializations_for_node(node)[0].metadata
        assert (metadata["created"].value, metadata["updated"].value) == (0, 0), node
        assert metadata["unchanged"].value > 0
    strip = lambda table: {k: {c: v for c, v in r.items() if not c.startswith("_")} for k, r in table.items()}  # noqa: E731
    after = {t.name: rows(warehouse_url, t) for t in tables.CANONICAL_TABLES}
    assert {n: strip(t) for n, t in after.items()} == {n: strip(t) for n, t in before.items()}
    offline = resources(fake, warehouse_url, tmp_path / "data", url="http://127.0.0.1:9")
    calls = len(fake.calls)
    assert materialize(offline, replay=True).success
    assert len(fake.calls) == calls  # the replay asked Odoo nothing
    assert {n: strip(rows(warehouse_url, t)) for n, t in ((t.name, t) for t in tables.CANONICAL_TABLES)} == {
        n: strip(t) for n, t in before.items()
    }


def test_a_backfill_from_the_first_day_is_the_initial_load(fake: FakeOdoo, warehouse_url: str, tmp_path: Path) -> None:
    fake.now = dt.datetime(2018, 5, 1, 10, 0, 0, 500000)
    [old] = partners(fake, 1, "Old")
    fake.now = dt.datetime(2020, 1, 2, 10, 0, 0, 500000)
    [second_day] = partners(fake, 1, "Second")
    fake.now = dt.datetime(2024, 3, 1, 10, 0, 0, 500000)
    [recent] = partners(fake, 1, "Recent")
    fake.now = dt.datetime(2026, 11, 22, 10)
    res = resources(fake, warehouse_url, tmp_path / "data")
    assert materialize(res, dt.date(2020, 1, 1), dt.date(2020, 1, 3), selection=[assets.odoo_customers]).success
    loaded = customers(warehouse_url)
    assert {k: r["partition_day"] for k, r in loaded.items()} == {
        f"odoo-{old}": dt.date(2020, 1, 1),  # older than the first day: lands in it
        f"odoo-{second_day}": dt.date(2020, 1, 2),
    }
    reads = [c for c in fake.calls if c["method"] == "search_read" and c["model"] == "res.partner"]
    assert reads[0]["args"][0][0] == ["write_date", "<", "2020-01-03 23:00:00"]  # open at the start
    assert materialize(res, dt.date(2024, 3, 1), selection=[assets.odoo_customers]).success
    assert customers(warehouse_url)[f"odoo-{recent}"]["partition_day"] == dt.date(2024, 3, 1)


def test_a_bad_record_is_dead_lettered_alone_naming_model_id_and_field(
    fake: FakeOdoo, warehouse_url: str, tmp_path: Path
) -> None:
    good, bad = fake.create("res.partner", [{"name": "Good"}, {"name": "Bad", "zip": ["not", "a", "zip"]}])
    fake.tick(3600)
    result = materialize(resources(fake, warehouse_url, tmp_path / "data"), selection=[assets.odoo_customers])
    assert result.success
    assert set(customers(warehouse_url)) == {f"odoo-{good}"}
    [letter] = RawStore(tmp_path / "data").dead_letters("odoo")
    assert f"res.partner id {bad}" in letter.error and "'zip'" in letter.error
    assert letter.partition == DAY.isoformat() and letter.origin == "res.partner/after_0"


@pytest.mark.parametrize("version", [16, 18])
def test_odoo_16_and_18_product_shapes(version: int, sqlite_url: str, tmp_path: Path) -> None:
    with FakeOdoo(version=version, now=dt.datetime(2026, 11, 22, 8)) as fake:
        storable = (
            {"type": "consu", "is_storable": True} if version >= 18 else {"type": "product", "detailed_type": "product"}
        )
        fake.create("product.product", [{"name": "Gewurztraminer Vendanges Tardives 2018 50cl", **storable}])
        fake.tick(3600)
        assert materialize(resources(fake, sqlite_url, tmp_path / "data"), selection=[assets.odoo_products]).success
        [product] = rows(sqlite_url, tables.product_catalog).values()
        assert (product["product_key"], product["category"], product["volume_cl"]) == (
            "GEWURZTRAMINER_VENDANGES_TARDIVES-2018-50CL",
            "sweet",
            50,
        )
        [read] = [c for c in fake.calls if c["method"] == "search_read" and c["model"] == "product.product"]
        fields = read["kwargs"]["fields"]
        assert ("is_storable" in fields, "detailed_type" in fields) == (version >= 18, version < 18)


def test_a_wrong_key_and_a_missing_configured_field_fail_naming_them(
    fake: FakeOdoo, sqlite_url: str, tmp_path: Path
) -> None:
    partners(fake, 1)
    fake.tick(3600)
    res = resources(fake, sqlite_url, tmp_path / "data", api_key="WRONG")
    result = materialize(res, selection=[assets.odoo_customers])
    assert not result.success
    text = str(result.all_events)
    assert "AccessDenied" in text and fake.login in text and "WRONG" not in text
    res = resources(fake, sqlite_url, tmp_path / "data", volume_field="x_volume_cl")
    result = materialize(res, selection=[assets.odoo_products])
    assert not result.success and "has no field 'x_volume_cl'" in str(result.all_events)


def test_the_connection_test_names_a_missing_right(
    fake: FakeOdoo, sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    from ingestion_platform import cli

    res = resources(fake, sqlite_url, tmp_path / "data")
    ok = jobs.crm_odoo_connection_test.execute_in_process(resources={"odoo_api": res["odoo_api"]})
    assert ok.success
    fake.forbidden.add("stock.quant")
    failed = jobs.crm_odoo_connection_test.execute_in_process(
        resources={"odoo_api": res["odoo_api"]}, raise_on_error=False
    )
    assert not failed.success
    assert "read stock.quant" in str(failed.all_events) and "may not read Odoo model 'stock.quant'" in str(
        failed.all_events
    )
    for name, value in (
        ("ODOO_URL", fake.url),
        ("ODOO_DB", fake.db),
        ("ODOO_USER", fake.login),
        ("ODOO_API_KEY", fake.api_key),
        ("ODOO_MAX_ATTEMPTS", "1"),
    ):
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)
    assert cli.main(["odoo-check"]) == 1
    out = capsys.readouterr().out
    assert "ok     login" in out and "FAILED read stock.quant" in out and fake.api_key not in out
    fake.forbidden.clear()
    assert cli.main(["odoo-check"]) == 0


def test_the_hourly_schedule_runs_yesterday_and_today_in_one_run() -> None:
    when = dt.datetime(2026, 11, 22, 0, 5, tzinfo=dt.UTC)  # 01:05 in Paris
    request = jobs.crm_odoo_hourly_schedule(dg.build_schedule_context(scheduled_execution_time=when))
    assert request.tags["dagster/asset_partition_range_start"] == "2026-11-21"
    assert request.tags["dagster/asset_partition_range_end"] == "2026-11-22"
    assert jobs.crm_odoo_deletions_schedule.cron_schedule == "0 3 * * *"


def test_the_windows() -> None:
    day = dt.date(2026, 11, 22)
    now = dt.datetime(2026, 11, 22, 15, 0, 30, 999)
    assert assets.window([day], now, 300) == ("2026-11-21 23:00:00", "2026-11-22 14:55:30")
    assert assets.window([day - dt.timedelta(days=2)], now, 300) == ("2026-11-19 23:00:00", "2026-11-20 23:00:00")
    assert assets.window([day + dt.timedelta(days=1)], now, 300) is None  # tomorrow: not started
    assert assets.window([dt.date(2020, 1, 1)], now, 0) == (None, "2020-01-01 23:00:00")
    summer = dt.date(2026, 7, 1)
    assert assets.window([summer], now, 0) == ("2026-06-30 22:00:00", "2026-07-01 22:00:00")
    assert sa is not None


def test_a_change_made_only_on_the_template_lands_in_its_day(
    fake: FakeOdoo, warehouse_url: str, tmp_path: Path
) -> None:
    """Setting a price on ``product.template`` leaves the variant's write_date alone: the products asset
    also reads the variants of the templates written in the window, and the row lands in the day of the
    later write_date; re-running a day (the new one or the old one) changes nothing."""
    before = DAY - dt.timedelta(days=1)
    fake.now = UTC_MIDNIGHT_PARIS - dt.timedelta(days=1) + dt.timedelta(hours=8, microseconds=250000)
    with fake.transaction() as tx:
        template, other = tx.create(
            "product.template",
            [
                {"name": "Riesling Grand Cru 2020 75cl", "list_price": 18.5, "categ_id": [4, "All / Vins / Blancs"]},
                {"name": "Pinot Noir 2019 75cl", "list_price": 14.0, "categ_id": [3, "All / Vins / Rouges"]},
            ],
        )
        variant, untouched = tx.create(
            "product.product",
            [
                {"product_tmpl_id": [template, "Riesling"], "default_code": "RIE20", "type": "product"},
                {"product_tmpl_id": [other, "Pinot"], "default_code": "PN19", "type": "product"},
            ],
        )
    fake.tick(3600)
    res = resources(fake, warehouse_url, tmp_path / "data")
    assert materialize(res, before, selection=[assets.odoo_products]).success

    def product(source_id: int) -> dict[str, Any]:
        return next(r for r in rows(warehouse_url, tables.product_catalog).values() if r["source_id"] == str(source_id))

    assert (product(variant)["list_price"], product(variant)["partition_day"]) == (decimal.Decimal("18.5"), before)
    fake.now = UTC_MIDNIGHT_PARIS + dt.timedelta(hours=9, microseconds=500000)  # 10:00 Paris, the next day
    fake.write("product.template", [template], {"list_price": 21.0})
    changed_at = fake.now
    assert fake.records["product.product"][variant]["write_date"] < changed_at  # the variant did not move
    fake.tick(3600)

    def run(day: dt.date) -> tuple[int, int]:
        result = materialize(res, day, selection=[assets.odoo_products])
        assert result.success
        metadata = result.asset_materializations_for_node("crm__odoo_products")[0].metadata
        return metadata["created"].value, metadata["updated"].value

    assert run(DAY) == (0, 1)
    row = product(variant)
    assert (row["list_price"], row["partition_day"]) == (decimal.Decimal("21"), DAY)
    assert row["last_updated"].replace(tzinfo=None) == changed_at.replace(microsecond=0)
    job = Ledger(get_warehouse(warehouse_url)).jobs(asset_key="crm/odoo_products")[-1]
    assert job["metadata"]["odoo_template_changes"] == 1  # only the written template's variant
    assert job["metadata"]["odoo_pages"] == 1  # no variant itself was written that day
    assert run(DAY) == (0, 0)  # the day re-run
    assert run(before) == (0, 0)  # the old day's re-run leaves the row in its new day
    assert (product(variant)["list_price"], product(variant)["partition_day"]) == (decimal.Decimal("21"), DAY)
    assert product(untouched)["partition_day"] == before
    reads = [c["args"][0] for c in fake.calls if c["model"] == "product.template" and c["method"] == "search_read"]
    day_reads = [d for d in reads if ["write_date", ">=", "2026-11-21 23:00:00"] in d]  # DAY's window, keyset
    assert day_reads and all(
        d[-1] == ["id", ">", 0] and any(t[:2] == ["write_date", "<"] for t in d) for d in day_reads
    )


def test_pages_left_by_an_earlier_fetch_of_the_day_are_not_reconciled(
    fake: FakeOdoo, warehouse_url: str, tmp_path: Path
) -> None:
    """A day fetched again with other page boundaries leaves the earlier fetch's pages under other names
    (``after_1000`` then ``after_800``). One of them holds a partner as it was before an edit the next day
    moved it there: the raw reconciliation reads the latest fetch's pages only, so the day is not reported
    missing a row that rightly moved."""
    ids = partners(fake, 2500)
    fake.tick(3600)
    data = tmp_path / "data"
    assert materialize(
        resources(fake, warehouse_url, data, page_size=1000), DAY, selection=[assets.odoo_customers]
    ).success
    fake.now = UTC_MIDNIGHT_PARIS + dt.timedelta(days=1, hours=9)
    fake.write("res.partner", [ids[1499]], {"name": "Moved Nextday"})
    fake.tick(3600)
    next_day = DAY + dt.timedelta(days=1)
    assert materialize(
        resources(fake, warehouse_url, data, page_size=1000), next_day, selection=[assets.odoo_customers]
    ).success
    assert customers(warehouse_url)[f"odoo-{ids[1499]}"]["partition_day"] == next_day

    again = materialize(resources(fake, warehouse_url, data, page_size=800), DAY, selection=[assets.odoo_customers])
    stored = RawStore(data).requests("odoo", DAY.isoformat())
    assert {"res.partner/after_1000", "res.partner/after_800"} <= set(stored)  # both fetches' pages are kept
    checks = {(e.check_name, e.partition): e for e in again.get_asset_check_evaluations()}
    reconciled = checks[("rows_match_raw_pages", DAY.isoformat())]
    assert reconciled.passed, reconciled.metadata
    assert reconciled.metadata["checked_rows"].value == 2499
