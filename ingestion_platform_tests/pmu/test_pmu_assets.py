"""The PMU assets end to end, on SQLite and PostgreSQL: sample day, idempotence, faults,
dead letters and replay, ranged backfill."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa

from ingestion_platform.defs.pmu import parse, tables
from ingestion_platform.defs.pmu.assets import participants, programme, rapports
from ingestion_platform.lib.errors import RecordError
from ingestion_platform.lib.ledger import Ledger
from ingestion_platform.lib.raw_store import RawStore
from ingestion_platform.lib.warehouse import Warehouse
from ingestion_platform_tests.pmu_helpers import (
    SAMPLE_DAY,
    SAMPLE_DIR,
    check_results,
    copy_day,
    counts,
    dump,
    metadata_of,
    reprocess_config,
    run_pmu,
)
from ingestion_platform_tests.pmu_server import FaultPlan, PmuServer

SAMPLE_URL = f"file://{SAMPLE_DIR}"
DAY = dt.date.fromisoformat(SAMPLE_DAY)


def _expected_counts() -> dict[str, int]:
    """What the shipped sample day must produce, derived from the raw files independently."""
    root = SAMPLE_DIR / "rest" / "client"
    programme_payload = json.loads(next(root.glob("*/programme/14032025.json")).read_text())
    reunions = programme_payload["programme"]["reunions"]
    races = [c for r in reunions for c in r["courses"]]
    runners, horses, jockeys, trainers = 0, set(), set(), set()
    for path in root.glob("*/programme/14032025/R*/C*/participants.json"):
        for p in json.loads(path.read_text())["participants"]:
            runners += 1
            horses.add((p["nom"], p.get("nomMere"), p.get("nomPere")))
            jockeys.add(" ".join(p["driver"].upper().split()))
            trainers.add(" ".join(p["entraineur"].upper().split()))
    bets = lines = 0
    for path in root.glob("*/programme/14032025/R*/C*/rapports-definitifs.json"):
        payload = json.loads(path.read_text())
        bets += len(payload)
        lines += sum(len(b["rapports"]) for b in payload)
    return {
        "daily_program": 1,
        "race_meeting": len(reunions),
        "race": len(races),
        "race_participant": runners,
        "horse": len(horses),
        "jockey": len(jockeys),
        "trainer": len(trainers),
        "race_bet": bets,
        "bet_report": lines,
    }


def test_sample_day_end_to_end(warehouse: Warehouse, warehouse_url: str, tmp_path: Path) -> None:
    result = run_pmu(database_url=warehouse_url, data_dir=tmp_path / "data", base_url=SAMPLE_URL)
    assert result.success
    got = counts(warehouse)
    for table, expected in _expected_counts().items():
        assert got[table] == expected, table
    assert got["horse_race_history"] > 0

    # Every check passed: keys, references, arrival order, reconciliation, no dead letters.
    checks = check_results(result)
    assert len(checks) >= 20
    failed = {name: e.metadata for name, e in checks.items() if not e.passed}
    assert failed == {}

    # Ledger: one completed job per asset; the metadata carries the same counts.
    jobs = Ledger(warehouse).jobs()
    assert sorted(j["asset_key"] for j in jobs) == sorted(
        ["pmu/programme", "pmu/participants", "pmu/performances", "pmu/rapports"]
    )
    assert {j["status"] for j in jobs} == {"completed"}
    meta = metadata_of(result, participants)
    job = next(j for j in jobs if j["asset_key"] == "pmu/participants")
    assert meta["created"] == job["created"] > 0
    assert meta["unchanged"] == 0 and meta["rejected"] == 0

    # The not-yet-official race is pending in rapports, the cancelled one is not even asked for.
    race_rows = warehouse.fetch(sa.select(tables.race))
    cancelled = [r for r in race_rows if r["is_cancelled"]]
    unofficial = [r for r in race_rows if not r["is_official"] and not r["is_cancelled"]]
    assert cancelled and unofficial
    pending = metadata_of(result, rapports).get("pending", [])
    for r in unofficial:
        assert not any(f"R{r['meeting_num']}C{r['race_num']}_" in p for p in pending)  # never asked
    bet_races = {(b["meeting_num"], b["race_num"]) for b in warehouse.fetch(sa.select(tables.race_bet))}
    assert not bet_races & {(r["meeting_num"], r["race_num"]) for r in cancelled + unofficial}

    # Raw payloads were stored before parsing.
    store = RawStore(tmp_path / "data")
    assert "programme" in store.requests("pmu", SAMPLE_DAY)
    assert any(r.endswith("_participants") for r in store.requests("pmu", SAMPLE_DAY))


def test_rerun_is_idempotent(warehouse: Warehouse, warehouse_url: str, tmp_path: Path) -> None:
    first = run_pmu(database_url=warehouse_url, data_dir=tmp_path / "data", base_url=SAMPLE_URL)
    before = dump(warehouse)
    second = run_pmu(database_url=warehouse_url, data_dir=tmp_path / "data", base_url=SAMPLE_URL)
    assert first.success and second.success
    assert dump(warehouse) == before
    for asset in (programme, participants, rapports):
        meta = metadata_of(second, asset)
        assert (meta["created"], meta["updated"], meta["deleted"]) == (0, 0, 0), asset.key
        assert meta["unchanged"] == metadata_of(first, asset)["created"] > 0
    statuses = [j["status"] for j in Ledger(warehouse).jobs()]
    assert statuses == ["completed"] * 8


def test_fault_server_gives_the_same_tables(warehouse: Warehouse, warehouse_url: str, tmp_path: Path) -> None:
    clean_url = f"sqlite:///{tmp_path / 'clean' / 'warehouse.db'}"
    assert run_pmu(database_url=clean_url, data_dir=tmp_path / "clean", base_url=SAMPLE_URL).success
    from ingestion_platform.lib.warehouse import get_warehouse

    expected = dump(get_warehouse(clean_url))

    faults = FaultPlan(
        {
            "programme/14032025/R1/C1/participants": ["500", "reset", "ok"],
            "programme/14032025/R1/C2/participants": ["truncated", "truncated_json", "ok"],
            "programme/14032025/R2/C1/participants": ["429:1", "ok"],
            "performances-detaillees": ["503", "timeout", "ok"],
            "rapports-definitifs": ["502", "garbage", "ok"],
            "programme/14032025": ["503", "ok"],
        }
    )
    with PmuServer(SAMPLE_DIR, faults=faults, timeout_sleep_s=2.5) as srv:
        result = run_pmu(database_url=warehouse_url, data_dir=tmp_path / "faulty", base_url=srv.base_url)
        seen = srv.counts()
    assert result.success
    assert dump(warehouse) == expected
    for behaviour in ("500", "503", "429", "timeout", "reset", "truncated", "truncated_json", "garbage"):
        assert seen.get(behaviour, 0) >= 1, f"fault {behaviour} was not exercised: {seen}"
    assert {j["status"] for j in Ledger(warehouse).jobs()} == {"completed"}
    assert RawStore(tmp_path / "faulty").dead_letters() == []


def test_bad_race_is_dead_lettered_then_replayed(
    warehouse: Warehouse, warehouse_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "data"
    real = parse.parse_participants

    def broken(payload: dict, race: parse.RaceRef, arrival_order=None, *args):
        if race.label == "R1C2":
            raise RecordError("bad numPmu", record="R1C2 runner 3", field="numPmu")
        return real(payload, race, arrival_order, *args)

    monkeypatch.setattr(parse, "parse_participants", broken)
    result = run_pmu(
        database_url=warehouse_url, data_dir=data, base_url=SAMPLE_URL, selection=[programme, participants]
    )
    assert result.success
    rp = tables.race_participant
    loaded = {(r["meeting_num"], r["race_num"]) for r in warehouse.fetch(sa.select(rp.c.meeting_num, rp.c.race_num))}
    assert (1, 2) not in loaded and (1, 1) in loaded

    letters = RawStore(data).dead_letters("pmu", SAMPLE_DAY)
    assert [x.request for x in letters] == ["R1C2_participants"]
    assert "R1C2 runner 3" in letters[0].error and "numPmu" in letters[0].error
    assert letters[0].payload() is not None  # the payload is kept with its error
    job = next(j for j in Ledger(warehouse).jobs() if j["asset_key"] == "pmu/participants")
    assert job["status"] == "completed_with_errors" and job["rejected"] == 1
    checks = check_results(result)
    assert not checks["no_dead_letters"].passed
    assert metadata_of(result, participants)["rejected"] == 1

    # The fix lands; replay from raw, with no API at all (an unreachable base URL).
    monkeypatch.setattr(parse, "parse_participants", real)
    replay = run_pmu(
        database_url=warehouse_url,
        data_dir=data,
        base_url="http://127.0.0.1:9",
        selection=[participants],
        run_config=reprocess_config(participants),
    )
    assert replay.success
    loaded = {(r["meeting_num"], r["race_num"]) for r in warehouse.fetch(sa.select(rp.c.meeting_num, rp.c.race_num))}
    assert (1, 2) in loaded
    assert RawStore(data).dead_letters("pmu", SAMPLE_DAY) == []
    assert check_results(replay)["no_dead_letters"].passed
    assert "R1C2_participants" in metadata_of(replay, participants)["dead_letters_resolved"][0]
    last = Ledger(warehouse).jobs(asset_key="pmu/participants")[-1]
    assert last["status"] == "completed" and last["provider"] == "raw store replay"


def test_two_day_backfill_in_one_run(warehouse: Warehouse, warehouse_url: str, tmp_path: Path) -> None:
    replay = tmp_path / "replay"
    copy_day(SAMPLE_DIR, replay)
    copy_day(SAMPLE_DIR, replay, dst="15032025")
    result = run_pmu(
        database_url=warehouse_url,
        data_dir=tmp_path / "data",
        base_url=f"file://{replay}",
        partition_range=("2025-03-14", "2025-03-15"),
    )
    assert result.success
    per_day = {
        str(r["program_date"]): r["n"]
        for r in warehouse.fetch(
            sa.select(tables.race.c.program_date, sa.func.count().label("n")).group_by(tables.race.c.program_date)
        )
    }
    assert set(per_day) == {"2025-03-14", "2025-03-15"} and len(set(per_day.values())) == 1
    jobs = Ledger(warehouse).jobs(asset_key="pmu/participants")
    assert sorted(j["partition_key"] for j in jobs) == ["2025-03-14", "2025-03-15"]
    # Each partition shows its own day: its ledger job, its row count (of the table named), its checks.
    job_of = {j["partition_key"]: str(j["id"]) for j in jobs}
    shown = {m.partition: m.metadata for m in result.asset_materializations_for_node(participants.op.name)}
    assert set(shown) == {"2025-03-14", "2025-03-15"}
    for day, meta in shown.items():
        assert meta["ledger_job_ids"].value == job_of[day]
        assert meta["dagster/row_count"].value == 38  # runners of the day, not the sum of the four tables
        assert meta["status"].value == "loaded 38 row(s)"
    # The copied day is unchanged in the shared dimension tables, created in its own rows.
    assert (
        shown["2025-03-15"]["tables"].value["pmu.horse"]["unchanged"]
        == shown["2025-03-14"]["tables"].value["pmu.horse"]["created"]
    )
    evaluations = [e for e in result.get_asset_check_evaluations() if e.asset_key == participants.key]
    by_check: dict[str, set] = {}
    for e in evaluations:
        assert e.passed, e.check_name
        assert e.target_materialization_data is not None
        by_check.setdefault(e.check_name, set()).add(e.partition)
    assert set(by_check) == {k.name for k in participants.check_keys}
    assert all(days == {"2025-03-14", "2025-03-15"} for days in by_check.values())


def test_day_without_programme_loads_nothing(warehouse: Warehouse, warehouse_url: str, tmp_path: Path) -> None:
    result = run_pmu(
        database_url=warehouse_url, data_dir=tmp_path / "data", base_url=SAMPLE_URL, partition_key="2025-03-20"
    )
    assert result.success
    assert counts(warehouse)["race"] == 0
    meta = metadata_of(result, programme)
    assert "programme (not published)" in meta["pending"][0]
    # Not a green materialisation with data: 0 rows, says why, and the day_has_rows warning fails.
    assert meta["dagster/row_count"] == 0
    assert meta["status"] == "nothing published yet: programme (not published)"
    checks = {(e.asset_key.to_user_string(), e.check_name): e for e in result.get_asset_check_evaluations()}
    warning = checks[("pmu/programme", "day_has_rows")]
    assert not warning.passed and warning.severity == dg.AssetCheckSeverity.WARN
    assert warning.metadata["sample"].value[0]["pending"] == ["programme (not published)"]
    assert checks[("pmu/programme", "source_loaded")].passed  # the source answered: nothing yet is not a failure


def test_an_unparseable_programme_fails_the_run(warehouse: Warehouse, warehouse_url: str, tmp_path: Path) -> None:
    """The API answered with a programme nothing can be read from: the blocking check fails the run
    (downstream assets do not run), instead of a green run with a note in its metadata."""
    replay = tmp_path / "replay"
    copy_day(SAMPLE_DIR, replay)
    (replay / "rest/client/1/programme/14032025.json").write_text('{"programme": {"reunions": "none"}}')
    result = run_pmu(database_url=warehouse_url, data_dir=tmp_path / "data", base_url=f"file://{replay}")
    assert not result.success
    [failure] = [e for e in result.all_events if e.is_step_failure]
    assert failure.step_key == "pmu__programme" and "source_loaded" in failure.step_failure_data.error.message
    [check] = [e for e in result.get_asset_check_evaluations() if e.check_name == "source_loaded"]
    assert not check.passed and check.partition == SAMPLE_DAY
    assert "nothing loaded" in check.metadata["sample"].value[0]["reason"]
    assert not result.asset_materializations_for_node(participants.op.name)  # blocked downstream
    assert metadata_of(result, programme)["status"].startswith("nothing loaded: 1 record(s)")
    assert [x.request for x in RawStore(tmp_path / "data").dead_letters("pmu", SAMPLE_DAY)] == ["programme"]


def test_every_race_of_a_day_rejected_fails_the_run(
    warehouse: Warehouse, warehouse_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = parse.parse_participants

    def broken(payload: dict, race: parse.RaceRef, *args):
        raise RecordError("bad numPmu", record=f"{race.label} runner 1", field="numPmu")

    monkeypatch.setattr(parse, "parse_participants", broken)
    result = run_pmu(database_url=warehouse_url, data_dir=tmp_path / "data", base_url=SAMPLE_URL)
    assert not result.success
    checks = {(e.asset_key.to_user_string(), e.check_name): e for e in result.get_asset_check_evaluations()}
    assert checks[("pmu/programme", "source_loaded")].passed
    loaded = checks[("pmu/participants", "source_loaded")]
    assert not loaded.passed and loaded.metadata["sample"].value[0]["rejected"] == 6  # the six races
    assert len(RawStore(tmp_path / "data").dead_letters("pmu", SAMPLE_DAY)) == 6
    monkeypatch.setattr(parse, "parse_participants", real)


def test_other_client_number_is_asked_when_one_has_nothing(warehouse: Warehouse, tmp_path: Path) -> None:
    """A host that serves everything under /rest/client/1 (none under 61) still loads the whole day."""
    replay = tmp_path / "replay"
    for path in (SAMPLE_DIR / "rest").rglob("*.json"):
        rel = path.relative_to(SAMPLE_DIR / "rest" / "client")
        target = replay / "rest" / "client" / "1" / Path(*rel.parts[1:])
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(path.read_bytes())
    url = f"sqlite:///{tmp_path / 'w.db'}"
    result = run_pmu(database_url=url, data_dir=tmp_path / "data", base_url=f"file://{replay}")
    assert result.success
    from ingestion_platform.lib.warehouse import get_warehouse

    got = counts(get_warehouse(url))
    for table, expected in _expected_counts().items():
        assert got[table] == expected, table


def test_late_rapports_are_pending_then_filled(warehouse: Warehouse, warehouse_url: str, tmp_path: Path) -> None:
    """An official race whose rapports are still empty loads nothing; a later run fills it in."""
    replay = tmp_path / "replay"
    copy_day(SAMPLE_DIR, replay)
    late = replay / "rest" / "client" / "1" / "programme" / "14032025" / "R1" / "C2" / "rapports-definitifs.json"
    published = late.read_bytes()
    late.write_text("[]")
    data = tmp_path / "data"
    first = run_pmu(database_url=warehouse_url, data_dir=data, base_url=f"file://{replay}")
    assert first.success
    bets = tables.race_bet
    races_with_bets = {(b["meeting_num"], b["race_num"]) for b in warehouse.fetch(sa.select(bets))}
    assert (1, 2) not in races_with_bets and (1, 1) in races_with_bets
    assert any("R1C2_rapports" in p for p in metadata_of(first, rapports)["pending"])
    assert check_results(first)["official_races_have_rapports"].passed is False  # a warning, not a failure

    late.write_bytes(published)
    second = run_pmu(database_url=warehouse_url, data_dir=data, base_url=f"file://{replay}", selection=[rapports])
    assert second.success
    races_with_bets = {(b["meeting_num"], b["race_num"]) for b in warehouse.fetch(sa.select(bets))}
    assert (1, 2) in races_with_bets
    assert check_results(second)["official_races_have_rapports"].passed
    assert metadata_of(second, rapports)["created"] > 0


def test_a_runner_with_an_unreadable_number_rejects_that_runner_only(
    warehouse: Warehouse, warehouse_url: str, tmp_path: Path
) -> None:
    """Found through the UI: numPmu 'douze' on a placed runner rejects that runner; the arrival order
    naming it is not a blocking failure (the rejected runner may be any missing number of its race)."""
    replay = tmp_path / "replay"
    copy_day(SAMPLE_DIR, replay)
    path = replay / "rest/client/61/programme/14032025/R1/C2/participants.json"
    payload = json.loads(path.read_text())
    payload["participants"][0]["numPmu"] = "douze"
    path.write_text(json.dumps(payload))
    result = run_pmu(database_url=warehouse_url, data_dir=tmp_path / "data", base_url=f"file://{replay}")
    assert result.success
    checks = {(e.asset_key.to_user_string(), e.check_name): e for e in result.get_asset_check_evaluations()}
    assert checks[("pmu/participants", "arrival_order_references_runners")].passed
    assert not checks[("pmu/participants", "no_dead_letters")].passed
    [letter] = RawStore(tmp_path / "data").dead_letters("pmu", SAMPLE_DAY)
    assert "field 'numPmu'" in letter.error and "douze" in letter.error
    assert metadata_of(result, participants)["dagster/row_count"] == 37  # 38 runners, one rejected
