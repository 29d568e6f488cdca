"""Helpers of the Odoo tests: the recordings' folder, the cursor experiment on the fake, parser checks."""

from __future__ import annotations

import datetime as dt
from typing import Any

from ingestion_platform_tests.crm.fake_odoo import FakeOdoo


def cursor_experiment() -> dict[str, Any]:
    """The Odoo 16 cursor experiment replayed on the fake: 2 partners, 2,500 created in one call, 300
    archived in a later one; a naive ``write_date > last`` cursor against ``>=`` + keyset by id."""
    import odoorpc

    with FakeOdoo(version=16) as fake:
        fake.create("res.partner", [{"name": "Deco Addict"}, {"name": "Azure Interior"}])
        fake.tick(3.25)
        bulk = fake.create("res.partner", [{"name": f"Bulk Customer {i:04d}"} for i in range(2500)])
        fake.tick(15.5)
        fake.write("res.partner", bulk[-300:], {"active": False})
        odoo = odoorpc.ODOO("127.0.0.1", port=fake.port)
        odoo.login(fake.db, fake.login, fake.api_key)
        context = {"active_test": False}
        count_all = odoo.execute_kw("res.partner", "search_count", [[]], {"context": context})
        count_default = odoo.execute_kw("res.partner", "search_count", [[]], {})
        seen: set[int] = set()
        last = "1970-01-01 00:00:00"
        pages = 0
        while pages < 11:  # the experiment stopped after 11 pages
            pages += 1
            page = odoo.execute_kw(
                "res.partner",
                "search_read",
                [[("write_date", ">", last)]],
                {"fields": ["write_date"], "order": "write_date asc, id asc", "limit": 1000, "context": context},
            )
            if not page:
                break
            seen.update(r["id"] for r in page)
            last = max(r["write_date"] for r in page)
        naive = {"pages": pages, "distinct_ids": len(seen)}
        ids: set[int] = set()
        archived = 0
        last_id, keyset_pages = 0, 0
        while True:
            page = odoo.execute_kw(
                "res.partner",
                "search_read",
                [[("write_date", ">=", "1970-01-01 00:00:00"), ("id", ">", last_id)]],
                {"fields": ["active", "write_date"], "order": "id asc", "limit": 1000, "context": context},
            )
            keyset_pages += 1
            ids.update(r["id"] for r in page)
            archived += sum(1 for r in page if not r["active"])
            if len(page) < 1000:
                break
            last_id = page[-1]["id"]
        return {
            "count_active_test_false": count_all,
            "count_default": count_default,
            "naive_gt_cursor": naive,
            "keyset": {"pages": keyset_pages, "distinct_ids": len(ids), "archived": archived},
        }


def check_parsed_records(model: str, records: list[dict[str, Any]], name: str) -> None:
    """Recorded records go through the parser: one row each (or a reject naming record and field),
    false-for-empty mapped to None, many2one pairs to their id or name, datetimes to UTC."""
    from ingestion_platform.defs.crm.odoo import parse

    parsed = parse.parse_model(model, records, request=name, version=16 if ".first5" in name else 17)
    assert len(parsed.value) + len(parsed.rejects) == len(records), name
    for reject in parsed.rejects:
        assert reject.error.record and reject.error.field, name
    for row in parsed.value:
        assert row["source"] == "odoo" and row["source_id"], name
        assert all(
            value is not False for key, value in row.items() if key not in ("active", "email_opt_out", "is_company")
        ), row
        assert isinstance(row["partition_day"], dt.date), name


SEEDED_AT = dt.datetime(2026, 11, 22, 8, 30, 0, 250000)  # 09:30 in Paris
DAY = dt.date(2026, 11, 22)


