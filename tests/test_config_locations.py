"""Where config is read from: the user folder per platform, ORCHESTRATOR_CONFIG_DIR, the
workspace's config/ merged over them, and what `config validate` says about it."""

from __future__ import annotations

from pathlib import Path, PureWindowsPath
from typing import TYPE_CHECKING, Any

import pytest
import yaml
from platformdirs.macos import MacOS
from platformdirs.unix import Unix
from platformdirs.windows import Windows

from orchestrator.config import load_config
from orchestrator.configdirs import Folder, config_folders, locate, merge, user_config_dir
from orchestrator.errors import ConfigError
from tests.conftest import base_config, cli_env, drop_task, orchestrator, write_config

if TYPE_CHECKING:
    import subprocess

# --- the folders, as pure functions -----------------------------------------------------


@pytest.mark.parametrize(
    ("env", "base"),
    [
        ({}, Folder(Path("/u/orchestrator"), "user")),
        ({"ORCHESTRATOR_CONFIG_DIR": ""}, Folder(Path("/u/orchestrator"), "user")),
        ({"ORCHESTRATOR_CONFIG_DIR": "/team/cfg"}, Folder(Path("/team/cfg"), "env")),
    ],
)
def test_config_folders_base_first_then_the_workspace(env: dict[str, str], base: Folder) -> None:
    folders = config_folders(Path("/ws"), env, Path("/u/orchestrator"))
    assert folders == [base, Folder(Path("/ws/config"), "workspace")]


@pytest.mark.parametrize(
    ("base", "override", "merged"),
    [
        ({"a": 1, "b": 2}, {"b": 3}, {"a": 1, "b": 3}),
        ({"a": {"x": 1, "y": 2}}, {"a": {"y": 3}}, {"a": {"x": 1, "y": 3}}),
        ({"a": [1, 2]}, {"a": [3]}, {"a": [3]}),  # lists are replaced, not merged
        ({"a": {"x": 1}}, {"a": None}, {"a": None}),  # the workspace's value wins
        ({"a": 1}, {"b": {"c": 2}}, {"a": 1, "b": {"c": 2}}),
        ({"a": "text"}, {"a": {"x": 1}}, {"a": {"x": 1}}),
    ],
)
def test_merge_key_by_key(base: Any, override: Any, merged: Any) -> None:
    before = repr(base)
    assert merge(base, override) == merged
    assert repr(base) == before


# --- the user folder on each platform (simulated: only Linux runs here) --------------------


def test_linux_uses_xdg_config_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    assert user_config_dir(Unix) == tmp_path / "xdg" / "orchestrator"


def test_linux_defaults_to_dot_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert user_config_dir(Unix) == tmp_path / ".config" / "orchestrator"


def test_wsl_and_linux_follow_the_linux_rules(monkeypatch: pytest.MonkeyPatch) -> None:
    """WSL's Python is a Linux Python: the folder is the Linux one, not `%APPDATA%`."""
    monkeypatch.setenv("XDG_CONFIG_HOME", "/xdg")
    monkeypatch.setenv("APPDATA", r"C:\Users\ada\AppData\Roaming")
    assert user_config_dir() == user_config_dir(Unix) == Path("/xdg/orchestrator")


