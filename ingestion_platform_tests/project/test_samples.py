"""The shipped samples: three recorded PMU days and the events sources, loaded offline as ``make demo`` does."""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
from collections import Counter
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import sqlalchemy as sa

from ingestion_platform import local_env
from ingestion_platform.defs.events import tables as events_tables
from ingestion_platform.defs.events.assets import duplicates, eventbrite, ics_feeds, montreal
from ingestion_platform.defs.events.resources import EventbriteApi, IcsFeeds, MontrealOpenData
from ingestion_platform.defs.pmu import tables
from ingestion_platform.lib.ledger import Ledger
from ingestion_platform.lib.raw_store import RawStore, RawStoreResource
from ingestion_platform.lib.warehouse import Warehouse, WarehouseResource
from ingestion_platform_tests.pmu_helpers import SAMPLE_DIR, check_results, run_pmu
from ingestion_platform_tests.run_metadata import checks_passed

PMU_DAYS = {"2025-03-13": "13032025", "2025-03-14": "14032025", "2025-03-15": "15032025"}
# The README and the demo quote these for the 14th.
DAY_14 = {"race": 6, "race_participant": 38, "race_bet": 23, "bet_report": 74}
HISTORY_14 = 63


def _raw_day_counts(ddmmyyyy: str) -> dict[str, int]:
    """Races, runners, bets and dividend lines of one recorded day, read from the files (not by the parser)."""
    root = SAMPLE_DIR / "rest" / "client"
    programme = json.loads((root / "1" / "programme" / f"{ddmmyyyy}.json").read_text(encoding="utf-8"))
    races = [c for r in programme["programme"]["reunions"] for c in r["courses"]]
    runners = sum(
        len(json.loads(p.read_text(encoding="utf-8"))["participants"])
        for p in root.glob(f"61/programme/{ddmmyyyy}/R*/C*/participants.json")
    )
    bets = [b for p in root.glob(f"1/programme/{ddmmyyyy}/R*/C*/rapports-definitifs.json")
            for b in json.loads(p.read_text(encoding="utf-8"))]  # fmt: skip
    return {
        "race": len(races),
        "race_participant": runners,
        "race_bet": len(bets),
        "bet_report": sum(len(b["rapports"]) for b in bets),
    }


def _horses(ddmmyyyy: str) -> set[tuple[str, str, str]]:
    root = SAMPLE_DIR / "rest" / "client" / "61" / "programme" / ddmmyyyy
    return {
        (p["nom"], p["nomMere"], p["nomPere"])
        for path in root.glob("R*/C*/participants.json")
        for p in json.loads(path.read_text(encoding="utf-8"))["participants"]
    }


def test_pmu_sample_has_three_different_days_sharing_some_horses() -> None:
    assert _raw_day_counts("14032025") == DAY_14
    counts = {day: _raw_day_counts(day) for day in PMU_DAYS.values()}
    assert len({tuple(c.values()) for c in counts.values()}) == 3  # each day its own figures
    horses = {day: _horses(day) for day in PMU_DAYS.values()}
    shared_13 = horses["13032025"] & horses["14032025"]
    shared_15 = horses["15032025"] & horses["14032025"]
    assert shared_13 and shared_15  # a few horses run on two of the days, as in real programmes
    for other in ("13032025", "15032025"):
        assert len(horses[other] - horses["14032025"]) > 20  # mostly other horses


def test_pmu_sample_range_loads_each_day_with_its_own_counts(warehouse: Warehouse, warehouse_url: str,
                                                              tmp_path: Path) -> None:  # fmt: skip
    result = run_pmu(database_url=warehouse_url, data_dir=tmp_path / "data", base_url=f"file://{SAMPLE_DIR}",
                     partition_key=None, partition_range=("2025-03-13", "2025-03-15"))  # fmt: skip
    assert result.success
    failed = {name: e.metadata for name, e in check_results(result).items() if not e.passed}
    assert not failed
    for day, ddmmyyyy in PMU_DAYS.items():
        expected = _raw_day_counts(ddmmyyyy)
        for name, count in expected.items():
            table = getattr(tables, name)
            assert warehouse.count(table, table.c.program_date == dt.date.fromisoformat(day)) == count, (day, name)
    all_horses = set().union(*(_horses(d) for d in PMU_DAYS.values()))
    assert warehouse.count(tables.horse) == len(all_horses)
    assert warehouse.count(tables.horse_race_history) > HISTORY_14
    jobs = Ledger(warehouse).jobs()
    assert Counter((j["partition_key"], j["status"]) for j in jobs) == {
        (day, "completed"): 4 for day in PMU_DAYS
    }  # a job per asset and day, all clean


