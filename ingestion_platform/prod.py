"""The production topology on one machine: ``python -m ingestion_platform.prod up|down|status``.

``make prod-up`` / ``make prod-down`` run it. ``up`` starts, each in a session (process group) of
its own, from an empty working directory:

* ``code-server``: ``dagster code-server start`` serving the code location over gRPC; the
  workspace (``<dir>/workspace.yaml``) points at it, and runs start in its processes;
* ``webserver``: ``dagster-webserver -w <dir>/workspace.yaml`` (the UI and its GraphQL API);
* ``daemon``: ``dagster-daemon run -w <dir>/workspace.yaml`` (schedules, sensors, the run queue,
  run monitoring, run retries, backfills);
* ``worker-1`` .. ``worker-N``: ``dagster-celery worker start`` (the steps of the runs: the code
  location's executor is the Celery executor, broker RabbitMQ).

The instance is ``deploy/dagster.yaml`` (storage on PostgreSQL, the queued run coordinator with a
concurrency limit per source, run monitoring, run retries), copied into ``<dir>/dagster_home``; the
warehouse is PostgreSQL too. Both databases are created when missing, and the instance is migrated
before anything starts. ``<dir>`` (default ``.prod``) holds everything: ``logs/<process>.log``,
``topology.json`` (the processes' pids, ports, URLs), the instance, the Celery worker config and
``data/`` (raw payloads, dead letters: ``INGESTION_DATA_DIR``).

``down`` sends SIGTERM to every process group, waits ``--grace`` seconds, then SIGKILLs the groups
and every process still carrying the topology's marker in its environment (run workers and step
processes that left their group): Dagster's processes ignore SIGTERM on some machines.

Environment of the processes, by increasing precedence: the shell's, then ``--env-file`` (``make
prod-up`` passes the repository's ``.env``: the sources' settings, e.g. the offline samples), then
what the topology itself sets: ``DAGSTER_HOME``, ``DAGSTER_PG_URL``, ``INGESTION_DATABASE_URL``,
``INGESTION_DATA_DIR`` (unless set), ``DAGSTER_CELERY_BROKER_URL``, ``INGESTION_EXECUTOR=celery`` and
``INGESTION_AUTOMATION=running`` (schedules and sensors on, as in production).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import yaml
from dotenv import dotenv_values

from ingestion_platform.lib import processes, scale_out
from ingestion_platform.lib.run_launcher import process_alive
from ingestion_platform.lib.webserver import WebserverClient, WebserverError

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
LOCATION = "ingestion_platform"
PG_SERVER = "postgresql://root@127.0.0.1:5432"
DEFAULT_DAGSTER_DB = f"{PG_SERVER}/ingestion_prod_dagster"
DEFAULT_WAREHOUSE_DB = f"{PG_SERVER}/ingestion_prod_warehouse"


class TopologyError(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def ensure_database(url: str) -> bool:
    """Create the PostgreSQL database of ``url`` when it does not exist; whether it was created."""
    target = sa.make_url(url).set(drivername="postgresql+psycopg2")
    if target.database is None:
        raise TopologyError(f"{target.render_as_string()}: the URL names no database")
    engine = sa.create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            exists = conn.execute(sa.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": target.database})
            if exists.first() is not None:
                return False
            conn.execute(sa.text(f'CREATE DATABASE "{target.database}"'))
            return True
    except sa.exc.OperationalError as exc:
        raise TopologyError(f"PostgreSQL not reachable at {target.render_as_string()}: {exc.orig}") from None
    finally:
        engine.dispose()


@dataclass
class Topology:
    """The processes of one topology, all under ``root``."""

    root: Path
    dagster_pg_url: str = DEFAULT_DAGSTER_DB
    warehouse_url: str = DEFAULT_WAREHOUSE_DB
    broker_url: str = scale_out.BROKER_URL.default
    workers: int = 2
    worker_concurrency: int = 1
    host: str = "127.0.0.1"
    port: int = 3000
    env_file: Path | None = None
    extra_env: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.root = Path(self.root).resolve()
        self.home = self.root / "dagster_home"
        self.logs = self.root / "logs"
        self.cwd = self.root / "cwd"  # empty: Dagster commands would read a .env found in their working directory
        self.state_path = self.root / "topology.json"
        self.workspace = self.root / "workspace.yaml"
        self.worker_yaml = self.root / "celery_worker.yaml"

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    # -- the environment ------------------------------------------------------------------------
    def environment(self, marker: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k != processes.MARKER_VARIABLE}
        if self.env_file is not None and self.env_file.is_file():
            env.update({k: v for k, v in dotenv_values(self.env_file).items() if v})
        env.update(self.extra_env)
        env["INGESTION_DATA_DIR"] = str(Path(env.get("INGESTION_DATA_DIR") or self.root / "data").resolve())
        env.update(
            {
                "DAGSTER_HOME": str(self.home),
                "DAGSTER_PG_URL": self.dagster_pg_url,
                "INGESTION_DATABASE_URL": self.warehouse_url,
                "DAGSTER_CELERY_BROKER_URL": self.broker_url,
                "INGESTION_EXECUTOR": "celery",
                "INGESTION_AUTOMATION": "running",
                "PYTHONUNBUFFERED": "1",
                # dagster-celery starts `celery` by name: this environment's
                "PATH": os.pathsep.join(p for p in (str(BIN), env.get("PATH", "")) if p),
                # this checkout's code, whatever the working directory
                "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p),
                processes.MARKER_VARIABLE: marker,
            }
        )
        return env

    # -- state ------------------------------------------------------------------------------------
    def state(self) -> dict[str, Any] | None:
        try:
            return json.loads(self.state_path.read_text())
        except (OSError, ValueError):
            return None

    def _save(self, state: dict[str, Any]) -> None:
        self.state_path.write_text(json.dumps(state, indent=2) + "\n")

    def alive(self) -> dict[str, bool]:
        """Process name -> whether it still runs (from ``topology.json``)."""
        state = self.state() or {}
        return {name: process_alive(pid) for name, pid in state.get("processes", {}).items()}

    # -- up ---------------------------------------------------------------------------------------
    def prepare(self, env: Mapping[str, str], grpc_port: int) -> None:
        for folder in (self.home, self.logs, self.cwd):
            folder.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(REPO / "deploy" / "dagster.yaml", self.home / "dagster.yaml")
        workspace = {
            "load_from": [{"grpc_server": {"host": "127.0.0.1", "port": grpc_port, "location_name": LOCATION}}]
        }
        self.workspace.write_text(yaml.safe_dump(workspace, sort_keys=False))
        self.worker_yaml.write_text(
            yaml.safe_dump(scale_out.worker_config(self.broker_url, self.worker_concurrency), sort_keys=False)
        )
        for url in (self.dagster_pg_url, self.warehouse_url):
            ensure_database(url)
        self._run_once("migrate", [str(BIN / "dagster"), "instance", "migrate"], env)

    def _run_once(self, name: str, argv: list[str], env: Mapping[str, str]) -> None:
        with (self.logs / f"{name}.log").open("ab") as log:
            done = subprocess.run(argv, env=env, cwd=self.cwd, stdout=log, stderr=subprocess.STDOUT, timeout=600)
        if done.returncode != 0:
            raise TopologyError(f"{' '.join(argv)} failed ({done.returncode}):\n{self.log_tail(name)}")

    def _spawn(self, name: str, argv: list[str], env: Mapping[str, str]) -> int:
        log = (self.logs / f"{name}.log").open("ab")
        log.write(f"$ {' '.join(argv)}\n".encode())
        log.flush()
        with log:
            proc = subprocess.Popen(
                argv, env=env, cwd=self.cwd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        return proc.pid

    def worker_argv(self, index: int) -> list[str]:
        return [
            str(BIN / "dagster-celery"), "worker", "start", "-A", "dagster_celery.app", "-y", str(self.worker_yaml),
            "-n", f"worker-{index}", "-l", "INFO",
        ]  # fmt: skip

    def up(self, timeout_s: float = 600.0) -> dict[str, Any]:
        """Start every process and wait until the topology answers; on failure, stop what started."""
        if any(self.alive().values()):
            raise TopologyError(f"a topology already runs from {self.root} (python -m ingestion_platform.prod down)")
        marker = processes.new_marker()
        grpc_port = free_port()
        env = self.environment(marker)
        state: dict[str, Any] = {
            "marker": marker, "url": self.url, "grpc_port": grpc_port, "processes": {},
            "dagster_pg_url": self.dagster_pg_url, "warehouse_url": self.warehouse_url, "broker_url": self.broker_url,
        }  # fmt: skip
        self.root.mkdir(parents=True, exist_ok=True)
        self._save(state)
        try:
            self.prepare(env, grpc_port)
            started = state["processes"]
            started["code-server"] = self._spawn(
                "code-server",
                [str(BIN / "dagster"), "code-server", "start", "-m", "ingestion_platform.definitions",
                 "--location-name", LOCATION, "-h", "127.0.0.1", "-p", str(grpc_port)],
                env,
            )  # fmt: skip
            self._save(state)
            self._wait_code_server(grpc_port, env, timeout_s)
            workspace = ["-w", str(self.workspace)]
            started["webserver"] = self._spawn(
                "webserver", [str(BIN / "dagster-webserver"), *workspace, "-h", self.host, "-p", str(self.port)], env
            )
            started["daemon"] = self._spawn("daemon", [str(BIN / "dagster-daemon"), "run", *workspace], env)
            for index in range(1, self.workers + 1):
                started[f"worker-{index}"] = self._spawn(f"worker-{index}", self.worker_argv(index), env)
            self._save(state)
            self.wait_ready(timeout_s)
        except BaseException:
            self.down()
            raise
        return state

    def start_worker(self, index: int) -> int:
        """(Re)start ``worker-<index>`` in the running topology."""
        state = self.state()
        if state is None:
            raise TopologyError(f"no topology in {self.root}")
        pid = self._spawn(f"worker-{index}", self.worker_argv(index), self.environment(state["marker"]))
        state["processes"][f"worker-{index}"] = pid
        self._save(state)
        return pid

    def _wait_code_server(self, port: int, env: Mapping[str, str], timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        check = [str(BIN / "dagster"), "api", "grpc-health-check", "-p", str(port), "-h", "127.0.0.1"]
        while time.monotonic() < deadline:
            self._check_alive()
            if subprocess.run(check, env=env, cwd=self.cwd, capture_output=True, timeout=120).returncode == 0:
                return
            time.sleep(1.0)
        raise TopologyError(f"the code server did not answer within {timeout_s:.0f} s:\n{self.log_tail('code-server')}")

    def _check_alive(self) -> None:
        dead = [name for name, alive in self.alive().items() if not alive]
        if dead:
            raise TopologyError(f"{', '.join(dead)} exited:\n" + "\n".join(self.log_tail(name) for name in dead))

    def wait_ready(self, timeout_s: float = 600.0) -> None:
        """The webserver answers with the code location loaded, the daemons are healthy, the workers answer."""
        client = WebserverClient(self.url)
        deadline = time.monotonic() + timeout_s
        waiting = "the webserver"
        try:
            while time.monotonic() < deadline:
                self._check_alive()
                try:
                    if not client.answers():
                        waiting = "the webserver"
                    elif client.loaded_location() is None:
                        waiting = "the code location"
                    elif unhealthy := client.unhealthy_daemons():
                        waiting = f"the daemons {', '.join(unhealthy)}"
                    elif (answered := len(self.ping_workers())) < self.workers:
                        waiting = f"the Celery workers ({answered}/{self.workers} answer)"
                    else:
                        return
                except WebserverError:
                    raise
                except Exception as exc:
                    waiting = f"{waiting} ({exc!r})"
                time.sleep(1.0)
        finally:
            client.close()
        raise TopologyError(f"not ready after {timeout_s:.0f} s: waiting for {waiting}")

    def ping_workers(self) -> list[str]:
        """The names of the Celery workers that answer a ping."""
        from dagster_celery.make_app import make_app

        app = make_app({"broker": self.broker_url, "backend": scale_out.BACKEND})
        try:
            answers = app.control.ping(timeout=1.0) or []
        finally:
            app.close()
        return sorted(name for answer in answers for name in answer)

    # -- down -------------------------------------------------------------------------------------
    def down(self, grace_s: float = 10.0) -> list[int]:
        """SIGTERM every group, SIGKILL after ``grace_s``, then every marked process; the survivors."""
        state = self.state()
        if state is None:
            return []
        pids = list(state.get("processes", {}).values())
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline and any(process_alive(pid) for pid in pids):
            time.sleep(0.2)
        survivors: set[int] = set()
        for pid in pids:
            survivors.update(processes.kill_all(state["marker"], pgid=pid))
        survivors.update(processes.kill_all(state["marker"]))
        if not survivors:
            self.state_path.unlink(missing_ok=True)
        return sorted(survivors)

    def log_tail(self, name: str, lines: int = 40) -> str:
        path = self.logs / f"{name}.log"
        try:
            text = path.read_text(errors="replace")
        except OSError:
            text = ""
        return f"--- {path} (last {lines} lines) ---\n" + "\n".join(text.splitlines()[-lines:])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ingestion_platform.prod", description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=("up", "down", "status"))
    parser.add_argument("--dir", type=Path, default=Path(".prod"), help="logs, pids, instance, data (default .prod)")
    parser.add_argument("--dagster-pg-url", default=DEFAULT_DAGSTER_DB, help="Dagster storage (DAGSTER_PG_URL)")
    parser.add_argument("--warehouse-url", default=DEFAULT_WAREHOUSE_DB, help="warehouse (INGESTION_DATABASE_URL)")
    parser.add_argument("--broker-url", default=scale_out.BROKER_URL.default, help="DAGSTER_CELERY_BROKER_URL")
    parser.add_argument("--workers", type=int, default=2, help="Celery worker processes")
    parser.add_argument("--worker-concurrency", type=int, default=1, help="steps at once per worker")
    parser.add_argument("--host", default="127.0.0.1", help="webserver host")
    parser.add_argument("--port", type=int, default=3000, help="webserver port")
    parser.add_argument("--env-file", type=Path, default=None, help="a .env whose values the processes get")
    parser.add_argument("--grace", type=float, default=10.0, help="seconds between SIGTERM and SIGKILL on down")
    args = parser.parse_args(argv)
    topology = Topology(
        args.dir, args.dagster_pg_url, args.warehouse_url, args.broker_url, args.workers, args.worker_concurrency,
        args.host, args.port, args.env_file,
    )  # fmt: skip
    try:
        if args.command == "up":
            state = topology.up()
            for name, pid in state["processes"].items():
                print(f"{name:12} pid {pid:>7}  log {topology.logs / (name + '.log')}")
            print(
                f"UI: {state['url']}  (stop: make prod-down; python -m ingestion_platform.prod down --dir {args.dir})"
            )
        elif args.command == "down":
            survivors = topology.down(args.grace)
            if survivors:
                print("processes survived:\n" + processes.describe(survivors), file=sys.stderr)
                return 1
            print(f"stopped the topology of {topology.root}")
        else:
            alive = topology.alive()
            if not alive:
                print(f"no topology in {topology.root}")
                return 1
            for name, running in alive.items():
                print(f"{name:12} {'running' if running else 'STOPPED'}")
            return 0 if all(alive.values()) else 1
    except TopologyError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
