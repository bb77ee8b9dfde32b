"""The adapters' stream parsers fed line by line, as a run feeds them, over every sample in
tests/samples/: the output read live is `parse`'s, the progress events each stream gives
(session, turns, tool calls with their targets, text, usage so far), and streams cut off
mid-line (no crash, the events so far kept, a sensible failure and the usage reached)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

from orchestrator.adapters import get_adapter
from orchestrator.adapters.base import ErrorKind, ParsedOutput, StreamParser
from orchestrator.progress.events import Event, Kind, step_of
from tests.test_adapter_parsers import (
    INDEX,
    SAMPLES,
    SUCCESSES,
    expected,
    parse_sample,
    requested_model,
    tool_for,
)

if TYPE_CHECKING:
    from orchestrator.config import ToolConfig

K = ErrorKind
STREAM_FLAGS = {"claude": "stream-json", "codex": "--json", "gemini": "stream-json"}
STREAMS = sorted(
    name
    for name, run in INDEX.items()
    if STREAM_FLAGS[run["cli"]] in run["argv"] and (SAMPLES / run["stdout"]).stat().st_size
)
TOOL_CASES = sorted(name for name in INDEX if "tool" in INDEX[name]["fake"])
# the tool call each tool case shows: (name, the end of its target)
CALLED = {"claude": ("Read", "/notes.txt"), "codex": ("shell", "cat notes.txt'"),
          "gemini": ("read_file", "notes.txt")}  # fmt: skip


def parser_for(name: str) -> tuple[StreamParser, ToolConfig]:
    run = INDEX[name]
    tool = tool_for(run["cli"])
    parser = get_adapter(tool.adapter).stream(tool, requested_model(run["argv"]))
    assert parser is not None
    return parser, tool


def lines_of(name: str) -> list[bytes]:
    path = SAMPLES / str(INDEX[name]["stdout"])
    return path.read_bytes().splitlines()


def exit_code(name: str) -> int | None:
    code = INDEX[name]["exit_code"]
    return code if isinstance(code, int) else None


def fed(name: str, lines: list[bytes]) -> tuple[list[list[Event]], ParsedOutput, StreamParser]:
    """Each line's events, and the result, from one parser fed `lines` one by one."""
    parser, _ = parser_for(name)
    events = [parser.feed(line) for line in lines]
    stderr = (SAMPLES / INDEX[name]["stderr"]).read_bytes()
    return events, parser.result(stderr, exit_code(name)), parser


def flat(events: list[list[Event]]) -> list[Event]:
    return [event for line in events for event in line]


def test_there_are_stream_samples_of_every_cli() -> None:
    assert {INDEX[name]["cli"] for name in STREAMS} == {"claude", "codex", "gemini"}
    assert {INDEX[name]["cli"] for name in TOOL_CASES} == {"claude", "codex", "gemini"}


@pytest.mark.parametrize("name", sorted(INDEX))
def test_the_live_feed_reads_what_parse_reads(name: str) -> None:
    """One parser: the output read line by line is the output `parse` gives."""
    events, parsed, _ = fed(name, lines_of(name))
    assert parsed == parse_sample(name)
    assert all(isinstance(event, Event) for event in flat(events))


@pytest.mark.parametrize("name", [n for n in STREAMS if n in SUCCESSES])
def test_a_successful_stream_shows_its_session_text_and_usage(name: str) -> None:
    events, parsed, parser = fed(name, lines_of(name))
    every = flat(events)
    sessions = [e for e in every if e.kind is Kind.SESSION]
    assert sessions
    assert sessions[0].session_id == parsed.session_id
    assert any(e.kind is Kind.TURN for e in every)
    text = "".join(e.text or "" for e in every if e.kind is Kind.TEXT and e.name is None)
    assert INDEX[name]["fake"]["reply"] in text
    usages = [e.usage for e in every if e.kind is Kind.USAGE]
    assert usages
    assert usages[-1] == parsed.usage  # the last usage event is the final usage
    assert parser.so_far().usage == parsed.usage


@pytest.mark.parametrize("name", TOOL_CASES)
def test_a_tool_call_shows_its_name_target_and_result(name: str) -> None:
    events, _, _ = fed(name, lines_of(name))
    every = flat(events)
    tool, target_end = CALLED[INDEX[name]["cli"]]
    calls = [e for e in every if e.kind is Kind.TOOL]
    assert len(calls) == 1, calls
    (call,) = calls
    assert call.name == tool
    assert call.target is not None
    assert call.target.endswith(target_end)
    assert step_of(call) == f"tool call: {tool} {call.target}"
    done = [e for e in every if e.kind is Kind.TOOL_DONE]
    if name not in ("claude-stream-json-max-budget",):  # stopped before running the tool
        assert [(e.name, e.ok) for e in done] == [(tool, True)]
    turns = [e.text for e in every if e.kind is Kind.TURN]
    if INDEX[name]["cli"] != "codex" and done:  # codex calls its tools within one turn
        assert turns == ["turn 1", "turn 2"]  # the tool's result went back to the model
    assert every.index(call) < len(every) - 1


