"""A small GraphQL client of a Dagster webserver (``dagster dev`` or ``dagster-webserver``).

Used by ``ingestion_platform.prod`` to wait until the topology is ready, and by the tests and
benchmarks that drive the UI's API: the queries are the ones the UI sends.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx


class WebserverError(AssertionError):
    pass


class WebserverClient:
    def __init__(self, url: str, timeout_s: float = 60.0) -> None:
        self.url = url
        self._http = httpx.Client(base_url=url, timeout=timeout_s)

    def close(self) -> None:
        self._http.close()

    def answers(self) -> bool:
        """Whether ``/server_info`` answers 200."""
        try:
            return self._http.get("/server_info").status_code == 200
        except httpx.HTTPError:
            return False

    def graphql(self, query: str, variables: Mapping[str, Any] | None = None) -> dict[str, Any]:
        response = self._http.post("/graphql", json={"query": query, "variables": dict(variables or {})})
        response.raise_for_status()
        body = response.json()
        if body.get("errors"):
            raise WebserverError(f"GraphQL errors: {body['errors']}")
        return body["data"]

    def loaded_location(self) -> str | None:
        """The name of the only code location once it is LOADED (None before); raises on a load error."""
        data = self.graphql(
            """{ workspaceOrError { __typename ... on Workspace { locationEntries {
                 name loadStatus locationOrLoadError { __typename ... on PythonError { message } } } } } }"""
        )
        entries = data["workspaceOrError"].get("locationEntries") or []
        for entry in entries:
            error = entry.get("locationOrLoadError") or {}
            if error.get("__typename") == "PythonError":
                raise WebserverError(f"code location {entry['name']} failed to load: {error['message']}")
        loaded = [e["name"] for e in entries if e["loadStatus"] == "LOADED" and e.get("locationOrLoadError")]
        return loaded[0] if len(loaded) == 1 and len(entries) == 1 else None

    def unhealthy_daemons(self) -> list[str]:
        """The required daemons (scheduler, sensors, run queue, monitoring, retries ...) not healthy yet."""
        data = self.graphql("{ instance { daemonHealth { allDaemonStatuses { daemonType required healthy } } } }")
        statuses = data["instance"]["daemonHealth"]["allDaemonStatuses"]
        return sorted(s["daemonType"] for s in statuses if s["required"] and not s["healthy"])

    def run(self, run_id: str) -> dict[str, Any]:
        data = self.graphql(
            """query($ids: [String!]) { runsOrError(filter: {runIds: $ids}) { __typename ... on Runs {
                 results { runId status tags { key value } } } } }""",
            {"ids": [run_id]},
        )
        (run,) = data["runsOrError"]["results"]
        return run

    def runs(self) -> list[dict[str, Any]]:
        data = self.graphql(
            "{ runsOrError { __typename ... on Runs { results { runId status tags { key value } } } } }"
        )
        return data["runsOrError"]["results"]

    def backfill(self, backfill_id: str) -> dict[str, Any]:
        data = self.graphql(
            """query($id: String!) { partitionBackfillOrError(backfillId: $id) { __typename
                 ... on PartitionBackfill { id status partitionNames runs { runId status } }
                 ... on PythonError { message } } }""",
            {"id": backfill_id},
        )
        return data["partitionBackfillOrError"]
