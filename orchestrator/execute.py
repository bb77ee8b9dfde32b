"""Run one task: route it, then try each attempt (adapter → process → parse) until one
succeeds or the chain is spent. Shared by the daemon and `exec`.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import anyio

from orchestrator import pricing
from orchestrator.adapters import get_adapter
from orchestrator.adapters.base import (
    FALLBACK_KINDS,
    ErrorKind,
    Invocation,
    ParsedOutput,
    RunContext,
    ToolFailure,
)
from orchestrator.process import ProcessResult, run_process
from orchestrator.routing import Attempt, route
from orchestrator.tasks import AttemptRecord, Result, Task, error_info

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from orchestrator.config import Config, ToolConfig

log = logging.getLogger(__name__)

# The environment every tool gets; anything else must be declared in its `env:` list.
BASE_ENV = ("PATH", "HOME", "USER", "LOGNAME", "LANG", "LC_ALL", "LC_CTYPE", "TERM", "TZ")
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


def now_utc() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def tool_env(tool: ToolConfig, extra: dict[str, str], tmpdir: Path) -> dict[str, str]:
    """The whole environment of a tool process: base names, declared names, adapter's."""
    source = os.environ
    env = {name: source[name] for name in BASE_ENV if name in source}
    env.update({name: source[name] for name in tool.env if name in source})
    env.setdefault("PATH", os.defpath)
    env["TMPDIR"] = str(tmpdir)
    env.update(extra)
    return env


@dataclass
class Engine:
    """What running tasks needs, built once per daemon (config is not re-read per task)."""

    config: Config
    runs_dir: Path
    limiters: dict[str, anyio.CapacityLimiter] = field(default_factory=dict)

    def limiter(self, tool: str) -> anyio.CapacityLimiter:
        if tool not in self.limiters:
            self.limiters[tool] = anyio.CapacityLimiter(self.config.tools[tool].max_concurrency)
        return self.limiters[tool]

    def plan(self, task: Task) -> list[Attempt]:
        return route(
            self.config, task.agent, task_type=task.task_type, tool=task.tool, model=task.model
        )

    def invocation(self, attempt: Attempt, prompt: str, ctx: RunContext) -> Invocation:
        tool = self.config.tools[attempt.tool]
        return get_adapter(tool.adapter).build(tool, attempt.model, prompt, ctx)


def _schedule(attempts: list[Attempt], max_attempts: int) -> list[Attempt]:
    """The chain, cycled from the start until `max_attempts` (repeats are skipped later
    when the tool failed for a reason that retrying cannot fix)."""
    if not attempts:
        return []
    return [attempts[i % len(attempts)] for i in range(max(max_attempts, len(attempts)))][
        : max(max_attempts, 1)
    ]


async def execute(
    engine: Engine,
    task: Task,
    prompt: str,
    *,
    on_start: Callable[[Attempt], None] | None = None,
) -> Result:
    """Run every attempt of `task` until one succeeds; never raises for a tool's failure."""
    config = engine.config
    started = now_utc()
    result = Result(id=task.id, status="failed", agent=task.agent, started_at=iso(started))
    chain = engine.plan(task)
    failed_for_good: set[tuple[str, str | None]] = set()
    tried: set[tuple[str, str | None]] = set()
    last_failure: ToolFailure | None = None
    for number, attempt in enumerate(_schedule(chain, config.policies.retries.max_attempts)):
        key = (attempt.tool, attempt.model)
        if key in failed_for_good:
            continue
        if key in tried:
            await anyio.sleep(config.policies.retries.backoff * 2 ** (number - len(chain)))
        tried.add(key)
        if on_start is not None:
            on_start(attempt)
        record, parsed, failure = await _attempt(engine, task, attempt, prompt, number + 1)
        result.attempts.append(record)
        if failure is None:
            _succeed(result, config, attempt, parsed, chain)
            break
        last_failure = failure
        log.info("task %s: %s/%s failed: %s", task.id, attempt.tool, attempt.model, failure.kind)
        if failure.kind in PERMANENT_KINDS:
            failed_for_good.add(key)
        if failure.kind not in FALLBACK_KINDS:
            break
    if result.status != "succeeded":
        result.status = "timed_out" if last_failure and last_failure.kind == "timeout" else "failed"
        if last_failure is not None:
            result.error = error_info(last_failure.kind, last_failure.message, last_failure.hint)
        elif not chain:
            result.error = error_info("no_route", "no tool can run this task", "check agents.yaml")
        _sum_usage(result, config)
    finished = now_utc()
    result.finished_at = iso(finished)
    result.duration_ms = int((finished - started).total_seconds() * 1000)
    return result


