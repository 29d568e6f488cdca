"""The local PMU test server itself (every fault behaviour, matching rules, latency) and the invariants
of the shipped sample day that the end-to-end tests rely on."""

from __future__ import annotations

import json
import sys
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from ingestion_platform_tests.pmu_server import FaultPlan, PmuServer

SAMPLE_DIR = Path(__file__).resolve().parents[2] / "ingestion_platform" / "defs" / "pmu" / "sample"
DAY_DIR = "programme/14032025"
PROGRAMME = "/rest/client/1/programme/14032025"
R1C1 = "/rest/client/61/programme/14032025/R1/C1"


def _get(srv: PmuServer, path: str, timeout: float = 5.0) -> httpx.Response:
    return httpx.get(srv.base_url + path, timeout=timeout)


@pytest.fixture
def tiny_root(tmp_path: Path) -> Path:
    """A root with one file under client/7 and one under client/61."""
    (tmp_path / "rest/client/7/programme").mkdir(parents=True)
    (tmp_path / "rest/client/7/programme/01012025.json").write_text(json.dumps({"programme": {"date": 1}}))
    race = tmp_path / "rest/client/61/programme/01012025/R1/C1"
    race.mkdir(parents=True)
    (race / "participants.json").write_text(json.dumps({"participants": [{"numPmu": i} for i in range(1, 40)]}))
    return tmp_path


# -- serving ---------------------------------------------------------------------------------------
def test_serves_the_sample_files() -> None:
    with PmuServer(SAMPLE_DIR) as srv:
        assert srv.base_url.startswith("http://127.0.0.1:")
        programme = _get(srv, PROGRAMME + "?specialisation=INTERNET&meteo=true")
        participants = _get(srv, R1C1 + "/participants")
        rapports = _get(srv, "/rest/client/1/programme/14032025/R1/C1/rapports-definitifs")
    assert programme.status_code == 200 and programme.headers["content-type"].startswith("application/json")
    assert programme.json()["programme"]["reunions"]
    assert participants.json()["participants"]
    assert isinstance(rapports.json(), list)
    assert srv.requests == [
        PROGRAMME,
        R1C1 + "/participants",
        "/rest/client/1/programme/14032025/R1/C1/rapports-definitifs",
    ]
    assert srv.counts() == {"ok": 3}


def test_client_number_falls_back_to_any_client(tiny_root: Path) -> None:
    with PmuServer(tiny_root) as srv:
        for n in (1, 7, 61):
            assert _get(srv, f"/rest/client/{n}/programme/01012025").json() == {"programme": {"date": 1}}
            assert _get(srv, f"/rest/client/{n}/programme/01012025/R1/C1/participants").status_code == 200


def test_missing_path_is_a_json_404(tiny_root: Path) -> None:
    with PmuServer(tiny_root) as srv:
        missing = _get(srv, "/rest/client/1/programme/02012025")
        outside = _get(srv, "/rest/client/1/../../../etc/passwd")
    assert missing.status_code == 404 and missing.json()["status"] == 404
    assert outside.status_code == 404


# -- behaviours ------------------------------------------------------------------------------------
@pytest.mark.parametrize("status", ["500", "502", "503", "404"])
def test_error_statuses(tiny_root: Path, status: str) -> None:
    path = "/rest/client/61/programme/01012025/R1/C1/participants"
    with PmuServer(tiny_root, faults=FaultPlan({"participants": [status]})) as srv:
        first = _get(srv, path)
        second = _get(srv, path)
    assert first.status_code == int(status)
    first.json()  # error bodies are JSON
    assert second.status_code == 200
    assert srv.counts() == {status: 1, "ok": 1}


def test_204_is_empty(tiny_root: Path) -> None:
    with PmuServer(tiny_root, faults=FaultPlan({"01012025": ["204"]})) as srv:
        response = _get(srv, "/rest/client/7/programme/01012025")
    assert response.status_code == 204 and response.content == b""


def test_429_with_and_without_retry_after(tiny_root: Path) -> None:
    with PmuServer(tiny_root, faults=FaultPlan({"programme/01012025": ["429:3", "429", "ok"]})) as srv:
        first = _get(srv, "/rest/client/7/programme/01012025")
        second = _get(srv, "/rest/client/7/programme/01012025")
        third = _get(srv, "/rest/client/7/programme/01012025")
    assert first.status_code == 429 and first.headers["retry-after"] == "3"
    assert second.status_code == 429 and "retry-after" not in second.headers
    assert third.status_code == 200
    assert srv.counts() == {"429": 2, "ok": 1}


