"""Tools that stop talking: `idle_timeout` ends a run that writes nothing (stdout or
stderr) for that long as `stalled`, killing its whole process group, and the chain moves
on. Through `run_process` on both ways of running a tool, and through `orchestrator run`."""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from orchestrator import process
from orchestrator.attempt import AGENT_IDLE_TIMEOUT_S, idle_limit
from orchestrator.config import ToolConfig, load_config
from orchestrator.process import ProcessResult, run_process
from orchestrator.telemetry.store import connect
from tests import test_real_clis as real
from tests.conftest import (
    FAKE_TOOL,
    base_config,
    drop_task,
    fake_tool,
    orchestrator,
    process_gone,
    result,
    tools_of,
    wait_for,
    write_config,
)
from tests.fake_llm_api import FakeLLMAPI

if TYPE_CHECKING:
    from collections.abc import Iterator

# Says it started (on stderr), then hangs whatever its prompt: a tool that stalls.
HANG = "import sys, time\nprint('thinking...', file=sys.stderr, flush=True)\ntime.sleep(60)"


@pytest.fixture(params=["lean", "portable"])
def runner(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Both ways of running a tool: event-loop callbacks with a pidfd, anyio's processes."""
    if request.param == "portable":
        monkeypatch.setattr(process, "_lean_runs", lambda: False)
    elif not sys.platform.startswith("linux"):
        pytest.skip("pidfds are Linux's")
    return str(request.param)


async def run_fake(
    tmp_path: Path, prompt: str, *, limit_s: float, idle_s: float | None
) -> tuple[ProcessResult, int, float]:
    """The fake tool on `prompt`: its result, its pid and the wall time of the run."""
    pids: list[int] = []
    started = time.monotonic()
    proc = await run_process(
        [sys.executable, FAKE_TOOL],
        env={"PATH": "/usr/bin:/bin"},
        cwd=tmp_path,
        stdin=prompt.encode(),
        limit_s=limit_s,
        idle_s=idle_s,
        grace=0.3,
        on_start=pids.append,
    )
    return proc, pids[0], time.monotonic() - started


# --- run_process, both ways -------------------------------------------------------------


async def test_a_tool_that_says_one_thing_and_hangs_is_stalled(runner: str, tmp_path: Path) -> None:
    """It and its grandchild ignore SIGTERM: the group is killed after the grace."""
    pidfile = tmp_path / "gc.pid"
    prompt = f"GRANDCHILD={pidfile}\nIGNORE_TERM\nSAY=working\nSLEEP=60\n"
    proc, pid, took = await run_fake(tmp_path, prompt, limit_s=60, idle_s=1.0)
    assert proc.stalled
    assert not proc.timed_out and proc.exit_code is None
    assert proc.stderr == b"working\n"
    assert 1.0 <= took < 4.0, took  # idle_s, the grace, the sweep
    assert process_gone(pid)
    wait_for(lambda: process_gone(int(pidfile.read_text())), timeout=5, what="grandchild gone")


async def test_a_tool_that_keeps_writing_is_not_stalled(runner: str, tmp_path: Path) -> None:
    """A line every 0.3 s for 3 s, with idle_s 1 s: three times idle_s, never silent."""
    proc, _, took = await run_fake(tmp_path, "SLEEP=3\nTICK=0.3\n", limit_s=60, idle_s=1.0)
    assert not proc.stalled and proc.exit_code == 0, proc.stderr
    assert proc.stderr.count(b"tick\n") >= 8
    assert took >= 3.0


async def test_silence_counts_from_the_last_byte_not_the_start(runner: str, tmp_path: Path) -> None:
    """Talking for 2 s, then silent: stalled idle_s after the last tick, not at the start."""
    script = (
        "import sys, time\n"
        "for _ in range(10):\n"
        "    print('tick', file=sys.stderr, flush=True); time.sleep(0.2)\n"
        "time.sleep(60)"
    )
    started = time.monotonic()
    proc = await run_process(
        [sys.executable, "-c", script],
        env={"PATH": "/usr/bin:/bin"},
        cwd=tmp_path,
        stdin=None,
        limit_s=60,
        idle_s=1.0,
        grace=0.3,
    )
    took = time.monotonic() - started
    assert proc.stalled and proc.stderr.count(b"tick") == 10
    assert 2.8 <= took < 5.0, took


async def test_an_idle_limit_not_below_the_timeout_never_comes_first(
    runner: str, tmp_path: Path
) -> None:
    proc, _, _ = await run_fake(tmp_path, "SLEEP=60\n", limit_s=1.0, idle_s=1.0)
    assert proc.timed_out and not proc.stalled


async def test_without_an_idle_limit_silence_is_no_stall(runner: str, tmp_path: Path) -> None:
    proc, _, took = await run_fake(tmp_path, "SLEEP=1.5\n", limit_s=60, idle_s=None)
    assert proc.exit_code == 0 and not proc.stalled
    assert took >= 1.5


async def test_silence_after_the_tool_exited_is_no_stall(
    runner: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The tool answers and exits while a grandchild holds its pipes open, silent: the run
    ends as the tool's exit (after the drain, made longer than idle_s here)."""
    monkeypatch.setattr(process, "DRAIN_AFTER_EXIT_S", 2.0)
    pidfile = tmp_path / "holder.pid"
    prompt = f"HOLD_STDOUT={pidfile}\nSAY=hi\nSLEEP=0.5\nTICK=0.1\n"
    proc, _, took = await run_fake(tmp_path, prompt, limit_s=60, idle_s=0.8)
    assert proc.exit_code == 0 and not proc.stalled, proc
    assert took >= 2.0  # it did wait for the pipes, silent for longer than idle_s
    wait_for(lambda: process_gone(int(pidfile.read_text())), timeout=5, what="holder gone")


# --- which idle_timeout applies ---------------------------------------------------------


@pytest.mark.parametrize(
    ("adapter", "tool_s", "task_s", "expected"),
    [
        ("generic", None, None, None),  # a generic tool may print only at the end
        ("claude-code", None, None, AGENT_IDLE_TIMEOUT_S),
        ("codex", None, None, AGENT_IDLE_TIMEOUT_S),
        ("gemini", None, None, AGENT_IDLE_TIMEOUT_S),
        ("generic", 30.0, None, 30.0),
        ("claude-code", 30.0, None, 30.0),
        ("generic", None, 5.0, 5.0),
        ("codex", 30.0, 5.0, 5.0),  # the task's, shorter
        ("codex", 30.0, 90.0, 90.0),  # the task's, longer
        ("codex", 0.0, None, None),  # off (0) for the tool
        ("codex", 30.0, 0.0, None),  # off for the task
        ("generic", 0.0, 5.0, 5.0),
    ],
)
def test_the_tasks_idle_timeout_overrides_the_tools(
    adapter: str, tool_s: float | None, task_s: float | None, expected: float | None
) -> None:
    tool = ToolConfig(adapter=adapter, binary="x", idle_timeout=tool_s)
    assert idle_limit(task_s, tool) == expected


@pytest.mark.parametrize(
    ("written", "seconds"), [("5m", 300.0), ("off", 0.0), ("'off'", 0.0), ("0", 0.0)]
)
def test_idle_timeout_in_tools_yaml_is_a_duration_or_off(
    workspace: Path, written: str, seconds: float
) -> None:
    path = workspace / "config" / "tools.yaml"
    path.write_text(
        path.read_text().replace("  fake:\n", f"  fake:\n    idle_timeout: {written}\n")
    )
    done = orchestrator(workspace, "config", "validate")
    assert done.returncode == 0, done.stderr
    assert load_config(workspace).tools["fake"].idle_timeout == seconds


def test_a_bad_idle_timeout_says_what_to_write(workspace: Path) -> None:
    path = workspace / "config" / "tools.yaml"
    path.write_text(path.read_text().replace("  fake:\n", "  fake:\n    idle_timeout: soon\n"))
    done = orchestrator(workspace, "config", "validate")
    assert done.returncode == 1
    assert "tools.fake.idle_timeout" in done.stderr
    assert "write it as 30s, 15m or 1h; or off for no limit but the timeout" in done.stderr
    drop_task(workspace, "bad.yaml", "agent: worker\nprompt: hi\nidle_timeout: soon\n")
    write_config(workspace, base_config())
    run_once(workspace)
    res = result(workspace, "bad")
    assert res["status"] == "rejected"
    assert "idle_timeout is 'soon', not a duration or off" in res["error"]["message"]
    assert "or off" in res["error"]["hint"]


def test_the_default_is_minutes_and_below_the_default_configs_timeout() -> None:
    """Agents think silently for minutes; the default config's timeout is 15m."""
    assert 180 <= AGENT_IDLE_TIMEOUT_S < 15 * 60


# --- through the daemon -----------------------------------------------------------------


@pytest.fixture(autouse=True)
def no_strays(workspace: Path) -> Iterator[None]:
    """Whatever a test leaves behind (on a failure) is killed, not left to sleep."""
    yield
    for pid in tools_of(workspace):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


def configure(
    workspace: Path, agents: dict[str, Any], turns: int = 1, **tools: dict[str, Any]
) -> None:
    """`agents` and `tools` added to the base config; `turns`: retries.max_attempts."""
    files = base_config()
    files["tools.yaml"]["tools"].update(tools)
    files["agents.yaml"]["agents"].update(agents)
    files["policies.yaml"]["retries"]["max_attempts"] = turns
    write_config(workspace, files)


def telemetry(root: Path) -> list[tuple[str, str, str | None]]:
    with connect(root / "work" / "telemetry.db", readonly=True) as db:
        db.row_factory = sqlite3.Row
        rows = db.execute("SELECT tool, outcome, error_kind FROM invocations ORDER BY id")
        return [tuple(r) for r in rows]


def run_once(workspace: Path) -> float:
    started = time.monotonic()
    done = orchestrator(workspace, "run", "--once")
    assert done.returncode == 0, done.stderr
    return time.monotonic() - started


def test_a_stalled_tool_and_its_grandchild_are_killed_and_the_result_says_so(
    workspace: Path,
) -> None:
    configure(
        workspace,
        {"quiet": {"preferred_tool": "slow"}},
        slow=fake_tool(timeout="60s", idle_timeout="1s"),
    )
    pidfile = workspace.parent / "gc.pid"
    prompt = f"GRANDCHILD={pidfile}\nIGNORE_TERM\nSAY=working\nSLEEP=60"
    drop_task(workspace, "s.yaml", {"agent": "quiet", "prompt": prompt})
    took = run_once(workspace)
    assert took < 15, took  # not the 60 s timeout: 1 s, the 3 s grace, start-up
    res = result(workspace, "s")
    assert res["status"] == "failed"
    assert res["error"]["kind"] == "stalled"
    assert "no output for 1s" in res["error"]["message"]
    assert "idle_timeout" in res["error"]["hint"]
    (attempt,) = res["attempts"]
    assert attempt["outcome"] == "failed" and attempt["error"]["kind"] == "stalled"
    assert 1000 <= attempt["duration_ms"] < 8000, attempt
    assert telemetry(workspace) == [("slow", "failed", "stalled")]
    assert process_gone(int(pidfile.read_text()))
    assert tools_of(workspace) == []


def test_the_chain_moves_on_after_a_stall(workspace: Path) -> None:
    configure(
        workspace,
        {"hopper": {"preferred_tool": "hang", "fallback_chain": ["fake:fake-small"]}},
        2,
        hang=fake_tool(args=["-c", HANG], idle_timeout="1s", timeout="60s"),
    )
    drop_task(workspace, "c.yaml", {"agent": "hopper", "prompt": "hello"})
    took = run_once(workspace)
    assert took < 15, took
    res = result(workspace, "c")
    assert res["status"] == "succeeded", res
    assert res["tool"] == "fake" and res["fallback_from"].startswith("hang")
    assert [(a["tool"], a["outcome"]) for a in res["attempts"]] == [
        ("hang", "failed"),
        ("fake", "succeeded"),
    ]
    assert res["attempts"][0]["error"]["kind"] == "stalled"
    assert telemetry(workspace) == [("hang", "failed", "stalled"), ("fake", "succeeded", None)]
    assert tools_of(workspace) == []


def test_a_tasks_short_idle_timeout_overrides_the_tools_long_one(workspace: Path) -> None:
    configure(
        workspace,
        {"hopper": {"preferred_tool": "hang"}},
        hang=fake_tool(args=["-c", HANG], idle_timeout="50s", timeout="60s"),
    )
    drop_task(workspace, "t.yaml", {"agent": "hopper", "prompt": "hi", "idle_timeout": "1s"})
    took = run_once(workspace)
    assert took < 15, took
    res = result(workspace, "t")
    assert res["error"]["kind"] == "stalled"
    assert "no output for 1s" in res["error"]["message"]


def test_a_tasks_long_idle_timeout_overrides_the_tools_short_one(workspace: Path) -> None:
    """Silent for 2.5 s, then the answer: the tool's 1 s would stall it, the task's 10 s
    (or off) lets it finish."""
    configure(workspace, {"patient": {"preferred_tool": "slow"}}, slow=fake_tool(idle_timeout="1s"))
    drop_task(workspace, "a.yaml", {"agent": "patient", "prompt": "SLEEP=2.5"})
    drop_task(
        workspace, "b.yaml", {"agent": "patient", "prompt": "SLEEP=2.5", "idle_timeout": "10s"}
    )
    drop_task(workspace, "c.yaml", "agent: patient\nprompt: SLEEP=2.5\nidle_timeout: off\n")
    run_once(workspace)
    assert result(workspace, "a")["error"]["kind"] == "stalled"
    assert result(workspace, "b")["status"] == "succeeded"
    assert result(workspace, "c")["status"] == "succeeded"


# --- the real CLIs ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def api() -> Iterator[FakeLLMAPI]:
    with FakeLLMAPI() as server:
        yield server


@pytest.mark.real_cli
@pytest.mark.parametrize("tool", real.TOOLS)
def test_a_real_cli_waiting_on_a_silent_api_is_stalled(
    tmp_path: Path, api: FakeLLMAPI, tool: str
) -> None:
    """Each real CLI, its request left unanswered for 60 s, falls silent: it is stalled by
    the task's idle_timeout (5 s: a slow start still reaches the API first) long before its
    120 s timeout, and none of its processes survive (codex's native binary, gemini's)."""
    ws = real.Workspace.create(tmp_path / "real", api)  # tmp_path/ws: the autouse fixture's
    ws.configure()  # max_attempts 1: the pinned tool only
    task = {
        "agent": real.agent_of(tool),
        "tool": tool,
        "prompt": ws.prompt("FAKE_DELAY=60", "FAKE_REPLY=too-late"),
        "idle_timeout": "5s",
    }
    drop_task(ws.root, "quiet.yaml", task)

    started = time.monotonic()
    ws.run("--once")
    elapsed = time.monotonic() - started

    res = result(ws.root, "quiet")
    assert res["status"] == "failed", res
    assert res["error"]["kind"] == "stalled", res["error"]
    (attempt,) = res["attempts"]
    assert 5_000 <= attempt["duration_ms"] < 15_000, attempt
    assert elapsed < 30
    # stalled mid-request, not while starting up
    assert [p for p, prompt in api.arrivals if ws.tag in prompt] == [real.PROVIDERS[tool]]
    assert real.wait_until_gone(str(ws.home), timeout=3) == {}
