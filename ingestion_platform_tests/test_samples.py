"""The shipped samples: three recorded PMU days and the events sources, loaded offline as ``make demo`` does."""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from pathlib import Path

from ingestion_platform.defs.pmu import tables
from ingestion_platform.lib.ledger import Ledger
from ingestion_platform.lib.warehouse import Warehouse
from ingestion_platform_tests.pmu_helpers import SAMPLE_DIR, check_results, run_pmu

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
