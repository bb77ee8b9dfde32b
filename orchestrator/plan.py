"""`run --dry-run`: what the daemon would do with each inbox file, touching nothing."""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import TYPE_CHECKING

from orchestrator.adapters.base import RunContext
from orchestrator.errors import TaskRejected
from orchestrator.execute import Engine
from orchestrator.tasks import compose_prompt, load_mapping, parse_task
from orchestrator.workdir import Workdir

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    from orchestrator.config import Config


@dataclass(frozen=True)
class PlanLine:
    file: str
    task_id: str
    agent: str
    steps: Sequence[tuple[str, str | None, str, list[str]]]  # tool, model, reason, argv
    rejection: str | None = None


def plan_inbox(config: Config) -> list[PlanLine]:
    workdir = Workdir(config.root)
    engine = Engine(config, workdir.runs)
    pending = workdir.pending() if workdir.inbox.is_dir() else []
    return [_plan_file(config, engine, path) for path in pending]


def _plan_file(config: Config, engine: Engine, path: Path) -> PlanLine:
    try:
        task = parse_task(load_mapping(path.read_bytes(), path.name), path.stem, path.name, config)
        profile_file = config.agents[task.agent].profile
        profile = (config.root / profile_file).read_text() if profile_file else None
        prompt = compose_prompt(task, config.root, path.name, profile)
    except TaskRejected as exc:
        return PlanLine(path.name, path.stem, "-", [], rejection=f"{exc.kind}: {exc}")
    ctx = RunContext(task.id, config.root, engine.runs_dir / f"{task.id}.N")
    steps = [
        (a.tool, a.model, a.reason, engine.invocation(a, prompt, ctx).argv)
        for a in engine.plan(task)
    ]
    return PlanLine(path.name, task.id, task.agent, steps)


def render_plan(lines: list[PlanLine]) -> str:
    if not lines:
        return "the inbox is empty: nothing to run"
    out = []
    for line in lines:
        if line.rejection:
            out.append(f"{line.file}: would be rejected: {line.rejection}")
            continue
        out.append(f"{line.file}: task {line.task_id}, agent {line.agent}")
        for n, (tool, model, reason, argv) in enumerate(line.steps, 1):
            out.append(f"  {n}. {tool} / {model or '-'} ({reason}): {shlex.join(argv)}")
    return "\n".join(out)
