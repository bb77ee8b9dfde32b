"""The fake LLM API: its HTTP behaviour, and each real CLI completing a prompt against it."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest

from tests import realcli
from tests.conftest import wait_for
from tests.fake_llm_api import (
    DEFAULT_USAGE,
    FakeLLMAPI,
    Markers,
    RecordedRequest,
    Usage,
    parse_markers,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping
    from pathlib import Path

PROMPT = "FAKE_REPLY=pong FAKE_USAGE=1234,56,7,8"
ERROR_PROMPT = "FAKE_STATUS=429"


@pytest.fixture
def api() -> Iterator[FakeLLMAPI]:
    with FakeLLMAPI() as server:
        yield server


# --------------------------------------------------------------------------- HTTP helpers


@dataclass(frozen=True)
class Reply:
    status: int
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def sse(self) -> list[tuple[str | None, Any]]:
        """The (event name, parsed data) of each server-sent event."""
        events: list[tuple[str | None, Any]] = []
        for frame in self.body.decode().split("\n\n"):
            lines = dict(line.split(": ", 1) for line in frame.splitlines() if ": " in line)
            if "data" in lines:
                events.append((lines.get("event"), json.loads(lines["data"])))
        return events


def post(api: FakeLLMAPI, path: str, body: object, *, method: str = "POST") -> Reply:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        api.base_url + path, data=data, method=method, headers={"content-type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return Reply(response.status, dict(response.headers), response.read())
    except urllib.error.HTTPError as error:
        with error:
            return Reply(error.code, dict(error.headers), error.read())


def anthropic_body(prompt: str, *, stream: bool = True, model: str = "claude-x") -> object:
    return {
        "model": model,
        "stream": stream,
        "system": [{"type": "text", "text": "system FAKE_REPLY=from-system"}],
        "messages": [
            {"role": "user", "content": "earlier FAKE_REPLY=from-history"},
            {"role": "assistant", "content": [{"type": "text", "text": "ok"}]},
            {"role": "user", "content": [{"type": "text", "text": prompt}]},
        ],
    }


def openai_body(prompt: str, *, stream: bool = True, model: str = "gpt-x") -> object:
    def message(role: str, text: str) -> object:
        return {"type": "message", "role": role, "content": [{"type": "input_text", "text": text}]}

    return {
        "model": model,
        "stream": stream,
        "instructions": "system FAKE_REPLY=from-instructions",
        "input": [
            message("developer", "FAKE_REPLY=from-developer"),
            message("user", "earlier FAKE_REPLY=from-history"),
            message("user", prompt),
        ],
    }


def gemini_body(prompt: str, *, schema: object = None) -> object:
    body: dict[str, object] = {
        "systemInstruction": {"parts": [{"text": "system FAKE_REPLY=from-system"}]},
        "contents": [
            {"role": "user", "parts": [{"text": "earlier FAKE_REPLY=from-history"}]},
            {"role": "model", "parts": [{"text": "ok"}]},
            {"role": "user", "parts": [{"text": "context"}, {"text": prompt}]},
        ],
    }
    if schema is not None:
        body["generationConfig"] = {
            "responseMimeType": "application/json",
            "responseJsonSchema": schema,
        }
    return body


GEMINI_STREAM = "/v1beta/models/gemini-x:streamGenerateContent?alt=sse"
GEMINI_GENERATE = "/v1beta/models/gemini-x:generateContent"


def call_provider(api: FakeLLMAPI, provider: str, prompt: str) -> Reply:
    if provider == "anthropic":
        return post(api, "/v1/messages?beta=true", anthropic_body(prompt))
    if provider == "openai":
        return post(api, "/v1/responses", openai_body(prompt))
    return post(api, GEMINI_STREAM, gemini_body(prompt))


PROVIDERS = ("anthropic", "openai", "gemini")


# --------------------------------------------------------------------------- markers


def test_parse_markers_defaults() -> None:
    assert parse_markers("just a prompt") == Markers()
    assert Markers().usage == DEFAULT_USAGE == Usage(100, 20, 0, 0)
    assert Markers().retry_after == 7


def test_parse_markers_reads_every_marker() -> None:
    text = "x FAKE_REPLY=pong FAKE_USAGE=1,2,3,4 FAKE_STATUS=503 FAKE_RETRY_AFTER=2 FAKE_DELAY=0.5"
    assert parse_markers(text) == Markers(
        reply="pong", usage=Usage(1, 2, 3, 4), status=503, retry_after=2, delay=0.5
    )


def test_first_marker_wins() -> None:
    assert parse_markers("FAKE_REPLY=a FAKE_REPLY=b").reply == "a"


def test_status_marker_takes_only_error_codes() -> None:
    assert parse_markers("FAKE_STATUS=200").status is None
    assert parse_markers("FAKE_STATUS=418").status == 418


def test_provider_status_markers() -> None:
    markers = parse_markers(
        "FAKE_STATUS=503 FAKE_STATUS_ANTHROPIC=429 FAKE_STATUS_GEMINI=500 FAKE_STATUS_GEMINI=401"
    )
    assert markers.status == 503  # FAKE_STATUS_<PROVIDER> is not FAKE_STATUS
    assert markers.provider_status == {"anthropic": 429, "gemini": 500}  # first one wins
    assert [markers.status_for(p) for p in ("anthropic", "openai", "gemini")] == [429, 503, 500]
    only = parse_markers("FAKE_STATUS_OPENAI=529 FAKE_STATUS_ANTHROPIC=200")
    assert only.status is None
    assert [only.status_for(p) for p in ("anthropic", "openai", "gemini")] == [None, 529, None]
    assert parse_markers("FAKE_REPLY=x") == Markers(reply="x")


# --------------------------------------------------------------------------- Anthropic


def test_anthropic_stream_events(api: FakeLLMAPI) -> None:
    reply = post(api, "/v1/messages?beta=true", anthropic_body(PROMPT, model="claude-y"))

    assert reply.status == 200
    assert reply.headers["content-type"].startswith("text/event-stream")
    events = reply.sse()
    names = [name for name, _ in events]
    assert names == [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert all(name == data["type"] for name, data in events)
    assert events[0][1]["message"]["model"] == "claude-y"
    assert events[2][1]["delta"] == {"type": "text_delta", "text": "pong"}
    assert events[4][1]["delta"]["stop_reason"] == "end_turn"
    assert events[4][1]["usage"] == {
        "input_tokens": 1234,
        "output_tokens": 56,
        "cache_read_input_tokens": 7,
        "cache_creation_input_tokens": 8,
    }


def test_anthropic_json_default_reply(api: FakeLLMAPI) -> None:
    reply = post(api, "/v1/messages", anthropic_body("hello", stream=False))

    assert reply.status == 200
    message = reply.json()
    assert message["model"] == "claude-x"
    assert message["content"] == [{"type": "text", "text": "Hello from the fake anthropic API."}]
    assert message["stop_reason"] == "end_turn"
    assert message["usage"] == {
        "input_tokens": 100,
        "output_tokens": 20,
        "cache_read_input_tokens": 0,
        "cache_creation_input_tokens": 0,
    }


def test_anthropic_stream_splits_text_into_deltas(api: FakeLLMAPI) -> None:
    events = post(api, "/v1/messages", anthropic_body("hello")).sse()

    deltas = [data["delta"]["text"] for name, data in events if name == "content_block_delta"]
    assert len(deltas) > 1
    assert "".join(deltas) == "Hello from the fake anthropic API."


# --------------------------------------------------------------------------- OpenAI


def test_openai_responses_stream(api: FakeLLMAPI) -> None:
    reply = post(api, "/v1/responses", openai_body(PROMPT, model="gpt-y"))

    assert reply.status == 200
    events = [data for _, data in reply.sse()]
    types = [event["type"] for event in events]
    assert types[0] == "response.created"
    assert types[-2:] == ["response.output_item.done", "response.completed"]
    assert "response.output_text.delta" in types
    assert [event["sequence_number"] for event in events] == list(range(len(events)))
    text = "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")
    assert text == "pong"
    assert events[-2]["item"]["content"][0]["text"] == "pong"
    completed = events[-1]["response"]
    assert completed["model"] == "gpt-y"
    assert completed["status"] == "completed"
    assert completed["usage"] == {
        "input_tokens": 1234 + 7 + 8,
        "input_tokens_details": {"cached_tokens": 7, "cache_write_tokens": 8},
        "output_tokens": 56,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": 1234 + 7 + 8 + 56,
    }


def test_openai_responses_json(api: FakeLLMAPI) -> None:
    reply = post(api, "/v1/responses", openai_body("hi", stream=False))

    response = reply.json()
    assert response["model"] == "gpt-x"
    assert response["output"][0]["content"][0]["text"] == "Hello from the fake openai API."
    assert response["usage"]["input_tokens"] == 100


def test_openai_plain_string_input(api: FakeLLMAPI) -> None:
    reply = post(api, "/v1/responses", {"model": "m", "input": "FAKE_REPLY=plain"})

    assert reply.json()["output"][0]["content"][0]["text"] == "plain"


# --------------------------------------------------------------------------- Chat Completions


def chat_body(prompt: str, *, stream: bool = True, usage: bool = True) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": "chat-x",
        "stream": stream,
        "messages": [
            {"role": "system", "content": "system FAKE_REPLY=from-system"},
            {"role": "user", "content": "earlier FAKE_REPLY=from-history"},
            {"role": "assistant", "content": "ok"},
            {"role": "user", "content": [{"type": "text", "text": prompt}]},
        ],
    }
    if usage:
        body["stream_options"] = {"include_usage": True}
    return body


def chat_chunks(reply: Reply) -> tuple[list[Any], str]:
    """The JSON chunks of a Chat Completions stream, and its last frame's data."""
    datas = [f.removeprefix("data: ") for f in reply.body.decode().split("\n\n") if f]
    return [json.loads(d) for d in datas[:-1]], datas[-1]


