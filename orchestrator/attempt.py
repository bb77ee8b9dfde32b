"""One attempt of one tool: the budget gate before it (the estimate reserved against the
budgets; above `require_justification_over_usd`, the task's justification), then build
its invocation, run its process in a private run folder, judge and price what it printed,
and write its telemetry row.
"""

from __future__ import annotations

import hashlib
import logging
import time
import uuid
from dataclasses import replace
from functools import partial
from typing import TYPE_CHECKING

from orchestrator import sessions
from orchestrator.adapters import Unloadable, get_adapter
from orchestrator.adapters.base import (
    ErrorKind,
    ParsedOutput,
    RunContext,
    ToolFailure,
    Usage,
    possible_cost,
    sane,
)
from orchestrator.engine import BASE_ENV, iso, now_utc
from orchestrator.executors import RunRequest
from orchestrator.pricing import Cost
from orchestrator.progress import live as progress
from orchestrator.results import AttemptRecord, error_info
from orchestrator.routing import Attempt, current_model

if TYPE_CHECKING:
    from collections.abc import Callable
    from datetime import datetime
    from pathlib import Path

    from orchestrator.chainrun import ChainRun
    from orchestrator.config import ToolConfig
    from orchestrator.engine import Engine
    from orchestrator.executors import Executor
    from orchestrator.process import ProcessResult

log = logging.getLogger(__name__)

# An agent CLI's idle_timeout when neither task nor tool sets one. They print a line per
# message and tool call: a healthy run is silent one generation or command long at most (a
# big file in one tool call: 3-4 min). 5 min frees a hung tool's slot 10 min before a 15m
# timeout. None for generic tools: many print only at the end. (docs/tools.md)
AGENT_IDLE_TIMEOUT_S = 300.0


def record_attempt(
    engine: Engine,
    run: ChainRun,
    number: int,
    attempt: Attempt,
    record: AttemptRecord,
    parsed: ParsedOutput,
    cost: Cost,
) -> None:
    """One telemetry row per attempt that ran a tool."""
    if engine.telemetry is None:
        return
    usage = parsed.usage or Usage()
    privacy = engine.config.policies.privacy.prompts
    baseline = None
    if attempt.reason == "cost_optimization" and parsed.usage is not None:
        agent = engine.config.agents[run.task.agent]
        baseline = engine.pricer.price(
            current_model(engine.config, agent.preferred_model), usage
        ).usd
    earlier = [r for r in run.result.attempts[:-1] if r.outcome == "failed"]
    ended = now_utc()
    engine.telemetry.invocation(
        {
            "task_id": run.task.id,
            "attempt": number + 1,
            "chain_id": run.task.chain_id or run.task.id,
            "agent": run.task.agent,
            "tool": attempt.tool,
            "model": record.model,
            "route_reason": attempt.reason,
            "fallback_from": f"{earlier[-1].tool}:{earlier[-1].model}" if earlier else None,
            "started_at": record.started_at,
            "ended_at": iso(ended),
            "duration_ms": record.duration_ms,
            "exit_code": record.exit_code,
            "outcome": record.outcome,
            "error_kind": (record.error or {}).get("kind"),
            "input_tokens": usage.input_tokens,
            "output_tokens": usage.output_tokens,
            "cache_read_tokens": usage.cache_read_tokens,
            "cache_write_tokens": usage.cache_write_tokens,
            "reasoning_tokens": usage.reasoning_tokens,
            "cost_usd": cost.usd,
            "cost_source": cost.source,
            "price_version": cost.price_version,
            "baseline_cost_usd": baseline,
            "session_id": parsed.session_id,
            "prompt_hash": (
                hashlib.sha256(run.prompt.encode()).hexdigest() if privacy != "metadata" else None
            ),
            "prompt_text": run.prompt if privacy == "full" else None,
            "output_text": parsed.text if privacy == "full" else None,
            "justification": run.justification,
        }
    )


