"""Reading Claude Code's `result` object (and the assistant message of an API error): usage,
model, and the failure it reports. Shared by the claude adapter's stream parser."""

from __future__ import annotations

from typing import Any

from orchestrator.adapters import _classify as c
from orchestrator.adapters._stream import text_at
from orchestrator.adapters.base import ErrorKind, ToolFailure, Usage

KEY_ENV = "ANTHROPIC_API_KEY"
PROVIDER = "Anthropic"
_ERROR_TYPES = {
    "rate_limit_error": ErrorKind.RATE_LIMIT,
    "overloaded_error": ErrorKind.OVERLOADED,
    "authentication_error": ErrorKind.AUTH,
    "permission_error": ErrorKind.AUTH,
    "not_found_error": ErrorKind.BAD_REQUEST,
    "invalid_request_error": ErrorKind.BAD_REQUEST,
    "request_too_large": ErrorKind.BAD_REQUEST,
    "api_error": ErrorKind.SERVER,
}
_CONNECTION_WORDS = ("ECONNREFUSED", "ECONNRESET", "ENOTFOUND", "ETIMEDOUT", "Connection error")
_AUTH_WORDS = ("Not logged in", "Invalid API key", "/login")
# (kind, what to raise) of a run claude stopped itself
_STOPPED = {
    "error_max_turns": (ErrorKind.EXIT, "this tool's max_turns in config/tools.yaml"),
    "error_max_budget_usd": (ErrorKind.BUDGET_EXCEEDED, "the task's budget_usd"),
}


def words(content: Any) -> str:
    """The text of a message's content (a string, or its text blocks)."""
    if isinstance(content, str):
        return content
    blocks = content if isinstance(content, list) else []
    return " ".join(str(b.get("text")) for b in blocks if isinstance(b, dict) and "text" in b)


def usage_of(result: dict[str, Any]) -> Usage | None:
    """Claude reports cache reads and writes beside `input_tokens`, as Usage wants them.
    The per-model totals (all models the run used, as the reported cost) win when given."""
    rows = list(_per_model(result).values())
    if rows:
        return Usage(
            input_tokens=sum(c.number(row.get("inputTokens")) for row in rows),
            output_tokens=sum(c.number(row.get("outputTokens")) for row in rows),
            cache_read_tokens=sum(c.number(row.get("cacheReadInputTokens")) for row in rows),
            cache_write_tokens=sum(c.number(row.get("cacheCreationInputTokens")) for row in rows),
            reasoning_tokens=sum(c.number(row.get("thinkingTokens")) for row in rows),
        )
    usage = result.get("usage")
    if not isinstance(usage, dict):
        return None
    details = usage.get("output_tokens_details")
    thinking = details.get("thinking_tokens") if isinstance(details, dict) else 0
    return Usage(
        input_tokens=c.number(usage.get("input_tokens")),
        output_tokens=c.number(usage.get("output_tokens")),
        cache_read_tokens=c.number(usage.get("cache_read_input_tokens")),
        cache_write_tokens=c.number(usage.get("cache_creation_input_tokens")),
        reasoning_tokens=c.number(thinking),
    )


def _per_model(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    per_model = result.get("modelUsage")
    if not isinstance(per_model, dict):
        return {}
    return {name: row for name, row in per_model.items() if isinstance(row, dict)}


def model_of(result: dict[str, Any], init: dict[str, Any]) -> str | None:
    """The model that wrote the most output; else the one the session started with."""
    per_model = _per_model(result)
    if per_model:
        return max(per_model, key=lambda name: c.number(per_model[name].get("outputTokens")))
    return text_at(init, "model")


def result_failure(result: dict[str, Any]) -> ToolFailure | None:
    """Claude says `subtype: success` even on API errors: read `is_error` and the
    `api_error_*` fields."""
    subtype = result.get("subtype")
    if not result.get("is_error") and subtype == "success":
        return None
    text = result.get("result")
    errors = result.get("errors")
    if not (isinstance(text, str) and text) and isinstance(errors, list) and errors:
        text = "; ".join(str(e) for e in errors)
    detail = text if isinstance(text, str) and text else str(subtype or "unknown error")
    status = result.get("api_error_status")
    kind = _kind(result, detail, status if isinstance(status, int) else None)
    if kind is not None:
        code = status if isinstance(status, int) else None
        return c.api_failure(PROVIDER, code, kind, detail, key_env=KEY_ENV)
    if subtype in _STOPPED:
        stopped, setting = _STOPPED[str(subtype)]
        turns = result.get("num_turns")
        return c.failure(
            stopped,
            f"claude stopped before finishing ({subtype}, after {turns} turns): {detail}",
            key_env=KEY_ENV,
            hint=f"raise {setting}, or split the task",
        )
    return c.failure(ErrorKind.EXIT, f"claude reported an error: {detail}", key_env=KEY_ENV)


def _kind(result: dict[str, Any], detail: str, status: int | None) -> ErrorKind | None:
    error_type = result.get("api_error_type")
    if isinstance(error_type, str) and error_type in _ERROR_TYPES:
        return _ERROR_TYPES[error_type]
    if status is not None:
        return c.kind_for_status(status)
    if result.get("api_error") == "connection_failed" or any(
        word in detail for word in _CONNECTION_WORDS
    ):
        return ErrorKind.CONNECTION
    if result.get("terminal_reason") == "prompt_too_long":
        return ErrorKind.BAD_REQUEST
    if any(word in detail for word in _AUTH_WORDS):
        return ErrorKind.AUTH
    return None


def no_result(head: str, stderr: str, exit_code: int | None) -> ToolFailure:
    """No result object: bad flags and refusals print on stderr with an empty stdout."""
    said = c.stderr_summary(stderr)
    if head:
        return c.failure(
            ErrorKind.BAD_OUTPUT,
            f"claude printed no JSON result object (exit {exit_code}): {head}; stderr: {said}",
            key_env=KEY_ENV,
        )
    if exit_code == 0:
        return c.failure(
            ErrorKind.BAD_OUTPUT,
            f"claude printed nothing on stdout; stderr: {said}",
            key_env=KEY_ENV,
        )
    if "native binary not installed" in stderr:
        return c.failure(
            ErrorKind.MISSING_BINARY,
            f"claude cannot start: {said}",
            key_env=KEY_ENV,
            hint="reinstall @anthropic-ai/claude-code with its install script enabled",
        )
    hint = None
    if "root/sudo" in stderr:
        hint = (
            "bypassPermissions is refused as root: run the orchestrator as another user, or "
            "set IS_SANDBOX=1 (listed in this tool's env:) only inside a real sandbox"
        )
    return c.failure(
        ErrorKind.CLI_USAGE,
        f"claude refused to run (exit {exit_code}): {said}",
        key_env=KEY_ENV,
        hint=hint,
    )
