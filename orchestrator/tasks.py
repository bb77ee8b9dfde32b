"""Task files in: the Task model, and reading a task file's mapping tolerantly.

Task files follow the agents' existing format, and agents write it loosely: priorities as
`HIGH` or `P1`, notes of any shape, dependencies as ids, records or prose. What can be
understood is; unknown keys are kept (and copied into the result under `task`), and what
was guessed is said in the result's `warnings` (a misspelt key, a prose dependency that is
not waited on, a key written twice). Anything that makes a file unrunnable raises
`TaskRejected` with a stable `kind`, a message naming the file, the field as written and
its value, and a hint saying what to write instead.

Reading the YAML is in `taskyaml`, composing the prompt in `prompts`.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator

from orchestrator.config import Config, suggest
from orchestrator.errors import TaskRejected
from orchestrator.prompts import MAX_INPUT_BYTES as MAX_INPUT_BYTES
from orchestrator.prompts import compose_prompt as compose_prompt
from orchestrator.prompts import read_inside as read_inside
from orchestrator.prompts import read_profile as read_profile
from orchestrator.taskerrors import invalid_field, misspelt_keys, shown
from orchestrator.taskyaml import MAX_TASK_BYTES as MAX_TASK_BYTES
from orchestrator.taskyaml import load_mapping as load_mapping
from orchestrator.taskyaml import load_task as load_task
from orchestrator.values import Duration, IdleTimeout, parse_duration

SESSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
SESSION_RULE = "1-64 letters, digits, '.', '_' or '-', starting with a letter or digit"


def valid_session(name: str) -> bool:
    return bool(SESSION.match(name))


if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

# An id names files: `<id>.result.yaml`, a rejection's `<id>.rejected-<time>.result.yaml`
# and their temp files `.<name>.<pid>.tmp`, `history/<id>.<run>.result.yaml`, ... The
# longest adds 56 bytes, so 160 bytes of id keep every derived name under NAME_MAX (255).
MAX_ID_BYTES = 160
PRIORITIES: dict[str, int] = {"critical": 0, "high": 1, "normal": 2, "low": 3}
# Words agents write for a priority, in any case, and the priority each means.
PRIORITY_SYNONYMS: dict[str, str] = {
    "urgent": "critical",
    "blocker": "critical",
    "p0": "critical",
    "p1": "high",
    "medium": "normal",
    "med": "normal",
    "default": "normal",
    "p2": "normal",
    "minor": "low",
    "p3": "low",
}


def priority_of(value: object) -> str | None:
    """A priority as written (`HIGH`, `medium`, `P1`) → critical, high, normal or low;
    None when it is none of these or their synonyms."""
    if not isinstance(value, str):
        return None
    word = value.strip().lower()
    word = PRIORITY_SYNONYMS.get(word, word)
    return word if word in PRIORITIES else None


TASK_SUFFIXES = (".yaml", ".yml")

_UNSAFE_ID = re.compile(r"[/\\\x00-\x1f\x7f]")
# What a dependency that names a document ends with (`docs/adr/0003.md`, `DDR-011.md`).
_DOCUMENT_SUFFIXES = (".md", ".markdown", ".mdx", ".txt", ".rst", ".adoc", ".pdf", ".html")
_NAMING_KEYS = ("task_id", "id", "task")  # what names the task in a dependency record


def id_problem(task_id: str) -> str | None:
    """Why `task_id` is not a safe file name, or None when it is."""
    if not task_id:
        return "is empty"
    try:
        size = len(task_id.encode("utf-8"))
    except UnicodeEncodeError:
        return "contains bytes that are not UTF-8"
    if size > MAX_ID_BYTES:
        return f"is {size} bytes long in UTF-8 (at most {MAX_ID_BYTES}: it names files)"
    if _UNSAFE_ID.search(task_id):
        return "contains a path separator or a control character"
    if task_id.startswith(".") or ".." in task_id:
        return "starts with a dot or contains '..'"
    if task_id.startswith("-"):
        return "starts with '-' (a tool could read it as an option)"
    return None


def not_an_id(text: str) -> str | None:
    """Why a dependency written as `text` cannot be a task id, or None when it can.

    Agents write prerequisites as prose (`✅ Tech stack decision (Python) - RESOLVED`,
    `DDR-011 (completed)`) or as documents (`docs/adr/0003.md`); no task will ever have
    such an id, so waiting for one would wait forever. A task id is a safe file name
    (`id_problem`) with no whitespace, no '/', no brackets, no emoji or other symbol
    characters, and not a document's name (`.md`, `.txt`, ...). `DDR-011` alone can be an
    id, and is waited for like any other."""
    if any(c.isspace() for c in text):
        return "has spaces"
    if "/" in text or "\\" in text:
        return "is a path"
    if any(c in "()[]{}<>" for c in text):
        return "has brackets"
    if any(unicodedata.category(c) == "So" for c in text):
        return "has a symbol such as an emoji"
    if text.lower().endswith(_DOCUMENT_SUFFIXES):
        return "names a document"
    return id_problem(text)


class Dependency(BaseModel):
    """One entry of `dependencies`: the task it names (None for a record that names
    none) and what else a record says about it."""

    model_config = ConfigDict(extra="forbid")
    task_id: str | None = None
    details: dict[str, Any] = Field(default_factory=dict)


class Context(BaseModel):
    model_config = ConfigDict(extra="allow")
    notes: Any = None  # text, a list, a mapping, nested: rendered as plain lines


class Task(BaseModel):
    """A task as the orchestrator sees it; extra keys are kept in `model_extra`."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    id: str
    agent: str
    title: str | None = None
    description: str | None = None
    artefacts: list[Any] = Field(default_factory=list)
    priority: Literal["critical", "high", "normal", "low"] = "normal"
    task_type: str | None = None
    prompt: str | None = None
    prompt_file: str | None = None
    context: Context | None = None
    context_files: list[str] = Field(default_factory=list)
    dependencies: list[Dependency] = Field(default_factory=list)
    tool: str | None = None
    model: str | None = None
    timeout: Duration | None = None
    idle_timeout: IdleTimeout | None = None  # overrides the tool's (0: off)
    # The git ref an isolated (worktree) task starts from, when it is text: agents' own
    # files use `base:` for other things too (a YAML anchor's holder), kept as they are.
    base: Any = None
    # Start no earlier: an aware time, or a wait (seconds) counted from the file's arrival.
    not_before: dt.datetime | float | None = None
    budget_usd: float | None = Field(default=None, ge=0)
    justification: str | None = None  # why a task above require_justification_over_usd runs
    session: str | None = None  # a conversation that continues (orchestrator/sessions.py)
    chain_id: str | None = None
    on_dependency_failure: Literal["reject", "run"] = "reject"
    previous_task: str | None = None
    previous_agent: str | None = None
    previous_output: str | None = None
    handoff_depth: int = Field(default=0, ge=0)
    retry: int = Field(default=0, ge=0)  # set by `orchestrator retry`: the run number - 1

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


