"""The derived CRM assets on canonical rows of both sources (SQLite and PostgreSQL): purchase figures
owned apart from the source columns, cross-source customer matches and their warning, the product
precedence of Odoo over iSaVigne, and the shared canonical checks on bad values."""

import datetime as dt
import decimal
from pathlib import Path

import dagster as dg
import sqlalchemy as sa

from ingestion_platform.defs.crm import tables
from ingestion_platform.defs.crm.checks import canonical_checks
from ingestion_platform.defs.crm.derived import customer_match, customer_purchases, match_rows
from ingestion_platform.defs.crm.source import ODOO_SALES_LINES
from ingestion_platform.lib.checks import CheckInputs, DateWindow
from ingestion_platform.lib.raw_store import RawStore, RawStoreResource
from ingestion_platform.lib.warehouse import Warehouse, WarehouseResource
from ingestion_platform_tests.run_metadata import checks_passed, run_metadata

D = decimal.Decimal
DAY = dt.date(2025, 3, 14)
GONE = dt.datetime(2025, 3, 15, tzinfo=dt.UTC)


def customer(source: str, sid: str, first: str, last: str, **extra: object) -> dict:
    return {"customer_key": f"{source}-{sid}", "source": source, "source_id": sid, "first_name": first,
            "last_name": last, "partition_day": DAY, **extra}  # fmt: skip


CUSTOMERS = [
    customer("odoo", "7", "Marie", "Schaller", email="marie.schaller@example.fr", zip_code="68000"),
    customer("odoo", "8", "Jean-Paul", "Muller", phone="+33612345678", zip_code="67000"),
    customer("odoo", "9", "Anne", "Weber", zip_code="68100"),
    customer("isavigne", "C001", "MARIE", "SCHALLER", email="marie.schaller@example.fr"),  # e-mail
    customer("isavigne", "C002", "J.-P.", "Muller", phone="+33612345678"),  # phone
    customer("isavigne", "C003", "Anne", "Wéber", zip_code="68100"),  # name within the postcode
    customer("isavigne", "C004", "Anne", "Weber", zip_code="75001"),  # same name, another postcode: no
]


def line(key: str, customer_key: str, order: str, day: dt.date, total: str, **extra: object) -> dict:
    return {"sale_line_key": key, "customer_key": customer_key, "order_ref": order, "date_sale": day,
            "price_total": D(total), "source": key.split("-")[0], "source_id": key, "partition_day": DAY,
            **extra}  # fmt: skip


def resources(url: str, tmp_path: Path) -> dict:
    return {"warehouse": WarehouseResource(database_url=url), "raw_store": RawStoreResource(data_dir=str(tmp_path))}


def test_purchase_figures_and_matches(warehouse: Warehouse, warehouse_url: str, tmp_path: Path) -> None:
    warehouse.load(tables.customers, CUSTOMERS, columns=tables.source_columns(tables.customers))
    lines = [
        line("odoo-1", "odoo-7", "S001", dt.date(2025, 3, 1), "120.00"),
        line("odoo-2", "odoo-7", "S001", dt.date(2025, 3, 1), "30.50"),
        line("odoo-3", "odoo-7", "S009", dt.date(2025, 3, 12), "15.00"),
        line("isavigne-F1-1", "isavigne-C002", "F1", dt.date(2024, 12, 20), "64.00"),
        line("odoo-4", "odoo-8", "S010", dt.date(2025, 3, 13), "99.00", deleted_at=GONE),
    ]  # fmt: skip
    warehouse.load(tables.sales_lines, lines, columns=(*tables.source_columns(tables.sales_lines), "deleted_at"))
    res = resources(warehouse_url, tmp_path)
    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize([customer_purchases, customer_match], resources=res, instance=instance,
                            partition_key=DAY.isoformat())  # fmt: skip
    assert result.success
    rows = {r["customer_key"]: r for r in warehouse.fetch(sa.select(tables.customers))}
    assert (rows["odoo-7"]["last_purchase_date"], rows["odoo-7"]["total_spent"], rows["odoo-7"]["purchase_count"]) == (
        dt.date(2025, 3, 12), D("165.50"), 2)  # fmt: skip
    assert rows["isavigne-C002"]["purchase_count"] == 1
    assert rows["odoo-8"]["purchase_count"] is None  # its only line is deleted: never had live figures
    assert rows["odoo-9"]["first_name"] == "Anne"  # the source columns are untouched
    meta = run_metadata(result, customer_purchases)
    assert (meta["created"], meta["updated"]) == (0, 2)

    pairs = {(r["customer_key"], r["matched_key"]): r for r in warehouse.fetch(sa.select(tables.customer_match))}
    assert {k: (p["rule"], p["score"] == 1.0) for k, p in pairs.items()} == {
        ("odoo-7", "isavigne-C001"): ("email", True),
        ("odoo-8", "isavigne-C002"): ("phone", True),
        ("odoo-9", "isavigne-C003"): ("name_zip", True),  # accents folded: the same name
    }
    assert checks_passed(result)[("crm/customer_match", "duplicate_customers")] is False  # a warning, listed

    # a source reload of the customers (its own columns) keeps the figures; a re-run changes nothing
    again = warehouse.load(tables.customers, CUSTOMERS, columns=tables.source_columns(tables.customers))
    assert (again.created, again.updated) == (0, 0)
    rerun = dg.materialize([customer_purchases, customer_match], resources=res, instance=instance,
                           partition_key=DAY.isoformat())  # fmt: skip
    assert (run_metadata(rerun, customer_purchases)["updated"], run_metadata(rerun, customer_match)["created"]) == (
        0,
        0,
    )
    assert warehouse.fetch(sa.select(tables.customers.c.total_spent).where(
        tables.customers.c.customer_key == "odoo-7"))[0]["total_spent"] == D("165.50")  # fmt: skip

    # the lines of odoo-7 vanish from the source: its figures go back to none; C003 leaves: its pair goes
    warehouse.load(tables.sales_lines, [{**r, "deleted_at": GONE} for r in lines[:3]], columns=("deleted_at",))
    warehouse.load(tables.customers, [{"customer_key": "isavigne-C003", "deleted_at": dt.datetime.now(dt.UTC)}],
                   columns=("deleted_at",))  # fmt: skip
    third = dg.materialize([customer_purchases, customer_match], resources=res, instance=instance,
                           partition_key=DAY.isoformat())  # fmt: skip
    row = warehouse.fetch(sa.select(tables.customers).where(tables.customers.c.customer_key == "odoo-7"))[0]
    assert (row["last_purchase_date"], row["total_spent"], row["purchase_count"]) == (None, 0, 0)
    assert run_metadata(third, customer_match)["deleted"] == 1