def test_chat_completions_stream_with_usage(api: FakeLLMAPI) -> None:
    reply = post(api, "/v1/chat/completions", chat_body(PROMPT))

    assert reply.status == 200 and reply.headers["content-type"].startswith("text/event-stream")
    chunks, last = chat_chunks(reply)
    assert last == "[DONE]"
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"}
    assert {c["model"] for c in chunks} == {"chat-x"}
    deltas = [c["choices"][0]["delta"] for c in chunks if c["choices"]]
    assert deltas[0] == {"role": "assistant", "content": ""}
    assert "".join(d.get("content", "") for d in deltas) == "pong"
    assert [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]][-1] == "stop"
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"] == {
        "prompt_tokens": 1234 + 7 + 8,
        "completion_tokens": 56,
        "total_tokens": 1234 + 7 + 8 + 56,
        "prompt_tokens_details": {"cached_tokens": 7},
        "completion_tokens_details": {"reasoning_tokens": 0},
    }
    (recorded,) = api.requests
    assert (recorded.provider, recorded.path, recorded.stream) == (
        "openai", "/v1/chat/completions", True)  # fmt: skip
    assert "from-system" not in recorded.prompt and "from-history" not in recorded.prompt


def test_chat_completions_stream_without_usage_and_json(api: FakeLLMAPI) -> None:
    chunks, _ = chat_chunks(post(api, "/v1/chat/completions", chat_body("hi", usage=False)))
    assert all("usage" not in c for c in chunks)

    reply = post(api, "/chat/completions", chat_body("FAKE_REPLY=whole", stream=False))
    answer = reply.json()
    assert answer["object"] == "chat.completion"
    assert answer["choices"][0]["message"] == {"role": "assistant", "content": "whole"}
    assert answer["choices"][0]["finish_reason"] == "stop"
    assert answer["usage"]["prompt_tokens"] == 100 and answer["usage"]["completion_tokens"] == 20


