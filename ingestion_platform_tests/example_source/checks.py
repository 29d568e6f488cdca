"""Asset checks of the example tables, scoped to the run's days.

The raw reconciliation reads the stored payloads with the plainest rules (``json``, the ``csv``
module), not with the parsers: a record a parser silently dropped or mis-keyed is still expected.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Callable
from pathlib import PurePosixPath
from typing import Any

import sqlalchemy as sa

from ingestion_platform.lib.checks import (
    CheckInputs,
    dead_letter_check,
    raw_reconciliation_check,
    reference_check,
    unique_key_check,
)
from ingestion_platform.lib.raw_store import DeadLetter
from ingestion_platform_tests.example_source import tables
from ingestion_platform_tests.example_source.source import OBSERVATIONS, PARTITIONS, RAIN, RAIN_GAUGES, WEATHER


def _day(text: Any, fmt: str) -> dt.date | None:
    try:
        return dt.datetime.strptime(str(text).strip(), fmt).date()
    except ValueError:
        return None


# -- raw keys: (day, ...) per record, read without the parsers -------------------------------------------
def _observation_key(record: Any) -> tuple | None:
    if not isinstance(record, dict):
        return None
    return (_day(record.get("date"), "%Y-%m-%d"), str(record.get("station")).strip())


def observation_keys(request: str, body: bytes, label: str) -> list[tuple]:
    payload = json.loads(body)
    records = payload.get("observations") if isinstance(payload, dict) else None
    return [k for k in map(_observation_key, records if isinstance(records, list) else []) if k is not None]


def observation_letter_keys(letter: DeadLetter) -> list[tuple]:
    key = _observation_key(json.loads(letter.payload() or b"null"))
    return [key] if key else []


def _rain_key(network: str, record: dict[str, str]) -> tuple:
    return (_day(record.get("date"), "%d/%m/%Y"), network, (record.get("gauge") or "").strip())


def rain_keys(request: str, body: bytes, label: str) -> list[tuple]:
    network = PurePosixPath(request).stem
    return [_rain_key(network, r) for r in csv.DictReader(io.StringIO(body.decode("utf-8-sig")), delimiter=";")]


def rain_letter_keys(letter: DeadLetter) -> list[tuple]:
    record = json.loads(letter.payload() or b"null")
    return [_rain_key(PurePosixPath(letter.origin).stem, record)] if isinstance(record, dict) else []


def _row_keys(table: sa.Table, columns: list[str]) -> Callable[[CheckInputs], set[tuple]]:
    def fn(inputs: CheckInputs) -> set[tuple]:
        rows = inputs.warehouse.fetch(sa.select(*[table.c[c] for c in columns]).where(inputs.where(table, columns[0])))
        return {tuple(r.values()) for r in rows}

    return fn


o, r = tables.observation, tables.rain
example_checks = [
    unique_key_check(
        asset=OBSERVATIONS,
        table=o,
        key=["station_id", "observed_on"],
        window_column="observed_on",
        partitions_def=PARTITIONS,
    ),
    unique_key_check(
        asset=RAIN_GAUGES,
        table=r,
        key=["network", "gauge_id", "measured_on"],
        window_column="measured_on",
        partitions_def=PARTITIONS,
    ),
    reference_check(
        asset=OBSERVATIONS,
        child=o,
        child_columns=["station_id"],
        parent=tables.station,
        window_column="observed_on",
        partitions_def=PARTITIONS,
    ),
    raw_reconciliation_check(
        asset=OBSERVATIONS,
        source=WEATHER.name,
        name="observations_reconcile_with_raw",
        description="Every observation of the stored API pages of the window's days is a row "
        "(read from the raw JSON, not by the parser; dead-lettered records excepted).",
        raw_keys=observation_keys,
        record_keys=observation_letter_keys,
        row_keys=_row_keys(o, ["observed_on", "station_id"]),
        requests=lambda request: request.startswith("observations_page_"),
        partitions_def=PARTITIONS,
    ),
    raw_reconciliation_check(
        asset=RAIN_GAUGES,
        source=RAIN.name,
        name="rain_reconciles_with_raw",
        description="Every line of the stored CSV exports of the window's days is a row, and every row of "
        "a network read is a line (read with the csv module, not by the parser; lines the parser rejected "
        "and rows the table contract refused are excepted).",
        raw_keys=rain_keys,
        record_keys=rain_letter_keys,
        row_keys=_row_keys(r, ["measured_on", "network", "gauge_id"]),
        refused_key=lambda row: (dt.date.fromisoformat(row["measured_on"]), row["network"], row["gauge_id"]),
        scope_of=lambda request, label: (dt.date.fromisoformat(label), PurePosixPath(request).stem),
        partitions_def=PARTITIONS,
    ),
    dead_letter_check(asset=OBSERVATIONS, source=WEATHER.name, partitions_def=PARTITIONS),
    dead_letter_check(asset=RAIN_GAUGES, source=RAIN.name, partitions_def=PARTITIONS),
]
