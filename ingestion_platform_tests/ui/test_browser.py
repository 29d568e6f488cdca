"""The Dagster UI in a real browser: a PMU sample day and a backfill launched by clicking.

``dagster dev`` (webserver and daemon) runs on a fresh SQLite instance with the PMU source pointed
at the offline samples; headless Chromium opens the pmu asset group, launches the materialisations
from the partition dialog, watches the run or backfill page until it finishes, then reads each
asset's Partitions and Checks tabs. Run alone with ``pytest -m browser``; screenshots of each step
land in ``.ci/artifacts/ui/<test>/`` (or ``$UI_ARTIFACTS_DIR``).
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from ingestion_platform_tests.pmu_helpers import SAMPLE_DAY, SAMPLE_DIR
from ingestion_platform_tests.ui import pages
from ingestion_platform_tests.ui.browser import Ui
from ingestion_platform_tests.ui.conftest import ARTIFACTS_ROOT, open_ui
from ingestion_platform_tests.ui.dagster_dev import DagsterDev

pytestmark = pytest.mark.browser

GROUP = "pmu"
ASSETS = [["pmu", "programme"], ["pmu", "participants"], ["pmu", "performances"], ["pmu", "rapports"]]
PROGRAMME = ["pmu", "programme"]
#: the backfill's days, first and last included: days of the shipped sample
BACKFILL_RANGE = ("2025-03-13", "2025-03-15")
#: A backfill runs the days as a range (the PMU backfill policy: PMU_DAYS_PER_RUN days per run). Dagster
#: records a check evaluated in such a run without a partition, so the days' checks would show "Skipped":
#: the checks run in the asset steps and report each day, which the Partitions tab of a check must show.


def _days(first: str, last: str) -> list[str]:
    start, end = dt.date.fromisoformat(first), dt.date.fromisoformat(last)
    return [(start + dt.timedelta(days=n)).isoformat() for n in range((end - start).days + 1)]


def _in_sample(day: str) -> bool:
    ddmmyyyy = dt.date.fromisoformat(day).strftime("%d%m%Y")
    return (SAMPLE_DIR / "rest" / "client" / "1" / "programme" / f"{ddmmyyyy}.json").exists()


@pytest.fixture(scope="module")
def dagster_server(browser_required: None, tmp_path_factory: pytest.TempPathFactory):
    missing = [d for d in [SAMPLE_DAY, *_days(*BACKFILL_RANGE)] if not _in_sample(d)]
    assert not missing, f"days missing from the PMU sample {SAMPLE_DIR}: {missing}"
    server = DagsterDev(
        tmp_path_factory.mktemp("dagster_dev"),
        ARTIFACTS_ROOT / f"dagster-dev-{os.environ.get('PYTEST_XDIST_WORKER', 'main')}.log",
        env={"PMU_API_BASE_URL": f"file://{SAMPLE_DIR}"},
    )
    # A SIGTERM (a CI timeout) still tears the server down: it becomes an interrupt, which runs the finalisers.
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _interrupt) if main_thread else None
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
            if main_thread:
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
        assert checks, f"{'/'.join(asset)} has no checks"
        views = pages.read_checks(ui, asset, checks, days=days if asset == PROGRAMME else ())
        _assert_latest_passed(views, run_ids, asset)
        for check, view in views.items():
            assert view.listed == "Succeeded", f"{'/'.join(asset)} check {check}: listed {view.listed!r}"
        partitions.update({check: view.partitions for check, view in views.items() if view.partitions})
    expected = {day: "Passed" for day in days}
    assert partitions and all(p == expected for p in partitions.values()), f"pmu/programme checks: {partitions}"
