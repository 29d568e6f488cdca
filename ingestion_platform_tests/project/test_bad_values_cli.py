"""A real recorded PMU day with bad values injected, through the Dagster CLI on PostgreSQL.

The replay directory is built in a temporary folder from the real capture of 2025-11-05
(``../shared/pmu/05112025``: the programme of 63 races in 9 meetings, the participants of every race,
the rapports of R1C1; see its SOURCES.md), in the layout ``PMU_API_BASE_URL=file://`` serves
(``rest/client/N/programme/DDMMYYYY[/R1/C1/participants].json``: programme and rapports under client 1,
participants and performances under 61). Bad values go into the copies, never into the recordings:

* R1C1 runner 1: a 56-character coat label (``robe.libelleLong``): it loads (the columns are TEXT);
* R2C1 runner 3: a NUL character in the horse's name (``nom``): that runner alone is rejected, once;
* programme: R3 course #2 without ``numOrdre``, R4C3 with ``distance`` "2850 m", R5C6 with
  ``nombreDeclaresPartants`` 10**12 (INTEGER column), R6C3 with ``montantPrix`` 10**13 (NUMERIC(14, 2)):
  each of those races alone is rejected; meeting R9 with a NUL in its racecourse name: the meeting is
  rejected with its 4 races; the other 55 races load;
* R1C1 rapports: one SIMPLE_PLACE line with a dividend of 10**15 euros (NUMERIC(14, 2)): that line alone.

One ``dagster asset materialize`` of programme + participants + rapports with their checks (in-process
executor, as ``make demo``: the default multiprocess one costs a process per step and is covered by
``test_pmu_cli_and_deploy``), the operator CLI (``counts``, ``dead-letters``) with the run's environment,
then the same command again: the tables are identical and every job reports unchanged.

The events side: ``events/ics`` through the CLI with a binary feed (random bytes with NULs) next to a
real recorded feed.

Run alone: ``pytest -m cli`` (or this file).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import sqlalchemy as sa

from ingestion_platform.defs.events import tables as event_tables
from ingestion_platform.defs.pmu import tables
from ingestion_platform.lib.ledger import Ledger
from ingestion_platform.lib.raw_store import DeadLetter, RawStore
from ingestion_platform.lib.text import name_key
from ingestion_platform.lib.warehouse import Warehouse
from ingestion_platform_tests.conftest import REPO_ROOT, cli_env, require_shared
from ingestion_platform_tests.pmu_helpers import dump

pytestmark = pytest.mark.cli

BIN = Path(sys.executable).parent
IN_PROCESS = '{"execution": {"config": {"in_process": {}}}}'
FINISHED = {"completed", "completed_with_errors"}

DAY = "2025-11-05"
DDMMYYYY = "05112025"
ASSETS = ("pmu/programme", "pmu/participants", "pmu/rapports")
COAT = "BAI FONCE TRES FONCE AVEC LISTE EN TETE ET BALZANE POST."
NUL_RUNNER = (2, 1, 3)  # R2C1, saddle number 3
NUL_MEETING = 9
BAD_LINE = ("SIMPLE_PLACE", 2)  # R1C1 rapports, second line of SIMPLE_PLACE
#: race -> (dead letter, what its error must name)
BAD_RACES = {
    (3, 2): ("programme__R3_course_2", ["R3 course #2", "numOrdre", "missing"]),
    (4, 3): ("programme__R4C3", ["R4C3", "distance", "'2850 m'"]),
    (5, 6): ("programme__R5C6", ["R5C6", "pmu.race.declared_runners", "out of range"]),
    (6, 3): ("programme__R6C3", ["R6C3", "pmu.race.prize_eur", "NUMERIC(14, 2)"]),
}


# -- the replay directory -----------------------------------------------------------------------------
def _read(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _write(path: Path, payload: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, ensure_ascii=False), encoding="utf-8")  # a NUL is written \u0000


def _race_of(path: Path) -> tuple[int, int]:
    meeting, race = path.stem.rsplit("_", 1)[1].removeprefix("R").split("C")
    return int(meeting), int(race)


def build_replay(recorded: Path, root: Path) -> dict[str, Any]:
    """The recorded day in the replay layout under ``root``, bad values injected into the copies.

    Returns what must load, computed from the recordings: the races, the runners of each race, the
    horse keys (``idCheval``) and the dividend lines."""
    client1 = root / "rest" / "client" / "1" / "programme"
    client61 = root / "rest" / "client" / "61" / "programme"
    programme = _read(recorded / f"programme_{DDMMYYYY}.json")
    courses = {}
    for reunion in programme["programme"]["reunions"]:
        for course in reunion["courses"]:
            courses[(reunion["numOfficiel"], course["numOrdre"])] = course
        if reunion["numOfficiel"] == NUL_MEETING:
            reunion["hippodrome"]["libelleLong"] = "HIPPODROME\x00DE PALERMO"
    del courses[(3, 2)]["numOrdre"]
    courses[(4, 3)]["distance"] = "2850 m"
    courses[(5, 6)]["nombreDeclaresPartants"] = 10**12
    courses[(6, 3)]["montantPrix"] = 10**13
    _write(client1 / f"{DDMMYYYY}.json", programme)
    races = sorted(k for k in courses if k not in BAD_RACES and k[0] != NUL_MEETING)

    runners: dict[tuple[int, int], set[int]] = {}
    horses: dict[tuple[int, int, int], str] = {}
    for path in sorted(recorded.glob(f"participants_{DDMMYYYY}_R*C*.json")):
        meeting, race = _race_of(path)
        payload = _read(path)
        for runner in payload["participants"]:
            if (meeting, race, runner["numPmu"]) == (1, 1, 1):
                runner["robe"]["libelleLong"] = COAT
            if (meeting, race, runner["numPmu"]) == NUL_RUNNER:
                runner["nom"] = runner["nom"][:3] + "\x00" + runner["nom"][3:]
            horses[(meeting, race, runner["numPmu"])] = name_key(runner["idCheval"])
        _write(client61 / DDMMYYYY / f"R{meeting}" / f"C{race}" / "participants.json", payload)
        runners[(meeting, race)] = {r["numPmu"] for r in payload["participants"]}

    lines = set()
    for path in sorted(recorded.glob(f"rapports_{DDMMYYYY}_R*C*.json")):
        meeting, race = _race_of(path)
        payload = _read(path)
        for bet in payload:
            for index, line in enumerate(bet["rapports"], 1):
                if (meeting, race) == (1, 1) and (bet["typePari"], index) == BAD_LINE:
                    line["dividendePourUnEuro"] = 10**17  # cents: 10**15 euros
                else:
                    lines.add((meeting, race, bet["typePari"], line["libelle"], line["combinaison"]))
        _write(client1 / DDMMYYYY / f"R{meeting}" / f"C{race}" / "rapports-definitifs.json", payload)
    for path in sorted(recorded.glob(f"performances_{DDMMYYYY}_R*C*.json")):
        meeting, race = _race_of(path)
        target = client61 / DDMMYYYY / f"R{meeting}" / f"C{race}" / "performances-detaillees" / "pretty.json"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)

    loaded = set(races)
    expected_runners = {k: v - {NUL_RUNNER[2]} if k == NUL_RUNNER[:2] else v for k, v in runners.items() if k in loaded}
    return {
        "races": races,
        "runners": expected_runners,
        "horses": {h for (m, r, n), h in horses.items() if (m, r) in loaded and (m, r, n) != NUL_RUNNER},
        "nul_horse": horses[NUL_RUNNER],
        "lines": lines,
    }


# -- the CLI --------------------------------------------------------------------------------------------
def _dagster_home(root: Path) -> Path:
    home = root / "dagster_home"
    home.mkdir()
    shutil.copyfile(REPO_ROOT / "dagster.yaml", home / "dagster.yaml")
    return home


def _run(command: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    # In DAGSTER_HOME, not the repository: the CLIs would read a developer's .env there (cli_env).
    return subprocess.run(command, env=cli_env(env), cwd=env["DAGSTER_HOME"], capture_output=True, text=True,
                          timeout=900)  # fmt: skip


def _materialize(env: dict[str, str], select: str, *args: str, fails: str | None = None) -> None:
    """Run the command; it succeeds, or, with ``fails``, exits non-zero with ``fails`` in its output."""
    command = [str(BIN / "dagster"), "asset", "materialize", "-m", "ingestion_platform.definitions",
               "--select", select, *args]  # fmt: skip
    done = _run(command, env)
    if fails is None:
        assert done.returncode == 0, done.stderr[-6000:]
    else:
        assert done.returncode != 0 and fails in done.stderr, done.stderr[-6000:]


def _operator(env: dict[str, str], *args: str) -> str:
    """``python -m ingestion_platform.cli ...`` with the run's environment: its output."""
    done = _run([sys.executable, "-m", "ingestion_platform.cli", *args], env)
    assert done.returncode == 0, done.stderr[-4000:]
    return done.stdout


