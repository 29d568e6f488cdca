"""The five ``crm/isavigne_*`` assets: the exports of the run's days, one kind per asset.

For each day of the run, every export of the asset's kind whose day (from its name, else its
modification time in Europe/Paris) is that day is copied to the raw store (``raw/isavigne/<days>/
<file name>``), then read line by line and loaded in batches, so a 200k-line file never sits in
memory as rows. A line that cannot be read is dead-lettered (file, line, field) and the others load;
a file that cannot be read at all is dead-lettered whole. Loads are upserts keyed by the canonical
keys, so a day re-run changes nothing and a replay (``reprocess_from_raw``) rebuilds from the stored
files.
"""

import datetime as dt
from collections.abc import Callable, Iterator, Sequence
from itertools import islice
from typing import Any

import dagster as dg
import sqlalchemy as sa

from ingestion_platform.defs.crm import keys, tables
from ingestion_platform.defs.crm.checks import canonical_checks
from ingestion_platform.defs.crm.isavigne import checks, parse
from ingestion_platform.defs.crm.isavigne.aliases import kind_of
from ingestion_platform.defs.crm.isavigne.resources import IsavigneExports
from ingestion_platform.defs.crm.source import (
    ISAVIGNE,
    ISAVIGNE_CONTACT_HISTORY,
    ISAVIGNE_CUSTOMERS,
    ISAVIGNE_PRODUCTS,
    ISAVIGNE_SALES_LINES,
    ISAVIGNE_STOCK_LEVELS,
)
from ingestion_platform.lib.errors import Parsed, Reject
from ingestion_platform.lib.fetch import ReplayFetcher, Request
from ingestion_platform.lib.ingest import LoadConfig, PartitionLoad, SourceRun
from ingestion_platform.lib.raw_store import RawStoreResource
from ingestion_platform.lib.tabular import TabularError
from ingestion_platform.lib.warehouse import Warehouse, WarehouseResource

BATCH_ROWS = 5_000
"""Rows parsed, resolved and loaded at a time: memory is bounded by a batch, not by the file."""

KIND_OF_ASSET = {
    ISAVIGNE_CUSTOMERS: "clients",
    ISAVIGNE_PRODUCTS: "produits",
    ISAVIGNE_SALES_LINES: "ventes",
    ISAVIGNE_STOCK_LEVELS: "stock",
    ISAVIGNE_CONTACT_HISTORY: "contacts",
}
ASSET_OF_KIND = {kind: key for key, kind in KIND_OF_ASSET.items()}
CONTRACT_OF_KIND = {
    "clients": tables.CUSTOMERS_CONTRACT,
    "produits": tables.PRODUCT_CATALOG_ISAVIGNE,
    "ventes": tables.SALES_LINES_CONTRACT,
    "stock": tables.STOCK_LEVELS_CONTRACT,
    "contacts": tables.CONTACT_HISTORY_CONTRACT,
}


def _files(load: PartitionLoad, exports: IsavigneExports, kind: str) -> list[tuple[Request, dt.date, Callable]]:
    """The exports of ``kind`` for the unit's days: ``(request, export day, fetch)``; in a replay, the
    files stored by the last fetch covering those days."""
    days = set(load.days)
    if load.reprocess_from_raw:
        replay = ReplayFetcher(load.raw_store, load.source, load.partition)
        found = []
        for request in replay.requests("*"):
            if kind_of(request.name) != kind:
                continue
            mtime = load.raw_store.read(load.source, load.partition, request.name).meta.get("mtime")
            stamp = dt.datetime.fromisoformat(mtime).timestamp() if mtime else None
            day = parse.export_day(request.name, stamp) or load.day
            if day in days:
                found.append((request, day, lambda request=request: replay.fetch(request)))
        return found
    fetcher = exports.fetcher()
    return [
        (f.request, f.day, lambda request=f.request: fetcher.fetch(request))
        for f in exports.dropped(kind)
        if f.day in days
    ]


def _batches(items: Iterator[Any], size: int) -> Iterator[list[Any]]:
    while batch := list(islice(items, size)):
        yield batch


def _products_of(warehouse: Warehouse, codes: set[str]) -> dict[str, parse.ProductInfo]:
    """The products the iSaVigne codes name: key (``product_key_map``) and volume, pack, cost (catalogue)."""
    by_code = keys.product_key_for(warehouse, parse.SOURCE, codes)
    if not by_code:
        return {}
    t = tables.product_catalog
    stmt = sa.select(t.c.product_key, t.c.volume_cl, t.c.units_per_pack, t.c.cost_price).where(
        t.c.product_key.in_(sorted(set(by_code.values())))
    )
    catalog = {r["product_key"]: r for r in warehouse.fetch(stmt)}
    found = {}
    for code, key in by_code.items():
        row = catalog.get(key, {})
        found[code] = parse.ProductInfo(
            key, row.get("volume_cl"), int(row.get("units_per_pack") or 1), row.get("cost_price")
        )
    return found


