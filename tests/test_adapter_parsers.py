"""The claude, codex and gemini adapters: `parse` over every real CLI output recorded in
tests/samples/ (by scripts/capture-samples, against the fake LLM API), `build` as exact
argv/stdin/env tables, `watch_line`.

Each sample's expectations come from what the fake API was told to answer (its index entry's
`fake`: a reply and usage, an HTTP status, or a closed port) and the calls it answered,
never from the sample's own output. One case of the older, hand-made samples cannot be
produced by the fake API: claude's `--fallback-model` rescuing a run whose first model keeps
answering 529 (the fake API fails by prompt marker, never by model, so the fallback model
fails as well). Reading a result that names two models is covered by
`test_claude_model_is_the_one_with_most_output`, on a recorded result given a second model.
"""

from __future__ import annotations

import dataclasses
import json
import re
import time
from datetime import UTC, datetime
from http import HTTPStatus
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from orchestrator.adapters import codex, gemini, get_adapter
from orchestrator.adapters._classify import retry_after, trailing_json_object
from orchestrator.adapters.base import ErrorKind, Invocation, ParsedOutput, RunContext, Usage
from orchestrator.config import ToolConfig
from tests import capture_samples
from tests.fake_llm_api import error_kind

REPO = Path(__file__).resolve().parents[1]
SAMPLES = Path(__file__).resolve().parent / "samples"
INDEX: dict[str, dict[str, Any]] = json.loads((SAMPLES / capture_samples.INDEX).read_text())
KINDS = {"claude": "claude-code", "codex": "codex", "gemini": "gemini"}
CTX = RunContext(task_id="t-1", workspace=Path("/ws"), run_dir=Path("/runs/t-1.1"))
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")

K = ErrorKind
STATUS_KINDS = {401: K.AUTH, 429: K.RATE_LIMIT, 500: K.SERVER, 503: K.SERVER, 529: K.OVERLOADED}
# Samples where the CLI itself refuses or prints no JSON: the fake API is never asked.
REFUSED: dict[str, ErrorKind] = {
    "claude-json-bypass-mode": K.CLI_USAGE,  # refused as root
    "claude-json-skip-permissions": K.CLI_USAGE,
    "claude-stream-json-no-verbose": K.CLI_USAGE,
    "codex-exec-json-approval-flag-after-exec": K.CLI_USAGE,
    "gemini-json-untrusted": K.CLI_USAGE,
}
NOT_JSON = {"claude-text", "codex-exec-text", "gemini-text"}  # answered, but in plain text
# Samples where claude stopped itself after a first (answered) call with a tool call.
STOPPED: dict[str, ErrorKind] = {
    "claude-stream-json-max-turns": K.EXIT,  # --max-turns 1
    "claude-stream-json-max-budget": K.BUDGET_EXCEEDED,  # --max-budget-usd 0.001
}
# The CLI's own words that a failure message must carry (for HTTP errors it is the fake
# API's message, see `test_failure_carries_the_providers_message`).
CLI_WORDS = {
    "claude-json-server-down": "ECONNREFUSED",
    "claude-stream-json-server-down": "ECONNREFUSED",
    "claude-json-bypass-mode": "root/sudo",
    "claude-json-skip-permissions": "root/sudo",
    "claude-stream-json-no-verbose": "requires --verbose",
    "codex-exec-json-approval-flag-after-exec": "unexpected argument '-a'",
    "codex-exec-json-server-down": "waiting for network",
    "codex-exec-json-http500": "high demand",
    "codex-exec-json-http500-default-retries": "high demand",
    "gemini-json-server-down": "fetch failed",
    "gemini-json-model-flash-server-down": "fetch failed",
    "gemini-json-untrusted": "not running in a trusted directory",
    "claude-stream-json-max-turns": "error_max_turns",
    "claude-stream-json-max-budget": "Reached maximum budget",
}


