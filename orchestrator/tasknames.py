"""The words of a task file that name things: task ids, session names, priorities, and
what each entry of `dependencies` names. Pure functions of the text as written.

Agents write prerequisites as ids, as records, or as prose; what can be a task id is
waited for, the rest is told to the agent. `orchestrator.tasks` re-exports all of this.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

SESSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
SESSION_RULE = "1-64 letters, digits, '.', '_' or '-', starting with a letter or digit"


def valid_session(name: str) -> bool:
    return bool(SESSION.match(name))


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
