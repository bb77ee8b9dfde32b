"""The Dask executor against a real cluster: `dask scheduler` and two `dask worker`
processes on 127.0.0.1 with different resources (the tools each can run), the daemon
submitting to them with `run --dask`."""

from __future__ import annotations

import json
import sqlite3
import time
from typing import TYPE_CHECKING, Any

import pytest

from tests.conftest import (
    Daemon,
    base_config,
    cli_env,
    drop_task,
    orchestrator,
    result,
    results,
    tools_of,
    wait_for,
    write_config,
)
from tests.dask_cluster import Cluster, cluster, free_port
from tests.test_isolation import BASE_TEXT, git, make_repo
from tests.test_isolation import Checkout as IsolationCheckout
from tests.test_progress import stream_files

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

# w1 runs the fake tool, the one taking its prompt as an argument and the streaming one; w2
# the fake tool and the one reading a prompt file. Neither has "missing".
WORKERS = {"w1": "fake=4 fake-arg=2 stream=2", "w2": "fake=4 fake-file=2"}


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with cluster(tmp_path_factory.mktemp("dask"), WORKERS) as running:
        yield running


def prepare(root: Path) -> None:
    config = base_config()
    agents = config["agents.yaml"]["agents"]
    agents["by-arg"] = {"preferred_tool": "fake-arg", "preferred_model": "fake-large"}
    agents["by-file"] = {"preferred_tool": "fake-file", "preferred_model": "fake-large"}
    write_config(root, config)


def run_once(root: Path, address: str, *args: str) -> None:
    done = orchestrator(root, "run", "--once", "--dask", address, *args, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]