def expected(name: str) -> tuple[ErrorKind | None, int | None]:
    """The failure kind and status the parser must find, from what the fake API was told."""
    if name in REFUSED:
        return REFUSED[name], None
    if name in NOT_JSON:
        return K.BAD_OUTPUT, None
    if name in STOPPED:
        return STOPPED[name], None
    fake = INDEX[name]["fake"]
    if fake.get("down"):
        return K.CONNECTION, None
    if "limit_closed_for_s" in fake:
        return limit_expected(name)
    if "status" in fake:
        status = fake["status"]
        if INDEX[name]["cli"] == "codex" and status == 500:
            return K.SERVER, None  # codex replaces a 500's body by "high demand", no status
        return STATUS_KINDS[status], status
    return None, None


def limit_expected(name: str) -> tuple[ErrorKind, int | None]:
    """A closed usage window: claude with an API key reads none of the plan's headers (a
    plain 429); signed in with a plan, and codex and gemini, say the window closed. Codex
    drops the status from the message."""
    run = INDEX[name]
    if run["cli"] == "claude" and run["signed_in"] == "api key":
        return K.RATE_LIMIT, 429
    return K.USAGE_LIMIT, None if run["cli"] == "codex" else 429


def tool_for(cli: str, **options: Any) -> ToolConfig:
    return ToolConfig(adapter=KINDS[cli], binary=cli, **options)


def requested_model(argv: list[str]) -> str | None:
    for flag in ("-m", "--model"):
        if flag in argv:
            return argv[argv.index(flag) + 1]
    return None


def parse_sample(name: str) -> ParsedOutput:
    run = INDEX[name]
    stdout = (SAMPLES / run["stdout"]).read_bytes()
    stderr = (SAMPLES / run["stderr"]).read_bytes()
    exit_code = run["exit_code"] if isinstance(run["exit_code"], int) else None  # "timeout"
    tool = tool_for(run["cli"])
    return get_adapter(tool.adapter).parse(
        tool, requested_model(run["argv"]), stdout, stderr, exit_code
    )


def answered(name: str) -> list[dict[str, Any]]:
    """The fake API's successful answers in this sample's run, oldest first."""
    return [r for r in INDEX[name]["requests"] if r["status"] == 200]


def expected_usage(name: str) -> Usage:
    """The usage the fake API reported, summed over every answered call (the main call's is
    the case's FAKE_USAGE, gemini's router call a smaller one), normalised; gemini has no
    cache-write count, so its cache writes are plain input tokens."""
    total = [0, 0, 0, 0]
    for row in answered(name):
        tokens_in, tokens_out, read, write = row["usage"]
        if INDEX[name]["cli"] == "gemini":
            tokens_in, write = tokens_in + write, 0
        for n, value in enumerate((tokens_in, tokens_out, read, write)):
            total[n] += row["count"] * value
    return Usage(*total)


def expected_model(name: str) -> str | None:
    """Codex never says which model answered: the requested one. The others: the model of
    the last call that was not a utility call (gemini's `auto` router)."""
    run = INDEX[name]
    if run["cli"] == "codex":
        return requested_model(run["argv"])
    main_calls = [str(r["model"]) for r in answered(name) if not r["utility"]]
    return main_calls[-1]


SUCCESSES = sorted(name for name in INDEX if expected(name)[0] is None)
FAILURES = sorted(name for name in INDEX if expected(name)[0] is not None)
STATUS_FAILURES = sorted(name for name in FAILURES if "status" in INDEX[name]["fake"])
WINDOWS = sorted(name for name in FAILURES if expected(name)[0] is K.USAGE_LIMIT)


# --- the samples themselves -----------------------------------------------------------


def test_samples_live_inside_the_repository() -> None:
    assert SAMPLES.is_relative_to(REPO)
    for run in INDEX.values():
        for key in ("stdout", "stderr", "last_message"):
            if key in run:
                path = (SAMPLES / run[key]).resolve()
                assert path.is_relative_to(SAMPLES), path
                assert path.is_file(), path


