"""What a person does in the Dagster UI, step by step, and what they look at.

The production build of the UI renders no ``data-testid`` attributes (they exist in its test
builds only), so the selectors are visible text (button labels, tab names, status tags), ARIA
roles (``role="dialog"``, ``role="tab"``), the ``title`` the UI puts on truncated names, input
placeholders, and the colour token of the status dots (``var(--color-accent-green)``).
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass
from urllib.parse import quote

from ingestion_platform_tests.ui.browser import Ui, xpath_literal
from ingestion_platform_tests.ui.dagster_dev import DagsterDev

#: a run on the noisy 2-core CI box: one sample day takes a couple of minutes, a backfill longer
RUN_TIMEOUT_S = 1500.0
LAUNCH_TIMEOUT_S = 180.0
#: how long the UI may lag behind what the instance already knows (partition health, check statuses)
STATUS_TIMEOUT_S = 180.0


def _text_is(text: str) -> str:
    return f"normalize-space(.)={xpath_literal(text)}"


def _asset_url(asset_path: list[str], view: str) -> str:
    return "/assets/" + "/".join(quote(p) for p in asset_path) + f"?view={view}"


@dataclass(frozen=True)
class Launched:
    kind: str  # "run" or "backfill"
    id: str


# -- the asset graph and the launch dialog ---------------------------------------------------------------
def open_asset_group(ui: Ui, location: str, group: str, asset_names: list[str]) -> None:
    ui.go(f"/locations/{quote(location)}/asset-groups/{quote(group)}")
    for name in asset_names:
        ui.wait_visible(f"//*[{_text_is(name)}]", f"asset {name} in the graph of group {group}")
    ui.wait_visible("//button[starts-with(normalize-space(.), 'Materialize all')]", "the Materialize all button")
    ui.shot(f"asset-group-{group}")


def launch_materialize_all(ui: Ui, server: DagsterDev, partitions: str, count: int, label: str) -> Launched:
    """Materialize all… -> the partition dialog: all partitions shown, ``partitions`` typed in
    (``2025-03-14`` or ``[2025-03-13...2025-03-15]``), ``count`` selected, Launch."""
    ui.click("//button[starts-with(normalize-space(.), 'Materialize all')]", "Materialize all")
    dialog = ui.wait_visible(
        "//div[@role='dialog'][.//*[starts-with(normalize-space(.), 'Launch runs to materialize')]]",
        "the launch dialog",
    )
    # The dialog shows the last 90 days by default: the sample days are older than that.
    show_all = "//button[normalize-space(.)='Show all partitions']"
    all_time = "//button[normalize-space(.)='All time']"
    ui.wait(lambda: ui.visible("." + show_all, dialog) or ui.visible("." + all_time, dialog), "the partition range")
    if ui.visible("." + show_all, dialog):
        ui.click("." + show_all, "Show all partitions", within=dialog)
    ui.wait_visible("." + all_time, "all partitions shown", within=dialog)

    def range_input():
        box = ui.visible(".//input[@type='text']", dialog)
        placeholder = (box.get_attribute("placeholder") or "") if box is not None else "Loading"
        return box if not placeholder.startswith("Loading") else None

    box = ui.wait(range_input, "the partition keys in the dialog")
    ui.type_into(box, partitions)
    selected = f"{count} partition" + ("" if count == 1 else "s")
    ui.wait_visible(f".//*[{_text_is(selected)}]", f"'{selected}' selected", within=dialog)
    button = f".//button[{_text_is(label)}]"
    ui.wait_visible(button, f"the {label} button", within=dialog)
    ui.shot("partitions-chosen")

    known_runs = {r["runId"] for r in server.runs()}
    known_backfills = set(_backfill_ids(server))
    ui.click(button, label, within=dialog)
    # A toast says "Launched run …" or "Created backfill …" with a View link, for a few seconds.
    view = "//a[normalize-space(.)='View' and contains(@href, '/runs/')]"
    try:
        link = ui.wait_visible(view, "the View link of the launch toast", timeout_s=LAUNCH_TIMEOUT_S)
        href = link.get_attribute("href")
        ui.shot("launched")
        link.click()
    except AssertionError:
        # The toast went by unseen (a starved browser): find what the click launched.
        href = None
    if href:
        match = re.search(r"/runs/(b/)?([^/?#]+)", href)
        assert match, href
        return Launched("backfill" if match.group(1) else "run", match.group(2))
    new_backfills = set(_backfill_ids(server)) - known_backfills
    new_runs = {r["runId"] for r in server.runs()} - known_runs
    if len(new_backfills) == 1:
        launched = Launched("backfill", new_backfills.pop())
        ui.go(f"/runs/b/{launched.id}")
    elif len(new_runs) == 1 and not new_backfills:
        launched = Launched("run", new_runs.pop())
        ui.go(f"/runs/{launched.id}")
    else:
        raise AssertionError(f"{label}: no launch toast, new runs {new_runs}, new backfills {new_backfills}")
    return launched


def _backfill_ids(server: DagsterDev) -> list[str]:
    data = server.graphql("{ partitionBackfillsOrError { ... on PartitionBackfills { results { id } } } }")
    return [b["id"] for b in data["partitionBackfillsOrError"].get("results", [])]


# -- runs and backfills ---------------------------------------------------------------------------------
def _page_title(short_id: str) -> str:
    """The "Runs / <id>" title of a run or backfill page (a link back to Runs, then the id)."""
    return f"//*[a[{_text_is('Runs')}]][translate(normalize-space(.), ' ', '')={xpath_literal('Runs/' + short_id)}]"


RUN_TERMINAL = ("Success", "Failure", "Canceled")


def wait_run_succeeded(ui: Ui, server: DagsterDev, run_id: str) -> None:
    """Watch the run page until its status tag is terminal: Success expected."""
    if f"/runs/{run_id}" not in ui.driver.current_url:
        ui.go(f"/runs/{run_id}")
    title = _page_title(run_id[:8])
    ui.wait_visible(title, f"the page of run {run_id}")
    ui.shot("run-page")
    # The status tag beside the title: Queued, Starting, Started, then Success (or Failure, Canceled).
    terminal = " or ".join(_text_is(s) for s in RUN_TERMINAL)
    status_tag = f"{title}/following-sibling::*//*[not(*)][{terminal}]"
    tag = _wait_with_reload(ui, status_tag, f"run {run_id} to finish")
    status = tag.text.strip()
    ui.shot(f"run-{status.lower()}")
    api = server.run(run_id)["status"]
    assert status == "Success" and api == "SUCCESS", f"run {run_id}: the page says {status}, the API {api}"


BACKFILL_TERMINAL = ("Succeeded", "Completed", "Failed", "Canceled", "Failing", "Canceling")


def wait_backfill_succeeded(ui: Ui, server: DagsterDev, backfill_id: str, asset_labels: list[str]) -> list[str]:
    """Watch the backfill page until its Status is terminal (Succeeded expected), every asset
    100% completed; returns the backfill's run ids."""
    if f"/runs/b/{backfill_id}" not in ui.driver.current_url:
        ui.go(f"/runs/b/{backfill_id}")
    title = _page_title(backfill_id)
    ui.wait_visible(title, f"the page of backfill {backfill_id}")
    ui.shot("backfill-page")
    status_xpath = "//div[normalize-space(text())='Status']/following-sibling::*[1]"

    def terminal():
        element = ui.visible(status_xpath)
        return element if element is not None and element.text.strip() in BACKFILL_TERMINAL else None

    status = _wait_with_reload(ui, None, f"backfill {backfill_id} to finish", condition=terminal).text.strip()
    for label in asset_labels:
        ui.wait_visible(
            f"//div[@title={xpath_literal(label)}]/ancestor::a[1]/following-sibling::*"
            "//*[normalize-space(text())='100% completed']",
            f"{label} 100% completed in the backfill",
            timeout_s=STATUS_TIMEOUT_S,
        )
    ui.shot(f"backfill-{status.lower()}")
    api = server.backfill(backfill_id)
    assert status == "Succeeded" and api["status"] == "COMPLETED_SUCCESS", (
        f"backfill {backfill_id}: the page says {status}, the API {api['status']}"
    )
    runs = api["runs"]
    assert runs and {r["status"] for r in runs} == {"SUCCESS"}, f"backfill {backfill_id} runs: {runs}"
    return [r["runId"] for r in runs]