def _succeed(
    result: Result, config: Config, attempt: Attempt, parsed: ParsedOutput, chain: list[Attempt]
) -> None:
    result.status = "succeeded"
    result.tool = attempt.tool
    result.model = parsed.model or attempt.model
    result.route_reason = attempt.reason
    if len(result.attempts) > 1:
        first = result.attempts[0]
        result.fallback_from = f"{first.tool}:{first.model}" if first.model else first.tool
        if attempt.reason != "fallback" and attempt != chain[0]:
            result.route_reason = "fallback"
    result.output = parsed.text
    result.session_id = parsed.session_id
    _sum_usage(result, config)


def _sum_usage(result: Result, config: Config) -> None:
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
        result.cost_source = "reported" if sources == {"reported"} else "computed"


async def _attempt(
    engine: Engine, task: Task, attempt: Attempt, prompt: str, number: int
) -> tuple[AttemptRecord, ParsedOutput, ToolFailure | None]:
    config = engine.config
    tool = config.tools[attempt.tool]
    adapter = get_adapter(tool.adapter)
    started = now_utc()
    clock = time.monotonic()
    run_dir = engine.runs_dir / f"{task.id}.{number}.{os.getpid()}"
    parsed = ParsedOutput()
    exit_code: int | None = None
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        ctx = RunContext(task_id=task.id, workspace=config.root, run_dir=run_dir)
        invocation = adapter.build(tool, attempt.model, prompt, ctx)
        for name, data in invocation.files.items():
            target = run_dir / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        env = tool_env(tool, invocation.env, run_dir)
        failure = _missing_binary(invocation.argv[0], env["PATH"], attempt.tool)
        if failure is None:
            async with engine.limiter(attempt.tool):
                proc = await _run(
                    invocation, env, config.root, task.timeout or tool.timeout, adapter.watch_line
                )
            if isinstance(proc, ToolFailure):
                failure = proc
            else:
                exit_code = proc.exit_code
                parsed, failure = _judge(adapter.parse, tool, attempt, proc)
    finally:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(shutil.rmtree, run_dir, True)
    usage, cost = None, pricing.Cost(None, None)
    if parsed.usage is not None:
        usage = {k: v for k, v in vars(parsed.usage).items() if v or k != "reasoning_tokens"}
        cost = pricing.cost_of(config, parsed.model or attempt.model, parsed.usage, parsed.cost_usd)
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
    return record, parsed, failure


def _missing_binary(binary: str, path: str, tool_name: str) -> ToolFailure | None:
    if shutil.which(binary, path=path) is not None:
        return None
    if os.sep in binary and os.path.exists(binary):
        return ToolFailure(
            ErrorKind.NOT_EXECUTABLE,
            f"{binary} is not executable",
            f"chmod +x {binary}, or fix tools.{tool_name}.binary",
        )
    return ToolFailure(
        ErrorKind.MISSING_BINARY,
        f"{binary!r} not found on PATH",
        f"install it (see `orchestrator doctor`) or fix tools.{tool_name}.binary",
    )


async def _run(
    invocation: Invocation,
    env: dict[str, str],
    cwd: Path,
    limit_s: float,
    watch_line: Callable[[bytes], ToolFailure | None],
) -> ProcessResult | ToolFailure:
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
            cwd=cwd,
            stdin=invocation.stdin,
            limit_s=limit_s,
            watch=watch,
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
