"""Helpers of the Odoo tests: the recordings' folder, the cursor experiment on the fake, parser checks."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Any

from ingestion_platform_tests.crm.fake_odoo import FakeOdoo


def shared_odoo_dir() -> Path | None:
    root = Path(os.environ.get("INGESTION_SHARED_DIR") or Path(__file__).resolve().parents[3] / "shared")
    path = root / "odoo"
    return path if path.is_dir() else None


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
        for pages in range(1, 12):  # the experiment stopped after 11 pages
            page = odoo.execute_kw("res.partner", "search_read", [[("write_date", ">", last)]],
                                   {"fields": ["write_date"], "order": "write_date asc, id asc", "limit": 1000,
                                    "context": context})  # fmt: skip
            if not page:
                break
            seen.update(r["id"] for r in page)
            last = max(r["write_date"] for r in page)
        naive = {"pages": pages, "distinct_ids": len(seen)}
        ids: set[int] = set()
        archived = 0
        last_id, keyset_pages = 0, 0
        while True:
            page = odoo.execute_kw("res.partner", "search_read",
                                   [[("write_date", ">=", "1970-01-01 00:00:00"), ("id", ">", last_id)]],
                                   {"fields": ["active", "write_date"], "order": "id asc", "limit": 1000,
                                    "context": context})  # fmt: skip
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
        assert all(value is not False for key, value in row.items() if key not in ("active", "email_opt_out")), row
        assert isinstance(row["partition_day"], dt.date), name
