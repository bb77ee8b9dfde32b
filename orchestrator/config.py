"""Configuration: the models of `config/*.yaml`, loading them, and cross-reference checks.

Config is strict: an unknown key is an error that suggests the closest valid name. Every
problem names the file, the field path and the bad value, and says what to do.
"""

from __future__ import annotations

import os
import sys
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from orchestrator.adapters import AdapterName
from orchestrator.configdirs import CONFIG_FILES as CONFIG_FILES
from orchestrator.configdirs import PROFILE_ENV, Sources, locate
from orchestrator.configwording import problems_from
from orchestrator.configwording import shown as shown
from orchestrator.configwording import suggest as suggest
from orchestrator.errors import ConfigError, ConfigProblem
from orchestrator.values import Duration as Duration
from orchestrator.values import IdleTimeout, Pause
from orchestrator.values import parse_duration as parse_duration
from orchestrator.values import resolve_binary as resolve_binary
from orchestrator.values import split_target as split_target

if TYPE_CHECKING:
    from collections.abc import Mapping


class Strict(BaseModel):
    # Every number in config is finite: a NaN or infinite timeout, budget or price would
    # pass the checks here and break every task later.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


# --- tools.yaml ------------------------------------------------------------------------


class OutputSpec(Strict):
    """How the generic adapter reads a tool's stdout: dotted paths into JSON."""

    format: Literal["text", "json", "jsonl"] = "text"
    text: str | None = None
    input_tokens: str | None = None
    output_tokens: str | None = None
    cache_read_tokens: str | None = None
    cache_write_tokens: str | None = None
    cost_usd: str | None = None
    model: str | None = None
    session_id: str | None = None


class RateLimit(Strict):
    """Requests a tool (or model) may start per minute and per hour; both apply when given."""

    requests_per_minute: float | None = Field(default=None, gt=0)
    requests_per_hour: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _some(self) -> RateLimit:
        if self.requests_per_minute is None and self.requests_per_hour is None:
            raise ValueError("give requests_per_minute, requests_per_hour or both")
        return self


class Platforms(Strict):
    """A tool's binary per operating system, where it differs from `binary`."""

    linux: str | None = None
    macos: str | None = None
    windows: str | None = None


class ToolConfig(Strict):
    adapter: AdapterName  # a built-in adapter, or one an installed plugin registers
    binary: str
    args: list[str] = Field(default_factory=list)
    prompt: Literal["stdin", "arg", "file"] = "stdin"
    output: OutputSpec = Field(default_factory=OutputSpec)
    models: list[str] = Field(default_factory=list)
    env: list[str] = Field(default_factory=list)
    timeout: Duration = 600.0
    # No output byte for this long ends the run as `stalled` (None: the built-in default).
    idle_timeout: IdleTimeout | None = None
    max_concurrency: int = Field(default=4, ge=1)
    rate_limit: RateLimit | None = None
    # Options of the real agent CLIs (see docs/tools.md); safe defaults, no bypass.
    base_url: str | None = None
    permission_mode: str | None = None
    sandbox: str | None = None
    approval_mode: str | None = None
    max_turns: int | None = Field(default=None, ge=1)
    extra_args: list[str] = Field(default_factory=list)
    # Tokens the CLI adds to every request (its own system prompt and tool definitions),
    # counted in budget estimates.
    prompt_overhead_tokens: int = Field(default=0, ge=0)
    platforms: Platforms | None = None
    # Descriptive: shown by `config validate`, not acted on.
    capabilities: list[str] = Field(default_factory=list)
    note: str | None = None


class ToolsFile(Strict):
    tools: dict[str, ToolConfig]


# --- models.yaml -----------------------------------------------------------------------


class Prices(Strict):
    """USD per million tokens."""

    input: float = Field(ge=0)
    output: float = Field(ge=0)
    cache_read: float | None = Field(default=None, ge=0)
    cache_write: float | None = Field(default=None, ge=0)


class ModelConfig(Strict):
    provider: str | None = None
    price_per_mtok: Prices | None = None
    context_window: int | None = Field(default=None, gt=0)
    rate_limit: RateLimit | None = None
    # A deprecated model with a successor is routed to the successor, with a warning.
    deprecated: bool = False
    superseded_by: str | None = None
    # Descriptive: shown by `config validate`, not acted on.
    task_suitability: list[str] = Field(default_factory=list)
    note: str | None = None


class ModelsFile(Strict):
    models: dict[str, ModelConfig] = Field(default_factory=dict)


# --- agents.yaml -----------------------------------------------------------------------


class AgentConfig(Strict):
    preferred_tool: str
    preferred_model: str | None = None
    task_types: dict[str, str] = Field(default_factory=dict)
    fallback_chain: list[str] = Field(default_factory=list)
    profile: str | None = None
    handoff_to: list[str] = Field(default_factory=list)  # agents it may hand work to
    # worktree: each task runs in a git worktree of its own, on branch orchestrator/<id>
    isolation: Literal["none", "worktree"] = "none"
    # Descriptive: shown by `config validate`, not acted on.
    capabilities: list[str] = Field(default_factory=list)
    note: str | None = None


