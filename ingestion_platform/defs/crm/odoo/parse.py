"""Odoo ``search_read`` records -> canonical CRM rows. Pure functions: no Dagster, no I/O.

What Odoo sends and how it is mapped (the recorded shapes of 16 and 17, and 18's):

* ``false`` for every empty value (a char, a date, a many2one): ``None``, except for boolean fields;
* a many2one is ``[id, "display name"]``: its id or its name is taken;
* datetimes are naive UTC text cut to whole seconds (``2026-11-22 21:45:45``): aware UTC datetimes;
  dates are ``YYYY-MM-DD``;
* storable products are ``type='product'`` up to 17 and ``type='consu'`` + ``is_storable`` in 18.

A record lands in the partition of its latest ``write_date`` (Europe/Paris day); records written before
the first partition day land in the first day (its window is open at the start). A record that cannot
be read is rejected alone, naming the model, the record id and the field.
"""

from __future__ import annotations

import datetime as dt
import decimal
import functools
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from ingestion_platform.defs.crm import canonical, tables
from ingestion_platform.defs.crm.source import FIRST_DAY, TIMEZONE
from ingestion_platform.lib.errors import Parsed, RecordError, Reject

SOURCE = "odoo"
PARIS = ZoneInfo(TIMEZONE)
FIRST = dt.date.fromisoformat(FIRST_DAY)
_HTML = re.compile(r"<[^>]+>")
_CHANNELS = {
    "email": "email",
    "comment": "note",
    "sms": "sms",
    "notification": "notification",
    "user_notification": "notification",
    "auto_comment": "email",
    "whatsapp_message": "whatsapp",
}


@dataclass(frozen=True)
class ProductInfo:
    """What sales lines and quants need of their product: key, volume, pack, unit cost, UoM ratio."""

    product_key: str
    volume_cl: float | None
    units_per_pack: int
    cost_price: decimal.Decimal | None
    uom_ratio: float = 1.0


class _Record:
    """One Odoo record being read: every accessor names the model, record and field on failure."""

    def __init__(self, model: str, raw: Mapping[str, Any], request: str | None) -> None:
        self.model, self.raw, self.request = model, raw, request
        self.id = raw.get("id")
        if not isinstance(self.id, int) or isinstance(self.id, bool) or self.id <= 0:
            raise RecordError(f"no valid id: {self.id!r}", request=request, record=f"{model} record", field="id")

    def error(self, field: str, reason: str) -> RecordError:
        return RecordError(reason, request=self.request, record=f"{self.model} id {self.id}", field=field)

    def value(self, field: str) -> Any:
        """The value, ``None`` for Odoo's false-for-empty (and for a field this version does not send)."""
        value = self.raw.get(field, False)
        return None if value is False or value is None or value == "" else value

    def flag(self, field: str, default: bool | None = None) -> bool | None:
        value = self.raw.get(field)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise self.error(field, f"not a boolean: {value!r}")
        return value

    def text(self, field: str) -> str | None:
        value = self.raw.get(field)
        if type(value) is str:  # the common case first
            return value.strip() or None
        value = self.value(field)
        if value is None:
            return None
        if isinstance(value, (list, dict)):
            raise self.error(field, f"not a text: {value!r}")
        return str(value).strip() or None

    def number(self, field: str) -> decimal.Decimal | None:
        value = self.raw.get(field)
        kind = type(value)  # the common cases first (a bool is not an int here)
        if kind is int:
            return decimal.Decimal(value)
        if kind is float and math.isfinite(value):
            return decimal.Decimal(repr(value))
        value = self.value(field)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise self.error(field, f"not a number: {value!r}")
        try:
            number = decimal.Decimal(str(value))
        except decimal.InvalidOperation:
            raise self.error(field, f"not a number: {value!r}") from None
        if not number.is_finite():
            raise self.error(field, f"not a finite number: {value!r}")
        return number

    def many2one(self, field: str) -> tuple[int, str | None] | None:
        value = self.raw.get(field)
        if type(value) is list and len(value) == 2 and type(value[0]) is int and type(value[1]) is str:
            return value[0], value[1]  # the common case first
        value = self.value(field)
        if value is None:
            return None
        if isinstance(value, int) and not isinstance(value, bool):
            return value, None
        if isinstance(value, (list, tuple)) and value and isinstance(value[0], int):
            return value[0], (str(value[1]) if len(value) > 1 and value[1] is not False else None)
        raise self.error(field, f"not a many2one [id, name] pair: {value!r}")

    def ref(self, field: str) -> int | None:
        value = self.raw.get(field)
        if type(value) is list and len(value) == 2 and type(value[0]) is int:
            return value[0]  # the common case first
        pair = self.many2one(field)
        return pair[0] if pair else None

    def label(self, field: str) -> str | None:
        pair = self.many2one(field)
        return pair[1] if pair else None

    def moment(self, field: str, *, required: bool = False) -> dt.datetime | None:
        value = self.value(field)
        if value is None:
            if required:
                raise self.error(field, "missing")
            return None
        moment = _utc(str(value))
        if moment is None:
            raise self.error(field, f"not an Odoo datetime (YYYY-MM-DD HH:MM:SS, UTC): {value!r}")
        return moment

    def day(self, field: str) -> dt.date | None:
        value = self.value(field)
        if value is None:
            return None
        try:
            return dt.date.fromisoformat(str(value)[:10])
        except ValueError:
            raise self.error(field, f"not an Odoo date (YYYY-MM-DD): {value!r}") from None

    def origin(self, written: dt.datetime | None = None) -> dict[str, Any]:
        """``source``, ``source_id`` and ``partition_day`` (Paris day of ``written``, else of write_date)."""
        written = written or self.moment("write_date", required=True)
        assert written is not None
        return {"source": SOURCE, "source_id": str(self.id), "partition_day": partition_day(written)}


