"""`orchestrator doctor`: is every configured tool installed, which version, and can it
authenticate? Values are never printed, only whether variables are set.

A tool process gets only PATH, HOME and the like plus the variables listed under its
`env:` (engine.tool_env), so a key counts only when it is listed *and* set: one set in
this shell but not listed never reaches the tool, and doctor says so. The built-in
adapters need a key (`auth_for`); the other listed variables are optional. Where the CLI
may use a login it stored instead, and its credentials file is there, doctor cannot tell
whether the login is still valid: the tool "may use a stored login", is not counted as
ready, and does not fail the exit status. Generic tools declare no key: their listed
variables are shown, none is required. Then every registered adapter (built-in or plugin:
docs/plugins.md) with its package and version, each imported to find the ones that fail;
a tool whose adapter cannot be loaded needs attention.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from orchestrator.adapters import GROUP, Plugin, load, plugins
from orchestrator.config import resolve_binary
from orchestrator.errors import PluginError

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

    from orchestrator.config import Config, ToolConfig

INSTALL_HINTS = {
    "claude-code": "npm i -g @anthropic-ai/claude-code",
    "codex": "npm i -g @openai/codex",
    "gemini": "npm i -g @google/gemini-cli",
}
VERSION_TIMEOUT_S = 15.0
FLAGS = frozenset({"GOOGLE_GENAI_USE_VERTEXAI"})  # set means "true"


@dataclass(frozen=True)
class Login:
    """A login the CLI keeps in a folder: `var` names it, else `~/<default>`."""

    var: str
    default: str
    file: str  # the credentials file in it
    command: str  # how to make one
    keychain: bool = False  # on macOS the credentials are in the keychain instead


@dataclass(frozen=True)
class Auth:
    """How a CLI authenticates as its adapter runs it: any one of `ways` (variables that
    must all reach it), or a stored `login`. `ignored`: variables people expect it to
    read, and why it does not."""

    ways: tuple[tuple[str, ...], ...]
    login: Login | None = None
    ignored: dict[str, str] = field(default_factory=dict)


# Measured with the pinned CLIs (tests/clis) against a local server that records the
# auth headers: claude sends ANTHROPIC_API_KEY (x-api-key) or ANTHROPIC_AUTH_TOKEN
# (Bearer), and without either says "Not logged in" (a plan's CLAUDE_CODE_OAUTH_TOKEN also
# does: tests/test_usage_windows.py runs claude signed in that way); codex's built-in provider sends
# CODEX_API_KEY or the key `codex login` stored in CODEX_HOME/auth.json, never
# OPENAI_API_KEY from the environment, while the custom provider the adapter defines for
# base_url sends OPENAI_API_KEY only; gemini exits 41 with GOOGLE_API_KEY alone.
CLAUDE_LOGIN = Login("CLAUDE_CONFIG_DIR", ".claude", ".credentials.json", "claude auth", True)
CODEX_LOGIN = Login("CODEX_HOME", ".codex", "auth.json", "codex login")


def auth_for(tool: ToolConfig) -> Auth | None:
    """What a tool of a built-in adapter needs to authenticate; None for a generic tool."""
    if tool.adapter == "claude-code":  # --bare reads the key only, never a login
        keys: tuple[tuple[str, ...], ...] = (("ANTHROPIC_API_KEY",), ("ANTHROPIC_AUTH_TOKEN",))
        if "--bare" in tool.extra_args:
            return Auth(keys)
        # a plan's long-lived token (`claude setup-token`), sent as a bearer token
        return Auth((*keys, ("CLAUDE_CODE_OAUTH_TOKEN",)), CLAUDE_LOGIN)
    if tool.adapter == "codex":
        if tool.base_url is not None:
            return Auth((("OPENAI_API_KEY",),))
        why = "codex's built-in provider does not read it (it does with base_url set)"
        return Auth((("CODEX_API_KEY",),), CODEX_LOGIN, {"OPENAI_API_KEY": why})
    if tool.adapter == "gemini":  # its own GEMINI_CLI_HOME: a login in ~/.gemini is unseen
        if tool.base_url is not None:  # the adapter selects API-key auth
            why = "with base_url gemini reads GEMINI_API_KEY only"
            return Auth((("GEMINI_API_KEY",),), ignored={"GOOGLE_API_KEY": why})
        vertex = ("GOOGLE_API_KEY", "GOOGLE_GENAI_USE_VERTEXAI")
        why = "gemini reads it only with GOOGLE_GENAI_USE_VERTEXAI=true (Vertex AI)"
        return Auth((("GEMINI_API_KEY",), vertex), ignored={"GOOGLE_API_KEY": why})
    return None


@dataclass(frozen=True)
class Keys:
    """What a tool of a built-in adapter has to authenticate with."""

    auth: Auth
    met: tuple[str, ...]  # the variables of the first way that reaches the tool, or ()
    unlisted: tuple[str, ...]  # needed, set here, but not listed: the tool does not get them
    ignored: tuple[str, ...]  # listed or set, but not read by the CLI as it is run
    login: str | None  # where a stored login was found, when no way is met


@dataclass(frozen=True)
class ToolCheck:
    name: str
    adapter: str
    binary: str
    path: str | None
    version: str | None
    env: dict[str, bool]  # listed variable -> set?
    hint: str
    keys: Keys | None = None  # None: a generic tool, no key required
    broken: bool = False  # its adapter plugin cannot be loaded (the hint says why)

    @property
    def installed(self) -> bool:
        return self.path is not None and self.version is not None and not self.broken

    @property
    def ok(self) -> bool:
        return self.installed and (self.keys is None or bool(self.keys.met))

    @property
    def maybe(self) -> bool:
        """Installed, no key, but a stored login it may use: doctor cannot tell."""
        keys = self.keys
        return self.installed and keys is not None and not keys.met and keys.login is not None

    @property
    def needs_attention(self) -> bool:
        return not self.ok and not self.maybe


def _is_set(var: str, environ: Mapping[str, str]) -> bool:
    value = environ.get(var, "")
    return value.strip().lower() == "true" if var in FLAGS else bool(value)


def login_folder(tool: ToolConfig, environ: Mapping[str, str]) -> str | None:
    """The folder where the tool's CLI looks for a stored login, in the environment the
    tool gets (HOME always, the login variable when listed); None when it uses none."""
    auth = auth_for(tool)
    if auth is None or auth.login is None:
        return None
    if auth.login.var in tool.env and environ.get(auth.login.var):
        return environ[auth.login.var]
    home = environ.get("HOME")
    return os.path.join(home, auth.login.default) if home else None


def key_state(tool: ToolConfig, environ: Mapping[str, str], login: str | None) -> Keys | None:
    """The keys of a built-in adapter's tool; `login`: where a stored login was found."""
    auth = auth_for(tool)
    if auth is None:
        return None
    reaching = [w for w in auth.ways if all(v in tool.env and _is_set(v, environ) for v in w)]
    needed = dict.fromkeys(v for way in auth.ways for v in way)
    return Keys(
        auth=auth,
        met=reaching[0] if reaching else (),
        unlisted=tuple(v for v in needed if _is_set(v, environ) and v not in tool.env),
        ignored=tuple(v for v in auth.ignored if v in tool.env or environ.get(v)),
        login=None if reaching else login,
    )


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


