"""Claude Code: `claude -p --output-format json`, the prompt on stdin, one JSON result
object on stdout (a JSON array or JSON lines are read too). See docs/tools.md."""

from __future__ import annotations

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

KEY_ENV = "ANTHROPIC_API_KEY"
PROVIDER = "Anthropic"
# The CLI retries every failure 10 times over ~3 minutes; the orchestrator owns retries.
FAIL_FAST_ENV = {
    "CLAUDE_CODE_MAX_RETRIES": "0",
    "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
}
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
_STOPPED = {
    "error_max_turns": "this tool's max_turns in config/tools.yaml",
    "error_max_budget_usd": "the --max-budget-usd given in extra_args",
}


class ClaudeAdapter:
    def build(
        self, tool: ToolConfig, model: str | None, prompt: str, ctx: RunContext
    ) -> Invocation:
        argv = [tool.binary, "-p", "--output-format", "json"]
        if model:
            argv += ["--model", model]
        if tool.permission_mode:
            argv += ["--permission-mode", tool.permission_mode]
        if tool.max_turns is not None:
            argv += ["--max-turns", str(tool.max_turns)]
        if ctx.budget_usd is not None:  # the task's own cap, enforced by claude itself
            argv += ["--max-budget-usd", f"{ctx.budget_usd:g}"]
        argv += tool.extra_args
        env = dict(FAIL_FAST_ENV)
        if tool.base_url:
            env["ANTHROPIC_BASE_URL"] = tool.base_url
        return Invocation(argv=argv, stdin=prompt.encode("utf-8"), env=env)

    def parse(
        self,
        tool: ToolConfig,
        model: str | None,
        stdout: bytes,
        stderr: bytes,
        exit_code: int | None,
    ) -> ParsedOutput:
        events = c.json_objects(c.text_of(stdout))
        result = next((e for e in reversed(events) if e.get("type") == "result"), None)
        if result is None:
            return ParsedOutput(failure=_no_result(stdout, c.text_of(stderr), exit_code))
        failure = _result_failure(result)
        session = result.get("session_id")
        cost = result.get("total_cost_usd")
        text = result.get("result")
        return ParsedOutput(
            text=text if failure is None and isinstance(text, str) else None,
            usage=_usage(result),
            cost_usd=float(cost) if isinstance(cost, int | float) else None,
            model=_model(result, events) or model,
            session_id=session if isinstance(session, str) else None,
            failure=failure,
        )

    def watch_line(self, line: bytes) -> ToolFailure | None:
        return None


def _usage(result: dict[str, Any]) -> Usage | None:
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


def _model(result: dict[str, Any], events: list[dict[str, Any]]) -> str | None:
    """The model that wrote the most output; else the one the session started with."""
    per_model = _per_model(result)
    if per_model:
        return max(per_model, key=lambda name: c.number(per_model[name].get("outputTokens")))
    for event in events:
        if event.get("type") == "system" and event.get("subtype") == "init":
            found = event.get("model")
            return found if isinstance(found, str) else None
    return None


def _result_failure(result: dict[str, Any]) -> ToolFailure | None:
    """Claude says `subtype: success` even on API errors: read `is_error` and the
    `api_error_*` fields."""
    subtype = result.get("subtype")
    if not result.get("is_error") and subtype == "success":
        return None
    text = result.get("result")
    detail = text if isinstance(text, str) and text else str(subtype or "unknown error")
    status = result.get("api_error_status")
    kind = _kind(result, detail, status if isinstance(status, int) else None)
    if kind is not None:
        code = status if isinstance(status, int) else None
        return c.api_failure(PROVIDER, code, kind, detail, key_env=KEY_ENV)
    if subtype in _STOPPED:
        turns = result.get("num_turns")
        return c.failure(
            ErrorKind.EXIT,
            f"claude stopped before finishing ({subtype}, after {turns} turns): {detail}",
            key_env=KEY_ENV,
            hint=f"raise {_STOPPED[str(subtype)]}, or split the task",
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


def _no_result(stdout: bytes, stderr: str, exit_code: int | None) -> ToolFailure:
    """No result object: bad flags and refusals print on stderr with an empty stdout."""
    said = c.stderr_summary(stderr)
    if stdout.strip():
        head = c.shorten(c.text_of(stdout), 200)
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


ADAPTER = ClaudeAdapter()
