"""Launching Dagster runs through the GraphQL API of a running webserver (``DAGSTER_GRAPHQL_URL``).

The run goes to the instance's run queue (the queued run coordinator is the background execution;
the daemon starts it), tagged so the UI and the API show the same thing (``carbon/job_id``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from ingestion_platform.lib.settings import run_setting

GRAPHQL_URL = run_setting(
    "DAGSTER_GRAPHQL_URL",
    "http://127.0.0.1:3000/graphql",
    "GraphQL endpoint of the Dagster webserver the API launches runs on",
)
CODE_LOCATION = run_setting(
    "DAGSTER_CODE_LOCATION", "ingestion_platform", "code location name the API launches runs in (workspace.yaml)"
)

LAUNCH = """
mutation Launch($params: ExecutionParams!) {
  launchRun(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId status } }
    ... on PythonError { message }
    ... on RunConfigValidationInvalid { errors { message } }
    ... on InvalidSubsetError { message }
    ... on PipelineNotFoundError { message }
    ... on RunConflict { message }
    ... on UnauthorizedError { message }
    ... on PresetNotFoundError { message }
    ... on ConflictingExecutionParamsError { message }
    ... on NoModeProvidedError { message }
    ... on InvalidStepError { invalidStepKey }
    ... on InvalidOutputError { invalidOutputName }
  }
}
"""

RUN_STATUS = "query Run($id: ID!) { runOrError(runId: $id) { __typename ... on Run { runId status } } }"


class LaunchError(RuntimeError):
    """The webserver refused or could not be reached; the message never holds a secret."""


class DagsterLauncher:
    def __init__(self, url: str | None = None, location: str | None = None, timeout_s: float = 30.0) -> None:
        self.url = url or GRAPHQL_URL.read()
        self.location = location or CODE_LOCATION.read()
        self.timeout_s = timeout_s

    def _post(self, query: str, variables: Mapping[str, Any]) -> dict[str, Any]:
        try:
            response = httpx.post(self.url, json={"query": query, "variables": variables}, timeout=self.timeout_s)
        except httpx.HTTPError as exc:
            raise LaunchError(f"Dagster webserver unreachable at {self.url}: {type(exc).__name__}") from exc
        if response.status_code != 200:
            raise LaunchError(f"Dagster webserver answered HTTP {response.status_code}")
        body = response.json()
        if body.get("errors"):
            raise LaunchError(f"GraphQL error: {body['errors'][0].get('message')}")
        return body["data"]

    def launch(
        self,
        assets: Sequence[Sequence[str]],
        *,
        run_config: Mapping[str, Any] | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> str:
        """Launch (queue) a run of ``assets`` (key paths); returns the run id."""
        params = {
            "selector": {
                "repositoryLocationName": self.location,
                "repositoryName": "__repository__",
                "jobName": "__ASSET_JOB",
                "assetSelection": [{"path": list(path)} for path in assets],
            },
            "runConfigData": dict(run_config or {}),
            "executionMetadata": {"tags": [{"key": k, "value": str(v)} for k, v in (tags or {}).items()]},
        }
        result = self._post(LAUNCH, {"params": params})["launchRun"]
        if result["__typename"] != "LaunchRunSuccess":
            detail = result.get("message") or "; ".join(e["message"] for e in result.get("errors", [])) or ""
            raise LaunchError(f"run not launched: {result['__typename']}: {detail}"[:1000])
        return result["run"]["runId"]

    def status(self, run_id: str) -> str | None:
        result = self._post(RUN_STATUS, {"id": run_id})["runOrError"]
        return result.get("status")
