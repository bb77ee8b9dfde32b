"""Tools that misbehave: floods, held pipes, signals, unrunnable binaries."""

from __future__ import annotations

import errno
import json
import os
import stat
import sys
import threading
import time
from pathlib import Path
from typing import Any

import anyio
import pytest

from orchestrator import process
from orchestrator.process import BoundedBuffer, ProcessResult, run_process
from tests.conftest import (
    FAKE_TOOL,
    base_config,
    drop_task,
    fake_tool,
    orchestrator,
    process_gone,
    result,
    wait_for,
    write_config,
)


def configure(workspace: Path, **tools: dict[str, object]) -> None:
    files = base_config()
    files["tools.yaml"]["tools"].update(tools)
    files["agents.yaml"]["agents"]["odd"] = {"preferred_tool": next(iter(tools))}
    files["policies.yaml"]["retries"]["max_attempts"] = 1
    write_config(workspace, files)


async def run_bare(
    argv: list[str], cwd: Path, stdin: bytes | None = None, limit_s: float = 60, **options: Any
) -> ProcessResult:
    """`run_process` with only a PATH in the environment, as a tool that declares none."""
    return await run_process(
        argv, env={"PATH": "/usr/bin:/bin"}, cwd=cwd, stdin=stdin, limit_s=limit_s, **options
    )


def test_flooding_tool_output_is_bounded(workspace: Path) -> None:
    configure(workspace, flood=fake_tool(output={"format": "text"}))
    drop_task(workspace, "f.yaml", {"agent": "odd", "prompt": "FLOOD=40000000"})
    done = orchestrator(workspace, "run", "--once")
    assert done.returncode == 0, done.stderr
    res = result(workspace, "f")
    assert res["status"] == "succeeded"
    output = (workspace / "work" / "outbox" / res["output_file"]).read_text()
    assert len(output) < 9 * 1024 * 1024
    assert "bytes dropped ..." in output


def test_tool_exiting_while_a_grandchild_holds_stdout(workspace: Path) -> None:
    pidfile = workspace.parent / "holder.pid"
    drop_task(workspace, "h.yaml", {"agent": "worker", "prompt": f"HOLD_STDOUT={pidfile}"})
    started = time.monotonic()
    done = orchestrator(workspace, "run", "--once")
    assert done.returncode == 0, done.stderr
    assert time.monotonic() - started < 20
    assert result(workspace, "h")["status"] == "succeeded"
    wait_for(lambda: process_gone(int(pidfile.read_text())), timeout=5, what="holder gone")


def test_tool_killed_by_a_signal(workspace: Path) -> None:
    configure(workspace, selfkill=fake_tool())
    drop_task(workspace, "k.yaml", {"agent": "odd", "prompt": "KILL_SELF"})
    assert orchestrator(workspace, "run", "--once").returncode == 0
    res = result(workspace, "k")
    assert res["status"] == "failed"
    assert res["error"]["kind"] == "killed_by_signal"
    assert "signal 9" in res["error"]["message"]


def test_binary_that_is_not_executable(workspace: Path) -> None:
    script = workspace / "tool.sh"
    script.write_text("#!/bin/sh\necho hi\n")
    script.chmod(stat.S_IRUSR | stat.S_IWUSR)
    configure(workspace, noexec=fake_tool(binary=str(script), args=[]))
    drop_task(workspace, "n.yaml", {"agent": "odd", "prompt": "hi"})
    assert orchestrator(workspace, "run", "--once").returncode == 0
    res = result(workspace, "n")
    assert res["status"] == "failed"
    assert res["error"]["kind"] == "not_executable"
    assert "chmod +x" in res["error"]["hint"]


def test_bounded_buffer_keeps_head_and_tail() -> None:
    buf = BoundedBuffer(10)
    for chunk in (b"abc", b"defgh", b"ijklmnop", b"qrstuvwxyz"):
        buf.add(chunk)
    assert buf.value() == b"abcde\n[... 16 bytes dropped ...]\nvwxyz"


async def test_cancelling_a_run_kills_the_whole_group(tmp_path: Path) -> None:
    pidfile = tmp_path / "gc.pid"
    prompt = f"GRANDCHILD={pidfile}\nIGNORE_TERM\nSLEEP=60\n".encode()
    with anyio.move_on_after(1.5):
        await run_bare(
            ["python3", FAKE_TOOL],
            tmp_path,
            stdin=prompt,
            grace=0.2,
        )
    wait_for(lambda: process_gone(int(pidfile.read_text())), timeout=5, what="grandchild gone")


