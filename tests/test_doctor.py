"""`orchestrator doctor` against real binaries, a missing one, declared env vars, and the
keys each built-in adapter needs (listed and set, or a stored login it may use)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

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
    assert "key: ANTHROPIC_API_KEY set" in out
    assert "sk-secret-value" not in out
    assert "!! codex [codex]: codex-not-installed-here: not found" in out
    assert "fix: npm i -g @openai/codex" in out
    assert "key: NOT set (CODEX_API_KEY is required)" in out
    assert "env: FAKE_DECLARED NOT set" in out
    assert "2 of 3 tools ready; 1 need attention" in out


# --- keys: required, optional, passed or not, a stored login ------------------------------


def real_tools(**overrides: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The three built-in adapters on the pinned CLIs, with config/tools.yaml's env lists."""
    bins = cli_bin_dir()
    tools: dict[str, dict[str, Any]] = {
        "claude-code": {
            "adapter": "claude-code",
            "binary": str(bins / "claude"),
            "env": ["ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "CLAUDE_CODE_OAUTH_TOKEN",
                    "ANTHROPIC_BASE_URL", "CLAUDE_CONFIG_DIR"],
        },
        "codex": {"adapter": "codex", "binary": str(bins / "codex"),
                  "env": ["OPENAI_API_KEY", "CODEX_API_KEY", "CODEX_HOME"]},
        "gemini": {"adapter": "gemini", "binary": str(bins / "gemini"),
                   "env": ["GEMINI_API_KEY", "GOOGLE_API_KEY", "GOOGLE_GENAI_USE_VERTEXAI"]},
    }  # fmt: skip
    for name, changes in overrides.items():
        tools[name] = {**tools[name], **changes}
    return tools


