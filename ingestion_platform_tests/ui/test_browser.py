"""The Dagster UI in a real browser: a PMU sample day and a backfill launched by clicking.

``dagster dev`` (webserver and daemon) runs on a fresh SQLite instance with the PMU source pointed
at the offline samples; headless Chromium opens the pmu asset group, launches the materialisations
from the partition dialog, watches the run or backfill page until it finishes, then reads each
asset's Partitions and Checks tabs. Run alone with ``pytest -m browser``; screenshots of each step
land in ``.ci/artifacts/ui/<test>/`` (or ``$UI_ARTIFACTS_DIR``).
"""

from __future__ import annotations

import datetime as dt
import shutil
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from ingestion_platform_tests.pmu_helpers import SAMPLE_DAY, SAMPLE_DIR, copy_day
from ingestion_platform_tests.ui import pages
from ingestion_platform_tests.ui.browser import Ui
from ingestion_platform_tests.ui.conftest import ARTIFACTS_ROOT, open_ui
from ingestion_platform_tests.ui.dagster_dev import DagsterDev

pytestmark = pytest.mark.browser

GROUP = "pmu"
ASSETS = [["pmu", "programme"], ["pmu", "participants"], ["pmu", "performances"], ["pmu", "rapports"]]
PROGRAMME = ["pmu", "programme"]
#: the backfill's days, first and last included; days missing from the shipped sample are replayed
#: from SAMPLE_DAY under their own date (see ``pmu_sample_url``)
BACKFILL_RANGE = ("2025-03-13", "2025-03-15")


def _days(first: str, last: str) -> list[str]:
    start, end = dt.date.fromisoformat(first), dt.date.fromisoformat(last)
    return [(start + dt.timedelta(days=n)).isoformat() for n in range((end - start).days + 1)]


def _ddmmyyyy(day: str) -> str:
    return dt.date.fromisoformat(day).strftime("%d%m%Y")


def _in_sample(day: str) -> bool:
    return (SAMPLE_DIR / "rest" / "client" / "1" / "programme" / f"{_ddmmyyyy(day)}.json").exists()


@pytest.fixture(scope="module")
def pmu_sample_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """``file://`` the shipped sample, or a copy of it completed with the backfill days it lacks."""
    missing = [d for d in _days(*BACKFILL_RANGE) if not _in_sample(d)]
    if not missing:
        return f"file://{SAMPLE_DIR}"
    replay = tmp_path_factory.mktemp("pmu_replay")
    shutil.copytree(SAMPLE_DIR / "rest", replay / "rest")
    for day in missing:
        copy_day(SAMPLE_DIR, replay, src=_ddmmyyyy(SAMPLE_DAY), dst=_ddmmyyyy(day))
    return f"file://{replay}"


@pytest.fixture(scope="module")
def dagster_server(browser_required: None, tmp_path_factory: pytest.TempPathFactory, pmu_sample_url: str):
    server = DagsterDev(
        tmp_path_factory.mktemp("dagster_dev"),
        ARTIFACTS_ROOT / "dagster-dev.log",
        env={"PMU_API_BASE_URL": pmu_sample_url},
    )
    # A SIGTERM (a CI timeout) still tears the server down: it becomes an interrupt, which runs the finalisers.
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        server.start()
        server.wait_ready()
        # No schedule or sensor tick may launch a run of its own while the test watches.
        server.stop_schedules_and_sensors()
        server.dismiss_welcome_dialog()
        yield server
    finally:
        try:
            server.stop()
        finally:
            signal.signal(signal.SIGTERM, previous)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


@pytest.fixture
def ui(dagster_server: DagsterDev, ui_artifacts: Path, tmp_path: Path) -> Iterator[Ui]:
    yield from open_ui(dagster_server, ui_artifacts, tmp_path / "chromium-profile")


def _assert_latest_passed(views: dict[str, pages.CheckView], run_ids: set[str], asset: list[str]) -> None:
    for check, view in views.items():
        assert view.result == "Passed", f"{'/'.join(asset)} check {check}: latest execution {view.result!r}"
        assert view.run_id in run_ids, f"{'/'.join(asset)} check {check}: latest run {view.run_id}, not {run_ids}"


def test_sample_day_materialised_from_the_ui(ui: Ui, dagster_server: DagsterDev) -> None:
    location = dagster_server.location
    assert location is not None
    pages.open_asset_group(ui, location, GROUP, [a[-1] for a in ASSETS])

    launched = pages.launch_materialize_all(ui, dagster_server, SAMPLE_DAY, 1, "Launch 1 run")
    assert launched.kind == "run", launched
    pages.wait_run_succeeded(ui, dagster_server, launched.id)
    tags = {t["key"]: t["value"] for t in dagster_server.run(launched.id)["tags"]}
    assert tags.get("dagster/partition") == SAMPLE_DAY, tags

    pages.assert_partitions_materialised(ui, PROGRAMME, [SAMPLE_DAY], {launched.id})
    checks = dagster_server.check_names(PROGRAMME)
    assert checks, "pmu/programme has no checks"
    views = pages.read_checks(ui, PROGRAMME, checks, days=[SAMPLE_DAY])
    _assert_latest_passed(views, {launched.id}, PROGRAMME)
    for check, view in views.items():
        assert view.listed == "Succeeded", f"check {check}: listed {view.listed!r}"
        assert view.partitions == {SAMPLE_DAY: "Passed"}, f"check {check}: partitions {view.partitions}"


def test_backfill_of_sample_days_from_the_ui(ui: Ui, dagster_server: DagsterDev) -> None:
    location = dagster_server.location
    assert location is not None
    days = _days(*BACKFILL_RANGE)
    pages.open_asset_group(ui, location, GROUP, [a[-1] for a in ASSETS])

    first, last = BACKFILL_RANGE
    launched = pages.launch_materialize_all(ui, dagster_server, f"[{first}...{last}]", len(days), "Launch backfill")
    assert launched.kind == "backfill", launched
    run_ids = set(pages.wait_backfill_succeeded(ui, dagster_server, launched.id, [" / ".join(a) for a in ASSETS]))

    for asset in ASSETS:
        pages.assert_partitions_materialised(ui, asset, days, run_ids)
    partitions = {}
    for asset in ASSETS:
        checks = dagster_server.check_names(asset)
        views = pages.read_checks(ui, asset, checks, days=days if asset == PROGRAMME else ())
        _assert_latest_passed(views, run_ids, asset)
        partitions.update({check: view.partitions for check, view in views.items() if view.partitions})
    statuses = {status for by_day in partitions.values() for status in by_day.values()}
    assert statuses == {"Passed"}, f"checks of pmu/programme by day: {partitions}"
