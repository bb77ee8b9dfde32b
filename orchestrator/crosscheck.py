"""Cross-references in config: every name an agent, tool, policy or model refers to
exists, tool argv templates use known placeholders, and a prompt can never become an option.
Each check returns the problems it finds; `cross_check` runs them all."""

from __future__ import annotations

import re
import shutil
from typing import TYPE_CHECKING

from orchestrator.config import split_target, suggest
from orchestrator.errors import ConfigProblem

if TYPE_CHECKING:
    from orchestrator.config import Config, ToolConfig


def _check_target(
    config: Config, target: str, file: str, field: str, default_tool: str | None
) -> list[ConfigProblem]:
    """A model reference: `model` or `tool:model`."""
    tool_name, model = split_target(target)
    if tool_name is not None:
        if tool_name not in config.tools:
            return [
                ConfigProblem(
                    file,
                    field,
                    f"unknown tool {tool_name!a} in {target!a}",
                    suggest(tool_name, config.tools),
                )
            ]
        tool = config.tools[tool_name]
        if tool.models and model not in tool.models and model not in config.models:
            return [
                ConfigProblem(
                    file,
                    field,
                    f"model {model!a} is not listed for tool {tool_name!a}",
                    f"add it to tools.{tool_name}.models or config/models.yaml; "
                    + suggest(model, tool.models),
                )
            ]
        return []
    if model not in config.known_models():
        return [
            ConfigProblem(
                file,
                field,
                f"unknown model {model!a}",
                "list it under a tool's models or in config/models.yaml; "
                + suggest(model, config.known_models()),
            )
        ]
    if default_tool is None and config.tool_for_model(model) is None:
        return [
            ConfigProblem(file, field, f"no tool lists model {model!a}", "write it as tool:model")
        ]
    return []


def cross_check(config: Config) -> list[ConfigProblem]:
    problems = _check_agents(config)
    for name, tool in config.tools.items():
        for i, arg in enumerate(tool.args):
            problems += _check_placeholders(arg, f"tools.{name}.args[{i}]", tool)
        problems += _check_prompt_position(name, tool)
    problems += _check_policies(config) + _check_successors(config) + _check_isolation(config)
    return problems + _check_schedules(config)


_SCHEDULE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,100}$")


def _check_schedules(config: Config) -> list[ConfigProblem]:
    """Each schedule: a name that can start a task id, a cron expression that parses, and
    a task whose agent exists (the rest of the task is checked when it is written)."""
    from cronsim import CronSim, CronSimError

    from orchestrator.engine import now_utc

    problems = []
    file = "config/schedules.yaml"
    for name, schedule in config.schedules.items():
        where = f"schedules.{name}"
        if not _SCHEDULE_NAME.match(name) or ".." in name:
            hint = "use letters, digits, '-', '_' and '.' (it starts each task's id)"
            problems.append(ConfigProblem(file, where, f"{name!a} cannot start a task id", hint))
        try:
            CronSim(schedule.cron, now_utc())
        except CronSimError as exc:
            hint = "five fields: minute hour day-of-month month day-of-week, e.g. '0 2 * * *'"
            message = f"{schedule.cron!a} is not a cron expression ({exc})"
            problems.append(ConfigProblem(file, f"{where}.cron", message, hint))
        agent = schedule.task.get("agent")
        if not isinstance(agent, str) or agent not in config.agents:
            problems.append(
                ConfigProblem(file, f"{where}.task.agent", f"unknown agent {agent!a}",
                              suggest(str(agent), config.agents))
            )  # fmt: skip
        if "id" in schedule.task:
            hint = "remove it: each slot's task is named <schedule>-<time>"
            problems.append(ConfigProblem(file, f"{where}.task.id", "set by the schedule", hint))
    return problems


def _check_agents(config: Config) -> list[ConfigProblem]:
    problems: list[ConfigProblem] = []
    file = "config/agents.yaml"
    for name, agent in config.agents.items():
        base = f"agents.{name}"
        if agent.preferred_tool not in config.tools:
            problems.append(
                ConfigProblem(
                    file,
                    f"{base}.preferred_tool",
                    f"unknown tool {agent.preferred_tool!a}",
                    suggest(agent.preferred_tool, config.tools),
                )
            )
            continue
        if agent.preferred_model is not None:
            problems += _check_target(
                config,
                f"{agent.preferred_tool}:{agent.preferred_model}",
                file,
                f"{base}.preferred_model",
                agent.preferred_tool,
            )
        for task_type, target in agent.task_types.items():
            problems += _check_target(
                config, target, file, f"{base}.task_types.{task_type}", agent.preferred_tool
            )
        for i, target in enumerate(agent.fallback_chain):
            tool_name, _ = split_target(target)
            if tool_name is None and target in config.tools:
                continue  # a bare tool name: that tool with its default model
            problems += _check_target(config, target, file, f"{base}.fallback_chain[{i}]", None)
        for i, target in enumerate(agent.handoff_to):
            if target not in config.agents:
                problems.append(
                    ConfigProblem(
                        file,
                        f"{base}.handoff_to[{i}]",
                        f"unknown agent {target!a}",
                        suggest(target, config.agents),
                    )
                )
        if agent.profile is not None and not (config.root / agent.profile).is_file():
            problems.append(
                ConfigProblem(
                    file,
                    f"{base}.profile",
                    f"profile file {agent.profile!a} not found",
                    "create it (relative to the workspace) or remove the key",
                )
            )
    return problems