@functools.lru_cache(maxsize=65536)
def _utc(text: str) -> dt.datetime | None:
    """``YYYY-MM-DD HH:MM:SS`` (naive UTC, as Odoo sends it) as an aware datetime; cached: a page's records
    often share one write_date."""
    if len(text) < 19 or text[10] != " ":
        return None
    try:
        return dt.datetime.fromisoformat(text[:19]).replace(tzinfo=dt.UTC)
    except ValueError:
        return None


@functools.lru_cache(maxsize=65536)
def partition_day(written: dt.datetime) -> dt.date:
    """The partition of a record written at ``written`` (UTC): its Paris day, the first day at the earliest."""
    return max(written.astimezone(PARIS).date(), FIRST)


def _each(
    model: str,
    records: Sequence[Mapping[str, Any]],
    request: str | None,
    table: str,
    fn: Callable[[_Record], dict[str, Any] | None],
) -> Parsed[list[dict[str, Any]]]:
    rows: list[dict[str, Any]] = []
    rejects: list[Reject] = []
    if not isinstance(records, list):
        raise RecordError(f"a search_read page is a list of records, not {type(records).__name__}", request=request)
    for index, raw in enumerate(records):
        record = None
        try:
            if type(raw) is not dict and not isinstance(raw, Mapping):
                raise RecordError(f"not a record: {raw!r}", request=request, record=f"{model} #{index}")
            record = _Record(model, raw, request)
            row = fn(record)
            if row is not None:
                rows.append(row)
        except RecordError as error:
            day = None
            if record is not None:
                try:
                    day = record.origin()["partition_day"]
                except RecordError:
                    day = None
            rid = raw.get("id") if isinstance(raw, Mapping) else None
            rejects.append(
                Reject(
                    error,
                    record=raw,
                    table=table,
                    day=day,
                    name=f"{model}__{rid or f'#{index}'}",
                    key=_reject_key(table, rid),
                )
            )
    return Parsed(rows, rejects)