def test_chat_completions_tool_call_then_answer(api: FakeLLMAPI) -> None:
    prompt = 'FAKE_REPLY=done FAKE_TOOL=read:{"path":"a.txt"}'
    chunks, _ = chat_chunks(post(api, "/v1/chat/completions", chat_body(prompt)))
    calls = [c["choices"][0]["delta"]["tool_calls"] for c in chunks if c["choices"]
             and "tool_calls" in c["choices"][0]["delta"]]  # fmt: skip
    assert calls[0][0]["function"] == {"name": "read", "arguments": '{"path": "a.txt"}'}
    assert [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]][-1] == "tool_calls"
    body = chat_body(prompt)
    body["messages"].append({"role": "tool", "tool_call_id": "call_fake_1", "content": "x"})
    chunks, _ = chat_chunks(post(api, "/v1/chat/completions", body))
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"]) == (
        "done")  # fmt: skip


@pytest.mark.parametrize("marker", ["FAKE_STATUS=429", "FAKE_STATUS_OPENAI=429"])
def test_chat_completions_errors_are_openai_errors(api: FakeLLMAPI, marker: str) -> None:
    reply = post(api, "/v1/chat/completions", chat_body(f"{marker} FAKE_RETRY_AFTER=2"))

    assert reply.status == 429 and reply.headers["retry-after"] == "2"
    error_body_shape("openai", 429, reply.json())
    assert post(api, "/v1/messages", anthropic_body(marker)).status == (
        429 if marker == "FAKE_STATUS=429" else 200)  # fmt: skip


