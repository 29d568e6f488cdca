"""The five Odoo assets of the ``crm`` group: customers, products, sales lines, stock, contact history.

Each reads its model incrementally by ``write_date`` over the run's days (one window for a range, the
source is ``fetch_unit="window"``):

* the window is ``[start, end)`` with ``>=`` and ``<`` on ``write_date``, start = the first day's
  00:00 Europe/Paris (open when the first day is ``CRM_FIRST_DAY``: older records land there, so a
  backfill from the first day is the initial load), end = the day after the last day, at most the
  server's time minus ``ODOO_SYNC_LAG_S`` (a transaction that commits late with an older write_date
  is read by the next run, which reads that window again);
* pages of ``ODOO_PAGE_SIZE`` by ``id > last_id`` ordered by id: a same-second group larger than a
  page (2,500 partners of one ``create``) and rows changing under the paging are neither skipped nor
  repeated, which ``write_date > last`` and offsets are not; after the first page the rest of the window
  is read in ``ODOO_MAX_CONCURRENCY`` id ranges at once, each paged so within its bounds (``Sync.ranges``);
* ``context: {'active_test': False}``: archived records arrive and load with ``active = false``;
* a record lands in the partition of its latest write_date (Paris day) and is upserted by its Odoo
  id, so re-running a day changes nothing and a record edited later moves to its new day;
* products: a change made only on a template (its price) does not move the variants' write_date, so
  the products asset also reads the templates written in the window and their variants; a product's
  write_date is the later of its variant's and its template's (each variant page's templates are read).

Every page (and each lookup: units of measure, the orders and products of a page) is stored raw before
it is parsed; ``reprocess_from_raw`` rebuilds from those payloads without calling Odoo. A record that
cannot be read is dead-lettered with the model, its id and the field. Deletions never show in a
write_date sync: ``crm_odoo_deletions_job`` (``jobs.py``) marks vanished rows ``deleted_at``.
"""

import contextlib
import datetime as dt
import functools
import json
import queue
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import dagster as dg
import sqlalchemy as sa

from ingestion_platform.defs.crm import tables
from ingestion_platform.defs.crm.keys import assign_product_keys
from ingestion_platform.defs.crm.odoo import models, parse
from ingestion_platform.defs.crm.odoo.checks import odoo_checks
from ingestion_platform.defs.crm.odoo.client import DATETIME, OdooClient, RawPage, decode, records_of
from ingestion_platform.defs.crm.odoo.models import OdooModel
from ingestion_platform.defs.crm.odoo.resources import OdooApi
from ingestion_platform.defs.crm.source import (
    ODOO,
    ODOO_CONTACT_HISTORY,
    ODOO_CUSTOMERS,
    ODOO_PRODUCTS,
    ODOO_SALES_LINES,
    ODOO_STOCK_LEVELS,
)
from ingestion_platform.lib.contract import TableContract
from ingestion_platform.lib.errors import Parsed
from ingestion_platform.lib.http import Fetched
from ingestion_platform.lib.ingest import LoadBehind, LoadConfig, PartitionLoad, SourceRun
from ingestion_platform.lib.raw_store import RawStoreResource
from ingestion_platform.lib.warehouse import WarehouseResource

MAX_PAGES = 100_000
#: pages are stored raw and parsed one by one, and their rows loaded together by this many (one load has a
#: fixed cost: its staging table, merge and commit); memory stays bounded by it, whatever the window holds
LOAD_BATCH_ROWS = 10_000
PREFETCH_PAGES = 3  # pages read ahead of the one being parsed and loaded
SWITCH_INTERVAL_S = 0.001  # see _prompt_threads


def window(days: Sequence[dt.date], server_now: dt.datetime, lag_s: int) -> tuple[str | None, str] | None:
    """``(start, end)`` of the run's days as Odoo UTC text (start ``None``: open), or ``None`` when the
    window has not begun yet on the server (minus the lag)."""
    start = None if days[0] <= parse.FIRST else _utc_text(days[0])
    end_at = dt.datetime.combine(days[-1] + dt.timedelta(days=1), dt.time(), parse.PARIS).astimezone(dt.UTC)
    cutoff = (server_now - dt.timedelta(seconds=lag_s)).replace(microsecond=0)
    end = min(end_at.replace(tzinfo=None), cutoff)
    if start is not None and end.strftime(DATETIME) <= start:
        return None
    return start, end.strftime(DATETIME)


