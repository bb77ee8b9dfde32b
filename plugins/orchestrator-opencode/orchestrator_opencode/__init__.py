"""The orchestrator adapter for opencode (npm `opencode-ai`): `opencode run --format json`,
the prompt on stdin, one JSON event per line on stdout (step_start, text, tool_use,
step_finish with tokens and cost, error). See docs/tools.md of the orchestrator."""

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
PROVIDER_ID = "orchestrator"  # the provider made for tools.<name>.base_url
_CAMEL = re.compile(r"(?<=[a-z0-9])([A-Z])")
_CONNECTION = re.compile(r"ECONNREFUSED|Unable to connect|fetch failed|ENOTFOUND|socket", re.I)
HINTS: dict[ErrorKind | str, str] = {
    ErrorKind.RATE_LIMIT: "the provider is limiting this key; the next tool in the chain is tried",
    ErrorKind.OVERLOADED: "the provider is overloaded; the next tool in the chain is tried",
    ErrorKind.SERVER: "a server-side error, usually temporary; the next tool is tried",
    ErrorKind.CONNECTION: "check this tool's base_url in config/tools.yaml and the network",
    ErrorKind.AUTH: f"set {KEY_ENV} (with base_url) or log in with `opencode auth login`, "
    "and list the variable under the tool's env: in config/tools.yaml",
    ErrorKind.BAD_REQUEST: "the provider refused the request: check the model name "
    "(with base_url a bare name, else provider/model)",
    ErrorKind.CLI_USAGE: "opencode refused its command line: check extra_args in config/tools.yaml",
    ErrorKind.BAD_OUTPUT: "opencode did not print its JSON events: check its version",
    "tool": "opencode refuses, when run headless, the tool calls its permission config does "
    "not allow (files outside the workspace, ...): allow them in opencode's config",
}


def provider_config(base_url: str, model: str | None) -> str:
    """opencode config (OPENCODE_CONFIG_CONTENT) adding an OpenAI-compatible provider at
    `base_url` that knows `model`; the key comes from OPENAI_API_KEY."""
    provider = {
        "npm": "@ai-sdk/openai-compatible",
        "name": "orchestrator base_url",
        "options": {"baseURL": base_url, "apiKey": "{env:" + KEY_ENV + "}"},
        "models": {model: {"name": model}} if model else {},
    }
    return json.dumps({"provider": {PROVIDER_ID: provider}, "autoupdate": False})


class OpencodeAdapter:
    enforces_budget = False
    install_hint = "npm i -g opencode-ai"  # shown by `orchestrator doctor` when it is missing

    def build(
        self, tool: ToolConfig, model: str | None, prompt: str, ctx: RunContext
    ) -> Invocation:
        # --title: no extra model call to name the session
        argv = [tool.binary, "run", "--format", "json", "--title", ctx.task_id]
        env = {"OPENCODE_DISABLE_AUTOUPDATE": "1"}
        if tool.base_url:
            env["OPENCODE_CONFIG_CONTENT"] = provider_config(tool.base_url, model)
            env["OPENCODE_DISABLE_MODELS_FETCH"] = "1"
        if model:
            argv += ["-m", f"{PROVIDER_ID}/{model}" if tool.base_url else model]
        if ctx.resume:  # a session's later turn: the history comes from opencode's own store
            argv += ["--session", ctx.resume]
        return Invocation(argv=[*argv, *tool.extra_args], stdin=prompt.encode(), env=env)

    def parse(
        self,
        tool: ToolConfig,
        model: str | None,
        stdout: bytes,
        stderr: bytes,
        exit_code: int | None,
    ) -> ParsedOutput:
        stream = OpencodeStream(model)
        for line in stdout.split(b"\n"):
            stream.feed(line)
        return stream.result(stderr, exit_code)

    def watch_line(self, line: bytes) -> ToolFailure | None:
        return None

    def stream(self, tool: ToolConfig, model: str | None) -> OpencodeStream:
        return OpencodeStream(model)


