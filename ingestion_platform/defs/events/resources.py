"""The three events sources as Dagster resources, configured from the environment.

=============================  =============================================================
``EVENTBRITE_API_URL``         API root including ``/v3`` (default https://www.eventbriteapi.com/v3)
``EVENTBRITE_TOKEN``           private token, sent as a Bearer header, never logged
``EVENTBRITE_ORGANIZATION_IDS``  comma-separated organization ids
``EVENTBRITE_GRACE_HOURS``     an upcoming event missing from the API this long is marked cancelled (48)
``MONTREAL_CKAN_URL``          portal root; the client calls ``{root}/api/3/action/datastore_search``
``MONTREAL_RESOURCE_ID``       datastore resource id (default the public events resource)
``ICS_FEEDS``                  JSON list of ``{"name", "url"}``; url = https URL, file:// URL or local path
=============================  =============================================================
"""

import json
import os
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import dagster as dg
from pydantic import Field

from ingestion_platform.lib.errors import RecordError
from ingestion_platform.lib.http import Fetched, HttpClient, HttpRetry

EVENTBRITE_DEFAULT_URL = "https://www.eventbriteapi.com/v3"
MONTREAL_DEFAULT_URL = "https://donnees.montreal.ca"
MONTREAL_DEFAULT_RESOURCE = "6decf611-6f11-4f34-bb36-324d804c9bad"
EVENTBRITE_EXPAND = "venue,organizer,category,ticket_availability"


def _env_list(name: str) -> list[str]:
    return [x.strip() for x in (os.environ.get(name) or "").split(",") if x.strip()]


def _valid_json(fetched: Fetched) -> None:
    if fetched.status == 200:
        json.loads(fetched.body)


class _Http(dg.ConfigurableResource):
    max_concurrency: int = 4
    connect_timeout_s: float = 10.0
    read_timeout_s: float = Field(default_factory=lambda: float(os.environ.get("EVENTS_READ_TIMEOUT_S", "30")))
    max_attempts: int = Field(default_factory=lambda: int(os.environ.get("EVENTS_MAX_ATTEMPTS", "6")))
    backoff_base_s: float = Field(default_factory=lambda: float(os.environ.get("EVENTS_BACKOFF_BASE_S", "0.5")))

    def _client(self, base_url: str, headers: dict[str, str] | None = None) -> HttpClient:
        return HttpClient(
            base_url=base_url,
            headers={"Accept": "application/json", "User-Agent": "ingestion-platform/1.0", **(headers or {})},
            connect_timeout_s=self.connect_timeout_s,
            read_timeout_s=self.read_timeout_s,
            retry=HttpRetry(max_attempts=self.max_attempts, backoff_base_s=self.backoff_base_s),
            max_concurrency=self.max_concurrency,
        )


class EventbriteApi(_Http):
    """Eventbrite v3: ``/organizations/{id}/events/`` with expansions, continuation paging."""

    api_url: str = Field(default_factory=lambda: os.environ.get("EVENTBRITE_API_URL") or EVENTBRITE_DEFAULT_URL)
    token: str = Field(
        default="",
        repr=False,
        description="Private token; empty = read EVENTBRITE_TOKEN when a run starts, so the secret never "
        "becomes part of the resource configuration shown in the UI",
    )
    organization_ids: list[str] = Field(default_factory=lambda: _env_list("EVENTBRITE_ORGANIZATION_IDS"))
    grace_hours: float = Field(default_factory=lambda: float(os.environ.get("EVENTBRITE_GRACE_HOURS") or 48))
    max_pages: int = 200

    @property
    def provider(self) -> str:
        return f"eventbrite {urlsplit(self.api_url).netloc or self.api_url}"

    def client(self) -> HttpClient:
        token = self.token or os.environ.get("EVENTBRITE_TOKEN") or ""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return self._client(self.api_url.rstrip("/"), headers)

    def events_page(self, client: HttpClient, organization_id: str, params: dict[str, Any]) -> Fetched:
        query = {"expand": EVENTBRITE_EXPAND, "status": "all", "time_filter": "all", "order_by": "start_asc", **params}
        return client.get(f"/organizations/{organization_id}/events/", params=query, validate=_valid_json)


