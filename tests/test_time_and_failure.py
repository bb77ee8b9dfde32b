"""Issue 14: schedules, not_before, circuit breakers, dead letters, retry backoff."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from orchestrator.circuits import Breakers
from orchestrator.config import CircuitBreaker, load_config
from orchestrator.policy import retry_backoff
from orchestrator.schedules import Scheduler
from orchestrator.workdir import Workdir
from tests.conftest import (
    Daemon,
    base_config,
    drop_task,
    fake_tool,
    orchestrator,
    result,
    results,
    wait_for,
    write_config,
)


def write_schedules(root: Path, schedules: dict[str, Any]) -> None:
    (root / "config" / "schedules.yaml").write_text(yaml.safe_dump({"schedules": schedules}))


def at(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


# --- schedules -------------------------------------------------------------------------


def test_a_schedule_writes_exactly_one_task_per_slot(workspace: Path) -> None:
    task = {"agent": "worker", "prompt": "p"}
    write_schedules(workspace, {"nightly": {"cron": "*/15 * * * *", "task": task}})
    config = load_config(workspace)
    now = [at("2026-12-02T10:07:00")]
    scheduler = Scheduler(config, Workdir(workspace), clock=lambda: now[0])
    assert scheduler.tick() == []  # first seen: from now on, no slot of the past
    now[0] = at("2026-12-02T10:14:59")
    assert scheduler.tick() == []
    now[0] = at("2026-12-02T10:15:00")
    (first,) = scheduler.tick()
    assert first.name == "nightly-20261202T1015.yaml"
    assert yaml.safe_load(first.read_text()) == {
        "id": "nightly-20261202T1015",
        **task,
        "created_by": "schedule nightly",
        "scheduled_for": "2026-12-02T10:15:00+00:00",
    }
    now[0] = at("2026-12-02T10:29:00")
    assert scheduler.tick() == []  # the same slot is not written twice
    # a new scheduler (a restart) reads the state: still nothing for the slot written
    again = Scheduler(config, Workdir(workspace), clock=lambda: now[0])
    assert again.tick() == []
    # downtime over several slots: the latest one, once
    now[0] = at("2026-12-02T11:20:00")
    (late,) = again.tick()
    assert late.name == "nightly-20261202T1115.yaml"
    assert again.tick() == []
    assert sorted(p.name for p in (workspace / "work" / "inbox").iterdir()) == [
        "nightly-20261202T1015.yaml", "nightly-20261202T1115.yaml",
    ]  # fmt: skip


def test_schedules_use_the_budgets_time_zone(workspace: Path) -> None:
    policies = yaml.safe_load((workspace / "config" / "policies.yaml").read_text())
    policies["budgets"] = {"timezone": "Asia/Tokyo"}
    (workspace / "config" / "policies.yaml").write_text(yaml.safe_dump(policies))
    task = {"agent": "worker", "prompt": "p"}
    write_schedules(workspace, {"morning": {"cron": "0 9 * * *", "task": task}})
    now = [at("2026-12-01T23:00:00")]  # 08:00 in Tokyo
    scheduler = Scheduler(load_config(workspace), Workdir(workspace), clock=lambda: now[0])
    scheduler.tick()
    now[0] = at("2026-12-02T00:00:30")  # 09:00:30 in Tokyo
    (written,) = scheduler.tick()
    assert written.name == "morning-20261202T0900.yaml"


def test_a_bad_schedule_is_a_config_error(workspace: Path) -> None:
    write_schedules(workspace, {"x": {"cron": "61 * * * *", "task": {"agent": "nobody"}}})
    done = orchestrator(workspace, "config", "validate")
    assert done.returncode == 1
    assert "config/schedules.yaml: schedules.x.cron: '61 * * * *' is not a cron" in done.stderr
    assert "config/schedules.yaml: schedules.x.task.agent: unknown agent 'nobody'" in done.stderr


def test_after_downtime_the_daemon_runs_a_missed_slot_once(workspace: Path) -> None:
    """The real command: the state says the last slot written was hours ago."""
    task = {"agent": "worker", "prompt": "tick"}
    write_schedules(workspace, {"hourly": {"cron": "0 * * * *", "task": task}})
    state = workspace / "work" / "schedules.json"
    state.write_text(json.dumps({"hourly": "2026-01-01T00:00:00+00:00"}))
    done = orchestrator(workspace, "run", "--once")
    assert done.returncode == 0, done.stderr
    ran = [r for r in results(workspace).values() if str(r["id"]).startswith("hourly-")]
    assert len(ran) == 1, ran
    assert ran[0]["status"] == "succeeded"
    assert orchestrator(workspace, "run", "--once").returncode == 0
    assert len([r for r in results(workspace) if r.startswith("hourly-")]) == 1


# --- not_before ------------------------------------------------------------------------


def test_not_before_is_honoured_and_status_lists_it(workspace: Path) -> None:
    daemon = Daemon(workspace)
    try:
        start = time.time()
        drop_task(workspace, "later.yaml", {"agent": "worker", "prompt": "p", "not_before": "3s"})
        drop_task(workspace, "now.yaml", {"agent": "worker", "prompt": "p"})
        wait_for(lambda: (workspace / "work/outbox/now.result.yaml").exists(), what="now")
        shown = json.loads(orchestrator(workspace, "status", "--json").stdout)
        assert [t["id"] for t in shown["scheduled"]] == ["later"]
        assert "not before" in shown["scheduled"][0]["detail"]
        wait_for(lambda: (workspace / "work/outbox/later.result.yaml").exists(), what="later")
    finally:
        daemon.stop()
    res = result(workspace, "later")
    assert res["status"] == "succeeded"
    started = datetime.fromisoformat(res["started_at"].replace("Z", "+00:00")).timestamp()
    assert started >= start + 3 - 0.5  # the file's arrival is a little before `start`


def test_not_before_needs_a_zone(workspace: Path) -> None:
    drop_task(workspace, "t.yaml", {"agent": "worker", "prompt": "p",
                                    "not_before": "2026-12-24T08:00:00"})  # fmt: skip
    assert orchestrator(workspace, "run", "--once").returncode == 0
    res = result(workspace, "t")
    assert res["status"] == "rejected"
    assert "not_before" in res["error"]["message"]
    assert "Z for UTC" in res["error"]["hint"]


# --- circuit breakers ------------------------------------------------------------------


def test_a_circuit_opens_skips_and_closes_with_one_probe(tmp_path: Path) -> None:
    now = [0.0]
    breakers = Breakers(
        CircuitBreaker(failures=3, backoff=30, backoff_max=100),
        tmp_path / "circuits.json",
        clock=lambda: now[0],
        wall=lambda: 1000 + now[0],
        draw=lambda: 1.0,  # no jitter: the whole wait
    )
    key = "claude-code:sonnet"
    for _ in range(2):
        breakers.failed(key, "server_error")
    breakers.failed(key, "auth")  # not the provider's trouble: neither counts nor resets
    assert breakers.allow(key)
    breakers.failed(key, "connection")  # the third transient one in a row
    assert not breakers.allow(key)
    assert breakers.retry_at(key) == 30
    assert json.loads((tmp_path / "circuits.json").read_text())[key]["retry_at"] == 1030
    now[0] = 30.0
    assert breakers.allow(key)  # the probe
    assert not breakers.allow(key)  # only one
    breakers.failed(key, "timeout")  # the probe failed: open again, for twice as long
    assert breakers.retry_at(key) == 60
    now[0] = 90.0
    assert breakers.allow(key)
    breakers.succeeded(key)
    assert breakers.allow(key)
    assert breakers.allow(key)
    assert breakers.retry_at(key) is None
    assert json.loads((tmp_path / "circuits.json").read_text()) == {}


def test_retry_backoff_grows_with_jitter_up_to_its_cap() -> None:
    assert [retry_backoff(2, 60, n, 1.0) for n in range(7)] == [2, 4, 8, 16, 32, 60, 60]
    assert retry_backoff(2, 60, 3, 0.0) == 8  # half of 16: equal jitter
    assert retry_backoff(2, 60, 10**6, 0.5) == 45  # no overflow for a long run


# --- dead letters ----------------------------------------------------------------------


def test_failed_lists_and_retry_failed_replays_a_batch(workspace: Path) -> None:
    for n in range(3):
        drop_task(workspace, f"bad{n}.yaml", {"agent": "worker", "prompt": "EXIT=3"})
    drop_task(workspace, "good.yaml", {"agent": "worker", "prompt": "fine"})
    assert orchestrator(workspace, "run", "--once").returncode == 0
    listed = orchestrator(workspace, "failed")
    assert listed.returncode == 0, listed.stderr
    assert sorted(line.split()[0] for line in listed.stdout.splitlines()[:-1]) == [
        "bad0", "bad1", "bad2",
    ]  # fmt: skip
    rows = json.loads(orchestrator(workspace, "failed", "--json").stdout)
    assert {row["kind"] for row in rows} == {"nonzero_exit"}
    replayed = orchestrator(workspace, "retry", "--failed")
    assert replayed.returncode == 0, replayed.stderr
    assert replayed.stdout.count("re-queued bad") == 3
    assert sorted(p.name for p in (workspace / "work" / "inbox").iterdir()) == [
        "bad0.yaml", "bad1.yaml", "bad2.yaml",
    ]  # fmt: skip
    history = workspace / "work" / "outbox" / "history"
    assert sorted(p.name for p in history.iterdir()) == [
        "bad0.1.result.yaml", "bad1.1.result.yaml", "bad2.1.result.yaml",
    ]  # fmt: skip
    assert orchestrator(workspace, "failed").stdout.strip() == "no failed tasks"
    assert orchestrator(workspace, "failed", "--since", "2999-01-01").stdout.strip() == (
        "no failed tasks"
    )


@pytest.mark.parametrize("since", ["yesterday", "2026-13-01"])
def test_failed_refuses_a_bad_since(workspace: Path, since: str) -> None:
    done = orchestrator(workspace, "failed", "--since", since)
    assert done.returncode != 0
    assert "--since" in done.stderr
    assert "Traceback" not in done.stderr


def test_the_daemon_opens_a_circuit_skips_it_and_closes_it_with_a_probe(
    workspace: Path,
) -> None:
    """Through a live daemon: a tool that times out twice in a row opens its circuit; the
    next task skips it (`cooldown`) for its fallback; once the wait is over, a probe that
    succeeds closes it. status shows the open circuit."""
    flag = workspace.parent / "hang"
    flag.touch()
    hang = f"import os, time; time.sleep(5) if os.path.exists({str(flag)!r}) else print('ok')"
    files = base_config()
    files["tools.yaml"]["tools"]["shaky"] = fake_tool(
        args=["-c", hang], output={"format": "text"}, timeout="0.5s", models=["m"]
    )
    files["agents.yaml"]["agents"]["shaky-first"] = {
        "preferred_tool": "shaky", "fallback_chain": ["fake:fake-small"],
    }  # fmt: skip
    files["policies.yaml"]["circuit_breaker"] = {"failures": 2, "backoff": "1s",
                                                 "backoff_max": "1s"}  # fmt: skip
    write_config(workspace, files)

    def run(task_id: str) -> dict[str, Any]:
        drop_task(workspace, f"{task_id}.yaml", {"agent": "shaky-first", "prompt": "p"})
        done = workspace / "work" / "outbox" / f"{task_id}.result.yaml"
        wait_for(done.exists, what=task_id)
        return result(workspace, task_id)

    daemon = Daemon(workspace, "--concurrency", "1")
    try:
        for task_id in ("t1", "t2"):
            res = run(task_id)
            assert [a["error"]["kind"] for a in res["attempts"][:1]] == ["timeout"]
            assert res["status"] == "succeeded"
        circuits = json.loads(orchestrator(workspace, "status", "--json").stdout)["circuits"]
        assert list(circuits) == ["shaky:m"]
        assert "open circuits" in orchestrator(workspace, "status").stdout
        skipped = run("t3")["attempts"][0]
        assert (skipped["outcome"], skipped["error"]["kind"]) == ("skipped", "cooldown")
        flag.unlink()
        time.sleep(1.2)
        probe = run("t4")
        assert (probe["tool"], probe["output"]) == ("shaky", "ok")
        assert json.loads(orchestrator(workspace, "status", "--json").stdout)["circuits"] == {}
    finally:
        daemon.stop()
