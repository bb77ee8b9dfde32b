"""Worktree isolation (`isolation: worktree`), with real git repositories and the real
command: a worktree and a branch per task, chains that build on their predecessors' work,
the user's checkout never touched, recovery after kill -9, and the failure cases."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from orchestrator.isolation.branches import (
    branch_name,
    choose_base,
    commit_message,
    parse_shortstat,
)
from orchestrator.isolation.git import find_work_tree
from tests.conftest import (
    Daemon,
    base_config,
    cli_env,
    drop_task,
    orchestrator,
    result,
    wait_for,
    write_config,
)
from tests.test_bench import NUMBER, run_bench

GIT_ENV = {
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "LC_ALL": "C",
    "GIT_OPTIONAL_LOCKS": "0",
}
BASE_TEXT = "base\n"


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-c", "user.name=test", "-c", "user.email=test@localhost", *args],
        cwd=cwd,
        env={"PATH": os.environ.get("PATH", os.defpath), "HOME": str(cwd), **GIT_ENV},
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


def isolated_config(**agent: Any) -> dict[str, dict[str, Any]]:
    files = base_config()
    agents = files["agents.yaml"]["agents"]
    agents["iso"] = {"preferred_tool": "fake", "isolation": "worktree", **agent}
    agents["iso-lead"] = {"preferred_tool": "fake", "isolation": "worktree", "handoff_to": ["iso"]}
    return files


def make_repo(top: Path, workspace: Path) -> None:
    """A repository at `top` holding the workspace (config/ committed, work/ excluded) and
    notes.txt, with one commit."""
    workspace.mkdir(parents=True, exist_ok=True)
    git(top, "init", "--quiet", "--initial-branch", "main")
    write_config(workspace, isolated_config())
    (workspace / "notes.txt").write_text(BASE_TEXT)
    for folder in ("inbox", "outbox", "running", "archive"):
        (workspace / "work" / folder).mkdir(parents=True)
    with (top / ".git" / "info" / "exclude").open("a") as exclude:
        exclude.write("work/\n")
    git(top, "add", "--all")
    git(top, "commit", "--quiet", "-m", "start")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    make_repo(root, root)
    return root


class Checkout:
    """What must not change in the user's checkout: HEAD, index, files, stash."""

    def __init__(self, top: Path, workspace: Path) -> None:
        self.top = top
        self.head = git(top, "rev-parse", "HEAD")
        self.branch = git(top, "symbolic-ref", "HEAD")
        self.index = (top / ".git" / "index").read_bytes()
        self.notes = (workspace / "notes.txt").read_text()
        self.workspace = workspace

    def assert_untouched(self) -> None:
        assert (self.top / ".git" / "index").read_bytes() == self.index  # before any status
        assert git(self.top, "rev-parse", "HEAD") == self.head
        assert git(self.top, "symbolic-ref", "HEAD") == self.branch
        assert git(self.top, "status", "--porcelain") == ""
        assert git(self.top, "stash", "list") == ""
        assert (self.workspace / "notes.txt").read_text() == self.notes
        worktrees = git(self.top, "worktree", "list", "--porcelain")
        assert worktrees.count("worktree ") == 1, worktrees  # only the main one
        folder = self.workspace / "work" / "worktrees"
        assert not folder.exists() or not [p for p in folder.iterdir() if p.is_dir()]


def run_once(root: Path, *args: str) -> None:
    done = orchestrator(root, "run", "--once", *args)
    assert done.returncode == 0, done.stderr


def commits(top: Path, base: str, branch: str) -> list[str]:
    return git(top, "log", "--format=%s", f"{base}..{branch}").splitlines()


# --- the pure core ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("task_id", "branch"),
    [
        ("2026-11-27T1500-fix-login", "orchestrator/2026-11-27T1500-fix-login"),
        ("a b:c~d^e?f*g[h", "orchestrator/a_b_c_d_e_f_g_h"),
        ("x@{y}", "orchestrator/x_y}"),
        ("ends.lock", "orchestrator/ends.lock_"),
        ("ends.", "orchestrator/ends._"),
        ("ünï", "orchestrator/ünï"),
    ],
)
def test_branch_names_are_refs_git_accepts(tmp_path: Path, task_id: str, branch: str) -> None:
    assert branch_name(task_id) == branch
    git(tmp_path, "check-ref-format", "--branch", branch)


