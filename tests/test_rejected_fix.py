"""A rejected task reserves no id (issue 12): a corrected file with the same id runs, and
the task ends with one result in outbox, the rejection kept in history/ as `retry` keeps
earlier results. And `retry` says which file it replays."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import yaml

from tests.conftest import Daemon, drop_task, orchestrator, result, results, wait_for

if TYPE_CHECKING:
    from pathlib import Path

BROKEN = "agent: worker\nprompt: the real work\npriority: someday\n"
FIXED = "agent: worker\nprompt: the real work\npriority: medium\n"


def run_once(root: Path) -> None:
    done = orchestrator(root, "run", "--once")
    assert done.returncode == 0, done.stderr


def outbox(root: Path) -> list[str]:
    return sorted(p.name for p in (root / "work" / "outbox").glob("*.result.yaml"))


def archived(root: Path, name: str) -> str:
    """Where the archive keeps a task file, as `retry` run in the workspace shows it."""
    [path] = (root / "work" / "archive").glob(f"*/{name}")
    return str(path.relative_to(root))


def history(root: Path, name: str) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((root / "work" / "outbox" / "history" / name).read_text())
    return data


def test_a_corrected_file_replaces_its_rejection(workspace: Path) -> None:
    drop_task(workspace, "T.yaml", BROKEN)
    run_once(workspace)
    assert result(workspace, "T")["status"] == "rejected"
    drop_task(workspace, "T.yaml", FIXED)
    run_once(workspace)
    assert outbox(workspace) == ["T.result.yaml"]
    done = result(workspace, "T")
    assert done["status"] == "succeeded" and done["output"] == "the real work\n"
    assert done["previous_results"] == ["history/T.1.result.yaml"]
    kept = history(workspace, "T.1.result.yaml")
    assert kept["status"] == "rejected" and kept["error"]["kind"] == "invalid_field"
    # a result that is not a rejection still holds its id
    drop_task(workspace, "T.yaml", FIXED)
    run_once(workspace)
    [again] = [name for name in outbox(workspace) if name != "T.result.yaml"]
    assert again.startswith("T.rejected-")
    assert result(workspace, again.removesuffix(".result.yaml"))["error"]["kind"] == (
        "duplicate_id"
    )
    assert result(workspace, "T")["status"] == "succeeded"


def test_the_rejection_is_named_after_the_id_in_the_file(workspace: Path) -> None:
    """Agents name files freely: the draft and the fix are different files of one id."""
    drop_task(workspace, "draft.yaml", "id: build-api\n" + BROKEN)
    run_once(workspace)
    assert outbox(workspace) == ["build-api.result.yaml"]
    drop_task(workspace, "final.yaml", "id: build-api\n" + FIXED)
    run_once(workspace)
    assert outbox(workspace) == ["build-api.result.yaml"]
    assert result(workspace, "build-api")["status"] == "succeeded"
    assert history(workspace, "build-api.1.result.yaml")["task_file"] == "draft.yaml"


def test_a_file_rejected_again_replaces_the_earlier_rejection(workspace: Path) -> None:
    drop_task(workspace, "T.yaml", BROKEN)
    run_once(workspace)
    drop_task(workspace, "T.yaml", "agent: worker\nprompt: x\ntimeout: soon\n")
    run_once(workspace)
    assert outbox(workspace) == ["T.result.yaml"]
    assert "timeout is 'soon'" in result(workspace, "T")["error"]["message"]
    assert "priority is 'someday'" in history(workspace, "T.1.result.yaml")["error"]["message"]


def test_two_broken_files_of_one_id_each_keep_a_result(workspace: Path) -> None:
    drop_task(workspace, "a.yaml", "id: same\n" + BROKEN)
    drop_task(workspace, "b.yaml", "id: same\nagent: worker\nprompt: x\ntimeout: soon\n")
    run_once(workspace)
    names = outbox(workspace)
    assert len(names) == 2 and "same.result.yaml" in names
    assert all(r["status"] == "rejected" for r in results(workspace).values())


def test_a_live_daemon_runs_the_corrected_file(workspace: Path) -> None:
    daemon = Daemon(workspace)
    try:
        drop_task(workspace, "live.yaml", BROKEN)
        wait_for(lambda: outbox(workspace) == ["live.result.yaml"], what="the rejection")
        drop_task(workspace, "live.yaml", FIXED)
        wait_for(
            lambda: (
                (workspace / "work" / "outbox" / "live.result.yaml").exists()
                and result(workspace, "live")["status"] == "succeeded"
            ),
            what="the corrected task's result",
        )
    finally:
        assert daemon.stop() == 0
    assert outbox(workspace) == ["live.result.yaml"]
    assert history(workspace, "live.1.result.yaml")["status"] == "rejected"


def test_retry_names_the_file_it_replays(workspace: Path) -> None:
    drop_task(workspace, "F.yaml", {"agent": "worker", "prompt": "EXIT=1"})
    run_once(workspace)
    assert result(workspace, "F")["status"] == "failed"
    done = orchestrator(workspace, "retry", "F")
    assert done.returncode == 0, done.stderr
    assert f"re-queued F (run 2) from {archived(workspace, 'F.yaml')};" in done.stdout
    assert "was rejected" not in done.stdout


def test_retry_of_a_rejection_says_a_corrected_file_can_just_be_dropped(
    workspace: Path,
) -> None:
    drop_task(workspace, "R.yaml", BROKEN)
    run_once(workspace)
    done = orchestrator(workspace, "retry", "R")
    assert done.returncode == 0, done.stderr
    shown = archived(workspace, "R.yaml")
    assert f"from {shown}; R was rejected, and this replays that same file" in done.stdout
    assert "drop the corrected file into work/inbox with id R" in done.stdout
