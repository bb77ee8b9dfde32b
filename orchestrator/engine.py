"""What running tasks needs, built once per process (the daemon, or one `exec`): the config,
prices, the shared budget ledger, rate limits, per-tool concurrency, private run folders,
the binaries found; and the environment each tool is given.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from orchestrator import observers
from orchestrator.adapters import get_adapter
from orchestrator.adapters.base import ErrorKind, Invocation, RunContext, ToolFailure, Usage
from orchestrator.circuits import Breakers
from orchestrator.config import resolve_binary
from orchestrator.executors.local import LocalExecutor
from orchestrator.ledger import SharedLedger
from orchestrator.policy import RateLimiter
from orchestrator.pricing import Pricer
from orchestrator.routing import Attempt, route, simple_task_model
from orchestrator.sessions import Sessions
from orchestrator.slots import Slots
from orchestrator.windows import STATE_FILE as WINDOWS_FILE
from orchestrator.windows import Windows

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from orchestrator.config import Config, ToolConfig
    from orchestrator.executors import Executor
    from orchestrator.tasks import Task
    from orchestrator.telemetry.writer import TelemetryWriter

_RUN_DIRS = itertools.count(1)

# The environment every tool gets; anything else must be declared in its `env:` list.
BASE_ENV = ("PATH", "HOME", "USER", "LOGNAME", "LANG", "LC_ALL", "LC_CTYPE", "TERM", "TZ")
LEASE_MARGIN_S = 120.0  # a budget lease outlives the longest tool timeout by this much


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
    limiters: dict[str, Slots] = field(default_factory=dict)
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
        self.breakers = Breakers(self.config.policies.circuit_breaker)
        self.windows = Windows(work / WINDOWS_FILE)  # shared with every process, like the ledger
        self.observers = observers.from_environment()
        self.sessions = Sessions(work)
        self.executor: Executor = LocalExecutor()  # the daemon may put a Dask one here

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

    def close(self) -> None:
        """At the end: the free run folders go (a busy one is its run's to clean), and the
        observers send what they hold."""
        while self.free_run_dirs:
            shutil.rmtree(self.free_run_dirs.pop(), ignore_errors=True)
        observers.shut_down(self.observers)

    def limiter(self, tool: str) -> Slots:
        """The tool's `max_concurrency` slots, served by task priority."""
        if tool not in self.limiters:
            self.limiters[tool] = Slots(self.config.tools[tool].max_concurrency)
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
