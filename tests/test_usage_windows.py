"""Usage windows end to end: the real claude, codex and gemini CLIs hit a closed window on
the fake LLM API (its FAKE_LIMIT marker answers 429 in each provider's "limit reached,
resets at ..." shape until the window reopens), and the daemon or `exec` parks the task,
takes the fallback, shares what it learnt with the next task, and resumes by itself.

Claude reads a plan's window (anthropic-ratelimit-unified-* headers) only when signed in
with a plan's token, so the claude tools here run with CLAUDE_CODE_OAUTH_TOKEN instead of
an API key; with a key it sees a plain 429 (tests/test_adapter_parsers.py covers both).
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest

from orchestrator.adapters.generic import limit_failure
from orchestrator.windows import Windows, read_windows
from tests.conftest import (
    Daemon,
    base_config,
    drop_task,
    fake_tool,
    orchestrator,
    result,
    wait_for,
    write_config,
)
from tests.test_real_clis import CLAUDE, CODEX, GEMINI, MODELS, Workspace, api

if TYPE_CHECKING:
    from pathlib import Path

    from tests.fake_llm_api import FakeLLMAPI

__all__ = ["api"]  # the module-scoped fake API fixture, shared with test_real_clis
PLAN_TOKEN = "sk-ant-oat01-fake"


def signed_in(ws: Workspace) -> dict[str, Any]:
    """Claude as a plan's subscriber: its token, no API key."""
    tool = ws.tool(CLAUDE)
    tool["env"] = ["CLAUDE_CODE_OAUTH_TOKEN", "DISABLE_AUTOUPDATER", "DISABLE_TELEMETRY"]
    ws.env.pop("ANTHROPIC_API_KEY", None)
    ws.env["CLAUDE_CODE_OAUTH_TOKEN"] = PLAN_TOKEN
    return tool


def configure(ws: Workspace, chains: dict[str, list[str]], **policies: Any) -> None:
    """Agents named after their chains' first entry; tools: claude (signed in), codex,
    gemini."""
    agents = {
        name: {"preferred_tool": chain[0].split(":")[0], "preferred_model": chain[0].split(":")[1],
               "fallback_chain": chain[1:]}
        for name, chain in chains.items()
    }  # fmt: skip
    write_config(
        ws.root,
        {
            "tools.yaml": {
                "tools": {CLAUDE: signed_in(ws), CODEX: ws.tool(CODEX), GEMINI: ws.tool(GEMINI)}
            },
            "agents.yaml": {"agents": agents},
            "models.yaml": {"models": {}},
            "policies.yaml": {"retries": {"max_attempts": 1, "backoff": "10ms"}, **policies},
        },
    )


def entry(tool: str) -> str:
    return f"{tool}:{MODELS[tool]}"


def status(ws: Workspace) -> dict[str, Any]:
    done = orchestrator(ws.root, "status", "--json", env=ws.env)
    assert done.returncode == 0, done.stderr
    data: dict[str, Any] = json.loads(done.stdout)
    return data


@pytest.mark.real_cli
def test_a_closed_window_parks_the_task_and_it_resumes_by_itself(
    tmp_path: Path, api: FakeLLMAPI
) -> None:
    ws = Workspace.create(tmp_path, api)
    configure(ws, {"solo": [entry(CLAUDE)]})
    window_s = 8
    prompt = ws.prompt(f"FAKE_LIMIT_ANTHROPIC=park-{ws.tag}:{window_s}", "FAKE_REPLY=after-reset")
    daemon = Daemon(ws.root, env=ws.env)
    try:
        drop_task(ws.root, "p.yaml", {"agent": "solo", "prompt": prompt})
        wait_for(lambda: status(ws)["queue"]["waiting_quota"] == 1, what="the task to park")
        seen = status(ws)
        parked = seen["waiting_quota"][0]
        assert parked["id"] == "p"
        assert parked["resume_at"]
        assert parked["detail"] == f"{CLAUDE}:*"
        [window] = seen["windows"]
        assert window["key"] == f"{CLAUDE}:*"  # a plan's 5-hour window holds for every model
        text = orchestrator(ws.root, "status", env=ws.env).stdout
        assert "waiting for quota" in text and "p  until" in text, text
        assert not (ws.root / "work" / "outbox" / "p.result.yaml").exists()
        wait_for(
            lambda: (ws.root / "work" / "outbox" / "p.result.yaml").exists(),
            timeout=window_s + 60,
            what="the task to resume after the reset",
        )
    finally:
        daemon.stop()
    res = result(ws.root, "p")
    assert res["status"] == "succeeded", res
    assert res["output"] == "after-reset"
    first, second = res["attempts"]
    assert (first["outcome"], first["error"]["kind"]) == ("failed", "usage_limit")
    assert "limit" in first["error"]["message"]
    assert second["outcome"] == "succeeded"
    assert any(w.startswith("waited for a usage window") for w in res["warnings"]), res
    statuses = [(r.provider, r.status) for r in ws.requests(api)]
    assert statuses == [("anthropic", 429), ("anthropic", 200)]  # no call while closed
    assert status(ws)["queue"]["waiting_quota"] == 0


