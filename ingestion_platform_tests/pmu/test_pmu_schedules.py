"""Schedules ask for the right Paris day; the late-rapports sensor asks once per pace window."""

from __future__ import annotations

import datetime as dt
import json

import dagster as dg
import pytest

from ingestion_platform.defs.pmu import tables
from ingestion_platform.defs.pmu.schedules import (
    PARIS,
    pmu_late_rapports_sensor,
    pmu_morning_schedule,
    pmu_results_schedule,
)
from ingestion_platform.lib.warehouse import Warehouse, WarehouseResource


def test_morning_schedule_requests_todays_paris_partition() -> None:
    # 09:00 Paris on 14 March 2025 is 08:00 UTC.
    context = dg.build_schedule_context(scheduled_execution_time=dt.datetime(2025, 3, 14, 9, 0, tzinfo=PARIS))
    request = pmu_morning_schedule(context)
    assert request.partition_key == "2025-03-14"
    assert request.run_key == "morning-2025-03-14"


def test_results_schedule_uses_paris_date_not_utc() -> None:
    # 23:30 Paris in summer is 21:30 UTC; 00:15 Paris on the 15th is still the 14th in UTC.
    late = dt.datetime(2025, 7, 14, 23, 30, tzinfo=PARIS)
    request = pmu_results_schedule(dg.build_schedule_context(scheduled_execution_time=late.astimezone(dt.UTC)))
    assert request.partition_key == "2025-07-14"
    assert pmu_results_schedule.cron_schedule == "30 23 * * *"
    assert pmu_results_schedule.execution_timezone == "Europe/Paris"


def _race(day: dt.date, meeting: int, race: int, starts_at: dt.datetime, **extra) -> dict:
    row = {c.name: None for c in tables.race.columns if not c.name.startswith("_")}
    row.update(
        program_date=day,
        meeting_num=meeting,
        race_num=race,
        starts_at=starts_at,
        is_cancelled=False,
        is_official=True,
    )
    row.update(extra)
    return row


@pytest.fixture
def seeded(warehouse: Warehouse) -> Warehouse:
    now = dt.datetime.now(dt.UTC)
    today = now.astimezone(PARIS).date()
    yesterday = today - dt.timedelta(days=1)
    races = [
        _race(yesterday, 1, 1, now - dt.timedelta(hours=20)),  # finished, no rapports -> missing
        _race(yesterday, 1, 2, now - dt.timedelta(hours=19)),  # finished, has rapports
        _race(yesterday, 1, 3, now - dt.timedelta(hours=18), is_cancelled=True),  # cancelled: ignored
        _race(today, 1, 1, now + dt.timedelta(hours=2), is_official=False),  # not started: ignored
    ]
    warehouse.load(tables.race, races)
    bet = {c.name: None for c in tables.race_bet.columns if not c.name.startswith("_")}
    bet.update(
        program_date=yesterday, meeting_num=1, race_num=2, bet_type_code="SIMPLE_GAGNANT", bet_type="SIMPLE_GAGNANT"
    )
    bet.update(is_internet_pool=False, is_international=False)
    warehouse.load(tables.race_bet, [bet])
    return warehouse


def test_late_rapports_sensor_requests_days_with_missing_rapports(seeded: Warehouse, warehouse_url: str) -> None:
    yesterday = (dt.datetime.now(dt.UTC).astimezone(PARIS).date() - dt.timedelta(days=1)).isoformat()
    resources = {"warehouse": WarehouseResource(database_url=warehouse_url)}
    context = dg.build_sensor_context(cursor=None, resources=resources)
    result = pmu_late_rapports_sensor(context)
    assert [r.partition_key for r in result.run_requests] == [yesterday]
    assert result.run_requests[0].tags["pmu/missing_rapports"] == "1"
    cursor = json.loads(result.cursor)
    assert list(cursor) == [yesterday]

    # Asked a moment ago: the sensor waits before asking again, and keeps its cursor.
    again = pmu_late_rapports_sensor(dg.build_sensor_context(cursor=result.cursor, resources=resources))
    assert again.run_requests == []
    assert json.loads(again.cursor) == cursor

    # Long enough ago: it asks again.
    stale = json.dumps({yesterday: (dt.datetime.now(dt.UTC) - dt.timedelta(hours=3)).isoformat()})
    third = pmu_late_rapports_sensor(dg.build_sensor_context(cursor=stale, resources=resources))
    assert [r.partition_key for r in third.run_requests] == [yesterday]


def test_late_rapports_sensor_reads_its_window_and_pace_when_evaluated(
    seeded: Warehouse, warehouse_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    resources = {"warehouse": WarehouseResource(database_url=warehouse_url)}
    yesterday = (dt.datetime.now(dt.UTC).astimezone(PARIS).date() - dt.timedelta(days=1)).isoformat()
    monkeypatch.setenv("PMU_LATE_RAPPORTS_DAYS", "1")  # today only: yesterday is out of the window
    assert pmu_late_rapports_sensor(dg.build_sensor_context(cursor=None, resources=resources)).run_requests == []

    monkeypatch.setenv("PMU_LATE_RAPPORTS_DAYS", "2")
    monkeypatch.setenv("PMU_LATE_RAPPORTS_EVERY_H", "0")  # no pause between two asks
    first = pmu_late_rapports_sensor(dg.build_sensor_context(cursor=None, resources=resources))
    again = pmu_late_rapports_sensor(dg.build_sensor_context(cursor=first.cursor, resources=resources))
    assert [r.partition_key for r in first.run_requests] == [yesterday]
    assert [r.partition_key for r in again.run_requests] == [yesterday]