def _reject_key(table: str, rid: Any) -> dict[str, str] | None:
    """The row key a rejected record would have had (``odoo-<id>``); none for products, keyed by name."""
    if not rid or table == tables.product_catalog.fullname:
        return None
    return {tables.KEYS[table.split(".")[-1]]: f"{SOURCE}-{rid}"}


# -- customers -------------------------------------------------------------------------------------
def _names(name: str | None, is_company: bool) -> tuple[str | None, str | None]:
    if not name:
        return None, None
    if is_company:
        return None, name
    parts = name.split(None, 1)
    return (parts[0], parts[1]) if len(parts) == 2 else (None, parts[0])


def parse_partners(records: Sequence[Mapping[str, Any]], request: str | None = None) -> Parsed[list[dict[str, Any]]]:
    def row(r: _Record) -> dict[str, Any]:
        origin = r.origin()
        is_company = bool(r.flag("is_company", False))
        first, last = _names(r.text("name"), is_company)
        country = r.text("country_code")
        phone_raw = r.text("phone") or r.text("mobile")
        return {
            "customer_key": canonical.customer_key(SOURCE, r.id),
            "first_name": first,
            "last_name": last,
            "email": canonical.normalise_email(r.text("email")),
            "phone": canonical.normalise_phone(phone_raw, country or "FR"),
            "phone_raw": phone_raw,
            "zip_code": r.text("zip"),
            "city": r.text("city"),
            "country": country.upper()[:2] if country else None,
            "segment": "company" if is_company else "individual",
            "is_company": is_company,
            "email_opt_out": bool(r.flag("is_blacklisted", False)),
            "active": r.flag("active", True),
            "last_updated": r.moment("write_date"),
            **origin,
        }

    return _each("res.partner", records, request, tables.customers.fullname, row)


# -- products --------------------------------------------------------------------------------------
def uom_ratios(records: Sequence[Mapping[str, Any]]) -> dict[int, tuple[float, str | None]]:
    """``{uom id: (reference units per unit, name)}`` from ``uom.uom`` records: Dozens = 12, a custom
    "Case of 6" of ratio 6 = 6 (Odoo's ``factor`` is its inverse; ``factor_inv`` when sent)."""
    out: dict[int, tuple[float, str | None]] = {}
    for raw in records:
        factor_inv = raw.get("factor_inv") or 0
        factor = raw.get("factor") or 0
        ratio = float(factor_inv) if factor_inv else (1 / float(factor) if factor else 1.0)
        out[int(raw["id"])] = (round(ratio, 4), raw.get("name") or None)
    return out


def is_storable(record: Mapping[str, Any]) -> bool:
    """Storable (stock-tracked) product: ``type='product'`` up to 17, ``type='consu'`` + ``is_storable`` in 18."""
    if "is_storable" in record:
        return record.get("type") == "consu" and bool(record.get("is_storable"))
    return (record.get("detailed_type") or record.get("type")) == "product"


