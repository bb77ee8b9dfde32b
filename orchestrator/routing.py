"""Routing: (task, config) → the ordered attempts to make. A pure function.

Order: pinned (`tool`/`model` on the task) → task-type target → preferred → fallback
chain, duplicates removed. A target `tool:model` picks the tool too (split on the first
colon); a bare model goes with the agent's preferred tool when that tool can run it, else
with the first tool that lists it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from orchestrator.config import AgentConfig, Config, split_target

RouteReason = Literal[
    "pinned", "task_type", "cost_optimization", "preferred", "fallback", "budget_downgrade"
]


@dataclass(frozen=True)
class Attempt:
    tool: str
    model: str | None
    reason: RouteReason


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
    for attempt in candidates:
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
