"""Run one task: route it, then try each attempt (policy → adapter → process → parse) until
one succeeds or the chain is spent. Shared by the daemon and `exec`.
"""

from __future__ import annotations

import contextlib
import logging
import random
import time
from datetime import datetime
from typing import TYPE_CHECKING

import anyio

from orchestrator import observers
from orchestrator.adapters.base import FALLBACK_KINDS, ErrorKind, ParsedOutput, ToolFailure
from orchestrator.admission import NEEDS_JUSTIFICATION, WHY_HINT, reserve, weigh_justification
from orchestrator.admission import forced_past as forced_past  # exec's (foreground) import
from orchestrator.attempt import record_attempt, run_attempt
from orchestrator.chainrun import ChainRun, finish, skipped, spent, succeed
from orchestrator.engine import Engine, iso, now_utc
from orchestrator.isolation.session import run_isolated
from orchestrator.isolation.worktree import Worktrees
from orchestrator.policy import estimate_tokens, retry_backoff
from orchestrator.pricing import Cost
from orchestrator.quota import SKIPPED, WAITING, described, local_time, wait_for, window_end
from orchestrator.results import Result
from orchestrator.sessions import Session, after_turn

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Collection
    from pathlib import Path

    from orchestrator.routing import Attempt
    from orchestrator.tasks import Task


log = logging.getLogger(__name__)


# Failures that will not go away by trying the same tool again in this task.
PERMANENT_KINDS = frozenset(
    {
        ErrorKind.MISSING_BINARY,
        ErrorKind.NOT_EXECUTABLE,
        ErrorKind.AUTH,
        ErrorKind.CLI_USAGE,
        ErrorKind.BAD_REQUEST,
    }
)
# Failures that hold for the tool whatever the model (its binary, its credentials, its
# command line): the tool's other entries in the chain are skipped for the rest of the task.
TOOL_WIDE_KINDS = frozenset(
    {ErrorKind.MISSING_BINARY, ErrorKind.NOT_EXECUTABLE, ErrorKind.AUTH, ErrorKind.CLI_USAGE}
)
COOLDOWN = "cooldown"  # a skipped attempt's kind: its tool:model's circuit is open
DEFAULT_COOLDOWN_S = 30.0  # after a 429 that does not say how long to wait
MAX_LINE = 240  # a fallback line's reason is cut to this many characters


async def execute(
    engine: Engine,
    task: Task,
    prompt: str,
    *,
    on_start: Callable[[Attempt], None] | None = None,
    on_fallback: Callable[[str], None] | None = None,
    justification: str | None = None,
    shown: Collection[str] = (),
    worktrees: Worktrees | None = None,
    carried: Result | None = None,
) -> Result:
    """Run the attempts of `task` until one succeeds; never raises for a tool's failure.

    The chain is walked round until `retries.max_attempts` turns are used. A turn is an
    attempt that was made (even one whose binary is missing) or one given up to a rate
    limit; entries passed over because their tool failed tool-wide, or their tool:model
    failed for good, use none. Each fallback is logged and given to `on_fallback` as one
    line. `justification` runs past hard budgets (recorded in the result and telemetry);
    `shown` are budget warnings the caller has shown already (recorded, not logged again).
    A task whose estimate is over `require_justification_over_usd` runs only with a
    justification (its own, or this one): without, it is rejected and nothing runs.
    A task of an agent with `isolation: worktree` runs in a git worktree of its own (made
    by `worktrees`, or by a Worktrees of the workspace's when none is given).
    A task that waited for quota goes on from `carried`, what its earlier runs left: their
    attempts (and cost, for its budget) and warnings stay in the result.
    """
    config = engine.config
    started = now_utc()
    tokens = estimate_tokens(prompt)
    run = ChainRun(
        task=task,
        prompt=prompt,
        prompt_tokens=tokens,
        result=Result(id=task.id, status="failed", agent=task.agent, started_at=iso(started)),
        chain=engine.plan(task, tokens),
        justification=justification or (task.justification or "").strip() or None,
        forced=justification is not None,
    )
    if carried is not None:  # what its runs before a wait for quota left
        started = datetime.fromisoformat(carried.started_at or iso(started))
        run.result.started_at = iso(started)
        run.result.attempts = list(carried.attempts)
        run.result.warnings = list(carried.warnings)
    if justification is not None and carried is None:
        run.result.warnings.append(f"forced: {justification}")
    elif run.justification is not None and carried is None:
        run.result.warnings.append(f"justification: {run.justification}")
    run.result.warnings.extend(w for w in shown if w not in run.result.warnings)
    weighed = weigh_justification(engine, run.chain, tokens, run.justification)
    run.result.warnings.extend(w for w in weighed.warnings if w not in run.result.warnings)
    run.needs_why = weighed.over
    if weighed.refusal is not None:
        log.warning("task %s: rejected: %s", task.id, weighed.refusal["message"])
        run.result.status = "rejected"
        run.result.error = weighed.refusal
        run.chain = []  # nothing is tried

    async def walk(cwd: Path | None = None) -> None:
        run.cwd = cwd
        await _walk(engine, run, on_start, on_fallback)
        finish(run)

    async with _session_turn(engine, run):
        if run.chain and config.agents[task.agent].isolation == "worktree":
            await run_isolated(worktrees or Worktrees(config.root), task, run.result, walk)
        else:
            await walk()
    finished = now_utc()
    run.result.finished_at = iso(finished)
    run.result.duration_ms = int((finished - started).total_seconds() * 1000)
    if run.result.status != WAITING:  # a waiting task is told of when it ends
        observers.tell(engine.observers, run.result, config)
    return run.result


