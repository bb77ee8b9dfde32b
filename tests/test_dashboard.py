"""The dashboard through HTTP: the real `orchestrator dashboard` on 127.0.0.1 (and a real
daemon where tasks must run), spoken to as a browser (cookie) and as an API client
(Bearer). The token, CSRF, the JSON API against the commands' own JSON, the event stream,
privacy; and the pure parts (auth rules, event diffs, charts) as tables."""

from __future__ import annotations

import json
import re
import shutil
import socket
import time
from pathlib import Path
from typing import Any

import pytest

from orchestrator.errors import UsageError
from orchestrator.web import auth, charts, live
from tests.conftest import Daemon, drop_task, orchestrator, result, wait_for, write_config
from tests.conftest import base_config as base
from tests.dashboard_helpers import TOKEN, Dashboard, EventStream
from tests.test_progress import stream_files

EVERY_GET = ["/", "/tasks", "/tasks/x", "/spend", "/config", "/tools", "/fragments/overview",
             "/static/dashboard.css", "/static/dashboard.js", "/api/status", "/api/tasks",
             "/api/tasks/x", "/api/stats", "/api/events"]  # fmt: skip


@pytest.fixture
def dash(workspace: Path) -> Any:
    d = Dashboard(workspace)
    yield d
    assert d.stop() == 0, d.text()


def run_tasks(root: Path, *tasks: tuple[str, str]) -> None:
    for task_id, prompt in tasks:
        drop_task(root, f"{task_id}.yaml", {"id": task_id, "agent": "worker", "prompt": prompt})
    done = orchestrator(root, "run", "--once")
    assert done.returncode == 0, done.stderr


# --- the token ----------------------------------------------------------------------------


def test_every_page_and_api_refuses_a_request_without_the_token(dash: Dashboard) -> None:
    for path in EVERY_GET:
        for headers in ({}, {"Authorization": "Bearer wrong-token-0123456789"},
                        {"Cookie": f"orchestrator_dashboard_{dash.port}=wrong"}):  # fmt: skip
            answer = dash.request("GET", path, headers=headers)
            assert answer.status == 401, (path, headers, answer.status)
            assert b"token" in answer.body
            assert "set-cookie" not in answer.headers
    assert dash.request("GET", "/?token=nearly" + TOKEN).status == 401
    for path in ("/actions/submit", "/tasks/x/cancel", "/api/tasks/x/retry"):
        assert dash.request("POST", path).status == 401


def test_the_start_url_sets_a_strict_http_only_cookie_that_then_suffices(dash: Dashboard) -> None:
    assert dash.token == TOKEN  # ORCHESTRATOR_DASHBOARD_TOKEN
    first = dash.request("GET", f"/?token={TOKEN}")
    assert first.status == 200
    cookie = first.headers["set-cookie"]
    assert cookie.startswith(f"orchestrator_dashboard_{dash.port}={TOKEN};")
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
    assert first.headers["referrer-policy"] == "no-referrer"  # the URL holds the token
    assert "frame-ancestors 'none'" in first.headers["content-security-policy"]
    again = dash.browse("/")
    assert again.status == 200 and "set-cookie" not in again.headers
    assert "<h1>Overview</h1>" in again.text
    assert dash.api("/api/status").status == 200


def test_without_the_variable_a_new_random_token_is_printed(workspace: Path) -> None:
    d = Dashboard(workspace, token=None)
    try:
        assert len(d.token) >= 32 and d.token != TOKEN
        assert "a new token each start" in d.text()
        assert d.request("GET", "/api/status").status == 401
        assert d.api("/api/status").status == 200
    finally:
        d.stop()


