"""Conformance: every real PMU excerpt in ../shared/pmu parses, with units and quirks handled."""

from __future__ import annotations

import copy
import datetime as dt
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from ingestion_platform.defs.pmu import parse
from ingestion_platform.lib.errors import RecordError
from ingestion_platform.lib.text import name_key
from ingestion_platform_tests.conftest import SHARED, require_shared

PMU = SHARED / "pmu"
FILES = sorted(p.relative_to(PMU).as_posix() for p in PMU.glob("*/*.json")) if PMU.is_dir() else ["<missing>"]
MALFORMED = {"02042026/programme_02042026_inner.json"}  # saved without the {"programme": ...} wrapper


def _load(rel: str) -> Any:
    return json.loads((require_shared("pmu") / rel).read_text(encoding="utf-8"))


def _day(rel: str) -> dt.date:
    folder = rel.split("/")[0]
    return dt.date(int(folder[4:]), int(folder[2:4]), int(folder[:2]))


def _ref(rel: str) -> parse.RaceRef:
    name = Path(rel).stem.split("_")
    rc = next((x for x in name if x.startswith("R") and "C" in x), "R1C1")
    meeting, race = rc[1:].split("C")
    return parse.RaceRef(_day(rel), int(meeting), int(race))


def _parse(rel: str) -> parse.Parsed | None:
    payload = _load(rel)
    name = Path(rel).name
    if name.startswith("programme"):
        return parse.parse_programme(payload, _day(rel))
    if name.startswith("participants"):
        return parse.parse_participants(payload, _ref(rel))
    if name.startswith("performances"):
        keys = {p["numPmu"]: f"H{p['numPmu']}" for p in payload["participants"]}
        return parse.parse_performances(payload, _ref(rel), keys)
    if name.startswith("rapports"):
        return parse.parse_rapports(payload, _ref(rel))
    return None  # reunion / course objects: not an endpoint the platform calls


@pytest.mark.parametrize("rel", FILES)
def test_every_excerpt_parses_or_is_rejected_clearly(rel: str) -> None:
    require_shared("pmu")
    if rel in MALFORMED:
        with pytest.raises(RecordError) as err:
            _parse(rel)
        assert err.value.field == "programme" and "wrapper" in str(err.value)
        return
    parsed = _parse(rel)
    if parsed is not None:
        assert parsed.rejects == [], [r.message for r in parsed.rejects]  # real recordings read whole
    if Path(rel).name.startswith(("programme", "participants", "rapports")):
        result = parsed.value
        assert all(isinstance(v, list) for v in result.values())
        assert sum(len(v) for v in result.values()) > 0


def test_full_chain_of_05112025_r1c1_agrees() -> None:
    day = dt.date(2025, 11, 5)
    prog = parse.parse_programme(_load("05112025/programme_05112025.json"), day).value
    assert prog["daily_program"][0]["races"] == 63 == len(prog["race"])
    assert prog["daily_program"][0]["utc_offset_s"] == 3600
    assert prog["daily_program"][0]["starts_at"] == dt.datetime(2025, 11, 4, 23, 0, tzinfo=dt.UTC)
    race = next(r for r in prog["race"] if (r["meeting_num"], r["race_num"]) == (1, 1))
    assert race["starts_at"] == dt.datetime(2025, 11, 5, 12, 12, tzinfo=dt.UTC)  # 13:12 in Nantes
    assert race["duration_s"] == Decimal("228.77")  # dureeCourse 228770 ms = 3'48"77
    assert race["arrival_order"][:3] == [[7], [3], [9]]
    assert race["hippodrome_code"] == "PET" and race["prize_eur"] == Decimal(19000)
    assert race["is_official"] and not race["is_cancelled"]

    ref = parse.RaceRef(day, 1, 1)
    part = parse.parse_participants(_load("05112025/participants_05112025_R1C1.json"), ref, race["arrival_order"]).value
    runners = {r["horse_num"]: r for r in part["race_participant"]}
    assert len(runners) == 14
    winner = runners[7]
    assert winner["finish_position"] == 1 and winner["odds"] == Decimal("3.1")
    assert winner["reduction_km_s"] == Decimal("76.3")  # 76300 ms per km
    assert runners[3]["earnings_career_eur"] == Decimal("23245")  # 2324500 cents
    assert runners[1]["is_disqualified"] and runners[1]["finish_position"] is None
    assert winner["shoeing"] is None  # no `deferre`: shod / not applicable

    raw = {p["numPmu"]: p for p in _load("05112025/participants_05112025_R1C1.json")["participants"]}
    for horse in part["horse"]:
        sent = next(p for p in raw.values() if p["nom"] == horse["name"])
        assert horse["horse_key"] == sent["idCheval"]

    keys = {n: r["horse_key"] for n, r in runners.items()}
    history = parse.parse_performances(_load("05112025/performances_05112025_R1C1.json"), ref, keys).value
    assert len(history) == 70 and {h["horse_key"] for h in history} <= set(keys.values())
    first = next(h for h in history if h["horse_key"] == keys[1] and h["raced_on"] == dt.date(2025, 11, 1))
    assert first["hippodrome"] == "Pontchâteau" and first["place"] == 6  # the itsHim line, not the winner's
    assert first["winner_time_s"] == Decimal("215.67")  # tempsDuPremier in centiseconds
    assert first["reduction_km_s"] == Decimal("77.5")  # 7750 cs per km
    assert first["prize_eur"] == Decimal(15500)

    rap = parse.parse_rapports(_load("05112025/rapports_05112025_R1C1.json"), ref).value
    win = next(x for x in rap["bet_report"] if x["bet_type_code"] == "SIMPLE_GAGNANT")
    assert win["combination"] == "7" and win["horse_nums"] == [7]
    assert win["dividend_per_euro_eur"] == Decimal("3.10") and win["dividend_per_base_stake_eur"] == Decimal("6.20")
    assert win["winning_stakes"] == Decimal("21294.6")


