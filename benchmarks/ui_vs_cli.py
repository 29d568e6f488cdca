"""The PMU sample day through the CLI and through the UI (``dagster dev``), side by side.

Not part of the test run. Usage (from the repository root, with the project installed: ``make install``)::

    .venv/bin/python benchmarks/ui_vs_cli.py                   # 3 repetitions of every variant (make bench-ui)
    .venv/bin/python benchmarks/ui_vs_cli.py --repeat 1 --no-rerun
    .venv/bin/python benchmarks/ui_vs_cli.py --variants cli-in-process,ui

The day is the offline sample (``PMU_API_BASE_URL=file://<repo>/ingestion_platform/defs/pmu/sample``,
2025-03-14), every asset of group ``pmu`` and their checks, on a SQLite warehouse in a fresh
``INGESTION_DATA_DIR`` (``INGESTION_DATABASE_URL`` is removed from the children's environment).

Variants:

cli-in-process  ``dagster asset materialize -m ingestion_platform.definitions --select group:pmu
                --partition DAY --config-json '{"execution": {"config": {"in_process": {}}}}'``
                as a subprocess (what ``make demo`` runs); wall time of the subprocess.
cli-default     the same command without executor config: the code location's default executor.
ui              ``dagster dev -m ingestion_platform.definitions -p PORT`` (webserver + daemon; the
                instance's run coordinator queues runs) on a fresh DAGSTER_HOME holding a copy of
                the repository's ``dagster.yaml``, started once, then for each measurement the run
                the UI launches for "Materialize all" of group pmu with one partition selected: the
                partition's run config and tags (``ConfigPartitionForAssetJobQuery``), then
                ``launchPipelineExecution`` of ``__ASSET_JOB`` with the group's assets and checks,
                tags ``dagster/partition`` and ``dagster/from_ui``, and no executor config. Measured:
                submit (the mutation) to SUCCESS seen by polling every 0.25 s, and the run's own
                start-to-end time from its run record.

Every variant runs a fresh data directory ("first"), then the same day again on it ("re-run", the
idempotent re-run). The variants are interleaved, in reverse order on every other repetition, so the
machine's noise hits all of them. The CLI runs use their own fresh DAGSTER_HOME (the same
``dagster.yaml``); ``dagster dev`` stays up the whole time, so its idle load (printed) hits the CLI runs
too. ``dagster dev`` ignores SIGTERM/SIGINT: it is started in its own session and its process group,
then any survivor carrying this benchmark's marker variable (code servers, ``dagster api grpc``,
``dagster api execute_run``), are killed at the end, also on error.

For each run the event log gives the number of steps (STEP_START events) and of processes that
ran them (distinct pids), which is what the multiprocess executor costs: one Python process that
imports Dagster and loads the definitions per step. ``CPU s`` is user + system CPU of the CLI
subprocess and its children, or of the whole ``dagster dev`` tree during the UI run.

The exit status is 1 when a measurement failed or the UI (first run, submit to success) is more
than 2x the in-process CLI's wall time.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import datetime as dt
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
SAMPLE = REPO_ROOT / "ingestion_platform" / "defs" / "pmu" / "sample"
MODULE = "ingestion_platform.definitions"
GROUP = "pmu"
DAY = "2025-03-14"
ASSET_JOB = "__ASSET_JOB"
IN_PROCESS = '{"execution": {"config": {"in_process": {}}}}'
BIN = Path(sys.executable).parent
#: every process this script starts carries this variable (value: one id per invocation), so that
#: survivors can be found and killed by pid at the end
TOKEN_VAR = "INGESTION_BENCH_TOKEN"
POLL_S = 0.25
TARGET_RATIO = 2.0

VARIANTS = ("cli-in-process", "cli-default", "ui")
LABELS = {
    "cli-in-process": "CLI, in_process executor",
    "cli-default": "CLI, location's default executor",
    "ui": "UI (dagster dev), submit -> success",
}
PHASES = ("first", "re-run")
LEGEND = """\
wall s: the CLI subprocess; for the UI, the launch mutation until SUCCESS is seen (polled every 0.25 s).
run s: the run record's start -> end. queue s: created -> started (queued, dequeued by the daemon, launched
by the code server, run worker up). steps: STEP_START events; step pids: distinct processes that ran them.
CPU s: user + system of the CLI and its children, or of the whole dagster dev tree during the UI run."""


# -- GraphQL: what the UI sends ----------------------------------------------------------------------
WORKSPACE_QUERY = """
query BenchWorkspace {
  workspaceOrError {
    __typename
    ... on Workspace {
      locationEntries {
        name
        loadStatus
        locationOrLoadError {
          __typename
          ... on RepositoryLocation { name repositories { name } }
          ... on PythonError { message }
        }
      }
    }
    ... on PythonError { message }
  }
  instance {
    runQueuingSupported
    daemonHealth { daemonStatus(daemonType: "QUEUED_RUN_COORDINATOR") { healthy required } }
  }
}
"""

ASSET_NODES_QUERY = """
query BenchGroupAssets($group: AssetGroupSelector!) {
  assetNodes(group: $group) {
    assetKey { path }
    jobNames
    assetChecksOrError {
      __typename
      ... on AssetChecks { checks { name jobNames } }
    }
  }
}
"""

# The query the partition dialog sends when "Launch 1 run" is clicked (ConfigPartitionForAssetJobQuery).
PARTITION_CONFIG_QUERY = """
query BenchPartitionConfig(
  $repositoryName: String!
  $repositoryLocationName: String!
  $jobName: String!
  $partitionName: String!
  $assetKeys: [AssetKeyInput!]!
) {
  pipelineOrError(
    params: {pipelineName: $jobName, repositoryName: $repositoryName, repositoryLocationName: $repositoryLocationName}
  ) {
    __typename
    ... on Pipeline {
      partition(partitionName: $partitionName, selectedAssetKeys: $assetKeys) {
        name
        runConfigOrError { __typename ... on PartitionRunConfig { yaml } ... on PythonError { message } }
        tagsOrError { __typename ... on PartitionTags { results { key value } } ... on PythonError { message } }
      }
    }
    ... on PythonError { message }
  }
}
"""

LAUNCH_MUTATION = """
mutation BenchLaunch($executionParams: ExecutionParams!) {
  launchPipelineExecution(executionParams: $executionParams) {
    __typename
    ... on LaunchRunSuccess { run { runId status } }
    ... on PythonError { message stack }
    ... on InvalidSubsetError { message }
    ... on RunConfigValidationInvalid { errors { message } }
    ... on PipelineNotFoundError { message }
    ... on UnauthorizedError { message }
  }
}
"""

RUN_STATUS_QUERY = """
query BenchRunStatus($runId: ID!) {
  runOrError(runId: $runId) {
    __typename
    ... on Run { status startTime endTime }
    ... on PythonError { message }
  }
}
"""

QUERIES = {
    "workspace": WORKSPACE_QUERY,
    "asset_nodes": ASSET_NODES_QUERY,
    "partition_config": PARTITION_CONFIG_QUERY,
    "launch": LAUNCH_MUTATION,
    "run_status": RUN_STATUS_QUERY,
}


def ui_tags(tags: Iterable[dict[str, str]]) -> list[dict[str, str]]:
    """The partition's tags plus the tag every UI launch adds (``dagster/from_ui``)."""
    kept = [{"key": t["key"], "value": t["value"]} for t in tags if t["key"] != "dagster/from_ui"]
    return [*kept, {"key": "dagster/from_ui", "value": "true"}]


