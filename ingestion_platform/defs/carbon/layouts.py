"""What the carbon CSV files hold: a declared column schema per module, and the emission-factor layouts.

Pure functions (bytes or records in, ``Parsed(rows, rejects)`` out); a bad value rejects its row with
the file, line and field, the other rows load.

Modules (``MODULES``): each declares its columns (with the header aliases real exports use), an
optional id column, and how a record becomes an entry (activity, factor id, quantity, unit).

Factor layouts (``FACTOR_LAYOUTS``), detected from the header row or forced with ``config.layout``:

* ``oefdb``: the Open Emission Factors DB CSV (``id,name,unit,factor,uncertainty,source,year,region,…``).
* ``ademe``: the ADEME Base Carbone export (``;``, Windows-1252, decimal commas; ``Identifiant de
  l'élément``, ``Nom base français``, ``Unité français``, ``Total poste non décomposé`` …); only
  ``Type Ligne = Elément`` rows are factors (``Poste`` rows are their breakdown), archived ones skipped.
* ``defra``: the UK DEFRA/DESNZ flat file (title rows, then ``ID, Scope, Level 1..4, Column Text, UOM,
  GHG/Unit, GHG Conversion Factor <year>``); only the ``kg CO2e`` rows are totals (the per-gas rows are
  their breakdown and are skipped).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ingestion_platform.defs.carbon import tables
from ingestion_platform.defs.carbon.reading import Table, number, read_table
from ingestion_platform.lib.errors import Parsed, RecordError, Reject
from ingestion_platform.lib.text import clean_text, fold

# -- values ------------------------------------------------------------------------------------------


_SIMPLE = re.compile(r"[!-~]+( [!-~]+)*\Z")  # printable ASCII words, single spaces


def text_of(value: str | None) -> str | None:
    """``lib.text.clean_text`` (NFC, whitespace collapsed, ``None`` when blank), with a fast path for plain text."""
    if value and _SIMPLE.match(value):
        return value
    return clean_text(value)


_DATE_FORMATS_ISO = ("%Y-%m-%d", "%Y/%m/%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y%m%d")


def date_of(value: str | None, *, day_first: bool = True) -> dt.date | None:
    """A date in ISO, ``d/m/Y``, ``m/d/Y`` (``day_first=False``: US, as Tableau exports), ``d.m.Y`` or
    ``d-m-Y`` form, with or without a time; ``None`` when blank; ``ValueError`` otherwise. A first or
    second part above 12 settles the order whatever ``day_first`` says."""
    text = (value or "").strip()
    if not text:
        return None
    if len(text) == 10 and text[4] == "-" and text[7] == "-":  # ISO, the common case
        try:
            return dt.date.fromisoformat(text)
        except ValueError:
            pass
    head = text.split(" ")[0].split("T")[0] if re.match(r"^\d{4}", text) else text.split(" ")[0]
    for fmt in _DATE_FORMATS_ISO:
        try:
            return dt.datetime.strptime(text if "%H" in fmt else head, fmt).date()
        except ValueError:
            continue
    match = re.fullmatch(r"(\d{1,2})[/.\-](\d{1,2})[/.\-](\d{4}|\d{2})", head)
    if not match:
        raise ValueError(f"{value!r} is not a date")
    a, b, year = int(match[1]), int(match[2]), int(match[3])
    year += 2000 if year < 100 else 0
    day, month = (a, b) if (day_first and b <= 12) or a > 12 else (b, a)
    return dt.date(year, month, day)


# -- modules -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    name: str
    aliases: tuple[str, ...]
    kind: str = "text"  # text | number | date | count
    required: bool = False


@dataclass(frozen=True)
class Entry:
    activity: str
    quantity: float
    unit: str
    factor_id: str | None


@dataclass(frozen=True)
class ModuleSchema:
    """The declared columns of a module's data entries and how a record prices."""

    module: str
    name: str
    columns: tuple[Column, ...]
    entry: Callable[[dict[str, Any]], Entry]
    id_column: str | None = None

    def required(self) -> list[list[str]]:
        return [[c.name, *c.aliases] for c in self.columns if c.required]

    def aliases(self) -> dict[str, list[str]]:
        return {c.name: [c.name, *c.aliases] for c in self.columns}


