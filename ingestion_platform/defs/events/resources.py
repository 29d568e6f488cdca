"""The three events sources as Dagster resources; their settings are read when a run starts.

=============================  =============================================================
``EVENTBRITE_API_URL``         API root including ``/v3`` (default https://www.eventbriteapi.com/v3)
``EVENTBRITE_TOKEN``           private token, sent as a Bearer header, never logged
``EVENTBRITE_ORGANIZATION_IDS``  comma-separated organization ids
``EVENTBRITE_GRACE_HOURS``     an upcoming event missing from the API this long is marked cancelled (48)
``MONTREAL_CKAN_URL``          portal root; the client calls ``{root}/api/3/action/datastore_search``
``MONTREAL_RESOURCE_ID``       datastore resource id (default the public events resource)
``MONTREAL_PAGE_SIZE``         records per page (1000)
``ICS_FEEDS``                  JSON list of ``{"name", "url"}``; url = https URL, file:// URL or local path
``ICS_DEFAULT_TZ``             zone of floating times (America/Toronto)
``EVENTS_MAX_ATTEMPTS`` ...    HTTP settings shared by the three (``lib.settings.http_settings``)
=============================  =============================================================

Each is resolved (resource config, else environment, else default) when Dagster initialises the
resource for a run; see ``lib.settings``.
"""

import json
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import dagster as dg

from ingestion_platform.lib.errors import RecordError
from ingestion_platform.lib.http import Fetched, HttpClient, describe_endpoint, path_segment, valid_json
from ingestion_platform.lib.settings import SettingError, http_settings, setting

EVENTBRITE_DEFAULT_URL = "https://www.eventbriteapi.com/v3"
MONTREAL_DEFAULT_URL = "https://donnees.montreal.ca"
MONTREAL_DEFAULT_RESOURCE = "6decf611-6f11-4f34-bb36-324d804c9bad"
EVENTBRITE_EXPAND = "venue,organizer,category,ticket_availability"


def _path_segment(value: str, what: str) -> str:
    try:
        return path_segment(value)
    except ValueError:
        raise SettingError(f"{what} {value!r} cannot be a URL path segment") from None


class _Http(http_settings("EVENTS_")):
    """HTTP settings shared by the events sources (``EVENTS_MAX_ATTEMPTS`` ...)."""

    def _client(self, base_url: str, headers: dict[str, str] | None = None) -> HttpClient:
        base = {"Accept": "application/json", "User-Agent": "ingestion-platform/1.0"}
        return self.http_client(base_url, {**base, **(headers or {})})


class EventbriteApi(_Http):
    """Eventbrite v3: ``/organizations/{id}/events/`` with expansions, continuation paging."""

    api_url: str | None = setting("EVENTBRITE_API_URL", EVENTBRITE_DEFAULT_URL, "API root including /v3")
    token: str | None = setting(
        "EVENTBRITE_TOKEN",
        None,
        "private token, sent as a Bearer header; leave unset (or pass dg.EnvVar) so it never becomes "
        "part of the resource configuration shown in the UI",
        secret=True,
    )
    organization_ids: list[str] | None = setting("EVENTBRITE_ORGANIZATION_IDS", [], "comma-separated organization ids")
    grace_hours: float | None = setting(
        "EVENTBRITE_GRACE_HOURS", 48.0, "an upcoming event missing from the API this long is marked cancelled"
    )
    max_pages: int = 200

    def check_resolved(self) -> None:
        for org in self.organization_ids or []:
            _path_segment(org, "EVENTBRITE_ORGANIZATION_IDS: organization id")

    @property
    def provider(self) -> str:
        url = self.resolved().api_url
        return f"eventbrite {urlsplit(describe_endpoint(url)).netloc or describe_endpoint(url)}"

    def client(self) -> HttpClient:
        s = self.resolved()
        token = s.secret("token") or ""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return s._client(s.api_url.rstrip("/"), headers)

    def events_page(self, client: HttpClient, organization_id: str, params: dict[str, Any]) -> Fetched:
        query = {"expand": EVENTBRITE_EXPAND, "status": "all", "time_filter": "all", "order_by": "start_asc", **params}
        org = _path_segment(organization_id, "organization id")
        return client.get(f"/organizations/{org}/events/", params=query, validate=valid_json)


class MontrealOpenData(_Http):
    """Montréal open data portal (CKAN): ``datastore_search`` with offset paging, sorted by a stable column."""

    ckan_url: str | None = setting("MONTREAL_CKAN_URL", MONTREAL_DEFAULT_URL, "CKAN portal root")
    resource_id: str | None = setting("MONTREAL_RESOURCE_ID", MONTREAL_DEFAULT_RESOURCE, "datastore resource id")
    page_size: int | None = setting("MONTREAL_PAGE_SIZE", 1000, "records per datastore_search page")
    sort: str = "url_fiche asc"
    max_pages: int = 500

    @property
    def provider(self) -> str:
        url = describe_endpoint(self.resolved().ckan_url)
        return f"ckan {urlsplit(url).netloc or url}"

    def client(self) -> HttpClient:
        s = self.resolved()
        return s._client(s.ckan_url.rstrip("/"))

    def page(self, client: HttpClient, offset: int) -> Fetched:
        s = self.resolved()
        params = {"resource_id": s.resource_id, "limit": s.page_size, "offset": offset, "sort": s.sort}
        return client.get("/api/3/action/datastore_search", params=params, validate=valid_json)


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

    feeds_json: str | None = setting("ICS_FEEDS", "[]", 'JSON list of {"name", "url"}')
    default_timezone: str | None = setting(
        "ICS_DEFAULT_TZ", "America/Toronto", "zone of floating times and all-day instants"
    )

    @property
    def feeds(self) -> list[dict[str, str]]:
        return parse_feeds(self.resolved().feeds_json)

    @property
    def provider(self) -> str:
        return "ics feeds"

    def fetch(self, feed: dict[str, str]) -> Fetched | None:
        url = feed["url"]
        parts = urlsplit(url)
        if parts.scheme in ("http", "https"):
            base = f"{parts.scheme}://{parts.netloc}"
            path = parts.path + (f"?{parts.query}" if parts.query else "")
            with self.resolved()._client(base, {"Accept": "text/calendar, */*"}) as client:
                fetched = client.get(path, accept_statuses=(404, 204))
            return None if fetched.status in (404, 204) else fetched
        local = Path(unquote(parts.path)) if parts.scheme == "file" else Path(url)
        if not local.is_file():
            return None
        return Fetched(url=str(local), status=200, body=local.read_bytes(), headers={}, elapsed_s=0.0, attempts=1)


@dg.definitions
def events_resources() -> dg.Definitions:
    """The events source resources; settings read when a run starts (see the module docstring)."""
    return dg.Definitions(
        resources={"eventbrite_api": EventbriteApi(), "montreal_open_data": MontrealOpenData(), "ics_feeds": IcsFeeds()}
    )
