"""Eventbrite and Montréal (CKAN) payloads → unified event rows; titles and keys for deduplication.

Pure functions: no I/O, no Dagster. Rows have exactly the columns of ``tables.event`` without lineage
(``ics.EVENT_COLUMNS`` + ``dedupe_key``), so they load into the same table as the iCalendar rows.

Rejects are :class:`lib.errors.Reject` objects carrying a :class:`RecordError` that names the request, the record
and the field. ``dropped=True`` means the record produced no row (dead-letter it); ``dropped=False`` means one value
was not taken as written (set to NULL or repaired) and the row still loads, like an ICS ``Reject`` at property
level. A record's rejects carry, when known, ``key={"source", "source_id"}``, ``table="events.event"`` and
``day`` = its local start date; a dropped one is named ``record_<source_id>`` (``<request>__records[i]`` /
``<request>__events[i]`` when the id cannot be read) for its dead letter. A bad record never stops the others;
only a payload that is not a page at all (an API error body, a CKAN ``success: false``, no records list) raises
:class:`RecordError`, so the caller dead-letters the payload.

Text is cleaned, repaired and normalised by :mod:`ingestion_platform.lib.text` (``clean_text``,
``repair_mojibake``, ``normalise_title``); only the ``"nan"`` rule (a datastore quirk) is local.

Decisions (data behind them: ``/work/shared/events/NOTES.md`` and the SOURCES.md files):

* **Encoding**: payloads are UTF-8 (a BOM is dropped). A body that is not valid UTF-8 is decoded as
  Windows-1252 (the recorded DMCC page is), else Latin-1, and the fact is recorded: ``decode_payload`` stores
  ``{"encoding", "reason"}`` under ``DECODING_NOTE`` in a JSON object payload; the page parsers turn it into a
  non-dropping ``encoding`` reject and ``extra["payload_encoding"]`` on every row. Nothing is lost.
* **Eventbrite**: ``source_id`` = event ``id``; ``starts_at``/``ends_at`` from ``start.utc``/``end.utc``
  (computed from ``local`` + ``timezone`` only when ``utc`` is missing), ``timezone`` = ``start.timezone``,
  ``start_local`` = ``start.local``, ``start_date`` its date (events ending after local midnight keep their
  start date). Statuses map through ``EVENTBRITE_STATUS``; the raw one is in ``extra["status_raw"]``.
  Venue, organizer and category come from the expanded objects, or from the optional ``venues`` /
  ``organizers`` lookups (``/venues/{id}/`` responses keyed by id) when the page only has ids. Prices come
  from ``ticket_availability`` (``major_value``, else minor-unit ``value`` / 100) or the pre-2016 inline
  ``ticket_classes``. ``is_series_parent`` events are kept and flagged (``extra["is_series_parent"]``): they
  repeat their children, the caller may filter them. Pagination follows ``has_more_items`` + ``continuation``
  (opaque), else ``page_number < page_count`` for the pre-2016 shape (see :class:`EventbritePagination`).
* **Montréal**: ``source_id`` = the numeric id at the end of ``url_fiche`` (CKAN's ``_id`` changes on reloads
  and is not kept). The literal ``"nan"`` (any case) and empty strings are missing values. ``date_debut`` /
  ``date_fin`` are dates → all-day events in America/Toronto: ``starts_at`` = local midnight of the first day,
  ``ends_at`` = local midnight after ``date_fin``, ``end_date`` = ``date_fin``; a value with a time of day
  (other than a bare midnight, which is how a datastore ``timestamp`` column prints a date) is a timed event.
  ``emplacement == "En ligne"`` → ``is_online``; ``cout`` Gratuit/Payant → ``is_free``; ``type_evenement`` →
  ``category``; ``titre_adresse`` → ``venue_name``; ``adresse_principale`` (+ ``adresse_secondaire``) →
  ``address``; ``arrondissement``, ``public_cible``, ``emplacement``, ``inscription`` go to ``extra``. U+FFFD runs
  in ``arrondissement`` (seen in live pulls) are repaired to an en dash and UTF-8-read-as-Latin-1 mojibake
  (``"Ã©"``, through ftfy) is repaired in every text; both are recorded in ``extra["repaired"]``. The feed has no
  status: rows are ``scheduled``.
* **Coordinates** outside -90..90 / -180..180, 0,0, or only one of the pair: both set to NULL, non-dropping reject.
* **End before start** is kept as written with ``extra["end_before_start"] = True`` (as ``ics.py`` does), so
  the table check sees it.
* A second record with the same ``source_id`` in one page is rejected (the first one is kept).
"""

