"""The checks of each Odoo asset: the canonical CRM checks of its table (``defs/crm/checks.py``), the
reconciliation of its rows with the raw ``search_read`` pages, and the dead-letter warning.

The raw pages are read here with the plainest rules, independently of the parser: ``json``, each record's
``id`` and its ``write_date`` turned into its Paris day (the first partition day at the earliest).
"""

from __future__ import annotations

import datetime as dt
import functools
import json
from collections.abc import Iterable
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from ingestion_platform.defs.crm.checks import canonical_checks
from ingestion_platform.defs.crm.odoo.client import decode, records_of
from ingestion_platform.defs.crm.odoo.models import OdooModel
from ingestion_platform.defs.crm.source import FIRST_DAY, PARTITIONS, TIMEZONE
from ingestion_platform.lib.checks import Check, CheckInputs, dead_letter_check, raw_reconciliation_check
from ingestion_platform.lib.raw_store import DeadLetter

SOURCE = "odoo"
_PARIS = ZoneInfo(TIMEZONE)
_FIRST = dt.date.fromisoformat(FIRST_DAY)


def _key(record: Any) -> tuple[Any, ...] | None:
    if type(record) is not dict:
        return None
    rid, written = record.get("id"), record.get("write_date")
    if not isinstance(rid, int):
        return None
    day = _day(written if type(written) is str else str(written))
    return None if day is None else (day, str(rid))


@functools.lru_cache(maxsize=65536)
def _day(text: str) -> dt.date | None:
    """The Paris day of an Odoo write_date (cached: a page's records often share one)."""
    try:
        written = dt.datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=dt.UTC)
    except ValueError:
        return None
    return max(written.astimezone(_PARIS).date(), _FIRST)


def _stored_at(meta: dict[str, Any] | None) -> dt.datetime | None:
    try:
        return dt.datetime.fromisoformat(str(meta["stored_at"])) if meta and meta.get("stored_at") else None
    except ValueError:
        return None


def odoo_checks(asset: Any, spec: OdooModel, table: sa.Table) -> list[Check]:
    prefix = f"{spec.name}/after_"

    def latest_fetch(stored: dict[str, dict[str, Any]]) -> list[str]:
        """The pages of the label's latest fetch: a fetch always stores ``after_0`` first, so a page stored
        before the latest ``after_0`` is left from an earlier fetch of the same window whose page
        boundaries differed (records edited in between), and names records as they were then."""
        since = _stored_at(stored.get(f"{prefix}0"))
        if since is None:
            return list(stored)
        return [r for r, meta in stored.items() if not r.startswith(prefix) or (_stored_at(meta) or since) >= since]

    # a product lands in the day of the later of its own and its template's write_date, which its page
    # alone does not tell: a product record of a day's pages is matched by id among all Odoo products (a
    # small table), i.e. every product row counts as a row of each day of the window
    by_id = spec.name == "product.product"

    def raw_keys(request: str, body: bytes, label: str) -> Iterable[tuple[Any, ...]]:
        records = records_of(decode(body))
        return [k for k in map(_key, records if isinstance(records, list) else []) if k is not None]

    def record_keys(letter: DeadLetter) -> Iterable[tuple[Any, ...]]:
        found = _key(json.loads(letter.payload() or b"null"))
        return [found] if found else []

    def row_keys(inputs: CheckInputs) -> Iterable[tuple[Any, ...]]:
        if by_id:
            stmt = sa.select(table.c.source_id).where(table.c.source == SOURCE)
            ids = [sid for (sid,) in inputs.warehouse.stream_tuples(stmt)]
            return ((day, sid) for day in inputs.days() for sid in ids)
        stmt = sa.select(table.c.partition_day, table.c.source_id).where(
            inputs.where(table, "partition_day"), table.c.source == SOURCE
        )
        return inputs.warehouse.stream_tuples(stmt)

    return [
        *canonical_checks(asset, table, SOURCE),
        raw_reconciliation_check(
            asset=asset,
            source=SOURCE,
            name="rows_match_raw_pages",
            description=f"Every {spec.name} record of the stored search_read pages of the day is a row of "
            f"{table.fullname} (dead-lettered records excepted).",
            raw_keys=raw_keys,
            row_keys=row_keys,
            record_keys=record_keys,
            requests=lambda request: request.startswith(prefix) and request[len(prefix) :].isdigit(),
            current=latest_fetch,
            partitions_def=PARTITIONS,
        ),
        dead_letter_check(asset=asset, source=SOURCE, partitions_def=PARTITIONS),
    ]
