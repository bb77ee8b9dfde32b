"""Tools whose processes try to outlive their run: a grandchild that detaches into its own
session, a storm of cancels while tools run, a cancel under `run --once`."""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.conftest import (
    Daemon,
    base_config,
    cli_env,
    drop_task,
    fake_tool,
    orchestrator,
    process_gone,
    result,
    results,
    spawn,
    tools_of,
    wait_for,
    write_config,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

# A tool that double-forks a grandchild into its own session (out of the tool's process
# group), the grandchild ignoring SIGTERM; it writes the grandchild's pid to the file named
# by DETACH=<file> (to <file>.again when that file exists: a second run), answers, then
# sleeps SLEEP=<s> seconds (the first run only).
DETACH = r"""
import os, signal, sys, time
d = dict(line.strip().partition("=")[::2] for line in sys.stdin.read().splitlines())
pidfile, sleep_s = d["DETACH"], float(d.get("SLEEP") or 0)
if os.path.exists(pidfile):
    pidfile, sleep_s = pidfile + ".again", 0.0
r, w = os.pipe()
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        os.write(w, str(os.getpid()).encode())
        os.close(w)
        time.sleep(600)
    os._exit(0)
os.close(w)
pid = os.read(r, 64).decode()
os.wait()
with open(pidfile + ".tmp", "w") as f:
    f.write(pid)
os.rename(pidfile + ".tmp", pidfile)
print("detached", pid, flush=True)
time.sleep(sleep_s)
"""


def configure(workspace: Path) -> None:
    files = base_config()
    files["tools.yaml"]["tools"]["detach"] = fake_tool(
        args=["-c", DETACH], output={"format": "text"}
    )
    files["agents.yaml"]["agents"]["detacher"] = {"preferred_tool": "detach"}
    files["policies.yaml"]["retries"]["max_attempts"] = 1
    write_config(workspace, files)


@pytest.fixture(autouse=True)
def no_strays(workspace: Path) -> Iterator[None]:
    """Whatever a test leaves behind (on a failure) is killed, not left to sleep."""
    yield
    for pid in tools_of(workspace):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


def read_pid(pidfile: Path) -> int:
    wait_for(pidfile.exists, timeout=30, what=f"{pidfile.name}")
    return int(pidfile.read_text())


# --- detached grandchildren -------------------------------------------------------------


def test_a_detached_grandchild_is_gone_when_its_run_ends(workspace: Path) -> None:
    """With the daemon still running (its sweep at exit would hide a missing one per run)."""
    configure(workspace)
    pidfile = workspace.parent / "detached.pid"
    daemon = Daemon(workspace)
    try:
        drop_task(workspace, "d.yaml", {"agent": "detacher", "prompt": f"DETACH={pidfile}"})
        wait_for(lambda: "d" in results(workspace), what="the result")
        assert result(workspace, "d")["status"] == "succeeded"
        grandchild = read_pid(pidfile)
        assert process_gone(grandchild), "the detached grandchild outlived its run"
    finally:
        assert daemon.stop() == 0, daemon.text()


def test_exec_leaves_no_detached_grandchild(workspace: Path) -> None:
    configure(workspace)
    pidfile = workspace.parent / "detached.pid"
    done = orchestrator(workspace, "exec", "--agent", "detacher", "--prompt", f"DETACH={pidfile}")
    assert done.returncode == 0, done.stderr
    assert "detached" in done.stdout
    assert process_gone(read_pid(pidfile)), "the detached grandchild outlived exec"


def test_a_detached_grandchild_is_gone_after_a_timeout(workspace: Path) -> None:
    configure(workspace)
    pidfile = workspace.parent / "detached.pid"
    drop_task(
        workspace,
        "t.yaml",
        {"agent": "detacher", "timeout": "1s", "prompt": f"DETACH={pidfile}\nSLEEP=60"},
    )
    started = time.monotonic()
    done = orchestrator(workspace, "run", "--once")
    assert done.returncode == 0, done.stderr
    assert time.monotonic() - started < 20
    assert result(workspace, "t")["status"] == "timed_out"
    grandchild = read_pid(pidfile)
    assert process_gone(grandchild), "the detached grandchild outlived its timed-out run"


def test_detached_survivors_of_a_killed_daemon_are_killed_at_the_next_start(
    workspace: Path,
) -> None:
    configure(workspace)
    pidfile = workspace.parent / "detached.pid"
    drop_task(workspace, "k.yaml", {"agent": "detacher", "prompt": f"DETACH={pidfile}\nSLEEP=60"})
    daemon = Daemon(workspace)
    grandchild = read_pid(pidfile)
    daemon.process.kill()
    daemon.wait()
    time.sleep(0.2)
    assert not process_gone(grandchild), "the scenario needs a survivor of the killed daemon"
    done = orchestrator(workspace, "run", "--once")  # re-runs k: it was left in running/
    assert done.returncode == 0, done.stderr
    assert result(workspace, "k")["status"] == "succeeded"
    wait_for(lambda: process_gone(grandchild), timeout=5, what="the survivor to be killed")
    assert process_gone(read_pid(Path(f"{pidfile}.again")))
    assert tools_of(workspace) == []


# --- cancel -----------------------------------------------------------------------------


def cancel_all(workspace: Path, ids: list[str]) -> list[subprocess.CompletedProcess[str]]:
    """`orchestrator cancel` for every id, all at once."""
    commands = [
        subprocess.Popen(
            [sys.executable, "-m", "orchestrator", "--root", str(workspace), "cancel", task_id],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=cli_env(workspace.parent),
            cwd=workspace,
        )
        for task_id in ids
    ]
    done = []
    for command in commands:
        out, err = command.communicate(timeout=60)
        done.append(subprocess.CompletedProcess(command.args, command.returncode, out, err))
    return done


@pytest.mark.parametrize("when", ["running", "starting"])
def test_cancelling_many_tasks_leaves_no_process(workspace: Path, when: str) -> None:
    ids = [f"c{i}" for i in range(8)]
    pidfiles = {task_id: workspace.parent / f"{task_id}.pid" for task_id in ids}
    daemon = Daemon(workspace, "--concurrency", "10")
    try:
        for task_id in ids:
            drop_task(
                workspace,
                f"{task_id}.yaml",
                {
                    "agent": "worker",
                    "prompt": f"GRANDCHILD={pidfiles[task_id]}\nIGNORE_TERM\nSLEEP=30",
                },
            )
        if when == "running":
            grandchildren = [read_pid(p) for p in pidfiles.values()]
            wait_for(lambda: len(tools_of(workspace)) >= 2 * len(ids), what="tools to run")
        started = time.monotonic()
        answers = cancel_all(workspace, ids)
        for answer in answers:
            assert answer.returncode == 0, answer.stderr
            assert answer.stdout.startswith("cancelled"), answer.stdout
        assert time.monotonic() - started < 20
        wait_for(lambda: not tools_of(workspace), timeout=10, what="every tool to be gone")
        if when == "running":
            assert all(process_gone(pid) for pid in grandchildren)
        done = results(workspace)
        assert sorted(done) == sorted(ids)
        assert {r["status"] for r in done.values()} == {"cancelled"}
    finally:
        assert daemon.stop() == 0, daemon.text()
    assert sorted(results(workspace)) == sorted(ids)


# `orchestrator cancel <root> <id>`: its modules are loaded ("ready"), then it runs on a
# line on stdin.
PRIMED_CANCEL = """
import sys
from orchestrator import cli, control
root, task_id = sys.argv[1:]
print("ready", flush=True)
sys.stdin.readline()
raise SystemExit(cli.main(["--root", root, "cancel", task_id]))
"""


def test_a_cancel_while_the_result_is_being_written_is_answered(workspace: Path) -> None:
    """Between the end of its tool and its result (which waits up to 2 s for its telemetry
    rows, here held up by a lock on the database) a task is still the daemon's: a cancel
    must not be told it does not exist. Tried again when the cancel came too late."""
    daemon = Daemon(workspace)
    try:
        for attempt in range(3):
            answer = cancel_between_tool_and_result(workspace, daemon, f"f{attempt}")
            if answer is not None:
                break
        else:
            pytest.fail("in 3 tries the cancel never arrived between the tool and the result")
        assert answer.returncode == 0, answer.stderr
        assert answer.stdout.strip() == f"f{attempt} finished first (succeeded)"
        assert result(workspace, f"f{attempt}")["status"] == "succeeded"
    finally:
        assert daemon.stop() == 0, daemon.text()


def cancel_between_tool_and_result(
    workspace: Path, daemon: Daemon, task_id: str
) -> subprocess.CompletedProcess[str] | None:
    """`cancel` a task once its tool has ended and before its result is written; None
    when the daemon took the request (it logs each) only after writing the result."""
    started = workspace.parent / f"{task_id}.started"
    outcome = workspace / "work" / "outbox" / f"{task_id}.result.yaml"
    command = [sys.executable, "-c", PRIMED_CANCEL, str(workspace), task_id]
    db = sqlite3.connect(workspace / "work" / "telemetry.db", isolation_level=None, timeout=10)
    cancel = spawn(workspace, command[1:])  # the command, loaded beforehand: the window is short
    try:
        assert cancel.stdin is not None and cancel.stdout is not None
        assert cancel.stdout.readline() == "ready\n"
        db.execute("BEGIN IMMEDIATE")
        drop_task(workspace, f"{task_id}.yaml", {"agent": "worker", "prompt": f"STARTED={started}"})
        wait_for(started.exists, what="the tool to start")
        wait_for(lambda: not tools_of(workspace), what="the tool to end")
        cancel.stdin.write("go\n")
        cancel.stdin.flush()
        taken = f"cancel {task_id}: "
        wait_for(lambda: taken in daemon.text() or outcome.exists(), what="the request taken")
        in_time = not outcome.exists()
    finally:
        db.execute("ROLLBACK")
        db.close()
    out, err = cancel.communicate(timeout=30)
    return subprocess.CompletedProcess(command, cancel.returncode, out, err) if in_time else None


def test_once_serves_a_cancel_while_the_tool_runs(workspace: Path) -> None:
    drop_task(workspace, "slow.yaml", {"agent": "worker", "prompt": "SLEEP=8"})
    run = spawn(workspace, ["-m", "orchestrator", "--root", str(workspace), "run", "--once"])
    try:
        wait_for(lambda: bool(tools_of(workspace)), what="the tool to start")
        tool = tools_of(workspace)
        started = time.monotonic()
        done = orchestrator(workspace, "cancel", "slow")
        took = time.monotonic() - started
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == "cancelled slow"
        assert took < 6, f"the cancel took {took:.1f}s (the tool runs 8 s)"
        assert result(workspace, "slow")["status"] == "cancelled"
        wait_for(lambda: all(process_gone(pid) for pid in tool), timeout=2, what="tool gone")
        assert run.wait(timeout=5) == 0
    finally:
        if run.poll() is None:
            run.kill()
        run.communicate()