def test_no_test_reads_samples_from_beside_the_clone() -> None:
    """The suite must run from a fresh clone: no sample folder next to the repository."""
    outside = re.compile(
        "|".join(
            [
                "agent-cli-" + "samples",
                r"\.\./" + "shared",
                r"/\s*[\"']" + "shared" + r"[\"']",
                r"parents\[\d\]\." + "parent",
            ]
        )
    )
    sources = [*REPO.glob("tests/**/*.py"), *REPO.glob("bench/**/*.py"), REPO / "pyproject.toml"]
    offenders = [
        f"{path.relative_to(REPO)}:{number}: {line.strip()}"
        for path in sources
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if outside.search(line)
    ]
    assert offenders == []


def test_every_sample_file_belongs_to_a_case() -> None:
    used = {run[key] for run in INDEX.values() for key in ("stdout", "stderr", "last_message")
            if key in run}  # fmt: skip
    outputs = {path.name for path in SAMPLES.glob("*.txt")}
    assert outputs, f"no samples in {SAMPLES}"
    assert outputs == used


def test_samples_are_the_capture_scripts_cases_from_the_pinned_clis() -> None:
    assert set(INDEX) == set(capture_samples.CASES)
    pins = json.loads((REPO / "tests" / "clis" / "package.json").read_text())["dependencies"]
    packages = {"claude": "@anthropic-ai/claude-code", "codex": "@openai/codex",
                "gemini": "@google/gemini-cli"}  # fmt: skip
    for name, run in INDEX.items():
        assert pins[packages[run["cli"]]] in run["version"], name
        assert run["fake"] == capture_samples.CASES[name].fake, name


@pytest.mark.parametrize("name", sorted(INDEX))
def test_sample_shows_what_the_fake_api_was_told(name: str) -> None:
    """A sample is evidence only if the run really met the answer it is filed under."""
    run, (kind, _) = INDEX[name], expected(name)
    statuses = {r["status"] for r in run["requests"]}
    if name in REFUSED:
        assert run["requests"] == []
        assert run["exit_code"] != 0
    elif run["fake"].get("down"):
        assert run["requests"] == []
    elif "status" in run["fake"]:
        assert statuses == {run["fake"]["status"]}
    elif "limit_closed_for_s" in run["fake"]:
        assert statuses == {429}
    elif name in STOPPED:
        assert statuses == {200}
        assert run["exit_code"] == 1
    else:
        assert statuses == {200}
        assert run["exit_code"] == 0
    assert (run["exit_code"] == 0) == (kind in (None, K.BAD_OUTPUT))


# --- every sample ---------------------------------------------------------------------


@pytest.mark.parametrize("name", SUCCESSES)
def test_success_is_parsed(name: str) -> None:
    parsed = parse_sample(name)
    assert parsed.failure is None, parsed.failure
    assert parsed.text == INDEX[name]["fake"]["reply"]
    assert parsed.usage == expected_usage(name)
    assert parsed.model == expected_model(name)
    assert parsed.session_id is not None
    assert UUID.match(parsed.session_id), parsed.session_id


@pytest.mark.parametrize("name", FAILURES)
def test_failure_is_classified(name: str) -> None:
    kind, status = expected(name)
    parsed = parse_sample(name)
    assert parsed.failure is not None
    assert (parsed.failure.kind, parsed.failure.status) == (kind, status)
    assert parsed.failure.message
    assert parsed.failure.hint
    assert parsed.text is None
    if name in CLI_WORDS:
        assert CLI_WORDS[name] in parsed.failure.message


@pytest.mark.parametrize("name", STATUS_FAILURES)
def test_failure_carries_the_providers_message(name: str) -> None:
    """The error body's message the fake API sent, or, where the CLI drops the body (codex
    for 429 and 500), the status line's words, or the CLI's own (see CLI_WORDS)."""
    failure = parse_sample(name).failure
    assert failure is not None
    status = INDEX[name]["fake"]["status"]
    provider_says = error_kind(status).message  # e.g. "Unauthorized (fake API)."
    if INDEX[name]["cli"] == "codex" and status == 429:
        provider_says = f"{status} {HTTPStatus(status).phrase}"
    elif INDEX[name]["cli"] == "codex" and status == 500:
        provider_says = CLI_WORDS[name]
    assert provider_says in failure.message


def test_codex_last_message_file_matches_the_parsed_text() -> None:
    name = "codex-exec-json-last-message"
    written = (SAMPLES / INDEX[name]["last_message"]).read_text()
    assert parse_sample(name).text == written.strip() == INDEX[name]["fake"]["reply"]


