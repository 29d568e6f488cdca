"""PMU parsers, record by record: one bad record in a real payload rejects that record alone.

Real recorded payloads of 05/11/2025 (../shared/pmu, read at run time, never copied) are corrupted
in memory, one record at a time; the parse must give every other row unchanged plus one
:class:`Reject` naming the record (key, table, day, dead-letter name, raw record).
"""

from __future__ import annotations

import copy
import datetime as dt
import json
from typing import Any

import pytest

from ingestion_platform.defs.pmu import parse, tables
from ingestion_platform.lib.contract import row_check
from ingestion_platform.lib.errors import Parsed, RecordError, Reject
from ingestion_platform_tests.conftest import require_shared

CONTRACT_CHECK = row_check([*tables.PROGRAMME_LOAD, *tables.PARTICIPANT_LOAD, *tables.RAPPORT_LOAD])
DAY = dt.date(2025, 11, 5)
R1C1 = parse.RaceRef(DAY, 1, 1)
RACE_KEY = {"program_date": DAY, "meeting_num": 1, "race_num": 1}


def _load(name: str) -> Any:
    return json.loads((require_shared("pmu") / "05112025" / name).read_text(encoding="utf-8"))


def _one_reject(parsed: Parsed) -> Reject:
    assert len(parsed.rejects) == 1, [r.message for r in parsed.rejects]
    reject = parsed.rejects[0]
    assert isinstance(reject.error, RecordError) and reject.dropped and reject.day == DAY
    return reject


def test_reject_tables_are_the_pmu_tables() -> None:
    assert tables.race.fullname == parse.RACE
    assert tables.race_participant.fullname == parse.RACE_PARTICIPANT
    assert tables.horse_race_history.fullname == parse.HORSE_RACE_HISTORY
    assert tables.bet_report.fullname == parse.BET_REPORT
    assert tables.race_meeting.fullname == parse.RACE_MEETING and tables.race_bet.fullname == parse.RACE_BET
    assert [tables.horse.fullname, tables.jockey.fullname, tables.trainer.fullname] == [
        parse.HORSE,
        parse.JOCKEY,
        parse.TRAINER,
    ]


# -- programme ----------------------------------------------------------------------------------
def _programme() -> tuple[dict, Parsed]:
    payload = _load("programme_05112025.json")
    clean = parse.parse_programme(copy.deepcopy(payload), DAY)
    assert clean.rejects == [] and len(clean.value["race"]) == 63
    return payload, clean


def _race_keys(rows: list[dict]) -> dict[tuple[int, int], dict]:
    return {(r["meeting_num"], r["race_num"]): r for r in rows}


def test_race_without_number_is_rejected_alone() -> None:
    payload, clean = _programme()
    course = payload["programme"]["reunions"][0]["courses"][2]  # R1C3
    del course["numOrdre"]
    parsed = parse.parse_programme(payload, DAY)

    reject = _one_reject(parsed)
    assert reject.table == "pmu.race"
    assert reject.key == {"program_date": DAY, "meeting_num": 1}  # C unknown: the meeting is the known part
    assert reject.name == "programme__R1_course_3"
    assert reject.record is course
    assert reject.error.record == "R1 course #3" and reject.error.field == "numOrdre"

    races = _race_keys(parsed.value["race"])
    expected = _race_keys(clean.value["race"])
    del expected[(1, 3)]
    assert races == expected  # the 62 other races, unchanged
    assert parsed.value["race_meeting"] == clean.value["race_meeting"]
    # daily_program describes the programme as listed, the rejected race included.
    assert parsed.value["daily_program"] == clean.value["daily_program"]
    assert parsed.value["daily_program"][0]["races"] == 63


def test_race_with_a_bad_distance_is_rejected_with_its_key() -> None:
    payload, _clean = _programme()
    course = payload["programme"]["reunions"][0]["courses"][2]  # R1C3
    course["distance"] = "3000 m"
    parsed = parse.parse_programme(payload, DAY)

    reject = _one_reject(parsed)
    assert reject.table == "pmu.race"
    assert reject.key == {"program_date": DAY, "meeting_num": 1, "race_num": 3}
    assert reject.name == "programme__R1C3"
    assert reject.record is course
    assert reject.error.record == "R1C3" and reject.error.field == "distance"
    assert "R1C3" in reject.message and "distance" in reject.message
    assert (1, 3) not in _race_keys(parsed.value["race"]) and len(parsed.value["race"]) == 62


