"""One attempt's live progress: its stream parser fed each line the tool prints, the events
stamped and logged, its usage priced as it arrives, and the run stopped when that passes
the task's budget_usd (for tools that do not stop themselves, see Adapter.enforces_budget).

The runner (attempt.py) makes one with `for_attempt` (None when the tool's output is not a
stream), passes `watch` to the process as its line watcher, runs `flushing` beside it, and
ends with `finish`; a run killed mid-way takes the usage it had reached from `reached`.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import anyio

from orchestrator.adapters.base import ErrorKind, ParsedOutput, ToolFailure, Usage
from orchestrator.progress.events import Event, Kind, step_of
from orchestrator.progress.log import EventLog, Record, log_path

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Iterable

    from orchestrator.adapters.base import Adapter, StreamParser
    from orchestrator.chainrun import ChainRun
    from orchestrator.config import ToolConfig
    from orchestrator.engine import Engine
    from orchestrator.results import AttemptRecord
    from orchestrator.routing import Attempt

_FIELDS = ("name", "target", "text", "ok", "session_id")


@dataclass(frozen=True)
class Spent:
    """What the task's earlier attempts used: usage by kind, and cost (None: unknown)."""

    usage: dict[str, int]
    cost_usd: float | None

    @classmethod
    def of(cls, records: Iterable[AttemptRecord]) -> Spent:
        usage: dict[str, int] = {}
        cost: float | None = 0.0
        for record in records:
            if record.usage is None:
                continue
            for name, value in record.usage.items():
                usage[name] = usage.get(name, 0) + value
            cost = None if cost is None or record.cost_usd is None else cost + record.cost_usd
        return cls(usage, cost)


def budget_left(run: ChainRun) -> float | None:
    """What is left of the task's budget_usd after its earlier attempts' cost."""
    budget = run.task.budget_usd
    if budget is None:
        return None
    spent = sum(record.cost_usd or 0.0 for record in run.result.attempts)
    return max(budget - spent, 0.0)


def for_attempt(
    engine: Engine, run: ChainRun, attempt: Attempt, tool: ToolConfig, adapter: Adapter
) -> LiveRun | None:
    """The live progress of this attempt, or None when its tool's output is no stream."""
    parser = adapter.stream(tool, attempt.model)
    if parser is None:
        return None

    def price(model: str | None, usage: Usage, reported: float | None) -> float | None:
        return engine.pricer.cost_of(model or attempt.model, usage, reported).usd

    budget = None if adapter.enforces_budget else run.task.budget_usd
    return LiveRun(
        parser,
        EventLog(log_path(engine.runs_dir.parent, run.task.id)),
        number=len(run.result.attempts) + 1,
        tool=attempt.tool,
        model=attempt.model,
        price=price,
        spent=Spent.of(run.result.attempts),
        budget_usd=budget,
    )