# --- usage, cost, model, session ------------------------------------------------------


@pytest.mark.parametrize("name", [n for n in SUCCESSES if INDEX[n]["cli"] == "claude"])
def test_claude_reports_its_own_cost(name: str) -> None:
    parsed = parse_sample(name)
    result = [e for e in sample_json(name) if e.get("type") == "result"][-1]
    assert parsed.cost_source == "reported"
    assert parsed.cost_usd == pytest.approx(result["total_cost_usd"])
    assert parsed.cost_usd is not None
    assert parsed.cost_usd > 0


@pytest.mark.parametrize("name", [n for n in SUCCESSES if INDEX[n]["cli"] != "claude"])
def test_codex_and_gemini_leave_the_cost_to_the_price_list(name: str) -> None:
    parsed = parse_sample(name)
    assert (parsed.cost_usd, parsed.cost_source) == (None, None)


def sample_json(name: str) -> list[dict[str, Any]]:
    """A claude sample's JSON objects: one document, an array, or JSON lines."""
    text = (SAMPLES / INDEX[name]["stdout"]).read_text().strip()
    try:
        whole = json.loads(text)
    except json.JSONDecodeError:
        return [json.loads(line) for line in text.splitlines()]
    return whole if isinstance(whole, list) else [whole]


@pytest.mark.parametrize(
    ("name", "model"),
    [
        ("claude-json-model-sonnet", "claude-sonnet-5-5"),  # asked for the alias `sonnet`
        ("codex-exec-json-model", "gpt-6.2-sol"),  # not in the output: the requested one
        ("codex-exec-json", None),  # nothing requested, nothing said
        ("gemini-json-model-flash", "gemini-2.5-flash"),
    ],
)
def test_model_that_answered(name: str, model: str | None) -> None:
    assert parse_sample(name).model == model


@pytest.mark.parametrize("name", ["gemini-json", "gemini-stream-json"])
def test_gemini_auto_model_is_the_main_call_not_the_router(name: str) -> None:
    utility, main = INDEX[name]["requests"]
    assert (utility["utility"], main["utility"]) == (True, False)
    assert utility["model"] != main["model"]
    parsed = parse_sample(name)
    assert parsed.model == main["model"]
    assert parsed.usage == expected_usage(name)  # both calls counted
    assert parsed.usage is not None
    assert parsed.usage.output_tokens == utility["usage"][1] + main["usage"][1]


def test_claude_model_is_the_one_with_most_output() -> None:
    result = sample_json("claude-json")[-1]
    (model,) = result["modelUsage"]
    row = result["modelUsage"][model]
    small = {**row, "outputTokens": 1, "inputTokens": 5, "costUSD": 0.001}
    result = {**result, "modelUsage": {"claude-fallback-x": row, model: small}}
    parsed = _parse("claude", json.dumps(result))
    assert parsed.model == "claude-fallback-x"
    assert parsed.usage is not None
    assert parsed.usage.input_tokens == row["inputTokens"] + 5  # every model's tokens


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
CLAUDE_STREAM = ["--output-format", "stream-json", "--verbose", "--include-partial-messages"]
CLAUDE_ENV = {"CLAUDE_CODE_MAX_RETRIES": "0", "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1"}
GEMINI_ENV = {"GEMINI_CLI_HOME": "/runs/t-1.1/gemini-home", "GEMINI_CLI_NO_RELAUNCH": "true"}

