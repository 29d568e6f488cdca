"""The carbon settings, as Dagster resources read when a run (or the sync API) starts.

==============================  ===============================================================
``CARBON_ORGANISATION``         organisation of the inventories (``<organisation>-<year>`` ids)
``CARBON_UPLOAD_DIR``           watched folder of CSV drops (``<module>/<year>/*.csv``,
                                ``factors/<factor_type>/*.csv``); API uploads are stored under
                                ``$INGESTION_DATA_DIR/uploads/carbon`` before any parsing
``TABLEAU_SERVER_URL``          Tableau Server / Cloud root URL
``TABLEAU_SITE``                site content URL ('' = the default site)
``TABLEAU_PAT_NAME`` / ``_SECRET``   personal access token (one PAT holds one session at a time)
``TABLEAU_JWT_CLIENT_ID`` / ``_SECRET_ID`` / ``_SECRET`` / ``TABLEAU_USERNAME``   connected app (JWT)
``TABLEAU_VIEW``                default view of the flights (name or ``workbook/sheet`` content URL)
``TABLEAU_TIMEOUT_S``           per-request timeout
==============================  ===============================================================

Secrets are read at run time, kept out of the resource fields and never logged nor returned.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from ingestion_platform.lib.settings import SettingError, SourceSettings, setting
from ingestion_platform.lib.warehouse import default_data_dir


class CarbonSettings(SourceSettings):
    organisation: str | None = setting("CARBON_ORGANISATION", "default", "organisation of the carbon inventories")
    upload_dir: str | None = setting(
        "CARBON_UPLOAD_DIR", None, "watched folder of carbon CSV drops; unset = $INGESTION_DATA_DIR/carbon_drop"
    )

    def drop_dir(self) -> Path:
        value = self.resolved().upload_dir
        return Path(value) if value else default_data_dir() / "carbon_drop"

    @staticmethod
    def api_upload_dir() -> Path:
        return default_data_dir() / "uploads" / "carbon"

    def inventory_id(self, year: int) -> str:
        return f"{self.resolved().organisation}-{year}"


class TableauSettings(SourceSettings):
    server_url: str | None = setting("TABLEAU_SERVER_URL", None, "Tableau Server / Cloud URL")
    site: str | None = setting("TABLEAU_SITE", "", "Tableau site content URL ('' = default site)")
    pat_name: str | None = setting("TABLEAU_PAT_NAME", None, "personal access token name")
    pat_secret: str | None = setting("TABLEAU_PAT_SECRET", None, "personal access token secret", secret=True)
    jwt_client_id: str | None = setting("TABLEAU_JWT_CLIENT_ID", None, "connected app client id (JWT sign-in)")
    jwt_secret_id: str | None = setting("TABLEAU_JWT_SECRET_ID", None, "connected app secret id (JWT kid)")
    jwt_secret: str | None = setting("TABLEAU_JWT_SECRET", None, "connected app secret value", secret=True)
    username: str | None = setting("TABLEAU_USERNAME", None, "user the connected-app JWT signs in as")
    view: str | None = setting("TABLEAU_VIEW", "Flights", "flights view: name or workbook/sheets/sheet content URL")
    timeout_s: float | None = setting("TABLEAU_TIMEOUT_S", 60.0, "Tableau request timeout, seconds")

    def check_resolved(self) -> None:
        if self.server_url and not str(self.server_url).startswith(("http://", "https://")):
            raise SettingError(f"TABLEAU_SERVER_URL {self.server_url!r} is not an http(s) URL")

    def auth_kind(self) -> str:
        """``pat`` or ``jwt`` from what is configured; SettingError when neither is complete."""
        s = self.resolved()
        if s.pat_name and s.secret("pat_secret"):
            return "pat"
        if s.jwt_client_id and s.jwt_secret_id and s.secret("jwt_secret") and s.username:
            return "jwt"
        raise SettingError(
            "Tableau credentials missing: set TABLEAU_PAT_NAME and TABLEAU_PAT_SECRET, or TABLEAU_JWT_CLIENT_ID, "
            "TABLEAU_JWT_SECRET_ID, TABLEAU_JWT_SECRET and TABLEAU_USERNAME"
        )


@dg.definitions
def carbon_resources() -> dg.Definitions:
    return dg.Definitions(resources={"carbon": CarbonSettings(), "tableau": TableauSettings()})
