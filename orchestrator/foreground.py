"""`orchestrator exec`: one task run now, in the foreground, through the daemon's routing,
policy and telemetry; the budgets checked first, each fallback said as it happens."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import sqlite3
import time
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import anyio

from orchestrator.admission import NEEDS_JUSTIFICATION
from orchestrator.engine import Engine, now_utc
from orchestrator.errors import TaskRejected, TelemetryUnusable, UsageError
from orchestrator.execute import execute, forced_past
from orchestrator.policy import decide, estimate_tokens, windows_for
from orchestrator.quota import WAITING, give_up, local_time, resume_epoch, wait_note
from orchestrator.results import Result, error_info
from orchestrator.submit import check_agent, needs_justification, new_id
from orchestrator.tasks import MAX_INPUT_BYTES, Task, compose_prompt, read_profile
from orchestrator.telemetry.store import (
    chain_of,
    connect,
    hint_for,
    is_busy,
    record_output,
    unusable,
)
from orchestrator.telemetry.writer import TelemetryWriter
from orchestrator.workdir import Workdir, atomic_write

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Mapping
    from datetime import datetime
    from pathlib import Path

    from orchestrator.config import Config
    from orchestrator.policy import Window

log = logging.getLogger(__name__)


def _read_context(path: Path) -> bytes:
    """An `exec --context` file: any file the user names (a pipe from `<(git diff)` too),
    read with a bound, so a link to /dev/zero cannot exhaust the memory."""
    try:
        with path.open("rb") as f:
            data = f.read(MAX_INPUT_BYTES + 1)
        if len(data) > MAX_INPUT_BYTES:
            raise UsageError(f"--context {path}: larger than {MAX_INPUT_BYTES} bytes")
        data.decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"--context {path}: {exc}") from None
    return data


async def exec_task(
    config: Config,
    agent: str,
    prompt: str,
    contexts: list[Path],
    output: Path | None = None,
    chain: str | None = None,
    *,
    justification: str | None = None,
    confirm: Callable[[], bool] | None = None,
    say: Callable[[str], None] | None = None,
    session: str | None = None,
    pins: Mapping[str, str] | None = None,
) -> Result:
    """Run one task now, through the same routing, policy and telemetry as the daemon.

    `pins` ({"tool": …, "model": …}, checked by `submit.pins`) choose the tool and model
    as a task's `tool:` and `model:` do. Context files are appended to the prompt. A
    context file that an earlier `exec --output` wrote puts this task in that task's
    chain (same chain id in telemetry).
    The telemetry database never fails the task: when it is locked the run waits for it
    a bounded time, when it is unusable the task runs unrecorded, with a warning.

    Before running, the first attempt's estimate is checked against the budgets and the
    spend recorded so far (see `check_budgets`): its warnings and each fallback go to
    `say`, one line each; with warnings, `confirm` (when given) decides whether to run.
    A hard budget the request would pass blocks it, unless `justification` forces it; an
    estimate over `require_justification_over_usd` without one is rejected: nothing runs.
    """
    check_agent(config, agent)
    parts = [prompt.strip()]
    digests = []
    for path in contexts:
        data = _read_context(path)
        digests.append(hashlib.sha256(data).hexdigest())
        parts.append(f"## {path}\n\n{data.decode('utf-8').strip()}")
    workdir = Workdir(config.root)
    workdir.runs.mkdir(parents=True, exist_ok=True)
    task_id = f"exec-{new_id(agent)}"
    with contextlib.closing(_Records(workdir.work / "telemetry.db")) as records:
        chain = chain or records.chain_of(digests) or task_id
        task = Task(
            id=task_id,
            agent=agent,
            prompt="\n\n".join(parts) + "\n",
            chain_id=chain,
            session=session,
            **(pins or {}),
        )
        try:
            profile = read_profile(config, agent)
        except TaskRejected as exc:
            raise UsageError(str(exc)) from None
        full_prompt = compose_prompt(task, config.root, "exec", profile)
        engine = Engine(config, workdir.runs)
        if (over := needs_justification(engine, task, full_prompt, justification)) is not None:
            hint = "add --force --justification TEXT: recorded; --force also passes hard budgets"
            error = error_info(NEEDS_JUSTIFICATION, f"{over}: nothing was run", hint)
            return Result(id=task_id, status="rejected", agent=agent, error=error)
        check = check_budgets(engine, task, full_prompt, justification, now_utc())
        for line in check.lines:
            if say is not None:
                say(line)
        if check.blocked is not None:
            return Result(id=task_id, status="blocked_by_budget", agent=agent, error=check.blocked)
        if check.lines and confirm is not None and not confirm():
            return Result(id=task_id, status="cancelled", agent=agent, error=DECLINED)
        run = partial(execute, on_fallback=say, justification=justification, shown=check.shown)
        result = await _run(engine, records, task, full_prompt, _waiting_for_quota(run, say))
        if output is not None and result.status == "succeeded":
            data = (result.output or "").encode("utf-8")
            atomic_write(output, data, durable=False)
            records.output(hashlib.sha256(data).hexdigest(), output, task_id, chain)
    return result


DECLINED = error_info(
    "declined", "not run: the budget warning was not confirmed", "answer y to run it, or pass --yes"
)


def _waiting_for_quota(
    run: Callable[..., Awaitable[Result]], say: Callable[[str], None] | None
) -> Callable[[Engine, Task, str], Awaitable[Result]]:
    """`run`, waiting in place while every tool of the chain is out of quota: a line says
    until when, and the task goes on from there (`usage_windows.max_wait` at most)."""

    async def until_open(engine: Engine, task: Task, prompt: str) -> Result:
        result = await run(engine, task, prompt)
        since = time.time()
        settings = engine.config.policies.usage_windows
        while result.status == WAITING and not give_up(result, since, settings):
            until = resume_epoch(result)
            why = (result.error or {}).get("message", "")
            if say is not None:
                say(f"{why}; waiting until {local_time(until)} (Ctrl-C stops)")
            result.warnings.append(wait_note(time.time(), until, why))
            await anyio.sleep(max(0.0, until - time.time()))
            result = await run(engine, task, prompt, carried=result)
        return result

    return until_open


async def _run(
    engine: Engine,
    records: _Records,
    task: Task,
    prompt: str,
    run: Callable[[Engine, Task, str], Awaitable[Result]],
) -> Result:
    """`execute` with a telemetry writer beside it (none when the database is unusable)."""
    if records.problem is not None:
        result = await run(engine, task, prompt)
        engine.close()
        return result
    telemetry = TelemetryWriter(records.path, zone=engine.config.policies.budgets.timezone)
    async with anyio.create_task_group() as tg:
        tg.start_soon(_write_telemetry, telemetry)
        engine.telemetry = telemetry
        result = await run(engine, task, prompt)
        engine.close()
        telemetry.close()
    if telemetry.health.dropped:  # the writer waited its bounded time and gave up
        error = telemetry.health.last_error or "rows could not be written"
        problem = TelemetryUnusable(records.path, error, hint_for(error))
        log.warning("%s", problem.with_consequence("this run is not recorded"))
        records.gave_up = True  # nor its --output file: no second wait for the lock
    return result


# --- exec's look at the budgets before it runs -----------------------------------------


@dataclass
class BudgetCheck:
    lines: list[str] = field(default_factory=list)  # for the user, one warning a line
    blocked: dict[str, str] | None = None  # the error when a hard budget forbids the run
    shown: list[str] = field(default_factory=list)  # the result's lines for the same


def check_budgets(
    engine: Engine, task: Task, prompt: str, justification: str | None, now: datetime
) -> BudgetCheck:
    """The request's first attempt, estimated, against every budget window that applies,
    with the spend recorded so far: a warning for each window it brings to
    `warn_at_percent` or past; in hard mode (and `on_budget_exhausted: block`) a window
    it would pass blocks it, with the options, unless `justification` forces it."""
    tokens = estimate_tokens(prompt)
    chain = engine.plan(task, tokens)
    budgets = engine.config.policies.budgets
    windows = windows_for(budgets, task.agent, now)
    if not chain or not windows:
        return BudgetCheck()
    estimate = engine.estimate(chain[0], tokens) or 0.0
    check = BudgetCheck()
    for window in windows:
        spent = engine.ledger.committed_in(window)  # every process's spend and holds
        decision = decide([window], {window.key: spent}, estimate, budgets)
        if decision.allowed and not decision.warnings:
            continue
        after = spent + estimate
        percent = 100 * after / window.limit_usd if window.limit_usd else 100.0
        check.lines.append(
            f"warning: {window.describe()} is ${window.limit_usd:.2f}; ${spent:.4f} is spent "
            "or held, "
            f"and with this request's estimate of ${estimate:.4f} that makes ${after:.4f} "
            f"({percent:.0f}%)"
        )
        check.shown.extend(decision.warnings)
        if decision.allowed or budgets.on_budget_exhausted == "downgrade":
            continue
        if justification is not None:
            check.lines.append(
                f"warning: --force: running past {window.describe()}; "
                f"justification recorded: {justification}"
            )
            check.shown.append(forced_past(decision))
        elif check.blocked is None:
            check.blocked = _blocked(window, spent, estimate, budgets.timezone)
    return check


def _blocked(window: Window, spent: float, estimate: float, zone: str) -> dict[str, str]:
    resets = window.end.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M")
    return error_info(
        "budget_exhausted",
        f"{window.describe()} is ${window.limit_usd:.2f}: ${spent:.4f} spent + "
        f"${estimate:.4f} estimated for this request = ${spent + estimate:.4f}; nothing was run",
        f"raise the budget: {budget_key(window)} in config/policies.yaml\n"
        f"or wait until it resets at {resets} ({zone})\n"
        "or run it anyway: --force --justification TEXT (recorded in telemetry)",
    )


def budget_key(window: Window) -> str:
    """The key of config/policies.yaml that sets `window`'s limit."""
    name = f"{window.period}_usd"
    if window.scope == "global":
        return f"budgets.{name}"
    return f"budgets.per_agent.{window.scope}.{name}"


