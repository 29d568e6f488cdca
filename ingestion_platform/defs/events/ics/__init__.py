"""iCalendar (.ics) feeds → one event row per occurrence inside a window of local days.

Pure functions: no I/O, no Dagster. ``parse_feed`` returns ``Parsed(rows, rejects)``; each reject is a
:class:`~ingestion_platform.lib.errors.Reject` whose error names the feed (``request``), the UID (``record``:
``VEVENT UID <uid>``) and the property or line (``field``). ``dropped=True``: an event, series or calendar that
produced no rows (``record`` = its raw VEVENT text, ``name`` = ``uid_<UID>``); ``dropped=False``: a value that was
not taken as written, the event still loads. A payload that is not a calendar at all raises :class:`RecordError`.

Decisions (see ``/work/shared/events/NOTES.md`` section (c) for the data behind them):

* **Parsing** uses ``icalendar.Calendar.from_ical(text, multiple=True)``. The body is decoded as UTF-8 (a BOM
  is dropped); a body that is not UTF-8 is decoded as Windows-1252 and a (not dropped) reject records it. An
  empty or HTML body, a file icalendar refuses, or one that holds no complete VCALENDAR raises
  :class:`RecordError` with the line number when it can be found.
* **Recurrences** are expanded by ``recurring_ical_events`` (RRULE, RDATE incl. PERIOD, EXDATE, RECURRENCE-ID
  overrides incl. ``RANGE=THISANDFUTURE``; X-WR-TIMEZONE with ``x_wr_timezone``, as its ``of()`` does). Each UID is
  expanded on its own as one recurring-ical-events ``Series`` (see ``expand``), so one broken series (bad RRULE,
  missing DTSTART, …) is rejected alone. recurring-ical-events keeps cancelled occurrences
  (STATUS:CANCELLED on an override or on the master), they become rows with ``status="cancelled"``;
  ``METHOD:CANCEL`` cancels every event of its calendar. RRULEs with ``FREQ=SECONDLY``/``MINUTELY`` are refused
  (they would expand to millions of rows) and a series yields at most ``MAX_OCCURRENCES_PER_SERIES`` rows.
* **Window**: ``[window_start, window_end)`` are local calendar days in each event's own zone (floating and
  all-day events: as written). An occurrence is in the window when it overlaps it; an occurrence ending exactly
  at ``window_start`` or starting exactly at ``window_end`` is not. This is recurring-ical-events' ``between``
  called with local midnights (with plain dates it misses occurrences that start the evening before the window
  and run into it, see ``feed.FeedReader``). Overlap means a long or late event is a row in every window
  it touches, always with the same ``source_id``.
* **Time zones**: IANA TZIDs, Windows names ("W. Europe Standard Time" → Europe/Berlin via icalendar's CLDR
  table), VTIMEZONE definitions, X-WR-TIMEZONE (floating and UTC times are moved into it, as Google does).
  ``timezone`` is an IANA name or None: for a custom VTIMEZONE we use an IANA name found in its TZID (or the
  Windows table) only when its UTC offset agrees at the event's start. ``extra["tz_rule"]`` says which rule
  placed the start: ``tzid``, ``windows-tzid``, ``vtimezone``, ``utc``, ``x-wr-timezone``,
  ``floating-default-tz``, ``unknown-tzid-default-tz`` or ``all-day``.
* **Floating times** (no zone, no X-WR-TIMEZONE) and TZIDs that resolve to nothing are read in ``default_tz``
  for ``starts_at``/``ends_at``; ``timezone`` stays None and ``start_local``/``start_date`` are as written.
* **All-day** (DATE) events: ``all_day=True``, ``start_date`` = the date, ``starts_at`` = midnight in
  ``default_tz`` as UTC, ``timezone`` None; ``end_date`` is the last day covered (DTEND is exclusive, so DTEND - 1
  day; DTEND as written when it is not after DTSTART) and ``ends_at`` midnight of DTEND in ``default_tz``.
* **Ends**: DTEND, else DTSTART + DURATION, else one day (all-day) or ``ends_at = starts_at`` (timed). An end
  before the start is kept as written (recurring-ical-events swaps them; we swap back) so downstream checks see
  it; ``extra["end_before_start"]`` is True.
* **Identity**: ``source_id = f"{feed}:{UID}:{recurrence id}"``, the recurrence id being the occurrence's
  RECURRENCE-ID, else its original start (for non-recurring events: DTSTART as written), as recurring-ical-events
  has them: a zoned time as UTC ISO with a ``Z`` (``2024-03-01T09:00:00Z``), a floating time as written
  (``2024-03-01T10:00:00``, so the id does not depend on ``default_tz``), a date as ``2024-03-01``. An occurrence
  moved by a THISANDFUTURE override keeps the start it had before the move (its start minus the override's
  ``move_recurrences_by``). A VEVENT without UID gets ``generated-<sha1(summary, DTSTART, LOCATION)[:16]>``
  (``extra["uid_generated"]=True``) so the id is stable between fetches.
* **Broken properties**: DTSTART, RRULE, RDATE, EXDATE and RECURRENCE-ID decide where the occurrences are; if
  one of them is broken the whole series (every VEVENT with that UID) is rejected. Any other broken property
  (DTSTAMP, DURATION, DTEND, GEO, …) is dropped with a property-level reject and the event still loads.
* **icalendar's timezone cache is process-wide**: a custom VTIMEZONE (e.g. Outlook's "Customized Time Zone") is
  cached under its TZID by the first feed that defines it and reused for every later feed with the same TZID,
  even when that feed defines it differently or not at all. We rebuild each calendar's own custom zones and
  make TZIDs that this calendar does not define floating, so a feed's result does not depend on which feeds
  were parsed before it in the same process.

Modules: ``feed`` (payload → calendars → series), ``series`` (checks and expansion of one UID), ``expand``
(recurring-ical-events glue), ``rows`` (occurrence → row), ``zones``, ``layout`` (lines and VEVENT blocks of the
text), ``rejects``, ``values``.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo

from ingestion_platform.defs.events.ics.feed import FeedReader
from ingestion_platform.defs.events.ics.rows import EVENT_COLUMNS
from ingestion_platform.defs.events.ics.series import MAX_OCCURRENCES_PER_SERIES
from ingestion_platform.lib.errors import Parsed, RecordError

__all__ = ["EVENT_COLUMNS", "MAX_OCCURRENCES_PER_SERIES", "parse_feed"]


def parse_feed(
    feed: str,
    body: bytes,
    window_start: dt.date,
    window_end: dt.date,
    *,
    default_tz: str = "America/Toronto",
) -> Parsed[list[dict]]:
    """Rows (one per occurrence overlapping ``[window_start, window_end)``) and rejects for one .ics payload.

    Raises :class:`RecordError` (naming the feed, and the line when known) when the payload is not a readable
    calendar at all, and ValueError for bad arguments (unknown ``default_tz``, empty window).
    """
    try:
        default_zone = zoneinfo.ZoneInfo(default_tz)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"default_tz {default_tz!r} is not an IANA time zone") from exc
    if isinstance(window_start, dt.datetime) or isinstance(window_end, dt.datetime):
        raise ValueError("window_start and window_end are dates (local calendar days), not datetimes")
    if window_end <= window_start:
        raise ValueError(f"empty window [{window_start}, {window_end})")

    reader = FeedReader(feed, window_start, window_end, default_zone)
    try:
        rows = reader.read(body)
    except RecordError:
        raise
    except Exception as exc:  # a bug or a library surprise: the payload is dead-lettered, the batch goes on
        raise RecordError(f"unexpected {type(exc).__name__} while reading the feed: {exc}", request=feed) from exc
    return Parsed(rows, reader.feed.rejects.items)