def test_bad_tokens_hosts_and_ports_are_clear_errors(workspace: Path) -> None:
    short = orchestrator(workspace, "dashboard", "--port", "0",
                         env={**_env(workspace), auth.TOKEN_ENV: "short"})  # fmt: skip
    assert short.returncode == 1 and "at least 16" in short.stderr
    remote = orchestrator(workspace, "dashboard", "--host", "0.0.0.0", "--port", "0")
    assert remote.returncode == 1
    assert "not a local address" in remote.stderr and auth.TOKEN_ENV in remote.stderr
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        taken = orchestrator(workspace, "dashboard", "--port", str(port))
    assert taken.returncode == 1 and "choose another with --port" in taken.stderr
    assert orchestrator(workspace, "dashboard", "--port", "70000").returncode == 2
    elsewhere = workspace.parent / "not-a-workspace"
    elsewhere.mkdir()
    nothing = orchestrator(elsewhere, "dashboard", "--port", "0")
    assert nothing.returncode == 1 and "is not a workspace" in nothing.stderr


def _env(root: Path) -> dict[str, str]:
    from tests.conftest import cli_env

    return cli_env(root.parent)


@pytest.mark.parametrize(
    ("host", "explicit", "outcome"),
    [("127.0.0.1", False, None), ("localhost", False, None), ("::1", False, None),
     ("127.0.0.2", False, None), ("0.0.0.0", False, UsageError), ("192.168.1.5", False, UsageError),
     ("0.0.0.0", True, "warning"), ("example.org", True, "warning")],
)  # fmt: skip
def test_non_local_hosts_need_a_token_of_ones_own(host: str, explicit: bool, outcome: Any) -> None:
    if outcome is UsageError:
        with pytest.raises(UsageError, match="not a local address"):
            auth.check_host(host, explicit)
    elif outcome is None:
        assert auth.check_host(host, explicit) is None
    else:
        assert "warning: the dashboard listens on" in (auth.check_host(host, explicit) or "")


def test_credentials_rules() -> None:
    token = "t" * 20
    creds = auth.Credentials
    assert creds(None, None, token).via(token) == "bearer"
    assert creds(None, token, None).via(token) == "cookie"
    assert creds(token, None, None).via(token) == "query"
    assert creds("x", "y", "z").via(token) is None
    assert auth.bearer_of("Bearer abc") == "abc" and auth.bearer_of("Basic abc") is None
    assert auth.csrf_ok(token, "bearer", None)
    assert not auth.csrf_ok(token, "cookie", None)
    assert not auth.csrf_ok(token, "cookie", token)  # the token is not its CSRF twin
    assert auth.csrf_ok(token, "cookie", auth.csrf_token(token))
    assert auth.token_from({}) is None
    with pytest.raises(UsageError, match="quotes"):
        auth.token_from({auth.TOKEN_ENV: 'abcdefghijklmnop"q'})


# --- CSRF -----------------------------------------------------------------------------------


def test_a_cross_site_post_carrying_only_the_cookie_is_refused(
    workspace: Path, dash: Dashboard
) -> None:
    root = workspace
    form = "agent=worker&prompt=hello&title=from+elsewhere"
    evil = {"Origin": "http://evil.example", "Referer": "http://evil.example/"}
    for path in ("/actions/submit", "/api/tasks"):
        refused = dash.browse(path, "POST", form, headers=evil)
        assert refused.status == 403 and b"CSRF" in refused.body
        wrong = dash.browse(path, "POST", form + "&csrf=" + "0" * 64)
        assert wrong.status == 403
    assert dash.browse("/tasks/t1/cancel", "POST", "").status == 403
    assert dash.browse("/api/tasks/t1/retry", "POST", "", {"X-CSRF-Token": "nope"}).status == 403
    assert list((root / "work" / "inbox").iterdir()) == []
    csrf = dash.csrf()
    done = dash.browse("/actions/submit", "POST", form + f"&csrf={csrf}")
    assert done.status == 303
    task_id = done.headers["location"].split("/tasks/", 1)[1].split("?", 1)[0]
    assert [p.name for p in (root / "work" / "inbox").iterdir()] == [f"{task_id}.yaml"]
    by_header = dash.browse("/api/tasks", "POST", "agent=worker&prompt=again",
                            {"X-CSRF-Token": csrf})  # fmt: skip
    assert by_header.status == 200 and by_header.json()["said"].startswith("submitted ")
    bearer = dash.api("/api/tasks", "POST", {"agent": "worker", "prompt": "no csrf needed"})
    assert bearer.status == 200
    assert len(list((root / "work" / "inbox").iterdir())) == 3


