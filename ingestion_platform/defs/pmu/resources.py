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

import dagster as dg

from ingestion_platform.lib.http import Fetched, HttpClient, describe_endpoint, valid_json
from ingestion_platform.lib.settings import http_settings, setting

PUBLIC_BASE_URL = "https://online.turfinfo.api.pmu.fr"
NOTHING_PUBLISHED = (204, 404)


class PmuApi(http_settings("PMU_", concurrency=8)):
    """Client settings for the PMU API; ``client()`` opens a retrying, concurrent HTTP client.

    Every setting is read when a run starts (see ``lib.settings``): resource config, else the
    environment variable, else the default.
    """

    base_url: str | None = setting(
        "PMU_API_BASE_URL", PUBLIC_BASE_URL, "scheme and host of the API, or file:///dir to replay recorded responses"
    )
    programme_client: int | None = setting("PMU_PROGRAMME_CLIENT", 1, "N in /rest/client/N for programme and rapports")
    participants_client: int | None = setting(
        "PMU_PARTICIPANTS_CLIENT", 61, "N in /rest/client/N for participants and performances"
    )
    user_agent: str = "Mozilla/5.0 (compatible; ingestion-platform/1.0)"

    def client(self) -> HttpClient:
        s = self.resolved()
        return s.http_client(s.base_url, {"User-Agent": s.user_agent, "Accept": "application/json"})

    @property
    def provider(self) -> str:
        """Written to the ledger: the API without credentials, or the replayed directory."""
        base = self.resolved().base_url
        return "replay " + base if base.startswith("file://") else describe_endpoint(base)

    def _get(self, client: HttpClient, client_number: int, rest: str) -> Fetched | None:
        """GET ``/rest/client/N/<rest>``; when N has nothing (404/204), the other client number is asked
        once (the captures show the same shapes under 1 and 61, and hosts differ in which they serve)."""
        s = self.resolved()
        for number in dict.fromkeys([client_number, s.programme_client, s.participants_client]):
            fetched = client.get(
                f"/rest/client/{number}/{rest}", validate=valid_json, accept_statuses=NOTHING_PUBLISHED
            )
            if fetched.status not in NOTHING_PUBLISHED and fetched.body.strip():
                return fetched
        return None

    def programme(self, client: HttpClient, day: dt.date) -> Fetched | None:
        return self._get(client, self.resolved().programme_client, f"programme/{day:%d%m%Y}")

    def participants(self, client: HttpClient, day: dt.date, meeting: int, race: int) -> Fetched | None:
        return self._get(client, self.resolved().participants_client, f"{self._race(day, meeting, race)}/participants")

    def performances(self, client: HttpClient, day: dt.date, meeting: int, race: int) -> Fetched | None:
        rest = f"{self._race(day, meeting, race)}/performances-detaillees/pretty"
        return self._get(client, self.resolved().participants_client, rest)

    def rapports(self, client: HttpClient, day: dt.date, meeting: int, race: int) -> Fetched | None:
        rest = f"{self._race(day, meeting, race)}/rapports-definitifs"
        return self._get(client, self.resolved().programme_client, rest)

    @staticmethod
    def _race(day: dt.date, meeting: int, race: int) -> str:
        return f"programme/{day:%d%m%Y}/R{meeting}/C{race}"


@dg.definitions
def pmu_resources() -> dg.Definitions:
    """The PMU API resource; its settings are read when a run starts (see README, configuration)."""
    return dg.Definitions(resources={"pmu_api": PmuApi()})
