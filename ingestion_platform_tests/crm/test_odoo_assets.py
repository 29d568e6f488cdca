"""The five Odoo assets end to end on the fake Odoo (driven by odoorpc), on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import decimal
import gzip
import json
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import sqlalchemy as sa

from ingestion_platform.defs.crm import tables
from ingestion_platform.defs.crm.odoo import assets
from ingestion_platform.defs.crm.odoo.resources import OdooApi
from ingestion_platform.lib.raw_store import RawStore, RawStoreResource
from ingestion_platform.lib.warehouse import WarehouseResource, get_warehouse
from ingestion_platform_tests.crm.fake_odoo import FakeOdoo
from ingestion_platform_tests.crm.odoo_helpers import DAY, seed_estate

ALL = [
    assets.odoo_customers,
    assets.odoo_products,
    assets.odoo_sales_lines,
    assets.odoo_stock_levels,
    assets.odoo_contact_history,
]


def resources(fake: FakeOdoo, warehouse_at: str, data: Path, **extra: Any) -> dict[str, Any]:
    settings: dict[str, Any] = {
        "url": fake.url,
        "db": fake.db,
        "user": fake.login,
        "api_key": fake.api_key,
        "sync_lag_s": 300,
        "max_attempts": 1,
    }
    settings.update(extra)
    return {
        "odoo_api": OdooApi(**settings),
        "warehouse": WarehouseResource(database_url=warehouse_at),
        "raw_store": RawStoreResource(data_dir=str(data)),
    }


def materialize(
    res: dict[str, Any],
    day: dt.date = DAY,
    last: dt.date | None = None,
    selection: list | None = None,
    replay: bool = False,
) -> dg.ExecuteInProcessResult:
    chosen = selection or ALL
    kwargs: dict[str, Any] = {}
    if last is None:
        kwargs["partition_key"] = day.isoformat()
    else:
        kwargs["tags"] = {
            "dagster/asset_partition_range_start": day.isoformat(),
            "dagster/asset_partition_range_end": last.isoformat(),
        }
    if replay:
        kwargs["run_config"] = {"ops": {a.op.name: {"config": {"reprocess_from_raw": True}} for a in chosen}}
    return dg.materialize(
        chosen, resources=res, instance=dg.DagsterInstance.ephemeral(), raise_on_error=False, **kwargs
    )


def rows(url: str, table: sa.Table) -> dict[str, dict[str, Any]]:
    key = table.primary_key.columns.values()[0]
    return {r[key.name]: r for r in get_warehouse(url).fetch(sa.select(table))}


@pytest.fixture
def fake() -> Any:
    with FakeOdoo(version=17) as server:
        seed_estate(server)
        server.tick(3 * 3600)  # 12:30 Paris: the seed is older than the lag
        yield server


def test_the_five_tables_from_odoo(fake: FakeOdoo, warehouse_url: str, tmp_path: Path) -> None:
    res = resources(fake, warehouse_url, tmp_path / "data")
    result = materialize(res)
    assert result.success
    failed = {
        (e.asset_key.to_user_string(), e.check_name) for e in result.get_asset_check_evaluations() if not e.passed
    }
    assert failed == {("crm/odoo_products", "volume_known")}  # "Cuvée Mystère": no volume, not guessed
    customers = rows(warehouse_url, tables.customers)
    assert set(customers) == {"odoo-1", "odoo-2", "odoo-3"}
    jeanne = customers["odoo-1"]
    assert (jeanne["first_name"], jeanne["last_name"], jeanne["email"], jeanne["phone"]) == (
        "Jeanne",
        "Martin",
        "jeanne.martin@example.fr",
        "+33612345678",
    )
    assert (jeanne["zip_code"], jeanne["country"], jeanne["partition_day"]) == ("68000", "FR", DAY)
    assert customers["odoo-3"]["active"] is False and customers["odoo-3"]["email"] is None  # archived, false-for-empty
    assert customers["odoo-2"]["last_name"] == "Cave du Rhin" and customers["odoo-2"]["is_company"] is True

    products = {r["source_id"]: r for r in rows(warehouse_url, tables.product_catalog).values()}
    assert products["1"]["product_key"] == "RIESLING_GRAND_CRU-2020-75CL"
    assert (products["1"]["category"], products["1"]["vintage"]) == ("white", 2020)
    assert products["2"]["volume_cl"] == 150 and products["2"]["category"] == "sparkling"
    assert products["3"]["units_per_pack"] == 6  # its UoM "Carton 6" has ratio 6
    assert products["4"]["volume_cl"] is None  # not guessed
    assert products["5"]["category"] == "other"

    lines = rows(warehouse_url, tables.sales_lines)
    assert set(lines) == {"odoo-1", "odoo-2", "odoo-3", "odoo-4", "odoo-5"}  # confirmed, no section, no quotation
    eq = {k: v["quantity_bottles_75cl_eq"] for k, v in lines.items()}
    assert eq == {"odoo-1": 24, "odoo-2": 6, "odoo-3": 6, "odoo-4": None, "odoo-5": None}
    first = lines["odoo-1"]
    assert (first["customer_key"], first["order_ref"], first["channel"], first["date_sale"]) == (
        "odoo-1",
        "S00042",
        "Caveau",
        DAY,
    )
    assert first["product_key"] == products["1"]["product_key"]
    assert first["cost_total"] == decimal.Decimal("148.80")  # 24 bottles x 6.20
    assert (first["quantity_units"], first["price_unit"]) == (24, decimal.Decimal("16.6667"))  # per bottle
    assert first["price_total"] == 400

    stock = rows(warehouse_url, tables.stock_levels)
    assert set(stock) == {"odoo-1", "odoo-2"}  # internal locations only
    assert (stock["odoo-1"]["available_qty"], stock["odoo-1"]["quantity_bottles_75cl_eq"]) == (96, 120)
    assert stock["odoo-1"]["last_count_date"] == dt.date(2026, 11, 1)
    assert stock["odoo-2"]["quantity_bottles_75cl_eq"] == 60  # 10 cases of 6

    contacts = rows(warehouse_url, tables.contact_history)
    assert set(contacts) == {"odoo-1", "odoo-2"}
    assert (
        contacts["odoo-1"]["channel"] == "email"
        and contacts["odoo-2"]["subject"] == "Rappeler pour la commande de Pâques"
    )

    # raw first: every page stored, never the key
    raw = RawStore(tmp_path / "data")
    stored = list((tmp_path / "data").rglob("*"))
    assert any("res.partner" in p.name for p in stored)
    for path in stored:
        if path.is_file():
            content = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
            assert fake.api_key.encode() not in content, path
    # a page is stored as the server sent it: the JSON-RPC envelope around the records
    label = DAY.isoformat()
    page = json.loads(raw.read("odoo", label, "res.partner/after_0").body)
    assert page["jsonrpc"] == "2.0" and {r["id"] for r in page["result"]} == {1, 2, 3}
    # every call was a search_read/fields_get through execute_kw, keyset by id, never an offset
    reads = [c for c in fake.calls if c["method"] == "search_read"]
    assert reads and all(c["kwargs"]["context"] == {"active_test": False} for c in reads)
    assert all(not c["kwargs"].get("offset") and c["kwargs"]["order"] == "id asc" for c in reads)

    again = materialize(res)  # a day re-run changes nothing
    assert again.success
    for table in tables.CANONICAL_TABLES:
        assert all(r["partition_day"] == DAY for r in rows(warehouse_url, table).values())
    mats = again.asset_materializations_for_node("crm__odoo_customers")
    assert mats[0].metadata["created"].value == 0 and mats[0].metadata["updated"].value == 0


def test_rows_match_raw_pages_finds_a_record_the_parser_drops(
    fake: FakeOdoo, warehouse_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The reconciliation reads the stored pages itself: every partner and product record of the day is
    a row, and a record a (broken) parser drops silently fails the check, named in its sample."""
    from ingestion_platform.defs.crm.odoo import parse

    res = resources(fake, warehouse_url, tmp_path / "data")
    selection = [assets.odoo_customers, assets.odoo_products]
    evaluations = {e.check_name + " " + e.asset_key.to_user_string(): e
                   for e in materialize(res, selection=selection).get_asset_check_evaluations()}  # fmt: skip
    for asset in ("crm/odoo_customers", "crm/odoo_products"):
        found = evaluations[f"rows_match_raw_pages {asset}"]
        assert found.passed and found.metadata["checked_rows"].value >= 3, asset

    real_partners, real_products = parse.parse_partners, parse.parse_products

    def drops_partner_2(records: Any, request: Any = None) -> Any:
        return real_partners([r for r in records if r.get("id") != 2], request)

    def drops_product_3(records: Any, request: Any = None, **kwargs: Any) -> Any:
        return real_products([r for r in records if r.get("id") != 3], request, **kwargs)

    monkeypatch.setattr(parse, "parse_partners", drops_partner_2)
    monkeypatch.setattr(parse, "parse_products", drops_product_3)
    get_warehouse(warehouse_url).delete_window(tables.customers, {"source": "odoo"})
    get_warehouse(warehouse_url).delete_window(tables.product_catalog, {"source": "odoo"})
    evaluations = {e.check_name + " " + e.asset_key.to_user_string(): e
                   for e in materialize(res, selection=selection).get_asset_check_evaluations()}  # fmt: skip
    customers = evaluations["rows_match_raw_pages crm/odoo_customers"]
    assert not customers.passed and customers.metadata["sample"].value == [{"missing_row": [DAY.isoformat(), "2"]}]
    products = evaluations["rows_match_raw_pages crm/odoo_products"]
    assert not products.passed and products.metadata["sample"].value == [{"missing_row": [DAY.isoformat(), "3"]}]


