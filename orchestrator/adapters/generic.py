"""The generic adapter: any CLI declared in tools.yaml.

argv = [binary, *args], each element formatted on its own: `{model}`, `{prompt}`,
`{prompt_file}`, `{output_file}` (a file the tool writes its answer to, read in place of its
stdout), `{task_id}` and `{workspace}` are replaced by plain text substitution, so a
prompt is one argv element whatever it contains. A prompt appended at the end (no
`{prompt}` in args) that starts with `-` comes after `--`, so no tool reads it as an option;
config validation refuses a template that puts `{prompt}` alone where an option may stand.
Output is read as `text`, `json` or `jsonl`, with dotted paths (`usage.input_tokens`,
`items.0.text`) for each field. `jsonl` is a stream: each line is read as it comes (the
latest value found at each path so far is the field's value), which gives progress events
(the text, the usage so far) while the tool runs.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from orchestrator.adapters import _classify as c
from orchestrator.adapters._classify import retry_after
from orchestrator.adapters._resets import USAGE_WORDS
from orchestrator.adapters._stream import JsonLines, read_all
from orchestrator.adapters.base import (
    ErrorKind,
    Invocation,
    ParsedOutput,
    RunContext,
    ToolFailure,
    Usage,
)
from orchestrator.progress.events import Event, Kind

if TYPE_CHECKING:
    from orchestrator.config import OutputSpec, ToolConfig

PROMPT_FILE = "prompt.txt"
ANSWER_FILE = "answer.txt"  # `{output_file}`: where a tool that writes its answer puts it
_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([a-z_]+)\}")
_TOKEN_FIELDS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens")
_FIELDS = ("text", *_TOKEN_FIELDS, "cost_usd", "model", "session_id")
_RATE_LIMITED = re.compile(r"rate[- ]?limit|too many requests|\b429\b", re.I)


def format_arg(template: str, values: dict[str, str]) -> str:
    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name is None:
            return match.group(0)[0]  # "{{" → "{", "}}" → "}"
        return values.get(name, match.group(0))

    return _PLACEHOLDER.sub(replace, template)


def lookup(data: Any, path: str) -> Any:
    """Follow a dotted path through dicts and lists; None when any step is missing."""
    for part in path.split("."):
        if isinstance(data, dict):
            data = data.get(part)
        elif isinstance(data, list) and part.lstrip("-").isdigit():
            index = int(part)
            data = data[index] if -len(data) <= index < len(data) else None
        else:
            return None
    return data


class GenericAdapter:
    enforces_budget = False

    def build(
        self, tool: ToolConfig, model: str | None, prompt: str, ctx: RunContext
    ) -> Invocation:
        values = {
            "model": model or "",
            "prompt": prompt if tool.prompt == "arg" else "",
            "prompt_file": str(ctx.run_dir / PROMPT_FILE),
            "task_id": ctx.task_id,
            "workspace": str(ctx.workspace),
            "output_file": str(ctx.run_dir / ANSWER_FILE),
        }
        argv = [tool.binary, *(format_arg(arg, values) for arg in tool.args)]
        if tool.prompt == "arg" and not any("{prompt}" in arg for arg in tool.args):
            if prompt.startswith("-"):  # never where an option may stand: after "--",
                argv += [*tool.extra_args, "--", prompt]  # with the options before it
            else:
                argv += [prompt, *tool.extra_args]
        else:
            argv.extend(tool.extra_args)
        data = prompt.encode("utf-8")
        return Invocation(
            argv=argv,
            stdin=data if tool.prompt == "stdin" else None,
            files={PROMPT_FILE: data} if tool.prompt == "file" else {},
            answer_file=ANSWER_FILE if any("{output_file}" in a for a in tool.args) else None,
        )

    def parse(
        self,
        tool: ToolConfig,
        model: str | None,
        stdout: bytes,
        stderr: bytes,
        exit_code: int | None,
    ) -> ParsedOutput:
        parsed = self._parse(tool.output, model, stdout, stderr, exit_code)
        if exit_code and (parsed.failure is None or parsed.failure.kind is ErrorKind.BAD_OUTPUT):
            limit = limit_failure(c.text_of(stdout), c.text_of(stderr))
            return parsed if limit is None else replace(parsed, text=None, failure=limit)
        return parsed

    def _parse(
        self,
        spec: OutputSpec,
        model: str | None,
        stdout: bytes,
        stderr: bytes,
        exit_code: int | None,
    ) -> ParsedOutput:
        if spec.format == "jsonl":
            return read_all(JsonlStream(spec, model), stdout, stderr, exit_code)
        text = stdout.decode("utf-8", errors="replace")
        if spec.format == "text":
            return ParsedOutput(text=text.strip(), model=model)
        try:
            value = json.loads(text)
        except ValueError as exc:
            return _bad_output(f"json output could not be parsed: {exc}", exit_code)
        if not isinstance(value, dict):
            what = f"expected a JSON object, got {type(value).__name__}"
            return _bad_output(f"json output could not be parsed: {what}", exit_code)
        found = {name: _at(value, getattr(spec, name)) for name in _FIELDS}
        return _extract(found, spec, model, exit_code)

    def watch_line(self, line: bytes) -> ToolFailure | None:
        return None

    def stream(self, tool: ToolConfig, model: str | None) -> JsonlStream | None:
        return JsonlStream(tool.output, model) if tool.output.format == "jsonl" else None


class JsonlStream:
    """A jsonl tool's lines: each field is the latest value found at its path so far."""

    def __init__(self, spec: OutputSpec, model: str | None) -> None:
        self.spec = spec
        self.model = model
        self.lines = JsonLines(strict=True)
        self.stop: ToolFailure | None = None
        self.found: dict[str, Any] = {}  # field -> its latest value
        self.documents = 0
        self.reported: Usage | None = None  # in the last usage event
        self.paths = [(name, path) for name in _FIELDS if (path := getattr(spec, name))]

    def feed(self, line: bytes) -> list[Event]:
        events: list[Event] = []
        for doc in self.lines.objects(line):
            self.documents += 1
            counted = False
            for name, path in self.paths:
                value = lookup(doc, path)
                if value is None:
                    continue
                self.found[name] = value
                if name == "text":
                    words = value if isinstance(value, str) else json.dumps(value)
                    events.append(Event(Kind.TEXT, text=words))
                counted = counted or name in _TOKEN_FIELDS or name == "cost_usd"
            if counted and (usage := _usage(self.found)) != self.reported:
                self.reported = usage
                events.append(Event(Kind.USAGE, usage=usage))
        return events

    def so_far(self) -> ParsedOutput:
        return _reached(self.found, self.model)

    def result(self, stderr: bytes, exit_code: int | None) -> ParsedOutput:
        problem = None
        if self.lines.first_bad is not None:
            number, why = self.lines.first_bad
            cut = " (the last line, cut off mid-line)" if self.lines.last_bad else ""
            problem = f"jsonl output could not be parsed: line {number}{cut}: {why}"
        elif not self.documents:
            problem = "no jsonl object in the output"
        if problem is None:
            return _extract(self.found, self.spec, self.model, exit_code)
        return replace(_bad_output(problem, exit_code), usage=_usage(self.found))


