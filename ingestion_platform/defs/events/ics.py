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
  overrides incl. ``RANGE=THISANDFUTURE``, X-WR-TIMEZONE). Each UID is expanded on its own, so one broken
  series (bad RRULE, missing DTSTART, …) is rejected alone. recurring-ical-events keeps cancelled occurrences
  (STATUS:CANCELLED on an override or on the master), they become rows with ``status="cancelled"``;
  ``METHOD:CANCEL`` cancels every event of its calendar. RRULEs with ``FREQ=SECONDLY``/``MINUTELY`` are refused
  (they would expand to millions of rows) and a series yields at most ``MAX_OCCURRENCES_PER_SERIES`` rows.
* **Window**: ``[window_start, window_end)`` are local calendar days in each event's own zone (floating and
  all-day events: as written). An occurrence is in the window when it overlaps it; an occurrence ending exactly
  at ``window_start`` or starting exactly at ``window_end`` is not. This is recurring-ical-events' ``between``
  called with local midnights (with plain dates it misses occurrences that start the evening before the window
  and run into it, see ``_FeedParser.__init__``). Overlap means a long or late event is a row in every window
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
  RECURRENCE-ID, else its original start (for non-recurring events: DTSTART): a zoned time as UTC ISO with a
  ``Z`` (``2024-03-01T09:00:00Z``), a floating time as written (``2024-03-01T10:00:00``, so the id does not depend
  on ``default_tz``), a date as ``2024-03-01``. An occurrence moved by a THISANDFUTURE override keeps the start
  it had before the move. A VEVENT without UID gets ``generated-<sha1(summary, DTSTART, LOCATION)[:16]>``
  (``extra["uid_generated"]=True``) so the id is stable between fetches.
* **Broken properties**: DTSTART, RRULE, RDATE, EXDATE and RECURRENCE-ID decide where the occurrences are; if
  one of them is broken the whole series (every VEVENT with that UID) is rejected. Any other broken property
  (DTSTAMP, DURATION, DTEND, GEO, …) is dropped with a property-level reject and the event still loads.
* **icalendar's timezone cache is process-wide**: a custom VTIMEZONE (e.g. Outlook's "Customized Time Zone") is
  cached under its TZID by the first feed that defines it and reused for every later feed with the same TZID,
  even when that feed defines it differently or not at all. We rebuild each calendar's own custom zones and
  make TZIDs that this calendar does not define floating, so a feed's result does not depend on which feeds
  were parsed before it in the same process.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import re
import unicodedata
import zoneinfo
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, NoReturn

import icalendar
import recurring_ical_events
import x_wr_timezone
from icalendar.timezone import tzids_from_tzinfo, tzp
from recurring_ical_events.util import make_comparable

from ingestion_platform.lib.errors import Parsed, RecordError, Reject

try:  # icalendar >= 6: CLDR Windows → Olson table
    from icalendar.timezone.windows_to_olson import WINDOWS_TO_OLSON
except ImportError:  # pragma: no cover - older icalendar
    WINDOWS_TO_OLSON: dict[str, str] = {}

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

MAX_OCCURRENCES_PER_SERIES = 10_000
"""Rows kept per UID and window; more is certainly a runaway rule (reported as a reject)."""

# Properties that decide *where* the occurrences of a series are: if one is unreadable, the series is rejected.
_STRUCTURAL = frozenset({"DTSTART", "RRULE", "RDATE", "EXDATE", "EXRULE", "RECURRENCE-ID"})
_REFUSED_FREQ = frozenset({"SECONDLY", "MINUTELY"})
_CONTENT_LINE = re.compile(r"^[A-Za-z0-9-]+[;:]")
_LINE_BREAK = re.compile(r"\r\n|\n|\r")
_URL = re.compile(r"^(https?://|www\.)\S+$", re.IGNORECASE)


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

    parser = _FeedParser(feed, window_start, window_end, default_zone)
    try:
        parser.run(body)
    except RecordError:
        raise
    except Exception as exc:  # a bug or a library surprise: the payload is dead-lettered, the batch goes on
        raise RecordError(f"unexpected {type(exc).__name__} while reading the feed: {exc}", request=feed) from exc
    return Parsed(parser.rows, parser.rejects)


# --------------------------------------------------------------------------------------------------------------
# Text layout: physical lines, unfolded content lines and VEVENT blocks (for line numbers in messages)


@dataclass
class _Block:
    """One ``BEGIN:VEVENT`` … ``END:VEVENT`` in the text."""

    line: int
    end: int | None = None  # line of its END:VEVENT
    uid: str | None = None
    props: dict[str, int] = field(default_factory=dict)  # property name → line of its first occurrence


