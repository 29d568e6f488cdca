"""Eventbrite and Montréal parsing, titles/keys and cross-source deduplication.

Conformance over the real payloads in ``../shared/events`` (read at run time, never copied into the project);
broken records are built by mutating a real record in the test."""

from __future__ import annotations

import copy
import datetime as dt
import json
import random
from decimal import Decimal
from pathlib import Path

import pytest

from ingestion_platform.defs.events import dedupe, tables
from ingestion_platform.defs.events.ics import EVENT_COLUMNS, parse_feed
from ingestion_platform.defs.events.parse import (
    DECODING_NOTE,
    add_dedupe_keys,
    decode_payload,
    dedupe_key,
    montreal_source_id,
    normalise_title,
    parse_eventbrite_page,
    parse_montreal_page,
)
from ingestion_platform.lib.errors import RecordError, Reject
from ingestion_platform.lib.warehouse import Warehouse
from ingestion_platform_tests.conftest import require_shared

UTC = dt.UTC
MONTREAL_FILE = "mtlverde__public_events_montreal__first500.json"

# file -> (organization id to pass, expected rows); every list/event payload of ../shared/events/eventbrite
EVENTBRITE_PAGES = {
    "datakind_fona__organization_events.json": ("207140026882", 2),
    "dtoneill__organization_events_dmcc_2022.json": ("185462511086", 5),
    "omnievent__organization_events_expand_category.json": ("1162557119523", 1),
    "whereisciao__event.json": ("", 1),
    "whereisciao__event_details.json": ("", 1),
    "whereisciao__event_search.json": ("", 2),
    "whereisciao__user_owned_events.json": ("", 1),
    "whereisciao__user_owned_events_empty.json": ("", 0),
    "whereisciao__user_owned_events_paginated.json": ("", 1),
}
# payloads that are not event pages: parsing them as one is a payload-level RecordError, with this text
EVENTBRITE_NOT_PAGES = {
    "whereisciao__error_BAD_PAGE.json": "Eventbrite error BAD_PAGE (status 400)",
    "datakind_fona__organizer.json": "expected an 'events' list",
    "datakind_fona__venue.json": "expected an 'events' list",
    "whereisciao__event_categories.json": "expected an 'events' list",
    "whereisciao__event_ticket_classes.json": "expected an 'events' list",
    "whereisciao__user_organizer.json": "expected an 'events' list",
    "whereisciao__user_organizers.json": "expected an 'events' list",
    "whereisciao__user_venues.json": "expected an 'events' list",
}


def eventbrite_dir() -> Path:
    return require_shared("events/eventbrite")


def eventbrite_payload(name: str):
    return decode_payload((eventbrite_dir() / name).read_bytes(), name)


def eventbrite_page(name: str, **kwargs):
    organization_id = EVENTBRITE_PAGES.get(name, ("",))[0]
    return parse_eventbrite_page(eventbrite_payload(name), organization_id, name, **kwargs)


def montreal_records() -> list[dict]:
    return json.loads((require_shared("events/montreal") / MONTREAL_FILE).read_text(encoding="utf-8"))


def montreal_rows() -> list[dict]:
    body = (require_shared("events/montreal") / MONTREAL_FILE).read_bytes()
    rows, rejects, _ = parse_montreal_page(decode_payload(body, MONTREAL_FILE), MONTREAL_FILE)
    assert rejects == []
    return rows


def by_id(rows: list[dict]) -> dict[str, dict]:
    return {row["source_id"]: row for row in rows}


def utc(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=UTC)


def only(rejects: list[Reject], field: str) -> Reject:
    found = [r for r in rejects if r.error.field == field]
    assert len(found) == 1, [r.message for r in rejects]
    return found[0]


# ------------------------------------------------------------------------------------------------------------
# Eventbrite: every payload


def test_every_eventbrite_payload_is_classified():
    names = {path.name for path in eventbrite_dir().glob("*.json")}
    assert names == set(EVENTBRITE_PAGES) | set(EVENTBRITE_NOT_PAGES)


@pytest.mark.parametrize("name", sorted(EVENTBRITE_PAGES))
def test_every_eventbrite_page_loads_with_exact_counts(name):
    rows, rejects, pagination = eventbrite_page(name)
    assert len(rows) == EVENTBRITE_PAGES[name][1]
    assert [r for r in rejects if r.dropped] == []
    expected_notes = ["encoding"] if name.startswith("dtoneill") else []
    assert [r.error.field for r in rejects] == expected_notes
    for row in rows:
        assert set(row) == set(tables.EVENT_TABLE_COLUMNS)
        assert row["source"] == "eventbrite" and row["source_id"].isdigit()
        assert row["starts_at"].tzinfo is UTC and row["start_date"] == row["start_local"].date()
        assert row["status"] in {"scheduled", "started", "completed", "cancelled", "draft"}
        assert row["all_day"] is False
    assert len({row["source_id"] for row in rows}) == len(rows)
    assert pagination.next_params is None or pagination.next_params == {"page": 2}


