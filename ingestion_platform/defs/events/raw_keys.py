"""The keys of the records in raw events payloads, read WITHOUT the parsers (for reconciliation checks).

Each function reads the stored bytes with the plainest rules the source allows and returns
``(start day, source, id)`` per record: if the parser silently dropped or mis-keyed a record, the
check still expects it. What these rules cannot see without re-implementing the parser (recurring
iCalendar series, which only an RRULE expansion yields) is left out and said so in the check.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import zoneinfo
from collections.abc import Iterator
from typing import Any

from ingestion_platform.lib.raw_store import DeadLetter

_TRAILING_DIGITS = re.compile(r"(\d+)/?$")
_ICS_LINE = re.compile(r"\r\n|\n|\r")
_ICS_VALUE = re.compile(r"^(\d{4})(\d{2})(\d{2})(?:T(\d{2})(\d{2})(\d{2})(Z?))?$")


def _json(body: bytes) -> Any:
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = body.decode("cp1252", errors="replace")
    return json.loads(text)


def _day(text: Any) -> dt.date | None:
    try:
        return dt.date.fromisoformat(str(text)[:10])
    except ValueError:
        return None


# -- Montréal ------------------------------------------------------------------------------------------
def _montreal_key(record: Any) -> tuple | None:
    if not isinstance(record, dict):
        return None
    url = str(record.get("url_fiche") or "").split("?")[0]
    match = _TRAILING_DIGITS.search(url)
    day = _day(record.get("date_debut"))
    return (day, "montreal", match.group(1)) if match and day else None


def montreal_keys(request: str, body: bytes, label: str) -> list[tuple]:
    payload = _json(body)
    if isinstance(payload, dict):
        payload = (payload.get("result") or payload).get("records") or []
    return [k for k in map(_montreal_key, payload if isinstance(payload, list) else []) if k]


def montreal_letter_keys(letter: DeadLetter) -> list[tuple]:
    key = _montreal_key(_json(letter.payload() or b"null"))
    return [key] if key else []


# -- Eventbrite ----------------------------------------------------------------------------------------
def _eventbrite_key(event: Any) -> tuple | None:
    if not isinstance(event, dict) or not event.get("id"):
        return None
    start = event.get("start")
    day = _day(start.get("local") if isinstance(start, dict) else None)
    return (day, "eventbrite", str(event["id"])) if day else None


def eventbrite_keys(request: str, body: bytes, label: str) -> list[tuple]:
    payload = _json(body)
    events = payload.get("events") if isinstance(payload, dict) else None
    return [k for k in map(_eventbrite_key, events if isinstance(events, list) else []) if k]


def eventbrite_letter_keys(letter: DeadLetter) -> list[tuple]:
    key = _eventbrite_key(_json(letter.payload() or b"null"))
    return [key] if key else []


# -- iCalendar -----------------------------------------------------------------------------------------
def _unfolded(text: str) -> Iterator[str]:
    current = None
    for line in _ICS_LINE.split(text):
        if line[:1] in (" ", "\t") and current is not None:
            current += line[1:]
            continue
        if current is not None:
            yield current
        current = line
    if current is not None:
        yield current


def _ics_events(text: str) -> Iterator[tuple[dict[str, tuple[str, str]], str | None]]:
    """Top-level VEVENT properties (name -> (params, value)) and the calendar's X-WR-TIMEZONE."""
    zone, event, depth = None, None, 0
    for line in _unfolded(text):
        head, _, value = line.partition(":")
        name, _, params = head.partition(";")
        name = name.upper()
        if name == "X-WR-TIMEZONE" and event is None:
            zone = value.strip()
        elif name == "BEGIN":
            if value.strip().upper() == "VEVENT" and event is None:
                event, depth = {}, 0
            elif event is not None:
                depth += 1
        elif name == "END" and event is not None:
            if depth:
                depth -= 1
            elif value.strip().upper() == "VEVENT":
                yield event, zone
                event = None
        elif event is not None and depth == 0 and name not in event:
            event[name] = (params, value.strip())


def _ics_day(value: str, zone: str | None) -> dt.date | None:
    match = _ICS_VALUE.match(value)
    if not match:
        return None
    year, month, day, hour, minute, second, utc = match.groups()
    date = dt.date(int(year), int(month), int(day))
    if utc and zone:  # a UTC time is shown in the calendar's X-WR-TIMEZONE, as clients do
        try:
            moment = dt.datetime(date.year, date.month, date.day, int(hour), int(minute), int(second), tzinfo=dt.UTC)
            return moment.astimezone(zoneinfo.ZoneInfo(zone)).date()
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            return date
    return date


def _ics_key_list(text: str, feed: str) -> list[tuple]:
    keys = []
    for event, zone in _ics_events(text):
        if {"RRULE", "RDATE", "RECURRENCE-ID"} & event.keys() or "UID" not in event or "DTSTART" not in event:
            continue
        day = _ics_day(event["DTSTART"][1], zone)
        if day is not None:
            keys.append((day, f"ics:{feed}", event["UID"][1]))
    return keys


def ics_keys(request: str, body: bytes, label: str) -> list[tuple]:
    """Non-recurring VEVENTs with a UID: (DTSTART's date as written, ``ics:<feed>``, UID)."""
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = body.decode("cp1252", errors="replace")
    return _ics_key_list(text, request.removeprefix("feed_"))


def ics_letter_keys(letter: DeadLetter) -> list[tuple]:
    payload = letter.payload() or b""
    return ics_keys(letter.origin, payload, letter.partition)
