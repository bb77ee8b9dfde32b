"""`orchestrator doctor`: is every configured tool installed, which version, and are the
environment variables it declares set? Values are never printed, only whether they are set.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

from orchestrator.config import resolve_binary

if TYPE_CHECKING:
    from pathlib import Path

    from orchestrator.config import Config, ToolConfig

INSTALL_HINTS = {
    "claude-code": "npm i -g @anthropic-ai/claude-code",
    "codex": "npm i -g @openai/codex",
    "gemini": "npm i -g @google/gemini-cli",
}
VERSION_TIMEOUT_S = 15.0


@dataclass(frozen=True)
class ToolCheck:
    name: str
    adapter: str
    binary: str
    path: str | None
    version: str | None
    env: dict[str, bool]  # declared variable -> set?
    hint: str

    @property
    def ok(self) -> bool:
        return self.path is not None and self.version is not None


def _version(path: str) -> str | None:
    try:
        done = subprocess.run(
            [path, "--version"],
            capture_output=True,
            text=True,
            timeout=VERSION_TIMEOUT_S,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    lines = (done.stdout or done.stderr).strip().splitlines()
    return lines[0].strip() if done.returncode == 0 and lines else None


def _check(name: str, tool: ToolConfig, root: Path) -> ToolCheck:
    path = shutil.which(resolve_binary(tool.binary, root))
    version = _version(path) if path else None
    if path is None:
        hint = INSTALL_HINTS.get(tool.adapter, f"install {tool.binary} or fix its path")
    elif version is None:
        hint = f"{path} --version failed: is it the right program?"
    else:
        hint = ""
    env = {var: bool(os.environ.get(var)) for var in tool.env}
    return ToolCheck(name, tool.adapter, tool.binary, path, version, env, hint)


def check_tools(config: Config) -> list[ToolCheck]:
    """Check every tool at once (some CLIs take seconds to print their version)."""
    with ThreadPoolExecutor(max_workers=max(1, len(config.tools))) as pool:
        return list(
            pool.map(lambda item: _check(item[0], item[1], config.root), config.tools.items())
        )


def render(checks: list[ToolCheck]) -> str:
    lines = []
    for c in checks:
        mark = "ok " if c.ok else "!! "
        where = f"{c.path} ({c.version})" if c.ok else (c.path or f"{c.binary}: not found")
        lines.append(f"{mark}{c.name} [{c.adapter}]: {where}")
        if c.hint:
            lines.append(f"     fix: {c.hint}")
        if c.env:
            state = ", ".join(f"{var} {'set' if ok else 'NOT set'}" for var, ok in c.env.items())
            lines.append(f"     env: {state}")
    missing = sum(not c.ok for c in checks)
    lines.append(
        f"{len(checks) - missing} of {len(checks)} tools ready"
        + (f"; {missing} need attention" if missing else "")
    )
    return "\n".join(lines)
