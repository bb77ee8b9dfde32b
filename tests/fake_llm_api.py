"""A small deterministic fake LLM API for tests that drive the real agent CLIs offline.

It speaks just enough of three provider APIs, streaming (SSE) included, for Claude Code,
Codex and Gemini CLI to complete a prompt:

* Anthropic Messages: ``POST /v1/messages`` (a ``?beta=true`` query is ignored), SSE when
  the body says ``"stream": true``, one JSON message otherwise.
* OpenAI Responses: ``POST /v1/responses``, SSE when ``"stream": true``.
* OpenAI Chat Completions: ``POST /v1/chat/completions`` (also without ``/v1``), SSE
  chunks with ``choices[].delta`` and ``data: [DONE]`` when ``"stream": true``; a last
  chunk with ``usage`` and no choices when ``stream_options.include_usage`` is true.
* Gemini: ``POST /v1beta/models/<model>:streamGenerateContent?alt=sse`` and
  ``:generateContent`` (``/v1`` and ``/v1alpha`` are accepted too).

Anything else is answered ``404`` with a JSON error, logged on stderr and recorded.

Every answer names the model the request asked for (Anthropic ``message.model``, OpenAI
``response.model``, Chat Completions ``model``, Gemini ``modelVersion``).

Markers
-------
What the server answers is decided by markers found in the text of the request's *last user
message that carries text* (Anthropic ``messages``, OpenAI ``input``, Chat Completions
``messages``, Gemini ``contents``);
system prompts, instructions and earlier messages are never searched. When a marker occurs
more than once, the first occurrence wins. Parallel tests can thus share one server.

``FAKE_REPLY=<word>``
    The answer text is exactly ``<word>`` (everything up to the next whitespace). Default: a
    fixed sentence per provider, ``Hello from the fake <provider> API.`` with ``<provider>``
    one of ``anthropic``, ``openai``, ``gemini``.
``FAKE_USAGE=<in>,<out>,<cache_read>,<cache_write>``
    The token usage to report, as *normalised* numbers: ``in`` counts the input tokens that
    were neither read from nor written to a cache, ``out`` the output tokens. Default
    ``100,20,0,0``. The server converts them into each provider's own convention:

    ===========  ==========================================================================
    Anthropic    ``input_tokens = in``, ``cache_read_input_tokens = cache_read``,
                 ``cache_creation_input_tokens = cache_write``, ``output_tokens = out``
                 (input excludes the cache; both cache counts sit beside it).
    OpenAI       ``input_tokens = in + cache_read + cache_write`` (input INCLUDES the cache),
                 ``input_tokens_details.cached_tokens = cache_read``,
                 ``input_tokens_details.cache_write_tokens = cache_write``,
                 ``output_tokens = out``, ``output_tokens_details.reasoning_tokens = 0``,
                 ``total_tokens = input_tokens + out``.
    OpenAI Chat  ``prompt_tokens = in + cache_read + cache_write`` (INCLUDES the cache),
                 ``prompt_tokens_details.cached_tokens = cache_read``, ``completion_tokens =
                 out``, ``completion_tokens_details.reasoning_tokens = 0``, ``total_tokens
                 = prompt_tokens + out``. No cache-write count: they are plain prompt tokens.
    Gemini       ``promptTokenCount = in + cache_read + cache_write`` (prompt INCLUDES the
                 cache), ``cachedContentTokenCount = cache_read``, ``candidatesTokenCount =
                 out``, ``thoughtsTokenCount = 0``, ``totalTokenCount = promptTokenCount +
                 out``. Gemini has no cache-write count: cache writes are plain prompt tokens.
    ===========  ==========================================================================

``FAKE_STATUS=<code>``
    Answer with that HTTP status (a 4xx or 5xx code; others are ignored) and the provider's
    own JSON error body (Anthropic ``{"type": "error", "error": {"type", "message"}}``,
    OpenAI ``{"error": {"message", "type", "param", "code"}}``, Gemini ``{"error": {"code",
    "message", "status"}}``).
    Known codes: 400, 401, 403, 404, 429, 500, 502, 503, 504, 529; other codes get a generic
    body. 429, 503 and 529 carry a ``retry-after`` header.
``FAKE_STATUS_<PROVIDER>=<code>``
    Like ``FAKE_STATUS``, but only for requests to one provider's API: ``<PROVIDER>`` is
    ``ANTHROPIC``, ``OPENAI`` or ``GEMINI``. For that provider it wins over ``FAKE_STATUS``;
    the other providers ignore it (``OPENAI`` covers Responses and Chat Completions). One
    prompt can thus fail on one CLI and succeed on another (fallback tests), e.g.
    ``FAKE_STATUS_ANTHROPIC=429``.
``FAKE_RETRY_AFTER=<seconds>``
    The ``retry-after`` value of such an error (an integer). Default ``7``.
``FAKE_LIMIT=<name>:<seconds>``
    A usage window: the first request that names window ``<name>`` closes it for
    ``<seconds>`` (an integer) from then; until it reopens, every request naming it gets
    ``429`` in the provider's own "limit reached, resets at ..." shape, afterwards the normal
    answer. Each provider has its own windows. What each provider sends (the reset as an
    epoch ``R`` and as ``S`` seconds from now, rounded up):

    ===========  ==========================================================================
    Anthropic    headers ``retry-after: S``, ``anthropic-ratelimit-unified-status:
                 rejected``, ``anthropic-ratelimit-unified-reset: R`` (with the
                 ``-5h-`` window's status, reset and utilization and
                 ``-representative-claim: five_hour``, as a subscription's responses
                 carry), ``anthropic-ratelimit-requests-remaining: 0`` and
                 ``anthropic-ratelimit-requests-reset`` (RFC 3339, as an API key's do);
                 body ``rate_limit_error``.
    OpenAI       body ``{"error": {"type": "usage_limit_reached", "resets_at": R,
                 "resets_in_seconds": S, "plan_type": "plus", ...}}`` (a ChatGPT plan's),
                 headers ``retry-after: S``, ``x-codex-primary-used-percent: 100``,
                 ``x-codex-primary-reset-after-seconds: S``, ``x-codex-primary-reset-at:
                 R``, ``x-ratelimit-remaining-requests: 0``, ``x-ratelimit-reset-requests:
                 Ss``.
    Gemini       ``RESOURCE_EXHAUSTED`` whose message ends "Please retry in Ss.", with a
                 ``QuotaFailure`` (a per-day quota) and a ``RetryInfo`` (``retryDelay:
                 "Ss"``) in ``details``; header ``retry-after: S``.
    ===========  ==========================================================================
``FAKE_LIMIT_<PROVIDER>=<name>:<seconds>``
    Like ``FAKE_LIMIT``, for one provider's API only (``ANTHROPIC``, ``OPENAI``,
    ``GEMINI``); it wins over ``FAKE_LIMIT`` for that provider.
``FAKE_CACHE``
    Report the usage as measured instead of ``FAKE_USAGE``: the request's tools, system
    prompt and conversation at about 4 characters a token, of which the leading blocks an
    earlier request (to this server) sent alike (the tools, the system prompt, then whole
    messages) are reported as read from the cache, as a provider's prompt cache serves a
    repeated prefix up to its breakpoints; the output is the answer's length. For comparing
    a resumed conversation with one sent whole each turn.
``FAKE_DELAY=<seconds>``
    Sleep that long (a decimal number) before answering, errors included (for timeout tests).
    ``FakeLLMAPI.stop()`` cuts the sleep short.
``FAKE_TOOL=<name>:<json object>``
    Answer with one call of the CLI's tool ``<name>`` with these arguments (no whitespace
    in the JSON), e.g. ``FAKE_TOOL=Read:{"file_path":"/w/notes.txt"}``, as long as the
    request carries no tool result yet; a request that does (the CLI ran the tool and sent
    its output back) gets the reply text. Both calls report the usage and obey the delay.
    Anthropic: a ``tool_use`` block (``stop_reason: tool_use``); OpenAI Responses: a
    ``function_call`` item; Chat Completions: a ``tool_calls`` delta (``finish_reason:
    tool_calls``); Gemini: a ``functionCall`` part (not for utility calls).
``FAKE_DELAY_AFTER_TOOL=<seconds>``
    Like ``FAKE_DELAY``, but only for a request that carries a tool result: a run can be
    caught (or timed out) between its tool call and the answer that follows it.

Gemini CLI's utility calls (the ``auto`` model router, next-speaker checks) ask for JSON that
fits a response schema (``generationConfig.responseJsonSchema`` or ``responseSchema``). Such a
request is answered with a JSON object filled in from the schema instead of the reply text:
strings ``"fake"``, numbers their ``minimum`` (else 1, so ``complexity_score`` is 1, the
simplest routing), enums their first value, booleans ``false``, arrays ``[]``. The usage,
status and delay markers still apply to it.

Use in tests::

    with FakeLLMAPI() as api:
        env["ANTHROPIC_BASE_URL"] = api.base_url  # "http://127.0.0.1:PORT"
        ...
        assert api.requests[0].prompt == "FAKE_REPLY=pong"

Standalone (benchmarks): ``python -m tests.fake_llm_api [--port N] [--verbose]`` prints the
port number on a line of its own, then serves until SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import signal
import sys
import threading
import time
from dataclasses import dataclass, field, replace
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, ClassVar, cast
from urllib.parse import parse_qs, urlsplit

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping, Sequence
    from types import FrameType, TracebackType

__all__ = [
    "DEFAULT_USAGE",
    "FakeLLMAPI",
    "Markers",
    "RecordedRequest",
    "Usage",
    "parse_markers",
]

JsonObject = dict[str, Any]


# --------------------------------------------------------------------------- markers


@dataclass(frozen=True)
class Usage:
    """Normalised token usage: ``input`` excludes the cache reads and writes."""

    input: int
    output: int
    cache_read: int = 0
    cache_write: int = 0

    @property
    def prompt_total(self) -> int:
        """All prompt tokens, cached or not (OpenAI's and Gemini's input count)."""
        return self.input + self.cache_read + self.cache_write


DEFAULT_USAGE = Usage(input=100, output=20, cache_read=0, cache_write=0)
DEFAULT_RETRY_AFTER = 7


@dataclass(frozen=True)
class Markers:
    """What one prompt asks the server to do (see the module docstring)."""

    reply: str | None = None
    usage: Usage = DEFAULT_USAGE
    status: int | None = None
    retry_after: int = DEFAULT_RETRY_AFTER
    delay: float = 0.0
    tool: tuple[str, JsonObject] | None = None  # FAKE_TOOL: a tool call to answer with
    delay_after_tool: float = 0.0
    # provider name ("anthropic", "openai", "gemini") -> status, from FAKE_STATUS_<PROVIDER>
    provider_status: Mapping[str, int] = field(default_factory=dict)
    limit: tuple[str, int] | None = None  # FAKE_LIMIT: a usage window (name, seconds)
    provider_limit: Mapping[str, tuple[str, int]] = field(default_factory=dict)

    def status_for(self, provider: str) -> int | None:
        """The error status to answer a request to ``provider`` with, or None."""
        return self.provider_status.get(provider, self.status)

    def limit_for(self, provider: str) -> tuple[str, int] | None:
        """The usage window a request to ``provider`` names, or None."""
        return self.provider_limit.get(provider, self.limit)


_REPLY_RE = re.compile(r"FAKE_REPLY=(\S+)")
_USAGE_RE = re.compile(r"FAKE_USAGE=(\d+),(\d+),(\d+),(\d+)")
_STATUS_RE = re.compile(r"FAKE_STATUS=([45]\d\d)")
_PROVIDER_STATUS_RE = re.compile(r"FAKE_STATUS_(ANTHROPIC|OPENAI|GEMINI)=([45]\d\d)")
_RETRY_AFTER_RE = re.compile(r"FAKE_RETRY_AFTER=(\d+)")
_DELAY_RE = re.compile(r"FAKE_DELAY=(\d+(?:\.\d+)?)")
_DELAY_AFTER_TOOL_RE = re.compile(r"FAKE_DELAY_AFTER_TOOL=(\d+(?:\.\d+)?)")
_TOOL_RE = re.compile(r"FAKE_TOOL=([\w.-]+):(\{\S*\})")
FAKE_CACHE = "FAKE_CACHE"
# The order a provider's cache reads a request in (tools, then the system prompt, then the
# conversation): the prefix an earlier request shares is counted in this order.
CACHE_ORDER = {
    "anthropic": ("tools", "system", "messages"),
    "openai": ("tools", "instructions", "input"),
    "gemini": ("tools", "systemInstruction", "contents"),
}
_LIMIT_RE = re.compile(r"FAKE_LIMIT=([\w.-]+):(\d+)")
_PROVIDER_LIMIT_RE = re.compile(r"FAKE_LIMIT_(ANTHROPIC|OPENAI|GEMINI)=([\w.-]+):(\d+)")


def _tool_marker(text: str) -> tuple[str, JsonObject] | None:
    match = _TOOL_RE.search(text)
    if match is None:
        return None
    try:
        arguments = json.loads(match.group(2))
    except ValueError:
        return None
    return (match.group(1), arguments) if isinstance(arguments, dict) else None


def _leading(blocks: list[str], earlier: list[str]) -> int:
    """The characters of the leading blocks `earlier` has alike."""
    shared = 0
    for mine, theirs in zip(blocks, earlier, strict=False):
        if mine != theirs:
            break
        shared += len(mine)
    return shared


def parse_markers(text: str) -> Markers:
    """Read the ``FAKE_*`` markers out of a prompt's text."""
    reply = _REPLY_RE.search(text)
    usage = _USAGE_RE.search(text)
    status = _STATUS_RE.search(text)
    retry_after = _RETRY_AFTER_RE.search(text)
    delay = _DELAY_RE.search(text)
    provider_status: dict[str, int] = {}
    for match in _PROVIDER_STATUS_RE.finditer(text):
        provider_status.setdefault(match.group(1).lower(), int(match.group(2)))
    provider_limit: dict[str, tuple[str, int]] = {}
    for match in _PROVIDER_LIMIT_RE.finditer(text):
        provider_limit.setdefault(match.group(1).lower(), (match.group(2), int(match.group(3))))
    limit = _LIMIT_RE.search(text)
    return Markers(
        reply=reply.group(1) if reply else None,
        usage=Usage(*(int(n) for n in usage.groups())) if usage else DEFAULT_USAGE,
        status=int(status.group(1)) if status else None,
        retry_after=int(retry_after.group(1)) if retry_after else DEFAULT_RETRY_AFTER,
        delay=float(delay.group(1)) if delay else 0.0,
        tool=_tool_marker(text),
        delay_after_tool=float(after.group(1))
        if (after := _DELAY_AFTER_TOOL_RE.search(text))
        else 0,
        provider_status=provider_status,
        limit=(limit.group(1), int(limit.group(2))) if limit else None,
        provider_limit=provider_limit,
    )


