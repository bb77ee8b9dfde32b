"""Fallback chains past a tool that fails for every model (missing, not executable): its
other entries are skipped, listed as such, and use none of `retries.max_attempts`.
Through `orchestrator run --once`."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from orchestrator.telemetry.store import connect
from tests.conftest import base_config, drop_task, fake_tool, orchestrator, result, write_config

MISSING_WHY = "'definitely-not-an-installed-tool' not found on PATH"


def configure(root: Path, chain: list[str], max_attempts: int, broken: str = "missing") -> None:
    """Agent `hopper`: `broken` with its first model, then `chain`."""
    files = base_config()
    tools: dict[str, Any] = files["tools.yaml"]["tools"]
    plain = root.parent / "not-executable-tool"
    plain.write_text("#!/bin/sh\necho hello\n")  # never chmod +x
    tools["noexec"] = fake_tool(binary=str(plain), args=[])
    files["agents.yaml"]["agents"]["hopper"] = {
        "preferred_tool": broken,
        "preferred_model": "fake-large",
        "fallback_chain": [c.replace("BROKEN", broken) for c in chain],
    }
    files["policies.yaml"]["retries"]["max_attempts"] = max_attempts
    write_config(root, files)


def run_once(root: Path) -> str:
    done = orchestrator(root, "run", "--once")
    assert done.returncode == 0, done.stderr
    return done.stderr


def attempts(root: Path, task_id: str) -> list[tuple[str, str, str, str | None]]:
    return [
        (a["tool"], a["model"], a["outcome"], (a.get("error") or {}).get("kind"))
        for a in result(root, task_id)["attempts"]
    ]


def rows(root: Path) -> list[tuple[int, str, str, str]]:
    with connect(root / "work" / "telemetry.db", readonly=True) as db:
        db.row_factory = sqlite3.Row
        found = db.execute("SELECT attempt, tool, model, outcome FROM invocations ORDER BY id")
        return [tuple(r) for r in found]


@pytest.mark.parametrize(
    ("broken", "kind", "why"),
    [
        ("missing", "missing_binary", MISSING_WHY),
        ("noexec", "not_executable", "not-executable-tool is not executable"),
    ],
)
def test_a_tool_that_fails_tool_wide_is_skipped_and_the_chain_goes_on(
    workspace: Path, broken: str, kind: str, why: str
) -> None:
    # the case: claude:m1, claude:m2, codex:x, gemini:y with claude missing used up
    # max_attempts on claude's models and never reached gemini
    configure(workspace, ["BROKEN:fake-small", "failing:fake-large", "fake:fake-small"], 3, broken)
    drop_task(workspace, "hop.yaml", {"agent": "hopper", "prompt": "hello"})
    log = run_once(workspace)
    done = result(workspace, "hop")
    assert done["status"] == "succeeded", done
    assert (done["tool"], done["model"]) == ("fake", "fake-small")
    assert attempts(workspace, "hop") == [
        (broken, "fake-large", "failed", kind),
        (broken, "fake-small", "skipped", kind),
        ("failing", "fake-large", "failed", "nonzero_exit"),
        ("fake", "fake-small", "succeeded", None),
    ]
    skipped = done["attempts"][1]["error"]
    assert skipped["message"].startswith(f"not tried: {broken} failed for every model")
    assert why in skipped["message"]
    assert done["fallback_from"] == f"{broken}:fake-large"
    # a skipped entry runs nothing: three rows, numbered as the three attempts made
    assert rows(workspace) == [
        (1, broken, "fake-large", "failed"),
        (2, "failing", "fake-large", "failed"),
        (3, "fake", "fake-small", "succeeded"),
    ]
    # the daemon logs each fallback as the line `exec` prints
    assert f"{broken} unavailable: " in log
    assert "; trying failing:fake-large" in log
    assert "failing failed (nonzero_exit): failing exited with code 3" in log
    assert "; trying fake:fake-small" in log


def test_skipped_entries_use_no_attempt_but_the_bound_holds(workspace: Path) -> None:
    configure(workspace, ["BROKEN:fake-small", "failing:fake-large", "fake:fake-small"], 2)
    drop_task(workspace, "hop.yaml", {"agent": "hopper", "prompt": "hello"})
    run_once(workspace)
    done = result(workspace, "hop")
    assert done["status"] == "failed"
    assert done["error"]["kind"] == "nonzero_exit"
    assert attempts(workspace, "hop") == [
        ("missing", "fake-large", "failed", "missing_binary"),
        ("missing", "fake-small", "skipped", "missing_binary"),
        ("failing", "fake-large", "failed", "nonzero_exit"),
    ]


def test_a_chain_walked_round_passes_over_the_broken_tool_silently(workspace: Path) -> None:
    configure(workspace, ["BROKEN:fake-small", "failing:fake-large"], 3)
    drop_task(workspace, "hop.yaml", {"agent": "hopper", "prompt": "hello"})
    run_once(workspace)
    done = result(workspace, "hop")
    assert done["status"] == "failed"
    # the third attempt is the second round's first usable entry; the broken tool is
    # listed once as skipped, not again in the second round
    assert attempts(workspace, "hop") == [
        ("missing", "fake-large", "failed", "missing_binary"),
        ("missing", "fake-small", "skipped", "missing_binary"),
        ("failing", "fake-large", "failed", "nonzero_exit"),
        ("failing", "fake-large", "failed", "nonzero_exit"),
    ]
