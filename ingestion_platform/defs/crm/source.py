"""The CRM sources' declarations: partitions, the three sources (Odoo, iSaVigne, the derived ``crm``)
and every asset key of the ``crm`` group.

Every asset of the group has the same partitions (Europe/Paris days) and a single-run backfill
policy, so ``dagster asset materialize --select 'group:crm' --partition-range A...B`` runs the whole
group over a range in one run (Odoo reads the range as one ``write_date`` window; iSaVigne the
exports of those days; the derived assets recompute what those days touched).
"""

import dagster as dg

from ingestion_platform.lib.source import Source

TIMEZONE = "Europe/Paris"
FIRST_DAY = "2020-01-01"
"""The first partition. Its window is open at the start: Odoo records written before it land in it, so
a backfill from the first day is the initial load."""
PARTITIONS = dg.DailyPartitionsDefinition(start_date=FIRST_DAY, timezone=TIMEZONE, end_offset=1)  # today included


def _source(name: str, pool: str, description: str) -> Source:
    return Source(
        name=name,
        group="crm",
        partitions=PARTITIONS,
        fetch_unit="window",
        backfill_policy=dg.BackfillPolicy.single_run(),
        pool=pool,
        tags={"family": "crm"},
        description=description,
    )


ODOO = _source("odoo", "odoo_api", "Odoo 16/17/18 over JSON-RPC (odoorpc), incremental by write_date")
ISAVIGNE = _source("isavigne", "isavigne_exports", "iSaVigne CSV / Excel exports dropped in ISAVIGNE_EXPORT_DIR")
CRM = _source("crm", "crm_derived", "Derived CRM tables: purchase figures, cross-source customer matches")


def _key(name: str) -> dg.AssetKey:
    return dg.AssetKey(["crm", name])


ODOO_CUSTOMERS = _key("odoo_customers")
ODOO_PRODUCTS = _key("odoo_products")
ODOO_SALES_LINES = _key("odoo_sales_lines")
ODOO_STOCK_LEVELS = _key("odoo_stock_levels")
ODOO_CONTACT_HISTORY = _key("odoo_contact_history")
ISAVIGNE_CUSTOMERS = _key("isavigne_customers")
ISAVIGNE_PRODUCTS = _key("isavigne_products")
ISAVIGNE_SALES_LINES = _key("isavigne_sales_lines")
ISAVIGNE_STOCK_LEVELS = _key("isavigne_stock_levels")
ISAVIGNE_CONTACT_HISTORY = _key("isavigne_contact_history")
CUSTOMER_PURCHASES = _key("customer_purchases")
CUSTOMER_MATCH = _key("customer_match")

ODOO_ASSETS = (ODOO_CUSTOMERS, ODOO_PRODUCTS, ODOO_SALES_LINES, ODOO_STOCK_LEVELS, ODOO_CONTACT_HISTORY)
ISAVIGNE_ASSETS = (
    ISAVIGNE_CUSTOMERS,
    ISAVIGNE_PRODUCTS,
    ISAVIGNE_SALES_LINES,
    ISAVIGNE_STOCK_LEVELS,
    ISAVIGNE_CONTACT_HISTORY,
)
