"""Running git: argv lists (never a shell), an environment and options that ignore the
user's and the system's git config (no HOME config, no hooks, no signing, no prompts), one
lock per repository for the commands that change its shared metadata, and a few retries
when another process holds one of git's own lock files.
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import anyio

from orchestrator.errors import WorktreeError
from orchestrator.process import LIVE_TOOLS

if TYPE_CHECKING:
    from collections.abc import Collection

    from anyio.abc import ByteReceiveStream

log = logging.getLogger(__name__)

# Our identity, and nothing of the repository's config that could run code, ask for a
# passphrase or start background work: hooks, commit signing, fsmonitor, auto gc.
OPTIONS = (
    "-c", "user.name=orchestrator",
    "-c", "user.email=orchestrator@localhost",
    "-c", f"core.hooksPath={os.devnull}",
    "-c", "commit.gpgSign=false",
    "-c", "core.fsmonitor=false",
    "-c", "gc.auto=0",
    "-c", "maintenance.auto=false",
    "-c", "advice.detachedHead=false",
)  # fmt: skip
LOCK_RETRIES = 6  # another process holds index.lock or a ref's lock: wait and try again
LOCK_BACKOFF_S = 0.05
_LOCKED = re.compile(r"\.lock'?: File exists|cannot lock ref|Unable to create .*\.lock")
MISSING_HINT = "install git, or set isolation: none for the agent in config/agents.yaml"

# One lock per repository (its common git folder), for every command that changes what
# all its worktrees share: worktrees added or removed, branches created or moved, commits.
_locks: dict[Path, anyio.Lock] = {}


def repo_lock(common_dir: Path) -> anyio.Lock:
    if common_dir not in _locks:
        _locks[common_dir] = anyio.Lock()
    return _locks[common_dir]


def find_work_tree(start: Path) -> Path | None:
    """The folder holding `.git` (a folder, or a file in a linked worktree) at or above
    `start`, or None: a filesystem walk, cheap enough for config validation."""
    start = start.absolute()
    for folder in (start, *start.parents):
        if (folder / ".git").exists():
            return folder
    return None


def environment(home: Path) -> dict[str, str]:
    """Git's whole environment: PATH, and a HOME of ours with no config in it."""
    return {
        "PATH": os.environ.get("PATH", os.defpath),
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_OPTIONAL_LOCKS": "0",  # reading commands never refresh an index
        "LC_ALL": "C",
    }


@dataclass(frozen=True)
class Done:
    code: int
    out: str
    err: str


@dataclass(frozen=True)
class Git:
    """Runs git with our environment; `home` is a folder of ours (it holds no config)."""

    home: Path

    async def run(self, *args: str, cwd: Path, ok: Collection[int] = (0,)) -> Done:
        """`git ARGS` in `cwd`; an exit code outside `ok` raises WorktreeError (after a
        few retries when git says another process holds one of its locks)."""
        argv = ["git", *OPTIONS, *args]
        for attempt in range(LOCK_RETRIES + 1):
            try:
                done = await _spawn(argv, cwd, environment(self.home))
            except OSError as exc:
                raise _not_run(exc, cwd) from None
            if done.code in ok:
                return done
            if attempt < LOCK_RETRIES and _LOCKED.search(done.err):
                log.debug("git %s: a lock is held; trying again", args[0])
                await anyio.sleep(LOCK_BACKOFF_S * 2**attempt)
                continue
            break
        raise WorktreeError(
            f"`git {' '.join(args)}` failed in {cwd} (exit {done.code}): {last_line(done.err)}",
            "see the message; the user's checkout was not changed",
        )

    async def out(self, *args: str, cwd: Path) -> str:
        """The first line of what `git ARGS` prints (which must succeed)."""
        return (await self.run(*args, cwd=cwd)).out.strip()


async def _spawn(argv: list[str], cwd: Path, env: dict[str, str]) -> Done:
    """Run git to its end. While it runs it counts as a live tool: the daemon's sweep for
    orphaned tool processes (reaper.py) must not take it for one."""
    LIVE_TOOLS.starting += 1  # not yet a known leader: no sweep meanwhile
    try:
        with anyio.CancelScope(shield=True):  # a cancel now would lose the started process
            process = await anyio.open_process(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL)
        LIVE_TOOLS.leaders.add(process.pid)
    finally:
        LIVE_TOOLS.starting -= 1
    out, err = bytearray(), bytearray()
    try:
        async with process, anyio.create_task_group() as tg:
            tg.start_soon(_drain, process.stdout, out)
            tg.start_soon(_drain, process.stderr, err)
            await process.wait()
    finally:
        LIVE_TOOLS.leaders.discard(process.pid)
    text = (bytes(b).decode("utf-8", "replace") for b in (out, err))
    return Done(-1 if process.returncode is None else process.returncode, *text)


async def _drain(stream: ByteReceiveStream | None, into: bytearray) -> None:
    if stream is not None:
        async for chunk in stream:
            into += chunk


def _not_run(exc: OSError, cwd: Path) -> WorktreeError:
    if not cwd.is_dir():
        return WorktreeError(f"cannot run git in {cwd}: the folder is gone", "run the task again")
    return WorktreeError(f"git cannot be run: {exc.strerror or exc}", MISSING_HINT)


def last_line(text: str) -> str:
    """The gist of git's stderr: its last non-empty line (the `fatal:` one)."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "no message"


@dataclass(frozen=True)
class Repo:
    """The repository a workspace is in."""

    top: Path  # the top folder of the work tree holding the workspace
    common_dir: Path  # the .git folder its worktrees share (the lock's key)
    prefix: str  # the workspace's place in the work tree: "" or "some/folder/"


async def discover(git: Git, root: Path) -> Repo:
    """The repository holding the workspace `root`, or WorktreeError."""
    try:
        args = ("rev-parse", "--show-toplevel", "--git-common-dir", "--show-prefix")
        done = await git.run(*args, cwd=root)
    except WorktreeError as exc:
        raise WorktreeError(
            f"the workspace {root} is not inside a git work tree ({exc.message})",
            f"run `git init` in {root} and commit, or set isolation: none",
        ) from None
    top, common, prefix = [*done.out.split("\n"), "", ""][:3]
    return Repo(Path(top), (root / common).resolve(), prefix)
