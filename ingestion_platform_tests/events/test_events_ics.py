"""iCalendar feed parsing: unit tests on small inline calendars, and a conformance suite over the real
sample files in ``../shared/events/ics`` (read at run time, never copied into the project)."""

from __future__ import annotations

import datetime as dt
import random
import re
import struct
import textwrap
import zlib
import zoneinfo
from pathlib import Path

import icalendar
import pytest
import recurring_ical_events

from ingestion_platform.defs.events.ics import EVENT_COLUMNS, parse_feed
from ingestion_platform.lib.errors import Parsed, RecordError
from ingestion_platform_tests.conftest import SHARED, require_shared

UTC = dt.UTC
BERLIN = zoneinfo.ZoneInfo("Europe/Berlin")
TORONTO = zoneinfo.ZoneInfo("America/Toronto")


def ics(text: str, *, crlf: bool = True) -> bytes:
    """An inline calendar: dedented, CRLF line ends as RFC 5545 asks (unless ``crlf=False``)."""
    lines = textwrap.dedent(text).strip("\n").split("\n")
    return (("\r\n" if crlf else "\n").join(lines) + "\r\n").encode("utf-8")


def parse(body: bytes, start: str, end: str, *, feed: str = "club", **kwargs) -> Parsed[list[dict]]:
    return parse_feed(feed, body, dt.date.fromisoformat(start), dt.date.fromisoformat(end), **kwargs)


def utc(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=UTC)


def by_uid(result: Parsed[list[dict]], uid: str) -> list[dict]:
    return [row for row in result.value if row["extra"]["uid"] == uid]


# ------------------------------------------------------------------------------------------------------------
# Recurrence


def test_exdate_on_several_lines_removes_each_listed_occurrence():
    body = ics("""
        BEGIN:VCALENDAR
        VERSION:2.0
        PRODID:-//Riverside Chess Club//Calendar 1.0//EN
        BEGIN:VEVENT
        UID:chess-night@riverside.example
        DTSTAMP:20240101T120000Z
        SUMMARY:Chess night
        LOCATION:Riverside Library\\, room 2
        DTSTART;TZID=Europe/Berlin:20240305T190000
        DTEND;TZID=Europe/Berlin:20240305T220000
        RRULE:FREQ=WEEKLY;COUNT=6
        EXDATE;TZID=Europe/Berlin:20240312T190000
        EXDATE;TZID=Europe/Berlin:20240319T190000,20240326T190000
        END:VEVENT
        END:VCALENDAR
    """)
    result = parse(body, "2024-03-01", "2024-05-01")

    assert result.rejects == []
    assert [row["start_local"] for row in result.value] == [
        dt.datetime(2024, 3, 5, 19),
        dt.datetime(2024, 4, 2, 19),
        dt.datetime(2024, 4, 9, 19),
    ]
    first, after_dst = result.value[0], result.value[1]
    assert first["starts_at"] == utc(2024, 3, 5, 18) and first["timezone"] == "Europe/Berlin"
    assert after_dst["starts_at"] == utc(2024, 4, 2, 17)  # summer time
    assert first["venue_name"] == "Riverside Library, room 2"
    assert first["series_id"] == "chess-night@riverside.example"
    assert first["recurrence_id"] == "2024-03-05T18:00:00Z"
    assert first["source_id"] == "club:chess-night@riverside.example:2024-03-05T18:00:00Z"
    assert first["extra"]["rrule"] == "FREQ=WEEKLY;COUNT=6"


def test_rdate_adds_occurrences_including_a_period():
    body = ics("""
        BEGIN:VCALENDAR
        VERSION:2.0
        PRODID:-//Harbour Radio//Shows//EN
        BEGIN:VEVENT
        UID:community-hour@harbour.example
        DTSTAMP:20240101T120000Z
        SUMMARY:Community hour (live)
        DTSTART:20240601T160000Z
        DURATION:PT1H
        RDATE:20240615T160000Z,20240622T180000Z
        RDATE;VALUE=PERIOD:20240629T160000Z/PT3H
        END:VEVENT
        END:VCALENDAR
    """)
    result = parse(body, "2024-05-01", "2024-08-01")

    assert result.rejects == []
    assert [(row["starts_at"], row["ends_at"]) for row in result.value] == [
        (utc(2024, 6, 1, 16), utc(2024, 6, 1, 17)),
        (utc(2024, 6, 15, 16), utc(2024, 6, 15, 17)),
        (utc(2024, 6, 22, 18), utc(2024, 6, 22, 19)),
        (utc(2024, 6, 29, 16), utc(2024, 6, 29, 19)),  # the PERIOD's own length
    ]
    assert {row["series_id"] for row in result.value} == {"community-hour@harbour.example"}
    assert all(row["timezone"] == "UTC" and row["extra"]["tz_rule"] == "utc" for row in result.value)


MOVED_SERIES = """
    BEGIN:VCALENDAR
    VERSION:2.0
    PRODID:-//Northside Running Club//Calendar//EN
    BEGIN:VEVENT
    UID:tuesday-run@northside.example
    DTSTAMP:20240201T090000Z
    SEQUENCE:0
    SUMMARY:Tuesday club run
    LOCATION:Northside Park gates
    DTSTART;TZID=America/Toronto:20240305T183000
    DTEND;TZID=America/Toronto:20240305T193000
    RRULE:FREQ=WEEKLY;COUNT=8
    END:VEVENT
    BEGIN:VEVENT
    UID:tuesday-run@northside.example
    DTSTAMP:20240210T090000Z
    SEQUENCE:1
    RECURRENCE-ID;TZID=America/Toronto:20240312T183000
    SUMMARY:Tuesday club run (track session)
    LOCATION:Northside stadium track
    DTSTART;TZID=America/Toronto:20240313T180000
    DTEND;TZID=America/Toronto:20240313T190000
    END:VEVENT
    BEGIN:VEVENT
    UID:tuesday-run@northside.example
    DTSTAMP:20240215T090000Z
    SEQUENCE:2
    RECURRENCE-ID;TZID=America/Toronto:20240319T183000
    STATUS:CANCELLED
    SUMMARY:Tuesday club run
    DTSTART;TZID=America/Toronto:20240319T183000
    DTEND;TZID=America/Toronto:20240319T193000
    END:VEVENT
    BEGIN:VEVENT
    UID:tuesday-run@northside.example
    DTSTAMP:20240220T090000Z
    SEQUENCE:3
    RECURRENCE-ID;RANGE=THISANDFUTURE;TZID=America/Toronto:20240402T183000
    SUMMARY:Tuesday club run (summer time)
    LOCATION:Northside Park gates
    DTSTART;TZID=America/Toronto:20240402T190000
    DTEND;TZID=America/Toronto:20240402T203000
    END:VEVENT
    END:VCALENDAR
"""


