"""The config and tools pages: the loaded config, read-only, with every validation problem
(as `config validate` reports them), and doctor's view of the tools. Also the config the
server itself needs (the agents to submit to, the privacy setting), re-read when a config
file changes."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from orchestrator.errors import ConfigError
from orchestrator.web.html import dl, esc, pre, section, table

if TYPE_CHECKING:
    from pathlib import Path

    from orchestrator.config import Config
    from orchestrator.configdirs import Sources
    from orchestrator.doctor import ToolCheck


@dataclass
class Loaded:
    """The config as last read: loaded, or the problems that stopped it."""

    sources: Sources | None
    config: Config | None
    problems: list[str]

    @property
    def full_prompts(self) -> bool:
        """Whether prompts may be shown: only with privacy.prompts `full` in a config that
        loads (a broken config shows none)."""
        return self.config is not None and self.config.policies.privacy.prompts == "full"

    @property
    def agents(self) -> list[str]:
        return sorted(self.config.agents) if self.config is not None else []


@dataclass
class ConfigCache:
    """Loads the config again only when a file of it changed (or appeared or went)."""

    root: Path
    profile: str | None = None
    _stamp: tuple[Any, ...] | None = None
    _loaded: Loaded | None = field(default=None, repr=False)

    def _files_stamp(self) -> tuple[Any, ...]:
        from orchestrator.configdirs import ENV_VAR, user_config_dir

        stamp = []
        for folder in (self.root / "config", user_config_dir(), os.environ.get(ENV_VAR)):
            if folder is None:
                continue
            try:
                with os.scandir(folder) as entries:
                    stamp += sorted((e.path, e.stat().st_mtime_ns, e.stat().st_size)
                                    for e in entries)  # fmt: skip
            except OSError:
                stamp.append((str(folder), -1, -1))
        return tuple(stamp)

    def get(self) -> Loaded:
        stamp = self._files_stamp()
        if self._loaded is None or stamp != self._stamp:
            self._loaded, self._stamp = load(self.root, self.profile), stamp
        return self._loaded


def load(root: Path, profile: str | None = None) -> Loaded:
    from orchestrator.config import load_config
    from orchestrator.configdirs import locate

    try:
        sources = locate(root)
    except ConfigError as exc:
        return Loaded(None, None, [str(p) for p in exc.problems])
    try:
        return Loaded(sources, load_config(root, sources, profile=profile), [])
    except ConfigError as exc:
        return Loaded(sources, None, [str(p) for p in exc.problems])


def config_page(loaded: Loaded) -> str:
    from orchestrator.config import summary
    from orchestrator.reports.configinfo import describe

    parts = []
    if loaded.problems:
        items = "".join(f"<li>{esc(p)}</li>" for p in loaded.problems)
        count = len(loaded.problems)
        parts.append(
            f'<section class="warnings" id="problems"><h2>{count} problem'
            f"{'s' if count != 1 else ''}: the config does not load</h2><ul>{items}</ul></section>"
        )
    config, sources = loaded.config, loaded.sources
    if config is not None and sources is not None:
        counts = summary(config)
        parts.append(
            f'<p class="ok" id="config-ok">config OK: {counts["agents"]} agents, '
            f"{counts['tools']} tools, {counts['models']} models</p>"
        )
        parts.append(section("About it", pre("\n".join(describe(config, sources)))))
        dumped = config.model_dump(mode="json", exclude={"root"})
        from orchestrator.results import dump_yaml

        parts += [
            section(key, pre(dump_yaml({key: dumped[key]})))
            for key in ("agents", "tools", "models", "policies", "schedules")
            if dumped.get(key)
        ]
    elif sources is not None:
        parts.append(section("Files read", "".join(f"<p>{esc(p)}</p>" for p in sources.files)))
    if sources is not None and config is not None:
        parts.insert(1, dl([("files read", ", ".join(str(p) for p in sources.files)),
                            ("profile", config.profile or "default"),
                            ("prompts shown", "yes (privacy.prompts: full)" if loaded.full_prompts
                             else "no (privacy.prompts is not full)")]))  # fmt: skip
    return "".join(parts)


def tools_page(checks: list[ToolCheck], text: str) -> str:
    rows = []
    for c in checks:
        state = "ok" if c.ok else ("maybe" if c.maybe else "needs attention")
        env = ", ".join(f"{v} {'set' if ok else 'not set'}" for v, ok in c.env.items())
        mark = f'<span class="check-{esc(state.split()[0])}">{esc(state)}</span>'
        where = c.path or f"{c.binary}: not found"
        rows.append([esc(c.name), esc(c.adapter), mark, esc(where), esc(c.version or "-"),
                     esc(_key(c)), esc(env or "-"), esc(c.hint)])  # fmt: skip
    headers = ["tool", "adapter", "state", "binary", "version", "key", "variables", "fix"]
    return table(headers, rows, empty="no tools configured", cls="tools") + section(
        "As `orchestrator doctor` says it", pre(text)
    )


def _key(c: ToolCheck) -> str:
    keys = c.keys
    if keys is None:
        return "-"
    if keys.met:
        return f"{' and '.join(keys.met)} set"
    return f"stored login in {keys.login} (not checked)" if keys.login else "NOT set"


PROMPT_MARK = "<prompt>"


def attempt_argvs(config: Config | None, attempts: list[Any], task_id: str) -> dict[int, list[str]]:
    """Each attempt's argv as the current config builds it for its tool and model (results
    do not record argv), the prompt shown as <prompt>; none for a tool no longer known."""
    from orchestrator.adapters import get_adapter
    from orchestrator.adapters.base import RunContext
    from orchestrator.config import resolve_binary

    if config is None:
        return {}
    ctx = RunContext(task_id, config.root, config.root / "work" / "runs" / f"{task_id}.N")
    found = {}
    for n, attempt in enumerate(attempts, 1):
        tool = config.tools.get(str(attempt.get("tool"))) if isinstance(attempt, dict) else None
        if tool is None:
            continue
        try:
            built = get_adapter(tool.adapter).build(tool, attempt.get("model"), PROMPT_MARK, ctx)
        except (KeyError, ValueError, OSError):
            continue
        found[n] = [resolve_binary(built.argv[0], config.root), *built.argv[1:]]
    return found


def latest_events(work: Path, task_id: str, count: int = 20) -> list[str]:
    """The last `count` records of a task's events log, as `logs` prints them."""
    import json

    from orchestrator.progress.paths import log_path
    from orchestrator.progress.view import render

    try:
        with log_path(work, task_id).open("rb") as log:
            size = log.seek(0, os.SEEK_END)
            log.seek(max(size - 64 * 1024, 0))
            data = log.read(64 * 1024)
    except OSError:
        return []
    lines = []
    for line in data.split(b"\n")[-count - 1 :]:
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and "t" in record and "kind" in record:
            lines.append(render(record))
    return lines[-count:]