@pytest.mark.real_cli
def test_a_closed_window_sends_tasks_to_the_fallback_until_it_opens(
    tmp_path: Path, api: FakeLLMAPI
) -> None:
    """Codex's plan is used up (for an hour): the first task learns it and falls back to
    claude; the second never calls codex, whose window the first one closed."""
    ws = Workspace.create(tmp_path, api)
    configure(ws, {"codex-first": [entry(CODEX), entry(CLAUDE)]})
    limit = f"FAKE_LIMIT_OPENAI=fb-{ws.tag}:3600"
    for name in ("one", "two"):
        prompt = ws.prompt(limit, f"FAKE_REPLY=claude-did-{name}")
        drop_task(ws.root, f"{name}.yaml", {"agent": "codex-first", "prompt": prompt})
        ws.run("--once")
    one, two = result(ws.root, "one"), result(ws.root, "two")
    assert (one["status"], one["tool"], one["output"]) == ("succeeded", CLAUDE, "claude-did-one")
    assert one["attempts"][0]["error"]["kind"] == "usage_limit"
    assert "try again at" in one["attempts"][0]["error"]["message"]
    assert (two["status"], two["tool"], two["output"]) == ("succeeded", CLAUDE, "claude-did-two")
    skipped = two["attempts"][0]
    assert (skipped["tool"], skipped["outcome"]) == (CODEX, "skipped")
    assert skipped["error"]["kind"] == "usage_window"
    assert "out of quota" in skipped["error"]["message"]
    providers = [(r.provider, r.status) for r in ws.requests(api)]
    assert providers == [("openai", 429), ("anthropic", 200), ("anthropic", 200)]
    [window] = status(ws)["windows"]
    assert window["key"] == f"{CODEX}:*"


@pytest.mark.real_cli
def test_exec_waits_in_place_for_gemini_quota_then_finishes(
    tmp_path: Path, api: FakeLLMAPI
) -> None:
    """Gemini's per-day quota says "Please retry in 5s": exec says until when it waits,
    waits, and answers."""
    ws = Workspace.create(tmp_path, api)
    configure(ws, {"gem": [entry(GEMINI)]})
    prompt = ws.prompt(f"FAKE_LIMIT_GEMINI=ex-{ws.tag}:5", "FAKE_REPLY=gemini-after")
    started = time.monotonic()
    done = orchestrator(
        ws.root, "exec", "--agent", "gem", "--prompt", prompt, env=ws.env, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "gemini-after"
    assert "out of quota" in done.stderr and "waiting until" in done.stderr, done.stderr
    assert time.monotonic() - started >= 4
    windows = read_windows(ws.root / "work" / "windows.json")
    assert f"{GEMINI}:{MODELS[GEMINI]}" in windows  # gemini's quota is per model


@pytest.mark.real_cli
def test_a_wait_past_max_wait_fails_the_task_and_says_what_to_raise(
    tmp_path: Path, api: FakeLLMAPI
) -> None:
    ws = Workspace.create(tmp_path, api)
    configure(ws, {"solo": [entry(CLAUDE)]}, usage_windows={"max_wait": "1m"})
    prompt = ws.prompt(f"FAKE_LIMIT_ANTHROPIC=long-{ws.tag}:7200")
    drop_task(ws.root, "l.yaml", {"agent": "solo", "prompt": prompt})
    ws.run("--once")
    res = result(ws.root, "l")
    assert res["status"] == "failed"
    assert res["error"]["kind"] == "usage_limit"
    assert "max_wait" in res["error"]["message"]
    assert "usage_windows.max_wait" in res["error"]["hint"]


def test_windows_are_shared_through_the_file(tmp_path: Path) -> None:
    """One process closes a window, another sees it at its next look; an account's window
    holds for every model, a model's only for that one; a window that opened is gone."""
    path = tmp_path / "windows.json"
    now = [1000.0]
    writer, reader = Windows(path, clock=lambda: now[0]), Windows(path, clock=lambda: now[0])
    assert reader.closed("claude", "opus") is None
    writer.close("claude", "opus", 1100.0, "weekly opus limit")
    writer.close("codex", "gpt", 1050.0, "plan used up", whole_tool=True)
    assert reader.closed("claude", "opus") is not None
    assert reader.closed("claude", "sonnet") is None
    window = reader.closed("codex", "other-model")
    assert window is not None and (window.key, window.until) == ("codex:*", 1050.0)
    writer.close("claude", "opus", 1020.0, "shorter")  # a longer known window is kept
    assert reader.closed("claude", "opus").until == 1100.0  # type: ignore[union-attr]
    now[0] = 1060.0
    assert reader.closed("codex", "gpt") is None
    assert [w.key for w in reader.open_windows()] == ["claude:opus"]


def test_an_unreadable_windows_file_means_no_window(tmp_path: Path) -> None:
    path = tmp_path / "windows.json"
    path.write_text('{"claude:*": {"until": "soon"}, "x": 3, "codex:*": {"until": NaN}')
    assert read_windows(path) == {}
    path.write_text('{"claude:*": {"until": 1e12, "since": 1, "why": "w"}, "bad": {"until": 1}}')
    assert list(read_windows(path)) == ["claude:*"]


LIMITED = "import sys; print('Usage limit reached; resets at ' + sys.argv[1], file=sys.stderr)"


def test_a_generic_tool_that_reports_a_usage_limit_closes_its_window(workspace: Path) -> None:
    """Any CLI: a failed run that says its usage limit was reached, and when it resets,
    closes that tool:model; the task falls back, and the next task does not call it."""
    opens = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=2)
    config = base_config()
    tools = config["tools.yaml"]["tools"]
    tools["limited"] = fake_tool(args=["-c", f"{LIMITED}; sys.exit(1)", opens.isoformat()])
    config["agents.yaml"]["agents"]["limited-first"] = {
        "preferred_tool": "limited",
        "preferred_model": "fake-large",
        "fallback_chain": ["fake:fake-small"],
    }
    write_config(workspace, config)
    for name in ("one", "two"):
        drop_task(workspace, f"{name}.yaml", {"agent": "limited-first", "prompt": name})
        done = orchestrator(workspace, "run", "--once")
        assert done.returncode == 0, done.stderr
    one, two = result(workspace, "one"), result(workspace, "two")
    assert (one["status"], one["tool"]) == ("succeeded", "fake")
    failed = one["attempts"][0]
    assert (failed["tool"], failed["error"]["kind"]) == ("limited", "usage_limit")
    assert "Usage limit reached" in failed["error"]["message"]
    assert (two["status"], two["tool"]) == ("succeeded", "fake")
    assert two["attempts"][0]["outcome"] == "skipped"
    assert two["attempts"][0]["error"]["kind"] == "usage_window"
    window = read_windows(workspace / "work" / "windows.json")["limited:fake-large"]
    assert window.until == opens.timestamp()  # to the second, as the tool said