def test_recurrence_id_override_moved_and_thisandfuture():
    result = parse(ics(MOVED_SERIES), "2024-03-01", "2024-05-01")

    assert result.rejects == []
    rows = result.value
    assert [(row["start_local"], row["title"]) for row in rows] == [
        (dt.datetime(2024, 3, 5, 18, 30), "Tuesday club run"),
        (dt.datetime(2024, 3, 13, 18, 0), "Tuesday club run (track session)"),  # moved to Wednesday
        (dt.datetime(2024, 3, 19, 18, 30), "Tuesday club run"),  # cancelled, still a row
        (dt.datetime(2024, 3, 26, 18, 30), "Tuesday club run"),
        (dt.datetime(2024, 4, 2, 19, 0), "Tuesday club run (summer time)"),  # THISANDFUTURE: +30 min …
        (dt.datetime(2024, 4, 9, 19, 0), "Tuesday club run (summer time)"),  # … for every later one
        (dt.datetime(2024, 4, 16, 19, 0), "Tuesday club run (summer time)"),
        (dt.datetime(2024, 4, 23, 19, 0), "Tuesday club run (summer time)"),
    ]
    assert rows[4]["ends_at"] - rows[4]["starts_at"] == dt.timedelta(minutes=90)
    assert rows[5]["ends_at"] - rows[5]["starts_at"] == dt.timedelta(minutes=90)
    # the id is the occurrence's original start, also for occurrences shifted by THISANDFUTURE
    assert rows[1]["recurrence_id"] == "2024-03-12T22:30:00Z"
    assert rows[4]["recurrence_id"] == "2024-04-02T22:30:00Z"
    assert rows[5]["recurrence_id"] == "2024-04-09T22:30:00Z"
    assert rows[5]["extra"]["recurrence_range"] == "THISANDFUTURE"
    assert len({row["source_id"] for row in rows}) == len(rows)
    assert {row["series_id"] for row in rows} == {"tuesday-run@northside.example"}
    assert rows[1]["venue_name"] == "Northside stadium track"


def test_cancelled_occurrence_is_a_row_with_status_cancelled():
    result = parse(ics(MOVED_SERIES), "2024-03-18", "2024-03-21")

    [row] = result.value
    assert row["status"] == "cancelled"
    assert row["extra"]["status_raw"] == "CANCELLED"
    assert row["source_id"] == "club:tuesday-run@northside.example:2024-03-19T22:30:00Z"
    assert row["extra"]["sequence"] == 2


def test_ids_are_stable_between_fetches_and_windows():
    wide = parse(ics(MOVED_SERIES), "2024-03-01", "2024-05-01")
    narrow = parse(ics(MOVED_SERIES, crlf=False), "2024-04-08", "2024-04-10")
    assert [row["source_id"] for row in narrow.value] == [
        row["source_id"] for row in wide.value if row["start_date"] == dt.date(2024, 4, 9)
    ]


def test_tentative_and_method_cancel():
    body = ics("""
        BEGIN:VCALENDAR
        VERSION:2.0
        PRODID:-//Town Hall//Agenda//EN
        METHOD:CANCEL
        BEGIN:VEVENT
        UID:budget-hearing@townhall.example
        DTSTAMP:20240301T100000Z
        SUMMARY:Budget hearing
        STATUS:TENTATIVE
        DTSTART:20240320T230000Z
        DTEND:20240321T010000Z
        END:VEVENT
        END:VCALENDAR
    """)
    [row] = parse(body, "2024-03-20", "2024-03-21").value
    assert row["status"] == "cancelled"
    assert row["extra"]["status_raw"] == "TENTATIVE" and row["extra"]["method"] == "CANCEL"

    [tentative] = parse(body.replace(b"METHOD:CANCEL\r\n", b""), "2024-03-20", "2024-03-21").value
    assert tentative["status"] == "scheduled" and tentative["extra"]["status_raw"] == "TENTATIVE"
    assert tentative["end_date"] == dt.date(2024, 3, 21)  # a UTC event: local days are UTC days


# ------------------------------------------------------------------------------------------------------------
# Time zones


def test_windows_zone_name_maps_to_iana():
    body = ics("""
        BEGIN:VCALENDAR
        VERSION:2.0
        PRODID:Microsoft Exchange Server 2010
        BEGIN:VEVENT
        UID:040000008200E00074C5B7101A82E00800000000A0B1C2D3E4F5@example.com
        DTSTAMP:20240110T081500Z
        SUMMARY:Quarterly partner meeting
        ORGANIZER;CN="Meyer, Anna":mailto:anna.meyer@example.com
        DTSTART;TZID="W. Europe Standard Time":20240115T093000
        DTEND;TZID="W. Europe Standard Time":20240115T110000
        END:VEVENT
        BEGIN:VEVENT
        UID:040000008200E00074C5B7101A82E00800000000F6E5D4C3B2A1@example.com
        DTSTAMP:20240110T081500Z
        SUMMARY:Summer planning
        ORGANIZER:mailto:planning@example.com
        DTSTART;TZID=W. Europe Standard Time:20240715T093000
        DTEND;TZID=W. Europe Standard Time:20240715T110000
        END:VEVENT
        END:VCALENDAR
    """)
    winter, summer = parse(body, "2024-01-01", "2024-12-31").value

    assert winter["timezone"] == summer["timezone"] == "Europe/Berlin"
    assert winter["starts_at"] == utc(2024, 1, 15, 8, 30) and summer["starts_at"] == utc(2024, 7, 15, 7, 30)
    assert winter["start_local"] == dt.datetime(2024, 1, 15, 9, 30)
    assert winter["extra"]["tz_rule"] == "windows-tzid"
    assert winter["organizer"] == "Meyer, Anna" and summer["organizer"] == "planning@example.com"
    assert winter["series_id"] is None and winter["recurrence_id"] is None


