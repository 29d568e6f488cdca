"""The local environment: ``.env`` generated from ``.env.example``, read by the CLI as by Dagster, and the
CLI's own ``DAGSTER_HOME`` (the repository's ``.dagster_home``, linked and migrated once)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest
from dotenv import dotenv_values

from ingestion_platform import cli, local_env
from ingestion_platform_tests.conftest import cli_env
from ingestion_platform_tests.pmu_helpers import SAMPLE_DAY, SAMPLE_DIR, run_pmu

REPO_ROOT = Path(__file__).resolve().parents[2]
ENV_EXAMPLE = REPO_ROOT / ".env.example"
SOURCES = ["PMU_API_BASE_URL", "EVENTBRITE_API_URL", "EVENTBRITE_ORGANIZATION_IDS", "MONTREAL_CKAN_URL", "ICS_FEEDS"]
SOURCES += ["ISAVIGNE_EXPORT_DIR"]  # a folder (a path, not a URL)


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory shaped like the repository root: .env.example and dagster.yaml, no .env."""
    root = tmp_path / "clone"
    root.mkdir()
    shutil.copyfile(ENV_EXAMPLE, root / ".env.example")
    shutil.copyfile(REPO_ROOT / "dagster.yaml", root / "dagster.yaml")
    monkeypatch.chdir(root)
    monkeypatch.setenv("DAGSTER_HOME", "-")  # so that the undo restores the original, whatever sets it
    monkeypatch.delenv("DAGSTER_HOME")
    monkeypatch.setenv("INGESTION_DATABASE_URL", f"sqlite:///{root / '.data' / 'warehouse.db'}")
    return root


# -- .env -------------------------------------------------------------------------------------------------
def test_env_is_the_example_with_only_the_source_lines_pointed_at_the_samples() -> None:
    template = ENV_EXAMPLE.read_text(encoding="utf-8")
    rendered = local_env.render(template, local_env.sample_settings())
    before, after = template.splitlines(), rendered.splitlines()
    assert len(before) == len(after)
    changed = [(a, b) for a, b in zip(before, after, strict=True) if a != b]
    assert [b.split("=", 1)[0] for _, b in changed] == SOURCES
    for old, new in changed:  # the example's line, commented or not, becomes the sample value
        assert re.match(r"^#?\s*" + re.escape(new.split("=", 1)[0]) + "=", old)


def test_env_values_read_back_as_the_dagster_cli_reads_them(repo: Path) -> None:
    assert cli.main(["local-env"]) == 0
    values = dotenv_values(repo / ".env")  # what dagster._core.secrets.env_file uses
    settings = local_env.sample_settings()
    assert {name: values[name] for name in SOURCES} == settings
    assert settings["PMU_API_BASE_URL"] == SAMPLE_DIR.resolve().as_uri()
    assert (Path(settings["EVENTBRITE_API_URL"].removeprefix("file://")) / "organizations").is_dir()
    assert "DAGSTER_HOME" not in values  # an empty DAGSTER_HOME= would send dagster to a temporary instance
    assert all(value for value in values.values()), "a NAME= line would set NAME to empty over the shell"