def test_the_cached_line_figures_are_each_lines_own() -> None:
    """Sales-line figures are cached by quantity, total, unit price, UoM ratio and product: every line of a
    page mixing units (Dozens), products with and without cost or volume, values written as ints, floats
    and text, gets the figures computed for it alone (the uncached function), and equal values written
    differently get the same quantized figures."""
    from ingestion_platform.defs.crm.odoo import parse

    infos = {
        1: parse.ProductInfo("RIESLING-2020-75CL", 75.0, 1, decimal.Decimal("6.20"), 1.0),
        2: parse.ProductInfo("CREMANT-NV-150CL", 150.0, 6, None, 1.0),
        3: parse.ProductInfo("MYSTERE-NV", None, 1, decimal.Decimal("3.10"), 12.0),  # sold by the dozen
    }
    uoms = {1: (1.0, "Units"), 2: (12.0, "Dozens")}
    orders = {9: {"id": 9, "name": "S09", "partner_id": [4, "Jeanne"], "date_order": "2026-11-22 09:00:00"}}
    quantities = [1, 2.0, "3", 6, 12.0, 0.5]
    records = [
        {
            "id": n + 1,
            "order_id": [9, "S09"],
            "product_id": [product, "p"],
            "product_uom": [uom, "u"],
            "product_uom_qty": qty,
            "price_unit": price,
            "price_subtotal": price * float(qty) if price else False,
            "write_date": "2026-11-22 09:00:00",
            "order_partner_id": [4, "Jeanne"],
        }
        for n, (product, uom, qty, price) in enumerate(
            (p, u, q, pr) for p in infos for u in uoms for q in quantities for pr in (12.5, 30, False)
        )
    ]
    parsed = parse.parse_sales_lines(records * 2, "t", orders=orders, products=infos, uoms=uoms)
    assert not parsed.rejects and len(parsed.value) == 2 * len(records)
    figures = ("quantity_units", "quantity_bottles_75cl_eq", "price_unit", "cost_total", "margin_pct")
    for raw, row in zip(records * 2, parsed.value, strict=True):
        number = lambda v: None if v is False else decimal.Decimal(str(v))  # noqa: E731
        alone = parse._line_figures.__wrapped__(
            number(raw["product_uom_qty"]),
            number(raw["price_subtotal"]),
            number(raw["price_unit"]),
            uoms[raw["product_uom"][0]][0],
            infos[raw["product_id"][0]],
        )
        assert tuple(row[f] for f in figures) == alone, raw
    by = {(raw["product_id"][0], raw["product_uom"][0], raw["product_uom_qty"], raw["price_unit"]): row
          for raw, row in zip(records, parsed.value, strict=False)}  # fmt: skip
    assert by[(1, 2, 2.0, 12.5)]["quantity_units"] == 24  # 2 Dozens of a bottle product: 24 bottles
    assert by[(1, 2, 2.0, 12.5)]["price_unit"] == decimal.Decimal("1.0417")  # 12.50 a dozen, per bottle
    assert by[(3, 1, 6, 30)]["quantity_units"] == decimal.Decimal("0.500")  # 6 bottles of a by-the-dozen product
    assert (by[(1, 1, "3", 12.5)]["quantity_units"], by[(1, 1, "3", 12.5)]["cost_total"]) == (
        3,
        decimal.Decimal("18.60"),
    )
    assert by[(2, 1, 1, False)]["margin_pct"] is None and by[(3, 1, 1, 30)]["quantity_bottles_75cl_eq"] is None
