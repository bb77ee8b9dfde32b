"""The orchestrator adapter for Qwen Code (npm `@qwen-code/qwen-code`): `qwen -o stream-json`,
the prompt on stdin, one JSON message per line on stdout (system/init, assistant, user,
result). Its settings for the run (no retries of its own, no background memory calls) are
a file in the run folder named by QWEN_CODE_SYSTEM_SETTINGS_PATH. See docs/tools.md."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

from orchestrator.adapters.base import ErrorKind, Invocation, ParsedOutput, ToolFailure, Usage
from orchestrator.progress.events import Event, Kind, target_of

if TYPE_CHECKING:
    from orchestrator.adapters.base import RunContext
    from orchestrator.config import ToolConfig

KEY_ENV = "OPENAI_API_KEY"
SETTINGS_FILE = "qwen-settings.json"
SETTINGS = {
    "model": {"generationConfig": {"maxRetries": 0}},  # the orchestrator retries and falls back
    "memory": {"enableManagedAutoMemory": False},  # no extra model calls after the answer
}
_STATUS = re.compile(r"API Error: (\d{3})\b")
_CONNECTION = re.compile(r"Connection error|ECONNREFUSED|fetch failed|ENOTFOUND|timed out", re.I)
HINTS = {
    ErrorKind.RATE_LIMIT: "the provider is limiting this key; the next tool in the chain is tried",
    ErrorKind.OVERLOADED: "the provider is overloaded; the next tool in the chain is tried",
    ErrorKind.SERVER: "a server-side error, usually temporary; the next tool is tried",
    ErrorKind.CONNECTION: "check this tool's base_url in config/tools.yaml and the network",
    ErrorKind.AUTH: f"set {KEY_ENV} and list it under the tool's env: in config/tools.yaml",
    ErrorKind.BAD_REQUEST: "the provider refused the request: check the model name",
    ErrorKind.CLI_USAGE: "qwen refused its command line: check approval_mode, max_turns and "
    "extra_args in config/tools.yaml",
    ErrorKind.BAD_OUTPUT: "qwen did not print its stream-json messages: check its version",
    ErrorKind.EXIT: "see the message; the next tool in the chain is tried",
}


class QwenAdapter:
    enforces_budget = False
    install_hint = (
        "npm i -g @qwen-code/qwen-code"  # shown by `orchestrator doctor` when it is missing
    )
    # Resumed (--resume), its result's usage is the session's running total: the
    # orchestrator takes the earlier turns' off.
    session_usage = "cumulative"

    def build(
        self, tool: ToolConfig, model: str | None, prompt: str, ctx: RunContext
    ) -> Invocation:
        argv = [tool.binary, "-o", "stream-json"]
        if tool.base_url:
            argv += ["--auth-type", "openai", "--openai-base-url", tool.base_url]
        if model:
            argv += ["-m", model]
        if tool.approval_mode:
            argv += ["--approval-mode", tool.approval_mode]
        if tool.max_turns:
            argv += ["--max-session-turns", str(tool.max_turns)]
        if ctx.resume:  # a session's later turn: the history comes from qwen's own store
            argv += ["--resume", ctx.resume]
        return Invocation(
            argv=[*argv, *tool.extra_args],
            stdin=prompt.encode(),
            env={"QWEN_CODE_SYSTEM_SETTINGS_PATH": str(ctx.run_dir / SETTINGS_FILE)},
            files={SETTINGS_FILE: json.dumps(SETTINGS).encode()},
        )

    def parse(
        self,
        tool: ToolConfig,
        model: str | None,
        stdout: bytes,
        stderr: bytes,
        exit_code: int | None,
    ) -> ParsedOutput:
        stream = QwenStream(model)
        for line in stdout.split(b"\n"):
            stream.feed(line)
        return stream.result(stderr, exit_code)

    def watch_line(self, line: bytes) -> ToolFailure | None:
        return None

    def stream(self, tool: ToolConfig, model: str | None) -> QwenStream:
        return QwenStream(model)


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


class QwenStream:
    """One run's messages; the final `result` line carries the answer and the usage of the
    whole run (background calls included), assistant lines the usage of each call."""

    def __init__(self, model: str | None) -> None:
        self.model = model
        self.stop: ToolFailure | None = None
        self.session: str | None = None
        self.answered_by: str | None = None
        self.calls: list[Usage] = []  # each assistant message's usage
        self.final: dict[str, Any] | None = None  # the result line
        self.messages = 0

    def feed(self, line: bytes) -> list[Event]:
        try:
            value = json.loads(line)
        except ValueError:
            return []
        found = value if isinstance(value, list) else [value]  # `-o json`: one array
        return [e for obj in found if isinstance(obj, dict) for e in self._take(obj)]

    def _take(self, obj: dict[str, Any]) -> list[Event]:
        self.messages += 1
        kind, message = obj.get("type"), _dict(obj.get("message"))
        if kind == "system" and obj.get("subtype") == "init":
            self.session = obj.get("session_id") if isinstance(obj.get("session_id"), str) else None
            return [Event(Kind.SESSION, name=str(obj.get("model")), session_id=self.session)]
        if kind == "assistant":
            return self._assistant(message)
        if kind == "user":
            return [
                Event(Kind.TOOL_DONE, ok=not block.get("is_error"))
                for block in _blocks(message)
                if block.get("type") == "tool_result"
            ]
        if kind == "result":
            self.final = obj
            usage = self._usage()
            return [Event(Kind.USAGE, usage=usage)] if usage else []
        return []

    def _assistant(self, message: dict[str, Any]) -> list[Event]:
        if isinstance(message.get("model"), str):
            self.answered_by = message["model"]
        events = []
        if (usage := _usage(_dict(message.get("usage")))) is not None:
            self.calls.append(usage)
            events.append(Event(Kind.USAGE, usage=self._usage()))
        for block in _blocks(message):
            if block.get("type") == "text" and isinstance(block.get("text"), str):
                events.append(Event(Kind.TEXT, text=block["text"]))
            elif block.get("type") == "tool_use":
                target = target_of(block.get("input"))
                events.append(Event(Kind.TOOL, name=str(block.get("name")), target=target))
        return events

    def _usage(self) -> Usage | None:
        if self.final is not None:  # the whole run's
            return _usage(_dict(self.final.get("usage")))
        if not self.calls:
            return None
        return Usage(*(sum(getattr(u, f) for u in self.calls) for f in vars(self.calls[0])))

    def so_far(self) -> ParsedOutput:
        model = self.answered_by or self.model
        return ParsedOutput(usage=self._usage(), model=model, session_id=self.session)

    def result(self, stderr: bytes, exit_code: int | None) -> ParsedOutput:
        reached = self.so_far()
        final = self.final
        if final is None:
            failure = _no_result(stderr, exit_code, self.messages)
        elif final.get("is_error") or final.get("subtype") != "success":
            failure = classify(final)
        else:
            text = final.get("result") if isinstance(final.get("result"), str) else ""
            return ParsedOutput(text, reached.usage, None, reached.model, self.session)
        return ParsedOutput(None, reached.usage, None, reached.model, self.session, failure)


def _blocks(message: dict[str, Any]) -> list[dict[str, Any]]:
    content = message.get("content")
    return [b for b in content if isinstance(b, dict)] if isinstance(content, list) else []


def _usage(usage: dict[str, Any]) -> Usage | None:
    """Qwen's input_tokens include the cache reads: they are taken out."""
    counts = {k: v for k, v in usage.items() if isinstance(v, int) and not isinstance(v, bool)}
    if "input_tokens" not in counts and "output_tokens" not in counts:
        return None
    read = counts.get("cache_read_input_tokens", 0)
    return Usage(
        input_tokens=max(0, counts.get("input_tokens", 0) - read),
        output_tokens=counts.get("output_tokens", 0),
        cache_read_tokens=read,
    )


