"""The guarantees of docs/guarantees.md under faults and hostile input."""

from __future__ import annotations

import json
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import yaml

from orchestrator.jobs import Job
from orchestrator.journal import Journal
from orchestrator.outbox import Finished, write_results
from orchestrator.results import Result
from orchestrator.workdir import Workdir, atomic_write_many
from tests.conftest import (
    Daemon,
    base_config,
    cli_env,
    drop_task,
    orchestrator,
    process_gone,
    result,
    results,
    tools_of,
    wait_for,
    write_config,
)


def start_daemon(root: Path, *args: str, **popen: Any) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "orchestrator", "--root", str(root), "run", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=cli_env(root.parent),
        cwd=root,
        **popen,
    )


def all_gone(pids: list[int]) -> bool:
    return all(process_gone(p) for p in pids)


def check_exactly_once(root: Path, ids: list[str]) -> dict[str, dict[str, Any]]:
    found = results(root)
    assert sorted(found) == sorted(ids)
    assert not list((root / "work" / "outbox").glob(".*.tmp"))
    assert not [p for p in (root / "work" / "inbox").iterdir() if not p.name.startswith(".")]
    assert not [p for p in (root / "work" / "running").iterdir() if not p.name.startswith(".")]
    return found


# --- 1, 2: kill -9 at random moments ---------------------------------------------------


def chaos(workspace: Path, tasks: int, kills: int, seed: int) -> None:
    rng = random.Random(seed)
    files = base_config()
    files["policies.yaml"]["retries"]["quarantine_after"] = 1000  # kills are not poison here
    write_config(workspace, files)
    ids = [f"c{i:04}" for i in range(tasks)]
    for i, task_id in enumerate(ids):
        prompt = f"n{i}" if i % 3 else f"n{i}\nSLEEP=0.{rng.randint(1, 4)}"
        drop_task(workspace, f"{task_id}.yaml", {"agent": "worker", "prompt": prompt})
    orphans_seen = 0
    left: list[int] = []
    for _ in range(kills):
        daemon = start_daemon(workspace, "--concurrency", "8")
        if left:  # the tools the last daemon left behind: this one must kill them
            wait_for(partial(all_gone, list(left)), timeout=20,
                     what="the dead daemon's tools to be killed")  # fmt: skip
        time.sleep(rng.uniform(0.3, 1.2))
        daemon.kill()  # SIGKILL: no clean-up at all
        daemon.wait()
        left = tools_of(workspace)
        orphans_seen += bool(left)
    final = orchestrator(workspace, "run", "--once", timeout=600)
    assert final.returncode == 0, final.stderr
    found = check_exactly_once(workspace, ids)
    assert {r["status"] for r in found.values()} == {"succeeded"}
    for task_id, res in found.items():  # every result is whole and its own
        assert res["id"] == task_id
    with sqlite3.connect(workspace / "work" / "telemetry.db") as db:
        ok = {
            r[0] for r in db.execute("SELECT task_id FROM invocations WHERE outcome = 'succeeded'")
        }
    assert ok == set(ids)  # telemetry agrees with the results
    assert not tools_of(workspace)
    assert orphans_seen, "no kill hit a running tool: the test proved nothing about orphans"


@pytest.mark.timeout(600)
def test_kill_9_at_random_moments(workspace: Path) -> None:
    chaos(workspace, tasks=800, kills=25, seed=11)  # about 35 s


# --- 3: start-up window and slow writers -----------------------------------------------


@pytest.mark.watcher
def test_files_written_while_the_daemon_starts(workspace: Path) -> None:
    for i in range(20):
        drop_task(workspace, f"pre{i}.yaml", {"agent": "worker", "prompt": "before"})
    daemon = start_daemon(workspace)
    try:
        for i in range(60):  # spread over the start-up window
            drop_task(workspace, f"during{i}.yaml", {"agent": "worker", "prompt": "during"})
            time.sleep(0.01)
        wait_for(lambda: len(results(workspace)) == 80, timeout=60, what="80 results")
    finally:
        daemon.terminate()
        daemon.wait(timeout=60)
    found = check_exactly_once(workspace, [*(f"pre{i}" for i in range(20)),
                                           *(f"during{i}" for i in range(60))])  # fmt: skip
    assert {r["status"] for r in found.values()} == {"succeeded"}


