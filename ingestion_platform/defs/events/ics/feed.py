"""One payload → its calendars → the series of each calendar."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections import defaultdict
from typing import NoReturn

import icalendar
import x_wr_timezone

from ingestion_platform.defs.events.ics.layout import Block, Layout
from ingestion_platform.defs.events.ics.rejects import Rejects
from ingestion_platform.defs.events.ics.rows import CalendarContext, Feed, dedupe_and_sort
from ingestion_platform.defs.events.ics.series import series_rows
from ingestion_platform.defs.events.ics.values import clean, generated_uid, name_from_error, text
from ingestion_platform.defs.events.ics.zones import iana_from_tzid, rebind_custom_timezones
from ingestion_platform.lib.errors import RecordError


class FeedReader:
    """Reads one payload: rows of every calendar in it, rejects in ``feed.rejects``; raises RecordError when
    the payload is not a calendar at all."""

    def __init__(self, feed: str, window_start: dt.date, window_end: dt.date, default_zone: zoneinfo.ZoneInfo):
        self.feed = Feed(feed, default_zone, Rejects(feed))
        # Midnights, not dates: with date arguments recurring-ical-events 3.8 widens the span by the event's
        # duration with ``date - timedelta``, which drops the hours, so an occurrence that starts the evening
        # before the window and runs into it is missed. Naive midnights are the same local-day window.
        self.window = (dt.datetime.combine(window_start, dt.time()), dt.datetime.combine(window_end, dt.time()))
        self.rows: list[dict] = []

    def fail(self, reason: str, *, line: int | None = None) -> NoReturn:
        """The payload is not a readable calendar: no rows at all."""
        field = f"line {line}" if line is not None else None
        raise RecordError(clean(reason, limit=300), request=self.feed.name, field=field)

    def read(self, body: bytes) -> list[dict]:
        content = self._decode(body)
        nul = content.find("\x00")
        if nul >= 0:  # never in iCalendar text (RFC 5545 allows no control character but HTAB)
            line = content.count("\n", 0, nul) + 1
            self.fail(f"cannot parse binary data as iCalendar (NUL character at offset {nul})", line=line)
        self.layout = Layout.of(content)
        if not content.strip():
            self.fail("empty body, no iCalendar data")
        if content.lstrip()[:1] == "<":
            self.fail("body looks like HTML/XML, not iCalendar", line=1)
        try:
            components = icalendar.Calendar.from_ical(content, multiple=True)
        except Exception as exc:
            line = self.layout.locate_error(str(exc))
            detail = f" ('{self.layout.physical[line - 1]}')" if line is not None else ""
            self.fail(f"icalendar cannot parse the file{detail}: {type(exc).__name__}: {exc}", line=line)
        calendars = [c for c in components if c.name == "VCALENDAR"]
        loose = [c for c in components if c.name in ("VEVENT", "VTIMEZONE")]
        if any(c.name == "VEVENT" for c in loose):
            # Bare VEVENTs with no VCALENDAR around them: read them as one calendar rather than lose them.
            wrapper = icalendar.Calendar()
            wrapper.subcomponents = loose
            calendars.append(wrapper)
            count = sum(c.name == "VEVENT" for c in loose)
            self.feed.rejects.add(f"{count} VEVENT(s) outside any VCALENDAR; read as if in one calendar", dropped=False)
        if not calendars:
            problem, line = self.layout.structure_problem()
            self.fail(f"no calendar could be read: {problem}", line=line)
        for index, calendar in enumerate(calendars):
            label = f"VCALENDAR #{index + 1}" if len(calendars) > 1 else "VCALENDAR"
            try:
                self._calendar(calendar, label, index if len(calendars) > 1 else None)
            except Exception as exc:  # defensive: a library surprise costs this calendar, not the feed
                reason = f"{label}: unexpected {type(exc).__name__}: {exc}; calendar skipped"
                self.feed.rejects.add(reason, dropped=True)
        return dedupe_and_sort(self.rows, self.feed.rejects)

    def _decode(self, body: bytes) -> str:
        if isinstance(body, str):  # be lenient with callers that already decoded
            return body.removeprefix("\ufeff")
        if body is None:
            self.fail("no body")
        data = bytes(body)
        try:
            return data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            self.feed.rejects.add(
                f"body is not UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start}); decoded as Windows-1252",
                dropped=False,
                line=data[: exc.start].count(b"\n") + 1,
            )
            return data.decode("cp1252", errors="replace")

    def _calendar(self, calendar: icalendar.Calendar, label: str, index: int | None) -> None:
        rejects = self.feed.rejects
        for component in calendar.walk():
            if component.name in ("VCALENDAR", "VTIMEZONE", "STANDARD", "DAYLIGHT"):
                for prop, message in getattr(component, "errors", None) or []:
                    name = (prop or name_from_error(message) or "?").upper()
                    rejects.add(f"{label} {component.name}: {message}; ignored", dropped=False, prop=name)
        vevents = list(calendar.walk("VEVENT"))
        blocks = [self.layout.block_of(event) for event in vevents]
        scale = str(calendar.get("CALSCALE", "GREGORIAN")).upper()
        if scale != "GREGORIAN":
            rejects.add(f"{label}: CALSCALE {scale} is not supported; calendar skipped", dropped=True, prop="CALSCALE")
            return
        if not vevents:
            return
        xwr = self._x_wr_timezone(calendar, label)
        rebind_custom_timezones(calendar, label, rejects)
        walker = x_wr_timezone.UTCChangingWalker(zoneinfo.ZoneInfo(xwr)) if xwr else None
        context = CalendarContext(
            method=str(calendar.get("METHOD") or "").strip().upper() or None,
            calname=text(calendar.get("X-WR-CALNAME")),
            x_wr_timezone=xwr,
            to_standard=walker.walk_event if walker else lambda event: event,
            index=index,
        )
        # One series per UID; a VEVENT without UID is a series of its own (as in recurring-ical-events).
        groups: dict[tuple[str, int], list[tuple[icalendar.Event, Block | None]]] = defaultdict(list)
        for position, (event, block) in enumerate(zip(vevents, blocks, strict=True)):
            uid = text(event.get("UID"))
            if uid is None:
                uid = generated_uid(event)
                rejects.generated_uids.add(uid)
                groups[(uid, position)].append((event, block))
            else:
                groups[(uid, -1)].append((event, block))
        for (uid, position), members in groups.items():
            try:
                self.rows += series_rows(self.feed, context, uid, position >= 0, members, self.window)
            except Exception as exc:  # defensive: a library surprise costs this series, not the feed
                series = [block for _, block in members]
                reason = f"unexpected {type(exc).__name__}: {exc}; event skipped"
                first = series[0].line if series[0] else None
                rejects.add(reason, dropped=True, uid=uid, line=first, blocks=series)

    def _x_wr_timezone(self, calendar: icalendar.Calendar, label: str) -> str | None:
        """The calendar's X-WR-TIMEZONE as an IANA name (Windows names mapped); an unknown one is ignored."""
        raw = text(calendar.get("X-WR-TIMEZONE"))
        if raw is None:
            return None
        name = iana_from_tzid(raw)
        if name is None:
            reason = f"{label}: X-WR-TIMEZONE {raw!r} is not a known time zone; ignored"
            self.feed.rejects.add(reason, dropped=False, prop="X-WR-TIMEZONE")
        return name
