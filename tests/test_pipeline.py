"""The whole pipeline through the real `orchestrator` command: files in, results out."""

from __future__ import annotations

import json
import os
import signal
import time
from typing import TYPE_CHECKING

import pytest

from tests.conftest import (
    Daemon,
    base_config,
    cli_env,
    drop_task,
    orchestrator,
    process_gone,
    result,
    results,
    wait_for,
    write_config,
)

if TYPE_CHECKING:
    from pathlib import Path


def run_once(root: Path, *args: str, env: dict[str, str] | None = None) -> str:
    done = orchestrator(root, "run", "--once", *args, env=env)
    assert done.returncode == 0, done.stderr
    return done.stderr


def test_run_once_drains_the_inbox(workspace: Path) -> None:
    drop_task(workspace, "a.yaml", {"agent": "worker", "prompt": "say hi", "ticket": "T-1"})
    run_once(workspace)
    res = result(workspace, "a")
    assert res["status"] == "succeeded"
    assert res["output"] == "say hi\n"  # the composed prompt ends with a newline
    assert (res["tool"], res["model"], res["route_reason"]) == ("fake", "fake-large", "preferred")
    assert res["usage"] == {
        "input_tokens": 1,
        "output_tokens": 1,
        "cache_read_tokens": 0,
        "cache_write_tokens": 0,
    }
    assert res["cost_usd"] == pytest.approx((1 * 2 + 1 * 10) / 1e6)
    assert res["cost_source"] == "computed"
    assert res["task"] == {"ticket": "T-1"}
    assert [a["outcome"] for a in res["attempts"]] == ["succeeded"]
    assert not list((workspace / "work" / "inbox").iterdir())
    assert not list((workspace / "work" / "running").iterdir())
    assert len(list((workspace / "work" / "archive").glob("*/a.yaml"))) == 1


def test_prompt_injection_arrives_byte_for_byte(workspace: Path) -> None:
    nasty = "a'b\"c; rm -rf / $(touch pwned) `id` \\n \\\\ --flag -x {model} {{x}} %s ünï"
    for name, agent in (("stdin", "worker"), ("arg", "arg-agent"), ("file", "file-agent")):
        drop_task(workspace, f"{name}.yaml", {"agent": agent, "prompt": nasty})
    run_once(workspace)
    for name in ("stdin", "arg", "file"):
        res = result(workspace, name)
        assert res["status"] == "succeeded", res
        assert res["output"] == nasty + "\n"
    assert not (workspace / "pwned").exists()


def test_undeclared_environment_is_invisible(workspace: Path) -> None:
    env = cli_env(
        workspace.parent,
        {"FAKE_DECLARED": "1", "SECRET_API_KEY": "sk-nope", "OPENAI_API_KEY": "sk-other-tool"},
    )
    drop_task(workspace, "env.yaml", {"agent": "worker", "prompt": "PRINT_ENV"})
    run_once(workspace, env=env)
    names = set(result(workspace, "env")["output"].split())
    assert "FAKE_DECLARED" in names and "PATH" in names and "HOME" in names
    assert "TMPDIR" in names
    assert "SECRET_API_KEY" not in names and "OPENAI_API_KEY" not in names


def test_fallback_after_missing_binary_and_nonzero_exit(workspace: Path) -> None:
    drop_task(workspace, "m.yaml", {"agent": "chain-missing", "prompt": "hi"})
    drop_task(workspace, "x.yaml", {"agent": "chain-exit", "prompt": "hi"})
    run_once(workspace)
    missing, failing = result(workspace, "m"), result(workspace, "x")
    for res, first_kind in ((missing, "missing_binary"), (failing, "nonzero_exit")):
        assert res["status"] == "succeeded"
        assert (res["tool"], res["model"], res["route_reason"]) == (
            "fake",
            "fake-small",
            "fallback",
        )
        first, second = res["attempts"]
        assert first["outcome"] == "failed" and first["error"]["kind"] == first_kind
        assert second["outcome"] == "succeeded"
    assert missing["fallback_from"] == "missing:fake-large"
    assert "not found on PATH" in missing["attempts"][0]["error"]["message"]
    assert failing["attempts"][0]["exit_code"] == 3