def _check_isolation(config: Config) -> list[ConfigProblem]:
    """`isolation: worktree` needs the workspace inside a git work tree, and git: a walk up
    for `.git` and a PATH lookup, so loading config stays fast."""
    isolated = [name for name, agent in config.agents.items() if agent.isolation == "worktree"]
    if not isolated:
        return []
    from orchestrator.isolation.git import find_work_tree

    if find_work_tree(config.root) is None:
        why = f"the workspace {config.root} is not inside a git repository"
        hint = f"run `git init` in {config.root} and commit, or set isolation: none"
    elif shutil.which("git") is None:
        why = "git is not installed (not found on PATH)"
        hint = "install git, or set isolation: none"
    else:
        return []
    return [
        ConfigProblem(
            "config/agents.yaml",
            f"agents.{name}.isolation",
            f"agent {name!a} asks for worktree isolation, but {why}",
            hint,
        )
        for name in isolated
    ]


def _check_policies(config: Config) -> list[ConfigProblem]:
    problems: list[ConfigProblem] = []
    policies = config.policies
    for i, model in enumerate(policies.cost_optimization.simple_task_models):
        problems += _check_target(
            config,
            model,
            "config/policies.yaml",
            f"cost_optimization.simple_task_models[{i}]",
            None,
        )
    for agent_name in policies.budgets.per_agent:
        if agent_name not in config.agents:
            problems.append(
                ConfigProblem(
                    "config/policies.yaml",
                    f"budgets.per_agent.{agent_name}",
                    f"unknown agent {agent_name!a}",
                    suggest(agent_name, config.agents),
                )
            )
    problems += _check_timezone(policies.budgets.timezone)
    providers = {m.provider for m in config.models.values() if m.provider}
    names = {*config.tools, *config.known_models(), *providers}
    for name in policies.rate_limits:
        if name not in names:
            problems.append(
                ConfigProblem(
                    "config/policies.yaml",
                    f"rate_limits.{name}",
                    f"{name!a} is no tool, model or provider",
                    suggest(name, names),
                )
            )
    return problems


def _check_successors(config: Config) -> list[ConfigProblem]:
    """`superseded_by` names a known model, and following it never comes back."""
    problems = []
    for name, model in config.models.items():
        field = f"models.{name}.superseded_by"
        successor = model.superseded_by
        if successor is None:
            continue
        if successor not in config.known_models():
            hint = suggest(successor, config.known_models())
            problems.append(
                ConfigProblem("config/models.yaml", field, f"unknown model {successor!a}", hint)
            )
            continue
        seen = [name]
        while successor is not None and successor not in seen:
            seen.append(successor)
            following = config.models.get(successor)
            successor = following.superseded_by if following else None
        if successor is not None:
            cycle = " -> ".join([*seen, successor])
            problems.append(
                ConfigProblem("config/models.yaml", field, f"a cycle: {cycle}", "break it")
            )
    return problems


PLACEHOLDERS = ("model", "prompt", "prompt_file", "output_file", "task_id", "workspace")
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")


def _check_placeholders(arg: str, field: str, tool: ToolConfig) -> list[ConfigProblem]:
    problems = []
    for name in _PLACEHOLDER.findall(arg.replace("{{", "").replace("}}", "")):
        if name not in PLACEHOLDERS:
            problems.append(
                ConfigProblem(
                    "config/tools.yaml",
                    field,
                    f"unknown placeholder {{{name}}}",
                    suggest(name, PLACEHOLDERS),
                )
            )
        elif name == "prompt_file" and tool.prompt != "file":
            problems.append(
                ConfigProblem(
                    "config/tools.yaml",
                    field,
                    "{prompt_file} needs `prompt: file`",
                    "set the tool's prompt to file",
                )
            )
    return problems


def _check_prompt_position(name: str, tool: ToolConfig) -> list[ConfigProblem]:
    """`{prompt}` alone as an argument must follow `--` or an option that takes it as its
    value: a prompt starting with `-` would otherwise be read as an option."""
    args = tool.args
    for i, arg in enumerate(args):
        before = args[i - 1] if i else ""
        if arg == "{prompt}" and before != "--" and not before.startswith("-"):
            return [
                ConfigProblem(
                    "config/tools.yaml",
                    f"tools.{name}.args[{i}]",
                    "{prompt} stands where an option may: a prompt starting with '-' "
                    "would be read as one",
                    'put "--" before it (if the tool accepts it), or pass it as an '
                    'option\'s value: "--prompt", "{prompt}" or "--prompt={prompt}"',
                )
            ]
    return []


def _check_timezone(name: str) -> list[ConfigProblem]:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return [
            ConfigProblem(
                "config/policies.yaml",
                "budgets.timezone",
                f"unknown time zone {name!a}",
                "use an IANA name such as Europe/Berlin or UTC",
            )
        ]
    return []
