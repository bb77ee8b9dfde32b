"""Config problems in the words of someone editing YAML: did-you-mean hints, field paths
as written (`agents.w.fallback_chain[0]`), and pydantic's errors turned into what is wrong
and what to write instead."""

from __future__ import annotations

import difflib
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from orchestrator.errors import ConfigProblem

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from pydantic import ValidationError


def shown(name: str) -> str:
    """A name as a hint lists it: plain when it is printable ASCII, else escaped
    (`'\\u0430'`), so a look-alike character (Cyrillic U+0430 for Latin a) cannot hide."""
    return name if name.isascii() and name.isprintable() else ascii(name)


def suggest(value: str, choices: Iterable[str]) -> str:
    """A "did you mean" hint, or the list of valid names when nothing is close. Names and
    a `value` that are not plain ASCII are shown escaped."""
    names = sorted(choices)
    close = difflib.get_close_matches(value, names, n=1, cutoff=0.6)
    if close:
        hint = f"did you mean {close[0]!a}?"
    else:
        hint = f"valid names: {', '.join(map(shown, names))}" if names else "none are defined"
    if shown(value) != value:
        hint = f"{value!a} has characters that are not plain ASCII; {hint}"
    return hint


def _field_path(loc: Iterable[int | str]) -> str:
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


def _allowed_keys(model: type[BaseModel], loc: tuple[int | str, ...]) -> list[str]:
    """The field names valid at `loc` (the location of an unknown key) within `model`."""
    current: Any = model
    for part in loc[:-1]:
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = current.model_fields.get(str(part))
            if field is None:
                return []
            current = field.annotation
        else:  # a dict[str, Model] or list[Model] level: step into its value type
            args = getattr(current, "__args__", ())
            current = next(
                (a for a in args if isinstance(a, type) and issubclass(a, BaseModel)),
                args[-1] if args else None,
            )
    while not (isinstance(current, type) and issubclass(current, BaseModel)):
        args = getattr(current, "__args__", ())
        if not args:
            return []
        current = next((a for a in args if isinstance(a, type)), args[-1])
    return list(current.model_fields)


def problems_from(error: ValidationError, file: str, model: type[BaseModel]) -> list[ConfigProblem]:
    problems = []
    for item in error.errors():
        loc = tuple(item["loc"])
        field = _field_path(loc)
        if item["type"] == "extra_forbidden":
            key = str(loc[-1])
            problems.append(
                ConfigProblem(
                    file, field, f"unknown key {key!a}", suggest(key, _allowed_keys(model, loc))
                )
            )
            continue
        message, hint = plain(item)
        problems.append(ConfigProblem(file, field, message, hint))
    return problems


def plain(item: Mapping[str, Any]) -> tuple[str, str]:
    """A pydantic error → (what is wrong, with the value once; what to write instead), in
    the terms of someone editing a YAML file rather than pydantic's."""
    kind = item["type"]
    ctx = item.get("ctx") or {}
    value = item.get("input")
    got = "" if isinstance(value, dict | list) or value is None else f" {value!a}"
    if kind == "missing":
        return "missing", "add it"
    if kind == "literal_error":
        choices = str(ctx.get("expected", "")).replace("'", "")
        return f"{got.strip() or 'this value'} is not one of {choices}", f"write one of {choices}"
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        words = {"greater_than": "more than", "greater_than_equal": "at least",
                 "less_than": "less than", "less_than_equal": "at most"}  # fmt: skip
        bound = next(iter(ctx.values()), "")
        return f"{got.strip()} is too {'small' if 'greater' in kind else 'large'}", (
            f"write a number {words[kind]} {bound}"
        )
    simple = {
        "int": ("a whole number", "write one such as 3"),
        "float": ("a number", "write one such as 2.5"),
        "finite_number": ("a finite number", "write one such as 2.5"),
        "bool": ("true or false", "write true or false"),
        "string": ("text", "quote it if YAML reads it as something else"),
        "list": ("a list", "write it as [a, b] or as `- a` lines"),
        "dict": ("a mapping", "write it as `key: value` lines"),
        "model": ("a mapping", "write it as `key: value` lines"),
    }
    for prefix, (expected, hint) in simple.items():
        if kind.startswith(prefix):
            return f"{got.strip() or 'this'} is not {expected}", hint
    message = str(item["msg"]).removeprefix("Value error, ")
    hint = "" if "write" in message else "fix it"  # a message of ours says what to write
    return message + (f" (got{got})" if got and got.strip() not in message else ""), hint