def execution_params(
    location: str,
    repository: str,
    job: str,
    asset_nodes: Sequence[dict[str, Any]],
    partition_tags: Iterable[dict[str, str]],
    run_config_yaml: str,
) -> dict[str, Any]:
    """``executionParams`` of the UI's single-partition launch: the assets, their checks in ``job``, tags."""
    checks = []
    for node in asset_nodes:
        found = node.get("assetChecksOrError") or {}
        if found.get("__typename") != "AssetChecks":
            continue
        for check in found["checks"]:
            if not check.get("jobNames") or job in check["jobNames"]:
                checks.append({"name": check["name"], "assetKey": {"path": list(node["assetKey"]["path"])}})
    return {
        "mode": "default",
        "executionMetadata": {"tags": ui_tags(partition_tags)},
        "runConfigData": run_config_yaml,
        "selector": {
            "repositoryLocationName": location,
            "repositoryName": repository,
            "pipelineName": job,
            "assetSelection": [{"path": list(n["assetKey"]["path"])} for n in asset_nodes],
            "assetCheckSelection": checks,
        },
    }


class GraphQLError(RuntimeError):
    pass


class GraphQL:
    def __init__(self, url: str, timeout: float = 60.0) -> None:
        import httpx

        self.url = url
        self.http = httpx.Client(timeout=timeout)

    def __call__(self, query: str, **variables: Any) -> dict[str, Any]:
        response = self.http.post(self.url, json={"query": query, "variables": variables})
        response.raise_for_status()
        body = response.json()
        if body.get("errors"):
            raise GraphQLError("; ".join(e.get("message", str(e)) for e in body["errors"]))
        return body["data"]

    def close(self) -> None:
        self.http.close()


