"""A hostile environment for the commands a person types: a corrupt or locked telemetry
database, a full disk at start-up, two `submit`s racing for one id. Each runs the real
`orchestrator` command and checks that the answer of a tool that ran is never lost, and
that a problem is told in one line, with no traceback.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from typing import TYPE_CHECKING

import pytest
import yaml

from tests.conftest import drop_task, orchestrator, results, spawn

if TYPE_CHECKING:
    from pathlib import Path

JUNK = b"this is not an SQLite database, whatever its name says\n" * 200


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


# --- a corrupt database --------------------------------------------------------------


def test_exec_on_a_corrupt_database_runs_the_tool_and_says_so(workspace: Path) -> None:
    db = workspace / "work" / "telemetry.db"
    db.write_bytes(JUNK)
    done = orchestrator(workspace, "exec", "--agent", "worker", "--prompt", "hello there")
    assert done.returncode == 0, done.stderr
    assert "hello there" in done.stdout
    assert "Traceback" not in done.stderr
    assert f"telemetry database {db} is not usable (file is not a database)" in done.stderr
    assert "this run is not recorded" in done.stderr
    assert "move the file aside" in done.stderr
    assert db.read_bytes() == JUNK  # left alone for whoever looks into it

    out = workspace.parent / "answer.md"
    written = orchestrator(
        workspace, "exec", "--agent", "worker", "--prompt", "to a file", "--output", str(out)
    )
    assert written.returncode == 0, written.stderr
    assert "to a file" in out.read_text()
    assert "Traceback" not in written.stderr


def test_stats_and_status_on_a_corrupt_database_say_so(workspace: Path) -> None:
    db = workspace / "work" / "telemetry.db"
    db.write_bytes(JUNK)
    for args in (["stats"], ["stats", "--json"], ["stats", "--monthly", "--by", "agent"]):
        stats = orchestrator(workspace, *args)
        assert stats.returncode == 1, stats.stdout
        assert "no invocations" not in stats.stdout
        assert "Traceback" not in stats.stderr
        assert stats.stderr.splitlines() == error_lines(stats.stderr)  # one line, no more
        [line] = error_lines(stats.stderr)
        assert str(db) in line
        assert "file is not a database" in line
        assert "move the file aside" in line

    status = orchestrator(workspace, "status")
    assert status.returncode == 0, status.stderr
    assert "Traceback" not in status.stderr
    [line] = [x for x in status.stdout.splitlines() if x.startswith("telemetry:")]
    assert str(db) in line and "file is not a database" in line
    health = json.loads(orchestrator(workspace, "status", "--json").stdout)["telemetry"]
    assert health["ok"] is False
    assert "file is not a database" in health["error"]


# --- a locked database ---------------------------------------------------------------


class LockHolder:
    """Another process's writer: BEGIN EXCLUSIVE now, COMMIT after `seconds` (or when
    told to let go)."""

    def __init__(self, db: Path, seconds: float) -> None:
        self.conn = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
        self.conn.execute("BEGIN EXCLUSIVE")
        self.let_go = threading.Event()
        self.thread = threading.Thread(target=self._release, args=(seconds,))
        self.thread.start()

    def _release(self, seconds: float) -> None:
        self.let_go.wait(seconds)
        self.conn.execute("COMMIT")
        self.conn.close()

    def join(self) -> None:
        self.thread.join()


def invocations(db: Path) -> list[str]:
    with sqlite3.connect(db) as conn:
        return [row[0] for row in conn.execute("SELECT task_id FROM invocations ORDER BY id")]


@pytest.mark.parametrize("seconds", [3.0, 7.0])  # 7 s outlasts SQLite's busy timeout of 5 s
def test_exec_waits_for_a_lock_held_a_few_seconds(workspace: Path, seconds: float) -> None:
    db = workspace / "work" / "telemetry.db"
    warm = orchestrator(workspace, "exec", "--agent", "worker", "--prompt", "warm")
    assert warm.returncode == 0, warm.stderr
    holder = LockHolder(db, seconds)
    try:
        done = orchestrator(workspace, "exec", "--agent", "worker", "--prompt", "while locked")
    finally:
        holder.join()
    assert done.returncode == 0, done.stderr
    assert "while locked" in done.stdout
    assert "Traceback" not in done.stderr
    assert len(invocations(db)) == 2  # this run's row was written once the lock went


def test_exec_under_a_lock_that_outlasts_the_wait_goes_on_unrecorded(workspace: Path) -> None:
    db = workspace / "work" / "telemetry.db"
    assert orchestrator(workspace, "exec", "--agent", "worker", "--prompt", "warm").returncode == 0
    out = workspace.parent / "answer.md"
    hold_for = 60.0
    holder = LockHolder(db, hold_for)
    started = time.monotonic()
    try:
        done = orchestrator(
            workspace, "exec", "--agent", "worker", "--prompt", "locked out", "--output", str(out)
        )
        took = time.monotonic() - started
    finally:
        holder.let_go.set()
        holder.join()
    assert done.returncode == 0, done.stderr
    assert "locked out" in out.read_text()  # the answer is there, telemetry or not
    assert "Traceback" not in done.stderr
    assert "database is locked" in done.stderr
    assert "this run is not recorded" in done.stderr
    assert took < 30, took  # it gave up waiting within its bound
    assert len(invocations(db)) == 1


# --- a full disk at start-up ---------------------------------------------------------


@pytest.mark.parametrize("work", ["missing", "empty", "with a task"])
def test_run_on_a_full_disk_ends_cleanly(workspace: Path, work: str) -> None:
    if work == "missing":  # nothing of work/ exists yet: the daemon creates it
        for folder in ("inbox", "outbox", "running", "archive"):
            (workspace / "work" / folder).rmdir()
        (workspace / "work").rmdir()
    elif work == "with a task":
        drop_task(workspace, "t1.yaml", {"agent": "worker", "prompt": "x"})
    process = orchestrator(workspace, "run", "--once", timeout=120, max_file_bytes=0)
    assert "Traceback" not in process.stderr, process.stderr
    assert process.returncode in (0, 1), process.stderr
    if process.returncode == 1:
        [line] = error_lines(process.stderr)
        assert "File too large" in line and "free some space" in line
    if work == "with a task":  # a result could not be written: the task is kept to run again
        assert not results(workspace)
        assert [p.name for p in (workspace / "work").glob("*/t1.yaml")]


def test_submit_on_a_full_disk_is_one_line(workspace: Path) -> None:
    done = orchestrator(
        workspace, "submit", "--agent", "worker", "--id", "t1", "--prompt", "x", max_file_bytes=0
    )
    assert done.returncode == 1, done.stdout
    assert "Traceback" not in done.stderr
    [line] = done.stderr.splitlines()
    assert line.startswith("error: orchestrator submit stopped on a file system error")
    assert f"(File too large, {workspace / 'work' / 'inbox' / 't1.yaml'})" in line
    assert line.endswith("free some space on that file system (or raise the file size limit), "
                         "then run it again")  # fmt: skip
    assert not list((workspace / "work" / "inbox").iterdir())  # no temp file left behind


# --- two submits racing for one id ---------------------------------------------------


# `orchestrator` with its modules imported, started on a line on stdin: the two racers
# then differ by microseconds, not by how long each took to start Python.
ON_GO = (
    "import sys; import orchestrator.cli, orchestrator.config, orchestrator.submit; "
    "sys.stdin.readline(); raise SystemExit(orchestrator.cli.main(sys.argv[1:]))"
)


@pytest.mark.timeout(300)  # 40 processes, each loading the config
def test_two_submits_with_one_id_exactly_one_wins(workspace: Path) -> None:
    inbox = workspace / "work" / "inbox"
    command = ["-c", ON_GO, "--root", str(workspace), "submit", "--agent", "worker"]
    for round_ in range(20):
        task_id = f"race-{round_}"
        procs = {
            who: spawn(workspace, [*command, "--id", task_id, "--prompt", f"from {who}"])
            for who in ("a", "b")
        }
        time.sleep(0.5)  # both have imported what they need
        for p in procs.values():
            assert p.stdin is not None
            p.stdin.write("go\n")
            p.stdin.flush()
        outcome = {who: (*p.communicate(timeout=60), p.returncode) for who, p in procs.items()}
        winners = [who for who, (_, _, code) in outcome.items() if code == 0]
        assert len(winners) == 1, f"round {round_}: {outcome}"
        [loser] = set(outcome) - set(winners)
        _, stderr, code = outcome[loser]
        assert code == 1 and "Traceback" not in stderr
        assert stderr == f"error: a task with id '{task_id}' exists already; choose another --id\n"
        names = sorted(p.name for p in inbox.iterdir())
        assert names == sorted(f"race-{i}.yaml" for i in range(round_ + 1))  # no temp files
        task = yaml.safe_load((inbox / f"{task_id}.yaml").read_text())
        assert task["prompt"] == f"from {winners[0]}"
