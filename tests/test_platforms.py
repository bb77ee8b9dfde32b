"""What the code does where a platform lacks something Linux has (docs/platforms.md),
shown on Linux by taking that thing away in the child process: the POSIX modules native
Windows lacks, and the read leases macOS's fcntl lacks."""

from __future__ import annotations

import subprocess
import sys
from typing import TYPE_CHECKING

import pytest

from tests.conftest import cli_env, drop_task, result

if TYPE_CHECKING:
    from pathlib import Path


def command(root: Path, prelude: str, *args: str) -> subprocess.CompletedProcess[str]:
    """`orchestrator --root ROOT ARGS`, after `prelude` ran in the same interpreter."""
    code = f"{prelude}\nimport sys\nfrom orchestrator.cli import main\nsys.exit(main(sys.argv[1:]))"
    return subprocess.run(
        [sys.executable, "-c", code, "--root", str(root), *args],
        capture_output=True,
        text=True,
        env=cli_env(root.parent),
        cwd=root,
        timeout=90,
        check=False,
    )


AS_ON_WINDOWS = "import sys\nsys.modules['fcntl'] = sys.modules['resource'] = None"


@pytest.mark.parametrize(
    "args",
    [["run", "--once"], ["status"], ["submit", "--agent", "worker", "--prompt", "hi"]],
)
def test_without_posix_modules_a_command_says_to_use_wsl(workspace: Path, args: list[str]) -> None:
    done = command(workspace, AS_ON_WINDOWS, *args)
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stderr == (
        f"error: orchestrator {args[0]} needs fcntl, a module of POSIX systems (Linux, macOS) "
        "that native Windows lacks: on Windows, run it inside WSL (docs/platforms.md)\n"
    )


def test_without_posix_modules_version_still_answers(workspace: Path) -> None:
    done = command(workspace, AS_ON_WINDOWS, "version")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("orchestrator ")


def test_without_read_leases_tasks_are_read_and_run(workspace: Path) -> None:
    """macOS's fcntl has no F_SETLEASE: task files are read without a lease."""
    drop_task(workspace, "hello.yaml", {"id": "hello", "agent": "worker", "prompt": "hi"})
    done = command(workspace, "import fcntl\ndel fcntl.F_SETLEASE", "run", "--once")
    assert done.returncode == 0, done.stdout + done.stderr
    assert result(workspace, "hello")["status"] == "succeeded"


def test_without_proc_liveness_is_asked_with_signal_zero(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """macOS has no /proc: a run folder's owner and a budget lease's holder are alive
    while their pid answers signal 0, and dead once it is gone."""
    from orchestrator import ledger, reaper

    monkeypatch.setattr(reaper, "PROC", str(tmp_path / "no-proc"))
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert reaper.owner_alive(f"{child.pid}-1", me=1)
        assert ledger.process_start(child.pid) == 0
    finally:
        child.kill()
        child.wait()
    assert not reaper.owner_alive(f"{child.pid}-1", me=1)
    assert ledger.process_start(child.pid) is None
