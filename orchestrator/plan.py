"""`run --dry-run`: what the daemon would do with each inbox file, touching nothing."""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import TYPE_CHECKING

from orchestrator import workflow
from orchestrator.adapters.base import RunContext
from orchestrator.admission import weigh_justification
from orchestrator.engine import Engine
from orchestrator.errors import TaskRejected
from orchestrator.policy import estimate_tokens
from orchestrator.tasks import compose_prompt, load_task, parse_task, read_profile
from orchestrator.workdir import StillWriting, Workdir, read_task_file

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from pathlib import Path

    from orchestrator.config import Config
    from orchestrator.routing import Attempt


@dataclass(frozen=True)
class Step:
    tool: str
    model: str | None
    reason: str
    argv: list[str]
    estimate_usd: float | None  # None: no price known for the model


@dataclass(frozen=True)
class PlanLine:
    file: str
    task_id: str
    agent: str
    steps: Sequence[Step] = ()
    prompt_tokens: int = 0
    rejection: str | None = None
    warnings: Sequence[str] = ()  # from reading the file (prose prerequisites, typos, ...)


def plan_inbox(config: Config) -> list[PlanLine]:
    workdir = Workdir(config.root)
    engine = Engine(config, workdir.runs)
    pending = workdir.pending() if workdir.inbox.is_dir() else []
    return [_plan_file(config, engine, path) for path in pending]


def _plan_file(config: Config, engine: Engine, path: Path) -> PlanLine:
    try:
        data, _ = read_task_file(path)
        raw, repeated = load_task(data, path.name)
        task = parse_task(raw, path.stem, path.name, config, repeated)
        agent = config.agents[task.agent]
        profile = read_profile(config, task.agent)
        handoffs = workflow.instructions(agent.handoff_to) if agent.handoff_to else None
        prompt = compose_prompt(task, config.root, path.name, profile, handoffs)
    except TaskRejected as exc:
        return PlanLine(path.name, path.stem, "-", rejection=f"{exc.kind}: {exc}")
    except StillWriting:
        return PlanLine(path.name, path.stem, "-", rejection="still being written")
    ctx = RunContext(task.id, config.root, engine.runs_dir / f"{task.id}.N", task.budget_usd)
    tokens = estimate_tokens(prompt)
    chain = engine.plan(task, tokens)
    why = (task.justification or "").strip() or None
    weighed = weigh_justification(engine, chain, tokens, why)
    if (refusal := weighed.refusal) is not None:
        rejection = f"{refusal['kind']}: {refusal['message']} ({refusal['hint']})"
        return PlanLine(path.name, task.id, task.agent, rejection=rejection)
    steps = [
        Step(a.tool, a.model, _reason(a, weighed.over), engine.invocation(a, prompt, ctx).argv,
             engine.estimate(a, tokens))
        for a in chain
    ]  # fmt: skip
    return PlanLine(path.name, task.id, task.agent, steps, tokens, None, task.read_warnings)


def _reason(attempt: Attempt, over: Mapping[tuple[str, str | None], str]) -> str:
    """The attempt's reason; for a fallback over the justification threshold, that too."""
    key = (attempt.tool, attempt.model)
    return f"{attempt.why}; passed over: {over[key]}" if key in over else attempt.why


def render_plan(lines: list[PlanLine]) -> str:
    if not lines:
        return "the inbox is empty: nothing to run"
    out = []
    for line in lines:
        if line.rejection:
            out.append(f"{line.file}: would be rejected: {line.rejection}")
            continue
        out.append(
            f"{line.file}: task {line.task_id}, agent {line.agent}, "
            f"prompt ~{line.prompt_tokens} tokens"
        )
        out += [f"  warning: {warning}" for warning in line.warnings]
        for n, step in enumerate(line.steps, 1):
            cost = (
                f"~${step.estimate_usd:.4f}" if step.estimate_usd is not None else "price unknown"
            )
            out.append(
                f"  {n}. {step.tool} / {step.model or '-'} ({step.reason}, {cost}): "
                f"{shlex.join(step.argv)}"
            )
    return "\n".join(out)