def seed_estate(fake: FakeOdoo) -> dict[str, Any]:
    """A small wine estate, written in one transaction at SEEDED_AT; returns the ids by name."""
    fake.now = SEEDED_AT
    ids: dict[str, Any] = {}
    with fake.transaction() as tx:
        units, dozens, case6 = tx.create(
            "uom.uom",
            [
                {"name": "Units", "factor": 1.0, "uom_type": "reference"},
                {"name": "Dozens", "factor": 1 / 12, "uom_type": "bigger"},
                {"name": "Carton 6", "factor": 1 / 6, "uom_type": "bigger"},
            ],
        )
        ids["uom"] = {"Units": units, "Dozens": dozens, "Carton 6": case6}
        stock, customers_loc = tx.create(
            "stock.location",
            [
                {"name": "Stock", "complete_name": "WH/Stock", "usage": "internal"},
                {"name": "Customers", "complete_name": "Partners/Customers", "usage": "customer"},
            ],
        )
        ids["partners"] = tx.create(
            "res.partner",
            [
                {
                    "name": "Jeanne Martin",
                    "email": " Jeanne.Martin@Example.FR ",
                    "phone": "06 12 34 56 78",
                    "zip": "68000",
                    "city": "Colmar",
                    "country_id": [75, "France"],
                    "country_code": "FR",
                    "is_company": False,
                },
                {
                    "name": "Cave du Rhin",
                    "email": "contact@cave-rhin.example",
                    "phone": False,
                    "zip": "67000",
                    "city": "Strasbourg",
                    "country_id": [75, "France"],
                    "country_code": "FR",
                    "is_company": True,
                },
                {"name": "Paul Archived", "email": False, "active": False, "is_company": False},
            ],
        )
        categ = {
            "red": [3, "All / Vins / Rouges"],
            "white": [4, "All / Vins / Blancs"],
            "sparkling": [5, "All / Vins / Crémants"],
            "services": [6, "All / Services"],
        }
        ids["products"] = tx.create(
            "product.product",
            [
                {
                    "name": "Riesling Grand Cru 2020 75cl",
                    "default_code": "RIE20",
                    "list_price": 18.5,
                    "standard_price": 6.2,
                    "uom_id": [units, "Units"],
                    "categ_id": categ["white"],
                    "type": "product",
                },
                {
                    "name": "Crémant d'Alsace Brut Magnum",
                    "default_code": "CREM-MAG",
                    "list_price": 32.0,
                    "standard_price": 11.0,
                    "uom_id": [units, "Units"],
                    "categ_id": categ["sparkling"],
                    "type": "product",
                },
                {
                    "name": "Pinot Noir 2019 75cl",
                    "default_code": "PN19",
                    "list_price": 90.0,
                    "standard_price": 30.0,
                    "uom_id": [case6, "Carton 6"],
                    "categ_id": categ["red"],
                    "type": "product",
                },
                {
                    "name": "Cuvée Mystère",
                    "default_code": "MYST",
                    "list_price": 12.0,
                    "standard_price": 4.0,
                    "uom_id": [units, "Units"],
                    "categ_id": categ["red"],
                    "type": "product",
                },
                {
                    "name": "Frais de port",
                    "default_code": "SHIP",
                    "list_price": 9.9,
                    "standard_price": 0.0,
                    "uom_id": [units, "Units"],
                    "categ_id": categ["services"],
                    "type": "service",
                },
            ],
        )
        for pid in ids["products"]:
            record = next(v for m, i, v in tx.pending if m == "product.product" and i == pid)
            record["product_tmpl_id"] = [pid, record["name"]]
            record["detailed_type"] = record["type"]
        jeanne, cave, _paul = ids["partners"]
        riesling, cremant, pinot, mystery, shipping = ids["products"]
        confirmed, draft = tx.create(
            "sale.order",
            [
                {
                    "name": "S00042",
                    "partner_id": [jeanne, "Jeanne Martin"],
                    "date_order": SEEDED_AT,
                    "state": "sale",
                    "team_id": [1, "Caveau"],
                },
                {"name": "S00043", "partner_id": [cave, "Cave du Rhin"], "date_order": SEEDED_AT, "state": "draft"},
            ],
        )
        ids["orders"] = [confirmed, draft]

        def line(order: int, name: str, product: int, qty: float, uom: int, price: float, state: str) -> dict:
            return {
                "order_id": [order, name],
                "product_id": [product, "p"],
                "product_uom_qty": qty,
                "product_uom": [uom, "u"],
                "price_unit": price,
                "price_subtotal": round(qty * price, 2),
                "state": state,
                "order_partner_id": False,
                "display_type": False,
            }

        ids["lines"] = tx.create(
            "sale.order.line",
            [
                line(confirmed, "S00042", riesling, 2, dozens, 200.0, "sale"),  # 2 dozens = 24 bottles
                line(confirmed, "S00042", cremant, 3, units, 32.0, "sale"),  # 3 magnums = 6 bottles
                line(confirmed, "S00042", pinot, 1, case6, 90.0, "sale"),  # a case of 6 = 6 bottles
                line(confirmed, "S00042", mystery, 4, units, 12.0, "sale"),  # volume unknown
                line(confirmed, "S00042", shipping, 1, units, 9.9, "sale"),
                line(draft, "S00043", riesling, 12, units, 18.5, "draft"),  # a quotation: not a sale
            ],
        )
        section = line(confirmed, "S00042", riesling, 0, units, 0, "sale")
        tx.create("sale.order.line", [{**section, "product_id": False, "display_type": "line_section"}])
        ids["quants"] = tx.create(
            "stock.quant",
            [
                {
                    "product_id": [riesling, "Riesling"],
                    "location_id": [stock, "WH/Stock"],
                    "quantity": 120.0,
                    "reserved_quantity": 24.0,
                    "last_count_date": dt.date(2026, 11, 1),
                },
                {
                    "product_id": [pinot, "Pinot"],
                    "location_id": [stock, "WH/Stock"],
                    "quantity": 10.0,
                    "reserved_quantity": 0.0,
                },
                {
                    "product_id": [riesling, "Riesling"],
                    "location_id": [customers_loc, "Partners/Customers"],
                    "quantity": 24.0,
                    "reserved_quantity": 0.0,
                },
            ],
        )
        ids["messages"] = tx.create(
            "mail.message",
            [
                {
                    "model": "res.partner",
                    "res_id": jeanne,
                    "date": SEEDED_AT,
                    "subject": "Vente privée de Noël",
                    "message_type": "email",
                    "subtype_id": [1, "Discussions"],
                    "body": "<p>Invitation</p>",
                },
                {
                    "model": "res.partner",
                    "res_id": cave,
                    "date": SEEDED_AT,
                    "subject": False,
                    "message_type": "comment",
                    "subtype_id": [2, "Note"],
                    "body": "<p>Rappeler pour la commande de Pâques</p>",
                },
                {
                    "model": "sale.order",
                    "res_id": confirmed,
                    "date": SEEDED_AT,
                    "subject": "S00042",
                    "message_type": "notification",
                },
            ],
        )
    return ids
