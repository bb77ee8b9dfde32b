"""Run one task: route it, then try each attempt (policy → adapter → process → parse) until
one succeeds or the chain is spent. Shared by the daemon and `exec`.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import logging
import os
import shutil
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import anyio

from orchestrator.adapters import get_adapter
from orchestrator.adapters.base import (
    FALLBACK_KINDS,
    ErrorKind,
    Invocation,
    ParsedOutput,
    RunContext,
    ToolFailure,
    Usage,
    possible_cost,
    sane,
)
from orchestrator.config import resolve_binary
from orchestrator.ledger import SharedLedger
from orchestrator.policy import (
    BudgetDecision,
    RateLimiter,
    Reservation,
    estimate_tokens,
)
from orchestrator.pricing import Cost, Pricer
from orchestrator.process import ProcessResult, run_process
from orchestrator.routing import Attempt, agent_tools, resolve, route, simple_task_model
from orchestrator.tasks import AttemptRecord, Result, Task, error_info

if TYPE_CHECKING:
    from collections.abc import Callable, Collection
    from pathlib import Path

    from orchestrator.config import Config, ToolConfig
    from orchestrator.telemetry.writer import TelemetryWriter

log = logging.getLogger(__name__)
_RUN_DIRS = itertools.count(1)

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
# Failures that hold for the tool whatever the model (its binary, its credentials, its
# command line): the tool's other entries in the chain are skipped for the rest of the task.
TOOL_WIDE_KINDS = frozenset(
    {ErrorKind.MISSING_BINARY, ErrorKind.NOT_EXECUTABLE, ErrorKind.AUTH, ErrorKind.CLI_USAGE}
)
DEFAULT_COOLDOWN_S = 30.0  # after a 429 that does not say how long to wait
LEASE_MARGIN_S = 120.0  # a budget lease outlives the longest tool timeout by this much
MAX_LINE = 240  # a fallback line's reason is cut to this many characters


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
    telemetry: TelemetryWriter | None = None
    on_group: Callable[[int, Path], None] | None = None  # a tool's process group started
    limiters: dict[str, anyio.CapacityLimiter] = field(default_factory=dict)
    free_run_dirs: list[Path] = field(default_factory=list)
    found_binaries: set[tuple[str, str]] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.pricer = Pricer(self.config)
        work = self.runs_dir.parent
        longest = max((tool.timeout for tool in self.config.tools.values()), default=0.0)
        self.ledger = SharedLedger(  # shared with every process on the workspace
            self.config.policies.budgets,
            work / "ledger.db",
            work / "telemetry.db",
            lease_s=longest + LEASE_MARGIN_S,
        )
        self.rates = RateLimiter(self.config)

    def take_run_dir(self) -> Path:
        """An empty private folder for one run (its TMPDIR); folders are reused, since
        creating and removing one per task costs more than the rest of the bookkeeping."""
        if self.free_run_dirs:
            return self.free_run_dirs.pop()
        run_dir = self.runs_dir / f"{os.getpid()}-{next(_RUN_DIRS)}"
        run_dir.mkdir(parents=True)
        return run_dir

    def give_back(self, run_dir: Path) -> None:
        with os.scandir(run_dir) as entries:
            leftovers = [e.path for e in entries]
        for path in leftovers:  # what the tool (or its adapter's files) left behind
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path, ignore_errors=True)
            else:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)
        self.free_run_dirs.append(run_dir)

    def check_binary(self, binary: str, path: str, tool_name: str) -> ToolFailure | None:
        """None when `binary` can run; found binaries are remembered (a PATH search is a
        dozen stat calls per task otherwise), missing ones are looked for every time."""
        key = (binary, path)
        if key in self.found_binaries:
            return None
        failure = _missing_binary(binary, path, tool_name)
        if failure is None:
            self.found_binaries.add(key)
        return failure

    def remove_run_dirs(self) -> None:
        """At the end: the free run folders go (a busy one is its run's to clean)."""
        while self.free_run_dirs:
            shutil.rmtree(self.free_run_dirs.pop(), ignore_errors=True)

    def limiter(self, tool: str) -> anyio.CapacityLimiter:
        if tool not in self.limiters:
            self.limiters[tool] = anyio.CapacityLimiter(self.config.tools[tool].max_concurrency)
        return self.limiters[tool]

    def plan(self, task: Task, prompt_tokens: int | None = None) -> list[Attempt]:
        cheap = None
        threshold = self.config.policies.cost_optimization.simple_task_threshold_tokens
        pinned = task.tool is not None or task.model is not None
        if not pinned and prompt_tokens is not None and prompt_tokens < threshold:
            cheap = simple_task_model(self.config, task.agent)
        return route(
            self.config,
            task.agent,
            task_type=task.task_type,
            tool=task.tool,
            model=task.model,
            cheap_model=cheap,
        )

    def invocation(self, attempt: Attempt, prompt: str, ctx: RunContext) -> Invocation:
        """The adapter's invocation, its binary resolved (a relative path with a
        separator is taken from the workspace, whatever the daemon's own cwd)."""
        tool = self.config.tools[attempt.tool]
        built = get_adapter(tool.adapter).build(tool, attempt.model, prompt, ctx)
        binary = resolve_binary(built.argv[0], self.config.root)
        return replace(built, argv=[binary, *built.argv[1:]])

    def estimate(self, attempt: Attempt, prompt_tokens: int) -> float | None:
        """The expected cost of an attempt: prompt + the tool's overhead + typical output."""
        overhead = self.config.tools[attempt.tool].prompt_overhead_tokens
        usage = Usage(
            input_tokens=prompt_tokens + overhead,
            output_tokens=self.config.policies.budgets.estimated_output_tokens,
        )
        return self.pricer.price(attempt.model, usage).usd


@dataclass
class _Run:
    """The state of one task's execution."""

    task: Task
    prompt: str
    prompt_tokens: int
    result: Result
    chain: list[Attempt]
    justification: str | None = None  # forced past hard budgets (exec --force)
    failed_for_good: set[tuple[str, str | None]] = field(default_factory=set)
    broken_tools: dict[str, ToolFailure] = field(default_factory=dict)  # tool-wide failures
    tried: set[tuple[str, str | None]] = field(default_factory=set)
    passed_over: set[tuple[str, str | None]] = field(default_factory=set)
    last_failure: ToolFailure | None = None
    why: str = ""  # why the last turn gave way to the next entry (for the fallback line)

    def usable(self, attempt: Attempt) -> bool:
        """False for an entry whose tool failed tool-wide, or whose tool:model failed for
        a reason retrying cannot fix: such entries are passed over and use no attempt."""
        key = (attempt.tool, attempt.model)
        return attempt.tool not in self.broken_tools and key not in self.failed_for_good

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


async def execute(
    engine: Engine,
    task: Task,
    prompt: str,
    *,
    on_start: Callable[[Attempt], None] | None = None,
    on_fallback: Callable[[str], None] | None = None,
    justification: str | None = None,
    shown: Collection[str] = (),
) -> Result:
    """Run the attempts of `task` until one succeeds; never raises for a tool's failure.

    The chain is walked round until `retries.max_attempts` turns are used. A turn is an
    attempt that was made (even one whose binary is missing) or one given up to a rate
    limit; entries passed over because their tool failed tool-wide, or their tool:model
    failed for good, use none. Each fallback is logged and given to `on_fallback` as one
    line. `justification` runs past hard budgets (recorded in the result and telemetry);
    `shown` are budget warnings the caller has shown already (recorded, not logged again).
    """
    config = engine.config
    started = now_utc()
    tokens = estimate_tokens(prompt)
    run = _Run(
        task=task,
        prompt=prompt,
        prompt_tokens=tokens,
        result=Result(id=task.id, status="failed", agent=task.agent, started_at=iso(started)),
        chain=engine.plan(task, tokens),
        justification=justification,
    )
    if justification is not None:
        run.result.warnings.append(f"forced: {justification}")
    run.result.warnings.extend(shown)
    max_attempts = config.policies.retries.max_attempts
    position = used = 0
    while upcoming := run.upcoming(position, max_attempts - used):
        while not run.usable(run.chain[position % len(run.chain)]):
            _pass_over(run, run.chain[position % len(run.chain)])
            position += 1
        attempt = run.chain[position % len(run.chain)]
        position += 1
        outcome = await _one(engine, run, used, attempt, upcoming[1:], on_start)
        used += 1
        if outcome == "stop":
            break
        following = run.upcoming(position, max_attempts - used)
        if following:
            line = _fallback_line(attempt, run.why, following[0])
            log.info("task %s: %s", task.id, line)
            if on_fallback is not None:
                on_fallback(line)
    _finish(run, engine)
    finished = now_utc()
    run.result.finished_at = iso(finished)
    run.result.duration_ms = int((finished - started).total_seconds() * 1000)
    return run.result


def _pass_over(run: _Run, attempt: Attempt) -> None:
    """An entry that is not tried; the first time an untried one's tool is out for the
    whole task, it is listed among the attempts as skipped, with the reason."""
    key = (attempt.tool, attempt.model)
    failure = run.broken_tools.get(attempt.tool)
    if failure is None or key in run.tried or key in run.passed_over:
        return
    run.passed_over.add(key)
    run.result.attempts.append(
        _skipped(
            attempt,
            failure.kind,
            f"not tried: {attempt.tool} failed for every model earlier in this task "
            f"({failure.message})",
            failure.hint,
        )
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
    run: _Run,
    number: int,
    attempt: Attempt,
    later: list[Attempt],
    on_start: Callable[[Attempt], None] | None,
) -> str:
    """One scheduled attempt; "stop" ends the chain."""
    config = engine.config
    key = (attempt.tool, attempt.model)
    wait = engine.rates.delay(attempt.tool, attempt.model)
    if wait > 0 and any((a.tool, a.model) != key for a in later):
        run.why = f"rate limited for another {wait:.1f}s"
        run.result.attempts.append(
            _skipped(attempt, ErrorKind.RATE_LIMIT, run.why, "the next tool in the chain was tried")
        )
        return "next"
    if key in run.tried:
        backoff = config.policies.retries.backoff * 2 ** max(0, number - len(run.chain))
        wait = max(wait, backoff)
    if wait > 0:
        await anyio.sleep(wait)
    attempt, reservation = await _reserve(engine, run, attempt, number + 1)
    if reservation is None and run.result.status == "blocked_by_budget":
        return "stop"
    engine.rates.take(attempt.tool, attempt.model)
    run.tried.add(key)
    if on_start is not None:
        on_start(attempt)
    record, parsed, failure, cost = await _attempt(engine, run, attempt)
    if reservation is not None and reservation.leases:
        await anyio.to_thread.run_sync(engine.ledger.settle, reservation, cost.usd)
    else:
        engine.ledger.settle(reservation, cost.usd)
    run.result.attempts.append(record)
    _record(engine, run, number, attempt, record, parsed, cost)
    if failure is None:
        _succeed(run, attempt, parsed)
        return "stop"
    run.last_failure = failure
    log.info("task %s: %s/%s failed: %s", run.task.id, attempt.tool, attempt.model, failure.kind)
    if failure.kind == ErrorKind.RATE_LIMIT:
        engine.rates.cool_down(attempt.tool, failure.retry_after_s or DEFAULT_COOLDOWN_S)
    if failure.kind in PERMANENT_KINDS:
        run.failed_for_good.add(key)
    if failure.kind in TOOL_WIDE_KINDS:
        run.broken_tools[attempt.tool] = failure
        run.why = f"unavailable: {failure.message}"
    else:
        run.why = f"failed ({failure.kind}): {failure.message}"
    over_budget = run.task.budget_usd is not None and _spent(run) >= run.task.budget_usd
    return "stop" if failure.kind not in FALLBACK_KINDS or over_budget else "next"


async def _reserve(
    engine: Engine, run: _Run, attempt: Attempt, number: int
) -> tuple[Attempt, Reservation | None]:
    """Reserve the attempt's estimated cost; downgrade or block when the budget is spent.
    The shared ledger is a database transaction: it runs in a worker thread."""
    budgets = engine.config.policies.budgets
    estimate = engine.estimate(attempt, run.prompt_tokens)

    def reserve(amount: float) -> tuple[BudgetDecision, Reservation | None]:
        return engine.ledger.reserve(
            run.task.agent, amount, now_utc(), task_id=run.task.id, attempt=number
        )

    if engine.ledger.applies_to(run.task.agent):
        decision, reservation = await anyio.to_thread.run_sync(reserve, estimate or 0.0)
    else:  # no budget limit: nothing to count, no transaction, no thread
        decision, reservation = reserve(estimate or 0.0)
    if not decision.allowed and run.justification is not None:
        warning = forced_past(decision)
        if warning not in run.result.warnings:
            log.warning("task %s: %s", run.task.id, warning)
            run.result.warnings.append(warning)
        return attempt, None
    if not decision.allowed and budgets.on_budget_exhausted == "downgrade":
        for cheaper in _cheaper(engine, run, attempt, estimate):
            cheaper_estimate = engine.estimate(cheaper, run.prompt_tokens) or 0.0
            decision, reservation = await anyio.to_thread.run_sync(reserve, cheaper_estimate)
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


def _cheaper(engine: Engine, run: _Run, attempt: Attempt, estimate: float | None) -> list[Attempt]:
    """Simple-task models the agent's tools serve that cost less, cheapest first."""
    config = engine.config
    agent = config.agents[run.task.agent]
    usable = agent_tools(config, run.task.agent)
    options = []
    for target in config.policies.cost_optimization.simple_task_models:
        tool, model = resolve(config, target, agent)
        option = Attempt(tool, model, "budget_downgrade")
        cost = engine.estimate(option, run.prompt_tokens)
        if tool in usable and cost is not None and (estimate is None or cost < estimate):
            options.append((cost, option))
    return [a for _, a in sorted(options, key=lambda pair: pair[0]) if a != attempt]


def _spent(run: _Run) -> float:
    return sum(r.cost_usd or 0.0 for r in run.result.attempts)


def forced_past(decision: BudgetDecision) -> str:
    """The result's line for an attempt that a hard budget would have blocked."""
    return f"{decision.message}: run anyway (forced)"


def _skipped(attempt: Attempt, kind: str, why: str, hint: str) -> AttemptRecord:
    return AttemptRecord(
        tool=attempt.tool,
        model=attempt.model,
        reason=attempt.reason,
        started_at=iso(now_utc()),
        duration_ms=0,
        exit_code=None,
        outcome="skipped",
        error=error_info(kind, why, hint),
    )


def _succeed(run: _Run, attempt: Attempt, parsed: ParsedOutput) -> None:
    result = run.result
    result.status = "succeeded"
    result.tool = attempt.tool
    result.model = parsed.model or attempt.model
    result.route_reason = attempt.reason
    earlier = [r for r in result.attempts[:-1] if r.outcome != "succeeded"]
    if earlier:
        first = earlier[0]
        result.fallback_from = f"{first.tool}:{first.model}" if first.model else first.tool
        if attempt.reason in ("preferred", "task_type", "cost_optimization"):
            result.route_reason = "fallback"
    result.output = parsed.text
    result.session_id = parsed.session_id


def _finish(run: _Run, engine: Engine) -> None:
    result = run.result
    if result.status not in ("succeeded", "blocked_by_budget"):
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
    _sum_usage(result)


def _sum_usage(result: Result) -> None:
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


def _record(
    engine: Engine,
    run: _Run,
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


async def _attempt(
    engine: Engine, run: _Run, attempt: Attempt
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
    engine: Engine, run: _Run, attempt: Attempt, parsed: ParsedOutput
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


def _missing_binary(binary: str, path: str, tool_name: str) -> ToolFailure | None:
    if shutil.which(binary, path=path) is not None:
        return None
    if os.sep in binary and os.path.exists(binary):
        return ToolFailure(
            ErrorKind.NOT_EXECUTABLE,
            f"{binary} is not executable",
            f"chmod +x {binary}, or fix tools.{tool_name}.binary",
        )
    if os.sep in binary:
        return ToolFailure(
            ErrorKind.MISSING_BINARY,
            f"{binary} does not exist",
            f"fix tools.{tool_name}.binary (a relative path is taken from the workspace)",
        )
    return ToolFailure(
        ErrorKind.MISSING_BINARY,
        f"{binary!r} not found on PATH",
        f"install it (see `orchestrator doctor`) or fix tools.{tool_name}.binary",
    )


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
