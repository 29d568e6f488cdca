"""``benchmarks/ui_vs_cli.py`` without timing anything: its GraphQL, tables, schedule and process cleanup.

The benchmark itself (``make bench-ui``) starts ``dagster dev`` and runs the PMU day a dozen times; it runs here
only when ``INGESTION_BENCH_UI_E2E=1`` (one repetition of the in-process CLI and of the UI, a few minutes).
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path
from types import ModuleType

import graphql
import pytest

from ingestion_platform_tests.conftest import REPO_ROOT

SCRIPT = REPO_ROOT / "benchmarks" / "ui_vs_cli.py"


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("ui_vs_cli", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop(spec.name, None)


@pytest.fixture(scope="module")
def schema() -> graphql.GraphQLSchema:
    from dagster_graphql.schema import create_schema

    return create_schema().graphql_schema


NODES = [
    {
        "assetKey": {"path": ["pmu", "programme"]},
        "jobNames": ["__ASSET_JOB", "pmu_day_job"],
        "assetChecksOrError": {
            "__typename": "AssetChecks",
            "checks": [
                {"name": "race_key_unique", "jobNames": ["__ASSET_JOB", "pmu_day_job"]},
                {"name": "only_in_another_job", "jobNames": ["other_job"]},
                {"name": "old_user_code", "jobNames": []},
            ],
        },
    },
    {
        "assetKey": {"path": ["pmu", "rapports"]},
        "jobNames": ["__ASSET_JOB"],
        "assetChecksOrError": {"__typename": "AssetCheckNeedsMigrationError"},
    },
]


def test_the_graphql_documents_are_valid_for_the_installed_dagster(bench: ModuleType, schema) -> None:
    for name, document in bench.QUERIES.items():
        errors = graphql.validate(schema, graphql.parse(document))
        assert not errors, f"{name}: {errors}"


def test_execution_params_are_the_ui_single_partition_launch(bench: ModuleType, schema) -> None:
    tags = [{"key": "dagster/partition", "value": "2025-03-14"}, {"key": "dagster/from_ui", "value": "false"}]
    params = bench.execution_params("loc", "__repository__", "__ASSET_JOB", NODES, tags, "{}\n")
    assert params["selector"] == {
        "repositoryLocationName": "loc",
        "repositoryName": "__repository__",
        "pipelineName": "__ASSET_JOB",
        "assetSelection": [{"path": ["pmu", "programme"]}, {"path": ["pmu", "rapports"]}],
        "assetCheckSelection": [
            {"name": "race_key_unique", "assetKey": {"path": ["pmu", "programme"]}},
            {"name": "old_user_code", "assetKey": {"path": ["pmu", "programme"]}},
        ],
    }
    assert params["executionMetadata"]["tags"] == [
        {"key": "dagster/partition", "value": "2025-03-14"},
        {"key": "dagster/from_ui", "value": "true"},
    ]
    # no executor config: the run gets the code location's executor, as a UI launch does
    assert params["runConfigData"] == "{}\n"
    assert params["mode"] == "default"
    # the variables the mutation sends are accepted by the schema's ExecutionParams
    errors = []
    graphql.coerce_input_value(params, schema.get_type("ExecutionParams"), lambda *e: errors.append(e))
    assert not errors


def test_cli_commands(bench: ModuleType) -> None:
    base = ["asset", "materialize", "-m", "ingestion_platform.definitions", "--select", "group:pmu"]
    base += ["--partition", "2025-03-14"]
    assert bench.cli_command(False)[1:] == base
    in_process = bench.cli_command(True)
    assert Path(in_process[0]).name == "dagster"
    assert in_process[1:] == [*base, "--config-json", '{"execution": {"config": {"in_process": {}}}}']
    assert json.loads(in_process[-1]) == {"execution": {"config": {"in_process": {}}}}


def test_child_environment(bench: ModuleType, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("INGESTION_DATABASE_URL", "postgresql://elsewhere/db")
    env = bench.child_env("tok", tmp_path / "home", tmp_path / "data")
    assert "INGESTION_DATABASE_URL" not in env
    assert env["PMU_API_BASE_URL"] == f"file://{REPO_ROOT}/ingestion_platform/defs/pmu/sample"
    assert env["DAGSTER_HOME"] == str(tmp_path / "home")
    assert env["INGESTION_DATA_DIR"] == str(tmp_path / "data")
    assert env["PYTHONPATH"].split(os.pathsep)[0] == str(REPO_ROOT)
    assert env[bench.TOKEN_VAR] == "tok"


def test_schedule_interleaves_and_alternates_the_order(bench: ModuleType) -> None:
    order = bench.schedule(["a", "b"], 3, rerun=True)
    assert order == [
        (0, "a", "first"),
        (0, "a", "re-run"),
        (0, "b", "first"),
        (0, "b", "re-run"),
        (1, "b", "first"),
        (1, "b", "re-run"),
        (1, "a", "first"),
        (1, "a", "re-run"),
        (2, "a", "first"),
        (2, "a", "re-run"),
        (2, "b", "first"),
        (2, "b", "re-run"),
    ]
    assert bench.schedule(["a"], 1, rerun=False) == [(0, "a", "first")]


def _measurements(bench: ModuleType) -> list:
    M = bench.Measurement
    return [
        M("cli-in-process", "first", 0, wall_s=10.0, run_s=6.0, steps=30, step_pids=1, cpu_s=9.0),
        M("cli-in-process", "first", 1, wall_s=12.0, run_s=7.0, steps=30, step_pids=1, cpu_s=9.5),
        M("cli-in-process", "first", 2, wall_s=11.0, run_s=6.5, steps=30, step_pids=1, cpu_s=9.2),
        M("cli-in-process", "re-run", 0, wall_s=8.0, run_s=4.0, steps=30, step_pids=1, cpu_s=7.0),
        M("ui", "first", 0, wall_s=30.0, run_s=20.0, queue_s=9.0, steps=30, step_pids=30, cpu_s=100.0),
        M("ui", "first", 1, wall_s=20.0, run_s=13.0, queue_s=6.0, steps=30, step_pids=30, cpu_s=90.0),
        M("ui", "first", 2, error="launch: boom"),
        M("ui", "re-run", 0, wall_s=16.0, run_s=10.0, queue_s=5.0, steps=30, step_pids=30, cpu_s=80.0),
    ]


def test_summary_table(bench: ModuleType) -> None:
    lines = bench.summary_table(_measurements(bench)).splitlines()
    headers = ["variant", "day", "ok", "wall s", "run s", "queue s", "steps", "step pids", "CPU s"]
    assert re.split(r"\s{2,}", lines[0].strip()) == headers
    assert len(lines) == 2 + 4  # header, rule, one row per variant and phase measured
    cli_first = next(line for line in lines if line.startswith("CLI, in_process") and " first " in line)
    assert "3/3" in cli_first and "11.0 [10.0-12.0]" in cli_first and "6.5 [6.0-7.0]" in cli_first
    assert cli_first.split()[-4:] == ["30", "1", "9.2", "[9.0-9.5]"]
    ui_first = next(line for line in lines if line.startswith("UI") and " first " in line)
    # the failed measurement counts in "ok" only; the medians are of the two that succeeded
    assert "2/3" in ui_first and "25.0 [20.0-30.0]" in ui_first and "7.5 [6.0-9.0]" in ui_first
    assert ui_first.split()[-4:] == ["30", "30", "95.0", "[90.0-100.0]"]
    ui_rerun = next(line for line in lines if line.startswith("UI") and " re-run " in line)
    assert ui_rerun.split()[-8:] == ["re-run", "1/1", "16.0", "10.0", "5.0", "30", "30", "80.0"]


def test_ratio_table_and_target(bench: ModuleType) -> None:
    ms = _measurements(bench)
    assert bench.ratio(ms, "ui", "cli-in-process", "first") == pytest.approx(25.0 / 11.0)
    assert bench.ratio(ms, "ui", "cli-in-process", "re-run", "run_s") == pytest.approx(10.0 / 4.0)
    assert bench.ratio(ms, "ui", "cli-default", "first") is None
    rows = {row[0]: row[1:] for row in bench.ratio_rows(ms)}
    assert rows["UI submit->success / CLI in_process wall"] == ["2.27x", "2.00x", "target <= 2x: MISSED"]
    assert rows["UI run start->end / CLI in_process run start->end"] == ["2.54x", "2.50x", ""]
    assert rows["UI CPU / CLI in_process CPU"] == ["10.33x", "11.43x", ""]
    assert len(rows) == 3  # nothing about cli-default: not measured
    assert "2.27x" in bench.ratio_table(ms)
    assert bench.target_met(ms) is False
    fast = [m for m in ms if m.variant != "ui"] + [bench.Measurement("ui", "first", 0, wall_s=15.0)]
    assert bench.target_met(fast) is True
    assert "target <= 2x: met" in bench.ratio_table(fast)
    assert bench.target_met([m for m in ms if m.variant == "ui"]) is None


def test_measurement_line_shows_errors(bench: ModuleType) -> None:
    line = bench.measurement_line(bench.Measurement("ui", "first", 0, error="launch: boom"))
    assert "rep 1 ui" in line and "wall -" in line and "ERROR launch: boom" in line


def test_parse_args(bench: ModuleType) -> None:
    args = bench.parse_args([])
    assert args.repeat == 3 and args.variants == list(bench.VARIANTS) and not args.no_rerun
    assert bench.parse_args(["--variants", "ui, cli-in-process"]).variants == ["ui", "cli-in-process"]
    with pytest.raises(SystemExit):
        bench.parse_args(["--variants", "gui"])
    with pytest.raises(SystemExit):
        bench.parse_args(["--repeat", "0"])


def test_cleanup_kills_the_group_and_the_processes_that_left_it(bench: ModuleType, tmp_path: Path) -> None:
    """Like dagster dev: a parent that ignores SIGTERM, a child in its group, a grandchild in its own session."""
    token = uuid.uuid4().hex
    pids_file = tmp_path / "pids"
    parent_code = textwrap.dedent(
        f"""
        import signal, subprocess, sys, time
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        sleep = [sys.executable, "-c", "import time; time.sleep(120)"]
        child = subprocess.Popen(sleep)
        escaped = subprocess.Popen(sleep, start_new_session=True)
        open({str(pids_file)!r}, "w").write(f"{{child.pid}} {{escaped.pid}}")
        time.sleep(120)
        """
    )
    env = {**os.environ, bench.TOKEN_VAR: token}
    parent = subprocess.Popen([sys.executable, "-c", parent_code], env=env, start_new_session=True)
    cleanup = bench.Cleanup(token, groups=[parent.pid], popens=[parent])
    try:
        deadline = time.monotonic() + 30
        while not (pids_file.exists() and pids_file.read_text()) and time.monotonic() < deadline:
            time.sleep(0.05)
        child, escaped = (int(p) for p in pids_file.read_text().split())
        assert set(bench.marked_pids(token)) == {parent.pid, child, escaped}
        assert bench.cpu_seconds([parent.pid]) >= 0
        survivors = cleanup()
    finally:
        cleanup()
        for pid in bench.marked_pids(token):  # in case the assertions above failed
            os.kill(pid, 9)
    assert list(survivors) == [escaped]
    assert "time.sleep(120)" in survivors[escaped]
    assert parent.returncode == -9
    assert bench.marked_pids(token) == []
    assert cleanup() == {}  # once only


def test_children_run_where_no_dotenv_is_loaded(bench: ModuleType, tmp_path: Path, monkeypatch) -> None:
    workdir = bench.make_workdir(tmp_path)
    assert workdir.is_dir() and list(workdir.iterdir()) == [] and workdir != REPO_ROOT
    monkeypatch.setattr(bench, "REPO_ROOT", tmp_path)
    assert bench._dotenv_note() == ""
    (tmp_path / ".env").write_text("# a comment\nPMU_API_BASE_URL=https://example.invalid\nINGESTION_DATA_DIR=/x\n")
    assert bench._dotenv_note().endswith("is ignored: PMU_API_BASE_URL, INGESTION_DATA_DIR)")