async def test_many_concurrent_tools_are_waited_for_without_a_thread_each(tmp_path: Path) -> None:
    """40 tools at once: each exit code (and a death by signal) reaches its own run, and
    no thread per child is started to wait for it."""
    threads_before = threading.active_count()
    most_threads = threads_before
    codes: dict[int, int | None] = {}

    async def one(n: int) -> None:
        end = "os.kill(os.getpid(), 9)" if n == 7 else f"raise SystemExit({n})"
        script = f"import os, time\ntime.sleep(0.2)\n{end}"
        proc = await run_bare(
            [sys.executable, "-c", script],
            tmp_path,
            limit_s=30,
        )
        codes[n] = proc.exit_code

    async with anyio.create_task_group() as tg:
        for n in range(40):
            tg.start_soon(one, n)
        await anyio.sleep(0.1)  # all started, none finished
        most_threads = max(most_threads, threading.active_count())
    assert codes == {n: (-9 if n == 7 else n) for n in range(40)}
    if sys.platform == "linux":  # pidfds
        assert most_threads - threads_before < 5


async def test_tools_are_still_waited_for_when_no_pidfd_can_be_opened(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Out of file descriptors for a pidfd: the child is waited for in a thread instead,
    and its exit code still arrives."""
    await run_bare(["true"], tmp_path, limit_s=9)

    def no_pidfd(pid: int, flags: int = 0) -> int:
        raise OSError(errno.EMFILE, "Too many open files")

    monkeypatch.setattr(os, "pidfd_open", no_pidfd)
    proc = await run_bare(
        [sys.executable, "-c", "raise SystemExit(5)"],
        tmp_path,
        limit_s=30,
    )
    assert proc.exit_code == 5


@pytest.fixture(params=["lean", "portable"])
def runner(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Both ways of running a tool: event-loop callbacks with a pidfd (Linux, asyncio) and
    anyio's processes (elsewhere)."""
    if request.param == "portable":
        monkeypatch.setattr(process, "_lean_runs", lambda: False)
    elif not sys.platform.startswith("linux"):
        pytest.skip("pidfds are Linux's")
    return str(request.param)


async def test_a_prompt_larger_than_a_pipe_goes_in_whole(runner: str, tmp_path: Path) -> None:
    prompt = "".join(f"line {i}: {'é' * 40}\n" for i in range(8000))  # ~400 KB
    proc = await run_bare(
        ["python3", FAKE_TOOL],
        tmp_path,
        stdin=prompt.encode(),
    )
    assert proc.exit_code == 0, proc.stderr
    assert json.loads(proc.stdout)["result"] == prompt


async def test_exit_codes_and_signals(runner: str, tmp_path: Path) -> None:
    async def code(prompt: str) -> int | None:
        proc = await run_bare(
            ["python3", FAKE_TOOL],
            tmp_path,
            stdin=prompt.encode(),
        )
        return proc.exit_code

    assert await code("EXIT=3\n") == 3
    assert await code("KILL_SELF\n") == -9
    assert await code("hello\n") == 0


async def test_timeout_kills_the_group(runner: str, tmp_path: Path) -> None:
    pidfile = tmp_path / "gc.pid"
    started = time.monotonic()
    proc = await run_bare(
        ["python3", FAKE_TOOL],
        tmp_path,
        stdin=f"GRANDCHILD={pidfile}\nIGNORE_TERM\nSLEEP=60\n".encode(),
        limit_s=1.0,
        grace=0.3,
    )
    assert proc.timed_out and proc.exit_code is None
    assert time.monotonic() - started < 10
    wait_for(lambda: process_gone(int(pidfile.read_text())), timeout=5, what="grandchild gone")


async def test_a_line_that_proves_failure_stops_the_run(runner: str, tmp_path: Path) -> None:
    script = (
        "import sys, time\nprint('working', flush=True)\nprint('FATAL', flush=True)\ntime.sleep(60)"
    )
    started = time.monotonic()
    proc = await run_bare(
        [sys.executable, "-c", script],
        tmp_path,
        watch=lambda line: line == b"FATAL",
    )
    assert proc.stopped_early and proc.exit_code is None
    assert proc.stdout.startswith(b"working\nFATAL\n")
    assert time.monotonic() - started < 10
