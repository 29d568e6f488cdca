"""The PMU "turfinfo" API as a Dagster resource.

Paths (after ``PMU_API_BASE_URL``, default the public online host):

    /rest/client/{programme_client}/programme/{DDMMYYYY}
    /rest/client/{participants_client}/programme/{DDMMYYYY}/R{n}/C{m}/participants
    /rest/client/{participants_client}/programme/{DDMMYYYY}/R{n}/C{m}/performances-detaillees/pretty
    /rest/client/{programme_client}/programme/{DDMMYYYY}/R{n}/C{m}/rapports-definitifs

Client numbers 1 (programme, rapports) and 61 (participants, performances) are the ones of every
real capture; both are configurable. ``PMU_API_BASE_URL=file:///dir`` replays recorded responses
laid out as ``<dir>/rest/client/N/...path....json`` (the offline demo and tests use it).
404 and 204 mean "nothing published (yet)" and come back as ``None`` (after asking the other
client number once).
"""

from __future__ import annotations

import datetime as dt
import json
import os

import dagster as dg
from pydantic import Field

from ingestion_platform.lib.http import Fetched, HttpClient, HttpRetry

PUBLIC_BASE_URL = "https://online.turfinfo.api.pmu.fr"
NOTHING_PUBLISHED = (204, 404)


def _valid_json(fetched: Fetched) -> None:
    """A 200 whose body is not JSON (cut off, HTML error page) is retried by the client."""
    if fetched.status == 200:
        json.loads(fetched.body)


class PmuApi(dg.ConfigurableResource):
    """Client settings for the PMU API; ``client()`` opens a retrying, concurrent HTTP client."""

    base_url: str = Field(
        default_factory=lambda: os.environ.get("PMU_API_BASE_URL") or PUBLIC_BASE_URL,
        description="Scheme and host of the API (PMU_API_BASE_URL), or file:///dir to replay.",
    )
    programme_client: int = Field(
        default_factory=lambda: int(os.environ.get("PMU_PROGRAMME_CLIENT") or 1),
        description="N in /rest/client/N for programme and rapports (PMU_PROGRAMME_CLIENT)",
    )
    participants_client: int = Field(
        default_factory=lambda: int(os.environ.get("PMU_PARTICIPANTS_CLIENT") or 61),
        description="N for participants and performances (PMU_PARTICIPANTS_CLIENT)",
    )
    max_concurrency: int = Field(
        default_factory=lambda: int(os.environ.get("PMU_MAX_CONCURRENCY", "8")),
        description="Concurrent requests per run (PMU_MAX_CONCURRENCY)",
    )
    connect_timeout_s: float = 10.0
    read_timeout_s: float = Field(default_factory=lambda: float(os.environ.get("PMU_READ_TIMEOUT_S", "30")))
    max_attempts: int = Field(default_factory=lambda: int(os.environ.get("PMU_MAX_ATTEMPTS", "6")))
    backoff_base_s: float = Field(default_factory=lambda: float(os.environ.get("PMU_BACKOFF_BASE_S", "0.5")))
    user_agent: str = "Mozilla/5.0 (compatible; ingestion-platform/1.0)"

    def client(self) -> HttpClient:
        return HttpClient(
            base_url=self.base_url,
            headers={"User-Agent": self.user_agent, "Accept": "application/json"},
            connect_timeout_s=self.connect_timeout_s,
            read_timeout_s=self.read_timeout_s,
            retry=HttpRetry(max_attempts=self.max_attempts, backoff_base_s=self.backoff_base_s),
            max_concurrency=self.max_concurrency,
        )

    @property
    def provider(self) -> str:
        return self.base_url if not self.base_url.startswith("file://") else "replay " + self.base_url

    def _get(self, client: HttpClient, client_number: int, rest: str) -> Fetched | None:
        """GET ``/rest/client/N/<rest>``; when N has nothing (404/204), the other client number is asked
        once (the captures show the same shapes under 1 and 61, and hosts differ in which they serve)."""
        for number in dict.fromkeys([client_number, self.programme_client, self.participants_client]):
            fetched = client.get(
                f"/rest/client/{number}/{rest}", validate=_valid_json, accept_statuses=NOTHING_PUBLISHED
            )
            if fetched.status not in NOTHING_PUBLISHED and fetched.body.strip():
                return fetched
        return None

    def programme(self, client: HttpClient, day: dt.date) -> Fetched | None:
        return self._get(client, self.programme_client, f"programme/{day:%d%m%Y}")

    def participants(self, client: HttpClient, day: dt.date, meeting: int, race: int) -> Fetched | None:
        return self._get(client, self.participants_client, f"{self._race(day, meeting, race)}/participants")

    def performances(self, client: HttpClient, day: dt.date, meeting: int, race: int) -> Fetched | None:
        rest = f"{self._race(day, meeting, race)}/performances-detaillees/pretty"
        return self._get(client, self.participants_client, rest)

    def rapports(self, client: HttpClient, day: dt.date, meeting: int, race: int) -> Fetched | None:
        return self._get(client, self.programme_client, f"{self._race(day, meeting, race)}/rapports-definitifs")

    @staticmethod
    def _race(day: dt.date, meeting: int, race: int) -> str:
        return f"programme/{day:%d%m%Y}/R{meeting}/C{race}"


@dg.definitions
def pmu_resources() -> dg.Definitions:
    """The PMU API resource, configured from the environment (see README, configuration)."""
    return dg.Definitions(resources={"pmu_api": PmuApi()})
