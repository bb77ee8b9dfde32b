"""Isolation: what `isolation: worktree` costs a task. N tasks through `orchestrator run
--once --concurrency 1` in a git repository of F files, once with `isolation: none` and
once with `isolation: worktree`, taking turns for R rounds (fresh task ids each time); the
difference of the medians, per task, is the cost. The tool (`tee out.txt`) writes a file
into its working folder, so every isolated task has a commit to make.

The floor: the git commands an isolated task needs, run directly one after the other for
N tasks (worktree add -b, add, diff --cached, commit, rev-parse, diff --shortstat,
worktree remove), per task, in every round. Their cost is mostly the
checkout's, which grows with the repository and with what creating a file costs on the
filesystem; the target is on what the orchestrator adds beyond them.

    uv run python -m bench.isolation [--quick] [--tasks N] [--files F] [--rounds R]
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from typing import TYPE_CHECKING

from bench._common import (
    AGENT,
    Target,
    figure,
    header,
    info,
    median,
    noop_config,
    parser,
    result_status,
    run_measured,
    size,
    which,
    workspace,
    write_tasks,
)

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from pathlib import Path

NAME = "isolation"
# What the orchestrator may add per task beyond the git commands themselves (their cost
# is the checkout's: it grows with the repository and the filesystem's file creation).
TARGET = Target(30.0, "added")
GIT_ENV = {"GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull, "LC_ALL": "C"}
IDENTITY = ("-c", "user.name=bench", "-c", "user.email=bench@localhost")


def git(root: Path, env: Mapping[str, str], *args: str) -> str:
    done = subprocess.run(
        ["git", *IDENTITY, *args],
        cwd=root,
        env={**env, **GIT_ENV},
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


def make_repository(root: Path, env: Mapping[str, str], files: int) -> None:
    """A repository at the workspace: `files` small source files in a few folders,
    committed; work/ excluded, as a user would keep it out of git."""
    git(root, env, "init", "--quiet", "--initial-branch", "main")
    for i in range(files):
        folder = root / "src" / f"pkg{i % 20:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"mod{i:05d}.py").write_text(f'"""Module {i}."""\n\nVALUE = {i}\n' * 20)
    with (root / ".git" / "info" / "exclude").open("a") as exclude:
        exclude.write("work/\nconfig/\n")  # the bench rewrites config/ between rounds
    git(root, env, "add", "--all")
    git(root, env, "commit", "--quiet", "-m", "the code")


def git_floor(root: Path, env: Mapping[str, str], tasks: int, label: str) -> float:
    """Seconds per task of the git commands an isolated task needs, run directly."""
    folder = root.parent / "floor-worktrees"
    head = git(root, env, "rev-parse", "HEAD")
    started = time.perf_counter()
    for i in range(tasks):
        path = folder / f"f{i}"
        branch = f"floor/{label}-{i}"
        git(root, env, "worktree", "add", "--quiet", "-b", branch, str(path), head)
        (path / "out.txt").write_text("hello\n")
        git(path, env, "add", "--all", "--", ":/", ":(top,exclude)work")
        staged = ["git", "diff", "--cached", "--quiet"]
        subprocess.run(staged, cwd=path, env={**env, **GIT_ENV}, check=False)
        git(path, env, "commit", "--quiet", "--no-verify", "-m", f"floor {i}")
        commit = git(path, env, "rev-parse", "HEAD", "--symbolic-full-name", "HEAD").split()[0]
        git(path, env, "diff", "--shortstat", head, commit)
        git(root, env, "worktree", "remove", "--force", str(path))
    return (time.perf_counter() - started) / tasks


def configured(tool: Sequence[str], mode: str) -> dict[str, object]:
    files = noop_config(tool, 1)
    files["agents.yaml"]["agents"][AGENT]["isolation"] = mode
    return files


def main(argv: Sequence[str] | None = None) -> int:
    p = parser(__doc__ or NAME)
    p.add_argument("--tasks", type=int)
    p.add_argument("--files", type=int)
    p.add_argument("--rounds", type=int)
    args = p.parse_args(argv)
    tasks = size(args.tasks, args.quick, 5, 20)
    files = size(args.files, args.quick, 50, 1000)
    rounds = size(args.rounds, args.quick, 1, 3)
    tool = [which("tee"), "out.txt"]
    header(NAME, {"tasks": tasks, "files in the repository": files, "rounds": rounds,
                  "concurrency": 1, "tool": " ".join(tool)})  # fmt: skip
    walls: dict[str, list[float]] = {"none": [], "worktree": []}
    cpus: dict[str, list[float]] = {"none": [], "worktree": []}
    with workspace(NAME) as ws:
        ws.configure(configured(tool, "none"))
        ws.warm_up()  # before the repository: the warm-up's copy is no git work tree
        make_repository(ws.root, ws.env, files)
        floors = []
        for number in range(rounds):
            floors.append(git_floor(ws.root, ws.env, tasks, str(number)))
            for mode in ("none", "worktree"):
                ws.configure(configured(tool, mode))
                ids = [f"{mode}-{number}-{i:04d}" for i in range(tasks)]
                write_tasks(ws.inbox, ids)
                command = ws.command("run", "--once", "--concurrency", "1")
                wall, cpu = run_measured(command, ws.env, ws.root)
                (ws.root / "out.txt").unlink(missing_ok=True)  # what the tool wrote in none
                for task_id in ids:
                    data = result_status(ws.outbox, task_id)
                    if data.get("status") != "succeeded" or (mode == "worktree") != bool(
                        data.get("workspace")
                    ):
                        raise RuntimeError(f"{task_id}: {data}")
                walls[mode].append(wall)
                cpus[mode].append(cpu)
                info(NAME, f"round {number + 1}, isolation {mode}: {wall:.2f} s, CPU {cpu:.2f} s")
            info(NAME, f"round {number + 1}, git floor: {1000 * floors[-1]:.0f} ms per task")
        worktrees = git(ws.root, ws.env, "worktree", "list", "--porcelain")
        changed = git(ws.root, ws.env, "status", "--porcelain")
        if worktrees.count("worktree ") != 1 or changed:
            raise RuntimeError(
                f"a worktree was left, or the checkout was changed:\n{worktrees}\n{changed}"
            )
    none, isolated = median(walls["none"]), median(walls["worktree"])
    figure(f"{NAME}.none", none, "s", note=f"{tasks} tasks, isolation: none")
    figure(
        f"{NAME}.worktree", isolated, "s", floor=none, note=f"{tasks} tasks, isolation: worktree"
    )
    figure(
        f"{NAME}.per_task",
        1000 * (isolated - none) / tasks,
        "ms",
        floor=1000 * median(floors),
        target=TARGET,
        note=f"added per task by its worktree ({files} files); floor: the same git commands "
        "run directly",
    )
    figure(
        f"{NAME}.cpu_per_task",
        1000 * (median(cpus["worktree"]) - median(cpus["none"])) / tasks,
        "ms",
        note="CPU time added per task, git included",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