def test_x_wr_timezone_only():
    body = ics("""
        BEGIN:VCALENDAR
        VERSION:2.0
        PRODID:-//Google Inc//Google Calendar 70.9054//EN
        X-WR-CALNAME:Lakeside Makerspace
        X-WR-TIMEZONE:America/Vancouver
        BEGIN:VEVENT
        UID:open-shop-1@lakeside.example
        DTSTAMP:20240401T000000Z
        SUMMARY:Open shop
        DTSTART:20240410T180000
        DTEND:20240410T210000
        END:VEVENT
        BEGIN:VEVENT
        UID:laser-intro@lakeside.example
        DTSTAMP:20240401T000000Z
        SUMMARY:Laser cutter introduction
        DTSTART:20240412T020000Z
        DTEND:20240412T030000Z
        END:VEVENT
        END:VCALENDAR
    """)
    floating, zulu = parse(body, "2024-04-01", "2024-05-01").value

    assert floating["timezone"] == zulu["timezone"] == "America/Vancouver"
    assert floating["starts_at"] == utc(2024, 4, 11, 1) and floating["start_local"] == dt.datetime(2024, 4, 10, 18)
    # a UTC time is shown in the calendar's zone: the local date is the 11th, not the 12th
    assert zulu["starts_at"] == utc(2024, 4, 12, 2) and zulu["start_date"] == dt.date(2024, 4, 11)
    assert floating["extra"]["tz_rule"] == zulu["extra"]["tz_rule"] == "x-wr-timezone"
    assert floating["extra"]["x_wr_calname"] == "Lakeside Makerspace"


def test_unknown_x_wr_timezone_is_rejected_and_ignored():
    body = ics("""
        BEGIN:VCALENDAR
        VERSION:2.0
        PRODID:-//Lakeside Makerspace//EN
        X-WR-TIMEZONE:Mars/Olympus_Mons
        BEGIN:VEVENT
        UID:open-shop-2@lakeside.example
        SUMMARY:Open shop
        DTSTART:20240410T180000
        END:VEVENT
        END:VCALENDAR
    """)
    result = parse(body, "2024-04-01", "2024-05-01")
    [row] = result.value
    assert row["timezone"] is None and row["extra"]["tz_rule"] == "floating-default-tz"
    [reject] = result.rejects
    assert "X-WR-TIMEZONE" in reject.message and "Mars/Olympus_Mons" in reject.message


def test_floating_time_uses_default_tz_for_the_instant_only():
    body = ics("""
        BEGIN:VCALENDAR
        VERSION:2.0
        PRODID:-//Westend Choir//EN
        BEGIN:VEVENT
        UID:spring-concert@westend-choir.example
        DTSTAMP:20240301T000000Z
        SUMMARY:Spring concert
        LOCATION:St. Mark's Hall
        DTSTART:20240420T193000
        DTEND:20240420T213000
        END:VEVENT
        END:VCALENDAR
    """)
    [row] = parse(body, "2024-04-20", "2024-04-21").value
    assert row["timezone"] is None
    assert row["start_local"] == dt.datetime(2024, 4, 20, 19, 30) and row["start_date"] == dt.date(2024, 4, 20)
    assert row["starts_at"] == utc(2024, 4, 20, 23, 30)  # read in America/Toronto (EDT)
    assert row["ends_at"] == utc(2024, 4, 21, 1, 30) and row["end_date"] == dt.date(2024, 4, 20)
    assert row["extra"]["tz_rule"] == "floating-default-tz"
    # as written in the id, so that the id does not depend on default_tz
    assert row["source_id"] == "club:spring-concert@westend-choir.example:2024-04-20T19:30:00"

    [paris] = parse(body, "2024-04-20", "2024-04-21", default_tz="Europe/Paris").value
    assert paris["starts_at"] == utc(2024, 4, 20, 17, 30) and paris["source_id"] == row["source_id"]


def test_tzid_without_vtimezone_is_floating():
    body = ics("""
        BEGIN:VCALENDAR
        VERSION:2.0
        PRODID:Microsoft Exchange Server 2010
        BEGIN:VEVENT
        UID:masked-1@example.com
        SUMMARY:Team lunch
        DTSTART;TZID="tzone://Microsoft/Custom":20240325T120000
        DTEND;TZID="tzone://Microsoft/Custom":20240325T130000
        END:VEVENT
        END:VCALENDAR
    """)
    [row] = parse(body, "2024-03-25", "2024-03-26").value
    assert row["timezone"] is None and row["extra"]["tz_rule"] == "unknown-tzid-default-tz"
    assert row["extra"]["tzid"] == "tzone://Microsoft/Custom"
    assert row["starts_at"] == utc(2024, 3, 25, 16)


CUSTOM_ZONE = """
    BEGIN:VCALENDAR
    VERSION:2.0
    PRODID:Microsoft Exchange Server 2010
    BEGIN:VTIMEZONE
    TZID:Customized Time Zone
    BEGIN:STANDARD
    DTSTART:16010101T000000
    TZOFFSETFROM:{offset}
    TZOFFSETTO:{offset}
    END:STANDARD
    END:VTIMEZONE
    BEGIN:VEVENT
    UID:{uid}
    SUMMARY:Site visit
    DTSTART;TZID=Customized Time Zone:20240510T100000
    DTEND;TZID=Customized Time Zone:20240510T110000
    END:VEVENT
    END:VCALENDAR
"""