def test_match_rows_prefers_email_then_phone_then_name() -> None:
    rows = [
        {"customer_key": "odoo-1", "source": "odoo", "email": "a@x.fr", "phone": "+33600000001",
         "first_name": "Luc", "last_name": "Roth", "zip_code": "68000"},
        {"customer_key": "odoo-2", "source": "odoo", "email": None, "phone": "+33600000002",
         "first_name": "Lucas", "last_name": "Roth", "zip_code": "68000"},
        {"customer_key": "isavigne-X", "source": "isavigne", "email": "a@x.fr", "phone": "+33600000002",
         "first_name": "Lucas", "last_name": "Roth", "zip_code": "68 000"},
    ]  # fmt: skip
    assert [(p["customer_key"], p["rule"]) for p in match_rows(rows, 90)] == [("odoo-1", "email")]
    assert match_rows([r for r in rows if r["customer_key"] != "isavigne-X"], 90) == []  # one source: no pair


def test_isavigne_never_overwrites_an_odoo_product(warehouse: Warehouse) -> None:
    odoo = {"product_key": "RIESLING-2020-75CL", "name": "Riesling 2020", "list_price": D("12.5"), "source": "odoo",
            "source_id": "12", "partition_day": DAY, "volume_cl": D(75)}  # fmt: skip
    isavigne = {**odoo, "name": "RIESLING 2020 75CL", "list_price": D("11"), "source": "isavigne", "source_id": "R20"}
    fresh = {**isavigne, "product_key": "SYLVANER-2022-75CL", "source_id": "S22"}
    contract = tables.PRODUCT_CATALOG_ISAVIGNE
    warehouse.load(tables.product_catalog, [odoo], **tables.PRODUCT_CATALOG_CONTRACT.load_options())
    result = warehouse.load(tables.product_catalog, [isavigne, fresh], **contract.load_options())
    assert (result.created, result.updated, result.unchanged) == (1, 0, 1)
    names = {r["product_key"]: (r["source"], r["name"]) for r in warehouse.fetch(sa.select(tables.product_catalog))}
    assert names == {
        "RIESLING-2020-75CL": ("odoo", "Riesling 2020"),
        "SYLVANER-2022-75CL": ("isavigne", "RIESLING 2020 75CL"),
    }
    # and Odoo, the system of record, takes over a product first known from iSaVigne
    warehouse.load(tables.product_catalog, [{**odoo, "product_key": "SYLVANER-2022-75CL", "source_id": "13"}],
                   **tables.PRODUCT_CATALOG_CONTRACT.load_options())  # fmt: skip
    assert warehouse.fetch(sa.select(tables.product_catalog.c.source).where(
        tables.product_catalog.c.product_key == "SYLVANER-2022-75CL"))[0]["source"] == "odoo"  # fmt: skip


