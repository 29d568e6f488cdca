"""PMU payloads -> table rows, with units normalised (see ``pmu.tables``) and quirks handled.

Every ``parse_*`` function takes the decoded JSON of one response and returns ``Parsed(value,
rejects)``: the plain row dicts it could read, and one :class:`Reject` per record it could not (a
race, a meeting with its races, a runner, a past race, a bet type, a dividend line), whose
:class:`RecordError` names the record (``R1C3 runner 7``) and the field. One bad record rejects that
record only. With ``check`` (the load passes ``lib.contract.row_check`` of the tables), a record whose
rows hold a value the warehouse would refuse (a NUL character, a number out of range ...) is rejected the
same way, once, naming the record and ``table.column``, with every row it gives (a runner's horse, a
meeting's races). A payload that is not the expected shape at all (wrapper missing, ``participants`` not
a list, rapports not an array, programme of another day) raises :class:`RecordError`; the load
driver dead-letters that payload and loads the other races of the day.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from ingestion_platform.lib.errors import Parsed, RecordError, Reject
from ingestion_platform.lib.text import collapse_spaces, name_key

PARIS = ZoneInfo("Europe/Paris")

# Real enum drift, mapped rather than rejected (API_NOTES §5).
SHOEING_ALIASES = {"PROTEGE_ANTERIEURS_DEFERRRE_POSTERIEURS": "PROTEGE_ANTERIEURS_DEFERRE_POSTERIEURS"}
AGE_CONDITION_ALIASES = {"QUATE_CINQ_SIX_ANS": "QUATRE_CINQ_SIX_ANS"}
TRACK_ALIASES = {"HERBE": "GAZON"}
CANCELLED_STATUSES = {"COURSE_ANNULEE", "ANNULEE"}

# Tables named by rejects (``pmu.tables``; this module stays free of SQLAlchemy).
RACE_MEETING = "pmu.race_meeting"
RACE = "pmu.race"
HORSE = "pmu.horse"
JOCKEY = "pmu.jockey"
TRAINER = "pmu.trainer"
RACE_PARTICIPANT = "pmu.race_participant"
HORSE_RACE_HISTORY = "pmu.horse_race_history"
RACE_BET = "pmu.race_bet"
BET_REPORT = "pmu.bet_report"

RowCheck = Callable[[str, Mapping[str, Any], str], None]
"""``check(table, row, record)`` raises RecordError when the warehouse would refuse ``row``
(``lib.contract.row_check``): the parsers run it on the rows of each record, so one bad value rejects
its record once, with all its rows."""


def _no_check(table: str, row: Mapping[str, Any], record: str) -> None:
    return None


@dataclass(frozen=True, order=True)
class RaceRef:
    """One race of a day: the R (meeting) and C (race) numbers."""

    program_date: dt.date
    meeting_num: int
    race_num: int

    @property
    def label(self) -> str:
        return f"R{self.meeting_num}C{self.race_num}"


# -- small readers ------------------------------------------------------------------------------
def _int(value: Any, record: str, field: str, *, required: bool = False) -> int | None:
    if value is None or value == "":
        if required:
            raise RecordError("missing value", record=record, field=field)
        return None
    if isinstance(value, bool):
        raise RecordError(f"expected an integer, got {value!r}", record=record, field=field)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    raise RecordError(f"expected an integer, got {value!r}", record=record, field=field)


def _dec(value: Any, record: str, field: str, *, scale: int = 1) -> Decimal | None:
    """A number as Decimal divided by ``scale`` (100 for cents -> euros, 1000 for ms -> s)."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise RecordError(f"expected a number, got {value!r}", record=record, field=field)
    try:
        number = Decimal(str(value).replace(",", ".").strip())
    except InvalidOperation:
        raise RecordError(f"expected a number, got {value!r}", record=record, field=field) from None
    if not number.is_finite():
        raise RecordError(f"expected a finite number, got {value!r}", record=record, field=field)
    if scale == 1:
        return number
    try:
        return number / scale
    except ArithmeticError:  # decimal.Overflow / Underflow of an absurd exponent
        raise RecordError(f"number out of range: {value!r}", record=record, field=field) from None


def _str(value: Any) -> str | None:
    if value is None:
        return None
    text = collapse_spaces(str(value))
    return text or None