def test_custom_vtimezone_is_read_from_each_feed_not_from_icalendars_process_cache():
    plus_three = ics(CUSTOM_ZONE.format(offset="+0300", uid="visit-a@example.com"))
    minus_five = ics(CUSTOM_ZONE.format(offset="-0500", uid="visit-b@example.com"))
    no_zone = ics(
        CUSTOM_ZONE.format(offset="-0500", uid="visit-c@example.com").split("BEGIN:VTIMEZONE")[0]
        + "BEGIN:VEVENT"
        + CUSTOM_ZONE.split("BEGIN:VEVENT")[1].format(uid="visit-c@example.com")
    )

    [a] = parse(plus_three, "2024-05-10", "2024-05-11", feed="a").value
    [b] = parse(minus_five, "2024-05-10", "2024-05-11", feed="b").value
    [c] = parse(no_zone, "2024-05-10", "2024-05-11", feed="c").value
    [a_again] = parse(plus_three, "2024-05-10", "2024-05-11", feed="a").value

    assert a["starts_at"] == a_again["starts_at"] == utc(2024, 5, 10, 7)
    assert b["starts_at"] == utc(2024, 5, 10, 15)
    assert a["timezone"] is None and a["extra"]["tz_rule"] == "vtimezone"
    # the TZID is not defined in feed c: floating, as in a fresh process
    assert c["starts_at"] == utc(2024, 5, 10, 14) and c["extra"]["tz_rule"] == "unknown-tzid-default-tz"


def test_custom_vtimezone_named_after_an_iana_zone():
    body = ics("""
        BEGIN:VCALENDAR
        VERSION:2.0
        PRODID:-//Example//EN
        BEGIN:VTIMEZONE
        TZID:custom_America/Chicago
        BEGIN:STANDARD
        DTSTART:20071104T020000
        RRULE:FREQ=YEARLY;BYMONTH=11;BYDAY=1SU
        TZOFFSETFROM:-0500
        TZOFFSETTO:-0600
        END:STANDARD
        BEGIN:DAYLIGHT
        DTSTART:20070311T020000
        RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=2SU
        TZOFFSETFROM:-0600
        TZOFFSETTO:-0500
        END:DAYLIGHT
        END:VTIMEZONE
        BEGIN:VEVENT
        UID:river-cleanup@example.org
        SUMMARY:River cleanup
        DTSTART;TZID=custom_America/Chicago:20240608T090000
        DTEND;TZID=custom_America/Chicago:20240608T120000
        END:VEVENT
        END:VCALENDAR
    """)
    [row] = parse(body, "2024-06-01", "2024-07-01").value
    assert row["starts_at"] == utc(2024, 6, 8, 14)
    assert row["timezone"] == "America/Chicago" and row["extra"]["tz_rule"] == "vtimezone"


# ------------------------------------------------------------------------------------------------------------
# All-day, ends


def test_all_day_events():
    body = ics("""
        BEGIN:VCALENDAR
        VERSION:2.0
        PRODID:-//City Festivals//EN
        BEGIN:VEVENT
        UID:jazz-weekend-2024@festivals.example
        DTSTAMP:20240501T000000Z
        SUMMARY:Jazz weekend
        CATEGORIES:Music,Festival
        DTSTART;VALUE=DATE:20240621
        DTEND;VALUE=DATE:20240624
        END:VEVENT
        BEGIN:VEVENT
        UID:market-day-2024@festivals.example
        DTSTAMP:20240501T000000Z
        SUMMARY:Farmers market day
        DTSTART;VALUE=DATE:20240629
        END:VEVENT
        END:VCALENDAR
    """)
    jazz, market = parse(body, "2024-06-01", "2024-07-01").value

    assert jazz["all_day"] is True and jazz["timezone"] is None
    assert jazz["start_date"] == dt.date(2024, 6, 21) and jazz["end_date"] == dt.date(2024, 6, 23)
    assert jazz["starts_at"] == utc(2024, 6, 21, 4)  # midnight in America/Toronto
    assert jazz["ends_at"] == utc(2024, 6, 24, 4)
    assert jazz["start_local"] == dt.datetime(2024, 6, 21)
    assert jazz["category"] == "Music" and jazz["extra"]["categories"] == ["Music", "Festival"]
    assert jazz["source_id"] == "club:jazz-weekend-2024@festivals.example:2024-06-21"
    # no DTEND: one day
    assert market["end_date"] == dt.date(2024, 6, 29) and market["ends_at"] == utc(2024, 6, 30, 4)


def test_no_dtend_duration_and_end_before_start():
    body = ics("""
        BEGIN:VCALENDAR
        VERSION:2.0
        PRODID:-//Neighbourhood Board//EN
        BEGIN:VEVENT
        UID:no-end@board.example
        SUMMARY:Doors open
        DTSTART:20240910T170000Z
        END:VEVENT
        BEGIN:VEVENT
        UID:duration@board.example
        SUMMARY:Board meeting
        DTSTART:20240910T180000Z
        DURATION:PT1H30M
        END:VEVENT
        BEGIN:VEVENT
        UID:backwards@board.example
        SUMMARY:Typo in the end time
        DTSTART;TZID=Europe/Berlin:20240911T190000
        DTEND;TZID=Europe/Berlin:20240911T170000
        END:VEVENT
        END:VCALENDAR
    """)
    result = parse(body, "2024-09-01", "2024-10-01")
    [no_end] = by_uid(result, "no-end@board.example")
    [duration] = by_uid(result, "duration@board.example")
    [backwards] = by_uid(result, "backwards@board.example")

    assert no_end["ends_at"] == no_end["starts_at"] == utc(2024, 9, 10, 17)
    assert duration["ends_at"] == utc(2024, 9, 10, 19, 30)
    # kept as written (recurring-ical-events swaps them), for the end >= start check downstream to flag
    assert backwards["starts_at"] == utc(2024, 9, 11, 17) and backwards["ends_at"] == utc(2024, 9, 11, 15)
    assert backwards["extra"]["end_before_start"] is True
    assert backwards["source_id"] == "club:backwards@board.example:2024-09-11T17:00:00Z"


