"""Declarative pipelines: a CSV -> clean -> aggregate -> Parquet stream against the same work written
directly with pyarrow, and the pipeline's peak memory at two input sizes.

    .venv/bin/python benchmarks/pipelines.py                     # 1M rows, memory at 100k and 1M
    .venv/bin/python benchmarks/pipelines.py --rows 200000 --repeats 2

Each measurement runs in a fresh subprocess (so ``ru_maxrss`` is that run's peak), the two sides in turn,
``--repeats`` times; the best time of each side is kept. The pipeline side is the real stream run
(``StreamRun``: the CSV landed in the raw store, cast with per-record rejects, partial aggregates, an atomic
Parquet write, the ledger job on a SQLite warehouse); the direct side reads the CSV with
``pyarrow.csv.read_csv`` (typed columns), filters, groups and writes Parquet. Ratio = direct / pipeline
(target >= 0.5). Memory: peak RSS growth over an idle interpreter with the same imports (target: flat).
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SECTORS = ["Transport", "Energy", "Computing", "Waste", "Buildings", "Water"]
UNITS = ["kg-CO2e/km", "kg-CO2e/kwh", "kg-CO2e/t", "kg-CO2e/gb"]
SOURCES = ["BEIS", "ADEME", "EPA", "UBA", "MfE", "CCF"]


def write_csv(path: Path, rows: int) -> None:
    rng = random.Random(7)
    with path.open("w", encoding="utf-8") as handle:
        handle.write("sector,unit,factor,year,source,name\n")
        for i in range(rows):
            handle.write(
                f" {rng.choice(SECTORS)} ,{rng.choice(UNITS)},{rng.random() * 100:.6f},{rng.randint(1995, 2024)},"
                f"{rng.choice(SOURCES)},factor {i}\n"
            )


STREAM = {
    "name": "bench",
    "extract": {"csv": {"path": "PATH"}},
    "transform": [
        {"clean": {"cast": {"factor": "float", "year": "int"}}},
        {"filter": "year >= 2000"},
        {"aggregate": {"group_by": ["sector", "unit"],
                       "metrics": {"n": "count()", "mean_factor": "mean(factor)", "max_factor": "max(factor)"}}},
    ],
    "mode": "replace",
    "load": [{"parquet": {"path": "OUT"}}],
}  # fmt: skip


def _baseline_rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def run_pipeline(csv_path: Path, work: Path) -> dict:
    from ingestion_platform.components.pipeline import schema
    from ingestion_platform.components.pipeline.runner import StreamRun
    from ingestion_platform.lib.raw_store import RawStore
    from ingestion_platform.lib.warehouse import Warehouse

    text = json.dumps(STREAM).replace("PATH", str(csv_path)).replace("OUT", str(work / "out_pipeline"))
    stream = schema.Stream.model_validate(json.loads(text))
    warehouse = Warehouse(f"sqlite:///{work / 'wh' / 'warehouse.db'}")
    run = StreamRun(pipeline="bench", stream=stream, asset_key="pipelines/bench/bench", base=work,
                    warehouse=warehouse, raw_store=RawStore(work / "data"), run_id="bench", partition_key=None,
                    window=None)  # fmt: skip
    warehouse.ensure_tables([])
    before = _baseline_rss()
    start = time.perf_counter()
    metadata, _checks = run.run()
    elapsed = time.perf_counter() - start
    return {"seconds": elapsed, "rows_out": metadata["rows_out"].value, "peak_kb": _baseline_rss() - before,
            "peak_total_kb": _baseline_rss()}  # fmt: skip


def run_direct(csv_path: Path, work: Path) -> dict:
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    before = _baseline_rss()
    start = time.perf_counter()
    table = pacsv.read_csv(
        csv_path,
        convert_options=pacsv.ConvertOptions(
            column_types={"sector": pa.string(), "unit": pa.string(), "factor": pa.float64(), "year": pa.int64()}
        ),
    )
    table = table.set_column(0, "sector", pc.utf8_trim_whitespace(table.column("sector")))
    table = table.filter(pc.greater_equal(table.column("year"), 2000))
    grouped = table.group_by(["sector", "unit"]).aggregate([("factor", "count"), ("factor", "mean"), ("factor", "max")])
    grouped = grouped.sort_by([("sector", "ascending"), ("unit", "ascending")])
    out = work / "out_direct"
    out.mkdir(parents=True, exist_ok=True)
    pq.write_table(grouped, out / "part-0.parquet", compression="zstd")
    elapsed = time.perf_counter() - start
    return {"seconds": elapsed, "rows_out": grouped.num_rows, "peak_kb": _baseline_rss() - before,
            "peak_total_kb": _baseline_rss()}  # fmt: skip


def _child(side: str, csv_path: str, work: str) -> None:
    import pyarrow  # noqa: F401  (same imports on both sides before the baseline)

    import ingestion_platform.components.pipeline.runner  # noqa: F401

    fn = run_pipeline if side == "pipeline" else run_direct
    print(json.dumps(fn(Path(csv_path), Path(work))))


def measure(side: str, csv_path: Path) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench_pipelines_") as work:
        done = subprocess.run([sys.executable, __file__, "--child", side, str(csv_path), work],
                              capture_output=True, text=True, check=True)  # fmt: skip
        return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--small", type=int, default=100_000)
    parser.add_argument("--large", type=int, default=3_000_000, help="a third size for memory (0: none)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--child", nargs=3, metavar=("SIDE", "CSV", "WORK"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(*args.child)
        return 0
    import ingestion_platform

    print(f"package: {Path(ingestion_platform.__file__).parent}")
    with tempfile.TemporaryDirectory(prefix="bench_csv_") as tmp:
        big, small = Path(tmp) / "big.csv", Path(tmp) / "small.csv"
        write_csv(big, args.rows)
        write_csv(small, args.small)
        print(f"input: {args.rows:,} rows ({big.stat().st_size / 1e6:.1f} MB) and {args.small:,} rows")
        best = {"pipeline": float("inf"), "direct": float("inf")}
        for _ in range(args.repeats):
            for side in ("direct", "pipeline"):
                result = measure(side, big)
                best[side] = min(best[side], result["seconds"])
                print(f"  {side:8} {args.rows:>9,} rows: {result['seconds']:.2f} s, {result['rows_out']} groups")
        ratio = best["direct"] / best["pipeline"]
        print(f"time: pipeline {best['pipeline']:.2f} s, direct pyarrow {best['direct']:.2f} s, "
              f"ratio direct/pipeline {ratio:.2f} (target >= 0.5)")  # fmt: skip
        sizes = [(args.small, small), (args.rows, big)]
        if args.large:
            large = Path(tmp) / "large.csv"
            write_csv(large, args.large)
            sizes.append((args.large, large))
        memory = {n: measure("pipeline", path) for n, path in sizes}
        for n, result in memory.items():
            print(f"memory: pipeline at {n:>9,} rows: peak RSS growth {result['peak_kb'] / 1024:.1f} MB "
                  f"(process peak {result['peak_total_kb'] / 1024:.1f} MB)")  # fmt: skip
        direct = measure("direct", big)
        print(f"memory: direct pyarrow at {args.rows:,} rows (whole table in memory): "
              f"peak RSS growth {direct['peak_kb'] / 1024:.1f} MB")  # fmt: skip
        growth = memory[args.rows]["peak_kb"] / max(memory[args.small]["peak_kb"], 1)
        print(f"memory: {args.rows:,} vs {args.small:,} rows: {growth:.2f}x (flat: about 1)")
        if args.large:
            plateau = memory[args.large]["peak_kb"] / max(memory[args.rows]["peak_kb"], 1)
            print(f"memory: {args.large:,} vs {args.rows:,} rows: {plateau:.2f}x")
    return 0 if ratio >= 0.5 else 1


if __name__ == "__main__":
    sys.exit(main())