from __future__ import annotations

import codecs
import datetime as dt
import json
import math
import re
import zoneinfo
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlsplit

from ingestion_platform.lib.errors import RecordError, Reject
from ingestion_platform.lib.text import clean_text, collapse_spaces, normalise_title, repair_mojibake

UTC = dt.UTC
MONTREAL_TZ = "America/Toronto"
DECODING_NOTE = "_ingestion_decoding"
"""Key that ``decode_payload`` adds to a JSON object decoded with a fallback encoding."""

EVENTBRITE_STATUS: dict[str, str] = {
    "draft": "draft",
    "live": "scheduled",
    "started": "started",
    "ended": "completed",
    "completed": "completed",
    "canceled": "cancelled",
    "cancelled": "cancelled",
    "deleted": "cancelled",
}
"""Eventbrite status → unified status; anything else becomes ``unknown`` with a non-dropping reject."""

EVENT_TABLE = "events.event"
"""The table every row and reject of this module is for."""

_REPLACEMENT_RUN = re.compile("\ufffd+")
_TRAILING_ID = re.compile(r"-(\d+)$")
_ONLY_DIGITS = re.compile(r"(\d+)$")


# --------------------------------------------------------------------------------------------------------------
# Rejects and decoding


"""Deprecated alias of :class:`lib.errors.Reject`, only for ``assets.py``'s annotation until its rewrite: do not use."""


def decode_text(body: bytes, request: str) -> tuple[str, str, str | None]:
    """``(text, encoding, reason)``: UTF-8 (BOM dropped), else Windows-1252, else Latin-1 (never fails).

    ``reason`` says why UTF-8 was not used (None when it was)."""
    if body.startswith(codecs.BOM_UTF8):
        body = body[len(codecs.BOM_UTF8) :]
    try:
        return body.decode("utf-8"), "utf-8", None
    except UnicodeDecodeError as exc:
        bad = body[exc.start : exc.start + 1].hex()
        reason = f"body is not valid UTF-8 ({exc.reason}: byte 0x{bad} at position {exc.start})"
    try:
        return body.decode("cp1252"), "cp1252", reason
    except UnicodeDecodeError:
        return body.decode("latin-1"), "latin-1", reason


def decode_payload(body: bytes, request: str) -> Any:
    """The JSON value of a raw payload.

    Not UTF-8: decoded as Windows-1252 (else Latin-1) and, for a JSON object, ``payload[DECODING_NOTE] =
    {"encoding", "reason"}`` records it (the page parsers report it). Raises :class:`RecordError` naming the
    request for an empty body or one that is not JSON (e.g. an HTML error page)."""
    if not body or not body.strip():
        raise RecordError("empty body", request=request)
    text, encoding, reason = decode_text(body, request)
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        start = " ".join(text[:60].split())
        raise RecordError(
            f"body is not JSON ({exc.msg} at line {exc.lineno} column {exc.colno}); it starts with {start!r}",
            request=request,
        ) from None
    if reason is not None and isinstance(value, dict):
        value[DECODING_NOTE] = {"encoding": encoding, "reason": reason}
    return value


def _decoding_note(payload: Mapping[str, Any], request: str) -> tuple[str | None, list[Reject]]:
    note = payload.get(DECODING_NOTE)
    if not isinstance(note, Mapping):
        return None, []
    encoding = str(note.get("encoding"))
    error = RecordError(
        f"{note.get('reason')}; decoded as {encoding} (the raw payload is kept as received)",
        request=request,
        field="encoding",
    )
    return encoding, [Reject(error, None, dropped=False, table=EVENT_TABLE)]


class _Notes:
    """Non-dropping problems found while mapping one record."""

    def __init__(self, request: str, record: Any) -> None:
        self.request = request
        self.record = record
        self.label = ""
        self.items: list[Reject] = []

    def add(self, field: str, message: str) -> None:
        error = RecordError(message, request=self.request, record=self.label, field=field)
        self.items.append(Reject(error, self.record, dropped=False, table=EVENT_TABLE))

    def fail(self, field: str | None, message: str) -> RecordError:
        return RecordError(message, request=self.request, record=self.label, field=field)


# --------------------------------------------------------------------------------------------------------------
# Small value readers


def _text(value: Any) -> str | None:
    """``lib.text.clean_text`` (line breaks kept), and None for the literal ``"nan"`` (any case) of the datastore."""
    text = clean_text(value)
    return None if text is None or text.lower() == "nan" else text