def test_bad_meeting_is_rejected_with_its_races() -> None:
    payload, clean = _programme()
    reunion = payload["programme"]["reunions"][1]  # R2, 5 races
    reunion["meteo"]["temperature"] = "warm"
    parsed = parse.parse_programme(payload, DAY)

    reject = _one_reject(parsed)
    assert reject.table is None  # every programme table: the meeting and its races
    assert reject.key == {"program_date": DAY, "meeting_num": 2}
    assert reject.name == "programme__R2"
    assert reject.record is reunion
    assert reject.error.record == "R2" and reject.error.field == "meteo.temperature"

    assert 2 not in {m["meeting_num"] for m in parsed.value["race_meeting"]}
    assert len(parsed.value["race_meeting"]) == 8
    expected = {k: v for k, v in _race_keys(clean.value["race"]).items() if k[0] != 2}
    assert _race_keys(parsed.value["race"]) == expected
    assert parsed.value["daily_program"] == clean.value["daily_program"]  # 9 meetings, 63 races listed


def test_a_meeting_the_tables_refuse_is_rejected_with_its_races() -> None:
    payload, clean = _programme()
    payload["programme"]["reunions"][1]["hippodrome"]["libelleLong"] = "HIPPO\x00DROME"  # R2
    payload["programme"]["reunions"][0]["courses"][2]["nombreDeclaresPartants"] = 10**12  # R1C3
    parsed = parse.parse_programme(payload, DAY, CONTRACT_CHECK)

    assert [r.name for r in parsed.rejects] == ["programme__R1C3", "programme__R2"]
    race, meeting = parsed.rejects
    assert race.table == "pmu.race" and race.key == {**RACE_KEY, "race_num": 3}
    assert race.error.field == "pmu.race.declared_runners"
    assert meeting.table is None and meeting.error.field == "pmu.race_meeting.hippodrome_long_name"
    expected = {k: v for k, v in _race_keys(clean.value["race"]).items() if k[0] != 2 and k != (1, 3)}
    assert _race_keys(parsed.value["race"]) == expected  # no race left without its meeting


def test_unreadable_meeting_has_only_the_day_as_key() -> None:
    payload, _ = _programme()
    payload["programme"]["reunions"][3] = "R4"
    parsed = parse.parse_programme(payload, DAY)
    reject = _one_reject(parsed)
    assert reject.table is None and reject.key == {"program_date": DAY}
    assert reject.name == "programme__reunion_4" and reject.record == "R4"
    assert reject.error.record == "reunion #4" and reject.error.field == "reunions"
    assert len(parsed.value["race_meeting"]) == 8
    assert parsed.value["daily_program"][0]["meetings"] == 9  # as listed


def test_duplicate_race_and_meeting_numbers_keep_the_first() -> None:
    payload, clean = _programme()
    r1 = payload["programme"]["reunions"][0]
    r1["courses"][1]["numOrdre"] = 1  # R1: C1, C1, C3 ...
    payload["programme"]["reunions"][2]["numOfficiel"] = 2  # R2 twice
    parsed = parse.parse_programme(payload, DAY)

    race_reject, meeting_reject = parsed.rejects
    assert race_reject.table == "pmu.race" and race_reject.name == "programme__R1C1_course_2"
    assert race_reject.key == {"program_date": DAY, "meeting_num": 1, "race_num": 1}
    assert race_reject.record is r1["courses"][1] and race_reject.error.field == "numOrdre"
    assert meeting_reject.table is None and meeting_reject.name == "programme__R2_reunion_3"
    assert meeting_reject.key == {"program_date": DAY, "meeting_num": 2}

    races = _race_keys(parsed.value["race"])
    assert races[(1, 1)] == _race_keys(clean.value["race"])[(1, 1)]  # the first R1C1, not the second
    assert (1, 2) not in races and not any(k[0] == 3 for k in races)
    assert [m["meeting_num"] for m in parsed.value["race_meeting"]] == [1, 2, 4, 5, 6, 7, 8, 9]


def test_cancelled_counts_include_rejected_races() -> None:
    payload, _ = _programme()
    reunion = payload["programme"]["reunions"][0]
    reunion["statut"] = "ANNULEE"
    reunion["courses"][0]["distance"] = "far"
    parsed = parse.parse_programme(payload, DAY)
    _one_reject(parsed)
    assert parsed.value["daily_program"][0]["cancelled_races"] == 8  # the 8 races R1 lists
    assert sum(r["is_cancelled"] for r in parsed.value["race"]) == 7


