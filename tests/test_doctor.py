"""`orchestrator doctor` against real binaries, a missing one and declared env vars."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import base_config, cli_env, fake_tool, orchestrator, write_config
from tests.realcli import cli_bin_dir


def test_doctor_reports_tools_versions_and_env(workspace: Path) -> None:
    files = base_config()
    bins = cli_bin_dir()
    files["tools.yaml"]["tools"] = {
        "fake": fake_tool(),
        "claude-code": {
            "adapter": "claude-code",
            "binary": str(bins / "claude"),
            "env": ["ANTHROPIC_API_KEY"],
        },
        "codex": {
            "adapter": "codex",
            "binary": "codex-not-installed-here",
            "env": ["OPENAI_API_KEY"],
        },
    }
    files["agents.yaml"]["agents"] = {"worker": {"preferred_tool": "fake"}}
    write_config(workspace, files)
    env = cli_env(workspace.parent, {"ANTHROPIC_API_KEY": "sk-secret-value"})
    done = orchestrator(workspace, "doctor", env=env)
    assert done.returncode == 1, done.stderr
    out = done.stdout
    assert f"ok claude-code [claude-code]: {bins / 'claude'} (2.1.332 (Claude Code))" in out
    assert "env: ANTHROPIC_API_KEY set" in out
    assert "sk-secret-value" not in out
    assert "!! codex [codex]: codex-not-installed-here: not found" in out
    assert "fix: npm i -g @openai/codex" in out
    assert "env: OPENAI_API_KEY NOT set" in out
    assert "env: FAKE_DECLARED NOT set" in out
    assert "2 of 3 tools ready; 1 need attention" in out
