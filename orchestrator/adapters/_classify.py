"""Shared by the agent CLI adapters: JSON out of CLI output, HTTP status → ErrorKind,
retry-after, and the message and hint a human reads for each failure."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from orchestrator.adapters._resets import USAGE_WORDS, reset_time, wait_named
from orchestrator.adapters.base import ErrorKind, ToolFailure

JsonObject = dict[str, Any]

MAX_MESSAGE = 600
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_NOISE = (
    "WARNING: proceeding",
    "Reading additional input from stdin",
    "Warning: Basic terminal",
    "Warning: 256-color",
    "Ripgrep is not available",
    "[STARTUP]",
    "YOLO mode is enabled",
)
_RETRY_AFTER = (  # (pattern, unit when the text names none)
    (re.compile(r"retry[- ]after:?\s+(\d+(?:\.\d+)?)\s*(ms|s|sec|seconds?)?\b", re.I), "s"),
    (re.compile(r"(?:retry|try again) in (\d+(?:\.\d+)?)\s*(ms|s|sec|seconds?)\b", re.I), "s"),
    (re.compile(r"retryDelayMs:\s*(\d+)()"), "ms"),
)

_HINTS = {
    ErrorKind.RATE_LIMIT: (
        "the provider is limiting this API key; the orchestrator retries later or tries the "
        "next tool in the chain; lower this tool's rate_limit or max_concurrency if it persists"
    ),
    ErrorKind.USAGE_LIMIT: (
        "the plan's or quota's usage window is closed: tasks fall back where their chain "
        "allows, otherwise they wait (waiting_quota in `status`) and resume by themselves "
        "when it opens"
    ),
    ErrorKind.OVERLOADED: (
        "the provider is overloaded, usually for a short while; the orchestrator retries "
        "later or tries the next tool in the chain"
    ),
    ErrorKind.SERVER: (
        "a server-side error, usually temporary; the orchestrator retries later or tries the "
        "next tool in the chain"
    ),
    ErrorKind.CONNECTION: (
        "the API could not be reached: check this tool's base_url in config/tools.yaml, the "
        "network and any proxy"
    ),
    ErrorKind.BAD_REQUEST: (
        "the provider rejected the request itself, so retrying cannot help: check the model "
        "name (tools.yaml models, the task's model) and the size of the prompt"
    ),
    ErrorKind.CLI_USAGE: (
        "the CLI refused its command line or configuration: check this tool's "
        "permission_mode, sandbox, approval_mode, max_turns and extra_args in "
        "config/tools.yaml (see docs/tools.md)"
    ),
    ErrorKind.BAD_OUTPUT: (
        "the CLI did not print the JSON this adapter reads: do not set an output format in "
        "extra_args, and check the CLI version (see docs/tools.md)"
    ),
    ErrorKind.EXIT: "see the tool's message; the next tool in the chain is tried",
    ErrorKind.CANCELLED: "the CLI was interrupted; run the task again",
}


def json_objects(text: str) -> list[JsonObject]:
    """The JSON objects of `text`: one document (an object, or an array of objects) or JSON
    lines, of which lines that are not JSON objects are skipped."""
    stripped = text.strip()
    if not stripped:
        return []
    try:
        whole = json.loads(stripped)
    except json.JSONDecodeError:
        return [obj for line in stripped.splitlines() if (obj := _object(line)) is not None]
    items = whole if isinstance(whole, list) else [whole]
    return [item for item in items if isinstance(item, dict)]


def _object(line: str) -> JsonObject | None:
    line = line.strip()
    if not line.startswith("{"):
        return None
    try:
        value = json.loads(line)
    except json.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def trailing_json_object(text: str) -> JsonObject | None:
    """The JSON object that ends `text` and starts a line (gemini prints its error object
    after the stack traces on stderr)."""
    decoder = json.JSONDecoder()
    end = len(text)
    while (start := text.rfind("{", 0, end)) >= 0:
        end = start
        if start and text[start - 1] != "\n":
            continue
        try:
            value, stop = decoder.raw_decode(text, start)
        except json.JSONDecodeError:
            continue
        if isinstance(value, dict) and not text[stop:].strip():
            return value
    return None


def text_of(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")


def number(value: Any) -> int:
    """A token count from JSON: ints and floats count, anything else is 0; a number that
    is not whole (NaN, infinite, 2.5) is -1, which the boundary check refuses."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0
    if isinstance(value, float) and not value.is_integer():
        return -1
    return int(value)