def _count_lines(output: str) -> dict[str, list[str]]:
    """``table -> [rows, rows on the day]`` from the output of ``cli counts``."""
    out = {}
    for line in output.splitlines():
        parts = line.split()
        if parts and "." in parts[0] and all(p.isdigit() for p in parts[1:]) and len(parts) > 1:
            out[parts[0]] = parts[1:]
    return out


def _checks_of_run(home: Path, run_id: str) -> dict[str, bool]:
    """``asset:check -> passed`` of one run, from the events on the instance of ``home``."""
    with dg.DagsterInstance.from_config(str(home)) as instance:
        events = instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION)
        return {
            f"{e.dagster_event.event_specific_data.asset_key.to_user_string()}:"
            f"{e.dagster_event.event_specific_data.check_name}": e.dagster_event.event_specific_data.passed
            for e in events
        }


@pytest.fixture(scope="module")
def pg_module_url(pg_admin: sa.Engine) -> Iterator[str]:
    """A fresh PostgreSQL database for this module's tests (the CLI runs once for all of them)."""
    name = f"ip_test_{uuid.uuid4().hex[:12]}"
    with pg_admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    yield pg_admin.url.set(database=name).render_as_string(hide_password=False)
    with pg_admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@dataclass
class DayRun:
    """What the CLI run of the injected day left behind, then the state after the same command again."""

    expected: dict[str, Any]
    jobs: list[dict[str, Any]]
    letters: dict[str, DeadLetter]
    checks: dict[str, bool]
    counts_out: str
    letters_out: str
    dump: dict[str, list[tuple]]
    rows: dict[str, list[dict[str, Any]]]
    rerun_dump: dict[str, list[tuple]] = field(default_factory=dict)
    rerun_jobs: list[dict[str, Any]] = field(default_factory=list)
    rerun_letters: list[str] = field(default_factory=list)
    rerun_checks: dict[str, bool] = field(default_factory=dict)
    rerun_metadata: dict[str, dict[str, Any]] = field(default_factory=dict)