def test_env_is_written_once_and_never_clobbered_silently(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    env, template = repo / ".env", repo / ".env.example"
    assert local_env.write_local_env(template, env).status == "created"
    generated = env.read_text(encoding="utf-8")

    os.utime(env, (1_000_000, 1_000_000))  # older than the template, content unchanged
    assert local_env.write_local_env(template, env).status == "up to date"
    assert env.stat().st_mtime > template.stat().st_mtime - 1 and env.read_text(encoding="utf-8") == generated

    edited = generated.replace("PMU_API_BASE_URL=file://", "PMU_API_BASE_URL=https://online.turfinfo.api.pmu.fr#")
    env.write_text(edited, encoding="utf-8")
    assert local_env.write_local_env(template, env).status == "kept"  # newer than the template: the user's
    assert env.read_text(encoding="utf-8") == edited and not (repo / ".env.new").exists()

    os.utime(env, (1_000_000, 1_000_000))  # the example changed since
    outcome = local_env.write_local_env(template, env)
    assert outcome.status == "kept" and ".env.new" in outcome.message and "diff .env .env.new" in outcome.message
    assert env.read_text(encoding="utf-8") == edited
    assert (repo / ".env.new").read_text(encoding="utf-8") == generated

    assert cli.main(["local-env", "--force"]) == 0
    assert env.read_text(encoding="utf-8") == generated
    assert "rewritten" in capsys.readouterr().out


def test_a_template_without_a_source_line_is_refused() -> None:
    with pytest.raises(ValueError, match="no line for ICS_FEEDS"):
        local_env.render("# PMU_API_BASE_URL=\n", {"PMU_API_BASE_URL": "file:///x", "ICS_FEEDS": "[]"})


def test_local_env_outside_the_repository_is_one_clear_line(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    assert cli.main(["local-env"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no .env.example in ") and err.count("\n") == 1


def test_the_cli_reads_dot_env_like_dagster(repo: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    url = f"sqlite:///{tmp_path / 'from_env' / 'warehouse.db'}"
    monkeypatch.setenv("INGESTION_DATABASE_URL", "sqlite:////nonexistent/shell.db")
    (repo / ".env").write_text(f"INGESTION_DATABASE_URL={url}\n", encoding="utf-8")
    assert cli.main(["counts"]) == 0
    assert f"warehouse: {url}" in capsys.readouterr().out  # .env wins over the shell, as for dagster commands


# -- DAGSTER_HOME -----------------------------------------------------------------------------------------
def test_backfill_without_dagster_home_uses_the_repositorys_home_migrated_once(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    migrations: list[Path] = []
    real_migrate = cli._migrate
    monkeypatch.setattr(cli, "_migrate", lambda home: (migrations.append(home), real_migrate(home)))
    monkeypatch.setenv("INGESTION_DATA_DIR", str(repo / ".data"))
    monkeypatch.setenv("PMU_API_BASE_URL", SAMPLE_DIR.as_uri())
    argv = ["backfill", "--select", "pmu/programme", "--from", SAMPLE_DAY, "--to", SAMPLE_DAY]
    assert cli.main(argv) == 0
    home = repo / ".dagster_home"
    assert os.environ["DAGSTER_HOME"] == str(home)
    assert (home / "dagster.yaml").resolve() == (repo / "dagster.yaml").resolve()
    assert migrations == [home]

    monkeypatch.delenv("DAGSTER_HOME")
    assert cli.main(argv) == 0
    assert migrations == [home]  # the home exists: not migrated again
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert len(instance.get_runs()) == 2


def test_backfill_outside_the_repository_without_dagster_home_is_one_clear_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DAGSTER_HOME", "-")
    monkeypatch.delenv("DAGSTER_HOME")
    argv = ["backfill", "--select", "group:pmu", "--from", "2025-03-13", "--to", "2025-03-15"]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: DAGSTER_HOME is not set and ") and err.count("\n") == 1
    assert "Traceback" not in err and not (tmp_path / ".dagster_home").exists()


_FIRST_USE = """
import sys
from ingestion_platform import cli
home = cli.ensure_dagster_home()
import dagster as dg
with dg.DagsterInstance.get() as instance:
    instance.get_runs()
print(home)
"""


def test_two_first_uses_at_once_create_one_working_instance(repo: Path) -> None:
    """Both wait for the set-up lock; the instance is created and migrated once (no second alembic head)."""
    env = cli_env(dict(os.environ))
    env.pop("DAGSTER_HOME", None)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _FIRST_USE],
            cwd=repo,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err[-2000:] for _, err in outputs]
    assert sum("created the Dagster instance" in err for _, err in outputs) == 1
    done = subprocess.run([str(Path(sys.executable).parent / "dagster"), "instance", "migrate"], cwd=repo,
                          env={**env, "DAGSTER_HOME": str(repo / ".dagster_home")}, capture_output=True,
                          text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert "more than one head" not in done.stdout + done.stderr


def test_assets_prints_a_line_per_asset_with_rows_and_checks(repo: Path, capsys) -> None:
    home = cli.ensure_dagster_home()
    with dg.DagsterInstance.from_config(str(home)) as instance:
        url = f"sqlite:///{repo / '.data' / 'warehouse.db'}"
        assert run_pmu(
            database_url=url, data_dir=repo / ".data", base_url=SAMPLE_DIR.as_uri(), instance=instance
        ).success
    assert cli.main(["assets", "--partition", SAMPLE_DAY, "--select", "group:pmu"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:3] == ["asset", "group", "partition"]
    rows = {line.split()[0]: line for line in lines[1:]}
    assert set(rows) == {"pmu/programme", "pmu/participants", "pmu/performances", "pmu/rapports"}
    assert all(SAMPLE_DAY in line and "passed" in line and "failed" not in line for line in rows.values())
    assert rows["pmu/performances"].split()[-2:] == ["5/5", "passed"]
    assert cli.main(["assets", "--partition", "2025-03-13", "--select", "pmu/programme"]) == 0
    assert "never" in capsys.readouterr().out