# --------------------------------------------------------------------------- Gemini


GEMINI_USAGE = {
    "promptTokenCount": 1234 + 7 + 8,
    "cachedContentTokenCount": 7,
    "candidatesTokenCount": 56,
    "thoughtsTokenCount": 0,
    "totalTokenCount": 1234 + 7 + 8 + 56,
}


def test_gemini_stream_sse(api: FakeLLMAPI) -> None:
    reply = post(api, GEMINI_STREAM, gemini_body(PROMPT))

    assert reply.status == 200
    chunks = [data for _, data in reply.sse()]
    text = "".join(c["candidates"][0]["content"]["parts"][0]["text"] for c in chunks)
    assert text == "pong"
    last = chunks[-1]
    assert last["candidates"][0]["finishReason"] == "STOP"
    assert last["modelVersion"] == "gemini-x"
    assert last["usageMetadata"] == GEMINI_USAGE


def test_gemini_generate_content(api: FakeLLMAPI) -> None:
    reply = post(api, GEMINI_GENERATE, gemini_body("hi"))

    answer = reply.json()
    assert answer["candidates"][0]["content"] == {
        "role": "model",
        "parts": [{"text": "Hello from the fake gemini API."}],
    }
    assert answer["modelVersion"] == "gemini-x"
    assert answer["usageMetadata"]["promptTokenCount"] == 100


def test_gemini_router_call_gets_schema_json(api: FakeLLMAPI) -> None:
    schema = {
        "type": "OBJECT",
        "properties": {
            "complexity_reasoning": {"type": "STRING"},
            "complexity_score": {"type": "INTEGER"},
        },
        "required": ["complexity_reasoning", "complexity_score"],
    }
    reply = post(
        api, "/v1beta/models/router:generateContent", gemini_body("FAKE_REPLY=x", schema=schema)
    )

    text = reply.json()["candidates"][0]["content"]["parts"][0]["text"]
    assert json.loads(text) == {"complexity_reasoning": "fake", "complexity_score": 1}


def test_gemini_schema_enum_takes_first_value(api: FakeLLMAPI) -> None:
    schema = {
        "type": "object",
        "properties": {"model_choice": {"type": "string", "enum": ["flash", "pro"]}},
    }
    reply = post(api, GEMINI_GENERATE, gemini_body("hi", schema=schema))

    text = reply.json()["candidates"][0]["content"]["parts"][0]["text"]
    assert json.loads(text) == {"model_choice": "flash"}


# --------------------------------------------------------------------------- all providers


@pytest.mark.parametrize("provider", PROVIDERS)
def test_markers_come_from_the_last_user_message_only(api: FakeLLMAPI, provider: str) -> None:
    call_provider(api, provider, "FAKE_REPLY=from-prompt")

    (recorded,) = api.requests
    assert recorded.provider == provider
    assert "FAKE_REPLY=from-prompt" in recorded.prompt
    for elsewhere in ("from-system", "from-history", "from-developer", "from-instructions"):
        assert elsewhere not in recorded.prompt


def error_body_shape(provider: str, status: int, body: Any) -> None:
    if provider == "anthropic":
        assert body["type"] == "error"
        assert body["error"]["type"]
        assert body["error"]["message"]
    elif provider == "openai":
        assert set(body["error"]) == {"message", "type", "param", "code"}
    else:
        assert body["error"]["code"] == status
        assert body["error"]["status"]


