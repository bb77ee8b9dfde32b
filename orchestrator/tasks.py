"""Task files in: the Task model, and reading a task file's mapping tolerantly.

Task files follow the agents' existing format, and agents write it loosely: priorities as
`HIGH` or `P1`, notes of any shape, dependencies as ids, records or prose. What can be
understood is; unknown keys are kept (and copied into the result under `task`), and what
was guessed is said in the result's `warnings` (a misspelt key, a prose dependency that is
not waited on, a key written twice). Anything that makes a file unrunnable raises
`TaskRejected` with a stable `kind`, a message naming the file, the field as written and
its value, and a hint saying what to write instead.

Reading the YAML is in `taskyaml`, the rules for ids, priorities and dependency entries
in `tasknames`, composing the prompt in `prompts`.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator

from orchestrator.config import Config, suggest
from orchestrator.errors import TaskRejected
from orchestrator.prompts import MAX_INPUT_BYTES as MAX_INPUT_BYTES
from orchestrator.prompts import compose_prompt as compose_prompt
from orchestrator.prompts import read_inside as read_inside
from orchestrator.prompts import read_profile as read_profile
from orchestrator.taskerrors import invalid_field, misspelt_keys, shown
from orchestrator.tasknames import MAX_ID_BYTES as MAX_ID_BYTES
from orchestrator.tasknames import PRIORITIES as PRIORITIES
from orchestrator.tasknames import PRIORITY_SYNONYMS as PRIORITY_SYNONYMS
from orchestrator.tasknames import SESSION as SESSION
from orchestrator.tasknames import SESSION_RULE as SESSION_RULE
from orchestrator.tasknames import TASK_SUFFIXES as TASK_SUFFIXES
from orchestrator.tasknames import dependency_records as dependency_records
from orchestrator.tasknames import id_problem as id_problem
from orchestrator.tasknames import not_an_id as not_an_id
from orchestrator.tasknames import priority_of as priority_of
from orchestrator.tasknames import valid_session as valid_session
from orchestrator.taskyaml import MAX_TASK_BYTES as MAX_TASK_BYTES
from orchestrator.taskyaml import load_mapping as load_mapping
from orchestrator.taskyaml import load_task as load_task
from orchestrator.values import Duration, IdleTimeout, parse_duration

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence


class Dependency(BaseModel):
    """One entry of `dependencies`: the task it names (None for a record that names
    none) and what else a record says about it."""

    model_config = ConfigDict(extra="forbid")
    task_id: str | None = Field(
        None, description="The task it names: an id, or prose that cannot be one."
    )
    details: dict[str, Any] = Field(
        default_factory=dict, description="A record's other keys (`reason:`, ...)."
    )


class Context(BaseModel):
    """A task's `context`: its notes, and keys of the agents' own (kept, not used)."""

    model_config = ConfigDict(extra="allow")
    notes: Any = Field(
        None,
        description="Text, a list, a mapping, nested: added to the prompt as a `Notes:` list "
        "in YAML's block style.",
    )


def _shown(written_as: str | None = None, default: str | None = None) -> dict[str, Any]:
    """A field's written form and default as docs/reference/tasks.md shows them, where the
    model's own type or default would mislead (`orchestrator.reference` reads them; the
    names stay clear of JSON Schema's own keywords)."""
    shown = {"written_as": written_as, "shown_default": default}
    return {key: text for key, text in shown.items() if text}


