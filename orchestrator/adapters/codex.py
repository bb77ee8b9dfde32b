"""OpenAI Codex: `codex [-a MODE] [-c …] exec --json --skip-git-repo-check … -`, the prompt
on stdin, JSON lines (events) on stdout, read as they come by `CodexStream`. See
docs/tools.md."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from orchestrator.adapters import _classify as c
from orchestrator.adapters._stream import (
    JsonLines,
    JsonObject,
    ObjectStream,
    dict_at,
    read_all,
    text_at,
)
from orchestrator.adapters.base import (
    ErrorKind,
    Invocation,
    ParsedOutput,
    RunContext,
    ToolFailure,
    Usage,
)
from orchestrator.progress.events import Event, Kind, target_of

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
    enforces_budget = False
    # A resumed thread's turn.completed reports the thread's running total, not the turn's.
    session_usage = "cumulative"

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
        argv += tool.extra_args
        if ctx.resume:  # a session's later turn (exec's options above hold for it too)
            argv += ["resume", ctx.resume]
        argv.append("-")
        return Invocation(argv=argv, stdin=prompt.encode("utf-8"))

    def parse(
        self,
        tool: ToolConfig,
        model: str | None,
        stdout: bytes,
        stderr: bytes,
        exit_code: int | None,
    ) -> ParsedOutput:
        return read_all(CodexStream(model), stdout, stderr, exit_code)

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
        return _network_lost(event.get("message"))

    def stream(self, tool: ToolConfig, model: str | None) -> CodexStream:
        return CodexStream(model)


def _network_lost(message: object) -> ToolFailure | None:
    if isinstance(message, str) and "waiting for network" in message:
        return c.api_failure(PROVIDER, None, ErrorKind.CONNECTION, message, key_env=KEY_ENV)
    return None


class CodexStream(ObjectStream):
    """One run's `exec --json` events: thread.started, turn.started, item.started /
    item.completed (commands, file changes, MCP tool calls, web searches, reasoning,
    messages), turn.completed (usage) or turn.failed, and error lines."""

    def __init__(self, model: str | None) -> None:
        self.model = model  # codex does not say; it ran what it was asked for
        self.lines = JsonLines()
        self.stop: ToolFailure | None = None
        self.thread: str | None = None
        self.text: str | None = None  # the last agent_message
        self.totals: dict[str, int] = {}  # turn.completed usage, summed over turns
        self.failed: str | None = None  # the first turn.failed message
        self.completed = False
        self.errors: list[str] = []  # `error` lines' messages
        self.turns = 0
        self.items: set[str] = set()  # items announced (started) already
        self.head = b""  # the first line, for a message when no event comes

    def _take(self, obj: JsonObject) -> list[Event]:
        kind = obj.get("type")
        if kind == "thread.started":
            self.thread = text_at(obj, "thread_id")
            return [Event(Kind.SESSION, session_id=self.thread)]
        if kind == "turn.started":
            self.turns += 1
            return [Event(Kind.TURN, text=f"turn {self.turns}")]
        if kind in ("item.started", "item.updated", "item.completed"):
            return self._item(dict_at(obj, "item"), done=kind == "item.completed")
        if kind == "turn.completed":
            self.completed = True
            for key, value in dict_at(obj, "usage").items():
                self.totals[key] = self.totals.get(key, 0) + c.number(value)
            return [Event(Kind.USAGE, usage=self._usage())] if self.totals else []
        if kind == "turn.failed":
            message = text_at(dict_at(obj, "error"), "message") or "turn failed"
            self.failed = self.failed or message
            return [Event(Kind.ERROR, text=message)]
        if kind == "error":
            message = text_at(obj, "message") or "error"
            self.errors.append(message)
            self.stop = self.stop or _network_lost(message)
            retrying = message.startswith("Reconnecting")
            return [Event(Kind.RETRY if retrying else Kind.ERROR, text=message)]
        return []

    def _item(self, item: JsonObject, *, done: bool) -> list[Event]:
        """An item's call when it starts (or completes unannounced), its end when done."""
        kind, ident = item.get("type"), str(item.get("id"))
        if kind == "agent_message" and done:
            self.text = text_at(item, "text")
            return [Event(Kind.TEXT, text=self.text)] if self.text else []
        if kind == "reasoning" and done:
            thought = text_at(item, "text")
            return [Event(Kind.TEXT, name="reasoning", text=thought)] if thought else []
        if kind == "error" and done:  # a warning, e.g. unknown model metadata
            return [Event(Kind.ERROR, text=text_at(item, "message"))]
        call = _call(item)
        if call is None:
            return []
        events = []
        if ident not in self.items:
            self.items.add(ident)
            events.append(call)
        if done:
            ok = item.get("status") in ("completed", None) and item.get("exit_code") in (0, None)
            events.append(Event(Kind.TOOL_DONE, name=call.name, ok=ok))
        return events

    def _usage(self) -> Usage | None:
        return _usage(self.totals) if self.totals else None

    def so_far(self) -> ParsedOutput:
        return ParsedOutput(usage=self._usage(), model=self.model, session_id=self.thread)

    def result(self, stderr: bytes, exit_code: int | None) -> ParsedOutput:
        for obj in self.lines.finish():
            self._take(obj)
        reached = self.so_far()
        if self.thread is None and not self.turns and not self.completed and not self.errors:
            return replace(reached, failure=_no_events(self.head, c.text_of(stderr), exit_code))
        failure = self._failure(exit_code)
        return replace(reached, text=self.text if failure is None else None, failure=failure)

    def _failure(self, exit_code: int | None) -> ToolFailure | None:
        if self.failed is not None:
            return classify(self.failed)
        if self.completed:
            return None
        if self.errors:
            return classify(self.errors[-1])
        cut = "; its last line was cut off mid-line" if self.lines.last_bad else ""
        return c.failure(
            ErrorKind.BAD_OUTPUT,
            f"codex ended (exit {exit_code}) without turn.completed or turn.failed{cut}",
            key_env=KEY_ENV,
        )