# --- the JSON API ---------------------------------------------------------------------------


def test_api_status_and_stats_are_the_commands_own_json(workspace: Path) -> None:
    run_tasks(workspace, ("one", "hello"), ("two", "hello again"))
    d = Dashboard(workspace)
    try:
        status = json.loads(orchestrator(workspace, "status", "--json").stdout)
        assert d.api("/api/status").json() == status
        assert status["queue"]["succeeded"] == 2
        for args, query in ((("stats", "--json"), ""),
                            (("stats", "--json", "--by", "agent", "--monthly"),
                             "?by=agent&period=monthly")):  # fmt: skip
            rows = json.loads(orchestrator(workspace, *args).stdout)
            assert rows and d.api("/api/stats" + query).json() == rows
        bad = d.api("/api/stats?since=yesterday")
        assert bad.status == 400 and "YYYY-MM-DD" in bad.json()["error"]
        assert d.api("/api/stats?period=hourly").status == 400
        assert "unknown option" in d.api("/api/stats?colour=red").json()["error"]
    finally:
        d.stop()


def test_api_tasks_lists_filters_and_details_tasks(workspace: Path) -> None:
    run_tasks(workspace, ("alpha-1", "hello"), ("beta-2", "hi"))
    drop_task(workspace, "gamma-3.yaml", {"id": "gamma-3", "agent": "worker", "prompt": "x"})
    d = Dashboard(workspace)
    try:
        listed = d.api("/api/tasks").json()
        assert (listed[0]["id"], listed[0]["state"]) == ("gamma-3", "inbox")
        assert {t["id"]: t["state"] for t in listed[1:]} == {
            "alpha-1": "succeeded", "beta-2": "succeeded"}  # fmt: skip
        assert [t["id"] for t in d.api("/api/tasks?q=ta-2").json()] == ["beta-2"]
        assert d.api("/api/tasks?state=failed").json() == []
        assert len(d.api("/api/tasks?state=succeeded&agent=worker").json()) == 2
        assert d.api("/api/tasks?agent=nobody&state=succeeded").json() == []
        assert d.api("/api/tasks?day=2001-01-01").json() == []
        today = result(workspace, "alpha-1")["finished_at"][:10]
        assert len(d.api(f"/api/tasks?day={today}").json()) == 2
        for query, said in (("state=done", "none of"), ("day=01/02/2026", "YYYY-MM-DD"),
                            ("limit=0", "between"), ("limit=lots", "whole number")):  # fmt: skip
            bad = d.api(f"/api/tasks?{query}")
            assert bad.status == 400 and said in bad.json()["error"], bad.text
        detail = d.api("/api/tasks/alpha-1").json()
        assert detail["state"] == "succeeded" and detail["result"]["status"] == "succeeded"
        assert detail["invocations"][0]["tool"] == "fake"
        assert detail["task_file"].startswith("work/archive/")
        assert d.api("/api/tasks/nope").status == 404
        assert d.api("/api/tasks/..").status in (400, 404)
    finally:
        d.stop()


