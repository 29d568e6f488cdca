"""The checks of the canonical CRM tables, the same for every source: a source asset asks for the checks
of the table it loads with :func:`canonical_checks` and adds its own raw reconciliation.

Each check looks at the rows of the run's days (``partition_day``) of one source (``source = …``):

* blocking: the table's key is unique and never NULL;
* errors (not blocking: a sales export may arrive before the customers export of the same day):
  sales lines and stock levels reference existing products and customers; quantities and prices are
  not negative (stock may be: Odoo allows negative quants, which is a warning); the 75 cl equivalent
  agrees with the product's volume and pack;
* warnings: products whose volume cannot be known (their 75 cl equivalents stay NULL, never guessed),
  malformed e-mail addresses.

The cross-source duplicate customers warning belongs to ``crm/customer_match`` (``defs/crm/derived.py``).
"""

from __future__ import annotations

from collections.abc import Callable

import dagster as dg
import sqlalchemy as sa

from ingestion_platform.defs.crm import tables
from ingestion_platform.defs.crm.canonical import email_is_valid
from ingestion_platform.defs.crm.source import PARTITIONS
from ingestion_platform.lib.checks import (
    SAMPLE_ROWS,
    Check,
    CheckInputs,
    CheckOutcome,
    unique_key_check,
    warehouse_check,
)

WARN = dg.AssetCheckSeverity.WARN
ERROR = dg.AssetCheckSeverity.ERROR
P = tables.product_catalog
TOLERANCE = 0.001


def _in_scope(inputs: CheckInputs, table: sa.Table, source: str) -> sa.ColumnElement[bool]:
    return sa.and_(inputs.where(table, "partition_day"), table.c.source == source)


def rows_check(
    *,
    asset: dg.AssetKey,
    table: sa.Table,
    source: str,
    name: str,
    description: str,
    failing: Callable[[], sa.ColumnElement[bool]],
    shown: Callable[[], list[sa.ColumnElement]],
    severity: dg.AssetCheckSeverity = ERROR,
    join: Callable[[], sa.FromClause] | None = None,
) -> Check:
    """Rows of ``source`` in the window where ``failing()`` holds fail (a sample of ``shown()`` columns)."""

    def fn(inputs: CheckInputs) -> CheckOutcome:
        inputs.warehouse.ensure_tables(tables.CANONICAL_TABLES)  # a parent no source has loaded yet is empty
        scope = _in_scope(inputs, table, source)
        bad = sa.and_(scope, failing())
        base = join() if join is not None else table
        count = sa.select(sa.func.count().label("n")).select_from(base).where(bad)
        failures = int(inputs.warehouse.fetch(count)[0]["n"])
        sample = inputs.warehouse.fetch(sa.select(*shown()).select_from(base).where(bad).limit(SAMPLE_ROWS))
        return CheckOutcome(failures == 0, inputs.warehouse.count(table, scope), failures, sample)

    return warehouse_check(asset=asset, name=name, description=description, fn=fn, severity=severity,
                           partitions_def=PARTITIONS)  # fmt: skip


def _negative(table: sa.Table, columns: tuple[str, ...]) -> Callable[[], sa.ColumnElement[bool]]:
    return lambda: sa.or_(*[table.c[c] < 0 for c in columns])


def _eq_mismatch(table: sa.Table) -> Callable[[], sa.ColumnElement[bool]]:
    """The stored 75 cl equivalent differs from quantity x units per pack x volume / 75, or is missing
    although the product's volume is known."""

    def condition() -> sa.ColumnElement[bool]:
        expected = table.c.quantity_units * sa.func.coalesce(P.c.units_per_pack, 1) * P.c.volume_cl / 75
        stored = table.c.quantity_bottles_75cl_eq
        return sa.and_(
            P.c.volume_cl.is_not(None),
            table.c.quantity_units.is_not(None),
            sa.or_(stored.is_(None), sa.func.abs(stored - expected) > TOLERANCE),
        )

    return condition


def _with_product(table: sa.Table) -> Callable[[], sa.FromClause]:
    return lambda: table.join(P, P.c.product_key == table.c.product_key)