# --------------------------------------------------------------------------- answers


@dataclass(frozen=True)
class Answer:
    """An HTTP answer: status, extra headers, and a body written chunk by chunk."""

    status: int
    content_type: str
    chunks: Sequence[bytes]
    headers: Mapping[str, str] = field(default_factory=dict)


def json_answer(status: int, payload: object, headers: Mapping[str, str] | None = None) -> Answer:
    body = json.dumps(payload).encode()
    return Answer(status, "application/json", [body], headers or {})


def sse_frame(data: object, event: str | None = None) -> bytes:
    """One server-sent event; ``event`` adds an ``event:`` line before the data."""
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {json.dumps(data)}\n\n".encode()


def sse_answer(frames: Sequence[bytes], headers: Mapping[str, str] | None = None) -> Answer:
    all_headers = {"cache-control": "no-cache", **(headers or {})}
    return Answer(200, "text/event-stream; charset=utf-8", frames, all_headers)


def split_text(text: str) -> list[str]:
    """Split an answer into word-sized deltas (at least one, even for empty text)."""
    return re.findall(r"\S+\s*|\s+", text) or [""]


def retry_headers(status: int, retry_after: int) -> dict[str, str]:
    return {"retry-after": str(retry_after)} if status in (429, 503, 529) else {}


