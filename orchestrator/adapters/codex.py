"""OpenAI Codex: `codex [-a MODE] [-c …] exec --json --skip-git-repo-check … -`, the prompt
on stdin, JSON lines (events) on stdout. See docs/tools.md."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

from orchestrator.adapters import _classify as c
from orchestrator.adapters.base import (
    ErrorKind,
    Invocation,
    ParsedOutput,
    RunContext,
    ToolFailure,
    Usage,
)

if TYPE_CHECKING:
    from orchestrator.config import ToolConfig

KEY_ENV = "OPENAI_API_KEY"
PROVIDER = "OpenAI"
PROVIDER_ID = "orchestrator"  # the model_providers entry made for tools.<name>.base_url
_STATUS = re.compile(r"(?:unexpected status|last status:)\s+(\d{3})\b")
_MISSING_ENV = re.compile(r"Missing environment variable: `([^`]+)`")
_CONNECTION_WORDS = (
    "waiting for network",
    "Connection failed",
    "error sending request",
    "stream disconnected",
)
# a 404 `model_not_found` comes as its bare message ("The model `x` does not exist …")
_NOT_FOUND = re.compile(r"not found|does not exist", re.IGNORECASE)
_ERROR_TYPES = {
    "invalid_request_error": ErrorKind.BAD_REQUEST,
    "authentication_error": ErrorKind.AUTH,
    "insufficient_quota": ErrorKind.RATE_LIMIT,
    "rate_limit_exceeded": ErrorKind.RATE_LIMIT,
    "server_error": ErrorKind.SERVER,
}


def provider_args(base_url: str) -> list[str]:
    """`-c` overrides selecting a custom provider at `base_url` with codex's own retries off
    (the built-in `openai` provider cannot be overridden)."""
    fields: dict[str, str | int] = {
        "name": PROVIDER_ID,
        "base_url": base_url,
        "env_key": KEY_ENV,
        "wire_api": "responses",
        "request_max_retries": 0,
        "stream_max_retries": 0,
    }
    table = ",".join(f"{key}={json.dumps(value)}" for key, value in fields.items())
    return [
        "-c",
        f'model_provider="{PROVIDER_ID}"',
        "-c",
        f"model_providers.{PROVIDER_ID}={{{table}}}",
    ]


class CodexAdapter:
    def build(
        self, tool: ToolConfig, model: str | None, prompt: str, ctx: RunContext
    ) -> Invocation:
        argv = [tool.binary]
        if tool.approval_mode:
            argv += ["-a", tool.approval_mode]  # a top-level option: `exec -a` exits 2
        if tool.base_url:
            argv += provider_args(tool.base_url)
        argv += ["exec", "--json", "--skip-git-repo-check"]
        if tool.sandbox:
            argv += ["--sandbox", tool.sandbox]
        if model:
            argv += ["-m", model]
        argv += [*tool.extra_args, "-"]
        return Invocation(argv=argv, stdin=prompt.encode("utf-8"))

    def parse(
        self,
        tool: ToolConfig,
        model: str | None,
        stdout: bytes,
        stderr: bytes,
        exit_code: int | None,
    ) -> ParsedOutput:
        events = c.json_objects(c.text_of(stdout))
        if not events:
            return ParsedOutput(failure=_no_events(stdout, c.text_of(stderr), exit_code))
        thread = next(
            (e.get("thread_id") for e in events if e.get("type") == "thread.started"), None
        )
        return ParsedOutput(
            text=_final_text(events),
            usage=_usage(events),
            model=model,  # codex does not say; it ran what it was asked for
            session_id=thread if isinstance(thread, str) else None,
            failure=_turn_failure(events, exit_code),
        )

    def watch_line(self, line: bytes) -> ToolFailure | None:
        """Codex never exits while the API is unreachable: stop it at the first
        `Reconnecting... waiting for network` event. Other `Reconnecting... n/5` events are
        left alone: the built-in provider prints them before falling back from WebSockets
        to HTTPS, and then succeeds."""
        try:
            event = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError):
            return None
        if not isinstance(event, dict) or event.get("type") != "error":
            return None
        message = event.get("message")
        if isinstance(message, str) and "waiting for network" in message:
            return c.api_failure(PROVIDER, None, ErrorKind.CONNECTION, message, key_env=KEY_ENV)
        return None


def _final_text(events: list[dict[str, Any]]) -> str | None:
    """The text of the last `agent_message` item."""
    items = [e.get("item") for e in events if e.get("type") == "item.completed"]
    texts = [
        item.get("text")
        for item in items
        if isinstance(item, dict) and item.get("type") == "agent_message"
    ]
    return next((text for text in reversed(texts) if isinstance(text, str)), None)


def _usage(events: list[dict[str, Any]]) -> Usage | None:
    """Codex's `input_tokens` include the cached and cache-written tokens: subtract them."""
    rows = [
        e["usage"]
        for e in events
        if e.get("type") == "turn.completed" and isinstance(e.get("usage"), dict)
    ]
    if not rows:
        return None
    total: dict[str, int] = {}
    for row in rows:
        for key, value in row.items():
            total[key] = total.get(key, 0) + c.number(value)
    cached = total.get("cached_input_tokens", 0)
    written = total.get("cache_write_input_tokens", 0)
    return Usage(
        input_tokens=max(0, total.get("input_tokens", 0) - cached - written),
        output_tokens=total.get("output_tokens", 0),
        cache_read_tokens=cached,
        cache_write_tokens=written,
        reasoning_tokens=total.get("reasoning_output_tokens", 0),
    )


