"""Pure parsers of the example payloads: decoded payload in, ``Parsed(rows, rejects)`` out.

No Dagster, no I/O: a parser is tested on bytes alone. A payload that cannot be read at all raises
``RecordError`` (the driver dead-letters the whole payload); a record that cannot be read becomes a
``Reject`` naming request, record and field, with its key, table and day (the others load).
"""

from __future__ import annotations

import datetime as dt
import decimal
import io
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from ingestion_platform.lib.errors import Parsed, RecordError, Reject
from ingestion_platform_tests.example_source import tables

RAIN_COLUMNS = ("gauge", "date", "rain_mm", "remark")


def text(value: Any, request: str, record: str, name: str) -> str:
    """A required, non-empty text."""
    if not isinstance(value, str) or not value.strip():
        raise RecordError(f"expected a non-empty text, got {value!r}", request=request, record=record, field=name)
    return value.strip()


def day_of(value: Any, fmt: str, request: str, record: str, name: str) -> dt.date:
    try:
        return dt.datetime.strptime(str(value).strip(), fmt).date()
    except ValueError:
        raise RecordError(
            f"expected a date ({fmt}), got {value!r}", request=request, record=record, field=name
        ) from None


def number(value: Any, request: str, record: str, name: str) -> decimal.Decimal | None:
    """A JSON number, or a text with a decimal point or comma (``"1,5"``); empty or null is missing."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(value)
    if isinstance(value, str):
        try:
            parsed = decimal.Decimal(value.strip().replace(",", "."))
        except decimal.InvalidOperation:
            parsed = None
        if parsed is not None and parsed.is_finite():
            return parsed
    raise RecordError(f"expected a number, got {value!r}", request=request, record=record, field=name)


# -- the weather API -----------------------------------------------------------------------------------
@dataclass
class Page:
    stations: list[dict[str, Any]] = field(default_factory=list)
    observations: list[dict[str, Any]] = field(default_factory=list)
    next_page: int | None = None


def parse_observations(payload: Any, request: str) -> Parsed[Page]:
    """One API page -> station and observation rows and the next page number."""
    records = payload.get("observations") if isinstance(payload, dict) else None
    if not isinstance(records, list):
        raise RecordError("expected an object with an 'observations' list", request=request, field="observations")
    next_page = payload.get("next_page")
    if next_page is not None and (isinstance(next_page, bool) or not isinstance(next_page, int)):
        raise RecordError(f"expected a page number or null, got {next_page!r}", request=request, field="next_page")
    page, rejects = Page(next_page=next_page), []
    for index, raw in enumerate(records):
        where, key, day = f"observations[{index}]", None, None
        try:
            if not isinstance(raw, dict):
                raise RecordError("expected an object", request=request, record=where)
            station_id = text(raw.get("station"), request, where, "station")
            day = day_of(raw.get("date"), "%Y-%m-%d", request, where, "date")
            where, key = f"station {station_id} on {day}", {"station_id": station_id, "observed_on": day}
            row = {
                **key,
                "temp_min_c": number(raw.get("t_min"), request, where, "t_min"),
                "temp_max_c": number(raw.get("t_max"), request, where, "t_max"),
            }
            station = {"station_id": station_id, "name": text(raw.get("name"), request, where, "name")}
        except RecordError as error:
            name = f"{request}__record_{index}"
            rejects.append(Reject(error, record=raw, key=key, table=tables.observation.fullname, day=day, name=name))
            continue
        page.observations.append(row)
        page.stations.append(station)
    return Parsed(page, rejects)


# -- the rain-gauge CSV exports ------------------------------------------------------------------------
def parse_rain(body: bytes, request: str, network: str) -> Parsed[list[dict[str, Any]]]:
    """A network's CSV export (``;``-separated, decimal commas, dd/mm/yyyy dates) -> rain rows."""
    try:
        frame = pd.read_csv(io.BytesIO(body), sep=";", dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise RecordError(f"not a readable CSV export: {exc}", request=request) from None
    missing = [c for c in RAIN_COLUMNS if c not in frame.columns]
    if missing:
        raise RecordError(f"missing columns {missing} (has {list(frame.columns)})", request=request, field=missing[0])
    rows, rejects = [], []
    for index, raw in enumerate(frame.to_dict("records")):
        where, key, day = f"row {index + 1}", None, None
        try:
            gauge = text(raw["gauge"], request, where, "gauge")
            day = day_of(raw["date"], "%d/%m/%Y", request, where, "date")
            where, key = f"gauge {gauge} on {day}", {"network": network, "gauge_id": gauge, "measured_on": day}
            rows.append({**key, "rain_mm": number(raw["rain_mm"], request, where, "rain_mm"),
                         "remark": raw["remark"].strip() or None})  # fmt: skip
        except RecordError as error:
            name = f"{request}__row_{index + 1}"
            rejects.append(Reject(error, record=raw, key=key, table=tables.rain.fullname, day=day, name=name))
    return Parsed(rows, rejects)
