"""What every adapter produces and consumes: invocations, parsed output, failures.

An adapter is pure functions over a tool's config: `build` turns (model, prompt) into an
`Invocation` (argv list, stdin, extra environment, files to write first), and `parse`
turns the finished process's output into a `ParsedOutput`. A tool whose output is a stream
of JSON lines has a `stream` parser too: one per run, fed each line as it comes (`feed`
returns the progress events the line shows), which also gives the final `ParsedOutput`
(`result`); `parse` is that parser run over the whole stdout, so the answer read live and
the one read at the end cannot disagree. `watch_line` lets an adapter end a run early when
a line proves it cannot succeed (codex waiting for the network).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import TYPE_CHECKING, Literal, Protocol

if TYPE_CHECKING:
    from pathlib import Path

    from orchestrator.config import ToolConfig
    from orchestrator.progress.events import Event


class ErrorKind(StrEnum):
    RATE_LIMIT = "rate_limit"
    USAGE_LIMIT = "usage_limit"  # a plan's or quota's window closed: it opens at a set time
    OVERLOADED = "overloaded"
    SERVER = "server_error"
    CONNECTION = "connection"
    AUTH = "auth"
    BAD_REQUEST = "bad_request"
    CLI_USAGE = "cli_usage"
    TIMEOUT = "timeout"
    MISSING_BINARY = "missing_binary"
    NOT_EXECUTABLE = "not_executable"
    EXIT = "nonzero_exit"
    SIGNAL = "killed_by_signal"
    BAD_OUTPUT = "bad_output"
    CANCELLED = "cancelled"
    STALLED = "stalled"  # no output for idle_timeout: killed, like a timeout
    BUDGET_EXCEEDED = "budget_exceeded"  # the task's budget_usd was passed mid-run: stopped


# Failures that are the tool's or the provider's problem: the next tool in the chain may work.
FALLBACK_KINDS = frozenset(
    {
        ErrorKind.RATE_LIMIT,
        ErrorKind.USAGE_LIMIT,
        ErrorKind.OVERLOADED,
        ErrorKind.SERVER,
        ErrorKind.CONNECTION,
        ErrorKind.AUTH,
        ErrorKind.TIMEOUT,
        ErrorKind.STALLED,
        ErrorKind.MISSING_BINARY,
        ErrorKind.NOT_EXECUTABLE,
        ErrorKind.EXIT,
        ErrorKind.SIGNAL,
        ErrorKind.BAD_OUTPUT,
    }
)


@dataclass(frozen=True)
class Usage:
    """Token counts, normalised: `input_tokens` never includes cache reads or writes."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0


@dataclass(frozen=True)
class ToolFailure:
    kind: ErrorKind
    message: str
    hint: str = ""
    status: int | None = None  # the provider's HTTP status, when known
    retry_after_s: float | None = None
    resets_at: float | None = None  # epoch seconds: when the closed window opens again
    window: str | None = None  # which window closed, as the CLI names it ("five_hour")
    whole_tool: bool = False  # the window is the account's, not one model's


@dataclass(frozen=True)
class ParsedOutput:
    text: str | None = None
    usage: Usage | None = None
    cost_usd: float | None = None  # reported by the tool itself
    model: str | None = None  # the model that actually answered, when the tool says
    session_id: str | None = None
    failure: ToolFailure | None = None

    @property
    def cost_source(self) -> Literal["reported"] | None:
        return "reported" if self.cost_usd is not None else None


# What one attempt can plausibly report. A long agent run re-reads a context of up to a
# few million tokens on each of some hundred turns: 10^9 tokens of one kind is beyond any
# real run, yet small enough that sums stay exact in a float. The dearest models charge
# tens to hundreds of dollars per million tokens and real runs cost cents to tens of
# dollars: $10,000 for one attempt is a broken report (or one no budget could allow).
MAX_TOKENS = 10**9
MAX_COST_USD = 10_000.0


def possible_cost(value: object) -> bool:
    """A finite number of dollars in [0, MAX_COST_USD]."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return math.isfinite(value) and 0 <= value <= MAX_COST_USD


def _count(value: object) -> int | None:
    """A whole number of tokens in [0, MAX_TOKENS] (an integral float counts), else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, float) and not value.is_integer():  # also NaN and the infinities
        return None
    return int(value) if 0 <= value <= MAX_TOKENS else None


def sane(parsed: ParsedOutput) -> tuple[ParsedOutput, list[tuple[str, object]]]:
    """`parsed` without the numbers no real run reports, and the (field, value) pairs
    removed: usage goes as a whole when any count is impossible (a partial count would
    price too low), a reported cost when it is not a possible cost."""
    impossible: list[tuple[str, object]] = []
    usage = parsed.usage
    if usage is not None:
        counts = {name: _count(value) for name, value in vars(usage).items()}
        impossible += [(n, getattr(usage, n)) for n, count in counts.items() if count is None]
        usage = None if impossible else Usage(**{n: c or 0 for n, c in counts.items()})
    cost = parsed.cost_usd
    if cost is not None and not possible_cost(cost):
        impossible.append(("cost_usd", cost))
        cost = None
    if usage == parsed.usage and cost == parsed.cost_usd:
        return parsed, impossible
    return replace(parsed, usage=usage, cost_usd=cost), impossible


@dataclass(frozen=True)
class Invocation:
    argv: list[str]
    stdin: bytes | None = None
    env: dict[str, str] = field(default_factory=dict)  # set by the adapter, beyond passthrough
    files: dict[str, bytes] = field(default_factory=dict)  # run-dir relative, written first
    # Run-dir relative: the tool writes its answer there, which is read in place of stdout.
    answer_file: str | None = None


@dataclass(frozen=True)
class RunContext:
    """Where and for whom a tool runs; `run_dir` is a fresh private folder (also TMPDIR)."""

    task_id: str
    workspace: Path
    run_dir: Path
    # What is left of the task's budget_usd (its earlier attempts' cost taken off), for tools
    # that enforce one themselves (claude's --max-budget-usd).
    budget_usd: float | None = None
    # A session (orchestrator/sessions.py): the CLI session to resume (None: start one), and
    # a home of the session's own for CLIs that keep their sessions in their home (gemini).
    resume: str | None = None
    session_home: Path | None = None


class StreamParser(Protocol):
    """Reads one run's output line by line (see the module docstring)."""

    # A line proved the run cannot succeed (codex waiting for the network): stop it.
    stop: ToolFailure | None

    def feed(self, line: bytes) -> list[Event]:
        """Take one line of stdout (without its newline); the events it shows."""
        ...

    def so_far(self) -> ParsedOutput:
        """The usage, cost, model and session reached so far (no text, no failure): what a
        run killed mid-way (timeout, stall, budget) records."""
        ...

    def result(self, stderr: bytes, exit_code: int | None) -> ParsedOutput:
        """The parsed output of the finished run: every line has been fed."""
        ...


class Adapter(Protocol):
    # The CLI stops itself at the task's budget (given as RunContext.budget_usd), so the
    # runner need not price its stream to stop it.
    enforces_budget: bool

    def build(
        self, tool: ToolConfig, model: str | None, prompt: str, ctx: RunContext
    ) -> Invocation: ...

    def parse(
        self,
        tool: ToolConfig,
        model: str | None,
        stdout: bytes,
        stderr: bytes,
        exit_code: int | None,
    ) -> ParsedOutput: ...

    def watch_line(self, line: bytes) -> ToolFailure | None: ...

    def stream(self, tool: ToolConfig, model: str | None) -> StreamParser | None:
        """A parser for one run, or None when the tool's output is not a stream."""
        ...