def test_submit_cancel_and_retry_through_the_api(workspace: Path) -> None:
    d = Dashboard(workspace)
    try:
        unknown = d.api("/api/tasks", "POST", {"agent": "wroker", "prompt": "x"})
        assert unknown.status == 400 and "worker" in unknown.json()["error"]
        assert d.api("/api/tasks", "POST", {"agent": "worker"}).status == 400
        assert d.api("/api/tasks", "POST", [1, 2]).status == 400
        made = d.api("/api/tasks", "POST", {"agent": "worker", "prompt": "hi", "id": "mine"})
        assert made.json() == {"id": "mine", "said": "submitted mine"}
        cancelled = d.api("/api/tasks/mine/cancel", "POST", {})
        assert cancelled.status == 200 and "cancelled mine" in cancelled.json()["said"]
        assert result(workspace, "mine")["status"] == "cancelled"
        again = d.api("/api/tasks/mine/cancel", "POST", {})
        assert again.status == 400 and "finished already" in again.json()["error"]
        retried = d.api("/api/tasks/mine/retry", "POST", {})
        assert retried.status == 200 and "re-queued mine" in retried.json()["said"]
        assert (workspace / "work" / "inbox" / "mine.yaml").exists()
        shutil.rmtree(workspace / "work" / "inbox")
        (workspace / "work" / "inbox").write_text("a file where the inbox should be")
        broken = d.api("/api/tasks", "POST", {"agent": "worker", "prompt": "hi"})
        assert broken.status == 503, broken.text
        assert "file system error" in broken.json()["error"] and "inbox" in broken.json()["error"]
    finally:
        d.stop()


# --- live events ------------------------------------------------------------------------------


def test_the_event_stream_tells_state_changes_and_progress(workspace: Path) -> None:
    daemon = Daemon(workspace)
    d = Dashboard(workspace)
    stream = EventStream(d)
    try:
        assert stream.answer.status == 200
        assert stream.answer.getheader("content-type", "").startswith("text/event-stream")
        first = stream.until(lambda kind, data: kind == "status")
        assert first[-1][1]["queue"]["running"] == 0
        drop_task(workspace, "slow.yaml", {"id": "slow", "agent": "worker",
                                           "prompt": "SLEEP=1.5"})  # fmt: skip
        stream.until(lambda k, data: k == "task" and data == {"id": "slow", "state": "running"})
        seen = stream.until(lambda k, data: k == "task" and data["state"] == "succeeded")
        assert seen[-1][1]["id"] == "slow"
        written = (workspace / "work" / "outbox" / "slow.result.yaml").stat().st_mtime
        assert time.time() - written < 1.5  # told within the poll interval (0.3 s)
        status = stream.until(lambda k, data: k == "status")[-1][1]
        assert status["queue"]["succeeded"] == 1 and status["running"] == []
        assert d.stop() == 0, d.text()  # an open stream does not hold up the stop
        assert "dashboard stopped" in d.text()
    finally:
        stream.close()
        d.stop()
        daemon.stop()


def test_the_event_stream_carries_a_running_tasks_progress(workspace: Path) -> None:
    write_config(workspace, stream_files())
    daemon = Daemon(workspace)
    d = Dashboard(workspace)
    stream = EventStream(d)
    try:
        drop_task(workspace, "steps.yaml", {"id": "steps", "agent": "streamer",
                                            "prompt": "LINES=4 EVERY=0.7 TOKENS=1000"})  # fmt: skip
        seen = stream.until(lambda k, data: k == "task" and data["state"] == "succeeded")
        progress = [data for kind, data in seen if kind == "progress"]
        assert progress, seen
        assert all(p["id"] == "steps" for p in progress)
        tokens = [p["tokens"] for p in progress if p["tokens"] is not None]
        assert tokens == sorted(tokens) and tokens[-1] > tokens[0] >= 1000
        assert any(p["cost_usd"] for p in progress)
    finally:
        stream.close()
        d.stop()
        daemon.stop()


def test_an_unreadable_database_is_told_not_hidden(workspace: Path) -> None:
    (workspace / "work" / "telemetry.db").write_bytes(b"this is not a database" * 100)
    d = Dashboard(workspace)
    try:
        overview = d.api("/").text
        assert overview.count("telemetry database") >= 1 and "not usable" in overview
        tasks = d.api("/api/tasks")
        assert tasks.status == 503 and "move the file aside" in tasks.json()["error"]
        assert d.api("/api/stats").status == 503
        page = d.api("/spend")
        assert page.status == 503 and "telemetry database" in page.text
        assert d.api("/api/status").json()["telemetry"]["unreadable"] is True
    finally:
        d.stop()