def test_timeout_outlasts_a_short_client_timeout(tiny_root: Path) -> None:
    path = "/rest/client/7/programme/01012025"
    with PmuServer(tiny_root, faults=FaultPlan({"01012025": ["timeout"]}), timeout_sleep_s=1.0) as srv:
        with pytest.raises(httpx.TimeoutException):  # the client gave up: the server was still sleeping
            _get(srv, path, timeout=0.2)
        assert _get(srv, path).status_code == 200  # the next request is normal
    assert srv.counts() == {"timeout": 1, "ok": 1}


def test_timeout_answers_normally_when_the_client_waits(tiny_root: Path) -> None:
    with PmuServer(tiny_root, faults=FaultPlan({"01012025": ["timeout"]}), timeout_sleep_s=0.2) as srv:
        response = _get(srv, "/rest/client/7/programme/01012025", timeout=5)
    # the timeout fault was served (slept, then answered), observed by the server, not by a clock
    assert response.status_code == 200 and srv.counts() == {"timeout": 1}


def test_reset_raises_a_transport_error(tiny_root: Path) -> None:
    with PmuServer(tiny_root, faults=FaultPlan({"participants": ["reset"]})) as srv:
        with pytest.raises(httpx.TransportError):
            _get(srv, "/rest/client/61/programme/01012025/R1/C1/participants")
        assert _get(srv, "/rest/client/61/programme/01012025/R1/C1/participants").status_code == 200
    assert srv.counts() == {"reset": 1, "ok": 1}


def test_truncated_body_raises(tiny_root: Path) -> None:
    faults = FaultPlan({"participants": ["truncated"]})
    with PmuServer(tiny_root, faults=faults) as srv, pytest.raises(httpx.TransportError):
        _get(srv, "/rest/client/61/programme/01012025/R1/C1/participants")


def test_truncated_json_is_a_complete_response_with_a_cut_body(tiny_root: Path) -> None:
    path = "/rest/client/61/programme/01012025/R1/C1/participants"
    full = (tiny_root / "rest/client/61/programme/01012025/R1/C1/participants.json").read_bytes()
    with PmuServer(tiny_root, faults=FaultPlan({"participants": ["truncated_json"]})) as srv:
        response = _get(srv, path)
    assert response.status_code == 200
    assert 0 < len(response.content) < len(full) and full.startswith(response.content)
    with pytest.raises(json.JSONDecodeError):
        json.loads(response.content)


def test_garbage_is_html_labelled_json(tiny_root: Path) -> None:
    with PmuServer(tiny_root, faults=FaultPlan({"01012025": ["garbage"]})) as srv:
        response = _get(srv, "/rest/client/7/programme/01012025")
    assert response.status_code == 200 and response.headers["content-type"].startswith("application/json")
    assert response.text.lstrip().startswith("<")
    with pytest.raises(json.JSONDecodeError):
        response.json()


def test_unknown_behaviour_is_rejected() -> None:
    with pytest.raises(ValueError):
        FaultPlan({"x": ["teapot"]})
    with pytest.raises(ValueError):
        FaultPlan({"x": ["429:soon"]})


# -- rules -----------------------------------------------------------------------------------------
def test_longest_key_wins_and_each_path_has_its_own_sequence() -> None:
    plan = FaultPlan(
        {
            "programme/14032025": ["503", "ok"],
            "14032025/R1/C1/participants": ["500", "reset"],
            "participants": ["502"],
        }
    )
    c1 = "/rest/client/61/programme/14032025/R1/C1/participants"
    c2 = "/rest/client/61/programme/14032025/R1/C2/participants"
    prog = "/rest/client/1/programme/14032025"
    assert plan.rule_for(c1) == "14032025/R1/C1/participants"
    assert plan.rule_for(c2) == "programme/14032025"  # longer than "participants"
    assert plan.rule_for("/elsewhere") is None
    seen = [plan.next_behaviour(p) for p in (c1, c2, prog, c1, prog, c2, c1, prog, c1)]
    assert seen == ["500", "503", "503", "reset", "ok", "ok", "ok", "ok", "ok"]
    assert plan.next_behaviour("/elsewhere") == "ok"