def test_window_is_local_days_end_exclusive_overlap_included():
    body = ics("""
        BEGIN:VCALENDAR
        VERSION:2.0
        PRODID:-//Window test//EN
        BEGIN:VEVENT
        UID:late-show@example.org
        SUMMARY:Late show, runs past midnight into the window
        DTSTART;TZID=America/Toronto:20240930T230000
        DTEND;TZID=America/Toronto:20241001T010000
        END:VEVENT
        BEGIN:VEVENT
        UID:ends-at-start@example.org
        SUMMARY:Ends exactly when the window opens
        DTSTART;TZID=America/Toronto:20240930T220000
        DTEND;TZID=America/Toronto:20241001T000000
        END:VEVENT
        BEGIN:VEVENT
        UID:last-evening@example.org
        SUMMARY:Last evening inside the window
        DTSTART;TZID=America/Toronto:20241001T230000
        DTEND;TZID=America/Toronto:20241001T235900
        END:VEVENT
        BEGIN:VEVENT
        UID:next-day@example.org
        SUMMARY:Starts exactly at the window end
        DTSTART;TZID=America/Toronto:20241002T000000
        DTEND;TZID=America/Toronto:20241002T010000
        END:VEVENT
        END:VCALENDAR
    """)
    result = parse(body, "2024-10-01", "2024-10-02")
    assert {row["extra"]["uid"] for row in result.value} == {"late-show@example.org", "last-evening@example.org"}


def test_every_row_has_exactly_the_event_columns():
    result = parse(ics(MOVED_SERIES), "2024-03-01", "2024-05-01")
    for row in result.value:
        assert tuple(row) == EVENT_COLUMNS
        assert row["source"] == "ics:club" and row["summary"] is None
        assert row["starts_at"].utcoffset() == dt.timedelta(0) and row["ends_at"].utcoffset() == dt.timedelta(0)
        assert row["start_local"].tzinfo is None
        assert isinstance(row["source_updated_at"], dt.datetime) and row["source_updated_at"].tzinfo is not None
        for column in ("address", "city", "region", "postal_code", "country", "is_free", "currency"):
            assert row[column] is None


def test_online_location_geo_and_url():
    body = ics("""
        BEGIN:VCALENDAR
        VERSION:2.0
        PRODID:-//Meetup//RemoteApi//EN
        BEGIN:VEVENT
        UID:event_301@meetup.example
        SUMMARY:Python study group
        URL:https://meetup.example/python-study/events/301/
        LOCATION:Café Central\\, 12 Main St\\, Springfield
        GEO:45.5017;-73.5673
        DTSTART:20240903T230000Z
        END:VEVENT
        BEGIN:VEVENT
        UID:event_302@meetup.example
        SUMMARY:Remote lightning talks
        LOCATION:https://video.example/j/123456
        DTSTART:20240910T230000Z
        END:VEVENT
        BEGIN:VEVENT
        UID:event_303@meetup.example
        SUMMARY:Bad coordinates
        LOCATION:Somewhere
        GEO:0;0
        DTSTART:20240917T230000Z
        END:VEVENT
        BEGIN:VEVENT
        UID:webinar-7@meetup.example
        SUMMARY:Webinar
        URL:https://webinars.example/7
        DTSTART:20240918T230000Z
        END:VEVENT
        BEGIN:VEVENT
        UID:open-lab@forum.example
        SUMMARY:Open lab
        URL:/c/lab/calendar
        DTSTART:20240919T170000Z
        END:VEVENT
        BEGIN:VEVENT
        UID:picnic@meetup.example
        SUMMARY:Picnic
        LOCATION:Riverside Park\\nNorth lawn\\n
        DTSTART:20240920T160000Z
        END:VEVENT
        END:VCALENDAR
    """)
    result = parse(body, "2024-09-01", "2024-10-01")
    [cafe] = by_uid(result, "event_301@meetup.example")
    [remote] = by_uid(result, "event_302@meetup.example")
    [nowhere] = by_uid(result, "event_303@meetup.example")

    assert cafe["venue_name"] == "Café Central, 12 Main St, Springfield" and cafe["is_online"] is False
    assert (cafe["latitude"], cafe["longitude"]) == (45.5017, -73.5673)
    assert cafe["url"] == "https://meetup.example/python-study/events/301/"
    assert remote["is_online"] is True and remote["venue_name"] is None
    assert remote["extra"]["location_url"] == "https://video.example/j/123456"
    assert nowhere["latitude"] is None
    [webinar] = by_uid(result, "webinar-7@meetup.example")
    [open_lab] = by_uid(result, "open-lab@forum.example")
    [picnic] = by_uid(result, "picnic@meetup.example")
    assert webinar["is_online"] is True  # an absolute URL and no LOCATION
    assert open_lab["is_online"] is False and open_lab["url"] == "/c/lab/calendar"  # Discourse's relative link
    assert picnic["venue_name"] == "Riverside Park, North lawn"
    [reject] = result.rejects
    assert reject.error.record == "VEVENT UID event_303@meetup.example" and "GEO" in reject.message
    assert reject.dropped is False and reject.error.field == "GEO"


# ------------------------------------------------------------------------------------------------------------
# Bad data