def test_dead_heat_shares_the_position() -> None:
    day = dt.date(2025, 11, 1)
    prog = parse.parse_programme(_load("01112025/programme_01112025.json"), day).value
    race = next(r for r in prog["race"] if (r["meeting_num"], r["race_num"]) == (4, 8))
    assert race["arrival_order"][2] == [5, 9]
    ref = parse.RaceRef(day, 4, 8)
    runners = {
        r["horse_num"]: r
        for r in parse.parse_participants(
            _load("01112025/participants_01112025_R4C8.json"), ref, race["arrival_order"]
        ).value["race_participant"]
    }
    assert runners[5]["finish_position"] == runners[9]["finish_position"] == 3
    assert runners[5]["is_dead_heat"] and runners[9]["is_dead_heat"] and not runners[10]["is_dead_heat"]
    assert runners[1]["finish_position"] == 5  # the next horse after a dead heat for 3rd is 5th

    # Without ordreArrivee on the runners, positions come from the race's arrival order.
    stripped = _load("01112025/participants_01112025_R4C8.json")
    for p in stripped["participants"]:
        p.pop("ordreArrivee", None)
        p.pop("distanceChevalPrecedent", None)
    again = {
        r["horse_num"]: r
        for r in parse.parse_participants(stripped, ref, race["arrival_order"]).value["race_participant"]
    }
    assert {n: r["finish_position"] for n, r in again.items()} == {n: r["finish_position"] for n, r in runners.items()}
    assert again[5]["is_dead_heat"] and again[9]["is_dead_heat"]


def test_galop_non_runners_falls_and_weights() -> None:
    ref = parse.RaceRef(dt.date(2026, 4, 1), 4, 4)
    rows = {
        r["horse_num"]: r
        for r in parse.parse_participants(_load("01042026/participants_01042026_R4C4.json"), ref).value[
            "race_participant"
        ]
    }
    assert rows[3]["is_non_runner"] and rows[3]["finish_position"] is None
    assert rows[2]["incident"] == "TOMBE" and not rows[2]["is_non_runner"] and rows[2]["finish_position"] is None
    assert rows[1]["weight_kg"] == Decimal("72.0")  # 720 hectograms


def test_non_runner_without_incident_is_a_non_runner() -> None:
    payload = _load("01042026/participants_01042026_R4C4.json")
    runner = next(p for p in payload["participants"] if p["numPmu"] == 3)
    del runner["incident"]
    rows = parse.parse_participants(payload, parse.RaceRef(dt.date(2026, 4, 1), 4, 4)).value["race_participant"]
    assert next(r for r in rows if r["horse_num"] == 3)["is_non_runner"]


