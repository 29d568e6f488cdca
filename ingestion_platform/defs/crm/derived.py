"""The derived CRM assets: the customers' purchase figures and the cross-source customer matches.

Both recompute from the canonical tables (whatever loaded them), so they are correct after any run
of any day of either source; they are partitioned like the rest of the ``crm`` group so that
``--select 'group:crm' --partition-range A...B`` runs the whole group, and a run of any days
recomputes everything (cheap: two grouped queries and one pass over the customers). Their ledger
counts land in the run's first day.

* ``crm/customer_purchases``: ``last_purchase_date``, ``total_spent`` and ``purchase_count`` (distinct
  ``order_ref``) of every customer from its live sales lines (``deleted_at IS NULL``); a customer whose
  lines all vanished goes back to NULL / 0 / 0. It owns those three columns of ``crm.customers``
  (``TableContract.columns``): a source reload never resets them.
* ``crm/customer_match``: the same person in two sources, paired by normalised e-mail (score 1), then
  E.164 phone (score 1), then the rapidfuzz ``token_sort_ratio`` of the full names among the customers
  of the same postcode (``CRM_MATCH_MIN_SCORE``, 90 by default). The ``duplicate_customers`` warning
  lists the pairs so that a campaign does not write twice to one person.
"""

import datetime as dt
from collections import defaultdict
from collections.abc import Iterator, Sequence
from typing import Any

import dagster as dg
import sqlalchemy as sa
from rapidfuzz import fuzz, process

from ingestion_platform.defs.crm import tables
from ingestion_platform.defs.crm.source import (
    CRM,
    CUSTOMER_MATCH,
    CUSTOMER_PURCHASES,
)
from ingestion_platform.lib.checks import SAMPLE_ROWS, Check, CheckInputs, CheckOutcome, warehouse_check
from ingestion_platform.lib.ingest import LoadConfig, SourceRun
from ingestion_platform.lib.raw_store import RawStoreResource
from ingestion_platform.lib.settings import run_setting
from ingestion_platform.lib.text import fold
from ingestion_platform.lib.warehouse import Warehouse, WarehouseResource

MATCH_MIN_SCORE = run_setting(
    "CRM_MATCH_MIN_SCORE", 90, "rapidfuzz token_sort_ratio (0-100) two full names of one postcode need to match"
)
C = tables.customers
S = tables.sales_lines
M = tables.customer_match
SOURCE_ORDER = ("odoo", "isavigne")
"""Which side of a pair is ``customer_key``: the system of record first."""


# -- purchase figures --------------------------------------------------------------------------------
def purchase_rows(warehouse: Warehouse) -> list[dict[str, Any]]:
    """The purchase figures of every customer that has them now or had them before."""
    warehouse.ensure_tables([C, S])
    figures = (
        sa.select(
            S.c.customer_key,
            sa.func.max(S.c.date_sale).label("last_purchase_date"),
            sa.func.sum(S.c.price_total).label("total_spent"),
            sa.func.count(sa.distinct(S.c.order_ref)).label("purchase_count"),
        )
        .where(S.c.deleted_at.is_(None), S.c.customer_key.is_not(None))
        .group_by(S.c.customer_key)
        .subquery()
    )
    stmt = (
        sa.select(C.c.customer_key, figures.c.last_purchase_date, figures.c.total_spent, figures.c.purchase_count)
        .select_from(C.outerjoin(figures, figures.c.customer_key == C.c.customer_key))
        .where(sa.or_(figures.c.customer_key.is_not(None), C.c.purchase_count.is_not(None)))
    )
    rows = []
    for row in warehouse.fetch(stmt):
        has_lines = row["purchase_count"] is not None
        rows.append({
            "customer_key": row["customer_key"],
            "last_purchase_date": _as_date(row["last_purchase_date"]) if has_lines else None,
            "total_spent": row["total_spent"] if has_lines else 0,
            "purchase_count": int(row["purchase_count"]) if has_lines else 0,
        })  # fmt: skip
    return rows


def _as_date(value: Any) -> dt.date | None:
    if value is None or isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value)[:10])  # SQLite's max() of a DATE column is its text


# -- matches -----------------------------------------------------------------------------------------
def _full_name(row: dict[str, Any]) -> str:
    return fold(" ".join(p for p in (row.get("first_name"), row.get("last_name")) if p)).lower().strip()


def match_rows(customers: Sequence[dict[str, Any]], min_score: float) -> list[dict[str, Any]]:
    """Cross-source pairs: e-mail, then phone, then name within a postcode; one pair per two customers."""
    by_source: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in customers:
        by_source[row["source"]].append(row)
    sources = sorted(by_source, key=lambda s: (SOURCE_ORDER.index(s) if s in SOURCE_ORDER else 99, s))
    pairs: dict[tuple[str, str], dict[str, Any]] = {}
    for i, left_source in enumerate(sources):
        left = by_source[left_source]
        by_email = _index(left, "email")
        by_phone = _index(left, "phone")
        by_zip: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for row in left:
            if row.get("zip_code") and _full_name(row):
                by_zip[str(row["zip_code"]).replace(" ", "")].append(row)
        for right_source in sources[i + 1 :]:
            for row in by_source[right_source]:
                pair = _best_pair(row, by_email, by_phone, by_zip, min_score)
                if pair is not None:
                    pairs.setdefault((pair["customer_key"], pair["matched_key"]), pair)
    return sorted(pairs.values(), key=lambda p: (p["customer_key"], p["matched_key"]))