@pytest.mark.watcher
def test_slow_writers_in_place(workspace: Path, daemon: Daemon) -> None:
    inbox = workspace / "work" / "inbox"
    with (inbox / "open.yaml").open("w") as f:  # keeps the file open while pausing
        f.write("agent: worker\n")
        f.flush()
        time.sleep(1.0)
        f.write("prompt: complete answer\n")
    with (inbox / "twice.yaml").open("w") as f:  # half a YAML document, a pause, the rest
        f.write("agent: worker\nprompt: 'first half")
        f.flush()
        time.sleep(0.5)
        f.write(" and the rest'\n")
    wait_for(lambda: len(results(workspace)) == 2, timeout=30, what="both results")
    assert result(workspace, "open")["output"] == "complete answer\n"
    assert result(workspace, "twice")["output"] == "first half and the rest\n"


def test_archive_folder_removed_under_a_live_daemon(workspace: Path, daemon: Daemon) -> None:
    """Someone clears work/archive/ while the daemon runs: the next task file is still
    archived (its day's folder made again), not left in running/ to run twice."""
    inbox, work = workspace / "work" / "inbox", workspace / "work"
    (inbox / "first.yaml").write_text("agent: worker\nprompt: one\n")
    wait_for(lambda: len(results(workspace)) == 1, timeout=30, what="the first result")
    wait_for(lambda: not any((work / "running").iterdir()), timeout=10, what="first archived")
    shutil.rmtree(work / "archive")
    (inbox / "second.yaml").write_text("agent: worker\nprompt: two\n")
    wait_for(lambda: len(results(workspace)) == 2, timeout=30, what="the second result")
    wait_for(lambda: not any((work / "running").iterdir()), timeout=10, what="second archived")
    assert [p.name for p in (work / "archive").glob("*/*.yaml")] == ["second.yaml"]


def test_a_group_write_with_one_failing_file(tmp_path: Path) -> None:
    """Results are written as a group: one that cannot be written (its folder is gone, a
    directory has its name) fails alone; the others are whole, and no temp file is left."""
    (tmp_path / "taken.result.yaml").mkdir()
    (tmp_path / "taken.result.yaml" / "inside").write_text("x")
    files = [(tmp_path / f"r{i}.result.yaml", f"id: r{i}\n".encode() * (i + 1)) for i in range(70)]
    files[3] = (tmp_path / "gone" / "r3.result.yaml", b"id: r3\n")
    files[40] = (tmp_path / "taken.result.yaml", b"id: taken\n")
    errors = atomic_write_many(files)
    assert [i for i, e in enumerate(errors) if e is not None] == [3, 40]
    for i, (path, data) in enumerate(files):
        if i not in (3, 40):
            assert path.read_bytes() == data
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_a_result_that_cannot_be_rendered_is_a_failed_result(tmp_path: Path) -> None:
    """A result YAML cannot represent (a bug of ours) becomes a failed result beside the
    others; an output with a lone surrogate is written escaped; nothing raises."""
    workdir = Workdir(tmp_path)
    workdir.ensure()
    decided = {
        "odd": Result(id="odd", status="succeeded", agent="worker", task={"x": object()}),
        "long": Result(id="long", status="succeeded", output="x" * 300_000 + "\ud800"),
        "ok": Result(id="ok", status="succeeded", output="hi"),
    }
    batch = []
    for name, decision in decided.items():
        claimed = workdir.running / f"{name}.yaml"
        claimed.write_text("agent: worker\nprompt: p\n")
        batch.append(Finished(Job((0, 0.0, 0), claimed, verdict=decision), decision))
    write_results(workdir, batch)
    assert all(done.written for done in batch)
    odd = yaml.safe_load(workdir.result_path("odd").read_text())
    assert odd["status"] == "failed" and odd["error"]["kind"] == "internal_error"
    assert "RepresenterError" in odd["error"]["message"]
    long = yaml.safe_load(workdir.result_path("long").read_text())
    assert long["status"] == "succeeded" and long["output_file"] == "long.output.txt"
    assert (workdir.outbox / "long.output.txt").read_bytes().endswith(b"x\\ud800")
    assert yaml.safe_load(workdir.result_path("ok").read_text())["output"] == "hi"
    assert not list(workdir.running.iterdir())  # every task file archived