@dataclass(frozen=True)
class Closed:
    """A closed usage window: when it reopens, as an epoch and as whole seconds from now."""

    resets_at: int
    seconds: int

    @property
    def rfc3339(self) -> str:
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.resets_at))


@dataclass(frozen=True)
class ErrorKind:
    """How each provider names one HTTP error status."""

    anthropic_type: str
    openai_type: str
    openai_code: str | None
    google_status: str
    message: str


# status: (Anthropic error type, OpenAI error type, OpenAI error code, Google RPC status)
ERROR_NAMES: dict[int, tuple[str, str, str | None, str]] = {
    400: ("invalid_request_error", "invalid_request_error", None, "INVALID_ARGUMENT"),
    401: ("authentication_error", "invalid_request_error", "invalid_api_key", "UNAUTHENTICATED"),
    403: ("permission_error", "invalid_request_error", None, "PERMISSION_DENIED"),
    404: ("not_found_error", "invalid_request_error", "model_not_found", "NOT_FOUND"),
    429: ("rate_limit_error", "requests", "rate_limit_exceeded", "RESOURCE_EXHAUSTED"),
    500: ("api_error", "server_error", None, "INTERNAL"),
    502: ("api_error", "server_error", None, "UNAVAILABLE"),
    503: ("api_error", "server_error", None, "UNAVAILABLE"),
    504: ("timeout_error", "server_error", None, "DEADLINE_EXCEEDED"),
    529: ("overloaded_error", "server_error", None, "UNAVAILABLE"),
}
_OTHER_CLIENT_ERROR = (
    "invalid_request_error",
    "invalid_request_error",
    None,
    "FAILED_PRECONDITION",
)
_OTHER_SERVER_ERROR = ("api_error", "server_error", None, "UNKNOWN")


