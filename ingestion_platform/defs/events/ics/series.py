"""One series (the VEVENTs of one UID) → its rows inside the window, or rejects."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import icalendar

from ingestion_platform.defs.events.ics import expand
from ingestion_platform.defs.events.ics.layout import Block
from ingestion_platform.defs.events.ics.rows import CalendarContext, Feed, SeriesContext, occurrence_row
from ingestion_platform.defs.events.ics.values import name_from_error, raw, safe_dt

MAX_OCCURRENCES_PER_SERIES = 10_000
"""Rows kept per UID and window; more is certainly a runaway rule (reported as a reject)."""

# Properties that decide *where* the occurrences of a series are: if one is unreadable, the series is rejected.
_STRUCTURAL = frozenset({"DTSTART", "RRULE", "RDATE", "EXDATE", "EXRULE", "RECURRENCE-ID"})
_REFUSED_FREQ = frozenset({"SECONDLY", "MINUTELY"})


def series_rows(
    feed: Feed,
    calendar: CalendarContext,
    uid: str,
    uid_generated: bool,
    members: Sequence[tuple[icalendar.Event, Block | None]],
    window: tuple[dt.datetime, dt.datetime],
) -> list[dict]:
    """The rows of one UID's VEVENTs (``members``, with their text blocks) overlapping ``window``."""
    events = [event for event, _ in members]
    blocks = [block for _, block in members]
    ok = True
    for event, block in members:
        ok = _check_event(feed, uid, event, block, blocks) and ok
    if not ok:
        return []
    try:
        occurrences = expand.occurrences(events, *window, calendar.to_standard)
    except Exception as exc:
        _expansion_failed(feed, uid, exc, blocks)
        return []
    series = SeriesContext(
        uid=uid,
        uid_generated=uid_generated,
        recurs=any("RRULE" in event or "RDATE" in event or "RECURRENCE-ID" in event for event in events),
        core=next((event for event in events if "RECURRENCE-ID" not in event), None),
    )
    first = next((block for block in blocks if block is not None), None)
    rows = []
    for occurrence in occurrences:
        try:
            rows.append(occurrence_row(feed, calendar, series, occurrence))
        except Exception as exc:
            feed.rejects.add(
                f"occurrence at {occurrence.start} could not be converted ({type(exc).__name__}: {exc}); "
                "occurrence skipped",
                dropped=True,
                uid=uid,
                line=first.line if first else None,
                blocks=blocks,
            )
    if len(rows) > MAX_OCCURRENCES_PER_SERIES:
        feed.rejects.add(
            f"{len(rows)} occurrences in the window; kept the first {MAX_OCCURRENCES_PER_SERIES}",
            dropped=True,
            uid=uid,
            prop="RRULE",
            blocks=blocks,
        )
        rows = sorted(rows, key=lambda row: row["starts_at"])[:MAX_OCCURRENCES_PER_SERIES]
    return rows


def _expansion_failed(feed: Feed, uid: str, exc: Exception, blocks: Sequence[Block | None]) -> None:
    first = next((block for block in blocks if block is not None), None)
    prop = expand.property_of_error(exc)
    line = (first.props.get(prop) if prop and first else None) or (first.line if first else None)
    scope = f"series of {len(blocks)} VEVENTs skipped" if len(blocks) > 1 else "event skipped"
    feed.rejects.add(
        f"recurrence expansion failed ({type(exc).__name__}: {exc}); {scope}",
        dropped=True,
        uid=uid,
        prop=prop,
        line=line,
        blocks=blocks,
    )


def _check_event(
    feed: Feed, uid: str, event: icalendar.Event, block: Block | None, series: Sequence[Block | None]
) -> bool:
    """Drop broken non-structural properties (with a reject); False when the series must be rejected."""
    scope = "series of VEVENTs with this UID skipped" if len(series) > 1 else "event skipped"
    failed: set[str] = set()

    def fail(prop: str, reason: str) -> None:
        failed.add(prop)
        feed.rejects.prop(uid, block, prop, f"{reason}; {scope}", series=series)

    for prop, message in getattr(event, "errors", None) or []:
        name = (prop or name_from_error(message) or "?").upper()
        if name in _STRUCTURAL:
            if name not in failed:
                fail(name, f"unreadable value ({message})")
        else:
            event.pop(name, None)
            feed.rejects.prop(uid, block, name, f"unreadable value ({message}); property ignored")

    start = event.get("DTSTART")
    if "DTSTART" not in failed:
        if start is None:
            what = "RECURRENCE-ID override" if "RECURRENCE-ID" in event else "event"
            fail("DTSTART", f"{what} has no DTSTART")
        elif isinstance(start, list):
            fail("DTSTART", f"DTSTART appears {len(start)} times")
        elif not isinstance(safe_dt(start), dt.date):
            fail("DTSTART", f"not a date or date-time ({raw(start)!r})")
    for name in ("DTEND", "DURATION"):
        prop = event.get(name)
        if prop is None:
            continue
        expected = dt.timedelta if name == "DURATION" else dt.date
        reason = None
        if isinstance(prop, list):
            reason = f"{name} appears {len(prop)} times"
        elif not isinstance(safe_dt(prop), expected):
            reason = f"unreadable value {raw(prop)!r}"
        if reason:
            event.pop(name, None)
            feed.rejects.prop(uid, block, name, f"{reason}; property ignored, end computed without it")
    rid = event.get("RECURRENCE-ID")
    if rid is not None and "RECURRENCE-ID" not in failed:
        if isinstance(rid, list):
            fail("RECURRENCE-ID", f"RECURRENCE-ID appears {len(rid)} times")
        elif not isinstance(safe_dt(rid), dt.date):
            fail("RECURRENCE-ID", f"unreadable value {raw(rid)!r}")
    rules = event.get("RRULE")
    for rule in rules if isinstance(rules, list) else [rules] if rules is not None else []:
        if "RRULE" in failed or not isinstance(rule, icalendar.prop.vRecur):
            continue
        freq = rule.get("FREQ")
        freq = str(freq[0] if isinstance(freq, list) and freq else freq or "").upper()
        if freq in _REFUSED_FREQ:
            fail("RRULE", f"FREQ={freq} is not supported for events (too many occurrences)")
    return not failed
