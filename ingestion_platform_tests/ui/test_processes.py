"""The teardown of the browser tests' servers: no process they started survives, wherever it went."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from ingestion_platform.lib import processes

# A parent that ignores SIGTERM and SIGINT (as dagster dev does here), with a child in its process
# group and a grandchild that left for a session of its own.
TREE = """
import os, signal, subprocess, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
signal.signal(signal.SIGINT, signal.SIG_IGN)
sleeper = [sys.executable, "-c", "import time; time.sleep(600)"]
subprocess.Popen(sleeper)
subprocess.Popen(sleeper, start_new_session=True)
print("ready", flush=True)
time.sleep(600)
"""


def test_kill_all_leaves_no_process_of_the_tree() -> None:
    marker = processes.new_marker()
    env = {**os.environ, processes.MARKER_VARIABLE: marker}
    proc = subprocess.Popen(
        [sys.executable, "-c", TREE], env=env, stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        deadline = time.monotonic() + 30
        while len(processes.marked_processes(marker, proc.pid)) < 3 and time.monotonic() < deadline:
            time.sleep(0.1)
        tree = processes.marked_processes(marker, proc.pid)
        assert len(tree) == 3, processes.describe(tree)
        assert any(os.getsid(pid) != os.getsid(proc.pid) for pid in tree)  # one escaped the session
        assert processes.kill_all(marker, root_pid=proc.pid, pgid=proc.pid) == []
        assert processes.marked_processes(marker) == []
    finally:
        processes.kill_all(marker, root_pid=proc.pid, pgid=proc.pid)
        proc.wait(timeout=30)
