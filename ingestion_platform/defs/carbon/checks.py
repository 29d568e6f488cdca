"""Checks of the carbon assets (evaluated inside each asset's step, see lib.checks)."""

import dagster as dg
import sqlalchemy as sa

from ingestion_platform.defs.carbon import tables
from ingestion_platform.defs.carbon.layouts import NATURAL_KEY
from ingestion_platform.defs.carbon.source import CARBON, DATA_ENTRIES, EMISSION_FACTORS, FOOTPRINT
from ingestion_platform.lib.checks import (
    CheckInputs,
    CheckOutcome,
    dead_letter_check,
    reference_check,
    unique_key_check,
    warehouse_check,
)

# Evaluated once per run over the whole table (not once per day: a sync of a year is 366 partitions).
DATA_ENTRY_CHECKS = [
    unique_key_check(
        asset=DATA_ENTRIES,
        table=tables.data_entries,
        key=[c.name for c in tables.data_entries.primary_key],
        window_column="activity_date",
    ),
    reference_check(
        asset=DATA_ENTRIES,
        child=tables.data_entries,
        child_columns=["inventory_id"],
        parent=tables.inventories,
        parent_columns=["id"],
        window_column="activity_date",
    ),
    dead_letter_check(asset=DATA_ENTRIES, source=CARBON.name),
]

FACTOR_CHECKS = [
    unique_key_check(
        asset=EMISSION_FACTORS,
        table=tables.emission_factors,
        key=["factor_type_id", *NATURAL_KEY],
        name="emission_factors_natural_key_unique",
    ),
    unique_key_check(asset=EMISSION_FACTORS, table=tables.emission_factors, key=["factor_type_id", "factor_key"]),
]


def _without_factor(inputs: CheckInputs) -> CheckOutcome:
    f = tables.footprint
    where = sa.and_(inputs.where(f, "activity_date"), f.c.factor_key.is_(None))
    missing = inputs.warehouse.fetch(
        sa.select(f.c.module_id, f.c.activity_date, f.c.entry_key, f.c.activity, f.c.unit)
        .where(where)
        .order_by(f.c.activity_date, f.c.entry_key)
        .limit(50)
    )
    total = inputs.warehouse.count(f, inputs.where(f, "activity_date"))
    failures = inputs.warehouse.count(f, where)
    return CheckOutcome(passed=failures == 0, checked=total, failures=failures, sample=missing)


FOOTPRINT_CHECKS = [
    warehouse_check(
        asset=FOOTPRINT,
        name="entries_without_factor",
        description="Every data entry found an emission factor (lists the entries that did not).",
        fn=_without_factor,
        severity=dg.AssetCheckSeverity.WARN,
    ),
]