@contextlib.asynccontextmanager
async def _session_turn(engine: Engine, run: ChainRun) -> AsyncIterator[None]:
    """A task of a session: its turn (one task of a session at a time), the session as
    it stands, and after a success the session moved on (its CLI session id, a new tool)."""
    name = run.task.session
    if name is None or not run.chain:
        yield
        return
    async with engine.sessions.turn(name):
        found = await anyio.to_thread.run_sync(engine.sessions.get, name)
        run.session = found or Session(name, tool=run.chain[0].tool)
        yield
        result = run.result
        if result.status == "succeeded" and result.tool is not None:
            moved = after_turn(run.session, result.tool, result.model, result.session_id,
                               run.task.id, run.session_reported)  # fmt: skip
            await anyio.to_thread.run_sync(engine.sessions.save, moved)


async def _walk(
    engine: Engine,
    run: ChainRun,
    on_start: Callable[[Attempt], None] | None,
    on_fallback: Callable[[str], None] | None,
) -> None:
    """Walk the chain round until an attempt succeeds or `max_attempts` turns are used."""
    max_attempts = engine.config.policies.retries.max_attempts
    position = used = 0
    outcome = ""
    _look_at_windows(engine, run)
    while upcoming := run.upcoming(position, max_attempts - used):
        while not run.usable(run.chain[position % len(run.chain)]):
            _pass_over(run, run.chain[position % len(run.chain)])
            position += 1
        attempt = run.chain[position % len(run.chain)]
        position += 1
        outcome = await _one(engine, run, used, attempt, upcoming[1:], on_start)
        used += outcome != "window"  # a window that closed uses no turn
        if outcome == "stop":
            break
        _look_at_windows(engine, run)
        following = run.upcoming(position, max_attempts - used)
        if following:
            line = _fallback_line(attempt, run.why, following[0])
            log.info("task %s: %s", run.task.id, line)
            if on_fallback is not None:
                on_fallback(line)
    if outcome != "stop" and used < max_attempts and run.closed:  # nothing left but windows
        log.warning("task %s: waits: %s", run.task.id, wait_for(run.result, run.closed.values()))


def _look_at_windows(engine: Engine, run: ChainRun) -> None:
    """Which entries of the chain are out of quota now (windows open while tasks run)."""
    for attempt in run.chain:
        key = (attempt.tool, attempt.model)
        window = engine.windows.closed(attempt.tool, attempt.model)
        if window is None:
            run.closed.pop(key, None)
        else:
            run.closed[key] = window


def _pass_over(run: ChainRun, attempt: Attempt) -> None:
    """An entry that is not tried; the first time an untried one's tool is out for the
    whole task, or it needs a justification, it is listed as skipped, with the reason."""
    key = (attempt.tool, attempt.model)
    failure = run.broken_tools.get(attempt.tool)
    if key in run.tried or key in run.passed_over:
        return
    if failure is not None:
        run.passed_over.add(key)
        run.result.attempts.append(
            skipped(
                attempt,
                failure.kind,
                f"not tried: {attempt.tool} failed for every model earlier in this task "
                f"({failure.message})",
                failure.hint,
            )
        )
    elif key in run.needs_why:
        run.passed_over.add(key)
        run.result.attempts.append(
            skipped(attempt, NEEDS_JUSTIFICATION, f"not tried: {run.needs_why[key]}", WHY_HINT)
        )
    elif key in run.closed:
        run.passed_over.add(key)
        why = f"not tried: out of quota: {described(run.closed[key])}"
        run.result.attempts.append(
            skipped(attempt, SKIPPED, why, "the next tool in the chain was tried")
        )


def _name(attempt: Attempt) -> str:
    return f"{attempt.tool}:{attempt.model}" if attempt.model else attempt.tool


def _fallback_line(attempt: Attempt, why: str, following: Attempt) -> str:
    """One line: the tool that gave way, why, and what is tried next."""
    why = " ".join(why.split())
    if len(why) > MAX_LINE:
        why = why[: MAX_LINE - 1] + "…"
    return f"{attempt.tool} {why}; trying {_name(following)}"


