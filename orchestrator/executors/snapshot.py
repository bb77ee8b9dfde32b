"""An isolated task's worktree, sent to a Dask worker and brought back without a shared
filesystem: the files git would commit there (tracked, and untracked but not ignored; not
the worktree's `work` link) go as a tar; the worker unpacks them into a repository of its
own, runs the tool, and sends back what changed as a binary patch, applied here to the
task's worktree, whose branch then takes the commit as for a local run.

The daemon's side is async (git through isolation.git); the worker's is plain blocking
calls in its task thread. git runs from argv lists, never a shell, with no user config.
"""

from __future__ import annotations

import io
import subprocess
import tarfile
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

import anyio

from orchestrator.isolation.git import OPTIONS, environment

if TYPE_CHECKING:
    from orchestrator.isolation.git import Git

PATCH_FILE = "changes.patch"  # in the run's folder, while it is applied


def _work_link(prefix: str) -> str:
    """The worktree's link to the workspace's work/ folder (never sent, never changed)."""
    return str(PurePosixPath(prefix) / "work") if prefix else "work"


async def take(cwd: Path, git: Git) -> tuple[bytes, str]:
    """The worktree holding `cwd` as a tar, and where `cwd` is inside it."""
    top = Path(await git.out("rev-parse", "--show-toplevel", cwd=cwd))
    prefix = (await git.out("rev-parse", "--show-prefix", cwd=cwd)).rstrip("/")
    listed = await git.run("ls-files", "-z", "--cached", "--others", "--exclude-standard", cwd=top)
    link = _work_link(prefix)
    names = [
        name
        for name in dict.fromkeys(listed.out.split("\0"))
        if name and name != link and not name.startswith(f"{link}/")
    ]
    return await anyio.to_thread.run_sync(_tar, top, names), prefix


def _tar(top: Path, names: list[str]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name in names:
            path = top / name
            if path.is_symlink() or path.is_file():  # a tracked file deleted here is not sent
                tar.add(path, arcname=name, recursive=False)
    return buffer.getvalue()


async def give_back(cwd: Path, patch: bytes, run_dir: Path, git: Git) -> None:
    """Apply the worker's changes to the worktree holding `cwd`."""
    if not patch:
        return
    top = Path(await git.out("rev-parse", "--show-toplevel", cwd=cwd))
    target = run_dir / PATCH_FILE
    target.write_bytes(patch)
    try:
        await git.run("apply", "--binary", "--whitespace=nowarn", str(target), cwd=top)
    finally:
        target.unlink(missing_ok=True)


# --- on the worker ---------------------------------------------------------------------


def _git(top: Path, *args: str) -> bytes:
    done = subprocess.run(
        ["git", *OPTIONS, *args],
        cwd=top,
        env=environment(top.parent),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        message = done.stderr.decode(errors="replace").strip()
        raise OSError(f"git {args[0]} failed on the worker: {message}")
    return done.stdout


def unpack(snapshot: bytes, top: Path) -> None:
    """The worktree's files in `top`, committed as the base the changes are taken from."""
    top.mkdir(parents=True)
    with tarfile.open(fileobj=io.BytesIO(snapshot), mode="r") as tar:
        tar.extractall(top, filter="data")
    _git(top, "init", "--quiet")
    _git(top, "add", "--all")
    _git(top, "commit", "--quiet", "--allow-empty", "--no-verify", "-m", "base")


def changes(top: Path, prefix: str) -> bytes:
    """What the tool changed in `top` since the base, as a binary patch (its own commits
    included; not the work folder)."""
    _git(top, "add", "--all", "--", ".", f":(exclude){_work_link(prefix)}")
    return _git(top, "diff", "--cached", "--binary", "HEAD")
