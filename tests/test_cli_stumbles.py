"""More of what new users trip over (issue 12), each through the real command: output
piped into a reader that goes away."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import (
    cli_env,
    spawn,
)

READER_GONE = 141  # 128 + SIGPIPE, what a shell reports for `yes | head`


# --- output into a closed pipe ------------------------------------------------------------


def test_status_watch_into_a_reader_that_goes_away_exits_quietly(workspace: Path) -> None:
    proc = spawn(workspace, ["-m", "orchestrator", "status", "--watch", "--interval", "0.1"])
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    proc.stdin.close()
    try:
        assert proc.stdout.read(200)  # it is drawing
        proc.stdout.close()  # what `| head` does once it has its lines
        closed = time.monotonic()
        code = proc.wait(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert time.monotonic() - closed < 5, "it kept running after its reader had gone"
    assert code == READER_GONE
    assert proc.stderr.read() == ""  # no traceback, no "Exception ignored", no error line
    proc.stderr.close()


@pytest.mark.parametrize("command", [["status"], ["version"], ["config", "validate"]])
def test_any_command_into_a_closed_pipe_exits_quietly(workspace: Path, command: list[str]) -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the command writes a byte
    try:
        done = subprocess.run(
            [sys.executable, "-m", "orchestrator", "--root", str(workspace), *command],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            env=cli_env(workspace.parent),
            cwd=workspace,
            timeout=60,
            check=False,
        )
    finally:
        os.close(write_end)
    assert (done.returncode, done.stderr) == (READER_GONE, "")