def snap(running: list[dict[str, Any]], recent: list[dict[str, Any]]) -> dict[str, Any]:
    status = {"queue": {"running": len(running)}, "running": running, "waiting": [],
              "scheduled": []}  # fmt: skip
    return {"status": status, "recent": recent}


def test_changes_are_computed_from_two_looks() -> None:
    a = {"id": "a", "elapsed_s": 1.0, "idle_s": 0.5, "step": "turn 1", "tokens": 10}
    assert live.changes(None, snap([a], [])) == [("status", snap([a], [])["status"])]
    moved = {**a, "elapsed_s": 2.0, "idle_s": 1.5}
    assert live.changes(snap([a], []), snap([moved], [])) == []  # only the clocks moved
    stepped = {**a, "step": "tool Read"}
    kinds = [k for k, _ in live.changes(snap([a], []), snap([stepped], []))]
    assert kinds == ["progress", "status"]
    done = live.changes(snap([a], []), snap([], [{"id": "a", "state": "succeeded"}]))
    assert done[0] == ("task", {"id": "a", "state": "succeeded"})
    assert live.format_event("task", {"id": "a"}) == 'event: task\ndata: {"id":"a"}\n\n'


# --- pages and privacy --------------------------------------------------------------------------


def test_pages_hide_prompts_unless_privacy_is_full(workspace: Path) -> None:
    secret = "the-secret-prompt-words"
    run_tasks(workspace, ("private", secret))
    d = Dashboard(workspace)
    try:
        page = d.api("/tasks/private").text
        before, output = page.split('<section id="output">', 1)
        task_file = output.split("<h2>Task file</h2>", 1)[1]
        assert secret in output.split("</section>", 1)[0]  # the fake tool's answer echoes it
        assert secret not in before and secret not in task_file
        assert "privacy.prompts is not `full`" in task_file
        assert secret not in json.dumps(d.api("/api/tasks/private").json()["task"])
    finally:
        d.stop()
    files = base()
    files["policies.yaml"]["privacy"] = {"prompts": "full"}
    write_config(workspace, files)
    d = Dashboard(workspace)
    try:
        page = d.api("/tasks/private").text
        assert "Task file" in page and secret in page.split("Task file", 1)[1]
        assert d.api("/api/tasks/private").json()["task"]["prompt"] == secret
    finally:
        d.stop()


def test_pages_render_escaped_and_bad_filters_are_told(workspace: Path) -> None:
    run_tasks(workspace, ("a<b>", "hello"))
    d = Dashboard(workspace)
    try:
        page = d.api("/tasks").text
        assert "a&lt;b&gt;" in page and "<b>" not in page.split("<main>", 1)[1].replace(
            "<b>0</b>", "").replace("<b>1</b>", "")  # fmt: skip
        bad = d.api("/tasks?state=nope")
        assert bad.status == 400 and "none of" in bad.text
        assert d.api("/spend?days=7").status == 400
        spend = d.api("/spend?days=90&by=agent").text
        assert 'class="bar"' in spend and "worker" in spend
        assert "config OK" in d.api("/config").text
        tools = d.api("/tools").text
        assert "definitely-not-an-installed-tool: not found" in tools
        assert re.search(r"of \d+ tools ready", tools)
    finally:
        d.stop()


def test_a_config_that_does_not_load_is_shown_with_its_problems(workspace: Path) -> None:
    d = Dashboard(workspace)
    try:
        assert "config OK" in d.api("/config").text
        files = base()
        files["agents.yaml"]["agents"]["worker"]["preferred_tool"] = "nonesuch"
        write_config(workspace, files)
        page = d.api("/config").text
        assert 'id="problems"' in page and "nonesuch" in page
        refused = d.api("/api/tasks", "POST", {"agent": "worker", "prompt": "x"})
        assert refused.status == 400 and "does not load" in refused.json()["error"]
    finally:
        d.stop()