def _stored_login(tool: ToolConfig) -> str | None:
    """Where the tool's CLI keeps a login it would use, when there is one."""
    auth = auth_for(tool)
    folder = login_folder(tool, os.environ)
    if auth is None or auth.login is None or folder is None:
        return None
    if auth.login.keychain and sys.platform == "darwin":
        return "the macOS keychain"
    return folder if os.path.isfile(os.path.join(folder, auth.login.file)) else None


def _check(name: str, tool: ToolConfig, root: Path) -> ToolCheck:
    path = shutil.which(resolve_binary(tool.binary, root))
    version = _version(path) if path else None
    if path is None:
        hint = (
            INSTALL_HINTS.get(tool.adapter)
            or _install_hint(tool.adapter)
            or (f"install {tool.binary} or fix its path")
        )
    elif version is None:
        hint = f"{path} --version failed: is it the right program?"
    else:
        hint = ""
    env = {var: bool(os.environ.get(var)) for var in tool.env}
    keys = key_state(tool, os.environ, _stored_login(tool))
    broken = _load_error(tool.adapter)
    hint = broken or hint
    check = ToolCheck(name, tool.adapter, tool.binary, path, version, env, hint, keys)
    return replace(check, broken=broken is not None)


@dataclass(frozen=True)
class PluginCheck:
    """A registered adapter (orchestrator.adapters entry point) and whether it loads."""

    plugin: Plugin
    error: str | None


def _install_hint(name: str) -> str | None:
    """A plugin's `install_hint` (how to install its CLI), when it loads and has one."""
    try:
        hint = getattr(load(name), "install_hint", None)
    except PluginError:
        return None
    return hint if isinstance(hint, str) else None