def _obj(value: Any, record: str, field: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise RecordError(f"expected an object, got {type(value).__name__}", record=record, field=field)
    return value


def _list(value: Any, record: str, field: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise RecordError(f"expected a list, got {type(value).__name__}", record=record, field=field)
    return value


def _instant(ms: Any, record: str, field: str) -> dt.datetime | None:
    """Epoch milliseconds -> aware UTC datetime."""
    value = _int(ms, record, field)
    if value is None:
        return None
    try:
        return dt.datetime.fromtimestamp(value / 1000, dt.UTC)
    except (OverflowError, OSError, ValueError):
        raise RecordError(f"epoch milliseconds out of range: {ms!r}", record=record, field=field) from None


def merge_unique(rows: Iterable[Mapping[str, Any]], key: Sequence[str]) -> list[dict[str, Any]]:
    """One row per key, in first-seen order; later non-null values win over earlier ones."""
    merged: dict[tuple, dict[str, Any]] = {}
    for row in rows:
        k = tuple(row[c] for c in key)
        if k in merged:
            merged[k].update({c: v for c, v in row.items() if v is not None})
        else:
            merged[k] = dict(row)
    return list(merged.values())


# -- programme ----------------------------------------------------------------------------------
def parse_programme(payload: Any, day: dt.date, check: RowCheck = _no_check) -> Parsed[dict[str, list[dict[str, Any]]]]:
    """``programme/{DDMMYYYY}`` -> rows of ``daily_program``, ``race_meeting`` and ``race``.

    A race that cannot be read is rejected alone (``pmu.race``); a meeting that cannot be read is
    rejected with its races (``table=None``: every programme table). A second meeting or race with
    the same number is rejected, the first kept. The counts of ``daily_program`` describe the
    programme as sent: every listed meeting and race, read or rejected.
    """
    if not isinstance(payload, Mapping) or not isinstance(payload.get("programme"), Mapping):
        raise RecordError(
            "expected an object with a 'programme' object (the response wrapper is missing)",
            record="programme",
            field="programme",
        )
    prog = payload["programme"]
    offset_ms = _int(prog.get("timezoneOffset"), "programme", "timezoneOffset")
    date_ms = _instant(prog.get("date"), "programme", "date")
    if date_ms is not None:
        sent_day = date_ms.astimezone(PARIS).date()
        if sent_day != day:
            raise RecordError(f"programme is for {sent_day}, not {day}", record="programme", field="date")
    reunions = _list(prog.get("reunions"), "programme", "reunions")

    meetings, races, rejects = [], [], []
    listed_races = listed_cancelled = 0
    seen_meetings: set[int] = set()
    for index, reunion in enumerate(reunions):
        listed = _listed_cancelled_flags(reunion)
        listed_races += len(listed)
        listed_cancelled += sum(listed)
        meeting_num = None
        name = f"programme__reunion_{index + 1}"
        try:
            where = f"reunion #{index + 1}"
            fields = _obj(reunion, where, "reunions")
            meeting_num = _int(fields.get("numOfficiel"), where, "numOfficiel", required=True)
            name = f"programme__R{meeting_num}"
            if meeting_num in seen_meetings:
                name = f"{name}_reunion_{index + 1}"
                raise RecordError("meeting number appears twice", record=f"R{meeting_num}", field="numOfficiel")
            seen_meetings.add(meeting_num)
            meeting, courses, hippo = _meeting_row(fields, day, meeting_num)
            check(RACE_MEETING, meeting, f"R{meeting_num}")
        except RecordError as error:
            key = {"program_date": day} if meeting_num is None else {"program_date": day, "meeting_num": meeting_num}
            rejects.append(Reject(error, record=reunion, key=key, table=None, day=day, name=name))
            continue
        meetings.append(meeting)
        seen_races: set[int] = set()
        for c_index, course in enumerate(courses):
            race_num = None
            name = f"programme__R{meeting_num}_course_{c_index + 1}"
            try:
                where = f"R{meeting_num} course #{c_index + 1}"
                fields = _obj(course, where, "courses")
                race_num = _int(fields.get("numOrdre"), where, "numOrdre", required=True)
                name = f"programme__R{meeting_num}C{race_num}"
                if race_num in seen_races:
                    name = f"{name}_course_{c_index + 1}"
                    raise RecordError(
                        "race number appears twice", record=f"R{meeting_num}C{race_num}", field="numOrdre"
                    )
                seen_races.add(race_num)
                row = _race_row(fields, day, meeting_num, race_num, hippo, meeting["is_cancelled"])
                check(RACE, row, f"R{meeting_num}C{race_num}")
                races.append(row)
            except RecordError as error:
                key = {"program_date": day, "meeting_num": meeting_num}
                if race_num is not None:
                    key["race_num"] = race_num
                rejects.append(Reject(error, record=course, key=key, table=RACE, day=day, name=name))

    daily = {
        "program_date": day,
        "starts_at": date_ms,
        "utc_offset_s": offset_ms // 1000 if offset_ms is not None else None,
        # What the programme lists, rejected records included: the row describes the source.
        "meetings": len(reunions),
        "races": listed_races,
        "cancelled_races": listed_cancelled,
    }
    return Parsed({"daily_program": [daily], "race_meeting": meetings, "race": races}, rejects)


def _is_cancelled(course: Mapping[str, Any], meeting_cancelled: bool) -> bool:
    status = _str(course.get("statut"))
    return meeting_cancelled or status in CANCELLED_STATUSES or course.get("categorieStatut") == "ANNULEE"


def _listed_cancelled_flags(reunion: Any) -> list[bool]:
    """One "cancelled" flag per course the reunion lists, read leniently (for the day's counts)."""
    if not isinstance(reunion, Mapping) or not isinstance(reunion.get("courses"), list):
        return []
    meeting_cancelled = _str(reunion.get("statut")) in CANCELLED_STATUSES
    return [isinstance(c, Mapping) and _is_cancelled(c, meeting_cancelled) for c in reunion["courses"]]


def _meeting_row(
    reunion: Mapping[str, Any], day: dt.date, meeting_num: int
) -> tuple[dict[str, Any], list[Any], Mapping[str, Any]]:
    """One ``race_meeting`` row, the meeting's raw courses and its hippodrome object."""
    where = f"R{meeting_num}"
    hippo = _obj(reunion.get("hippodrome"), where, "hippodrome")
    country = _obj(reunion.get("pays"), where, "pays")
    weather = _obj(reunion.get("meteo"), where, "meteo")
    status = _str(reunion.get("statut"))
    courses = _list(reunion.get("courses"), where, "courses")
    row = {
        "program_date": day,
        "meeting_num": meeting_num,
        "external_num": _int(reunion.get("numExterne"), where, "numExterne"),
        "nature": _str(reunion.get("nature")),
        "hippodrome_code": _str(hippo.get("code") or hippo.get("codeHippodrome")),
        "hippodrome_name": _str(hippo.get("libelleCourt")),
        "hippodrome_long_name": _str(hippo.get("libelleLong")),
        "country_code": _str(country.get("code")),
        "country_name": _str(country.get("libelle")),
        "audience": _str(reunion.get("audience")),
        "status": status,
        "is_cancelled": status in CANCELLED_STATUSES,
        "disciplines": reunion.get("disciplinesMere"),
        "specialities": reunion.get("specialites"),
        "weather_label": _str(weather.get("nebulositeLibelleCourt")),
        "temperature_c": _int(weather.get("temperature"), where, "meteo.temperature"),
        "wind_force": _int(weather.get("forceVent"), where, "meteo.forceVent"),
        "wind_direction": _str(weather.get("directionVent")),
        "race_count": len(courses),
    }
    return row, courses, hippo


def _race_row(
    course: Mapping[str, Any],
    day: dt.date,
    meeting_num: int,
    race_num: int,
    meeting_hippodrome: Mapping[str, Any],
    meeting_cancelled: bool,
) -> dict[str, Any]:
    where = f"R{meeting_num}C{race_num}"
    hippo = _obj(course.get("hippodrome"), where, "hippodrome")
    going = _obj(course.get("penetrometre"), where, "penetrometre")
    status = _str(course.get("statut"))
    cancelled = _is_cancelled(course, meeting_cancelled)
    arrival = course.get("ordreArrivee")
    if arrival is not None:
        arrival = [
            [_int(n, where, "ordreArrivee", required=True) for n in _list(group, where, "ordreArrivee")]
            for group in _list(arrival, where, "ordreArrivee")
        ]
    official = bool(
        course.get("rapportsDefinitifsDisponibles")
        or course.get("arriveeDefinitive")
        or course.get("isArriveeDefinitive")
    )
    bets = [_obj(p, where, "paris") for p in _list(course.get("paris"), where, "paris")]
    bets = [_str(p.get("codePari") or p.get("typePari")) for p in bets]
    age = _str(course.get("conditionAge"))
    track = _str(course.get("typePiste"))
    return {
        "program_date": day,
        "meeting_num": meeting_num,
        "race_num": race_num,
        "external_num": _int(course.get("numExterne"), where, "numExterne"),
        "name": _str(course.get("libelle")),
        "short_name": _str(course.get("libelleCourt")),
        "starts_at": _instant(course.get("heureDepart"), where, "heureDepart"),
        # The course says codeHippodrome, the meeting says code (2018 courses have neither).
        "hippodrome_code": _str(hippo.get("codeHippodrome") or hippo.get("code") or meeting_hippodrome.get("code")),
        "distance_m": _int(course.get("distance"), where, "distance"),
        "discipline": _str(course.get("discipline")),
        "speciality": _str(course.get("specialite")),
        "category": _str(course.get("categorieParticularite")),
        "sex_condition": _str(course.get("conditionSexe")),
        "age_condition": AGE_CONDITION_ALIASES.get(age, age) if age else None,
        "corde": _str(course.get("corde")),
        "track_type": TRACK_ALIASES.get(track, track) if track else None,
        "going": _dec(going.get("valeurMesure"), where, "penetrometre.valeurMesure"),
        "going_label": _str(going.get("intitule")),
        "declared_runners": _int(course.get("nombreDeclaresPartants"), where, "nombreDeclaresPartants"),
        "prize_eur": _dec(course.get("montantPrix"), where, "montantPrix"),
        "total_offered_eur": _dec(course.get("montantTotalOffert"), where, "montantTotalOffert"),
        "status": status,
        "status_category": _str(course.get("categorieStatut")),
        "is_cancelled": cancelled,
        "is_official": official and not cancelled,
        "duration_s": _dec(course.get("dureeCourse"), where, "dureeCourse", scale=1000),
        "arrival_order": arrival,
        "incidents": course.get("incidents"),
        "enquiry": _str(course.get("indicateurEvenementArriveeProvisoire")),
        "bet_types": [b for b in bets if b] or None,
        "conditions": course.get("conditions") or None,
    }


# -- participants -------------------------------------------------------------------------------
def horse_key(name: str | None, dam: str | None, sire: str | None) -> str | None:
    """``NAME-DAM-SIRE`` normalised: the API's ``idCheval`` where it sends one."""
    main = name_key(name)
    if main is None:
        return None
    return "-".join([main, name_key(dam) or "", name_key(sire) or ""])


def _positions(arrival_order: Sequence[Sequence[int]] | None) -> tuple[dict[int, int], set[int]]:
    """Horse number -> finish position, and the dead-heat horses, from ``ordreArrivee``."""
    positions: dict[int, int] = {}
    dead_heat: set[int] = set()
    position = 1
    for group in arrival_order or []:
        for number in group:
            positions[number] = position
        if len(group) > 1:
            dead_heat.update(group)
        position += len(group)
    return positions, dead_heat


def parse_participants(
    payload: Any, race: RaceRef, arrival_order: Sequence[Sequence[int]] | None = None, check: RowCheck = _no_check
) -> Parsed[dict[str, list[dict[str, Any]]]]:
    """``.../participants`` -> rows of ``horse``, ``jockey``, ``trainer`` and ``race_participant``.

    A runner that cannot be read is rejected alone (``pmu.race_participant``) and gives no horse,
    jockey or trainer row; a second runner with the same saddle number is rejected, the first kept.
    """
    if not isinstance(payload, Mapping) or not isinstance(payload.get("participants"), list):
        raise RecordError("expected an object with a 'participants' list", record=race.label, field="participants")
    positions, dead_heat = _positions(arrival_order)
    horses, jockeys, trainers, runners, rejects = [], [], [], [], []
    race_key = {"program_date": race.program_date, "meeting_num": race.meeting_num, "race_num": race.race_num}
    seen: set[int] = set()
    for index, raw in enumerate(payload["participants"]):
        num = None
        name = f"{race.label}_participants__runner_#{index + 1}"
        try:
            where = f"{race.label} runner #{index + 1}"
            p = _obj(raw, where, "participants")
            num = _int(p.get("numPmu"), where, "numPmu", required=True)
            name = f"{race.label}_participants__runner_{num}"
            if num in seen:
                name = f"{name}_#{index + 1}"
                raise RecordError(
                    "horse number appears twice in the race", record=f"{race.label} runner {num}", field="numPmu"
                )
            seen.add(num)
            horse, jockey, trainer, runner = _runner_rows(p, race, num, positions, dead_heat)
            for table, row in ((RACE_PARTICIPANT, runner), (HORSE, horse), (JOCKEY, jockey), (TRAINER, trainer)):
                if row is not None:
                    check(table, row, f"{race.label} runner {num}")
        except RecordError as error:
            key = {**race_key} if num is None else {**race_key, "horse_num": num}
            rejects.append(Reject(error, record=raw, key=key, table=RACE_PARTICIPANT, day=race.program_date, name=name))
            continue
        horses.append(horse)
        if jockey:
            jockeys.append(jockey)
        if trainer:
            trainers.append(trainer)
        runners.append(runner)
    return Parsed({"horse": horses, "jockey": jockeys, "trainer": trainers, "race_participant": runners}, rejects)


def _runner_rows(
    p: Mapping[str, Any], race: RaceRef, num: int, positions: Mapping[int, int], dead_heat: set[int]
) -> tuple[dict[str, Any], dict[str, Any] | None, dict[str, Any] | None, dict[str, Any]]:
    """The horse, jockey (if named), trainer (if named) and race_participant rows of one runner."""
    where = f"{race.label} runner {num}"
    name = _str(p.get("nom"))
    if name is None:
        raise RecordError("missing horse name", record=where, field="nom")
    key = horse_key(name, p.get("nomMere"), p.get("nomPere"))
    sent_id = _str(p.get("idCheval"))
    if sent_id and name_key(sent_id) != key:
        # Trust the API's id when it has one; it is built the same way, so this is rare.
        key = name_key(sent_id)
    age = _int(p.get("age"), where, "age")
    horse = {
        "horse_key": key,
        "pmu_horse_id": sent_id,
        "name": name,
        "sex": _str(p.get("sexe")),
        "breed": _str(p.get("race")),
        "coat": _str(_obj(p.get("robe"), where, "robe").get("libelleLong")),
        "birth_year": race.program_date.year - age if age is not None else None,
        "sire": _str(p.get("nomPere")),
        "dam": _str(p.get("nomMere")),
        "dam_sire": _str(p.get("nomPereMere")),
        "breeder": _str(p.get("eleveur")),
    }
    jockey_key = name_key(p.get("driver"))
    jockey = {"jockey_key": jockey_key, "name": _str(p.get("driver"))} if jockey_key else None
    trainer_key = name_key(p.get("entraineur"))
    trainer = {"trainer_key": trainer_key, "name": _str(p.get("entraineur"))} if trainer_key else None

    status = _str(p.get("statut"))
    incident = _str(p.get("incident"))
    non_runner = status == "NON_PARTANT" or incident == "NON_PARTANT"
    position = _int(p.get("ordreArrivee"), where, "ordreArrivee")
    if position is None and not non_runner:
        position = positions.get(num)
    shoeing = _str(p.get("deferre"))
    earnings = _obj(p.get("gainsParticipant"), where, "gainsParticipant")
    gap = p.get("distanceChevalPrecedent")
    gap_id = _obj(gap, where, "distanceChevalPrecedent").get("identifiant") if isinstance(gap, Mapping) else gap
    runner = {
        "program_date": race.program_date,
        "meeting_num": race.meeting_num,
        "race_num": race.race_num,
        "horse_num": num,
        "horse_key": key,
        "jockey_key": jockey_key,
        "trainer_key": trainer_key,
        "horse_name": name,
        "status": status,
        "is_non_runner": non_runner,
        "incident": incident,
        "is_disqualified": bool(incident and incident.startswith("DISQUALIFIE")),
        "finish_position": None if non_runner else position,
        "is_dead_heat": num in dead_heat or gap_id == "DEAD_HEAT",
        "age": age,
        "sex": _str(p.get("sexe")),
        "blinkers": _str(p.get("oeilleres")),
        "shoeing": SHOEING_ALIASES.get(shoeing, shoeing) if shoeing else None,
        "draw": _int(p.get("placeCorde"), where, "placeCorde"),
        "handicap_distance_m": _int(p.get("handicapDistance"), where, "handicapDistance"),
        "weight_kg": _dec(p.get("handicapPoids"), where, "handicapPoids", scale=10),
        "weight_condition_kg": _dec(p.get("poidsConditionMonte"), where, "poidsConditionMonte", scale=10),
        "handicap_rating": _dec(p.get("handicapValeur"), where, "handicapValeur"),
        "time_s": _dec(p.get("tempsObtenu"), where, "tempsObtenu", scale=1000),
        "reduction_km_s": _dec(p.get("reductionKilometrique"), where, "reductionKilometrique", scale=1000),
        "distance_to_previous": _str(gap_id),
        "career_starts": _int(p.get("nombreCourses"), where, "nombreCourses"),
        "career_wins": _int(p.get("nombreVictoires"), where, "nombreVictoires"),
        "career_places": _int(p.get("nombrePlaces"), where, "nombrePlaces"),
        "earnings_career_eur": _dec(earnings.get("gainsCarriere"), where, "gainsCarriere", scale=100),
        "earnings_year_eur": _dec(earnings.get("gainsAnneeEnCours"), where, "gainsAnneeEnCours", scale=100),
        "musique": _str(p.get("musique")),
        "odds": _dec(
            _obj(p.get("dernierRapportDirect"), where, "dernierRapportDirect").get("rapport"),
            where,
            "dernierRapportDirect.rapport",
        ),
        "reference_odds": _dec(
            _obj(p.get("dernierRapportReference"), where, "dernierRapportReference").get("rapport"),
            where,
            "dernierRapportReference.rapport",
        ),
        "owner": _str(p.get("proprietaire")),
        "driver_changed": p.get("driverChange") if isinstance(p.get("driverChange"), bool) else None,
        "claiming_price_eur": _dec(p.get("tauxReclamation"), where, "tauxReclamation", scale=100),
        "stable": _str(p.get("ecurie")),
        "trainer_opinion": _str(p.get("avisEntraineur")),
    }
    return horse, jockey, trainer, runner


# -- performances -------------------------------------------------------------------------------
def parse_performances(payload: Any, race: RaceRef, horse_keys: Mapping[int, str]) -> Parsed[list[dict[str, Any]]]:
    """``.../performances-detaillees/pretty`` -> ``horse_race_history`` rows.

    ``horse_keys`` maps the day's saddle numbers of this race to horse keys; the horse's own line
    in each past race is the one flagged ``itsHim`` (the nested list is not the full field). A past
    race that cannot be read is rejected alone; a runner entry that cannot be read is rejected with
    its past races (both ``pmu.horse_race_history``).
    """
    if not isinstance(payload, Mapping) or not isinstance(payload.get("participants"), list):
        raise RecordError("expected an object with a 'participants' list", record=race.label, field="participants")
    rows, rejects = [], []
    for index, raw in enumerate(payload["participants"]):
        where = f"{race.label} runner #{index + 1}"
        key = None
        name = f"{race.label}_performances__runner_#{index + 1}"
        try:
            p = _obj(raw, where, "participants")
            num = _int(p.get("numPmu"), where, "numPmu", required=True)
            name = f"{race.label}_performances__runner_{num}"
            key = horse_keys.get(num)
            if key is None:  # not a runner we loaded (e.g. added after the participants run)
                continue
            pasts = _list(p.get("coursesCourues"), where, "coursesCourues")
        except RecordError as error:
            rejects.append(
                Reject(
                    error,
                    record=raw,
                    key={"horse_key": key} if key else None,
                    table=HORSE_RACE_HISTORY,
                    day=race.program_date,
                    name=name,
                )
            )
            continue
        for r_index, past in enumerate(pasts):
            pwhere = f"{race.label} runner {num} past race #{r_index + 1}"
            try:
                rows.append(_history_row(_obj(past, pwhere, "coursesCourues"), key, pwhere))
            except RecordError as error:
                rejects.append(
                    Reject(
                        error,
                        record=past,
                        key=_history_key(past, key, pwhere),
                        table=HORSE_RACE_HISTORY,
                        day=race.program_date,
                        name=f"{name}_past_race_{r_index + 1}",
                    )
                )
    return Parsed(rows, rejects)


def _history_identity(past: Mapping[str, Any], horse: str, where: str) -> tuple[dict[str, Any], dt.datetime]:
    """The ``horse_race_history`` key of one past race, and its start instant."""
    date_ms = _int(past.get("date"), where, "date", required=True)
    offset_ms = _int(past.get("timezoneOffset"), where, "timezoneOffset") or 0
    raced_at = _instant(date_ms, where, "date")
    try:
        raced_on = (raced_at + dt.timedelta(milliseconds=offset_ms)).date()
    except OverflowError:
        raise RecordError(f"offset out of range: {offset_ms!r}", record=where, field="timezoneOffset") from None
    key = {
        "horse_key": horse,
        "raced_on": raced_on,
        "hippodrome": _str(past.get("hippodrome")) or "",
        "race_name": _str(past.get("nomPrix")) or "",
    }
    return key, raced_at


def _history_key(past: Any, horse: str, where: str) -> dict[str, Any]:
    """As much of a rejected past race's key as can be read: the full key, or the horse alone."""
    if isinstance(past, Mapping):
        try:
            return _history_identity(past, horse, where)[0]
        except RecordError:
            pass
    return {"horse_key": horse}


def _history_row(past: Mapping[str, Any], horse: str, where: str) -> dict[str, Any]:
    key, raced_at = _history_identity(past, horse, where)
    own = [x for x in _list(past.get("participants"), where, "participants") if isinstance(x, Mapping)]
    own = [x for x in own if x.get("itsHim") is True]
    line = own[0] if own else {}
    place = _obj(line.get("place"), where, "place")
    gap = line.get("distanceAvecPrecedent")
    if isinstance(gap, Mapping):
        gap = gap.get("identifiant") or gap.get("libelleCourt")
    return {
        **key,
        "raced_at": raced_at,
        "discipline": _str(past.get("discipline")),
        "prize_eur": _dec(past.get("allocation"), where, "allocation"),
        "distance_m": _int(past.get("distance"), where, "distance"),
        "runners": _int(past.get("nbParticipants"), where, "nbParticipants"),
        "winner_time_s": _dec(past.get("tempsDuPremier"), where, "tempsDuPremier", scale=100),
        "place": _int(place.get("place"), where, "place.place"),
        "place_raw": _str(place.get("rawValue")),
        "finish_status": _str(place.get("statusArrivee")),
        "jockey_name": _str(line.get("nomJockey")),
        "jockey_weight_kg": _dec(line.get("poidsJockey"), where, "poidsJockey"),
        "reduction_km_s": _dec(line.get("reductionKilometrique"), where, "reductionKilometrique", scale=100),
        "distance_to_previous": _str(gap),
        "distance_covered_m": _int(line.get("distanceParcourue"), where, "distanceParcourue"),
        "blinkers": _str(line.get("oeillere")),
    }


# -- rapports -----------------------------------------------------------------------------------
def canonical_bet_type(code: str) -> str:
    """``E_SIMPLE_GAGNANT`` / ``SIMPLE_GAGNANT_INTERNATIONAL`` -> ``SIMPLE_GAGNANT``."""
    base = code.removeprefix("E_")
    return base.removesuffix("_INTERNATIONAL")


def parse_rapports(payload: Any, race: RaceRef, check: RowCheck = _no_check) -> Parsed[dict[str, list[dict[str, Any]]]]:
    """``.../rapports-definitifs`` (a bare array) -> ``race_bet`` and ``bet_report`` rows.

    An empty array means "not published yet": both lists come back empty. A dividend line that
    cannot be read is rejected alone (``pmu.bet_report``; ``line_count`` counts the lines read). A
    bet type that cannot be read is rejected with its lines (``table=None``: both tables, keyed by
    the bet type when it is known); a second bet of the same type is rejected, the first kept.
    """
    if not isinstance(payload, list):
        raise RecordError(
            f"expected a JSON array of bet types, got {type(payload).__name__}", record=race.label, field="rapports"
        )
    race_key = {"program_date": race.program_date, "meeting_num": race.meeting_num, "race_num": race.race_num}
    bets, lines, rejects = [], [], []
    seen_bets: set[str] = set()
    for index, raw in enumerate(payload):
        code = None
        name = f"{race.label}_rapports__bet_#{index + 1}"
        try:
            where = f"{race.label} bet #{index + 1}"
            bet = _obj(raw, where, "rapports")
            code = _str(bet.get("typePari"))
            if code is None:
                raise RecordError("missing bet type", record=where, field="typePari")
            name = f"{race.label}_rapports__{code}"
            where = f"{race.label} {code}"
            if code in seen_bets:
                name = f"{name}_#{index + 1}"
                raise RecordError("bet type appears twice", record=where, field="typePari")
            seen_bets.add(code)
            bet_row = _bet_row(bet, race_key, code, where)
            check(RACE_BET, {**bet_row, "line_count": 0}, where)
            raw_lines = _list(bet.get("rapports"), where, "rapports")
        except RecordError as error:
            key = {**race_key} if code is None else {**race_key, "bet_type_code": code}
            rejects.append(Reject(error, record=raw, key=key, table=None, day=race.program_date, name=name))
            continue
        bet_lines: dict[tuple[str, str], dict[str, Any]] = {}
        for l_index, line in enumerate(raw_lines):
            lwhere = f"{where} line #{l_index + 1}"
            try:
                row = _line_row(_obj(line, lwhere, "rapports"), bet, bet_row, lwhere)
                check(BET_REPORT, row, lwhere)
            except RecordError as error:
                key = {**race_key, "bet_type_code": code}
                if isinstance(line, Mapping):
                    key["label"] = _str(line.get("libelle")) or ""
                    combination = _combination(line)
                    if combination is not None:
                        key["combination"] = combination
                rejects.append(
                    Reject(
                        error,
                        record=line,
                        key=key,
                        table=BET_REPORT,
                        day=race.program_date,
                        name=f"{name}_line_{l_index + 1}",
                    )
                )
                continue
            bet_lines[(row["label"], row["combination"])] = row
        lines.extend(bet_lines.values())
        bets.append({**bet_row, "line_count": len(bet_lines)})
    return Parsed({"race_bet": bets, "bet_report": lines}, rejects)


def _bet_row(bet: Mapping[str, Any], race_key: Mapping[str, Any], code: str, where: str) -> dict[str, Any]:
    """One ``race_bet`` row, without its ``line_count``."""
    return {
        **race_key,
        "bet_type_code": code,
        "bet_type": canonical_bet_type(code),
        "is_internet_pool": code.startswith("E_"),
        "is_international": code.endswith("_INTERNATIONAL"),
        "family": _str(bet.get("famillePari")),
        "base_stake_eur": _dec(bet.get("miseBase"), where, "miseBase", scale=100),
        "refunded": bet.get("rembourse") if isinstance(bet.get("rembourse"), bool) else None,
        "audience": _str(bet.get("audience")),
        "dividend_unit": _str(bet.get("dividendeUnite")),
    }


def _combination(line: Mapping[str, Any]) -> str | None:
    combination = line.get("combinaison")
    if isinstance(combination, list):  # combinaisonEnTableau=true
        combination = "-".join(str(x) for x in combination)
    return _str(combination)


def _line_row(
    line: Mapping[str, Any], bet: Mapping[str, Any], bet_row: Mapping[str, Any], where: str
) -> dict[str, Any]:
    """One ``bet_report`` row."""
    combination = _combination(line)
    if combination is None:
        raise RecordError("missing combination", record=where, field="combinaison")
    label = _str(line.get("libelle")) or ""
    parts = [x.strip() for x in combination.split("-")]
    numbers = [_int(x, where, "combinaison") for x in parts if x and x.upper() != "NP"]
    return {
        "program_date": bet_row["program_date"],
        "meeting_num": bet_row["meeting_num"],
        "race_num": bet_row["race_num"],
        "bet_type_code": bet_row["bet_type_code"],
        "label": label,
        "combination": combination,
        "bet_type": bet_row["bet_type"],
        "horse_nums": numbers,
        "has_non_runner": any(x.upper() == "NP" for x in parts),
        "dividend_per_euro_eur": _dec(line.get("dividendePourUnEuro"), where, "dividendePourUnEuro", scale=100),
        "dividend_per_base_stake_eur": _dec(
            line.get("dividendePourUneMiseDeBase"), where, "dividendePourUneMiseDeBase", scale=100
        ),
        "dividend_unit": _str(line.get("dividendeUnite") or bet.get("dividendeUnite")),
        "winning_stakes": _dec(line.get("nombreGagnants"), where, "nombreGagnants"),
    }