def parse_products(
    records: Sequence[Mapping[str, Any]],
    request: str | None = None,
    *,
    uoms: Mapping[int, tuple[float, str | None]] | None = None,
    volume_field: str | None = None,
    templates: Mapping[int, Any] | None = None,
) -> Parsed[list[dict[str, Any]]]:
    """``product_catalog`` rows with a candidate ``product_key`` (``keys.assign_product_keys`` keeps the
    first key for ever). The volume comes from ``volume_field`` (a configured field, in cl, or a text
    such as ``75cl``), else the unit of measure's name, else the product's name or code; else unknown.

    ``templates`` maps a template id to its ``write_date`` (Odoo text): a variant was last changed at the
    later of its own and its template's write_date (a price set on the template does not move the
    variant's), which gives its partition and ``last_updated``."""
    uoms = uoms or {}
    templates = templates or {}

    def row(r: _Record) -> dict[str, Any]:
        written = r.moment("write_date", required=True)
        template = r.ref("product_tmpl_id")
        template_text = templates.get(template) if template is not None else None
        if template_text:
            template_written = _utc(str(template_text))
            if template_written is None:
                raise r.error(
                    "product_tmpl_id", f"its template's write_date is not an Odoo datetime: {template_text!r}"
                )
            written = max(written, template_written) if written else template_written
        origin = r.origin(written)
        name = r.text("name")
        if not name:
            raise r.error("name", "missing")
        code = r.text("default_code")
        uom = r.many2one("uom_id")
        ratio, uom_name = uoms.get(uom[0], (1.0, uom[1])) if uom else (1.0, None)
        uom_name = uom_name or (uom[1] if uom else None)
        configured = r.value(volume_field) if volume_field else None
        goods = (r.text("type") or "consu") not in ("service", "combo")
        volume = canonical.parse_volume_cl(configured, uom_name, name, code) if goods else None
        units = round(ratio) if ratio > 1 else canonical.pack_units(uom_name, name, code)
        bib = canonical.is_bag_in_box(name, code, uom_name)
        year = canonical.vintage(name, code)
        list_price = r.number("list_price")
        categ = r.label("categ_id")
        leaf = categ.split("/")[-1].strip() if categ else None
        return {
            "product_key": canonical.product_key(name, year, volume, units, bib=bib),
            "name": name,
            "category": canonical.category(leaf, categ, name) if goods else "other",
            "price_segment": canonical.price_segment(list_price),
            "list_price": list_price,
            "cost_price": r.number("standard_price"),
            "vintage": year,
            "volume_cl": volume,
            "units_per_pack": units,
            "active": r.flag("active", True),
            "last_updated": written,
            **origin,
        }

    return _each("product.product", records, request, tables.product_catalog.fullname, row)


def product_infos(rows: Sequence[Mapping[str, Any]], uom_of: Mapping[str, float]) -> dict[int, ProductInfo]:
    """``{odoo product id: ProductInfo}`` from keyed product rows (``uom_of``: source_id -> UoM ratio)."""
    return {
        int(r["source_id"]): ProductInfo(
            r["product_key"], r["volume_cl"], r["units_per_pack"], r["cost_price"], uom_of.get(r["source_id"], 1.0)
        )
        for r in rows
    }


def _looked_up(r: _Record, field: str, found: Mapping[int, Any], what: str) -> Any:
    """The record ``field`` refers to, among those read for the page (a reject naming the field otherwise)."""
    ref = r.ref(field)
    if ref is None:
        raise r.error(field, "missing")
    value = found.get(ref)
    if value is None:
        raise r.error(field, f"{what} {ref} could not be read from Odoo")
    return value


def _quantity(value: decimal.Decimal | None) -> decimal.Decimal | None:
    return value.quantize(decimal.Decimal("0.001")) if value is not None else None


def _per_product_unit(price: decimal.Decimal | None, line_ratio: float, product_ratio: float) -> decimal.Decimal | None:
    """A price per line UoM (per Dozen) as a price per product UoM (per bottle)."""
    if price is None:
        return None
    if line_ratio == product_ratio:
        return price.quantize(_CENTS_OF_CENTS)
    return (price * _factor(product_ratio, line_ratio)).quantize(_CENTS_OF_CENTS)


_CENTS_OF_CENTS = decimal.Decimal("0.0001")


@functools.lru_cache(maxsize=4096)
def _decimal(ratio: float) -> decimal.Decimal:
    """A UoM ratio as a Decimal (cached: a page has a handful of ratios)."""
    return decimal.Decimal(str(ratio))


@functools.lru_cache(maxsize=4096)
def _factor(numerator: float, denominator: float) -> decimal.Decimal:
    return _decimal(numerator) / _decimal(denominator)


_Amount = decimal.Decimal | None