async def _one(
    engine: Engine,
    run: ChainRun,
    number: int,
    attempt: Attempt,
    later: list[Attempt],
    on_start: Callable[[Attempt], None] | None,
) -> str:
    """One scheduled attempt; "stop" ends the chain."""
    config = engine.config
    key = (attempt.tool, attempt.model)
    name = _name(attempt)
    if await _cooling_down(engine, run, attempt, later):
        return "next"
    wait = engine.rates.delay(attempt.tool, attempt.model)
    if wait > 0 and any((a.tool, a.model) != key for a in later):
        run.why = f"rate limited for another {wait:.1f}s"
        run.result.attempts.append(
            skipped(attempt, ErrorKind.RATE_LIMIT, run.why, "the next tool in the chain was tried")
        )
        return "next"
    if key in run.tried:
        retries = config.policies.retries
        passes = max(0, number - len(run.chain))
        backoff = retry_backoff(retries.backoff, retries.backoff_max, passes, random.random())
        wait = max(wait, backoff)
    if wait > 0:
        await anyio.sleep(wait)
    attempt, reservation = await reserve(engine, run, attempt, number + 1)
    if reservation is None and run.result.status == "blocked_by_budget":
        return "stop"
    if attempt.warning and attempt.warning not in run.result.warnings:
        log.warning("task %s: %s", run.task.id, attempt.warning)
        run.result.warnings.append(attempt.warning)
    engine.rates.take(attempt.tool, attempt.model)
    run.tried.add(key)
    if on_start is not None:
        on_start(attempt)
    record, parsed, failure, cost = await run_attempt(engine, run, attempt)
    if reservation is not None and reservation.leases:
        await anyio.to_thread.run_sync(engine.ledger.settle, reservation, cost.usd)
    else:
        engine.ledger.settle(reservation, cost.usd)
    for lost in run.lost:  # runs that died with their Dask worker, before this one
        run.result.attempts.append(lost)
        record_attempt(engine, run, number, attempt, lost, ParsedOutput(), Cost(None, None))
    run.lost.clear()
    run.result.attempts.append(record)
    record_attempt(engine, run, number, attempt, record, parsed, cost)
    if failure is None:
        engine.breakers.succeeded(name)
        succeed(run, attempt, parsed)
        return "stop"
    return _failed(engine, run, attempt, failure)


def _failed(engine: Engine, run: ChainRun, attempt: Attempt, failure: ToolFailure) -> str:
    """Learn from a failed attempt (circuits, cooldowns, windows, what is out for the task):
    "next" when the chain goes on, "window" when a usage window closed (no turn used)."""
    key = (attempt.tool, attempt.model)
    engine.breakers.failed(_name(attempt), failure.kind)
    run.last_failure = failure
    log.info("task %s: %s/%s failed: %s", run.task.id, attempt.tool, attempt.model, failure.kind)
    until = window_end(failure, engine.config.policies.usage_windows, time.time())
    if until is not None:  # out of quota until then: try the rest, or wait
        engine.windows.close(
            attempt.tool, attempt.model, until, failure.message, whole_tool=failure.whole_tool
        )
        run.why = f"is out of quota until {local_time(until)} ({failure.kind})"
        return "window"
    if failure.kind == ErrorKind.RATE_LIMIT:
        engine.rates.cool_down(attempt.tool, DEFAULT_COOLDOWN_S)
    if failure.kind in PERMANENT_KINDS:
        run.failed_for_good.add(key)
    if failure.kind in TOOL_WIDE_KINDS:
        run.broken_tools[attempt.tool] = failure
        run.why = f"unavailable: {failure.message}"
    else:
        run.why = f"failed ({failure.kind}): {failure.message}"
    over_budget = run.task.budget_usd is not None and spent(run) >= run.task.budget_usd
    return "stop" if failure.kind not in FALLBACK_KINDS or over_budget else "next"


async def _cooling_down(
    engine: Engine, run: ChainRun, attempt: Attempt, later: list[Attempt]
) -> bool:
    """True when the attempt's circuit is open and the chain has something else to try
    (it is listed as skipped); with nothing else, wait for the circuit's probe."""
    name = _name(attempt)
    if engine.breakers.allow(name):
        return False
    if any(_name(a) != name for a in later):
        circuit = engine.breakers.circuits.get(name)
        count = circuit.failures if circuit else 0
        run.why = f"cooling down: its circuit is open after {count} transient failures in a row"
        hint = "the next tool in the chain was tried; `status` shows when it probes again"
        run.result.attempts.append(skipped(attempt, COOLDOWN, run.why, hint))
        return True
    await anyio.sleep(engine.breakers.retry_at(name) or 0.0)
    engine.breakers.allow(name)  # the probe, unless another task took it
    return False
