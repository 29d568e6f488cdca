"""One occurrence → one event row (``EVENT_COLUMNS``)."""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import icalendar

from ingestion_platform.defs.events.ics.expand import Occurrence
from ingestion_platform.defs.events.ics.rejects import Rejects
from ingestion_platform.defs.events.ics.values import (
    categories,
    integer,
    organizer,
    params,
    rule_texts,
    text,
    updated_at,
)
from ingestion_platform.defs.events.ics.zones import iana_name, tz_rule

UTC = dt.UTC

EVENT_COLUMNS: tuple[str, ...] = (
    "source",
    "source_id",
    "title",
    "summary",
    "description",
    "url",
    "status",
    "starts_at",
    "ends_at",
    "timezone",
    "start_local",
    "start_date",
    "end_date",
    "all_day",
    "is_online",
    "venue_name",
    "address",
    "city",
    "region",
    "postal_code",
    "country",
    "latitude",
    "longitude",
    "organizer",
    "category",
    "is_free",
    "currency",
    "min_price",
    "max_price",
    "series_id",
    "recurrence_id",
    "source_updated_at",
    "extra",
)

_URL = re.compile(r"^(https?://|www\.)\S+$", re.IGNORECASE)


@dataclass(frozen=True)
class Feed:
    name: str
    default_zone: zoneinfo.ZoneInfo  # floating and all-day times are read in it
    rejects: Rejects


@dataclass(frozen=True)
class CalendarContext:
    method: str | None
    calname: str | None
    x_wr_timezone: str | None
    to_standard: Callable[[icalendar.Event], icalendar.Event]  # floating and UTC times → X-WR-TIMEZONE
    index: int | None  # position of the VCALENDAR when the feed has several


@dataclass(frozen=True)
class SeriesContext:
    uid: str
    uid_generated: bool
    recurs: bool  # RRULE, RDATE or RECURRENCE-ID: rows get series_id and recurrence_id
    core: icalendar.Event | None  # the VEVENT without RECURRENCE-ID


def occurrence_row(feed: Feed, calendar: CalendarContext, series: SeriesContext, occurrence: Occurrence) -> dict:
    event = occurrence.event
    start, end = occurrence.span_as_written
    rid_text = _id_time(occurrence.recurrence_id)
    times = _times(start, end, feed.default_zone)
    extra: dict[str, Any] = {"uid": series.uid, "uid_generated": series.uid_generated}
    extra.update(_time_notes(event, start, occurrence.swapped, calendar))
    status_raw = text(event.get("STATUS"))
    cancelled = (status_raw or "").upper() == "CANCELLED" or calendar.method == "CANCEL"
    extra["status_raw"] = status_raw
    extra.update(_series_notes(event, series, calendar))
    place = _place(event, extra)
    latitude, longitude, address = _geo(event, series.uid, feed.rejects)
    names = categories(event.get("CATEGORIES"))
    if len(names) > 1:
        extra["categories"] = names
    return {
        "source": f"ics:{feed.name}",
        "source_id": f"{feed.name}:{series.uid}:{rid_text}",
        "title": text(event.get("SUMMARY")),
        "summary": None,
        "description": text(event.get("DESCRIPTION"), multiline=True),
        "url": place["url"],
        "status": "cancelled" if cancelled else "scheduled",
        **times,
        "is_online": place["is_online"],
        "venue_name": place["venue_name"],
        "address": address,
        "city": None,
        "region": None,
        "postal_code": None,
        "country": None,
        "latitude": latitude,
        "longitude": longitude,
        "organizer": organizer(event.get("ORGANIZER")),
        "category": names[0] if names else None,
        "is_free": None,
        "currency": None,
        "min_price": None,
        "max_price": None,
        "series_id": series.uid if series.recurs else None,
        "recurrence_id": rid_text if series.recurs else None,
        "source_updated_at": updated_at(event),
        "extra": extra,
    }


def _times(start: Any, end: Any, default_zone: zoneinfo.ZoneInfo) -> dict[str, Any]:
    """starts_at … all_day, in EVENT_COLUMNS order."""
    all_day = not isinstance(start, dt.datetime)
    zone: dt.tzinfo | None = None
    timezone = None
    if all_day:
        start_local = dt.datetime.combine(start, dt.time())
        starts_at = start_local.replace(tzinfo=default_zone).astimezone(UTC)
    else:
        zone = start.tzinfo
        start_local = start.replace(tzinfo=None)
        if zone is None:
            starts_at = start.replace(tzinfo=default_zone).astimezone(UTC)
        else:
            starts_at = start.astimezone(UTC)
            timezone = iana_name(start)
    ends_at, end_date = _end(end, start, all_day, zone, default_zone)
    return {
        "starts_at": starts_at,
        "ends_at": ends_at,
        "timezone": timezone,
        "start_local": start_local,
        "start_date": start_local.date(),
        "end_date": end_date,
        "all_day": all_day,
    }


def _end(
    end: Any, start: Any, all_day: bool, start_zone: dt.tzinfo | None, default_zone: zoneinfo.ZoneInfo
) -> tuple[dt.datetime | None, dt.date | None]:
    """(ends_at, end_date); an all-day end is exclusive, so its last day is the day before."""
    if end is None:
        return None, None
    if not isinstance(end, dt.datetime):  # a date
        ends_at = dt.datetime.combine(end, dt.time()).replace(tzinfo=default_zone).astimezone(UTC)
        if all_day and isinstance(start, dt.date) and end > start:
            return ends_at, end - dt.timedelta(days=1)
        return ends_at, end
    if end.tzinfo is None:
        return end.replace(tzinfo=default_zone).astimezone(UTC), end.date()
    local = end.astimezone(start_zone) if start_zone is not None else end
    return end.astimezone(UTC), local.date()