def failure_lines(result: Result) -> list[str]:
    """What `exec` says when the task did not succeed: the error, what to do, and every
    attempt with why it gave no answer, one line each."""
    error = result.error or {}
    hint = error.get("hint", "").splitlines()
    first = f"error: task {result.status}: {error.get('message', '')}"
    lines = [f"{first} ({hint[0]})" if len(hint) == 1 else first]
    lines += [f"  {line}" for line in hint if len(hint) > 1]
    if result.attempts:
        lines.append("attempts:")
    for number, attempt in enumerate(result.attempts, 1):
        name = f"{attempt.tool}:{attempt.model}" if attempt.model else attempt.tool
        why = attempt.error or {}
        message = " ".join(str(why.get("message", "")).split())
        lines.append(f"  {number}. {name} {attempt.outcome}: {why.get('kind', '')}: {message}")
    return lines


async def _write_telemetry(telemetry: TelemetryWriter) -> None:
    """The writer, which must never take the task's answer down with it."""
    try:
        await telemetry.run()
    except (sqlite3.Error, OSError) as exc:
        log.warning(
            "telemetry: writing %s failed (%s): this run is not recorded", telemetry.path, exc
        )


UNRECORDED = "this run is not recorded and budgets count spend from $0"


class _Records:
    """What `exec` itself reads and writes in the telemetry database: the chains of
    --context files, past spend for the budgets, and the --output file. A database that
    is locked is waited for (SQLite's busy timeout), then skipped; one that is unusable
    (not a database, corrupt, unreadable) is reported once and left alone, as the daemon
    does: the task runs, unrecorded, and budgets count spend from $0."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.problem: TelemetryUnusable | None = None
        self.gave_up = False  # the writer could not record the run
        self.db: sqlite3.Connection | None = None
        try:
            self.db = connect(path)  # creates it, or brings its schema up to date
        except sqlite3.Error as exc:
            self._failed(exc, "past spend and the chains of --context files are not read")

    def _failed(self, exc: sqlite3.Error, consequence: str) -> None:
        problem = unusable(self.path, exc)
        if is_busy(exc):  # the writer tries again while the task runs
            log.warning("%s", problem.with_consequence(consequence))
        elif self.problem is None:
            self.problem = problem
            log.warning("%s", problem.with_consequence(UNRECORDED))

    def chain_of(self, digests: list[str]) -> str | None:
        if self.db is None or not digests:
            return None
        try:
            return next(filter(None, (chain_of(self.db, d) for d in digests)), None)
        except sqlite3.Error as exc:
            self._failed(exc, "the chains of the --context files are not read")
            return None

    def output(self, sha256: str, path: Path, task_id: str, chain: str) -> None:
        if self.problem is not None or self.gave_up:
            return
        try:
            if self.db is None:
                self.db = connect(self.path)
            record_output(self.db, sha256, str(path), task_id, chain)
        except sqlite3.Error as exc:
            self._failed(exc, f"{path} is written, but its chain is not recorded")

    def close(self) -> None:
        if self.db is not None:
            self.db.close()
