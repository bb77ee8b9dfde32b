"""Claude Code: `claude -p --output-format stream-json --verbose --include-partial-messages`,
the prompt on stdin, JSON lines on stdout ending with one `result` object (a single JSON
object, as `--output-format json` prints it, or a JSON array is read too). See
docs/tools.md."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from orchestrator.adapters import _classify as c
from orchestrator.adapters._claude_result import (
    KEY_ENV,
    model_of,
    no_result,
    result_failure,
    usage_of,
    words,
)
from orchestrator.adapters._stream import JsonLines, JsonObject, dict_at, read_all, text_at
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

OUTPUT = ["--output-format", "stream-json", "--verbose", "--include-partial-messages"]
# The CLI retries every failure 10 times over ~3 minutes; the orchestrator owns retries.
FAIL_FAST_ENV = {
    "CLAUDE_CODE_MAX_RETRIES": "0",
    "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
}
# A subscription's windows that hold for every model (the others, "seven_day_opus", one's)
ACCOUNT_WINDOWS = frozenset({"five_hour", "seven_day"})
MAX_INPUT = 16 * 1024  # of a tool call's streamed input: its target comes first
_ARGUMENT = re.compile(r'"(\w+)"\s*:\s*("(?:[^"\\]|\\.)*")')
_COUNTS = (  # Usage's first four, in Anthropic's names
    "input_tokens",
    "output_tokens",
    "cache_read_input_tokens",
    "cache_creation_input_tokens",
)


class ClaudeAdapter:
    enforces_budget = True  # --max-budget-usd: claude stops itself between turns
    # A resumed session's result: modelUsage and total_cost_usd are the session's totals.
    session_usage = "cumulative"

    def build(
        self, tool: ToolConfig, model: str | None, prompt: str, ctx: RunContext
    ) -> Invocation:
        argv = [tool.binary, "-p", *OUTPUT]
        if model:
            argv += ["--model", model]
        if tool.permission_mode:
            argv += ["--permission-mode", tool.permission_mode]
        if tool.max_turns is not None:
            argv += ["--max-turns", str(tool.max_turns)]
        if ctx.budget_usd is not None:  # what is left of the task's cap, enforced by claude
            argv += ["--max-budget-usd", f"{ctx.budget_usd:g}"]
        if ctx.resume:  # a session's later turn: the history comes from claude's own store
            argv += ["--resume", ctx.resume]
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
        return read_all(ClaudeStream(model), stdout, stderr, exit_code)

    def watch_line(self, line: bytes) -> ToolFailure | None:
        return None

    def stream(self, tool: ToolConfig, model: str | None) -> ClaudeStream:
        return ClaudeStream(model)


class ClaudeStream:
    """One run's stream-json: `system` (init, api_retry), `assistant` and `user` messages,
    `stream_event`s (with --include-partial-messages), and the final `result`."""

    def __init__(self, model: str | None) -> None:
        self.requested = model
        self.lines = JsonLines()
        self.stop: ToolFailure | None = None
        self.init: JsonObject = {}
        self.final: JsonObject | None = None  # the result object
        self.api_error: JsonObject | None = None  # the last assistant error message
        self.limit: JsonObject = {}  # a plan's window that refused the run (rate_limit_info)
        self.usage: dict[str, list[int]] = {}  # per API message id, counts as _COUNTS
        self.counted = False  # the usage changed since the last USAGE event
        self.model: str | None = None  # the model of the latest real assistant message
        self.head = ""  # the first line, for a message when no result comes
        self.tools: dict[str, str] = {}  # tool_use id -> tool name
        self.streamed: set[str] = set()  # messages whose words came as deltas
        self.inputs: dict[Any, tuple[str, str, list[str]]] = {}  # block -> id, tool, input
        self.current = ""  # the message being streamed
        self.turns = 0
        self.waiting = False  # a turn was announced and nothing answered it yet

    def feed(self, line: bytes) -> list[Event]:
        if not self.head and line.strip():
            self.head = c.shorten(c.text_of(line), 200)
        events: list[Event] = []
        for obj in self.lines.objects(line):
            events += self._take(obj)
        if self.counted:
            self.counted = False
            events.append(Event(Kind.USAGE, usage=self.total()))
        return events

    def _take(self, obj: JsonObject) -> list[Event]:
        kind = obj.get("type")
        if kind == "system":
            return self._system(obj)
        if kind == "assistant":
            return self._assistant(obj)
        if kind == "user":
            return self._user(obj)
        if kind == "stream_event":
            return self._partial(dict_at(obj, "event"))
        if kind == "result":
            self.final = obj
            self.counted = True
        if kind == "rate_limit_event":
            self._rate_limit(dict_at(obj, "rate_limit_info"))
        return []

    def _rate_limit(self, info: JsonObject) -> None:
        """A subscription's window as claude read it from the API's headers: kept when it
        refused the run (`rejected`), for when that window opens again."""
        if info.get("status") == "rejected" and isinstance(info.get("resetsAt"), int | float):
            self.limit = info

    def _system(self, obj: JsonObject) -> list[Event]:
        if obj.get("subtype") == "init":
            self.init = obj
            model, session = text_at(obj, "model"), text_at(obj, "session_id")
            return [Event(Kind.SESSION, name=model, session_id=session), self._turn()]
        if obj.get("subtype") == "api_retry":
            wait = c.number(obj.get("retry_delay_ms")) / 1000
            why = f"API error {obj.get('error_status')} ({obj.get('error')})"
            tries = f"retry {obj.get('attempt')}/{obj.get('max_retries')} in {wait:.1f}s"
            return [Event(Kind.RETRY, text=f"{why}, {tries}")]
        return []

    def _turn(self) -> Event:
        self.turns += 1
        self.waiting = True
        return Event(Kind.TURN, text=f"turn {self.turns}")

    def _assistant(self, obj: JsonObject) -> list[Event]:
        message = dict_at(obj, "message")
        if obj.get("is_api_error_message") or obj.get("error"):
            self.api_error = obj
            return [Event(Kind.ERROR, text=words(message.get("content")))]
        self.waiting = False
        ident = text_at(message, "id") or ""
        self._count(ident, message)
        events = []
        for block in message.get("content") or []:
            kind = block.get("type") if isinstance(block, dict) else None
            if kind == "tool_use":
                call = str(block.get("id"))
                if call not in self.tools:
                    self.tools[call] = tool = str(block.get("name"))
                    events.append(Event(Kind.TOOL, name=tool, target=target_of(block.get("input"))))
            elif kind in ("text", "thinking") and ident not in self.streamed:
                text = text_at(block, kind)
                if text:
                    thought = "reasoning" if kind == "thinking" else None
                    events.append(Event(Kind.TEXT, name=thought, text=text))
        return events

    def _user(self, obj: JsonObject) -> list[Event]:
        content = dict_at(obj, "message").get("content")
        results = [
            block
            for block in (content if isinstance(content, list) else [])
            if isinstance(block, dict) and block.get("type") == "tool_result"
        ]
        events = [
            Event(
                Kind.TOOL_DONE,
                name=self.tools.get(str(block.get("tool_use_id"))),
                ok=not block.get("is_error"),
            )
            for block in results
        ]
        if results and not self.waiting:
            events.append(self._turn())  # the results go back to the model
        return events

    def _partial(self, event: JsonObject) -> list[Event]:
        """--include-partial-messages: the API's own stream events. A tool call's input
        comes as pieces too: the call is announced from them when its `assistant` line
        was not seen (a line too long for the live watch, which keeps a line's last 64 KiB)."""
        kind = event.get("type")
        if kind == "message_start":
            message = dict_at(event, "message")
            self.current = text_at(message, "id") or ""
            self._count(self.current, message)
        elif kind == "message_delta":
            self._count(self.current, event)
        elif kind == "content_block_start":
            block = dict_at(event, "content_block")
            if block.get("type") == "tool_use":
                self.inputs[event.get("index")] = (str(block.get("id")), str(block.get("name")), [])
        elif kind == "content_block_stop":
            call, tool, pieces = self.inputs.pop(event.get("index"), ("", "", []))
            if call and call not in self.tools:
                self.tools[call] = tool
                return [Event(Kind.TOOL, name=tool, target=target_of(_arguments("".join(pieces))))]
        elif kind == "content_block_delta":
            delta = dict_at(event, "delta")
            pieces = self.inputs.get(event.get("index"), ("", "", []))[2]
            if delta.get("type") == "input_json_delta" and sum(map(len, pieces)) < MAX_INPUT:
                pieces.append(str(delta.get("partial_json", "")))
            if delta.get("type") in ("text_delta", "thinking_delta"):
                self.streamed.add(self.current)
                thinking = delta.get("type") == "thinking_delta"
                text = text_at(delta, "thinking" if thinking else "text")
                if text:
                    return [Event(Kind.TEXT, name="reasoning" if thinking else None, text=text)]
        return []

    def _count(self, ident: str, holder: JsonObject) -> None:
        """A message's usage as last reported (its output grows as it streams)."""
        model = text_at(holder, "model")
        if model and not model.startswith("<"):  # "<synthetic>": the CLI's own messages
            self.model = model
        usage = holder.get("usage")
        if not ident or not isinstance(usage, dict):
            return
        counts = [c.number(usage.get(key)) for key in _COUNTS]
        old = self.usage.get(ident, [0] * len(_COUNTS))
        new = [max(a, b) for a, b in zip(old, counts, strict=True)]
        if new != old:
            self.usage[ident] = new
            self.counted = True

    def total(self) -> Usage | None:
        if self.final is not None:
            return usage_of(self.final)
        if not self.usage:
            return None
        sums = [sum(row[n] for row in self.usage.values()) for n in range(len(_COUNTS))]
        return Usage(sums[0], sums[1], sums[2], sums[3])

    def so_far(self) -> ParsedOutput:
        cost = self.final.get("total_cost_usd") if self.final is not None else None
        session = text_at(self.final, "session_id") or text_at(self.init, "session_id")
        model = model_of(self.final or {}, self.init) if self.final else None
        return ParsedOutput(
            usage=self.total(),
            cost_usd=float(cost) if isinstance(cost, int | float) else None,
            model=model or self.model or text_at(self.init, "model") or self.requested,
            session_id=session,
        )

    def result(self, stderr: bytes, exit_code: int | None) -> ParsedOutput:
        for obj in self.lines.finish():
            self._take(obj)
        reached = self.so_far()
        if self.final is None:
            return replace(reached, failure=self._no_result(c.text_of(stderr), exit_code))
        failure = self._windowed(result_failure(self.final))
        text = self.final.get("result")
        model = model_of(self.final, self.init) or self.requested
        return replace(
            reached,
            text=text if failure is None and isinstance(text, str) else None,
            model=model,
            failure=failure,
        )

    def _windowed(self, failure: ToolFailure | None) -> ToolFailure | None:
        """A limit failure with the reset time claude read from the API (the refused
        message's `rate_limit_info`, else the last `rate_limit_event` that refused)."""
        if failure is None:
            return None
        params = dict_at(self.api_error or {}, "api_error_params")
        info = dict_at(params, "rate_limit_info") or self.limit
        resets = info.get("resetsAt")
        if not isinstance(resets, int | float) or isinstance(resets, bool):
            return failure
        window = info.get("rateLimitType")
        name = window if isinstance(window, str) else None
        return c.with_window(
            failure,
            failure.message,
            resets_at=float(resets),
            window=name,
            whole_tool=name in ACCOUNT_WINDOWS,
        )

    def _no_result(self, stderr: str, exit_code: int | None) -> ToolFailure:
        """No result object: an API error shown by an assistant message before the stream
        ended, a stream cut off, or (empty stdout) a refused command line."""
        if self.api_error is not None:
            message = self.api_error.get("message")
            fields = {k: v for k, v in self.api_error.items() if k.startswith("api_error")}
            detail = words(message.get("content") if isinstance(message, dict) else None)
            found = result_failure({"is_error": True, "result": detail, **fields})
            return self._windowed(found) or c.failure(
                ErrorKind.EXIT, f"claude reported an error: {detail}", key_env=KEY_ENV
            )
        if self.init:
            cut = " (its last line cut off mid-line)" if self.lines.last_bad else ""
            if exit_code is not None and exit_code < 0:
                return c.failure(
                    ErrorKind.SIGNAL,
                    f"claude was killed by signal {-exit_code} before its result{cut}",
                    key_env=KEY_ENV,
                    hint="see its stderr",
                )
            return c.failure(
                ErrorKind.BAD_OUTPUT,
                f"claude's stream ended without its result line (exit {exit_code}){cut}; "
                f"stderr: {c.stderr_summary(stderr)}",
                key_env=KEY_ENV,
            )
        return no_result(self.head, stderr, exit_code)


def _arguments(text: str) -> dict[str, Any]:
    """A tool call's input from its streamed JSON; cut short, its string fields so far."""
    try:
        value = json.loads(text)
    except ValueError:
        found: dict[str, Any] = {}
        for key, quoted in _ARGUMENT.findall(text):
            try:
                found.setdefault(key, json.loads(quoted))
            except ValueError:
                continue
        return found
    return value if isinstance(value, dict) else {}


ADAPTER = ClaudeAdapter()