def test_programme_level_problems_still_raise() -> None:
    payload, _ = _programme()
    payload["programme"]["reunions"] = {"R1": {}}
    with pytest.raises(RecordError) as err:
        parse.parse_programme(payload, DAY)
    assert err.value.record == "programme" and err.value.field == "reunions"


# -- participants -------------------------------------------------------------------------------
def _participants() -> tuple[dict, Parsed]:
    payload = _load("participants_05112025_R1C1.json")
    clean = parse.parse_participants(copy.deepcopy(payload), R1C1)
    assert clean.rejects == [] and len(clean.value["race_participant"]) == 14
    return payload, clean


def _without_runner(clean: Parsed, num: int) -> dict[str, list[dict]]:
    """The clean rows minus those of runner ``num`` (its horse, jockey and trainer included)."""
    runner = next(r for r in clean.value["race_participant"] if r["horse_num"] == num)
    return {
        "horse": [h for h in clean.value["horse"] if h["horse_key"] != runner["horse_key"]],
        "jockey": [j for j in clean.value["jockey"] if j["jockey_key"] != runner["jockey_key"]],
        "trainer": [t for t in clean.value["trainer"] if t["trainer_key"] != runner["trainer_key"]],
        "race_participant": [r for r in clean.value["race_participant"] if r["horse_num"] != num],
    }


def test_runner_without_number_is_rejected_alone() -> None:
    payload, clean = _participants()
    runner = payload["participants"][2]  # horse 3
    del runner["numPmu"]
    parsed = parse.parse_participants(payload, R1C1)

    reject = _one_reject(parsed)
    assert reject.table == "pmu.race_participant"
    assert reject.key == RACE_KEY  # the saddle number is unknown
    assert reject.name == "R1C1_participants__runner_#3"
    assert reject.record is runner
    assert reject.error.record == "R1C1 runner #3" and reject.error.field == "numPmu"
    assert parsed.value == _without_runner(clean, 3)  # no horse/jockey/trainer row for it either


def test_runner_with_a_bad_age_is_rejected_alone() -> None:
    payload, clean = _participants()
    runner = payload["participants"][4]  # horse 5
    runner["age"] = "abc"
    parsed = parse.parse_participants(payload, R1C1)

    reject = _one_reject(parsed)
    assert reject.table == "pmu.race_participant"
    assert reject.key == {**RACE_KEY, "horse_num": 5}
    assert reject.name == "R1C1_participants__runner_5"
    assert reject.record is runner
    assert reject.error.record == "R1C1 runner 5" and reject.error.field == "age"
    assert "abc" in reject.message
    assert parsed.value == _without_runner(clean, 5)
    assert "KYOTO GEMA" not in {h["name"] for h in parsed.value["horse"]}


def test_duplicate_saddle_number_keeps_the_first() -> None:
    payload, clean = _participants()
    second = payload["participants"][1]
    second["numPmu"] = 1
    parsed = parse.parse_participants(payload, R1C1)

    reject = _one_reject(parsed)
    assert reject.key == {**RACE_KEY, "horse_num": 1} and reject.record is second
    assert reject.name == "R1C1_participants__runner_1_#2"
    runners = {r["horse_num"]: r for r in parsed.value["race_participant"]}
    assert runners[1] == next(r for r in clean.value["race_participant"] if r["horse_num"] == 1)
    assert parsed.value == _without_runner(clean, 2)


def test_runner_that_is_not_an_object_is_rejected() -> None:
    payload, clean = _participants()
    payload["participants"].append(None)
    parsed = parse.parse_participants(payload, R1C1)
    reject = _one_reject(parsed)
    assert reject.record is None and reject.key == RACE_KEY and reject.name == "R1C1_participants__runner_#15"
    assert parsed.value == clean.value


def test_nul_in_a_runner_name_does_not_crash() -> None:
    payload, _ = _participants()
    payload["participants"][0]["nom"] = "KING\x00DU PLESSIS"
    parsed = parse.parse_participants(payload, R1C1)
    # Passed through; the load driver rejects it against the table contract.
    assert parsed.rejects == []
    runner = next(r for r in parsed.value["race_participant"] if r["horse_num"] == 1)
    assert runner["horse_name"] == "KING\x00DU PLESSIS"