def test_claude_stopped_at_its_budget_is_budget_exceeded() -> None:
    failure = parse_sample("claude-stream-json-max-budget").failure
    assert failure is not None
    assert failure.kind is K.BUDGET_EXCEEDED
    assert "budget_usd" in failure.hint


def test_claude_retries_are_events() -> None:
    events, _, _ = fed(
        "claude-stream-json-http429-default-retries",
        lines_of("claude-stream-json-http429-default-retries"),
    )
    retries = [e for e in flat(events) if e.kind is Kind.RETRY]
    assert len(retries) == 10
    assert retries[0].text is not None
    assert "429" in retries[0].text
    assert (step_of(retries[0]) or "").startswith("retrying: API error 429")


def test_codex_network_wait_stops_the_live_run() -> None:
    parser, _ = parser_for("codex-exec-json-server-down")
    for line in lines_of("codex-exec-json-server-down"):
        parser.feed(line)
        if parser.stop is not None:
            break
    assert parser.stop is not None
    assert parser.stop.kind is K.CONNECTION


# --- cut off ---------------------------------------------------------------------------


def cut_points(name: str) -> list[tuple[int, int]]:
    """(line, column) in the middle of each non-empty line."""
    return [(n, len(line) // 2) for n, line in enumerate(lines_of(name)) if len(line) > 1]


@pytest.mark.parametrize("name", sorted(INDEX))
def test_a_stream_cut_off_mid_line_fails_sensibly(name: str) -> None:
    """Cut in the middle of any line (the rest lost): no crash, no answer taken for the
    whole one, the events of the lines before kept, and the failure the full stream
    shows when a line before the cut showed it already, else bad output."""
    lines = lines_of(name)
    full, _, _ = fed(name, lines)
    kind = expected(name)[0]
    for number, column in cut_points(name):
        events, parsed, parser = fed(name, [*lines[:number], lines[number][:column]])
        assert flat(events[:number]) == flat(full[:number])  # the events so far are kept
        assert parsed.failure is not None, (name, number)
        assert parsed.text is None
        assert parsed.failure.kind in (kind, K.BAD_OUTPUT, K.CLI_USAGE), (name, number)
        assert parsed.usage == parser.so_far().usage  # the usage reached is kept


@pytest.mark.parametrize("name", [n for n in STREAMS if n in SUCCESSES])
def test_a_success_cut_in_its_last_line_says_so_and_keeps_the_usage_reached(name: str) -> None:
    lines = lines_of(name)
    full, _, _ = fed(name, lines)
    _, parsed, _ = fed(name, [*lines[:-1], lines[-1][: len(lines[-1]) // 2]])
    assert parsed.failure is not None
    assert parsed.failure.kind is K.BAD_OUTPUT
    assert "cut off mid-line" in parsed.failure.message
    usages = [e.usage for e in flat(full[:-1]) if e.kind is Kind.USAGE]
    assert parsed.usage == (usages[-1] if usages else None)
    if INDEX[name]["cli"] == "claude":  # its messages' usage came before the result
        assert parsed.usage is not None
        assert parsed.usage.input_tokens > 0


def stream_event(event: dict[str, object]) -> bytes:
    return json.dumps({"type": "stream_event", "event": event}).encode()


def test_a_claude_tool_call_is_announced_from_its_streamed_input_when_its_line_is_lost() -> None:
    """The live watch keeps only a line's last 64 KiB: an `assistant` line carrying a big
    tool input (a Write of a big file) can be lost. The call is then announced from the
    input's streamed pieces, its target read from their start."""
    lines = lines_of("claude-stream-json-partial-tool")
    kept = [line for line in lines if not line.startswith(b'{"type":"assistant"')]
    events, _, _ = fed("claude-stream-json-partial-tool", kept)
    ((name, target),) = [(e.name, e.target) for e in flat(events) if e.kind is Kind.TOOL]
    assert name == "Read"
    assert target is not None
    assert target.endswith("/notes.txt")
    parser, _ = parser_for("claude-stream-json-partial-tool")
    big = '{"file_path": "/w/big.py", "content": "' + "x = 1\\n" * 5000 + '"}'
    block = {"type": "tool_use", "id": "toolu_1", "name": "Write", "input": {}}
    found = [
        *parser.feed(stream_event({"type": "content_block_start", "index": 0,
                                   "content_block": block})),
        *parser.feed(stream_event({"type": "content_block_delta", "index": 0, "delta":
                                   {"type": "input_json_delta", "partial_json": big}})),
        *parser.feed(stream_event({"type": "content_block_stop", "index": 0})),
    ]  # fmt: skip
    assert [(e.kind, e.name, e.target) for e in found] == [(Kind.TOOL, "Write", "/w/big.py")]
