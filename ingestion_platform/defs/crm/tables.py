"""The canonical CRM tables (namespace ``crm``): the five tables downstream reads, whatever the source.

Conventions for every source:
    * keys are stable and unique across sources: ``customer_key`` = ``<source>-<source id>``
      (``odoo-456``, ``isavigne-C123``), ``sale_line_key`` / ``stock_key`` / ``contact_key`` likewise
      prefixed by the source; ``product_key`` is shared: the same product from two sources gets the
      same key (``canonical.product_key`` and ``crm.product_key_map``);
    * ``source`` / ``source_id`` say which record a row comes from; ``partition_day`` is the partition
      (Europe/Paris day) that last loaded it: Odoo the day of the record's latest ``write_date``,
      iSaVigne the export day;
    * ``deleted_at`` is set by the deletion reconciliation when the source no longer has the record:
      the row stays (lossless), and downstream filters ``deleted_at IS NULL``;
    * money in the estate's currency (``NUMERIC(14, 4)`` unit prices, ``NUMERIC(14, 2)`` totals);
      quantities in selling units and in 75 cl bottle equivalents (``canonical.bottles_75cl_eq``);
    * every column but the key is nullable: two loaders own different columns of one row (a source
      its fields, ``crm/customer_purchases`` the purchase figures; see ``TableContract.columns``).

Source loads never write ``deleted_at`` nor the purchase figures (:data:`SOURCE_OWNED`). iSaVigne
never overwrites a product row Odoo holds: Odoo is the system of record going forward
(:data:`PRODUCT_CATALOG_ISAVIGNE`).
"""

from __future__ import annotations

import sqlalchemy as sa

from ingestion_platform.lib.contract import TableContract
from ingestion_platform.lib.warehouse import lineage_columns

METADATA = sa.MetaData(schema="crm")
UNIT_PRICE = sa.Numeric(14, 4)
MONEY = sa.Numeric(14, 2)
QUANTITY = sa.Numeric(14, 3)
UTC_INSTANT = sa.DateTime(timezone=True)
SOURCES_COMMENT = "odoo or isavigne"


def _origin() -> list[sa.Column]:
    return [
        sa.Column("source", sa.String(20), comment=SOURCES_COMMENT),
        sa.Column("source_id", sa.String(120), comment="Id of the record in its source (Odoo id, iSaVigne code)"),
        sa.Column("partition_day", sa.Date, comment="Partition (Europe/Paris day) that last loaded the row"),
        sa.Column("deleted_at", UTC_INSTANT, comment="When the reconciliation found the record gone from its source"),
        *lineage_columns(),
    ]


product_catalog = sa.Table(
    "product_catalog",
    METADATA,
    sa.Column("product_key", sa.String(160), primary_key=True, comment="TYPE-CODE-VARIANT, stable for ever"),
    sa.Column("name", sa.Text, comment="Product name as the source spells it"),
    sa.Column("category", sa.String(20), comment="red | white | rosé | sparkling | sweet | spirits | other"),
    sa.Column("price_segment", sa.String(40), comment="Band of list_price (CRM_PRICE_SEGMENTS)"),
    sa.Column("list_price", UNIT_PRICE, comment="Sale price per selling unit, before tax"),
    sa.Column("cost_price", UNIT_PRICE, comment="Cost per selling unit"),
    sa.Column("grapes", sa.Text, comment="Grape varieties, comma-separated"),
    sa.Column("flavors", sa.Text, comment="Tasting notes / aromas, comma-separated"),
    sa.Column("vintage", sa.Integer, comment="Vintage year; NULL for non-vintage"),
    sa.Column("region", sa.Text, comment="Appellation or region"),
    sa.Column("alcohol", sa.Numeric(5, 2), comment="Alcohol by volume, percent"),
    sa.Column("body", sa.String(40), comment="light | medium | full (as the source grades it)"),
    sa.Column("tannins", sa.String(40), comment="low | medium | high (as the source grades it)"),
    sa.Column("volume_cl", sa.Numeric(8, 2), comment="Volume of one bottle in cl; NULL when it cannot be known"),
    sa.Column("units_per_pack", sa.Integer, comment="Bottles per selling unit (case of 6: 6; a bottle: 1)"),
    sa.Column("active", sa.Boolean, comment="False for archived products"),
    sa.Column("last_updated", UTC_INSTANT, comment="Last change in the source (Odoo write_date, UTC)"),
    *_origin(),
)

customers = sa.Table(
    "customers",
    METADATA,
    sa.Column("customer_key", sa.String(160), primary_key=True, comment="<source>-<source id>"),
    sa.Column("first_name", sa.Text),
    sa.Column("last_name", sa.Text, comment="Last name, or the company name for a company"),
    sa.Column("email", sa.Text, comment="Trimmed, lower case"),
    sa.Column("phone", sa.String(20), comment="E.164 (+33612345678); NULL when unreadable (phone_raw keeps it)"),
    sa.Column("phone_raw", sa.Text, comment="Phone as the source spells it"),
    sa.Column("zip_code", sa.String(20)),
    sa.Column("city", sa.Text),
    sa.Column("country", sa.String(2), comment="ISO 3166-1 alpha-2"),
    sa.Column("segment", sa.Text, comment="Customer segment (Odoo category, iSaVigne type)"),
    sa.Column("is_company", sa.Boolean),
    sa.Column("email_opt_out", sa.Boolean, comment="True: no marketing e-mail"),
    sa.Column("active", sa.Boolean, comment="False for archived customers"),
    sa.Column("last_updated", UTC_INSTANT, comment="Last change in the source (UTC)"),
    sa.Column("last_purchase_date", sa.Date, comment="Derived from sales_lines by crm/customer_purchases"),
    sa.Column("total_spent", MONEY, comment="Sum of price_total of the customer's live sales lines"),
    sa.Column("purchase_count", sa.Integer, comment="Distinct orders (order_ref) of the live sales lines"),
    *_origin(),
)