def test_sequences_over_http_and_counts() -> None:
    faults = FaultPlan(
        {
            "programme/14032025/R1/C1/participants": ["500", "reset", "ok"],
            "performances-detaillees": ["503", "timeout"],
            "programme/14032025": ["429:1"],
        }
    )
    with PmuServer(SAMPLE_DIR, faults=faults, timeout_sleep_s=0.5) as srv:
        part = R1C1 + "/participants"
        perf = R1C1 + "/performances-detaillees/pretty"
        assert _get(srv, part).status_code == 500
        with pytest.raises(httpx.TransportError):
            _get(srv, part)
        assert _get(srv, part).status_code == 200
        assert _get(srv, perf).status_code == 503
        with pytest.raises(httpx.TimeoutException):
            _get(srv, perf, timeout=0.1)
        assert _get(srv, perf).json()["participants"]
        assert _get(srv, PROGRAMME).status_code == 429
        assert _get(srv, PROGRAMME).status_code == 200
    assert srv.counts() == {"500": 1, "reset": 1, "ok": 3, "503": 1, "timeout": 1, "429": 1}
    assert srv.requests == [part] * 3 + [perf] * 3 + [PROGRAMME] * 2


def test_latency_is_applied_concurrently(tiny_root: Path) -> None:
    path = "/rest/client/7/programme/01012025"
    with PmuServer(tiny_root, latency_s=0.2) as srv, ThreadPoolExecutor(max_workers=10) as pool:
        statuses = list(pool.map(lambda _: _get(srv, path).status_code, range(10)))
    assert statuses == [200] * 10
    # Requests wait out their latency side by side (observed by the server, not by a clock).
    assert srv.max_in_flight >= 2
    assert len(srv.requests) == 10 and srv.counts() == {"ok": 10}


def test_start_stop_frees_the_port(tiny_root: Path) -> None:
    srv = PmuServer(tiny_root)
    with srv:
        url = srv.base_url
        assert _get(srv, "/rest/client/7/programme/01012025").status_code == 200
    with pytest.raises(httpx.TransportError):
        httpx.get(url + "/rest/client/7/programme/01012025", timeout=1)
    with pytest.raises(RuntimeError):
        _ = srv.base_url


# -- the sample day --------------------------------------------------------------------------------
def _sample() -> dict:
    root = SAMPLE_DIR / "rest" / "client"
    programme = json.loads((root / "1" / f"{DAY_DIR}.json").read_text(encoding="utf-8"))
    races = {}
    for reunion in programme["programme"]["reunions"]:
        for course in reunion["courses"]:
            key = (course["numReunion"], course["numOrdre"])
            rel = f"{DAY_DIR}/R{key[0]}/C{key[1]}"
            files = {
                "participants": root / "61" / rel / "participants.json",
                "performances": root / "61" / rel / "performances-detaillees" / "pretty.json",
                "rapports": root / "1" / rel / "rapports-definitifs.json",
            }
            races[key] = {
                "course": course,
                **{
                    name: json.loads(p.read_text(encoding="utf-8")) if p.exists() else None for name, p in files.items()
                },
            }
    return {"programme": programme, "races": races}


def test_sample_layout_and_size() -> None:
    sample = _sample()
    prog = sample["programme"]["programme"]
    assert prog["timezoneOffset"] == 3600000 and prog["date"] == 1741906800000  # 2025-03-14T00:00+01:00
    assert [r["numOfficiel"] for r in prog["reunions"]] == [1, 2]
    r1, r2 = prog["reunions"]
    assert r1["hippodrome"]["code"] == "VIN" and r1["pays"]["code"] == "FRA"
    assert [c["numOrdre"] for c in r1["courses"]] == [1, 2, 3, 4]
    r2_races = [c["numOrdre"] for c in r2["courses"]]
    assert r2_races != list(range(1, len(r2_races) + 1))  # non-contiguous race numbers
    for course in r1["courses"] + r2["courses"]:
        assert set(course["hippodrome"]) == {"codeHippodrome", "libelleCourt", "libelleLong"}
        assert course["participants"] == [] and course["ecuries"] == []
    for race in sample["races"].values():
        assert race["participants"] is not None and 6 <= len(race["participants"]["participants"]) <= 10
    for day in ("13032025", "14032025", "15032025"):  # three days, each small
        size = sum(p.stat().st_size for p in (SAMPLE_DIR / "rest").rglob("*.json") if day in p.as_posix())
        assert 0 < size < 400_000, day