@pytest.mark.parametrize("status", [400, 401, 404, 429, 500, 503, 529])
@pytest.mark.parametrize("provider", PROVIDERS)
def test_error_markers(api: FakeLLMAPI, provider: str, status: int) -> None:
    reply = call_provider(api, provider, f"FAKE_STATUS={status}")

    assert reply.status == status
    assert reply.headers["content-type"] == "application/json"
    error_body_shape(provider, status, reply.json())
    if status in (429, 503, 529):
        assert reply.headers["retry-after"] == "7"
    else:
        assert "retry-after" not in reply.headers
    assert api.requests[-1].status == status


@pytest.mark.parametrize("failing", PROVIDERS)
def test_provider_status_marker_fails_only_that_provider(api: FakeLLMAPI, failing: str) -> None:
    prompt = f"FAKE_REPLY=ok FAKE_STATUS_{failing.upper()}=429"
    statuses = {provider: call_provider(api, provider, prompt).status for provider in PROVIDERS}

    assert statuses == {p: 429 if p == failing else 200 for p in PROVIDERS}
    assert {r.provider: r.status for r in api.requests} == statuses


def test_anthropic_error_types(api: FakeLLMAPI) -> None:
    types = {
        status: call_provider(api, "anthropic", f"FAKE_STATUS={status}").json()["error"]["type"]
        for status in (401, 429, 529)
    }
    assert types == {401: "authentication_error", 429: "rate_limit_error", 529: "overloaded_error"}


@pytest.mark.parametrize("provider", PROVIDERS)
def test_retry_after_marker(api: FakeLLMAPI, provider: str) -> None:
    reply = call_provider(api, provider, "FAKE_STATUS=529 FAKE_RETRY_AFTER=3")

    assert reply.headers["retry-after"] == "3"


def test_delay_marker(api: FakeLLMAPI) -> None:
    started = time.monotonic()
    reply = call_provider(api, "openai", "FAKE_DELAY=0.3")

    assert reply.status == 200
    assert time.monotonic() - started >= 0.3


def test_stop_cuts_a_delay_short() -> None:
    api = FakeLLMAPI().start()
    replies: list[Reply] = []
    waiter = threading.Thread(
        target=lambda: replies.append(call_provider(api, "anthropic", "FAKE_DELAY=30"))
    )
    waiter.start()
    wait_for(lambda: api.arrivals, timeout=10, what="the request")  # in, and sleeping
    assert api.arrivals == [("anthropic", "FAKE_DELAY=30")]
    assert api.requests == []  # recorded once answered
    started = time.monotonic()

    api.stop()
    waiter.join(timeout=5)

    assert time.monotonic() - started < 2
    assert not waiter.is_alive()
    assert [reply.status for reply in replies] == [200]


def test_requests_are_recorded(api: FakeLLMAPI) -> None:
    call_provider(api, "anthropic", PROMPT)
    call_provider(api, "gemini", "FAKE_STATUS=500")

    first, second = api.requests
    assert (first.provider, first.method, first.path, first.query) == (
        "anthropic",
        "POST",
        "/v1/messages",
        "beta=true",
    )
    assert (first.model, first.prompt, first.stream, first.status) == (
        "claude-x",
        PROMPT,
        True,
        200,
    )
    assert first.headers["content-type"] == "application/json"
    assert first.body["model"] == "claude-x"
    assert (second.provider, second.model, second.stream, second.status) == (
        "gemini",
        "gemini-x",
        True,
        500,
    )
    assert second.prompt == "context\nFAKE_STATUS=500"
    assert api.arrivals == [("anthropic", PROMPT), ("gemini", second.prompt)]
    api.clear()
    assert api.requests == []
    assert api.arrivals == []


def test_unknown_path_is_404_json_and_recorded(
    api: FakeLLMAPI, capfd: pytest.CaptureFixture[str]
) -> None:
    reply = post(api, "/v1/models", None, method="GET")

    assert reply.status == 404
    assert reply.json()["error"]["code"] == 404
    (recorded,) = api.requests
    assert (recorded.provider, recorded.method, recorded.path, recorded.status) == (
        "unknown",
        "GET",
        "/v1/models",
        404,
    )
    assert "/v1/models" in capfd.readouterr().err