@pytest.mark.parametrize(
    ("text", "counts"),
    [
        ("", (0, 0, 0)),
        (" 1 file changed, 1 insertion(+)", (1, 1, 0)),
        (" 3 files changed, 10 insertions(+), 2 deletions(-)", (3, 10, 2)),
        (" 2 files changed, 4 deletions(-)", (2, 0, 4)),
    ],
)
def test_shortstat_is_read(text: str, counts: tuple[int, int, int]) -> None:
    assert parse_shortstat(text) == counts


def test_the_base_is_the_tasks_then_the_first_predecessor_branch_then_head() -> None:
    branches = {"orchestrator/a", "orchestrator/b"}
    assert choose_base("release", ["a"], branches).ref == "release"
    assert choose_base("release", [], branches).given
    assert choose_base(None, ["x", "a"], branches).ref == "orchestrator/a"
    assert choose_base(None, ["a"], branches).warning is None
    both = choose_base(None, ["b", "a"], branches)
    assert both.ref == "orchestrator/b" and both.warning and "orchestrator/a" in both.warning
    assert choose_base(None, ["x"], branches).ref == "HEAD"
    message = commit_message("t1", "iso", "Fix\nthe login")
    assert message.startswith("Fix the login (t1)\n") and "agent iso" in message


# --- through the daemon ----------------------------------------------------------------


def test_concurrent_tasks_edit_the_same_file_each_on_its_own_branch(
    repo: Path, tmp_path: Path
) -> None:
    checkout = Checkout(repo, repo)
    barrier = tmp_path / "barrier"  # each waits until all four run: they run at once
    barrier.mkdir()
    ids = [f"t{i}" for i in range(1, 5)]
    for task_id in ids:
        prompt = f"APPEND=notes.txt:from {task_id}\nBARRIER={barrier}:4\n"
        drop_task(
            repo, f"{task_id}.yaml", {"agent": "iso", "title": f"Edit {task_id}", "prompt": prompt}
        )
    run_once(repo, "--concurrency", "4")
    for task_id in ids:
        done = result(repo, task_id)
        assert done["status"] == "succeeded", done
        branch = f"orchestrator/{task_id}"
        ws = done["workspace"]
        assert ws["branch"] == branch and ws["base"] == "HEAD"
        assert ws["base_commit"] == checkout.head != ws["head_commit"]
        assert git(repo, "rev-parse", branch) == ws["head_commit"]
        assert (ws["files_changed"], ws["insertions"], ws["deletions"]) == (1, 1, 0)
        # only its own change: the others' lines are on their branches
        assert git(repo, "show", f"{branch}:notes.txt") == f"base\nfrom {task_id}"
        assert git(repo, "diff", "--name-only", checkout.head, branch) == "notes.txt"
        assert commits(repo, checkout.head, branch) == [f"Edit {task_id} ({task_id})"]
        log = git(repo, "log", "-1", "--format=%an <%ae>|%cn|%B", branch)
        assert log.startswith("orchestrator <orchestrator@localhost>|orchestrator|")
        assert f"Orchestrator-Task: {task_id}" in log and "Orchestrator-Agent: iso" in log
    checkout.assert_untouched()
    status = json.loads(orchestrator(repo, "status", "--json").stdout)
    finished = {b["id"]: b for b in status["branches"]["finished"]}
    assert set(finished) == set(ids) and status["branches"]["running"] == []
    assert finished["t1"]["branch"] == "orchestrator/t1" and finished["t1"]["files_changed"] == 1
    text = orchestrator(repo, "status").stdout
    assert re.search(r"^  orchestrator/t3  succeeded  1 files \+1 -0$", text, re.MULTILINE), text