def test_canonical_checks_find_bad_values(warehouse: Warehouse, tmp_path: Path) -> None:
    P, S = tables.product_catalog, tables.sales_lines
    odoo = {"source": "odoo", "partition_day": DAY}
    products = [
        ("RIESLING-2020-75CL", 75, 1, 10),
        ("PINOT_NOIR-2021-6X75CL", 75, 6, 50),
        ("MYSTERE-NV-UNKNOWN", None, 1, -1),
    ]
    warehouse.load(P, [{**odoo, "product_key": k, "volume_cl": v, "units_per_pack": u, "list_price": D(price)}
                       for k, v, u, price in products])  # fmt: skip
    warehouse.load(tables.customers, [customer("odoo", "7", "Marie", "S", email="marie@"),
                                      customer("odoo", "8", "Luc", "R", email="luc@example.fr")])  # fmt: skip
    base = {**odoo, "customer_key": "odoo-7", "price_unit": D(10), "price_total": D(20)}
    lines = [("odoo-1", "RIESLING-2020-75CL", 2, 2), ("odoo-2", "PINOT_NOIR-2021-6X75CL", 1, 6),
             ("odoo-3", "PINOT_NOIR-2021-6X75CL", 1, 1), ("odoo-4", "GHOST-NV-75CL", -1, None),
             ("odoo-5", "MYSTERE-NV-UNKNOWN", 3, None)]  # fmt: skip
    warehouse.load(S, [{**base, "sale_line_key": k, "product_key": p, "quantity_units": D(q),
                        "quantity_bottles_75cl_eq": None if eq is None else D(eq)}
                       for k, p, q, eq in lines])  # fmt: skip
    warehouse.load(S, [{"sale_line_key": "odoo-4", "customer_key": "odoo-99"}], columns=("customer_key",))
    inputs = CheckInputs(warehouse, RawStore(tmp_path), DateWindow(DAY, DAY + dt.timedelta(days=1)))
    results = {}
    for table in (P, tables.customers, S):
        for check in canonical_checks(ODOO_SALES_LINES, table, "odoo"):
            outcome = check.fn(inputs)
            results[f"{table.name}.{check.name}"] = (outcome.failures, outcome.sample)
    assert results["product_catalog.volume_known"][0] == 1
    assert results["product_catalog.prices_not_negative"][0] == 1
    assert [r["email"] for r in results["customers.email_format"][1]] == ["marie@"]
    assert results["sales_lines.sales_lines_key_unique_not_null"][0] == 0
    assert results["sales_lines.sales_lines_references_customers"][1] == [
        {"sale_line_key": "odoo-4", "customer_key": "odoo-99"}]  # fmt: skip
    assert results["sales_lines.sales_lines_references_product_catalog"][1] == [
        {"sale_line_key": "odoo-4", "product_key": "GHOST-NV-75CL"}]  # fmt: skip
    assert results["sales_lines.quantities_and_prices_not_negative"][0] == 1
    assert [r["sale_line_key"] for r in results["sales_lines.bottles_75cl_eq_consistent"][1]] == ["odoo-3"]
    # another source's rows or another day are not this check's business
    other_day = CheckInputs(
        warehouse, RawStore(tmp_path), DateWindow(DAY + dt.timedelta(days=1), DAY + dt.timedelta(days=2))
    )
    assert all(check.fn(other_day).failures == 0 for check in canonical_checks(ODOO_SALES_LINES, S, "odoo"))
    assert all(check.fn(inputs).checked == 0 for check in canonical_checks(ODOO_SALES_LINES, S, "isavigne"))


def test_status_json_reports_last_sync_rows_and_errors(
    warehouse: Warehouse, warehouse_url: str, tmp_path: Path, monkeypatch, capsys
) -> None:
    import json

    from ingestion_platform import cli

    warehouse.load(tables.customers, CUSTOMERS, columns=tables.source_columns(tables.customers))
    res = resources(warehouse_url, tmp_path)
    assert dg.materialize([customer_match], resources=res, partition_key=DAY.isoformat()).success
    monkeypatch.setenv("INGESTION_DATABASE_URL", warehouse_url)
    monkeypatch.setenv("INGESTION_DATA_DIR", str(tmp_path))
    monkeypatch.chdir(tmp_path)  # no .env of the repository
    assert cli.main(["status", "--json"]) == 0
    report = {entry["source"]: entry for entry in json.loads(capsys.readouterr().out)}
    crm = report["crm"]
    assert crm["last_sync"]["status"] == "completed" and crm["last_sync"]["asset"] == "crm/customer_match"
    assert crm["last_sync"]["run_totals"]["created"] == 3 and crm["last_success_at"] is not None
    assert crm["rows"]["crm.customer_match"] == 3 and crm["failed_jobs_since_success"] == 0
    assert report["pmu"]["last_sync"] is None and report["pmu"]["rows"]["pmu.race"] == 0
    assert cli.main(["status"]) == 0
    assert "crm          completed crm/customer_match 2025-03-14" in capsys.readouterr().out