def _load_file(load: PartitionLoad, kind: str, request: Request, day: dt.date, body: bytes) -> None:
    """Read one export in batches and load it; its rejects are filed at the end (so that a clean
    re-read resolves the letters of the lines now read, and only those)."""
    table = parse.TABLE_OF_KIND[kind]
    name = request.name
    rejects: list[Reject] = []
    try:
        export = parse.open_export(body, name, kind, day)
    except TabularError as error:
        load.reject(name, error, payload=body)
        return
    try:
        if export.unknown:
            load.warn(f"{name}: columns not in the alias table, ignored: {', '.join(export.unknown)}")
        for batch in _batches(export.records(), BATCH_ROWS):
            rows = [item for item in batch if not isinstance(item, Reject)]
            rejects += [item for item in batch if isinstance(item, Reject)]
            if kind == "produits":
                keys.assign_product_keys(load.warehouse, rows, parse.SOURCE, run_id=load.run_id)
            elif kind in ("ventes", "stock", "contacts"):
                codes = {r["_product_code"] for r in rows if r.get("_product_code")}
                rows, unknown = parse.attach_products(name, kind, rows, _products_of(load.warehouse, codes))
                rejects += unknown
            load.load(table, parse.strip_helpers(rows))
    except TabularError as error:  # the file breaks mid-way (an unterminated quote): the lines before loaded
        load.reject(name, error, payload=body)
        return
    finally:
        export.close()
    load.parse(name, body, lambda _body: Parsed(None, rejects), decode=lambda data: data)


def _run(
    context: dg.AssetExecutionContext,
    config: LoadConfig,
    exports: IsavigneExports,
    warehouse: WarehouseResource,
    raw_store: RawStoreResource,
) -> Iterator[Any]:
    kind = KIND_OF_ASSET[context.asset_key]
    run = SourceRun(context, ISAVIGNE, config=config, warehouse=warehouse, raw_store=raw_store,
                    provider=exports.provider)  # fmt: skip
    # the canonical checks read the other CRM tables (references): they exist before any source loaded them
    run.warehouse.ensure_tables([*tables.CANONICAL_TABLES, tables.product_key_map])
    for unit in run.units():
        with unit.open() as load:
            folder = exports.fetcher().root
            if not load.reprocess_from_raw and not folder.is_dir():
                load.fail("ISAVIGNE_EXPORT_DIR", f"the export folder {folder} does not exist")
            files = _files(load, exports, kind)
            if not files:
                load.mark_pending(f"no {kind} export for {load.partition}")
            for request, day, fetch in files:
                body, ok = load.try_land(request.name, fetch)
                if ok and body is not None:
                    _load_file(load, kind, request, day, body)
    table = parse.TABLE_OF_KIND[kind]
    yield from run.finish(
        lambda days: sa.select(table).where(table.c.source == parse.SOURCE, table.c.partition_day.in_(days)).limit(10)
    )


def _asset(key: dg.AssetKey, deps: Sequence[dg.AssetKey], description: str) -> dg.AssetsDefinition:
    kind = KIND_OF_ASSET[key]

    @dg.asset(
        **ISAVIGNE.asset(
            key,
            tables=[CONTRACT_OF_KIND[kind]],
            deps=deps,
            checks=[*checks.CHECKS, *canonical_checks(key, parse.TABLE_OF_KIND[kind], parse.SOURCE)],
        ),
        description=description,
    )
    def isavigne_asset(
        context: dg.AssetExecutionContext,
        config: LoadConfig,
        isavigne_exports: IsavigneExports,
        warehouse: WarehouseResource,
        raw_store: RawStoreResource,
    ) -> Iterator[Any]:
        yield from _run(context, config, isavigne_exports, warehouse, raw_store)

    return isavigne_asset


_MASTER = (ISAVIGNE_CUSTOMERS, ISAVIGNE_PRODUCTS)
isavigne_customers = _asset(
    ISAVIGNE_CUSTOMERS, (), "iSaVigne `clients` exports of the day -> `crm.customers` (customer_key isavigne-<code>)."
)
isavigne_products = _asset(
    ISAVIGNE_PRODUCTS,
    (),
    "iSaVigne `produits` exports of the day -> `crm.product_catalog` (a product Odoo holds is never overwritten).",
)
isavigne_sales_lines = _asset(
    ISAVIGNE_SALES_LINES, _MASTER, "iSaVigne `ventes` exports of the day -> `crm.sales_lines` (75 cl equivalents)."
)
isavigne_stock_levels = _asset(
    ISAVIGNE_STOCK_LEVELS, (ISAVIGNE_PRODUCTS,), "iSaVigne `stock` exports of the day -> `crm.stock_levels`."
)
isavigne_contact_history = _asset(
    ISAVIGNE_CONTACT_HISTORY, _MASTER, "iSaVigne `contacts` exports of the day -> `crm.contact_history`."
)