def _get(obj: Any, *path: str) -> Any:
    for name in path:
        if not isinstance(obj, Mapping):
            return None
        obj = obj.get(name)
    return obj


def _coords(lat: Any, lon: Any, notes: _Notes, lat_field: str, lon_field: str) -> tuple[float | None, float | None]:
    values = []
    for value, field in ((lat, lat_field), (lon, lon_field)):
        if isinstance(value, str):
            value = _text(value)
        if value is None or (isinstance(value, float) and math.isnan(value)):
            values.append(None)
            continue
        try:
            number = float(value)
        except (TypeError, ValueError):
            notes.add(field, f"expected a number, got {value!r}; coordinates ignored")
            return None, None
        if math.isnan(number) or math.isinf(number):
            values.append(None)
            continue
        values.append(number)
    latitude, longitude = values
    if latitude is None and longitude is None:
        return None, None
    if latitude is None or longitude is None:
        missing = lat_field if latitude is None else lon_field
        notes.add(missing, "only one of latitude/longitude is present; coordinates ignored")
        return None, None
    if not (-90 <= latitude <= 90) or not (-180 <= longitude <= 180) or (latitude == 0 and longitude == 0):
        field = lat_field if not (-90 <= latitude <= 90) else lon_field
        notes.add(field, f"coordinates {latitude},{longitude} are out of range or 0,0; ignored")
        return None, None
    return latitude, longitude


def _zone(name: Any, notes: _Notes, field: str) -> zoneinfo.ZoneInfo | None:
    text = _text(name)
    if text is None:
        return None
    try:
        return zoneinfo.ZoneInfo(text)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        notes.add(field, f"unknown IANA time zone {text!r}; ignored")
        return None


def _instant(value: Any, notes: _Notes, field: str, *, required: bool = False) -> dt.datetime | None:
    """A UTC instant from ``"2019-03-19T23:30:00Z"`` (naive values are UTC)."""
    text = _text(value)
    if text is None:
        if required:
            raise notes.fail(field, "missing value")
        return None
    try:
        parsed = dt.datetime.fromisoformat(text)
    except ValueError:
        message = f"expected an ISO 8601 UTC time like 2019-03-19T23:30:00Z, got {text!r}"
        if required:
            raise notes.fail(field, message) from None
        notes.add(field, message + "; ignored")
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _local(value: Any, notes: _Notes, field: str) -> dt.datetime | None:
    """A naive wall-clock time from ``"2019-03-19T19:30:00"``."""
    text = _text(value)
    if text is None:
        return None
    try:
        parsed = dt.datetime.fromisoformat(text)
    except ValueError:
        notes.add(field, f"expected a local time like 2019-03-19T19:30:00, got {text!r}; ignored")
        return None
    return parsed.replace(tzinfo=None)