# -- processes -------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def marked_pids(token: str) -> list[int]:
    """Pids of live processes whose environment carries ``TOKEN_VAR=token`` (this invocation's children)."""
    needle = f"{TOKEN_VAR}={token}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:  # gone, or another user's
            continue
        if state != "Z" and needle in environ.split(b"\0"):
            found.append(int(entry.name))
    return sorted(found)


def cpu_seconds(pids: Iterable[int]) -> float:
    """utime + stime + the reaped children's (cutime + cstime) of ``pids``, in seconds."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += sum(int(f) for f in fields[11:15])  # fields 14-17 of proc(5): utime stime cutime cstime
    return total / tick


def _group_and_command(pid: int) -> tuple[int, str] | None:
    try:
        pgid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[2])
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (OSError, ValueError, IndexError):
        return None
    words = [a.decode(errors="replace") for a in argv if a]
    # "python -m dagster api grpc ..." -> "dagster api grpc", "python .../bin/dagster dev" -> "dagster dev"
    if len(words) > 1 and Path(words[0]).name.startswith("python"):
        words = words[2:] if words[1] == "-m" else words[1:]
    return pgid, " ".join(Path(w).name if i == 0 else w for i, w in enumerate(words[:4]))


def kill_marked(token: str, group: int | None = None, patience_s: float = 10.0) -> dict[int, str]:
    """SIGKILL process group ``group`` (if any), then every process still carrying the token.

    Returns the processes that had left the group (or all, without a group) and had to be killed: pid -> command.
    """
    survivors: dict[int, str] = {}
    if group is not None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(group, signal.SIGKILL)
        time.sleep(0.3)
    deadline = time.monotonic() + patience_s
    while True:
        left = marked_pids(token)
        if not left or time.monotonic() > deadline:
            return survivors
        for pid in left:
            info = _group_and_command(pid)
            if info is not None and info[0] != group:
                survivors.setdefault(pid, info[1])
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.2)


@dataclass
class Cleanup:
    """Kills what this invocation started, once: at the end, on error, at exit, on SIGTERM/SIGHUP."""

    token: str
    groups: list[int] = field(default_factory=list)
    popens: list[subprocess.Popen] = field(default_factory=list)
    done: bool = False

    def __call__(self) -> dict[int, str]:
        if self.done:
            return {}
        self.done = True
        survivors: dict[int, str] = {}
        for group in self.groups:
            survivors |= kill_marked(self.token, group)
        survivors |= kill_marked(self.token)
        for popen in self.popens:
            with contextlib.suppress(Exception):
                popen.wait(timeout=5)
        return survivors


def _raise_exit(signum: int, _frame: Any) -> None:
    raise SystemExit(128 + signum)


# -- environments ----------------------------------------------------------------------------------
def child_env(token: str, home: Path, data_dir: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("INGESTION_DATABASE_URL", None)  # the warehouse is SQLite in the fresh data dir
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
    env["PMU_API_BASE_URL"] = f"file://{SAMPLE}"
    env["DAGSTER_HOME"] = str(home)
    env["INGESTION_DATA_DIR"] = str(data_dir)
    env[TOKEN_VAR] = token
    return env


def make_workdir(tmp: Path) -> Path:
    """The children's working directory: empty, so that no ``.env`` is loaded.

    Dagster's CLI (``dagster dev``, ``dagster asset materialize``) loads ``.env`` from its working directory and lets
    it override the environment: the repository's ``.env`` could point the runs at another data dir, warehouse or
    API. The code is imported through PYTHONPATH instead.
    """
    path = tmp / "cwd"
    path.mkdir(exist_ok=True)
    return path


def make_home(path: Path, token: str, cwd: Path) -> Path:
    """A fresh DAGSTER_HOME with a copy of the repository's dagster.yaml, migrated."""
    path.mkdir(parents=True)
    shutil.copy(REPO_ROOT / "dagster.yaml", path / "dagster.yaml")
    subprocess.run(
        [str(BIN / "dagster"), "instance", "migrate"],
        env=child_env(token, path, path / "unused-data"),
        cwd=cwd,
        check=True,
        capture_output=True,
        timeout=300,
    )
    return path


