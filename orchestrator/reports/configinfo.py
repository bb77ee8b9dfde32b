"""What `config validate` prints about a config that loads: the files read, whether they
are in the older schema (and the command that converts them), the policies profile in
force, and the descriptive keys (notes, capabilities, deprecations) the config carries."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from orchestrator.config import Config
    from orchestrator.configdirs import Sources


def describe(config: Config, sources: Sources, *, verbose: bool = False) -> list[str]:
    lines = [f"read {path}" for path in sources.files]
    if sources.legacy:
        files = ", ".join(sorted({path.name for path in sources.legacy}))
        lines.append(
            f"{files}: the older LLM Service Layer schema, read as it is; "
            "`orchestrator config migrate` rewrites it in the native schema"
        )
        if verbose:
            lines += [f"  {note}" for note in sources.notes]
    profiles = ["default", *config.policies.profiles]
    if len(profiles) > 1:
        lines.append(
            f"policies: profile {config.profile or 'default'} (of {', '.join(profiles)}; "
            "choose with --profile or ORCHESTRATOR_PROFILE)"
        )
    return lines + _descriptions(config)


def _descriptions(config: Config) -> list[str]:
    lines = []
    for name, agent in config.agents.items():
        lines += _about(f"agent {name}", agent.note, agent.capabilities, "capabilities")
    for name, tool in config.tools.items():
        lines += _about(f"tool {name}", tool.note, tool.capabilities, "capabilities")
    for name, model in config.models.items():
        about = _about(f"model {name}", model.note, model.task_suitability, "suited to")
        if model.deprecated:
            successor = model.superseded_by
            routed = f"routed to {successor}" if successor else "still used, with a warning"
            about.append(f"model {name}: deprecated: {routed}")
        lines += about
    return lines


def _about(what: str, note: str | None, tags: list[str], label: str) -> list[str]:
    lines = [f"{what}: {note}"] if note else []
    if tags:
        lines.append(f"{what}: {label} {', '.join(tags)}")
    return lines
