"""What the sync reads of each Odoo model: its fixed filter and its fields.

``required`` fields must exist on every supported version (16, 17, 18): a server without one fails
with an error naming the model and the field. ``optional`` fields are read when this server's
``fields_get`` lists them, which is how the version shapes differ: ``detailed_type`` (16, 17) versus
``is_storable`` (18), ``mobile`` (gone from res.partner in 18), ``factor_inv`` (up to 17).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class OdooModel:
    name: str
    required: tuple[str, ...]
    optional: tuple[str, ...] = ()
    domain: tuple[Any, ...] = ()
    """The fixed filter, ANDed with the write_date window and the keyset leaf."""
    active: bool = False
    """The model has an ``active`` field (archived records arrive with ``active_test: False``)."""


PARTNERS = OdooModel(
    "res.partner",
    ("id", "name", "email", "phone", "zip", "city", "country_id", "active", "is_company", "write_date"),
    ("mobile", "country_code", "customer_rank", "category_id", "is_blacklisted", "parent_id", "lang"),
    active=True,
)
PRODUCTS = OdooModel(
    "product.product",
    (
        "id",
        "name",
        "default_code",
        "list_price",
        "standard_price",
        "uom_id",
        "categ_id",
        "type",
        "active",
        "product_tmpl_id",
        "write_date",
    ),
    ("detailed_type", "is_storable", "barcode", "description_sale"),
    active=True,
)
TEMPLATES = OdooModel("product.template", ("id", "write_date"), active=True)
"""Templates written in the window: a change made only on a template (its price) does not move its
variants' ``write_date``, so the products asset also reads the variants of these templates."""
UOMS = OdooModel("uom.uom", ("id", "name", "factor", "uom_type"), ("factor_inv", "category_id"), active=True)
SALE_LINES = OdooModel(
    "sale.order.line",
    ("id", "order_id", "product_id", "product_uom_qty", "price_unit", "price_subtotal", "state", "write_date"),
    ("price_total", "product_uom", "order_partner_id", "discount", "currency_id"),
    # confirmed orders (17 dropped 'done' for a lock flag); section and note lines carry no product
    domain=(("state", "in", ["sale", "done"]), ("display_type", "=", False)),
)
ORDERS = OdooModel("sale.order", ("id", "name", "partner_id", "date_order"), ("team_id",))
QUANTS = OdooModel(
    "stock.quant",
    ("id", "product_id", "location_id", "quantity", "reserved_quantity", "write_date"),
    ("last_count_date", "inventory_date", "in_date", "warehouse_id", "lot_id"),
    domain=(("location_id.usage", "=", "internal"),),  # stock on hand, not customers' or vendors' locations
)
MESSAGES = OdooModel(
    "mail.message",
    ("id", "model", "res_id", "date", "message_type", "write_date"),
    ("subject", "body", "subtype_id", "author_id", "record_name"),
    domain=(("model", "=", "res.partner"),),
)
SYNCED = (PARTNERS, PRODUCTS, SALE_LINES, QUANTS, MESSAGES)
"""The models of the five assets (the connection test checks read access to each, and to the lookups)."""
LOOKUPS = (TEMPLATES, UOMS, ORDERS)