def reset_dir(path: Path) -> Path:
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


def cli_command(in_process: bool, day: str = DAY) -> list[str]:
    cmd = [str(BIN / "dagster"), "asset", "materialize", "-m", MODULE, "--select", f"group:{GROUP}"]
    cmd += ["--partition", day]
    return [*cmd, "--config-json", IN_PROCESS] if in_process else cmd


# -- measurements ----------------------------------------------------------------------------------
@dataclass
class Measurement:
    variant: str
    phase: str  # "first" (fresh data dir) or "re-run" (the same day again)
    rep: int
    wall_s: float | None = None
    run_s: float | None = None  # run record: start_time -> end_time
    queue_s: float | None = None  # run record: created -> started
    steps: int | None = None
    step_pids: int | None = None
    cpu_s: float | None = None
    run_id: str | None = None
    error: str | None = None


def run_facts(home: Path, run_id: str) -> dict[str, Any]:
    """From the run's record and event log: times, status, steps, processes that ran steps."""
    import dagster as dg

    instance = dg.DagsterInstance.from_config(str(home))
    try:
        record = instance.get_run_record_by_id(run_id)
        if record is None:
            raise RuntimeError(f"run {run_id} not found in {home}")
        starts = instance.all_logs(run_id, of_type=dg.DagsterEventType.STEP_START)
        pids = {e.dagster_event.pid for e in starts if e.dagster_event is not None}
        start, end, created = record.start_time, record.end_time, record.create_timestamp.timestamp()
        return {
            "status": record.dagster_run.status.value,
            "run_s": None if start is None or end is None else end - start,
            "queue_s": None if start is None else start - created,
            "steps": len(starts),
            "step_pids": len(pids),
        }
    finally:
        instance.dispose()


def latest_run_id(home: Path) -> str | None:
    import dagster as dg

    instance = dg.DagsterInstance.from_config(str(home))
    try:
        records = instance.get_run_records(limit=1)
        return records[0].dagster_run.run_id if records else None
    finally:
        instance.dispose()


def _tail(path: Path, lines: int = 12) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def measure_cli(
    variant: str, phase: str, rep: int, home: Path, data_dir: Path, token: str, log: Path, timeout: float, cwd: Path
) -> Measurement:
    m = Measurement(variant, phase, rep)
    before_id = latest_run_id(home)
    usage = os.times()
    with log.open("w") as out:
        started = time.perf_counter()
        proc = subprocess.Popen(
            cli_command(variant == "cli-in-process"),
            env=child_env(token, home, data_dir),
            cwd=cwd,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            code = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)  # its own session: the CLI and its step processes
            proc.wait()
            m.error = f"timed out after {timeout:.0f} s (log {log})"
            return m
        m.wall_s = time.perf_counter() - started
    after = os.times()
    m.cpu_s = (after.children_user - usage.children_user) + (after.children_system - usage.children_system)
    run_id = latest_run_id(home)
    if code != 0:
        m.error = f"exit {code} (log {log}):\n{_tail(log)}"
    if run_id is None or run_id == before_id:
        m.error = m.error or f"no new run in {home}"
        return m
    m.run_id = run_id
    facts = run_facts(home, run_id)
    m.run_s, m.steps, m.step_pids = facts["run_s"], facts["steps"], facts["step_pids"]
    if facts["status"] != "SUCCESS" and m.error is None:
        m.error = f"run {run_id} ended {facts['status']} (log {log})"
    return m