def test_dependencies_and_handoffs_start_from_their_predecessors_branch(repo: Path) -> None:
    checkout = Checkout(repo, repo)
    drop_task(repo, "a.yaml", {"agent": "iso", "prompt": "APPEND=notes.txt:from a"})
    drop_task(
        repo,
        "b.yaml",
        {
            "agent": "iso",
            "dependencies": ["a"],
            "prompt": "SHOW=notes.txt\nAPPEND=notes.txt:from b",
        },
    )
    lead = "APPEND=notes.txt:from lead\nHANDOFF=iso|Go on|SHOW=notes.txt"
    drop_task(repo, "lead.yaml", {"agent": "iso-lead", "prompt": lead})
    run_once(repo)
    a, b = result(repo, "a"), result(repo, "b")
    assert b["status"] == "succeeded", b
    assert "--- notes.txt ---\nbase\nfrom a\n" in b["output"]  # a's change, in b's worktree
    assert b["workspace"]["base"] == "orchestrator/a"
    assert b["workspace"]["base_commit"] == a["workspace"]["head_commit"]
    assert b["workspace"]["insertions"] == 1  # its own change only
    assert git(repo, "show", "orchestrator/b:notes.txt") == "base\nfrom a\nfrom b"
    follow = result(repo, "lead--to-iso")
    assert follow["status"] == "succeeded", follow
    assert follow["workspace"]["base"] == "orchestrator/lead"
    assert follow["workspace"]["base_commit"] == result(repo, "lead")["workspace"]["head_commit"]
    assert "--- notes.txt ---\nbase\nfrom lead\n" in follow["output"]
    checkout.assert_untouched()


def test_kill_9_mid_run_loses_no_work_and_leaves_no_worktree(repo: Path, tmp_path: Path) -> None:
    checkout = Checkout(repo, repo)
    marker = tmp_path / "slept"  # the first run sleeps; the re-run does not
    daemon = Daemon(repo)
    drop_task(
        repo,
        "k.yaml",
        {
            "agent": "iso",
            "title": "Long one",
            "prompt": f"APPEND=notes.txt:from k\nSLEEP_ONCE={marker}:60",
        },
    )
    folder = repo / "work" / "worktrees"
    wait_for(lambda: any(folder.glob("*-k/notes.txt")) and marker.exists(), what="the tool")
    status = json.loads(orchestrator(repo, "status", "--json").stdout)
    assert status["branches"]["running"] == [{"id": "k", "branch": "orchestrator/k"}]
    daemon.process.kill()  # kill -9: the tool sleeps on in its own session
    daemon.wait()
    assert [p.name for p in folder.iterdir()] == [f"{daemon.process.pid}-k"]  # left behind
    again = Daemon(repo)
    wait_for(lambda: (repo / "work" / "outbox" / "k.result.yaml").exists(), what="the re-run")
    assert again.stop() == 0
    assert "recovered the worktree" in again.text()
    done = result(repo, "k")
    assert done["status"] == "succeeded", done
    ws = done["workspace"]
    assert ws["branch"] == "orchestrator/k" and ws["base_commit"] == checkout.head
    assert (ws["files_changed"], ws["insertions"]) == (1, 2)  # the first run's line, then ours
    assert commits(repo, checkout.head, "orchestrator/k") == [
        "Long one (k)",
        "Interrupted run on orchestrator/k: the work it left",
    ]
    assert git(repo, "show", "orchestrator/k:notes.txt") == "base\nfrom k\nfrom k"
    assert git(repo, "branch", "--list", "orchestrator/*").split() == ["orchestrator/k"]
    checkout.assert_untouched()


def test_nothing_changed_makes_no_commit(repo: Path) -> None:
    drop_task(repo, "idle.yaml", {"agent": "iso", "prompt": "only talk"})
    run_once(repo)
    ws = result(repo, "idle")["workspace"]
    assert ws["head_commit"] == ws["base_commit"] == git(repo, "rev-parse", "HEAD")
    assert (ws["files_changed"], ws["insertions"], ws["deletions"]) == (0, 0, 0)
    assert git(repo, "rev-parse", "orchestrator/idle") == ws["base_commit"]


def test_an_unknown_base_rejects_the_task_naming_it(repo: Path) -> None:
    git(repo, "tag", "v1")
    drop_task(repo, "bad.yaml", {"agent": "iso", "base": "no-such-ref", "prompt": "x"})
    drop_task(repo, "tagged.yaml", {"agent": "iso", "base": "v1", "prompt": "APPEND=n.txt:x"})
    run_once(repo)
    bad = result(repo, "bad")
    assert bad["status"] == "rejected" and bad["error"]["kind"] == "unknown_base"
    assert "'no-such-ref'" in bad["error"]["message"] and "base:" in bad["error"]["hint"]
    assert "attempts" not in bad
    assert git(repo, "branch", "--list", "orchestrator/bad") == ""
    tagged = result(repo, "tagged")["workspace"]
    assert tagged["base"] == "v1" and tagged["files_changed"] == 1


