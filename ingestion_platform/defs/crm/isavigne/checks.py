"""Checks of the iSaVigne assets (the cross-source CRM checks are in ``defs/crm/checks.py``).

* ``no_dead_letters`` (warning): lines or files of the asset's days that could not be read.
* ``rows_match_exports`` (error, not blocking, as the other sources' raw reconciliations): every
  line of the stored export files of a day is a row of the table (by its iSaVigne id), loaded by
  that day's export or a later one, unless it was dead-lettered. The files are read again from the
  raw store with ``lib.tabular`` and the alias table only, not by the parser, so a line the parser
  dropped without a reject is caught.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping
from typing import Any

import sqlalchemy as sa

from ingestion_platform.defs.crm.isavigne.aliases import ALIASES, fields_of, kind_of
from ingestion_platform.defs.crm.isavigne.parse import DEFAULT_WAREHOUSE, SOURCE, TABLE_OF_KIND, export_day
from ingestion_platform.defs.crm.source import ISAVIGNE, ISAVIGNE_ASSETS, PARTITIONS
from ingestion_platform.defs.crm.tables import product_key_map
from ingestion_platform.lib.checks import CheckInputs, dead_letter_check, raw_reconciliation_check
from ingestion_platform.lib.raw_store import DeadLetter, label_days
from ingestion_platform.lib.tabular import TabularError, cell_text, open_table

KINDS = ("clients", "produits", "ventes", "stock", "contacts")


def source_id(kind: str, cells: Mapping[str, Any]) -> str | None:
    """The iSaVigne id of a line from its cells by field (``None``: the line names none)."""

    def text(field: str) -> str | None:
        return cell_text(cells.get(field))

    if kind in ("clients", "produits"):
        return text("code")
    if kind == "ventes":
        order, line = text("order_ref"), text("line") or text("product_code")
        return f"{order}-{line}" if order and line else None
    if kind == "stock":
        code = text("product_code")
        return f"{text('warehouse') or DEFAULT_WAREHOUSE}:{code}" if code else None
    return text("id")  # contacts without an id column are keyed by their time: not reconciled by id


def _by_field(kind: str, values: Mapping[str, Any]) -> dict[str, Any]:
    columns, _ = fields_of(kind, list(values))
    return {field: values.get(column) for field, column in columns.items()}


def raw_keys_of(kind: str):
    def raw_keys(request: str, body: bytes, label: str) -> list[tuple[Any, ...]]:
        if kind_of(request) != kind:
            return []
        days = label_days(label)
        day = export_day(request) or (days[0] if days else None)
        hint = {a for aliases in ALIASES[kind].values() for a in aliases}
        try:
            with open_table(body, request, header_hint=hint) as table:
                columns, _ = fields_of(kind, table.columns)
                keys = []
                for row in table:
                    sid = source_id(kind, {field: row.values.get(column) for field, column in columns.items()})
                    if sid is not None:
                        keys.append((day, sid))
                return keys
        except TabularError as error:  # unreadable: its whole-file dead letter excepts it
            raise ValueError(str(error)) from error

    return raw_keys


def record_keys_of(kind: str):
    def record_keys(letter: DeadLetter) -> Iterable[tuple[Any, ...]]:
        record = json.loads(letter.payload() or b"null")
        days = letter.days()
        if not isinstance(record, dict) or days is None:
            return []
        if "row" in record:  # a line whose article code is unknown: the canonical row
            return [(days[0], record["row"]["source_id"])]
        sid = source_id(kind, _by_field(kind, record.get("values") or {}))
        return [(days[0], sid)] if sid is not None else []

    return record_keys


def row_keys_of(kind: str):
    table = TABLE_OF_KIND[kind]

    def row_keys(inputs: CheckInputs) -> set[tuple[Any, ...]]:
        days = inputs.days()
        if kind == "produits":  # through the key map: a product Odoo holds keeps Odoo's row (and day)
            m = product_key_map
            stmt = (
                sa.select(m.c.source_id, table.c.partition_day, table.c.source)
                .join(table, table.c.product_key == m.c.product_key)
                .where(m.c.source == SOURCE)
            )
        else:
            stmt = sa.select(table.c.source_id, table.c.partition_day, table.c.source).where(
                table.c.source == SOURCE, table.c.partition_day >= days[0]
            )
        keys = set()
        for row in inputs.warehouse.fetch(stmt):
            for day in days:  # loaded by the day's export or a later one (or held by Odoo)
                if row["source"] != SOURCE or row["partition_day"] >= day:
                    keys.add((day, row["source_id"]))
        return keys

    return row_keys


def _refused_key(row: dict[str, Any]) -> tuple[Any, ...] | None:
    day, sid = row.get("partition_day"), row.get("source_id")
    return (dt.date.fromisoformat(str(day)), sid) if day and sid else None


def _reconciliation(key: Any, kind: str):
    return raw_reconciliation_check(
        asset=key,
        source=ISAVIGNE.name,
        name="rows_match_exports",
        description=f"Every line of the stored {kind} exports of the day is a row of {TABLE_OF_KIND[kind].fullname} "
        "(read from the raw files with the alias table, not by the parser), unless dead-lettered.",
        raw_keys=raw_keys_of(kind),
        row_keys=row_keys_of(kind),
        record_keys=record_keys_of(kind),
        requests=lambda request, kind=kind: kind_of(request) == kind,
        refused_key=_refused_key,
        partitions_def=PARTITIONS,
    )


CHECKS = [
    *(dead_letter_check(asset=key, source=ISAVIGNE.name, partitions_def=PARTITIONS) for key in ISAVIGNE_ASSETS),
    *(_reconciliation(key, kind) for key, kind in zip(ISAVIGNE_ASSETS, KINDS, strict=True)),
]
"""The checks of the five assets (each asset keeps its own: ``Source.asset`` filters by asset key)."""