def error_kind(status: int) -> ErrorKind:
    other = _OTHER_CLIENT_ERROR if status < 500 else _OTHER_SERVER_ERROR
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:  # 529 and other non-standard codes
        phrase = "Overloaded" if status == 529 else f"Error {status}"
    return ErrorKind(*ERROR_NAMES.get(status, other), message=f"{phrase} (fake API).")


# --------------------------------------------------------------------------- providers


@dataclass(frozen=True)
class Call:
    """One model call as a provider sees it."""

    model: str
    prompt: str
    stream: bool
    body: JsonObject
    query: Mapping[str, str]
    markers: Markers
    serial: int  # 1 for the server's first call, 2 for the next...

    @property
    def request_id(self) -> str:
        return f"req_fake_{self.serial}"


class Provider:
    """One provider's wire format: where the prompt is, how answers and errors look."""

    name: ClassVar[str]

    @property
    def default_reply(self) -> str:
        return f"Hello from the fake {self.name} API."

    def reply_text(self, call: Call) -> str:
        return call.markers.reply if call.markers.reply is not None else self.default_reply

    def model(self, body: JsonObject) -> str:
        return str(body.get("model") or "unknown-model")

    def stream(self, body: JsonObject) -> bool:
        return bool(body.get("stream"))

    def prompt(self, body: JsonObject) -> str:
        raise NotImplementedError

    def answer(self, call: Call) -> Answer:
        raise NotImplementedError

    def error(self, status: int, call: Call) -> Answer:
        raise NotImplementedError

    def has_tool_result(self, body: JsonObject) -> bool:
        """Whether the request sends back the output of a tool call."""
        raise NotImplementedError

    def limit(self, closed: Closed, call: Call) -> Answer:
        """The 429 of a closed usage window (FAKE_LIMIT), in the provider's own shape."""
        raise NotImplementedError

    def tool_call(self, call: Call) -> tuple[str, JsonObject] | None:
        """The FAKE_TOOL call to answer with: only before any tool result came back."""
        if call.markers.tool is None or self.has_tool_result(call.body):
            return None
        return call.markers.tool


def parts_of(messages: object, key: str) -> Iterator[JsonObject]:
    """Every part (content block) of every message in a list of messages."""
    for message in messages if isinstance(messages, list) else []:
        content = message.get(key) if isinstance(message, dict) else None
        if isinstance(content, list):
            yield from (part for part in content if isinstance(part, dict))