@functools.lru_cache(maxsize=65536)
def _line_figures(
    quantity: decimal.Decimal,
    total: decimal.Decimal | None,
    price: decimal.Decimal | None,
    line_ratio: float,
    info: ProductInfo,
) -> tuple[decimal.Decimal, _Amount, _Amount, _Amount, _Amount]:
    """A line's quantity in the product's UoM, its 75 cl equivalents, unit price per product unit, cost and
    margin, from its quantity, total and unit price in the line's UoM (``line_ratio``). Cached: an estate's
    lines repeat a few products at a few quantities and prices (every result is quantized, so equal inputs
    written differently, ``3`` and ``3.0``, give the same figures)."""
    same_uom = line_ratio == info.uom_ratio  # the usual case: the line in the product's own unit
    in_product_units = quantity if same_uom else quantity * _decimal(line_ratio) / _decimal(info.uom_ratio)
    cost = (info.cost_price * in_product_units).quantize(_CENTS) if info.cost_price is not None else None
    return (
        _quantity(in_product_units),  # type: ignore[return-value]
        canonical.bottles_75cl_eq(in_product_units, info.volume_cl, info.units_per_pack),
        _per_product_unit(price, line_ratio, info.uom_ratio),
        cost,
        canonical.margin_pct(total, cost),
    )


_CENTS = decimal.Decimal("0.01")


# -- sales lines -----------------------------------------------------------------------------------
def parse_sales_lines(
    records: Sequence[Mapping[str, Any]],
    request: str | None = None,
    *,
    orders: Mapping[int, Mapping[str, Any]],
    products: Mapping[int, ProductInfo],
    uoms: Mapping[int, tuple[float, str | None]] | None = None,
) -> Parsed[list[dict[str, Any]]]:
    """``sales_lines`` rows of confirmed lines; ``orders`` are the ``sale.order`` records of the page."""
    uoms = uoms or {}
    read_orders: dict[int, tuple[str | None, int | None, dt.date | None, str | None]] = {}

    def order_of(r: _Record) -> tuple[str | None, int | None, dt.date | None, str | None]:
        """What a line takes from its order: name, partner, Paris day, sales team (read once per order)."""
        order = _looked_up(r, "order_id", orders, "order")
        found = read_orders.get(order.get("id"))
        if found is None:
            o = _Record("sale.order", order, r.request)
            ordered = o.moment("date_order")
            found = (o.text("name"), o.ref("partner_id"), ordered.astimezone(PARIS).date() if ordered else None,
                     o.label("team_id"))  # fmt: skip
            read_orders[o.id] = found
        return found

    def row(r: _Record) -> dict[str, Any]:
        origin = r.origin()
        info = _looked_up(r, "product_id", products, "product")
        order_name, order_partner, day_sale, channel = order_of(r)
        partner = r.ref("order_partner_id") or order_partner
        if partner is None:
            raise r.error("order_partner_id", "no customer on the line nor on its order")
        quantity = r.number("product_uom_qty")
        if quantity is None:
            raise r.error("product_uom_qty", "missing")
        line_uom = r.ref("product_uom")
        line_ratio = uoms.get(line_uom, (info.uom_ratio, None))[0] if line_uom else info.uom_ratio
        total = r.number("price_subtotal")
        units, bottles, price_unit, cost, margin = _line_figures(
            quantity, total, r.number("price_unit"), line_ratio, info
        )
        return {
            "sale_line_key": f"{SOURCE}-{r.id}",
            "order_ref": order_name or r.label("order_id"),
            "customer_key": canonical.customer_key(SOURCE, partner),
            "product_key": info.product_key,
            "date_sale": day_sale,
            "quantity_units": units,  # in the product's UoM (2 Dozens of bottles: 24)
            "quantity_bottles_75cl_eq": bottles,
            "price_unit": price_unit,
            "price_total": total,
            "cost_total": cost,
            "margin_pct": margin,
            "channel": channel,
            **origin,
        }

    return _each("sale.order.line", records, request, tables.sales_lines.fullname, row)


