"""iSaVigne: a ventes export of N lines (Windows-1252, ``;``, decimal commas, dd/mm/yyyy) through the
reader alone, through the parser, and through the whole asset (raw copy, parse, product lookup, load,
ledger, checks), at 20k and 200k lines by default; rows/s and peak memory growth side by side.

    .venv/bin/python benchmarks/crm_isavigne.py                      # 20k and 200k lines, SQLite
    .venv/bin/python benchmarks/crm_isavigne.py --sizes 20000,200000 --database-url postgresql://root@127.0.0.1:5432/test

Each measurement runs in a fresh subprocess; its peak memory growth is ``ru_maxrss`` after the run
minus ``ru_maxrss`` after the imports and a warm-up on a 1,000-line file, so "flat" means the 200k
figure is about the 20k one. ``pandas.read_csv`` of the same file (``dtype=str``) is the baseline of
the reader's throughput. ``parse`` and ``load`` hold the file's bytes once (the raw store copies it
whole before parsing), so their growth includes the file size, printed next to it; ``whole`` adds the
checks, whose raw reconciliation holds the keys of every line and row of the day.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PRODUCTS = [("RIES20", "Riesling 2020 75cl"), ("PN19", "Pinot Noir 2019 75cl"), ("CREMMAG", "Crémant Brut Magnum"),
            ("GVT18", "Gewurztraminer VT 2018 50cl"), ("EDELBIB", "Edelzwicker BIB 3L")]  # fmt: skip


def write_exports(folder: Path, lines: int, prefix: str = "FA") -> Path:
    """``produits_2025-03-14.csv`` and ``ventes_2025-03-14.csv`` of ``lines`` lines, streamed."""
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "produits_2025-03-14.csv").open("w", encoding="cp1252", newline="") as out:
        out.write("Référence;Désignation;Prix HT;Prix de revient\r\n")
        for code, name in PRODUCTS:
            out.write(f"{code};{name};14,50;5,20\r\n")
    rng = random.Random(lines)
    path = folder / "ventes_2025-03-14.csv"
    with path.open("w", encoding="cp1252", newline="") as out:
        out.write("N° facture;N° ligne;Date;Code client;Code article;Désignation;Quantité;Prix unitaire HT;"
                  "Montant HT;Canal\r\n")  # fmt: skip
        for index in range(lines):
            code, name = PRODUCTS[index % len(PRODUCTS)]
            quantity = rng.choice((1, 2, 6, 12, 120))
            amount = f"{quantity * 14.5:,.2f}".replace(",", " ").replace(".", ",")  # "1 740,00"
            customer = f"C{rng.randint(1000, 9999)}"
            out.write(f"{prefix}{index // 3:07d};{index % 3 + 1};14/03/2025;{customer};{code};{name};{quantity};14,50;"
                      f"{amount};Caveau\r\n")  # fmt: skip
    return path


def child(mode: str, folder: str, database_url: str | None) -> None:
    """Run one measurement in this (fresh) process; print a JSON line."""
    import datetime as dt

    from ingestion_platform.defs.crm.isavigne import parse
    from ingestion_platform.lib.tabular import open_table, parse_date, parse_decimal

    def read(path: Path) -> int:
        count = 0
        with open_table(path) as table:
            for row in table:
                parse_date(row["date"])
                parse_decimal(row["quantite"], ",")
                parse_decimal(row["montant_ht"], ",")
                count += 1
        return count

    def parsed(path: Path) -> int:
        export = parse.open_export(path.read_bytes(), path.name, "ventes", dt.date(2025, 3, 14))
        count = sum(1 for item in export.records() if isinstance(item, dict))
        export.close()
        return count

    def pandas_read(path: Path) -> int:
        import pandas as pd

        return len(pd.read_csv(path, sep=";", encoding="cp1252", dtype=str, keep_default_na=False))

    def whole(target: Path, checks: bool = True) -> int:
        import dagster as dg
        import sqlalchemy as sa

        from ingestion_platform.defs.crm import tables
        from ingestion_platform.defs.crm.isavigne import assets
        from ingestion_platform.defs.crm.isavigne.resources import IsavigneExports
        from ingestion_platform.defs.crm.source import ISAVIGNE
        from ingestion_platform.lib.checks import CheckOutcome
        from ingestion_platform.lib.raw_store import RawStoreResource
        from ingestion_platform.lib.warehouse import Warehouse, WarehouseResource

        url = database_url or f"sqlite:///{target.parent / 'warehouse.db'}"
        chosen = [assets.isavigne_products, assets.isavigne_sales_lines]
        if not checks:  # every declared check still reports (Dagster requires it), without reading anything
            for asset in chosen:
                declared = ISAVIGNE.assets[asset.key]
                idle = tuple(dataclasses.replace(c, fn=lambda inputs: CheckOutcome(True)) for c in declared.checks)
                ISAVIGNE.assets[asset.key] = dataclasses.replace(declared, checks=idle)
        result = dg.materialize(
            chosen,
            partition_key="2025-03-14",
            resources={
                "isavigne_exports": IsavigneExports(export_dir=str(target.parent)),
                "warehouse": WarehouseResource(database_url=url),
                "raw_store": RawStoreResource(data_dir=str(target.parent / "data")),
            },
            instance=dg.DagsterInstance.ephemeral(),
        )
        assert result.success
        t = tables.sales_lines
        return Warehouse(url).count(t, sa.and_(t.c.source == "isavigne", t.c.order_ref.like("FA%")))

    modes = {"read": read, "parse": parsed, "pandas": pandas_read, "whole": whole}
    run = modes.get(mode) or (lambda target: whole(target, checks=False))
    base = Path(folder)
    warm = base / "warm"
    write_exports(warm, 1_000, prefix="WU")
    run(warm / "ventes_2025-03-14.csv")
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    target = base / "run" / "ventes_2025-03-14.csv"
    started = time.perf_counter()
    rows = run(target)
    elapsed = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    print(json.dumps({"rows": rows, "seconds": elapsed, "peak_mib": peak / 1024}))


def measure(mode: str, lines: int, database_url: str | None) -> dict:
    with tempfile.TemporaryDirectory(prefix="isavigne_bench_") as tmp:
        path = write_exports(Path(tmp) / "run", lines)
        size = path.stat().st_size
        env = dict(os.environ)  # this checkout first, as the tests' cli_env does
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
        command = [sys.executable, __file__, "--child", mode, tmp]
        if database_url:
            command += ["--database-url", database_url]
        if database_url and mode in ("load", "whole"):
            _reset(database_url)
        out = subprocess.run(command, check=True, capture_output=True, text=True, env=env).stdout
        figures = json.loads(out.strip().splitlines()[-1])
        return {**figures, "file_mib": size / 2**20}


def _reset(database_url: str) -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(database_url)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP SCHEMA IF EXISTS crm CASCADE"))
        conn.execute(sa.text("DROP SCHEMA IF EXISTS platform CASCADE"))
    engine.dispose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="20000,200000")
    parser.add_argument("--database-url", default=None, help="PostgreSQL for the whole path (default SQLite)")
    parser.add_argument("--modes", default="pandas,read,parse,load,whole", help="what to measure (comma-separated)")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], args.child[1], args.database_url)
        return 0
    sizes = [int(s) for s in args.sizes.split(",")]
    import ingestion_platform

    print(f"ingestion_platform from {Path(ingestion_platform.__file__).parent}")
    print(f"whole path on {args.database_url or 'SQLite'}")
    print(f"{'mode':8} {'lines':>8} {'file MiB':>9} {'seconds':>8} {'rows/s':>9} {'peak MiB':>9}")
    results: dict[tuple[str, int], dict] = {}
    for lines in sizes:
        for mode in args.modes.split(","):
            figures = measure(mode, lines, args.database_url)
            results[(mode, lines)] = figures
            assert figures["rows"] == lines, (mode, figures)
            print(f"{mode:8} {lines:>8} {figures['file_mib']:>9.1f} {figures['seconds']:>8.2f} "
                  f"{lines / figures['seconds']:>9,.0f} {figures['peak_mib']:>9.1f}")  # fmt: skip
    small, big = sizes[0], sizes[-1]
    print()
    for mode in [m for m in args.modes.split(",") if m != "pandas"]:
        ratio = results[(mode, big)]["peak_mib"] / max(results[(mode, small)]["peak_mib"], 0.1)
        print(f"{mode:6} peak memory {big} / {small} lines: x{ratio:.2f}")
    if ("read", big) in results and ("pandas", big) in results:
        ratio = results[("pandas", big)]["seconds"] / results[("read", big)]["seconds"]
        print(f"reader vs pandas.read_csv at {big} lines: x{ratio:.2f} of its rows/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