def doctor(
    root: Path, tools: dict[str, dict[str, Any]], keys: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    files = base_config()
    files["tools.yaml"]["tools"] = tools
    files["agents.yaml"]["agents"] = {"worker": {"preferred_tool": next(iter(tools))}}
    files["policies.yaml"] = {}
    write_config(root, files)
    return orchestrator(root, "doctor", env=cli_env(root.parent, keys))


def block(out: str, name: str) -> list[str]:
    """The lines doctor printed for the tool `name`."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line[3:].startswith(f"{name} ["))
    end = next(
        (i for i in range(start + 1, len(lines)) if not lines[i].startswith(" ")), len(lines)
    )
    return lines[start:end]


def test_installed_clis_without_a_key_are_not_ready(workspace: Path) -> None:
    done = doctor(workspace, real_tools(), {})
    assert done.returncode == 1, done.stderr
    out = done.stdout
    claude = block(out, "claude-code")
    assert claude[0].startswith("!! claude-code [claude-code]: ")
    assert "(2.1.332 (Claude Code))" in claude[0]  # installed: the key is what is missing
    assert claude[1:] == [
        "     key: NOT set (ANTHROPIC_API_KEY or ANTHROPIC_AUTH_TOKEN or CLAUDE_CODE_OAUTH_TOKEN "
        "is required)",
        "     fix: set ANTHROPIC_API_KEY or ANTHROPIC_AUTH_TOKEN or CLAUDE_CODE_OAUTH_TOKEN, or "
        "log in with `claude auth`",
        "     optional: ANTHROPIC_BASE_URL NOT set, CLAUDE_CONFIG_DIR NOT set",
    ]
    assert block(out, "codex")[1:] == [
        "     key: OPENAI_API_KEY does not count: codex's built-in provider does not read it "
        "(it does with base_url set)",
        "     key: NOT set (CODEX_API_KEY is required)",
        "     fix: set CODEX_API_KEY, or log in with `codex login`",
        "     optional: CODEX_HOME NOT set",
    ]
    assert block(out, "gemini")[1:] == [  # its own GEMINI_CLI_HOME: no login to offer
        "     key: GOOGLE_API_KEY does not count: gemini reads it only with "
        "GOOGLE_GENAI_USE_VERTEXAI=true (Vertex AI)",
        "     key: NOT set (GEMINI_API_KEY or GOOGLE_API_KEY with GOOGLE_GENAI_USE_VERTEXAI=true "
        "is required)",
        "     fix: set GEMINI_API_KEY or GOOGLE_API_KEY with GOOGLE_GENAI_USE_VERTEXAI=true",
    ]
    assert out.splitlines()[-1] == "0 of 3 tools ready; 3 need attention"


def test_each_way_a_cli_takes_its_key_makes_it_ready(workspace: Path) -> None:
    keys = {"ANTHROPIC_AUTH_TOKEN": "tok-secret", "CODEX_API_KEY": "sk-secret",
            "GOOGLE_API_KEY": "g-secret", "GOOGLE_GENAI_USE_VERTEXAI": "true",
            "ANTHROPIC_BASE_URL": "http://127.0.0.1:9"}  # fmt: skip
    done = doctor(workspace, real_tools(), keys)
    assert done.returncode == 0, done.stdout
    out = done.stdout
    assert block(out, "claude-code")[0].startswith("ok claude-code")
    assert block(out, "claude-code")[1:] == [
        "     key: ANTHROPIC_AUTH_TOKEN set",
        "     optional: ANTHROPIC_BASE_URL set, CLAUDE_CONFIG_DIR NOT set",
    ]
    assert "     key: CODEX_API_KEY set" in block(out, "codex")
    assert "     key: GOOGLE_API_KEY and GOOGLE_GENAI_USE_VERTEXAI set" in block(out, "gemini")
    assert out.splitlines()[-1] == "3 of 3 tools ready"
    assert "secret" not in out
    # with base_url, codex's custom provider reads OPENAI_API_KEY, gemini GEMINI_API_KEY only
    tools = real_tools(codex={"base_url": "http://x/v1"}, gemini={"base_url": "http://x"})
    done = doctor(workspace, tools, {**keys, "OPENAI_API_KEY": "sk-secret"})
    assert done.returncode == 1
    assert "     key: OPENAI_API_KEY set" in block(done.stdout, "codex")
    assert block(done.stdout, "gemini")[1:3] == [
        "     key: GOOGLE_API_KEY does not count: with base_url gemini reads GEMINI_API_KEY only",
        "     key: NOT set (GEMINI_API_KEY is required)",
    ]


def test_a_plans_token_makes_claude_ready(workspace: Path) -> None:
    done = doctor(workspace, real_tools(), {"CLAUDE_CODE_OAUTH_TOKEN": "sk-ant-oat01-secret"})
    assert block(done.stdout, "claude-code")[0].startswith("ok claude-code"), done.stdout
    assert "     key: CLAUDE_CODE_OAUTH_TOKEN set" in block(done.stdout, "claude-code")
    assert "secret" not in done.stdout


def test_a_key_set_but_not_listed_never_reaches_the_tool(workspace: Path) -> None:
    tools = real_tools(codex={"env": ["CODEX_HOME"]})
    del tools["gemini"]
    done = doctor(workspace, tools, {"CODEX_API_KEY": "sk-x", "ANTHROPIC_API_KEY": "sk-y"})
    assert done.returncode == 1
    codex = block(done.stdout, "codex")
    assert codex[0].startswith("!! codex [codex]")
    assert codex[1:3] == [
        "     key: CODEX_API_KEY set here but not listed under tools.codex.env, "
        "so codex does not get it",
        "     fix: add CODEX_API_KEY to tools.codex.env in config/tools.yaml, "
        "or log in with `codex login`",
    ]
    assert done.stdout.splitlines()[-1] == "1 of 2 tools ready; 1 need attention"


def test_a_stored_login_may_do_instead_of_a_key(workspace: Path) -> None:
    home = workspace.parent / "home"
    (home / ".claude").mkdir(parents=True)
    (home / ".claude" / ".credentials.json").write_text("{}")
    (home / ".codex").mkdir()  # what any codex run leaves: no login in it
    tools = real_tools()
    del tools["gemini"]
    done = doctor(workspace, tools, {})
    assert done.returncode == 1  # codex has neither a key nor a login
    claude = block(done.stdout, "claude-code")
    assert claude[0].startswith("?? claude-code")
    assert claude[1:] == [
        f"     key: no key; may use a stored login in {home / '.claude'} "
        "(CLAUDE_CONFIG_DIR; not checked)",
        "     optional: ANTHROPIC_BASE_URL NOT set, CLAUDE_CONFIG_DIR NOT set",
    ]
    assert block(done.stdout, "codex")[0].startswith("!! codex")
    assert done.stdout.splitlines()[-1] == (
        "0 of 2 tools ready; 1 may use a stored login (not checked); 1 need attention"
    )

    (home / ".codex" / "auth.json").write_text("{}")  # what `codex login` writes
    config_dir = workspace.parent / "claude-config"  # the folder the tool is told to use
    done = doctor(workspace, tools, {"CLAUDE_CONFIG_DIR": str(config_dir)})
    assert done.returncode == 1, done.stdout
    assert "     key: NOT set (ANTHROPIC_API_KEY" in block(done.stdout, "claude-code")[1]
    config_dir.mkdir()
    (config_dir / ".credentials.json").write_text("{}")
    done = doctor(workspace, tools, {"CLAUDE_CONFIG_DIR": str(config_dir)})
    assert done.returncode == 0, done.stdout
    assert f"stored login in {config_dir} (CLAUDE_CONFIG_DIR" in done.stdout
    assert f"stored login in {home / '.codex'} (CODEX_HOME" in done.stdout
    assert done.stdout.splitlines()[-1] == (
        "0 of 2 tools ready; 2 may use a stored login (not checked)"
    )


def test_runs_that_cannot_use_a_login_need_the_key(workspace: Path) -> None:
    """`claude --bare` reads only the key; codex with base_url gets a custom provider."""
    home = workspace.parent / "home"
    for folder, name in ((".claude", ".credentials.json"), (".codex", "auth.json")):
        (home / folder).mkdir(parents=True)
        (home / folder / name).write_text("{}")
    overrides: dict[str, dict[str, Any]] = {
        "claude-code": {"extra_args": ["--bare"]},
        "codex": {"base_url": "http://x/v1"},
    }
    tools = real_tools(**overrides)
    del tools["gemini"]
    done = doctor(workspace, tools, {})
    assert done.returncode == 1
    assert block(done.stdout, "claude-code")[1:3] == [
        "     key: NOT set (ANTHROPIC_API_KEY or ANTHROPIC_AUTH_TOKEN is required)",
        "     fix: set ANTHROPIC_API_KEY or ANTHROPIC_AUTH_TOKEN",
    ]
    assert block(done.stdout, "codex")[1:3] == [
        "     key: NOT set (OPENAI_API_KEY is required)",
        "     fix: set OPENAI_API_KEY",
    ]
    assert done.stdout.splitlines()[-1] == "0 of 2 tools ready; 2 need attention"
