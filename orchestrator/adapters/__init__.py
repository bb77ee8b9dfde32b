"""Adapters by name: the entry points of the group `orchestrator.adapters` (docs/plugins.md).

The built-in adapters register there too (pyproject.toml). Names come from the installed
packages' metadata, which is read once and imports nothing; `get_adapter(name)` imports
only the adapter asked for. One whose import fails is reported by name and package, and
only the tools that use it fail (`Unloadable`): the other adapters keep working.
"""

from __future__ import annotations

import functools
import logging
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import AfterValidator

from orchestrator.adapters.base import ErrorKind, Invocation, ParsedOutput, ToolFailure
from orchestrator.errors import PluginError

if TYPE_CHECKING:
    from importlib.metadata import EntryPoint

    from orchestrator.adapters.base import Adapter, RunContext, StreamParser
    from orchestrator.config import ToolConfig

log = logging.getLogger(__name__)

GROUP = "orchestrator.adapters"
PACKAGE = "agent-orchestrator"  # this distribution: its entry points are the built-ins
# The built-ins' names, known without reading any metadata (`config validate` on every
# command start); tests/test_plugins.py checks that each is registered as an entry point.
BUILTIN = ("claude-code", "codex", "gemini", "generic")
REQUIRED = ("build", "parse")


@dataclass(frozen=True)
class Plugin:
    """One registered adapter: its name, the package that registers it, and its target
    (`module:attribute`); `shadowed`: other packages registering the same name, ignored."""

    name: str
    package: str
    version: str
    target: str
    shadowed: tuple[str, ...] = ()

    @property
    def builtin(self) -> bool:
        return self.package == PACKAGE


@functools.cache
def plugins() -> dict[str, Plugin]:
    """Every registered adapter by name (sorted), from metadata only: nothing is imported.
    Two packages registering one name: the built-in wins, else the first package by name."""
    from importlib.metadata import entry_points

    found: dict[str, list[EntryPoint]] = {}
    for point in entry_points(group=GROUP):
        found.setdefault(point.name, []).append(point)
    registry = {}
    for name in sorted(found):
        points = sorted(found[name], key=lambda p: (_package(p) != PACKAGE, _package(p)))
        first = points[0]
        version = first.dist.version if first.dist is not None else "?"
        others = tuple(_package(p) for p in points[1:])
        registry[name] = Plugin(name, _package(first), version, first.value, others)
    return registry


def _package(point: EntryPoint) -> str:
    return point.dist.name if point.dist is not None else "(unknown package)"


def is_known(name: str) -> bool:
    return name in BUILTIN or name in plugins()


def known_names() -> list[str]:
    return sorted({*BUILTIN, *plugins()})


def unknown_message(name: str) -> str:
    names = ", ".join(known_names())
    return (
        f"unknown adapter {name!a}: write one of {names} (an adapter plugin must be installed "
        "in the orchestrator's own environment; see docs/plugins.md)"
    )


def _checked(name: str) -> str:
    if not is_known(name):
        raise ValueError(unknown_message(name))
    return name


AdapterName = Annotated[str, AfterValidator(_checked)]  # tools.<name>.adapter in config

_loaded: dict[str, Adapter] = {}


def load(name: str) -> Adapter:
    """The adapter registered as `name`, imported now; PluginError naming the package and
    what to do when it is not registered, fails to import or is not an adapter."""
    if name in _loaded:
        return _loaded[name]
    plugin = plugins().get(name)
    if plugin is None:
        raise PluginError(unknown_message(name))
    point = next(p for p in _entry_points(name) if _package(p) == plugin.package)
    try:
        found = point.load()
    except Exception as exc:  # a third party's import: any error is reported, never hidden
        raise PluginError(_broken(plugin, f"{type(exc).__name__}: {exc}")) from exc
    if isinstance(found, type):
        try:
            found = found()
        except Exception as exc:  # idem: the plugin's own constructor
            raise PluginError(_broken(plugin, f"{type(exc).__name__}: {exc}")) from exc
    missing = [m for m in REQUIRED if not callable(getattr(found, m, None))]
    if missing:
        why = f"{plugin.target} has no {' or '.join(missing)} method: it is not an adapter"
        raise PluginError(_broken(plugin, why))
    adapter = found if _complete(found) else WithDefaults(found)
    _loaded[name] = adapter
    return adapter


def _entry_points(name: str) -> list[EntryPoint]:
    from importlib.metadata import entry_points

    return list(entry_points(group=GROUP, name=name))


def _broken(plugin: Plugin, why: str) -> str:
    return (
        f"adapter {plugin.name!a} from package {plugin.package} {plugin.version} cannot be "
        f"loaded ({why}): reinstall or upgrade {plugin.package}, or uninstall it and remove "
        f"the tools with adapter: {plugin.name} from config/tools.yaml"
    )


def get_adapter(name: str) -> Adapter:
    """The adapter for a tool. A registered adapter that cannot be loaded gives one whose
    runs fail with that error (`Unloadable`), so its tools fall back and others run."""
    try:
        return load(name)
    except PluginError as exc:
        if name not in plugins():
            raise
        log.error("%s", exc)
        adapter = Unloadable(str(exc))
        _loaded[name] = adapter
        return adapter


def _complete(found: object) -> bool:
    return all(hasattr(found, m) for m in ("enforces_budget", "watch_line", "stream"))


class WithDefaults:
    """A plugin's adapter with the optional parts it leaves out: no budget of its own, no
    line that stops a run, no stream parser. Its other attributes (optional hooks) are the
    plugin's own."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.enforces_budget = bool(getattr(inner, "enforces_budget", False))

    def build(self, tool: ToolConfig, model: str | None, prompt: str, ctx: RunContext) -> Any:
        return self.inner.build(tool, model, prompt, ctx)

    def parse(
        self,
        tool: ToolConfig,
        model: str | None,
        stdout: bytes,
        stderr: bytes,
        exit_code: int | None,
    ) -> Any:
        return self.inner.parse(tool, model, stdout, stderr, exit_code)

    def watch_line(self, line: bytes) -> ToolFailure | None:
        watch = getattr(self.inner, "watch_line", None)
        return None if watch is None else watch(line)

    def stream(self, tool: ToolConfig, model: str | None) -> StreamParser | None:
        stream = getattr(self.inner, "stream", None)
        return None if stream is None else stream(tool, model)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class Unloadable:
    """Stands in for an adapter that cannot be loaded: an attempt on its tool runs nothing
    (attempt.py checks for it) and fails as `missing_binary` with the load error, which the
    next tool in the chain follows."""

    enforces_budget = False

    def __init__(self, message: str) -> None:
        self.failure = ToolFailure(
            ErrorKind.MISSING_BINARY, message, "`orchestrator doctor` lists the adapter plugins"
        )

    def build(
        self, tool: ToolConfig, model: str | None, prompt: str, ctx: RunContext
    ) -> Invocation:
        return Invocation(argv=[sys.executable, "-c", ""])

    def parse(
        self,
        tool: ToolConfig,
        model: str | None,
        stdout: bytes,
        stderr: bytes,
        exit_code: int | None,
    ) -> ParsedOutput:
        return ParsedOutput(failure=self.failure)

    def watch_line(self, line: bytes) -> ToolFailure | None:
        return None

    def stream(self, tool: ToolConfig, model: str | None) -> None:
        return None