async def run_attempt(
    engine: Engine, run: ChainRun, attempt: Attempt
) -> tuple[AttemptRecord, ParsedOutput, ToolFailure | None, Cost]:
    config = engine.config
    task = run.task
    tool = config.tools[attempt.tool]
    adapter = get_adapter(tool.adapter)
    live = progress.for_attempt(engine, run, attempt, tool, adapter)  # None: no stream
    started = now_utc()
    clock = time.monotonic()
    run_dir = engine.take_run_dir()
    parsed = ParsedOutput()
    ran_on: str | None = None  # the Dask worker that ran it
    exit_code: int | None = None
    killed = False  # mid-run (timeout, stall, budget, a line proving failure): partial usage
    try:
        workspace = run.cwd or config.root  # an isolated task's worktree
        turn = sessions.for_attempt(run.session, attempt.tool, engine.sessions)
        ctx = RunContext(
            task_id=task.id,
            workspace=workspace,
            run_dir=run_dir,
            budget_usd=task.budget_usd,
            resume=turn.resume,
            session_home=turn.home,
        )
        if ctx.budget_usd is not None:  # what the task's earlier attempts left of it
            ctx = replace(ctx, budget_usd=progress.budget_left(run))
        if turn.moved_from is not None:
            run.result.warnings.append(
                f"session {task.session}: {attempt.tool} runs it, not {turn.moved_from}: a new "
                "session there, its prompt opened by a summary of the latest turns"
            )
        invocation = engine.invocation(attempt, turn.opening + run.prompt, ctx)
        request = RunRequest(
            key=f"{task.id}-{uuid.uuid4().hex[:12]}",
            task_id=task.id,
            tool=attempt.tool,
            adapter=tool.adapter,
            argv=invocation.argv,
            env_names=[*BASE_ENV, *tool.env],
            env=invocation.env,
            run_dir=str(run_dir),
            cwd=str(workspace),
            limit_s=task.timeout or tool.timeout,
            idle_s=idle_limit(task.idle_timeout, tool),
            stdin=invocation.stdin,
            files=invocation.files,
            answer_file=invocation.answer_file,
            isolated=run.cwd is not None,
        )
        if isinstance(adapter, Unloadable):  # a plugin that cannot be loaded: run nothing
            failure: ToolFailure | None = adapter.failure
        else:
            failure = engine.executor.check(engine, request)
        on_group, on_start = engine.on_group, None
        if on_group is not None:
            on_start = partial(_started_group, on_group, run_dir)
        if failure is None:
            async with engine.limiter(attempt.tool).hold(task.priority_rank):
                # the attempt starts with its slot: waiting for one is not running time
                started, clock = now_utc(), time.monotonic()
                async with progress.flushing(live):
                    watch = live.watch if live else adapter.watch_line
                    proc = await _run(engine.executor, request, watch, on_start)
            if isinstance(proc, ToolFailure):
                failure = proc
                if live is not None:
                    parsed, killed = live.reached(), True
            else:
                exit_code, ran_on = proc.exit_code, proc.ran_on
                run.lost += [_lost(attempt, started, w, proc.ran_on) for w in proc.lost_on]
                parsed, failure = _judge(adapter.parse, tool, attempt, proc)
                parsed = _session_usage(run, adapter, parsed, resumed=turn.resume is not None)
    finally:
        engine.give_back(run_dir)
    parsed, cost = _priced(engine, run, attempt, parsed)
    if killed and cost.source is not None:
        cost = replace(cost, source="partial")  # what it had reached when it was stopped
    usage = None
    if parsed.usage is not None:
        usage = {k: v for k, v in vars(parsed.usage).items() if v or k != "reasoning_tokens"}
    record = AttemptRecord(
        tool=attempt.tool,
        model=parsed.model or attempt.model,
        reason=attempt.why,
        started_at=iso(started),
        duration_ms=int((time.monotonic() - clock) * 1000),
        exit_code=exit_code,
        outcome="failed" if failure else "succeeded",
        error=error_info(failure.kind, failure.message, failure.hint) if failure else None,
        usage=usage,
        cost_usd=cost.usd,
        cost_source=cost.source,
        worker=ran_on,
    )
    if live is not None:
        live.finish(record, parsed, cost.usd)
    return record, parsed, failure, cost


def _priced(
    engine: Engine, run: ChainRun, attempt: Attempt, parsed: ParsedOutput
) -> tuple[ParsedOutput, Cost]:
    """The attempt's output without impossible numbers, and its cost. Any impossible
    number (reported, or a cost computed from the counts) makes the cost unknown, which
    the budget counts as the attempt's estimate: a broken report never frees budget."""
    parsed, impossible = sane(parsed)
    cost = Cost(None, None)
    if parsed.usage is not None:
        cost = engine.pricer.cost_of(parsed.model or attempt.model, parsed.usage, parsed.cost_usd)
        if cost.usd is not None and not possible_cost(cost.usd):
            impossible.append((f"{cost.source} cost_usd", cost.usd))
    if not impossible:
        return parsed, cost
    found = ", ".join(f"{name}={str(value)[:40]}" for name, value in impossible)
    warning = (
        f"{attempt.tool} reported impossible numbers ({found}): this attempt's cost is "
        "unknown and counts as its estimate in budgets"
    )
    log.warning("task %s: %s", run.task.id, warning)
    run.result.warnings.append(warning)
    return parsed, Cost(None, None)


