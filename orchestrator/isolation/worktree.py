"""A task's worktree: made before its first attempt (work/worktrees/<pid>-<task-id>, on
branch orchestrator/<task-id>), what the agent left committed on the branch afterwards,
then removed (the branch stays). At start-up, the worktrees a stopped daemon left are
committed and removed the same way.

Only these git commands ever run: reading ones (rev-parse, for-each-ref, merge-base,
diff between commits), `worktree add`, `worktree remove`, `worktree prune`,
and `add`, `commit`, `branch -f` inside a task's own worktree. None of them changes the
user's checkout: its index, HEAD, files and stash are never touched.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from orchestrator.errors import TaskRejected, WorktreeError
from orchestrator.isolation.branches import (
    branch_name,
    choose_base,
    commit_message,
    parse_shortstat,
    predecessors,
    salvage_message,
    workspace_block,
)
from orchestrator.isolation.git import Git, Repo, discover, repo_lock
from orchestrator.reaper import owner_alive

if TYPE_CHECKING:
    from pathlib import Path

    from orchestrator.tasks import Task

log = logging.getLogger(__name__)

WORK = "work"  # the orchestrator's folder in the workspace: never committed on a branch


@dataclass
class Checkout:
    """A task's worktree while the task runs."""

    path: Path  # the worktree's top folder
    cwd: Path  # where the tool runs: the workspace's place inside the worktree
    branch: str
    base: str  # the ref it started from
    base_commit: str
    warnings: list[str] = field(default_factory=list)


