"""Hostile input against the promises of docs/guarantees.md: names too long for the
filesystem, files that are not what they seem (FIFOs, device links, sparse giants, hard
links, symlinks swapped in mid-read), work folders replaced by links, and `retry` racing
itself or a full disk. Each test goes through the real daemon or command."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import yaml

from tests.conftest import (
    Daemon,
    base_config,
    cli_env,
    drop_task,
    fake_tool,
    orchestrator,
    result,
    results,
    wait_for,
    write_config,
)

if TYPE_CHECKING:
    from pathlib import Path


def left_in(workspace: Path, folder: str) -> list[str]:
    return sorted(p.name for p in (workspace / "work" / folder).iterdir())


def assert_fit(workspace: Path) -> None:
    """Every name the daemon made fits the filesystem (255 bytes)."""
    for path in (workspace / "work").rglob("*"):
        assert len(os.fsencode(path.name)) <= 255


# --- names ------------------------------------------------------------------------------


def test_a_long_utf8_file_name_gets_a_rejection_under_a_safe_name(workspace: Path) -> None:
    name = "я" * 120 + ".yaml"  # 245 bytes: its id (the stem) is 240
    drop_task(workspace, name, {"agent": "worker", "prompt": "x"})
    drop_task(workspace, "innocent.yaml", {"agent": "worker", "prompt": "x"})
    done = orchestrator(workspace, "run", "--once", timeout=60)
    assert done.returncode == 0, done.stderr
    found = results(workspace)
    assert found.pop("innocent")["status"] == "succeeded"
    [(safe_id, rejected)] = found.items()
    assert rejected["status"] == "rejected" and rejected["error"]["kind"] == "unsafe_id"
    assert "240 bytes long in UTF-8 (at most 160" in rejected["error"]["message"]
    assert len(safe_id.encode()) <= 160 and safe_id.startswith("яяя")
    assert left_in(workspace, "running") == [] and left_in(workspace, "inbox") == []
    assert_fit(workspace)


def test_long_names_that_collide_do_not_stop_the_daemon(workspace: Path) -> None:
    """Two task files of the same 250-byte name, one left in running/ by an earlier
    daemon, one new in the inbox: each is claimed and archived under a name that fits."""
    name = "ж" * 122 + "x.yaml"  # 250 bytes; the ids are short
    running = workspace / "work" / "running" / name
    running.write_text(yaml.safe_dump({"id": "first", "agent": "worker", "prompt": "1"}))
    drop_task(workspace, name, {"id": "second", "agent": "worker", "prompt": "2"})
    archived_day = workspace / "work" / "archive" / datetime.now(UTC).strftime("%Y-%m-%d")
    archived_day.mkdir(parents=True)
    (archived_day / name).write_text("an earlier file of the same name\n")
    for i in range(3):
        drop_task(workspace, f"innocent{i}.yaml", {"agent": "worker", "prompt": "x"})
    for _ in range(3):  # it used to die again at every start
        done = orchestrator(workspace, "run", "--once", timeout=60)
        assert done.returncode == 0, done.stderr
    statuses = {k: v["status"] for k, v in results(workspace).items()}
    assert statuses == dict.fromkeys(
        ["first", "second", "innocent0", "innocent1", "innocent2"], "succeeded"
    )
    assert left_in(workspace, "running") == [] and left_in(workspace, "inbox") == []
    assert len(list(archived_day.iterdir())) == 6
    assert_fit(workspace)


def test_an_id_long_in_bytes_is_refused_by_submit(workspace: Path) -> None:
    done = orchestrator(workspace, "submit", "--agent", "worker", "--prompt", "x", "--id", "ф" * 81)
    assert done.returncode == 1 and "162 bytes long in UTF-8 (at most 160" in done.stderr
    assert "Traceback" not in done.stderr


# --- files that are not what they seem --------------------------------------------------


def task_with_context(workspace: Path, name: str, context: str) -> None:
    drop_task(workspace, name, {"agent": "worker", "prompt": "see", "context_files": [context]})


def test_a_huge_sparse_context_file_is_refused_before_it_is_read(workspace: Path) -> None:
    with (workspace / "giant.md").open("wb") as f:
        f.truncate(40 * 1024**3)  # 40 GB, sparse: reading it whole kills the daemon
    task_with_context(workspace, "giant.yaml", "giant.md")
    drop_task(workspace, "after.yaml", {"agent": "worker", "prompt": "fine"})
    done = orchestrator(workspace, "run", "--once", timeout=60)
    assert done.returncode == 0, done.stderr
    giant = result(workspace, "giant")
    assert giant["status"] == "rejected" and giant["error"]["kind"] == "too_large"
    assert "42949672960 bytes" in giant["error"]["message"]
    assert result(workspace, "after")["status"] == "succeeded"


def test_exec_reads_a_context_file_with_a_bound(workspace: Path) -> None:
    done = orchestrator(
        workspace, "exec", "--agent", "worker", "--prompt", "x", "--context", "/dev/zero"
    )
    assert done.returncode == 1 and "--context /dev/zero: larger than" in done.stderr
    assert "Traceback" not in done.stderr


def test_fifos_hard_links_and_devices_as_context_files(workspace: Path, tmp_path: Path) -> None:
    os.mkfifo(workspace / "pipe.md")
    outside = tmp_path / "outside-secret.txt"
    outside.write_text("SECRET outside the workspace\n")
    os.link(outside, workspace / "linked.md")
    (workspace / "zero.md").symlink_to("/dev/zero")
    task_with_context(workspace, "pipe.yaml", "pipe.md")
    task_with_context(workspace, "linked.yaml", "linked.md")
    task_with_context(workspace, "zero.yaml", "zero.md")
    done = orchestrator(workspace, "run", "--once", timeout=60)
    assert done.returncode == 0, done.stderr
    kinds = {k: v["error"]["kind"] for k, v in results(workspace).items()}
    assert kinds == {
        "pipe": "not_a_regular_file",
        "linked": "hard_link",
        "zero": "path_outside_workspace",
    }
    assert "SECRET" not in "".join(p.read_text() for p in (workspace / "work").rglob("*.yaml"))


SWAPPER = """
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
a, b = (os.fsencode(p) for p in sys.argv[1:3])
print("swapping", flush=True)
while True:  # renameat2(RENAME_EXCHANGE): the name is always a file or a symlink
    libc.renameat2(-100, a, -100, b, 2)