@dataclass
class DagsterDev:
    """``dagster dev`` on a fresh home and data dir, its code location loaded."""

    home: Path
    data_dir: Path
    token: str
    log: Path
    cleanup: Cleanup
    cwd: Path
    port: int = 0
    popen: subprocess.Popen | None = None
    gql: GraphQL | None = None
    location: str = ""
    repository: str = ""
    asset_nodes: list[dict[str, Any]] = field(default_factory=list)
    ready_s: float = 0.0

    def start(self, timeout: float) -> None:
        self.port = self.port or free_port()
        started = time.perf_counter()
        with self.log.open("w") as out:
            self.popen = subprocess.Popen(
                [str(BIN / "dagster"), "dev", "-m", MODULE, "-p", str(self.port)],
                env=child_env(self.token, self.home, self.data_dir),
                cwd=self.cwd,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.cleanup.groups.append(self.popen.pid)
        self.cleanup.popens.append(self.popen)
        self.gql = GraphQL(f"http://127.0.0.1:{self.port}/graphql")
        self._wait_loaded(timeout)
        self.ready_s = time.perf_counter() - started

    def _wait_loaded(self, timeout: float) -> None:
        import httpx

        assert self.popen is not None and self.gql is not None
        deadline = time.monotonic() + timeout
        last = "webserver not answering"
        while time.monotonic() < deadline:
            if self.popen.poll() is not None:
                raise RuntimeError(f"dagster dev exited {self.popen.returncode}:\n{_tail(self.log)}")
            try:
                data = self.gql(WORKSPACE_QUERY)
            except (httpx.HTTPError, GraphQLError, ValueError) as exc:
                last = str(exc) or type(exc).__name__
                time.sleep(0.5)
                continue
            entries = (data["workspaceOrError"] or {}).get("locationEntries") or []
            loaded = [e for e in entries if e["loadStatus"] == "LOADED"]
            errors = [e for e in loaded if e["locationOrLoadError"]["__typename"] == "PythonError"]
            if errors:
                raise RuntimeError(f"code location failed to load: {errors[0]['locationOrLoadError']['message']}")
            daemon = data["instance"]["daemonHealth"]["daemonStatus"]
            if entries and len(loaded) == len(entries) and daemon["healthy"]:
                location = loaded[0]["locationOrLoadError"]
                self.location, self.repository = loaded[0]["name"], location["repositories"][0]["name"]
                self.asset_nodes = self._group_nodes()
                return
            last = f"locations {[(e['name'], e['loadStatus']) for e in entries]}, run queue daemon {daemon}"
            time.sleep(0.5)
        raise RuntimeError(f"dagster dev not ready after {timeout:.0f} s: {last}\n{_tail(self.log)}")

    def _group_nodes(self) -> list[dict[str, Any]]:
        assert self.gql is not None
        group = {"groupName": GROUP, "repositoryName": self.repository, "repositoryLocationName": self.location}
        nodes = self.gql(ASSET_NODES_QUERY, group=group)["assetNodes"]
        if not nodes:
            raise RuntimeError(f"no asset in group {GROUP!r} of {self.location}")
        missing = [n["assetKey"]["path"] for n in nodes if ASSET_JOB not in n["jobNames"]]
        if missing:
            raise RuntimeError(f"{missing} not in {ASSET_JOB}: the UI would not launch one run")
        return nodes

    def launch_params(self, day: str) -> dict[str, Any]:
        """What "Launch 1 run" fetches and sends: the partition's config and tags, then executionParams."""
        assert self.gql is not None
        data = self.gql(
            PARTITION_CONFIG_QUERY,
            repositoryName=self.repository,
            repositoryLocationName=self.location,
            jobName=ASSET_JOB,
            partitionName=day,
            assetKeys=[{"path": n["assetKey"]["path"]} for n in self.asset_nodes],
        )
        job = data["pipelineOrError"]
        if job["__typename"] != "Pipeline" or not job.get("partition"):
            raise RuntimeError(f"partition {day} of {ASSET_JOB}: {job}")
        config, tags = job["partition"]["runConfigOrError"], job["partition"]["tagsOrError"]
        if config["__typename"] != "PartitionRunConfig" or tags["__typename"] != "PartitionTags":
            raise RuntimeError(f"partition {day}: {config} {tags}")
        return execution_params(
            self.location, self.repository, ASSET_JOB, self.asset_nodes, tags["results"], config["yaml"]
        )

    def measure(self, phase: str, rep: int, day: str, timeout: float) -> Measurement:
        assert self.gql is not None
        m = Measurement("ui", phase, rep)
        params = self.launch_params(day)
        cpu_before = cpu_seconds(marked_pids(self.token))
        started = time.perf_counter()
        launched = self.gql(LAUNCH_MUTATION, executionParams=params)["launchPipelineExecution"]
        if launched["__typename"] != "LaunchRunSuccess":
            m.error = f"launch: {json.dumps(launched)[:2000]}"
            return m
        m.run_id = run_id = launched["run"]["runId"]
        deadline = time.monotonic() + timeout
        status = launched["run"]["status"]
        while status not in ("SUCCESS", "FAILURE", "CANCELED"):
            if time.monotonic() > deadline:
                m.error = f"run {run_id} still {status} after {timeout:.0f} s"
                return m
            time.sleep(POLL_S)
            status = self.gql(RUN_STATUS_QUERY, runId=run_id)["runOrError"]["status"]
        m.wall_s = time.perf_counter() - started
        m.cpu_s = cpu_seconds(marked_pids(self.token)) - cpu_before
        facts = run_facts(self.home, run_id)
        m.run_s, m.queue_s, m.steps, m.step_pids = facts["run_s"], facts["queue_s"], facts["steps"], facts["step_pids"]
        if status != "SUCCESS":
            m.error = f"run {run_id} ended {status} (dagster dev log {self.log})"
        return m

    def idle_cpu(self, seconds: float) -> float:
        """CPU share (of one core) the idle dagster dev tree uses over ``seconds``."""
        before = cpu_seconds(marked_pids(self.token))
        time.sleep(seconds)
        return (cpu_seconds(marked_pids(self.token)) - before) / seconds


# -- report ----------------------------------------------------------------------------------------
def table_text(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [[str(h) for h in headers], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]

    def fmt(row: list[str]) -> str:
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True)))

    return "\n".join([fmt(cells[0]), "  ".join("-" * w for w in widths), *[fmt(r) for r in cells[1:]]])


