"""Whether an attempt may run, before it runs: a chain's entries over
`require_justification_over_usd` without a justification, and the budget reservation (a
cheaper model of the same tool when the estimate would pass a budget), and how a run forced
past a hard budget is worded."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import anyio

from orchestrator.engine import now_utc
from orchestrator.results import error_info
from orchestrator.routing import Attempt, agent_tools, resolve, supersede

if TYPE_CHECKING:
    from collections.abc import Mapping

    from orchestrator.chainrun import ChainRun, Key
    from orchestrator.engine import Engine
    from orchestrator.policy import BudgetDecision, Reservation

log = logging.getLogger(__name__)

NEEDS_JUSTIFICATION = "needs_justification"
WHY_HINT = "add justification: <why> to the task file and submit it again"


@dataclass(frozen=True)
class Weighed:
    """What budgets.require_justification_over_usd says about a task's chain."""

    refusal: dict[str, str] | None = None  # the error when the task may not run at all
    over: Mapping[Key, str] = field(default_factory=dict)  # later entries that may not run
    warnings: tuple[str, ...] = ()


def weigh_justification(
    engine: Engine, chain: list[Attempt], tokens: int, justification: str | None
) -> Weighed:
    """The task's estimate (its first entry's, as the budgets count it) against the
    threshold: over it without a justification, the task is refused; a fallback over it
    is passed over. An unknown price cannot be weighed: it runs, with a warning."""
    threshold = engine.config.policies.budgets.require_justification_over_usd
    if threshold is None or not chain:
        return Weighed()
    limit = f"budgets.require_justification_over_usd (${threshold:.2f})"
    first = chain[0]
    estimate = engine.estimate(first, tokens)
    if justification is not None:
        if estimate is None or estimate <= threshold:
            return Weighed()
        return Weighed(warnings=(f"estimate ${estimate:.4f} is over {limit}: run as justified",))
    if estimate is not None and estimate > threshold:
        message = (
            f"the estimate of this task is ${estimate:.4f} ({first.tool}:{first.model}, "
            f"~{tokens} prompt tokens), over {limit}, and it has no justification: nothing was run"
        )
        hint = (
            f"{WHY_HINT} under a new id (this one has its result now); "
            "with `orchestrator exec`: --force --justification TEXT"
        )
        return Weighed(refusal=error_info(NEEDS_JUSTIFICATION, message, hint))
    over = {}
    for attempt in chain[1:]:
        cost = engine.estimate(attempt, tokens)
        if cost is not None and cost > threshold:
            over[(attempt.tool, attempt.model)] = (
                f"its estimate ${cost:.4f} is over {limit} and the task has no justification"
            )
    warnings: tuple[str, ...] = ()
    if estimate is None:
        warnings = (
            f"no price known for {first.model or first.tool}: its cost cannot be held "
            f"against {limit}, so it runs without a justification",
        )
    return Weighed(over=over, warnings=warnings)


async def reserve(
    engine: Engine, run: ChainRun, attempt: Attempt, number: int
) -> tuple[Attempt, Reservation | None]:
    """Reserve the attempt's estimated cost; downgrade or block when the budget is spent.
    The shared ledger is a database transaction: it runs in a worker thread."""
    budgets = engine.config.policies.budgets
    estimate = engine.estimate(attempt, run.prompt_tokens)

    def hold(amount: float) -> tuple[BudgetDecision, Reservation | None]:
        return engine.ledger.reserve(
            run.task.agent, amount, now_utc(), task_id=run.task.id, attempt=number
        )

    if engine.ledger.applies_to(run.task.agent):
        decision, reservation = await anyio.to_thread.run_sync(hold, estimate or 0.0)
    else:  # no budget limit: nothing to count, no transaction, no thread
        decision, reservation = hold(estimate or 0.0)
    if not decision.allowed and run.forced:
        warning = forced_past(decision)
        if warning not in run.result.warnings:
            log.warning("task %s: %s", run.task.id, warning)
            run.result.warnings.append(warning)
        return attempt, None
    if not decision.allowed and budgets.on_budget_exhausted == "downgrade":
        for cheaper in _cheaper(engine, run, attempt, estimate):
            cheaper_estimate = engine.estimate(cheaper, run.prompt_tokens) or 0.0
            decision, reservation = await anyio.to_thread.run_sync(hold, cheaper_estimate)
            if decision.allowed:
                log.info("task %s: budget: downgraded to %s", run.task.id, cheaper.model)
                attempt = cheaper
                break
    if not decision.allowed:
        run.result.status = "blocked_by_budget"
        run.result.error = error_info("budget_exhausted", decision.message, decision.hint)
        return attempt, None
    if estimate is None and attempt.model is not None and not engine.pricer.knows(attempt.model):
        run.result.warnings.append(f"no price known for {attempt.model}: budgets cannot count it")
    for warning in decision.warnings:
        if warning not in run.result.warnings:
            log.warning("task %s: %s", run.task.id, warning)
            run.result.warnings.append(warning)
    return attempt, reservation


def _cheaper(
    engine: Engine, run: ChainRun, attempt: Attempt, estimate: float | None
) -> list[Attempt]:
    """Simple-task models the agent's tools serve that cost less, cheapest first."""
    config = engine.config
    agent = config.agents[run.task.agent]
    usable = agent_tools(config, run.task.agent)
    options = []
    for target in config.policies.cost_optimization.simple_task_models:
        option = supersede(config, Attempt(*resolve(config, target, agent), "budget_downgrade"))
        cost = engine.estimate(option, run.prompt_tokens)
        if option.tool in usable and cost is not None and (estimate is None or cost < estimate):
            options.append((cost, option))
    return [a for _, a in sorted(options, key=lambda pair: pair[0]) if a != attempt]


def forced_past(decision: BudgetDecision) -> str:
    """The result's line for an attempt that a hard budget would have blocked."""
    return f"{decision.message}: run anyway (forced)"