def test_a_value_the_tables_refuse_rejects_its_runner_once() -> None:
    """With the contract check the load passes, a NUL in the name (it reaches the horse and the runner rows)
    or an age that overflows the horse's birth year rejects the runner once, with all its rows."""
    payload, clean = _participants()
    payload["participants"][0]["nom"] = "KING\x00DU PLESSIS"
    payload["participants"][1]["age"] = 10**12
    parsed = parse.parse_participants(payload, R1C1, None, CONTRACT_CHECK)

    assert [r.name for r in parsed.rejects] == ["R1C1_participants__runner_1", "R1C1_participants__runner_2"]
    nul, age = parsed.rejects
    assert nul.table == "pmu.race_participant" and nul.key == {**RACE_KEY, "horse_num": 1}
    assert nul.record is payload["participants"][0]
    assert nul.error.record == "R1C1 runner 1" and nul.error.field == "pmu.race_participant.horse_name"
    assert "NUL" in nul.message and "\x00" not in nul.message
    assert age.error.field == "pmu.race_participant.age" and "out of range" in age.message
    without = _without_runner(clean, 1)
    assert parsed.value == {k: [r for r in v if r in _without_runner(clean, 2)[k]] for k, v in without.items()}


@pytest.mark.parametrize("payload", [[], {"participants": {}}, {"cached": True}])
def test_participants_payload_of_the_wrong_shape_raises(payload: Any) -> None:
    with pytest.raises(RecordError) as err:
        parse.parse_participants(payload, R1C1)
    assert err.value.record == "R1C1" and err.value.field == "participants"


# -- performances -------------------------------------------------------------------------------
def _performances() -> tuple[dict, dict[int, str], Parsed]:
    payload = _load("performances_05112025_R1C1.json")
    keys = {p["numPmu"]: f"H{p['numPmu']}" for p in payload["participants"]}
    clean = parse.parse_performances(copy.deepcopy(payload), R1C1, keys)
    assert clean.rejects == [] and len(clean.value) == 70
    return payload, keys, clean


def test_bad_past_race_is_rejected_alone() -> None:
    payload, keys, clean = _performances()
    past = payload["participants"][0]["coursesCourues"][1]  # horse 1, its second past race
    past["distance"] = "2850m"
    parsed = parse.parse_performances(payload, R1C1, keys)

    reject = _one_reject(parsed)
    assert reject.table == "pmu.horse_race_history"
    assert reject.key == {
        "horse_key": "H1",
        "raced_on": clean.value[1]["raced_on"],
        "hippodrome": clean.value[1]["hippodrome"],
        "race_name": clean.value[1]["race_name"],
    }
    assert reject.name == "R1C1_performances__runner_1_past_race_2"
    assert reject.record is past
    assert reject.error.record == "R1C1 runner 1 past race #2" and reject.error.field == "distance"
    assert parsed.value == clean.value[:1] + clean.value[2:]


def test_past_race_with_a_bad_date_is_keyed_by_the_horse() -> None:
    payload, keys, _clean = _performances()
    payload["participants"][3]["coursesCourues"][0]["date"] = "yesterday"
    parsed = parse.parse_performances(payload, R1C1, keys)
    reject = _one_reject(parsed)
    assert reject.key == {"horse_key": "H4"} and reject.error.field == "date"
    assert len(parsed.value) == 69


def test_bad_runner_entry_is_rejected_with_its_past_races() -> None:
    payload, keys, clean = _performances()
    entry = payload["participants"][4]  # horse 5
    entry["coursesCourues"] = "none"
    parsed = parse.parse_performances(payload, R1C1, keys)

    reject = _one_reject(parsed)
    assert reject.table == "pmu.horse_race_history" and reject.key == {"horse_key": "H5"}
    assert reject.name == "R1C1_performances__runner_5" and reject.record is entry
    assert reject.error.record == "R1C1 runner #5" and reject.error.field == "coursesCourues"
    assert parsed.value == [h for h in clean.value if h["horse_key"] != "H5"]


def test_runner_entry_without_number_has_no_key() -> None:
    payload, keys, clean = _performances()
    del payload["participants"][0]["numPmu"]
    parsed = parse.parse_performances(payload, R1C1, keys)
    reject = _one_reject(parsed)
    assert reject.key is None and reject.name == "R1C1_performances__runner_#1"
    assert parsed.value == [h for h in clean.value if h["horse_key"] != "H1"]


