"""An orchestrator adapter for `shout`, a made-up agent CLI that reads the prompt on stdin
and prints one JSON object per line: {"type": "text", "text": ...}, {"type": "usage",
"input": N, "output": N}, then {"type": "done", "session": ID} or {"type": "error",
"status": HTTP_STATUS, "message": ...}."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from orchestrator.adapters.base import ErrorKind, Invocation, ParsedOutput, ToolFailure, Usage
from orchestrator.progress.events import Event, Kind

if TYPE_CHECKING:
    from orchestrator.adapters.base import RunContext
    from orchestrator.config import ToolConfig

KINDS = {401: ErrorKind.AUTH, 403: ErrorKind.AUTH, 429: ErrorKind.RATE_LIMIT}


class ShoutAdapter:
    enforces_budget = False  # shout has no spending limit of its own

    def build(
        self, tool: ToolConfig, model: str | None, prompt: str, ctx: RunContext
    ) -> Invocation:
        argv = [tool.binary, "--json"]
        if model:
            argv += ["--model", model]
        return Invocation(argv=[*argv, *tool.extra_args], stdin=prompt.encode())

    def parse(
        self,
        tool: ToolConfig,
        model: str | None,
        stdout: bytes,
        stderr: bytes,
        exit_code: int | None,
    ) -> ParsedOutput:
        stream = self.stream(tool, model)
        for line in stdout.splitlines():
            stream.feed(line)
        return stream.result(stderr, exit_code)

    def watch_line(self, line: bytes) -> ToolFailure | None:
        return None  # no line proves that a shout run cannot succeed

    def stream(self, tool: ToolConfig, model: str | None) -> ShoutStream:
        return ShoutStream(model)


class ShoutStream:
    def __init__(self, model: str | None) -> None:
        self.model = model
        self.stop: ToolFailure | None = None
        self.words: list[str] = []
        self.usage: Usage | None = None
        self.session: str | None = None
        self.error: dict[str, Any] | None = None
        self.done = False

    def feed(self, line: bytes) -> list[Event]:
        try:
            event = json.loads(line)
        except ValueError:
            return []  # a log line
        kind = event.get("type") if isinstance(event, dict) else None
        if kind == "text":
            self.words.append(str(event["text"]))
            return [Event(Kind.TEXT, text=str(event["text"]))]
        if kind == "usage":
            self.usage = Usage(input_tokens=event["input"], output_tokens=event["output"])
            return [Event(Kind.USAGE, usage=self.usage)]
        if kind == "done":
            self.done, self.session = True, event.get("session")
        if kind == "error":
            self.error = event
            return [Event(Kind.ERROR, text=str(event.get("message")))]
        return []

    def so_far(self) -> ParsedOutput:
        return ParsedOutput(usage=self.usage, model=self.model, session_id=self.session)

    def result(self, stderr: bytes, exit_code: int | None) -> ParsedOutput:
        reached = self.so_far()
        if self.error is not None:
            status = self.error.get("status")
            kind = KINDS.get(status, ErrorKind.SERVER) if isinstance(status, int) else None
            message = f"shout: {self.error.get('message')}"
            hint = "see docs/tools.md"
            failure = ToolFailure(kind or ErrorKind.EXIT, message, hint, status=status)
        elif not self.done:
            said = stderr.decode(errors="replace").strip()[:300]
            message = f"shout ended (exit {exit_code}) without a done line: {said}"
            failure = ToolFailure(ErrorKind.BAD_OUTPUT, message, "check the shout version")
        else:
            text = "".join(self.words)
            return ParsedOutput(text, reached.usage, model=self.model, session_id=self.session)
        return ParsedOutput(usage=reached.usage, model=self.model, failure=failure)


ADAPTER = ShoutAdapter()
