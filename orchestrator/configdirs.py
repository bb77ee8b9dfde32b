"""Where config is read from: the folders, the files found there, and how they merge.

Two folders are read, the base first:

1. the user's config folder, found by platformdirs: `$XDG_CONFIG_HOME/orchestrator` or
   `~/.config/orchestrator` on Linux (and on WSL, which is Linux: the Linux home's, never
   the Windows %APPDATA%), `~/Library/Application Support/orchestrator` on macOS,
   `%APPDATA%\\orchestrator` on native Windows (unsupported: docs/platforms.md); or, when
   `ORCHESTRATOR_CONFIG_DIR` is set and not empty, the folder it names instead (it must
   exist: a typo there is an error, not a silent fallback);
2. the workspace's `config/`, which overrides the base.

Each of the four files is looked for in both folders. When both have it, the two mappings
merge key by key: at every key the workspace's value wins, nested mappings merge the same
way, and a list (or any other value) replaces the base's whole. A file may live in one
folder only. A problem names the file its field came from: `config/<name>` for the
workspace, the full path for a file in the other folder.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import yaml

from orchestrator.errors import ConfigError, ConfigProblem
from orchestrator.taskyaml import RepeatNoticingLoader

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from platformdirs.api import PlatformDirsABC

    from orchestrator.legacy.convert import Note

APP = "orchestrator"
ENV_VAR = "ORCHESTRATOR_CONFIG_DIR"
PROFILE_ENV = "ORCHESTRATOR_PROFILE"  # the policies profile in force
CONFIG_FILES = ("agents.yaml", "tools.yaml", "models.yaml", "policies.yaml")
OPTIONAL_FILES = ("schedules.yaml", "executor.yaml")  # read, like the others, when present
INIT_HINT = "run `orchestrator init` to write a default config"


@dataclass(frozen=True)
class Folder:
    """A place config is looked for; `kind` says why it is looked at."""

    path: Path
    kind: Literal["user", "env", "workspace"]

    def display(self, name: str) -> str:
        """How a problem names the file `name` in this folder."""
        return f"config/{name}" if self.kind == "workspace" else str(self.path / name)


def user_config_dir(platform: type[PlatformDirsABC] | None = None) -> Path:
    """The user's config folder for this machine (or for `platform`, a platformdirs class)."""
    import platformdirs

    dirs = (platform or platformdirs.PlatformDirs)(APP, appauthor=False, roaming=True)
    return Path(dirs.user_config_dir)


def config_folders(root: Path, env: Mapping[str, str], user_dir: Path) -> list[Folder]:
    """The folders to read, base first: `ORCHESTRATOR_CONFIG_DIR` (else the user folder),
    then the workspace's `config/`."""
    named = env.get(ENV_VAR, "")
    base = Folder(Path(named).expanduser(), "env") if named else Folder(user_dir, "user")
    return [base, Folder(root / "config", "workspace")]


def merge(base: Any, override: Any) -> Any:
    """`override` over `base`, key by key for mappings; any other value replaces the base."""
    if not (isinstance(base, dict) and isinstance(override, dict)):
        return override
    merged = dict(base)
    for key, value in override.items():
        merged[key] = merge(base[key], value) if key in base else value
    return merged


_PART = re.compile(r"\[(\d+)\]|([^.\[\]]+)")


def _parts(field_path: str) -> list[str | int]:
    """`agents.w.fallback_chain[0]` → ["agents", "w", "fallback_chain", 0]."""
    return [int(m[1]) if m[1] else m[2] for m in _PART.finditer(field_path)]


def _depth(data: Any, parts: Sequence[str | int]) -> int:
    """How many leading `parts` of a field path `data` holds."""
    for depth, part in enumerate(parts):
        try:
            data = data[part]
        except (KeyError, IndexError, TypeError):
            return depth
    return len(parts)