@pytest.fixture(scope="module")
def day_run(pg_module_url: str, tmp_path_factory: pytest.TempPathFactory) -> DayRun:
    recorded = require_shared(f"pmu/{DDMMYYYY}")
    root = tmp_path_factory.mktemp("bad_values")
    expected = build_replay(recorded, root / "replay")
    home = _dagster_home(root)
    data = root / "data"
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "INGESTION_DATABASE_URL": pg_module_url,
        "INGESTION_DATA_DIR": str(data),
        "PMU_API_BASE_URL": f"file://{root / 'replay'}",
    }
    select = ",".join(ASSETS)
    _materialize(env, select, "--partition", DAY, "--config-json", IN_PROCESS)
    counts_out = _operator(env, "counts", "--partition", DAY)
    letters_out = _operator(env, "dead-letters", "--partition", DAY)
    wh = Warehouse(pg_module_url)
    try:
        jobs = Ledger(wh).jobs()
        rp = tables.race_participant
        result = DayRun(
            expected=expected,
            jobs=jobs,
            letters={x.request: x for x in RawStore(data).dead_letters("pmu", DAY)},
            checks=_checks_of_run(home, jobs[0]["run_id"]),
            counts_out=counts_out,
            letters_out=letters_out,
            dump=dump(wh),
            rows={
                "race": wh.fetch(sa.select(tables.race)),
                "race_meeting": wh.fetch(sa.select(tables.race_meeting)),
                "race_participant": wh.fetch(sa.select(rp.c.meeting_num, rp.c.race_num, rp.c.horse_num)),
                "horse": wh.fetch(sa.select(tables.horse)),
                "bet_report": wh.fetch(sa.select(tables.bet_report)),
            },
        )
        _materialize(env, select, "--partition", DAY, "--config-json", IN_PROCESS)  # the same command again
        result.rerun_dump = dump(wh)
        result.rerun_jobs = [j for j in Ledger(wh).jobs() if j["id"] not in {x["id"] for x in jobs}]
        result.rerun_letters = sorted(x.request for x in RawStore(data).dead_letters("pmu", DAY))
        result.rerun_checks = _checks_of_run(home, result.rerun_jobs[0]["run_id"])
        with dg.DagsterInstance.from_config(str(home)) as instance:
            for key in ASSETS:
                event = instance.get_latest_materialization_event(dg.AssetKey.from_user_string(key))
                metadata = event.asset_materialization.metadata
                result.rerun_metadata[key] = {k: getattr(v, "value", v) for k, v in metadata.items()}
    finally:
        wh.engine.dispose()
    return result


