"""What the code location gives UI runs: the executor, and the default state of the automation."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import dagster as dg
import pytest

from ingestion_platform.definitions import defs

PROBE = """
import json, warnings
warnings.simplefilter("ignore")
from ingestion_platform.definitions import defs
d = defs()
print(json.dumps({
    "schedules": {s.name: s.default_status.value for s in d.schedules},
    "sensors": {s.name: s.default_status.value for s in d.sensors},
    "executor": d.resolve_job_def("pmu_day_job").executor_def.name,
}))
"""


def _probe(**env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in ("INGESTION_AUTOMATION", "INGESTION_EXECUTOR")}
    return subprocess.run([sys.executable, "-c", PROBE], env={**clean, **env}, capture_output=True, text=True,
                          timeout=300)  # fmt: skip


def test_local_default_every_schedule_and_sensor_stopped_in_process_executor() -> None:
    done = _probe()
    assert done.returncode == 0, done.stderr[-3000:]
    shown = json.loads(done.stdout.strip().splitlines()[-1])
    assert shown["schedules"] and set(shown["schedules"].values()) == {"STOPPED"}
    assert shown["sensors"] and set(shown["sensors"].values()) == {"STOPPED"}
    assert shown["executor"] == "in_process_by_default"


def test_production_setting_starts_them_and_a_bad_value_is_named() -> None:
    done = _probe(INGESTION_AUTOMATION="running", INGESTION_EXECUTOR="multiprocess")
    assert done.returncode == 0, done.stderr[-3000:]
    shown = json.loads(done.stdout.strip().splitlines()[-1])
    assert set(shown["schedules"].values()) == {"RUNNING"} and set(shown["sensors"].values()) == {"RUNNING"}
    assert shown["executor"] == "multiprocess_by_default"
    bad = _probe(INGESTION_AUTOMATION="yes")
    assert bad.returncode != 0 and "INGESTION_AUTOMATION must be 'stopped' or 'running', not 'yes'" in bad.stderr


@pytest.mark.parametrize(
    "config",
    [{}, {"execution": {"config": {"in_process": {}}}}, {"execution": {"config": {"multiprocess": {}}}}],
)
def test_runs_can_still_choose_either_executor(config: dict) -> None:
    job = defs().resolve_job_def("pmu_day_job")
    chosen = dg.validate_run_config(job, config)["execution"]["in_process_by_default"]
    assert set(chosen) == ({"in_process"} if not config else set(config["execution"]["config"]))