@dataclass
class Sources:
    """The folders looked at, the files read, and each file's layers (base first)."""

    folders: list[Folder]
    files: list[Path] = field(default_factory=list)
    layers: dict[str, list[tuple[str, Any]]] = field(default_factory=dict)
    problems: list[ConfigProblem] = field(default_factory=list)
    legacy: list[Path] = field(default_factory=list)  # files read in the older schema
    notes: list[Note] = field(default_factory=list)  # what reading them converted or kept

    def read(self, folder: Folder) -> None:
        """Add the files of `folder` as layers, converted when in the older schema."""
        from orchestrator.legacy.convert import convert, is_legacy

        files: dict[str, Any] = {}
        for name in (*CONFIG_FILES, *OPTIONAL_FILES):
            if (folder.path / name).is_file():
                files[name], problems = read_yaml(folder.path / name, folder.display(name))
                self.files.append(folder.path / name)
                self.problems += problems
        older = is_legacy(files)
        for name, data in files.items():
            if older and data is not None and name in CONFIG_FILES:
                converted = convert(name, data, folder.display(name))
                data = converted.data
                self.legacy.append(folder.path / name)
                self.notes += converted.notes
                self.problems += converted.problems
            self.layers.setdefault(name, []).append((folder.display(name), data))

    def data(self, name: str) -> Any:
        """The merged mapping of `name`, or None when a layer of it could not be read."""
        layers = self.layers.get(name, [])
        if not layers or any(data is None for _, data in layers):
            return None
        merged: Any = {}
        for _, data in layers:
            merged = merge(merged, data)
        return merged

    def origin(self, problem: ConfigProblem) -> ConfigProblem:
        """`problem` naming the file its field came from: the layer that holds most of the
        field's path, the workspace on a tie."""
        name = problem.file.removeprefix("config/")
        layers = self.layers.get(name)
        if not layers or problem.file != f"config/{name}":
            return problem
        parts = _parts(problem.field)
        display, _ = max(reversed(layers), key=lambda layer: _depth(layer[1], parts))
        return replace(problem, file=display)


def locate(
    root: Path, env: Mapping[str, str] | None = None, user_dir: Path | None = None
) -> Sources:
    """Find and read the config files for the workspace `root`; raise ConfigError naming
    every place looked at when there is no config folder at all."""
    env = os.environ if env is None else env
    folders = config_folders(root, env, user_dir or user_config_dir())
    missing = [f for f in folders if f.kind == "env" and not f.path.is_dir()]
    if missing:
        raise ConfigError(
            [ConfigProblem(str(missing[0].path), "", f"{ENV_VAR} names no folder",
                           "create it, fix the variable or unset it")]
        )  # fmt: skip
    found = [f for f in folders if f.path.is_dir()]
    if not found:
        raise ConfigError([_nothing_here(f) for f in reversed(folders)])
    sources = Sources(folders)
    for folder in found:
        sources.read(folder)
    order = (*CONFIG_FILES, *OPTIONAL_FILES)
    sources.files.sort(key=lambda path: order.index(path.name))  # file, then layer
    for name in CONFIG_FILES:
        if name not in sources.layers:
            sources.problems.append(ConfigProblem(found[-1].display(name), "", "file not found",
                                                  _not_found_hint(found)))  # fmt: skip
    return sources


def _nothing_here(folder: Folder) -> ConfigProblem:
    if folder.kind == "workspace":
        hint = "run `orchestrator init`, or point --root at your workspace"
        return ConfigProblem(str(folder.path), "", "no config folder here", hint)
    hint = f"config shared by your workspaces goes here, or set {ENV_VAR}"
    return ConfigProblem(str(folder.path), "", "nor in the user config folder", hint)


def _not_found_hint(found: list[Folder]) -> str:
    if len(found) == 1:
        return INIT_HINT
    return f"it is in neither {' nor '.join(str(f.path) for f in found)}; {INIT_HINT}"


def read_yaml(path: Path, display: str) -> tuple[Any, list[ConfigProblem]]:
    """A config file's mapping (None when unreadable) and its problems, named `display`."""
    try:
        loader = RepeatNoticingLoader(path.read_text(encoding="utf-8"))
        try:
            data = loader.get_single_data()
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        reason = getattr(exc, "problem", None) or str(exc)
        return None, [ConfigProblem(display, "", f"YAML syntax error{where}: {reason}", "fix it")]
    except UnicodeDecodeError:
        return None, [ConfigProblem(display, "", "not UTF-8 text", "save the file as UTF-8")]
    if data is None:
        data = {}
    if not isinstance(data, dict):
        kind = type(data).__name__
        return None, [ConfigProblem(display, "", f"expected a mapping, got a {kind}", "fix it")]
    twice = [
        ConfigProblem(display, "", f"key {key!a} is written twice (lines {first} and {line})",
                      "keep one: YAML would silently use the last")
        for key, first, line in loader.repeated
    ]  # fmt: skip
    return (None if twice else data), twice
