"""Asset checks of the PMU tables, each scoped to the days being materialised.

Blocking (downstream assets wait): unique non-null keys, references between tables, arrival order
referencing runners. Warnings: official races still without rapports, dead letters. Reconciliation
counts the records in the stored raw payloads independently of the parser and compares them with
the rows in the tables.
"""

import datetime as dt
import json
import re
from collections.abc import Callable
from typing import Any

import dagster as dg
import sqlalchemy as sa

from ingestion_platform.defs.pmu import tables
from ingestion_platform.defs.pmu.source import (
    PARTICIPANTS,
    PARTITIONS,
    PERFORMANCES,
    PROGRAMME,
    RAPPORTS,
    SOURCE,
)
from ingestion_platform.lib.checks import (
    Check,
    CheckInputs,
    CheckOutcome,
    dead_letter_check,
    raw_reconciliation_check,
    reference_check,
    unique_key_check,
    warehouse_check,
)
from ingestion_platform.lib.raw_store import DeadLetter

_RACE_REQUEST = re.compile(r"^R(\d+)C(\d+)_(\w+)$")


def _keys(table: sa.Table) -> list[str]:
    return [c.name for c in table.primary_key.columns]


def _key_checks() -> list[Check]:
    dated = [
        (PROGRAMME, tables.daily_program),
        (PROGRAMME, tables.race_meeting),
        (PROGRAMME, tables.race),
        (PARTICIPANTS, tables.race_participant),
        (RAPPORTS, tables.race_bet),
        (RAPPORTS, tables.bet_report),
    ]
    checks = [
        unique_key_check(asset=asset, table=t, key=_keys(t), window_column="program_date", partitions_def=PARTITIONS)
        for asset, t in dated
    ]
    # Dimensions and history span days: their keys are checked for the whole table.
    for asset, t in [
        (PARTICIPANTS, tables.horse),
        (PARTICIPANTS, tables.jockey),
        (PARTICIPANTS, tables.trainer),
        (PERFORMANCES, tables.horse_race_history),
    ]:
        checks.append(unique_key_check(asset=asset, table=t, key=_keys(t), partitions_def=PARTITIONS))
    return checks


def _reference_checks() -> list[Check]:
    race_key = ["program_date", "meeting_num", "race_num"]
    rp = tables.race_participant
    return [
        reference_check(
            asset=PROGRAMME,
            child=tables.race,
            child_columns=["program_date", "meeting_num"],
            parent=tables.race_meeting,
            window_column="program_date",
            partitions_def=PARTITIONS,
        ),
        reference_check(
            asset=PARTICIPANTS,
            child=rp,
            child_columns=race_key,
            parent=tables.race,
            window_column="program_date",
            partitions_def=PARTITIONS,
        ),
        reference_check(
            asset=PARTICIPANTS,
            child=rp,
            child_columns=["horse_key"],
            parent=tables.horse,
            window_column="program_date",
            partitions_def=PARTITIONS,
        ),
        reference_check(
            asset=PARTICIPANTS,
            child=rp,
            child_columns=["jockey_key"],
            parent=tables.jockey,
            window_column="program_date",
            partitions_def=PARTITIONS,
        ),
        reference_check(
            asset=PARTICIPANTS,
            child=rp,
            child_columns=["trainer_key"],
            parent=tables.trainer,
            window_column="program_date",
            partitions_def=PARTITIONS,
        ),
        reference_check(
            asset=PERFORMANCES,
            child=tables.horse_race_history,
            child_columns=["horse_key"],
            parent=tables.horse,
            partitions_def=PARTITIONS,
        ),
        reference_check(
            asset=RAPPORTS,
            child=tables.race_bet,
            child_columns=race_key,
            parent=tables.race,
            window_column="program_date",
            partitions_def=PARTITIONS,
        ),
        reference_check(
            asset=RAPPORTS,
            child=tables.bet_report,
            child_columns=[*race_key, "bet_type_code"],
            parent=tables.race_bet,
            window_column="program_date",
            partitions_def=PARTITIONS,
        ),
    ]