@pytest.mark.parametrize(
    ("stderr", "kind", "wait"),
    [
        ("Error: usage limit reached, try again in 2 hours", "usage_limit", 7200.0),
        ("HTTP 429 Too Many Requests; retry after 30 seconds", "rate_limit", 30.0),
        ("rate limited", "rate_limit", None),
        ("segmentation fault", None, None),
    ],
)
def test_generic_limit_words(stderr: str, kind: str | None, wait: float | None) -> None:
    found = limit_failure("", stderr)
    assert (found.kind if found else None) == kind
    assert (found.retry_after_s if found else None) == wait


def test_a_task_waiting_for_quota_can_be_cancelled(workspace: Path, tmp_path: Path) -> None:
    """`cancel` of a parked task: its result says cancelled at once, the tool is not called
    again, and `status` no longer lists it."""
    opens = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=2)
    calls = tmp_path / "calls.log"
    config = base_config()
    script = f"open({str(calls)!r}, 'a').write('x'); {LIMITED}; sys.exit(1)"
    config["tools.yaml"]["tools"]["limited"] = fake_tool(args=["-c", script, opens.isoformat()])
    config["agents.yaml"]["agents"]["limited-only"] = {"preferred_tool": "limited"}
    write_config(workspace, config)
    daemon = Daemon(workspace)
    try:
        drop_task(workspace, "parked.yaml", {"agent": "limited-only", "prompt": "later"})

        def seen() -> dict[str, Any]:
            done = orchestrator(workspace, "status", "--json")
            data: dict[str, Any] = json.loads(done.stdout)
            return data

        wait_for(lambda: seen()["queue"]["waiting_quota"] == 1, what="the task to park")
        done = orchestrator(workspace, "cancel", "parked")
        assert done.returncode == 0, done.stderr
        outbox = workspace / "work" / "outbox" / "parked.result.yaml"
        wait_for(outbox.exists, timeout=15, what="the cancelled result")
        assert seen()["queue"]["waiting_quota"] == 0
    finally:
        assert daemon.stop() == 0
    res = result(workspace, "parked")
    assert res["status"] == "cancelled", res
    assert res["error"]["message"] == "cancelled by `orchestrator cancel` while waiting for quota"
    # what its run before the wait left stays in the result
    assert [a["error"]["kind"] for a in res["attempts"]] == ["usage_limit"]
    assert any(w.startswith("waited for a usage window") for w in res["warnings"]), res
    assert res["duration_ms"] > 0
    assert calls.read_text() == "x"  # called once, never again while parked