def test_pmu_sample_day_14_alone_keeps_the_documented_counts(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'w.db'}"
    result = run_pmu(database_url=url, data_dir=tmp_path / "data", base_url=f"file://{SAMPLE_DIR}")
    assert result.success
    wh = Warehouse(url)
    try:
        assert {name: wh.count(getattr(tables, name)) for name in DAY_14} == DAY_14
        assert wh.count(tables.horse_race_history) == HISTORY_14
        assert wh.count(tables.race, tables.race.c.program_date != dt.date(2025, 3, 14)) == 0
    finally:
        wh.engine.dispose()


# -- events ----------------------------------------------------------------------------------------------
EVENTS_SAMPLE = Path(__file__).resolve().parents[2] / "ingestion_platform" / "defs" / "events" / "sample"
EVENTS_DAYS = ("2025-03-13", "2025-03-15")


def _events_generator() -> Any:
    spec = importlib.util.spec_from_file_location("events_sample_generate", EVENTS_SAMPLE / "generate.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_events_sample_files_are_what_the_generator_writes() -> None:
    files = _events_generator().build()
    data = {".json", ".ics"}  # what is shipped (package data); generate.py and its bytecode are not data
    on_disk = {p.relative_to(EVENTS_SAMPLE).as_posix() for p in EVENTS_SAMPLE.rglob("*") if p.suffix in data}
    assert on_disk == set(files)
    for rel, body in files.items():
        assert (EVENTS_SAMPLE / rel).read_bytes() == body, rel


def _run_events(warehouse_url: str, data: Path, first: str, last: str) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [eventbrite, montreal, ics_feeds, duplicates],  # their checks run in their steps
        # Source resources with no explicit setting: they read the environment the test sets, as in `make demo`.
        resources={
            "eventbrite_api": EventbriteApi(),
            "montreal_open_data": MontrealOpenData(),
            "ics_feeds": IcsFeeds(),
            "warehouse": WarehouseResource(database_url=warehouse_url),
            "raw_store": RawStoreResource(data_dir=str(data)),
        },
        tags={"dagster/asset_partition_range_start": first, "dagster/asset_partition_range_end": last},
        raise_on_error=False,
        instance=dg.DagsterInstance.ephemeral(),
    )


@pytest.fixture
def sample_env(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The source settings `.env` gets (local_env.sample_settings), in the environment."""
    settings = local_env.sample_settings()
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("EVENTBRITE_TOKEN", raising=False)
    monkeypatch.delenv("MONTREAL_RESOURCE_ID", raising=False)
    return settings


def test_events_samples_load_the_three_days_with_cross_source_duplicates(
    sample_env: dict[str, str], warehouse: Warehouse, warehouse_url: str, tmp_path: Path
) -> None:
    result = _run_events(warehouse_url, tmp_path / "data", *EVENTS_DAYS)
    assert result.success
    checks = checks_passed(result)  # per check: passed on every day of the run
    assert checks.pop(("events/duplicates", "cross_source_duplicates")) is False  # the warning shows the pairs
    assert all(checks.values()), checks
    assert RawStore(tmp_path / "data").dead_letters() == []

    e = events_tables.event
    rows = warehouse.fetch(sa.select(e.c.source, e.c.start_date, e.c.status))
    per_source = Counter(r["source"] for r in rows)
    assert per_source == {"eventbrite": 5, "montreal": 7, "ics:bibliotheques": 5, "ics:culture": 4}
    assert {str(r["start_date"]) for r in rows} == {"2025-03-13", "2025-03-14", "2025-03-15"}
    cancelled = Counter(r["source"] for r in rows if r["status"] == "cancelled")
    assert cancelled == {"eventbrite": 1, "ics:bibliotheques": 1}

    pairs = warehouse.fetch(sa.select(events_tables.event_duplicate))
    assert len(pairs) == 5 and all(p["merged"] for p in pairs)
    members: dict[str, set[str]] = {}
    canonical: dict[str, str] = {}
    for c in warehouse.fetch(
        sa.select(events_tables.event_cluster).where(events_tables.event_cluster.c.cluster_size > 1)
    ):
        members.setdefault(c["cluster_id"], set()).add(c["source"])
        canonical[c["cluster_id"]] = c["canonical_source"]
    assert sorted(map(sorted, members.values())) == [
        ["eventbrite", "ics:bibliotheques"],
        ["eventbrite", "ics:culture", "montreal"],  # the tales evening of the 14th, in all three sources
        ["ics:culture", "montreal"],
    ]
    assert sorted(canonical.values()) == ["eventbrite", "eventbrite", "ics:culture"]


def test_events_sample_demo_day_alone(sample_env: dict[str, str], tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'w.db'}"
    assert _run_events(url, tmp_path / "data", "2025-03-14", "2025-03-14").success
    wh = Warehouse(url)
    try:
        per_source = Counter(r["source"] for r in wh.fetch(sa.select(events_tables.event.c.source)))
        assert per_source == {"eventbrite": 1, "montreal": 2, "ics:culture": 1, "ics:bibliotheques": 1}
        assert wh.count(events_tables.event_duplicate) == 3  # the three sources of the tales evening, pairwise
    finally:
        wh.engine.dispose()