def test_every_attempt_failing_is_a_failed_result(workspace: Path) -> None:
    drop_task(workspace, "f.yaml", {"agent": "worker", "prompt": "EXIT=7"})
    drop_task(workspace, "g.yaml", {"agent": "worker", "prompt": "GARBAGE"})
    run_once(workspace)
    failed = result(workspace, "f")
    assert failed["status"] == "failed"
    assert failed["error"]["kind"] == "nonzero_exit"
    # the chain (one entry) is retried up to retries.max_attempts
    assert len(failed["attempts"]) == 3
    garbage = result(workspace, "g")
    assert garbage["status"] == "failed"
    assert garbage["error"]["kind"] == "bad_output"


def test_timeout_kills_a_grandchild_that_ignores_sigterm(workspace: Path) -> None:
    files = base_config()
    files["policies.yaml"]["retries"]["max_attempts"] = 1
    write_config(workspace, files)
    pidfile = workspace.parent / "grandchild.pid"
    drop_task(
        workspace,
        "slow.yaml",
        {
            "agent": "worker",
            "timeout": "1s",
            "tool": "fake",
            "model": "fake-large",
            "prompt": f"GRANDCHILD={pidfile}\nIGNORE_TERM\nSLEEP=60",
        },
    )
    started = time.monotonic()
    run_once(workspace)
    res = result(workspace, "slow")
    assert res["status"] == "timed_out"
    assert res["error"]["kind"] == "timeout"
    assert time.monotonic() - started < 45
    pid = int(pidfile.read_text())
    wait_for(lambda: process_gone(pid), timeout=5, what="the grandchild to be gone")


@pytest.mark.watcher
def test_rejected_inputs_each_get_a_result_and_the_daemon_lives_on(
    workspace: Path, daemon: Daemon
) -> None:
    inbox = workspace / "work" / "inbox"
    bad = {
        "syntax.yaml": b"agent: worker\nprompt: [oops\n",
        "list.yaml": b"- 1\n- 2\n",
        "noagent.yaml": b"prompt: hi\n",
        "unknown.yaml": b"agent: wroker\nprompt: hi\n",
        "unsafe.yaml": b"agent: worker\nid: ../escape\nprompt: hi\n",
        "big.yaml": b"agent: worker\nprompt: " + b"x" * (1024 * 1024 + 1) + b"\n",
        "latin1.yaml": b"agent: worker\nprompt: caf\xe9\n",
        "binary.yaml": b"\x00\x01\x02agent",
        "outside.yaml": b"agent: worker\nprompt_file: ../../etc/passwd\n",
    }
    for name, data in bad.items():
        (inbox / f".{name}").write_bytes(data)
        (inbox / f".{name}").rename(inbox / name)
    wait_for(lambda: len(results(workspace)) == len(bad), what="rejections")
    kinds = {k: v["error"]["kind"] for k, v in results(workspace).items()}
    assert kinds == {
        "syntax": "yaml_syntax",
        "list": "not_a_mapping",
        "noagent": "missing_agent",
        "unknown": "unknown_agent",
        "unsafe": "unsafe_id",
        "big": "too_large",
        "latin1": "not_utf8",
        "binary": "binary",
        "outside": "path_outside_workspace",
    }
    for res in results(workspace).values():
        assert res["status"] == "rejected"
        assert res["error"]["message"] and res["error"]["hint"]
    drop_task(workspace, "fine.yaml", {"agent": "worker", "prompt": "still alive"})
    wait_for(lambda: "fine" in results(workspace), what="a good task after the bad ones")
    assert result(workspace, "fine")["status"] == "succeeded"
    assert daemon.process.poll() is None