#: travel class labels (folded, lower case, letters only) -> the class
TRAVEL_CLASSES = {
    "economy": "economy",
    "economyclass": "economy",
    "coach": "economy",
    "standard": "economy",
    "y": "economy",
    "eco": "economy",
    "economique": "economy",
    "classeeconomique": "economy",
    "touriste": "economy",
    "premiumeconomy": "premium_economy",
    "premium": "premium_economy",
    "premiumeconomyclass": "premium_economy",
    "economypremium": "premium_economy",
    "economyplus": "premium_economy",
    "w": "premium_economy",
    "premiumeco": "premium_economy",
    "premiumeconomique": "premium_economy",
    "business": "business",
    "businessclass": "business",
    "j": "business",
    "c": "business",
    "affaires": "business",
    "classeaffaires": "business",
    "club": "business",
    "first": "first",
    "firstclass": "first",
    "f": "first",
    "premiere": "first",
    "premiereclasse": "first",
}
LONG_HAUL_KM = 3700.0


def travel_class(label: str | None) -> str:
    """``economy``, ``premium_economy``, ``business`` or ``first`` from an export's label (``"Economy
    Class"``, ``"Coach"``, ``"Premium Economy"``, ``"Business"``, ``"J"``, ``"First"``, ``"Affaires"`` …);
    ``na`` when blank; ``ValueError`` for an unknown label."""
    key = re.sub(r"[^a-z]", "", fold(label or "").lower())
    if not key:
        return "na"
    if key not in TRAVEL_CLASSES:
        raise ValueError(f"unknown travel class {label!r} (known: economy, premium economy, business, first)")
    return TRAVEL_CLASSES[key]


def distance_band(km: float) -> str:
    """The DEFRA/OEFDB flight distance band: ``short_haul`` below 3700 km, ``long_haul`` from it."""
    return "long_haul" if km >= LONG_HAUL_KM else "short_haul"


def flight_factor_id(band: str, cls: str) -> str:
    """The OEFDB activity id of an international flight of this band and class."""
    distance = "long_haul_gt_3700km" if band == "long_haul" else "short_haul_lt_3700km"
    return (
        f"passenger_flight-route_type_international-aircraft_type_na-distance_{distance}-class_{cls}-contrails_included"
    )


def _travel(fields: dict[str, Any]) -> Entry:
    cls = travel_class(fields.get("travel_class"))
    km = fields["distance_km"]
    if km < 0:
        raise ValueError(f"distance {km} is negative")
    band = distance_band(km)
    fields["travel_class"], fields["distance_band"] = cls, band
    passengers = fields.get("passengers")
    passengers = 1 if passengers is None else passengers
    fields["passengers"] = passengers
    return Entry(f"flight {cls} {band}", km * passengers, "pkm", fields.get("factor_id") or flight_factor_id(band, cls))


def _headcount(fields: dict[str, Any]) -> Entry:
    return Entry("headcount", fields["fte"], "fte", fields.get("factor_id"))


def _energy(fields: dict[str, Any]) -> Entry:
    unit = re.sub(r"[^0-9a-z]", "", fold(fields["unit"]).lower())
    return Entry(f"energy {fields['energy_type']}", fields["quantity"], unit, fields.get("factor_id"))


def _purchases(fields: dict[str, Any]) -> Entry:
    return Entry(
        f"purchase {fields['category']}",
        fields["amount"],
        (fields.get("currency") or "eur").lower(),
        fields.get("factor_id"),
    )


