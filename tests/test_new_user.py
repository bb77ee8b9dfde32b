"""What a new user trips over (issue 12's list), each through the real command."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import TYPE_CHECKING

from tests.conftest import base_config, cli_env, orchestrator, write_config

if TYPE_CHECKING:
    from pathlib import Path


def test_a_zero_backoff_is_valid(workspace: Path) -> None:
    files = base_config()
    files["policies.yaml"]["retries"]["backoff"] = "0s"
    write_config(workspace, files)
    done = orchestrator(workspace, "config", "validate")
    assert done.returncode == 0, done.stderr
    files["policies.yaml"]["retries"]["backoff"] = "-1s"
    write_config(workspace, files)
    done = orchestrator(workspace, "config", "validate")
    assert done.returncode == 1 and "retries.backoff" in done.stderr


def test_root_after_the_command(workspace: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    def run(*args: str) -> subprocess.CompletedProcess[str]:  # from a folder that is none
        return subprocess.run(
            [sys.executable, "-m", "orchestrator", *args, "--root", str(workspace)],
            capture_output=True,
            text=True,
            env=cli_env(tmp_path),
            cwd=elsewhere,
            timeout=60,
            check=False,
        )

    done = run("status", "--json")
    assert done.returncode == 0, done.stderr
    assert "queue" in json.loads(done.stdout)
    done = run("config", "validate")
    assert done.returncode == 0, done.stderr


def test_status_and_stats_outside_a_workspace_say_so(tmp_path: Path) -> None:
    empty = tmp_path / "not-a-workspace"
    empty.mkdir()
    for command in (["status"], ["stats", "--daily"]):
        done = orchestrator(empty, *command)
        assert done.returncode == 1, done.stdout
        assert "is not a workspace (no config/ or work/ here)" in done.stderr
        assert "orchestrator init" in done.stderr


def test_exec_output_into_a_missing_folder_is_refused_before_running(workspace: Path) -> None:
    target = workspace / "no-such-folder" / "answer.md"
    done = orchestrator(
        workspace, "exec", "--agent", "worker", "--prompt", "hi", "--output", str(target)
    )
    assert done.returncode == 1
    assert "does not exist; create it first" in done.stderr and "Traceback" not in done.stderr
    assert not (workspace / "work" / "telemetry.db").exists()  # nothing ran, nothing spent
