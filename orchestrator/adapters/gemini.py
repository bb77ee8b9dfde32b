"""Gemini CLI: `gemini -o stream-json --skip-trust …`, the prompt on stdin, JSON lines on
stdout (init, messages, tool calls and results, one result line), or an error object at
the end of stderr (`-o json`'s one object is read too). Settings go in a private
GEMINI_CLI_HOME inside the run directory. See docs/tools.md."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from orchestrator.adapters import _classify as c
from orchestrator.adapters._resets import google_daily_reset
from orchestrator.adapters._stream import JsonLines, JsonObject, ObjectStream, read_all, text_at
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

KEY_ENV = "GEMINI_API_KEY"
PROVIDER = "Gemini"
HOME_DIR = "gemini-home"  # GEMINI_CLI_HOME, relative to the run directory
SETTINGS_NAME = ".gemini/settings.json"
SETTINGS_FILE = f"{HOME_DIR}/{SETTINGS_NAME}"
_STATUS_IN_TEXT = re.compile(r'"code"\s*:\s*(\d{3})\b')
_STATUS_IN_STDERR = re.compile(r"^\s*(?:status|code): (\d{3})\b", re.MULTILINE)
_CONNECTION_WORDS = ("fetch failed", "ECONNREFUSED", "ENOTFOUND", "ETIMEDOUT", "ECONNRESET")
# Exit codes the CLI uses for its own errors (the others are HTTP statuses mod 256).
_EXIT_KINDS = {
    41: ErrorKind.AUTH,  # FATAL_AUTHENTICATION_ERROR: no or invalid auth method
    42: ErrorKind.CLI_USAGE,  # FATAL_INPUT_ERROR
    52: ErrorKind.CLI_USAGE,  # FATAL_CONFIG_ERROR
    55: ErrorKind.CLI_USAGE,  # untrusted folder
    130: ErrorKind.CANCELLED,
}


def settings(tool: ToolConfig) -> dict[str, Any]:
    """One attempt per model call (the orchestrator retries), no usage statistics, no
    self-update; API-key auth when a base URL is set (the URL alone selects the `gateway`
    auth type, which headless runs reject with exit 41)."""
    values: dict[str, Any] = {
        "general": {
            "maxAttempts": 1,
            "enableAutoUpdate": False,
            "enableAutoUpdateNotification": False,
        },
        "privacy": {"usageStatisticsEnabled": False},
    }
    if tool.base_url:
        values["security"] = {"auth": {"selectedType": "gemini-api-key"}}
    return values


class GeminiAdapter:
    enforces_budget = False

    def build(
        self, tool: ToolConfig, model: str | None, prompt: str, ctx: RunContext
    ) -> Invocation:
        argv = [tool.binary, "-o", "stream-json", "--skip-trust"]
        if model:
            argv += ["-m", model]  # without it, the `auto` router adds a call with 5 retries
        if tool.approval_mode:
            argv += ["--approval-mode", tool.approval_mode]
        argv += tool.extra_args
        # Gemini keeps its sessions in its home: a session's turns share one of their own,
        # and a later turn resumes the latest there (no other session lives in it).
        home = ctx.session_home or ctx.run_dir / HOME_DIR
        if ctx.resume and ctx.session_home is not None:
            argv += ["--resume", "latest"]
        env = {"GEMINI_CLI_HOME": str(home), "GEMINI_CLI_NO_RELAUNCH": "true"}
        if tool.base_url:
            env["GOOGLE_GEMINI_BASE_URL"] = tool.base_url
        body = json.dumps(settings(tool), indent=2) + "\n"
        # run-dir relative, or the session's home (an absolute path is written there)
        settings_file = SETTINGS_FILE if ctx.session_home is None else str(home / SETTINGS_NAME)
        return Invocation(
            argv=argv,
            stdin=prompt.encode("utf-8"),
            env=env,
            files={settings_file: body.encode("utf-8")},
        )

    def parse(
        self,
        tool: ToolConfig,
        model: str | None,
        stdout: bytes,
        stderr: bytes,
        exit_code: int | None,
    ) -> ParsedOutput:
        return read_all(GeminiStream(model), stdout, stderr, exit_code)

    def watch_line(self, line: bytes) -> ToolFailure | None:
        return None

    def stream(self, tool: ToolConfig, model: str | None) -> GeminiStream:
        return GeminiStream(model)


class GeminiStream(ObjectStream):
    """One run's `-o stream-json` lines: init, messages (the user's, the assistant's word
    deltas), tool_use / tool_result, error, and one result line with the stats; or
    `-o json`'s one document, indented over many lines."""

    def __init__(self, model: str | None) -> None:
        self.requested = model
        self.lines = JsonLines(documents=True)
        self.stop: ToolFailure | None = None
        self.init: JsonObject = {}
        self.final: JsonObject | None = None  # the result line
        self.doc: JsonObject | None = None  # -o json's document
        self.texts: list[str] = []
        self.tools: dict[str, str] = {}  # tool_id -> tool_name
        self.turns = 0
        self.waiting = False  # a turn was announced and nothing answered it yet
        self.head = b""

    def _take(self, obj: JsonObject) -> list[Event]:
        kind = obj.get("type")
        if kind is None:
            self.doc = obj
            return []
        if kind == "init":
            self.init = obj
            return [
                Event(
                    Kind.SESSION, name=text_at(obj, "model"), session_id=text_at(obj, "session_id")
                )
            ]
        if kind == "message" and obj.get("role") == "user":
            return [self._turn()]
        if kind == "message" and obj.get("role") == "assistant":
            self.waiting = False
            text = str(obj.get("content", ""))
            self.texts.append(text)
            return [Event(Kind.TEXT, text=text)] if text else []
        if kind == "tool_use":
            self.waiting = False
            name = str(obj.get("tool_name"))
            self.tools[str(obj.get("tool_id"))] = name
            return [Event(Kind.TOOL, name=name, target=target_of(obj.get("parameters")))]
        if kind == "tool_result":
            called = self.tools.get(str(obj.get("tool_id")))
            done = Event(Kind.TOOL_DONE, name=called, ok=obj.get("status") == "success")
            return [done] if self.waiting else [done, self._turn()]
        if kind == "error":
            return [Event(Kind.ERROR, text=text_at(obj, "message"))]
        if kind == "result":
            self.final = obj
            return [Event(Kind.USAGE, usage=_stream_usage(obj))]
        return []

    def _turn(self) -> Event:
        self.turns += 1
        self.waiting = True
        return Event(Kind.TURN, text=f"turn {self.turns}")

    def so_far(self) -> ParsedOutput:
        session = text_at(self.init, "session_id")
        if self.final is not None:
            model = _stream_model(self.init, self.final) or self.requested
            return ParsedOutput(usage=_stream_usage(self.final), model=model, session_id=session)
        return ParsedOutput(model=text_at(self.init, "model") or self.requested, session_id=session)

    def result(self, stderr: bytes, exit_code: int | None) -> ParsedOutput:
        for obj in self.lines.finish():
            self._take(obj)
        err = c.text_of(stderr)
        if self.doc is not None and self.final is None and not self.init:
            return _parse_json(self.doc, self.requested, err, exit_code)
        if self.final is not None:
            return self._stream_result(err)
        error = c.trailing_json_object(err)
        if error is not None and isinstance(error.get("error"), dict):
            return _parse_json(error, self.requested, err, exit_code)
        if self.init:  # the stream began, and ended before its result line
            cut = " (its last line cut off mid-line)" if self.lines.last_bad else ""
            message = f"gemini's stream ended without its result line (exit {exit_code}){cut}"
            kind = ErrorKind.BAD_OUTPUT
            if exit_code is not None and exit_code < 0:
                kind, message = ErrorKind.SIGNAL, f"gemini was killed by signal {-exit_code}"
            failure = c.failure(
                kind, f"{message}; stderr: {c.stderr_summary(err)}", key_env=KEY_ENV
            )
            return replace(self.so_far(), failure=failure)
        return ParsedOutput(failure=_no_json(self.head, err, exit_code))

    def _stream_result(self, err: str) -> ParsedOutput:
        """The result line: status, error, stats (no per-role stats, unlike -o json)."""
        final = self.final or {}
        failure = None
        if final.get("status") != "success":
            error = final.get("error")
            failure = _error_failure(error if isinstance(error, dict) else {}, err, None)
        return replace(
            self.so_far(), text="".join(self.texts) if failure is None else None, failure=failure
        )