def _arrival_references_runners(inputs: CheckInputs) -> CheckOutcome:
    race, rp = tables.race, tables.race_participant
    races = inputs.warehouse.fetch(
        sa.select(race.c.program_date, race.c.meeting_num, race.c.race_num, race.c.arrival_order).where(
            inputs.where(race, "program_date"), race.c.arrival_order.is_not(None)
        )
    )
    runners = {
        (r["program_date"], r["meeting_num"], r["race_num"], r["horse_num"])
        for r in inputs.warehouse.fetch(
            sa.select(rp.c.program_date, rp.c.meeting_num, rp.c.race_num, rp.c.horse_num).where(
                inputs.where(rp, "program_date"), sa.not_(rp.c.is_non_runner)
            )
        )
    }
    raced = {key[:3] for key in runners}
    # A runner dead-lettered by the participants load is in the source, not missing: its letter reports it.
    rejected = {key for letter in _record_letters(inputs, PARTICIPANTS) for key in _runner_letter_keys(letter)}
    # a runner rejected for its very number (numPmu unreadable) may be any missing number of its race
    unnumbered = {key[:3] for key in rejected if not isinstance(key[3], int)}
    bad = []
    checked = 0
    for r in races:
        key = (r["program_date"], r["meeting_num"], r["race_num"])
        if key not in raced:  # participants not loaded (yet) for this race: nothing to compare
            continue
        for group in r["arrival_order"] or []:
            for number in group:
                if (*key, number) in rejected or ((*key, number) not in runners and key in unnumbered):
                    continue
                checked += 1
                if (*key, number) not in runners:
                    bad.append({"race": f"{key[0]} R{key[1]}C{key[2]}", "horse_num": number})
    return CheckOutcome(
        passed=not bad, checked=checked, failures=len(bad), sample=bad, details={"rejected_runners": len(rejected)}
    )


def _record_letters(inputs: CheckInputs, asset: dg.AssetKey) -> list[DeadLetter]:
    """Unresolved dead letters of one record (not of a whole payload) of ``asset`` in the check's window."""
    days = inputs.days()
    if not days:
        return []
    return [
        x
        for x in inputs.raw_store.dead_letters_overlapping(SOURCE, days[0], days[-1])
        if x.context.get("asset_key") == asset.to_user_string() and x.origin != x.request
    ]


def _official_races_have_rapports(inputs: CheckInputs) -> CheckOutcome:
    race, bet = tables.race, tables.race_bet
    match = sa.and_(
        bet.c.program_date == race.c.program_date,
        bet.c.meeting_num == race.c.meeting_num,
        bet.c.race_num == race.c.race_num,
    )
    official = sa.and_(inputs.where(race, "program_date"), race.c.is_official, sa.not_(race.c.is_cancelled))
    missing = inputs.warehouse.fetch(
        sa.select(race.c.program_date, race.c.meeting_num, race.c.race_num, race.c.status).where(
            official, ~sa.exists().where(match)
        )
    )
    checked = inputs.warehouse.count(race, official)
    return CheckOutcome(passed=not missing, checked=checked, failures=len(missing), sample=missing)


def _race_keys(day: dt.date, request: str) -> tuple[dt.date, int, int] | None:
    match = _RACE_REQUEST.match(request)
    return (day, int(match.group(1)), int(match.group(2))) if match else None


def _runner_keys(request: str, body: bytes, label: str) -> list[tuple]:
    """(day, R, C, numPmu) of the runners of a raw participants payload (read without the parser)."""
    race = _race_keys(dt.date.fromisoformat(label), request)
    payload = json.loads(body)
    if race is None or not isinstance(payload, dict):
        return []
    return [(*race, p.get("numPmu")) for p in payload.get("participants") or [] if isinstance(p, dict)]


def _runner_letter_keys(letter: DeadLetter) -> list[tuple]:
    race = _race_keys(dt.date.fromisoformat(letter.partition), letter.origin)
    record = json.loads(letter.payload() or b"null")
    if race is None or not isinstance(record, dict):
        return []
    return [(*race, record.get("numPmu"))]


def _line_keys(request: str, body: bytes, label: str) -> list[tuple]:
    """(day, R, C, typePari, libelle, combinaison) of the dividend lines of a raw rapports payload."""
    race = _race_keys(dt.date.fromisoformat(label), request)
    payload = json.loads(body)
    if race is None or not isinstance(payload, list):
        return []
    return [
        _line_key(race, bet, line) for bet in payload if isinstance(bet, dict) for line in bet.get("rapports") or []
    ]