def _email_check(asset: dg.AssetKey, source: str) -> Check:
    customers = tables.customers

    def fn(inputs: CheckInputs) -> CheckOutcome:
        scope = sa.and_(_in_scope(inputs, customers, source), customers.c.email.is_not(None))
        checked, failures, sample = 0, 0, []
        for key, email in inputs.warehouse.stream_tuples(sa.select(customers.c.customer_key, customers.c.email)
                                                         .where(scope).order_by(customers.c.customer_key)):  # fmt: skip
            checked += 1
            if not email_is_valid(email):
                failures += 1
                if len(sample) < SAMPLE_ROWS:
                    sample.append({"customer_key": key, "email": email})
        return CheckOutcome(failures == 0, checked, failures, sample)

    return warehouse_check(asset=asset, name="email_format", severity=WARN, partitions_def=PARTITIONS, fn=fn,
                           description=f"crm.customers ({source}): every e-mail address is well formed.")  # fmt: skip


def canonical_checks(asset: dg.AssetKey, table: sa.Table, source: str) -> list[Check]:
    """The checks of ``source``'s rows of the canonical ``table`` that ``asset`` loads."""
    key = tables.KEYS[table.name]
    checks = [
        unique_key_check(
            asset=asset,
            table=table,
            key=[key],
            window_column="partition_day",
            partitions_def=PARTITIONS,
            scope=table.c.source == source,
            scope_label=f"source {source}",
        )
    ]

    def ref(column: str, parent: sa.Table) -> Check:
        parent_key = parent.c[tables.KEYS[parent.name]]
        return rows_check(
            asset=asset,
            table=table,
            source=source,
            name=f"{table.name}_references_{parent.name}",
            description=f"Every {table.fullname}.{column} ({source}) exists in {parent.fullname}.",
            failing=lambda: sa.and_(table.c[column].is_not(None), ~sa.exists().where(parent_key == table.c[column])),
            shown=lambda: [table.c[key], table.c[column]],
        )

    if table is tables.product_catalog:
        checks.append(rows_check(
            asset=asset, table=P, source=source, name="volume_known", severity=WARN,
            description=f"crm.product_catalog ({source}): every product's volume is known (otherwise its 75 cl "
            "equivalents stay NULL: set the volume field, the unit of measure or a volume in the name).",
            failing=lambda: P.c.volume_cl.is_(None), shown=lambda: [P.c.product_key, P.c.name, P.c.source_id],
        ))  # fmt: skip
        checks.append(rows_check(
            asset=asset, table=P, source=source, name="prices_not_negative",
            description=f"crm.product_catalog ({source}): list and cost prices are not negative.",
            failing=_negative(P, ("list_price", "cost_price")),
            shown=lambda: [P.c.product_key, P.c.list_price, P.c.cost_price],
        ))  # fmt: skip
    elif table is tables.customers:
        checks.append(_email_check(asset, source))
    elif table is tables.sales_lines:
        s = tables.sales_lines
        checks += [ref("customer_key", tables.customers), ref("product_key", P)]
        checks.append(rows_check(
            asset=asset, table=s, source=source, name="quantities_and_prices_not_negative",
            description=f"crm.sales_lines ({source}): quantities, prices and totals are not negative.",
            failing=_negative(s, ("quantity_units", "price_unit", "price_total")),
            shown=lambda: [s.c.sale_line_key, s.c.quantity_units, s.c.price_unit, s.c.price_total],
        ))  # fmt: skip
        checks.append(_consistency(asset, s, source))
    elif table is tables.stock_levels:
        st = tables.stock_levels
        checks.append(ref("product_key", P))
        checks.append(rows_check(
            asset=asset, table=st, source=source, name="stock_not_negative", severity=WARN,
            description=f"crm.stock_levels ({source}): no negative stock (Odoo allows it: a count is due).",
            failing=_negative(st, ("quantity_units",)),
            shown=lambda: [st.c.stock_key, st.c.product_key, st.c.warehouse, st.c.quantity_units],
        ))  # fmt: skip
        checks.append(_consistency(asset, st, source))
    elif table is tables.contact_history:
        checks.append(ref("customer_key", tables.customers))
    return checks


def _consistency(asset: dg.AssetKey, table: sa.Table, source: str) -> Check:
    key = tables.KEYS[table.name]
    return rows_check(
        asset=asset, table=table, source=source, name="bottles_75cl_eq_consistent", join=_with_product(table),
        description=f"{table.fullname} ({source}): quantity_bottles_75cl_eq = quantity_units x units per pack x "
        "volume / 75 cl, for every product whose volume is known.",
        failing=_eq_mismatch(table),
        shown=lambda: [table.c[key], table.c.product_key, table.c.quantity_units, table.c.quantity_bottles_75cl_eq,
                       P.c.volume_cl, P.c.units_per_pack],
    )  # fmt: skip