def _wait_with_reload(ui: Ui, xpath: str | None, what: str, condition=None, reload_every_s: float = 120.0):
    """Wait up to RUN_TIMEOUT_S, reloading the page now and then in case a live update was missed."""
    condition = condition or (lambda: ui.visible(xpath))
    waited = 0.0
    while True:
        try:
            return ui.wait(condition, what, timeout_s=reload_every_s)
        except AssertionError:
            waited += reload_every_s
            if waited >= RUN_TIMEOUT_S:
                raise
            ui.driver.refresh()


# -- an asset's partitions and checks ----------------------------------------------------------------------
def _row_dot(day: str) -> str:
    """The status dot of the partition row named ``day`` in a partition list."""
    return f"//div[@title={xpath_literal(day)}]/parent::div/following-sibling::div[contains(@style, 'border-radius')]"


def _wait_dot_green(ui: Ui, day: str, what: str) -> None:
    def green():
        dot = ui.visible(_row_dot(day))
        return dot is not None and "accent-green" in (dot.get_attribute("style") or "")

    try:
        ui.wait(green, what, timeout_s=STATUS_TIMEOUT_S)
    except AssertionError:
        dot = ui.visible(_row_dot(day))
        style = dot.get_attribute("style") if dot is not None else "no row"
        raise AssertionError(f"{what}: the dot of {day} is not green ({style})") from None