def _parse_json(doc: dict[str, Any], model: str | None, err: str, code: int | None) -> ParsedOutput:
    session = doc.get("session_id")
    models = _dict(_dict(doc.get("stats")).get("models"))
    error = doc.get("error")
    failure = _error_failure(error, err, code) if isinstance(error, dict) else None
    response = doc.get("response")
    if failure is None and not isinstance(response, str):
        failure = c.failure(
            ErrorKind.BAD_OUTPUT,
            "gemini's JSON has neither `response` nor `error`",
            key_env=KEY_ENV,
        )
    return ParsedOutput(
        text=response if failure is None and isinstance(response, str) else None,
        usage=_usage(models) if models else None,
        model=_main_model(models) or model,
        session_id=session if isinstance(session, str) else None,
        failure=failure,
    )


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _tokens(entry: Any) -> dict[str, Any]:
    return _dict(_dict(entry).get("tokens"))


def _usage(models: dict[str, Any]) -> Usage:
    """Every call of the run, the router's and helpers' too (an upper bound when they used
    a cheaper model). `prompt` includes `cached`; thoughts and tool-use prompts are billed
    beside candidates and prompt, so they are added to output and input."""
    rows = [_tokens(entry) for entry in models.values()]

    def total(key: str) -> int:
        return sum(c.number(row.get(key)) for row in rows)

    cached, thoughts = total("cached"), total("thoughts")
    return Usage(
        input_tokens=max(0, total("prompt") - cached) + total("tool"),
        output_tokens=total("candidates") + thoughts,
        cache_read_tokens=cached,
        reasoning_tokens=thoughts,
    )