@dataclass
class _Layout:
    physical: list[str]
    content: list[tuple[int, str]]  # (physical line number of the first part, unfolded content line)
    blocks: list[_Block]

    @classmethod
    def of(cls, text: str) -> _Layout:
        physical = _LINE_BREAK.split(text)
        if physical and physical[-1] == "":
            physical.pop()
        content: list[tuple[int, str]] = []
        for number, line in enumerate(physical, start=1):
            if line[:1] in (" ", "\t") and content:
                start, previous = content[-1]
                content[-1] = (start, previous + line[1:])
            else:
                content.append((number, line))
        blocks: list[_Block] = []
        depth = 0  # nesting below the current VEVENT (VALARM …)
        current: _Block | None = None
        for number, line in content:
            name = _content_name(line)
            value = line.split(":", 1)[1].strip() if ":" in line else ""
            if name == "BEGIN" and current is None and value.upper() == "VEVENT":
                current = _Block(number)
                blocks.append(current)
            elif current is not None and name == "BEGIN":
                depth += 1
            elif current is not None and name == "END":
                if depth:
                    depth -= 1
                else:
                    current.end = number
                    current = None
            elif current is not None and depth == 0 and name:
                current.props.setdefault(name, number)
                if name == "UID" and current.uid is None:
                    current.uid = value
        return cls(physical, content, blocks)

    def text(self, blocks: Iterable[_Block | None]) -> str | None:
        """The raw text of these VEVENT blocks (None when none is known)."""
        parts = ["\r\n".join(self.physical[b.line - 1 : b.end or len(self.physical)]) for b in blocks if b]
        return "\r\n".join(parts) or None

    def locate_error(self, message: str) -> int | None:
        """Best guess of the line a parser complaint is about."""
        quoted = re.findall(r"'([^']*)'", message) + re.findall(r'"([^"]*)"', message)
        for token in quoted:
            for number, line in self.content:
                if token and line.strip() == token.strip():
                    return number
        for number, line in self.content:
            if line.strip(" \t") and not _CONTENT_LINE.match(line):
                return number
        tokens = [t for t in quoted if len(t.strip()) >= 4]
        tokens += re.findall(r"[+-]\d{3,}|\d{6,}T?\d*Z?", message)
        for token in tokens:
            for number, line in self.content:
                if token in line:
                    return number
        return None

    def structure_problem(self) -> tuple[str, int | None]:
        """Why no complete VCALENDAR came out of a text icalendar accepted."""
        stack: list[tuple[str, int]] = []
        seen_calendar = False
        for number, line in self.content:
            name = _content_name(line)
            value = line.split(":", 1)[1].strip().upper() if ":" in line else ""
            if name == "BEGIN":
                seen_calendar = seen_calendar or value == "VCALENDAR"
                stack.append((value, number))
            elif name == "END":
                if not stack or stack[-1][0] != value:
                    expected = f"END:{stack[-1][0]} for line {stack[-1][1]}" if stack else "no open component"
                    return f"END:{value} does not match ({expected})", number
                stack.pop()
        if stack:
            value, number = stack[0]
            return f"BEGIN:{value} is never closed (no END:{value})", number
        if not seen_calendar:
            return "no BEGIN:VCALENDAR found", None
        return "no complete VCALENDAR found", None


def _content_name(line: str) -> str | None:
    match = _CONTENT_LINE.match(line)
    return match.group(0)[:-1].upper() if match else None


# --------------------------------------------------------------------------------------------------------------
# The parser