def _load_error(name: str) -> str | None:
    try:
        load(name)
    except PluginError as exc:
        return str(exc)
    return None


def check_plugins() -> list[PluginCheck]:
    """Every registered adapter, imported now (doctor is the place to find a broken one)."""
    return [PluginCheck(plugin, _load_error(name)) for name, plugin in plugins().items()]


def plugin_lines(checks: list[PluginCheck]) -> list[str]:
    lines = [f"adapters (entry points {GROUP!r}):"]
    for c in checks:
        plugin = c.plugin
        origin = f"{plugin.package} {plugin.version}" + (" (built in)" if plugin.builtin else "")
        lines.append(f"{'ok ' if c.error is None else '!! '}{plugin.name}: {origin}")
        if c.error is not None:
            lines.append(f"     {c.error}")
        if plugin.shadowed:
            lines.append(f"     also registered by {', '.join(plugin.shadowed)}: ignored")
    return lines


def check_tools(config: Config) -> list[ToolCheck]:
    """Check every tool at once (some CLIs take seconds to print their version)."""
    with ThreadPoolExecutor(max_workers=max(1, len(config.tools))) as pool:
        return list(
            pool.map(lambda item: _check(item[0], item[1], config.root), config.tools.items())
        )


def _way(way: tuple[str, ...]) -> str:
    return " with ".join(f"{v}=true" if v in FLAGS else v for v in way)


def _key_lines(c: ToolCheck, keys: Keys) -> list[str]:
    """The `key:` lines and what to do, for a tool of a built-in adapter."""
    auth = keys.auth
    if keys.met:
        return [f"key: {' and '.join(keys.met)} set"]
    lines = [f"key: {v} does not count: {auth.ignored[v]}" for v in keys.ignored]
    if keys.unlisted:
        names = " and ".join(keys.unlisted)
        lines.append(
            f"key: {names} set here but not listed under tools.{c.name}.env, "
            f"so {c.name} does not get it"
        )
    elif keys.login is None:
        lines.append(f"key: NOT set ({' or '.join(map(_way, auth.ways))} is required)")
    if keys.login is not None:
        var = auth.login.var if auth.login else ""
        lines.append(f"key: no key; may use a stored login in {keys.login} ({var}; not checked)")
        if not keys.unlisted:
            return lines  # the login may well work: nothing to fix for sure
    listed = [w for w in auth.ways if all(v in c.env for v in w)]
    if keys.unlisted:
        fix = f"add {' and '.join(keys.unlisted)} to tools.{c.name}.env in config/tools.yaml"
    elif listed:
        fix = f"set {' or '.join(map(_way, listed))}"
    else:
        fix = f"set {_way(auth.ways[0])} and list it under tools.{c.name}.env in config/tools.yaml"
    if keys.login is None and auth.login is not None:
        fix += f", or log in with `{auth.login.command}`"
    return [*lines, f"fix: {fix}"]


def render(checks: list[ToolCheck], adapters: list[PluginCheck] | None = None) -> str:
    """The tools, then the adapters (checked now when not given), then a summary."""
    lines = []
    for c in checks:
        mark = "ok " if c.ok else ("?? " if c.maybe else "!! ")
        where = f"{c.path} ({c.version})" if c.installed else (c.path or f"{c.binary}: not found")
        lines.append(f"{mark}{c.name} [{c.adapter}]: {where}")
        if c.hint:
            lines.append(f"     fix: {c.hint}")
        keys = c.keys
        if keys is not None:
            lines += [f"     {line}" for line in _key_lines(c, keys)]
        skip = set() if keys is None else {v for w in keys.auth.ways for v in w}
        skip |= set() if keys is None else set(keys.auth.ignored)
        if shown := {var: ok for var, ok in c.env.items() if var not in skip}:
            state = ", ".join(f"{var} {'set' if ok else 'NOT set'}" for var, ok in shown.items())
            lines.append(f"     {'env' if keys is None else 'optional'}: {state}")
    lines += plugin_lines(check_plugins() if adapters is None else adapters)
    ready = sum(c.ok for c in checks)
    maybe = sum(c.maybe for c in checks)
    missing = sum(c.needs_attention for c in checks)
    lines.append(
        f"{ready} of {len(checks)} tools ready"
        + (f"; {maybe} may use a stored login (not checked)" if maybe else "")
        + (f"; {missing} need attention" if missing else "")
    )
    return "\n".join(lines)
