"""Tables of keys from models: a pydantic model or a dataclass in, one row per key out,
with its dotted path, type, default and description. Pure: nothing here reads a file.

Nested models become keys under their parent's (`retries.backoff`); a mapping of names to
models puts a placeholder in the path (`tools.<tool>.timeout`), a list of them `[]`
(`attempts[].tool`). Types are told in the words of a YAML file: text, number, duration,
one of `a`, `b`. A field can say how it is written where its model type would mislead
(`json_schema_extra={"written_as": ..., "shown_default": ...}`), and a dataclass field
holding a free mapping can list that mapping's keys (`metadata={"description": ...,
"keys": ...}`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import annotated_types
from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from orchestrator import values
from orchestrator.adapters import BUILTIN, AdapterName

if typing.TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping

    from pydantic.fields import FieldInfo

NO_DEFAULT = "required"
NOT_SET = "not set"
# The name in a dotted path that stands for any key of a mapping of names, by the field.
PLACEHOLDERS = {
    "tools": "tool",
    "models": "model",
    "agents": "agent",
    "per_agent": "agent",
    "task_types": "task type",
    "rate_limits": "name",
    "profiles": "profile",
    "schedules": "schedule",
}
_SIMPLE = {
    str: "text",
    int: "integer",
    float: "number",
    bool: "boolean",
    Path: "path",
    dt.datetime: "time",
    Any: "any value",
}
_BOUNDS = (
    (annotated_types.Ge, "ge", "≥"),
    (annotated_types.Gt, "gt", ">"),
    (annotated_types.Le, "le", "≤"),
    (annotated_types.Lt, "lt", "<"),
)


def _special() -> dict[Callable[..., Any], str]:
    """The validator functions of our scalar types → how their values are written."""
    named = (
        (values.Duration, "duration (`30s`, `15m`, `2h`)"),
        (values.Pause, "duration, 0 allowed (`0s`, `2s`, `5m`)"),
        (values.IdleTimeout, "duration (`30s`, `5m`) or `off`"),
        (AdapterName, f"adapter: {', '.join(f'`{n}`' for n in BUILTIN)} or a plugin's"),
    )
    return {meta.func: name for alias, name in named for meta in get_args(alias)[1:]}


SPECIAL = _special()
DURATIONS = frozenset(func for func, name in SPECIAL.items() if name.startswith("duration"))


@dataclass(frozen=True)
class Row:
    """One line of a table: a key's dotted path, type, default and description."""

    key: str
    type: str
    default: str
    description: str


@dataclass(frozen=True)
class Key:
    """One field of a model, whichever kind of model it comes from."""

    name: str
    annotation: Any
    metadata: tuple[Any, ...]
    default: Any  # PydanticUndefined: required
    description: str
    written_as: str | None = None
    shown_default: str | None = None
    keys: Mapping[str, str] = dataclasses.field(default_factory=dict)


def keys_of(model: type) -> list[Key]:
    """The fields of a pydantic model or a dataclass, in order."""
    if issubclass(model, BaseModel):
        return [_pydantic_key(name, info) for name, info in model.model_fields.items()]
    if not dataclasses.is_dataclass(model):
        raise TypeError(f"{model!r} is neither a pydantic model nor a dataclass")
    hints = typing.get_type_hints(model)
    return [_dataclass_key(item, hints[item.name]) for item in dataclasses.fields(model)]


def _pydantic_key(name: str, info: FieldInfo) -> Key:
    extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
    default = info.default
    if info.default_factory is not None:
        default = info.default_factory()  # type: ignore[call-arg]
    return Key(
        name,
        info.annotation,
        tuple(info.metadata),
        default,
        info.description or "",
        _text(extra.get("written_as")),
        _text(extra.get("shown_default")),
    )


def _dataclass_key(item: dataclasses.Field[Any], annotation: Any) -> Key:
    default: Any = item.default
    if item.default_factory is not dataclasses.MISSING:
        default = item.default_factory()
    elif default is dataclasses.MISSING:
        default = PydanticUndefined
    meta = item.metadata
    return Key(
        item.name,
        annotation,
        (),
        default,
        str(meta.get("description", "")),
        keys=dict(meta.get("keys", {})),
    )


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def rows(model: type, prefix: str = "") -> list[Row]:
    """A row for every key of `model` under `prefix`, each nested model's keys right
    after the key that holds it."""
    found = []
    for key in keys_of(model):
        path = f"{prefix}{key.name}"
        shown = key.written_as or type_name(key.annotation, key.metadata, key.name)
        default = key.shown_default or default_text(key)
        found.append(Row(path, shown, default, key.description))
        values_are = _value_type(key.annotation)
        found += [Row(f"{path}.{sub}", values_are, "", text) for sub, text in key.keys.items()]
        if key.written_as is None and (nested := _nested(key.annotation, path, key.name)):
            inner, below = nested
            found += rows(inner, below)
    return found