def _job(jobs: list[dict[str, Any]], asset: str) -> dict[str, Any]:
    (job,) = [j for j in jobs if j["asset_key"] == asset]
    return job


# -- PMU --------------------------------------------------------------------------------------------------
def test_every_job_of_the_day_finishes_and_counts_its_rejects(day_run: DayRun) -> None:
    assert sorted((j["asset_key"], j["partition_key"]) for j in day_run.jobs) == [(a, DAY) for a in sorted(ASSETS)]
    assert {j["status"] for j in day_run.jobs} == {"completed_with_errors"}
    rejected = {j["asset_key"]: j["rejected"] for j in day_run.jobs}
    # 4 races + 1 meeting (with its races); 1 runner; 1 dividend line
    assert rejected == {"pmu/programme": 5, "pmu/participants": 1, "pmu/rapports": 1}
    assert all("\x00" not in json.dumps(j, default=str) for j in day_run.jobs)


def test_a_56_character_coat_label_loads(day_run: DayRun) -> None:
    assert len(COAT) == 56
    (horse,) = [h for h in day_run.rows["horse"] if h["horse_key"] == "KING DU PLESSIS-DANA VICTIS-DIJON"]
    assert horse["coat"] == COAT


def test_a_nul_in_a_runner_name_rejects_that_runner_only(day_run: DayRun) -> None:
    meeting, race, number = NUL_RUNNER
    loaded = Counter((r["meeting_num"], r["race_num"]) for r in day_run.rows["race_participant"])
    runners = {(r["meeting_num"], r["race_num"], r["horse_num"]) for r in day_run.rows["race_participant"]}
    assert NUL_RUNNER not in runners
    assert {n for m, r, n in runners if (m, r) == (meeting, race)} == day_run.expected["runners"][(meeting, race)]
    assert dict(loaded) == {k: len(v) for k, v in day_run.expected["runners"].items()}  # every other race, whole
    horses = {h["horse_key"] for h in day_run.rows["horse"]}
    assert day_run.expected["nul_horse"] not in horses  # rejected once, with its runner: no orphan horse
    assert horses == day_run.expected["horses"]

    participant_letters = [x for x in day_run.letters.values() if x.context["asset_key"] == "pmu/participants"]
    assert [x.request for x in participant_letters] == [f"R{meeting}C{race}_participants__runner_{number}"]
    (letter,) = participant_letters
    assert letter.origin == f"R{meeting}C{race}_participants"  # the raw request it came from
    assert f"R{meeting}C{race} runner {number}" in letter.error and "NUL" in letter.error
    assert "pmu.race_participant" in letter.error and "\x00" not in letter.error
    assert json.loads(letter.payload())["nom"].count("\x00") == 1  # the raw runner, kept for a replay

    job = _job(day_run.jobs, "pmu/participants")
    assert job["status"] == "completed_with_errors" and job["rejected"] == 1
    assert day_run.checks["pmu/participants:participants_reconcile_with_raw"] is True
    assert day_run.checks["pmu/participants:arrival_order_references_runners"] is True
    assert day_run.checks["pmu/participants:no_dead_letters"] is False  # the warning that says so