def _money(value: Any) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def _bool(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


def _compact(mapping: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in mapping.items() if value is not None}


def _one_line(*parts: Any) -> str | None:
    kept = [text for text in (_text(part) for part in parts) if text]
    return ", ".join(collapse_spaces(text) for text in kept) or None


# --------------------------------------------------------------------------------------------------------------
# Titles and keys (``normalise_title`` is ``lib.text.normalise_title``, imported above)


def dedupe_key(title: str | None, start_date: dt.date | str | None, venue: str | None) -> str:
    """``"<local start date>|<normalised title>|<normalised venue>"``: rows with the same key are the same
    event by the exact rule; ``dedupe.find_duplicates`` adds the fuzzy one."""
    if isinstance(start_date, dt.datetime):
        start_date = start_date.date()
    day = start_date.isoformat() if isinstance(start_date, dt.date) else (start_date or "")
    return f"{day}|{normalise_title(title)}|{normalise_title(venue)}"


def add_dedupe_keys(rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Copies of ``rows`` (e.g. ``ics.parse_feed`` rows) with ``dedupe_key`` set from title, date, venue."""
    return [
        {**row, "dedupe_key": dedupe_key(row.get("title"), row.get("start_date"), _venue_text(row))} for row in rows
    ]


def _venue_text(row: Mapping[str, Any]) -> str | None:
    return row.get("venue_name") or row.get("address")


# --------------------------------------------------------------------------------------------------------------
# Eventbrite


@dataclass(frozen=True)
class EventbritePagination:
    """The ``pagination`` object of a list response and what to ask for next.

    Never trust ``object_count`` (the 2014 fixtures contradict their own contents); callers must also cap the
    number of pages they follow."""

    page_number: int | None = None
    page_size: int | None = None
    page_count: int | None = None
    object_count: int | None = None
    has_more_items: bool | None = None
    continuation: str | None = None

    @property
    def next_params(self) -> dict[str, Any] | None:
        """Query parameters for the next page, None when this is the last page."""
        if self.has_more_items is False:
            return None
        if self.has_more_items is True:
            if self.continuation:
                return {"continuation": self.continuation}
            return {"page": self.page_number + 1} if self.page_number is not None else None
        # Pre-2016 shape: no has_more_items.
        if self.page_number is not None and self.page_count is not None and self.page_number < self.page_count:
            return {"page": self.page_number + 1}
        return None

    @classmethod
    def from_payload(cls, pagination: Any) -> EventbritePagination:
        if not isinstance(pagination, Mapping):
            return cls()

        def number(name: str) -> int | None:
            value = pagination.get(name)
            return value if isinstance(value, int) and not isinstance(value, bool) else None

        continuation = pagination.get("continuation")
        return cls(
            page_number=number("page_number"),
            page_size=number("page_size"),
            page_count=number("page_count"),
            object_count=number("object_count"),
            has_more_items=_bool(pagination.get("has_more_items")),
            continuation=str(continuation) if continuation else None,
        )


@dataclass(frozen=True)
class _Records:
    """How one source's records are read by :func:`_page_rows`."""

    source: str
    """``source`` of the rows (and of the rejects' keys)."""
    noun: str
    """``"an event"``: what a record is, for the message when an item is not an object."""
    items: str
    """``"events"``: the list the records come from; record labels are ``events[i]`` (+ `` id <source_id>``)."""
    build: Callable[[Mapping[str, Any], _Notes], dict[str, Any]]
    source_id: Callable[[Any], str | None]
    """The record's id read from the raw record (None when it cannot be read); never raises."""
    start_day: Callable[[Mapping[str, Any]], dt.date | None]
    """The record's local start date read from the raw record (None when it cannot be read); never raises."""
    duplicate: tuple[str, str]
    """``(field, message)`` of the reject for a second record with the same id."""


def _page_rows(
    request: str, records: list[Any], start: int, how: _Records, encoding: str | None, rejects: list[Reject]
) -> list[dict[str, Any]]:
    """Rows of one page: a record that cannot be mapped (or repeats an id) is a dropped reject appended to
    ``rejects`` with the raw record; value-level notes of the mapped records are appended too. Rejects name the
    record's key, table and start day when they are known."""
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    for index, item in enumerate(records, start=start):
        position = f"{how.items}[{index}]"
        source_id = how.source_id(item)
        notes = _Notes(request, item)
        notes.label = f"{position} id {source_id}" if source_id else position
        row: dict[str, Any] | None = None
        try:
            if not isinstance(item, Mapping):
                raise notes.fail(None, f"expected {how.noun} object, got {type(item).__name__}")
            row = how.build(item, notes)
            if row["source_id"] in seen:
                raise notes.fail(how.duplicate[0], f"{how.duplicate[1]} in the page; the first one is kept")
        except RecordError as exc:
            if row is not None:
                source_id, day = row["source_id"], row["start_date"]
            else:
                day = how.start_day(item) if isinstance(item, Mapping) else None
            rejects.append(
                Reject(
                    exc,
                    item,
                    dropped=True,
                    key={"source": how.source, "source_id": source_id} if source_id else None,
                    table=EVENT_TABLE,
                    day=day,
                    name=f"record_{source_id}" if source_id else f"{request}__{position}",
                )
            )
            continue
        seen.add(row["source_id"])
        if encoding:
            row["extra"]["payload_encoding"] = encoding
        for note in notes.items:
            note.key = {"source": how.source, "source_id": row["source_id"]}
            note.day = row["start_date"]
        rejects.extend(notes.items)
        rows.append(row)
    return rows


def parse_eventbrite_page(
    payload: dict,
    organization_id: str,
    request: str,
    *,
    venues: Mapping[str, Mapping[str, Any]] | None = None,
    organizers: Mapping[str, Mapping[str, Any]] | None = None,
) -> tuple[list[dict[str, Any]], list[Reject], EventbritePagination]:
    """Rows, rejects and pagination for one ``/organizations/{id}/events/`` page (or one ``/events/{id}/``).

    ``venues`` / ``organizers`` map ids to ``/venues/{id}/`` / ``/organizers/{id}/`` objects for pages fetched
    without ``expand``. Raises :class:`RecordError` for an Eventbrite error body or a payload without events."""
    if not isinstance(payload, Mapping):
        raise RecordError(f"expected a JSON object, got {type(payload).__name__}", request=request)
    if "error" in payload and "events" not in payload:
        raise RecordError(
            f"Eventbrite error {payload.get('error')} (status {payload.get('status_code')}): "
            f"{payload.get('error_description')}",
            request=request,
            field="error",
        )
    events = payload.get("events")
    if events is None and "id" in payload and "start" in payload:
        events = [payload]  # GET /events/{id}/
    if not isinstance(events, list):
        raise RecordError("expected an 'events' list", request=request, field="events")

    encoding, rejects = _decoding_note(payload, request)

    def build(event: Mapping[str, Any], notes: _Notes) -> dict[str, Any]:
        event_id = _eventbrite_id(event)
        return _eventbrite_row(event, event_id, organization_id, notes, venues or {}, organizers or {})

    how = _Records(
        "eventbrite", "an event", "events", build, _eventbrite_id, _eventbrite_start_day, ("id", "duplicate event id")
    )
    rows = _page_rows(request, events, 0, how, encoding, rejects)
    return rows, rejects, EventbritePagination.from_payload(payload.get("pagination"))


def _eventbrite_id(event: Any) -> str | None:
    return _text(event.get("id")) if isinstance(event, Mapping) else None


def _eventbrite_start_day(event: Mapping[str, Any]) -> dt.date | None:
    """The local start date of an event that could not be mapped, when its start can still be read."""
    scratch = _Notes("", event)  # the record's problems are reported by the reject itself
    zone_name = _text(event.get("timezone"))
    if zone_name and _zone(zone_name, scratch, "timezone") is None:
        zone_name = None
    _, _, local = _eventbrite_time(event.get("start"), scratch, "start", required=False, zone_name=zone_name)
    return local.date() if local is not None else None


def _eventbrite_row(
    event: Mapping[str, Any],
    event_id: str | None,
    organization_id: str,
    notes: _Notes,
    venues: Mapping[str, Mapping[str, Any]],
    organizers: Mapping[str, Mapping[str, Any]],
) -> dict[str, Any]:
    if not event_id:
        raise notes.fail("id", "missing event id")

    # Pre-2016 detail responses send "start"/"end" as UTC strings and the zone at the top level.
    event_zone = _text(event.get("timezone"))
    if event_zone:
        event_zone = _zone(event_zone, notes, "timezone") and event_zone
    starts_at, timezone, start_local = _eventbrite_time(
        event.get("start"), notes, "start", required=True, zone_name=event_zone
    )
    ends_at, _, end_local = _eventbrite_time(
        event.get("end"), notes, "end", required=False, zone_name=timezone or event_zone
    )
    extra: dict[str, Any] = {}
    if ends_at is not None and ends_at < starts_at:
        extra["end_before_start"] = True

    status_raw = _text(event.get("status"))
    status = EVENTBRITE_STATUS.get((status_raw or "").lower())
    if status is None:
        notes.add("status", f"unknown Eventbrite status {status_raw!r}; stored as 'unknown'")
        status = "unknown"

    name = event.get("name")
    title = _text(name.get("text") if isinstance(name, Mapping) else name)
    if title is None:
        notes.add("name", "missing event name")
    description = event.get("description")
    description = _text(description.get("text") if isinstance(description, Mapping) else description)

    venue_id = _text(event.get("venue_id")) or _text(_get(event, "venue", "id"))
    venue = event.get("venue") if isinstance(event.get("venue"), Mapping) else venues.get(venue_id or "")
    address = _get(venue, "address") or {}
    latitude, longitude = _coords(
        _first(_get(venue, "latitude"), _get(address, "latitude")),
        _first(_get(venue, "longitude"), _get(address, "longitude")),
        notes,
        "venue.latitude",
        "venue.longitude",
    )

    organizer_id = _text(event.get("organizer_id")) or _text(_get(event, "organizer", "id"))
    organizer = (
        event.get("organizer") if isinstance(event.get("organizer"), Mapping) else organizers.get(organizer_id or "")
    )
    category = event.get("category") if isinstance(event.get("category"), Mapping) else None

    sent_organization = _text(event.get("organization_id"))
    if sent_organization and organization_id and sent_organization != str(organization_id):
        notes.add("organization_id", f"event belongs to organization {sent_organization}, not {organization_id}")

    is_free, currency, min_price, max_price, availability = _eventbrite_prices(event)
    extra.update(
        _compact(
            {
                "status_raw": status_raw,
                "organization_id": sent_organization or (str(organization_id) if organization_id else None),
                "venue_id": venue_id,
                "organizer_id": organizer_id,
                "category_id": _text(event.get("category_id")) or _text(_get(category, "id")),
                "subcategory_id": _text(event.get("subcategory_id")),
                "format_id": _text(event.get("format_id")),
                "is_series": _bool(event.get("is_series")),
                "is_series_parent": _bool(event.get("is_series_parent")),
                "listed": _bool(event.get("listed")),
                "locale": _text(event.get("locale")),
                "capacity": event.get("capacity") if isinstance(event.get("capacity"), int) else None,
                "hide_end_date": _bool(event.get("hide_end_date")),
                **availability,
            }
        )
    )

    venue_name = _text(_get(venue, "name"))
    row = {
        "source": "eventbrite",
        "source_id": event_id,
        "title": title,
        "summary": _text(event.get("summary")),
        "description": description,
        "url": _text(event.get("url")),
        "status": status,
        "starts_at": starts_at,
        "ends_at": ends_at,
        "timezone": timezone,
        "start_local": start_local,
        "start_date": start_local.date(),
        "end_date": end_local.date() if end_local is not None else None,
        "all_day": False,
        "is_online": _bool(event.get("online_event")),
        "venue_name": venue_name,
        "address": _one_line(_get(address, "address_1"), _get(address, "address_2")),
        "city": _text(_get(address, "city")),
        "region": _text(_get(address, "region")),
        "postal_code": _text(_get(address, "postal_code")),
        "country": _text(_get(address, "country")),
        "latitude": latitude,
        "longitude": longitude,
        "organizer": _text(_get(organizer, "name")),
        "category": _text(_get(category, "name")),
        "is_free": is_free,
        "currency": currency,
        "min_price": min_price,
        "max_price": max_price,
        "series_id": _text(event.get("series_id")),
        "recurrence_id": None,
        "source_updated_at": _instant(event.get("changed"), notes, "changed"),
        "extra": extra,
    }
    row["dedupe_key"] = dedupe_key(title, row["start_date"], venue_name or row["address"])
    return row


def _first(*values: Any) -> Any:
    return next((value for value in values if value is not None and value != ""), None)


def _eventbrite_time(
    block: Any, notes: _Notes, field: str, *, required: bool, zone_name: str | None = None
) -> tuple[dt.datetime | None, str | None, dt.datetime | None]:
    """``(utc instant, IANA zone name, naive local time)`` of a ``{timezone, local, utc}`` block."""
    if isinstance(block, str):
        block = {"utc": block}
    if not isinstance(block, Mapping):
        if required:
            raise notes.fail(field, "missing start {timezone, local, utc}")
        return None, None, None
    zone = _zone(block.get("timezone"), notes, f"{field}.timezone")
    if zone is None and zone_name:
        zone = zoneinfo.ZoneInfo(zone_name)
    utc = _instant(block.get("utc"), notes, f"{field}.utc", required=False)
    local = _local(block.get("local"), notes, f"{field}.local")
    if utc is None and local is not None and zone is not None:
        utc = local.replace(tzinfo=zone).astimezone(UTC)
    if utc is None:
        if required:
            raise notes.fail(f"{field}.utc", "no usable time (utc, or local with a timezone)")
        return None, None, None
    if zone is not None:
        expected = utc.astimezone(zone).replace(tzinfo=None)
        if local is not None and local != expected:
            notes.add(
                f"{field}.local",
                f"{local.isoformat()} disagrees with {field}.utc {utc.isoformat()} in {zone.key} "
                f"({expected.isoformat()}); the UTC time is kept",
            )
        local = expected
    elif local is None:
        local = utc.replace(tzinfo=None)
    return utc, zone.key if zone is not None else None, local


def _eventbrite_prices(
    event: Mapping[str, Any],
) -> tuple[bool | None, str | None, Decimal | None, Decimal | None, dict[str, Any]]:
    """``(is_free, currency, min_price, max_price, extra)`` from ticket_availability or ticket_classes."""
    currency = _text(event.get("currency"))
    is_free = _bool(event.get("is_free"))
    availability = event.get("ticket_availability")
    extra: dict[str, Any] = {}
    prices: list[Decimal] = []
    if isinstance(availability, Mapping):
        extra["has_available_tickets"] = _bool(availability.get("has_available_tickets"))
        extra["is_sold_out"] = _bool(availability.get("is_sold_out"))
        for name in ("minimum_ticket_price", "maximum_ticket_price"):
            price = availability.get(name)
            if not isinstance(price, Mapping):
                continue
            amount = _money(price.get("major_value"))
            if amount is None and _money(price.get("value")) is not None:
                amount = _money(price.get("value")) / 100
            if amount is not None:
                prices.append(amount)
                currency = _text(price.get("currency")) or currency
    classes = event.get("ticket_classes")
    if not prices and isinstance(classes, list):  # pre-2016 shape: costs in minor units
        frees = []
        for ticket in classes:
            if not isinstance(ticket, Mapping):
                continue
            if ticket.get("free") is True:
                prices.append(Decimal(0))
                frees.append(True)
                continue
            value = _money(_get(ticket, "cost", "value"))
            if value is not None:
                prices.append(value / 100)
                frees.append(False)
                currency = _text(_get(ticket, "cost", "currency")) or currency
        if is_free is None and frees:
            is_free = all(frees)
    min_price = min(prices).quantize(Decimal("0.01")) if prices else None
    max_price = max(prices).quantize(Decimal("0.01")) if prices else None
    return is_free, currency, min_price, max_price, extra


# --------------------------------------------------------------------------------------------------------------
# Montréal (CKAN datastore_search)


def parse_montreal_page(
    payload: dict | list, request: str, *, timezone: str = MONTREAL_TZ
) -> tuple[list[dict[str, Any]], list[Reject], int | None]:
    """Rows, rejects and the datastore's ``total`` for one ``datastore_search`` response.

    Accepts the CKAN envelope (``{"success", "result": {"records", "total", "offset", ...}}``), a bare
    ``result`` object, or a plain list of records (``total`` = its length). Raises :class:`RecordError` for
    ``success: false`` or a payload without a records list."""
    zone = zoneinfo.ZoneInfo(timezone)
    encoding: str | None = None
    rejects: list[Reject] = []
    if isinstance(payload, list):
        records, total, offset = payload, len(payload), 0
    elif isinstance(payload, Mapping):
        encoding, rejects = _decoding_note(payload, request)
        if payload.get("success") is False:
            raise RecordError(f"CKAN error: {payload.get('error')!r}", request=request, field="success")
        result = payload.get("result", payload)
        records = result.get("records") if isinstance(result, Mapping) else None
        if not isinstance(records, list):
            raise RecordError("expected result.records to be a list", request=request, field="records")
        total = result.get("total") if isinstance(result.get("total"), int) else None
        offset = result.get("offset") if isinstance(result.get("offset"), int) else 0
    else:
        raise RecordError(f"expected a JSON object, got {type(payload).__name__}", request=request)

    how = _Records(
        "montreal",
        "a record",
        "records",
        lambda record, notes: _montreal_row(record, zone, notes),
        lambda record: montreal_source_id(record.get("url_fiche")) if isinstance(record, Mapping) else None,
        lambda record: _montreal_start_day(record, zone),
        ("url_fiche", "duplicate url_fiche id"),
    )
    rows = _page_rows(request, records, offset, how, encoding, rejects)
    return rows, rejects, total


def montreal_source_id(url_fiche: str | None) -> str | None:
    """``"https://montreal.ca/evenements/<slug>-67645"`` → ``"67645"`` (None when there is no trailing id)."""
    text = _text(url_fiche)
    if not text:
        return None
    path = urlsplit(text).path.rstrip("/")
    match = _TRAILING_ID.search(path) or _ONLY_DIGITS.search(path.rsplit("/", 1)[-1])
    return match.group(1) if match else None


def _montreal_row(record: Mapping[str, Any], zone: zoneinfo.ZoneInfo, notes: _Notes) -> dict[str, Any]:
    repaired: list[str] = []

    def text(name: str, fix: Callable[[str], str] | None = None) -> str | None:
        raw = record.get(name)
        changed = False
        if isinstance(raw, str):  # before whitespace is collapsed: "à" read as cp1252 is "Ã" + NO-BREAK SPACE
            raw, changed = repair_mojibake(raw)
        value = _text(raw)
        if value and fix is not None and "\ufffd" in value:
            value, changed = fix(value), True
        if changed:
            repaired.append(name)
        return value

    url = text("url_fiche")
    source_id = montreal_source_id(url)
    if source_id is None:
        raise notes.fail("url_fiche", f"no numeric event id at the end of url_fiche {url!r}")

    start = _montreal_date(record.get("date_debut"), zone, notes, "date_debut", required=True)
    end = _montreal_date(record.get("date_fin"), zone, notes, "date_fin", required=False) or start
    all_day = isinstance(start, dt.date) and not isinstance(start, dt.datetime)
    extra: dict[str, Any] = {}
    if all_day:
        start_local = dt.datetime.combine(start, dt.time())
        if isinstance(end, dt.datetime):
            end = end.date()
        end_date = end
        ends_at = _local_midnight(end + dt.timedelta(days=1), zone)
    else:
        start_local = start
        if isinstance(end, dt.datetime):
            end_date = end.date()
            ends_at = end.replace(tzinfo=zone).astimezone(UTC)
        else:  # timed start, date-only end: the end is the end of that day
            end_date = end
            ends_at = _local_midnight(end + dt.timedelta(days=1), zone)
    starts_at = start_local.replace(tzinfo=zone).astimezone(UTC)
    if ends_at < starts_at or end_date < start_local.date():
        extra["end_before_start"] = True

    title = text("titre")
    if title is None:
        notes.add("titre", "missing title")
    latitude, longitude = _coords(record.get("lat"), record.get("long"), notes, "lat", "long")

    emplacement = text("emplacement")
    is_online = normalise_title(emplacement) == "ligne" if emplacement else None
    cout = text("cout")
    cout_key = normalise_title(cout)
    is_free = True if cout_key.startswith("gratuit") else False if cout_key.startswith("payant") else None
    if cout and is_free is None:
        notes.add("cout", f"unknown cost {cout!r} (expected Gratuit or Payant); is_free left empty")

    venue_name = text("titre_adresse")
    address = _one_line(text("adresse_principale"), text("adresse_secondaire"))
    extra.update(
        _compact(
            {
                "arrondissement": text("arrondissement", fix=lambda v: _REPLACEMENT_RUN.sub("–", v)),
                "public_cible": text("public_cible"),
                "emplacement": emplacement,
                "cout": cout,
                "inscription": text("inscription"),
            }
        )
    )
    if repaired:
        extra["repaired"] = sorted(set(repaired))
    row = {
        "source": "montreal",
        "source_id": source_id,
        "title": title,
        "summary": None,
        "description": text("description"),
        "url": url,
        "status": "scheduled",
        "starts_at": starts_at,
        "ends_at": ends_at,
        "timezone": zone.key,
        "start_local": start_local,
        "start_date": start_local.date(),
        "end_date": end_date,
        "all_day": all_day,
        "is_online": is_online,
        "venue_name": venue_name,
        "address": address,
        "city": "Montréal",
        "region": "QC",
        "postal_code": text("code_postal"),
        "country": "CA",
        "latitude": latitude,
        "longitude": longitude,
        "organizer": None,
        "category": text("type_evenement"),
        "is_free": is_free,
        "currency": None,
        "min_price": None,
        "max_price": None,
        "series_id": None,
        "recurrence_id": None,
        "source_updated_at": None,
        "extra": extra,
    }
    row["dedupe_key"] = dedupe_key(title, row["start_date"], venue_name or address)
    return row


def _montreal_start_day(record: Mapping[str, Any], zone: zoneinfo.ZoneInfo) -> dt.date | None:
    """The local start date of a record that could not be mapped, when ``date_debut`` can still be read."""
    start = _montreal_date(record.get("date_debut"), zone, _Notes("", record), "date_debut", required=False)
    return start.date() if isinstance(start, dt.datetime) else start


def _local_midnight(day: dt.date, zone: zoneinfo.ZoneInfo) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), tzinfo=zone).astimezone(UTC)


def _montreal_date(
    value: Any, zone: zoneinfo.ZoneInfo, notes: _Notes, field: str, *, required: bool
) -> dt.date | dt.datetime | None:
    """A date (all-day) or a naive local datetime; a bare local midnight counts as a date."""
    text = _text(value)
    if text is None:
        if required:
            raise notes.fail(field, "missing date")
        return None
    try:
        if len(text) == 10:
            return dt.date.fromisoformat(text)
        parsed = dt.datetime.fromisoformat(text)
    except ValueError:
        message = f"expected a date like 2024-05-02, got {text!r}"
        if required:
            raise notes.fail(field, message) from None
        notes.add(field, message + "; the start date is used")
        return None
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(zone).replace(tzinfo=None)
    if parsed.time() == dt.time():
        return parsed.date()
    return parsed