@pytest.mark.parametrize("name", sorted(EVENTBRITE_NOT_PAGES))
def test_eventbrite_payloads_that_are_not_event_pages_raise_naming_the_request(name):
    with pytest.raises(RecordError) as excinfo:
        eventbrite_page(name)
    assert EVENTBRITE_NOT_PAGES[name] in str(excinfo.value)
    assert excinfo.value.request == name


def test_error_body_message():
    with pytest.raises(RecordError, match=r"BAD_PAGE.*You passed an invalid page number"):
        eventbrite_page("whereisciao__error_BAD_PAGE.json")


def test_datakind_page_with_venue_and_organizer_lookups():
    venue = eventbrite_payload("datakind_fona__venue.json")
    organizer = eventbrite_payload("datakind_fona__organizer.json")
    rows, rejects, pagination = eventbrite_page(
        "datakind_fona__organization_events.json",
        venues={venue["id"]: venue},
        organizers={organizer["id"]: organizer},
    )
    assert rejects == [] and pagination.next_params is None and pagination.has_more_items is False
    row = by_id(rows)["53882456879"]
    assert row["title"] == "March 19, 20, & 21 - Full Moon Hikes"  # whitespace runs collapsed
    assert row["description"] == "Some description"
    assert row["starts_at"] == utc(2019, 3, 19, 23, 30) and row["ends_at"] == utc(2019, 3, 20, 1, 30)
    assert row["timezone"] == "America/New_York"
    assert row["start_local"] == dt.datetime(2019, 3, 19, 19, 30)
    assert row["start_date"] == dt.date(2019, 3, 19) and row["end_date"] == dt.date(2019, 3, 19)
    assert row["status"] == "scheduled" and row["extra"]["status_raw"] == "live"
    assert row["venue_name"] == "24th & R St NE / National Arboretum"
    assert (row["address"], row["city"], row["region"], row["postal_code"], row["country"]) == (
        "R Street Northeast",
        "Washington",
        "DC",
        "20002",
        "US",
    )
    assert row["latitude"] == 38.9126307 and row["longitude"] == -76.97188589999996
    assert row["organizer"] == "The Friends of the National Arboretum"
    assert row["is_free"] is False and row["currency"] == "USD" and row["is_online"] is False
    assert row["series_id"] == "53882408735" and row["extra"]["is_series_parent"] is False
    assert row["source_updated_at"] == utc(2019, 3, 11, 19, 11, 8)
    assert row["extra"]["organization_id"] == "207140026882" and row["extra"]["category_id"] == "109"
    assert row["dedupe_key"] == "2019-03-19|march 19 20 21 full moon hikes|24th r st ne national arboretum"

    bare, _, _ = eventbrite_page("datakind_fona__organization_events.json")
    assert bare[0]["venue_name"] is None and bare[0]["latitude"] is None
    assert bare[0]["extra"]["venue_id"] == "27665366" and bare[0]["extra"]["organizer_id"] == "13276552841"


def test_windows_1252_page_is_decoded_and_the_fact_recorded():
    raw = (eventbrite_dir() / "dtoneill__organization_events_dmcc_2022.json").read_bytes()
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")
    payload = decode_payload(raw, "dmcc.json")
    assert payload[DECODING_NOTE]["encoding"] == "cp1252"
    rows, rejects, _ = parse_eventbrite_page(payload, "185462511086", "dmcc.json")
    note = only(rejects, "encoding")
    assert note.dropped is False and note.error.request == "dmcc.json"
    assert "byte 0x93 at position 379" in note.message and "decoded as cp1252" in note.message
    assert {row["extra"]["payload_encoding"] for row in rows} == {"cp1252"}

    rows = by_id(rows)
    sao_paulo = rows["305411121887"]
    assert sao_paulo["summary"] == (
        "Descubra como conectar sua empresa ao mundo no evento, “Dubai – Sua Porta de Entrada para o Comércio Global”"
    )
    assert sao_paulo["status"] == "started" and sao_paulo["extra"]["status_raw"] == "started"
    assert sao_paulo["timezone"] == "America/Sao_Paulo" and sao_paulo["starts_at"] == utc(2022, 4, 12, 12)
    assert rows["314467800657"]["title"] == "Made For Trade Live - Bogotá, Colombia in Focus"
    assert rows["314500337977"]["title"] == "Made For Trade Live - Medellín, Colombia in Focus"
    assert {row["timezone"] for row in rows.values()} == {"Asia/Dubai", "America/Bogota", "America/Sao_Paulo"}
    assert [row["status"] for row in rows.values()].count("scheduled") == 4

    suhoor = rows["311646702677"]  # ends after local midnight: start date stays the 12th
    assert suhoor["starts_at"] == utc(2022, 4, 12, 17, 30) and suhoor["ends_at"] == utc(2022, 4, 12, 21)
    assert suhoor["start_local"] == dt.datetime(2022, 4, 12, 21, 30)
    assert (suhoor["start_date"], suhoor["end_date"]) == (dt.date(2022, 4, 12), dt.date(2022, 4, 13))
    assert suhoor["is_free"] is True and suhoor["currency"] == "USD" and suhoor["extra"]["hide_end_date"] is True
    employee = rows["315182388007"]
    assert employee["category"] is None and "category_id" not in employee["extra"]
    assert employee["extra"]["capacity"] == 250 and employee["extra"]["listed"] is False