def _call(item: JsonObject) -> Event | None:
    """The tool call an item is, if it is one."""
    kind = item.get("type")
    if kind == "command_execution":
        return Event(Kind.TOOL, name="shell", target=target_of(item))
    if kind == "file_change":
        changes = item.get("changes")
        paths = [
            str(change.get("path"))
            for change in (changes if isinstance(changes, list) else [])
            if isinstance(change, dict)
        ]
        return Event(Kind.TOOL, name="edit", target=", ".join(paths) or None)
    if kind == "mcp_tool_call":
        name = f"{item.get('server')}/{item.get('tool')}"
        return Event(Kind.TOOL, name=name, target=target_of(item.get("arguments")))
    if kind == "web_search":
        return Event(Kind.TOOL, name="web_search", target=target_of(item))
    return None


def _usage(total: dict[str, int]) -> Usage:
    """Codex's `input_tokens` include the cached and cache-written tokens: subtract them."""
    cached = total.get("cached_input_tokens", 0)
    written = total.get("cache_write_input_tokens", 0)
    return Usage(
        input_tokens=max(0, total.get("input_tokens", 0) - cached - written),
        output_tokens=total.get("output_tokens", 0),
        cache_read_tokens=cached,
        cache_write_tokens=written,
        reasoning_tokens=total.get("reasoning_output_tokens", 0),
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
    if "Quota exceeded" in message or "usage limit" in message:  # the account's plan
        found = c.api_failure(PROVIDER, None, ErrorKind.RATE_LIMIT, message, key_env=KEY_ENV)
        return replace(found, whole_tool=found.kind is ErrorKind.USAGE_LIMIT)
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
    """No event at all: a refused command line (nothing on stdout), or no JSON."""
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
