"""``product_key`` for ever: the first key a source record gets is kept in ``crm.product_key_map``.

A source computes a candidate key with ``canonical.product_key`` from the product's name, vintage and
volume; :func:`assign_product_keys` replaces it by the key already assigned to that (source, id), and
records new assignments. Renaming a product in Odoo therefore never re-keys it (nor its sales and
stock). Two records of one source that compute the same candidate (a duplicated product) are told
apart: the later one gets ``<key>-<SOURCE><id>``. Records of two sources that compute the same key
share it: that is how the same product from Odoo and iSaVigne meets in ``product_catalog``.
"""

from __future__ import annotations

from collections.abc import Iterable, MutableMapping, Sequence
from typing import Any

import sqlalchemy as sa

from ingestion_platform.defs.crm.tables import product_key_map
from ingestion_platform.lib.warehouse import Warehouse

_CHUNK = 5_000


def product_key_for(warehouse: Warehouse, source: str, source_ids: Iterable[Any]) -> dict[str, str]:
    """The keys already assigned to these records of ``source``: ``{source_id: product_key}``."""
    warehouse.ensure_tables([product_key_map])
    ids = sorted({str(i) for i in source_ids if i is not None})
    found: dict[str, str] = {}
    t = product_key_map
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        stmt = sa.select(t.c.source_id, t.c.product_key).where(t.c.source == source, t.c.source_id.in_(chunk))
        found.update({r["source_id"]: r["product_key"] for r in warehouse.fetch(stmt)})
    return found


def assign_product_keys(
    warehouse: Warehouse, rows: Sequence[MutableMapping[str, Any]], source: str, *, run_id: str | None = None
) -> Sequence[MutableMapping[str, Any]]:
    """Set each row's ``product_key`` (a candidate on entry) to its record's key for ever; returns ``rows``.

    Rows need ``source_id`` and a candidate ``product_key``. New assignments are stored (``insert_missing``:
    a concurrent run that assigned first wins, and this run re-reads its choice)."""
    existing = product_key_for(warehouse, source, (r["source_id"] for r in rows))
    taken = _keys_of_source(warehouse, source, {r["product_key"] for r in rows if str(r["source_id"]) not in existing})
    new: dict[str, str] = {}
    for row in rows:
        sid = str(row["source_id"])
        if sid in existing:
            row["product_key"] = existing[sid]
            continue
        if sid in new:
            row["product_key"] = new[sid]
            continue
        key = row["product_key"]
        holder = taken.get(key)
        if holder is not None and holder != sid:
            key = f"{key}-{source.upper()}{sid}"
        taken[key] = sid
        new[sid] = key
        row["product_key"] = key
    if new:
        warehouse.load(
            product_key_map,
            [{"source": source, "source_id": sid, "product_key": key} for sid, key in new.items()],
            mode="insert_missing",
            run_id=run_id,
        )
        stored = product_key_for(warehouse, source, new)
        for row in rows:
            sid = str(row["source_id"])
            if sid in stored:
                row["product_key"] = stored[sid]
    return rows


def _keys_of_source(warehouse: Warehouse, source: str, keys: set[str]) -> dict[str, str]:
    """Which record of ``source`` already holds each of ``keys``."""
    t = product_key_map
    held: dict[str, str] = {}
    ordered = sorted(keys)
    for start in range(0, len(ordered), _CHUNK):
        stmt = sa.select(t.c.product_key, t.c.source_id).where(
            t.c.source == source, t.c.product_key.in_(ordered[start : start + _CHUNK])
        )
        held.update({r["product_key"]: r["source_id"] for r in warehouse.fetch(stmt)})
    return held