class AgentsFile(Strict):
    agents: dict[str, AgentConfig]


# --- policies.yaml ---------------------------------------------------------------------


class AgentBudget(Strict):
    daily_usd: float | None = Field(default=None, ge=0)
    monthly_usd: float | None = Field(default=None, ge=0)


class Budgets(Strict):
    daily_usd: float | None = Field(default=None, ge=0)
    monthly_usd: float | None = Field(default=None, ge=0)
    warn_at_percent: float = Field(default=80, gt=0, le=100)
    mode: Literal["soft", "hard"] = "hard"
    timezone: str = "UTC"
    per_agent: dict[str, AgentBudget] = Field(default_factory=dict)
    on_budget_exhausted: Literal["block", "downgrade"] = "block"
    estimated_output_tokens: int = Field(default=2000, ge=0)
    # exec/submit above this estimate need --justification; a task file, `justification:`.
    require_justification_over_usd: float | None = Field(default=None, ge=0)


class CostOptimization(Strict):
    simple_task_threshold_tokens: int = Field(default=0, ge=0)
    simple_task_models: list[str] = Field(default_factory=list)


class Retries(Strict):
    max_attempts: int = Field(default=3, ge=1)  # attempts per task, the fallback chain included
    backoff: Pause = 2.0  # before the next pass over the chain; doubles each pass
    backoff_max: Pause = 300.0  # the cap of that growth (each wait is jittered below it)
    quarantine_after: int = Field(default=5, ge=1)  # runs cut short (daemon died) before giving up


class CircuitBreaker(Strict):
    """Per tool:model, shared by all tasks: `failures` transient failures in a row open the
    circuit for `backoff` (doubling at each reopening, up to `backoff_max`, jittered);
    while open, attempts go to the fallback; one probe after the wait closes it again."""

    failures: int = Field(default=3, ge=1)
    backoff: Duration = 30.0
    backoff_max: Duration = 600.0


class UsageWindows(Strict):
    """A limit that says when it resets closes its tool:model until then. A task with
    nothing else to try waits for it (`waiting_quota`), `max_wait` at most in all; a usage
    limit that names no reset is taken to last `unknown_reset`."""

    max_wait: Duration = 8 * 86400.0  # a weekly window, and a day to spare
    unknown_reset: Duration = 3600.0


class Privacy(Strict):
    prompts: Literal["metadata", "hash", "full"] = "metadata"


class TaskRules(Strict):
    # A dependency that cannot be a task id (prose, a path) is a note in the prompt and a
    # warning in the result; strict waits for it like any other (status lists it).
    strict_dependencies: bool = False


class PoliciesFile(Strict):
    budgets: Budgets = Field(default_factory=Budgets)
    cost_optimization: CostOptimization = Field(default_factory=CostOptimization)
    retries: Retries = Field(default_factory=Retries)
    circuit_breaker: CircuitBreaker = Field(default_factory=CircuitBreaker)
    usage_windows: UsageWindows = Field(default_factory=UsageWindows)
    privacy: Privacy = Field(default_factory=Privacy)
    concurrency: int | None = Field(default=None, ge=1)
    tasks: TaskRules = Field(default_factory=TaskRules)
    # Limits on starts per tool, model or provider name (besides tools' own rate_limit).
    rate_limits: dict[str, RateLimit] = Field(default_factory=dict)
    # Named overlays on these policies, chosen with --profile or ORCHESTRATOR_PROFILE.
    profiles: dict[str, dict[str, Any]] = Field(default_factory=dict)


# --- schedules.yaml (optional) ---------------------------------------------------------


class Schedule(Strict):
    """A recurring task: `task` (a task file's keys) written into the inbox at each slot
    of the cron expression `cron`, in the budgets' time zone."""

    cron: str
    task: dict[str, Any]
    enabled: bool = True
    note: str | None = None


class SchedulesFile(Strict):
    schedules: dict[str, Schedule] = Field(default_factory=dict)


# --- executor.yaml (optional) ----------------------------------------------------------


class ExecutorSettings(Strict):
    """Where tools run: `local` (here), or `dask`: on the workers of the Dask scheduler at
    `scheduler` (tcp://host:port; `run --dask ADDRESS` says the same)."""

    kind: Literal["local", "dask"] = "local"
    scheduler: str | None = None

    @model_validator(mode="after")
    def _dask_needs_a_scheduler(self) -> ExecutorSettings:
        if self.kind == "dask" and not self.scheduler:
            raise ValueError("kind dask needs scheduler: tcp://host:port (the dask scheduler)")
        return self


