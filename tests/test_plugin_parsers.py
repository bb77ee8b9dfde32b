"""The opencode and Qwen Code plugins' adapters: `parse` and the stream parsers over every
real output of those CLIs in tests/samples/plugins/ (recorded by scripts/capture-samples
against the fake API's Chat Completions), and `build` as exact argv, stdin, env and files.
Expectations come from what the fake API was told to answer (the index's `fake`) and the
calls it answered, never from the sample's own output."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from orchestrator.adapters import get_adapter
from orchestrator.adapters.base import ErrorKind, ParsedOutput, RunContext, Usage
from orchestrator.config import ToolConfig
from orchestrator.progress.events import Kind
from tests import capture_samples

SAMPLES = Path(__file__).resolve().parent / "samples" / capture_samples.PLUGINS_FOLDER
INDEX: dict[str, dict[str, Any]] = json.loads((SAMPLES / capture_samples.INDEX).read_text())
ADAPTERS = {"opencode": "opencode", "qwen": "qwen-code"}
MODELS = {"opencode": capture_samples.OPENCODE_MODEL, "qwen": capture_samples.QWEN_MODEL}
CTX = RunContext(task_id="t-1", workspace=Path("/ws"), run_dir=Path("/runs/t-1.1"))
STATUS_KINDS = {
    401: ErrorKind.AUTH,
    429: ErrorKind.RATE_LIMIT,
    500: ErrorKind.SERVER,
    503: ErrorKind.SERVER,
    529: ErrorKind.OVERLOADED,
}


def tool(cli: str, **options: Any) -> ToolConfig:
    return ToolConfig(adapter=ADAPTERS[cli], binary=cli, **options)


def parse(name: str) -> ParsedOutput:
    run = INDEX[name]
    stdout = (SAMPLES / run["stdout"]).read_bytes()
    stderr = (SAMPLES / run["stderr"]).read_bytes()
    exit_code = run["exit_code"] if isinstance(run["exit_code"], int) else None  # "timeout"
    config = tool(run["cli"])
    return get_adapter(config.adapter).parse(config, MODELS[run["cli"]], stdout, stderr, exit_code)


def answered_usage(name: str) -> Usage:
    """The sum of what the fake API reported to the calls it answered, as the adapters
    normalise it: Chat Completions has no cache-write count, so those are input tokens."""
    rows = [r for r in INDEX[name]["requests"] if r["status"] == 200]
    if name == "opencode-json-no-title":  # opencode does not report its title call
        rows = [{**rows[0], "count": 1}]
    counts = [0, 0, 0]
    for row in rows:
        given, out, read, written = row["usage"]
        for i, n in enumerate((given + written, out, read)):
            counts[i] += n * row["count"]
    return Usage(input_tokens=counts[0], output_tokens=counts[1], cache_read_tokens=counts[2])


def test_the_samples_are_the_capture_scripts_plugin_cases() -> None:
    assert set(INDEX) == set(capture_samples.PLUGIN_CASES)
    pins = json.loads((SAMPLES.parents[1] / "clis" / "package.json").read_text())["dependencies"]
    packages = {"opencode": "opencode-ai", "qwen": "@qwen-code/qwen-code"}
    for name, run in INDEX.items():
        assert pins[packages[run["cli"]]] in run["version"], name
        assert run["fake"] == capture_samples.PLUGIN_CASES[name].fake, name
    files = {p.name for p in SAMPLES.glob("*.txt")}
    assert files == {run[k] for run in INDEX.values() for k in ("stdout", "stderr")}


@pytest.mark.parametrize("name", sorted(n for n in INDEX if "reply" in INDEX[n]["fake"]))
def test_an_answered_run_gives_the_reply_usage_and_session(name: str) -> None:
    parsed = parse(name)
    assert parsed.failure is None, parsed.failure
    assert parsed.text is not None and parsed.text.strip() == f"ACK-{name}"
    assert parsed.usage == answered_usage(name)
    assert parsed.cost_usd is None  # opencode reports 0 for a model it has no price for
    assert parsed.model == MODELS[INDEX[name]["cli"]]
    assert parsed.session_id


@pytest.mark.parametrize("name", sorted(n for n in INDEX if "status" in INDEX[n]["fake"]))
def test_an_http_error_is_classified(name: str) -> None:
    run, parsed = INDEX[name], parse(name)
    assert parsed.failure is not None and parsed.text is None
    if run["exit_code"] == "timeout":  # the CLI kept retrying: the runner's timeout ends it
        assert parsed.failure.kind is ErrorKind.BAD_OUTPUT
        return
    status = run["fake"]["status"]
    assert (parsed.failure.kind, parsed.failure.status) == (STATUS_KINDS[status], status)
    assert f"HTTP {status}" in parsed.failure.message
    assert "(fake API)" in parsed.failure.message  # the provider's own words
    assert parsed.failure.hint


def test_opencode_reads_the_retry_after_of_a_429() -> None:
    failure = parse("opencode-json-http429").failure
    assert failure is not None and failure.retry_after_s == 7


@pytest.mark.parametrize("name", sorted(n for n in INDEX if INDEX[n]["fake"].get("down")))
def test_an_unreachable_api_never_passes_for_an_answer(name: str) -> None:
    assert INDEX[name]["exit_code"] == "timeout"  # both keep retrying: the timeout ends them
    parsed = parse(name)
    assert parsed.failure is not None and parsed.failure.kind is ErrorKind.BAD_OUTPUT


TOOL_SAMPLES = [("opencode-json-tool", "read"), ("qwen-stream-json-tool", "read_file")]


@pytest.mark.parametrize(("name", "tool_name"), TOOL_SAMPLES)
def test_a_tool_call_streams_as_events(name: str, tool_name: str) -> None:
    run = INDEX[name]
    config = tool(run["cli"])
    stream = get_adapter(config.adapter).stream(config, MODELS[run["cli"]])
    assert stream is not None
    events = []
    for line in (SAMPLES / run["stdout"]).read_bytes().split(b"\n"):
        events += stream.feed(line)
    kinds = [e.kind for e in events]
    assert Kind.SESSION in kinds and Kind.USAGE in kinds and Kind.TEXT in kinds
    calls = [e for e in events if e.kind is Kind.TOOL]
    assert [e.name for e in calls] == [tool_name]
    assert calls[0].target is not None and calls[0].target.endswith("notes.txt")
    assert [e.ok for e in events if e.kind is Kind.TOOL_DONE] == [True]
    assert stream.result(b"", 0) == parse(name)


def test_opencode_stopping_at_a_refused_tool_call_is_a_failure() -> None:
    run = INDEX["opencode-json-tool"]
    lines = (SAMPLES / run["stdout"]).read_bytes().split(b"\n")
    cut = next(i for i, line in enumerate(lines) if b'"reason":"tool-calls"' in line)
    refused = [line.replace(b'"status":"completed"', b'"status":"error"') for line in lines]
    stdout = b"\n".join(refused[: cut + 1])
    config = tool("opencode")
    parsed = get_adapter("opencode").parse(config, None, stdout, b"", 0)
    assert parsed.failure is not None and parsed.failure.kind is ErrorKind.EXIT
    assert "stopped after a tool call" in parsed.failure.message


def test_opencode_build() -> None:
    adapter = get_adapter("opencode")
    plain = adapter.build(tool("opencode"), None, "-p hi", CTX)
    assert plain.argv == ["opencode", "run", "--format", "json", "--title", "t-1"]
    assert plain.stdin == b"-p hi" and plain.env == {"OPENCODE_DISABLE_AUTOUPDATE": "1"}
    own = adapter.build(tool("opencode", extra_args=["--agent", "plan"]), "anthropic/x", "p", CTX)
    assert own.argv[-4:] == ["-m", "anthropic/x", "--agent", "plan"]
    local = adapter.build(tool("opencode", base_url="http://h:1/v1"), "m1", "p", CTX)
    assert local.argv[-2:] == ["-m", "orchestrator/m1"]
    config = json.loads(local.env["OPENCODE_CONFIG_CONTENT"])
    provider = config["provider"]["orchestrator"]
    assert provider["npm"] == "@ai-sdk/openai-compatible"
    assert provider["options"] == {"baseURL": "http://h:1/v1", "apiKey": "{env:OPENAI_API_KEY}"}
    assert provider["models"] == {"m1": {"name": "m1"}}
    assert local.env["OPENCODE_DISABLE_MODELS_FETCH"] == "1"


def test_qwen_build() -> None:
    adapter = get_adapter("qwen-code")
    options = {"base_url": "http://h:1/v1", "approval_mode": "yolo", "max_turns": 3,
               "extra_args": ["--debug"]}  # fmt: skip
    built = adapter.build(tool("qwen", **options), "m1", "hello", CTX)
    assert built.argv == [
        "qwen", "-o", "stream-json", "--auth-type", "openai", "--openai-base-url",
        "http://h:1/v1", "-m", "m1", "--approval-mode", "yolo", "--max-session-turns", "3",
        "--debug",
    ]  # fmt: skip
    assert built.stdin == b"hello"
    assert built.env == {"QWEN_CODE_SYSTEM_SETTINGS_PATH": "/runs/t-1.1/qwen-settings.json"}
    settings = json.loads(built.files["qwen-settings.json"])
    assert settings["model"]["generationConfig"]["maxRetries"] == 0
    plain = adapter.build(tool("qwen"), None, "hello", CTX)
    assert plain.argv == ["qwen", "-o", "stream-json"]


def test_a_later_session_turn_resumes_the_clis_own_session() -> None:
    later = dataclasses.replace(CTX, resume="ses-1")
    opencode = get_adapter("opencode").build(tool("opencode"), None, "p", later)
    assert opencode.argv[-2:] == ["--session", "ses-1"]
    qwen = get_adapter("qwen-code").build(tool("qwen"), None, "p", later)
    assert qwen.argv[-2:] == ["--resume", "ses-1"]
    assert getattr(get_adapter("qwen-code"), "session_usage", None) == "cumulative"
