"""Property values of icalendar components as plain Python values (text, numbers, instants), never raising."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import unicodedata
from typing import Any

import icalendar

UTC = dt.UTC
_QUOTED = re.compile(r"(?<!\w)'([^']*)'(?!\w)")  # 'quoted', not an apostrophe (St. Mark's)


def safe_dt(prop: Any) -> Any:
    """``prop.dt``, None when the property has none (or is broken)."""
    try:
        return prop.dt
    except Exception:
        return None


def params(prop: Any) -> dict:
    """The parameters of a property (empty for a missing or repeated one)."""
    return getattr(prop, "params", None) or {}


def raw(prop: Any) -> str:
    """A property as written in the feed."""
    try:
        value = prop.to_ical()
    except Exception:
        return str(prop)
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def text(value: Any, *, multiline: bool = False, lines: str = " ") -> str | None:
    """A property as clean text (first value when repeated); None when empty.

    Whitespace runs become one space; line breaks are kept (``multiline``) or joined with ``lines``."""
    if isinstance(value, list):
        value = value[0] if value else None
    if value is None:
        return None
    try:
        result = str(value)
    except Exception:
        return None
    result = unicodedata.normalize("NFC", result.replace("\r\n", "\n").replace("\r", "\n"))
    if not multiline:
        parts = (" ".join(part.split()) for part in result.split("\n"))
        result = lines.join(part for part in parts if part)
    return result.strip() or None


def integer(value: Any) -> int | None:
    if isinstance(value, list):
        value = value[0] if value else None
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def rule_texts(rules: Any) -> list[str]:
    """RRULE values as written."""
    return [raw(rule) for rule in (rules if isinstance(rules, list) else [rules] if rules else [])]


def categories(value: Any) -> list[str]:
    result: list[str] = []
    for item in value if isinstance(value, list) else [value] if value is not None else []:
        cats = getattr(item, "cats", None)
        for cat in cats if cats is not None else [item]:
            name = text(cat)
            if name:
                result.append(name)
    return result


def organizer(value: Any) -> str | None:
    """The organizer's CN, else the address without ``mailto:``."""
    if isinstance(value, list):
        value = value[0] if value else None
    if value is None:
        return None
    name = text(params(value).get("CN"))
    if name:
        return name.strip('"') or None
    address = text(value)
    if address and address.lower().startswith("mailto:"):
        address = address[len("mailto:") :].strip()
    return address or None


def updated_at(event: icalendar.Event) -> dt.datetime | None:
    """LAST-MODIFIED, else DTSTAMP, as a UTC instant."""
    for name in ("LAST-MODIFIED", "DTSTAMP"):
        prop = event.get(name)
        if isinstance(prop, list):
            prop = prop[0] if prop else None
        value = safe_dt(prop) if prop is not None else None
        if isinstance(value, dt.datetime):
            return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        if isinstance(value, dt.date):
            return dt.datetime.combine(value, dt.time(), tzinfo=UTC)
    return None


def generated_uid(event: icalendar.Event) -> str:
    """A stable UID for a VEVENT without one: ``generated-<sha1(SUMMARY, DTSTART, LOCATION)[:16]>``."""
    start = event.get("DTSTART")
    if isinstance(start, list):
        start = start[0] if start else None
    value = safe_dt(start) if start is not None else None
    tzid = params(start).get("TZID", "")
    start_text = f"{tzid}:{value.isoformat()}" if isinstance(value, dt.date) else (raw(start) if start else "")
    key = "\x1f".join([text(event.get("SUMMARY")) or "", start_text, text(event.get("LOCATION")) or ""])
    return "generated-" + hashlib.sha1(key.encode("utf-8")).hexdigest()[:16]


def shorten(value: str, limit: int) -> str:
    """``value`` for a message: non-printable characters escaped, at most ``limit`` characters (then ``…``)."""
    out: list[str] = []
    size = 0
    for char in value:
        piece = char if char.isprintable() else repr(char)[1:-1]
        if size + len(piece) > limit:
            return "".join(out) + "…"
        out.append(piece)
        size += len(piece)
    return "".join(out)


def clean(message: str, *, limit: int) -> str:
    """A message that quotes feed data (icalendar's complaints do): each quoted part shortened to 60
    characters, non-printable characters (NUL …) escaped, the whole at most ``limit`` characters."""
    return shorten(_QUOTED.sub(lambda match: f"'{shorten(match.group(1), 60)}'", message), limit)


def name_from_error(message: str) -> str | None:
    """Property name from an icalendar complaint about an unparsable content line ('DTSTART;;VALUE=…')."""
    match = re.search(r"'([A-Za-z0-9-]+)[;:]", message)
    return match.group(1).upper() if match else None