def kind_for_status(status: int) -> ErrorKind:
    if status == 429:
        return ErrorKind.RATE_LIMIT
    if status == 529:
        return ErrorKind.OVERLOADED
    if status in (401, 403):
        return ErrorKind.AUTH
    if status == 408 or status >= 500:
        return ErrorKind.SERVER
    return ErrorKind.BAD_REQUEST


def classify(final: dict[str, Any]) -> ToolFailure:
    """A result line that is an error: `error.message` names the API status as
    "[API Error: 429 ...]"; other subtypes (error_max_turns, ...) are the CLI's own."""
    message = str(_dict(final.get("error")).get("message") or final.get("subtype"))
    said = " ".join(message.split())[:500]
    if match := _STATUS.search(message):
        status = int(match.group(1))
        kind, text = kind_for_status(status), f"the API answered HTTP {status}: {said}"
        return ToolFailure(kind, text, HINTS[kind], status=status)
    if _CONNECTION.search(message):
        kind, text = ErrorKind.CONNECTION, f"could not reach the API: {said}"
    elif final.get("subtype") == "error_max_turns":
        kind, text = ErrorKind.EXIT, f"qwen stopped at its turn limit (max_turns): {said}"
    else:
        kind, text = ErrorKind.EXIT, f"qwen failed ({final.get('subtype')}): {said}"
    return ToolFailure(kind, text, HINTS[kind])


def _no_result(stderr: bytes, exit_code: int | None, messages: int) -> ToolFailure:
    said = " ".join(stderr.decode(errors="replace").split())[:400] or "(nothing on stderr)"
    if exit_code and not messages:
        kind, text = ErrorKind.CLI_USAGE, f"qwen refused to run (exit {exit_code}): {said}"
    else:
        kind, text = ErrorKind.BAD_OUTPUT, f"qwen ended (exit {exit_code}) without a result: {said}"
    return ToolFailure(kind, text, HINTS[kind])


ADAPTER = QwenAdapter()