def test_charts_draw_stacked_bars_and_say_when_empty() -> None:
    days = ["2026-12-01", "2026-12-02"]
    svg = charts.stacked_bars(days, ["m1", "m2"], {(days[0], "m1"): 1.0, (days[0], "m2"): 3.0,
                                                   (days[1], "m2"): 2.0}, title="t")  # fmt: skip
    assert svg.count('class="bar"') == 3 and "$3.00" in svg
    assert "no spend recorded" in charts.stacked_bars(days, [], {}, title="t")
    graph = charts.task_graph({"id": "t", "depends_on": ["d1"], "parent": "p",
                               "handoffs": [{"id": "h", "state": "queued"}]})  # fmt: skip
    assert graph.count("<rect") == 4 and "/tasks/d1" in graph


def test_bench_dashboard_runs_quick(tmp_path: Path) -> None:
    import subprocess
    import sys

    from tests.conftest import REPO, cli_env

    done = subprocess.run(
        [sys.executable, "-m", "bench.dashboard", "--quick"], cwd=REPO, env=cli_env(tmp_path),
        capture_output=True, text=True, timeout=110, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    for name in ("dashboard.floor", "dashboard.overview", "dashboard.spend_90_days"):
        assert re.search(rf"^{re.escape(name)}: [\d.]+ ms", done.stdout, re.M), done.stdout


def test_cancel_through_the_api_stops_a_running_task(workspace: Path) -> None:
    """With a daemon running, cancel asks it and waits for its answer."""
    daemon = Daemon(workspace)
    d = Dashboard(workspace)
    try:
        drop_task(workspace, "long.yaml", {"id": "long", "agent": "worker", "prompt": "SLEEP=30"})
        wait_for(lambda: d.api("/api/status").json()["queue"]["running"] == 1, what="running")
        said = d.api("/api/tasks/long/cancel", "POST", {}).json()["said"]
        assert said == "cancelled long"
        assert result(workspace, "long")["status"] == "cancelled"
    finally:
        d.stop()
        daemon.stop()


def test_the_task_page_draws_dependencies_and_handoffs(workspace: Path) -> None:
    files = base()
    agents = files["agents.yaml"]["agents"]
    agents["architect"] = {"preferred_tool": "fake", "handoff_to": ["backend-dev"]}
    agents["backend-dev"] = {"preferred_tool": "fake"}
    write_config(workspace, files)
    drop_task(
        workspace, "design.yaml", {"agent": "architect", "prompt": "HANDOFF=backend-dev|Build|"}
    )
    drop_task(workspace, "check.yaml", {"agent": "worker", "prompt": "x", "depends_on": ["design"]})
    assert orchestrator(workspace, "run", "--once").returncode == 0
    d = Dashboard(workspace)
    try:
        graph = d.api("/api/tasks/design").json()["graph"]
        handed = {"id": "design--to-backend-dev", "agent": "backend-dev", "state": "succeeded"}
        assert graph["handoffs"] == [handed]
        built = d.api("/api/tasks/design--to-backend-dev").json()["graph"]
        assert built["parent"] == "design" and built["handoffs"] == []
        assert d.api("/api/tasks/check").json()["graph"]["depends_on"] == ["design"]
        page = d.api("/tasks/design--to-backend-dev").text
        svg = page.split('<svg class="graph"', 1)[1].split("</svg>", 1)[0]
        assert 'href="/tasks/design"' in svg and "handed over" in svg
        assert 'href="/tasks/check"' not in svg
        assert "depends on" in d.api("/tasks/check").text.split('<svg class="graph"', 1)[1]
    finally:
        d.stop()


def test_the_overview_shows_what_waits_and_every_warning(workspace: Path) -> None:
    from orchestrator.reports.status import status_data
    from orchestrator.web.pages import overview_live

    status = status_data(workspace)
    status["waiting"] = [{"id": "w1", "agent": "worker", "waiting_for": "dep<1>"}]
    status["scheduled"] = [{"id": "s1", "agent": "worker", "detail": "not before 09:00"}]
    status["waiting_quota"] = [{"id": "q1", "agent": "worker", "resume_at": "2026-12-04T09:00Z",
                                "detail": "claude usage limit"}]  # fmt: skip
    status["windows"] = [{"key": "claude-code", "until": "2026-12-04T09:00Z", "since": "x",
                          "why": "usage limit reached"}]  # fmt: skip
    status["circuits"] = {"fake:fake-large": {"failures": 3, "retry_at": 0}}
    status["telemetry"].update(ok=False, buffered=4, dropped=1, error="disk full")
    status["spend"]["warnings"] = ["spend today $9.00 is near the budget of $10.00"]
    html = overview_live(status, [{"id": "r1", "state": "failed", "agent": "worker"}])
    for text in ("dep&lt;1&gt;", "not before 09:00", "quota, until 2026-12-04T09:00Z: claude "
                 "usage limit", "out of quota: claude-code until 2026-12-04T09:00Z: usage limit "
                 "reached", "circuit fake:fake-large is open after 3 failures",
                 "4 rows waiting, 1 dropped: disk full", "near the budget of $10.00",
                 'data-task="r1" data-state="failed"'):  # fmt: skip
        assert text in html, text
    assert "<1>" not in html


def test_without_the_web_extra_the_command_says_how_to_install_it(workspace: Path) -> None:
    import subprocess
    import sys

    from tests.conftest import cli_env

    code = ("import sys; sys.modules['uvicorn'] = None\n"  # as if it were not installed
            "from orchestrator.cli import main\n"
            "sys.exit(main(['--root', sys.argv[1], 'dashboard', '--port', '0']))")  # fmt: skip
    argv = [sys.executable, "-c", code, str(workspace)]
    env = cli_env(workspace.parent)
    done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60, check=False)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "needs uvicorn: install the web extra: in a clone, uv sync --extra web" in done.stderr


