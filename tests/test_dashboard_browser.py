"""The dashboard in a real headless Chromium: a task dropped into the inbox appears on the
overview and turns succeeded with no reload; the cancel and retry buttons work; the spend
page draws its charts; a visit without the token is refused. The screenshots in
docs/dashboard/ are taken here (ORCHESTRATOR_SCREENSHOTS=1 writes them there)."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from selenium.webdriver.support.select import Select

from tests.browser import chromium, screenshot, wait_until
from tests.conftest import Daemon, drop_task, orchestrator, write_config
from tests.dashboard_helpers import Dashboard
from tests.test_progress import stream_files

if TYPE_CHECKING:
    from collections.abc import Iterator

    from selenium.webdriver.remote.webdriver import WebDriver

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebDriver]:
    driver = chromium(tmp_path_factory.mktemp("chromium"))
    yield driver
    driver.quit()


def css(browser: WebDriver, selector: str) -> list[Any]:
    return list(browser.find_elements("css selector", selector))


def js_text(browser: WebDriver, selector: str, attribute: str | None = None) -> str | None:
    """An element's text (or attribute) read in one script: the live part is swapped
    while the test looks, so an element found first and read after may be gone."""
    value: str | None = browser.execute_script(
        "const e = document.querySelector(arguments[0]);"
        "return e ? (arguments[1] ? e.getAttribute(arguments[1]) : e.textContent) : null;",
        selector,
        attribute,
    )
    return value


def state_of(browser: WebDriver, selector: str) -> str | None:
    return js_text(browser, selector, "data-state")


def test_a_dropped_task_appears_and_turns_succeeded_without_a_reload(
    workspace: Path, browser: WebDriver, tmp_path: Path
) -> None:
    files = stream_files()  # a tool that reports its progress as it goes
    files["policies.yaml"]["budgets"] = {"daily_usd": 0.01, "monthly_usd": 0.5,
                                         "warn_at_percent": 50, "mode": "soft"}  # fmt: skip
    write_config(workspace, files)
    drop_task(workspace, "earlier.yaml", {"id": "earlier", "agent": "worker", "prompt": "hi"})
    assert orchestrator(workspace, "run", "--once").returncode == 0
    daemon = Daemon(workspace)
    dash = Dashboard(workspace)
    try:
        browser.get(dash.url)
        wait_until(browser, lambda b: js_text(b, "#conn") == "live", what="the event stream")
        assert "token=" not in browser.current_url  # dropped from the address bar
        browser.execute_script("window.notReloaded = 'yes'")
        drop_task(workspace, "hello.yaml", {"id": "hello", "agent": "streamer",
                                            "prompt": "LINES=5 EVERY=0.6 TOKENS=1200"})  # fmt: skip
        row = '#live tr[data-task="hello"]'
        wait_until(browser, lambda b: state_of(b, row) == "running", what="hello running")
        tokens = f"{row} td:nth-child(7)"
        wait_until(browser, lambda b: (js_text(b, tokens) or "-").isdigit(),
                   what="hello's tokens so far")  # fmt: skip
        first = int(js_text(browser, tokens) or 0)
        wait_until(browser, lambda b: int((js_text(b, tokens) or "0").replace("-", "0")) > first,
                   what="hello's tokens to grow")  # fmt: skip
        screenshot(browser, tmp_path, "overview")
        result = workspace / "work" / "outbox" / "hello.result.yaml"
        wait_until(browser, lambda b: state_of(b, row) == "succeeded", what="hello succeeded")
        seen = time.time()
        assert seen - result.stat().st_mtime < 1.0, "shown more than a second after the result"
        assert browser.execute_script("return window.notReloaded") == "yes"
        assert js_text(browser, '#live [data-count="succeeded"] b') == "2"
        warning = js_text(browser, "#live .warnings li") or ""
        assert warning.startswith("spend today $") and "the budget of $0.01" in warning
    finally:
        dash.stop()
        daemon.stop()


def test_the_cancel_and_retry_buttons_work(
    workspace: Path, browser: WebDriver, tmp_path: Path
) -> None:
    marker = tmp_path / "slept-once"
    daemon = Daemon(workspace)
    dash = Dashboard(workspace)
    try:
        browser.get(dash.url)
        drop_task(workspace, "long.yaml", {"id": "long", "agent": "worker", "title": "A long one",
                                           "prompt": f"SLEEP_ONCE={marker}:60"})  # fmt: skip
        wait_until(browser, lambda b: state_of(b, '#live tr[data-task="long"]') == "running",
                   what="long running")  # fmt: skip
        browser.get(f"{dash.base}/tasks/long")
        head = ".task-head"
        assert state_of(browser, head) == "running"
        css(browser, "#cancel")[0].click()
        wait_until(browser, lambda b: state_of(b, head) == "cancelled", what="cancelled")
        assert "cancelled long" in (js_text(browser, "#notice") or "")
        assert not css(browser, "#cancel")
        css(browser, "#retry")[0].click()
        wait_until(browser, lambda b: "re-queued long" in (js_text(b, "#notice") or ""),
                   what="the retry's notice")  # fmt: skip
        wait_until(browser, lambda b: state_of(b, head) == "succeeded", what="the retry to succeed")
        page = browser.find_element("tag name", "body").text
        assert "work/outbox/history/long.1.result.yaml" in page  # the cancelled run, kept
        screenshot(browser, tmp_path, "task")
        browser.get(f"{dash.base}/tasks?state=succeeded")
        rows = css(browser, "table.tasks tr[data-task]")
        assert [r.get_attribute("data-task") for r in rows] == ["long"]
        screenshot(browser, tmp_path, "tasks")
    finally:
        dash.stop()
        daemon.stop()


def add_history(root: Path, invocations: int) -> None:
    """A month of earlier invocations of several agents and models (as the benchmarks
    build them), under the rows the test's own runs add."""
    from bench._common import build_database

    build_database(root / "work" / "telemetry.db", invocations, 30)
    with sqlite3.connect(root / "work" / "telemetry.db") as db:  # not the fake live tasks
        db.execute("DELETE FROM tasks WHERE task_id LIKE 'live-%'")


