"""More of what new users trip over (issue 12), each through the real command: output
piped into a reader that goes away, `submit` options a task file has, and
`require_justification_over_usd` for `exec` and `submit`."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from orchestrator.telemetry.store import connect
from tests.conftest import (
    base_config,
    cli_env,
    orchestrator,
    pricey_files,
    result,
    spawn,
    write_config,
)

READER_GONE = 141  # 128 + SIGPIPE, what a shell reports for `yes | head`


# --- output into a closed pipe ------------------------------------------------------------


def test_status_watch_into_a_reader_that_goes_away_exits_quietly(workspace: Path) -> None:
    proc = spawn(workspace, ["-m", "orchestrator", "status", "--watch", "--interval", "0.1"])
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    proc.stdin.close()
    try:
        assert proc.stdout.read(200)  # it is drawing
        proc.stdout.close()  # what `| head` does once it has its lines
        closed = time.monotonic()
        code = proc.wait(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert time.monotonic() - closed < 5, "it kept running after its reader had gone"
    assert code == READER_GONE
    assert proc.stderr.read() == ""  # no traceback, no "Exception ignored", no error line
    proc.stderr.close()


@pytest.mark.parametrize("command", [["status"], ["version"], ["config", "validate"]])
def test_any_command_into_a_closed_pipe_exits_quietly(workspace: Path, command: list[str]) -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the command writes a byte
    try:
        done = subprocess.run(
            [sys.executable, "-m", "orchestrator", "--root", str(workspace), *command],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            env=cli_env(workspace.parent),
            cwd=workspace,
            timeout=60,
            check=False,
        )
    finally:
        os.close(write_end)
    assert (done.returncode, done.stderr) == (READER_GONE, "")


# --- submit: what a task file can say -------------------------------------------------------


def inbox(root: Path) -> dict[str, dict[str, Any]]:
    folder = root / "work" / "inbox"
    return {p.stem: yaml.safe_load(p.read_text()) for p in folder.glob("*.yaml")}


def submit(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return orchestrator(root, "submit", "--agent", "worker", "--prompt", "hello", *args)


def test_submit_writes_title_tool_model_timeout_and_dependencies(workspace: Path) -> None:
    done = submit(workspace, "--id", "first", "--title", "Say hello", "--tool", "fake-arg",
                  "--model", "fake-small", "--timeout", "90s", "--priority", "P1")  # fmt: skip
    assert done.returncode == 0, done.stderr
    task = inbox(workspace)["first"]
    assert {k: task[k] for k in ("title", "tool", "model", "timeout", "priority")} == {
        "title": "Say hello",
        "tool": "fake-arg",
        "model": "fake-small",
        "timeout": "90s",
        "priority": "high",
    }
    done = submit(workspace, "--id", "second", "--depends-on", "first", "--depends-on", "zero",
                  "--model", "fake:fake-large")  # fmt: skip
    assert done.returncode == 0, done.stderr
    second = inbox(workspace)["second"]
    assert second["dependencies"] == ["first", "zero"]
    assert (second["tool"], second["model"]) == ("fake", "fake-large")
    run = orchestrator(workspace, "run", "--once")
    assert run.returncode == 0, run.stderr
    first = result(workspace, "first")
    assert first["status"] == "succeeded", first
    assert [(a["tool"], a["model"]) for a in first["attempts"]] == [("fake-arg", "fake-small")]


@pytest.mark.parametrize(
    ("written", "meant"),
    [("HIGH", "high"), ("Critical", "critical"), ("urgent", "critical"), ("p0", "critical"),
     ("Medium", "normal"), ("default", "normal"), ("minor", "low"), ("P3", "low")],
)  # fmt: skip
def test_submit_priority_takes_what_a_task_file_takes(
    workspace: Path, written: str, meant: str
) -> None:
    done = submit(workspace, "--id", "t", "--priority", written)
    assert done.returncode == 0, done.stderr
    assert inbox(workspace)["t"]["priority"] == meant


def refused(done: subprocess.CompletedProcess[str], root: Path) -> str:
    """The one line a refused submit printed; nothing may have been written."""
    assert done.returncode == 1, done.stdout
    assert len(done.stderr.splitlines()) == 1, done.stderr
    assert inbox(root) == {}
    assert "Traceback" not in done.stderr
    return done.stderr.strip()


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--priority", "soonish"], "error: --priority 'soonish' is not a priority: use "
         "critical, high, normal, low or a synonym: urgent (critical), blocker (critical), "
         "p0 (critical), p1 (high), medium (normal)"),
        (["--timeout", "5 minutes"], "error: --timeout: '5 minutes' is not a duration: write it "
         "as 30s, 15m or 1h"),
        (["--timeout", "0s"], "error: --timeout: a duration must be positive"),
        (["--tool", "fake-ark"], "error: --tool: unknown tool 'fake-ark': did you mean "
         "'fake-arg'?"),
        (["--model", "fake-smal"], "error: --model: unknown model 'fake-smal': did you mean "
         "'fake-small'?"),
        (["--model", "nope:fake-small"], "error: --tool: unknown tool 'nope'"),
        (["--tool", "fake", "--model", "solo-model"], "error: --model: tool 'fake' does not "
         "list 'solo-model': valid names: fake-large, fake-small"),
        (["--tool", "fake", "--model", "solo:solo-model"], "error: --model 'solo:solo-model' "
         "names tool 'solo' but --tool is 'fake'"),
        (["--depends-on", "a/b"], "error: --depends-on 'a/b' contains a path separator"),
        (["--justification", "  "], "error: --justification needs a text"),
    ],
)  # fmt: skip
def test_submit_refuses_a_bad_value_in_one_line_naming_the_option(
    workspace: Path, args: list[str], said: str
) -> None:
    files = base_config()
    files["tools.yaml"]["tools"]["solo"] = {"adapter": "generic", "binary": "cat",
                                            "models": ["solo-model"]}  # fmt: skip
    write_config(workspace, files)
    assert refused(submit(workspace, *args), workspace).startswith(said)


def test_submit_refuses_an_unknown_agent_with_a_suggestion(workspace: Path) -> None:
    done = orchestrator(workspace, "submit", "--agent", "wroker", "--prompt", "x",
                        "--tool", "fake")  # fmt: skip
    assert refused(done, workspace) == "error: unknown agent 'wroker': did you mean 'worker'?"


# --- require_justification_over_usd -------------------------------------------------------

# 401 characters once composed: 101 prompt tokens + 100 estimated output tokens at $1000
# per million is an estimate of $0.2010 (as in test_exec_policy.py).
PROMPT = "x" * 400
OVER = (
    "this request's estimate is $0.2010 (fake:pricey, ~101 prompt tokens), over "
    "budgets.require_justification_over_usd ($0.10, config/policies.yaml)"
)


def justification_config(root: Path, threshold: float) -> None:
    write_config(root, pricey_files(require_justification_over_usd=threshold))


def rows(root: Path) -> list[dict[str, Any]]:
    path = root / "work" / "telemetry.db"
    if not path.exists():
        return []
    with connect(path, readonly=True) as db:
        db.row_factory = sqlite3.Row
        return [dict(r) for r in db.execute("SELECT * FROM invocations ORDER BY id")]


def test_exec_over_the_threshold_needs_a_justification(workspace: Path) -> None:
    justification_config(workspace, 0.25)  # under it: none needed, none recorded
    done = orchestrator(workspace, "exec", "--agent", "worker", "--prompt", PROMPT)
    assert done.returncode == 0, done.stderr
    assert [r["justification"] for r in rows(workspace)] == [None]

    justification_config(workspace, 0.10)
    done = orchestrator(workspace, "exec", "--agent", "worker", "--prompt", PROMPT)
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.splitlines() == [
        f"error: task rejected: {OVER}: nothing was run (add --force --justification TEXT: "
        "recorded; --force also passes hard budgets)"
    ]
    assert len(rows(workspace)) == 1  # no tool ran

    done = orchestrator(workspace, "exec", "--agent", "worker", "--prompt", PROMPT,
                        "--force", "--justification", "the release needs it")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout == PROMPT + "\n\n"
    assert [r["justification"] for r in rows(workspace)] == [None, "the release needs it"]


def test_submit_over_the_threshold_needs_a_justification(workspace: Path) -> None:
    justification_config(workspace, 0.10)
    done = orchestrator(workspace, "submit", "--agent", "worker", "--prompt", PROMPT)
    assert refused(done, workspace) == (
        f"error: {OVER}: nothing was written; add --justification TEXT (why it is worth it)"
    )
    done = orchestrator(workspace, "submit", "--agent", "worker", "--prompt", PROMPT,
                        "--id", "big", "--justification", "a big one, on purpose")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert inbox(workspace)["big"]["justification"] == "a big one, on purpose"
    run = orchestrator(workspace, "run", "--once")
    assert run.returncode == 0, run.stderr
    assert result(workspace, "big")["status"] == "succeeded"
    assert [r["justification"] for r in rows(workspace)] == ["a big one, on purpose"]


def test_submit_under_the_threshold_or_pinned_cheaper_needs_none(workspace: Path) -> None:
    justification_config(workspace, 0.10)
    done = orchestrator(workspace, "submit", "--agent", "worker", "--prompt", PROMPT,
                        "--id", "cheap", "--model", "fake-small")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "justification" not in inbox(workspace)["cheap"]