class Worktrees:
    """The worktrees of one workspace's tasks, in `folder` (work/worktrees)."""

    def __init__(self, root: Path, folder: Path | None = None) -> None:
        self.root = root
        self.folder = folder or root / WORK / "worktrees"
        self.git = Git(home=self.folder)
        self._repo: Repo | None = None

    async def repo(self) -> Repo:
        if self._repo is None:
            self._repo = await discover(self.git, self.root)
        return self._repo

    def _exclude(self, repo: Repo) -> str:
        """The pathspec that keeps the workspace's work/ folder off the branches."""
        return f":(top,exclude){repo.prefix}{WORK}"

    # --- a task's worktree --------------------------------------------------------------

    async def open(self, task: Task) -> Checkout:
        """Make the task's worktree: a new branch from its base, or its branch as an
        earlier run left it (a re-run after a crash, or `retry`, goes on from there)."""
        repo = await self.repo()
        branch = branch_name(task.id)
        before = predecessors(task.previous_task, task.dependency_ids)
        existing = await self._branches(repo, [branch, *map(branch_name, before)])
        choice = choose_base(task.base_ref, before, existing)
        base_commit = await self._commit_of(repo, choice.ref, choice.given, task.id)
        self._ensure_folder()
        path = self.folder / f"{os.getpid()}-{task.id}"
        async with repo_lock(repo.common_dir):
            if branch in existing:
                await self._add_existing(repo, path, branch)
                merge_base = await self.git.run(
                    "merge-base", base_commit, branch, cwd=repo.top, ok=(0, 1)
                )
                base_commit = merge_base.out.strip() or base_commit
            else:
                add = ("worktree", "add", "--quiet", "-b", branch, str(path), base_commit)
                await self.git.run(*add, cwd=repo.top)
        cwd = path / repo.prefix
        try:
            _link_work(cwd, self.root / WORK)
        except OSError as exc:
            await self._remove(repo, path)
            raise WorktreeError(
                f"cannot prepare the worktree {path}: {exc}", "check the disk and permissions"
            ) from None
        log.info("%s runs in %s on %s (from %s)", task.id, path, branch, choice.ref)
        warnings = [choice.warning] if choice.warning else []
        return Checkout(path, cwd, branch, choice.ref, base_commit, warnings)

    async def close(self, checkout: Checkout, task: Task) -> dict[str, str | int]:
        """Commit what the agent left, remove the worktree; the result's `workspace:`."""
        repo = await self.repo()
        message = commit_message(task.id, task.agent, task.title)
        head = await self._commit_all(repo, checkout.path, checkout.branch, message)
        stat = await self.git.out(
            "diff", "--shortstat", checkout.base_commit, head, cwd=checkout.path
        )
        await self._remove(repo, checkout.path)
        return workspace_block(
            checkout.branch, checkout.base, checkout.base_commit, head, parse_shortstat(stat)
        )

    # --- start-up recovery --------------------------------------------------------------

    async def recover(self) -> None:
        """Worktrees a stopped daemon left (none of their tasks runs now): what they hold
        is committed on their branches, then they are removed and git forgets them. The
        worktrees of a live `exec` are left alone. Nothing here stops the daemon."""
        left = _left_behind(self.folder)
        if not left:
            return
        try:
            repo = await self.repo()
            for path in left:
                await self._salvage(repo, path)
            await self.git.run("worktree", "prune", cwd=repo.top)
        except WorktreeError as exc:
            log.error("worktrees left by a stopped daemon stay in %s: %s", self.folder, exc)

    async def _salvage(self, repo: Repo, path: Path) -> None:
        if not (path / ".git").is_file():  # cut short while being made: nothing ran in it
            log.warning("removing %s, a worktree that was never finished", path)
            shutil.rmtree(path, ignore_errors=True)
            return
        branch = branch_name(path.name.partition("-")[2])
        try:
            head = await self._commit_all(repo, path, branch, salvage_message(branch))
            await self._remove(repo, path)
        except WorktreeError as exc:
            log.error("cannot recover the worktree %s (left as it is): %s", path, exc)
            return
        log.warning("recovered the worktree %s: its work is on %s (%s)", path, branch, head[:12])

    # --- git ----------------------------------------------------------------------------

    async def _branches(self, repo: Repo, names: list[str]) -> set[str]:
        """Which of these branches exist (one command)."""
        refs = [f"refs/heads/{name}" for name in names]
        done = await self.git.run("for-each-ref", "--format=%(refname:short)", *refs, cwd=repo.top)
        return set(done.out.split())

    async def _commit_of(self, repo: Repo, ref: str, given: bool, task_id: str) -> str:
        if not ref.startswith("-"):  # never an option
            done = await self.git.run(
                "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}", cwd=repo.top, ok=(0, 1)
            )
            if done.code == 0:
                return done.out.strip()
        if given:
            raise TaskRejected(
                "unknown_base",
                f"{task_id}: base {ref!a} is no branch, tag or commit of the repository {repo.top}",
                "name one that exists (git branch --list, git tag --list), create it "
                "first, or remove base: to start from the workspace's HEAD",
            )
        raise WorktreeError(
            f"{ref} of the repository {repo.top} is not a commit (a repository with no "
            "commit yet?)",
            "commit something first: a worktree starts from a commit",
        )

    def _ensure_folder(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        if self.folder.is_symlink():
            raise WorktreeError(
                f"{self.folder} is a symbolic link",
                f"replace it with a real folder (mkdir {self.folder})",
            )

    async def _add_existing(self, repo: Repo, path: Path, branch: str) -> None:
        """A worktree on an existing branch; once more after `worktree prune` when git
        still counts it as checked out in a worktree whose folder is gone."""
        add = ("worktree", "add", "--quiet", str(path), branch)
        try:
            await self.git.run(*add, cwd=repo.top)
        except WorktreeError:
            await self.git.run("worktree", "prune", cwd=repo.top)
            try:
                await self.git.run(*add, cwd=repo.top)
            except WorktreeError as exc:
                raise WorktreeError(
                    f"{branch} cannot be checked out in a new worktree: {exc.message}",
                    f"if it is checked out elsewhere, switch that checkout to another branch "
                    f"(or delete {branch} to start the task afresh), then run the task again",
                ) from None

    async def _commit_all(self, repo: Repo, path: Path, branch: str, message: str) -> str:
        """Commit everything in the worktree but the work/ folder (no empty commit), keep
        `branch` on the result, and return its commit."""
        _unlink_work(path / repo.prefix / WORK)
        await self.git.run("add", "--all", "--", ":/", self._exclude(repo), cwd=path)
        staged = await self.git.run("diff", "--cached", "--quiet", cwd=path, ok=(0, 1))
        async with repo_lock(repo.common_dir):
            if staged.code == 1:
                await self.git.run("commit", "--quiet", "--no-verify", "-m", message, cwd=path)
            where = await self.git.out(
                "rev-parse", "HEAD", "--symbolic-full-name", "HEAD", cwd=path
            )
            head, _, current = where.partition("\n")  # current is "HEAD" when detached
            if current != f"refs/heads/{branch}":  # the agent left the branch
                log.warning("%s: HEAD left %s; the branch is moved to %s", path, branch, head)
                await self.git.run("branch", "--force", branch, head, cwd=path)
        return head

    async def _remove(self, repo: Repo, path: Path) -> None:
        async with repo_lock(repo.common_dir):
            try:
                await self.git.run("worktree", "remove", "--force", str(path), cwd=repo.top)
            except WorktreeError as exc:  # committed already: the folder may go
                log.warning("%s; removing the folder and pruning", exc)
                shutil.rmtree(path, ignore_errors=True)
                await self.git.run("worktree", "prune", cwd=repo.top)


def _link_work(cwd: Path, work: Path) -> None:
    """The tool's folder, and in it a link to the workspace's real work/ folder (unless
    the branch tracks one), so that task files an agent drops in work/inbox reach ours."""
    cwd.mkdir(parents=True, exist_ok=True)  # a workspace folder that git does not track
    if not os.path.lexists(cwd / WORK):
        os.symlink(work.absolute(), cwd / WORK)


def _unlink_work(link: Path) -> None:
    """Our link to the real work/ folder goes before anything is committed or removed."""
    with contextlib.suppress(FileNotFoundError):
        if link.is_symlink():
            link.unlink()


def _left_behind(folder: Path) -> list[Path]:
    """Worktree folders (<pid>-<task-id>) whose daemon or `exec` is gone (on macOS, where
    there is no /proc, asked with signal 0: see reaper.owner_alive)."""
    if folder.is_symlink():
        log.error("%s is a symbolic link: no worktree in it is touched", folder)
        return []
    try:
        entries = sorted(folder.iterdir())
    except (FileNotFoundError, NotADirectoryError):
        return []
    me = os.getpid()
    return [
        path
        for path in entries
        if not path.name.startswith(".")
        and not path.is_symlink()
        and path.is_dir()
        and not owner_alive(path.name, me)
    ]
