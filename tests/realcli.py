"""Helpers for tests that run the real agent CLIs (claude, codex, gemini) against the fake API.

The CLIs are the pinned npm packages of ``tests/clis/package-lock.json``, installed once by
``scripts/install-test-clis`` (or found through ``ORCHESTRATOR_TEST_CLI_BIN``). Each run gets
its own HOME and an environment built from scratch, so nothing of the developer's real home
directory, credentials or proxies leaks in, and every provider URL points at the fake API.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

__all__ = [
    "CLI_BIN_ENV",
    "CLI_NAMES",
    "CODEX_OFFLINE_ARGS",
    "FAIL_FAST_ENV",
    "REPO_ROOT",
    "cli_bin_dir",
    "cli_path",
    "codex_config_args",
    "isolated_env",
    "run_cli",
    "write_gemini_settings",
]

REPO_ROOT = Path(__file__).resolve().parent.parent
CLI_BIN_ENV = "ORCHESTRATOR_TEST_CLI_BIN"
CLI_NAMES = ("claude", "codex", "gemini")
INSTALL_SCRIPT = REPO_ROOT / "scripts" / "install-test-clis"

ANTHROPIC_FAKE_KEY = "sk-ant-fake"
OPENAI_FAKE_KEY = "sk-fake-openai"
GEMINI_FAKE_KEY = "fake-gemini-key"

# Knobs that make each CLI fail at the first API error instead of retrying for minutes, and
# start gemini without its second node process. Pass as ``extra`` (codex and gemini take
# theirs from ``codex_config_args`` and ``write_gemini_settings``).
FAIL_FAST_ENV: Mapping[str, str] = {
    "CLAUDE_CODE_MAX_RETRIES": "0",
    "GEMINI_CLI_NO_RELAUNCH": "true",
}


def cli_bin_dir() -> Path:
    """The folder holding the ``claude``, ``codex`` and ``gemini`` executables.

    ``$ORCHESTRATOR_TEST_CLI_BIN`` when set, else what ``scripts/install-test-clis`` prints
    (it installs the pinned CLIs once, then answers from its cache). Raises RuntimeError when
    neither gives a usable folder: tests that need the CLIs must fail, not skip.
    """
    configured = os.environ.get(CLI_BIN_ENV)
    folder = Path(configured) if configured else _installed_bin_dir()
    missing = [name for name in CLI_NAMES if not (folder / name).exists()]
    if missing:
        raise RuntimeError(f"{folder} lacks the agent CLIs {', '.join(missing)}")
    return folder


@functools.cache
def _installed_bin_dir() -> Path:
    try:
        done = subprocess.run(
            [str(INSTALL_SCRIPT)],
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise RuntimeError(f"could not run {INSTALL_SCRIPT}: {exc}") from exc
    if done.returncode != 0 or not done.stdout.strip():
        raise RuntimeError(
            f"{INSTALL_SCRIPT} failed (exit {done.returncode}); set {CLI_BIN_ENV} to a folder"
            f" holding claude, codex and gemini.\n{done.stderr.strip()}"
        )
    return Path(done.stdout.strip().splitlines()[-1])


def cli_path(name: str) -> Path:
    """The executable of one CLI: ``claude``, ``codex`` or ``gemini``."""
    return cli_bin_dir() / name


def _search_path(bin_dir: Path) -> str:
    """PATH for a CLI run: the CLIs, the folder of ``node`` (codex and gemini run on it), the
    system folders."""
    folders = [str(bin_dir)]
    node = _node_dir()
    if node is not None:
        folders.append(str(node))
    folders += ["/usr/local/bin", "/usr/bin", "/bin"]
    return ":".join(dict.fromkeys(folders))


@functools.cache
def _node_dir() -> Path | None:
    for folder in os.environ.get("PATH", "").split(os.pathsep):
        candidate = Path(folder) / "node"
        if folder and candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate.resolve().parent
    return None


def isolated_env(
    home: Path, base_url: str, *, extra: Mapping[str, str] | None = None
) -> dict[str, str]:
    """A minimal environment to run a CLI in, with every provider pointed at ``base_url``.

    Nothing is inherited from the current environment but the location of ``node``: HOME is
    ``home`` (created), TMPDIR ``home/tmp`` (created; gemini writes error reports there),
    the XDG folders live under ``home``. ``base_url`` is the fake API's root
    (``http://127.0.0.1:PORT``, no ``/v1``). ``extra`` is applied last and wins.
    """
    tmp = home / "tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    env = {
        "PATH": _search_path(cli_bin_dir()),
        "HOME": str(home),
        "TMPDIR": str(tmp),
        "LANG": "C.UTF-8",
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "XDG_DATA_HOME": str(home / ".local" / "share"),
        "XDG_STATE_HOME": str(home / ".local" / "state"),
        "NO_PROXY": "127.0.0.1,localhost",
        # claude
        "ANTHROPIC_BASE_URL": base_url,
        "ANTHROPIC_API_KEY": ANTHROPIC_FAKE_KEY,
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "DISABLE_AUTOUPDATER": "1",
        "DISABLE_TELEMETRY": "1",
        # codex (its custom provider, see codex_config_args, reads OPENAI_API_KEY)
        "OPENAI_API_KEY": OPENAI_FAKE_KEY,
        "OPENAI_BASE_URL": f"{base_url}/v1",
        # gemini (also needs write_gemini_settings: the base URL alone selects an auth type
        # headless runs reject)
        "GOOGLE_GEMINI_BASE_URL": base_url,
        "GEMINI_API_KEY": GEMINI_FAKE_KEY,
    }
    env.update(extra or {})
    return env


# Codex otherwise resolves github.com, api.github.com and chatgpt.com (plugin catalogue) and
# ab.chatgpt.com (metrics) in the background, even with a custom provider.
CODEX_OFFLINE_ARGS = ("-c", "features.plugins=false", "-c", "analytics.enabled=false")


def codex_config_args(base_url: str, *, retries: int = 0) -> list[str]:
    """``-c`` options for ``codex exec``: talk to the fake API over the Responses wire API
    (key from ``OPENAI_API_KEY``), and make no other network lookups.

    ``retries`` sets ``request_max_retries`` and ``stream_max_retries`` (0: fail at the
    first error). Put the options after ``exec``.
    """
    provider = (
        f'{{name="fake",base_url="{base_url}/v1",env_key="OPENAI_API_KEY",'
        f'wire_api="responses",request_max_retries={retries},stream_max_retries={retries}}}'
    )
    return [
        "-c",
        "model_provider=fake",
        "-c",
        f"model_providers.fake={provider}",
        *CODEX_OFFLINE_ARGS,
    ]


def write_gemini_settings(home: Path, *, max_attempts: int = 1) -> Path:
    """Write ``home/.gemini/settings.json`` for API-key auth, no usage statistics, and
    ``max_attempts`` tries per model call; returns its path."""
    settings = {
        "security": {"auth": {"selectedType": "gemini-api-key"}},
        "privacy": {"usageStatisticsEnabled": False},
        "general": {"maxAttempts": max_attempts},
    }
    path = home / ".gemini" / "settings.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(settings, indent=2) + "\n")
    return path


def run_cli(
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    cwd: Path,
    stdin: str | None = None,
    timeout: float = 90,
) -> subprocess.CompletedProcess[str]:
    """Run a CLI to completion and capture its output; ``argv[0]`` is a name from
    :data:`CLI_NAMES` or a path. Without ``stdin`` the CLI reads an empty stdin
    (``/dev/null``: codex would otherwise wait on a pipe)."""
    program = argv[0] if "/" in argv[0] else str(cli_path(argv[0]))
    return subprocess.run(
        [program, *argv[1:]],
        env=dict(env),
        cwd=cwd,
        input=stdin,
        stdin=subprocess.DEVNULL if stdin is None else None,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
