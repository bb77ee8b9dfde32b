"""A task file's mistakes told in its writer's terms.

pydantic speaks of its own types: `context.notes.str: Input should be a valid string`.
The person who wrote the file knows `context.notes[2]`, the value they wrote, and wants
to read what to write instead. The table of what each field must be is the Task's
(`tasks.FIELD_RULES`); here is how an error is turned into those words, and how a key
that looks misspelt is found.
"""

from __future__ import annotations

import difflib
from typing import TYPE_CHECKING, Any

import yaml

from orchestrator.errors import TaskRejected

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from pydantic_core import ErrorDetails

MAX_SHOWN = 80  # characters of a value quoted in a message
# Keys of the agents' own format that look like one of ours by accident: `mode:` is not
# a misspelt `model:`.
AGENTS_OWN_KEYS = frozenset({"mode"})
KEY_CUTOFF = 0.8  # stricter than config's `suggest`: an agent's own keys must stay quiet


def invalid_field(
    error: ErrorDetails,
    written: Mapping[str, Any],
    name: str,
    rules: Mapping[str, tuple[str, str]],
) -> TaskRejected:
    """The rejection for one validation error of the mapping `written` (the file as
    read): the field as written, its value once, what it must be, and what to write.
    `rules` gives, per top-level field, what its value must be and a hint."""
    path, value = as_written(error["loc"], written, error.get("input"))
    top = str(error["loc"][0]) if error["loc"] else ""
    expected, hint = rules.get(top) or _generic(error, path or top)
    return TaskRejected(
        "invalid_field", f"{name}: {path or top} is {shown(value)}, not {expected}", hint
    )


def as_written(loc: Iterable[int | str], document: object, fallback: object) -> tuple[str, Any]:
    """A pydantic error location → the path as the file writes it (`context.notes[2]`)
    and the value found there. Parts the document does not have (a union's branch, such
    as `str` or `Dependency`, or an index into a value that was made a list) are left
    out: they are pydantic's, not the writer's."""
    path, current, found = "", document, False
    for part in loc:
        if isinstance(part, int) and isinstance(current, list) and 0 <= part < len(current):
            path, current = f"{path}[{part}]", current[part]
        elif isinstance(part, str) and isinstance(current, dict) and part in current:
            path, current = f"{path}.{part}" if path else part, current[part]
        else:
            continue
        found = True
    return path, current if found else fallback


def shown(value: object) -> str:
    """A value for a message, as YAML writes it inline (a string in quotes), cut short."""
    if isinstance(value, str):
        text = repr(value)
    else:
        try:
            text = yaml.safe_dump(
                value, default_flow_style=True, allow_unicode=True, width=MAX_SHOWN * 4
            )
        except yaml.YAMLError:
            text = repr(value)
        text = text.strip().removesuffix("...").strip().replace("\n", " ")
    return text if len(text) <= MAX_SHOWN else text[: MAX_SHOWN - 1] + "…"


def _generic(error: ErrorDetails, path: str) -> tuple[str, str]:
    """What a field without a rule must be, from the kind of error."""
    kind = error["type"]
    context = error.get("ctx") or {}
    if kind == "literal_error":
        expected = str(context.get("expected", "one of the listed words")).replace("'", "")
    elif kind in ("greater_than_equal", "greater_than"):
        expected = f"a number of {context.get('ge', context.get('gt'))} or more"
    else:
        expected = {
            "string_type": "text",
            "int_type": "a whole number",
            "int_parsing": "a whole number",
            "float_type": "a number",
            "float_parsing": "a number",
            "bool_type": "true or false",
            "list_type": "a list",
            "dict_type": "a mapping",
        }.get(kind, "a value this field takes")
    return expected, f"write {path} as {expected}, or remove it"


def misspelt_keys(written: Iterable[str], known: Iterable[str]) -> dict[str, str]:
    """Unknown keys that look like a misspelt known one (`promt`, `agnet`,
    `dependancies`, `context_file`) → that key, when the file does not have it already.
    Unknown keys like none of ours stay silent: agents write many keys of their own."""
    keys = list(written)
    names = list(known)
    found = {}
    for key in keys:
        if key in names or key.lower() in AGENTS_OWN_KEYS:
            continue
        close = difflib.get_close_matches(key.lower().replace("-", "_"), names, 1, KEY_CUTOFF)
        if close and close[0] not in keys:
            found[key] = close[0]
    return found