class LiveRun:
    def __init__(
        self,
        parser: StreamParser,
        log: EventLog,
        *,
        number: int,
        tool: str,
        model: str | None,
        price: Callable[[str | None, Usage, float | None], float | None],
        spent: Spent,
        budget_usd: float | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.parser = parser
        self.log = log
        self.number = number
        self.price = price
        self.spent = spent
        self.budget_usd = budget_usd
        self.clock = clock
        self.usage: Usage | None = None  # this attempt's, so far
        self.cost_usd: float | None = None  # this attempt's, so far (None: unknown)
        self.step = f"starting {tool}" + (f" ({model})" if model else "")
        self.over: ToolFailure | None = None  # the budget was passed
        self._dirty: anyio.Event | None = None  # set when records wait (while flushing)
        self._add({"kind": Kind.START.value, "tool": tool, "model": model})

    def watch(self, line: bytes) -> ToolFailure | None:
        """The process's line watcher: feed the parser, log the events, check the budget.
        A failure stops the run (its process group is killed)."""
        events = self.parser.feed(line)
        for event in events:
            self._event(event)
        if self.over is None and self.budget_usd is not None and self.cost_usd is not None:
            spent = self.spent.cost_usd or 0.0
            if spent + self.cost_usd > self.budget_usd:
                self.over = _over_budget(spent, self.cost_usd, self.budget_usd)
        return self.over or self.parser.stop

    def _event(self, event: Event) -> None:
        if event.kind is Kind.USAGE:
            reached = self.parser.so_far()
            self.usage = reached.usage or event.usage
            if self.usage is not None:
                self.cost_usd = self.price(reached.model, self.usage, reached.cost_usd)
        self.step = step_of(event) or self.step
        record: Record = {"kind": event.kind.value}
        record.update((name, getattr(event, name)) for name in _FIELDS)
        self._add(record)

    def _add(self, fields: Record) -> None:
        usage, cost = self.totals()
        stamp = {"t": round(self.clock(), 3), "attempt": self.number}
        self.log.add({**stamp, **fields, "step": self.step, "usage": usage, "cost_usd": cost})
        if self._dirty is not None and not self._dirty.is_set():
            self._dirty.set()

    def totals(self) -> tuple[dict[str, int], float | None]:
        """The task's usage and cost so far: its earlier attempts' and this one's."""
        usage = dict(self.spent.usage)
        for name, value in vars(self.usage or Usage()).items():
            if value:
                usage[name] = usage.get(name, 0) + value
        cost = self.spent.cost_usd
        if self.usage is not None:
            cost = None if cost is None or self.cost_usd is None else cost + self.cost_usd
        return usage, None if cost is None else round(cost, 8)

    def reached(self) -> ParsedOutput:
        """What a run killed mid-way records: the usage, cost, model and session so far."""
        return replace(self.parser.so_far(), text=None, failure=None)

    @contextlib.asynccontextmanager
    async def flushing(self) -> AsyncIterator[None]:
        """While the tool runs: write what waits at most every `flush_s` seconds."""
        self._dirty = dirty = anyio.Event()
        if self.log.pending:
            dirty.set()
        async with anyio.create_task_group() as flusher:
            flusher.start_soon(self._flush_when_due, dirty)
            try:
                yield
            finally:
                flusher.cancel_scope.cancel()
                self._dirty = None
                self.log.flush()

    async def _flush_when_due(self, dirty: anyio.Event) -> None:
        while True:
            await dirty.wait()
            await anyio.sleep(self.log.flush_s)  # what comes meanwhile goes in one write
            self._dirty = dirty = anyio.Event()
            self.log.flush()

    def finish(self, record: AttemptRecord, parsed: ParsedOutput, cost_usd: float | None) -> None:
        """The attempt's end, as the result records it; everything written out."""
        self.usage, self.cost_usd = parsed.usage, cost_usd
        error: dict[str, Any] = record.error or {}
        self.step = f"attempt {self.number} {record.outcome}" + (
            f" ({error.get('kind')})" if error else ""
        )
        self._add(
            {
                "kind": Kind.END.value,
                "outcome": record.outcome,
                "error": error.get("kind"),
                "text": error.get("message"),
            }
        )
        self.log.flush()


def _over_budget(spent: float, cost: float, budget: float) -> ToolFailure:
    earlier = f" (${spent:.4f} of it by earlier attempts)" if spent else ""
    return ToolFailure(
        ErrorKind.BUDGET_EXCEEDED,
        f"stopped mid-run: the task's cost so far, ${spent + cost:.4f}{earlier}, passed its "
        f"budget_usd ${budget:g}; the process group was killed",
        "raise the task's budget_usd, or split the task",
    )


def flushing(live: LiveRun | None) -> contextlib.AbstractAsyncContextManager[None]:
    """`live.flushing()`, or nothing (no allocation) for a tool whose output is no stream."""
    return live.flushing() if live is not None else _NOTHING


_NOTHING: contextlib.nullcontext[None] = contextlib.nullcontext()  # reusable, async too