def _utc_text(day: dt.date) -> str:
    return dt.datetime.combine(day, dt.time(), parse.PARIS).astimezone(dt.UTC).strftime(DATETIME)


def window_domain(span: tuple[str | None, str]) -> list[Any]:
    start, end = span
    return ([("write_date", ">=", start)] if start else []) + [("write_date", "<", end)]


class Sync:
    """One asset run against Odoo: the client (opened on first use, never in a replay), raw pages, lookups."""

    def __init__(self, run: SourceRun, api: OdooApi, replay: bool) -> None:
        self.run = run
        self.api = api.resolved()
        self.replay = replay
        self._client: OdooClient | None = None
        self.load: PartitionLoad | None = None
        self.page_size = int(self.api.page_size)
        self._products: dict[int, parse.ProductInfo] = {}
        self._uoms: dict[int, tuple[float, str | None]] | None = None
        self._ahead: dict[str, Future] = {}  # lookups read ahead with their page

    @functools.cached_property
    def _order_fields(self) -> list[str]:
        return self.fields(models.ORDERS)

    @property
    def client(self) -> OdooClient:
        if self._client is None:
            self._client = self.api.client()
            self._client.authenticate()
        return self._client

    def land(self, name: str, read: Callable[[], list[dict[str, Any]] | RawPage]) -> tuple[bytes, list[dict[str, Any]]]:
        """The records of request ``name``: read from Odoo and stored raw first (or replayed from raw).
        ``read`` gives a ``RawPage`` (stored as the server sent it) or records (stored as their JSON)."""
        assert self.load is not None

        fetched: list[list[dict[str, Any]]] = []

        def fetch() -> Fetched:
            began = time.monotonic()
            found = read()
            elapsed = None
            if isinstance(found, RawPage):
                records, body, elapsed = found.records, found.body, found.elapsed_s
            else:
                records, body = found, json.dumps(found, ensure_ascii=False).encode()
            fetched.append(records)  # JSON values as decoded: the same as the stored body reads back
            return Fetched(
                url=f"{self.client.url}/jsonrpc",
                status=200,
                body=body,
                headers={"content-type": "application/json"},
                attempts=1,
                elapsed_s=time.monotonic() - began if elapsed is None else elapsed,
            )

        body = self.load.land(name, fetch)
        assert body is not None
        return body, fetched[0] if fetched else records_of(decode(body))

    def fields(self, spec: OdooModel, extra: Sequence[str] = ()) -> list[str]:
        return self.client.pick_fields(
            spec.name, (*spec.required, *extra), spec.optional
        )  # a configured field is required

    def ranges(self, spec: OdooModel, domain: list[Any], after: int) -> list[tuple[int, int | None]]:
        """The id ranges ``(after, up_to)`` the rest of the window (ids above ``after``, the first page's
        last) is read in, one reader each (``ODOO_MAX_CONCURRENCY``): the ids up to the window's largest
        split evenly, the last range open (an id created meanwhile is read too), one range when fewer
        than a page each would remain. Stored raw (``<model>/ranges``) before the pages they hold, so a
        replay reads the same pages (pages stored without it: one chain)."""
        name = f"{spec.name}/ranges"
        if self.replay:
            assert self.load is not None
            if not self.load.raw_store.exists(self.load.source, self.load.partition, name):
                return [(after, None)]

        def split() -> list[list[int | None]]:  # a replay reads the stored ranges instead
            readers = max(1, int(self.api.max_concurrency or 1))
            if readers == 1:
                return [[after, None]]
            largest = self.client.search_read(spec.name, domain, ["id"], limit=1, order="id desc")
            step = (int(largest[0]["id"]) - after) // readers if largest else 0
            if step < self.page_size:
                return [[after, None]]
            bounds = [after + step * k for k in range(1, readers)]
            return [[a, b] for a, b in zip([after, *bounds], [*bounds, None], strict=True)]

        return [(int(a), None if b is None else int(b)) for a, b in self.land(name, split)[1]]

    def _range_ends(self, records: list[dict[str, Any]], up_to: int | None) -> bool:
        """Whether a range's page is its last: short, or ending at the range's bound (nothing after it)."""
        return len(records) < self.page_size or (up_to is not None and int(records[-1]["id"]) >= up_to)

    def pages(
        self, spec: OdooModel, span: tuple[str | None, str], extra: Sequence[str] = ()
    ) -> Iterator[tuple[str, bytes, list]]:
        """Every page of ``spec`` in the window, keyset by id: ``(request name, raw body, records)``.

        The first page is read alone (a window of one page costs one request); the rest of the window
        is read in id ranges (``ranges``), each by its own reader thread, keyset by ``id > last_id``
        ordered by id within its range: a reader asks for its next page as soon as one arrives, so the
        server always has a page to read (for sales lines, it has each page's orders read and stored at
        once by a lookup thread). A lander thread stores the pages raw, in turn, and the caller parses and
        loads the pages landed, up to ``PREFETCH_PAGES`` behind: every page is stored raw before it is
        parsed, and the server is asked again without waiting for the compression, the file writes or
        the parsing. A replay reads the raw store only, range by range."""
        domain = [*spec.domain, *window_domain(span)]
        fields = [] if self.replay else self.fields(spec, extra)
        name = f"{spec.name}/after_0"
        body, records = self.land(
            name, lambda: self.client.raw_search_read(spec.name, domain, fields, limit=self.page_size)
        )
        yield name, body, records
        if len(records) < self.page_size:
            return
        ranges = self.ranges(spec, domain, int(records[-1]["id"]))
        if self.replay:
            for after, up_to in ranges:
                last = after
                for _ in range(MAX_PAGES):
                    name = f"{spec.name}/after_{last}"
                    body, records = self.land(name, lambda: [])
                    yield name, body, records
                    if self._range_ends(records, up_to):
                        break
                    last = int(records[-1]["id"])
            return
        with_orders = spec is models.SALE_LINES
        if with_orders:
            assert self._order_fields  # asked here, not from the reader threads
        read_qs: list[queue.Queue] = [queue.Queue(maxsize=2) for _ in ranges]  # pages read, not stored yet
        ahead: queue.Queue = queue.Queue(maxsize=PREFETCH_PAGES)  # pages stored raw, for the caller
        stop = threading.Event()
        done = object()

        def put(into: queue.Queue, item: Any) -> bool:
            while not stop.is_set():
                try:
                    into.put(item, timeout=0.2)
                    return True
                except queue.Full:
                    continue
            return False

        def take(source: queue.Queue) -> Any:
            while not stop.is_set():
                try:
                    return source.get(timeout=0.2)
                except queue.Empty:
                    continue
            return done

        def read(into: queue.Queue, after: int, up_to: int | None, lookups: ThreadPoolExecutor) -> None:
            """One range's pages; the last one ends the range (an id at its end: no page after it). For
            sales lines, each page's orders are read (and stored) at once, beside the next page."""
            last = after
            within = [*domain, ("id", "<=", up_to)] if up_to is not None else domain
            try:
                for _ in range(MAX_PAGES):
                    page = self.client.raw_search_read(spec.name, within, fields, limit=self.page_size, after_id=last)
                    name = f"{spec.name}/after_{last}"
                    if with_orders:
                        ids = _ids(page.records, "order_id")
                        self._ahead[f"{name}.orders"] = lookups.submit(self._land_orders, f"{name}.orders", ids)
                    if not put(into, (name, page)):
                        return
                    records = page.records
                    if self._range_ends(records, up_to):
                        break
                    last = int(records[-1]["id"])
            except BaseException as exc:  # raised in the caller's thread, where the page is taken
                put(into, (f"{spec.name}/after_{last}", exc))
            put(into, done)

        def land() -> None:
            active = list(read_qs)
            while active:
                for source in list(active):
                    item = take(source)
                    if item is done:
                        active.remove(source)
                        continue
                    name, page = item
                    if isinstance(page, BaseException):
                        put(ahead, item)
                        return
                    try:
                        landed = self.land(name, lambda page=page: page)
                    except BaseException as exc:
                        put(ahead, (name, exc))
                        return
                    if not put(ahead, (name, landed)):
                        return
            put(ahead, done)

        with ThreadPoolExecutor(max_workers=len(ranges), thread_name_prefix="odoo-lookups") as lookups:
            stages = [
                threading.Thread(target=read, args=(q, *r, lookups), name=f"odoo-pages-{i}", daemon=True)
                for i, (q, r) in enumerate(zip(read_qs, ranges, strict=True))
            ]
            stages.append(threading.Thread(target=land, name="odoo-raw", daemon=True))
            for stage in stages:
                stage.start()
            try:
                for _ in range(MAX_PAGES * len(ranges)):
                    item = ahead.get()
                    if item is done:
                        return
                    name, found = item
                    if isinstance(found, BaseException):
                        raise found
                    body, records = found
                    yield name, body, records
            finally:
                stop.set()
                for stage in stages:
                    stage.join()
                for future in self._ahead.values():
                    future.cancel()
                self._ahead.clear()

    def every(
        self, name: str, spec: OdooModel, domain: Sequence[Any] = (), extra: Sequence[str] = ()
    ) -> list[dict[str, Any]]:
        """Every record of a small lookup (stored raw as one payload)."""

        def read() -> list[dict[str, Any]]:
            out: list[dict[str, Any]] = []
            last = 0
            fields = self.fields(spec, extra)
            while True:
                page = self.client.keyset(
                    spec.name, [*spec.domain, *domain], fields, page_size=self.page_size, after_id=last
                )
                out += page
                if len(page) < self.page_size:
                    return out
                last = int(page[-1]["id"])

        return self.land(name, read)[1]

    def uoms(self) -> dict[int, tuple[float, str | None]]:
        if self._uoms is None:
            self._uoms = parse.uom_ratios(self.every("uom.uom/all", models.UOMS))
        return self._uoms

    def templates(self, name: str, records: list[dict[str, Any]]) -> dict[int, Any]:
        """``{template id: write_date}`` of the templates of a page of variants (stored raw as ``.templates``)."""
        ids = sorted(_ids(records, "product_tmpl_id"))
        if not ids:
            return {}
        spec = models.TEMPLATES
        _, found = self.land(
            f"{name}.templates",
            lambda: self.client.search_read(spec.name, [("id", "in", ids)], self.fields(spec), limit=len(ids)),
        )
        return {int(t["id"]): t.get("write_date") for t in found}

    def keyed_products(
        self, name: str, records: list[dict[str, Any]], templates: dict[int, Any] | None = None
    ) -> list[dict[str, Any]] | None:
        """Product rows of ``records`` with their product_key for ever (dead letters for bad records).
        ``templates``: their templates' write_date (read for the page when not given)."""
        assert self.load is not None
        volume_field = self.api.volume_field or None
        if templates is None:
            templates = self.templates(name, records)
        parsed = self.load.parse(
            name,
            b"",
            lambda data: parse.parse_products(
                data, name, uoms=self.uoms(), volume_field=volume_field, templates=templates
            ),
            decode=lambda _b: records,
        )
        if parsed is None:
            return None
        rows = list(assign_product_keys(self.load.warehouse, parsed, parse.SOURCE, run_id=self.run.run_id))
        ratios = {str(r["id"]): self.uoms().get(r["uom_id"][0], (1.0, None))[0] for r in records if r.get("uom_id")}
        self._products.update(parse.product_infos(rows, ratios))
        return rows

    def products(self, page: str, ids: set[int]) -> dict[int, parse.ProductInfo]:
        """The products a page refers to; those not seen yet in this run are read from Odoo (and stored raw)."""
        missing = sorted(i for i in ids if i not in self._products)
        if missing:
            name = f"{page}.products"
            spec = models.PRODUCTS
            extra = [self.api.volume_field] if self.api.volume_field else []
            _, records = self.land(
                name,
                lambda: self.client.search_read(
                    spec.name, [("id", "in", missing)], self.fields(spec, extra), limit=len(missing)
                ),
            )
            self.keyed_products(name, records)
        return self._products

    def template_changes(
        self, span: tuple[str | None, str], extra: Sequence[str], seen: set[int]
    ) -> Iterator[tuple[str, list[dict[str, Any]], dict[int, Any]]]:
        """The variants of the templates written in the window (a change made only on a template, such as
        its price, does not move its variants' write_date), minus those the variant pages already read:
        ``(request name, variant records, {template id: write_date})``. Both the template pages (keyset
        by id, like the variant pages) and their variants are stored raw first."""
        spec = models.PRODUCTS
        for name, _body, page in self.pages(models.TEMPLATES, span):
            written = {int(t["id"]): t.get("write_date") for t in page}
            if not written:
                continue
            ids = sorted(written)
            variants = self.every(f"{name}.variants", spec, [("product_tmpl_id", "in", ids)], extra=extra)
            fresh = [v for v in variants if int(v["id"]) not in seen]
            seen.update(int(v["id"]) for v in fresh)
            yield f"{name}.variants", fresh, written

    def _read_orders(self, ids: set[int]) -> RawPage:
        spec = models.ORDERS
        domain = [("id", "in", sorted(ids))]
        return self.client.raw_search_read(spec.name, domain, self._order_fields, limit=max(len(ids), 1))

    def _land_orders(self, name: str, ids: set[int]) -> list[dict[str, Any]]:
        return self.land(name, lambda: self._read_orders(ids))[1]

    def orders(self, page: str, lines: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
        """The orders of a page's lines (read and stored beside the page, or now; replayed from raw)."""
        name = f"{page}.orders"
        ahead = self._ahead.pop(name, None)
        records = ahead.result() if ahead is not None else self._land_orders(name, _ids(lines, "order_id"))
        return {int(r["id"]): r for r in records}


@contextlib.contextmanager
def _prompt_threads() -> Iterator[None]:
    """During an Odoo asset's step: the interpreter hands its lock over every millisecond (default 5), so the
    reader thread sends the next request as soon as a page is decoded instead of waiting for the parsing
    thread's turn to end, and the server is kept busy (+10% rows/s measured, less CPU). Restored after."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(min(before, SWITCH_INTERVAL_S))
    try:
        yield
    finally:
        sys.setswitchinterval(before)


def _ids(records: list[dict[str, Any]], field: str) -> set[int]:
    return {r[field][0] for r in records if isinstance(r.get(field), list) and r[field]}


PageFn = Callable[[Sync, str, list[dict[str, Any]]], Callable[[Any], Parsed]]


def sync_model(
    context: dg.AssetExecutionContext,
    config: LoadConfig,
    api: OdooApi,
    warehouse: WarehouseResource,
    raw_store: RawStoreResource,
    spec: OdooModel,
    table: sa.Table,
    page_parser: PageFn | None,
    extra: Sequence[str] = (),
) -> Iterator[Any]:
    """The load loop of one Odoo asset (see the module docstring)."""
    run = SourceRun(context, ODOO, config=config, warehouse=warehouse, raw_store=raw_store, provider=api.provider)
    sync = Sync(run, api, config.reprocess_from_raw)
    for unit in run.units():
        with unit.open() as load:
            sync.load = load
            if config.reprocess_from_raw:
                span: tuple[str | None, str] | None = (None, "replay")
            else:
                span = window(unit.days, sync.client.server_now, int(sync.api.sync_lag_s))
                if span is None:
                    load.mark_pending("the window has not started yet on the Odoo server (minus ODOO_SYNC_LAG_S)")
                    continue
                load.job.metadata["odoo_window"] = {"write_date_from": span[0], "write_date_before": span[1]}
            pages = 0
            seen: set[int] = set()
            batch: list[dict[str, Any]] = []  # the rows of several pages, loaded together
            with LoadBehind(load) as behind:  # while the next pages are parsed
                for name, body, records in sync.pages(spec, span, extra):
                    pages += 1
                    if page_parser is None:  # products: keyed through the product_key map
                        seen.update(r["id"] for r in records if isinstance(r, dict) and isinstance(r.get("id"), int))
                        rows = sync.keyed_products(name, records)
                    else:
                        rows = load.parse(name, body, page_parser(sync, name, records), decode=lambda _b, r=records: r)
                    batch += rows or ()
                    if len(batch) >= LOAD_BATCH_ROWS:
                        behind.submit(table, batch)
                        batch = []
                if batch:
                    behind.submit(table, batch)
            if page_parser is None:  # products whose template alone was written in the window
                changed = 0
                for name, records, written in sync.template_changes(span, extra, seen):
                    changed += len(records)
                    rows = sync.keyed_products(name, records, written) if records else None
                    if rows:
                        load.load(table, rows)
                load.job.metadata["odoo_template_changes"] = changed
            load.job.metadata["odoo_pages"] = pages
    yield from run.finish(lambda days: sa.select(table).where(table.c.partition_day.in_(days)).limit(10))


def _partners(sync: Sync, name: str, records: list[dict[str, Any]]) -> Callable[[Any], Parsed]:
    return lambda data: parse.parse_partners(data, name)


def _sales(sync: Sync, name: str, records: list[dict[str, Any]]) -> Callable[[Any], Parsed]:
    products = sync.products(name, _ids(records, "product_id"))
    orders = sync.orders(name, records)
    uoms = sync.uoms()
    return lambda data: parse.parse_sales_lines(data, name, orders=orders, products=products, uoms=uoms)


def _quants(sync: Sync, name: str, records: list[dict[str, Any]]) -> Callable[[Any], Parsed]:
    products = sync.products(name, _ids(records, "product_id"))
    return lambda data: parse.parse_quants(data, name, products=products)


def _messages(sync: Sync, name: str, records: list[dict[str, Any]]) -> Callable[[Any], Parsed]:
    return lambda data: parse.parse_messages(data, name)


_BASE = (ODOO_CUSTOMERS, ODOO_PRODUCTS)


def _odoo_asset(
    key: dg.AssetKey,
    contract: TableContract,
    spec: OdooModel,
    page_parser: PageFn | None,
    description: str,
    deps: Sequence[dg.AssetKey] = (),
) -> dg.AssetsDefinition:
    """One Odoo asset: ``spec`` read by ``sync_model`` into the contract's table."""

    checks = odoo_checks(key, spec, contract.table)

    @dg.asset(**ODOO.asset(key, tables=[contract], deps=deps, checks=checks), description=description)
    def _asset(
        context: dg.AssetExecutionContext,
        config: LoadConfig,
        odoo_api: OdooApi,
        warehouse: WarehouseResource,
        raw_store: RawStoreResource,
    ) -> Iterator[Any]:
        volume_field = odoo_api.resolved().volume_field
        extra = [volume_field] if volume_field and spec is models.PRODUCTS else []
        with _prompt_threads():
            yield from sync_model(
                context, config, odoo_api, warehouse, raw_store, spec, contract.table, page_parser, extra
            )

    return _asset


odoo_customers = _odoo_asset(
    ODOO_CUSTOMERS,
    tables.CUSTOMERS_CONTRACT,
    models.PARTNERS,
    _partners,
    "Odoo partners (`res.partner`, archived included) as `crm.customers`: names, normalised e-mail and E.164 "
    "phone, postcode, city, country, segment, e-mail opt-out (blacklist), active.",
)
odoo_products = _odoo_asset(
    ODOO_PRODUCTS,
    tables.PRODUCT_CATALOG_CONTRACT,
    models.PRODUCTS,
    None,
    "Odoo product variants (`product.product` with their template's fields) as `crm.product_catalog`: the "
    "product_key kept for ever, category, price band, prices, vintage, bottle volume (configured field, unit of "
    "measure, or name/code; unknown is left NULL) and units per pack (Dozens = 12, custom UoMs by their ratio).",
)
odoo_sales_lines = _odoo_asset(
    ODOO_SALES_LINES,
    tables.SALES_LINES_CONTRACT,
    models.SALE_LINES,
    _sales,
    "Lines of confirmed Odoo orders (`sale.order.line`, state sale/done) as `crm.sales_lines`: order, customer, "
    "product_key, order day (Paris), quantities in units and 75 cl equivalents, prices before tax, cost and "
    "margin, channel (sales team).",
    deps=_BASE,
)
odoo_stock_levels = _odoo_asset(
    ODOO_STOCK_LEVELS,
    tables.STOCK_LEVELS_CONTRACT,
    models.QUANTS,
    _quants,
    "Odoo stock on hand (`stock.quant` of internal locations) as `crm.stock_levels`: quantity, reserved, "
    "available, 75 cl equivalents, last count date. Quants Odoo deletes once empty are marked by the deletion "
    "reconciliation.",
    deps=_BASE,
)
odoo_contact_history = _odoo_asset(
    ODOO_CONTACT_HISTORY,
    tables.CONTACT_HISTORY_CONTRACT,
    models.MESSAGES,
    _messages,
    "Messages on Odoo partners (`mail.message` of model res.partner: e-mails, notes, SMS) as `crm.contact_history`.",
    deps=_BASE,
)