def test_online_event_with_expanded_category():
    rows, rejects, _ = eventbrite_page("omnievent__organization_events_expand_category.json")
    (row,) = rows
    assert rejects == []
    assert row["title"] == "My eventbrite event" and row["description"] == "A cool event for cool people"
    assert row["is_online"] is True and row["venue_name"] is None and row["latitude"] is None
    assert row["category"] == "Auto, Boat & Air" and row["extra"]["category_id"] == "118"
    assert row["timezone"] == "Europe/Paris"
    assert row["starts_at"] == utc(2022, 11, 6, 18) and row["start_local"] == dt.datetime(2022, 11, 6, 19)
    assert row["ends_at"] == utc(2022, 11, 6, 21)
    assert row["url"] == "https://www.eventbrite.com/e/my-eventbrite-event-tickets-427781033587"


def test_2014_shape_inline_venue_organizer_and_ticket_classes():
    rows, _, pagination = eventbrite_page("whereisciao__event_search.json")
    assert pagination.has_more_items is None and pagination.page_count == 2923
    assert pagination.next_params == {"page": 2}
    rows = by_id(rows)
    fondo = rows["6198346421"]
    assert fondo["title"] == "Toad Fondo" and fondo["organizer"] == "Toad Fondo"
    assert fondo["venue_name"] == "Toad Fondo at The MOB Shop" and fondo["address"] == "110 West Ojai Avenue"
    assert (fondo["city"], fondo["region"], fondo["country"]) == ("Ojai", "CA", "US")
    assert (fondo["latitude"], fondo["longitude"]) == (34.447947, -119.247439)
    assert fondo["category"] == "Sports & Fitness"
    assert (fondo["min_price"], fondo["max_price"]) == (Decimal("0.00"), Decimal("250.00"))  # cents → major units
    assert fondo["is_free"] is False and fondo["currency"] == "USD"
    assert fondo["timezone"] == "America/Los_Angeles" and fondo["starts_at"] == utc(2014, 4, 26, 15)
    webinar = rows["6230534697"]
    assert webinar["venue_name"] is None and webinar["organizer"] == "Dr. Blaise T. Ryan"
    assert (webinar["min_price"], webinar["max_price"], webinar["currency"]) == (
        Decimal("20.00"),
        Decimal("20.00"),
        "CAD",
    )
    assert webinar["start_date"] == dt.date(2014, 4, 24)  # 20:00 Toronto = 00:00Z the next day

    (detail,) = eventbrite_page("whereisciao__event_details.json")[0]  # start/end as bare UTC strings
    assert detail["starts_at"] == utc(2014, 12, 1, 23, 59, 59) and detail["timezone"] == "America/Los_Angeles"
    assert detail["start_local"] == dt.datetime(2014, 12, 1, 15, 59, 59)
    assert detail["is_free"] is True and detail["min_price"] == Decimal("0.00")


def test_pagination_continuation_and_stop_rules():
    payload = eventbrite_payload("datakind_fona__organization_events.json")
    first = copy.deepcopy(payload)
    first["events"] = first["events"][:1]
    first["pagination"].update(has_more_items=True, continuation="eyJwYWdlIjogMn0", page_count=2)
    rows, _, pagination = parse_eventbrite_page(first, "207140026882", "page-1")
    assert [r["source_id"] for r in rows] == ["53882456879"]
    assert pagination.next_params == {"continuation": "eyJwYWdlIjogMn0"}
    second = copy.deepcopy(payload)
    second["events"] = second["events"][1:]
    second["pagination"].update(page_number=2, page_count=2)
    rows, _, pagination = parse_eventbrite_page(second, "207140026882", "page-2")
    assert [r["source_id"] for r in rows] == ["57800144789"] and pagination.next_params is None
    second["pagination"] = {"page_number": 2, "page_count": 2}  # 2014 shape, last page
    assert parse_eventbrite_page(second, "207140026882", "page-2")[2].next_params is None