sales_lines = sa.Table(
    "sales_lines",
    METADATA,
    sa.Column("sale_line_key", sa.String(160), primary_key=True, comment="<source>-<line id>"),
    sa.Column("order_ref", sa.String(160), comment="Order (Odoo sale.order name, iSaVigne invoice number)"),
    sa.Column("customer_key", sa.String(160)),
    sa.Column("product_key", sa.String(160)),
    sa.Column("date_sale", sa.Date, comment="Order date (Europe/Paris)"),
    sa.Column("quantity_units", QUANTITY, comment="Quantity in selling units (Odoo: in the product's UoM)"),
    sa.Column("quantity_bottles_75cl_eq", QUANTITY, comment="Quantity in 75 cl bottles; NULL: volume unknown"),
    sa.Column("price_unit", UNIT_PRICE, comment="Price per selling unit, before tax"),
    sa.Column("price_total", MONEY, comment="Line total before tax"),
    sa.Column("cost_total", MONEY, comment="Cost of the line (unit cost x quantity)"),
    sa.Column("margin_pct", sa.Numeric(9, 2), comment="(price_total - cost_total) / price_total x 100"),
    sa.Column("channel", sa.String(40), comment="Sales channel (team, shop, e-commerce, cellar door ...)"),
    *_origin(),
)

stock_levels = sa.Table(
    "stock_levels",
    METADATA,
    sa.Column("stock_key", sa.String(200), primary_key=True, comment="<source>-<quant id or warehouse:code>"),
    sa.Column("product_key", sa.String(160)),
    sa.Column("warehouse", sa.Text, comment="Warehouse / location"),
    sa.Column("quantity_units", QUANTITY),
    sa.Column("quantity_bottles_75cl_eq", QUANTITY),
    sa.Column("reserved_qty", QUANTITY),
    sa.Column("available_qty", QUANTITY, comment="quantity_units - reserved_qty"),
    sa.Column("last_count_date", sa.Date, comment="Last inventory count (or the export day)"),
    *_origin(),
)

contact_history = sa.Table(
    "contact_history",
    METADATA,
    sa.Column("contact_key", sa.String(160), primary_key=True, comment="<source>-<message or contact id>"),
    sa.Column("customer_key", sa.String(160)),
    sa.Column("date_contact", UTC_INSTANT),
    sa.Column("channel", sa.String(40), comment="email | phone | visit | note | sms | mail ..."),
    sa.Column("campaign", sa.Text),
    sa.Column("subject", sa.Text),
    sa.Column("status", sa.String(40)),
    sa.Column("product_suggested", sa.String(160), comment="product_key suggested, when any"),
    sa.Column("response", sa.Text),
    *_origin(),
)

customer_match = sa.Table(
    "customer_match",
    METADATA,
    sa.Column("customer_key", sa.String(160), primary_key=True, comment="The Odoo-side (or first) customer"),
    sa.Column("matched_key", sa.String(160), primary_key=True, comment="The same person in another source"),
    sa.Column("rule", sa.String(40), comment="email | phone | name_zip"),
    sa.Column("score", sa.Float, comment="1.0 for email and phone; the rapidfuzz name score for name_zip"),
    sa.Column("evidence", sa.Text, comment="What matched (normalised email, phone, names and postcode)"),
    *lineage_columns(),
)

product_key_map = sa.Table(
    "product_key_map",
    METADATA,
    sa.Column("source", sa.String(20), primary_key=True, comment=SOURCES_COMMENT),
    sa.Column("source_id", sa.String(120), primary_key=True),
    sa.Column("product_key", sa.String(160), nullable=False, comment="The key first assigned: never changed"),
    *lineage_columns(),
)

CANONICAL_TABLES = (product_catalog, customers, sales_lines, stock_levels, contact_history)
KEYS = {t.name: t.primary_key.columns.values()[0].name for t in CANONICAL_TABLES}
#: the customers' columns crm/customer_purchases owns
PURCHASE_COLUMNS = ("last_purchase_date", "total_spent", "purchase_count")
_NOT_SOURCE = {"deleted_at", *PURCHASE_COLUMNS, "_ingested_at", "_run_id"}


def source_columns(table: sa.Table) -> tuple[str, ...]:
    """The columns a source load owns: all but ``deleted_at``, the purchase figures and the lineage."""
    return tuple(c.name for c in table.columns if c.name not in _NOT_SOURCE)


def _source_contract(table: sa.Table, **extra: object) -> TableContract:
    return TableContract(table, "upsert", day_column="partition_day", columns=source_columns(table), **extra)  # type: ignore[arg-type]


PRODUCT_CATALOG_CONTRACT = _source_contract(product_catalog)
PRODUCT_CATALOG_ISAVIGNE = _source_contract(
    product_catalog, update_where=lambda t: sa.or_(t.c.source.is_(None), t.c.source != "odoo")
)
CUSTOMERS_CONTRACT = _source_contract(customers)
SALES_LINES_CONTRACT = _source_contract(sales_lines)
STOCK_LEVELS_CONTRACT = _source_contract(stock_levels)
CONTACT_HISTORY_CONTRACT = _source_contract(contact_history)
CUSTOMER_PURCHASES_CONTRACT = TableContract(customers, "upsert", columns=PURCHASE_COLUMNS)
MATCH_RULES = ("email", "phone", "name_zip")
#: crm/customer_match recomputes every pair: the window is every rule, so vanished pairs are deleted
CUSTOMER_MATCH_CONTRACT = TableContract(customer_match, "replace_window", scope_columns=("rule",))