def text_of(content: object, text_types: tuple[str, ...]) -> str:
    """The text of a message's content: a string, or the text parts of a list of parts."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return ""
    texts = [
        str(part["text"])
        for part in content
        if isinstance(part, dict) and part.get("type", "text") in text_types and "text" in part
    ]
    return "\n".join(texts)


def last_user_text(messages: object, content_key: str, text_types: tuple[str, ...]) -> str:
    """The text of the last message with role ``user`` that carries any text."""
    if not isinstance(messages, list):
        return ""
    for message in reversed(messages):
        if not isinstance(message, dict) or message.get("role") != "user":
            continue
        text = text_of(message.get(content_key), text_types)
        if text:
            return text
    return ""


class Anthropic(Provider):
    name = "anthropic"

    def prompt(self, body: JsonObject) -> str:
        return last_user_text(body.get("messages"), "content", ("text",))

    @staticmethod
    def usage(usage: Usage) -> JsonObject:
        return {
            "input_tokens": usage.input,
            "cache_creation_input_tokens": usage.cache_write,
            "cache_read_input_tokens": usage.cache_read,
            "output_tokens": usage.output,
        }

    def message(self, call: Call, content: list[JsonObject], stop_reason: str | None) -> JsonObject:
        usage = self.usage(call.markers.usage)
        if stop_reason is None:  # message_start: output not counted yet
            usage["output_tokens"] = 1
        return {
            "id": f"msg_fake_{call.serial}",
            "type": "message",
            "role": "assistant",
            "model": call.model,
            "content": content,
            "stop_reason": stop_reason,
            "stop_sequence": None,
            "usage": usage,
        }

    def has_tool_result(self, body: JsonObject) -> bool:
        blocks = parts_of(body.get("messages"), "content")
        return any(block.get("type") == "tool_result" for block in blocks)

    def answer(self, call: Call) -> Answer:
        text = self.reply_text(call)
        headers = {"request-id": call.request_id}
        tool = self.tool_call(call)
        if not call.stream:
            block: JsonObject = {"type": "text", "text": text}
            if tool is not None:
                block = {"type": "tool_use", "id": f"toolu_fake_{call.serial}",
                         "name": tool[0], "input": tool[1]}  # fmt: skip
            stop = "end_turn" if tool is None else "tool_use"
            return json_answer(200, self.message(call, [block], stop), headers)
        return sse_answer(list(self.events(call, text, tool)), headers)

    def events(
        self, call: Call, text: str, tool: tuple[str, JsonObject] | None = None
    ) -> Iterator[bytes]:
        def frame(data: JsonObject) -> bytes:
            return sse_frame(data, event=str(data["type"]))

        yield frame({"type": "message_start", "message": self.message(call, [], None)})
        if tool is None:
            empty_block = {"type": "text", "text": ""}
            yield frame({"type": "content_block_start", "index": 0, "content_block": empty_block})
            for piece in split_text(text):
                delta = {"type": "text_delta", "text": piece}
                yield frame({"type": "content_block_delta", "index": 0, "delta": delta})
        else:
            block = {"type": "tool_use", "id": f"toolu_fake_{call.serial}", "name": tool[0],
                     "input": {}}  # fmt: skip
            yield frame({"type": "content_block_start", "index": 0, "content_block": block})
            delta = {"type": "input_json_delta", "partial_json": json.dumps(tool[1])}
            yield frame({"type": "content_block_delta", "index": 0, "delta": delta})
        yield frame({"type": "content_block_stop", "index": 0})
        yield frame(
            {
                "type": "message_delta",
                "delta": {
                    "stop_reason": "end_turn" if tool is None else "tool_use",
                    "stop_sequence": None,
                },
                "usage": self.usage(call.markers.usage),
            }
        )
        yield frame({"type": "message_stop"})

    def error(self, status: int, call: Call) -> Answer:
        kind = error_kind(status)
        payload = {
            "type": "error",
            "error": {"type": kind.anthropic_type, "message": kind.message},
            "request_id": call.request_id,
        }
        headers = {"request-id": call.request_id, **retry_headers(status, call.markers.retry_after)}
        return json_answer(status, payload, headers)

    def limit(self, closed: Closed, call: Call) -> Answer:
        message = "This request would exceed your account's rate limit. Please try again later."
        payload = {
            "type": "error",
            "error": {"type": "rate_limit_error", "message": message},
            "request_id": call.request_id,
        }
        unified = "anthropic-ratelimit-unified"
        headers = {
            "request-id": call.request_id,
            "retry-after": str(closed.seconds),
            f"{unified}-status": "rejected",
            f"{unified}-reset": str(closed.resets_at),
            f"{unified}-representative-claim": "five_hour",
            f"{unified}-5h-status": "rejected",
            f"{unified}-5h-reset": str(closed.resets_at),
            f"{unified}-5h-utilization": "1.0",
            "anthropic-ratelimit-requests-limit": "50",
            "anthropic-ratelimit-requests-remaining": "0",
            "anthropic-ratelimit-requests-reset": closed.rfc3339,
        }
        return json_answer(429, payload, headers)


class OpenAIResponses(Provider):
    name = "openai"

    def prompt(self, body: JsonObject) -> str:
        items = body.get("input")
        if isinstance(items, str):
            return items
        return last_user_text(items, "content", ("input_text", "text"))

    @staticmethod
    def usage(usage: Usage) -> JsonObject:
        return {
            "input_tokens": usage.prompt_total,
            "input_tokens_details": {
                "cached_tokens": usage.cache_read,
                "cache_write_tokens": usage.cache_write,
            },
            "output_tokens": usage.output,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": usage.prompt_total + usage.output,
        }

    @staticmethod
    def message_item(call: Call, text: str | None) -> JsonObject:
        content = [] if text is None else [{"type": "output_text", "text": text, "annotations": []}]
        return {
            "id": f"msg_fake_{call.serial}",
            "type": "message",
            "status": "in_progress" if text is None else "completed",
            "role": "assistant",
            "content": content,
        }

    def response(self, call: Call, output: list[JsonObject], done: bool) -> JsonObject:
        return {
            "id": f"resp_fake_{call.serial}",
            "object": "response",
            "created_at": int(time.time()),
            "status": "completed" if done else "in_progress",
            "model": call.model,
            "output": output,
            "usage": self.usage(call.markers.usage) if done else None,
        }

    def has_tool_result(self, body: JsonObject) -> bool:
        items = body.get("input")
        return isinstance(items, list) and any(
            isinstance(item, dict) and str(item.get("type", "")).endswith("call_output")
            for item in items
        )

    @staticmethod
    def function_call(call: Call, tool: tuple[str, JsonObject], arguments: str) -> JsonObject:
        return {
            "id": f"fc_fake_{call.serial}",
            "type": "function_call",
            "status": "completed" if arguments else "in_progress",
            "call_id": f"call_fake_{call.serial}",
            "name": tool[0],
            "arguments": arguments,
        }

    def answer(self, call: Call) -> Answer:
        text = self.reply_text(call)
        headers = {"x-request-id": call.request_id}
        tool = self.tool_call(call)
        if tool is not None and call.stream:
            return sse_answer(self.tool_frames(call, tool), headers)
        if tool is not None:
            item = self.function_call(call, tool, json.dumps(tool[1]))
            return json_answer(200, self.response(call, [item], done=True), headers)
        if not call.stream:
            done = self.response(call, [self.message_item(call, text)], done=True)
            return json_answer(200, done, headers)
        return sse_answer(self.frames(call, text), headers)

    def tool_frames(self, call: Call, tool: tuple[str, JsonObject]) -> list[bytes]:
        arguments = json.dumps(tool[1])
        where = {"item_id": f"fc_fake_{call.serial}", "output_index": 0}
        done_item = self.function_call(call, tool, arguments)
        events: list[JsonObject] = [
            {"type": "response.created", "response": self.response(call, [], done=False)},
            {"type": "response.in_progress", "response": self.response(call, [], done=False)},
            {"type": "response.output_item.added", "output_index": 0,
             "item": self.function_call(call, tool, "")},
            {"type": "response.function_call_arguments.delta", **where, "delta": arguments},
            {"type": "response.function_call_arguments.done", **where, "arguments": arguments},
            {"type": "response.output_item.done", "output_index": 0, "item": done_item},
            {"type": "response.completed", "response": self.response(call, [done_item], True)},
        ]  # fmt: skip
        return [
            sse_frame({**event, "sequence_number": n}, event=str(event["type"]))
            for n, event in enumerate(events)
        ]

    def frames(self, call: Call, text: str) -> list[bytes]:
        item_id = f"msg_fake_{call.serial}"
        where = {"item_id": item_id, "output_index": 0, "content_index": 0}
        empty_part = {"type": "output_text", "text": "", "annotations": []}
        full_part = {**empty_part, "text": text}
        done_item = self.message_item(call, text)
        events: list[JsonObject] = [
            {"type": "response.created", "response": self.response(call, [], done=False)},
            {"type": "response.in_progress", "response": self.response(call, [], done=False)},
            {
                "type": "response.output_item.added",
                "output_index": 0,
                "item": self.message_item(call, None),
            },
            {"type": "response.content_part.added", **where, "part": empty_part},
            *(
                {"type": "response.output_text.delta", **where, "delta": p}
                for p in split_text(text)
            ),
            {"type": "response.output_text.done", **where, "text": text},
            {"type": "response.content_part.done", **where, "part": full_part},
            {"type": "response.output_item.done", "output_index": 0, "item": done_item},
            {"type": "response.completed", "response": self.response(call, [done_item], True)},
        ]
        return [
            sse_frame({**event, "sequence_number": n}, event=str(event["type"]))
            for n, event in enumerate(events)
        ]

    def error(self, status: int, call: Call) -> Answer:
        kind = error_kind(status)
        payload = {
            "error": {
                "message": kind.message,
                "type": kind.openai_type,
                "param": None,
                "code": kind.openai_code,
            }
        }
        headers = {
            "x-request-id": call.request_id,
            **retry_headers(status, call.markers.retry_after),
        }
        return json_answer(status, payload, headers)

    def limit(self, closed: Closed, call: Call) -> Answer:
        payload = {
            "error": {
                "type": "usage_limit_reached",
                "message": "The usage limit has been reached",
                "plan_type": "plus",
                "resets_at": closed.resets_at,
                "resets_in_seconds": closed.seconds,
            }
        }
        headers = {
            "x-request-id": call.request_id,
            "retry-after": str(closed.seconds),
            "x-codex-primary-used-percent": "100.0",
            "x-codex-primary-window-minutes": "300",
            "x-codex-primary-reset-after-seconds": str(closed.seconds),
            "x-codex-primary-reset-at": str(closed.resets_at),
            "x-ratelimit-limit-requests": "50",
            "x-ratelimit-remaining-requests": "0",
            "x-ratelimit-reset-requests": f"{closed.seconds}s",
        }
        return json_answer(429, payload, headers)


class OpenAIChat(OpenAIResponses):
    """OpenAI Chat Completions: the same markers, errors and limits as the Responses API
    (``FAKE_STATUS_OPENAI`` and ``FAKE_LIMIT_OPENAI`` apply to both), another wire format."""

    def prompt(self, body: JsonObject) -> str:
        return last_user_text(body.get("messages"), "content", ("text",))

    @staticmethod
    def chat_usage(usage: Usage) -> JsonObject:
        return {
            "prompt_tokens": usage.prompt_total,
            "completion_tokens": usage.output,
            "total_tokens": usage.prompt_total + usage.output,
            "prompt_tokens_details": {"cached_tokens": usage.cache_read},
            "completion_tokens_details": {"reasoning_tokens": 0},
        }

    def has_tool_result(self, body: JsonObject) -> bool:
        messages = body.get("messages")
        return isinstance(messages, list) and any(
            isinstance(m, dict) and m.get("role") == "tool" for m in messages
        )

    @staticmethod
    def tool_calls(call: Call, tool: tuple[str, JsonObject]) -> list[JsonObject]:
        function = {"name": tool[0], "arguments": json.dumps(tool[1])}
        return [
            {"index": 0, "id": f"call_fake_{call.serial}", "type": "function",
             "function": function}
        ]  # fmt: skip

    def chunk(self, call: Call, delta: JsonObject, finish: str | None) -> JsonObject:
        return {
            "id": f"chatcmpl-fake-{call.serial}",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": call.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }

    def answer(self, call: Call) -> Answer:
        text = self.reply_text(call)
        tool = self.tool_call(call)
        headers = {"x-request-id": call.request_id}
        usage = self.chat_usage(call.markers.usage)
        if not call.stream:
            message: JsonObject = {"role": "assistant", "content": text}
            if tool is not None:
                message = {"role": "assistant", "content": None,
                           "tool_calls": self.tool_calls(call, tool)}  # fmt: skip
            choice = {"index": 0, "message": message,
                      "finish_reason": "stop" if tool is None else "tool_calls"}  # fmt: skip
            payload = {"id": f"chatcmpl-fake-{call.serial}", "object": "chat.completion",
                       "created": int(time.time()), "model": call.model,
                       "choices": [choice], "usage": usage}  # fmt: skip
            return json_answer(200, payload, headers)
        chunks = [self.chunk(call, {"role": "assistant", "content": ""}, None)]
        if tool is None:
            chunks += [self.chunk(call, {"content": piece}, None) for piece in split_text(text)]
            chunks.append(self.chunk(call, {}, "stop"))
        else:
            chunks += [self.chunk(call, {"tool_calls": self.tool_calls(call, tool)}, None),
                       self.chunk(call, {}, "tool_calls")]  # fmt: skip
        options = call.body.get("stream_options")
        if isinstance(options, dict) and options.get("include_usage"):
            chunks.append({**self.chunk(call, {}, None), "choices": [], "usage": usage})
        frames = [sse_frame(chunk) for chunk in chunks]
        return sse_answer([*frames, b"data: [DONE]\n\n"], headers)


def fill_schema(schema: object) -> object:
    """A value that fits a (Gemini or JSON) schema; see the module docstring."""
    if not isinstance(schema, dict):
        return None
    if schema.get("enum"):
        return schema["enum"][0]
    kind = str(schema.get("type", "object")).lower()
    if kind == "object":
        properties = schema.get("properties") or {}
        return {name: fill_schema(sub) for name, sub in properties.items()}
    if kind in ("integer", "number"):
        return schema.get("minimum", 1)
    fillers: dict[str, object] = {"string": "fake", "boolean": False, "array": []}
    return fillers.get(kind)


class Gemini(Provider):
    name = "gemini"

    def prompt(self, body: JsonObject) -> str:
        return last_user_text(body.get("contents"), "parts", ("text",))

    @staticmethod
    def schema(body: JsonObject) -> object:
        config = body.get("generationConfig") or {}
        return config.get("responseJsonSchema") or config.get("responseSchema")

    def reply_text(self, call: Call) -> str:
        schema = self.schema(call.body)
        if schema is None:
            return super().reply_text(call)
        return json.dumps(fill_schema(schema))

    @staticmethod
    def usage(usage: Usage) -> JsonObject:
        return {
            "promptTokenCount": usage.prompt_total,
            "candidatesTokenCount": usage.output,
            "cachedContentTokenCount": usage.cache_read,
            "thoughtsTokenCount": 0,
            "totalTokenCount": usage.prompt_total + usage.output,
        }

    def has_tool_result(self, body: JsonObject) -> bool:
        return any("functionResponse" in part for part in parts_of(body.get("contents"), "parts"))

    def chunk(
        self, call: Call, text: str, last: bool, tool: tuple[str, JsonObject] | None = None
    ) -> JsonObject:
        part: JsonObject = {"text": text}
        if tool is not None:
            part = {"functionCall": {"name": tool[0], "args": tool[1]}}
        candidate: JsonObject = {
            "content": {"role": "model", "parts": [part]},
            "index": 0,
        }
        if last:
            candidate["finishReason"] = "STOP"
        return {
            "candidates": [candidate],
            "usageMetadata": self.usage(call.markers.usage),
            "modelVersion": call.model,
            "responseId": f"fake_{call.serial}",
        }

    def answer(self, call: Call) -> Answer:
        text = self.reply_text(call)
        tool = None if self.schema(call.body) is not None else self.tool_call(call)
        if not call.stream:
            return json_answer(200, self.chunk(call, text, last=True, tool=tool))
        pieces = split_text(text)
        chunks = [self.chunk(call, p, last=n == len(pieces) - 1) for n, p in enumerate(pieces)]
        if tool is not None:
            chunks = [self.chunk(call, "", last=True, tool=tool)]
        if call.query.get("alt") != "sse":  # Google's non-SSE stream: one JSON array
            return json_answer(200, chunks)
        return sse_answer([sse_frame(chunk) for chunk in chunks])

    def error(self, status: int, call: Call) -> Answer:
        kind = error_kind(status)
        payload = {"error": {"code": status, "message": kind.message, "status": kind.google_status}}
        return json_answer(status, payload, retry_headers(status, call.markers.retry_after))

    def limit(self, closed: Closed, call: Call) -> Answer:
        metric = "generativelanguage.googleapis.com/generate_content_requests"
        message = (
            "You exceeded your current quota, please check your plan and billing details. "
            f"Quota exceeded for metric: {metric}, model: {call.model}. "
            f"Please retry in {closed.seconds}s."
        )
        quota = "GenerateRequestsPerDayPerProjectPerModel"
        details = [
            {
                "@type": "type.googleapis.com/google.rpc.QuotaFailure",
                "violations": [
                    {
                        "quotaMetric": metric,
                        "quotaId": quota,
                        "quotaDimensions": {"location": "global", "model": call.model},
                    }
                ],
            },
            {"@type": "type.googleapis.com/google.rpc.RetryInfo",
             "retryDelay": f"{closed.seconds}s"},
        ]  # fmt: skip
        payload = {
            "error": {
                "code": 429,
                "message": message,
                "status": "RESOURCE_EXHAUSTED",
                "details": details,
            }
        }
        return json_answer(429, payload, {"retry-after": str(closed.seconds)})


ANTHROPIC = Anthropic()
OPENAI = OpenAIResponses()
OPENAI_CHAT = OpenAIChat()
GEMINI = Gemini()

_GEMINI_PATH = re.compile(
    r"^/v1(?:beta|alpha)?/models/(?P<model>[^/:]+):(?P<method>generateContent|streamGenerateContent)$"
)


@dataclass(frozen=True)
class Route:
    provider: Provider
    model: str | None = None  # Gemini names the model in the path
    stream: bool | None = None  # ... and the streaming in the method


def route(path: str) -> Route | None:
    """Which provider a POST path belongs to, or None when the path is unknown."""
    if path == "/v1/messages":
        return Route(ANTHROPIC)
    if path == "/v1/responses":
        return Route(OPENAI)
    if path in ("/v1/chat/completions", "/chat/completions"):
        return Route(OPENAI_CHAT)
    match = _GEMINI_PATH.match(path)
    if match:
        return Route(GEMINI, match["model"], match["method"] == "streamGenerateContent")
    return None


# --------------------------------------------------------------------------- the server


@dataclass(frozen=True)
class RecordedRequest:
    """One request the server answered."""

    provider: str  # "anthropic", "openai", "gemini" or "unknown"
    method: str
    path: str  # without the query string
    query: str
    model: str | None
    prompt: str  # the last user message's text, where the markers were searched
    stream: bool
    status: int  # the HTTP status answered
    headers: Mapping[str, str]  # request headers, names lower-cased
    body: Any  # the parsed JSON body (None when there was none)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128  # benchmarks start many CLIs at once
    api: FakeLLMAPI


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "FakeLLMAPI/1"
    sys_version = ""

    def version_string(self) -> str:
        return self.server_version

    @property
    def api(self) -> FakeLLMAPI:
        return cast("_Server", self.server).api

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the default per-request log line; the API logs what matters."""

    def do_POST(self) -> None:
        self._handle()

    def do_GET(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()

    def _handle(self) -> None:
        try:
            self.api.serve(self)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client gave up (e.g. its timeout)

    def read_json(self) -> object:
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length) if length else b""
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            return raw.decode("utf-8", "replace")

    def send_answer(self, answer: Answer) -> None:
        self.send_response(answer.status)
        self.send_header("content-type", answer.content_type)
        self.send_header("content-length", str(sum(len(c) for c in answer.chunks)))
        for name, value in answer.headers.items():
            self.send_header(name, value)
        self.end_headers()
        for chunk in answer.chunks:
            self.wfile.write(chunk)
            self.wfile.flush()