def kind_for_status(status: int) -> ErrorKind:
    if status == 429:
        return ErrorKind.RATE_LIMIT
    if status == 529:
        return ErrorKind.OVERLOADED
    if status in (401, 403):
        return ErrorKind.AUTH
    if status == 408 or 500 <= status <= 599:
        return ErrorKind.SERVER
    if 400 <= status <= 499:
        return ErrorKind.BAD_REQUEST
    return ErrorKind.EXIT


def retry_after(text: str) -> float | None:
    """The longest wait the provider or CLI asks for, in seconds, when the text names one."""
    waits = []
    for pattern, default_unit in _RETRY_AFTER:
        for match in pattern.finditer(text):
            unit = (match.group(2) or default_unit).lower()
            waits.append(float(match.group(1)) * (0.001 if unit == "ms" else 1.0))
    if (in_words := wait_named(text)) is not None:
        waits.append(in_words)
    return max(waits) if waits else None


def shorten(text: str, limit: int = MAX_MESSAGE) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def stderr_summary(stderr: str, lines: int = 3) -> str:
    """The first meaningful lines of a CLI's stderr: no stack frames, no start-up warnings."""
    kept = [
        line.strip()
        for line in _ANSI.sub("", stderr).splitlines()
        if line.strip() and not line.startswith("    at ") and not line.startswith(_NOISE)
    ]
    return shorten(" ".join(kept[:lines])) if kept else "(no message on stderr)"


def failure(
    kind: ErrorKind,
    message: str,
    *,
    key_env: str,
    status: int | None = None,
    wait: float | None = None,
    hint: str | None = None,
) -> ToolFailure:
    """A ToolFailure with the standard hint of its kind; `key_env` names the API key
    variable for auth hints."""
    if hint is None:
        hint = _HINTS.get(kind, "see the tool's message")
        if kind is ErrorKind.AUTH:
            hint = (
                f"check that {key_env} is set, valid, and listed in this tool's env: in "
                "config/tools.yaml"
            )
    return ToolFailure(kind, shorten(message), hint, status=status, retry_after_s=wait)


def api_failure(
    provider: str,
    status: int | None,
    kind: ErrorKind,
    detail: str,
    *,
    key_env: str,
    context: str = "",
) -> ToolFailure:
    """A failure the provider's API answered (or, without a status, the transport); a
    retry-after is looked for in `detail` and `context` (e.g. the CLI's stderr)."""
    if kind is ErrorKind.CONNECTION:
        message = f"could not reach the {provider} API: {detail}"
    elif status is not None:
        message = f"the {provider} API answered HTTP {status}: {detail}"
    else:
        message = f"the {provider} API call failed: {detail}"
    wait = retry_after(f"{detail}\n{context}")
    found = failure(kind, message, key_env=key_env, status=status, wait=wait)
    return with_window(found, f"{detail}\n{context}")


def with_window(
    found: ToolFailure,
    text: str,
    *,
    resets_at: float | None = None,
    window: str | None = None,
    whole_tool: bool = False,
) -> ToolFailure:
    """A rate limit that says a usage window closed (a plan's limit, a used-up quota, or a
    reset time the CLI read from the API) becomes USAGE_LIMIT, with when the window opens:
    `resets_at` when the caller read it from structured output, else from `text`."""
    if found.kind not in (ErrorKind.RATE_LIMIT, ErrorKind.USAGE_LIMIT):
        return found
    if resets_at is None and found.kind is ErrorKind.RATE_LIMIT and not USAGE_WORDS.search(text):
        return found
    now = datetime.now(UTC)
    when = resets_at if resets_at is not None else reset_time(text, now, local_zone())
    return replace(
        found,
        kind=ErrorKind.USAGE_LIMIT,
        hint=_HINTS[ErrorKind.USAGE_LIMIT],
        resets_at=when,
        window=window or found.window,
        whole_tool=whole_tool or found.whole_tool,
    )


def local_zone() -> Any:
    """This machine's zone: a CLI that names no zone writes its local time, which is ours."""
    return datetime.now().astimezone().tzinfo
