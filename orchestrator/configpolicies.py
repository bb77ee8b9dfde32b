"""The models of `config/policies.yaml`, and of the optional `config/schedules.yaml` and
`config/executor.yaml`: what tasks may spend, how they are retried, what is recorded,
what runs on a schedule and where tools run.

Each field's description is the documentation of its key: `orchestrator.reference` renders
them into docs/reference/config.md. `orchestrator.config` re-exports every model here.
(No `from __future__ import annotations`: pydantic evaluates these annotations, and so ruff
keeps the imports they need, whose base class it cannot see from here.)
"""

from typing import Any, Literal, Self

from pydantic import Field, model_validator

from orchestrator.configagents import RateLimit, Strict
from orchestrator.values import Duration, Pause

# --- policies.yaml ---------------------------------------------------------------------


class AgentBudget(Strict):
    """One agent's own limits, beside the global ones."""

    daily_usd: float | None = Field(
        None, ge=0, description="USD this agent may spend per calendar day."
    )
    monthly_usd: float | None = Field(
        None, ge=0, description="USD this agent may spend per calendar month."
    )


class Budgets(Strict):
    """Spend limits, held across every process that runs tasks: an attempt reserves its
    estimated cost before it starts (docs/spend.md)."""

    daily_usd: float | None = Field(
        None,
        ge=0,
        description="USD all agents together may spend per calendar day. Not set: no limit.",
    )
    monthly_usd: float | None = Field(
        None,
        ge=0,
        description="USD all agents together may spend per calendar month. Not set: no limit.",
    )
    warn_at_percent: float = Field(
        80,
        gt=0,
        le=100,
        description="A task that brings a window's spend to this share of its limit, or "
        "past it, warns (in its result, the log and `status`).",
    )
    mode: Literal["soft", "hard"] = Field(
        "hard",
        description="`hard`: an attempt that would pass a limit is not started (status "
        "`blocked_by_budget`); `soft`: it runs, with a warning.",
    )
    timezone: str = Field(
        "UTC",
        description="The IANA time zone (`Europe/Berlin`) of the budgets' calendar days and "
        "months, of `stats` periods and of schedules.",
    )
    per_agent: dict[str, AgentBudget] = Field(
        default_factory=dict, description="Limits of single agents, by agent name."
    )
    on_budget_exhausted: Literal["block", "downgrade"] = Field(
        "block",
        description="`block`: a hard limit blocks the attempt; `downgrade`: the attempt moves "
        "to the cheapest `cost_optimization.simple_task_models` entry that fits (route "
        "reason `budget_downgrade`), and is blocked only when none does.",
    )
    estimated_output_tokens: int = Field(
        2000,
        ge=0,
        description="Output tokens counted in an attempt's estimate, beside the prompt's "
        "(characters / 4) and the tool's `prompt_overhead_tokens`.",
    )
    require_justification_over_usd: float | None = Field(
        None,
        ge=0,
        description="A task estimated above this needs a justification: `justification:` in "
        "a task file, `--justification` for `submit`, `--force --justification` for `exec`. "
        "Not set: none needed.",
    )


class CostOptimization(Strict):
    """Small tasks to a cheap model first."""

    simple_task_threshold_tokens: int = Field(
        0,
        ge=0,
        description="A task whose prompt is estimated below this many tokens goes first to "
        "the first `simple_task_models` entry the agent's tools serve (route reason "
        "`cost_optimization`). 0: off.",
    )
    simple_task_models: list[str] = Field(
        default_factory=list,
        description="Cheap targets (`tool:model` or a model), in order of preference; also "
        "what `on_budget_exhausted: downgrade` moves to.",
    )


class Retries(Strict):
    """How many attempts a task gets, and the wait between passes over its chain."""

    max_attempts: int = Field(
        3,
        ge=1,
        description="Attempts a task gets in all, its fallback chain included: the chain "
        "is walked in order, and from its start again while attempts are left.",
    )
    backoff: Pause = Field(
        2.0,
        description="The wait before the next pass over the chain, doubling each pass "
        "(jittered); 0s: at once.",
    )
    backoff_max: Pause = Field(300.0, description="The longest that wait grows to.")
    quarantine_after: int = Field(
        5,
        ge=1,
        description="A task started more than this many times without finishing (its runs "
        "cut short: the daemon died) fails with kind `quarantined` instead of running again.",
    )


class CircuitBreaker(Strict):
    """Per tool:model, shared by all tasks: `failures` transient failures in a row open the
    circuit for `backoff` (doubling at each reopening, up to `backoff_max`, jittered);
    while open, attempts go to the fallback; one probe after the wait closes it again."""

    failures: int = Field(
        3,
        ge=1,
        description="Transient failures in a row (connection, 5xx, overloaded, timeout, "
        "stalled) that open a tool:model's circuit.",
    )
    backoff: Duration = Field(
        30.0,
        description="How long the circuit stays open the first time; it doubles at each "
        "reopening. Attempts on it meanwhile are skipped (kind `cooldown`).",
    )
    backoff_max: Duration = Field(600.0, description="The longest a circuit stays open.")