# --- 4: bursts ------------------------------------------------------------------------


def cat_tool(files: dict[str, Any]) -> None:
    files["tools.yaml"]["tools"]["cat"] = {
        "adapter": "generic",
        "binary": "cat",
        "output": {"format": "text"},
        "max_concurrency": 16,
    }
    files["agents.yaml"]["agents"]["echo"] = {"preferred_tool": "cat"}


def burst(workspace: Path, count: int, *args: str) -> None:
    files = base_config()
    cat_tool(files)
    write_config(workspace, files)
    inbox = workspace / "work" / "inbox"
    for i in range(count):
        (inbox / f".b{i:05}.tmp").write_text(f"agent: echo\nprompt: n{i}\n")
        os.rename(inbox / f".b{i:05}.tmp", inbox / f"b{i:05}.yaml")
    d = Daemon(workspace, "--concurrency", "16", *args)
    try:
        wait_for(lambda: len(list((workspace / "work" / "outbox").glob("*.result.yaml")))
                 >= count, timeout=900, what=f"{count} results")  # fmt: skip
    finally:
        d.stop()
    found = check_exactly_once(workspace, [f"b{i:05}" for i in range(count)])
    assert all(found[f"b{i:05}"]["output"] == f"n{i}" for i in range(count))


@pytest.mark.watcher
@pytest.mark.parametrize("mode", ["events", "polling"])
def test_burst_of_task_files(workspace: Path, mode: str) -> None:
    burst(workspace, 1500, *(["--poll"] if mode == "polling" else []))


@pytest.mark.timeout(900)  # ~100 s each here; the suite's 120 s default is too tight
@pytest.mark.parametrize("mode", ["events", "polling"])
def test_burst_of_20000_task_files(workspace: Path, mode: str) -> None:
    burst(workspace, 20_000, *(["--poll"] if mode == "polling" else []))


# --- 5: storms ------------------------------------------------------------------------


@pytest.mark.watcher
def test_create_delete_and_rename_storms_and_a_recreated_inbox(
    workspace: Path, daemon: Daemon
) -> None:
    inbox = workspace / "work" / "inbox"
    for i in range(200):  # created and deleted at once: may or may not be seen
        path = inbox / f"gone{i}.yaml"
        path.write_text("agent: worker\nprompt: x\n")
        path.unlink(missing_ok=True)
    outside = workspace.parent / "storm"
    outside.mkdir()
    (outside / "spin.yaml").write_text("agent: worker\nprompt: spun\n")
    for _ in range(50):  # in and out of the inbox
        if (outside / "spin.yaml").exists():
            os.rename(outside / "spin.yaml", inbox / "spin.yaml")
        else:
            try:
                os.rename(inbox / "spin.yaml", outside / "spin.yaml")
            except FileNotFoundError:
                break  # the daemon claimed it: it is now the daemon's
    if (outside / "spin.yaml").exists():
        os.rename(outside / "spin.yaml", inbox / "spin.yaml")
    wait_for(lambda: "spin" in results(workspace), what="the spun file")
    for _ in range(3):
        for p in inbox.iterdir():
            p.unlink(missing_ok=True)
        inbox.rmdir()
        time.sleep(0.3)
        inbox.mkdir(exist_ok=True)  # unless the daemon made it again first
    drop_task(workspace, "after.yaml", {"agent": "worker", "prompt": "still here"})
    wait_for(lambda: "after" in results(workspace), timeout=30, what="a task after re-creation")
    assert daemon.process.poll() is None
    gone = [k for k in results(workspace) if k.startswith("gone")]
    assert all(result(workspace, k)["status"] in ("succeeded", "rejected") for k in gone)
    assert result(workspace, "spin")["output"] == "spun\n"