class _FeedParser:
    def __init__(self, feed: str, window_start: dt.date, window_end: dt.date, default_zone: zoneinfo.ZoneInfo):
        self.feed = feed
        self.window_start = window_start
        self.window_end = window_end
        self.default_zone = default_zone
        # Midnights, not dates: with date arguments recurring-ical-events 3.8 widens the span by the event's
        # duration with ``date - timedelta``, which drops the hours, so an occurrence that starts the evening
        # before the window and runs into it is missed. Naive midnights are the same local-day window.
        self.query_start = dt.datetime.combine(window_start, dt.time())
        self.query_end = dt.datetime.combine(window_end, dt.time())
        self.rows: list[dict] = []
        self.rejects: list[Reject] = []
        self.generated_uids: set[str] = set()
        self._names: Counter[str] = Counter()  # dead-letter names given so far
        self.layout = _Layout([], [], [])
        self._block_cursor = 0

    # ---- rejects ---------------------------------------------------------------------------------------------

    def reject(
        self,
        reason: str,
        *,
        dropped: bool,
        uid: str | None = None,
        prop: str | None = None,
        line: int | None = None,
        blocks: Sequence[_Block | None] = (),
    ) -> None:
        """A :class:`Reject`: ``dropped`` when the event (series, calendar) produced no rows, else a warning."""
        notes = [f"line {line}"] if line is not None and prop else []
        if uid in self.generated_uids:
            notes.append("the VEVENT has no UID")
        error = RecordError(
            f"{', '.join(notes)}: {reason}" if notes else reason,
            request=self.feed,
            record=f"VEVENT UID {uid}" if uid else None,
            field=prop or (f"line {line}" if line is not None else None),
        )
        name = None
        if uid:
            name = f"uid_{uid}"
            if dropped:  # one dead letter per dropped reject: a second one of the same UID gets a suffix
                self._names[name] += 1
                name += f"_{self._names[name]}" if self._names[name] > 1 else ""
        self.rejects.append(Reject(error, record=self.layout.text(blocks), dropped=dropped, name=name))

    def prop_reject(
        self,
        uid: str | None,
        block: _Block | None,
        prop: str,
        reason: str,
        *,
        series: Sequence[_Block | None] | None = None,
    ) -> None:
        """A reject about one property of a VEVENT; given ``series`` (its blocks), the whole series was dropped."""
        line = block.props.get(prop) if block else None
        if line is None and block is not None:
            line = block.line
        dropped = series is not None
        self.reject(reason, dropped=dropped, uid=uid, prop=prop, line=line, blocks=series if dropped else [block])

    def fail(self, reason: str, *, line: int | None = None) -> NoReturn:
        """The payload is not a readable calendar: no rows at all."""
        raise RecordError(reason, request=self.feed, field=f"line {line}" if line is not None else None)

    # ---- feed level ------------------------------------------------------------------------------------------

    def run(self, body: bytes) -> None:
        text = self._decode(body)
        self.layout = _Layout.of(text)
        if not text.strip():
            self.fail("empty body, no iCalendar data")
        if text.lstrip()[:1] == "<":
            self.fail("body looks like HTML/XML, not iCalendar", line=1)
        try:
            components = icalendar.Calendar.from_ical(text, multiple=True)
        except Exception as exc:
            line = self.layout.locate_error(str(exc))
            detail = f" ({self.layout.physical[line - 1][:80]!r})" if line is not None else ""
            self.fail(f"icalendar cannot parse the file{detail}: {type(exc).__name__}: {exc}", line=line)
        calendars = [c for c in components if c.name == "VCALENDAR"]
        loose = [c for c in components if c.name in ("VEVENT", "VTIMEZONE")]
        if any(c.name == "VEVENT" for c in loose):
            # Bare VEVENTs with no VCALENDAR around them: read them as one calendar rather than lose them.
            wrapper = icalendar.Calendar()
            wrapper.subcomponents = loose
            calendars.append(wrapper)
            count = sum(c.name == "VEVENT" for c in loose)
            self.reject(f"{count} VEVENT(s) outside any VCALENDAR; read as if in one calendar", dropped=False)
        if not calendars:
            problem, line = self.layout.structure_problem()
            self.fail(f"no calendar could be read: {problem}", line=line)
        for index, calendar in enumerate(calendars):
            try:
                self._calendar(calendar, index, len(calendars))
            except Exception as exc:  # defensive: a library surprise costs this calendar, not the feed
                label = f"VCALENDAR #{index + 1}" if len(calendars) > 1 else "VCALENDAR"
                self.reject(f"{label}: unexpected {type(exc).__name__}: {exc}; calendar skipped", dropped=True)
        self._dedupe_and_sort()

    def _decode(self, body: bytes) -> str:
        if isinstance(body, str):  # be lenient with callers that already decoded
            return body.removeprefix("\ufeff")
        if body is None:
            self.fail("no body")
        data = bytes(body)
        try:
            return data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            self.reject(
                f"body is not UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start}); decoded as Windows-1252",
                dropped=False,
                line=data[: exc.start].count(b"\n") + 1,
            )
            return data.decode("cp1252", errors="replace")

    # ---- calendar level --------------------------------------------------------------------------------------

    def _calendar(self, calendar: icalendar.Calendar, index: int, count: int) -> None:
        label = f"VCALENDAR #{index + 1}" if count > 1 else "VCALENDAR"
        for component in calendar.walk():
            if component.name in ("VCALENDAR", "VTIMEZONE", "STANDARD", "DAYLIGHT"):
                for prop, message in getattr(component, "errors", None) or []:
                    name = (prop or _name_from_error(message) or "?").upper()
                    self.reject(f"{label} {component.name}: {message}; ignored", dropped=False, prop=name)
        vevents = list(calendar.walk("VEVENT"))
        blocks = [self._next_block(event) for event in vevents]
        scale = str(calendar.get("CALSCALE", "GREGORIAN")).upper()
        if scale != "GREGORIAN":
            self.reject(f"{label}: CALSCALE {scale} is not supported; calendar skipped", dropped=True, prop="CALSCALE")
            return
        if not vevents:
            return
        xwr = self._x_wr_timezone(calendar, label)
        self._rebind_custom_timezones(calendar, label)

        context = _CalendarContext(
            method=str(calendar.get("METHOD") or "").strip().upper() or None,
            calname=_text(calendar.get("X-WR-CALNAME")),
            x_wr_timezone=xwr,
            walker=x_wr_timezone.UTCChangingWalker(zoneinfo.ZoneInfo(xwr)) if xwr else None,
            index=index if count > 1 else None,
        )
        # One series per UID; a VEVENT without UID is a series of its own (as in recurring-ical-events).
        groups: dict[tuple[str, int], list[tuple[int, icalendar.Event, _Block | None]]] = defaultdict(list)
        for position, (event, block) in enumerate(zip(vevents, blocks, strict=True)):
            uid = _text(event.get("UID"))
            if uid is None:
                uid = _generated_uid(event)
                self.generated_uids.add(uid)
                key = (uid, position)
            else:
                key = (uid, -1)
            groups[key].append((position, event, block))

        for (uid, position), members in groups.items():
            try:
                self._series(uid, position >= 0, members, context)
            except Exception as exc:  # defensive: a library surprise costs this series, not the feed
                blocks = [block for _, _, block in members]
                self.reject(
                    f"unexpected {type(exc).__name__}: {exc}; event skipped",
                    dropped=True,
                    uid=uid,
                    line=blocks[0].line if blocks[0] else None,
                    blocks=blocks,
                )

    def _next_block(self, event: icalendar.Event) -> _Block | None:
        """The text block of the next parsed VEVENT (same order as the text), checked by UID."""
        blocks = self.layout.blocks
        uid = _text(event.get("UID"))
        if self._block_cursor < len(blocks):
            block = blocks[self._block_cursor]
            if (block.uid or None) == uid:
                self._block_cursor += 1
                return block
        for position in range(self._block_cursor, len(blocks)):
            if uid is not None and blocks[position].uid == uid:
                self._block_cursor = position + 1
                return blocks[position]
        return None

    def _x_wr_timezone(self, calendar: icalendar.Calendar, label: str) -> str | None:
        raw = _text(calendar.get("X-WR-TIMEZONE"))
        if raw is None:
            return None
        name = _iana_from_tzid(raw)
        if name is None:
            self.reject(
                f"{label}: X-WR-TIMEZONE {raw!r} is not a known time zone; ignored",
                dropped=False,
                prop="X-WR-TIMEZONE",
            )
        return name

    def _rebind_custom_timezones(self, calendar: icalendar.Calendar, label: str) -> None:
        """Give TZIDs the definition of *this* calendar, not the one icalendar cached from an earlier feed."""
        defined: dict[str, Any] = {}
        for vtimezone in calendar.walk("VTIMEZONE"):
            tzid = _text(vtimezone.get("TZID"))
            if tzid:
                defined.setdefault(tzid, vtimezone)
                defined.setdefault(tzid.strip("/"), vtimezone)
        built: dict[str, dt.tzinfo | None] = {}

        def fresh(tzid: str) -> dt.tzinfo | None:
            if tzid not in built:
                vtimezone = defined.get(tzid) or defined.get(tzid.strip("/"))
                zone = None
                if vtimezone is not None:
                    try:
                        zone = tzp.create_timezone(vtimezone)
                    except Exception as exc:
                        self.reject(
                            f"{label}: VTIMEZONE {tzid!r} cannot be used ({exc}); its times are read as floating",
                            dropped=False,
                            prop="TZID",
                        )
                built[tzid] = zone
            return built[tzid]

        def rebind(value: Any, tzid: str) -> Any:
            if isinstance(value, tuple):
                return tuple(rebind(part, tzid) for part in value)
            if isinstance(value, dt.datetime) and value.tzinfo is not None and _zone_key(value.tzinfo) is None:
                zone = fresh(tzid)
                return value.replace(tzinfo=zone)  # zone None → floating, as in a fresh process
            return value

        for event in calendar.walk("VEVENT"):
            for name in list(event.keys()):
                values = event[name]
                for value in values if isinstance(values, list) else [values]:
                    params = getattr(value, "params", None) or {}
                    tzid = params.get("TZID")
                    if not tzid:
                        continue
                    tzid = str(tzid)
                    if hasattr(value, "dts"):
                        for item in value.dts:
                            if hasattr(item, "dt"):
                                item.dt = rebind(item.dt, tzid)
                    elif hasattr(value, "dt") and not isinstance(value, icalendar.prop.vBroken):
                        value.dt = rebind(value.dt, tzid)

    # ---- series level ----------------------------------------------------------------------------------------

    def _series(
        self,
        uid: str,
        uid_generated: bool,
        members: list[tuple[int, icalendar.Event, _Block | None]],
        context: _CalendarContext,
    ) -> None:
        blocks = [block for _, _, block in members]
        first_block = next((block for block in blocks if block is not None), None)
        ok = True
        for _, event, block in members:
            ok = self._check_event(uid, event, block, blocks) and ok
        if not ok:
            return
        # The series as recurring-ical-events' query would build it, times moved into X-WR-TIMEZONE as its
        # of() does, but one UID at a time and keeping the VEVENT as written next to each component.
        walk = context.walker.walk_event if context.walker else lambda event: event
        adapters = [_Adapter(walk(event), event) for _, event, _ in members]
        try:
            occurrences = list(_Series(adapters).between(self.query_start, self.query_end))
        except Exception as exc:
            prop = _property_of_expansion_error(exc)
            line = (first_block.props.get(prop) if prop and first_block else None) or (
                first_block.line if first_block else None
            )
            scope = f"series of {len(members)} VEVENTs skipped" if len(members) > 1 else "event skipped"
            self.reject(
                f"recurrence expansion failed ({type(exc).__name__}: {exc}); {scope}",
                dropped=True,
                uid=uid,
                prop=prop,
                line=line,
                blocks=blocks,
            )
            return
        recurs = any("RRULE" in event or "RDATE" in event or "RECURRENCE-ID" in event for _, event, _ in members)
        core = next((event for _, event, _ in members if "RECURRENCE-ID" not in event), None)
        rows = []
        for occurrence in occurrences:
            try:
                rows.append(self._row(uid, uid_generated, occurrence, core, recurs, context))
            except Exception as exc:
                self.reject(
                    f"occurrence at {occurrence.start} could not be converted ({type(exc).__name__}: {exc}); "
                    "occurrence skipped",
                    dropped=True,
                    uid=uid,
                    line=first_block.line if first_block else None,
                    blocks=blocks,
                )
        if len(rows) > MAX_OCCURRENCES_PER_SERIES:
            rows.sort(key=lambda row: row["starts_at"])
            self.reject(
                f"{len(rows)} occurrences in the window; kept the first {MAX_OCCURRENCES_PER_SERIES}",
                dropped=True,
                uid=uid,
                prop="RRULE",
                blocks=blocks,
            )
            rows = rows[:MAX_OCCURRENCES_PER_SERIES]
        self.rows.extend(rows)

    def _check_event(
        self, uid: str, event: icalendar.Event, block: _Block | None, series: Sequence[_Block | None]
    ) -> bool:
        """Drop broken non-structural properties (with a reject); False when the series must be rejected."""
        scope = "series of VEVENTs with this UID skipped" if len(series) > 1 else "event skipped"
        failed: set[str] = set()

        def fail(prop: str, reason: str) -> None:
            failed.add(prop)
            self.prop_reject(uid, block, prop, f"{reason}; {scope}", series=series)

        for prop, message in getattr(event, "errors", None) or []:
            name = (prop or _name_from_error(message) or "?").upper()
            if name in _STRUCTURAL:
                if name not in failed:
                    fail(name, f"unreadable value ({message})")
            else:
                event.pop(name, None)
                self.prop_reject(uid, block, name, f"unreadable value ({message}); property ignored")

        start = event.get("DTSTART")
        if "DTSTART" not in failed:
            if start is None:
                what = "RECURRENCE-ID override" if "RECURRENCE-ID" in event else "event"
                fail("DTSTART", f"{what} has no DTSTART")
            elif isinstance(start, list):
                fail("DTSTART", f"DTSTART appears {len(start)} times")
            else:
                value = _safe_dt(start)
                if not isinstance(value, dt.date):
                    fail("DTSTART", f"not a date or date-time ({_raw(start)!r})")
        for name in ("DTEND", "DURATION"):
            prop = event.get(name)
            if prop is None:
                continue
            expected = dt.timedelta if name == "DURATION" else dt.date
            reason = None
            if isinstance(prop, list):
                reason = f"{name} appears {len(prop)} times"
            elif not isinstance(_safe_dt(prop), expected):
                reason = f"unreadable value {_raw(prop)!r}"
            if reason:
                event.pop(name, None)
                self.prop_reject(uid, block, name, f"{reason}; property ignored, end computed without it")
        rid = event.get("RECURRENCE-ID")
        if rid is not None and "RECURRENCE-ID" not in failed:
            if isinstance(rid, list):
                fail("RECURRENCE-ID", f"RECURRENCE-ID appears {len(rid)} times")
            elif not isinstance(_safe_dt(rid), dt.date):
                fail("RECURRENCE-ID", f"unreadable value {_raw(rid)!r}")
        rules = event.get("RRULE")
        for rule in rules if isinstance(rules, list) else [rules] if rules is not None else []:
            if "RRULE" in failed or not isinstance(rule, icalendar.prop.vRecur):
                continue
            freq = rule.get("FREQ")
            freq = str(freq[0] if isinstance(freq, list) and freq else freq or "").upper()
            if freq in _REFUSED_FREQ:
                fail("RRULE", f"FREQ={freq} is not supported for events (too many occurrences)")
        return not failed

    # ---- occurrence → row ------------------------------------------------------------------------------------

    def _row(
        self,
        uid: str,
        uid_generated: bool,
        occurrence: _Occurrence,
        core: icalendar.Event | None,
        recurs: bool,
        context: _CalendarContext,
    ) -> dict:
        source = occurrence.event
        start, end = occurrence.span_as_written
        swapped = occurrence.swapped
        rid_text = _id_time(occurrence.recurrence_id)

        all_day = not isinstance(start, dt.datetime)
        extra: dict[str, Any] = {"uid": uid, "uid_generated": uid_generated}
        if all_day:
            start_local = dt.datetime.combine(start, dt.time())
            starts_at = start_local.replace(tzinfo=self.default_zone).astimezone(UTC)
            timezone = None
            tz_rule = "all-day"
            start_zone: dt.tzinfo | None = None
        else:
            start_zone = start.tzinfo
            start_local = start.replace(tzinfo=None)
            if start_zone is None:
                starts_at = start.replace(tzinfo=self.default_zone).astimezone(UTC)
                timezone = None
            else:
                starts_at = start.astimezone(UTC)
                timezone = _iana_name(start)
            tz_rule = self._tz_rule(source, start, context)
        start_date = start_local.date()
        ends_at, end_date = self._end(end, start, all_day, start_zone)

        tzid = (getattr(source.get("DTSTART"), "params", None) or {}).get("TZID")
        if tzid:
            extra["tzid"] = str(tzid)
        extra["tz_rule"] = tz_rule
        value_param = str((getattr(source.get("DTSTART"), "params", None) or {}).get("VALUE", "")).upper()
        if value_param == "DATE" and not all_day:
            extra["value_date_with_time"] = True  # DTSTART;VALUE=DATE:20110804T120000 read as a (floating) time
        if swapped:
            extra["end_before_start"] = True

        status_raw = _text(source.get("STATUS"))
        status_upper = (status_raw or "").upper()
        status = "cancelled" if status_upper == "CANCELLED" or context.method == "CANCEL" else "scheduled"
        extra["status_raw"] = status_raw
        sequence = _int(source.get("SEQUENCE"))  # as written (recurring-ical-events puts the series maximum)
        if sequence is not None:
            extra["sequence"] = sequence
        rid_prop = source.get("RECURRENCE-ID")
        if rid_prop is not None and not isinstance(rid_prop, list):
            extra["recurrence_override"] = True
            range_param = (getattr(rid_prop, "params", None) or {}).get("RANGE")
            if range_param:
                extra["recurrence_range"] = str(range_param)
        if core is not None and recurs:
            rules = core.get("RRULE")
            texts = [_rule_text(rule) for rule in (rules if isinstance(rules, list) else [rules] if rules else [])]
            if texts:
                extra["rrule"] = texts[0] if len(texts) == 1 else texts
        if context.method:
            extra["method"] = context.method
        if context.calname:
            extra["x_wr_calname"] = context.calname
        if context.x_wr_timezone:
            extra["x_wr_timezone"] = context.x_wr_timezone
        if context.index is not None:
            extra["calendar_index"] = context.index

        location = _text(source.get("LOCATION"), lines=", ")
        url = _text(source.get("URL"))
        venue_name = location
        location_is_url = bool(location and _URL.match(location))
        if location_is_url:
            extra["location_url"] = location
            venue_name = None
        conference = any(name in source for name in ("X-GOOGLE-CONFERENCE", "CONFERENCE"))
        url_only = bool(url and not location and re.match(r"^https?://", url, re.IGNORECASE))
        is_online = bool(conference or location_is_url or url_only)

        latitude, longitude, address = self._geo(uid, source)
        categories = _categories(source.get("CATEGORIES"))
        if len(categories) > 1:
            extra["categories"] = categories

        return {
            "source": f"ics:{self.feed}",
            "source_id": f"{self.feed}:{uid}:{rid_text}",
            "title": _text(source.get("SUMMARY")),
            "summary": None,
            "description": _text(source.get("DESCRIPTION"), multiline=True),
            "url": url,
            "status": status,
            "starts_at": starts_at,
            "ends_at": ends_at,
            "timezone": timezone,
            "start_local": start_local,
            "start_date": start_date,
            "end_date": end_date,
            "all_day": all_day,
            "is_online": is_online,
            "venue_name": venue_name,
            "address": address,
            "city": None,
            "region": None,
            "postal_code": None,
            "country": None,
            "latitude": latitude,
            "longitude": longitude,
            "organizer": _organizer(source.get("ORGANIZER")),
            "category": categories[0] if categories else None,
            "is_free": None,
            "currency": None,
            "min_price": None,
            "max_price": None,
            "series_id": uid if recurs else None,
            "recurrence_id": rid_text if recurs else None,
            "source_updated_at": _updated_at(source),
            "extra": extra,
        }

    def _tz_rule(self, source: icalendar.Event, start: dt.datetime, context: _CalendarContext) -> str:
        prop = source.get("DTSTART")
        written = _safe_dt(prop)
        tzid = (getattr(prop, "params", None) or {}).get("TZID")
        if start.tzinfo is None:
            return "unknown-tzid-default-tz" if tzid else "floating-default-tz"
        moved_by_x_wr = isinstance(written, dt.datetime) and (
            written.tzinfo is None or _zone_key(written.tzinfo) == "UTC"
        )
        if context.x_wr_timezone and moved_by_x_wr:
            return "x-wr-timezone"
        if tzid:
            tzid = str(tzid)
            if _zone_key(start.tzinfo) is None:
                return "vtimezone"
            if tzid.strip("/") in WINDOWS_TO_OLSON:
                return "windows-tzid"
            return "tzid"
        return "utc"

    def _end(
        self, end: Any, start: Any, all_day: bool, start_zone: dt.tzinfo | None
    ) -> tuple[dt.datetime | None, dt.date | None]:
        if end is None:
            return None, None
        if not isinstance(end, dt.datetime):  # a date
            ends_at = dt.datetime.combine(end, dt.time()).replace(tzinfo=self.default_zone).astimezone(UTC)
            if all_day and isinstance(start, dt.date) and end > start:
                return ends_at, end - dt.timedelta(days=1)
            return ends_at, end
        if end.tzinfo is None:
            ends_at = end.replace(tzinfo=self.default_zone).astimezone(UTC)
            return ends_at, end.date()
        ends_at = end.astimezone(UTC)
        local = end.astimezone(start_zone) if start_zone is not None else end
        return ends_at, local.date()

    def _geo(self, uid: str, event: icalendar.Event) -> tuple[Any, Any, Any]:
        latitude = longitude = address = None
        geo = event.get("GEO")
        if geo is not None:
            try:
                latitude, longitude = float(geo.latitude), float(geo.longitude)
            except (AttributeError, TypeError, ValueError):
                latitude = longitude = None
        apple = event.get("X-APPLE-STRUCTURED-LOCATION")
        if apple is not None and not isinstance(apple, list):
            raw_address = (getattr(apple, "params", None) or {}).get("X-ADDRESS")
            if raw_address:
                address = ", ".join(part.strip() for part in str(raw_address).split("\\n") if part.strip()) or None
            if latitude is None:
                match = re.match(r"^geo:\s*(-?[\d.]+)\s*,\s*(-?[\d.]+)", str(apple), re.IGNORECASE)
                if match:
                    latitude, longitude = float(match.group(1)), float(match.group(2))
        if latitude is not None and (
            not (-90 <= latitude <= 90) or not (-180 <= longitude <= 180) or (latitude == 0 and longitude == 0)
        ):
            self.reject(
                f"coordinates {latitude},{longitude} are out of range or 0,0; ignored",
                dropped=False,
                uid=uid,
                prop="GEO",
            )
            latitude = longitude = None
        return latitude, longitude, address

    def _dedupe_and_sort(self) -> None:
        best: dict[str, dict] = {}
        order: list[str] = []
        for row in self.rows:
            key = row["source_id"]
            if key not in best:
                best[key] = row
                order.append(key)
                continue
            kept = max(best[key], row, key=_row_rank)
            dropped = row if kept is best[key] else best[key]
            best[key] = kept
            self.reject(
                f"duplicate occurrence {key} (starts {dropped['starts_at'].isoformat()} and "
                f"{kept['starts_at'].isoformat()}); kept the one with the highest SEQUENCE/LAST-MODIFIED",
                dropped=False,
                uid=kept["extra"]["uid"],
                prop="UID",
            )
        self.rows = sorted((best[key] for key in order), key=lambda row: (row["starts_at"], row["source_id"]))


