"""CRM Odoo benchmark: the whole sync path against the raw ``search_read`` throughput of the same server.

Not part of the test run. Usage (from the repository root, with the project installed: ``make install``)::

    .venv/bin/python benchmarks/crm_odoo.py                        # 100k partners, 500k sale lines
    .venv/bin/python benchmarks/crm_odoo.py --partners 20000 --lines 100000
    .venv/bin/python benchmarks/crm_odoo.py --database-url postgresql://root@127.0.0.1:5432/test

The fake Odoo of the tests (``ingestion_platform_tests/crm/fake_odoo.py``) runs in its own process with the
generated estate (partners, 200 products, orders of 5 lines, all written in the same day), so the measuring
processes hold only what the sync holds. Each measurement runs in a fresh subprocess:

raw       odoorpc ``execute_kw(model, 'search_read', ...)`` keyset pages of 1,000 (the fields the sync asks
          for), partners then sale lines, records decoded and dropped: the server's throughput.
path      ``dg.materialize`` of ``crm/odoo_customers``, ``crm/odoo_products`` and ``crm/odoo_sales_lines`` for
          the day: the same pages plus the lookups (orders, products, units of measure), raw storage,
          parsing, validation and the warehouse load (SQLite by default, or ``--database-url``; a scratch
          database ``crm_odoo_bench`` is created on PostgreSQL).

Each size runs ``--repeat`` rounds (3) of raw then path against one server, each path into an empty
warehouse; the medians are shown with each round's ratio. ``ratio`` = path rows/s / raw rows/s (target
>= 0.5). Peak memory is each process's ``ru_maxrss`` growth after its imports; the path is measured at a
fifth of the lines and at all of them (flat: about the same).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DAY = dt.date(2026, 11, 22)
SEEDED = dt.datetime(2026, 11, 22, 8, 0, 0, 250000)


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def serve(partners: int, lines: int) -> None:
    """The server process: seed the estate, print the URL, serve until stdin closes."""
    from ingestion_platform_tests.crm.fake_odoo import FakeOdoo

    fake = FakeOdoo(version=17, now=SEEDED)
    with fake.transaction() as tx:
        [units] = tx.create("uom.uom", [{"name": "Units", "factor": 1.0, "uom_type": "reference"}])
        kinds = ["Riesling", "Pinot Noir", "Crémant Brut", "Gewurztraminer", "Sylvaner", "Pinot Gris", "Muscat"]
        sizes = ["75cl", "37,5cl", "Magnum", "150cl", "75cl"]
        products = tx.create(
            "product.product",
            [
                {
                    "name": f"{kinds[i % 7]} Cuvée {i} {2015 + i % 9} {sizes[i % 5]}",
                    "default_code": f"W{i:04d}",
                    "list_price": 10.0 + i % 40,
                    "standard_price": 4.0 + i % 11,
                    "uom_id": [units, "Units"],
                    "categ_id": [3, "All / Vins"],
                    "type": "product",
                    "detailed_type": "product",
                }
                for i in range(200)
            ],
        )
        people = tx.create(
            "res.partner",
            [
                {
                    "name": f"Client{i} Nom{i}",
                    "email": f"client{i}@example.fr",
                    "phone": f"06{i % 100000000:08d}",
                    "zip": f"{67000 + i % 1000}",
                    "city": "Strasbourg",
                    "country_code": "FR",
                    "is_company": False,
                }
                for i in range(partners)
            ],
        )
        orders = tx.create(
            "sale.order",
            [
                {"name": f"S{i:07d}", "partner_id": [people[i % partners], "p"], "date_order": SEEDED, "state": "sale"}
                for i in range(max(1, lines // 5))
            ],
        )
        tx.create(
            "sale.order.line",
            [
                {
                    "order_id": [orders[i // 5], "o"],
                    "product_id": [products[i % 200], "p"],
                    "product_uom_qty": 1 + i % 6,
                    "product_uom": [units, "Units"],
                    "price_unit": 12.5,
                    "price_subtotal": 12.5 * (1 + i % 6),
                    "state": "sale",
                    "order_partner_id": [people[(i // 5) % partners], "p"],
                    "display_type": False,
                }
                for i in range(lines)
            ],
        )
    fake.now = SEEDED + dt.timedelta(hours=4)
    fake.start()
    print(
        json.dumps({"url": fake.url, "port": fake.port, "db": fake.db, "login": fake.login, "key": fake.api_key}),
        flush=True,
    )
    sys.stdin.read()
    fake.stop()


def raw(server: dict, page_size: int) -> dict:
    import odoorpc

    from ingestion_platform.defs.crm.odoo import models

    base = _rss_mb()
    odoo = odoorpc.ODOO("127.0.0.1", port=server["port"], timeout=600)
    odoo.login(server["db"], server["login"], server["key"])
    began = time.perf_counter()
    total = 0
    for spec in (models.PARTNERS, models.SALE_LINES):
        available = odoo.execute_kw(spec.name, "fields_get", [], {"attributes": ["type"]})
        fields = [f for f in (*spec.required, *spec.optional) if f in available]
        last = 0
        while True:
            domain = [*spec.domain, ("write_date", "<", "2026-11-22 23:00:00"), ("id", ">", last)]
            page = odoo.execute_kw(
                spec.name,
                "search_read",
                [domain],
                {"fields": fields, "limit": page_size, "order": "id asc", "context": {"active_test": False}},
            )
            total += len(page)
            if len(page) < page_size:
                break
            last = page[-1]["id"]
    seconds = time.perf_counter() - began
    return {"rows": total, "seconds": seconds, "peak_mb": _rss_mb() - base}


def path(server: dict, database_url: str, data_dir: str, page_size: int) -> dict:
    import dagster as dg

    from ingestion_platform.defs.crm.odoo import assets
    from ingestion_platform.defs.crm.odoo.resources import OdooApi
    from ingestion_platform.lib.raw_store import RawStoreResource
    from ingestion_platform.lib.warehouse import WarehouseResource

    api = OdooApi(
        url=server["url"],
        db=server["db"],
        user=server["login"],
        api_key=server["key"],
        sync_lag_s=300,
        page_size=page_size,
        read_timeout_s=600.0,
    )
    res = {
        "odoo_api": api,
        "warehouse": WarehouseResource(database_url=database_url),
        "raw_store": RawStoreResource(data_dir=data_dir),
    }
    chosen = [assets.odoo_customers, assets.odoo_products, assets.odoo_sales_lines]
    instance = dg.DagsterInstance.ephemeral()  # a deployment's instance is up before any run
    base = _rss_mb()
    began = time.perf_counter()
    result = dg.materialize(
        chosen, resources=res, partition_key=DAY.isoformat(), raise_on_error=False, instance=instance
    )
    seconds = time.perf_counter() - began
    if not result.success:
        raise SystemExit("the sync failed")
    loaded = 0
    for node in ("crm__odoo_customers", "crm__odoo_sales_lines"):
        metadata = result.asset_materializations_for_node(node)[0].metadata
        loaded += metadata["created"].value + metadata["updated"].value + metadata["unchanged"].value
    return {"rows": loaded, "seconds": seconds, "peak_mb": _rss_mb() - base}


def _child(kind: str, **kwargs: object) -> dict:
    code = (
        f"import json, sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); import crm_odoo; "
        f"print('RESULT' + json.dumps(crm_odoo.{kind}(**json.loads(sys.argv[1]))))"
    )
    env = {**os.environ, "DAGSTER_HOME": tempfile.mkdtemp(prefix="bench_dagster_")}
    done = subprocess.run([sys.executable, "-c", code, json.dumps(kwargs)], capture_output=True, text=True, env=env)
    for line in done.stdout.splitlines():
        if line.startswith("RESULT"):
            return json.loads(line[6:])
    raise SystemExit(f"{kind} failed:\n{done.stderr[-3000:]}")


def _database(url: str | None, scratch: Path, name: str) -> str:
    if not url:
        return f"sqlite:///{scratch / name / 'warehouse.db'}"
    import sqlalchemy as sa

    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return sa.make_url(url).set(database=name).render_as_string(hide_password=False)


def measure(
    partners: int, lines: int, database_url: str | None, page_size: int, scratch: Path, label: str, repeat: int
) -> dict:
    """``repeat`` rounds of raw then path against one server, each path into an empty warehouse: medians."""
    server = subprocess.Popen(
        [sys.executable, __file__, "--serve", str(partners), str(lines)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    raws, paths = [], []
    try:
        assert server.stdout is not None
        info = json.loads(server.stdout.readline())
        for round_ in range(repeat):
            raws.append(_child("raw", server=info, page_size=page_size))
            db = _database(database_url, scratch, f"crm_odoo_bench_{label}")
            data_dir = str(scratch / f"{label}_{round_}" / "data")
            paths.append(_child("path", server=info, database_url=db, data_dir=data_dir, page_size=page_size))
    finally:
        assert server.stdin is not None
        server.stdin.close()
        server.wait(timeout=60)
    rate = lambda found: found["rows"] / found["seconds"]  # noqa: E731
    return {
        "raw_rate": statistics.median(map(rate, raws)),
        "path_rate": statistics.median(map(rate, paths)),
        "ratios": [rate(p) / rate(r) for r, p in zip(raws, paths, strict=True)],
        "raw_mb": max(r["peak_mb"] for r in raws),
        "path_mb": max(p["peak_mb"] for p in paths),
        "rows_ok": all(p["rows"] == partners + lines for p in paths),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--partners", type=int, default=100_000)
    parser.add_argument("--lines", type=int, default=500_000)
    parser.add_argument("--page-size", type=int, default=1000)
    parser.add_argument("--database-url", default=os.environ.get("INGESTION_BENCH_DATABASE_URL"))
    parser.add_argument("--repeat", type=int, default=3, help="rounds of raw then path per size (medians)")
    parser.add_argument("--serve", nargs=2, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(*args.serve)
        return 0
    print(
        f"CRM Odoo benchmark: fake Odoo 17 through odoorpc; warehouse {'PostgreSQL' if args.database_url else 'SQLite'}"
    )
    print(f"medians of {args.repeat} interleaved rounds (raw, then path into an empty warehouse)")
    print(
        f"{'partners':>9} {'lines':>8} | {'raw rows/s':>10} {'path rows/s':>11} {'ratio':>6} {'per round':>16} | "
        f"{'raw MB':>7} {'path MB':>8}"
    )
    ok = True
    with tempfile.TemporaryDirectory(prefix="crm_odoo_bench_") as tmp:
        for fraction, label in ((5, "fifth"), (1, "full")):
            partners, lines = args.partners // fraction, args.lines // fraction
            found = measure(partners, lines, args.database_url, args.page_size, Path(tmp), label, args.repeat)
            ratio = found["path_rate"] / found["raw_rate"]
            ok = ok and ratio >= 0.5 and found["rows_ok"]
            rounds = " ".join(f"{r:.2f}" for r in found["ratios"])
            print(
                f"{partners:>9} {lines:>8} | {found['raw_rate']:>10.0f} {found['path_rate']:>11.0f} {ratio:>6.2f} "
                f"{rounds:>16} | {found['raw_mb']:>7.0f} {found['path_mb']:>8.0f}",
                flush=True,
            )
    print("target: ratio >= 0.5 (path rows/s over raw search_read rows/s of the same server); peak MB flat")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