# --- 6: hostile files -----------------------------------------------------------------

ALIAS_BOMB = "\n".join(
    [f"l0: &l0 [{', '.join(['x'] * 10)}]"]
    + [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]" for i in range(1, 9)]
    + ["agent: worker", "prompt: boom"]
)


def test_hostile_files(workspace: Path, daemon: Daemon, tmp_path: Path) -> None:
    inbox = workspace / "work" / "inbox"
    secret = tmp_path / "secret.yaml"
    secret.write_text("agent: worker\nprompt: the secret outside\n")
    drop_task(workspace, "bomb.yaml", ALIAS_BOMB)
    drop_task(
        workspace, "tag.yaml", "agent: worker\nprompt: !!python/object/apply:os.system [id]\n"
    )
    with (inbox / ".huge.tmp").open("wb") as f:
        f.truncate(100 * 1024 * 1024)
    os.rename(inbox / ".huge.tmp", inbox / "huge.yaml")
    (inbox / "link.yaml").symlink_to(secret)
    os.mkfifo(inbox / "pipe.yaml")
    name = inbox.as_posix().encode() + b"/caf\xe9.yaml"
    fd = os.open(name, os.O_WRONLY | os.O_CREAT)
    os.write(fd, b"agent: worker\nprompt: latin-1 name\n")
    os.close(fd)
    drop_task(workspace, "after.yaml", {"agent": "worker", "prompt": "fine"})
    wait_for(lambda: len(results(workspace)) == 7, timeout=30, what="7 results")
    kinds = {k: (v["status"], (v.get("error") or {}).get("kind")) for k, v in
             results(workspace).items()}  # fmt: skip
    assert kinds.pop("bomb") == ("rejected", "yaml_aliases")
    assert kinds.pop("tag") == ("rejected", "yaml_syntax")
    assert kinds.pop("huge") == ("rejected", "too_large")
    assert kinds.pop("link") == ("rejected", "symlink")
    assert kinds.pop("pipe") == ("rejected", "not_a_regular_file")
    assert kinds.pop("after") == ("succeeded", None)
    [(odd_id, odd)] = kinds.items()  # the non-UTF-8 name: an id made safe, the task run
    assert odd == ("rejected", "unsafe_id") and odd_id.startswith("caf")
    assert secret.read_text() == "agent: worker\nprompt: the secret outside\n"
    assert daemon.process.poll() is None


# --- 8: poison ------------------------------------------------------------------------


def test_a_task_that_kills_the_daemon_is_quarantined(workspace: Path) -> None:
    files = base_config()
    files["policies.yaml"]["retries"]["quarantine_after"] = 2
    write_config(workspace, files)
    drop_task(workspace, "poison.yaml", {"agent": "worker", "prompt": "KILL_PARENT"})
    drop_task(workspace, "fine.yaml", {"agent": "worker", "prompt": "fine", "priority": "high"})
    codes = []
    for _ in range(4):  # a supervisor restarting the daemon
        codes.append(orchestrator(workspace, "run", "--once", "--concurrency", "1").returncode)
        if "poison" in results(workspace):
            break
    assert codes == [-9, -9, 0]
    poison = result(workspace, "poison")
    assert poison["status"] == "failed" and poison["error"]["kind"] == "quarantined"
    assert "started 2 times without finishing" in poison["error"]["message"]
    assert result(workspace, "fine")["status"] == "succeeded"
    journal = (workspace / "work" / ".journal").read_text()
    assert '{"done": "poison.yaml"}' in journal  # the count is settled


def test_the_journal_of_a_run(workspace: Path) -> None:
    """Per task that runs: start, its tool's process group, ran (the tool ended), done
    (the result is written); a rejection runs nothing, so it has only its done."""
    drop_task(workspace, "good.yaml", {"agent": "worker", "prompt": "fine"})
    (workspace / "work" / "inbox" / "bad.yaml").write_text("agent: [unclosed\n")
    assert orchestrator(workspace, "run", "--once").returncode == 0
    assert result(workspace, "bad")["status"] == "rejected"
    journal = (workspace / "work" / ".journal").read_text().splitlines()
    entries = [json.loads(line) for line in journal]
    assert [e for e in entries if "bad.yaml" in e.values()] == [{"done": "bad.yaml"}]
    run = [e for e in entries if "bad.yaml" not in e.values()]
    assert [next(iter(e)) for e in run] == ["start", "group", "ran", "done"]
    assert run[0]["start"] == run[2]["ran"] == run[3]["done"] == "good.yaml"