def _line_letter_keys(letter: DeadLetter) -> list[tuple]:
    """Keys of the dividend lines a record-level rapports dead letter holds: a bet type rejected with its
    lines (the raw bet), or one line (the raw line; its bet type is in the letter's name
    ``R1C1_rapports__<type>_line_<n>``)."""
    race = _race_keys(dt.date.fromisoformat(letter.partition), letter.origin)
    record = json.loads(letter.payload() or b"null")
    if race is None or not isinstance(record, dict):
        return []
    if "typePari" in record or "rapports" in record:
        return [_line_key(race, record, line) for line in record.get("rapports") or []]
    code = letter.request.partition("__")[2].rpartition("_line_")[0]
    return [_line_key(race, {"typePari": code}, record)] if code else []


def _line_key(race: tuple, bet: dict, line: Any) -> tuple:
    combination = line.get("combinaison") if isinstance(line, dict) else None
    if isinstance(combination, list):
        combination = "-".join(str(x) for x in combination)
    label = line.get("libelle") if isinstance(line, dict) else None
    return (*race, bet.get("typePari"), " ".join(str(label or "").split()), " ".join(str(combination).split()))


def _row_keys(table: sa.Table, columns: list[str]) -> Callable[[CheckInputs], set[tuple]]:
    def fn(inputs: CheckInputs) -> set[tuple]:
        cols = [table.c[c] for c in ["program_date", "meeting_num", "race_num", *columns]]
        return {
            tuple(r.values())
            for r in inputs.warehouse.fetch(sa.select(*cols).where(inputs.where(table, "program_date")))
        }

    return fn


def _race_scope(request: str, label: str) -> tuple | None:
    return _race_keys(dt.date.fromisoformat(label), request)


def _endpoint(name: str) -> Callable[[str], bool]:
    return lambda request: (m := _RACE_REQUEST.match(request)) is not None and m.group(3) == name


def _custom_checks() -> list[Check]:
    return [
        warehouse_check(
            asset=PARTICIPANTS,
            name="arrival_order_references_runners",
            description="Every horse number in race.arrival_order is a runner (not a non-runner) of that race.",
            fn=_arrival_references_runners,
            blocking=True,
            partitions_def=PARTITIONS,
        ),
        warehouse_check(
            asset=RAPPORTS,
            name="official_races_have_rapports",
            description="Every official, non-cancelled race of the window has its bet reports.",
            fn=_official_races_have_rapports,
            severity=dg.AssetCheckSeverity.WARN,
            partitions_def=PARTITIONS,
        ),
        raw_reconciliation_check(
            asset=PARTICIPANTS,
            source=SOURCE,
            name="participants_reconcile_with_raw",
            description="Every runner of the stored raw payloads is a row of race_participant, and every row a runner "
            "of them (read from the raw JSON, not by the parser; dead-lettered runners excepted).",
            raw_keys=_runner_keys,
            row_keys=_row_keys(tables.race_participant, ["horse_num"]),
            record_keys=_runner_letter_keys,
            requests=_endpoint("participants"),
            scope_of=_race_scope,
            partitions_def=PARTITIONS,
        ),
        raw_reconciliation_check(
            asset=RAPPORTS,
            source=SOURCE,
            name="rapports_reconcile_with_raw",
            description="Every dividend line of the stored raw rapports is a row of bet_report, and every row a line "
            "(dead-lettered lines excepted).",
            raw_keys=_line_keys,
            row_keys=_row_keys(tables.bet_report, ["bet_type_code", "label", "combination"]),
            record_keys=_line_letter_keys,
            requests=_endpoint("rapports"),
            scope_of=_race_scope,
            partitions_def=PARTITIONS,
        ),
    ]


pmu_checks = [
    *_key_checks(),
    *_reference_checks(),
    *_custom_checks(),
    *[
        dead_letter_check(asset=a, source=SOURCE, partitions_def=PARTITIONS)
        for a in (PROGRAMME, PARTICIPANTS, PERFORMANCES, RAPPORTS)
    ],
]
