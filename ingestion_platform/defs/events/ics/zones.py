"""Time zones: IANA names for TZIDs (Windows names, custom VTIMEZONEs) and each calendar's own VTIMEZONEs."""

from __future__ import annotations

import datetime as dt
import functools
import re
import zoneinfo
from collections.abc import Iterable
from typing import Any

import icalendar
from icalendar.timezone import tzids_from_tzinfo, tzp

from ingestion_platform.defs.events.ics.rejects import Rejects
from ingestion_platform.defs.events.ics.values import params, safe_dt, text

try:  # icalendar >= 6: CLDR Windows → Olson table
    from icalendar.timezone.windows_to_olson import WINDOWS_TO_OLSON
except ImportError:  # pragma: no cover - older icalendar
    WINDOWS_TO_OLSON: dict[str, str] = {}


def zone_key(zone: dt.tzinfo | None) -> str | None:
    """The IANA key of a zoneinfo/pytz zone, None for custom (VTIMEZONE) zones."""
    key = getattr(zone, "key", None) or getattr(zone, "zone", None)
    return key if isinstance(key, str) and key else None


@functools.cache
def _iana_names() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones()) | {"UTC"}


def _zone(name: str | None) -> zoneinfo.ZoneInfo | None:
    if not name or name not in _iana_names():
        return None
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return None


def iana_from_tzid(tzid: str) -> str | None:
    """An IANA name for a TZID written as an IANA or Windows name (X-WR-TIMEZONE), else None."""
    cleaned = tzid.strip().strip('"').strip("/")
    for candidate in (cleaned, WINDOWS_TO_OLSON.get(cleaned)):
        if _zone(candidate) is not None:
            return candidate
    return None


def iana_name(value: dt.datetime) -> str | None:
    """IANA name of an aware datetime's zone; for a custom VTIMEZONE only when the offsets agree."""
    zone = value.tzinfo
    key = zone_key(zone)
    if key:
        return key
    try:
        candidates: Iterable[str] = tzids_from_tzinfo(zone)
    except Exception:
        candidates = ()
    expanded: list[str] = []
    for candidate in candidates:
        candidate = str(candidate).strip().strip('"')
        expanded += [candidate, candidate.strip("/"), WINDOWS_TO_OLSON.get(candidate.strip("/"), "")]
        expanded += [m.group(0) for m in re.finditer(r"[A-Z][A-Za-z0-9_+-]*(?:/[A-Za-z0-9_+-]+)+", candidate)]
    offset = value.utcoffset()
    for name in expanded:
        known = _zone(name)
        if known is not None and value.replace(tzinfo=known).utcoffset() == offset:
            return name
    return None


def tz_rule(event: icalendar.Event, start: dt.datetime, x_wr_timezone: str | None) -> str:
    """Which rule placed a timed start (``extra["tz_rule"]``); ``event`` is the VEVENT as written."""
    prop = event.get("DTSTART")
    written = safe_dt(prop)
    tzid = params(prop).get("TZID")
    if start.tzinfo is None:
        return "unknown-tzid-default-tz" if tzid else "floating-default-tz"
    moved_by_x_wr = isinstance(written, dt.datetime) and (written.tzinfo is None or zone_key(written.tzinfo) == "UTC")
    if x_wr_timezone and moved_by_x_wr:
        return "x-wr-timezone"
    if tzid:
        if zone_key(start.tzinfo) is None:
            return "vtimezone"
        if str(tzid).strip("/") in WINDOWS_TO_OLSON:
            return "windows-tzid"
        return "tzid"
    return "utc"


def rebind_custom_timezones(calendar: icalendar.Calendar, label: str, rejects: Rejects) -> None:
    """Give TZIDs the definition of *this* calendar, not the one icalendar cached from an earlier feed.

    icalendar caches a custom VTIMEZONE process-wide under its TZID; a TZID this calendar does not define
    becomes floating, as in a fresh process.
    """
    defined: dict[str, Any] = {}
    for vtimezone in calendar.walk("VTIMEZONE"):
        tzid = text(vtimezone.get("TZID"))
        if tzid:
            defined.setdefault(tzid, vtimezone)
            defined.setdefault(tzid.strip("/"), vtimezone)
    built: dict[str, dt.tzinfo | None] = {}

    def fresh(tzid: str) -> dt.tzinfo | None:
        if tzid not in built:
            vtimezone = defined.get(tzid) or defined.get(tzid.strip("/"))
            built[tzid] = None
            if vtimezone is not None:
                try:
                    built[tzid] = tzp.create_timezone(vtimezone)
                except Exception as exc:
                    reason = f"{label}: VTIMEZONE {tzid!r} cannot be used ({exc}); its times are read as floating"
                    rejects.add(reason, dropped=False, prop="TZID")
        return built[tzid]

    def rebind(value: Any, tzid: str) -> Any:
        if isinstance(value, tuple):
            return tuple(rebind(part, tzid) for part in value)
        if isinstance(value, dt.datetime) and value.tzinfo is not None and zone_key(value.tzinfo) is None:
            return value.replace(tzinfo=fresh(tzid))  # None → floating
        return value

    for event in calendar.walk("VEVENT"):
        for name in list(event.keys()):
            values = event[name]
            for value in values if isinstance(values, list) else [values]:
                tzid = params(value).get("TZID")
                if not tzid:
                    continue
                if hasattr(value, "dts"):
                    for item in value.dts:
                        if hasattr(item, "dt"):
                            item.dt = rebind(item.dt, str(tzid))
                elif hasattr(value, "dt") and not isinstance(value, icalendar.prop.vBroken):
                    value.dt = rebind(value.dt, str(tzid))
