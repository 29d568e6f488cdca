"""Write the recorded events sample: 13-15/03/2025 in Montréal, invented, shaped like the real responses.

Run ``python ingestion_platform/defs/events/sample/generate.py``: it rewrites every file below, byte for
byte the same on every run (no clock, no randomness). The layout is what each resource asks for when its
base URL is a ``file://`` directory (``lib.http.DirectoryTransport`` serves ``/a/b`` from ``a/b.json`` and
ignores the query string) or, for iCalendar, a ``file://`` feed URL:

==============================================================  ===============================================
``eventbrite/v3/organizations/274018390117/events.json``        ``EVENTBRITE_API_URL=file://<here>/eventbrite/v3``
                                                                ``EVENTBRITE_ORGANIZATION_IDS=274018390117``
                                                                one page (``has_more_items: false``), expanded
``montreal/api/3/action/datastore_search.json``                 ``MONTREAL_CKAN_URL=file://<here>/montreal``;
                                                                one CKAN page holding every record (``total``)
``ics/bibliotheques.ics``, ``ics/culture.ics``                  ``ICS_FEEDS=[{"name": "bibliotheques", "url":
                                                                "file://<here>/ics/bibliotheques.ics"}, ...]``
==============================================================  ===============================================

``python -m ingestion_platform.cli local-env`` writes exactly these settings into ``.env``.

What the days hold (America/Toronto, the events partitions' zone; EDT, UTC-4, since 9 March):

* Eventbrite, organization "Collectif Culture Montréal": 5 events (13th: a film night and an online
  volunteers' meeting; 14th: the tales evening; 15th: the Python workshop and a cancelled crafts market).
* Montréal open data: 7 records, all-day dates as the portal gives them, ``lat``/``long`` as strings,
  the literal ``"nan"`` for missing addresses, an online event that still has coordinates, an exhibition
  running from the 13th to the 15th.
* iCalendar, two feeds with a VTIMEZONE: ``bibliotheques`` (a daily story time with an EXDATE, so it occurs
  on the 13th and 15th only; the Python workshop; a cancelled book club; an all-day week) and ``culture``
  (the tales evening, a concert, an opening, an improv show in floating time, read in the feed's
  X-WR-TIMEZONE).
* Cross-source duplicates for ``events/duplicates``: the tales evening of the 14th is in all three sources
  (one cluster of three); the Python workshop of the 15th is in Eventbrite and ``ics:bibliotheques``; the
  concert of the 15th is in Montréal and ``ics:culture``. Five pairs, three clusters.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

HERE = Path(__file__).resolve().parent
TORONTO = ZoneInfo("America/Toronto")
ORGANIZATION_ID = "274018390117"
ORGANIZER_ID = "80123456791"
MONTREAL_RESOURCE = "6decf611-6f11-4f34-bb36-324d804c9bad"


# -- Eventbrite ------------------------------------------------------------------------------------------
def _moment(local: str) -> dict[str, str]:
    when = dt.datetime.fromisoformat(local).replace(tzinfo=TORONTO)
    return {
        "timezone": "America/Toronto",
        "local": when.strftime("%Y-%m-%dT%H:%M:%S"),
        "utc": when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def _venue(venue_id: str, name: str, street: str, postal: str, lat: str, lon: str) -> dict[str, Any]:
    return {
        "address": {
            "address_1": street,
            "address_2": None,
            "city": "Montréal",
            "region": "QC",
            "postal_code": postal,
            "country": "CA",
            "latitude": lat,
            "longitude": lon,
            "localized_address_display": f"{street}, Montréal, QC {postal}",
            "localized_area_display": "Montréal, QC",
            "localized_multi_line_address_display": [street, f"Montréal, QC {postal}"],
        },
        "resource_uri": f"https://www.eventbriteapi.com/v3/venues/{venue_id}/",
        "id": venue_id,
        "age_restriction": None,
        "capacity": None,
        "name": name,
        "latitude": lat,
        "longitude": lon,
    }


ORGANIZER = {
    "description": {
        "text": "Collectif de diffuseurs culturels de l'est et du centre de Montréal.",
        "html": "<p>Collectif de diffuseurs culturels de l'est et du centre de Montréal.</p>",
    },
    "long_description": {"text": "", "html": ""},
    "resource_uri": f"https://www.eventbriteapi.com/v3/organizers/{ORGANIZER_ID}/",
    "_type": "organizer",
    "id": ORGANIZER_ID,
    "name": "Collectif Culture Montréal",
    "url": f"https://www.eventbrite.ca/o/collectif-culture-montreal-{ORGANIZER_ID}",
    "num_past_events": 58,
    "num_future_events": 4,
    "twitter": None,
    "facebook": None,
    "organization_id": ORGANIZATION_ID,
    "disable_marketing_opt_in": False,
    "logo_id": None,
}

CATEGORIES = {
    "102": ("Science & Technology", "Science et technologie"),
    "105": ("Performing & Visual Arts", "Arts de la scène et arts visuels"),
    "110": ("Food & Drink", "Gastronomie"),
    "113": ("Community & Culture", "Communauté et culture"),
    "104": ("Film, Media & Entertainment", "Cinéma, médias et divertissement"),
}


def _price(amount: str) -> dict[str, Any]:
    cents = int(amount.replace(".", ""))
    return {"currency": "CAD", "value": cents, "major_value": amount, "display": f"{amount} CAD"}


def _event(
    event_id: str,
    title: str,
    summary: str,
    start: str,
    end: str,
    *,
    venue: dict[str, Any] | None,
    category: str,
    price: str | None,
    status: str = "completed",
    capacity: int = 80,
    created: str = "2025-01-22T14:05:31Z",
    changed: str = "2025-03-10T16:41:07Z",
) -> dict[str, Any]:
    slug = "-".join("".join(c if c.isalnum() else " " for c in title.lower()).split())
    name, localized = CATEGORIES[category]
    free = price is None
    return {
        "name": {"text": title, "html": title},
        "description": {"text": summary, "html": f"<p>{summary}</p>"},
        "id": event_id,
        "url": f"https://www.eventbrite.ca/e/{slug}-tickets-{event_id}",
        "start": _moment(start),
        "end": _moment(end),
        "organization_id": ORGANIZATION_ID,
        "created": created,
        "changed": changed,
        "published": created[:-3] + "58Z",
        "capacity": capacity,
        "capacity_is_custom": False,
        "status": status,
        "currency": "CAD",
        "listed": True,
        "shareable": True,
        "online_event": venue is None,
        "tx_time_limit": 1200,
        "hide_start_date": False,
        "hide_end_date": False,
        "locale": "fr_CA",
        "is_locked": False,
        "privacy_setting": "unlocked",
        "is_series": False,
        "is_series_parent": False,
        "inventory_type": "limited",
        "is_reserved_seating": False,
        "show_pick_a_seat": False,
        "show_seatmap_thumbnail": False,
        "show_colors_in_seatmap_thumbnail": False,
        "source": "coyote",
        "is_free": free,
        "version": None,
        "summary": summary,
        "facebook_event_id": None,
        "logo_id": None,
        "organizer_id": ORGANIZER_ID,
        "venue_id": venue["id"] if venue else None,
        "category_id": category,
        "subcategory_id": None,
        "format_id": "6" if venue is None else "11",
        "resource_uri": f"https://www.eventbriteapi.com/v3/events/{event_id}/",
        "is_externally_ticketed": False,
        "series_id": None,
        "logo": None,
        "venue": venue,
        "organizer": ORGANIZER,
        "category": {
            "resource_uri": f"https://www.eventbriteapi.com/v3/categories/{category}/",
            "id": category,
            "name": name,
            "name_localized": localized,
            "short_name": name.split(" ")[0],
            "short_name_localized": localized.split(" ")[0],
        },
        "ticket_availability": {
            "has_available_tickets": False,
            "minimum_ticket_price": _price(price or "0.00"),
            "maximum_ticket_price": _price(price or "0.00"),
            "is_sold_out": status != "canceled" and capacity <= 40,
            "start_sales_date": _moment(created[:10] + "T09:00"),
            "waitlist_available": False,
        },
    }


MERCIER = _venue(
    "250017731", "Maison de la culture Mercier", "8105, rue Hochelaga", "H1L 2K9", "45.5876412", "-73.5403267"
)


def eventbrite_page() -> dict[str, Any]:
    events = [
        _event(
            "1209876543105",
            "Projection : courts métrages québécois",
            "Six courts métrages de la relève, suivis d'une discussion avec les cinéastes.",
            "2025-03-13T19:30",
            "2025-03-13T21:45",
            venue=_venue("250017744", "Cinéma du Parc", "3575, avenue du Parc", "H2X 3P9", "45.5104388", "-73.5760212"),
            category="104",
            price="12.50",
            capacity=40,
        ),
        _event(
            "1209876543103",
            "Rencontre des bénévoles – printemps 2025",
            "Présentation de la saison et inscription aux équipes d'accueil (visioconférence).",
            "2025-03-13T18:30",
            "2025-03-13T19:30",
            venue=None,
            category="113",
            price=None,
            capacity=150,
        ),
        _event(
            "1209876543101",
            "Soirée contes et légendes du Québec",
            "Trois conteurs font revivre la chasse-galerie, le loup-garou et la dame aux glaïeuls.",
            "2025-03-14T19:00",
            "2025-03-14T21:00",
            venue=MERCIER,
            category="105",
            price=None,
            capacity=120,
        ),
        _event(
            "1209876543102",
            "Atelier d'initiation à Python",
            "Premiers pas en programmation : variables, boucles et un petit jeu. Ordinateurs fournis.",
            "2025-03-15T10:00",
            "2025-03-15T12:30",
            venue=_venue(
                "250017752",
                "Bibliothèque du Boisé",
                "2727, boulevard Thimens",
                "H4R 1T4",
                "45.5107234",
                "-73.6906411",
            ),
            category="102",
            price="15.00",
            capacity=24,
        ),
        _event(
            "1209876543104",
            "Marché d'artisans de mars",
            "Une trentaine d'artisans du Québec : céramique, bois, textile et produits de l'érable.",
            "2025-03-15T11:00",
            "2025-03-15T17:00",
            venue=_venue(
                "250017760", "Marché Bonsecours", "350, rue Saint-Paul Est", "H2Y 1H2", "45.5088612", "-73.5516534"
            ),
            category="110",
            price=None,
            status="canceled",
            capacity=400,
            changed="2025-03-12T09:17:44Z",
        ),
    ]
    pagination = {
        "object_count": len(events),
        "page_number": 1,
        "page_size": 50,
        "page_count": 1,
        "has_more_items": False,
    }
    return {"pagination": pagination, "events": events}


# -- Montréal open data (CKAN datastore_search) ----------------------------------------------------------
FIELDS = [
    ("_id", "int"),
    ("titre", "text"),
    ("url_fiche", "text"),
    ("description", "text"),
    ("date_debut", "text"),
    ("date_fin", "text"),
    ("type_evenement", "text"),
    ("public_cible", "text"),
    ("emplacement", "text"),
    ("inscription", "text"),
    ("cout", "text"),
    ("arrondissement", "text"),
    ("titre_adresse", "text"),
    ("adresse_principale", "text"),
    ("adresse_secondaire", "text"),
    ("code_postal", "text"),
    ("lat", "text"),
    ("long", "text"),
    ("x", "text"),
    ("y", "text"),
]

# titre | slug-id | description | debut | fin | type | public | emplacement | inscription | cout | arrondissement
# | titre_adresse | adresse_principale | code_postal | lat | long | x | y
RECORDS = [
    "Soirée contes et légendes du Québec|soiree-contes-et-legendes-du-quebec-71204|Trois conteurs font revivre "
    "les légendes d'ici : chasse-galerie, loup-garou et dame aux glaïeuls.|2025-03-14|2025-03-14|Art de la parole"
    "|Adultes|En salle|Aucune|Gratuit|Mercier–Hochelaga-Maisonneuve|Maison de la culture Mercier|8105, rue "
    "Hochelaga|H1L 2K9|45.587641|-73.540327|302861.4|5051718.9",
    "Exposition : Lumières d'hiver|exposition-lumieres-d-hiver-71188|Photographies de nuits d'hiver dans les "
    "ruelles du Plateau.|2025-03-13|2025-03-15|Exposition|Tous|En salle|Aucune|Gratuit|Le Plateau-Mont-Royal"
    "|Maison de la culture du Plateau-Mont-Royal|465, avenue du Mont-Royal Est|H2J 1W3|45.524815|-73.581224"
    "|299679.2|5044729.5",
    "Spectacle de marionnettes : Le loup et la lune|spectacle-de-marionnettes-le-loup-et-la-lune-71230|Un loup "
    "qui voulait décrocher la lune. Dès 4 ans.|2025-03-15|2025-03-15|Théâtre|Enfants|En salle|Requise|Gratuit"
    "|Rosemont–La Petite-Patrie|Maison de la culture Rosemont–La Petite-Patrie|nan|nan|45.540190|-73.598310"
    "|298353.0|5046437.1",
    "Concert : Les Vents de Montréal|concert-les-vents-de-montreal-71215|Quintette à vent : Ibert, Farrenc et "
    "une création de la relève montréalaise.|2025-03-15|2025-03-15|Musique|Tous|En salle|Requise|Payant"
    "|Ville-Marie|Salle Bourgie|1339, rue Sherbrooke Ouest|H3G 1J5|45.498680|-73.579140|299842.7|5041823.6",
    "Atelier de danse traditionnelle en ligne|atelier-de-danse-traditionnelle-en-ligne-71241|Apprenez un "
    "quadrille et une gigue depuis votre salon.|2025-03-14|2025-03-14|Danse|Tous|En ligne|Requise|Gratuit"
    "|Ville de Montréal|nan|nan|nan|45.508840|-73.554080|301807.3|5042951.0",
    "Fête des sucres au parc|fete-des-sucres-au-parc-71252|Tire sur la neige, musique trad et promenade en "
    "traîneau.|2025-03-15|2025-03-15|Fête et marché|Famille|À l'extérieur|Aucune|Gratuit|Ahuntsic-Cartierville"
    "|Parc-nature du Bois-de-Saraguay|nan|nan|45.516620|-73.743180|287034.1|5043804.2",
    "Cinéma : Les oiseaux de passage|cinema-les-oiseaux-de-passage-71197|Projection en plein air sous la "
    "marquise, chocolat chaud offert.|2025-03-13|2025-03-13|Cinéma|Tous|À l'extérieur|Aucune|Gratuit"
    "|Verdun|Auditorium de Verdun (parvis)|4110, boulevard LaSalle|H4G 2A5|45.461960|-73.566240|300849.9"
    "|5037743.8",
]


def montreal_page() -> dict[str, Any]:
    records = []
    for text in RECORDS:
        (titre, slug, description, debut, fin, kind, public, place, inscription, cout, borough, venue, street,
         postal, lat, lon, x, y) = text.split("|")  # fmt: skip
        records.append(
            {
                "titre": titre,
                "url_fiche": f"https://montreal.ca/evenements/{slug}",
                "description": description,
                "date_debut": debut,
                "date_fin": fin,
                "type_evenement": kind,
                "public_cible": public,
                "emplacement": place,
                "inscription": inscription,
                "cout": cout,
                "arrondissement": borough,
                "titre_adresse": venue,
                "adresse_principale": street,
                "adresse_secondaire": "nan",
                "code_postal": postal,
                "lat": lat,
                "long": lon,
                "x": x,
                "y": y,
            }
        )
    records.sort(key=lambda r: r["url_fiche"])  # the resource asks for sort=url_fiche asc
    records = [{"_id": 4100 + number, **record} for number, record in enumerate(records, start=1)]
    query = f"resource_id={MONTREAL_RESOURCE}&limit=1000&sort=url_fiche+asc"
    return {
        "help": "https://donnees.montreal.ca/api/3/action/help_show?name=datastore_search",
        "success": True,
        "result": {
            "include_total": True,
            "limit": 1000,
            "offset": 0,
            "records_format": "objects",
            "resource_id": MONTREAL_RESOURCE,
            "total_estimation_threshold": None,
            "records": records,
            "fields": [{"id": name, "type": kind} for name, kind in FIELDS],
            "sort": "url_fiche asc",
            "_links": {
                "start": f"/api/3/action/datastore_search?{query}",
                "next": f"/api/3/action/datastore_search?{query}&offset=1000",
            },
            "total": len(records),
            "total_was_estimated": False,
        },
    }


# -- iCalendar -------------------------------------------------------------------------------------------
VTIMEZONE = [
    "BEGIN:VTIMEZONE",
    "TZID:America/Toronto",
    "X-LIC-LOCATION:America/Toronto",
    "BEGIN:DAYLIGHT",
    "TZOFFSETFROM:-0500",
    "TZOFFSETTO:-0400",
    "TZNAME:EDT",
    "DTSTART:19700308T020000",
    "RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=2SU",
    "END:DAYLIGHT",
    "BEGIN:STANDARD",
    "TZOFFSETFROM:-0400",
    "TZOFFSETTO:-0500",
    "TZNAME:EST",
    "DTSTART:19701101T020000",
    "RRULE:FREQ=YEARLY;BYMONTH=11;BYDAY=1SU",
    "END:STANDARD",
    "END:VTIMEZONE",
]


def escape(text: str) -> str:
    """An iCalendar TEXT value (RFC 5545 3.3.11)."""
    return text.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,").replace("\n", "\\n")


def fold(line: str) -> list[str]:
    """A content line folded at 75 octets, never inside a UTF-8 character (RFC 5545 3.1)."""
    out, current, size = [], "", 0
    for char in line:
        width = len(char.encode("utf-8"))
        if size + width > 75:
            out.append(current)
            current, size = " ", 1
        current += char
        size += width
    return [*out, current]


def calendar(name: str, prodid: str, events: list[list[str]]) -> bytes:
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", f"PRODID:{prodid}", "CALSCALE:GREGORIAN", "METHOD:PUBLISH",
             f"X-WR-CALNAME:{escape(name)}", "X-WR-TIMEZONE:America/Toronto", *VTIMEZONE]  # fmt: skip
    for event in events:
        lines += ["BEGIN:VEVENT", *event, "END:VEVENT"]
    lines.append("END:VCALENDAR")
    return "".join(f"{part}\r\n" for line in lines for part in fold(line)).encode("utf-8")


def vevent(uid: str, summary: str, start: str, end: str, location: str, **extra: str) -> list[str]:
    """``start``/``end`` as ``20250314T190000`` (America/Toronto), ``date:20250313`` (all day) or
    ``floating:20250315T140000`` (no zone: read in ICS_DEFAULT_TZ)."""

    def when(prop: str, value: str) -> str:
        if value.startswith("date:"):
            return f"{prop};VALUE=DATE:{value[5:]}"
        if value.startswith("floating:"):
            return f"{prop}:{value[9:]}"
        return f"{prop};TZID=America/Toronto:{value}"

    lines = [f"UID:{uid}", "DTSTAMP:20250310T150000Z", when("DTSTART", start), when("DTEND", end)]
    lines += [f"SUMMARY:{escape(summary)}", f"LOCATION:{escape(location)}"]
    for prop, value in extra.items():  # a value starting with ";" carries parameters
        lines.append(f"{prop.replace('_', '-')}{value if value.startswith(';') else ':' + value}")
    return lines


def bibliotheques() -> bytes:
    return calendar(
        "Bibliothèques – activités",
        "-//Bibliotheques Montreal//Agenda des activites 4.2//FR",
        [
            vevent(
                "heure-du-conte-marc-favreau@agenda.biblio.example.org",
                "Heure du conte",
                "20250313T103000",
                "20250313T111500",
                "Bibliothèque Marc-Favreau, 500, boulevard Rosemont, Montréal",
                RRULE="FREQ=DAILY;COUNT=3",
                EXDATE=";TZID=America/Toronto:20250314T103000",
                CATEGORIES="Famille",
                DESCRIPTION=escape("Histoires et comptines pour les 3 à 5 ans. Relâche le vendredi 14."),
            ),
            vevent(
                "club-lecture-ados-mile-end-20250314@agenda.biblio.example.org",
                "Club de lecture ados",
                "20250314T160000",
                "20250314T170000",
                "Bibliothèque Mile End, 5434, avenue du Parc, Montréal",
                STATUS="CANCELLED",
                CATEGORIES="Adolescents",
                DESCRIPTION=escape("Annulé : l'animatrice est absente. Prochaine rencontre le 28 mars."),
            ),
            vevent(
                "atelier-python-boise-20250315@agenda.biblio.example.org",
                "Atelier d’initiation à Python",
                "20250315T100000",
                "20250315T123000",
                "Bibliothèque du Boisé, 2727, boulevard Thimens, Saint-Laurent",
                GEO="45.510700;-73.690600",
                URL="https://biblio.example.org/activites/atelier-python-boise",
                CATEGORIES="Numérique",
            ),
            vevent(
                "semaine-francophonie-2025@agenda.biblio.example.org",
                "Semaine de la francophonie en bibliothèque",
                "date:20250313",
                "date:20250316",
                "Toutes les bibliothèques",
                CATEGORIES="Événement spécial",
                TRANSP="TRANSPARENT",
            ),
        ],
    )


def culture() -> bytes:
    return calendar(
        "Sorties culturelles",
        "-//Sorties culturelles//Calendrier public 2.1//FR",
        [
            vevent(
                "vernissage-regards-fleuve-20250313@sorties.example.org",
                "Vernissage : Regards sur le fleuve",
                "20250313T170000",
                "20250313T190000",
                "Maison de la culture Notre-Dame-de-Grâce, 3755, rue Botrel, Montréal",
                GEO="45.472310;-73.613770",
            ),
            vevent(
                "contes-legendes-mercier-20250314@sorties.example.org",
                "Soirée contes et légendes du Québec",
                "20250314T190000",
                "20250314T210000",
                "Maison de la culture Mercier, 8105, rue Hochelaga, Montréal",
                GEO="45.587641;-73.540327",
                DESCRIPTION=escape("Chasse-galerie, loup-garou et dame aux glaïeuls : trois conteurs sur scène."),
            ),
            vevent(
                "impro-parc-lafontaine-20250315@sorties.example.org",
                "Match d'improvisation au chalet du parc",
                "floating:20250315T140000",
                "floating:20250315T153000",
                "Chalet du parc La Fontaine, Montréal",
            ),
            vevent(
                "vents-montreal-bourgie-20250315@sorties.example.org",
                "Concert – Les Vents de Montréal",
                "20250315T193000",
                "20250315T213000",
                "Salle Bourgie, 1339, rue Sherbrooke Ouest, Montréal",
                URL="https://sorties.example.org/concerts/les-vents-de-montreal",
            ),
        ],
    )


# -- files -----------------------------------------------------------------------------------------------
def _json(payload: Any) -> bytes:
    return (json.dumps(payload, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def build() -> dict[str, bytes]:
    """Every file of the sample: path relative to this folder -> bytes."""
    return {
        f"eventbrite/v3/organizations/{ORGANIZATION_ID}/events.json": _json(eventbrite_page()),
        "montreal/api/3/action/datastore_search.json": _json(montreal_page()),
        "ics/bibliotheques.ics": bibliotheques(),
        "ics/culture.ics": culture(),
    }


def main() -> None:
    files = build()
    for folder in ("eventbrite", "montreal", "ics"):
        for stale in (HERE / folder).rglob("*") if (HERE / folder).exists() else []:
            if stale.is_file() and stale.relative_to(HERE).as_posix() not in files:
                stale.unlink()
    for rel, body in sorted(files.items()):
        target = HERE / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(body)
    print(f"wrote {len(files)} files, {sum(map(len, files.values()))} bytes under {HERE}")


if __name__ == "__main__":
    main()