_DATE = Column("date", ("activity_date", "flight date", "departure date", "travel date", "day", "month"), "date", True)
_FACTOR = Column("factor_id", ("emission factor id", "ef_id", "activity_id"))
MODULES: dict[str, ModuleSchema] = {
    s.module: s
    for s in (
        ModuleSchema(
            "travel",
            "Business travel",
            (
                _DATE,
                Column("trip_id", ("id", "booking id", "booking reference", "trip")),
                Column("origin", ("from", "departure", "origin airport")),
                Column("destination", ("to", "arrival", "destination airport")),
                Column("travel_class", ("class", "cabin", "cabin class", "fare class", "seat class")),
                Column("distance_km", ("distance", "distance (km)", "km", "distance km"), "number", True),
                Column("passengers", ("travellers", "travelers", "pax", "number of passengers"), "count"),
                Column("traveller", ("traveler", "employee", "passenger")),
                _FACTOR,
            ),
            _travel,
            id_column="trip_id",
        ),
        ModuleSchema(
            "headcount",
            "Headcount",
            (
                _DATE,
                Column("department", ("team", "site", "service"), "text", True),
                Column("fte", ("headcount", "full time equivalent", "etp"), "number", True),
                _FACTOR,
            ),
            _headcount,
        ),
        ModuleSchema(
            "energy",
            "Energy",
            (
                _DATE,
                Column("meter_id", ("meter", "site", "point")),
                Column("energy_type", ("energy", "type", "fuel", "carrier"), "text", True),
                Column("quantity", ("consumption", "amount", "value"), "number", True),
                Column("unit", ("uom", "unite"), "text", True),
                _FACTOR,
            ),
            _energy,
        ),
        ModuleSchema(
            "purchases",
            "Purchases",
            (
                _DATE,
                Column("purchase_id", ("invoice", "invoice id", "order id", "po")),
                Column("category", ("spend category", "nature", "categorie"), "text", True),
                Column("amount", ("spend", "amount excl tax", "montant", "cost"), "number", True),
                Column("currency", ("devise",)),
                _FACTOR,
            ),
            _purchases,
            id_column="purchase_id",
        ),
    )
}


@dataclass
class EntryContext:
    """Who is loading: the inventory and year of the sync, the provider, the file or view, the job."""

    module: str
    inventory_id: str
    year: int
    provider_type: str
    source_ref: str
    sync_job_id: int | None = None
    day_first: bool = True
    decimal: str | None = None


def entries_from_records(
    schema: ModuleSchema, records: Sequence[tuple[int, Mapping[str, str]]], ctx: EntryContext
) -> Parsed[list[dict[str, Any]]]:
    """data_entries rows of ``records`` (line, {field: cell}); a bad record is a Reject naming the file,
    line and field; a record dated outside the synced year is rejected too."""
    rows: list[dict[str, Any]] = []
    rejects: list[Reject] = []
    seen: dict[str, int] = {}
    for line, record in records:
        where = f"line {line}"
        day: dt.date | None = None
        try:
            fields: dict[str, Any] = {}
            for column in schema.columns:
                fields[column.name] = _value(column, record.get(column.name), where, ctx)
            day = fields.pop("date")
            if day.year != ctx.year:
                raise RecordError(
                    f"activity date {day} is outside the synced year {ctx.year}", record=where, field="date"
                )
            try:
                entry = schema.entry(fields)
            except ValueError as exc:
                column = "travel_class" if "class" in str(exc) else None
                raise RecordError(str(exc), record=where, field=column) from exc
            key = _entry_key(schema, fields)
            seen[key] = seen.get(key, 0) + 1
            if seen[key] > 1:
                key = f"{key}#{seen[key]}"
            rows.append(
                {
                    "module_id": ctx.module,
                    "inventory_id": ctx.inventory_id,
                    "activity_date": day,
                    "entry_key": key,
                    "year": ctx.year,
                    "activity": entry.activity,
                    "factor_id": entry.factor_id,
                    "quantity": entry.quantity,
                    "unit": entry.unit,
                    "fields": {k: v for k, v in fields.items() if v is not None},
                    "provider_type": ctx.provider_type,
                    "source_ref": ctx.source_ref,
                    "source_line": line,
                    "sync_job_id": ctx.sync_job_id,
                }
            )
        except RecordError as error:
            rejects.append(
                Reject(
                    error,
                    record={"line": line, **record},
                    table=tables.data_entries.fullname,
                    day=day if day is not None and day.year == ctx.year else dt.date(ctx.year, 1, 1),
                    key=_spared(ctx, day),
                    name=f"{ctx.source_ref}__line_{line}",
                )
            )
    return Parsed(rows, rejects)