@dataclass
class _CalendarContext:
    method: str | None
    calname: str | None
    x_wr_timezone: str | None
    walker: x_wr_timezone.UTCChangingWalker | None  # moves floating and UTC times into X-WR-TIMEZONE
    index: int | None


class _Adapter(recurring_ical_events.EventAdapter):
    """recurring-ical-events' view of a VEVENT (times moved into X-WR-TIMEZONE), with the VEVENT as written."""

    def __init__(self, component: icalendar.Event, written: icalendar.Event):
        super().__init__(component)
        self.written = written

    @property
    def recurrence_id(self) -> Any:
        return self._component["RECURRENCE-ID"].dt

    @property
    def swapped(self) -> bool:
        """Whether the end is before DTSTART (recurring-ical-events then swaps them in its ``span``)."""
        start, end = make_comparable((self.raw_start, self.raw_end))
        return start > end


class _Occurrence(recurring_ical_events.Occurrence):
    """An occurrence with the VEVENT it comes from and its recurrence id: the start it had in its series.

    An override yielded as it is has its RECURRENCE-ID. A start of the rule after a ``RANGE=THISANDFUTURE``
    override is moved by that override (``move_recurrences_by``): its recurrence id is the start before the move.
    """

    def __init__(self, adapter: _Adapter, start: Any = None, end: Any = None, sequence: int = -1):
        super().__init__(adapter, start, end, sequence)
        self.event = adapter.written
        self.swapped = adapter.swapped
        if start is None:
            self.recurrence_id = adapter.recurrence_id
        elif adapter.is_modification():
            self.recurrence_id = self.start - adapter.move_recurrences_by
        else:
            self.recurrence_id = self.span_as_written[0]

    @property
    def span_as_written(self) -> tuple[Any, Any]:
        """(start, end) in the feed's order (recurring-ical-events orders them)."""
        return (self.end, self.start) if self.swapped else (self.start, self.end)