def limit_failure(stdout: str, stderr: str) -> ToolFailure | None:
    """A failed run whose output says it hit a limit: a rate limit (with the wait it names),
    or a usage window (with when it opens), read from the words any CLI might print."""
    text = f"{stderr}\n{stdout}"
    if not (USAGE_WORDS.search(text) or _RATE_LIMITED.search(text)):
        return None
    said = c.stderr_summary(stderr) if stderr.strip() else c.shorten(stdout, 300)
    message, wait = f"the tool reports a limit: {said}", retry_after(text)
    found = c.failure(ErrorKind.RATE_LIMIT, message, key_env="", wait=wait)
    return c.with_window(found, text)


def _at(document: dict[str, Any], path: str | None) -> Any:
    return None if path is None else lookup(document, path)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        return float(value)
    except ValueError:
        return None


def _count(value: float | None) -> int:
    """A token count; one that is not a whole number (NaN, infinite, 2.5) is -1, which
    the boundary check (adapters.base.sane) refuses with a warning."""
    if value is None:
        return 0
    return int(value) if value.is_integer() else -1


def _usage(found: dict[str, Any]) -> Usage | None:
    counts = {name: _number(found.get(name)) for name in _TOKEN_FIELDS}
    if all(value is None for value in counts.values()):
        return None
    return Usage(**{name: _count(value) for name, value in counts.items()})


def _extract(
    found: dict[str, Any], spec: OutputSpec, model: str | None, exit_code: int | None
) -> ParsedOutput:
    """The fields found (a field's value, or None), as parsed output."""
    text = found.get("text")
    if spec.text is not None and text is None:
        return replace(
            _bad_output(f"the output has no {spec.text!r} field", exit_code),
            usage=_usage(found),
        )
    if text is not None and not isinstance(text, str):
        text = json.dumps(text)
    return replace(_reached(found, model), text=text)


def _reached(found: dict[str, Any], model: str | None) -> ParsedOutput:
    """Usage, cost, model and session of the fields found."""
    reported_model = found.get("model")
    session = found.get("session_id")
    return ParsedOutput(
        usage=_usage(found),
        cost_usd=_number(found.get("cost_usd")),
        model=str(reported_model) if reported_model is not None else model,
        session_id=str(session) if session is not None else None,
    )


def _bad_output(message: str, exit_code: int | None) -> ParsedOutput:
    if exit_code:  # a failing tool's output is often not the promised format: say it failed
        return ParsedOutput()
    return ParsedOutput(
        failure=ToolFailure(
            ErrorKind.BAD_OUTPUT, message, "check the tool's output settings in config/tools.yaml"
        )
    )


ADAPTER = GenericAdapter()