def _spared(ctx: EntryContext, day: dt.date | None) -> dict[str, Any] | None:
    """What a rejected record spares from deletion: its day of the module (no day known: the load is partial;
    a day outside the synced year spares nothing of it). Its dead letter is filed under its day, or under the
    first day of the synced year when the day is unknown or outside it."""
    if day is None:
        return None
    return {"module_id": ctx.module, "inventory_id": ctx.inventory_id, "activity_date": day}


def _value(column: Column, raw: str | None, where: str, ctx: EntryContext) -> Any:
    text = (raw or "").strip()
    try:
        if column.kind == "number":
            value: Any = number(text, decimal=ctx.decimal)
        elif column.kind == "count":
            value = number(text, decimal=ctx.decimal)
            if value is not None and value != int(value):
                raise ValueError(f"{raw!r} is not a whole number")
            value = None if value is None else int(value)
        elif column.kind == "date":
            value = date_of(text, day_first=ctx.day_first)
        else:
            value = text_of(text)
    except ValueError as exc:
        raise RecordError(str(exc), record=where, field=column.name) from exc
    if value is None and column.required:
        raise RecordError("missing value", record=where, field=column.name)
    return value


def _entry_key(schema: ModuleSchema, fields: Mapping[str, Any]) -> str:
    if schema.id_column and fields.get(schema.id_column):
        return str(fields[schema.id_column])
    digest = hashlib.sha256(json.dumps(fields, sort_keys=True, default=str).encode()).hexdigest()
    return digest[:20]


def read_module_file(body: bytes, name: str, schema: ModuleSchema) -> Table:
    return read_table(body, name, schema.required(), layout=f"{schema.module} module")


def module_records(table: Table, schema: ModuleSchema) -> Parsed[list[tuple[int, dict[str, str]]]]:
    """Each data row as (line, {module column: cell}); a row with more cells than the header is rejected."""
    index = table.index(schema.aliases())
    records: list[tuple[int, dict[str, str]]] = []
    rejects: list[Reject] = []
    for line, cells in table.rows:
        extra = [c for c in cells[len(table.header) :] if c.strip()]
        if extra:
            error = RecordError(
                f"{len(cells)} fields where the header has {len(table.header)}",
                request=table.name,
                record=f"line {line}",
            )
            rejects.append(
                Reject(
                    error,
                    record={"line": line, "cells": cells},
                    table=tables.data_entries.fullname,
                    name=f"{table.name}__line_{line}",
                )
            )
            continue
        records.append((line, {f: cells[i] if i < len(cells) else "" for f, i in index.items()}))
    return Parsed(records, rejects)


# -- factor layouts ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FactorLayout:
    name: str
    description: str
    columns: Mapping[str, tuple[str, ...]]
    required: tuple[str, ...]
    decimal: str | None = None
    row: Callable[[dict[str, str], Table, int], dict[str, Any] | None] = field(default=lambda r, t, n: None)


def _per_unit(unit: str) -> str:
    """The activity unit of a published factor unit: ``kg-CO2e/pkm`` -> ``pkm``, ``kgCO2e/kWh PCI`` -> ``kwhpci``."""
    tail = unit.split("/", 1)[1] if "/" in unit else unit
    return re.sub(r"[^0-9a-z]", "", fold(tail).lower())


def _year(text: str | None) -> int | None:
    match = re.search(r"(19|20)\d{2}", text or "")
    return int(match[0]) if match else None


def _oefdb(r: dict[str, str], table: Table, line: int) -> dict[str, Any]:
    year = _year(r.get("year"))
    if year is None:
        raise RecordError(f"year {r.get('year')!r} is not a year", field="year")
    unit = _required(r, "unit")
    return {
        "activity_id": _required(r, "id"),
        "name": _required(r, "name"),
        "category": text_of(r.get("category")),
        "value": _number(r, "factor", None, required=True),
        "unit": unit,
        "per_unit": _per_unit(unit),
        "uncertainty": _number(r, "uncertainty", None),
        "source": _required(r, "source"),
        "region": text_of(r.get("region")) or "",
        "year": year,
        "lca_activity": text_of(r.get("activity")) or "",
        "valid_from": dt.date(year, 1, 1),
        "valid_to": dt.date(year, 12, 31),
    }