def test_a_race_with_a_bad_or_missing_field_is_rejected_alone(day_run: DayRun) -> None:
    races = {(r["meeting_num"], r["race_num"]) for r in day_run.rows["race"]}
    assert sorted(races) == day_run.expected["races"] and len(races) == 55  # 63 - 4 races - R9's 4 races
    assert not races & set(BAD_RACES)
    for name, words in BAD_RACES.values():
        error = day_run.letters[name].error
        assert all(w in error for w in words), error
    # A meeting that cannot be stored is rejected with its races (no race without its meeting).
    assert {m["meeting_num"] for m in day_run.rows["race_meeting"]} == set(range(1, 9))
    error = day_run.letters[f"programme__R{NUL_MEETING}"].error
    assert "pmu.race_meeting.hippodrome_long_name" in error and "NUL" in error and "\x00" not in error
    assert _job(day_run.jobs, "pmu/programme")["rejected"] == 5
    assert all(passed for name, passed in day_run.checks.items() if "programme" in name and "dead" not in name)


def test_a_value_out_of_range_rejects_that_record_only(day_run: DayRun) -> None:
    race = {(r["meeting_num"], r["race_num"]): r for r in day_run.rows["race"]}
    assert (5, 6) not in race and (6, 3) not in race  # INTEGER and NUMERIC(14, 2) overflows
    assert race[(5, 7)]["declared_runners"] > 0 and race[(6, 4)]["prize_eur"] > 0  # their neighbours load
    lines = {
        (r["meeting_num"], r["race_num"], r["bet_type_code"], r["label"], r["combination"])
        for r in day_run.rows["bet_report"]
    }
    assert lines == day_run.expected["lines"] and len(lines) == 18  # 19 recorded lines, one rejected
    (letter,) = [x for x in day_run.letters.values() if x.context["asset_key"] == "pmu/rapports"]
    assert letter.request == f"R1C1_rapports__{BAD_LINE[0]}_line_{BAD_LINE[1]}"
    assert "pmu.bet_report.dividend_per_euro_eur" in letter.error and "NUMERIC(14, 2)" in letter.error
    assert day_run.checks["pmu/rapports:rapports_reconcile_with_raw"] is True
    assert day_run.checks["pmu/rapports:bet_report_references_race_bet"] is True


def test_blocking_checks_pass(day_run: DayRun) -> None:
    warnings = {"no_dead_letters", "official_races_have_rapports"}  # dead letters; rapports recorded for R1C1 only
    failed = [name for name, passed in day_run.checks.items() if not passed and name.split(":")[1] not in warnings]
    assert failed == [] and len(day_run.checks) > 20


def test_operator_cli_reports_the_tables_and_the_letters(day_run: DayRun) -> None:
    counts = _count_lines(day_run.counts_out)
    assert counts["pmu.race"] == ["55", "55"]
    assert counts["pmu.race_meeting"] == ["8", "8"]
    runners = sum(len(v) for v in day_run.expected["runners"].values())
    assert counts["pmu.race_participant"] == [str(runners), str(runners)]
    assert counts["pmu.bet_report"] == ["18", "18"]
    assert counts["pmu.horse"] == [str(len(day_run.expected["horses"]))]
    assert "postgresql" in day_run.counts_out
    out = day_run.letters_out
    assert f"{len(day_run.letters)} unresolved dead letter(s)" in out and len(day_run.letters) == 7
    for request in day_run.letters:
        assert f"pmu/{DAY}/{request}: RecordError" in out
    for asset in ASSETS:
        assert f"--select '{asset}' --partition {DAY}" in out  # the replay command of each asset
    assert "\x00" not in out


