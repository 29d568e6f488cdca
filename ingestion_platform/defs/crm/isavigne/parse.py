"""iSaVigne exports -> canonical CRM rows, one kind of export at a time (pure: no Dagster, no I/O).

    export = open_export(body, "ventes_2025-03-14.csv", "ventes", day)   # TabularError: unreadable file
    for item in export.records():          # streamed, one file line at a time
        item                                # a canonical row (dict) or a Reject naming file, line and field

The file is read by ``lib.tabular`` (encoding, delimiter, title rows, decimals, dates) and its header
mapped to fields by the alias table (``aliases.py``). A value that cannot be read rejects its line
(``RecordError``: ``request ventes_2025-03-14.csv, record line 12, field 'Date': expected a date as
dd/mm/yyyy ...``); the other lines load.

Rows of sales, stock and contacts name their product by its iSaVigne code. :func:`attach_products`
turns the codes into ``product_key`` and 75 cl equivalents from a lookup of the products already
loaded (``crm.product_key_map`` and ``crm.product_catalog``, read by the asset): an unknown code
rejects a sale or stock line (the ``product_code`` field), and leaves a contact's suggestion empty
with a warning.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from ingestion_platform.defs.crm import canonical, tables
from ingestion_platform.defs.crm.isavigne.aliases import ALIASES, REQUIRED, fields_of
from ingestion_platform.lib.errors import RecordError, Reject
from ingestion_platform.lib.tabular import (
    Row,
    Table,
    TabularError,
    ValueParseError,
    cell_text,
    normalise_header,
    open_table,
    parse_date,
    parse_datetime,
    parse_decimal,
)
from ingestion_platform.lib.text import clean_text

SOURCE = "isavigne"
PARIS = ZoneInfo("Europe/Paris")
TABLE_OF_KIND = {
    "clients": tables.customers,
    "produits": tables.product_catalog,
    "ventes": tables.sales_lines,
    "stock": tables.stock_levels,
    "contacts": tables.contact_history,
}
_TRUE = {"oui", "o", "yes", "y", "vrai", "true", "1", "x", "actif", "active", "en_vente"}
_FALSE = {"non", "n", "no", "faux", "false", "0", "inactif", "inactive", "archive", "supprime", "sommeil"}
COUNTRIES = {
    "france": "FR", "belgique": "BE", "belgium": "BE", "suisse": "CH", "switzerland": "CH", "allemagne": "DE",
    "germany": "DE", "luxembourg": "LU", "royaume_uni": "GB", "angleterre": "GB", "united_kingdom": "GB",
    "italie": "IT", "espagne": "ES", "pays_bas": "NL", "etats_unis": "US", "usa": "US", "canada": "CA",
    "japon": "JP", "chine": "CN", "danemark": "DK", "suede": "SE", "norvege": "NO", "autriche": "AT",
}  # fmt: skip
CHANNELS = {
    "e_mail": "email", "email": "email", "mail": "email", "courriel": "email", "mailing": "email",
    "newsletter": "email", "telephone": "phone", "tel": "phone", "appel": "phone", "phoning": "phone",
    "visite": "visit", "salon": "visit", "rendez_vous": "visit", "degustation": "visit", "caveau": "visit",
    "courrier": "mail", "lettre": "mail", "publipostage": "mail", "sms": "sms", "note": "note",
}  # fmt: skip
DEFAULT_WAREHOUSE = "default"


@dataclass
class Export:
    """An opened export file: its table, which column holds each field, and the columns ignored."""

    name: str
    kind: str
    day: dt.date
    table: Table
    columns: dict[str, str]
    unknown: list[str]
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def decimal_mark(self) -> str | None:
        """``,`` for a ``;`` file (French convention), ``.`` for a ``,`` file, else per value."""
        delimiter = self.table.delimiter
        return "," if delimiter == ";" else "." if delimiter == "," else None

    def records(self) -> Iterator[dict[str, Any] | Reject]:
        """The canonical rows of the file, or a :class:`Reject` for each line that cannot be read."""
        build = _BUILDERS[self.kind]
        for row in self.table:
            reader = _Line(self, row)
            try:
                if row.extra:
                    raise reader.error(f"{len(row.extra)} cell(s) beyond the header's {len(self.table.columns)}")
                yield {**build(reader), "_line": row.line}
            except RecordError as error:
                yield Reject(
                    error, record=_record(row), key=reader.key, table=TABLE_OF_KIND[self.kind].fullname,
                    day=self.day, name=f"{self.name}__line_{row.line}",
                )  # fmt: skip

    def close(self) -> None:
        self.table.close()


def open_export(body: bytes, name: str, kind: str, day: dt.date) -> Export:
    """Open ``body`` as an export of ``kind``; :class:`TabularError` when it cannot be read or its
    header lacks a required field."""
    hint = {a for aliases in ALIASES[kind].values() for a in aliases}
    table = open_table(body, name, header_hint=hint)
    columns, unknown = fields_of(kind, table.columns)
    missing = [f for f in REQUIRED[kind] if f not in columns]
    if missing:
        table.close()
        expected = "; ".join(f"{f}: one of {', '.join(ALIASES[kind][f])}" for f in missing)
        raise TabularError(
            f"the header names no column for {', '.join(missing)} ({expected}); header: {table.header}",
            file=name,
            line=table.header_line,
        )
    headers = {c: str(h).strip() for c, h in zip(table.columns, table.header, strict=False)}
    return Export(name, kind, day, table, columns, unknown, headers)


def _record(row: Row) -> dict[str, Any]:
    """The line as read (JSON-friendly), kept in the dead letter."""
    values = {k: v.isoformat() if isinstance(v, (dt.date, dt.datetime)) else v for k, v in row.values.items()}
    return {"line": row.line, "values": values, **({"extra": [str(c) for c in row.extra]} if row.extra else {})}


class _Line:
    """Typed access to the fields of one line; errors name the file, the line and the column."""

    def __init__(self, export: Export, row: Row) -> None:
        self.export = export
        self.row = row
        self.key: dict[str, Any] | None = None

    def header(self, name: str) -> str:
        column = self.export.columns.get(name)
        return self.export.headers.get(column, name) if column else name

    def error(self, reason: str, name: str | None = None) -> RecordError:
        return RecordError(
            reason, request=self.export.name, record=f"line {self.row.line}", field=self.header(name) if name else None
        )

    def raw(self, name: str) -> Any:
        column = self.export.columns.get(name)
        return self.row.values.get(column) if column else None

    def text(self, name: str, required: bool = False) -> str | None:
        value = self.raw(name)
        text = clean_text(cell_text(value)) if value is not None else None
        if required and text is None:
            raise self.error("required value missing", name)
        return text

    def _parse(self, name: str, parser: Callable[[Any], Any], required: bool) -> Any:
        try:
            value = parser(self.raw(name))
        except ValueParseError as error:
            raise self.error(str(error), name) from None
        if required and value is None:
            raise self.error("required value missing", name)
        return value

    def number(self, name: str, required: bool = False) -> Decimal | None:
        return self._parse(name, lambda v: parse_decimal(_unit_free(v), self.export.decimal_mark), required)

    def date(self, name: str, required: bool = False) -> dt.date | None:
        return self._parse(name, parse_date, required)

    def moment(self, name: str, required: bool = False) -> dt.datetime | dt.date | None:
        return self._parse(name, parse_datetime, required)

    def flag(self, name: str) -> bool | None:
        return self._parse(name, parse_flag, False)


def _unit_free(value: Any) -> Any:
    """``12,5 % vol`` / ``75 cl`` -> the number part (units the columns imply)."""
    if isinstance(value, str):
        return re.sub(r"\s*(%\s*vol\.?|vol\.?|cl|bouteilles?|btl|u)\s*$", "", value.strip(), flags=re.IGNORECASE)
    return value


def parse_flag(value: Any) -> bool | None:
    """``Oui``/``Non``, ``X``, ``1``/``0``, ``Actif``/``Archivé`` ... as a boolean; ``None`` when blank."""
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    text = canonical_word(cell_text(value) or "")
    if not text:
        return None
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueParseError(f"expected Oui/Non (or 1/0, X, Actif/Inactif), got {value!r}")


def canonical_word(text: str) -> str:
    """``"Téléphone"`` -> ``telephone``: the form vocabularies are compared in (blank -> ``""``)."""
    return normalise_header(text) if text.strip() else ""


def _utc(moment: dt.datetime | dt.date | None) -> dt.datetime | None:
    """A local (Europe/Paris) day or naive time as a UTC instant."""
    if moment is None:
        return None
    if not isinstance(moment, dt.datetime):
        moment = dt.datetime.combine(moment, dt.time())
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=PARIS)
    return moment.astimezone(dt.UTC)


def _origin(source_id: str, day: dt.date) -> dict[str, Any]:
    return {"source": SOURCE, "source_id": source_id, "partition_day": day}


# -- per kind ---------------------------------------------------------------------------------------------


def _customer(line: _Line) -> dict[str, Any]:
    code = line.text("code", required=True)
    assert code is not None
    line.key = {"customer_key": canonical.customer_key(SOURCE, code)}
    first, last, company = line.text("first_name"), line.text("last_name"), line.text("company")
    phone_raw = line.text("mobile") or line.text("phone")
    country = _country(line)
    opt_out = line.flag("email_opt_out")
    if opt_out is None:
        accepts = line.flag("accepts_email")
        opt_out = None if accepts is None else not accepts
    zip_code = line.text("zip_code")
    if zip_code and zip_code.isdigit() and len(zip_code) == 4 and country in (None, "FR"):
        zip_code = "0" + zip_code  # a French postcode stored as a number lost its leading zero
    return {
        **line.key,
        "first_name": first,
        "last_name": last or company,
        "email": canonical.normalise_email(line.text("email")),
        "phone": canonical.normalise_phone(phone_raw, country or "FR"),
        "phone_raw": phone_raw,
        "zip_code": zip_code,
        "city": line.text("city"),
        "country": country,
        "segment": line.text("segment"),
        "is_company": bool(company) and not (first or last),
        "email_opt_out": opt_out,
        "active": line.flag("active"),
        "last_updated": _utc(line.moment("updated")),
        **_origin(code, line.export.day),
    }


def _country(line: _Line) -> str | None:
    text = line.text("country")
    if text is None:
        return None
    if len(text) == 2 and text.isalpha():
        return text.upper()
    code = COUNTRIES.get(canonical_word(text))
    if code is None:
        raise line.error(f"unknown country {text!r} (a name in COUNTRIES or an ISO 3166 two-letter code)", "country")
    return code


def _product(line: _Line) -> dict[str, Any]:
    code = line.text("code", required=True)
    assert code is not None
    line.key = {"source_id": code}
    name = line.text("name", required=True)
    volume_cell = line.raw("volume")
    try:
        volume_number = parse_decimal(_unit_free(volume_cell), line.export.decimal_mark)
    except ValueParseError:
        volume_number = None  # a text such as "Magnum" or "1,5 L": read by parse_volume_cl below
    packaging = line.text("packaging")
    volume = canonical.parse_volume_cl(volume_number, None if volume_number else line.text("volume"), name)
    units = canonical.pack_units(packaging, name)
    vintage_number = line.number("vintage")
    vintage = int(vintage_number) if vintage_number is not None else canonical.vintage(name)
    if vintage is not None and not 1900 <= vintage <= 2100:
        raise line.error(f"expected a vintage year, got {line.raw('vintage')!r}", "vintage")
    list_price = line.number("list_price")
    bib = canonical.is_bag_in_box(packaging, name)
    return {
        "product_key": canonical.product_key(name or code, vintage, volume, units, bib=bib),
        "name": name,
        "category": canonical.category(line.text("color"), name),
        "price_segment": canonical.price_segment(list_price),
        "list_price": list_price,
        "cost_price": line.number("cost_price"),
        "grapes": line.text("grapes"),
        "flavors": line.text("flavors"),
        "vintage": vintage,
        "region": line.text("region"),
        "alcohol": line.number("alcohol"),
        "body": (line.text("body") or "").lower() or None,
        "tannins": (line.text("tannins") or "").lower() or None,
        "volume_cl": Decimal(str(volume)) if volume is not None else None,
        "units_per_pack": units,
        "active": line.flag("active"),
        "last_updated": None,
        **_origin(code, line.export.day),
    }


def _sale(line: _Line) -> dict[str, Any]:
    order = line.text("order_ref", required=True)
    product_code = line.text("product_code", required=True)
    number = line.text("line") or product_code
    source_id = f"{order}-{number}"
    line.key = {"sale_line_key": f"{SOURCE}-{source_id}"}
    customer = line.text("customer_code", required=True)
    quantity = line.number("quantity", required=True)
    price_unit = line.number("price_unit")
    price_total = line.number("price_total")
    if price_total is None and price_unit is not None and quantity is not None:
        price_total = (price_unit * quantity).quantize(Decimal("0.01"))
    cost_unit = line.number("cost_unit")
    return {
        **line.key,
        "order_ref": order,
        "customer_key": canonical.customer_key(SOURCE, customer),
        "product_key": None,
        "date_sale": line.date("date", required=True),
        "quantity_units": quantity,
        "quantity_bottles_75cl_eq": None,
        "price_unit": price_unit,
        "price_total": price_total,
        "cost_total": None,
        "margin_pct": None,
        "channel": line.text("channel"),
        "_product_code": product_code,
        "_cost_unit": cost_unit,
        "_product_field": line.header("product_code"),
        **_origin(source_id, line.export.day),
    }


def _stock(line: _Line) -> dict[str, Any]:
    product_code = line.text("product_code", required=True)
    warehouse = line.text("warehouse") or DEFAULT_WAREHOUSE
    source_id = f"{warehouse}:{product_code}"
    line.key = {"stock_key": f"{SOURCE}-{source_id}"}
    quantity = line.number("quantity", required=True)
    reserved = line.number("reserved")
    available = line.number("available")
    if available is None and quantity is not None:
        available = quantity - (reserved or 0)
    return {
        **line.key,
        "product_key": None,
        "warehouse": warehouse,
        "quantity_units": quantity,
        "quantity_bottles_75cl_eq": None,
        "reserved_qty": reserved,
        "available_qty": available,
        "last_count_date": line.date("count_date") or line.export.day,
        "_product_code": product_code,
        "_product_field": line.header("product_code"),
        **_origin(source_id, line.export.day),
    }


def _contact(line: _Line) -> dict[str, Any]:
    customer = line.text("customer_code", required=True)
    moment = line.moment("date", required=True)
    channel_text = line.text("channel")
    identifier = line.text("id") or f"{customer}-{_utc(moment):%Y%m%dT%H%M%S}-{canonical_word(channel_text or '')}"
    line.key = {"contact_key": f"{SOURCE}-{identifier}"}
    return {
        **line.key,
        "customer_key": canonical.customer_key(SOURCE, customer),
        "date_contact": _utc(moment),
        "channel": CHANNELS.get(canonical_word(channel_text or ""), canonical_word(channel_text or "") or None),
        "campaign": line.text("campaign"),
        "subject": line.text("subject"),
        "status": line.text("status"),
        "product_suggested": None,
        "response": line.text("response"),
        "_product_code": line.text("product_code"),
        "_product_field": line.header("product_code"),
        **_origin(identifier, line.export.day),
    }


_BUILDERS: dict[str, Callable[[_Line], dict[str, Any]]] = {
    "clients": _customer,
    "produits": _product,
    "ventes": _sale,
    "stock": _stock,
    "contacts": _contact,
}


# -- products of sales, stock and contacts ---------------------------------------------------------------


@dataclass(frozen=True)
class ProductInfo:
    """What a sale or stock line needs of its product: its key, bottle volume, bottles per unit, cost."""

    product_key: str
    volume_cl: Decimal | None
    units_per_pack: int
    cost_price: Decimal | None


def attach_products(
    name: str, kind: str, rows: Sequence[dict[str, Any]], products: Mapping[str, ProductInfo]
) -> tuple[list[dict[str, Any]], list[Reject]]:
    """Rows with their ``product_key`` and 75 cl equivalents from ``products`` (iSaVigne code ->
    product); a sale or stock line whose code is unknown is rejected, a contact keeps no suggestion
    (a warning). The helper keys (``_line`` ...) are removed."""
    table = TABLE_OF_KIND[kind]
    out: list[dict[str, Any]] = []
    rejects: list[Reject] = []
    for row in rows:
        code = row.pop("_product_code", None)
        field_name = row.pop("_product_field", "product_code")
        cost_unit = row.pop("_cost_unit", None)
        line = row.pop("_line", None)
        info = products.get(code) if code else None
        if kind == "contacts":
            if code and info is None:
                error = RecordError(f"unknown article code {code!r}: no suggestion kept", request=name,
                                    record=f"line {line}", field=field_name)  # fmt: skip
                rejects.append(Reject(error, dropped=False, table=table.fullname, day=row["partition_day"]))
            row["product_suggested"] = info.product_key if info else None
            out.append(row)
            continue
        if info is None:
            error = RecordError(
                f"unknown article code {code!r} (not in any produits export loaded)",
                request=name,
                record=f"line {line}",
                field=field_name,
            )
            key = {c: row[c] for c in table.primary_key.columns.keys()}  # noqa: SIM118 - a ColumnCollection
            record = {k: v.isoformat() if isinstance(v, dt.date) else v for k, v in row.items()}
            kept = {"line": line, "product_code": code, "row": record}
            rejects.append(
                Reject(error, record=kept, key=key, table=table.fullname, day=row["partition_day"],
                       name=f"{name}__line_{line}")
            )  # fmt: skip
            continue
        row["product_key"] = info.product_key
        row["quantity_bottles_75cl_eq"] = canonical.bottles_75cl_eq(
            row["quantity_units"], info.volume_cl, info.units_per_pack
        )
        if kind == "ventes":
            unit_cost = cost_unit if cost_unit is not None else info.cost_price
            quantity = row["quantity_units"]
            row["cost_total"] = (unit_cost * quantity).quantize(Decimal("0.01")) if unit_cost is not None else None
            row["margin_pct"] = canonical.margin_pct(row["price_total"], row["cost_total"])
        out.append(row)
    return out, rejects


def strip_helpers(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows without the parser's helper keys (``_line`` ...), ready for the table."""
    return [{k: v for k, v in row.items() if not k.startswith("_")} for row in rows]


_EXPORT_DAY = (
    re.compile(r"(?<!\d)(20\d{2})[-_.](\d{2})[-_.](\d{2})(?!\d)"),
    re.compile(r"(?<!\d)(20\d{2})(\d{2})(\d{2})(?!\d)"),
    re.compile(r"(?<!\d)(\d{2})[-_.](\d{2})[-_.](20\d{2})(?!\d)"),
)


def export_day(name: str, mtime: float | None = None) -> dt.date | None:
    """The export's day from its file name (``2025-03-14``, ``20250314``, ``14-03-2025``), else its
    modification time in Europe/Paris; ``None`` when neither gives one."""
    base = name.rsplit("/", 1)[-1]
    for index, pattern in enumerate(_EXPORT_DAY):
        match = pattern.search(base)
        if match:
            numbers = [int(g) for g in match.groups()]
            year, month, day = (numbers[2], numbers[1], numbers[0]) if index == 2 else numbers
            try:
                return dt.date(year, month, day)
            except ValueError:
                continue
    if mtime is None:
        return None
    return dt.datetime.fromtimestamp(mtime, PARIS).date()