# -- stock -----------------------------------------------------------------------------------------
def parse_quants(
    records: Sequence[Mapping[str, Any]], request: str | None = None, *, products: Mapping[int, ProductInfo]
) -> Parsed[list[dict[str, Any]]]:
    def row(r: _Record) -> dict[str, Any]:
        origin = r.origin()
        info = _looked_up(r, "product_id", products, "product")
        quantity = r.number("quantity") or decimal.Decimal(0)
        reserved = r.number("reserved_quantity") or decimal.Decimal(0)
        return {
            "stock_key": f"{SOURCE}-{r.id}",
            "product_key": info.product_key,
            "warehouse": r.label("warehouse_id") or r.label("location_id"),
            "quantity_units": _quantity(quantity),
            "quantity_bottles_75cl_eq": canonical.bottles_75cl_eq(quantity, info.volume_cl, info.units_per_pack),
            "reserved_qty": _quantity(reserved),
            "available_qty": _quantity(quantity - reserved),
            "last_count_date": r.day("last_count_date") or r.day("inventory_date"),
            **origin,
        }

    return _each("stock.quant", records, request, tables.stock_levels.fullname, row)


# -- contact history -------------------------------------------------------------------------------
def parse_messages(records: Sequence[Mapping[str, Any]], request: str | None = None) -> Parsed[list[dict[str, Any]]]:
    def row(r: _Record) -> dict[str, Any] | None:
        origin = r.origin()
        if r.text("model") != "res.partner":
            raise r.error("model", f"a message on {r.text('model')!r}, not on a partner")
        partner = r.value("res_id")
        if not isinstance(partner, int) or isinstance(partner, bool):
            raise r.error("res_id", f"not a partner id: {partner!r}")
        subject = r.text("subject")
        if subject is None:
            body = r.text("body")
            subject = _HTML.sub(" ", body).split("\n")[0].strip()[:200] or None if body else None
        kind = r.text("message_type") or "comment"
        return {
            "contact_key": f"{SOURCE}-{r.id}",
            "customer_key": canonical.customer_key(SOURCE, partner),
            "date_contact": r.moment("date") or r.moment("write_date"),
            "channel": _CHANNELS.get(kind, kind)[:40],
            "campaign": None,
            "subject": subject,
            "status": r.label("subtype_id"),
            "product_suggested": None,
            "response": None,
            **origin,
        }

    return _each("mail.message", records, request, tables.contact_history.fullname, row)


def parse_model(
    model: str, records: Sequence[Mapping[str, Any]], request: str | None = None, *, version: int = 17
) -> Parsed[list[dict[str, Any]]]:
    """Any synced model's page on its own (lookups read from the page itself: products unknown to it
    reject their lines naming ``product_id``). The conformance test runs every recording through it."""
    if model == "res.partner":
        return parse_partners(records, request)
    if model == "product.product":
        return parse_products(records, request)
    if model in ("sale.order.line", "stock.quant"):
        products = {}
        for raw in records:
            pair = raw.get("product_id")
            if isinstance(pair, list) and pair:
                stub = {"id": pair[0], "name": pair[1], "write_date": raw.get("write_date"), "type": "consu"}
                parsed = parse_products([stub], request).value
                if parsed:
                    products[pair[0]] = ProductInfo(parsed[0]["product_key"], parsed[0]["volume_cl"], 1, None)
        if model == "stock.quant":
            return parse_quants(records, request, products=products)
        orders = {}
        for raw in records:
            pair = raw.get("order_id")
            if isinstance(pair, list) and pair:
                orders[pair[0]] = {
                    "id": pair[0],
                    "name": pair[1],
                    "partner_id": raw.get("order_partner_id") or [1, "?"],
                    "date_order": raw.get("write_date"),
                }
        return parse_sales_lines(records, request, orders=orders, products=products)
    if model == "mail.message":
        return parse_messages(records, request)
    raise ValueError(f"no parser for Odoo model {model!r}")
