"""Odoo as a Dagster resource; every setting is read when a run starts (see README, "CRM: Odoo").

=====================  ==============================================================================
``ODOO_URL``           scheme, host and port (https in production), e.g. https://erp.estate.fr
``ODOO_DB``            database name
``ODOO_USER``          login of the sync user
``ODOO_API_KEY``       its API key (secret: never logged, never in metadata or raw files)
``ODOO_SYNC_LAG_S``    the most recent window ends at the server's time minus this lag
``ODOO_PAGE_SIZE``     records per search_read page (keyset by id)
``ODOO_MAX_CONCURRENCY``  id ranges of a window read at once (1; each keyset by id, see ``assets.Sync.ranges``)
``ODOO_VOLUME_FIELD``  product field holding the bottle volume (cl, or text such as "75cl"); empty: none
``ODOO_MAX_ATTEMPTS`` ... the HTTP settings of the family (``lib.settings.http_settings``)
=====================  ==============================================================================
"""

from __future__ import annotations

import dagster as dg

from ingestion_platform.defs.crm.odoo.client import OdooClient, redact
from ingestion_platform.lib.settings import SettingError, http_settings, setting


class OdooApi(http_settings("ODOO_", concurrency=1)):
    """The Odoo server, database and sync user; ``client()`` opens an odoorpc client over /jsonrpc."""

    url: str | None = setting("ODOO_URL", "http://127.0.0.1:8069", "scheme, host and port of the Odoo server")
    db: str | None = setting("ODOO_DB", "odoo", "Odoo database name")
    user: str | None = setting("ODOO_USER", "", "login of the Odoo sync user")
    api_key: str | None = setting("ODOO_API_KEY", "", "API key (or password) of the sync user", secret=True)
    sync_lag_s: int | None = setting(
        "ODOO_SYNC_LAG_S", 300, "seconds before the server's time at which the most recent window ends (late commits)"
    )
    page_size: int | None = setting("ODOO_PAGE_SIZE", 1000, "records per search_read page (keyset by id)")
    volume_field: str | None = setting(
        "ODOO_VOLUME_FIELD", "", "product field holding the bottle volume in cl (or text such as 75cl); empty: none"
    )

    def check_resolved(self) -> None:
        if (self.page_size or 0) < 1:
            raise SettingError(f"ODOO_PAGE_SIZE must be at least 1, not {self.page_size}")
        if (self.sync_lag_s or 0) < 0:
            raise SettingError(f"ODOO_SYNC_LAG_S must be >= 0, not {self.sync_lag_s}")

    @property
    def provider(self) -> str:
        """Written to the ledger: the server and database, never the user's key."""
        s = self.resolved()
        return f"odoo {redact(s.url)} db={s.db}"

    def client(self) -> OdooClient:
        s = self.resolved()
        return OdooClient(
            s.url,
            s.db,
            s.user,
            s.secret("api_key"),
            timeout_s=s.read_timeout_s,
            max_attempts=s.max_attempts,
            backoff_base_s=s.backoff_base_s,
        )


@dg.definitions
def odoo_resources() -> dg.Definitions:
    return dg.Definitions(resources={"odoo_api": OdooApi()})
