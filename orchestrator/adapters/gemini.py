"""Gemini CLI: `gemini -o json --skip-trust …`, the prompt on stdin, one JSON object on
stdout, or an error object at the end of stderr (stream-json lines are read too). Settings
go in a private GEMINI_CLI_HOME inside the run directory. See docs/tools.md."""

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

KEY_ENV = "GEMINI_API_KEY"
PROVIDER = "Gemini"
HOME_DIR = "gemini-home"  # GEMINI_CLI_HOME, relative to the run directory
SETTINGS_FILE = f"{HOME_DIR}/.gemini/settings.json"
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
    def build(
        self, tool: ToolConfig, model: str | None, prompt: str, ctx: RunContext
    ) -> Invocation:
        argv = [tool.binary, "-o", "json", "--skip-trust"]
        if model:
            argv += ["-m", model]  # without it, the `auto` router adds a call with 5 retries
        if tool.approval_mode:
            argv += ["--approval-mode", tool.approval_mode]
        argv += tool.extra_args
        env = {
            "GEMINI_CLI_HOME": str(ctx.run_dir / HOME_DIR),
            "GEMINI_CLI_NO_RELAUNCH": "true",
        }
        if tool.base_url:
            env["GOOGLE_GEMINI_BASE_URL"] = tool.base_url
        body = json.dumps(settings(tool), indent=2) + "\n"
        return Invocation(
            argv=argv,
            stdin=prompt.encode("utf-8"),
            env=env,
            files={SETTINGS_FILE: body.encode("utf-8")},
        )

    def parse(
        self,
        tool: ToolConfig,
        model: str | None,
        stdout: bytes,
        stderr: bytes,
        exit_code: int | None,
    ) -> ParsedOutput:
        err = c.text_of(stderr)
        events = c.json_objects(c.text_of(stdout))
        if len(events) == 1 and "type" not in events[0]:
            return _parse_json(events[0], model, err, exit_code)
        if any(e.get("type") == "result" for e in events):
            return _parse_stream(events, model, err)
        error = c.trailing_json_object(err)
        if error is not None and isinstance(error.get("error"), dict):
            return _parse_json(error, model, err, exit_code)
        return ParsedOutput(failure=_no_json(stdout, err, exit_code))

    def watch_line(self, line: bytes) -> ToolFailure | None:
        return None


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


def _parse_stream(events: list[dict[str, Any]], model: str | None, err: str) -> ParsedOutput:
    """`-o stream-json`: init, message deltas, one result line (no per-role stats)."""
    init = next((e for e in events if e.get("type") == "init"), {})
    result = next(e for e in reversed(events) if e.get("type") == "result")
    stats = _dict(result.get("stats"))
    models = {name: _dict(entry) for name, entry in _dict(stats.get("models")).items()}
    chosen = init.get("model")
    if chosen not in models:  # `auto`: the main model took the biggest prompt
        used = {m: c.number(entry.get("input_tokens")) for m, entry in models.items()}
        chosen = max(used, key=lambda m: used[m]) if any(used.values()) else None
    failure = None
    if result.get("status") != "success":
        error = result.get("error")
        failure = _error_failure(error if isinstance(error, dict) else {}, err, None)
    texts = [
        str(e.get("content", ""))
        for e in events
        if e.get("type") == "message" and e.get("role") == "assistant"
    ]
    cached = c.number(stats.get("cached"))
    session = init.get("session_id")
    return ParsedOutput(
        text="".join(texts) if failure is None else None,
        usage=Usage(
            input_tokens=max(0, c.number(stats.get("input_tokens")) - cached),
            output_tokens=c.number(stats.get("output_tokens")),
            cache_read_tokens=cached,
        ),
        model=chosen if isinstance(chosen, str) else model,
        session_id=session if isinstance(session, str) else None,
        failure=failure,
    )


def _error_failure(error: dict[str, Any], err: str, exit_code: int | None) -> ToolFailure:
    """`error.code` is the HTTP status, or the CLI's own exit code (1: network and other
    errors; 41, 42, 52, 55), in which case stderr's `status: NNN` tells the status."""
    raw = str(error.get("message") or "unknown error")
    detail = _inner_message(raw)
    code = error.get("code")
    status = code if isinstance(code, int) and 100 <= code <= 599 else _status_in(raw, err)
    if status is not None:
        kind = c.kind_for_status(status)
        return c.api_failure(PROVIDER, status, kind, detail, key_env=KEY_ENV, context=err)
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
