"""``dg check defs``: the project's pipelines load, and broken pipeline files are refused with the file,
the line and the field (``dg check yaml`` alone misses them when two files use the same component type)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from ingestion_platform_tests.conftest import REPO_ROOT

DG = Path(sys.executable).with_name("dg")
HEAD = "type: ingestion_platform.components.pipeline.Pipeline\nattributes:\n"


def _dg(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DAGSTER_")}
    return subprocess.run([str(DG), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False)


@pytest.fixture(scope="module")
def check_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A minimal dg project whose defs folder holds only pipeline folders (written by each test)."""
    root = tmp_path_factory.mktemp("dg_project")
    (root / "pyproject.toml").write_text(textwrap.dedent("""\
        [project]
        name = "pipelines_check"
        version = "0"
        [tool.dg]
        directory_type = "project"
        [tool.dg.project]
        root_module = "pipelines_check"
        defs_module = "pipelines_check.defs"
        """))  # fmt: skip
    package = root / "pipelines_check"
    (package / "defs").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "definitions.py").write_text(textwrap.dedent("""\
        from pathlib import Path

        import dagster as dg

        from ingestion_platform.lib.raw_store import RawStoreResource
        from ingestion_platform.lib.warehouse import WarehouseResource


        @dg.definitions
        def defs():
            loaded = dg.load_from_defs_folder(path_within_project=Path(__file__).parent)
            resources = {"warehouse": WarehouseResource(), "raw_store": RawStoreResource()}
            return dg.Definitions.merge(loaded, dg.Definitions(resources=resources))
        """))  # fmt: skip
    return root


def _write(project: Path, pipelines: dict[str, str]) -> dict[str, Path]:
    defs = project / "pipelines_check" / "defs"
    for old in defs.iterdir():
        for f in old.iterdir():
            f.unlink()
        old.rmdir()
    paths = {}
    for name, body in pipelines.items():
        (defs / name).mkdir()
        paths[name] = defs / name / "defs.yaml"
        paths[name].write_text(HEAD + textwrap.indent(textwrap.dedent(body), "  "), encoding="utf-8")
    return paths


GOOD = """\
name: good
streams:
  - name: one
    extract: {csv: {path: data.csv}}
    load: [{parquet: {path: out}}]
"""

# (pipeline body, the line of the mistake in defs.yaml, the field path, a fragment of the message)
BROKEN = {
    "unknown_mode": (
        """\
        name: bad_mode
        streams:
          - name: one
            extract: {csv: {path: data.csv}}
            mode: upsertt
            load: [{parquet: {path: out}}]
        """,
        7, "streams.0.mode", "'append', 'upsert', 'replace' or 'incremental'",
    ),
    "unsafe_filter": (
        """\
        name: bad_filter
        streams:
          - name: one
            extract: {csv: {path: data.csv}}
            transform:
              - clean: {trim: true}
              - filter: "__import__('os').system('id')"
            load: [{parquet: {path: out}}]
        """,
        9, "streams.0.transform.1.filter", "is not allowed in a filter expression",
    ),
    "unknown_key": (
        """\
        name: bad_key
        streams:
          - name: one
            extract:
              csv:
                path: data.csv
                delimter: ";"
            load: [{parquet: {path: out}}]
        """,
        9, "streams.0.extract.csv.delimter", "Extra inputs are not permitted",
    ),
    "bad_cast": (
        """\
        name: bad_cast
        streams:
          - name: one
            extract: {csv: {path: data.csv}}
            transform:
              - clean:
                  cast:
                    factor: floatt
            load: [{parquet: {path: out}}]
        """,
        10, "streams.0.transform.0.clean.cast.factor", "Input should be 'string', 'int', 'float'",
    ),
    "upsert_without_key_from_defaults": (
        """\
        name: no_key
        defaults:
          mode: upsert
          load: [{parquet: {path: out}}]
        streams:
          - name: one
            extract: {csv: {path: data.csv}}
        """,
        8, "streams.0.key", "mode upsert needs a key",
    ),
    "bad_aggregate": (
        """\
        name: bad_agg
        streams:
          - name: one
            extract: {csv: {path: data.csv}}
            transform:
              - aggregate:
                  group_by: [sector]
                  metrics: {total: median(factor)}
            load: [{parquet: {path: out}}]
        """,
        10, "streams.0.transform.0.aggregate.metrics", "is not an aggregate such as sum(col)",
    ),
}  # fmt: skip


def test_dg_check_defs_passes_on_the_project() -> None:
    done = _dg(["check", "defs"], REPO_ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "All definitions loaded successfully" in done.stdout + done.stderr


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_dg_check_defs_names_file_line_and_field(check_project: Path, case: str) -> None:
    body, line, field, message = BROKEN[case]
    paths = _write(check_project, {"good": GOOD, "broken": body})
    done = _dg(["check", "defs"], check_project)
    output = done.stdout + done.stderr
    assert done.returncode != 0, output
    assert f"{paths['broken']}:{line}" in output, output
    assert field in output and message in output, output
    assert str(paths["good"]) + ":" not in output


def test_two_broken_files_of_the_same_type_are_both_refused(check_project: Path) -> None:
    """``dg check yaml`` passes both files; ``dg check defs`` refuses each one until it is fixed."""
    first, second = BROKEN["unsafe_filter"][0], BROKEN["unknown_mode"][0]
    paths = _write(check_project, {"a": first, "b": second})
    assert _dg(["check", "yaml"], check_project).returncode == 0  # what the schema alone sees
    done = _dg(["check", "defs"], check_project)
    assert done.returncode != 0 and f"{paths['a']}:9" in done.stdout + done.stderr
    paths["a"].write_text(HEAD + textwrap.indent(GOOD, "  "), encoding="utf-8")
    done = _dg(["check", "defs"], check_project)
    assert done.returncode != 0 and f"{paths['b']}:7" in done.stdout + done.stderr
    paths["b"].write_text(HEAD + textwrap.indent(GOOD.replace("good", "good_too"), "  "), encoding="utf-8")
    done = _dg(["check", "defs"], check_project)
    assert done.returncode == 0, done.stdout + done.stderr


def test_dg_check_defs_is_run_in_ci() -> None:
    text = (REPO_ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert re.search(r"dg check defs", text)
