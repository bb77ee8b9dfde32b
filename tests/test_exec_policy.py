"""`orchestrator exec` and the policy around it (seed AT-3, AT-6): each fallback as a line
as it happens, every attempt when the chain is spent, and the budgets checked before it
runs: a warning (and a question on a terminal), a hard block with its options, `--force
--justification`. Through the real command; one check of the library's result."""

from __future__ import annotations

import os
import select
import sqlite3
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from orchestrator.config import load_config
from orchestrator.foreground import exec_task
from orchestrator.telemetry.store import connect
from tests.conftest import base_config, cli_env, drop_task, orchestrator, pricey_files, write_config

ZONE = "Europe/Berlin"
# 401 characters once composed: 101 prompt tokens + 100 estimated output tokens at $1000
# per million is an estimate of $0.2010; the fake tool reports 100 + 100 tokens: $0.2000.
PROMPT = "x" * 400
ESTIMATE = "$0.2010"
COMMAND = (sys.executable, "-m", "orchestrator")
ANSWER = PROMPT + "\n\n"  # the fake tool echoes the prompt, which ends in a newline


def budget_config(root: Path, **budgets: Any) -> None:
    write_config(root, pricey_files(warn_at_percent=50, timezone=ZONE, **budgets))


def spend(root: Path, tasks: int) -> None:
    """Record $0.20 of spend today for each of `tasks` tasks, run by the daemon."""
    for i in range(tasks):
        drop_task(root, f"spend{i}.yaml", {"agent": "worker", "prompt": PROMPT})
    done = orchestrator(root, "run", "--once", "--concurrency", "1")
    assert done.returncode == 0, done.stderr


def rows(root: Path) -> list[dict[str, Any]]:
    with connect(root / "work" / "telemetry.db", readonly=True) as db:
        db.row_factory = sqlite3.Row
        return [dict(r) for r in db.execute("SELECT * FROM invocations ORDER BY id")]