class OpencodeStream:
    """One run's events. The answer is the text of the last step that wrote any; usage and
    cost are summed over the steps' step_finish events."""

    def __init__(self, model: str | None) -> None:
        self.model = model
        self.stop: ToolFailure | None = None
        self.session: str | None = None
        self.steps = 0
        self.finished = 0
        self.step_text: list[str] = []
        self.answer: list[str] = []
        self.tokens = {"input": 0, "output": 0, "reasoning": 0, "read": 0, "write": 0}
        self.cost = 0.0
        self.error: dict[str, Any] | None = None
        self.events = 0
        self.reason: str | None = None  # the last step_finish's: "stop", "tool-calls", ...
        self.refused: str | None = None  # the last tool call's error

    def feed(self, line: bytes) -> list[Event]:
        try:
            obj = json.loads(line)
        except ValueError:
            return []
        if not isinstance(obj, dict):
            return []
        self.events += 1
        events: list[Event] = []
        if self.session is None and isinstance(obj.get("sessionID"), str):
            self.session = obj["sessionID"]
            events.append(Event(Kind.SESSION, session_id=self.session))
        part = _dict(obj.get("part"))
        return events + self._take(str(obj.get("type")), obj, part)

    def _take(self, kind: str, obj: dict[str, Any], part: dict[str, Any]) -> list[Event]:
        if kind == "step_start":
            self.steps += 1
            self.step_text = []
            return [Event(Kind.TURN, text=f"step {self.steps}")]
        if kind == "text" and isinstance(part.get("text"), str):
            self.step_text.append(part["text"])
            self.answer = self.step_text
            return [Event(Kind.TEXT, text=part["text"])]
        if kind == "tool_use":
            state = _dict(part.get("state"))
            name = str(part.get("tool"))
            events = [Event(Kind.TOOL, name=name, target=target_of(_snake(state.get("input"))))]
            if state.get("status") in ("completed", "error"):
                events.append(Event(Kind.TOOL_DONE, name=name, ok=state["status"] == "completed"))
            if state.get("status") == "error":
                self.refused = f"{name}: {state.get('error')}"
            return events
        if kind == "step_finish":
            self.finished += 1
            self.reason = str(part.get("reason"))
            self._count(part)
            return [Event(Kind.USAGE, usage=self._usage())]
        if kind == "error":
            self.error = _dict(obj.get("error"))
            return [Event(Kind.ERROR, text=_message(self.error))]
        return []

    def _count(self, part: dict[str, Any]) -> None:
        tokens = _dict(part.get("tokens"))
        cache = _dict(tokens.get("cache"))
        for key, value in [*tokens.items(), *cache.items()]:
            if key in self.tokens and isinstance(value, int | float):
                self.tokens[key] += int(value)
        cost = part.get("cost")
        if isinstance(cost, int | float):
            self.cost += cost

    def _usage(self) -> Usage:
        t = self.tokens  # opencode's input already leaves the cache out
        return Usage(t["input"], t["output"], t["read"], t["write"], t["reasoning"])

    def so_far(self) -> ParsedOutput:
        usage = self._usage() if self.finished else None
        cost = self.cost if self.cost > 0 else None  # 0: opencode knows no price for it
        return ParsedOutput(usage=usage, cost_usd=cost, model=self.model, session_id=self.session)

    def result(self, stderr: bytes, exit_code: int | None) -> ParsedOutput:
        reached = self.so_far()
        if self.error is not None:
            failure = classify(self.error)
        elif not self.finished:
            failure = _no_answer(stderr, exit_code, self.events)
        elif self.reason == "tool-calls":  # it stopped at a tool call (a refused permission)
            said = f": {self.refused}"[:400] if self.refused else ""
            text = f"opencode stopped after a tool call, without an answer{said}"
            failure = ToolFailure(ErrorKind.EXIT, text, HINTS["tool"])
        else:
            return ParsedOutput(
                "".join(self.answer), reached.usage, reached.cost_usd, self.model, self.session
            )
        return ParsedOutput(
            None, reached.usage, reached.cost_usd, self.model, self.session, failure
        )


def _snake(arguments: object) -> dict[str, Any]:
    """A tool call's arguments with snake_case names (opencode's are camelCase: filePath)."""
    return {_CAMEL.sub(r"_\1", k).lower(): v for k, v in _dict(arguments).items()}


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _message(error: dict[str, Any]) -> str:
    data = _dict(error.get("data"))
    return str(data.get("message") or error.get("name") or "unknown error")


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


def classify(error: dict[str, Any]) -> ToolFailure:
    """opencode's `error` event: {"name": "APIError", "data": {"message", "statusCode",
    "isRetryable", "responseHeaders", "responseBody"}}, or another error name."""
    data = _dict(error.get("data"))
    name, message = str(error.get("name")), _message(error)
    status = data.get("statusCode")
    wait = None
    if isinstance(status, int) and 400 <= status <= 599:
        kind = kind_for_status(status)
        headers = _dict(data.get("responseHeaders"))
        wait = _seconds(headers.get("retry-after"))
        text = f"the API answered HTTP {status}: {message}"
    elif name == "ProviderAuthError":
        status, kind, text = None, ErrorKind.AUTH, f"opencode: {message}"
    elif _CONNECTION.search(message):
        status, kind, text = None, ErrorKind.CONNECTION, f"could not reach the API: {message}"
    elif name == "MessageAbortedError":
        status, kind, text = None, ErrorKind.CANCELLED, f"opencode: {message}"
    else:
        status, kind, text = None, ErrorKind.EXIT, f"opencode failed ({name}): {message}"
    hint = HINTS.get(kind, "see the message; the next tool in the chain is tried")
    return ToolFailure(kind, text[:600], hint, status=status, retry_after_s=wait)


def _seconds(value: object) -> float | None:
    try:
        return float(str(value)) if value is not None else None
    except ValueError:
        return None


def _no_answer(stderr: bytes, exit_code: int | None, events: int) -> ToolFailure:
    said = " ".join(stderr.decode(errors="replace").split())[:400] or "(nothing on stderr)"
    if exit_code and not events:
        kind, text = ErrorKind.CLI_USAGE, f"opencode refused to run (exit {exit_code}): {said}"
    else:
        kind = ErrorKind.BAD_OUTPUT
        text = f"opencode ended (exit {exit_code}) without a step_finish event: {said}"
    return ToolFailure(kind, text, HINTS[kind])


ADAPTER = OpencodeAdapter()
