"""Task files as YAML: bytes in, the top-level mapping out, or a `TaskRejected`.

The same guards serve every YAML the orchestrator reads from outside (task files, result
files read back, agents' handoff blocks): a size bound, UTF-8 text, no alias bombs, safe
tags only. Task files also get the keys written twice noticed: PyYAML keeps the last value
silently, and an agent that wrote `prompt:` twice deserves to hear which one ran.
"""

from __future__ import annotations

from typing import Any

import yaml

from orchestrator.errors import TaskRejected

MAX_TASK_BYTES = 1024 * 1024
MAX_EXPANDED_NODES = 100_000
_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_MERGE = "tag:yaml.org,2002:merge"


class RepeatNoticingLoader(_Loader):  # type: ignore[misc]
    """The safe loader (its C parser when PyYAML has one) that also notes every key
    written twice in one mapping, nested ones included, as (key, first line, line); the
    last value still wins. Config files use it too."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.repeated: list[tuple[str, int, int]] = []

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        # Looked at before the merge keys (`<<: *base`) are flattened in: a key that
        # overrides a merged one is what merging is for, not a mistake.
        first_line: dict[tuple[str, str], int] = {}
        for key_node, _ in getattr(node, "value", ()):
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == _MERGE:
                continue
            line = key_node.start_mark.line + 1
            key = (key_node.tag, key_node.value)
            if key in first_line:
                self.repeated.append((str(key_node.value), first_line[key], line))
            first_line.setdefault(key, line)
        return super().construct_mapping(node, deep)


def decode_text(data: bytes, name: str) -> str:
    """UTF-8 text, or TaskRejected for a binary or differently encoded file."""
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


def load_task(data: bytes, name: str) -> tuple[dict[str, Any], list[str]]:
    """Bytes of a task file → its top-level mapping and a warning for each key written
    twice in a mapping; TaskRejected when it is not a mapping of safe YAML."""
    if len(data) > MAX_TASK_BYTES:
        raise TaskRejected(
            "too_large",
            f"{name} is {len(data)} bytes; task files may be at most {MAX_TASK_BYTES} bytes",
            "put long material in a file and name it in prompt_file or context_files",
        )
    text = decode_text(data, name)
    _check_aliases(text, name)
    loader = RepeatNoticingLoader(text)
    try:
        loaded = loader.get_single_data()
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
    finally:
        loader.dispose()
    if not isinstance(loaded, dict):
        kind = "empty" if loaded is None else type(loaded).__name__
        raise TaskRejected(
            "not_a_mapping",
            f"{name}: expected a mapping of keys (agent:, prompt:, ...), got {kind}",
            "write the task as `key: value` lines with at least `agent:`",
        )
    twice = [
        f"key {key!r} is written twice (lines {first} and {line}): the value at line {line} is used"
        for key, first, line in loader.repeated
    ]
    return {str(k): v for k, v in loaded.items()}, twice


def load_mapping(data: bytes, name: str) -> dict[str, Any]:
    """Bytes of a task file (or a result, or a handoff block) → its top-level mapping,
    or TaskRejected."""
    return load_task(data, name)[0]