def dependency_records(value: object) -> list[dict[str, Any]]:
    """`dependencies` as agents write them → {task_id, details} records. An entry is an
    id, a record naming its task by `task_id`, `id` or `task` (in that order; its other
    keys are details), a record naming none (all details), or prose; nested lists are
    flattened, and "a, b" is two ids when both parts can be ids."""
    records: list[dict[str, Any]] = []
    stack = [value]
    while stack:  # a loop, not recursion: the nesting is the agent's
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(reversed(item))
        elif isinstance(item, dict):
            records.append(_record({str(k): v for k, v in item.items()}))
        elif item is not None and (text := str(item).strip()):
            if isinstance(item, bool):
                text = text.lower()
            parts = [p.strip() for p in text.split(",")]
            ids = len(parts) > 1 and all(not_an_id(p) is None for p in parts)
            records.extend({"task_id": p} for p in (parts if ids else [text]))
    return records


def _record(item: dict[str, Any]) -> dict[str, Any]:
    for key in _NAMING_KEYS:
        named = item.get(key)
        if isinstance(named, str | int) and not isinstance(named, bool) and str(named).strip():
            return {
                "task_id": str(named).strip(),
                "details": {k: v for k, v in item.items() if k != key},
            }
    return {"task_id": None, "details": item}


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
