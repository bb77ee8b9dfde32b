"""Configuration: loading `config/*.yaml` and cross-checking it, and the `Config` it makes.

Config is strict: an unknown key is an error that suggests the closest valid name. Every
problem names the file, the field path and the bad value, and says what to do. The models
of the files are in `configagents` (tools.yaml, models.yaml, agents.yaml) and
`configpolicies` (policies.yaml, schedules.yaml, executor.yaml); every one of them is
imported from here. (No `from __future__ import annotations`: pydantic evaluates `Config`'s
annotations, and so ruff keeps the imports they need.)
"""

import os
import sys
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, Field, ValidationError

from orchestrator.configagents import AgentConfig as AgentConfig
from orchestrator.configagents import AgentsFile as AgentsFile
from orchestrator.configagents import ModelConfig as ModelConfig
from orchestrator.configagents import ModelsFile as ModelsFile
from orchestrator.configagents import OutputSpec as OutputSpec
from orchestrator.configagents import Platforms as Platforms
from orchestrator.configagents import Prices as Prices
from orchestrator.configagents import RateLimit as RateLimit
from orchestrator.configagents import Strict as Strict
from orchestrator.configagents import ToolConfig as ToolConfig
from orchestrator.configagents import ToolsFile as ToolsFile
from orchestrator.configdirs import CONFIG_FILES as CONFIG_FILES
from orchestrator.configdirs import PROFILE_ENV, Sources, locate
from orchestrator.configpolicies import AgentBudget as AgentBudget
from orchestrator.configpolicies import Budgets as Budgets
from orchestrator.configpolicies import CircuitBreaker as CircuitBreaker
from orchestrator.configpolicies import CostOptimization as CostOptimization
from orchestrator.configpolicies import ExecutorFile as ExecutorFile
from orchestrator.configpolicies import ExecutorSettings as ExecutorSettings
from orchestrator.configpolicies import PoliciesFile as PoliciesFile
from orchestrator.configpolicies import Privacy as Privacy
from orchestrator.configpolicies import Retries as Retries
from orchestrator.configpolicies import Schedule as Schedule
from orchestrator.configpolicies import SchedulesFile as SchedulesFile
from orchestrator.configpolicies import TaskRules as TaskRules
from orchestrator.configpolicies import UsageWindows as UsageWindows
from orchestrator.configwording import problems_from
from orchestrator.configwording import shown as shown
from orchestrator.configwording import suggest as suggest
from orchestrator.errors import ConfigError, ConfigProblem
from orchestrator.values import Duration as Duration
from orchestrator.values import parse_duration as parse_duration
from orchestrator.values import resolve_binary as resolve_binary
from orchestrator.values import split_target as split_target


class Config(Strict):
    """The config of one workspace, every file read, merged and cross-checked."""

    root: Path = Field(description="The workspace: the folder holding config/ and work/.")
    agents: dict[str, AgentConfig] = Field(description="agents.yaml's agents.")
    tools: dict[str, ToolConfig] = Field(
        description="tools.yaml's tools, each with the binary of this operating system."
    )
    models: dict[str, ModelConfig] = Field(description="models.yaml's models.")
    policies: PoliciesFile = Field(description="policies.yaml, with the chosen profile laid over.")
    profile: str | None = Field(
        None, description="The policies profile in force (None: the base policies)."
    )
    schedules: dict[str, Schedule] = Field(
        default_factory=dict, description="schedules.yaml's schedules."
    )
    executor: ExecutorSettings = Field(
        default_factory=ExecutorSettings, description="executor.yaml's executor."
    )

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