def assert_partitions_materialised(ui: Ui, asset_path: list[str], days: list[str], run_ids: set[str]) -> None:
    """The asset's Partitions tab: each day's dot green, its detail "Materialized" by one of ``run_ids``."""
    name = "/".join(asset_path)
    ui.go(_asset_url(asset_path, "partitions"))
    search = ui.wait_visible("//input[starts-with(@placeholder, 'Filter by name')]", f"the partitions of {name}")
    for day in days:
        ui.type_into(search, day, enter=False)
        _wait_dot_green(ui, day, f"partition {day} of {name} materialised (green)")
        ui.click(f"//div[@title={xpath_literal(day)}]", f"partition {day} of {name}")
        # The detail pane: the day as its title, a "Materialized" tag, the run that materialised it.
        materialized = f".//*[not(*)][{_text_is('Materialized')}]"
        ui.wait_visible(
            f"//div[@title={xpath_literal(day)}]/ancestor::*[position() <= 3][{materialized}]",
            f"the detail of partition {day} of {name} saying Materialized",
        )

        def run_link():
            links = ui.driver.find_elements("xpath", "//a[contains(@href, '/runs/')]")
            return {link.text.strip() for link in links if link.is_displayed()} & {r[:8] for r in run_ids}

        ui.wait(run_link, f"partition {day} of {name} materialised by one of the runs {sorted(run_ids)}")
        ui.shot(f"{asset_path[-1]}-{day}-materialised")


#: the colour tokens of the status dots of a check's partitions
CHECK_DOT_STATUS = {
    "accent-green": "Passed",
    "accent-yellow": "Skipped",
    "accent-red": "Failed",
    "accent-blue": "In progress",
    "accent-gray": "Missing",
}
_UNSETTLED = {None, "", "In progress", "Missing", "Not evaluated"}


@dataclass
class CheckView:
    """What the asset's Checks tab shows of one check."""

    listed: str | None  # the status under its name in the list: Succeeded, Failed, Skipped, ...
    result: str | None  # Overview, Latest execution, "Evaluation result": Passed, Failed, ...
    run_id: str | None  # the run of that execution (its Timestamp links to the run's page)
    partitions: dict[str, str]  # Partitions tab: day -> Passed, Skipped, Failed, ... (by the dot's colour)


def _settled(read, settled, what: str, ui: Ui):
    """``read()`` once it is ``settled`` (or its last value after STATUS_TIMEOUT_S: the caller asserts)."""
    last = {"value": None}

    def attempt():
        last["value"] = read()
        return settled(last["value"])

    with contextlib.suppress(AssertionError):
        ui.wait(attempt, what, timeout_s=STATUS_TIMEOUT_S)
    return last["value"]


def read_checks(ui: Ui, asset_path: list[str], checks: list[str], days: list[str] = ()) -> dict[str, CheckView]:
    """The asset's Checks tab, check by check: its status in the list, its latest execution
    (Overview), and with ``days`` the status of each day on its Partitions tab."""
    name = "/".join(asset_path)
    ui.go(_asset_url(asset_path, "checks"))
    ui.wait_visible(f"//*[{_text_is(f'Checks ({len(checks)})')}]", f"the {len(checks)} checks of {name}")
    search = ui.wait_visible("//input[@placeholder='Filter checks']", f"the check filter of {name}")
    views = {}
    for check in checks:
        ui.type_into(search, check, enter=False)
        row = f"//div[@title={xpath_literal(check)}]"

        def listed(row=row):
            element = ui.visible(f"{row}/following-sibling::span[1]")
            return element.text.strip() if element is not None else None

        view = CheckView(_settled(listed, lambda v: v not in _UNSETTLED, f"check {check} listed", ui), None, None, {})
        ui.click(row, f"check {check}")
        # The detail's heading is the check's name (the list's names carry a title: not those).
        ui.wait_visible(f"//*[not(*)][{_text_is(check)}][not(ancestor::*[@title])]", f"the detail of check {check}")

        def latest():
            result = ui.visible("//*[normalize-space(text())='Evaluation result']/following-sibling::*[1]")
            link = ui.visible("//*[normalize-space(text())='Timestamp']/following-sibling::a[1]")
            href = link.get_attribute("href") if link is not None else ""
            match = re.search(r"/runs/([0-9a-f-]{36})", href or "")
            return (result.text.strip() if result is not None else None, match.group(1) if match else None)

        view.result, view.run_id = _settled(
            latest, lambda v: v[0] not in _UNSETTLED and v[1], f"the latest execution of check {check}", ui
        )
        if days:
            # The detail's own tabs come after the asset's (which has a Partitions tab too).
            ui.click(f"(//*[@role='tab'][{_text_is('Partitions')}])[last()]", f"the Partitions tab of check {check}")
            partition_search = ui.wait_visible(
                "//input[starts-with(@placeholder, 'Filter by partition')]", f"the partitions of check {check}"
            )
            for day in days:
                ui.type_into(partition_search, day, enter=False)

                def dot(day=day):
                    element = ui.visible(_row_dot(day))
                    style = (element.get_attribute("style") or "") if element is not None else ""
                    found = [status for token, status in CHECK_DOT_STATUS.items() if token in style]
                    return found[0] if len(found) == 1 else (style or None)

                view.partitions[day] = _settled(dot, lambda v: v not in _UNSETTLED, f"{check} for {day}", ui)
        ui.shot(f"{asset_path[-1]}-check-{check}")
        views[check] = view
    return views