def test_performances_payload_of_the_wrong_shape_raises() -> None:
    with pytest.raises(RecordError) as err:
        parse.parse_performances({"participants": None}, R1C1, {})
    assert err.value.record == "R1C1" and err.value.field == "participants"


# -- rapports -----------------------------------------------------------------------------------
def _rapports() -> tuple[list, Parsed]:
    payload = _load("rapports_05112025_R1C1.json")
    clean = parse.parse_rapports(copy.deepcopy(payload), R1C1)
    assert clean.rejects == [] and len(clean.value["race_bet"]) == 7
    return payload, clean


def test_bad_dividend_line_is_rejected_alone() -> None:
    payload, clean = _rapports()
    line = payload[1]["rapports"][1]  # SIMPLE_PLACE "3"
    line["dividendePourUnEuro"] = "n/a"
    parsed = parse.parse_rapports(payload, R1C1)

    reject = _one_reject(parsed)
    assert reject.table == "pmu.bet_report"
    assert reject.key == {**RACE_KEY, "bet_type_code": "SIMPLE_PLACE", "label": "Simple placé", "combination": "3"}
    assert reject.name == "R1C1_rapports__SIMPLE_PLACE_line_2"
    assert reject.record is line
    assert reject.error.record == "R1C1 SIMPLE_PLACE line #2" and reject.error.field == "dividendePourUnEuro"

    lines = parsed.value["bet_report"]
    assert lines == [
        x for x in clean.value["bet_report"] if (x["bet_type_code"], x["combination"]) != ("SIMPLE_PLACE", "3")
    ]
    counts = {b["bet_type_code"]: b["line_count"] for b in parsed.value["race_bet"]}
    assert counts == {b["bet_type_code"]: b["line_count"] for b in clean.value["race_bet"]} | {"SIMPLE_PLACE": 2}


def test_bets_and_lines_the_tables_refuse() -> None:
    payload = _load("rapports_05112025_R1C1.json")
    clean = parse.parse_rapports(copy.deepcopy(payload), R1C1)
    payload[0]["miseBase"] = 10**20  # SIMPLE_GAGNANT: the bet, with its line
    payload[1]["rapports"][1]["dividendePourUnEuro"] = 10**17  # SIMPLE_PLACE line 2 alone
    parsed = parse.parse_rapports(payload, R1C1, CONTRACT_CHECK)

    assert [r.name for r in parsed.rejects] == ["R1C1_rapports__SIMPLE_GAGNANT", "R1C1_rapports__SIMPLE_PLACE_line_2"]
    bet, line = parsed.rejects
    assert bet.table is None and bet.error.field == "pmu.race_bet.base_stake_eur"
    assert line.table == "pmu.bet_report" and line.error.field == "pmu.bet_report.dividend_per_euro_eur"
    assert {b["bet_type_code"] for b in parsed.value["race_bet"]} == {
        b["bet_type_code"] for b in clean.value["race_bet"]
    } - {"SIMPLE_GAGNANT"}
    assert len(parsed.value["bet_report"]) == len(clean.value["bet_report"]) - 2
    assert not any(r["bet_type_code"] == "SIMPLE_GAGNANT" for r in parsed.value["bet_report"])  # no orphan line


def test_line_with_a_bad_or_missing_combination() -> None:
    payload, clean = _rapports()
    payload[2]["rapports"][0]["combinaison"] = "7-X"
    del payload[5]["rapports"][0]["combinaison"]
    parsed = parse.parse_rapports(payload, R1C1)

    bad, missing = parsed.rejects
    assert bad.key == {**RACE_KEY, "bet_type_code": "COUPLE_GAGNANT", "label": "Couplé gagnant", "combination": "7-X"}
    assert bad.error.field == "combinaison" and bad.name == "R1C1_rapports__COUPLE_GAGNANT_line_1"
    assert missing.key == {**RACE_KEY, "bet_type_code": "TRIO", "label": "Trio"}  # as far as known
    assert missing.error.field == "combinaison"
    bets = {b["bet_type_code"]: b for b in parsed.value["race_bet"]}
    assert bets["COUPLE_GAGNANT"]["line_count"] == 0 and bets["TRIO"]["line_count"] == 0
    assert len(parsed.value["bet_report"]) == len(clean.value["bet_report"]) - 2