@pytest.mark.watcher
@pytest.mark.parametrize("mode", ["events", "polling"])
def test_live_daemon_sees_files_before_and_after_start(workspace: Path, mode: str) -> None:
    drop_task(workspace, "before.yaml", {"agent": "worker", "prompt": "early"})
    d = Daemon(workspace, *(["--poll"] if mode == "polling" else []))
    try:
        wait_for(lambda: "before" in results(workspace), what="the file written before start")
        for i in range(5):
            drop_task(workspace, f"after-{i}.yaml", {"agent": "worker", "prompt": f"late {i}"})
        (workspace / "work" / "inbox" / ".hidden.yaml").write_text("agent: worker\n")
        (workspace / "work" / "inbox" / "notes.txt").write_text("not a task")
        (workspace / "work" / "inbox" / "x.yaml.part").write_text("agent: worker\n")
        wait_for(lambda: len(results(workspace)) == 6, what="files written after start")
    finally:
        assert d.stop() == 0
    assert {r["status"] for r in results(workspace).values()} == {"succeeded"}
    remaining = sorted(p.name for p in (workspace / "work" / "inbox").iterdir())
    assert remaining == [".hidden.yaml", "notes.txt", "x.yaml.part"]


def test_200_tasks_with_concurrency_8(workspace: Path) -> None:
    for i in range(200):
        drop_task(workspace, f"t{i:03}.yaml", {"agent": "worker", "prompt": f"n {i}"})
    run_once(workspace, "--concurrency", "8")
    found = results(workspace)
    assert sorted(found) == [f"t{i:03}" for i in range(200)]
    assert all(r["status"] == "succeeded" for r in found.values())
    assert [found[f"t{i:03}"]["output"] for i in range(200)] == [f"n {i}\n" for i in range(200)]
    archived = list((workspace / "work" / "archive").glob("*/*.yaml"))
    assert len(archived) == 200


def test_priority_then_age(workspace: Path) -> None:
    log = workspace.parent / "started.log"
    order = [
        ("n1", "normal"),
        ("l1", "low"),
        ("h1", "high"),
        ("c1", "critical"),
        ("n2", "normal"),
        ("h2", "high"),
    ]
    for i, (name, priority) in enumerate(order):
        path = drop_task(
            workspace,
            f"{name}.yaml",
            {
                "agent": "worker",
                "priority": priority,
                "prompt": f"STARTED={log}",
            },
        )
        os.utime(path, (1_000_000 + i, 1_000_000 + i))
    run_once(workspace, "--concurrency", "1")
    started = [line.split()[0] for line in log.read_text().splitlines()]
    assert started == ["c1", "h1", "h2", "n1", "n2", "l1"]


def test_dry_run_prints_the_plan_and_touches_nothing(workspace: Path) -> None:
    drop_task(workspace, "p.yaml", {"agent": "chain-missing", "prompt": "hi"})
    drop_task(workspace, "bad.yaml", "agent: nobody\n")
    done = orchestrator(workspace, "run", "--dry-run")
    assert done.returncode == 0, done.stderr
    assert "p.yaml: task p, agent chain-missing, prompt ~1 tokens" in done.stdout
    # fake-large: 1 token in at $2/MTok + 2000 estimated out at $10/MTok
    assert (
        "1. missing / fake-large (preferred, ~$0.0200): definitely-not-an-installed-tool"
        in done.stdout
    )
    assert "2. fake / fake-small (fallback, ~$0.0020): " in done.stdout
    assert "--model fake-small --task p" in done.stdout
    assert "bad.yaml: would be rejected: unknown_agent" in done.stdout
    assert sorted(p.name for p in (workspace / "work" / "inbox").iterdir()) == [
        "bad.yaml",
        "p.yaml",
    ]
    assert not results(workspace)


