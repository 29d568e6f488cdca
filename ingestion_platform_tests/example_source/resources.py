"""The example's external systems as Dagster resources; their settings are read when a run starts.

===============================  ==================================================================
``EXAMPLE_WEATHER_API_URL``      API root including ``/v1``
``EXAMPLE_WEATHER_TOKEN``        API token, sent as a Bearer header (secret: never in config or logs)
``EXAMPLE_WEATHER_PAGE_SIZE``    observations per page
``EXAMPLE_WEATHER_MAX_ATTEMPTS`` ... the HTTP settings of the family (``lib.settings.http_settings``)
``EXAMPLE_RAIN_DROP_DIR``        folder the gauge networks drop their exports into
===============================  ==================================================================
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import dagster as dg

from ingestion_platform.lib.fetch import FileFetcher, HttpFetcher, Request
from ingestion_platform.lib.http import HttpClient, describe_endpoint, valid_json
from ingestion_platform.lib.settings import SourceSettings, http_settings, setting


class WeatherApi(http_settings("EXAMPLE_WEATHER_")):
    """``GET /observations?start&end&page&page_size``: daily observations of a range, paged."""

    api_url: str | None = setting("EXAMPLE_WEATHER_API_URL", "https://weather.example.invalid/v1", "API root")
    token: str | None = setting("EXAMPLE_WEATHER_TOKEN", None, "API token, sent as a Bearer header", secret=True)
    page_size: int | None = setting("EXAMPLE_WEATHER_PAGE_SIZE", 100, "observations per page")

    @property
    def provider(self) -> str:
        """Written to the ledger: the endpoint without credentials or query."""
        return describe_endpoint(self.resolved().api_url)

    def client(self) -> HttpClient:
        s = self.resolved()
        token = s.secret("token")
        headers = {"Accept": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})}
        return s.http_client(s.api_url, headers)

    def fetcher(self, client: HttpClient) -> HttpFetcher:
        return HttpFetcher(client, validate=valid_json)  # a 200 that is not JSON is retried

    def page(self, first: dt.date, last: dt.date, number: int) -> Request:
        params = {"start": first.isoformat(), "end": last.isoformat(), "page": number}
        params["page_size"] = self.resolved().page_size
        return Request(f"observations_page_{number}", "/observations", params=params)


class RainDrops(SourceSettings):
    """Daily CSV exports dropped as ``<drop dir>/<YYYY-MM-DD>/<network>.csv`` (written atomically)."""

    drop_dir: str | None = setting("EXAMPLE_RAIN_DROP_DIR", "./drops/rain", "folder of the networks' exports")

    @property
    def provider(self) -> str:
        return f"file drop {self.resolved().drop_dir}"

    def fetcher(self) -> FileFetcher:
        return FileFetcher(Path(self.resolved().drop_dir))


@dg.definitions
def example_resources() -> dg.Definitions:
    return dg.Definitions(resources={"weather_api": WeatherApi(), "rain_drops": RainDrops()})
