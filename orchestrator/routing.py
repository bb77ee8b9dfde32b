"""Routing: (task, config) → the ordered attempts to make. A pure function.

Order: pinned (`tool`/`model` on the task) → task-type target → preferred → fallback
chain, duplicates removed. A target `tool:model` picks the tool too (split on the first
colon); a bare model goes with the agent's preferred tool when that tool can run it, else
with the first tool that lists it.

A model that models.yaml marks `deprecated` with a `superseded_by` is replaced by its
successor wherever it is picked (the successor's own successor too), and the attempt says
so in its `note`: configs carried over from an older tool keep naming retired models.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from orchestrator.config import AgentConfig, Config, split_target

RouteReason = Literal[
    "pinned", "task_type", "cost_optimization", "preferred", "fallback", "budget_downgrade"
]
# Successors followed at most; a longer superseded_by chain is a loop in all but name.
MAX_SUCCESSORS = 16


@dataclass(frozen=True)
class Attempt:
    tool: str
    model: str | None
    reason: RouteReason
    note: str = ""  # why the model is not the one the config names (it is deprecated)
    warning: str = ""  # the result's line for the same, when the attempt is made

    @property
    def why(self) -> str:
        """The reason as results and `run --dry-run` show it, with its note."""
        return f"{self.reason} ({self.note})" if self.note else self.reason


def successors(config: Config, model: str) -> list[str]:
    """`model`, then each `superseded_by` of a deprecated model in turn. Stops at a model
    already in the list (a cycle, which `config validate` reports) and after
    MAX_SUCCESSORS steps, so the last entry is the model to use."""
    path = [model]
    while len(path) <= MAX_SUCCESSORS:
        entry = config.models.get(path[-1])
        following = entry.superseded_by if entry is not None and entry.deprecated else None
        if following is None or following in path:
            break
        path.append(following)
    return path


def current_model(config: Config, model: str | None) -> str | None:
    """The model to run in place of `model`: its last successor, or itself."""
    return None if model is None else successors(config, model)[-1]


def _deprecation(config: Config, path: list[str]) -> tuple[str, str]:
    """The note and the warning for a model reached through `path`."""
    old, new = path[0], path[-1]
    if len(path) == 1:
        return (
            f"{old} is deprecated, with no superseded_by",
            f"model {old} is deprecated and models.yaml names no superseded_by for it: "
            "it was used anyway; pick another model",
        )
    via = f" (via {', '.join(path[1:-1])})" if len(path) > 2 else ""
    note = f"{old} is deprecated: superseded by {new}{via}"
    warning = (
        f"model {old} is deprecated: {new} was used instead{via}; name {new} where {old} is named"
    )
    entry = config.models.get(new)
    if entry is not None and entry.deprecated:  # a dead end, a loop, or an endless chain
        following = entry.superseded_by
        if following is None:
            trouble = f"{new} is deprecated too, with no superseded_by"
        elif following in path:
            trouble = f"superseded_by loops from {new} back to {following}: fix config/models.yaml"
        else:
            trouble = f"superseded_by chains on past {new}: fix config/models.yaml"
        note, warning = f"{note}; {trouble}", f"{warning}; {trouble}"
    return note, warning


def supersede(config: Config, attempt: Attempt) -> Attempt:
    """`attempt` with a deprecated model replaced by its successor. The successor keeps
    the tool when the tool lists it, else goes with the first tool that does."""
    if attempt.model is None:
        return attempt
    entry = config.models.get(attempt.model)
    if entry is None or not entry.deprecated:
        return attempt
    path = successors(config, attempt.model)
    note, warning = _deprecation(config, path)
    tool, new = attempt.tool, path[-1]
    listed = config.tools[tool].models if tool in config.tools else []
    if new not in listed:
        tool = config.tool_for_model(new) or tool
    return replace(attempt, tool=tool, model=new, note=note, warning=warning)


def _default_model(config: Config, tool: str, agent: AgentConfig) -> str | None:
    if tool == agent.preferred_tool and agent.preferred_model is not None:
        return agent.preferred_model
    models = config.tools[tool].models
    return models[0] if models else None


def _tool_for(config: Config, model: str, agent: AgentConfig) -> str:
    """The preferred tool when it lists the model, else the first tool that does; a model
    no tool lists (only in models.yaml) goes with the preferred tool."""
    if model in config.tools[agent.preferred_tool].models:
        return agent.preferred_tool
    return config.tool_for_model(model) or agent.preferred_tool


def resolve(config: Config, target: str, agent: AgentConfig) -> tuple[str, str | None]:
    """A config target (`tool:model`, a bare model, or a bare tool name) → (tool, model)."""
    tool, model = split_target(target)
    if tool is not None:
        return tool, model
    if target in config.tools and config.tool_for_model(target) is None:
        return target, _default_model(config, target, agent)
    return _tool_for(config, target, agent), target


def route(
    config: Config,
    agent_name: str,
    *,
    task_type: str | None = None,
    tool: str | None = None,
    model: str | None = None,
    cheap_model: str | None = None,
) -> list[Attempt]:
    """Every attempt for a task, best first. `cheap_model` is the cost-optimisation pick."""
    agent = config.agents[agent_name]
    candidates: list[Attempt] = []
    if tool is not None or model is not None:
        if model is None:
            assert tool is not None
            candidates.append(Attempt(tool, _default_model(config, tool, agent), "pinned"))
        elif tool is None:
            candidates.append(Attempt(*resolve(config, model, agent), "pinned"))
        else:
            candidates.append(Attempt(tool, model, "pinned"))
    if task_type is not None and task_type in agent.task_types:
        candidates.append(
            Attempt(*resolve(config, agent.task_types[task_type], agent), "task_type")
        )
    if cheap_model is not None:
        candidates.append(Attempt(*resolve(config, cheap_model, agent), "cost_optimization"))
    candidates.append(
        Attempt(
            agent.preferred_tool,
            _default_model(config, agent.preferred_tool, agent),
            "preferred",
        )
    )
    candidates.extend(
        Attempt(*resolve(config, target, agent), "fallback") for target in agent.fallback_chain
    )
    seen: set[tuple[str, str | None]] = set()
    attempts = []
    for attempt in (supersede(config, a) for a in candidates):
        key = (attempt.tool, attempt.model)
        if key not in seen:
            seen.add(key)
            attempts.append(attempt)
    return attempts


def agent_tools(config: Config, agent_name: str) -> set[str]:
    """Every tool an agent's config routes to (preferred, task types, fallbacks)."""
    agent = config.agents[agent_name]
    targets = [*agent.task_types.values(), *agent.fallback_chain]
    return {agent.preferred_tool} | {resolve(config, t, agent)[0] for t in targets}


def simple_task_model(config: Config, agent_name: str) -> str | None:
    """The first `simple_task_models` entry served by a tool this agent already uses."""
    agent = config.agents[agent_name]
    usable = agent_tools(config, agent_name)
    for target in config.policies.cost_optimization.simple_task_models:
        tool, model = resolve(config, target, agent)
        if tool in usable and model is not None:
            return f"{tool}:{model}"
    return None