def _ademe(r: dict[str, str], table: Table, line: int) -> dict[str, Any] | None:
    kind = fold(r.get("line_type") or "").lower()
    if kind and not kind.startswith("element"):
        return None  # a "Poste" row: the breakdown of an element
    if "archiv" in fold(r.get("status") or "").lower():
        return None
    unit = _required(r, "unit")
    year = _year(r.get("validity")) or _year(r.get("modified")) or _year(r.get("created"))
    if year is None:
        raise RecordError("no year in Période de validité nor in the dates", field="Période de validité")
    name = " - ".join(x for x in (text_of(r.get("name")), text_of(r.get("attribute")), text_of(r.get("frontier"))) if x)
    return {
        "activity_id": _required(r, "id"),
        "name": name,
        "category": text_of(r.get("category")),
        "value": _number(r, "value", ",", required=True),
        "unit": unit,
        "per_unit": _per_unit(unit),
        "uncertainty": _number(r, "uncertainty", ","),
        "source": text_of(r.get("contributor")) or "ADEME",
        "region": text_of(r.get("region")) or "",
        "year": year,
        "lca_activity": "",
        "valid_from": None,
        "valid_to": _valid_to(r.get("validity")),
    }


def _valid_to(text: str | None) -> dt.date | None:
    try:
        return date_of(text) if text and re.search(r"\d{1,2}/\d{1,2}/\d{4}", text) else None
    except ValueError:
        return None


def _defra(r: dict[str, str], table: Table, line: int) -> dict[str, Any] | None:
    ghg = fold(r.get("ghg_unit") or "").lower().replace(" ", "")
    if ghg != "kgco2e":
        return None  # per-gas rows (kg CO2e of CO2 / CH4 / N2O per unit): the breakdown of the total
    header = next((h for h in table.header if fold(h).lower().startswith("ghg conversion factor")), "")
    year = _year(header)
    if year is None:
        raise RecordError(f"no year in the factor column's header {header!r}", field="GHG Conversion Factor")
    levels = [text_of(r.get(f"level_{i}")) for i in (1, 2, 3, 4)]
    levels += [text_of(r.get("column_text"))]
    name = " / ".join(x for x in levels if x)
    uom = _required(r, "uom")
    if not name:
        raise RecordError("missing value", field="Level 1")
    return {
        "activity_id": text_of(r.get("id")) or name,
        "name": name,
        "category": text_of(r.get("scope")),
        "value": _number(r, "value", None, required=True),
        "unit": f"kg CO2e/{uom}",
        "per_unit": _per_unit(uom),
        "uncertainty": None,
        "source": "DESNZ",
        "region": "GB",
        "year": year,
        "lca_activity": "",
        "valid_from": dt.date(year, 1, 1),
        "valid_to": dt.date(year, 12, 31),
    }


def _required(r: Mapping[str, str], name: str) -> str:
    value = text_of(r.get(name))
    if value is None:
        raise RecordError("missing value", field=name)
    return value


def _number(r: Mapping[str, str], name: str, decimal: str | None, *, required: bool = False) -> float | None:
    try:
        value = number(r.get(name), decimal=decimal)
    except ValueError as exc:
        raise RecordError(str(exc), field=name) from exc
    if value is None and required:
        raise RecordError("missing value", field=name)
    return value