def test_sample_edge_cases_are_present() -> None:
    races = _sample()["races"]
    courses = {k: r["course"] for k, r in races.items()}
    runners = [p for r in races.values() for p in r["participants"]["participants"]]

    dead_heats = [g for c in courses.values() for g in c.get("ordreArrivee", []) if len(g) > 1]
    assert dead_heats
    gaps = [(p.get("distanceChevalPrecedent") or {}).get("identifiant") for p in runners]
    assert "DEAD_HEAT" in gaps

    non_runners = [p for p in runners if p["statut"] == "NON_PARTANT"]
    assert any(p.get("incident") == "NON_PARTANT" for p in non_runners)
    assert any("incident" not in p for p in non_runners)
    assert all("ordreArrivee" not in p for p in non_runners)
    for key, race in races.items():
        incidents = courses[key].get("incidents", [])
        listed = {n for i in incidents if i["type"] == "NON_PARTANT" for n in i["numeroParticipants"]}
        scratched = {p["numPmu"] for p in race["participants"]["participants"] if p["statut"] == "NON_PARTANT"}
        assert listed == scratched

    by_incident = Counter(p.get("incident") for p in runners)
    assert by_incident["DISQUALIFIE_POUR_ALLURE_IRREGULIERE"] and by_incident["TOMBE"]
    shoeing = {p.get("deferre") for p in runners if p["allure"] == "TROT"}
    assert "PROTEGE_ANTERIEURS_DEFERRRE_POSTERIEURS" in shoeing and None in shoeing
    assert any(c.get("conditionAge") == "QUATE_CINQ_SIX_ANS" for c in courses.values())
    assert any("musique" not in p and p["nombreCourses"] == 0 for p in runners)
    assert all("jockey" not in p for p in runners)
    assert any(c.get("penetrometre", {}).get("valeurMesure", "").count(",") == 1 for c in courses.values())

    # Same person, different spacing/case; the same trainer and driver in several races.
    spellings: dict[str, set[str]] = {}
    for p in runners:
        spellings.setdefault(" ".join(p["driver"].upper().split()), set()).add(p["driver"])
    drivers = Counter(" ".join(p["driver"].upper().split()) for p in runners)
    assert drivers.most_common(1)[0][1] >= 3
    assert any(len(variants) > 1 for variants in spellings.values())
    trainers = Counter(p["entraineur"] for p in runners)
    assert trainers.most_common(1)[0][1] >= 3
    assert len({p["idCheval"] for p in runners}) == len(runners)  # no horse runs twice in a day


def test_sample_race_states_and_files() -> None:
    races = _sample()["races"]
    states: Counter[str] = Counter()
    for race in races.values():
        course = race["course"]
        if course["statut"] == "COURSE_ANNULEE":
            states["cancelled"] += 1
            assert course["categorieStatut"] == "ANNULEE" and course["rapportsDefinitifsDisponibles"] is True
            assert not {"ordreArrivee", "dureeCourse", "arriveeDefinitive"} & set(course)
            assert race["rapports"] is None and race["performances"] is None
            assert all("ordreArrivee" not in p for p in race["participants"]["participants"])
        elif not course["rapportsDefinitifsDisponibles"]:
            states["provisional"] += 1
            assert course["statut"] == "ARRIVEE_PROVISOIRE" and course["arriveeDefinitive"] is False
            assert course["ordreArrivee"] and race["performances"] is not None and race["rapports"] is None
        else:
            states["official"] += 1
            assert course["statut"] in ("ARRIVEE_DEFINITIVE_COMPLETE", "FIN_COURSE")
            assert course["arriveeDefinitive"] is True and course["dureeCourse"] > 0
            assert race["performances"] is not None and race["rapports"] is not None
    assert states == {"official": 4, "provisional": 1, "cancelled": 1}


def test_sample_arrivals_reference_runners() -> None:
    for (r, c), race in _sample()["races"].items():
        course = race["course"]
        participants = race["participants"]["participants"]
        running = {p["numPmu"] for p in participants if p["statut"] == "PARTANT"}
        order = [n for group in course.get("ordreArrivee", []) for n in group]
        assert set(order) <= running, f"R{r}C{c}"
        assert len(order) == len(set(order))
        place = 1
        expected = {}
        for group in course.get("ordreArrivee", []):
            expected.update({n: place for n in group})
            place += len(group)
        assert {p["numPmu"]: p["ordreArrivee"] for p in participants if "ordreArrivee" in p} == expected
        for p in participants:
            if p.get("incident") and p["incident"] != "NON_PARTANT":
                assert p["numPmu"] not in order