def test_malformed_property_rejects_only_its_event():
    body = ics("""
        BEGIN:VCALENDAR
        VERSION:2.0
        PRODID:-//Community Centre//EN
        BEGIN:VEVENT
        UID:yoga@centre.example
        DTSTAMP:20240801T000000Z
        SUMMARY:Morning yoga
        DTSTART:20240902T130000Z
        DTEND:20240902T140000Z
        END:VEVENT
        BEGIN:VEVENT
        UID:pottery@centre.example
        DTSTAMP:20240801T000000Z
        SUMMARY:Pottery for beginners
        DTSTART:2024-09-03 18:00
        DTEND:20240903T200000Z
        END:VEVENT
        BEGIN:VEVENT
        UID:bridge@centre.example
        DTSTAMP:202408011T000000Z
        SUMMARY:Bridge club
        DTSTART:20240904T180000Z
        DURATION:PT2H
        END:VEVENT
        BEGIN:VEVENT
        UID:weekly-quiz@centre.example
        SUMMARY:Weekly quiz
        DTSTART:20240905T230000Z
        RRULE:FREQ=WEEKLY;BYDAY=TH;UNTL=20241231
        END:VEVENT
        END:VCALENDAR
    """)
    result = parse(body, "2024-09-01", "2024-10-01", feed="centre.ics")

    assert {row["extra"]["uid"] for row in result.value} == {"yoga@centre.example", "bridge@centre.example"}
    by = {reject.error.record.removeprefix("VEVENT UID "): reject for reject in result.rejects}
    pottery = by["pottery@centre.example"]
    assert pottery.error.field == "DTSTART" and re.search(r"\bline 15\b", pottery.message)
    for text in ("centre.ics", "pottery@centre.example", "DTSTART", "line 15", "event skipped"):
        assert text in pottery.message
    assert pottery.dropped is True and pottery.name == "uid_pottery@centre.example"
    assert pottery.record.startswith("BEGIN:VEVENT\r\nUID:pottery@centre.example\r\n")
    assert pottery.record.endswith("DTEND:20240903T200000Z\r\nEND:VEVENT")
    # a broken DTSTAMP is dropped on its own: the event still loads
    bridge = by["bridge@centre.example"]
    assert bridge.error.field == "DTSTAMP" and "property ignored" in bridge.message and bridge.dropped is False
    [bridge_row] = by_uid(result, "bridge@centre.example")
    assert bridge_row["source_updated_at"] is None and bridge_row["ends_at"] == utc(2024, 9, 4, 20)
    # a misspelled RRULE part costs only its series
    quiz = by["weekly-quiz@centre.example"]
    assert quiz.error.field == "RRULE" and "centre.ics" in quiz.message and "UNTL" in quiz.message
    assert quiz.dropped is True
    error = pottery.error
    assert isinstance(error, RecordError) and error.request == "centre.ics" and error.field == "DTSTART"
    assert error.record == "VEVENT UID pottery@centre.example" and str(error) == pottery.message


def test_runaway_rule_is_refused():
    body = ics("""
        BEGIN:VCALENDAR
        VERSION:2.0
        PRODID:-//Example//EN
        BEGIN:VEVENT
        UID:every-minute@example.org
        SUMMARY:Reminder gone wrong
        DTSTART:20240902T130000Z
        RRULE:FREQ=MINUTELY
        END:VEVENT
        BEGIN:VEVENT
        SUMMARY:Fine
        DTSTART:20240902T140000Z
        END:VEVENT
        END:VCALENDAR
    """)
    result = parse(body, "2024-09-01", "2025-09-01")
    [row] = result.value
    assert row["title"] == "Fine"
    [reject] = result.rejects
    assert reject.error.field == "RRULE" and "FREQ=MINUTELY" in reject.message
    assert re.search(r"\bline 8\b", reject.message) and reject.dropped is True


def test_duplicated_dtstart_rejects_the_event():
    body = ics("""
        BEGIN:VCALENDAR
        VERSION:2.0
        PRODID:-//Example//EN
        BEGIN:VEVENT
        UID:twice@example.org
        SUMMARY:Two starts
        DTSTART:20240902T130000Z
        DTSTART:20240903T130000Z
        END:VEVENT
        END:VCALENDAR
    """)
    result = parse(body, "2024-09-01", "2024-10-01")
    assert result.value == []
    [reject] = result.rejects
    assert "twice@example.org" in reject.message and "DTSTART appears 2 times" in reject.message


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (ics("BEGIN:VCALENDAR\nVERSION:2.0\nBEGIN:VEVENT\nUID:x\nEND:VEVENT\nnot ical\nEND:VCALENDAR"), "line 6"),
        (ics("BEGIN:VCALENDAR\nVERSION:2.0\nBEGIN:VEVENT\nUID:x\nDTSTART:20240101T100000Z\nEND:VEVENT"), "line 1"),
        (b"", "empty body"),
        (b"<!DOCTYPE html><html><body>502 Bad Gateway</body></html>", "HTML"),
        (b"\x00\x01\x02garbage", "cannot parse"),
    ],
    ids=["stray-line", "truncated", "empty", "html-error-page", "binary"],
)
def test_unparseable_feed_raises_one_record_error(body, expected):
    with pytest.raises(RecordError) as raised:
        parse(body, "2024-01-01", "2024-02-01", feed="broken.ics")
    error = raised.value
    assert error.record is None and error.request == "broken.ics"
    assert "broken.ics" in str(error) and expected in str(error)


