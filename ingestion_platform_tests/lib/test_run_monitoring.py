"""Run monitoring on the local and production instances: a run whose process was killed is failed.

Dagster's default launcher cannot tell the monitoring daemon whether a run's process is alive; the
platform's ``MonitoredRunLauncher`` answers from the pid Dagster logs when the process starts. These
tests use a real instance, a real process and Dagster's own monitoring function.
"""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest
import yaml
from dagster._core.events import EngineEventData
from dagster._core.launcher import WorkerStatus
from dagster._core.test_utils import create_run_for_test
from dagster._daemon.monitoring.run_monitoring import monitor_started_run

from ingestion_platform.lib.run_launcher import MonitoredRunLauncher, process_alive
from ingestion_platform_tests.conftest import REPO_ROOT

OVERRIDES = {
    "run_launcher": {"module": "ingestion_platform.lib.run_launcher", "class": "MonitoredRunLauncher"},
    "run_monitoring": {"enabled": True, "max_resume_run_attempts": 0, "poll_interval_seconds": 1},
}


@pytest.mark.parametrize("path", ["dagster.yaml", "deploy/dagster.yaml"])
def test_both_instances_monitor_runs_with_the_health_checking_launcher(path: str) -> None:
    config = yaml.safe_load((REPO_ROOT / path).read_text())
    assert config["run_launcher"] == OVERRIDES["run_launcher"]
    assert config["run_monitoring"]["enabled"] is True
    assert config["run_monitoring"]["max_resume_run_attempts"] == 0  # the default launcher cannot resume
    assert config["run_retries"]["enabled"] is True and config["run_retries"]["max_retries"] >= 1


def _sleeper() -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])


def test_a_killed_run_process_is_reported_failed_and_the_run_marked_failed(tmp_path: Path) -> None:
    with dg.instance_for_test(overrides=OVERRIDES, temp_dir=str(tmp_path)) as instance:
        launcher = instance.run_launcher
        assert isinstance(launcher, MonitoredRunLauncher) and launcher.supports_check_run_worker_health
        run = create_run_for_test(instance, job_name="pmu_day_job", status=dg.DagsterRunStatus.STARTED)
        # no process recorded (a CLI run in its own process, or the pid not logged yet): never failed
        assert launcher.check_run_worker_health(run).status == WorkerStatus.RUNNING
        monitor_started_run(instance, None, instance.get_run_record_by_id(run.run_id), logging.getLogger())
        assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.STARTED

        worker = _sleeper()
        try:
            instance.report_engine_event(
                f"Started process for run (pid: {worker.pid}).", run, EngineEventData.in_process(worker.pid)
            )
            assert launcher.check_run_worker_health(run).status == WorkerStatus.RUNNING
            monitor_started_run(instance, None, instance.get_run_record_by_id(run.run_id), logging.getLogger())
            assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.STARTED

            worker.kill()  # not reaped yet: a zombie is dead too
            for _ in range(100):
                if not process_alive(worker.pid):
                    break
                subprocess.run(["sleep", "0.05"], check=True)
            health = launcher.check_run_worker_health(run)
            assert health.status == WorkerStatus.FAILED and str(worker.pid) in health.msg
        finally:
            worker.kill()
            worker.wait()

        monitor_started_run(instance, None, instance.get_run_record_by_id(run.run_id), logging.getLogger())
        assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.FAILURE


def test_a_process_that_reported_its_exit_is_not_a_failure(tmp_path: Path) -> None:
    with dg.instance_for_test(overrides=OVERRIDES, temp_dir=str(tmp_path)) as instance:
        run = create_run_for_test(instance, job_name="pmu_day_job", status=dg.DagsterRunStatus.STARTED)
        worker = _sleeper()
        worker.kill()
        worker.wait()
        instance.report_engine_event(
            f"Started process for run (pid: {worker.pid}).", run, EngineEventData.in_process(worker.pid)
        )
        instance.report_engine_event(f"Process for run exited (pid: {worker.pid}).", run)
        assert instance.run_launcher.check_run_worker_health(run).status == WorkerStatus.SUCCESS


def test_process_alive() -> None:
    worker = _sleeper()
    try:
        assert process_alive(worker.pid)
    finally:
        worker.kill()
        worker.wait()
    assert not process_alive(worker.pid)