def test_sample_rapports_are_consistent() -> None:
    for (r, c), race in _sample()["races"].items():
        if race["rapports"] is None:
            continue
        course = race["course"]
        winner = course["ordreArrivee"][0]
        keys = [
            (b["typePari"], line["libelle"], line["combinaison"]) for b in race["rapports"] for line in b["rapports"]
        ]
        assert len(keys) == len(set(keys)), f"R{r}C{c}"
        offered = {p["codePari"] for p in course["paris"]}
        runners = {p["numPmu"] for p in race["participants"]["participants"] if p["statut"] == "PARTANT"}
        for bet in race["rapports"]:
            assert bet["typePari"] in offered
            for line in bet["rapports"]:
                unit = line["dividendeUnite"]
                field = "dividendePourUnEuro" if unit == "PourUnEuro" else "dividendePourUneMiseDeBase"
                assert line["dividende"] == line[field]
                parts = line["combinaison"].split("-")
                if "NP" in parts:
                    assert line["dividende"] == 0
                assert {int(x) for x in parts if x != "NP"} <= runners
        simple = next(b for b in race["rapports"] if b["typePari"] == "SIMPLE_GAGNANT")
        assert [int(line["combinaison"]) for line in simple["rapports"]] == winner
        places = next(b for b in race["rapports"] if b["typePari"] == "SIMPLE_PLACE")
        dead_heat = next((g for g in course["ordreArrivee"][:3] if len(g) > 1), [])
        assert set(dead_heat) <= {int(line["combinaison"]) for line in places["rapports"]}
    all_bets = {b["typePari"] for race in _sample()["races"].values() for b in race["rapports"] or []}
    assert {"SIMPLE_GAGNANT", "E_SIMPLE_GAGNANT", "SIMPLE_PLACE", "COUPLE_GAGNANT", "COUPLE_PLACE"} <= all_bets
    assert {"DEUX_SUR_QUATRE", "QUINTE_PLUS"} <= all_bets
    np_lines = [
        line
        for race in _sample()["races"].values()
        for b in race["rapports"] or []
        if b["typePari"] == "DEUX_SUR_QUATRE"
        for line in b["rapports"]
        if line["combinaison"].endswith("-NP")
    ]
    assert np_lines and all("nombreGagnants" not in line for line in np_lines)


def test_sample_performances_shape() -> None:
    statuses: Counter[str] = Counter()
    timed: Counter[bool] = Counter()
    for race in _sample()["races"].values():
        if race["performances"] is None:
            continue
        numbers = {p["numPmu"] for p in race["participants"]["participants"]}
        for horse in race["performances"]["participants"]:
            assert horse["numPmu"] in numbers
            for past in horse["coursesCourues"]:
                timed["tempsDuPremier" in past] += 1
                him = [x for x in past["participants"] if x["itsHim"]]
                assert len(him) == 1 and him[0]["nomCheval"] == horse["nomCheval"]
                assert all(x["numPmu"] is None for x in past["participants"])
                place = him[0]["place"]
                statuses[place["statusArrivee"]] += 1
                assert (place["place"] is None) == (place["statusArrivee"] != "PLACE")
            assert len(horse["coursesCourues"]) in (0, 2, 3)
    assert statuses["DISQUALIFIE"] >= 1 and statuses["PLACE"] > 0
    assert timed[True] and timed[False]


def test_generator_is_deterministic(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("pmu_sample_generate", SAMPLE_DIR / "generate.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)  # its dataclass looks its module up
    spec.loader.exec_module(module)
    files = module.build()
    assert module.build() == files  # each day has its own seeded generator: a second build is the same
    for rel, payload in files.items():
        on_disk = (SAMPLE_DIR / rel).read_text(encoding="utf-8")
        assert on_disk == json.dumps(payload, indent=2, ensure_ascii=False) + "\n", rel
    assert {p.relative_to(SAMPLE_DIR).as_posix() for p in (SAMPLE_DIR / "rest").rglob("*.json")} == set(files)
