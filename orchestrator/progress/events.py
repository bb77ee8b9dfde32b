"""What an agent CLI's stream says it is doing, as events: pure data, no I/O.

The adapters' stream parsers turn each output line into events (`feed(line)`), the runner
(progress/live.py) stamps them with the time, the task's usage and cost so far, and the
current step, and appends them to the task's events log.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from orchestrator.adapters.base import Usage

MAX_TARGET = 120  # a tool call's target (path, command) is cut to this many characters
MAX_TEXT = 300  # a text event's words, as kept in the log


class Kind(StrEnum):
    START = "start"  # an attempt begins (written by the runner): tool, model
    SESSION = "session"  # the CLI is up: its session id, its model
    TURN = "turn"  # a request to the model begins: the CLI waits for its answer
    TOOL = "tool"  # a tool call: its name and target
    TOOL_DONE = "tool_done"  # a tool call's result came back (ok or not)
    TEXT = "text"  # the model wrote text (or, with name "reasoning", thought it)
    USAGE = "usage"  # the attempt's tokens so far changed
    RETRY = "retry"  # the CLI retries a failed API call
    ERROR = "error"  # the CLI reported an error (fatal or not)
    END = "end"  # the attempt ended (written by the runner): outcome, error kind


@dataclass(frozen=True)
class Event:
    kind: Kind
    name: str | None = None  # the tool's name; the session's model
    target: str | None = None  # what a tool call acts on: a path, a command, a query
    text: str | None = None  # words: the model's, an error's, a retry's reason
    ok: bool | None = None  # a tool result: did the call succeed
    usage: Usage | None = None  # USAGE: the attempt's usage so far (a total, not a delta)
    session_id: str | None = None


def step_of(event: Event) -> str | None:
    """What the run is doing now, as `status` shows it; None when the event does not
    change the step (usage, a tool result: the next event says what follows)."""
    kind = event.kind
    if kind is Kind.TOOL:
        return f"tool call: {event.name}" + (f" {event.target}" if event.target else "")
    if kind is Kind.TURN:
        return f"waiting for the model ({event.text})" if event.text else "waiting for the model"
    if kind is Kind.TEXT:
        what = "thinking" if event.name == "reasoning" else "writing"
        return f"{what}: {clip(event.text or '', 60)}"
    if kind is Kind.RETRY:
        return f"retrying: {clip(event.text or '', 80)}"
    if kind is Kind.ERROR:
        return f"error: {clip(event.text or '', 80)}"
    if kind is Kind.SESSION:
        return f"started ({event.name})" if event.name else "started"
    return None


def clip(text: str, limit: int) -> str:
    """`text` on one line, cut to `limit` characters."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


# Argument names that say what a tool call acts on, most telling first (claude: file_path,
# command, pattern, url; gemini: file_path, dir_path, command, query; MCP tools: anything).
_TARGET_KEYS = (
    "file_path",
    "path",
    "notebook_path",
    "absolute_path",
    "dir_path",
    "command",
    "cmd",
    "pattern",
    "query",
    "url",
    "description",
    "prompt",
)


def target_of(arguments: object) -> str | None:
    """The target of a tool call from its arguments: the first telling argument."""
    if not isinstance(arguments, dict):
        return None
    for key in _TARGET_KEYS:
        value: Any = arguments.get(key)
        if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
            value = shlex.join(value)  # codex's argv lists
        if isinstance(value, str) and value.strip():
            return clip(value, MAX_TARGET)
    return None
