"""The generic adapter: any CLI declared in tools.yaml.

argv = [binary, *args], each element formatted on its own: `{model}`, `{prompt}`,
`{prompt_file}`, `{output_file}` (a file the tool writes its answer to, read in place of its
stdout), `{task_id}` and `{workspace}` are replaced by plain text substitution, so a
prompt is one argv element whatever it contains. A prompt appended at the end (no
`{prompt}` in args) that starts with `-` comes after `--`, so no tool reads it as an option;
config validation refuses a template that puts `{prompt}` alone where an option may stand.
Output is read as `text`, `json` or `jsonl`, with dotted paths (`usage.input_tokens`,
`items.0.text`) for each field.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

from orchestrator.adapters.base import (
    ErrorKind,
    Invocation,
    ParsedOutput,
    RunContext,
    ToolFailure,
    Usage,
)

if TYPE_CHECKING:
    from orchestrator.config import OutputSpec, ToolConfig

PROMPT_FILE = "prompt.txt"
ANSWER_FILE = "answer.txt"  # `{output_file}`: where a tool that writes its answer puts it
_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([a-z_]+)\}")
_TOKEN_FIELDS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens")


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
        text = stdout.decode("utf-8", errors="replace")
        spec = tool.output
        if spec.format == "text":
            return ParsedOutput(text=text.strip(), model=model)
        try:
            documents = _documents(text, spec.format)
        except ValueError as exc:
            return _bad_output(f"{spec.format} output could not be parsed: {exc}", exit_code)
        if not documents:
            return _bad_output(f"no {spec.format} object in the output", exit_code)
        return _extract(documents, spec, model, exit_code)

    def watch_line(self, line: bytes) -> ToolFailure | None:
        return None


def _documents(text: str, fmt: str) -> list[dict[str, Any]]:
    if fmt == "json":
        value = json.loads(text)
        if not isinstance(value, dict):
            raise ValueError(f"expected a JSON object, got {type(value).__name__}")
        return [value]
    docs = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"line {number}: {exc.msg}") from None
        if isinstance(value, dict):
            docs.append(value)
    return docs


def _last(documents: list[dict[str, Any]], path: str | None) -> Any:
    if path is None:
        return None
    for doc in reversed(documents):
        value = lookup(doc, path)
        if value is not None:
            return value
    return None


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


def _extract(
    documents: list[dict[str, Any]], spec: OutputSpec, model: str | None, exit_code: int | None
) -> ParsedOutput:
    text = _last(documents, spec.text)
    if spec.text is not None and text is None:
        return _bad_output(f"the output has no {spec.text!r} field", exit_code)
    if text is not None and not isinstance(text, str):
        text = json.dumps(text)
    counts = {name: _number(_last(documents, getattr(spec, name))) for name in _TOKEN_FIELDS}
    usage = None
    if any(value is not None for value in counts.values()):
        usage = Usage(**{name: _count(value) for name, value in counts.items()})
    cost = _number(_last(documents, spec.cost_usd))
    reported_model = _last(documents, spec.model)
    session = _last(documents, spec.session_id)
    return ParsedOutput(
        text=text,
        usage=usage,
        cost_usd=cost,
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
