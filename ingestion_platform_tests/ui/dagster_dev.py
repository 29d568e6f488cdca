"""``dagster dev`` (webserver + daemon) on a fresh SQLite instance, for the browser tests.

The instance is the embedded default: a temporary ``DAGSTER_HOME`` holding a copy of the repo's
``dagster.yaml``, migrated once before the start. The sources read the offline samples, the
warehouse is the SQLite file under a temporary ``INGESTION_DATA_DIR``. The server runs in its own
session; ``stop()`` kills it and everything it started (see ``processes``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import httpx

from ingestion_platform.lib import processes
from ingestion_platform.lib.webserver import WebserverClient, WebserverError
from ingestion_platform.prod import free_port

REPO = Path(__file__).resolve().parents[2]
DAGSTER = Path(sys.executable).parent / "dagster"

#: variables of the caller that would point the server elsewhere than its temporary instance
_DROPPED = ("DAGSTER_HOME", "INGESTION_DATABASE_URL", "INGESTION_DATA_DIR", "DAGSTER_PG_URL")


class DagsterDevError(WebserverError):
    pass


class DagsterDev(WebserverClient):
    def __init__(self, workdir: Path, log_path: Path, env: Mapping[str, str]) -> None:
        self.workdir = workdir
        self.log_path = log_path
        self.home = workdir / "dagster_home"
        self.data_dir = workdir / "data"
        # Dagster commands read .env from their working directory, over the environment: an empty one.
        self.cwd = workdir / "cwd"
        self.port = free_port()
        super().__init__(f"http://127.0.0.1:{self.port}")
        self.marker = processes.new_marker()
        self.env = {k: v for k, v in os.environ.items() if k not in _DROPPED}
        self.env.update(env)
        self.env.update(
            {
                "DAGSTER_HOME": str(self.home),
                "INGESTION_DATA_DIR": str(self.data_dir),
                processes.MARKER_VARIABLE: self.marker,
                "PYTHONUNBUFFERED": "1",
                # this checkout's code, whatever the working directory
                "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p),
            }
        )
        self.proc: subprocess.Popen[bytes] | None = None
        self.location: str | None = None
        self._log = None

    # -- lifecycle --------------------------------------------------------------------------------
    def start(self) -> None:
        for folder in (self.home, self.data_dir, self.cwd):
            folder.mkdir(parents=True)
        shutil.copyfile(REPO / "dagster.yaml", self.home / "dagster.yaml")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("wb")
        migrate = subprocess.run(
            [str(DAGSTER), "instance", "migrate"], env=self.env, cwd=self.cwd, capture_output=True, timeout=600
        )
        self._log.write(b"$ dagster instance migrate\n" + migrate.stdout + migrate.stderr)
        self._log.flush()
        if migrate.returncode != 0:
            raise DagsterDevError(f"dagster instance migrate failed:\n{migrate.stderr.decode()[-3000:]}")
        command = [
            str(DAGSTER), "dev", "-m", "ingestion_platform.definitions", "-h", "127.0.0.1", "-p", str(self.port),
        ]  # fmt: skip
        self._log.write(f"$ {' '.join(command)}\n".encode())
        self._log.flush()
        self.proc = subprocess.Popen(
            command,
            env=self.env,
            cwd=self.cwd,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def stop(self) -> None:
        """Kill ``dagster dev`` and every process it started; raise if one survives."""
        self.close()
        if self.proc is None:
            return
        # The group is killed before the leader is reaped: until then its pid (the group id) cannot be
        # reused by an unrelated process.
        survivors = processes.kill_all(self.marker, root_pid=self.proc.pid, pgid=self.proc.pid)
        self.proc.wait(timeout=60)
        if self._log is not None:
            self._log.close()
        if survivors:
            raise DagsterDevError("processes survived the teardown of dagster dev:\n" + processes.describe(survivors))

    def log_tail(self, lines: int = 60) -> str:
        """The last lines of the dagster dev log, headed by its path."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            text = ""
        return f"--- {self.log_path} (last {lines} lines) ---\n" + "\n".join(text.splitlines()[-lines:])

    # -- readiness ----------------------------------------------------------------------------------
    def _check_alive(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            raise DagsterDevError(f"dagster dev exited with {self.proc.returncode}:\n{self.log_tail()}")

    def wait_ready(self, timeout_s: float = 600.0) -> str:
        """Wait for ``/server_info`` and the code location LOADED; returns the location's name."""
        deadline = time.monotonic() + timeout_s
        last = "no answer yet"
        while time.monotonic() < deadline:
            self._check_alive()
            try:
                if self.answers():
                    location = self.loaded_location()
                    if location is not None:
                        self.location = location
                        return location
                    last = "code location not loaded yet"
            except httpx.HTTPError as exc:
                last = repr(exc)
            time.sleep(1.0)
        raise DagsterDevError(f"dagster dev not ready after {timeout_s:.0f} s ({last}):\n{self.log_tail()}")

    def stop_schedules_and_sensors(self) -> list[str]:
        """Stop every running schedule and sensor, so that no tick launches a run during the test."""
        data = self.graphql(
            """{ repositoriesOrError { ... on RepositoryConnection { nodes {
                 schedules { id name scheduleState { status } } sensors { id name sensorState { status } } } } } }"""
        )
        stopped = []
        for repo in data["repositoriesOrError"]["nodes"]:
            for schedule in repo["schedules"]:
                if schedule["scheduleState"]["status"] == "RUNNING":
                    self.graphql(
                        "mutation($id: String) { stopRunningSchedule(id: $id) { __typename } }", {"id": schedule["id"]}
                    )
                    stopped.append(schedule["name"])
            for sensor in repo["sensors"]:
                if sensor["sensorState"]["status"] == "RUNNING":
                    self.graphql("mutation($id: String) { stopSensor(id: $id) { __typename } }", {"id": sensor["id"]})
                    stopped.append(sensor["name"])
        return stopped

    def dismiss_welcome_dialog(self) -> None:
        """The UI greets a new instance on localhost with a "Join the Dagster community" dialog; mark it seen."""
        self.graphql("mutation { setNuxSeen }")

    def check_names(self, asset_path: list[str]) -> list[str]:
        data = self.graphql(
            """query($path: [String!]!) { assetNodeOrError(assetKey: {path: $path}) { __typename
                 ... on AssetNode { assetChecksOrError { __typename ... on AssetChecks { checks { name } } } } } }""",
            {"path": asset_path},
        )
        return sorted(c["name"] for c in data["assetNodeOrError"]["assetChecksOrError"]["checks"])
