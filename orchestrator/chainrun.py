"""One task's walk along its chain, as state: which entries are still usable, what was
tried, what the task has spent; and the result it comes to (success, a failure, a wait),
with its usage and cost summed over the attempts."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from orchestrator.engine import iso, now_utc
from orchestrator.quota import WAITING
from orchestrator.results import AttemptRecord, Result, error_info

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

    from orchestrator.adapters.base import ParsedOutput, ToolFailure
    from orchestrator.routing import Attempt
    from orchestrator.sessions import Session
    from orchestrator.tasks import Task
    from orchestrator.windows import Window

Key = tuple[str, str | None]  # an entry of the chain: (tool, model)


@dataclass
class ChainRun:
    """The state of one task's execution."""

    task: Task
    prompt: str
    prompt_tokens: int
    result: Result
    chain: list[Attempt]
    justification: str | None = None  # the task's, or exec --force's (then `forced`)
    forced: bool = False  # runs past hard budgets
    needs_why: Mapping[Key, str] = field(default_factory=dict)  # over the threshold: why
    failed_for_good: set[tuple[str, str | None]] = field(default_factory=set)
    broken_tools: dict[str, ToolFailure] = field(default_factory=dict)  # tool-wide failures
    tried: set[tuple[str, str | None]] = field(default_factory=set)
    passed_over: set[tuple[str, str | None]] = field(default_factory=set)
    last_failure: ToolFailure | None = None
    why: str = ""  # why the last turn gave way to the next entry (for the fallback line)
    cwd: Path | None = None  # the tool's working folder: its worktree, else the workspace
    closed: dict[Key, Window] = field(default_factory=dict)  # entries out of quota now
    lost: list[AttemptRecord] = field(default_factory=list)  # runs lost with their worker
    session: Session | None = None  # the task's conversation (orchestrator/sessions.py)
    session_reported: dict[str, float] | None = None  # a cumulative report's last totals

    def usable(self, attempt: Attempt) -> bool:
        """False for an entry whose tool failed tool-wide, whose tool:model failed for a
        reason retrying cannot fix, or whose estimate needs a justification the task has
        not given: such entries are passed over and use no attempt."""
        key = (attempt.tool, attempt.model)
        return (
            attempt.tool not in self.broken_tools
            and key not in self.failed_for_good
            and key not in self.needs_why
            and key not in self.closed
        )

    def upcoming(self, position: int, count: int) -> list[Attempt]:
        """The next `count` entries to be tried, walking the chain round from `position`."""
        if count <= 0 or not any(self.usable(a) for a in self.chain):
            return []
        found: list[Attempt] = []
        while len(found) < count:
            attempt = self.chain[position % len(self.chain)]
            position += 1
            if self.usable(attempt):
                found.append(attempt)
        return found


def spent(run: ChainRun) -> float:
    return sum(r.cost_usd or 0.0 for r in run.result.attempts)


def skipped(attempt: Attempt, kind: str, why: str, hint: str) -> AttemptRecord:
    return AttemptRecord(
        tool=attempt.tool,
        model=attempt.model,
        reason=attempt.why,
        started_at=iso(now_utc()),
        duration_ms=0,
        exit_code=None,
        outcome="skipped",
        error=error_info(kind, why, hint),
    )


def succeed(run: ChainRun, attempt: Attempt, parsed: ParsedOutput) -> None:
    result = run.result
    result.status = "succeeded"
    result.tool = attempt.tool
    result.model = parsed.model or attempt.model
    reason: str = attempt.reason
    earlier = [r for r in result.attempts[:-1] if r.outcome != "succeeded"]
    if earlier:
        first = earlier[0]
        result.fallback_from = f"{first.tool}:{first.model}" if first.model else first.tool
        if attempt.reason in ("preferred", "task_type", "cost_optimization"):
            reason = "fallback"
    result.route_reason = f"{reason} ({attempt.note})" if attempt.note else reason
    result.output = parsed.text
    result.session_id = parsed.session_id


def finish(run: ChainRun) -> None:
    result = run.result
    if result.status not in ("succeeded", "blocked_by_budget", "rejected", WAITING):
        failure = run.last_failure
        result.status = "timed_out" if failure and failure.kind == "timeout" else "failed"
        if failure is not None:
            result.error = error_info(failure.kind, failure.message, failure.hint)
        elif not run.chain:
            result.error = error_info("no_route", "no tool can run this task", "check agents.yaml")
        elif result.attempts:
            last = result.attempts[-1].error or {}
            result.error = error_info(
                last.get("kind", "unknown"), last.get("message", ""), last.get("hint", "")
            )
    sum_usage(result)


def sum_usage(result: Result) -> None:
    """Usage and cost of the task: the sum over attempts (a failed attempt may cost too).
    The cost stays unknown (None) when any attempt with usage could not be priced."""
    totals: dict[str, int] = {}
    with_usage = [r for r in result.attempts if r.usage is not None]
    for record in with_usage:
        for name, value in (record.usage or {}).items():
            totals[name] = totals.get(name, 0) + value
    result.usage = totals or None
    costs = [r.cost_usd for r in with_usage]
    if costs and all(c is not None for c in costs):
        result.cost_usd = round(sum(c for c in costs if c is not None), 8)
        sources = {r.cost_source for r in with_usage}
        if "partial" in sources:  # an attempt stopped mid-run: its usage as far as it got
            result.cost_source = "partial"
        else:
            result.cost_source = "reported" if sources == {"reported"} else "computed"
