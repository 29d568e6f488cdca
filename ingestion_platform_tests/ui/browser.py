"""Headless Debian Chromium through Selenium, with explicit waits and screenshots.

Selenium is pointed at ``/usr/bin/chromium`` and ``/usr/bin/chromedriver`` (Debian's ``chromium``
and ``chromium-driver``): with a driver path given, Selenium Manager is never asked to download a
browser or a driver.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from ingestion_platform.lib import processes

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")

T = TypeVar("T")


def browser_missing() -> str | None:
    """Why the browser tests cannot run here, or None."""
    for path in (CHROMIUM, CHROMEDRIVER):
        if not os.access(path, os.X_OK):
            return f"{path} not found (apt-get install chromium chromium-driver)"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[dev]')"
    return None


def xpath_literal(text: str) -> str:
    """``text`` as an XPath string literal, whatever quotes it holds."""
    if "'" not in text:
        return f"'{text}'"
    if '"' not in text:
        return f'"{text}"'
    parts = text.split("'")
    return "concat(" + ', "\'", '.join(f"'{p}'" for p in parts) + ")"


class Browser:
    """One headless Chromium; ``quit()`` also kills whatever of it survives the driver."""

    def __init__(self, artifacts: Path, profile: Path, width: int = 1600, height: int = 1000) -> None:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        self.artifacts = artifacts
        self.marker = processes.new_marker()
        self.profile = profile
        options = webdriver.ChromeOptions()
        options.binary_location = str(CHROMIUM)
        for arg in (
            "--headless=new",
            "--no-sandbox",  # CI runs as root
            "--disable-dev-shm-usage",
            "--disable-gpu",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-extensions",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={self.profile}",
            f"--window-size={width},{height}",
        ):
            options.add_argument(arg)
        env = {**os.environ, processes.MARKER_VARIABLE: self.marker}
        service = Service(executable_path=str(CHROMEDRIVER), log_output=str(artifacts / "chromedriver.log"), env=env)
        try:
            self.driver = webdriver.Chrome(options=options, service=service)
        except BaseException:
            processes.kill_all(self.marker)  # a driver that started but failed to open a session
            raise
        self.driver.set_page_load_timeout(180)

    def quit(self) -> None:
        try:
            self.driver.quit()
        finally:
            survivors = processes.kill_all(self.marker)
            if survivors:
                raise AssertionError("browser processes survived:\n" + processes.describe(survivors))


class Ui:
    """Explicit waits over one browser, a screenshot at each step, artifacts kept in one folder."""

    def __init__(self, browser: Browser, base_url: str, artifacts: Path, default_timeout_s: float = 120.0) -> None:
        self.browser = browser
        self.driver = browser.driver
        self.base_url = base_url
        self.artifacts = artifacts
        self.timeout_s = default_timeout_s
        self._step = 0

    # -- artifacts ------------------------------------------------------------------------------------
    def shot(self, name: str) -> Path:
        self._step += 1
        path = self.artifacts / f"{self._step:02d}-{name}.png"
        self.driver.save_screenshot(str(path))
        return path

    def save_failure(self) -> list[Path]:
        saved = []
        try:
            path = self.artifacts / "failure.png"
            self.driver.save_screenshot(str(path))
            saved.append(path)
            html = self.artifacts / "failure.html"
            html.write_text(self.driver.page_source, encoding="utf-8")
            saved.append(html)
            (self.artifacts / "failure-url.txt").write_text(self.driver.current_url + "\n", encoding="utf-8")
        except Exception as exc:  # the browser itself may be what failed
            (self.artifacts / "failure-browser-error.txt").write_text(repr(exc), encoding="utf-8")
        return saved

    # -- navigation and waits ---------------------------------------------------------------------------
    def go(self, path: str) -> None:
        self.driver.get(self.base_url + path)

    def wait(
        self, condition: Callable[[], T | bool | None], what: str, timeout_s: float | None = None, poll_s: float = 0.25
    ) -> T:
        """Poll ``condition`` until it returns something truthy; page changes under it are retried."""
        from selenium.common.exceptions import (
            ElementClickInterceptedException,
            ElementNotInteractableException,
            NoSuchElementException,
            StaleElementReferenceException,
        )

        transient = (
            NoSuchElementException,
            StaleElementReferenceException,
            ElementClickInterceptedException,
            ElementNotInteractableException,
        )
        timeout_s = self.timeout_s if timeout_s is None else timeout_s
        deadline = time.monotonic() + timeout_s
        last: Exception | None = None
        while True:
            try:
                value = condition()
                if value:
                    return value  # type: ignore[return-value]
            except transient as exc:
                last = exc
            if time.monotonic() > deadline:
                detail = f" (last error: {type(last).__name__}: {str(last).splitlines()[0]})" if last else ""
                raise AssertionError(
                    f"timed out after {timeout_s:.0f} s waiting for {what}{detail}; page {self.driver.current_url};"
                    f" screenshots in {self.artifacts}"
                )
            time.sleep(poll_s)

    def visible(self, xpath: str, within: Any = None) -> Any:
        """The first displayed element matching ``xpath`` (under ``within``), or None."""
        from selenium.webdriver.common.by import By

        for element in (within or self.driver).find_elements(By.XPATH, xpath):
            if element.is_displayed():
                return element
        return None

    def wait_visible(self, xpath: str, what: str, within: Any = None, timeout_s: float | None = None) -> Any:
        return self.wait(lambda: self.visible(xpath, within), what, timeout_s)

    def click(self, xpath: str, what: str, within: Any = None, timeout_s: float | None = None) -> None:
        """Click the element once it is displayed and enabled (retried while something covers it)."""

        def attempt() -> bool:
            element = self.visible(xpath, within)
            if element is None or not element.is_enabled() or element.get_attribute("disabled") is not None:
                return False
            element.click()
            return True

        self.wait(attempt, f"{what} to be clickable", timeout_s)

    def type_into(self, element: Any, text: str, enter: bool = True) -> None:
        from selenium.webdriver.common.keys import Keys

        element.click()
        element.send_keys(Keys.CONTROL, "a")
        element.send_keys(Keys.BACKSPACE)
        element.send_keys(text)
        if enter:
            element.send_keys(Keys.ENTER)