def telemetry(root: Path, sql: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(root / "work" / "telemetry.db") as db:
        return db.execute(sql).fetchall()


def workers_of(found: dict[str, dict[str, Any]]) -> set[str]:
    return {a["worker"] for r in found.values() for a in r["attempts"] if a.get("worker")}


@pytest.mark.dask
@pytest.mark.timeout(300)
def test_200_tasks_run_across_both_workers(workspace: Path, shared: Cluster) -> None:
    prepare(workspace)
    for n in range(200):
        drop_task(workspace, f"t{n}.yaml", {"agent": "worker", "prompt": f"n{n}\nSLEEP=0.05"})
    run_once(workspace, shared.address, "--concurrency", "8")
    found = results(workspace)
    assert len(found) == 200
    assert {r["status"] for r in found.values()} == {"succeeded"}
    assert all(
        r["output"].startswith(f"n{i}") for i, r in ((int(k[1:]), v) for k, v in found.items())
    )
    assert workers_of(found) == set(shared.addresses.values())  # both did some
    rows = telemetry(workspace, "SELECT outcome, COUNT(*) FROM invocations GROUP BY outcome")
    assert rows == [("succeeded", 200)]


@pytest.mark.dask
def test_a_tool_only_one_worker_has_runs_only_there(workspace: Path, shared: Cluster) -> None:
    prepare(workspace)
    for n in range(12):
        drop_task(workspace, f"f{n}.yaml", {"agent": "by-file", "prompt": f"file {n}"})
        drop_task(workspace, f"a{n}.yaml", {"agent": "by-arg", "prompt": f"arg {n}"})
    run_once(workspace, shared.address)
    found = results(workspace)
    assert {r["status"] for r in found.values()} == {"succeeded"}
    by_file = {k: v for k, v in found.items() if k.startswith("f")}
    by_arg = {k: v for k, v in found.items() if k.startswith("a")}
    assert workers_of(by_file) == {shared.addresses["w2"]}
    assert workers_of(by_arg) == {shared.addresses["w1"]}


@pytest.mark.dask
def test_status_shows_the_workers_and_what_runs_where(workspace: Path, shared: Cluster) -> None:
    prepare(workspace)
    daemon = Daemon(workspace, "--dask", shared.address)
    try:

        def executor() -> dict[str, Any]:
            done = orchestrator(workspace, "status", "--json")
            found: dict[str, Any] = json.loads(done.stdout)["executor"]
            return found

        wait_for(lambda: executor().get("connected") is True, what="the daemon to connect")
        assert set(executor()["workers"]) == set(shared.addresses.values())
        w2 = shared.addresses["w2"]
        assert executor()["workers"][w2]["resources"] == {"fake": 4, "fake-file": 2}
        drop_task(workspace, "slow.yaml", {"agent": "by-file", "prompt": "SLEEP=6"})
        wait_for(lambda: executor()["workers"][w2]["running"] == ["slow"], what="slow on w2")
        text = orchestrator(workspace, "status").stdout
        assert f"dask scheduler {shared.address}: connected" in text
        assert f"{w2}  [fake=4 fake-file=2]  slow" in text, text
    finally:
        daemon.stop()


@pytest.mark.dask
@pytest.mark.timeout(400)
def test_a_worker_killed_mid_run_loses_no_task(workspace: Path, tmp_path: Path) -> None:
    """kill -9 of a worker while it runs tools: Dask runs its tasks again on the other one;
    every task succeeds once, telemetry has one row per successful attempt, and each run
    lost with the worker is a row of its own (worker_lost)."""
    prepare(workspace)
    with cluster(tmp_path / "own", WORKERS) as running:
        for n in range(200):
            drop_task(workspace, f"k{n}.yaml", {"agent": "worker", "prompt": f"k{n}\nSLEEP=0.2"})
        daemon = Daemon(workspace, "--dask", running.address)
        try:
            outbox = workspace / "work" / "outbox"
            wait_for(lambda: len(list(outbox.glob("*.result.yaml"))) >= 30, timeout=120,
                     what="a first batch of results")  # fmt: skip
            running.kill("w1")
            wait_for(lambda: len(list(outbox.glob("*.result.yaml"))) == 200, timeout=300,
                     what="every result")  # fmt: skip
        finally:
            daemon.stop()
    found = results(workspace)
    assert {r["status"] for r in found.values()} == {"succeeded"}
    succeeded = telemetry(
        workspace, "SELECT task_id, COUNT(*) FROM invocations WHERE outcome = 'succeeded' "
        "GROUP BY task_id",
    )  # fmt: skip
    assert len(succeeded) == 200 and {count for _, count in succeeded} == {1}
    lost = telemetry(workspace, "SELECT task_id FROM invocations WHERE error_kind = 'worker_lost'")
    assert lost, "w1 was killed while it ran tools: their runs show as lost"
    for (task_id,) in lost:
        attempts = result(workspace, task_id)["attempts"]
        assert attempts[0]["error"]["kind"] == "worker_lost"
        assert attempts[-1]["outcome"] == "succeeded"


@pytest.mark.dask
def test_the_daemon_waits_for_an_unreachable_scheduler(workspace: Path, tmp_path: Path) -> None:
    """Nothing listens at the scheduler's address: the task waits (status says the
    scheduler is not connected); once a scheduler and a worker start there, it runs."""
    prepare(workspace)
    port = free_port()
    daemon = Daemon(workspace, "--dask", f"tcp://127.0.0.1:{port}", env=cli_env(tmp_path))
    try:
        drop_task(workspace, "w.yaml", {"agent": "worker", "prompt": "waited"})
        time.sleep(7)  # past the first try's timeout (5 s): the daemon says it waits
        assert not (workspace / "work" / "outbox" / "w.result.yaml").exists()
        done = orchestrator(workspace, "status")
        assert "NOT connected" in done.stdout, done.stdout
        with cluster(tmp_path / "late", {"w1": "fake=2"}, port=port):
            wait_for(
                lambda: (workspace / "work" / "outbox" / "w.result.yaml").exists(),
                timeout=60,
                what="the task once the scheduler is up",
            )
    finally:
        daemon.stop()
    assert result(workspace, "w")["status"] == "succeeded"
    assert "unreachable" in daemon.text()


@pytest.mark.dask
def test_isolated_tasks_come_back_as_branches(tmp_path: Path, shared: Cluster) -> None:
    """Tasks with worktree isolation: the worker gets the worktree's files (not the path:
    it runs in a folder of its own) and sends back its changes, which land on the task's
    branch; the checkout is untouched."""
    root = tmp_path / "repo"
    make_repo(root, root)
    checkout = IsolationCheckout(root, root)
    for n in range(4):
        drop_task(root, f"i{n}.yaml", {"agent": "iso", "prompt": f"APPEND=notes.txt:from i{n}"})
    run_once(root, shared.address)
    for n in range(4):
        res = result(root, f"i{n}")
        assert res["status"] == "succeeded", res
        assert res["attempts"][0]["worker"] in shared.addresses.values()
        branch = res["workspace"]["branch"]
        assert git(root, "show", f"{branch}:notes.txt") == f"{BASE_TEXT}from i{n}"
        assert res["workspace"]["files_changed"] == 1
    checkout.assert_untouched()


@pytest.mark.dask
def test_cancel_stops_a_run_on_a_worker(workspace: Path, shared: Cluster) -> None:
    """`cancel` of a task running on a worker: the worker stops it (its process group is
    killed there) and the task's result says cancelled."""
    prepare(workspace)
    daemon = Daemon(workspace, "--dask", shared.address)
    try:
        drop_task(workspace, "long.yaml", {"agent": "worker", "prompt": "SLEEP=60"})
        wait_for(lambda: tools_of(workspace), what="the tool to start on a worker")
        started = time.monotonic()
        done = orchestrator(workspace, "cancel", "long")
        assert done.returncode == 0, done.stderr
        wait_for(lambda: (workspace / "work" / "outbox" / "long.result.yaml").exists(),
                 what="the cancelled result")  # fmt: skip
        wait_for(lambda: not tools_of(workspace), timeout=10, what="the tool to be killed")
        assert time.monotonic() - started < 15
    finally:
        daemon.stop()
    assert result(workspace, "long")["status"] == "cancelled"


@pytest.mark.dask
@pytest.mark.timeout(200)
def test_a_scheduler_lost_mid_run_is_waited_for(workspace: Path, tmp_path: Path) -> None:
    """The scheduler (and its worker) go away while a task runs: the daemon waits, and
    when a scheduler is back at that address the run is submitted again and answers; the
    task ends with one result, the lost run listed before it."""
    prepare(workspace)
    port = free_port()
    daemon = Daemon(workspace, "--dask", f"tcp://127.0.0.1:{port}", env=cli_env(tmp_path))
    try:
        with cluster(tmp_path / "first", {"w1": "fake=2"}, port=port) as first:
            drop_task(workspace, "s.yaml", {"agent": "worker", "prompt": "SLEEP=4"})
            wait_for(lambda: tools_of(workspace), what="the run to start")
            first.kill("scheduler")
        time.sleep(2)
        assert not (workspace / "work" / "outbox" / "s.result.yaml").exists()
        with cluster(tmp_path / "second", {"w1": "fake=2"}, port=port):
            wait_for(lambda: (workspace / "work" / "outbox" / "s.result.yaml").exists(),
                     timeout=60, what="the run submitted again")  # fmt: skip
    finally:
        daemon.stop()
    res = result(workspace, "s")
    assert res["status"] == "succeeded", res
    assert [a["outcome"] for a in res["attempts"]][-1] == "succeeded"
    assert "lost with the scheduler" in daemon.text()


@pytest.mark.dask
def test_a_runs_progress_comes_back_from_its_worker(workspace: Path, shared: Cluster) -> None:
    """A streaming tool on a worker: its lines reach the daemon as they come, so status
    shows the step, the tokens and the cost so far while it runs; a task over its budget
    mid-run is stopped there."""
    write_config(workspace, stream_files())
    daemon = Daemon(workspace, "--dask", shared.address)
    try:
        prompt = "LINES=3 EVERY=0.2 TOKENS=1000 THEN_SLEEP=4"
        drop_task(workspace, "run.yaml", {"agent": "streamer", "prompt": prompt})

        def at_step_3() -> bool:
            done = orchestrator(workspace, "status", "--json")
            running = json.loads(done.stdout)["running"]
            return bool(running) and running[0].get("step") == "writing: step 3"

        wait_for(at_step_3, 30, "status to show the remote run's third step")
        dear = "LINES=20 EVERY=0.2 TOKENS=100000 THEN_SLEEP=30"
        drop_task(workspace, "dear.yaml", {"agent": "streamer", "prompt": dear,
                                           "budget_usd": 0.5})  # fmt: skip
        wait_for(lambda: (workspace / "work" / "outbox" / "dear.result.yaml").exists(), 60,
                 "the task over its budget to be stopped")  # fmt: skip
        wait_for(lambda: (workspace / "work" / "outbox" / "run.result.yaml").exists(), 30,
                 "the first task")  # fmt: skip
    finally:
        daemon.stop()
    assert result(workspace, "run")["status"] == "succeeded"
    dear_result = result(workspace, "dear")
    assert dear_result["attempts"][0]["error"]["kind"] == "budget_exceeded", dear_result