class ExecutorFile(Strict):
    executor: ExecutorSettings = Field(default_factory=ExecutorSettings)


class Config(Strict):
    root: Path
    agents: dict[str, AgentConfig]
    tools: dict[str, ToolConfig]
    models: dict[str, ModelConfig]
    policies: PoliciesFile
    profile: str | None = None  # the policies profile in force (None: the base policies)
    schedules: dict[str, Schedule] = Field(default_factory=dict)
    executor: ExecutorSettings = Field(default_factory=ExecutorSettings)

    def known_models(self) -> set[str]:
        """Every model named in models.yaml or under a tool's models."""
        known = set(self.models)
        for tool in self.tools.values():
            known.update(tool.models)
        return known

    def tool_for_model(self, model: str) -> str | None:
        """The first tool that lists `model`, in tools.yaml order."""
        return next((name for name, tool in self.tools.items() if model in tool.models), None)


# --- loading ---------------------------------------------------------------------------


_M = TypeVar("_M", bound=BaseModel)


def _parse(model: type[_M], data: Any, display: str, problems: list[ConfigProblem]) -> _M | None:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems.extend(problems_from(exc, display, model))
        return None


THIS_OS = {"linux": "linux", "darwin": "macos", "win32": "windows"}.get(sys.platform, "linux")


def load_config(root: Path, sources: Sources | None = None, profile: str | None = None) -> Config:
    """Load and cross-check the config of the workspace `root` (its `config/` over the user
    folder: see orchestrator.configdirs) with the policies `profile` (else the one
    ORCHESTRATOR_PROFILE names, else the base policies); raise ConfigError listing every
    problem."""
    found = sources or locate(root)
    problems = list(found.problems)
    profile = profile or os.environ.get(PROFILE_ENV) or None

    def parse(model: type[_M], name: str) -> _M | None:
        data = found.data(name)
        if data is None:  # missing or unreadable: already reported
            return None
        parsed: list[ConfigProblem] = []
        result = _parse(model, data, f"config/{name}", parsed)
        problems.extend(map(found.origin, parsed))
        return result

    agents = parse(AgentsFile, "agents.yaml")
    tools = parse(ToolsFile, "tools.yaml")
    models = parse(ModelsFile, "models.yaml")
    base = parse(PoliciesFile, "policies.yaml")
    policies = base
    profiles = list(base.profiles) if base is not None else []
    for name in profiles:
        assert base is not None
        chosen = _with_profile(found.data("policies.yaml"), name, base.profiles[name], problems)
        policies = chosen if name == profile else policies
    if profile is not None and base is not None and profile not in ("default", *profiles):
        hint = suggest(profile, ["default", *profiles])
        problems.append(
            ConfigProblem("config/policies.yaml", "profiles", f"no profile {profile!a}", hint)
        )
    schedules = parse(SchedulesFile, "schedules.yaml") if found.data("schedules.yaml") else None
    executor = parse(ExecutorFile, "executor.yaml") if found.data("executor.yaml") else None
    if problems or agents is None or tools is None or models is None or policies is None:
        raise ConfigError(problems)
    config = Config(
        root=root,
        agents=agents.agents,
        tools={name: _for_this_os(tool) for name, tool in tools.tools.items()},
        models=models.models,
        policies=policies,
        profile=profile if profile in profiles else None,
        schedules=schedules.schedules if schedules else {},
        executor=executor.executor if executor else ExecutorSettings(),
    )
    from orchestrator.crosscheck import cross_check

    problems = [found.origin(problem) for problem in cross_check(config)]
    if problems:
        raise ConfigError(problems)
    return config


def _with_profile(
    base: dict[str, Any], name: str, overlay: dict[str, Any], problems: list[ConfigProblem]
) -> PoliciesFile | None:
    """The policies with profile `name` laid over them (checked whether chosen or not, so a
    mistake in a profile shows before the day it is used)."""
    from orchestrator.configdirs import merge

    if "profiles" in overlay:
        problems.append(ConfigProblem("config/policies.yaml", f"profiles.{name}.profiles",
                                      "profiles do not nest", "remove it"))  # fmt: skip
        return None
    parsed: list[ConfigProblem] = []
    chosen = _parse(PoliciesFile, merge(base, overlay), "config/policies.yaml", parsed)
    for problem in parsed:
        field = f"profiles.{name}.{problem.field}" if problem.field else f"profiles.{name}"
        problems.append(replace(problem, field=field))
    return chosen


def _for_this_os(tool: ToolConfig) -> ToolConfig:
    """`tool` with the binary its `platforms` names for this operating system."""
    binary = getattr(tool.platforms, THIS_OS, None) if tool.platforms else None
    return tool.model_copy(update={"binary": binary}) if binary else tool


def summary(config: Config) -> Mapping[str, int]:
    return {
        "agents": len(config.agents),
        "tools": len(config.tools),
        "models": len(config.known_models()),
    }
