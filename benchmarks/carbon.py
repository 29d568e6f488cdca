"""Carbon figures, measured side by side (not a test):

(a) a 20k-row emission-factor CSV (OEFDB layout) and a 100k-row data-entry CSV (travel module) through
    the carbon reader + layout + contract validation + warehouse load, in rows/s, against
    ``pandas.read_csv`` of the same file (parse only): the ratio says what the lossless path costs;
(b) the sync API's status endpoint under 50 concurrent pollers (uvicorn on a local port, httpx async
    clients): p50 / p95 / max latency and requests/s.

    PYTHONPATH=. .venv/bin/python benchmarks/carbon.py [--database-url postgresql://...] [--pollers 50]

Without ``--database-url`` the warehouse is a temporary SQLite file.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import random
import statistics
import tempfile
import threading
import time
from pathlib import Path

import httpx
import pandas as pd

from ingestion_platform.defs.carbon import layouts, tables
from ingestion_platform.defs.carbon.reading import read_table
from ingestion_platform.lib.contract import TableContract
from ingestion_platform.lib.warehouse import Warehouse

CLASSES = ["Economy", "Premium Economy", "Business", "First"]


def factor_csv(rows: int) -> bytes:
    out = io.StringIO()
    out.write(
        "sector,category,id,name,unit,factor,uncertainty,source,year,region,date_accessed,description,source_link,activity\n"
    )
    for i in range(rows):
        out.write(
            f"Transport,Air,factor_{i},Factor {i},kg-CO2e/pkm,{random.random():.5f},{i % 50},BEIS,{2018 + i % 4},GB,"
            f'2021/09/10,"Factor number {i}, synthetic",https://example.org,fuel_combustion\n'
        )
    return out.getvalue().encode()


def travel_csv(rows: int) -> bytes:
    out = io.StringIO()
    out.write("trip_id,date,origin,destination,class,distance_km,passengers\n")
    for i in range(rows):
        out.write(
            f'T{i},2024-{1 + i % 12:02d}-{1 + i % 28:02d},CDG,JFK,{CLASSES[i % 4]},"{1000 + i % 9000:,}",{1 + i % 3}\n'
        )
    return out.getvalue().encode()


def timed(fn) -> tuple[float, object]:
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


def load(warehouse: Warehouse, table, rows) -> int:
    """Validated against the table contract, then loaded (what PartitionLoad.load does, without the ledger)."""
    good, _ = TableContract(table).validate(rows)
    warehouse.ensure_tables([table])
    warehouse.load(table, good)
    return len(good)


def bench_csv(warehouse: Warehouse) -> None:
    body = factor_csv(20_000)
    pandas_s, _ = timed(lambda: pd.read_csv(io.BytesIO(body), dtype=str, keep_default_na=False))

    def ours() -> int:
        layout, table = layouts.read_factor_file(body, "bench_factors.csv")
        parsed, _ = layouts.factors_from_table(layout, table, "bench")
        return load(warehouse, tables.emission_factors, parsed.value)

    ours_s, count = timed(ours)
    print(
        f"factors 20k rows: ours {count / ours_s:,.0f} rows/s (parse+validate+load), pandas.read_csv "
        f"{20_000 / pandas_s:,.0f} rows/s (parse only): ratio ours/pandas = {pandas_s / ours_s:.3f}"
    )
    body = travel_csv(100_000)
    pandas_s, _ = timed(lambda: pd.read_csv(io.BytesIO(body), dtype=str, keep_default_na=False))
    schema = layouts.MODULES["travel"]

    def entries() -> int:
        table = read_table(body, "bench_travel.csv", schema.required())
        records = layouts.module_records(table, schema)
        ctx = layouts.EntryContext("travel", "bench-2024", 2024, "csv_upload", "bench_travel.csv")
        parsed = layouts.entries_from_records(schema, records.value, ctx)
        return load(warehouse, tables.data_entries, parsed.value)

    ours_s, count = timed(entries)
    print(
        f"data entries 100k rows: ours {count / ours_s:,.0f} rows/s (parse+validate+load), pandas.read_csv "
        f"{100_000 / pandas_s:,.0f} rows/s (parse only): ratio ours/pandas = {pandas_s / ours_s:.3f}"
    )


def bench_api(url: str, pollers: int, seconds: float) -> None:
    import uvicorn

    from ingestion_platform.api.app import create_app, parse_tokens
    from ingestion_platform.defs.carbon.jobs import SyncJobs
    from ingestion_platform.lib.warehouse import get_warehouse

    wh = get_warehouse(url)
    job = SyncJobs(wh).create(
        module_id="travel",
        target_type="data_entries",
        provider_type="tableau_api",
        year=2024,
        inventory_id="bench-2024",
    )
    app = create_app(warehouse=wh, launcher=None, tokens=parse_tokens("bench:read"))
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    latencies: list[float] = []

    async def poller(client: httpx.AsyncClient, stop: float) -> None:
        while time.perf_counter() < stop:
            start = time.perf_counter()
            response = await client.get(f"/api/v1/sync/status/{job}")
            response.raise_for_status()
            latencies.append(time.perf_counter() - start)

    async def main() -> None:
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}",
            headers={"Authorization": "Bearer bench"},
            limits=httpx.Limits(max_connections=pollers),
        ) as client:
            stop = time.perf_counter() + seconds
            await asyncio.gather(*(poller(client, stop) for _ in range(pollers)))

    asyncio.run(main())
    server.should_exit = True
    thread.join(timeout=10)
    q = statistics.quantiles(latencies, n=100)
    print(
        f"status endpoint, {pollers} concurrent pollers for {seconds:.0f} s: {len(latencies) / seconds:,.0f} req/s, "
        f"p50 {q[49] * 1000:.1f} ms, p95 {q[94] * 1000:.1f} ms, max {max(latencies) * 1000:.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--pollers", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite:///{Path(tmp) / 'bench.db'}"
        bench_csv(Warehouse(url))
        bench_api(url, args.pollers, args.seconds)


if __name__ == "__main__":
    main()
