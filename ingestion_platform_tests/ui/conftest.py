"""Browser tests: the folder of their artifacts, the browser requirement, failure reports.

Artifacts (screenshots at each step, and on failure the page's screenshot and HTML) go to
``$UI_ARTIFACTS_DIR`` or ``.ci/artifacts/ui/`` (git-ignored), one folder per test, emptied when the
test starts; the dagster dev log is ``dagster-dev-<xdist worker>.log`` beside them. A failure report ends with
their path.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from ingestion_platform_tests.ui.browser import Browser, Ui, browser_missing
from ingestion_platform_tests.ui.dagster_dev import REPO, DagsterDev

ARTIFACTS_ROOT = Path(os.environ.get("UI_ARTIFACTS_DIR") or REPO / ".ci" / "artifacts" / "ui").resolve()


@pytest.fixture(scope="session")
def browser_required() -> None:
    """Skipped without Chromium and its driver, except in CI (``CI`` set), where that fails."""
    reason = browser_missing()
    if reason is not None:
        if os.environ.get("CI"):
            pytest.fail(f"browser tests must run in CI: {reason}")
        pytest.skip(reason)


@pytest.fixture
def ui_artifacts(request: pytest.FixtureRequest) -> Path:
    folder = ARTIFACTS_ROOT / request.node.name
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder


def open_ui(server: DagsterDev, artifacts: Path, profile: Path) -> Iterator[Ui]:
    browser = Browser(artifacts, profile)
    try:
        yield Ui(browser, server.url, artifacts)
    finally:
        browser.quit()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    if not report.failed or report.when == "teardown":
        return
    funcargs = getattr(item, "funcargs", {})
    lines = []
    ui = funcargs.get("ui")
    if isinstance(ui, Ui):
        saved = ui.save_failure()
        lines.append(f"UI artifacts (a screenshot per step, the failing page): {ui.artifacts}")
        lines += [f"  {p}" for p in saved]
    server = funcargs.get("dagster_server")
    if isinstance(server, DagsterDev):
        lines.append(server.log_tail(40))
    else:
        lines += [f"dagster dev log: {log}" for log in sorted(ARTIFACTS_ROOT.glob("dagster-dev-*.log"))]
    if lines:
        report.sections.append(("UI artifacts", "\n".join(lines)))