def _value_type(annotation: Any) -> str:
    """The type of the values of a mapping field (`usage: dict[str, int]` → integer)."""
    annotation = _without_none(annotation)
    args = get_args(annotation)
    if get_origin(annotation) is dict and args[1] is not Any:
        return type_name(args[1])
    return ""


def _is_model(annotation: object) -> bool:
    return isinstance(annotation, type) and (
        issubclass(annotation, BaseModel) or dataclasses.is_dataclass(annotation)
    )


def _nested(annotation: Any, path: str, name: str) -> tuple[type, str] | None:
    """The model a field holds, and the prefix of its keys."""
    annotation = _without_none(annotation)
    origin, args = get_origin(annotation), get_args(annotation)
    if _is_model(annotation):
        return annotation, f"{path}."
    if origin is dict and _is_model(args[1]):
        return args[1], f"{path}.<{PLACEHOLDERS.get(name, 'name')}>."
    if origin is list and _is_model(args[0]):
        return args[0], f"{path}[]."
    return None


def _without_none(annotation: Any) -> Any:
    if get_origin(annotation) in (Union, types.UnionType):
        kept = [a for a in get_args(annotation) if a is not type(None)]
        if len(kept) == 1:
            return kept[0]
    return annotation


def type_name(annotation: Any, metadata: Iterable[Any] = (), name: str = "") -> str:
    """How a value of this type is written, with its bounds (`integer ≥ 1`)."""
    metadata = list(metadata)
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Annotated:
        return type_name(args[0], [*args[1:], *metadata], name)
    special = next((SPECIAL[m.func] for m in metadata if getattr(m, "func", None) in SPECIAL), "")
    if special:
        shown = special
    elif origin in (Union, types.UnionType):
        shown = " or ".join(type_name(a, (), name) for a in args if a is not type(None))
    elif origin is Literal:
        shown = "one of " + ", ".join(f"`{_yaml(a)}`" for a in args)
    elif origin is list:
        shown = "list" if args[0] is Any else f"list of {type_name(args[0])}"
    elif origin is dict:
        inner = "" if args[1] is Any else f" → {type_name(args[1])}"
        shown = f"mapping{f', `<{PLACEHOLDERS[name]}>`' if name in PLACEHOLDERS else ''}{inner}"
    elif _is_model(annotation):
        shown = "mapping"
    else:
        shown = _SIMPLE.get(annotation, getattr(annotation, "__name__", str(annotation)))
    bounds = [
        f"{sign} {_number(getattr(m, attr))}"
        for m in metadata
        for kind, attr, sign in _BOUNDS
        if isinstance(m, kind)
    ]
    return " ".join([shown, ", ".join(bounds)]) if bounds else shown


def default_text(key: Key) -> str:
    """A field's default as a YAML value (`10m`, `[]`, `true`), `required` or `not set`."""
    value = key.default
    if value is PydanticUndefined:
        return NO_DEFAULT
    if value is None:
        return NOT_SET
    if isinstance(value, BaseModel) or dataclasses.is_dataclass(value):
        return "(below)"
    if isinstance(value, int | float) and not isinstance(value, bool) and _is_duration(key):
        return f"`{seconds(float(value))}`"
    return f"`{_yaml(value)}`"


def _is_duration(key: Key) -> bool:
    found = [*key.metadata]
    stack = [key.annotation]
    while stack:
        annotation = stack.pop()
        stack += get_args(annotation)
        if get_origin(annotation) is Annotated:
            found += get_args(annotation)[1:]
    return any(getattr(m, "func", None) in DURATIONS for m in found)


def seconds(value: float) -> str:
    """Seconds as the shortest duration that says them exactly: 600 → 10m, 1.5 → 1500ms."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if value >= size and value % size == 0:
            return f"{int(value // size)}{unit}"
    return "0s" if value == 0 else f"{_number(value * 1000)}ms"


def _number(value: object) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _yaml(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_yaml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_yaml(v)}" for k, v in value.items()) + "}"
    return _number(value)


def markdown(found: Iterable[Row], *, defaults: bool = True) -> str:
    """The rows as a markdown table (without the default column when not `defaults`)."""
    heads = (
        ["key", "type", "default", "description"] if defaults else ["key", "type", "description"]
    )
    lines = ["| " + " | ".join(heads) + " |", "|" + " --- |" * len(heads)]
    for row in found:
        cells = [f"`{row.key}`", row.type, row.default, row.description]
        del cells[slice(2, 2 + (not defaults))]
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")