def _turn_failure(events: list[dict[str, Any]], exit_code: int | None) -> ToolFailure | None:
    types = [e.get("type") for e in events]
    if "turn.failed" in types:
        error = events[types.index("turn.failed")].get("error")
        message = error.get("message") if isinstance(error, dict) else None
        return classify(message if isinstance(message, str) else "turn failed")
    if "turn.completed" in types:
        return None
    errors = [e.get("message") for e in events if e.get("type") == "error"]
    if errors and isinstance(errors[-1], str):
        return classify(errors[-1])
    return c.failure(
        ErrorKind.BAD_OUTPUT,
        f"codex ended (exit {exit_code}) without turn.completed or turn.failed",
        key_env=KEY_ENV,
    )


def classify(message: str) -> ToolFailure:
    """A codex error message → failure; codex drops the status from some messages (500
    becomes "high demand", 400 the raw JSON body, 404 model_not_found its message)."""
    if any(word in message for word in _CONNECTION_WORDS):
        return c.api_failure(PROVIDER, None, ErrorKind.CONNECTION, message, key_env=KEY_ENV)
    if match := _STATUS.search(message):
        status = int(match.group(1))
        return c.api_failure(PROVIDER, status, c.kind_for_status(status), message, key_env=KEY_ENV)
    if match := _MISSING_ENV.search(message):
        return c.failure(ErrorKind.AUTH, f"codex: {message}", key_env=match.group(1))
    body = _error_body(message)
    if body is not None:
        return _body_failure(body, message)
    if "high demand" in message:
        return c.api_failure(PROVIDER, None, ErrorKind.SERVER, message, key_env=KEY_ENV)
    if "Quota exceeded" in message or "usage limit" in message:
        return c.api_failure(PROVIDER, None, ErrorKind.RATE_LIMIT, message, key_env=KEY_ENV)
    if _NOT_FOUND.search(message):
        return c.api_failure(PROVIDER, None, ErrorKind.BAD_REQUEST, message, key_env=KEY_ENV)
    return c.failure(ErrorKind.EXIT, f"codex failed: {message}", key_env=KEY_ENV)


def _error_body(message: str) -> dict[str, Any] | None:
    try:
        body = json.loads(message)
    except json.JSONDecodeError:
        return None
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, dict) else None


def _body_failure(error: dict[str, Any], message: str) -> ToolFailure:
    """The raw JSON error body codex prints for a 400."""
    code = error.get("code")
    detail = str(error.get("message") or message)
    if isinstance(code, int) and 100 <= code <= 599:
        return c.api_failure(PROVIDER, code, c.kind_for_status(code), detail, key_env=KEY_ENV)
    key = code if isinstance(code, str) and code in _ERROR_TYPES else error.get("type")
    kind = _ERROR_TYPES.get(str(key), ErrorKind.BAD_REQUEST)
    status = 400 if kind is ErrorKind.BAD_REQUEST else None
    return c.api_failure(PROVIDER, status, kind, detail, key_env=KEY_ENV)


def _no_events(stdout: bytes, stderr: str, exit_code: int | None) -> ToolFailure:
    said = c.stderr_summary(stderr)
    if exit_code == 0 or stdout.strip():
        head = c.shorten(c.text_of(stdout), 200) or "(empty)"
        return c.failure(
            ErrorKind.BAD_OUTPUT,
            f"codex printed no JSON events (exit {exit_code}): {head}; stderr: {said}",
            key_env=KEY_ENV,
        )
    # exit 2: clap rejected the command line; exit 1 before any event: config errors
    return c.failure(
        ErrorKind.CLI_USAGE, f"codex refused to run (exit {exit_code}): {said}", key_env=KEY_ENV
    )


ADAPTER = CodexAdapter()