class FakeLLMAPI:
    """The fake API on ``127.0.0.1``, served from a daemon thread; a context manager.

    ``port=0`` (the default) picks a free port. ``verbose`` logs every request on stderr
    (unknown paths are always logged).
    """

    def __init__(self, port: int = 0, *, verbose: bool = False) -> None:
        self._requested_port = port
        self.verbose = verbose
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._arrivals: list[tuple[str, str]] = []
        self._counter = 0
        self._windows: dict[tuple[str, str], float] = {}  # (provider, name) -> reopens at
        self._seen: list[list[str]] = []  # FAKE_CACHE: earlier requests' blocks
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # ----------------------------------------------------------- lifecycle

    def start(self) -> FakeLLMAPI:
        if self._server is not None:
            raise RuntimeError("FakeLLMAPI already started")
        self._stopping.clear()
        server = _Server(("127.0.0.1", self._requested_port), _Handler)
        server.api = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.02},  # how long stop() may wait for the loop
            name=f"fake-llm-api:{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving (idempotent); pending ``FAKE_DELAY`` sleeps end at once."""
        self._stopping.set()
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FakeLLMAPI:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("FakeLLMAPI is not running")
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT``, without any ``/v1``."""
        return f"http://127.0.0.1:{self.port}"

    # ----------------------------------------------------------- recordings

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of the requests answered so far, oldest first."""
        with self._lock:
            return list(self._requests)

    @property
    def arrivals(self) -> list[tuple[str, str]]:
        """``(provider, prompt)`` of every model call received so far, oldest first,
        answered or not: a call held by ``FAKE_DELAY`` is here at once, but in
        :attr:`requests` only once answered (or cut short by :meth:`stop`)."""
        with self._lock:
            return list(self._arrivals)

    def clear(self) -> None:
        with self._lock:
            self._requests.clear()
            self._arrivals.clear()

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(request)
        unknown = request.provider == "unknown"
        if self.verbose or unknown:
            note = " (unknown path)" if unknown else ""
            print(
                f"[fake-llm-api] {request.method} {request.path} -> {request.status}"
                f" provider={request.provider} model={request.model}"
                f" stream={request.stream}{note}",
                file=sys.stderr,
                flush=True,
            )

    def _next_serial(self) -> int:
        with self._lock:
            self._counter += 1
            return self._counter

    # ----------------------------------------------------------- serving

    def serve(self, handler: _Handler) -> None:
        """Answer one HTTP request (called on the handler's thread)."""
        url = urlsplit(handler.path)
        body = handler.read_json()
        found = route(url.path) if handler.command == "POST" else None
        if found is None:
            message = f"fake LLM API: no route for {handler.command} {url.path}"
            self._reject(handler, body, "unknown", HTTPStatus.NOT_FOUND, message)
            return
        if not isinstance(body, dict):
            message = "fake LLM API: the request body must be a JSON object"
            self._reject(handler, body, found.provider.name, HTTPStatus.BAD_REQUEST, message)
            return
        call = self._call(found, body, url.query)
        with self._lock:
            self._arrivals.append((found.provider.name, call.prompt))
        if call.markers.delay:
            self._stopping.wait(call.markers.delay)
        if call.markers.delay_after_tool and found.provider.has_tool_result(body):
            self._stopping.wait(call.markers.delay_after_tool)
        status = call.markers.status_for(found.provider.name)
        closed = self._closed(found.provider.name, call.markers)
        if closed is not None:
            answer = found.provider.limit(closed, call)
        elif status:
            answer = found.provider.error(status, call)
        else:
            answer = found.provider.answer(call)
        self._record(
            recording(
                handler,
                body,
                found.provider.name,
                answer.status,
                call.model,
                call.prompt,
                call.stream,
            )
        )
        handler.send_answer(answer)

    def _closed(self, provider: str, markers: Markers) -> Closed | None:
        """The window a FAKE_LIMIT names, while it is closed (the first naming closes it)."""
        window = markers.limit_for(provider)
        if window is None:
            return None
        name, seconds = window
        now = time.time()
        with self._lock:
            reopens = self._windows.setdefault((provider, name), now + seconds)
        if now >= reopens:
            return None
        return Closed(resets_at=math.ceil(reopens), seconds=max(1, math.ceil(reopens - now)))

    def _call(self, found: Route, body: JsonObject, query: str) -> Call:
        provider = found.provider
        prompt = provider.prompt(body)
        markers = parse_markers(prompt)
        if FAKE_CACHE in prompt:
            markers = replace(markers, usage=self._measured(provider.name, body, markers))
        return Call(
            model=found.model or provider.model(body),
            prompt=prompt,
            stream=provider.stream(body) if found.stream is None else found.stream,
            body=body,
            query={name: values[0] for name, values in parse_qs(query).items()},
            markers=markers,
            serial=self._next_serial(),
        )

    def _measured(self, provider: str, body: JsonObject, markers: Markers) -> Usage:
        """FAKE_CACHE: the usage of this request as measured (about 4 characters a token),
        of which the leading blocks an earlier request sent alike (its tools, its system
        prompt, then each message of the conversation, whole) are read from the cache."""
        *fixed, conversation = CACHE_ORDER.get(provider, ("tools", "system", "messages"))
        turns = body.get(conversation)
        blocks = [json.dumps(body.get(key)) for key in fixed]
        blocks += [json.dumps(turn) for turn in (turns if isinstance(turns, list) else [turns])]
        with self._lock:
            shared = max((_leading(blocks, seen) for seen in self._seen), default=0)
            self._seen.append(blocks)
        total, cached = math.ceil(sum(map(len, blocks)) / 4), shared // 4
        answer = markers.reply or "Hello from the fake API."
        return Usage(input=total - cached, output=math.ceil(len(answer) / 4), cache_read=cached)

    def _reject(
        self, handler: _Handler, body: object, provider: str, status: HTTPStatus, message: str
    ) -> None:
        self._record(recording(handler, body, provider, status))
        payload = {"error": {"code": int(status), "status": status.phrase, "message": message}}
        handler.send_answer(json_answer(status, payload))


def recording(
    handler: _Handler,
    body: object,
    provider: str,
    status: int,
    model: str | None = None,
    prompt: str = "",
    stream: bool = False,
) -> RecordedRequest:
    url = urlsplit(handler.path)
    return RecordedRequest(
        provider=provider,
        method=handler.command,
        path=url.path,
        query=url.query,
        model=model,
        prompt=prompt,
        stream=stream,
        status=int(status),
        headers={name.lower(): value for name, value in handler.headers.items()},
        body=body,
    )


# --------------------------------------------------------------------------- standalone


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Serve the fake LLM API until SIGTERM/SIGINT.")
    parser.add_argument("--port", type=int, default=0, help="port to bind (default: a free one)")
    parser.add_argument("--verbose", action="store_true", help="log every request on stderr")
    args = parser.parse_args(argv)
    done = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        done.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    with FakeLLMAPI(args.port, verbose=args.verbose) as api:
        print(api.port, flush=True)
        while not done.wait(1.0):
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