def _time_notes(event: icalendar.Event, start: Any, swapped: bool, calendar: CalendarContext) -> dict[str, Any]:
    notes: dict[str, Any] = {}
    start_params = params(event.get("DTSTART"))
    if start_params.get("TZID"):
        notes["tzid"] = str(start_params["TZID"])
    timed = isinstance(start, dt.datetime)
    notes["tz_rule"] = tz_rule(event, start, calendar.x_wr_timezone) if timed else "all-day"
    if str(start_params.get("VALUE", "")).upper() == "DATE" and timed:
        notes["value_date_with_time"] = True  # DTSTART;VALUE=DATE:20110804T120000 read as a (floating) time
    if swapped:
        notes["end_before_start"] = True
    return notes


def _series_notes(event: icalendar.Event, series: SeriesContext, calendar: CalendarContext) -> dict[str, Any]:
    notes: dict[str, Any] = {}
    sequence = integer(event.get("SEQUENCE"))  # as written (recurring-ical-events puts the series maximum)
    if sequence is not None:
        notes["sequence"] = sequence
    rid_prop = event.get("RECURRENCE-ID")
    if rid_prop is not None and not isinstance(rid_prop, list):
        notes["recurrence_override"] = True
        if params(rid_prop).get("RANGE"):
            notes["recurrence_range"] = str(params(rid_prop)["RANGE"])
    rules = rule_texts(series.core.get("RRULE")) if series.core is not None and series.recurs else []
    if rules:
        notes["rrule"] = rules[0] if len(rules) == 1 else rules
    if calendar.method:
        notes["method"] = calendar.method
    if calendar.calname:
        notes["x_wr_calname"] = calendar.calname
    if calendar.x_wr_timezone:
        notes["x_wr_timezone"] = calendar.x_wr_timezone
    if calendar.index is not None:
        notes["calendar_index"] = calendar.index
    return notes


def _place(event: icalendar.Event, extra: dict[str, Any]) -> dict[str, Any]:
    """url, venue_name and is_online; a LOCATION that is a URL goes to ``extra["location_url"]``."""
    location = text(event.get("LOCATION"), lines=", ")
    url = text(event.get("URL"))
    location_is_url = bool(location and _URL.match(location))
    if location_is_url:
        extra["location_url"] = location
    conference = any(name in event for name in ("X-GOOGLE-CONFERENCE", "CONFERENCE"))
    url_only = bool(url and not location and re.match(r"^https?://", url, re.IGNORECASE))
    return {
        "url": url,
        "venue_name": None if location_is_url else location,
        "is_online": bool(conference or location_is_url or url_only),
    }


def _geo(event: icalendar.Event, uid: str, rejects: Rejects) -> tuple[Any, Any, Any]:
    """(latitude, longitude, address) from GEO or Apple's X-APPLE-STRUCTURED-LOCATION."""
    latitude = longitude = address = None
    geo = event.get("GEO")
    if geo is not None:
        try:
            latitude, longitude = float(geo.latitude), float(geo.longitude)
        except (AttributeError, TypeError, ValueError):
            latitude = longitude = None
    apple = event.get("X-APPLE-STRUCTURED-LOCATION")
    if apple is not None and not isinstance(apple, list):
        raw_address = params(apple).get("X-ADDRESS")
        if raw_address:
            address = ", ".join(part.strip() for part in str(raw_address).split("\\n") if part.strip()) or None
        if latitude is None:
            match = re.match(r"^geo:\s*(-?[\d.]+)\s*,\s*(-?[\d.]+)", str(apple), re.IGNORECASE)
            if match:
                latitude, longitude = float(match.group(1)), float(match.group(2))
    if latitude is not None and (
        not (-90 <= latitude <= 90) or not (-180 <= longitude <= 180) or (latitude == 0 and longitude == 0)
    ):
        reason = f"coordinates {latitude},{longitude} are out of range or 0,0; ignored"
        rejects.add(reason, dropped=False, uid=uid, prop="GEO")
        latitude = longitude = None
    return latitude, longitude, address


def dedupe_and_sort(rows: list[dict], rejects: Rejects) -> list[dict]:
    """One row per source_id (the highest SEQUENCE/LAST-MODIFIED), by start."""
    best: dict[str, dict] = {}
    for row in rows:
        key = row["source_id"]
        if key not in best:
            best[key] = row
            continue
        kept = max(best[key], row, key=_row_rank)
        dropped = row if kept is best[key] else best[key]
        best[key] = kept
        rejects.add(
            f"duplicate occurrence {key} (starts {dropped['starts_at'].isoformat()} and "
            f"{kept['starts_at'].isoformat()}); kept the one with the highest SEQUENCE/LAST-MODIFIED",
            dropped=False,
            uid=kept["extra"]["uid"],
            prop="UID",
        )
    return sorted(best.values(), key=lambda row: (row["starts_at"], row["source_id"]))


def _row_rank(row: dict) -> tuple:
    updated = row["source_updated_at"] or dt.datetime.min.replace(tzinfo=UTC)
    return (row["extra"].get("sequence", -1), updated)


def _id_time(value: Any) -> str:
    """A recurrence id as text: a zoned time as UTC ``…Z``, a floating time as written, a date as a date."""
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            return value.isoformat()
        return value.astimezone(UTC).replace(tzinfo=None).isoformat() + "Z"
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)
