"""Task files in, result files out: the Task model, reading task files tolerantly, composing
the prompt, and rendering results.

Task files follow the agents' existing format; unknown keys are kept (and copied into the
result under `task`). Anything that makes a file unrunnable raises `TaskRejected` with a
stable `kind`, a message naming the file and field, and a hint.
"""

from __future__ import annotations

import errno
import os
import re
from typing import TYPE_CHECKING, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from orchestrator.config import Config, Duration, suggest
from orchestrator.errors import TaskRejected
from orchestrator.safefile import NotRegular, open_inside, read_fd, read_regular

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

MAX_TASK_BYTES = 1024 * 1024
MAX_INPUT_BYTES = 8 * MAX_TASK_BYTES  # a prompt_file or a context file
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
_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


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


class Dependency(BaseModel):
    model_config = ConfigDict(extra="allow")
    task_id: str


class Context(BaseModel):
    model_config = ConfigDict(extra="allow")
    notes: str | list[str] | None = None


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
    dependencies: list[str | Dependency] = Field(default_factory=list)
    tool: str | None = None
    model: str | None = None
    timeout: Duration | None = None
    budget_usd: float | None = Field(default=None, ge=0)
    justification: str | None = None  # why a task above require_justification_over_usd runs
    chain_id: str | None = None
    on_dependency_failure: Literal["reject", "run"] = "reject"
    previous_task: str | None = None
    previous_agent: str | None = None
    previous_output: str | None = None
    handoff_depth: int = Field(default=0, ge=0)
    retry: int = Field(default=0, ge=0)  # set by `orchestrator retry`: the run number - 1

    @field_validator("priority", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return priority_of(value) or value

    @field_validator("artefacts", "context_files", "dependencies", mode="before")
    @classmethod
    def _listify(cls, value: object) -> object:
        if value is None:
            return []
        return [value] if isinstance(value, str | dict) else value

    @property
    def priority_rank(self) -> int:
        return PRIORITIES[self.priority]

    @property
    def dependency_ids(self) -> list[str]:
        return [d if isinstance(d, str) else d.task_id for d in self.dependencies]

    def extra_fields(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


def _decode(data: bytes, name: str) -> str:
    if b"\x00" in data:
        raise TaskRejected(
            "binary", f"{name} is a binary file, not YAML text", "write the task as UTF-8 YAML"
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise TaskRejected(
            "not_utf8",
            f"{name} is not UTF-8 text (bad byte at offset {exc.start})",
            "save the task file as UTF-8",
        ) from None


MAX_EXPANDED_NODES = 100_000


def _expanded_size(node: Any, memo: dict[int, int]) -> int:
    """How many nodes `node` stands for once every alias is expanded (memoised per node,
    so this is linear in the document even when the expansion is exponential)."""
    key = id(node)
    if memo.get(key) == -1:
        return MAX_EXPANDED_NODES + 1  # an alias inside its own anchor: infinite
    if key not in memo:
        memo[key] = -1
        value = node.value
        if isinstance(value, list):
            children = [c for item in value for c in (item if isinstance(item, tuple) else (item,))]
            memo[key] = 1 + sum(_expanded_size(child, memo) for child in children)
        else:
            memo[key] = 1
    return memo[key]


def _check_aliases(text: str, name: str) -> None:
    """Refuse alias bombs: YAML whose anchors and aliases expand exponentially."""
    if "&" not in text or "*" not in text:
        return  # no anchor or no alias: nothing to expand (the fast path)
    try:
        root = yaml.compose(text, Loader=_Loader)
    except (yaml.YAMLError, RecursionError):
        return  # the loader reports the problem with its position
    if root is not None and _expanded_size(root, {}) > MAX_EXPANDED_NODES:
        raise TaskRejected(
            "yaml_aliases",
            f"{name}: its YAML aliases expand to more than {MAX_EXPANDED_NODES} values "
            "(or refer to themselves)",
            "write the values out instead of repeating anchors",
        )


def load_mapping(data: bytes, name: str) -> dict[str, Any]:
    """Bytes of a task file → its top-level mapping, or TaskRejected."""
    if len(data) > MAX_TASK_BYTES:
        raise TaskRejected(
            "too_large",
            f"{name} is {len(data)} bytes; task files may be at most {MAX_TASK_BYTES} bytes",
            "put long material in a file and name it in prompt_file or context_files",
        )
    text = _decode(data, name)
    _check_aliases(text, name)
    try:
        loaded = yaml.load(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise TaskRejected(
            "yaml_syntax", f"{name}: YAML syntax error{where}: {exc.problem}", "fix the YAML"
        ) from None
    except yaml.YAMLError as exc:
        raise TaskRejected("yaml_syntax", f"{name}: {exc}", "fix the YAML") from None
    except RecursionError:
        raise TaskRejected("yaml_syntax", f"{name}: nested too deeply", "flatten it") from None
    if not isinstance(loaded, dict):
        kind = "empty" if loaded is None else type(loaded).__name__
        raise TaskRejected(
            "not_a_mapping",
            f"{name}: expected a mapping of keys (agent:, prompt:, ...), got {kind}",
            "write the task as `key: value` lines with at least `agent:`",
        )
    return {str(k): v for k, v in loaded.items()}


def parse_task(raw: Mapping[str, Any], default_id: str, name: str, config: Config) -> Task:
    """A task file's mapping → Task, checked against the config's agents."""
    fields = dict(raw)
    if "artifacts" in fields and "artefacts" not in fields:
        fields["artefacts"] = fields.pop("artifacts")
    task_id = fields.get("id", default_id)
    if not isinstance(task_id, str | int) or isinstance(task_id, bool):
        raise TaskRejected("unsafe_id", f"{name}: id must be a string", "write id: my-task-name")
    fields["id"] = task_id = str(task_id)
    if (why := id_problem(task_id)) is not None:
        raise TaskRejected(
            "unsafe_id",
            f"{name}: id {task_id!r} {why}",
            "use letters, digits, '-', '_' and '.', no '/' and no '..'",
        )
    agent = fields.get("agent")
    if agent is None or agent == "":
        raise TaskRejected(
            "missing_agent",
            f"{name}: no `agent` field",
            "add `agent: NAME`; agents: " + ", ".join(sorted(config.agents)),
        )
    if not isinstance(agent, str) or agent not in config.agents:
        raise TaskRejected(
            "unknown_agent",
            f"{name}: unknown agent {agent!a}",
            suggest(str(agent), config.agents),
        )
    try:
        task = Task.model_validate(fields)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"])
        value = err.get("input")
        raise TaskRejected(
            "invalid_field",
            f"{name}: field {field!r}: {err['msg']} (got {value!r})",
            _field_hint(field),
        ) from None
    _check_pins(task, name, config)
    return task


def _field_hint(field: str) -> str:
    hints = {
        "priority": "use one of: critical, high, normal, low",
        "timeout": "write it as 30s, 15m or 1h",
        "budget_usd": "a non-negative number of dollars",
    }
    top = field.split(".")[0]
    return hints.get(top, f"fix the value of {top}")


def _check_pins(task: Task, name: str, config: Config) -> None:
    if task.tool is not None and task.tool not in config.tools:
        raise TaskRejected(
            "unknown_tool", f"{name}: unknown tool {task.tool!a}", suggest(task.tool, config.tools)
        )


def read_inside(workspace: Path, relative: str, name: str, field: str) -> str:
    """The text of a workspace file named in a task (prompt_file, context_files).

    What is checked is the file that was opened: its real path must lie inside the
    workspace (a symlink swapped in after any check cannot escape), it must be a regular
    file with one name (a hard link may be the name of a file outside), and its size is
    checked before a bounded read."""
    root = workspace.resolve()
    shown = f"{field} {relative!r}"
    try:  # for the clearer message; what counts is the check of the opened file below
        if not (root / relative).resolve().is_relative_to(root):
            raise _outside(name, shown)
    except (OSError, RuntimeError):  # a name changing under us: resolve() can fail
        pass
    try:
        opened = open_inside(root, relative)
    except FileNotFoundError:
        raise TaskRejected(
            "file_not_found",
            f"{name}: {shown} does not exist",
            "create the file or fix the path (relative to the workspace)",
        ) from None
    except PermissionError:
        raise _outside(name, shown) from None
    except NotRegular as exc:
        raise TaskRejected(
            "not_a_regular_file",
            f"{name}: {shown} is {exc.what}",
            "name a regular file inside the workspace",
        ) from None
    except OSError as exc:
        if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOMEM):
            raise  # out of descriptors or memory: the caller looks again later
        raise TaskRejected(
            "unreadable_file", f"{name}: {shown} cannot be read: {exc.strerror}", "fix the file"
        ) from None
    try:
        if opened.info.st_nlink > 1:
            raise TaskRejected(
                "hard_link",
                f"{name}: {shown} has {opened.info.st_nlink} hard links; another of its "
                "names may be outside the workspace",
                "copy the file into the workspace instead of linking it",
            )
        if opened.info.st_size > MAX_INPUT_BYTES:
            raise _too_large(name, shown, opened.info.st_size)
        data = read_fd(opened.fd, MAX_INPUT_BYTES + 1)
    finally:
        os.close(opened.fd)
    if len(data) > MAX_INPUT_BYTES:
        raise _too_large(name, shown, len(data))
    return _decode(data, f"{name}: {shown}")


def read_profile(config: Config, agent: str) -> str | None:
    """The profile an agent's prompts start with (agents.<agent>.profile), read with a
    bound and never blocking; TaskRejected when it cannot be read."""
    relative = config.agents[agent].profile
    if relative is None:
        return None
    try:
        return read_regular(config.root / relative, MAX_INPUT_BYTES, follow=True).decode()
    except (OSError, UnicodeDecodeError) as exc:
        raise TaskRejected(
            "profile_unreadable",
            f"the profile of agent {agent!a}, {relative}, cannot be read: {exc}",
            f"fix agents.{agent}.profile in config/agents.yaml",
        ) from None


def _outside(name: str, shown: str) -> TaskRejected:
    return TaskRejected(
        "path_outside_workspace",
        f"{name}: {shown} points outside the workspace",
        "name a file inside the workspace, relative to it",
    )


def _too_large(name: str, shown: str, size: int) -> TaskRejected:
    return TaskRejected(
        "too_large",
        f"{name}: {shown} is {size} bytes (at most {MAX_INPUT_BYTES})",
        "shorten it, or split the task",
    )


def compose_prompt(
    task: Task,
    workspace: Path,
    name: str,
    profile: str | None = None,
    instructions: str | None = None,
) -> str:
    """The text the tool receives: profile, the prompt, the context files, the previous
    task's output (for a handoff), then `instructions` (how to hand off)."""
    if task.prompt is not None:
        body = task.prompt
    elif task.prompt_file is not None:
        body = read_inside(workspace, task.prompt_file, name, "prompt_file")
    else:
        body = _from_fields(task)
    if not body.strip():
        raise TaskRejected(
            "empty_prompt",
            f"{name}: nothing to do: no prompt, prompt_file, title or description",
            "add `prompt:` (or title and description)",
        )
    parts = [profile.strip()] if profile else []
    parts.append(body.strip())
    for i, relative in enumerate(task.context_files):
        field = f"context_files[{i}]"
        text = read_inside(workspace, relative, name, field)
        parts.append(f"## {relative}\n\n{text.strip()}")
    if task.previous_output:
        who = f"{task.previous_task} ({task.previous_agent})"
        parts.append(f"## Output of the previous task, {who}\n\n{task.previous_output.strip()}")
    if instructions:
        parts.append(instructions.strip())
    return "\n\n".join(parts) + "\n"


def _from_fields(task: Task) -> str:
    parts = []
    if task.title:
        parts.append(f"# {task.title}")
    if task.description:
        parts.append(str(task.description).strip())
    notes = task.context.notes if task.context else None
    if notes:
        lines = notes if isinstance(notes, list) else [notes]
        parts.append("Notes:\n" + "\n".join(f"- {str(n).strip()}" for n in lines))
    if task.artefacts:
        parts.append("Artefacts:\n" + "\n".join(f"- {a}" for a in task.artefacts))
    return "\n\n".join(parts)
