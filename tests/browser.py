"""A real headless Chromium for the dashboard's browser tests: Debian's `chromium` driven by
its `chromedriver` through Selenium, with its own profile, HOME and TMPDIR, and no network
but 127.0.0.1 (every other host name resolves to nothing). ORCHESTRATOR_CHROMIUM and
ORCHESTRATOR_CHROMEDRIVER name other executables (CI's Chrome for Testing on GitHub's
runners, which are not root and have no Debian chromium). Missing Chromium is a failure
that says how to install it, never a skip."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.conftest import REPO, cli_env

if TYPE_CHECKING:
    from collections.abc import Callable

    from selenium.webdriver.remote.webdriver import WebDriver

SCREENSHOTS_ENV = "ORCHESTRATOR_SCREENSHOTS"  # =1: the screenshots also go to docs/dashboard/
DOCS_SHOTS = REPO / "docs" / "dashboard"
CHROMIUM_ENV, CHROMEDRIVER_ENV = "ORCHESTRATOR_CHROMIUM", "ORCHESTRATOR_CHROMEDRIVER"
INSTALL = (
    "the dashboard's browser tests need Debian's chromium and chromedriver: run scripts/test "
    "(it installs them as root), or `apt-get install chromium chromium-driver`, or name a "
    f"Chrome or Chromium and its chromedriver in {CHROMIUM_ENV} and {CHROMEDRIVER_ENV}"
)


def executable(variable: str, command: str) -> str | None:
    """The executable the environment variable names (it must be one), else `command` on
    PATH, else None."""
    named = os.environ.get(variable)
    if not named:
        return shutil.which(command)
    if not os.access(named, os.X_OK) or not Path(named).is_file():
        pytest.fail(f"{variable}={named} is not an executable file; {INSTALL}")
    return named


def chromium(tmp: Path) -> WebDriver:
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    binary = executable(CHROMIUM_ENV, "chromium")
    driver = executable(CHROMEDRIVER_ENV, "chromedriver")
    if binary is None or driver is None:
        pytest.fail(INSTALL)
    options = Options()
    options.binary_location = binary
    for arg in (
        "--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
        f"--user-data-dir={tmp / 'profile'}", "--window-size=1280,1000", "--no-first-run",
        "--no-default-browser-check", "--disable-background-networking", "--disable-sync",
        "--disable-component-update", "--disable-default-apps", "--disable-extensions",
        "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
    ):  # fmt: skip
        options.add_argument(arg)
    service = Service(executable_path=driver, env=cli_env(tmp), log_output=str(tmp / "driver.log"))
    browser = webdriver.Chrome(options=options, service=service)
    browser.set_page_load_timeout(30)
    return browser


def wait_until(browser: WebDriver, predicate: Callable[[WebDriver], Any], timeout: float = 20,
               what: str = "the page") -> Any:  # fmt: skip
    """Polls `predicate(browser)` every 20 ms; its first true value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate(browser)
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}; page: {browser.current_url}\n"
                         f"{browser.find_element('tag name', 'body').text[:2000]}")  # fmt: skip


def screenshot(browser: WebDriver, tmp: Path, name: str) -> Path:
    """A PNG of the whole page into `tmp`; with ORCHESTRATOR_SCREENSHOTS=1 copied into
    docs/dashboard/ too (the pictures docs/dashboard.md shows)."""
    height = browser.execute_script("return document.documentElement.scrollHeight")
    # the window's height includes the browser's own bars: leave room for them
    browser.set_window_size(1280, min(max(int(height), 600) + 300, 2600))
    path = tmp / f"{name}.png"
    assert browser.save_screenshot(str(path)), name
    data = path.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 5000, name
    if os.environ.get(SCREENSHOTS_ENV) == "1":
        DOCS_SHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, DOCS_SHOTS / path.name)
    browser.set_window_size(1280, 1000)
    return path