def test_bad_bet_type_is_rejected_with_its_lines() -> None:
    payload, clean = _rapports()
    bet = payload[3]  # COUPLE_PLACE, 3 lines
    bet["miseBase"] = "two euros"
    parsed = parse.parse_rapports(payload, R1C1)

    reject = _one_reject(parsed)
    assert reject.table is None  # the bet type and its dividend lines
    assert reject.key == {**RACE_KEY, "bet_type_code": "COUPLE_PLACE"}
    assert reject.name == "R1C1_rapports__COUPLE_PLACE"
    assert reject.record is bet
    assert reject.error.record == "R1C1 COUPLE_PLACE" and reject.error.field == "miseBase"
    assert parsed.value == {
        "race_bet": [b for b in clean.value["race_bet"] if b["bet_type_code"] != "COUPLE_PLACE"],
        "bet_report": [x for x in clean.value["bet_report"] if x["bet_type_code"] != "COUPLE_PLACE"],
    }


def test_bet_without_type_is_keyed_by_the_race() -> None:
    payload, _clean = _rapports()
    del payload[0]["typePari"]
    parsed = parse.parse_rapports(payload, R1C1)
    reject = _one_reject(parsed)
    assert reject.table is None and reject.key == RACE_KEY
    assert reject.name == "R1C1_rapports__bet_#1" and reject.error.field == "typePari"
    assert len(parsed.value["race_bet"]) == 6


def test_duplicate_bet_type_keeps_the_first() -> None:
    payload, clean = _rapports()
    twin = copy.deepcopy(payload[0])
    twin["rapports"][0]["dividendePourUnEuro"] = 999
    parsed = parse.parse_rapports([*payload, twin], R1C1)
    reject = _one_reject(parsed)
    assert reject.record is twin and reject.name == "R1C1_rapports__SIMPLE_GAGNANT_#8"
    assert reject.key == {**RACE_KEY, "bet_type_code": "SIMPLE_GAGNANT"}
    assert parsed.value == clean.value


# -- any bad value in a record: a reject, never a raise -----------------------------------------
BAD_VALUES = [{"x": 1}, [1], "abc", True, "1e999999999", None, "\x00", 10**30]


def _paths(obj: Any, path: tuple = ()) -> list[tuple]:
    """Every key/index path inside ``obj`` (the first two items of each list)."""
    items = obj.items() if isinstance(obj, dict) else enumerate(obj[:2]) if isinstance(obj, list) else []
    out = []
    for k, v in items:
        out.append((*path, k))
        out.extend(_paths(v, (*path, k)))
    return out


def _set(obj: Any, path: tuple, value: Any) -> None:
    for k in path[:-1]:
        obj = obj[k]
    obj[path[-1]] = value


@pytest.mark.parametrize("endpoint", ["programme", "participants", "performances", "rapports"])
def test_no_value_inside_a_record_makes_the_payload_fail(endpoint: str) -> None:
    """Every value of the first record(s), replaced by each of a few bad values: never a raise."""
    if endpoint == "programme":
        payload = _load("programme_05112025.json")
        payload["programme"]["reunions"] = payload["programme"]["reunions"][:1]
        payload["programme"]["reunions"][0]["courses"] = payload["programme"]["reunions"][0]["courses"][:2]

        def records(p):
            return p["programme"]["reunions"]

        def run(p):
            return parse.parse_programme(p, DAY)
    elif endpoint == "participants":
        payload = _load("participants_05112025_R1C1.json")
        payload["participants"] = payload["participants"][:2]

        def records(p):
            return p["participants"]

        def run(p):
            return parse.parse_participants(p, R1C1, [[7], [3]])
    elif endpoint == "performances":
        payload = _load("performances_05112025_R1C1.json")
        payload["participants"] = payload["participants"][:1]

        def records(p):
            return p["participants"]

        def run(p):
            return parse.parse_performances(p, R1C1, {1: "H1"})
    else:
        payload = _load("rapports_05112025_R1C1.json")[:2]

        def records(p):
            return p

        def run(p):
            return parse.parse_rapports(p, R1C1)

    for path in _paths(records(payload)):
        for value in BAD_VALUES:
            mutated = copy.deepcopy(payload)
            _set(records(mutated), path, value)
            parsed = run(mutated)  # a RecordError here would dead-letter the whole payload
            assert isinstance(parsed, Parsed), (path, value)
            assert all(r.dropped and isinstance(r.error, RecordError) for r in parsed.rejects), (path, value)