class UsageWindows(Strict):
    """A limit that says when it resets closes its tool:model until then. A task with
    nothing else to try waits for it (`waiting_quota`), `max_wait` at most in all; a usage
    limit that names no reset is taken to last `unknown_reset`."""

    max_wait: Duration = Field(
        8 * 86400.0,
        description="The longest a task waits for closed windows to open, in all (a weekly "
        "window, and a day to spare); then it fails with kind `usage_limit`.",
    )
    unknown_reset: Duration = Field(
        3600.0, description="How long a usage limit that names no reset time is taken to last."
    )


class Privacy(Strict):
    """What telemetry keeps of prompts."""

    prompts: Literal["metadata", "hash", "full"] = Field(
        "metadata",
        description="`metadata`: nothing of the prompt; `hash`: its SHA-256; `full`: the "
        "prompt and the answer (shown by the dashboard too).",
    )


class TaskRules(Strict):
    """How task files are read."""

    strict_dependencies: bool = Field(
        False,
        description="`true`: wait for every dependency, even one that cannot be a task id "
        "(prose, a document). `false`: such a dependency is a note in the prompt and a "
        "warning in the result.",
    )


class PoliciesFile(Strict):
    """Budgets, cost-optimised routing, retries, circuit breakers, usage windows, privacy
    and rate limits (docs/spend.md); `profiles` are named overlays on them."""

    budgets: Budgets = Field(default_factory=Budgets, description="Spend limits.")
    cost_optimization: CostOptimization = Field(
        default_factory=CostOptimization, description="Small tasks to a cheap model first."
    )
    retries: Retries = Field(default_factory=Retries, description="Attempts and backoff.")
    circuit_breaker: CircuitBreaker = Field(
        default_factory=CircuitBreaker,
        description="Transient failures in a row pause a tool:model for a while.",
    )
    usage_windows: UsageWindows = Field(
        default_factory=UsageWindows,
        description="A plan's limit or a used-up quota: tasks fall back, or wait for it.",
    )
    privacy: Privacy = Field(default_factory=Privacy, description="What telemetry keeps.")
    concurrency: int | None = Field(
        None,
        ge=1,
        description="Tasks the daemon runs at once (`run --concurrency` wins). Not set: 8.",
    )
    tasks: TaskRules = Field(default_factory=TaskRules, description="How task files are read.")
    rate_limits: dict[str, RateLimit] = Field(
        default_factory=dict,
        description="Limits on starts per tool, model or provider name (a provider counts "
        "every model whose `provider` it is), besides tools' and models' own `rate_limit`.",
    )
    profiles: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="Named overlays on these policies, chosen with `--profile NAME` or "
        "`ORCHESTRATOR_PROFILE`: each is a mapping of the keys above, merged over them "
        "(checked whether chosen or not; profiles do not nest).",
    )


# --- schedules.yaml (optional) ---------------------------------------------------------


class Schedule(Strict):
    """A recurring task: `task` (a task file's keys) written into the inbox at each slot
    of the cron expression `cron`, in the budgets' time zone."""

    cron: str = Field(
        description="A cron expression (minute hour day-of-month month day-of-week), in "
        "`budgets.timezone`."
    )
    task: dict[str, Any] = Field(
        description="The task written at each slot: a task file's keys (docs/reference/"
        "tasks.md), with `agent`; no `id` (each slot's task is `<schedule>-<YYYYmmddTHHMM>`)."
    )
    enabled: bool = Field(True, description="`false`: the schedule writes nothing.")
    note: str | None = Field(None, description="Descriptive: what the schedule is for.")


class SchedulesFile(Strict):
    """Recurring tasks. At each slot of a schedule the daemon writes its task into the
    inbox (one task per slot); after downtime the latest missed slot runs once."""

    schedules: dict[str, Schedule] = Field(
        default_factory=dict,
        description="The schedules by name; a name starts each task id it writes.",
    )


# --- executor.yaml (optional) ----------------------------------------------------------


class ExecutorSettings(Strict):
    """Where tools run: `local` (here), or `dask`: on the workers of the Dask scheduler at
    `scheduler` (tcp://host:port; `run --dask ADDRESS` says the same)."""

    kind: Literal["local", "dask"] = Field(
        "local",
        description="`local`: tools run on this machine; `dask`: on the workers of a Dask "
        "scheduler (the `dask` extra; docs/scale-out.md).",
    )
    scheduler: str | None = Field(
        None, description="The Dask scheduler's address, `tcp://host:port`: needed by `dask`."
    )

    @model_validator(mode="after")
    def _dask_needs_a_scheduler(self) -> Self:
        if self.kind == "dask" and not self.scheduler:
            raise ValueError("kind dask needs scheduler: tcp://host:port (the dask scheduler)")
        return self


class ExecutorFile(Strict):
    """Where the tools run: on this machine, or on the workers of a Dask cluster."""

    executor: ExecutorSettings = Field(
        default_factory=ExecutorSettings, description="Where the tools run."
    )