FACTOR_LAYOUTS: dict[str, FactorLayout] = {
    layout.name: layout
    for layout in (
        FactorLayout(
            "oefdb",
            "Open Emission Factors DB (Climatiq)",
            {
                "id": ("id",),
                "name": ("name",),
                "unit": ("unit",),
                "factor": ("factor",),
                "source": ("source",),
                "year": ("year",),
                "region": ("region",),
                "uncertainty": ("uncertainty",),
                "category": ("category",),
                "activity": ("activity",),
            },
            ("id", "name", "unit", "factor", "source", "year"),
            row=_oefdb,
        ),
        FactorLayout(
            "ademe",
            "ADEME Base Carbone export",
            {
                "id": ("Identifiant de l'élément",),
                "name": ("Nom base français",),
                "unit": ("Unité français",),
                "value": ("Total poste non décomposé",),
                "line_type": ("Type Ligne",),
                "status": ("Statut de l'élément",),
                "attribute": ("Nom attribut français",),
                "frontier": ("Nom frontière français",),
                "category": ("Code de la catégorie",),
                "contributor": ("Contributeur",),
                "region": ("Localisation géographique",),
                "validity": ("Période de validité",),
                "uncertainty": ("Incertitude",),
                "modified": ("Date de modification",),
                "created": ("Date de création",),
            },
            ("id", "name", "unit", "value"),
            decimal=",",
            row=_ademe,
        ),
        FactorLayout(
            "defra",
            "UK DEFRA/DESNZ conversion factors, flat file",
            {
                "id": ("ID",),
                "scope": ("Scope",),
                "level_1": ("Level 1",),
                "level_2": ("Level 2",),
                "level_3": ("Level 3",),
                "level_4": ("Level 4",),
                "column_text": ("Column Text",),
                "uom": ("UOM",),
                "ghg_unit": ("GHG/Unit", "GHG"),
                "value": ("GHG Conversion Factor *",),
            },
            ("level_1", "uom", "ghg_unit", "value"),
        ),
    )
}
FACTOR_LAYOUTS["defra"] = FactorLayout(**{**FACTOR_LAYOUTS["defra"].__dict__, "row": _defra})


def read_factor_file(body: bytes, name: str, layout: str | None = None) -> tuple[FactorLayout, Table]:
    """The layout (forced, or the first whose header is found) and the table of a factor file; a file of
    no known layout is refused naming each layout's required columns."""
    candidates = [FACTOR_LAYOUTS[layout]] if layout else list(FACTOR_LAYOUTS.values())
    errors = []
    for candidate in candidates:
        required = [candidate.columns[c] for c in candidate.required]
        try:
            return candidate, read_table(body, name, required, layout=candidate.name)
        except RecordError as exc:
            errors.append(exc)
    if len(errors) == 1:
        raise errors[0]
    known = "; ".join(f"{c.name}: {', '.join(c.columns[r][0] for r in c.required)}" for c in candidates)
    raise RecordError(f"not an emission-factor file of a known layout ({known})", request=name)


def factors_from_table(
    layout: FactorLayout, table: Table, factor_type: str
) -> tuple[Parsed[list[dict[str, Any]]], int]:
    """(emission_factors rows, rows skipped by the layout's rules); a bad row is a Reject naming file,
    line and field. Two rows with the same natural key: the later one is rejected as a duplicate."""
    index = table.index(layout.columns)
    rows: list[dict[str, Any]] = []
    rejects: list[Reject] = []
    skipped = 0
    keys: dict[str, int] = {}
    for line, cells in table.rows:
        record = {f: cells[i] if i < len(cells) else "" for f, i in index.items()}
        try:
            extra = [c for c in cells[len(table.header) :] if c.strip()]
            if extra:
                raise RecordError(f"{len(cells)} fields where the header has {len(table.header)}")
            row = layout.row(record, table, line)
            if row is None:
                skipped += 1
                continue
            key = factor_key(factor_type, row)
            if key in keys:
                raise RecordError(f"same natural key as line {keys[key]}", field="id")
            keys[key] = line
            rows.append(
                {
                    **row,
                    "factor_type_id": factor_type,
                    "factor_key": key,
                    "layout": layout.name,
                    "source_ref": table.name,
                    "source_line": line,
                }
            )
        except RecordError as error:
            error = RecordError(error.reason, request=table.name, record=f"line {line}", field=error.field)
            rejects.append(
                Reject(
                    error,
                    record={"line": line, **record},
                    table=tables.emission_factors.fullname,
                    name=f"{table.name}__line_{line}",
                )
            )
    return Parsed(rows, rejects), skipped


NATURAL_KEY = ("activity_id", "source", "region", "year", "unit", "name", "lca_activity")


def factor_key(factor_type: str, row: Mapping[str, Any]) -> str:
    """The factor's key: a hash of (factor type, id, source, region, year, unit, name, life-cycle activity)."""
    parts = [factor_type, *(str(row.get(c) or "") for c in NATURAL_KEY)]
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]