class _Series(recurring_ical_events.Series):
    """recurring-ical-events' series of one UID, yielding :class:`_Occurrence`."""

    def occurrence(self, adapter: _Adapter, start: Any = None, end: Any = None) -> _Occurrence:
        return _Occurrence(adapter, start, end, sequence=self.sequence)


# --------------------------------------------------------------------------------------------------------------
# Small helpers


def _row_rank(row: dict) -> tuple:
    updated = row["source_updated_at"] or dt.datetime.min.replace(tzinfo=UTC)
    return (row["extra"].get("sequence", -1), updated)


def _safe_dt(prop: Any) -> Any:
    try:
        return prop.dt
    except Exception:
        return None


def _raw(prop: Any) -> str:
    for attribute in ("to_ical",):
        try:
            value = getattr(prop, attribute)()
            return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
        except Exception:
            pass
    return str(prop)


def _text(value: Any, *, multiline: bool = False, lines: str = " ") -> str | None:
    """A property as clean text (first value when repeated); None when empty.

    Whitespace runs become one space; line breaks are kept (``multiline``) or joined with ``lines``."""
    if value is None:
        return None
    if isinstance(value, list):
        value = value[0] if value else None
        if value is None:
            return None
    try:
        text = str(value)
    except Exception:
        return None
    text = unicodedata.normalize("NFC", text.replace("\r\n", "\n").replace("\r", "\n"))
    if not multiline:
        parts = (" ".join(part.split()) for part in text.split("\n"))
        text = lines.join(part for part in parts if part)
    text = text.strip()
    return text or None