def test_the_spend_page_draws_its_charts(
    workspace: Path, browser: WebDriver, tmp_path: Path
) -> None:
    add_history(workspace, 3000)
    for n in range(3):
        drop_task(workspace, f"t{n}.yaml", {"id": f"t{n}", "agent": "worker", "prompt": "hi"})
    assert orchestrator(workspace, "run", "--once").returncode == 0
    dash = Dashboard(workspace)
    try:
        browser.get(dash.url.replace("/?", "/spend?"))
        bars = css(browser, "#cost-chart svg rect.bar")
        assert len(bars) >= 30  # a bar per day at least, stacked by model
        legend = css(browser, "#cost-chart .legend li")
        assert "claude-sonnet-4-5" in [li.text for li in legend]
        assert len(css(browser, "#cost-chart .numbers tr")) > 3  # the numbers beside it
        assert len(css(browser, "#tokens-chart svg rect.bar")) == 4
        ring = css(browser, "#cache-chart svg text")[0].text
        assert ring.endswith("%") and ring != "0%"
        size = bars[0].size
        assert size["height"] > 0 and size["width"] > 0  # drawn, not only in the markup
        screenshot(browser, tmp_path, "spend")
        next(a for a in css(browser, ".switch a") if a.text == "90 days by agent").click()
        wait_until(browser, lambda b: "by agent" in b.title or "by agent" in b.find_element(
            "css selector", "#cost-chart h2").text, what="the 90-day chart")  # fmt: skip
        agents = [li.text for li in css(browser, "#cost-chart .legend li")]
        assert "backend-dev" in agents and "worker" in agents
        browser.get(f"{dash.base}/config")
        assert css(browser, "#config-ok")
        screenshot(browser, tmp_path, "config")
        browser.get(f"{dash.base}/tools")
        assert len(css(browser, "table.tools tbody tr")) == 5
        screenshot(browser, tmp_path, "tools")
    finally:
        dash.stop()


def test_a_visit_without_the_token_is_refused(workspace: Path, browser: WebDriver) -> None:
    dash = Dashboard(workspace)
    try:
        for path in ("/", "/spend", "/?token=not-the-token-at-all", "/api/status"):
            browser.get(dash.base + path)
            body = browser.find_element("tag name", "body").text
            assert "401" in body and "token" in body, (path, body)
            assert "Overview" not in body
        browser.get(dash.url)  # the start URL lets it in
        assert css(browser, "#live")
    finally:
        dash.stop()


def test_the_submit_form_writes_a_task_that_runs(workspace: Path, browser: WebDriver) -> None:
    daemon = Daemon(workspace)
    dash = Dashboard(workspace)
    try:
        browser.get(dash.url.replace("/?", "/tasks?"))
        form = css(browser, "form.submit")[0]
        Select(form.find_element("name", "agent")).select_by_visible_text("worker")
        form.find_element("name", "title").send_keys("From the browser")
        form.find_element("name", "prompt").send_keys("hello from a form")
        css(browser, "#submit")[0].click()
        notice = wait_until(browser, lambda b: js_text(b, "#notice"), what="the notice")
        assert notice.startswith("submitted ")
        task_id = notice.removeprefix("submitted ")
        assert browser.current_url.startswith(f"{dash.base}/tasks/{task_id}")
        wait_until(browser, lambda b: state_of(b, ".task-head") == "succeeded",
                   what="the submitted task to succeed")  # fmt: skip
        assert "title: From the browser" in browser.find_element("tag name", "body").text
    finally:
        dash.stop()
        daemon.stop()