def test_shoeing_typo_is_mapped() -> None:
    payload = _load("05112025/participants_05112025_R1C2.json")
    sent = {p["numPmu"]: p.get("deferre") for p in payload["participants"]}
    assert "PROTEGE_ANTERIEURS_DEFERRRE_POSTERIEURS" in sent.values()
    rows = parse.parse_participants(payload, parse.RaceRef(dt.date(2025, 11, 5), 1, 2)).value["race_participant"]
    shoeing = {r["horse_num"]: r["shoeing"] for r in rows}
    for num, value in sent.items():
        if value == "PROTEGE_ANTERIEURS_DEFERRRE_POSTERIEURS":
            assert shoeing[num] == "PROTEGE_ANTERIEURS_DEFERRE_POSTERIEURS"


def test_2018_shapes_without_id_or_course_hippodrome() -> None:
    day = dt.date(2018, 1, 1)
    prog = parse.parse_programme(_load("01012018/programme_01012018.json"), day).value
    meetings = {m["meeting_num"]: m["hippodrome_code"] for m in prog["race_meeting"]}
    assert all(r["hippodrome_code"] == meetings[r["meeting_num"]] for r in prog["race"])
    rows = parse.parse_participants(_load("01012018/participants_01012018_R3C1.json"), parse.RaceRef(day, 3, 1)).value
    for horse in rows["horse"]:
        assert horse["pmu_horse_id"] is None
        assert horse["horse_key"].startswith(horse["name"].upper())
        assert horse["horse_key"].count("-") >= 2


def test_summer_programme_offset() -> None:
    prog = parse.parse_programme(_load("05062018/programme_05062018.json"), dt.date(2018, 6, 5)).value
    assert prog["daily_program"][0]["utc_offset_s"] == 7200
    assert prog["daily_program"][0]["starts_at"] == dt.datetime(2018, 6, 4, 22, 0, tzinfo=dt.UTC)


def test_non_runner_dividend_lines() -> None:
    ref = parse.RaceRef(dt.date(2026, 7, 7), 1, 8)
    rap = parse.parse_rapports(_load("07072026/rapports_07072026_R1C8_couple_2sur4_sample.json"), ref).value
    np_lines = [x for x in rap["bet_report"] if x["has_non_runner"]]
    assert np_lines and all("NP" in x["combination"] for x in np_lines)
    five_np = next(x for x in np_lines if x["combination"] == "5-NP" and x["bet_type_code"] == "COUPLE_GAGNANT")
    assert five_np["horse_nums"] == [5] and five_np["dividend_per_euro_eur"] == 0
    quinte = parse.parse_rapports(_load("07072026/rapports_07072026_R1C8_quinte_sample.json"), ref).value
    labels = {x["label"] for x in quinte["bet_report"]}
    assert {"Quinté+ Ordre", "Bonus 3"} <= labels


def test_internet_pools_are_canonicalised() -> None:
    assert parse.canonical_bet_type("E_SIMPLE_GAGNANT") == "SIMPLE_GAGNANT"
    assert parse.canonical_bet_type("SIMPLE_PLACE_INTERNATIONAL") == "SIMPLE_PLACE"
    payload = _load("05112025/rapports_05112025_R1C1.json")
    twin = copy.deepcopy(payload[0])
    twin["typePari"] = "E_" + twin["typePari"]
    rap = parse.parse_rapports([*payload, twin], parse.RaceRef(dt.date(2025, 11, 5), 1, 1)).value
    codes = {b["bet_type_code"]: b for b in rap["race_bet"]}
    assert codes["E_SIMPLE_GAGNANT"]["bet_type"] == "SIMPLE_GAGNANT" and codes["E_SIMPLE_GAGNANT"]["is_internet_pool"]
    assert not codes["SIMPLE_GAGNANT"]["is_internet_pool"]


def test_cancelled_meeting_cancels_its_races() -> None:
    payload = _load("05112025/programme_05112025.json")
    payload["programme"]["reunions"][0]["statut"] = "ANNULEE"
    prog = parse.parse_programme(payload, dt.date(2025, 11, 5)).value
    r1 = [r for r in prog["race"] if r["meeting_num"] == 1]
    assert r1 and all(r["is_cancelled"] and not r["is_official"] for r in r1)
    assert prog["daily_program"][0]["cancelled_races"] == len(r1)