class MontrealOpenData(_Http):
    """Montréal open data portal (CKAN): ``datastore_search`` with offset paging, sorted by a stable column."""

    ckan_url: str = Field(default_factory=lambda: os.environ.get("MONTREAL_CKAN_URL") or MONTREAL_DEFAULT_URL)
    resource_id: str = Field(
        default_factory=lambda: os.environ.get("MONTREAL_RESOURCE_ID") or MONTREAL_DEFAULT_RESOURCE
    )
    page_size: int = Field(default_factory=lambda: int(os.environ.get("MONTREAL_PAGE_SIZE") or 1000))
    sort: str = "url_fiche asc"
    max_pages: int = 500

    @property
    def provider(self) -> str:
        return f"ckan {urlsplit(self.ckan_url).netloc or self.ckan_url}"

    def client(self) -> HttpClient:
        return self._client(self.ckan_url.rstrip("/"))

    def page(self, client: HttpClient, offset: int) -> Fetched:
        params = {"resource_id": self.resource_id, "limit": self.page_size, "offset": offset, "sort": self.sort}
        return client.get("/api/3/action/datastore_search", params=params, validate=_valid_json)


def parse_feeds(raw: str) -> list[dict[str, str]]:
    """``ICS_FEEDS`` -> ``[{"name", "url"}]``; a clear error names the setting and the feed."""
    if not raw.strip():
        return []
    try:
        feeds = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise RecordError(f"not JSON: {exc.msg}", request="ICS_FEEDS", field="ICS_FEEDS") from None
    if not isinstance(feeds, list):
        raise RecordError("expected a JSON list of {name, url}", request="ICS_FEEDS", field="ICS_FEEDS")
    out = []
    for i, feed in enumerate(feeds):
        if not isinstance(feed, dict) or not feed.get("name") or not feed.get("url"):
            raise RecordError("each feed needs a name and a url", request="ICS_FEEDS", record=f"feed #{i + 1}")
        out.append({"name": str(feed["name"]), "url": str(feed["url"])})
    names = [f["name"] for f in out]
    if len(set(names)) != len(names):
        raise RecordError("feed names must be unique", request="ICS_FEEDS", field="name")
    return out


class IcsFeeds(_Http):
    """iCalendar feeds: each an https URL, a ``file://`` URL or a local path, with a name."""

    feeds_json: str = Field(
        default_factory=lambda: os.environ.get("ICS_FEEDS") or "[]",
        description='JSON list of {"name", "url"} (ICS_FEEDS)',
    )
    default_timezone: str = Field(default_factory=lambda: os.environ.get("ICS_DEFAULT_TZ") or "America/Toronto")

    @property
    def feeds(self) -> list[dict[str, str]]:
        return parse_feeds(self.feeds_json)

    @property
    def provider(self) -> str:
        return "ics feeds"

    def fetch(self, feed: dict[str, str]) -> Fetched | None:
        url = feed["url"]
        parts = urlsplit(url)
        if parts.scheme in ("http", "https"):
            base = f"{parts.scheme}://{parts.netloc}"
            path = parts.path + (f"?{parts.query}" if parts.query else "")
            with self._client(base, {"Accept": "text/calendar, */*"}) as client:
                fetched = client.get(path, accept_statuses=(404, 204))
            return None if fetched.status in (404, 204) else fetched
        local = Path(unquote(parts.path)) if parts.scheme == "file" else Path(url)
        if not local.is_file():
            return None
        return Fetched(url=str(local), status=200, body=local.read_bytes(), headers={}, elapsed_s=0.0, attempts=1)


@dg.definitions
def events_resources() -> dg.Definitions:
    """The events source resources, configured from the environment (see the module docstring)."""
    return dg.Definitions(
        resources={"eventbrite_api": EventbriteApi(), "montreal_open_data": MontrealOpenData(), "ics_feeds": IcsFeeds()}
    )