BUILD_CASES: list[tuple[str, dict[str, Any], str | None, list[str], dict[str, str]]] = [
    ("claude", {}, None, ["claude", "-p", *CLAUDE_STREAM], CLAUDE_ENV),
    (
        "claude",
        {"permission_mode": "acceptEdits", "max_turns": 5, "base_url": BASE,
         "extra_args": ["--no-session-persistence"], "sandbox": "ignored"},
        "claude-sonnet-4-5",
        ["claude", "-p", *CLAUDE_STREAM, "--model", "claude-sonnet-4-5",
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
    ("gemini", {}, None, ["gemini", "-o", "stream-json", "--skip-trust"], GEMINI_ENV),
    (
        "gemini",
        {"approval_mode": "auto_edit", "base_url": BASE, "extra_args": ["--sandbox"]},
        "gemini-2.5-flash",
        ["gemini", "-o", "stream-json", "--skip-trust", "-m", "gemini-2.5-flash",
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
        (
            "claude-help.txt",
            [
                "-p, --print",
                "--output-format",
                "stream-json",
                "--verbose",
                "--include-partial-messages",
                "--model",
                "--permission-mode",
                "--max-budget-usd",
            ],
        ),
        ("codex-help.txt", ["-a, --ask-for-approval", "-c, --config", "exec"]),
        ("codex-exec-help.txt", ["--json", "--skip-git-repo-check", "--sandbox", "--model"]),
        (
            "gemini-help.txt",
            ["--output-format", "stream-json", "--skip-trust", "--model", "--approval-mode"],
        ),
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


# --- closed usage windows ---------------------------------------------------------------


def test_every_cli_has_a_usage_window_sample_that_names_its_reset() -> None:
    assert {INDEX[name]["cli"] for name in WINDOWS} == {"claude", "codex", "gemini"}


@pytest.mark.parametrize("name", WINDOWS)
def test_usage_window_says_when_it_opens(name: str) -> None:
    """Where the CLI printed the reset as a time of day, the failure's reset is that time
    (to the end of its minute, in the zone the CLI named, else ours); where it printed a
    wait (gemini's "Please retry in 7200s."), the failure names that wait."""
    failure = parse_sample(name).failure
    assert failure is not None
    closed_for = INDEX[name]["fake"]["limit_closed_for_s"]
    message = failure.message.lower().replace(" ", "")
    if failure.retry_after_s is not None:  # a wait: from the moment the attempt ended
        assert (failure.retry_after_s, failure.resets_at) == (closed_for, None)
        return
    assert failure.resets_at is not None
    if failure.window is None:  # a time of day (and a date, when days away)
        stamp = datetime.fromtimestamp(failure.resets_at - 60, UTC)
        assert f"{stamp:%I:%M%p}".lstrip("0").lower() in message, (stamp, message)
        if closed_for > 86400:  # a date (codex's with its year: a past moment in time)
            assert f"{stamp:%b} {stamp.day}".lower().replace(" ", "") in message
        else:  # a time of day: the next one
            assert 0 < failure.resets_at - time.time() <= 86400 + 60
    else:  # claude's rate_limit_event: the epoch of the plan's window
        assert failure.window == "five_hour"
        assert failure.whole_tool
        assert failure.resets_at == _rate_limit_event(name)["resetsAt"]


def _rate_limit_event(name: str) -> dict[str, Any]:
    events = [o for o in sample_json(name) if o.get("type") == "rate_limit_event"]
    info: dict[str, Any] = events[-1]["rate_limit_info"]
    assert info["status"] == "rejected"
    return info


def test_codex_usage_limit_holds_for_the_whole_account() -> None:
    failure = parse_sample("codex-exec-json-usage-limit").failure
    assert failure is not None
    assert failure.whole_tool


def test_gemini_daily_quota_without_a_wait_opens_at_pacific_midnight() -> None:
    error = {"error": {"type": "Error", "message": "You have exhausted your daily quota on this "
                       "model.", "code": 429}}  # fmt: skip
    failure = _parse("gemini", "", json.dumps(error), 1).failure
    assert failure is not None
    assert failure.kind == K.USAGE_LIMIT
    assert failure.resets_at is not None
    opens = datetime.fromtimestamp(failure.resets_at, ZoneInfo("America/Los_Angeles"))
    assert (opens.hour, opens.minute) == (0, 0)
    assert 0 < failure.resets_at - time.time() <= 86400 + 3600


def test_a_rate_limit_without_usage_words_stays_a_rate_limit() -> None:
    failure = parse_sample("claude-json-usage-limit").failure  # an API key: no plan headers
    assert failure is not None
    assert (failure.kind, failure.resets_at) == (K.RATE_LIMIT, None)