@pytest.mark.parametrize(
    ("mutate", "record", "field"),
    [
        (lambda p: p["participants"][2].__setitem__("numPmu", "three"), "R1C1 runner #3", "numPmu"),
        (
            lambda p: p["participants"][4].__setitem__("gainsParticipant", {"gainsCarriere": "lots"}),
            "R1C1 runner 5",
            "gainsCarriere",
        ),
        (
            lambda p: p["participants"][1].__setitem__("numPmu", p["participants"][0]["numPmu"]),
            "R1C1 runner 1",
            "numPmu",
        ),
        (lambda p: p["participants"][0].pop("nom"), "R1C1 runner 1", "nom"),
    ],
)
def test_bad_participant_is_rejected_naming_record_and_field(mutate, record: str, field: str) -> None:
    payload = _load("05112025/participants_05112025_R1C1.json")
    mutate(payload)
    parsed = parse.parse_participants(payload, parse.RaceRef(dt.date(2025, 11, 5), 1, 1))
    [reject] = parsed.rejects  # the bad runner alone; the other 13 runners load
    assert reject.error.record == record and reject.error.field == field
    assert record in reject.message and field in reject.message
    assert len(parsed.value["race_participant"]) == 13


def test_programme_of_another_day_is_rejected() -> None:
    with pytest.raises(RecordError) as err:
        parse.parse_programme(_load("05112025/programme_05112025.json"), dt.date(2025, 11, 6))
    assert err.value.field == "date" and "2025-11-05" in str(err.value)


def test_rapports_must_be_an_array() -> None:
    with pytest.raises(RecordError) as err:
        parse.parse_rapports({"rapports": []}, parse.RaceRef(dt.date(2025, 11, 5), 1, 1))
    assert err.value.record == "R1C1" and err.value.field == "rapports"
    empty = parse.parse_rapports([], parse.RaceRef(dt.date(2025, 11, 5), 1, 1))
    assert empty.value == {"race_bet": [], "bet_report": []} and empty.rejects == []


def test_whole_day_of_participants_reconciles_with_programme() -> None:
    day = dt.date(2025, 11, 5)
    prog = parse.parse_programme(_load("05112025/programme_05112025.json"), day).value
    keys: set[str] = set()
    for race in prog["race"]:
        rel = f"05112025/participants_05112025_R{race['meeting_num']}C{race['race_num']}.json"
        ref = parse.RaceRef(day, race["meeting_num"], race["race_num"])
        rows = parse.parse_participants(_load(rel), ref, race["arrival_order"]).value
        assert len(rows["race_participant"]) == race["declared_runners"], rel
        winners = [r["horse_num"] for r in rows["race_participant"] if r["finish_position"] == 1]
        if race["arrival_order"]:
            assert winners[:1] == race["arrival_order"][0][:1], rel
        day_keys = {r["horse_key"] for r in rows["race_participant"]}
        assert not keys & day_keys, "a horse runs once a day"
        keys |= day_keys


PARTICIPANT_FILES = [rel for rel in FILES if Path(rel).name.startswith("participants")]


@pytest.mark.parametrize("rel", PARTICIPANT_FILES)
def test_every_horse_key_equals_id_cheval_where_the_api_sends_one(rel: str) -> None:
    """``NAME-DAM-SIRE`` built with ``lib.text.name_key`` is the API's ``idCheval`` (see the lib.text docstring)."""
    raw = _load(rel)["participants"]
    horses = parse.parse_participants(_load(rel), _ref(rel)).value["horse"]
    assert len(horses) == len(raw)
    for sent, horse in zip(raw, horses, strict=True):
        computed = parse.horse_key(sent["nom"], sent.get("nomMere"), sent.get("nomPere"))
        if "idCheval" in sent:
            assert computed == sent["idCheval"] == horse["horse_key"] == horse["pmu_horse_id"], sent["nom"]
            assert name_key(sent["idCheval"]) == sent["idCheval"]  # the parser's name_key(idCheval) keeps it
        else:
            assert horse["horse_key"] == computed and horse["pmu_horse_id"] is None


def test_id_cheval_is_present_where_api_notes_say_and_every_horse_name_is_ascii() -> None:
    """What the key rule rests on: idCheval on the 2025-26 captures, and horse names in plain ASCII everywhere, so
    folding ligatures in ``name_key`` changed no key. A recording with a non-ASCII horse name fails here: check how
    its ``idCheval`` spells it before trusting ``name_key`` for it."""
    require_shared("pmu")
    with_id = without_id = 0
    for rel in PARTICIPANT_FILES:
        for p in _load(rel)["participants"]:
            if "idCheval" in p:
                with_id += 1
            else:
                without_id += 1
                assert rel.startswith(("01012018/", "01012024/")), rel
            names = [p.get(k) for k in ("idCheval", "nom", "nomMere", "nomPere", "nomPereMere")]
            assert all(n is None or n.isascii() for n in names), (rel, names)
    assert with_id == 730 and without_id == 20