class Task(BaseModel):
    """A task as the orchestrator sees it; extra keys are kept in `model_extra`."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    id: str = Field(
        description="Names the result, `work/outbox/<id>.result.yaml`, and is what "
        "dependencies, `cancel` and `retry` use: a safe file name of at most 160 bytes.",
        json_schema_extra=_shown(default="the file name without extension"),
    )
    agent: str = Field(description="The agent of config/agents.yaml that does it.")
    title: str | None = Field(
        None,
        description="A heading: with `description`, the prompt when there is neither "
        "`prompt` nor `prompt_file`; also the commit message of an isolated task.",
    )
    description: str | None = Field(None, description="The words under the title.")
    artefacts: list[Any] = Field(
        default_factory=list,
        description="Files the task is about, listed under `Artefacts:` in a prompt made of "
        "title and description. Also written `artifacts`.",
        json_schema_extra=_shown("list (or one value)"),
    )
    priority: Literal["critical", "high", "normal", "low"] = Field(
        "normal",
        description="Which queued task starts first: `critical`, `high`, `normal` or `low`, "
        "in any case, or a synonym (below).",
    )
    task_type: str | None = Field(
        None,
        description="Picks the agent's `task_types` entry as the first target (route "
        "reason `task_type`).",
    )
    prompt: str | None = Field(
        None, description="The task's own words, as the tool gets them (after the profile)."
    )
    prompt_file: str | None = Field(
        None,
        description="A workspace file whose text is the prompt when there is no `prompt` "
        "(at most 8 MiB, never outside the workspace).",
    )
    context: Context | None = Field(
        None,
        description="A mapping whose `notes` go into the prompt; text or a list here is the notes.",
    )
    context_files: list[str] = Field(
        default_factory=list,
        description="Workspace files appended to the prompt under their path (each at most "
        "8 MiB, never outside the workspace).",
        json_schema_extra=_shown("list of paths (or one)"),
    )
    dependencies: list[Dependency] = Field(
        default_factory=list,
        description="Tasks to wait for: ids, or records naming one by `task_id`, `id` or "
        "`task`. An entry that cannot be a task id (prose, a document) is a prerequisite "
        "in the prompt, with a warning, and not waited on (see below).",
        json_schema_extra=_shown("list of ids, records or prose (or one)"),
    )
    tool: str | None = Field(
        None,
        description="Pins the tool (route reason `pinned`): with `model`, that tool:model; "
        "alone, its default model.",
    )
    model: str | None = Field(
        None, description="Pins the model: a model, or `tool:model` (route reason `pinned`)."
    )
    timeout: Duration | None = Field(
        None,
        description="The longest each attempt may take, over the tool's `timeout`.",
        json_schema_extra=_shown(default="the tool's"),
    )
    idle_timeout: IdleTimeout | None = Field(
        None,
        description="Silence that kills an attempt as `stalled`, over the tool's "
        "`idle_timeout`; `off` or 0: none.",
        json_schema_extra=_shown(default="the tool's"),
    )
    base: Any = Field(
        None,
        description="The git ref (branch, tag, commit) an isolated task's branch starts "
        "from; else the branch of the task it follows, else `HEAD`. Only text counts: "
        "agents use `base:` for other things too.",
        json_schema_extra=_shown("text (a git ref)"),
    )
    not_before: dt.datetime | float | None = Field(
        None,
        description="Start no earlier: an ISO 8601 time with its zone "
        "(`2026-12-24T08:00:00+01:00`, `Z` for UTC), or a wait counted from the file's "
        "arrival in the inbox (`30m`). Until then the task is `scheduled`.",
        json_schema_extra=_shown("time with zone, or a duration"),
    )
    budget_usd: float | None = Field(
        None,
        ge=0,
        description="The most the task may spend, all attempts together: the chain stops "
        "there, and a run that passes it is stopped (`budget_exceeded`).",
    )
    justification: str | None = Field(
        None,
        description="Why it may run although estimated above "
        "`budgets.require_justification_over_usd`; recorded in telemetry.",
    )
    session: str | None = Field(
        None,
        description="A conversation that continues: each task of a session resumes the "
        f"CLI's own session (docs/workflows.md). {SESSION_RULE}.",
    )
    chain_id: str | None = Field(
        None,
        description="The first task of its handoff chain, set on follow-up tasks; "
        "telemetry groups by it.",
        json_schema_extra=_shown(default="the task's id"),
    )
    on_dependency_failure: Literal["reject", "run"] = Field(
        "reject",
        description="`reject`: a dependency that ended failed, rejected, cancelled, timed "
        "out or blocked rejects this task (`dependency_failed`); `run`: it runs anyway.",
    )
    previous_task: str | None = Field(
        None, description="Set on a follow-up task: the task that handed off to it."
    )
    previous_agent: str | None = Field(None, description="Set on a follow-up: that task's agent.")
    previous_output: str | None = Field(
        None,
        description="Set on a follow-up: that task's answer (its first 256 KiB), appended to "
        "the prompt.",
    )
    handoff_depth: int = Field(
        0,
        ge=0,
        description="Set on a follow-up: handoffs since the chain's first task; at 20, a further "
        "handoff is ignored, with a warning.",
    )
    retry: int = Field(0, ge=0, description="Set by `orchestrator retry`: the run number - 1.")

    # Set by parse_task: what reading the file noticed (for the result's warnings), the
    # unknown keys that look misspelt (for the hint of a rejection), and the policy.
    _warnings: list[str] = PrivateAttr(default_factory=list)
    _misspelt: dict[str, str] = PrivateAttr(default_factory=dict)
    _strict_dependencies: bool = PrivateAttr(default=False)

    @field_validator("session")
    @classmethod
    def _session(cls, value: str | None) -> str | None:
        if value is not None and not valid_session(value):
            raise ValueError(f"{value!a} is not a session name: use {SESSION_RULE}")
        return value

    @field_validator("priority", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return priority_of(value) or value

    @field_validator("artefacts", "context_files", mode="before")
    @classmethod
    def _listify(cls, value: object) -> object:
        if value is None:
            return []
        return value if isinstance(value, list) else [value]

    @field_validator("title", "description", "prompt", "task_type", "chain_id", mode="before")
    @classmethod
    def _text(cls, value: object) -> object:
        """`title: 2026` or a date YAML read as one: the text the agent meant."""
        if isinstance(value, int | float | dt.date) and not isinstance(value, bool):
            return value.isoformat() if isinstance(value, dt.date) else str(value)
        return value

    @field_validator("context", mode="before")
    @classmethod
    def _context(cls, value: object) -> object:
        """A context that is not a mapping (a string, a list) is the task's notes."""
        if value is None or value == "":
            return None
        if isinstance(value, dict):
            return {str(k): v for k, v in value.items()}
        return {"notes": value}

    @field_validator("dependencies", mode="before")
    @classmethod
    def _dependencies(cls, value: object) -> object:
        return dependency_records(value)

    @field_validator("not_before", mode="before")
    @classmethod
    def _when(cls, value: object) -> object:
        """YAML reads an ISO time as a datetime already; a string may be one, or a wait."""
        if isinstance(value, str):
            try:
                value = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
            except ValueError:
                return parse_duration(value, zero=True)
        if isinstance(value, dt.datetime):
            if value.tzinfo is None:
                raise ValueError("a time needs its zone")
            return value
        if isinstance(value, dt.date):
            raise ValueError("a day needs a time and a zone")
        return parse_duration(value, zero=True)

    @property
    def base_ref(self) -> str | None:
        return self.base if isinstance(self.base, str) and self.base.strip() else None

    def start_at(self, arrived: float) -> float | None:
        """The epoch second the task may start (None: at once); a wait counts from
        `arrived`, the time the file reached the inbox."""
        if self.not_before is None:
            return None
        if isinstance(self.not_before, dt.datetime):
            return self.not_before.timestamp()
        return arrived + self.not_before

    @property
    def priority_rank(self) -> int:
        return PRIORITIES[self.priority]

    def waits_for(self, dep: Dependency) -> bool:
        """Whether the task waits for `dep`: one that names a task id does; prose only
        under `policies.tasks.strict_dependencies`; a record naming no task never."""
        if dep.task_id is None:
            return False
        return self._strict_dependencies or not_an_id(dep.task_id) is None

    @property
    def dependency_ids(self) -> list[str]:
        """The ids the task waits for."""
        return [d.task_id for d in self.dependencies if d.task_id and self.waits_for(d)]

    @property
    def read_warnings(self) -> list[str]:
        """What reading the task file noticed, for the result's `warnings`."""
        return list(self._warnings)

    @property
    def misspelt_keys(self) -> dict[str, str]:
        """Unknown keys as written → the known key each looks like."""
        return dict(self._misspelt)

    def extra_fields(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


def parse_task(
    raw: Mapping[str, Any],
    default_id: str,
    name: str,
    config: Config,
    warnings: Sequence[str] = (),
) -> Task:
    """A task file's mapping → Task, checked against the config's agents. `warnings` are
    what reading the file noticed already (keys written twice); the task carries them,
    and its own, to its result."""
    fields = dict(raw)
    if "artifacts" in fields and "artefacts" not in fields:
        fields["artefacts"] = fields.pop("artifacts")
    fields["id"] = _checked_id(fields.get("id", default_id), name)
    misspelt = misspelt_keys(raw, [*Task.model_fields, "artifacts"])
    _check_agent(fields.get("agent"), name, config, misspelt)
    try:
        task = Task.model_validate(fields)
    except ValidationError as exc:
        raise invalid_field(exc.errors()[0], raw, name, FIELD_RULES) from None
    _check_pins(task, name, config)
    task._strict_dependencies = config.policies.tasks.strict_dependencies
    task._misspelt = misspelt
    task._warnings = [
        *warnings,
        *(
            f"unknown key {key!r}: did you mean {known!r}? (it was not used)"
            for key, known in misspelt.items()
        ),
        *_dependency_warnings(task),
    ]
    return task


def _checked_id(task_id: object, name: str) -> str:
    if not isinstance(task_id, str | int) or isinstance(task_id, bool):
        raise TaskRejected(
            "unsafe_id", f"{name}: id is {shown(task_id)}, not text", "write e.g. `id: my-task`"
        )
    task_id = str(task_id)
    if (why := id_problem(task_id)) is not None:
        raise TaskRejected(
            "unsafe_id",
            f"{name}: id {task_id!r} {why}",
            "use letters, digits, '-', '_' and '.', no '/' and no '..'",
        )
    return task_id


def _check_agent(agent: object, name: str, config: Config, misspelt: Mapping[str, str]) -> None:
    if agent is None or agent == "":
        guesses = [f"the file has {k!r}: did you mean 'agent'?" for k, v in misspelt.items()
                   if v == "agent"]  # fmt: skip
        names = ", ".join(sorted(config.agents))
        raise TaskRejected(
            "missing_agent",
            f"{name}: no `agent` field",
            "; ".join([*guesses, f"add `agent: NAME`; agents: {names}"]),
        )
    if not isinstance(agent, str) or agent not in config.agents:
        raise TaskRejected(
            "unknown_agent",
            f"{name}: unknown agent {agent!a}",
            suggest(str(agent), config.agents),
        )


def _check_pins(task: Task, name: str, config: Config) -> None:
    if task.tool is not None and task.tool not in config.tools:
        raise TaskRejected(
            "unknown_tool", f"{name}: unknown tool {task.tool!a}", suggest(task.tool, config.tools)
        )


def _dependency_warnings(task: Task) -> Iterable[str]:
    for dep in task.dependencies:
        if task.waits_for(dep):
            continue
        if dep.task_id is None:
            yield (
                f"dependency {shown(dep.details)} names no task (no task_id, id or task): "
                "not waited on; it is in the prompt as a prerequisite"
            )
        else:
            yield (
                f"dependency {dep.task_id!r} cannot be a task id (it {not_an_id(dep.task_id)}): "
                "not waited on; it is in the prompt as a prerequisite (to wait for such "
                "names, set tasks: {strict_dependencies: true} in config/policies.yaml)"
            )


def _priority_words() -> str:
    synonyms = "; ".join(
        f"{', '.join(s for s, p in PRIORITY_SYNONYMS.items() if p == priority)} for {priority}"
        for priority in PRIORITIES
        if priority in PRIORITY_SYNONYMS.values()
    )
    return f"use one of: {', '.join(PRIORITIES)} (or {synonyms}), in any case"


_TEXT = ("text", "write it as text (in quotes when YAML would read it as something else)")
_TEXT_FIELDS = "title description prompt prompt_file task_type tool model justification chain_id"
# Per field of a task: what its value must be (after "not ..."), and what to write.
FIELD_RULES: dict[str, tuple[str, str]] = {
    **dict.fromkeys([*_TEXT_FIELDS.split(), "previous_task", "previous_agent"], _TEXT),
    "priority": ("a priority", _priority_words()),
    "timeout": ("a duration", "write it as 30s, 15m or 1h (a bare number is seconds)"),
    "idle_timeout": (
        "a duration or off",
        "write it as 30s, 5m or 1h, or off for no limit but the timeout",
    ),
    "not_before": (
        "a time with its zone or a wait",
        "write e.g. 2026-12-24T08:00:00+01:00 (Z for UTC), or a wait such as 30m",
    ),
    "budget_usd": (
        "a number of dollars, 0 or more",
        "write a number, e.g. `budget_usd: 2.5`, or remove it (the agent's budgets apply)",
    ),
    "handoff_depth": (
        "a whole number, 0 or more",
        "remove it: the orchestrator sets it on the follow-up task of a handoff",
    ),
    "retry": ("a whole number, 0 or more", "remove it: `orchestrator retry ID` sets it"),
    "on_dependency_failure": (
        "reject or run",
        "write `reject` (a failed dependency rejects this task; the default) or `run`",
    ),
    "context_files": ("a file path", "list workspace files, e.g. `[docs/design.md]`"),
    "dependencies": ("a task id", "list the ids of the tasks to wait for, e.g. `[design-api]`"),
    "context": ("notes", "write the notes as `context: {notes: [...]}` or as a plain string"),
    "artefacts": ("a list of files", "list them, e.g. `artefacts: [docs/auth.md]`"),
    "previous_output": _TEXT,
}
