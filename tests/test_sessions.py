"""Sessions: tasks that name the same `session:` continue one conversation in the CLI's own
session (the real claude, codex and gemini against the fake API, which shows what each
later turn sends), one at a time; a turn on another tool starts a seeded new session."""

from __future__ import annotations

import itertools
import json
import sqlite3
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest

from orchestrator.tasks import Task
from orchestrator.workflow import follow_up_task
from tests.conftest import drop_task, orchestrator, result, results
from tests.test_real_clis import CLAUDE, CODEX, GEMINI, Workspace, api

if TYPE_CHECKING:
    from pathlib import Path

    from tests.fake_llm_api import FakeLLMAPI

__all__ = ["api"]  # the module-scoped fake API fixture, shared with test_real_clis
AGENTS = {CLAUDE: "use-claude", CODEX: "use-codex", GEMINI: "use-gemini"}


def turn(ws: Workspace, name: str, agent: str, session: str, *markers: str) -> dict[str, Any]:
    """One task of the session through `run --once`; its result."""
    task = {"agent": agent, "session": session, "prompt": ws.prompt(name, *markers)}
    drop_task(ws.root, f"{name}.yaml", task)
    ws.run("--once")
    return result(ws.root, name)


def sent(request: Any) -> str:
    """Everything a request carried as text (every message of the conversation)."""
    return json.dumps(request.body)


def session_ids(root: Path, *tasks: str) -> list[str | None]:
    with sqlite3.connect(root / "work" / "telemetry.db") as db:
        return [
            db.execute(
                "SELECT session_id FROM invocations WHERE task_id = ? AND outcome = 'succeeded'",
                (task,),
            ).fetchone()[0]
            for task in tasks
        ]


@pytest.mark.real_cli
@pytest.mark.parametrize("tool", [CLAUDE, CODEX, GEMINI])
def test_the_second_turn_resumes_the_first(tmp_path: Path, api: FakeLLMAPI, tool: str) -> None:
    ws = Workspace.create(tmp_path, api)
    ws.configure()
    first = turn(ws, "one", AGENTS[tool], "talk", "FAKE_REPLY=first-answer",
                 "FAKE_USAGE=1000,10,0,0")  # fmt: skip
    second = turn(ws, "two", AGENTS[tool], "talk", "FAKE_REPLY=second-answer",
                  "FAKE_USAGE=1000,10,0,0")  # fmt: skip
    assert (first["status"], second["status"]) == ("succeeded", "succeeded")
    assert (first["tool"], second["tool"]) == (tool, tool)
    last = ws.requests(api)[-1]
    assert "one" in last.prompt or ws.prompt("one") in sent(last)  # the first turn went again
    assert "first-answer" in sent(last)  # ... and its answer, from the CLI's own history
    one, two = session_ids(ws.root, "one", "two")
    assert one is not None and one == two
    # claude and codex report the session's running totals when resumed: the turn's own
    # usage and cost are recorded
    assert second["usage"]["input_tokens"] == first["usage"]["input_tokens"]
    assert second["cost_usd"] == pytest.approx(first["cost_usd"])
    listed = json.loads(orchestrator(ws.root, "sessions", "--json", env=ws.env).stdout)
    assert [(s["name"], s["tool"], s["turns"]) for s in listed] == [("talk", tool, 2)]
    assert listed[0]["attempts"] == 2
    assert listed[0]["tokens"]["input"] == 2 * first["usage"]["input_tokens"]


@pytest.mark.real_cli
def test_a_turn_on_another_tool_starts_a_seeded_session(tmp_path: Path, api: FakeLLMAPI) -> None:
    """claude fails the second turn (500): its fallback, codex, starts a new session whose
    first prompt opens with a summary of the claude turn; the session moves to codex."""
    ws = Workspace.create(tmp_path, api)
    ws.configure(max_attempts=2)
    turn(ws, "one", "use-claude", "moving", "FAKE_REPLY=claude-said-this")
    second = turn(ws, "two", "use-claude", "moving", "FAKE_STATUS_ANTHROPIC=500",
                  "FAKE_REPLY=codex-said-that")  # fmt: skip
    assert (second["status"], second["tool"]) == ("succeeded", CODEX)
    assert any("session moving" in w and "summary" in w for w in second["warnings"]), second
    opening = sent(ws.requests(api)[-1])
    assert "continues from 1 earlier turns on claude-code" in opening
    assert "claude-said-this" in opening
    listed = json.loads(orchestrator(ws.root, "sessions", "--json", env=ws.env).stdout)
    assert (listed[0]["tool"], listed[0]["turns"]) == (CODEX, 2)
    assert listed[0]["moves"][0].startswith("claude-code -> codex at ")


@pytest.mark.real_cli
def test_exec_continues_a_session(tmp_path: Path, api: FakeLLMAPI) -> None:
    ws = Workspace.create(tmp_path, api)
    ws.configure()
    for n in ("first", "second"):
        done = orchestrator(ws.root, "exec", "--agent", "use-claude", "--session", "ex",
                            "--prompt", ws.prompt(f"FAKE_REPLY=exec-{n}"), env=ws.env)  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == f"exec-{n}"
    assert "exec-first" in sent(ws.requests(api)[-1])
    bad = orchestrator(ws.root, "exec", "--agent", "use-claude", "--session", "../x",
                       "--prompt", "hi", env=ws.env)  # fmt: skip
    assert bad.returncode == 2 and "--session" in bad.stderr


def test_tasks_of_one_session_run_one_at_a_time(workspace: Path) -> None:
    for name in ("a", "b", "c"):
        drop_task(workspace, f"{name}.yaml",
                  {"agent": "worker", "session": "one-by-one", "prompt": "SLEEP=0.5"})  # fmt: skip
    drop_task(workspace, "free.yaml", {"agent": "worker", "prompt": "SLEEP=0.5"})
    done = orchestrator(workspace, "run", "--once", "--concurrency", "4")
    assert done.returncode == 0, done.stderr
    found = results(workspace)
    runs = [r["attempts"][0] for name, r in found.items() if name != "free"]
    spans = sorted(
        (start, start + timedelta(milliseconds=a["duration_ms"]))
        for a in runs
        if (start := datetime.fromisoformat(a["started_at"]))
    )
    for (_, end), (start, _) in itertools.pairwise(spans):
        assert start >= end  # no two turns of the session at once
    assert {r["status"] for r in found.values()} == {"succeeded"}


def test_a_bad_session_name_is_rejected_naming_the_rule(workspace: Path) -> None:
    drop_task(workspace, "bad.yaml", {"agent": "worker", "session": "../up", "prompt": "x"})
    assert orchestrator(workspace, "run", "--once").returncode == 0
    rejected = result(workspace, "bad")
    assert rejected["status"] == "rejected"
    assert "session" in rejected["error"]["message"]


def test_a_handoff_may_inherit_the_session() -> None:
    source = Task(id="lead", agent="lead", prompt="x", session="talk")
    _, inherit = follow_up_task(source, {"next_agent": "writer", "session": "inherit"}, None)
    _, fresh = follow_up_task(source, {"next_agent": "writer"}, None)
    assert inherit["session"] == "talk"
    assert "session" not in fresh
