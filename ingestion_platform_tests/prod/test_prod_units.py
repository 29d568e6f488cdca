"""The parts of the production topology that need no running topology: the run coordinator's source tag,
the Celery executor of the code location, the worker config, the topology's environment."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest
import yaml
from dagster._core.run_coordinator import QueuedRunCoordinator, SubmitRunContext

from ingestion_platform.definitions import defs
from ingestion_platform.lib import processes, scale_out
from ingestion_platform.lib.run_coordinator import SOURCE_TAG, SourceTaggedRunCoordinator
from ingestion_platform.prod import Topology
from ingestion_platform_tests.conftest import cli_env

COORDINATOR = {"module": "ingestion_platform.lib.run_coordinator", "class": "SourceTaggedRunCoordinator"}


def test_runs_are_queued_with_their_source_family(monkeypatch: pytest.MonkeyPatch) -> None:
    # Dagster's enqueueing needs the run's code location origin, which only a workspace gives: stubbed
    # here, so that the test sees the run as the queue receives it.
    monkeypatch.setattr(QueuedRunCoordinator, "submit_run", lambda self, ctx: ctx.dagster_run)
    with dg.instance_for_test(overrides={"run_coordinator": COORDINATOR}) as instance:
        coordinator = instance.run_coordinator
        assert isinstance(coordinator, SourceTaggedRunCoordinator)

        def submit(job_name: str, **kwargs) -> dg.DagsterRun:
            run = instance.create_run_for_job(defs().resolve_job_def(job_name), **kwargs)
            queued = coordinator.submit_run(SubmitRunContext(run, workspace=None))  # type: ignore[arg-type]
            stored = instance.get_run_by_id(run.run_id)
            assert stored is not None and stored.tags == queued.tags
            return queued

        # a schedule's run of a whole asset job: the assets of its execution plan
        assert submit("pmu_day_job").tags[SOURCE_TAG] == "pmu"
        assert submit("events_refresh_job").tags[SOURCE_TAG] == "events"
        # a backfill's or the UI's run: its asset selection, here across two families
        mixed = frozenset({dg.AssetKey(["pmu", "programme"]), dg.AssetKey(["events", "ics"])})
        assert submit("__ASSET_JOB", asset_selection=mixed).tags[SOURCE_TAG] == "events+pmu"
        # a tag set by whoever launched the run wins
        assert submit("pmu_day_job", tags={SOURCE_TAG: "manual"}).tags[SOURCE_TAG] == "manual"


def test_celery_executor_is_the_code_locations_with_the_broker_setting() -> None:
    probe = (
        "from ingestion_platform.definitions import defs; "
        "print(defs().resolve_job_def('pmu_day_job').executor_def.name)"
    )
    env = cli_env({**os.environ, "INGESTION_EXECUTOR": "celery"})
    done = subprocess.run([sys.executable, "-W", "ignore", "-c", probe], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "celery"
    bad = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", probe],
        env={**env, "INGESTION_EXECUTOR": "kubernetes"},
        capture_output=True,
        text=True,
    )
    assert "INGESTION_EXECUTOR must be one of ('in_process', 'multiprocess', 'celery')" in bad.stderr


def test_celery_executor_reads_the_broker_when_the_run_starts(monkeypatch: pytest.MonkeyPatch) -> None:
    from dagster._config import process_config
    from dagster._core.definitions.job_base import InMemoryJob
    from dagster._core.executor.init import InitExecutorContext

    executor_def = scale_out.celery_executor()
    monkeypatch.setenv("DAGSTER_CELERY_BROKER_URL", "amqp://u:p@broker.example:5672//")
    config = executor_def.config_schema.config_type

    job = InMemoryJob(defs().resolve_job_def("pmu_day_job"))

    def create(run_config: dict):
        processed = process_config(config, run_config).value
        context = InitExecutorContext(job, executor_def, processed, dg.DagsterInstance.ephemeral())
        return executor_def.executor_creation_fn(context)

    executor = create({})
    assert executor.broker == "amqp://u:p@broker.example:5672//"
    assert executor.config_source.task_acks_late is True
    assert create({"broker": "amqp://other//"}).broker == "amqp://other//"  # the run config wins


def test_topology_environment_production_settings_win(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("INGESTION_EXECUTOR=in_process\nINGESTION_AUTOMATION=stopped\nPMU_API_BASE_URL=file:///s\nX=\n")
    monkeypatch.setenv("PMU_API_BASE_URL", "https://shell.example")
    monkeypatch.setenv("X", "from-shell")
    topology = Topology(tmp_path / "p", "postgresql://h/d", "postgresql://h/w", env_file=env_file)
    env = topology.environment("m")
    assert env["PMU_API_BASE_URL"] == "file:///s"  # .env over the shell, as the Dagster CLI does
    assert env["X"] == "from-shell"  # an empty line of .env sets nothing
    assert (env["INGESTION_EXECUTOR"], env["INGESTION_AUTOMATION"]) == ("celery", "running")
    assert (env["DAGSTER_PG_URL"], env["INGESTION_DATABASE_URL"]) == ("postgresql://h/d", "postgresql://h/w")
    assert env["DAGSTER_HOME"] == str(tmp_path / "p" / "dagster_home")
    assert env[processes.MARKER_VARIABLE] == "m"


def test_worker_config_is_a_valid_executor_config(tmp_path: Path) -> None:
    from dagster_celery.cli import get_validated_config

    path = tmp_path / "worker.yaml"
    path.write_text(yaml.safe_dump(scale_out.worker_config("amqp://b//", 3)))
    config = get_validated_config(str(path))
    assert config["broker"] == "amqp://b//"
    assert config["config_source"]["worker_concurrency"] == 3


def test_down_without_a_topology_does_nothing(tmp_path: Path) -> None:
    topology = Topology(tmp_path / "none")
    assert topology.down() == []
    assert topology.alive() == {}