def test_macos_uses_application_support(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    expected = tmp_path / "Library" / "Application Support" / "orchestrator"
    assert user_config_dir(MacOS) == expected


def test_windows_uses_roaming_appdata(monkeypatch: pytest.MonkeyPatch) -> None:
    # platformdirs asks Windows itself for the folder; this variable is its documented
    # override, and the only way to answer for Windows on another system.
    monkeypatch.setenv("WIN_PD_OVERRIDE_APPDATA", r"C:\Users\ada\AppData\Roaming")
    found = PureWindowsPath(user_config_dir(Windows))
    assert found == PureWindowsPath(r"C:\Users\ada\AppData\Roaming\orchestrator")


# --- loading: merge and provenance (real files, no monkeypatching) -------------------------


def folders(tmp_path: Path) -> tuple[Path, Path]:
    """A workspace without config/ and an empty user folder, both under tmp_path."""
    root, user = tmp_path / "ws", tmp_path / "user" / "orchestrator"
    root.mkdir()
    user.mkdir(parents=True)
    return root, user


def write(folder: Path, files: dict[str, Any]) -> None:
    for name, data in files.items():
        (folder / name).write_text(yaml.safe_dump(data, sort_keys=False))


def test_the_workspace_replaces_a_list_and_keeps_the_rest(tmp_path: Path) -> None:
    root, user = folders(tmp_path)
    write(user, base_config())
    agents = {"agents": {"chain-missing": {"fallback_chain": ["fake:fake-large"]}}}
    write_config(root, {"agents.yaml": agents})
    config = load_config(root, locate(root, {}, user))
    assert config.agents["chain-missing"].fallback_chain == ["fake:fake-large"]
    assert config.agents["chain-missing"].preferred_tool == "missing"  # from the user folder
    assert config.agents["worker"].preferred_model == "fake-large"


def problems(root: Path, user: Path) -> list[str]:
    """The problems' texts, the workspace's (`config/…`) first."""
    with pytest.raises(ConfigError) as info:
        load_config(root, locate(root, {}, user))
    return sorted((str(p) for p in info.value.problems), key=lambda p: not p.startswith("config/"))


def test_problems_name_the_file_the_field_came_from(tmp_path: Path) -> None:
    root, user = folders(tmp_path)
    files = base_config()
    files["agents.yaml"]["agents"]["worker"]["preferred_tool"] = "fkae"
    write(user, files)
    write_config(root, {"agents.yaml": {"agents": {"arg-agent": {"preferred_tool": "nope"}}}})
    found = problems(root, user)
    assert found[0].startswith("config/agents.yaml: agents.arg-agent.preferred_tool: ")
    assert found[1].startswith(f"{user / 'agents.yaml'}: agents.worker.preferred_tool: ")

    files["tools.yaml"]["tools"]["fake"]["timeout"] = "soon"
    write(user, files)
    write_config(root, {"agents.yaml": {"agents": {"worker": {"preferd_model": "fake-small"}}}})
    found = problems(root, user)
    assert found[0].startswith("config/agents.yaml: agents.worker.preferd_model: unknown key")
    assert found[1].startswith(f"{user / 'tools.yaml'}: tools.fake.timeout: ")


# --- through the real command --------------------------------------------------------------


def run(tmp_path: Path, root: Path, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    """The real command with its own HOME under tmp_path, plus `extra` variables."""
    return orchestrator(root, *args, env=cli_env(tmp_path, extra))


def workspace(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    for folder in ("inbox", "outbox", "running", "archive"):
        (root / "work" / folder).mkdir(parents=True)
    return root


def test_a_workspace_without_config_uses_the_xdg_folder(tmp_path: Path) -> None:
    root, xdg = workspace(tmp_path), tmp_path / "xdg"
    (xdg / "orchestrator").mkdir(parents=True)
    write(xdg / "orchestrator", base_config())
    done = run(tmp_path, root, "config", "validate", XDG_CONFIG_HOME=str(xdg))
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("config OK: 5 agents, 5 tools")
    assert f"read {xdg / 'orchestrator' / 'tools.yaml'}\n" in done.stdout

    drop_task(root, "t1.yaml", {"id": "t1", "agent": "worker", "prompt": "hello"})
    done = run(tmp_path, root, "run", "--once", "--dry-run", XDG_CONFIG_HOME=str(xdg))
    assert done.returncode == 0, done.stderr
    assert "1. fake / fake-large (preferred" in done.stdout


def test_a_workspace_without_config_uses_dot_config_in_home(tmp_path: Path) -> None:
    root, user = workspace(tmp_path), tmp_path / "home" / ".config" / "orchestrator"
    user.mkdir(parents=True)
    write(user, base_config())
    drop_task(root, "t1.yaml", {"id": "t1", "agent": "worker", "prompt": "hello"})
    done = run(tmp_path, root, "run", "--once")
    assert done.returncode == 0, done.stderr
    assert (
        yaml.safe_load((root / "work/outbox/t1.result.yaml").read_text())["status"] == "succeeded"
    )


def test_the_workspace_overrides_one_key(tmp_path: Path) -> None:
    root, user = workspace(tmp_path), tmp_path / "home" / ".config" / "orchestrator"
    user.mkdir(parents=True)
    write(user, base_config())
    write_config(root, {"agents.yaml": {"agents": {"worker": {"preferred_model": "fake-small"}}}})
    drop_task(root, "t1.yaml", {"id": "t1", "agent": "worker", "prompt": "hello"})
    done = run(tmp_path, root, "run", "--once", "--dry-run")
    assert done.returncode == 0, done.stderr
    assert "1. fake / fake-small (preferred" in done.stdout  # the tool still from the user's
    done = run(tmp_path, root, "config", "validate")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[1:] == [
        f"read {user / 'agents.yaml'}",
        f"read {root / 'config' / 'agents.yaml'}",
        f"read {user / 'tools.yaml'}",
        f"read {user / 'models.yaml'}",
        f"read {user / 'policies.yaml'}",
    ]


def test_orchestrator_config_dir_takes_the_user_folders_place(tmp_path: Path) -> None:
    root, named = workspace(tmp_path), tmp_path / "team-config"
    user = tmp_path / "home" / ".config" / "orchestrator"
    user.mkdir(parents=True)
    (user / "agents.yaml").write_text("agents: [not, read]\n")  # ignored: not read at all
    named.mkdir()
    write(named, base_config())
    write_config(root, {"policies.yaml": {"budgets": {"daily_usd": 5}}})
    done = run(tmp_path, root, "config", "validate", ORCHESTRATOR_CONFIG_DIR=str(named))
    assert done.returncode == 0, done.stderr
    assert f"read {named / 'agents.yaml'}" in done.stdout
    assert f"read {root / 'config' / 'policies.yaml'}" in done.stdout  # still overrides
    assert str(user) not in done.stdout

    done = run(tmp_path, root, "config", "validate", ORCHESTRATOR_CONFIG_DIR=str(tmp_path / "x"))
    assert done.returncode == 1
    assert f"{tmp_path / 'x'}: ORCHESTRATOR_CONFIG_DIR names no folder" in done.stderr


def test_validate_lists_the_files_read_when_it_fails(tmp_path: Path) -> None:
    root, user = workspace(tmp_path), tmp_path / "home" / ".config" / "orchestrator"
    user.mkdir(parents=True)
    files = base_config()
    files["tools.yaml"]["tools"]["fake"]["adapter"] = "nonesuch"
    write(user, files)
    write_config(root, {"models.yaml": {"models": {"fake-small": {"provider": "elsewhere"}}}})
    done = run(tmp_path, root, "config", "validate")
    assert done.returncode == 1
    assert done.stdout.splitlines() == [
        f"read {user / 'agents.yaml'}",
        f"read {user / 'tools.yaml'}",
        f"read {user / 'models.yaml'}",
        f"read {root / 'config' / 'models.yaml'}",
        f"read {user / 'policies.yaml'}",
    ]
    assert f"  {user / 'tools.yaml'}: tools.fake.adapter: " in done.stderr
    assert "Traceback" not in done.stderr


def test_no_config_anywhere_names_the_places_looked(tmp_path: Path) -> None:
    root = workspace(tmp_path)
    done = run(tmp_path, root, "config", "validate", XDG_CONFIG_HOME=str(tmp_path / "xdg"))
    assert done.returncode == 1
    assert f"{root / 'config'}: no config folder here (run `orchestrator init`" in done.stderr
    assert f"{tmp_path / 'xdg' / 'orchestrator'}: nor in the user config folder" in done.stderr
    assert "Traceback" not in done.stderr