def test_a_worktree_that_cannot_be_made_fails_the_task(repo: Path, tmp_path: Path) -> None:
    """The task's branch is checked out in a worktree of the user's: git refuses."""
    git(repo, "worktree", "add", "--quiet", "-b", "orchestrator/busy", str(tmp_path / "mine"))
    drop_task(repo, "busy.yaml", {"agent": "iso", "prompt": "APPEND=notes.txt:x"})
    run_once(repo)
    busy = result(repo, "busy")
    assert busy["status"] == "failed" and busy["error"]["kind"] == "workspace_error", busy
    assert "orchestrator/busy" in busy["error"]["message"]
    assert "attempts" not in busy  # nothing ran
    assert (tmp_path / "mine" / "notes.txt").read_text() == BASE_TEXT


def test_agents_without_isolation_run_in_the_checkout_as_before(repo: Path) -> None:
    drop_task(repo, "plain.yaml", {"agent": "worker", "prompt": "APPEND=notes.txt:plain"})
    run_once(repo)
    assert "workspace" not in result(repo, "plain")
    assert (repo / "notes.txt").read_text() == "base\nplain\n"
    assert not (repo / "work" / "worktrees").exists()
    assert git(repo, "branch", "--list", "orchestrator/*") == ""


def test_a_workspace_in_a_subfolder_and_agents_writing_into_work(tmp_path: Path) -> None:
    """The tool runs in the workspace's own folder of the worktree; what it writes into
    work/ reaches the real work folder and is never committed."""
    top = tmp_path / "repo"
    root = top / "tools" / "ws"
    make_repo(top, root)
    checkout = Checkout(top, root)
    drop_task(root, "sub.yaml", {"agent": "iso", "prompt": "APPEND=notes.txt:sub"})
    drop_task(root, "w.yaml", {"agent": "iso", "prompt": "APPEND=work/from-agent.txt:hello"})
    run_once(root)
    assert result(root, "sub")["status"] == result(root, "w")["status"] == "succeeded"
    assert git(top, "diff", "--name-only", "HEAD", "orchestrator/sub") == "tools/ws/notes.txt"
    assert git(top, "show", "orchestrator/sub:tools/ws/notes.txt") == "base\nsub"
    assert (root / "work" / "from-agent.txt").read_text() == "hello\n"
    assert result(root, "w")["workspace"]["files_changed"] == 0
    checkout.assert_untouched()


# --- configuration ---------------------------------------------------------------------


def test_config_validate_names_the_agent_outside_a_git_repository(tmp_path: Path) -> None:
    root = tmp_path / "plain"
    if find_work_tree(tmp_path) is not None:
        pytest.skip("the temp folder is inside a git repository")
    write_config(root, isolated_config())
    done = orchestrator(root, "config", "validate")
    assert done.returncode == 1
    out = done.stdout + done.stderr
    assert "agents.iso.isolation" in out and "'iso' asks for worktree isolation" in out
    assert "not inside a git repository" in out and "git init" in out


def test_config_validate_says_when_git_is_missing(repo: Path, tmp_path: Path) -> None:
    empty = tmp_path / "no-git"
    empty.mkdir()
    done = orchestrator(repo, "config", "validate", env=cli_env(tmp_path, {"PATH": str(empty)}))
    assert done.returncode == 1
    assert "git is not installed" in done.stdout + done.stderr


# --- the benchmark ---------------------------------------------------------------------


def test_isolation_benchmark_prints_its_cost_per_task(tmp_path: Path) -> None:
    out = run_bench("bench.isolation", tmp_path, "--quick")
    for figure in ("none", "worktree", "per_task", "cpu_per_task"):
        assert re.search(rf"^isolation\.{figure}: {NUMBER} \S+", out, re.MULTILINE), out
    target = r"^isolation\.per_task: .* floor .*\(target added <= \S+ ms\) (ok|MISS)"
    assert re.search(target, out, re.MULTILINE), out
    assert not list(tmp_path.glob("orchestrator-bench-*"))
