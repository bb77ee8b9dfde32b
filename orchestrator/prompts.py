"""The prompt a tool receives for a task: the agent's profile, the task's own words (its
prompt, prompt_file, or title and description), its notes and what its dependencies say,
the context files, a handoff's previous output, and the handoff instructions.

Agents write notes in any shape (`Expected: 120s` in a YAML list is a mapping); they are
rendered as plain indented lines, never as Python reprs. Files named by a task are read
with bounds and never from outside the workspace.
"""

from __future__ import annotations

import datetime as dt
import errno
import os
from typing import TYPE_CHECKING

from orchestrator.errors import TaskRejected
from orchestrator.safefile import NotRegular, open_inside, read_fd, read_regular
from orchestrator.taskyaml import MAX_TASK_BYTES, decode_text

if TYPE_CHECKING:
    from pathlib import Path

    from orchestrator.config import Config
    from orchestrator.tasks import Dependency, Task

MAX_INPUT_BYTES = 8 * MAX_TASK_BYTES  # a prompt_file or a context file
MAX_NOTE_DEPTH = 12  # deeper notes are shown as "…": a prompt is no place for a tree
PREREQUISITES = "Prerequisites named by the task (not waited on):"
DESCRIBED = "Dependencies (tasks this one waited for):"


def compose_prompt(
    task: Task,
    workspace: Path,
    name: str,
    profile: str | None = None,
    instructions: str | None = None,
) -> str:
    """The text the tool receives: profile, the prompt (with the task's notes), what its
    dependencies say, the context files, the previous task's output (for a handoff), then
    `instructions` (how to hand off)."""
    notes = notes_section(task.context.notes) if task.context else None
    if task.prompt is not None:
        body = task.prompt
    elif task.prompt_file is not None:
        body = read_inside(workspace, task.prompt_file, name, "prompt_file")
    else:
        body, notes = _from_fields(task, notes), None
    if not body.strip():
        raise TaskRejected(
            "empty_prompt",
            f"{name}: nothing to do: no prompt, prompt_file, title or description",
            _empty_hint(task),
        )
    parts = [profile.strip()] if profile else []
    parts.append(body.strip())
    if notes:
        parts.append(notes)
    parts.extend(dependency_sections(task))
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


def _empty_hint(task: Task) -> str:
    """Nothing to do: when a misspelt key holds the prompt, say so first."""
    hint = "add `prompt:` (or title and description)"
    misspelt = [f"the file has {k!r}: did you mean {v!r}?" for k, v in task.misspelt_keys.items()]
    return "; ".join([*misspelt, f"otherwise {hint}"]) if misspelt else hint


def _from_fields(task: Task, notes: str | None) -> str:
    parts = []
    if task.title:
        parts.append(f"# {task.title}")
    if task.description:
        parts.append(str(task.description).strip())
    if notes:
        parts.append(notes)
    if artefacts := note_lines(task.artefacts):
        parts.append("Artefacts:\n" + "\n".join(artefacts))
    return "\n\n".join(parts)


def notes_section(notes: object) -> str | None:
    """`context.notes` as written (text, a list, a mapping, nested) → a "Notes:" list."""
    if isinstance(notes, dict):
        items: object = [{key: value} for key, value in notes.items()]
    else:
        items = notes if isinstance(notes, list) else [notes]
    lines = note_lines(items)
    return "Notes:\n" + "\n".join(lines) if lines else None


def dependency_sections(task: Task) -> list[str]:
    """What the task's dependencies say beyond an id (a record's other keys), and the
    prerequisites it names that are not waited on (prose, paths, records naming no task)."""
    described = [d for d in task.dependencies if task.waits_for(d) and d.details]
    prose = [d for d in task.dependencies if not task.waits_for(d)]
    sections = []
    for title, deps in ((DESCRIBED, described), (PREREQUISITES, prose)):
        if lines := note_lines([_dependency_note(d) for d in deps]):
            sections.append(title + "\n" + "\n".join(lines))
    return sections


def _dependency_note(dep: Dependency) -> object:
    if dep.task_id is None:
        return dep.details
    if not dep.details:
        return dep.task_id
    if all(_is_scalar(v) for v in dep.details.values()):
        said = "; ".join(f"{k}: {_text(v)}" for k, v in dep.details.items())
        return f"{dep.task_id} ({said})"
    return {dep.task_id: dep.details}


def note_lines(value: object, depth: int = 0) -> list[str]:
    """`value` as plain lines, the way YAML's block style reads without its quotes:
    a mapping as `key: value`, a list as `- item`, each level indented by two spaces."""
    if depth > MAX_NOTE_DEPTH:
        return ["…"]
    if isinstance(value, dict):
        lines = []
        for key, item in value.items():
            inner = note_lines(item, depth + 1)
            if _is_scalar(item) and len(inner) <= 1:
                lines.append(f"{_text(key)}: {''.join(inner)}".rstrip())
            else:
                lines.append(f"{_text(key)}:")
                lines.extend(f"  {line}" for line in inner)
        return lines
    if isinstance(value, list):
        lines = []
        for item in value:
            inner = note_lines(item, depth + 1)
            if inner:
                lines.append(f"- {inner[0]}")
                lines.extend(f"  {line}" for line in inner[1:])
        return lines
    return _text(value).splitlines()


def _is_scalar(value: object) -> bool:
    return not isinstance(value, dict | list)


def _text(value: object) -> str:
    """A scalar as a person would write it (YAML's words for booleans and nothing)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value).strip()


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
    return decode_text(data, f"{name}: {shown}")


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