def test_base_url_and_port(api: FakeLLMAPI) -> None:
    assert api.base_url == f"http://127.0.0.1:{api.port}"
    assert api.port > 0


def test_standalone_server_prints_port_and_stops_on_sigterm() -> None:
    server = subprocess.Popen(
        [sys.executable, "-m", "tests.fake_llm_api", "--port", "0"],
        cwd=realcli.REPO_ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline())
        url = f"http://127.0.0.1:{port}/v1/responses"
        data = json.dumps(openai_body("FAKE_REPLY=up", stream=False)).encode()
        with urllib.request.urlopen(url, data=data, timeout=10) as response:
            assert json.load(response)["output"][0]["content"][0]["text"] == "up"
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=10) == 0
    finally:
        server.kill()
        server.wait()
        if server.stdout is not None:
            server.stdout.close()


# --------------------------------------------------------------------------- real CLIs


@dataclass(frozen=True)
class CliRun:
    result: subprocess.CompletedProcess[str]
    api: FakeLLMAPI

    @property
    def output(self) -> str:
        return self.result.stdout + self.result.stderr

    def json_lines(self) -> list[Any]:
        return [json.loads(line) for line in self.result.stdout.splitlines() if line.strip()]


@pytest.fixture
def run_cli(api: FakeLLMAPI, tmp_path: Path) -> Callable[..., CliRun]:
    """Run a real CLI with an isolated HOME and working folder against ``api``."""
    home = tmp_path / "home"
    work = tmp_path / "work"
    work.mkdir()
    realcli.write_gemini_settings(home, max_attempts=1)
    env = realcli.isolated_env(home, api.base_url, extra=realcli.FAIL_FAST_ENV)

    def run(*argv: str, stdin: str | None = None) -> CliRun:
        result = realcli.run_cli(argv, env=env, cwd=work, stdin=stdin)
        return CliRun(result, api)

    return run


def only_request(run: CliRun, provider: str) -> RecordedRequest:
    (recorded,) = run.api.requests
    assert recorded.provider == provider
    assert recorded.stream
    return recorded


def claude_result(run: CliRun, output_format: str) -> Any:
    if output_format == "json":
        return json.loads(run.result.stdout)
    (result,) = [line for line in run.json_lines() if line["type"] == "result"]
    return result


CLAUDE_USAGE = {  # PROMPT's usage in Anthropic's convention: input excludes the cache
    "input_tokens": 1234,
    "output_tokens": 56,
    "cache_read_input_tokens": 7,
    "cache_creation_input_tokens": 8,
}
CLAUDE_FORMATS = {
    "json": ["--output-format", "json"],
    "stream-json": ["--output-format", "stream-json", "--verbose"],
}


@pytest.mark.real_cli
@pytest.mark.parametrize("output_format", list(CLAUDE_FORMATS))
def test_claude_completes_a_prompt(run_cli: Callable[..., CliRun], output_format: str) -> None:
    run = run_cli("claude", "-p", PROMPT, *CLAUDE_FORMATS[output_format])

    assert run.result.returncode == 0, run.output
    result = claude_result(run, output_format)
    assert result["is_error"] is False
    assert result["result"] == "pong"
    assert {key: result["usage"][key] for key in CLAUDE_USAGE} == CLAUDE_USAGE
    recorded = only_request(run, "anthropic")
    assert recorded.path == "/v1/messages"
    assert recorded.query == "beta=true"
    assert PROMPT in recorded.prompt
    (model,) = result["modelUsage"]
    assert model == recorded.model
    assert result["modelUsage"][model]["inputTokens"] == 1234


@pytest.mark.real_cli
def test_claude_reports_http_429(run_cli: Callable[..., CliRun]) -> None:
    run = run_cli("claude", "-p", ERROR_PROMPT, "--output-format", "json")

    assert run.result.returncode == 1
    result = json.loads(run.result.stdout)
    assert result["is_error"] is True
    assert result["api_error_status"] == 429
    assert "429" in result["result"]
    assert only_request(run, "anthropic").status == 429


def codex_exec(api: FakeLLMAPI) -> list[str]:
    return [
        "codex",
        "exec",
        "--json",
        "--skip-git-repo-check",
        *realcli.codex_config_args(api.base_url),
        "-m",
        "gpt-5.5",
        "-",
    ]