def _png() -> bytes:
    """A valid 1×1 PNG."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00\xff\x00\x00"))
        + chunk(b"IEND", b"")
    )


_NOISE = random.Random(7).randbytes(4000)


@pytest.mark.parametrize(
    "body",
    [
        _png(),
        _NOISE,
        bytes(byte or 1 for byte in _NOISE),  # no NUL: icalendar's own complaint quotes the garbage
        ics(
            "BEGIN:VCALENDAR\nVERSION:2.0\nBEGIN:VEVENT\nUID:a\x00b\nDTSTART:20240101T100000Z\nEND:VEVENT\nEND:VCALENDAR"
        ),
        b"BEGIN:VCALENDAR\r\n" + b"x\x07" * 5000 + b"\r\nEND:VCALENDAR\r\n",
    ],
    ids=["png", "random-bytes", "random-bytes-without-nul", "nul-in-a-calendar", "one-huge-line"],
)
def test_binary_body_raises_a_short_record_error(body):
    with pytest.raises(RecordError) as raised:
        parse(body, "2024-01-01", "2024-02-01", feed="blob.bin")
    message = str(raised.value)
    assert raised.value.request == "blob.bin" and "blob.bin" in message and "cannot parse" in message
    assert "\x00" not in message and message.isprintable()  # control characters escaped, not dumped
    assert len(message) <= 400 and all(len(quoted) <= 61 for quoted in re.findall(r"(?<!\w)'([^']*)'", message))
    if b"\x00" in body:
        assert "NUL character" in message and re.fullmatch(r"line \d+", raised.value.field)


def test_feed_level_failure_raises_record_error_instead_of_returning_rejects():
    """A body that is not a calendar gives no result at all, so the caller dead-letters the whole payload;
    a warning found before (here: not UTF-8) is not returned either."""
    body = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nX-WR-CALNAME:Café\r\nBEGIN:VEVENT\r\nUID:x\r\n".encode("cp1252")
    with pytest.raises(RecordError) as raised:
        parse(body, "2024-01-01", "2024-02-01", feed="cut.ics")
    error = raised.value
    assert (error.request, error.record, error.field) == ("cut.ics", None, "line 1")
    assert str(error) == (
        "request cut.ics, field 'line 1': no calendar could be read: BEGIN:VCALENDAR is never closed (no END:VCALENDAR)"
    )
    # as the load driver names the payload: the feed stays named
    assert "feed_cut.ics" in str(error.with_request("ics/2024-01-01/feed_cut.ics"))


def test_each_dropped_reject_has_its_own_dead_letter_name_and_the_series_text():
    body = ics("""
        BEGIN:VCALENDAR
        VERSION:2.0
        PRODID:-//Example//EN
        BEGIN:VEVENT
        UID:twice@example.org
        SUMMARY:Broken master
        DTSTART:tomorrow
        RRULE:FREQ=WEEKLY
        GEO:0;0
        END:VEVENT
        BEGIN:VEVENT
        UID:twice@example.org
        RECURRENCE-ID:20240909T130000Z
        SUMMARY:Broken override
        DTSTART:later
        END:VEVENT
        BEGIN:VEVENT
        UID:fine@example.org
        SUMMARY:Fine
        DTSTART:20240902T140000Z
        GEO:0;0
        END:VEVENT
        END:VCALENDAR
    """)
    result = parse(body, "2024-09-01", "2024-10-01", feed="two.ics")
    [row] = result.value
    assert row["title"] == "Fine"
    dropped = [reject for reject in result.rejects if reject.dropped]
    assert [reject.name for reject in dropped] == ["uid_twice@example.org", "uid_twice@example.org_2"]
    assert [re.search(r"\bline \d+\b", reject.message).group(0) for reject in dropped] == ["line 7", "line 15"]
    for reject in dropped:
        assert reject.error.field == "DTSTART" and reject.error.record == "VEVENT UID twice@example.org"
        assert reject.record.count("BEGIN:VEVENT") == 2 and "Broken master" in reject.record
        assert "Broken override" in reject.record and "Fine" not in reject.record
    [warning] = [reject for reject in result.rejects if not reject.dropped]
    assert warning.name == "uid_fine@example.org" and warning.error.field == "GEO"
    assert warning.record is None


def test_override_under_x_wr_timezone_keeps_the_id_of_the_occurrence_it_replaces():
    series = """
        BEGIN:VCALENDAR
        VERSION:2.0
        PRODID:-//Google Inc//Google Calendar 70.9054//EN
        X-WR-TIMEZONE:America/Vancouver
        BEGIN:VEVENT
        UID:open-shop@lakeside.example
        SUMMARY:Open shop
        DTSTART:20240410T180000
        DTEND:20240410T210000
        RRULE:FREQ=WEEKLY;COUNT=3
        END:VEVENT
        {override}END:VCALENDAR
    """
    override = """BEGIN:VEVENT
        UID:open-shop@lakeside.example
        RECURRENCE-ID:20240417T180000
        SUMMARY:Open shop (late)
        DTSTART:20240417T190000
        DTEND:20240417T220000
        END:VEVENT
        """
    plain = parse(ics(series.format(override="")), "2024-04-01", "2024-05-01").value
    moved = parse(ics(series.format(override=override)), "2024-04-01", "2024-05-01").value
    assert [row["source_id"] for row in moved] == [row["source_id"] for row in plain]
    assert moved[1]["source_id"] == "club:open-shop@lakeside.example:2024-04-18T01:00:00Z"
    assert moved[1]["title"] == "Open shop (late)" and moved[1]["start_local"] == dt.datetime(2024, 4, 17, 19)


def test_not_utf8_is_decoded_as_cp1252_and_reported():
    text = ics("""
        BEGIN:VCALENDAR
        VERSION:2.0
        PRODID:-//Old Exporter//EN
        BEGIN:VEVENT
        UID:cafe-night@example.org
        SUMMARY:Café night – live music
        DTSTART:20240905T230000Z
        END:VEVENT
        END:VCALENDAR
    """)
    body = text.decode("utf-8").encode("cp1252")
    result = parse(body, "2024-09-01", "2024-10-01", feed="old.ics")
    [row] = result.value
    assert row["title"] == "Café night – live music"
    [reject] = result.rejects
    assert reject.dropped is False and reject.error.field == "line 6" and "not UTF-8" in reject.message
    assert "old.ics" in reject.message and "line 6" in reject.message


def test_bom_missing_version_several_calendars_and_no_uid():
    body = b"\xef\xbb\xbf" + ics("""
        BEGIN:VCALENDAR
        BEGIN:VEVENT
        SUMMARY:Bake sale
        LOCATION:School gym
        DTSTART:20240914T140000Z
        END:VEVENT
        END:VCALENDAR
        BEGIN:VCALENDAR
        PRODID:-//Second calendar//EN
        BEGIN:VEVENT
        SUMMARY:Book swap
        DTSTART:20240915T140000Z
        END:VEVENT
        END:VCALENDAR
    """)
    result = parse(body, "2024-09-01", "2024-10-01")
    assert result.rejects == []
    bake, swap = result.value
    assert bake["title"] == "Bake sale" and swap["title"] == "Book swap"
    assert bake["extra"]["uid_generated"] is True and bake["extra"]["uid"].startswith("generated-")
    assert bake["extra"]["calendar_index"] == 0 and swap["extra"]["calendar_index"] == 1
    again = parse(body, "2024-09-01", "2024-10-01")
    assert [row["source_id"] for row in again.value] == [bake["source_id"], swap["source_id"]]
    assert bake["source_id"] != swap["source_id"]


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="default_tz"):
        parse(b"", "2024-01-01", "2024-01-02", default_tz="Nowhere/Town")
    with pytest.raises(ValueError, match="empty window"):
        parse(b"", "2024-01-02", "2024-01-01")


# ------------------------------------------------------------------------------------------------------------
# Conformance over the real sample files (../shared/events/ics), read at run time

ICS_DIR = SHARED / "events" / "ics"
SAMPLE_FILES = sorted(path.name for path in ICS_DIR.glob("*.ics")) if ICS_DIR.is_dir() else ["<missing>"]


def _first_start(components: list) -> dt.date | None:
    starts = []
    for top in components:
        for event in top.walk("VEVENT"):
            prop = event.get("DTSTART")
            try:
                value = prop.dt
            except Exception:
                continue
            starts.append(value.date() if isinstance(value, dt.datetime) else value)
    return min(starts) if starts else None


def _key(value) -> tuple:
    """A start as recurring-ical-events gives it: date, floating time or instant."""
    if not isinstance(value, dt.datetime):
        return ("date", value)
    if value.tzinfo is None:
        return ("floating", value)
    return ("instant", value.astimezone(UTC))


def _our_key(row: dict) -> tuple:
    """(UID, start) of a row in the same terms; recurring-ical-events orders start/end, so for an event
    whose end is before its start (kept as written by us) the comparable start is our end."""
    extra = row["extra"]
    uid = None if extra["uid_generated"] else extra["uid"]
    floating = extra["tz_rule"].endswith("default-tz")
    if extra.get("end_before_start"):
        if row["all_day"]:
            return uid, ("date", row["end_date"])
        if floating:
            return uid, ("floating", row["ends_at"].astimezone(TORONTO).replace(tzinfo=None))
        return uid, ("instant", row["ends_at"])
    if row["all_day"]:
        return uid, ("date", row["start_date"])
    if floating:
        return uid, ("floating", row["start_local"])
    return uid, ("instant", row["starts_at"])


def _reference(components: list, start: dt.date, end: dt.date, *, as_dates: bool = False) -> set[tuple]:
    """(UID, start) of what recurring-ical-events yields for the window; by default asked with local midnights,
    the same window as the dates (an occurrence that starts the evening before and runs into the window is lost
    when the dates themselves are passed)."""
    span = (start, end) if as_dates else (dt.datetime.combine(start, dt.time()), dt.datetime.combine(end, dt.time()))
    return {
        (str(occurrence["UID"]) if "UID" in occurrence else None, _key(occurrence["DTSTART"].dt))
        for top in components
        for occurrence in recurring_ical_events.of(top).between(*span)
    }


@pytest.mark.parametrize("name", SAMPLE_FILES)
def test_conformance_sample_file(name: str):
    folder = require_shared("events/ics")
    body = (Path(folder) / name).read_bytes()

    try:
        components = icalendar.Calendar.from_ical(body, multiple=True)
        parse_error = None
    except Exception as exc:
        components, parse_error = [], exc
    first = _first_start(components) or dt.date(2020, 1, 1)
    window_start, window_end = first - dt.timedelta(days=1), first + dt.timedelta(days=399)

    component_errors = [c.errors for top in components for c in top.walk() if getattr(c, "errors", None)]
    clean = parse_error is None and components and not component_errors
    try:
        result = parse_feed(name, body, window_start, window_end)  # raises nothing but RecordError
    except RecordError as exc:
        # not a calendar at all: the whole payload is refused, naming the feed; only for a file that is not clean
        print(f"{name}: RecordError {exc}")
        assert name in str(exc)
        assert not clean, f"{name}: clean for icalendar, but refused: {exc}"
        return

    print(f"{name}: {len(result.value)} rows, {len(result.rejects)} rejects")
    for reject in result.rejects:
        print(f"  {'dropped' if reject.dropped else 'warning'}: {reject.message}")
        assert name in reject.message
    for row in result.value:
        assert tuple(row) == EVENT_COLUMNS
        assert row["source_id"].startswith(f"{name}:")
        assert row["starts_at"].tzinfo is not None and row["starts_at"].utcoffset() == dt.timedelta(0)
    assert len({row["source_id"] for row in result.value}) == len(result.value)

    reference = None
    expansion_error = None
    if clean:
        try:
            reference = _reference(components, window_start, window_end)
            by_dates = _reference(components, window_start, window_end, as_dates=True)
        except Exception as exc:
            expansion_error = exc

    if reference is None:
        # icalendar or recurring-ical-events cannot read this file cleanly: it must be reported, not lost
        assert result.rejects, f"{name}: not clean ({parse_error or component_errors or expansion_error}), no reject"
        return
    ours = {_our_key(row) for row in result.value}
    assert ours == reference
    # with plain dates recurring-ical-events misses some overlapping occurrences (see ics.py), never adds any
    assert by_dates <= ours


def test_conformance_isolates_bad_series_where_recurring_ical_events_fails_the_whole_calendar():
    """issue_722: recurring-ical-events raises KeyError('DTSTART') for the whole calendar; we keep the good
    event and reject the two VEVENTs that have no DTSTART."""
    folder = require_shared("events/ics")
    name = "icalendar__calendars__issue_722_missing_timezones.ics"
    path = Path(folder) / name
    if not path.exists():
        pytest.skip(f"{path} not in this copy of the samples")
    calendar = icalendar.Calendar.from_ical(path.read_bytes())
    with pytest.raises(KeyError):
        recurring_ical_events.of(calendar).between(dt.date(2014, 8, 1), dt.date(2014, 9, 1))

    result = parse_feed(name, path.read_bytes(), dt.date(2014, 8, 1), dt.date(2014, 9, 1))
    [row] = result.value
    assert row["title"] == "an event with a custom tz name" and row["extra"]["uid_generated"] is True
    assert row["starts_at"] == utc(2014, 8, 29, 12) and row["timezone"] == "America/New_York"
    assert len(result.rejects) == 2
    assert all("DTSTART" in reject.message and re.search(r"\bline \d+\b", reject.message) for reject in result.rejects)
    assert all(reject.dropped and reject.record.startswith("BEGIN:VEVENT") for reject in result.rejects)