def test_broken_eventbrite_records_are_rejected_alone_with_clear_messages():
    payload = eventbrite_payload("dtoneill__organization_events_dmcc_2022.json")
    events = payload["events"]
    del events[0]["id"]
    events[1]["start"] = {"timezone": "Asia/Dubai", "utc": "yesterday"}
    events[2]["venue"] = {"name": "Bogotá hall", "latitude": "123.4", "longitude": "-74.1"}
    events[3]["status"] = "postponed"
    events[4]["start"]["local"] = "2022-04-21T09:30:00"  # disagrees with utc in America/Bogota
    events.append(copy.deepcopy(events[4]))  # duplicate id
    events.append(42)
    rows, rejects, _ = parse_eventbrite_page(payload, "185462511086", "dmcc-broken")

    assert [row["source_id"] for row in rows] == ["314467800657", "315182388007", "314500337977"]
    dropped = {r.error.record: r for r in rejects if r.dropped}
    assert str(dropped["events[0]"].error) == "request dmcc-broken, record events[0], field 'id': missing event id"
    start = dropped["events[1] id 311646702677"].error
    assert (start.request, start.field) == ("dmcc-broken", "start.utc")
    assert "no usable time" in start.reason
    assert dropped["events[5] id 314500337977"].error.field == "id"
    assert "duplicate event id" in dropped["events[5] id 314500337977"].message
    assert "expected an event object, got int" in dropped["events[6]"].message
    assert dropped["events[0]"].record is events[0]  # raw record kept for the dead letter

    rows = by_id(rows)
    coords = only(rejects, "venue.latitude")
    assert coords.dropped is False and coords.error.record == "events[2] id 314467800657"
    assert "123.4,-74.1 are out of range" in coords.message
    assert rows["314467800657"]["venue_name"] == "Bogotá hall" and rows["314467800657"]["latitude"] is None
    status = only(rejects, "status")
    assert "unknown Eventbrite status 'postponed'" in status.message and status.dropped is False
    assert rows["315182388007"]["status"] == "unknown"
    local = only(rejects, "start.local")
    assert "disagrees with start.utc" in local.message
    assert rows["314500337977"]["start_local"] == dt.datetime(2022, 4, 21, 8, 30)  # UTC wins

    # What the load needs from each reject: key, table, partition day and dead-letter name when known
    assert all(isinstance(r, Reject) and r.table == "events.event" for r in rejects)
    no_id = dropped["events[0]"]
    assert (no_id.key, no_id.name, no_id.day) == (None, "dmcc-broken__events[0]", dt.date(2022, 4, 12))
    bad_start = dropped["events[1] id 311646702677"]
    assert bad_start.key == {"source": "eventbrite", "source_id": "311646702677"}
    assert (bad_start.name, bad_start.day) == ("record_311646702677", None)  # its start cannot be read
    duplicate = dropped["events[5] id 314500337977"]
    assert duplicate.key == {"source": "eventbrite", "source_id": "314500337977"}
    assert (duplicate.name, duplicate.day) == ("record_314500337977", dt.date(2022, 4, 21))
    not_object = dropped["events[6]"]
    assert (not_object.key, not_object.name, not_object.day) == (None, "dmcc-broken__events[6]", None)
    assert coords.key == {"source": "eventbrite", "source_id": "314467800657"} and coords.day == dt.date(2022, 4, 19)
    assert only(rejects, "encoding").key is None


def test_decode_payload_errors_and_bom():
    with pytest.raises(RecordError, match=r"request org-1\?page=2: body is not JSON .* starts with '<html>"):
        decode_payload(b"<html><body>Service Unavailable</body></html>", "org-1?page=2")
    with pytest.raises(RecordError, match="request r: empty body"):
        decode_payload(b"  ", "r")
    payload = decode_payload(b'\xef\xbb\xbf{"events": []}', "bom")
    assert payload == {"events": []}  # BOM dropped, no decoding note


# ------------------------------------------------------------------------------------------------------------
# Montréal


def test_montreal_file_loads_every_record():
    rows = montreal_rows()
    assert len(rows) == 500
    assert len({row["source_id"] for row in rows}) == 500
    assert all(row["source_id"].isdigit() for row in rows)
    assert all(set(row) == set(tables.EVENT_TABLE_COLUMNS) for row in rows)
    assert all(row["all_day"] and row["timezone"] == "America/Toronto" for row in rows)
    assert sum(row["is_online"] for row in rows) == 51  # "En ligne"
    assert sum(row["is_free"] is False for row in rows) == 20  # "Payant"
    assert sum(row["address"] is None for row in rows) == 493  # adresse_principale == "nan"
    assert sum(row["start_date"] == row["end_date"] for row in rows) == 417
    assert all(row["status"] == "scheduled" for row in rows)
    assert max(row["end_date"] for row in rows) == dt.date(2031, 5, 1)