def test_sigterm_drains_running_tasks(workspace: Path) -> None:
    log = workspace.parent / "started.log"
    d = Daemon(workspace, "--concurrency", "1")
    drop_task(workspace, "running.yaml", {"agent": "worker", "prompt": f"STARTED={log}\nSLEEP=1"})
    wait_for(lambda: log.exists(), what="the first task to start")
    drop_task(workspace, "queued.yaml", {"agent": "worker", "prompt": "later"})
    time.sleep(0.3)
    d.process.send_signal(signal.SIGTERM)
    assert d.wait() == 0
    assert result(workspace, "running")["status"] == "succeeded"
    # the queued task was put back, not lost, and runs at the next start
    assert (workspace / "work" / "inbox" / "queued.yaml").exists()
    assert not list((workspace / "work" / "running").iterdir())
    run_once(workspace)
    assert result(workspace, "queued")["status"] == "succeeded"


def test_second_sigterm_stops_at_once_and_requeues(workspace: Path) -> None:
    log = workspace.parent / "started.log"
    d = Daemon(workspace)
    drop_task(workspace, "long.yaml", {"agent": "worker", "prompt": f"STARTED={log}\nSLEEP=60"})
    wait_for(lambda: log.exists(), what="the task to start")
    d.process.send_signal(signal.SIGTERM)
    time.sleep(0.2)
    d.process.send_signal(signal.SIGTERM)
    assert d.wait() == 0
    assert (workspace / "work" / "running" / "long.yaml").exists()
    assert not results(workspace)


def test_a_second_daemon_refuses(workspace: Path, daemon: Daemon) -> None:
    done = orchestrator(workspace, "run", "--once")
    assert done.returncode == 1
    assert "another daemon" in done.stderr and "is already running" in done.stderr


def test_duplicate_id_is_rejected_with_retry_hint(workspace: Path) -> None:
    drop_task(workspace, "one.yaml", {"id": "same", "agent": "worker", "prompt": "first"})
    run_once(workspace)
    drop_task(workspace, "two.yaml", {"id": "same", "agent": "worker", "prompt": "second"})
    run_once(workspace)
    assert result(workspace, "same")["output"] == "first\n"
    [dup] = [r for k, r in results(workspace).items() if k != "same"]
    assert dup["status"] == "rejected" and dup["error"]["kind"] == "duplicate_id"
    assert "orchestrator retry same" in dup["error"]["hint"]


def test_crash_leftovers_in_running_are_requeued(workspace: Path) -> None:
    running = workspace / "work" / "running"
    (running / "left.yaml").write_text("agent: worker\nprompt: recovered\n")
    run_once(workspace)
    assert result(workspace, "left")["output"] == "recovered\n"


