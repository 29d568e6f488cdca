"""Find and kill every process a test or the production topology started, whatever it became.

``dagster dev`` ignores SIGTERM and SIGINT here, and its children (``dagster code-server start``,
``dagster api grpc``, the run workers ``dagster api execute_run`` and their step processes) outlive
it when only it is killed. Each process the UI tests (and ``ingestion_platform.prod``) start gets a
marker in its environment, which every descendant inherits whatever session or process group it
moves to: the teardown kills the process group, then every process still carrying the marker, until
none is left.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
import uuid
from pathlib import Path

MARKER_VARIABLE = "INGESTION_PROCESS_MARKER"


def new_marker() -> str:
    return uuid.uuid4().hex


def _environ_has(pid: int, needle: bytes) -> bool:
    try:
        return needle in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:  # gone, or a zombie whose environment is no longer readable
        return False


def _parent_of(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # "pid (comm) state ppid ...": comm may hold spaces and parentheses, so split after the last ')'
    return int(stat.rsplit(")", 1)[1].split()[1])


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def _all_pids() -> list[int]:
    return [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()]


def marked_processes(marker: str, root_pid: int | None = None) -> list[int]:
    """Live processes carrying ``marker`` in their environment, plus the descendants of ``root_pid``."""
    needle = f"{MARKER_VARIABLE}={marker}".encode()
    me = os.getpid()
    pids = _all_pids()
    found = {pid for pid in pids if pid != me and _environ_has(pid, needle)}
    if root_pid is not None:
        children: dict[int, list[int]] = {}
        for pid in pids:
            parent = _parent_of(pid)
            if parent is not None:
                children.setdefault(parent, []).append(pid)
        todo = [root_pid]
        while todo:
            pid = todo.pop()
            if pid != me and pid not in found and Path(f"/proc/{pid}").exists():
                found.add(pid)
            todo.extend(children.get(pid, []))
    return sorted(pid for pid in found if not _is_zombie(pid))


def describe(pids: list[int]) -> str:
    lines = []
    for pid in pids:
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            cmd = "?"
        lines.append(f"  {pid}: {cmd[:200]}")
    return "\n".join(lines)


def kill_all(marker: str, root_pid: int | None = None, pgid: int | None = None, timeout_s: float = 30.0) -> list[int]:
    """SIGKILL the process group and every marked process until none is left; returns the survivors
    (empty unless a process could not be killed within ``timeout_s``)."""
    deadline = time.monotonic() + timeout_s
    while True:
        if pgid is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pgid, signal.SIGKILL)
        left = marked_processes(marker, root_pid)
        if not left:
            return []
        for pid in left:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        if time.monotonic() > deadline:
            return marked_processes(marker, root_pid)
        time.sleep(0.2)