def test_montreal_mapping_of_real_records():
    rows = by_id(montreal_rows())
    row = rows["67645"]
    assert row["title"] == "De nos regards et de nos voix, on fera de la fournache"
    assert row["url"] == "https://montreal.ca/evenements/de-nos-regards-et-de-nos-voix-fera-de-la-fournache-67645"
    assert (row["start_date"], row["end_date"]) == (dt.date(2024, 5, 2), dt.date(2026, 6, 21))
    assert row["start_local"] == dt.datetime(2024, 5, 2)
    assert row["starts_at"] == utc(2024, 5, 2, 4)  # local midnight, EDT
    assert row["ends_at"] == utc(2026, 6, 22, 4)  # midnight after the last day
    assert row["is_online"] is True and row["is_free"] is True and row["category"] == "Exposition"
    assert row["address"] is None  # "nan"
    assert (row["latitude"], row["longitude"]) == (45.541268196970634, -73.54692218055175)
    assert row["extra"] == {
        "arrondissement": "Mercier–Hochelaga-Maisonneuve",
        "public_cible": "Pour tous",
        "emplacement": "En ligne",
        "cout": "Gratuit",
    }
    assert (row["city"], row["region"], row["country"]) == ("Montréal", "QC", "CA")
    assert row["dedupe_key"] == "2024-05-02|nos regards nos voix fera fournache|"

    lasalle = rows["89919"]
    assert lasalle["address"] == "1080, avenue Dollard Montréal (Québec) H8N 2T9"
    assert lasalle["is_online"] is False and lasalle["extra"]["arrondissement"] == "LaSalle"
    winter = rows["101690"]
    assert winter["start_date"] == dt.date(2025, 12, 1) and winter["starts_at"] == utc(2025, 12, 1, 5)  # EST
    assert rows["101949"]["is_free"] is False and rows["101949"]["extra"]["cout"] == "Payant"

    # (titre, date_debut) repeats are distinct sessions with their own ids
    repeated = [r for r in rows.values() if r["title"] == "RAMER LA MÉMOIRE et VOILE-AVIRON SUR LA SKAWANOTI"]
    assert {r["source_id"] for r in repeated if r["start_date"] == dt.date(2026, 8, 7)} == {"110013", "112034"}


def test_montreal_ckan_envelope_total_and_record_labels():
    records = montreal_records()[:3]
    envelope = {
        "help": "https://donnees.montreal.ca/api/3/action/help_show?name=datastore_search",
        "success": True,
        "result": {
            "resource_id": "6decf611-6f11-4f34-bb36-324d804c9bad",
            "records": [{"_id": 1001 + i, **record} for i, record in enumerate(records)],
            "total": 2135,
            "offset": 1000,
            "limit": 3,
        },
    }
    envelope["result"]["records"][1]["url_fiche"] = "https://montreal.ca/evenements/sans-numero"
    rows, rejects, total = parse_montreal_page(envelope, "montreal offset=1000")
    assert total == 2135 and len(rows) == 2
    (reject,) = rejects
    assert str(reject.error) == (
        "request montreal offset=1000, record records[1001], field 'url_fiche': no numeric event id at the end "
        "of url_fiche 'https://montreal.ca/evenements/sans-numero'"
    )
    assert isinstance(reject, Reject) and reject.dropped and reject.record is envelope["result"]["records"][1]
    assert (reject.key, reject.table) == (None, "events.event")  # no id: the page's load is partial
    assert reject.name == "montreal offset=1000__records[1001]"
    assert reject.day == dt.date.fromisoformat(records[1]["date_debut"])
    assert "_id" not in json.dumps(rows[0]["extra"])  # CKAN's row number is not stable: not kept

    with pytest.raises(RecordError, match="CKAN error"):
        parse_montreal_page({"success": False, "error": {"__type": "Not Found Error"}}, "bad")
    with pytest.raises(RecordError, match=r"result\.records"):
        parse_montreal_page({"success": True, "result": {}}, "bad")