def test_the_journal_counts_runs_that_did_not_end(tmp_path: Path) -> None:
    """A run whose tool ended while the daemon lived is not counted against its file, even
    when its result is not written yet: with one slot, the next task may kill the daemon
    in that gap (the finisher writes results after the slot is free)."""
    journal = Journal(tmp_path / ".journal")
    journal.open(set())
    journal.start("innocent.yaml")
    journal.start("poison.yaml")
    journal.ran("innocent.yaml")
    journal.start("twice.yaml")
    journal.start("twice.yaml")
    journal.ran("twice.yaml")
    journal.ran("never-started.yaml")  # a stray entry changes nothing
    journal.close()
    again = Journal(tmp_path / ".journal")
    again.load()
    assert again.runs == {"poison.yaml": 1, "twice.yaml": 1}
    again.open({"poison.yaml"})  # compacted: only files still claimed
    again.close()
    third = Journal(tmp_path / ".journal")
    third.load()
    assert third.runs == {"poison.yaml": 1}


def test_a_journal_that_cannot_be_written_does_not_stop_the_daemon(tmp_path: Path) -> None:
    """The disk full (here: a descriptor that refuses writes): the counts are kept in
    memory and the run goes on, with a warning."""
    journal = Journal(tmp_path / ".journal")
    journal.open(set())
    assert journal._fd is not None
    os.close(journal._fd)
    journal._fd = os.open(tmp_path / ".journal", os.O_RDONLY)
    assert journal.start("a.yaml") == 1
    assert journal.start("a.yaml") == 2
    journal.ran("a.yaml")
    assert journal.runs == {"a.yaml": 1}
    journal.close()


# --- 9: cancel and retry --------------------------------------------------------------


def test_cancel_running_and_queued_tasks(workspace: Path) -> None:
    log = workspace.parent / "started.log"
    pidfile = workspace.parent / "gc.pid"
    d = Daemon(workspace, "--concurrency", "1")
    try:
        drop_task(
            workspace,
            "long.yaml",
            {
                "agent": "worker",
                "prompt": f"STARTED={log}\nGRANDCHILD={pidfile}\nIGNORE_TERM\nSLEEP=60",
            },
        )
        wait_for(lambda: pidfile.exists() and pidfile.read_text(), what="the long task")
        drop_task(workspace, "queued.yaml", {"agent": "worker", "prompt": f"STARTED={log}"})
        time.sleep(0.2)
        done = orchestrator(workspace, "cancel", "queued")
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == "cancelled queued"
        started = time.monotonic()
        done = orchestrator(workspace, "cancel", "long")
        assert done.returncode == 0, done.stderr
        assert time.monotonic() - started < 10
        unknown = orchestrator(workspace, "cancel", "nope")
        assert unknown.returncode == 1 and "no queued or running task" in unknown.stderr
    finally:
        d.stop()
    assert result(workspace, "long")["status"] == "cancelled"
    assert result(workspace, "queued")["status"] == "cancelled"
    assert "retry long" in result(workspace, "long")["error"]["hint"]
    assert [line.split()[0] for line in log.read_text().splitlines()] == ["long"]
    wait_for(lambda: process_gone(int(pidfile.read_text())), timeout=5, what="grandchild gone")
    again = orchestrator(workspace, "cancel", "long")
    assert again.returncode == 1 and "finished already (cancelled)" in again.stderr


def test_cancel_without_a_daemon(workspace: Path) -> None:
    drop_task(workspace, "idle.yaml", {"agent": "worker", "prompt": "x"})
    done = orchestrator(workspace, "cancel", "idle")
    assert done.returncode == 0 and "cancelled idle (queued)" in done.stdout
    assert result(workspace, "idle")["status"] == "cancelled"
    assert not (workspace / "work" / "inbox" / "idle.yaml").exists()