def test_the_same_command_again_changes_nothing(day_run: DayRun) -> None:
    assert day_run.rerun_dump == day_run.dump
    assert all(day_run.dump[t] for t in ("race", "race_participant", "horse", "bet_report"))
    assert sorted(j["asset_key"] for j in day_run.rerun_jobs) == sorted(ASSETS)
    for job in day_run.rerun_jobs:
        first = _job(day_run.jobs, job["asset_key"])
        assert job["run_id"] != first["run_id"]
        assert (job["created"], job["updated"]) == (0, 0), job
        assert job["unchanged"] == first["created"] > 0
        assert (job["status"], job["rejected"]) == (first["status"], first["rejected"])
        metadata = day_run.rerun_metadata[job["asset_key"]]
        assert (metadata["created"], metadata["updated"], metadata["deleted"]) == (0, 0, 0)
        assert metadata["unchanged"] == job["unchanged"]
    assert day_run.rerun_letters == sorted(day_run.letters)  # filed again, not duplicated
    assert day_run.rerun_checks == day_run.checks


# -- events -------------------------------------------------------------------------------------------------
def test_events_cli_dead_letters_a_binary_feed_fails_the_run_and_loads_the_good_one(
    pg_url: str, tmp_path: Path
) -> None:
    good = require_shared("events/ics") / "icalendar__calendars__x_location.ics"  # real: weekdays 14:00 Zurich
    noise = bytearray(random.Random(20251105).randbytes(4096))
    noise[::97] = bytes(len(noise[::97]))  # NULs all through it
    binary = tmp_path / "binary.ics"
    binary.write_bytes(bytes(noise))
    home = _dagster_home(tmp_path)
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "INGESTION_DATABASE_URL": pg_url,
        "INGESTION_DATA_DIR": str(tmp_path / "data"),
        "ICS_FEEDS": json.dumps([{"name": "binary", "url": str(binary)}, {"name": "itc", "url": str(good)}]),
    }
    week = ("2026-06-15", "2026-06-19")  # Monday .. Friday
    # A configured feed nothing can be read from fails the blocking check (the run fails, visibly);
    # the good feed's events load all the same.
    _materialize(env, "events/ics", "--partition-range", "...".join(week), "--config-json", IN_PROCESS,
                 fails="blocking asset checks failed")  # fmt: skip

    wh = Warehouse(pg_url)
    try:
        event = event_tables.event
        rows = wh.fetch(sa.select(event.c.source, event.c.title, event.c.start_date))
        assert Counter(r["source"] for r in rows) == {"ics:itc": 5}
        assert {r["title"] for r in rows} == {"Daily Sync"}
        assert sorted(str(r["start_date"]) for r in rows) == [f"2026-06-{d}" for d in range(15, 20)]
        jobs = Ledger(wh).jobs()
    finally:
        wh.engine.dispose()
    assert sorted(j["partition_key"] for j in jobs) == [f"2026-06-{d}" for d in range(15, 20)]
    assert {j["status"] for j in jobs} <= FINISHED and "completed_with_errors" in {j["status"] for j in jobs}
    assert sum(j["rejected"] for j in jobs) >= 1
    assert all("\x00" not in json.dumps(j, default=str) for j in jobs)

    letters = RawStore(tmp_path / "data").dead_letters("ics")
    assert [x.request for x in letters] == ["feed_binary"]
    assert letters[0].partition == "_".join(week) and "\x00" not in letters[0].error
    assert letters[0].payload() == bytes(noise)  # the bytes as received
    out = _operator(env, "dead-letters")
    assert f"ics/{'_'.join(week)}/feed_binary:" in out and "1 unresolved dead letter(s)" in out
    assert "\x00" not in out
    counts = _count_lines(_operator(env, "counts", "--partition", week[0]))
    assert counts["events.event"] == ["5", "1"]