def _index(rows: Sequence[dict[str, Any]], field: str) -> dict[str, list[dict[str, Any]]]:
    index: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        if row.get(field):
            index[row[field]].append(row)
    return index


def _best_pair(
    row: dict[str, Any],
    by_email: dict[str, list[dict[str, Any]]],
    by_phone: dict[str, list[dict[str, Any]]],
    by_zip: dict[str, list[dict[str, Any]]],
    min_score: float,
) -> dict[str, Any] | None:
    for rule, index in (("email", by_email), ("phone", by_phone)):
        value = row.get(rule)
        found = index.get(value) if value else None
        if found:
            return _pair(found[0], row, rule, 1.0, f"{rule} {value}")
    zip_code = str(row.get("zip_code") or "").replace(" ", "")
    name = _full_name(row)
    block = by_zip.get(zip_code) if zip_code and name else None
    if not block:
        return None
    best = process.extractOne(name, [_full_name(r) for r in block], scorer=fuzz.token_sort_ratio,
                              score_cutoff=min_score)  # fmt: skip
    if best is None:
        return None
    other = block[best[2]]
    evidence = f"names {_full_name(other)!r} ~ {name!r}, postcode {zip_code}"
    return _pair(other, row, "name_zip", round(best[1] / 100, 4), evidence)


def _pair(first: dict[str, Any], second: dict[str, Any], rule: str, score: float, evidence: str) -> dict[str, Any]:
    return {"customer_key": first["customer_key"], "matched_key": second["customer_key"], "rule": rule,
            "score": score, "evidence": evidence}  # fmt: skip


def _live_customers(warehouse: Warehouse) -> list[dict[str, Any]]:
    warehouse.ensure_tables([C])
    cols = [C.c.customer_key, C.c.source, C.c.first_name, C.c.last_name, C.c.email, C.c.phone, C.c.zip_code]
    return warehouse.fetch(sa.select(*cols).where(C.c.deleted_at.is_(None)).order_by(C.c.customer_key))


def _duplicates_check() -> Check:
    def fn(inputs: CheckInputs) -> CheckOutcome:
        inputs.warehouse.ensure_tables([M])
        pairs = inputs.warehouse.fetch(sa.select(M.c.customer_key, M.c.matched_key, M.c.rule, M.c.score,
                                                 M.c.evidence).order_by(M.c.customer_key))  # fmt: skip
        by_rule: dict[str, int] = defaultdict(int)
        for pair in pairs:
            by_rule[pair["rule"]] += 1
        return CheckOutcome(not pairs, inputs.warehouse.count(C), len(pairs), pairs[:SAMPLE_ROWS],
                            details={"pairs_by_rule": dict(by_rule)})  # fmt: skip

    return warehouse_check(
        asset=CUSTOMER_MATCH, name="duplicate_customers", severity=dg.AssetCheckSeverity.WARN, fn=fn,
        description="No person is a customer in two sources (otherwise the pairs are listed: one mailing each).",
    )  # fmt: skip


DERIVED_CHECKS = [_duplicates_check()]


@dg.asset(
    **CRM.asset(
        CUSTOMER_PURCHASES,
        tables=[tables.CUSTOMER_PURCHASES_CONTRACT],
        deps=[],  # MERGE: ODOO_SALES_LINES, ISAVIGNE_SALES_LINES, ODOO_CUSTOMERS, ISAVIGNE_CUSTOMERS
    )
)
def customer_purchases(
    context: dg.AssetExecutionContext, config: LoadConfig, warehouse: WarehouseResource, raw_store: RawStoreResource
) -> Iterator[Any]:
    """Each customer's last purchase date, total spent and number of orders, from `crm.sales_lines`
    (live lines, every source). Owns those three columns of `crm.customers`."""
    run = SourceRun(context, CRM, config=config, warehouse=warehouse, raw_store=raw_store, provider=None)
    for unit in run.units():
        with unit.open() as load:
            rows = purchase_rows(run.warehouse)
            load.load(C, rows)
            load.job.metadata["customers_with_purchases"] = sum(1 for r in rows if r["purchase_count"])
    yield from run.finish()


@dg.asset(
    **CRM.asset(CUSTOMER_MATCH, tables=[tables.CUSTOMER_MATCH_CONTRACT], checks=DERIVED_CHECKS, deps=[])
)  # fmt: skip  MERGE: ODOO_CUSTOMERS, ISAVIGNE_CUSTOMERS
def customer_match(
    context: dg.AssetExecutionContext, config: LoadConfig, warehouse: WarehouseResource, raw_store: RawStoreResource
) -> Iterator[Any]:
    """The same person in Odoo and iSaVigne: pairs by e-mail, phone, then name within a postcode
    (rapidfuzz, `CRM_MATCH_MIN_SCORE`); recomputed whole, vanished pairs deleted."""
    run = SourceRun(context, CRM, config=config, warehouse=warehouse, raw_store=raw_store, provider=None)
    for unit in run.units():
        with unit.open() as load:
            pairs = match_rows(_live_customers(run.warehouse), float(MATCH_MIN_SCORE.read()))
            load.load(M, pairs, scope=[(r,) for r in tables.MATCH_RULES])
            load.job.metadata["pairs"] = len(pairs)
    yield from run.finish()