@pytest.mark.real_cli
def test_codex_completes_a_prompt(run_cli: Callable[..., CliRun], api: FakeLLMAPI) -> None:
    run = run_cli(*codex_exec(api), stdin=PROMPT)

    assert run.result.returncode == 0, run.output
    events = run.json_lines()
    messages = [
        e["item"]["text"] for e in events if e.get("item", {}).get("type") == "agent_message"
    ]
    assert messages[-1] == "pong"
    (turn,) = [e for e in events if e["type"] == "turn.completed"]
    assert turn["usage"] == {
        "input_tokens": 1234 + 7 + 8,
        "cached_input_tokens": 7,
        "cache_write_input_tokens": 8,
        "output_tokens": 56,
        "reasoning_output_tokens": 0,
    }
    recorded = only_request(run, "openai")
    assert (recorded.path, recorded.model, recorded.prompt) == ("/v1/responses", "gpt-5.5", PROMPT)
    assert recorded.headers["authorization"] == f"Bearer {realcli.OPENAI_FAKE_KEY}"


@pytest.mark.real_cli
def test_codex_reports_http_429(run_cli: Callable[..., CliRun], api: FakeLLMAPI) -> None:
    run = run_cli(*codex_exec(api), stdin=ERROR_PROMPT)

    assert run.result.returncode == 1
    (failed,) = [e for e in run.json_lines() if e["type"] == "turn.failed"]
    assert "429" in failed["error"]["message"]
    assert only_request(run, "openai").status == 429


GEMINI_ARGS = ("-o", "json", "--skip-trust", "-m", "gemini-2.5-flash")


@pytest.mark.real_cli
def test_gemini_completes_a_prompt(run_cli: Callable[..., CliRun]) -> None:
    run = run_cli("gemini", "-p", PROMPT, *GEMINI_ARGS)

    assert run.result.returncode == 0, run.output
    answer = json.loads(run.result.stdout)
    assert answer["response"] == "pong"
    tokens = answer["stats"]["models"]["gemini-2.5-flash"]["tokens"]
    assert tokens == {
        "input": 1234 + 8,  # the CLI's prompt - cached: cache writes are plain prompt tokens
        "prompt": 1234 + 7 + 8,
        "candidates": 56,
        "total": 1234 + 7 + 8 + 56,
        "cached": 7,
        "thoughts": 0,
        "tool": 0,
    }
    recorded = only_request(run, "gemini")
    assert recorded.path == "/v1beta/models/gemini-2.5-flash:streamGenerateContent"
    assert recorded.query == "alt=sse"
    assert PROMPT in recorded.prompt


def last_json_object(text: str) -> Any:
    """The pretty-printed JSON object that ends ``text`` (gemini's error report on stderr)."""
    start = text.rindex("\n{") + 1 if not text.startswith("{") else 0
    return json.loads(text[start:])


@pytest.mark.real_cli
def test_gemini_reports_http_429(run_cli: Callable[..., CliRun]) -> None:
    run = run_cli("gemini", "-p", ERROR_PROMPT, *GEMINI_ARGS)

    assert run.result.returncode == 429 % 256, run.output
    assert run.result.stdout == ""
    assert last_json_object(run.result.stderr)["error"]["code"] == 429
    assert only_request(run, "gemini").status == 429


def test_fake_cache_reads_the_prefix_an_earlier_request_sent() -> None:
    """FAKE_CACHE: the usage is measured, and a conversation's earlier part, sent again,
    is read from the cache."""
    first = {"role": "user", "content": "FAKE_CACHE FAKE_REPLY=ok " + "x" * 4000}
    with FakeLLMAPI() as api:
        one = post(api, "/v1/messages", {"model": "m", "messages": [first]}).json()
        again = [first, {"role": "assistant", "content": "ok"},
                 {"role": "user", "content": "FAKE_CACHE now more"}]  # fmt: skip
        two = post(api, "/v1/messages", {"model": "m", "messages": again}).json()
    assert one["usage"]["cache_read_input_tokens"] == 0
    assert one["usage"]["input_tokens"] > 1000
    assert two["usage"]["cache_read_input_tokens"] > 1000  # the first message, again
    assert two["usage"]["input_tokens"] < 100  # only what is new