def _int(value: Any) -> int | None:
    if isinstance(value, list):
        value = value[0] if value else None
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _rule_text(rule: Any) -> str:
    try:
        return rule.to_ical().decode("utf-8", "replace")
    except Exception:
        return str(rule)


def _categories(value: Any) -> list[str]:
    result: list[str] = []
    for item in value if isinstance(value, list) else [value] if value is not None else []:
        cats = getattr(item, "cats", None)
        for cat in cats if cats is not None else [item]:
            text = _text(cat)
            if text:
                result.append(text)
    return result


def _organizer(value: Any) -> str | None:
    if isinstance(value, list):
        value = value[0] if value else None
    if value is None:
        return None
    name = _text((getattr(value, "params", None) or {}).get("CN"))
    if name:
        return name.strip('"') or None
    text = _text(value)
    if text and text.lower().startswith("mailto:"):
        text = text[len("mailto:") :].strip()
    return text or None


def _updated_at(event: icalendar.Event) -> dt.datetime | None:
    for name in ("LAST-MODIFIED", "DTSTAMP"):
        prop = event.get(name)
        if isinstance(prop, list):
            prop = prop[0] if prop else None
        value = _safe_dt(prop) if prop is not None else None
        if isinstance(value, dt.datetime):
            return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        if isinstance(value, dt.date):
            return dt.datetime.combine(value, dt.time(), tzinfo=UTC)
    return None


