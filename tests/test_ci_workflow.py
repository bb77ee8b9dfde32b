""".github/workflows/ci.yml: actionlint passes it (and fails a broken copy, with shellcheck
checking its run: scripts), it runs scripts/test on Linux, macOS and Windows through WSL,
and a tag v* publishes the release."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import REPO, cli_env

WORKFLOW = REPO / ".github" / "workflows" / "ci.yml"
TOOLS = Path(sys.executable).parent  # actionlint and shellcheck, from the dev group


def actionlint(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    binary = TOOLS / "actionlint"
    if not binary.is_file():
        pytest.fail(f"{binary} is missing: `uv sync --locked` installs the dev group")
    env = cli_env(cwd, {"PATH": f"{TOOLS}{os.pathsep}{os.environ.get('PATH', os.defpath)}"})
    return subprocess.run(
        [str(binary), "-no-color", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=60,
        check=False,
    )


def test_actionlint_passes_the_workflow_with_shellcheck_on() -> None:
    done = actionlint(REPO, "-verbose", str(WORKFLOW))
    assert done.returncode == 0, done.stdout + done.stderr
    assert 'Rule "shellcheck" was disabled' not in done.stderr, done.stderr


@pytest.mark.parametrize(
    ("good", "bad", "complaint"),
    [
        (
            "runs-on: ${{ matrix.os }}",
            "runs-on: ${{ matrix.oss }}",
            'property "oss" is not defined',
        ),
        ("needs: [test, wsl]", "needs: [test, windows]", 'job "windows" which does not exist'),
        (
            'mv build/binary/orchestrator "assets/orchestrator-$os-$(uname -m)"',
            "mv build/binary/orchestrator assets/orchestrator-$os-$(uname -m)",
            "SC2086:info",  # shellcheck, through actionlint: $os unquoted
        ),
        ("timeout-minutes: 75", "timeout-minutes: soon", "float number literal"),
    ],
)
def test_actionlint_fails_a_broken_copy(
    good: str, bad: str, complaint: str, tmp_path: Path
) -> None:
    text = WORKFLOW.read_text()
    assert good in text
    broken = tmp_path / ".github" / "workflows" / "ci.yml"
    broken.parent.mkdir(parents=True)
    broken.write_text(text.replace(good, bad, 1))
    done = actionlint(tmp_path, "-oneline", str(broken))  # the messages, no source lines
    assert done.returncode == 1, done.stdout + done.stderr
    assert complaint in done.stdout, done.stdout


def workflow() -> dict[str, Any]:
    data: dict[Any, Any] = yaml.safe_load(WORKFLOW.read_text())
    data["on"] = data.pop(True, data.get("on"))  # YAML 1.1 reads the key `on` as true
    return data


def runs(job: dict[str, Any]) -> list[str]:
    return [step["run"] for step in job["steps"] if "run" in step]


def test_scripts_test_runs_on_linux_macos_and_windows_through_wsl() -> None:
    platforms: dict[str, str] = {}
    for name, job in workflow()["jobs"].items():
        if not any(run.strip().endswith("scripts/test") for run in runs(job)):
            continue
        matrix = job.get("strategy", {}).get("matrix", {}).get("os")
        for runner in matrix or [job["runs-on"]]:
            platforms[runner] = name
    assert set(platforms) == {"ubuntu-latest", "macos-latest", "windows-latest"}, platforms
    wsl = workflow()["jobs"][platforms["windows-latest"]]
    assert any(step.get("uses", "").startswith("Vampire/setup-wsl@") for step in wsl["steps"])
    assert wsl["defaults"]["run"]["shell"] == "wsl-bash {0}"


def test_a_tag_publishes_wheel_sdist_and_executables_after_the_tests() -> None:
    data = workflow()
    assert "v*" in data["on"]["push"]["tags"]
    jobs = data["jobs"]
    release = jobs["release"]
    assert release["if"] == "startsWith(github.ref, 'refs/tags/v')"
    assert release["permissions"] == {"contents": "write"}
    assert any("gh release create" in run for run in runs(release))
    [build_name] = release["needs"]
    build = jobs[build_name]
    assert build["if"] == release["if"]
    assert set(build["strategy"]["matrix"]["os"]) == {"ubuntu-latest", "macos-latest"}
    assert any(run.startswith("uv build") for run in runs(build))
    assert any("scripts/build-binary" in run for run in runs(build))
    assert set(build["needs"]) == {"test", "wsl"}  # nothing is released that failed a test


def test_least_privilege_time_limits_and_one_run_per_branch() -> None:
    data = workflow()
    assert data["permissions"] == {"contents": "read"}
    assert "github.ref" in data["concurrency"]["group"]
    for name, job in data["jobs"].items():
        assert isinstance(job.get("timeout-minutes"), int), name
        assert job.get("permissions", {"contents": "read"})["contents"] in ("read", "write")


def test_scripts_test_lints_the_workflow_and_the_shell_scripts() -> None:
    lines = (REPO / "scripts" / "test").read_text().splitlines()
    assert "uv run --locked actionlint" in lines
    assert any(line.startswith("uv run --locked shellcheck ") for line in lines)