def _median(values: Iterable[float | int | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return statistics.median(kept) if kept else None


def _secs(values: Sequence[float | None]) -> str:
    kept = [v for v in values if v is not None]
    if not kept:
        return "-"
    if len(kept) == 1:
        return f"{kept[0]:.1f}"
    return f"{statistics.median(kept):.1f} [{min(kept):.1f}-{max(kept):.1f}]"


def _count(values: Sequence[int | None]) -> str:
    kept = sorted({v for v in values if v is not None})
    return "/".join(str(v) for v in kept) or "-"


def _ok(ms: Sequence[Measurement]) -> list[Measurement]:
    return [m for m in ms if m.error is None]


def select(ms: Sequence[Measurement], variant: str, phase: str) -> list[Measurement]:
    return [m for m in ms if m.variant == variant and m.phase == phase]


def summary_table(ms: Sequence[Measurement]) -> str:
    rows = []
    for variant in VARIANTS:
        for phase in PHASES:
            group = select(ms, variant, phase)
            if not group:
                continue
            ok = _ok(group)
            rows.append(
                [
                    LABELS[variant],
                    phase,
                    f"{len(ok)}/{len(group)}",
                    _secs([m.wall_s for m in ok]),
                    _secs([m.run_s for m in ok]),
                    _secs([m.queue_s for m in ok]) if variant == "ui" else "-",
                    _count([m.steps for m in ok]),
                    _count([m.step_pids for m in ok]),
                    _secs([m.cpu_s for m in ok]),
                ]
            )
    headers = ["variant", "day", "ok", "wall s", "run s", "queue s", "steps", "step pids", "CPU s"]
    return table_text(headers, rows)


def ratio(ms: Sequence[Measurement], num: str, den: str, phase: str, attr: str = "wall_s") -> float | None:
    top = _median(getattr(m, attr) for m in _ok(select(ms, num, phase)))
    bottom = _median(getattr(m, attr) for m in _ok(select(ms, den, phase)))
    return None if top is None or not bottom else top / bottom


def ratio_rows(ms: Sequence[Measurement]) -> list[list[str]]:
    def cell(value: float | None) -> str:
        return "-" if value is None else f"{value:.2f}x"

    specs = [
        ("UI submit->success / CLI in_process wall", "ui", "cli-in-process", "wall_s", True),
        ("UI run start->end / CLI in_process run start->end", "ui", "cli-in-process", "run_s", False),
        ("UI submit->success / CLI default-executor wall", "ui", "cli-default", "wall_s", False),
        ("CLI default-executor / CLI in_process wall", "cli-default", "cli-in-process", "wall_s", False),
        # CPU seconds hardly move with the machine's load, where wall times do
        ("UI CPU / CLI in_process CPU", "ui", "cli-in-process", "cpu_s", False),
    ]
    rows = []
    for name, num, den, attr, target in specs:
        values = [ratio(ms, num, den, phase, attr) for phase in PHASES]
        if all(v is None for v in values):
            continue
        note = ""
        if target and values[0] is not None:
            note = f"target <= {TARGET_RATIO:g}x: {'met' if values[0] <= TARGET_RATIO else 'MISSED'}"
        rows.append([name, *(cell(v) for v in values), note])
    return rows


def ratio_table(ms: Sequence[Measurement]) -> str:
    return table_text(["ratio of medians", *PHASES, ""], ratio_rows(ms))


def target_met(ms: Sequence[Measurement]) -> bool | None:
    value = ratio(ms, "ui", "cli-in-process", "first")
    return None if value is None else value <= TARGET_RATIO


def measurement_line(m: Measurement) -> str:
    def f(value: float | None, unit: str = "s") -> str:
        return "-" if value is None else f"{value:.1f}{unit}"

    text = f"  rep {m.rep + 1} {m.variant:<15} {m.phase:<7} wall {f(m.wall_s)}  run {f(m.run_s)}"
    if m.variant == "ui":
        text += f"  queue {f(m.queue_s)}"
    text += f"  steps {m.steps if m.steps is not None else '-'} in {m.step_pids if m.step_pids is not None else '-'}"
    text += f" processes  CPU {f(m.cpu_s)}"
    return text + (f"\n    ERROR {m.error}" if m.error else "")


def schedule(variants: Sequence[str], repeat: int, rerun: bool) -> list[tuple[int, str, str]]:
    """(rep, variant, phase) in run order: variants interleaved, reversed every other repetition."""
    order = []
    for rep in range(repeat):
        for variant in variants if rep % 2 == 0 else list(reversed(variants)):
            order.append((rep, variant, "first"))
            if rerun:
                order.append((rep, variant, "re-run"))
    return order


# -- main ------------------------------------------------------------------------------------------
def say(text: str = "") -> None:
    print(text, flush=True)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3, help="measurements per variant and phase (default 3)")
    parser.add_argument(
        "--variants", default=",".join(VARIANTS), help=f"comma-separated, of {', '.join(VARIANTS)} (default all)"
    )
    parser.add_argument("--no-rerun", action="store_true", help="skip the idempotent re-run of each measurement")
    parser.add_argument("--day", default=DAY, help=f"partition (default {DAY}, the shipped sample)")
    parser.add_argument("--port", type=int, default=0, help="dagster dev port (default: a free one)")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds per run before it counts as failed")
    parser.add_argument("--start-timeout", type=float, default=300.0, help="seconds for dagster dev to be ready")
    parser.add_argument("--idle-s", type=float, default=5.0, help="seconds to sample dagster dev's idle CPU")
    parser.add_argument("--keep-temp", action="store_true", help="keep the temporary homes, data dirs and logs")
    args = parser.parse_args(argv)
    args.variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = sorted(set(args.variants) - set(VARIANTS))
    if unknown or not args.variants:
        parser.error(f"unknown variants {unknown}; choose from {', '.join(VARIANTS)}")
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    return args


def package_imported(env: dict[str, str], cwd: Path) -> str:
    code = "import ingestion_platform; print(ingestion_platform.__file__)"
    proc = subprocess.run([sys.executable, "-c", code], env=env, cwd=cwd, capture_output=True, text=True)
    return proc.stdout.strip() or proc.stderr.strip()[-300:]


def run(args: argparse.Namespace, tmp: Path, cleanup: Cleanup, progress: Callable[[str], None]) -> list[Measurement]:
    token = cleanup.token
    cwd = make_workdir(tmp)
    measurements: list[Measurement] = []
    cli_home = make_home(tmp / "cli-home", token, cwd) if any(v.startswith("cli") for v in args.variants) else None
    dev = None
    if "ui" in args.variants:
        home = make_home(tmp / "ui-home", token, cwd)
        dev = DagsterDev(home, tmp / "ui-data", token, tmp / "dagster-dev.log", cleanup, cwd, args.port)
        reset_dir(dev.data_dir)
        dev.start(args.start_timeout)
        idle = dev.idle_cpu(args.idle_s)
        progress(
            f"dagster dev on port {dev.port}: location {dev.location!r} ready in {dev.ready_s:.1f} s; "
            f"{len(dev.asset_nodes)} assets in group {GROUP}; idle CPU {idle * 100:.0f} % of a core"
        )
    for rep, variant, phase in schedule(args.variants, args.repeat, not args.no_rerun):
        if variant == "ui":
            assert dev is not None
            if phase == "first":
                reset_dir(dev.data_dir)  # the code location's processes read INGESTION_DATA_DIR at run time
            try:
                m = dev.measure(phase, rep, args.day, args.timeout)
            except Exception as exc:  # one failed measurement does not end the benchmark
                m = Measurement(variant, phase, rep, error=f"{type(exc).__name__}: {exc}")
        else:
            assert cli_home is not None
            data_dir = tmp / "data" / f"{variant}-{rep}"
            if phase == "first":
                reset_dir(data_dir)
            log = tmp / "logs" / f"{variant}-{rep}-{phase}.log"
            log.parent.mkdir(exist_ok=True)
            m = measure_cli(variant, phase, rep, cli_home, data_dir, token, log, args.timeout, cwd)
        measurements.append(m)
        progress(measurement_line(m))
    return measurements


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    import ingestion_platform

    token = uuid.uuid4().hex
    cleanup = Cleanup(token)
    atexit.register(cleanup)
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _raise_exit)
    tmp = Path(tempfile.mkdtemp(prefix="ui_vs_cli-"))
    started = time.perf_counter()
    say(f"ui_vs_cli  {dt.datetime.now():%Y-%m-%d %H:%M}  python {sys.version.split()[0]}  dagster {_dagster_version()}")
    say(f"host: {os.cpu_count()} CPUs, load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    say(f"this process imports {Path(ingestion_platform.__file__).parent}")
    env = child_env(token, tmp, tmp)
    say(f"the children import {package_imported(env, make_workdir(tmp))}")
    say(f"the children run in an empty directory: no .env is loaded{_dotenv_note()}")
    executor = env.get("INGESTION_EXECUTOR")
    executor = f"={executor}" if executor else " unset"
    say(f"INGESTION_EXECUTOR{executor} (inherited: the location's default executor, of cli-default and ui)")
    say(f"day {args.day} of {SAMPLE}, group {GROUP}; {args.repeat} repetition(s); variants {', '.join(args.variants)}")
    say(f"temporary directory {tmp}")
    say()
    measurements: list[Measurement] = []
    failure = None
    try:
        measurements = run(args, tmp, cleanup, say)
    except Exception as exc:
        failure = f"{type(exc).__name__}: {exc}"
        say(f"ERROR {failure}")
    finally:
        survivors = cleanup()
        if survivors:
            listed = "; ".join(f"{pid} {cmd}" for pid, cmd in sorted(survivors.items()))
            say(f"killed {len(survivors)} process(es) outside dagster dev's process group: {listed}")
        left = marked_pids(token)
        if left:
            say(f"WARNING processes still alive: {left}")
    say()
    if measurements:
        say(f"== medians [min-max] over {args.repeat} repetition(s), seconds ==")
        say(summary_table(measurements))
        say()
        say(ratio_table(measurements))
        say()
        say(LEGEND)
    say(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}; total {time.perf_counter() - started:.0f} s")
    if args.keep_temp or failure or any(m.error for m in measurements):
        say(f"kept {tmp}")
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    met = target_met(measurements)
    return 1 if failure or any(m.error for m in measurements) or met is False else 0


def _dotenv_note() -> str:
    dotenv = REPO_ROOT / ".env"
    if not dotenv.exists():
        return ""
    names = [line.split("=", 1)[0].strip() for line in dotenv.read_text(errors="replace").splitlines()]
    names = [n for n in names if n and not n.startswith("#")]
    return f" ({dotenv} is ignored: {', '.join(names) or 'no settings'})"


def _dagster_version() -> str:
    from importlib.metadata import version

    return version("dagster")


if __name__ == "__main__":
    sys.exit(main())
