"""Dagster's default run launcher, with the worker health check that run monitoring needs.

``DefaultRunLauncher`` starts each run in a process of the code server but cannot tell the
monitoring daemon whether that process is still alive, so a run whose process was killed (OOM
killer, ``kill -9``, a laptop going to sleep mid-run) stays ``STARTED`` forever and is never retried.
This launcher answers the health check from the process id Dagster itself logs when the run's
process starts (``Started process for run (pid: N)``): a process that is gone, or a zombie, means
the worker died. Run monitoring then marks the run failed, and run retries (``run_retries`` in
``dagster.yaml``) launch it again.

A run it did not launch (an in-process CLI run on the same instance) has no recorded process: it is
reported running, never failed (its own process reports how it ends).

It supports the topology it is used in: the code server and the daemon on one machine (the local
instance, and ``deploy/`` where they share a host). A cluster uses its own launcher (Kubernetes,
Docker), whose health checks are native.
"""

from __future__ import annotations

import os
from pathlib import Path

from dagster import DagsterEventType, DagsterRun, DefaultRunLauncher
from dagster._core.launcher import CheckRunHealthResult, WorkerStatus

_STARTED = "Started process for run"
_EXITED = "Process for run exited"


class MonitoredRunLauncher(DefaultRunLauncher):
    """``DefaultRunLauncher`` + ``check_run_worker_health`` (see the module docstring)."""

    @property
    def supports_check_run_worker_health(self) -> bool:
        return True

    def check_run_worker_health(self, run: DagsterRun) -> CheckRunHealthResult:
        pid, exited = self._worker_pid(run)
        if pid is None:
            # STARTED with no worker process recorded: a run this launcher did not start (the CLI's
            # ``dagster asset materialize`` and ``dg.materialize`` execute in their own process), or
            # its worker marked it started just before the launcher logged the pid. Either way nothing
            # says it died: answering anything but RUNNING would make run monitoring fail a live run.
            return CheckRunHealthResult(WorkerStatus.RUNNING, "no run worker process recorded (not launched here)")
        if exited:
            return CheckRunHealthResult(WorkerStatus.SUCCESS, f"run worker process {pid} exited")
        if process_alive(pid):
            return CheckRunHealthResult(WorkerStatus.RUNNING)
        return CheckRunHealthResult(
            WorkerStatus.FAILED, f"run worker process {pid} is gone (killed?) while the run is {run.status.value}"
        )

    def _worker_pid(self, run: DagsterRun) -> tuple[int | None, bool]:
        """The pid of the run's latest worker process, and whether it reported its own exit."""
        pid, exited = None, False
        for entry in self._instance.all_logs(run.run_id, of_type=DagsterEventType.ENGINE_EVENT):
            message = entry.dagster_event.message if entry.dagster_event else ""
            data = entry.dagster_event.event_specific_data if entry.dagster_event else None
            metadata = getattr(data, "metadata", None) or {}
            if message.startswith(_STARTED) and "pid" in metadata:
                pid, exited = int(metadata["pid"].value), False
            elif message.startswith(_EXITED) and pid is not None:
                exited = True
        return pid, exited


def process_alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, dead but not reaped by its parent, does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    stat = Path(f"/proc/{pid}/stat")
    try:
        state = stat.read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True  # no /proc (not Linux): the signal check is all there is
    return state not in ("Z", "X")