def idle_limit(task_idle_s: float | None, tool: ToolConfig) -> float | None:
    """The task's idle_timeout, else the tool's, else the default (None: no limit; an
    idle_timeout of 0 is `off`)."""
    for chosen in (task_idle_s, tool.idle_timeout):
        if chosen is not None:
            return chosen or None
    return None if tool.adapter == "generic" else AGENT_IDLE_TIMEOUT_S


async def _run(
    executor: Executor,
    request: RunRequest,
    watch_line: Callable[[bytes], ToolFailure | None],
    on_start: Callable[[int], None] | None,
) -> ProcessResult | ToolFailure:
    early: list[ToolFailure] = []
    limit_s, idle_s = request.limit_s, request.idle_s
    argv0 = request.argv[0]

    def watch(line: bytes) -> bool:
        failure = watch_line(line)
        if failure is not None:
            early.append(failure)
        return failure is not None

    try:
        proc = await executor.run(request, watch, on_start)
    except PermissionError as exc:
        return ToolFailure(
            ErrorKind.NOT_EXECUTABLE, f"cannot run {argv0}: {exc}", "make the binary executable"
        )
    except OSError as exc:
        return ToolFailure(
            ErrorKind.MISSING_BINARY,
            f"cannot start {argv0}: {exc}",
            "check the binary path in config/tools.yaml",
        )
    if early:
        return early[0]
    if proc.timed_out:
        return ToolFailure(
            ErrorKind.TIMEOUT,
            f"no answer within {limit_s:g}s; the process group was killed",
            "raise the task's or the tool's timeout, or split the task",
        )
    if proc.stalled:
        return ToolFailure(
            ErrorKind.STALLED,
            f"no output for {idle_s:g}s (stdout and stderr); the process group was killed",
            "raise idle_timeout for this tool (or the task) if it works silently that long; "
            "else check the tool: it may wait for input, or for a network that never answers",
        )
    return proc


def _session_usage(
    run: ChainRun, adapter: object, parsed: ParsedOutput, resumed: bool
) -> ParsedOutput:
    """A CLI that reports its session's running totals (claude's modelUsage and cost,
    codex's turn.completed, once resumed): this turn's usage and cost are the totals less
    the last ones seen; the totals are kept for the next turn."""
    if run.session is None or getattr(adapter, "session_usage", "") != "cumulative":
        return parsed
    if parsed.usage is None:
        return parsed
    reported: dict[str, float] = dict(vars(parsed.usage))
    if parsed.cost_usd is not None:
        reported["cost_usd"] = parsed.cost_usd
    run.session_reported = reported
    if not resumed:
        return parsed
    turn = sessions.turn_usage(reported, run.session.reported)
    cost = turn.pop("cost_usd", None) if parsed.cost_usd is not None else None
    turn.pop("cost_usd", None)
    usage = Usage(**{k: int(v) for k, v in turn.items()})
    return replace(parsed, usage=usage, cost_usd=cost)


def _lost(attempt: Attempt, started: datetime, worker: str, again: str | None) -> AttemptRecord:
    """A run that died with its Dask worker (Dask ran it again on another)."""
    return AttemptRecord(
        tool=attempt.tool,
        model=attempt.model,
        reason=attempt.why,
        started_at=iso(started),
        duration_ms=0,
        exit_code=None,
        outcome="failed",
        error=error_info(
            "worker_lost",
            f"the Dask worker {worker} died while running it; it was run again on {again}",
            "nothing to do: a run lost with its worker is run again (at least once)",
        ),
        worker=worker,
    )


def _started_group(on_group: Callable[[int, Path], None], run_dir: Path, pgid: int) -> None:
    on_group(pgid, run_dir)


def _judge(
    parse: Callable[..., ParsedOutput], tool: ToolConfig, attempt: Attempt, proc: ProcessResult
) -> tuple[ParsedOutput, ToolFailure | None]:
    parsed = parse(tool, attempt.model, proc.stdout, proc.stderr, proc.exit_code)
    if parsed.failure is not None:
        return parsed, parsed.failure
    code = proc.exit_code
    if code is not None and code < 0:
        return parsed, ToolFailure(
            ErrorKind.SIGNAL, f"{attempt.tool} was killed by signal {-code}", "see its stderr"
        )
    if code:
        tail = proc.stderr.decode("utf-8", errors="replace").strip()[-500:]
        return parsed, ToolFailure(
            ErrorKind.EXIT,
            f"{attempt.tool} exited with code {code}: {tail or '(no stderr)'}",
            "see the tool's message; the next tool in the chain was tried",
        )
    return parsed, None