def test_retry_keeps_the_history(workspace: Path) -> None:
    log = workspace.parent / "started.log"
    drop_task(workspace, "again.yaml", {"agent": "worker", "prompt": f"STARTED={log}\nEXIT=1"})
    assert orchestrator(workspace, "run", "--once").returncode == 0
    assert result(workspace, "again")["status"] == "failed"
    done = orchestrator(workspace, "retry", "again")
    assert done.returncode == 0, done.stderr
    assert "re-queued again (run 2)" in done.stdout
    assert orchestrator(workspace, "run", "--once").returncode == 0
    second = result(workspace, "again")
    assert second["previous_results"] == ["history/again.1.result.yaml"]
    first = yaml.safe_load((workspace / "work" / "outbox" / "history" /
                            "again.1.result.yaml").read_text())  # fmt: skip
    assert first["status"] == "failed"
    with sqlite3.connect(workspace / "work" / "telemetry.db") as db:
        assert db.execute("SELECT COUNT(*) FROM invocations").fetchone()[0] == 6
    assert len(log.read_text().splitlines()) == 6  # 3 attempts a run, two runs
    missing = orchestrator(workspace, "retry", "never-ran")
    assert missing.returncode == 1 and "only finished tasks can be retried" in missing.stderr


# --- 11: telemetry that cannot be written ---------------------------------------------


def test_telemetry_database_unusable(workspace: Path) -> None:
    (workspace / "work" / "telemetry.db").mkdir()  # not a database at all
    for i in range(5):
        drop_task(workspace, f"t{i}.yaml", {"agent": "worker", "prompt": "x"})
    done = orchestrator(workspace, "run", "--once")
    assert done.returncode == 0, done.stderr
    assert {r["status"] for r in results(workspace).values()} == {"succeeded"}
    status = json.loads(orchestrator(workspace, "status", "--json").stdout)
    assert status["telemetry"]["ok"] is False
    assert "not a database file" in status["telemetry"]["error"]
    assert "telemetry:" in orchestrator(workspace, "status").stdout


def test_telemetry_database_locked_for_a_while(workspace: Path) -> None:
    drop_task(workspace, "warm.yaml", {"agent": "worker", "prompt": "x"})
    assert orchestrator(workspace, "run", "--once").returncode == 0
    for i in range(10):
        drop_task(workspace, f"l{i}.yaml", {"agent": "worker", "prompt": "x"})
    holder = sqlite3.connect(
        workspace / "work" / "telemetry.db", isolation_level=None, check_same_thread=False
    )
    holder.execute("BEGIN EXCLUSIVE")
    release = threading.Timer(4.0, lambda: holder.execute("COMMIT"))
    release.start()
    try:
        done = orchestrator(workspace, "run", "--once")
    finally:
        release.join()
        holder.close()
    assert done.returncode == 0, done.stderr
    assert len(results(workspace)) == 11
    with sqlite3.connect(workspace / "work" / "telemetry.db") as db:
        assert db.execute("SELECT COUNT(*) FROM invocations").fetchone()[0] == 11


def test_disk_full_for_the_telemetry_database(workspace: Path) -> None:
    for i in range(120):
        drop_task(workspace, f"f{i:03}.yaml", {"agent": "worker", "prompt": "y" * 400})

    # every file the daemon writes stops at 96 KiB
    process = orchestrator(workspace, "run", "--once", timeout=300, max_file_bytes=96 * 1024)
    assert process.returncode == 0, process.stderr
    assert {r["status"] for r in results(workspace).values()} == {"succeeded"}
    assert len(results(workspace)) == 120
    health = json.loads(orchestrator(workspace, "status", "--json").stdout)["telemetry"]
    assert health["ok"] is False and health["dropped"] > 0
    assert health["error"]  # sqlite says "disk I/O error" or "database or disk is full"


# 6's fuzzing is in test_task_fuzz.py; 7 in test_tool_faults.py; 10 in test_pipeline.py;
# 12 in test_telemetry.py and test_pipeline.py (see docs/guarantees.md).
