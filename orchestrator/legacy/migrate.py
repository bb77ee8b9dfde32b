"""`orchestrator config migrate`: rewrite older-schema config folders in the native schema.

Each folder that holds older-schema files gets all its config files rewritten, with the
conversions as comments beside what they produced and the keys that are kept but not acted
on as comments too; the originals go to `backup-<time>/` in the same folder, with the
report. Before anything is written, the new files are loaded beside the old and the two
configs compared, with the base policies and with every profile: routing, prices, budgets
and limits must be identical, or nothing is written.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from orchestrator.configdirs import CONFIG_FILES, Folder, Sources, read_yaml
from orchestrator.errors import OrchestratorError
from orchestrator.legacy.convert import Note, convert, is_legacy

if TYPE_CHECKING:
    from collections.abc import Iterable

INTRO = {
    "agents.yaml": "Agents: who does the work, their preferred tool and model, fallbacks.",
    "tools.yaml": "Tools: the CLIs that do the work (see docs/tools.md for each adapter).",
    "models.yaml": "Models: provider, prices in USD per million tokens, context window.",
    "policies.yaml": "Policies: budgets, cost optimisation, rate limits, privacy, profiles.",
}


class MigrationError(OrchestratorError):
    """The converted files would not load as the old ones do: nothing was written."""


@dataclass
class Rewrite:
    """One file's new text, and the notes it was made with."""

    path: Path
    text: str
    notes: list[Note] = field(default_factory=list)


@dataclass
class Migration:
    rewrites: list[Rewrite]
    backup: Path | None = None
    profiles: list[str] = field(default_factory=list)

    def report(self) -> str:
        done = [str(n) for r in self.rewrites for n in r.notes if n.kind == "converted"]
        kept = [str(n) for r in self.rewrites for n in r.notes if n.kind == "kept"]
        lines = ["converted:", *(f"  {line}" for line in done)]
        lines += ["kept as comments:", *(f"  {line}" for line in kept or ["-"])]
        checked = ", ".join(["the base policies", *(f"profile {p}" for p in self.profiles)])
        lines.append(f"routing, prices, budgets and limits are identical with {checked}")
        return "\n".join(lines)


def plan(sources: Sources, stamp: str) -> Migration:
    """The rewrites of every older-schema folder `sources` read (nothing written)."""
    rewrites = []
    for folder in sources.folders:
        if any(path.parent == folder.path for path in sources.legacy):
            rewrites += _rewrite_folder(folder, f"backup-{stamp}")
    return Migration(rewrites)


def _rewrite_folder(folder: Folder, backup: str) -> list[Rewrite]:
    files = {}
    for name in CONFIG_FILES:
        if (folder.path / name).is_file():
            data, problems = read_yaml(folder.path / name, folder.display(name))
            if problems:
                raise MigrationError("; ".join(map(str, problems)))
            files[name] = data
    assert is_legacy(files)
    rewrites = []
    for name, data in files.items():
        converted = convert(name, data, folder.display(name))
        if converted.problems:
            raise MigrationError("; ".join(map(str, converted.problems)))
        header = [
            INTRO[name],
            "Converted from the older LLM Service Layer schema by `orchestrator config migrate`;",
            f"the original is {backup}/{name}.",
        ]
        text = render(converted.data, converted.notes, header)
        rewrites.append(Rewrite(folder.path / name, text, converted.notes))
    return rewrites


def verify(root: Path, sources: Sources, migration: Migration) -> None:
    """Load the new files beside the old and compare the configs, with the base policies
    and with each profile; raise MigrationError on any difference."""
    import tempfile

    from orchestrator.config import load_config

    with tempfile.TemporaryDirectory(prefix="orchestrator-migrate-") as tmp:
        after = Sources(sources.folders)
        for n, folder in enumerate(sources.folders):
            mine = [r for r in migration.rewrites if r.path.parent == folder.path]
            if mine:
                folder = Folder(Path(tmp) / str(n), folder.kind)
                folder.path.mkdir()
                for rewrite in mine:
                    (folder.path / rewrite.path.name).write_text(rewrite.text, encoding="utf-8")
            if folder.path.is_dir():
                after.read(folder)
        if after.legacy:
            raise MigrationError(f"still in the older schema after converting: {after.legacy}")
        old = load_config(root, sources, profile="default")
        migration.profiles = list(old.policies.profiles)
        for profile in ["default", *migration.profiles]:
            before = load_config(root, sources, profile=profile).model_dump()
            now = load_config(root, after, profile=profile).model_dump()
            if before != now:
                changed = sorted(k for k in before if before[k] != now.get(k))
                raise MigrationError(
                    f"the converted config differs in {', '.join(changed)} with profile "
                    f"{profile}: nothing was written (please report this as a bug)"
                )


def apply(migration: Migration, stamp: str) -> None:
    """Back the originals up, then replace each file (atomically, one by one)."""
    folders = dict.fromkeys(r.path.parent for r in migration.rewrites)
    for folder in folders:
        backup = folder / f"backup-{stamp}"
        backup.mkdir()
        for rewrite in migration.rewrites:
            if rewrite.path.parent == folder:
                shutil.copy2(rewrite.path, backup / rewrite.path.name)
        (backup / "MIGRATION.txt").write_text(migration.report() + "\n", encoding="utf-8")
        migration.backup = backup
    for rewrite in migration.rewrites:
        temp = rewrite.path.with_name(f".{rewrite.path.name}.{os.getpid()}.tmp")
        temp.write_text(rewrite.text, encoding="utf-8")
        os.replace(temp, rewrite.path)


def now_stamp() -> str:
    return datetime.now().strftime("%Y%m%d-%H%M%S")


# --- rendering -------------------------------------------------------------------------


class _Dumper(yaml.SafeDumper):
    """Block style, except lists of plain values, which read best on one line."""


def _list(dumper: yaml.SafeDumper, value: list[Any]) -> yaml.Node:
    flow = all(isinstance(item, str | int | float | bool) for item in value)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", value, flow_style=flow)


_Dumper.add_representer(list, _list)


def _dump(data: dict[str, Any], indent: int) -> list[str]:
    text = yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=96)
    return [" " * indent + line for line in text.splitlines()]


def _comments(notes: Iterable[Note], indent: int, prefix: str) -> list[str]:
    lines = []
    for note in notes:
        where = note.field.removeprefix(prefix)
        after = "  (kept from the older file, not acted on)" if note.kind == "kept" else ""
        lines.append(" " * indent + f"# {where}: {note.text}{after}")
    return lines


def render(data: dict[str, Any], notes: list[Note], header: list[str]) -> str:
    """A native config mapping as YAML, each entry after the notes about it."""
    lines = [f"# {line}" for line in header]
    used: set[int] = set()
    for key, value in data.items():
        if key in ("agents", "tools", "models") and isinstance(value, dict):
            lines.append(f"{key}:")
            for entry, body in value.items():
                prefix = f"{key}.{entry}."
                mine = [n for n in notes if n.field.startswith(prefix)]
                used.update(map(id, mine))
                lines += _comments(mine, 2, prefix)
                lines += _dump({entry: body}, 2)
        else:
            lines += _dump({key: value}, 0)
    rest = [n for n in notes if id(n) not in used]
    if rest:
        lines += ["", "# What the conversion did to the older file:", *_comments(rest, 0, "")]
    return "\n".join(lines) + "\n"