def test_pages_load_nothing_from_elsewhere(workspace: Path) -> None:
    run_tasks(workspace, ("local", "hello"))
    d = Dashboard(workspace)
    try:
        for path in ("/", "/tasks", "/tasks/local", "/spend", "/config", "/tools"):
            html = d.api(path).text
            links = re.findall(r'(?:src|href|action)="([^"]*)"', html)
            assert links and all(link.startswith("/") for link in links), (path, links)
            assert "@import" not in html and "url(" not in html
        assert "url(" not in d.api("/static/dashboard.css").text
        js = d.api("/static/dashboard.js").text
        assert "http" not in js.replace("history", "")
    finally:
        d.stop()


@pytest.mark.parametrize(
    ("day", "zone", "bounds"),
    [("2026-12-03", "UTC", ("2026-12-03T00:00:00.000Z", "2026-12-04T00:00:00.000Z")),
     ("2026-03-29", "Europe/Berlin", ("2026-03-28T23:00:00.000Z", "2026-03-29T22:00:00.000Z")),
     ("2026-11-01", "America/New_York", ("2026-11-01T04:00:00.000Z", "2026-11-02T05:00:00.000Z"))],
)  # fmt: skip
def test_a_day_is_its_local_calendar_day(day: str, zone: str, bounds: tuple[str, str]) -> None:
    from orchestrator.web.queries import day_bounds

    assert day_bounds(day, zone) == bounds


def test_the_other_commands_do_not_import_the_web_stack(tmp_path: Path) -> None:
    import subprocess
    import sys

    from tests.conftest import cli_env

    web = {"starlette", "uvicorn", "orchestrator.web.app"}
    code = ("import sys\nfrom orchestrator.cli import main\nmain(['version'])\n"
            f"assert not {web!r} & set(sys.modules)")  # fmt: skip
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=cli_env(tmp_path), timeout=60, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