"""


def test_a_context_file_swapped_for_a_symlink_never_leaks(workspace: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("SECRET from outside\n")
    ctx = workspace / "ctx.md"
    ctx.write_text("inside text\n")
    (workspace / ".ctx.other").symlink_to(outside)
    for i in range(300):
        task_with_context(workspace, f"c{i:03}.yaml", "ctx.md")
    swapper = subprocess.Popen(  # another process, so it swaps at full speed
        [sys.executable, "-c", SWAPPER, str(ctx), str(workspace / ".ctx.other")],
        stdout=subprocess.PIPE,
    )
    try:
        assert swapper.stdout is not None and swapper.stdout.readline() == b"swapping\n"
        done = orchestrator(workspace, "run", "--once", timeout=240)
    finally:
        swapper.kill()
        swapper.communicate()
    assert done.returncode == 0, done.stderr
    found = results(workspace)
    left = (left_in(workspace, "running"), left_in(workspace, "inbox"))
    if len(found) != 300:
        (tmp_path / "run.log").write_text(done.stderr)
    assert len(found) == 300, (left, tmp_path)
    assert not [k for k, v in found.items() if "SECRET" in str(v)]
    outcomes = {(v["status"], (v.get("error") or {}).get("kind")) for v in found.values()}
    assert outcomes == {("succeeded", None), ("rejected", "path_outside_workspace")}


# --- commands and FIFOs -----------------------------------------------------------------


def finished_task(workspace: Path, task_id: str) -> None:
    drop_task(workspace, f"{task_id}.yaml", {"agent": "worker", "prompt": "x"})
    assert orchestrator(workspace, "run", "--once").returncode == 0
    assert result(workspace, task_id)["status"] == "succeeded"


def test_retry_does_not_open_a_fifo_in_the_archive(workspace: Path) -> None:
    finished_task(workspace, "t")
    later_day = workspace / "work" / "archive" / "9999-12-31"
    later_day.mkdir()
    os.mkfifo(later_day / "t.yaml")  # looked at first: the newest day
    os.mkfifo(later_day / "other.yaml")
    done = orchestrator(workspace, "retry", "t", timeout=20)
    assert done.returncode == 0, done.stderr
    assert "re-queued t (run 2)" in done.stdout


def test_cancel_without_a_daemon_opens_no_fifo_and_reads_no_device(workspace: Path) -> None:
    inbox = workspace / "work" / "inbox"
    os.mkfifo(inbox / "pipe.yaml")
    (inbox / "zero.yaml").symlink_to("/dev/zero")
    (inbox / "nope.yaml").symlink_to("/dev/zero")
    drop_task(workspace, "real.yaml", {"agent": "worker", "prompt": "x"})
    done = orchestrator(workspace, "cancel", "unknown", timeout=20)
    assert done.returncode == 1 and "no queued or running task" in done.stderr
    done = orchestrator(workspace, "cancel", "nope", timeout=20)
    assert done.returncode == 1 and "no queued or running task" in done.stderr
    done = orchestrator(workspace, "cancel", "real", timeout=20)
    assert done.returncode == 0, done.stderr
    assert result(workspace, "real")["status"] == "cancelled"


def test_planted_control_requests_do_not_stop_the_daemon(workspace: Path) -> None:
    control = workspace / "work" / "control"
    control.mkdir(exist_ok=True)
    (control / "a-folder.cancel").mkdir()
    (control / ("x" * 248 + ".cancel")).write_bytes(b"")  # its answer's name: > 255 bytes
    os.mkfifo(control / "pipe.cancel")
    drop_task(workspace, "t.yaml", {"agent": "worker", "prompt": "x"})
    done = orchestrator(workspace, "run", "--once", timeout=60)
    assert done.returncode == 0, done.stderr
    assert result(workspace, "t")["status"] == "succeeded"
    daemon = Daemon(workspace)
    try:
        (control / ("y" * 248 + ".cancel")).write_bytes(b"")
        drop_task(workspace, "after.yaml", {"agent": "worker", "prompt": "x"})
        wait_for(lambda: "after" in results(workspace), timeout=20, what="the next task")
        assert daemon.process.poll() is None
    finally:
        daemon.stop()


def test_a_live_daemon_never_blocks_on_a_fifo_while_cancelling(workspace: Path) -> None:
    daemon = Daemon(workspace)
    try:
        inbox, control = workspace / "work" / "inbox", workspace / "work" / "control"
        for i in range(5):  # a FIFO and a cancel for an unknown id at the same moment
            os.mkfifo(inbox / f"pipe{i}.yaml")
            (control / f"ghost{i}.cancel").write_bytes(b"")
        drop_task(workspace, "after.yaml", {"agent": "worker", "prompt": "x"})
        wait_for(lambda: "after" in results(workspace), timeout=20, what="the next task")
        assert daemon.process.poll() is None
    finally:
        daemon.stop()


# --- retry ------------------------------------------------------------------------------


def test_concurrent_retries_of_one_task(workspace: Path) -> None:
    finished_task(workspace, "t")
    archive = workspace / "work" / "archive"
    for day in range(1, 300):  # a grown archive: each retry searches it for a while
        folder = archive / f"2999-01-{day:03}"  # searched before today
        folder.mkdir()
        for i in range(5):
            (folder / f"other{i}.yaml").write_text(f"id: other-{day}-{i}\nagent: worker\n")
    command = [sys.executable, "-m", "orchestrator", "--root", str(workspace), "retry", "t"]
    env = cli_env(workspace.parent)
    runs = [
        subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in range(4)
    ]
    outcomes = [(p.wait(timeout=60), p.communicate()[1].decode()) for p in runs]
    for code, stderr in outcomes:
        assert "Traceback" not in stderr
        if code:
            assert "has no result" in stderr
    assert sorted(code for code, _ in outcomes) == [0, 1, 1, 1]
    assert left_in(workspace, "inbox") == ["t.yaml"]
    assert left_in(workspace, "outbox/history") == ["t.1.result.yaml"]


def test_retry_on_a_full_disk_changes_nothing(workspace: Path) -> None:
    finished_task(workspace, "t")

    done = orchestrator(workspace, "retry", "t", max_file_bytes=0)  # every write fails
    assert done.returncode == 1 and "nothing was changed" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
    assert result(workspace, "t")["status"] == "succeeded"  # the result is still there
    assert not list((workspace / "work" / "outbox" / "history").glob("*"))
    assert left_in(workspace, "inbox") == []
    done = orchestrator(workspace, "retry", "t")  # and the retry works once there is room
    assert done.returncode == 0, done.stderr


def test_a_retry_cut_short_is_completed_at_the_next_start(workspace: Path) -> None:
    finished_task(workspace, "t")
    outbox = workspace / "work" / "outbox"
    (outbox / "history").mkdir()
    os.replace(outbox / "t.result.yaml", outbox / "history" / "t.1.result.yaml")
    pending = workspace / "work" / "inbox" / ".t.yaml.retry-pending"
    pending.write_text(yaml.safe_dump({"id": "t", "agent": "worker", "prompt": "x", "retry": 1}))
    done = orchestrator(workspace, "run", "--once")
    assert done.returncode == 0, done.stderr
    assert result(workspace, "t")["status"] == "succeeded"
    assert result(workspace, "t")["previous_results"] == ["history/t.1.result.yaml"]
    assert not pending.exists()


# --- the work folders -------------------------------------------------------------------


def test_work_folders_replaced_by_symlinks_are_refused(workspace: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "precious"
    (elsewhere / "keep-me").mkdir(parents=True)
    for folder in ("runs", "outbox", "archive"):
        target = workspace / "work" / folder
        if target.exists():
            target.rmdir()
        target.symlink_to(elsewhere, target_is_directory=True)
        drop_task(workspace, "t.yaml", {"agent": "worker", "prompt": "x"})
        done = orchestrator(workspace, "run", "--once")
        assert done.returncode == 1, done.stdout
        assert f"work/{folder} is a symbolic link" in done.stderr, done.stderr
        assert "Traceback" not in done.stderr
        assert (elsewhere / "keep-me").is_dir() and not (elsewhere / "t.result.yaml").exists()
        target.unlink()
        target.mkdir()


# --- argv -------------------------------------------------------------------------------

ARGV_TOOL = "import json, sys; print(json.dumps({{'result': json.dumps(sys.argv[1:])}}))"


def test_a_prompt_that_looks_like_an_option_comes_after_a_double_dash(workspace: Path) -> None:
    files = base_config()
    files["tools.yaml"]["tools"]["argv"] = fake_tool(
        prompt="arg",
        args=["-c", ARGV_TOOL],
        extra_args=["--json"],
        output={"format": "json", "text": "result"},
    )
    files["agents.yaml"]["agents"]["argv-agent"] = {"preferred_tool": "argv"}
    write_config(workspace, files)
    drop_task(workspace, "dash.yaml", {"agent": "argv-agent", "prompt": "--help me"})
    drop_task(workspace, "plain.yaml", {"agent": "argv-agent", "prompt": "plain words"})
    assert orchestrator(workspace, "run", "--once").returncode == 0
    assert yaml.safe_load(result(workspace, "dash")["output"]) == ["--json", "--", "--help me\n"]
    assert yaml.safe_load(result(workspace, "plain")["output"]) == ["plain words\n", "--json"]


def test_config_refuses_a_prompt_where_an_option_may_stand(workspace: Path) -> None:
    files = base_config()
    files["tools.yaml"]["tools"]["positional"] = fake_tool(
        prompt="arg", args=["-c", ARGV_TOOL, "{model}", "{prompt}"]
    )
    write_config(workspace, files)
    done = orchestrator(workspace, "config", "validate")
    assert done.returncode == 1
    assert "tools.positional.args[3]: {prompt} stands where an option may" in done.stderr
    assert 'put "--" before it' in done.stderr
    files["tools.yaml"]["tools"]["positional"]["args"] = ["-c", ARGV_TOOL, "--", "{prompt}"]
    write_config(workspace, files)
    assert orchestrator(workspace, "config", "validate").returncode == 0