def test_montreal_quirks_on_mutated_real_records():
    base = montreal_records()[0]

    def variant(**changes):
        return {**base, **changes}

    records = [
        variant(lat="nan", long="nan"),  # 0: missing coordinates, no complaint
        variant(lat="45.5", long="nan"),  # 1: only one coordinate
        variant(lat=95.0),  # 2: out of range
        variant(date_debut="02/05/2024", url_fiche=base["url_fiche"][:-5] + "1"),  # 3: bad date → dropped
        variant(date_debut="2024-07-01T19:30:00", date_fin="2024-07-01T22:00:00", url_fiche="x-2"),  # 4: timed
        variant(date_debut="2024-07-01T00:00:00", date_fin="nan", url_fiche="x-3"),  # 5: midnight = date
        variant(date_fin="2024-04-30", url_fiche="x-4"),  # 6: end before start
        variant(arrondissement="Mercier\ufffd\ufffdHochelaga-Maisonneuve", url_fiche="x-5"),  # 7: U+FFFD
        variant(description="Visitez l'exposition Ã\xa0MontrÃ©al", url_fiche="x-6"),  # 8: mojibake
        variant(cout="Sur inscription", titre_adresse="Place des Tisserandes", url_fiche="x-7"),  # 9
        variant(url_fiche="x-7"),  # 10: duplicate id
        variant(titre="nan", url_fiche="x-8", adresse_principale="NaN"),  # 11: missing title
    ]
    for i, record in enumerate(records[1:], start=1):
        if record["url_fiche"] == base["url_fiche"]:
            record["url_fiche"] = f"{base['url_fiche'][:-5]}9000{i}"
    rows, rejects, total = parse_montreal_page(records, "mutated")
    assert total == 12
    got = {row["source_id"]: row for row in rows}
    assert len(rows) == 10

    assert got["67645"]["latitude"] is None and got["67645"]["longitude"] is None
    one = [r for r in rejects if r.error.record == "records[1] id 90001"]
    assert [(r.error.field, r.dropped) for r in one] == [("long", False)]
    assert "only one of latitude/longitude" in one[0].message and got["90001"]["latitude"] is None
    (bad_lat,) = [r for r in rejects if r.error.record == "records[2] id 90002"]
    assert bad_lat.error.field == "lat" and "95.0,-73.54692218055175 are out of range" in bad_lat.message

    (bad_date,) = [r for r in rejects if r.error.field == "date_debut"]
    assert bad_date.dropped and bad_date.record is records[3]
    assert str(bad_date.error) == (
        "request mutated, record records[3] id 1, field 'date_debut': expected a date like 2024-05-02, got '02/05/2024'"
    )

    timed = got["2"]
    assert timed["all_day"] is False and timed["starts_at"] == utc(2024, 7, 1, 23, 30)
    assert timed["ends_at"] == utc(2024, 7, 2, 2) and timed["start_local"] == dt.datetime(2024, 7, 1, 19, 30)
    midnight = got["3"]
    assert midnight["all_day"] is True and midnight["end_date"] == dt.date(2024, 7, 1)  # "nan" end = start
    assert midnight["ends_at"] == utc(2024, 7, 2, 4)
    assert got["4"]["extra"]["end_before_start"] is True and got["4"]["end_date"] == dt.date(2024, 4, 30)
    assert got["5"]["extra"]["arrondissement"] == "Mercier–Hochelaga-Maisonneuve"
    assert got["5"]["extra"]["repaired"] == ["arrondissement"]
    assert got["6"]["description"] == "Visitez l'exposition àMontréal"
    assert got["7"]["is_free"] is None and got["7"]["venue_name"] == "Place des Tisserandes"
    assert "unknown cost 'Sur inscription'" in only(rejects, "cout").message
    assert got["7"]["dedupe_key"] == "2024-05-02|nos regards nos voix fera fournache|place tisserandes"
    (dup,) = [r for r in rejects if r.error.record == "records[10] id 7"]
    assert dup.dropped and "duplicate url_fiche id" in dup.message
    assert (bad_date.key, bad_date.table) == ({"source": "montreal", "source_id": "1"}, "events.event")
    assert (bad_date.name, bad_date.day) == ("record_1", None)  # date_debut cannot be read
    assert dup.key == {"source": "montreal", "source_id": "7"}
    assert (dup.name, dup.day) == ("record_7", dt.date(2024, 5, 2))
    assert got["8"]["title"] is None and got["8"]["address"] is None
    assert only(rejects, "titre").dropped is False


def test_montreal_source_id():
    assert montreal_source_id("https://montreal.ca/evenements/de-nos-regards-67645") == "67645"
    assert montreal_source_id("https://montreal.ca/evenements/de-nos-regards-67645/?utm=x") == "67645"
    assert montreal_source_id("https://montreal.ca/evenements/sans-numero") is None
    assert montreal_source_id("nan") is None


# ------------------------------------------------------------------------------------------------------------
# Titles and keys


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("L'Été à  Montréal – Jazz & Blues!", "ete montreal jazz blues"),
        ("The Festival of Lights", "festival lights"),
        (
            "Lancement  du Club de lecture d'été  TD :  Ateliers Slime-Océan",
            "lancement club lecture ete td ateliers slime ocean",
        ),
        ("Dans l’œil du lièvre", "oeil lievre"),  # ligatures folded (lib.text.fold)
        ("Voyage au cœur", "voyage coeur"),
        ("VOYAGE AU CŒUR", "voyage coeur"),
        ("The Who", "who"),
        ("Le Un", "le un"),  # only stop words: kept
        ("", ""),
        (None, ""),
    ],
)
def test_normalise_title(text, expected):
    assert normalise_title(text) == expected