def exec_(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return orchestrator(root, "exec", "--agent", "worker", "--prompt", PROMPT, *args)


# --- fallbacks, one line each -----------------------------------------------------------


def chain_config(root: Path, chain: list[str]) -> None:
    files = base_config()
    files["agents.yaml"]["agents"]["hopper"] = {
        "preferred_tool": "missing",
        "preferred_model": "fake-large",
        "fallback_chain": chain,
    }
    write_config(root, files)


def test_exec_prints_each_fallback_as_it_happens(workspace: Path) -> None:
    chain_config(workspace, ["missing:fake-small", "failing:fake-large", "fake:fake-small"])
    done = orchestrator(workspace, "exec", "--agent", "hopper", "--prompt", "hello")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "hello\n\n"
    assert done.stderr.splitlines() == [
        "missing unavailable: 'definitely-not-an-installed-tool' not found on PATH; "
        "trying failing:fake-large",
        "failing failed (nonzero_exit): failing exited with code 3: (no stderr); "
        "trying fake:fake-small",
    ]


def test_exec_with_its_chain_spent_lists_every_attempt(workspace: Path) -> None:
    chain_config(workspace, ["missing:fake-small", "failing:fake-large"])
    done = orchestrator(workspace, "exec", "--agent", "hopper", "--prompt", "hello")
    assert done.returncode == 1
    lines = done.stderr.splitlines()
    start = lines.index("attempts:")
    assert lines[start - 1].startswith("error: task failed: failing exited with code 3")
    assert lines[start + 1 :] == [
        "  1. missing:fake-large failed: missing_binary: "
        "'definitely-not-an-installed-tool' not found on PATH",
        "  2. missing:fake-small skipped: missing_binary: not tried: missing failed for "
        "every model earlier in this task ('definitely-not-an-installed-tool' not found on PATH)",
        "  3. failing:fake-large failed: nonzero_exit: failing exited with code 3: (no stderr)",
        "  4. failing:fake-large failed: nonzero_exit: failing exited with code 3: (no stderr)",
    ]


# --- budgets before the run ---------------------------------------------------------------


def test_exec_near_a_budget_warns_and_runs_without_a_terminal(workspace: Path) -> None:
    budget_config(workspace, daily_usd=1.0, mode="hard")
    spend(workspace, 1)
    quiet = exec_(workspace)  # $0.20 + $0.201 is 40%: below warn_at_percent, no word
    assert quiet.returncode == 0, quiet.stderr
    assert quiet.stderr == ""
    done = exec_(workspace)
    assert done.returncode == 0, done.stderr
    assert done.stdout == ANSWER
    warning = (
        "warning: the global daily budget is $1.00; $0.4000 is spent or held, and with this "
        f"request's estimate of {ESTIMATE} that makes $0.6010 (60%)"
    )
    assert done.stderr.splitlines() == [warning]  # once, and no question
    assert len(rows(workspace)) == 3


@pytest.mark.parametrize(
    ("budgets", "seeded", "key", "spent"),
    [
        ({"daily_usd": 1.0}, 4, "budgets.daily_usd", "$0.8000"),
        ({"per_agent": {"worker": {"daily_usd": 0.5}}}, 2, "budgets.per_agent.worker.daily_usd",
         "$0.4000"),
    ],
)  # fmt: skip
def test_exec_past_a_hard_budget_runs_nothing_and_says_what_to_do(
    workspace: Path, budgets: dict[str, Any], seeded: int, key: str, spent: str
) -> None:
    budget_config(workspace, mode="hard", **budgets)
    spend(workspace, seeded)
    done = exec_(workspace)
    assert done.returncode == 1
    assert done.stdout == ""
    assert len(rows(workspace)) == seeded  # nothing ran
    assert not list((workspace / "work" / "runs").iterdir())
    resets = datetime.now(ZoneInfo(ZONE)).date() + timedelta(days=1)
    text = done.stderr
    assert f"{spent} spent + {ESTIMATE} estimated for this request" in text
    assert f"raise the budget: {key} in config/policies.yaml" in text
    assert f"wait until it resets at {resets.isoformat()} 00:00 ({ZONE})" in text
    assert "--force --justification TEXT" in text


@pytest.mark.parametrize(
    "args",
    [["--force"], ["--justification", "because"], ["--force", "--justification", " "]],
)
def test_force_goes_with_a_justification(workspace: Path, args: list[str]) -> None:
    done = exec_(workspace, *args)
    assert done.returncode == 2
    assert "usage: orchestrator exec" in done.stderr
    assert "--justification" in done.stderr.splitlines()[-1]
    assert not (workspace / "work" / "telemetry.db").exists()


def test_a_forced_exec_runs_past_a_hard_budget_and_records_why(workspace: Path) -> None:
    budget_config(workspace, daily_usd=1.0, mode="hard")
    spend(workspace, 4)
    done = exec_(workspace, "--force", "--justification", "release hotfix, approved by Kim")
    assert done.returncode == 0, done.stderr
    assert done.stdout == ANSWER
    assert "warning: the global daily budget is $1.00; $0.8000 is spent" in done.stderr
    assert "--force: running past the global daily budget" in done.stderr
    forced = rows(workspace)[-1]
    assert forced["outcome"] == "succeeded"
    assert forced["justification"] == "release hotfix, approved by Kim"
    assert all(r["justification"] is None for r in rows(workspace)[:-1])


@pytest.mark.anyio
async def test_a_forced_result_carries_its_justification(workspace: Path) -> None:
    budget_config(workspace, daily_usd=1.0, mode="hard")
    spend(workspace, 4)
    said: list[str] = []
    config = load_config(workspace)
    result = await exec_task(
        config, "worker", PROMPT, [], justification="release hotfix", say=said.append
    )
    assert result.status == "succeeded"
    assert "forced: release hotfix" in result.warnings
    assert any(w.endswith("run anyway (forced)") for w in result.warnings)
    assert said[0].startswith("warning: the global daily budget is $1.00")


def exec_on_a_terminal(root: Path, answer: bytes | None, *args: str) -> tuple[int, str, str]:
    """exec with a terminal as stdin and stderr; `answer` typed at its question (None:
    none expected). Returns the exit code, stdout and what the terminal showed."""
    master, terminal = os.openpty()
    proc = subprocess.Popen(
        [*COMMAND, "--root", str(root), "exec", "--agent", "worker", "--prompt", PROMPT, *args],
        stdin=terminal,
        stderr=terminal,
        stdout=subprocess.PIPE,
        env=cli_env(root.parent),
        cwd=root,
    )
    os.close(terminal)
    shown = bytearray()
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.1)
            if ready:
                try:
                    chunk = os.read(master, 4096)
                except OSError:  # EIO: every end of the terminal closed
                    break
                if not chunk:
                    break
                shown += chunk
            if answer is not None and b"Proceed? [y/N]" in shown:
                os.write(master, answer + b"\n")
                answer = None
            if not ready and proc.poll() is not None:
                break
        out, _ = proc.communicate(timeout=30)
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
    return proc.returncode, out.decode(), shown.decode(errors="replace")


@pytest.mark.parametrize(
    ("answer", "args", "runs"),
    [(b"n", [], False), (b"", [], False), (b"y", [], True), (b"yes", [], True),
     (None, ["--yes"], True)],
)  # fmt: skip
def test_on_a_terminal_exec_asks_before_passing_the_warning(
    workspace: Path, answer: bytes | None, args: list[str], runs: bool
) -> None:
    budget_config(workspace, daily_usd=1.0, mode="hard")
    spend(workspace, 2)
    code, out, shown = exec_on_a_terminal(workspace, answer, *args)
    assert "warning: the global daily budget is $1.00; $0.4000 is spent" in shown
    assert ("Proceed? [y/N]" in shown) == (answer is not None)
    if runs:
        assert code == 0, shown
        assert out == ANSWER
        assert len(rows(workspace)) == 3
    else:
        assert code == 1
        assert out == ""
        assert "not run: the budget warning was not confirmed" in shown
        assert len(rows(workspace)) == 2