def _generated_uid(event: icalendar.Event) -> str:
    start = event.get("DTSTART")
    if isinstance(start, list):
        start = start[0] if start else None
    value = _safe_dt(start) if start is not None else None
    tzid = (getattr(start, "params", None) or {}).get("TZID", "")
    start_text = f"{tzid}:{value.isoformat()}" if isinstance(value, dt.date) else (_raw(start) if start else "")
    key = "\x1f".join([_text(event.get("SUMMARY")) or "", start_text, _text(event.get("LOCATION")) or ""])
    return "generated-" + hashlib.sha1(key.encode("utf-8")).hexdigest()[:16]


def _name_from_error(message: str) -> str | None:
    """Property name from an icalendar complaint about an unparsable content line ('DTSTART;;VALUE=…')."""
    match = re.search(r"'([A-Za-z0-9-]+)[;:]", message)
    return match.group(1).upper() if match else None


def _property_of_expansion_error(exc: Exception) -> str | None:
    name = type(exc).__name__
    if name == "BadRuleStringFormat":
        return "RRULE"
    if name == "PeriodEndBeforeStart":
        return "RDATE"
    if isinstance(exc, KeyError) and exc.args:
        return str(exc.args[0]).upper()
    match = re.search(r"broken property '([A-Za-z0-9-]+)'", str(exc))
    return match.group(1).upper() if match else None