def test_dedupe_key():
    assert dedupe_key("RAMER LA MÉMOIRE", dt.date(2026, 8, 7), "Parc de la Promenade-Bellerive") == (
        "2026-08-07|ramer memoire|parc promenade bellerive"
    )
    assert dedupe_key("Ramer la mémoire!", "2026-08-07", None) == "2026-08-07|ramer memoire|"
    assert dedupe_key("x", dt.datetime(2026, 8, 7, 19, 30), "") == "2026-08-07|x|"


# ------------------------------------------------------------------------------------------------------------
# Deduplication on real-shaped rows


def lasalle_from_other_sources() -> list[dict]:
    """An Eventbrite event and an ICS occurrence for Montréal's "Autrefois, le boulevard LaSalle" (89919)."""
    payload = eventbrite_payload("omnievent__organization_events_expand_category.json")
    event = payload["events"][0]
    event.update(
        id="900000000001",
        name={"text": "AUTREFOIS le Boulevard Lasalle !", "html": "AUTREFOIS le Boulevard Lasalle !"},
        online_event=False,
        start={"timezone": "America/Toronto", "local": "2025-07-04T13:00:00", "utc": "2025-07-04T17:00:00Z"},
        end={"timezone": "America/Toronto", "local": "2025-07-04T16:00:00", "utc": "2025-07-04T20:00:00Z"},
        venue={"name": "Parc Félix-Leclerc", "latitude": "45.4238", "longitude": "-73.6251"},  # ~50 m away
    )
    eventbrite_rows, rejects, _ = parse_eventbrite_page(payload, "1162557119523", "synthetic")
    assert not [r for r in rejects if r.dropped]
    body = (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Test//EN\r\nBEGIN:VEVENT\r\nUID:lasalle@example.org\r\n"
        "DTSTAMP:20250601T120000Z\r\nSUMMARY:Autrefois\\, le boulevard LaSalle\r\n"
        "LOCATION:1080 avenue Dollard\\, Montréal (Québec) H8N 2T9\r\n"
        "DTSTART;TZID=America/Toronto:20250704T100000\r\nDTEND;TZID=America/Toronto:20250704T170000\r\n"
        "END:VEVENT\r\nEND:VCALENDAR\r\n"
    ).encode()
    ics_rows = add_dedupe_keys(parse_feed("lasalle", body, dt.date(2025, 7, 1), dt.date(2025, 7, 31)).value)
    assert len(ics_rows) == 1
    return eventbrite_rows + ics_rows


def test_cross_source_duplicates_found_with_rule_and_score():
    montreal = montreal_rows()
    rows = montreal + lasalle_from_other_sources()
    pairs = dedupe.find_duplicates(rows)
    keyed = {((p["source_a"], p["source_id_a"]), (p["source_b"], p["source_id_b"])): p for p in pairs}
    # Eventbrite names the park, the feed gives the street address: their venues disagree as text, so that
    # pair is not found, but both match Montréal's row and the cluster joins all three.
    assert set(keyed) == {
        (("eventbrite", "900000000001"), ("montreal", "89919")),
        (("ics:lasalle", "lasalle:lasalle@example.org:2025-07-04T14:00:00Z"), ("montreal", "89919")),
    }
    geo = keyed[(("eventbrite", "900000000001"), ("montreal", "89919"))]
    assert geo["rule"] == "title+date+geo" and geo["title_score"] == 100.0
    assert 40 < geo["distance_m"] < 70 and geo["start_date"] == dt.date(2025, 7, 4)
    venue = keyed[(("ics:lasalle", "lasalle:lasalle@example.org:2025-07-04T14:00:00Z"), ("montreal", "89919"))]
    assert venue["rule"] == "title+date+venue" and venue["venue_score"] >= dedupe.VENUE_THRESHOLD

    assignment = dedupe.clusters(pairs, rows)
    assert len(assignment) == len(rows)
    lasalle = assignment[("montreal", "89919")]
    assert lasalle["cluster_size"] == 3 and lasalle["canonical_source"] == "eventbrite"
    assert assignment[("eventbrite", "900000000001")]["is_canonical"] is True
    assert sum(info["cluster_size"] == 1 for info in assignment.values()) == len(rows) - 3
    duplicates = dedupe.duplicate_rows(pairs, assignment)
    assert all(d["merged"] and d["cluster_id"] == lasalle["cluster_id"] for d in duplicates)