def _main_model(models: dict[str, Any]) -> str | None:
    """The model that played the `main` role (not the `utility_router`); the one with the
    most output when the CLI switched models mid-run."""
    mains = {name: _tokens(_role(entry, "main")) for name, entry in models.items()}
    mains = {name: tokens for name, tokens in mains.items() if tokens}
    if not mains:
        return next(iter(models)) if len(models) == 1 else None
    return max(mains, key=lambda name: c.number(mains[name].get("candidates")))


def _role(entry: Any, role: str) -> Any:
    roles = entry.get("roles") if isinstance(entry, dict) else None
    return roles.get(role) if isinstance(roles, dict) else None


def _stream_usage(result: dict[str, Any]) -> Usage:
    stats = _dict(result.get("stats"))
    cached = c.number(stats.get("cached"))
    return Usage(
        input_tokens=max(0, c.number(stats.get("input_tokens")) - cached),
        output_tokens=c.number(stats.get("output_tokens")),
        cache_read_tokens=cached,
    )


def _stream_model(init: dict[str, Any], result: dict[str, Any]) -> str | None:
    """The model asked for; with `auto`, the one that took the biggest prompt."""
    models = {
        name: _dict(entry)
        for name, entry in _dict(_dict(result.get("stats")).get("models")).items()
    }
    chosen = init.get("model")
    if chosen not in models:  # `auto`: the main model took the biggest prompt
        used = {m: c.number(entry.get("input_tokens")) for m, entry in models.items()}
        chosen = max(used, key=lambda m: used[m]) if any(used.values()) else None
    return chosen if isinstance(chosen, str) else None


def _error_failure(error: dict[str, Any], err: str, exit_code: int | None) -> ToolFailure:
    """`error.code` is the HTTP status, or the CLI's own exit code (1: network and other
    errors; 41, 42, 52, 55), in which case stderr's `status: NNN` tells the status."""
    raw = str(error.get("message") or "unknown error")
    detail = _inner_message(raw)
    code = error.get("code")
    status = code if isinstance(code, int) and 100 <= code <= 599 else _status_in(raw, err)
    if status is not None:
        kind = c.kind_for_status(status)
        found = c.api_failure(PROVIDER, status, kind, detail, key_env=KEY_ENV, context=err)
        named = found.resets_at is not None or found.retry_after_s is not None
        if found.kind is ErrorKind.USAGE_LIMIT and not named and "daily" in raw:
            found = replace(found, resets_at=google_daily_reset(datetime.now(UTC)))
        return found
    if any(word in raw for word in _CONNECTION_WORDS):
        return c.api_failure(PROVIDER, None, ErrorKind.CONNECTION, detail, key_env=KEY_ENV)
    own = code if isinstance(code, int) else exit_code
    return _exit_failure(own, detail)


def _inner_message(raw: str) -> str:
    """The provider's own message out of `{"error": {"message": ...}}`, kept when the text
    is not such a body (stream-json wraps it as `[API Error: ...]`)."""
    text = raw.removeprefix("[API Error: ")
    start = text.find("{")
    if start >= 0:
        try:
            body, _ = json.JSONDecoder().raw_decode(text, start)
        except json.JSONDecodeError:
            body = None
        inner = body.get("error") if isinstance(body, dict) else None
        if isinstance(inner, dict) and isinstance(inner.get("message"), str):
            return str(inner["message"])
    return text.replace("]\n", " ").rstrip("]")


def _status_in(raw: str, err: str) -> int | None:
    if match := _STATUS_IN_TEXT.search(raw):
        return int(match.group(1))
    if "ModelNotFoundError" in err:
        return 404
    found = _STATUS_IN_STDERR.findall(err)
    return int(found[-1]) if found else None


def _exit_failure(
    code: int | None, detail: str, default: ErrorKind = ErrorKind.EXIT
) -> ToolFailure:
    kind = _EXIT_KINDS.get(code, default) if code is not None else default
    hint = None
    if code == 41:
        hint = (
            f"set {KEY_ENV} and list it in this tool's env: in config/tools.yaml (a login in "
            "~/.gemini is not used: the orchestrator gives gemini its own GEMINI_CLI_HOME)"
        )
    return c.failure(kind, f"gemini failed (code {code}): {detail}", key_env=KEY_ENV, hint=hint)


def _no_json(stdout: bytes, err: str, exit_code: int | None) -> ToolFailure:
    """Nothing read: `stdout` is its first line (or nothing)."""
    said = c.stderr_summary(err)
    if exit_code == 0 or stdout.strip():
        head = c.shorten(c.text_of(stdout), 200) or "(empty)"
        return c.failure(
            ErrorKind.BAD_OUTPUT,
            f"gemini printed no JSON (exit {exit_code}): {head}; stderr: {said}",
            key_env=KEY_ENV,
        )
    # no error object: the CLI stopped before running (bad argument, untrusted folder, …)
    return _exit_failure(exit_code, said, ErrorKind.CLI_USAGE)


ADAPTER = GeminiAdapter()
