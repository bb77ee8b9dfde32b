"""The claude, codex and gemini adapters: `parse` over every captured real CLI output in
shared/agent-cli-samples, `build` as exact argv/stdin/env tables, `watch_line`."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import Any

import pytest

from orchestrator.adapters import codex, gemini, get_adapter
from orchestrator.adapters._classify import retry_after, trailing_json_object
from orchestrator.adapters.base import ErrorKind, Invocation, ParsedOutput, RunContext, Usage
from orchestrator.config import ToolConfig

SAMPLES = Path(__file__).parents[1].parent / "shared" / "agent-cli-samples"
RESULTS: dict[str, dict[str, Any]] = json.loads((SAMPLES / "results.json").read_text())
KINDS = {"claude": "claude-code", "codex": "codex", "gemini": "gemini"}
CTX = RunContext(task_id="t-1", workspace=Path("/ws"), run_dir=Path("/runs/t-1.1"))

K = ErrorKind
STATUS_KINDS = {401: K.AUTH, 429: K.RATE_LIMIT, 500: K.SERVER, 503: K.SERVER, 529: K.OVERLOADED}
# Samples whose outcome their name does not tell by the rules of `expected`.
SPECIAL: dict[str, ErrorKind | None] = {
    "claude-json-http529-opus-fallback-model-sonnet-default-retries": None,  # sonnet answered
    "claude-json-bypass-mode": K.CLI_USAGE,  # refused as root
    "claude-json-skip-permissions": K.CLI_USAGE,
    "claude-stream-json-no-verbose": K.CLI_USAGE,
    "codex-exec-json-approval-flag-after-exec": K.CLI_USAGE,
    "gemini-json-untrusted": K.CLI_USAGE,
    "claude-text": K.BAD_OUTPUT,
    "codex-exec-text": K.BAD_OUTPUT,
    "gemini-text": K.BAD_OUTPUT,
}
# The provider's own words that a failure message must carry.
PROVIDER_WORDS = {
    "claude-json-http429": "per-minute rate limit",
    "claude-json-http401": "Invalid API key",
    "claude-json-server-down": "ECONNREFUSED",
    "claude-json-bypass-mode": "root/sudo",
    "claude-stream-json-no-verbose": "requires --verbose",
    "codex-exec-json-http503": "The engine is currently overloaded",
    "codex-exec-json-http500": "high demand",
    "codex-exec-json-approval-flag-after-exec": "unexpected argument '-a'",
    "codex-exec-json-server-down": "waiting for network",
    "gemini-json-http401": "API key not valid",
    "gemini-json-http429": "Resource has been exhausted",
    "gemini-stream-json-http500": "An internal error has occurred",
    "gemini-json-server-down": "fetch failed",
    "gemini-json-untrusted": "not running in a trusted directory",
}


def expected(name: str) -> tuple[ErrorKind | None, int | None]:
    if name in SPECIAL:
        return SPECIAL[name], None
    if "server-down" in name:
        return K.CONNECTION, None
    if match := re.search(r"-http(\d{3})", name):
        status = int(match.group(1))
        if name.startswith("codex") and status == 500:
            return K.SERVER, None  # codex replaces a 500's body by "high demand", no status
        return STATUS_KINDS[status], status
    return None, None


def tool_for(cli: str, **options: Any) -> ToolConfig:
    return ToolConfig(adapter=KINDS[cli], binary=cli, **options)


def requested_model(argv: list[str]) -> str | None:
    for flag in ("-m", "--model"):
        if flag in argv:
            return argv[argv.index(flag) + 1]
    return None


def parse_sample(name: str) -> ParsedOutput:
    run = RESULTS[name]
    stdout = (SAMPLES / run["stdout_file"]).read_bytes()
    stderr_file = SAMPLES / run["stdout_file"].replace(".txt", ".stderr.txt")
    stderr = stderr_file.read_bytes() if stderr_file.exists() else b""
    exit_code = run["rc"] if isinstance(run["rc"], int) else None  # "timeout": killed
    tool = tool_for(run["cli"])
    return get_adapter(tool.adapter).parse(
        tool, requested_model(run["argv"]), stdout, stderr, exit_code
    )


# --- every sample ---------------------------------------------------------------------


def test_every_sample_file_is_parsed_by_some_case() -> None:
    used = set()
    for run in RESULTS.values():
        used.add(run["stdout_file"])
        used.add(run["stdout_file"].replace(".txt", ".stderr.txt"))
    used.add("codex-exec-json-last-message.last-message.txt")  # see its own test
    outputs = {path.name for path in SAMPLES.glob("*.txt")}
    assert outputs, f"no samples in {SAMPLES}"
    assert outputs <= used


@pytest.mark.parametrize("name", sorted(RESULTS))
def test_sample_is_classified(name: str) -> None:
    kind, status = expected(name)
    parsed = parse_sample(name)
    if kind is None:
        assert parsed.failure is None, parsed.failure
        assert parsed.text is not None
        assert parsed.text.startswith("ACK ")
        assert parsed.session_id
        assert parsed.usage is not None
        assert parsed.usage.input_tokens > 1000
        assert parsed.usage.output_tokens > 0
        return
    assert parsed.failure is not None
    assert parsed.failure.kind == kind
    assert parsed.failure.status == status
    assert parsed.failure.message
    assert parsed.failure.hint
    assert parsed.text is None
    if name in PROVIDER_WORDS:
        assert PROVIDER_WORDS[name] in parsed.failure.message


def test_codex_last_message_file_matches_the_parsed_text() -> None:
    written = (SAMPLES / "codex-exec-json-last-message.last-message.txt").read_text()
    assert parse_sample("codex-exec-json-last-message").text == written.strip()


# --- usage, cost, model, session ------------------------------------------------------


def test_claude_reports_usage_cost_model_and_session() -> None:
    parsed = parse_sample("claude-json")
    assert parsed.usage is not None
    assert (parsed.usage.input_tokens, parsed.usage.output_tokens) == (10689, 6)
    assert parsed.cost_usd == pytest.approx(0.042876)
    assert parsed.cost_source == "reported"
    assert parsed.model == "claude-opus-5-5"
    assert parsed.session_id == "f5e0447b-c0f8-4336-b75c-042ed656ea8e"


@pytest.mark.parametrize(
    ("name", "model"),
    [
        ("claude-json-model-sonnet", "claude-sonnet-5-5"),  # asked for the alias `sonnet`
        ("claude-json-http529-opus-fallback-model-sonnet-default-retries", "claude-sonnet-5-5"),
        ("claude-json-verbose", "claude-opus-5-5"),  # a JSON array of messages
        ("claude-stream-json-partial", "claude-opus-5-5"),  # JSON lines
        ("codex-exec-json-model", "gpt-6.2-sol"),  # not in the output: the requested one
        ("codex-exec-json", None),
        ("gemini-json", "gemini-3.8-flash"),  # the main role, not the router
        ("gemini-json-model-flash", "gemini-2.5-flash"),
        ("gemini-stream-json", "gemini-3.8-flash"),
    ],
)
def test_model_that_answered(name: str, model: str | None) -> None:
    assert parse_sample(name).model == model


def test_codex_usage_and_thread() -> None:
    parsed = parse_sample("codex-exec-json")
    assert parsed.usage is not None
    assert (parsed.usage.input_tokens, parsed.usage.output_tokens) == (8061, 6)
    assert parsed.cost_usd is None
    assert parsed.session_id == "01a21f62-37ec-7e22-b84a-cabc0b7c21ed"


def test_gemini_usage_counts_router_and_main_calls() -> None:
    parsed = parse_sample("gemini-json")
    assert parsed.usage is not None
    assert (parsed.usage.input_tokens, parsed.usage.output_tokens) == (712 + 8955, 12)
    assert parsed.cost_usd is None
    assert parsed.session_id == "84ce9ae2-15e9-4802-874d-6dbfdfa2bf1e"


def _parse(cli: str, stdout: str, stderr: str = "", exit_code: int | None = 0) -> ParsedOutput:
    tool = tool_for(cli)
    adapter = get_adapter(tool.adapter)
    return adapter.parse(tool, "m", stdout.encode(), stderr.encode(), exit_code)


def test_claude_keeps_cache_tokens_beside_input() -> None:
    result = {
        "type": "result", "subtype": "success", "is_error": False, "result": "ok",
        "usage": {
            "input_tokens": 100, "output_tokens": 20, "cache_read_input_tokens": 30,
            "cache_creation_input_tokens": 40, "output_tokens_details": {"thinking_tokens": 5},
        },
    }  # fmt: skip
    assert _parse("claude", json.dumps(result)).usage == Usage(100, 20, 30, 40, 5)


def test_codex_subtracts_cache_tokens_from_input() -> None:
    lines = [
        {"type": "thread.started", "thread_id": "th"},
        {"type": "item.completed", "item": {"type": "agent_message", "text": "ok"}},
        {"type": "turn.completed", "usage": {
            "input_tokens": 170, "cached_input_tokens": 30, "cache_write_input_tokens": 40,
            "output_tokens": 20, "reasoning_output_tokens": 7,
        }},
    ]  # fmt: skip
    stdout = "\n".join(json.dumps(line) for line in lines)
    assert _parse("codex", stdout).usage == Usage(100, 20, 30, 40, 7)


def test_gemini_subtracts_cached_and_adds_thoughts_to_output() -> None:
    tokens = {"prompt": 130, "cached": 30, "candidates": 20, "thoughts": 9, "tool": 4}
    doc = {
        "session_id": "s",
        "response": "ok",
        "stats": {
            "models": {"gemini-x": {"tokens": tokens, "roles": {"main": {"tokens": tokens}}}}
        },
    }
    parsed = _parse("gemini", json.dumps(doc))
    assert parsed.usage == Usage(input_tokens=100 + 4, output_tokens=29, cache_read_tokens=30,
                                 reasoning_tokens=9)  # fmt: skip
    assert parsed.model == "gemini-x"


# --- failures beyond the samples (outputs captured from the same CLIs) -----------------


def _claude_error(**fields: Any) -> str:
    return json.dumps({"type": "result", "subtype": "success", "is_error": True, **fields})


@pytest.mark.parametrize(
    ("stdout", "kind", "status"),
    [
        (_claude_error(api_error_status=404, api_error_type="not_found_error",
                       result="There's an issue with the selected model (claude-nope)."),
         K.BAD_REQUEST, 404),
        (_claude_error(api_error_status=400, api_error_type="invalid_request_error",
                       terminal_reason="prompt_too_long", result="Prompt is too long"),
         K.BAD_REQUEST, 400),
        (_claude_error(api_error_status=403, api_error_type="permission_error",
                       result="Failed to authenticate. API Error: 403 Forbidden"),
         K.AUTH, 403),
        (_claude_error(api_error_status=None, result="Not logged in · Please run /login"),
         K.AUTH, None),
        (_claude_error(subtype="error_max_turns", num_turns=3), K.EXIT, None),
    ],
)  # fmt: skip
def test_claude_failures(stdout: str, kind: ErrorKind, status: int | None) -> None:
    failure = _parse("claude", stdout, exit_code=1).failure
    assert failure is not None
    assert (failure.kind, failure.status) == (kind, status)


def test_claude_max_turns_hint_names_the_setting() -> None:
    failure = _parse("claude", _claude_error(subtype="error_max_turns"), exit_code=1).failure
    assert failure is not None
    assert "max_turns" in failure.hint


def test_claude_auth_hint_names_the_key() -> None:
    failure = parse_sample("claude-json-http401").failure
    assert failure is not None
    assert "ANTHROPIC_API_KEY" in failure.hint


@pytest.mark.parametrize(
    ("message", "kind", "status"),
    [
        ('{"error": {"message": "Invalid request.", "type": "invalid_request_error", '
         '"param": null, "code": null}}', K.BAD_REQUEST, 400),
        ("Model not found (fake API).", K.BAD_REQUEST, None),
        ("Not Found (fake API).", K.BAD_REQUEST, None),
        ("The model `gpt-x` does not exist or you do not have access to it.", K.BAD_REQUEST,
         None),
        ("unexpected status 403 Forbidden: Permission denied, url: http://h/v1/responses",
         K.AUTH, 403),
        ("unexpected status 502 Bad Gateway: Bad gateway, url: http://h/v1/responses",
         K.SERVER, 502),
        ("Missing environment variable: `OPENAI_API_KEY`.", K.AUTH, None),
        ("something new", K.EXIT, None),
    ],
)  # fmt: skip
def test_codex_messages(message: str, kind: ErrorKind, status: int | None) -> None:
    failure = codex.classify(message)
    assert (failure.kind, failure.status) == (kind, status)


def test_codex_missing_key_hint_names_the_variable() -> None:
    failure = codex.classify("Missing environment variable: `MY_KEY`.")
    assert "MY_KEY" in failure.hint


GEMINI_429 = """Attempt 1 failed: You exceeded your current quota. Please retry in 17.5s.
Suggested retry after 17s.. Max attempts reached
  retryDelayMs: 17000,
  status: 429
}
{
  "session_id": "a086",
  "error": {
    "type": "Error",
    "message": "You exceeded your quota. Please retry in 17.5s.\\nSuggested retry after 17s.",
    "code": 429
  }
}
"""
GEMINI_404 = """Error when talking to Gemini API ModelNotFoundError: Model not found (fake API).
  code: 404
}
{"session_id": "d7e7", "error": {"type": "Error", "message": "Model not found.", "code": 1}}
"""


@pytest.mark.parametrize(
    ("stderr", "exit_code", "kind", "status"),
    [
        (GEMINI_429, 173, K.RATE_LIMIT, 429),
        (GEMINI_404, 1, K.BAD_REQUEST, 404),
        ('{"error": {"type": "Error", "message": "Invalid auth method selected.", "code": 41}}',
         41, K.AUTH, None),
        ("Error in /r/gemini-home/.gemini/settings.json: Expected ',' or '}'", 52,
         K.CLI_USAGE, None),
        ('Invalid values:\n  Argument: approval-mode, Given: "bogus"', 1, K.CLI_USAGE, None),
    ],
)  # fmt: skip
def test_gemini_failures(stderr: str, exit_code: int, kind: ErrorKind, status: int | None) -> None:
    failure = _parse("gemini", "", stderr, exit_code).failure
    assert failure is not None
    assert (failure.kind, failure.status) == (kind, status)


def test_gemini_retry_after_is_read_from_the_error() -> None:
    failure = _parse("gemini", "", GEMINI_429, 173).failure
    assert failure is not None
    assert failure.retry_after_s == 17.5


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("Rate limited; retry after 23 seconds", 23.0),
        ("Please try again in 1.5s.", 1.5),
        ("retryDelayMs: 4000", 4.0),
        ("retryDelayMs: undefined", None),
        ("Number of request tokens has exceeded your per-minute rate limit", None),
    ],
)
def test_retry_after(text: str, seconds: float | None) -> None:
    assert retry_after(text) == seconds


@pytest.mark.parametrize("cli", ["claude", "codex", "gemini"])
@pytest.mark.parametrize(("stdout", "exit_code"), [("", 0), ("garbage {", 0), ("garbage", 1)])
def test_garbage_is_bad_output(cli: str, stdout: str, exit_code: int) -> None:
    failure = _parse(cli, stdout, "", exit_code).failure
    assert failure is not None
    assert failure.kind == K.BAD_OUTPUT


def test_trailing_json_object_skips_braces_in_stack_dumps() -> None:
    text = 'Error {\n  cause: { code: 429 }\n}\n{\n  "error": {"code": 429}\n}\n'
    assert trailing_json_object(text) == {"error": {"code": 429}}
    assert trailing_json_object("no json here") is None


# --- watch_line -------------------------------------------------------------------------


def _event(message: str) -> bytes:
    return json.dumps({"type": "error", "message": message}).encode() + b"\n"


def test_codex_watch_stops_a_run_waiting_for_network() -> None:
    line = _event("Reconnecting... waiting for network (Connection failed: error sending request)")
    failure = codex.ADAPTER.watch_line(line)
    assert failure is not None
    assert failure.kind == K.CONNECTION


@pytest.mark.parametrize(
    "line",
    [
        _event("Reconnecting... 2/5 (unexpected status 404 Not Found: url: ws://h/v1/responses)"),
        b'{"type":"turn.started"}\n',
        b"WARNING: not json\n",
        b"\xff\xfe\n",
    ],
)
def test_codex_watch_lets_other_lines_pass(line: bytes) -> None:
    assert codex.ADAPTER.watch_line(line) is None


@pytest.mark.parametrize("kind", ["claude-code", "gemini"])
def test_claude_and_gemini_never_stop_early(kind: str) -> None:
    assert get_adapter(kind).watch_line(_event("waiting for network")) is None


# --- build ------------------------------------------------------------------------------

BASE = "http://127.0.0.1:8080"
PROVIDER = (
    '{name="orchestrator",base_url="http://127.0.0.1:8080/v1",env_key="OPENAI_API_KEY",'
    'wire_api="responses",request_max_retries=0,stream_max_retries=0}'
)
CLAUDE_ENV = {"CLAUDE_CODE_MAX_RETRIES": "0", "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1"}
GEMINI_ENV = {"GEMINI_CLI_HOME": "/runs/t-1.1/gemini-home", "GEMINI_CLI_NO_RELAUNCH": "true"}

BUILD_CASES: list[tuple[str, dict[str, Any], str | None, list[str], dict[str, str]]] = [
    ("claude", {}, None, ["claude", "-p", "--output-format", "json"], CLAUDE_ENV),
    (
        "claude",
        {"permission_mode": "acceptEdits", "max_turns": 5, "base_url": BASE,
         "extra_args": ["--no-session-persistence"], "sandbox": "ignored"},
        "claude-sonnet-4-5",
        ["claude", "-p", "--output-format", "json", "--model", "claude-sonnet-4-5",
         "--permission-mode", "acceptEdits", "--max-turns", "5", "--no-session-persistence"],
        {**CLAUDE_ENV, "ANTHROPIC_BASE_URL": BASE},
    ),
    ("codex", {}, None, ["codex", "exec", "--json", "--skip-git-repo-check", "-"], {}),
    (
        "codex",
        {"approval_mode": "never", "sandbox": "workspace-write", "base_url": f"{BASE}/v1",
         "extra_args": ["--ephemeral"]},
        "gpt-5.5",
        ["codex", "-a", "never", "-c", 'model_provider="orchestrator"',
         "-c", f"model_providers.orchestrator={PROVIDER}",
         "exec", "--json", "--skip-git-repo-check", "--sandbox", "workspace-write",
         "-m", "gpt-5.5", "--ephemeral", "-"],
        {},
    ),
    ("gemini", {}, None, ["gemini", "-o", "json", "--skip-trust"], GEMINI_ENV),
    (
        "gemini",
        {"approval_mode": "auto_edit", "base_url": BASE, "extra_args": ["--sandbox"]},
        "gemini-2.5-flash",
        ["gemini", "-o", "json", "--skip-trust", "-m", "gemini-2.5-flash",
         "--approval-mode", "auto_edit", "--sandbox"],
        {**GEMINI_ENV, "GOOGLE_GEMINI_BASE_URL": BASE},
    ),
]  # fmt: skip


def _build(cli: str, options: dict[str, Any], model: str | None) -> Invocation:
    tool = tool_for(cli, **options)
    return get_adapter(tool.adapter).build(tool, model, "Fix it.\nNow — please.", CTX)


@pytest.mark.parametrize(("cli", "options", "model", "argv", "env"), BUILD_CASES)
def test_build(
    cli: str, options: dict[str, Any], model: str | None, argv: list[str], env: dict[str, str]
) -> None:
    invocation = _build(cli, options, model)
    assert invocation.argv == argv
    assert invocation.env == env
    assert invocation.stdin == "Fix it.\nNow — please.".encode()


@pytest.mark.parametrize("cli", ["claude", "codex"])
def test_build_writes_no_files(cli: str) -> None:
    assert _build(cli, {}, None).files == {}


@pytest.mark.parametrize("cli", ["claude", "codex", "gemini"])
def test_build_never_bypasses_permissions_by_default(cli: str) -> None:
    argv = _build(cli, {}, "m").argv
    assert "-y" not in argv
    for word in ("bypass", "dangerously", "yolo", "danger-full-access"):
        assert not any(word in arg for arg in argv)


def test_gemini_settings_file_lives_in_its_home_in_the_run_dir() -> None:
    invocation = _build("gemini", {}, None)
    assert list(invocation.files) == [gemini.SETTINGS_FILE]
    home = Path(invocation.env["GEMINI_CLI_HOME"])
    assert home / ".gemini" / "settings.json" == CTX.run_dir / gemini.SETTINGS_FILE
    settings = json.loads(invocation.files[gemini.SETTINGS_FILE])
    assert settings["general"]["maxAttempts"] == 1
    assert settings["privacy"]["usageStatisticsEnabled"] is False
    assert "security" not in settings  # auth left to the environment (API key, Vertex)


def test_gemini_base_url_selects_api_key_auth() -> None:
    invocation = _build("gemini", {"base_url": BASE}, None)
    settings = json.loads(invocation.files[gemini.SETTINGS_FILE])
    assert settings["security"]["auth"]["selectedType"] == "gemini-api-key"


def test_codex_approval_flag_goes_before_exec() -> None:
    argv = _build("codex", {"approval_mode": "on-request"}, None).argv
    assert argv.index("-a") < argv.index("exec")


def test_codex_provider_quotes_the_url_as_toml() -> None:
    args = codex.provider_args('http://h/v1?q="x"')
    assert 'base_url="http://h/v1?q=\\"x\\""' in args[3]


@pytest.mark.parametrize(
    ("help_file", "flags"),
    [
        ("claude-help.txt", ["-p, --print", "--output-format", "--model", "--permission-mode"]),
        ("codex-help.txt", ["-a, --ask-for-approval", "-c, --config", "exec"]),
        ("codex-exec-help.txt", ["--json", "--skip-git-repo-check", "--sandbox", "--model"]),
        ("gemini-help.txt", ["--output-format", "--skip-trust", "--model", "--approval-mode"]),
    ],
)
def test_built_flags_exist_in_the_clis_help(help_file: str, flags: list[str]) -> None:
    text = (SAMPLES / "help" / help_file).read_text()
    for flag in flags:  # claude's --max-turns works but is hidden from its help
        assert flag in text


def test_claude_gets_the_tasks_budget_cap() -> None:
    tool = tool_for("claude")
    ctx = dataclasses.replace(CTX, budget_usd=0.5)
    argv = get_adapter(tool.adapter).build(tool, None, "hi", ctx).argv
    assert argv[-2:] == ["--max-budget-usd", "0.5"]
    assert "--max-budget-usd" not in _build("claude", {}, None).argv