def test_same_source_repeats_are_never_paired_or_chained():
    montreal = montreal_rows()
    assert dedupe.find_duplicates(montreal) == []  # 5 (titre, date_debut) repeats stay apart
    sessions = [r for r in montreal if r["title"] == "RAMER LA MÉMOIRE et VOILE-AVIRON SUR LA SKAWANOTI"]
    sessions = [r for r in sessions if r["start_date"] == dt.date(2026, 8, 7)]
    assert len(sessions) == 2
    other = {
        **sessions[0],
        "source": "ics:club",
        "source_id": "club:ramer:2026-08-07",
        "starts_at": sessions[0]["starts_at"] + dt.timedelta(hours=14),
        "venue_name": None,
        "address": None,
    }
    rows = [*sessions, other]
    pairs = dedupe.find_duplicates(rows)
    assert len(pairs) == 2  # the feed row matches both sessions
    assignment = dedupe.clusters(pairs, rows)
    montreal_clusters = {assignment[("montreal", r["source_id"])]["cluster_id"] for r in sessions}
    assert len(montreal_clusters) == 2  # never merged through the third source
    assert assignment[("ics:club", "club:ramer:2026-08-07")]["cluster_size"] == 2
    assert sorted(d["merged"] for d in dedupe.duplicate_rows(pairs, assignment)) == [False, True]


def test_different_venue_or_subset_title_is_not_a_duplicate():
    lasalle = by_id(montreal_rows())["89919"]
    far = {**lasalle, "source": "eventbrite", "source_id": "1", "latitude": 45.50, "longitude": -73.57}  # ~9 km
    far["address"] = "4101 rue Sherbrooke Est"
    assert dedupe.find_duplicates([lasalle, far]) == []
    other_title = {**lasalle, "source": "eventbrite", "source_id": "2", "title": "Autrefois"}
    assert dedupe.find_duplicates([lasalle, other_title]) == []  # subset of a longer title
    other_day = {**lasalle, "source": "eventbrite", "source_id": "3", "start_date": dt.date(2025, 7, 5)}
    assert dedupe.find_duplicates([lasalle, other_day]) == []


def test_clusters_are_stable_whatever_the_input_order():
    rows = montreal_rows() + lasalle_from_other_sources()
    expected = dedupe.clusters(dedupe.find_duplicates(rows), rows)
    shuffled = rows[:]
    random.Random(7).shuffle(shuffled)
    pairs = dedupe.find_duplicates(shuffled)
    assert pairs == dedupe.find_duplicates(rows)
    assert dedupe.clusters(list(reversed(pairs)), shuffled) == expected


# ------------------------------------------------------------------------------------------------------------
# Tables


def test_event_table_holds_every_ics_column_and_all_sources_load_together(tmp_path):
    assert set(EVENT_COLUMNS) <= set(tables.EVENT_TABLE_COLUMNS)
    assert set(tables.EVENT_TABLE_COLUMNS) - set(EVENT_COLUMNS) == {"dedupe_key"}
    assert [c.name for c in tables.event.primary_key.columns] == ["source", "source_id"]
    assert all(c.comment for table in tables.TABLES for c in table.columns)

    rows = (
        montreal_rows()
        + lasalle_from_other_sources()
        + eventbrite_page("dtoneill__organization_events_dmcc_2022.json")[0]
    )
    warehouse = Warehouse(f"sqlite:///{tmp_path / 'warehouse.db'}")
    warehouse.ensure_tables(tables.TABLES)
    first = warehouse.load(tables.event, rows, mode="upsert", run_id="r1")
    assert first.created == len(rows) == 507
    again = warehouse.load(tables.event, rows, mode="upsert", run_id="r2")
    assert (again.created, again.updated, again.unchanged) == (0, 0, 507)

    pairs = dedupe.find_duplicates(rows)
    assignment = dedupe.clusters(pairs, rows)
    assert warehouse.load(tables.event_duplicate, dedupe.duplicate_rows(pairs, assignment)).created == 2
    assert warehouse.load(tables.event_cluster, list(assignment.values())).created == 507
    stored = warehouse.fetch(tables.event.select().where(tables.event.c.source_id == "305411121887"))[0]
    assert stored["min_price"] is None and stored["extra"]["payload_encoding"] == "cp1252"
    assert stored["start_date"] == dt.date(2022, 4, 12)


def test_exact_title_when_the_venue_cannot_be_compared():
    exhibition = by_id(montreal_rows())["67645"]  # coordinates only, address "nan"
    feed = {
        **exhibition,
        "source": "ics:mhm",
        "source_id": "mhm:expo:2024-05-02",
        "title": "De nos regards et de nos voix, on fera de la fournache!",
        "latitude": None,
        "longitude": None,
        "venue_name": "Place des Tisserandes",
        "is_online": False,
    }
    (pair,) = dedupe.find_duplicates([exhibition, feed])
    assert (pair["rule"], pair["score"], pair["venue_score"]) == ("title_exact+date", 80.0, None)
    short = {**feed, "source_id": "mhm:short", "title": "Fournache"}  # one word: too weak without a venue
    assert dedupe.find_duplicates([exhibition, short]) == []
