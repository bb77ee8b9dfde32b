"""One attempt of one tool: build its invocation, run its process in a private run folder,
judge and price what it printed, and write its telemetry row.
"""

from __future__ import annotations

import hashlib
import logging
import time
from typing import TYPE_CHECKING

from orchestrator.adapters import get_adapter
from orchestrator.adapters.base import (
    ErrorKind,
    ParsedOutput,
    RunContext,
    ToolFailure,
    Usage,
    possible_cost,
    sane,
)
from orchestrator.engine import iso, now_utc, tool_env
from orchestrator.pricing import Cost
from orchestrator.process import ProcessResult, run_process
from orchestrator.results import AttemptRecord, error_info

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from orchestrator.adapters.base import Invocation
    from orchestrator.config import ToolConfig
    from orchestrator.engine import Engine
    from orchestrator.execute import ChainRun
    from orchestrator.routing import Attempt

log = logging.getLogger(__name__)


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
        baseline = engine.pricer.price(agent.preferred_model, usage).usd
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
    started = now_utc()
    clock = time.monotonic()
    run_dir = engine.take_run_dir()
    parsed = ParsedOutput()
    exit_code: int | None = None
    try:
        ctx = RunContext(
            task_id=task.id, workspace=config.root, run_dir=run_dir, budget_usd=task.budget_usd
        )
        invocation = engine.invocation(attempt, run.prompt, ctx)
        for name, data in invocation.files.items():
            target = run_dir / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        env = tool_env(tool, invocation.env, run_dir)
        failure = engine.check_binary(invocation.argv[0], env["PATH"], attempt.tool)
        if failure is None:
            async with engine.limiter(attempt.tool):
                proc = await _run(
                    invocation,
                    env,
                    (config.root, run_dir),
                    task.timeout or tool.timeout,
                    adapter.watch_line,
                    engine.on_group,
                )
            if isinstance(proc, ToolFailure):
                failure = proc
            else:
                exit_code = proc.exit_code
                parsed, failure = _judge(adapter.parse, tool, attempt, proc)
    finally:
        engine.give_back(run_dir)
    parsed, cost = _priced(engine, run, attempt, parsed)
    usage = None
    if parsed.usage is not None:
        usage = {k: v for k, v in vars(parsed.usage).items() if v or k != "reasoning_tokens"}
    record = AttemptRecord(
        tool=attempt.tool,
        model=parsed.model or attempt.model,
        reason=attempt.reason,
        started_at=iso(started),
        duration_ms=int((time.monotonic() - clock) * 1000),
        exit_code=exit_code,
        outcome="failed" if failure else "succeeded",
        error=error_info(failure.kind, failure.message, failure.hint) if failure else None,
        usage=usage,
        cost_usd=cost.usd,
        cost_source=cost.source,
    )
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


async def _run(
    invocation: Invocation,
    env: dict[str, str],
    dirs: tuple[Path, Path],  # the workspace (cwd) and the run's own folder
    limit_s: float,
    watch_line: Callable[[bytes], ToolFailure | None],
    on_group: Callable[[int, Path], None] | None,
) -> ProcessResult | ToolFailure:
    workspace, run_dir = dirs
    early: list[ToolFailure] = []

    def watch(line: bytes) -> bool:
        failure = watch_line(line)
        if failure is not None:
            early.append(failure)
        return failure is not None

    try:
        proc = await run_process(
            invocation.argv,
            env=env,
            cwd=workspace,
            stdin=invocation.stdin,
            limit_s=limit_s,
            watch=watch,
            on_start=(lambda pgid: on_group(pgid, run_dir)) if on_group else None,
        )
    except PermissionError as exc:
        return ToolFailure(
            ErrorKind.NOT_EXECUTABLE,
            f"cannot run {invocation.argv[0]}: {exc}",
            "make the binary executable",
        )
    except OSError as exc:
        return ToolFailure(
            ErrorKind.MISSING_BINARY,
            f"cannot start {invocation.argv[0]}: {exc}",
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
    return proc


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