def _id_time(value: Any) -> str:
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            return value.isoformat()
        return value.astimezone(UTC).replace(tzinfo=None).isoformat() + "Z"
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def _zone_key(zone: dt.tzinfo | None) -> str | None:
    """The IANA key of a zoneinfo/pytz zone, None for custom (VTIMEZONE) zones."""
    key = getattr(zone, "key", None) or getattr(zone, "zone", None)
    return key if isinstance(key, str) and key else None


@functools.cache
def _iana_names() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones()) | {"UTC"}


def _iana_from_tzid(tzid: str) -> str | None:
    """An IANA name for a TZID written as an IANA or Windows name (X-WR-TIMEZONE), else None."""
    cleaned = tzid.strip().strip('"').strip("/")
    for candidate in (cleaned, WINDOWS_TO_OLSON.get(cleaned)):
        if candidate and candidate in _iana_names():
            try:
                zoneinfo.ZoneInfo(candidate)
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                continue
            return candidate
    return None


def _iana_name(value: dt.datetime) -> str | None:
    """IANA name of an aware datetime's zone; for a custom VTIMEZONE only when the offsets agree."""
    zone = value.tzinfo
    key = _zone_key(zone)
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
        if name and name in _iana_names():
            try:
                if value.replace(tzinfo=zoneinfo.ZoneInfo(name)).utcoffset() == offset:
                    return name
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                continue
    return None