def test_submit_then_run(workspace: Path) -> None:
    done = orchestrator(
        workspace,
        "submit",
        "--agent",
        "worker",
        "--prompt",
        "via submit",
        "--priority",
        "high",
        "--id",
        "sub-1",
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "sub-1"
    run_once(workspace)
    assert result(workspace, "sub-1")["output"] == "via submit\n"
    again = orchestrator(workspace, "submit", "--agent", "worker", "--prompt", "x", "--id", "sub-1")
    assert again.returncode == 1 and "exists already" in again.stderr
    unknown = orchestrator(workspace, "submit", "--agent", "nobody", "--prompt", "x")
    assert unknown.returncode == 1 and "unknown agent 'nobody'" in unknown.stderr


def test_exec_with_context_files(workspace: Path, tmp_path: Path) -> None:
    ctx = tmp_path / "context.md"
    ctx.write_text("The context.\n")
    out = tmp_path / "answer.txt"
    done = orchestrator(
        workspace,
        "exec",
        "--agent",
        "worker",
        "--prompt",
        "Use it.",
        "--context",
        str(ctx),
        "--output",
        str(out),
    )
    assert done.returncode == 0, done.stderr
    assert out.read_text() == f"Use it.\n\n## {ctx}\n\nThe context.\n"
    failed = orchestrator(workspace, "exec", "--agent", "worker", "--prompt", "EXIT=2")
    assert failed.returncode == 1
    assert "nonzero_exit" in failed.stderr or "exited with code 2" in failed.stderr


def test_a_tools_free_slot_goes_to_the_highest_priority_waiting(workspace: Path) -> None:
    """One slot of `fake`, eight tasks at once: the `high` task dropped last starts
    before the `normal` ones that were already waiting for the slot."""
    files = base_config()
    files["tools.yaml"]["tools"]["fake"]["max_concurrency"] = 1
    write_config(workspace, files)
    log, barrier = workspace.parent / "started.log", workspace.parent / "barrier"
    barrier.mkdir()

    def started() -> list[str]:
        return [line.split()[0] for line in log.read_text().splitlines()] if log.exists() else []

    def claimed(name: str) -> bool:
        return (workspace / "work" / "running" / f"{name}.yaml").exists()

    daemon = Daemon(workspace, "--concurrency", "8")
    try:  # the blocker holds the slot until the test lets it go (its barrier of two files)
        blocker = {"agent": "worker", "prompt": f"STARTED={log}\nBARRIER={barrier}:2"}
        drop_task(workspace, "blocker.yaml", blocker)
        wait_for(lambda: any(barrier.iterdir()), what="the blocker to hold the slot")
        for name in ("n1", "n2"):
            drop_task(workspace, f"{name}.yaml", {"agent": "worker", "prompt": f"STARTED={log}"})
        wait_for(lambda: claimed("n1") and claimed("n2"), what="claims")
        time.sleep(1)  # both at the slot, waiting
        urgent = {"agent": "worker", "priority": "high", "prompt": f"STARTED={log}"}
        drop_task(workspace, "urgent.yaml", urgent)
        wait_for(lambda: claimed("urgent"), what="the urgent claim")
        time.sleep(1)  # it too waits for the slot
        (barrier / "release").touch()
        wait_for(lambda: len(results(workspace)) == 4, timeout=30, what="four results")
    finally:
        daemon.stop()
    assert started() == ["blocker", "urgent", "n1", "n2"], started()


def test_exec_with_a_pinned_tool_and_model(workspace: Path) -> None:
    done = orchestrator(
        workspace, "exec", "--agent", "worker", "--model", "fake-file:fake-small", "--prompt", "hi"
    )
    assert done.returncode == 0, done.stderr
    rows = json.loads(orchestrator(workspace, "stats", "--by", "tool", "--json").stdout)
    assert [(r["tool"], r["invocations"]) for r in rows] == [("fake-file", 1)]
    model = orchestrator(workspace, "stats", "--by", "model", "--json").stdout
    assert [r["model"] for r in json.loads(model)] == ["fake-small"]
    unknown = orchestrator(workspace, "exec", "--agent", "worker", "--tool", "fak", "--prompt", "x")
    assert unknown.returncode == 1
    assert "--tool: unknown tool 'fak'" in unknown.stderr and "fake" in unknown.stderr


def test_per_tool_concurrency_limit(workspace: Path) -> None:
    files = base_config()
    files["tools.yaml"]["tools"]["fake"]["max_concurrency"] = 2
    write_config(workspace, files)
    log = workspace.parent / "started.log"
    for i in range(6):
        drop_task(
            workspace, f"c{i}.yaml", {"agent": "worker", "prompt": f"STARTED={log}\nSLEEP=0.6"}
        )
    run_once(workspace, "--concurrency", "8")
    starts = sorted(float(line.split()[1]) for line in log.read_text().splitlines())
    assert len(starts) == 6
    # two at a time: the third and fifth starts wait for a slot of the tool
    assert starts[2] - starts[0] >= 0.5
    assert starts[4] - starts[2] >= 0.5
    # an attempt's duration counts from its slot, not from the wait before it
    durations = [r["attempts"][0]["duration_ms"] for r in results(workspace).values()]
    assert max(durations) < 1500, durations  # the last two waited 1.2 s for their slot
