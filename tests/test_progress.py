"""Live progress: the events log (batched writes), the live run (events, usage priced as it
comes, the budget stop), what `status` and `logs` read of it, and, through the real daemon
with a streaming stand-in CLI (tests/tools/stream_tool.py), a timeout that keeps the usage
reached, a budget passed mid-run, a stream cut off, `status` of a running task and
`logs ID [--follow]`."""

from __future__ import annotations

import json
import logging
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import pytest

from orchestrator.adapters import get_adapter
from orchestrator.adapters.base import ErrorKind, ParsedOutput, Usage
from orchestrator.config import OutputSpec, ToolConfig
from orchestrator.progress.live import LiveRun, Spent
from orchestrator.progress.log import EventLog, log_path
from orchestrator.progress.view import add_progress, last_record, progress_text, render
from orchestrator.results import AttemptRecord
from tests.conftest import (
    Daemon,
    base_config,
    cli_env,
    drop_task,
    fake_tool,
    orchestrator,
    result,
    wait_for,
    write_config,
)
from tests.test_adapter_parsers import INDEX, SAMPLES

if TYPE_CHECKING:
    from collections.abc import Iterator

STREAM_TOOL = str(Path(__file__).parent / "tools" / "stream_tool.py")
JSONL = OutputSpec(
    format="jsonl",
    text="text",
    input_tokens="usage.input_tokens",
    output_tokens="usage.output_tokens",
)
NOW = 1_800_000_000.0


# --- the events log -------------------------------------------------------------------


def records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_the_log_merges_waiting_text_and_usage_and_appends_in_batches(tmp_path: Path) -> None:
    path = tmp_path / "logs" / "t.events.jsonl"
    log = EventLog(path)
    log.add({"t": 1, "kind": "start"})
    log.add({"t": 2, "kind": "text", "text": "Hel"})
    log.add({"t": 3, "kind": "text", "text": "lo"})
    log.add({"t": 4, "kind": "usage", "usage": {"input_tokens": 1}})
    log.add({"t": 5, "kind": "usage", "usage": {"input_tokens": 2}})
    assert not path.exists()  # nothing is written before a flush
    log.flush()  # the folder is made
    assert records(path) == [
        {"t": 1, "kind": "start"},
        {"t": 3, "kind": "text", "text": "Hello"},
        {"t": 5, "kind": "usage", "usage": {"input_tokens": 2}},
    ]
    log.add({"t": 6, "kind": "text", "text": "again", "name": None})
    log.flush()
    log.flush()  # nothing waits: nothing written
    assert [r["t"] for r in records(path)] == [1, 3, 5, 6]
    assert "name" not in records(path)[-1]  # None fields are left out


def test_a_log_that_cannot_be_written_is_given_up_with_one_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "logs").write_text("a file where the folder should be")
    log = EventLog(tmp_path / "logs" / "t.events.jsonl")
    with caplog.at_level(logging.WARNING):
        for n in range(3):
            log.add({"t": n, "kind": "start"})
            log.flush()
    assert log.broken
    assert len(caplog.records) == 1
    assert "cannot write the events log" in caplog.records[0].getMessage()


# --- the live run ---------------------------------------------------------------------


def sample_lines(name: str) -> list[bytes]:
    return (SAMPLES / str(INDEX[name]["stdout"])).read_bytes().splitlines()


def live_run(
    tmp_path: Path,
    parser_of: str = "claude-code",
    *,
    output: OutputSpec | None = None,
    budget: float | None = None,
    spent: Spent | None = None,
    price: float = 1e-6,
) -> LiveRun:
    """A live run whose tokens cost `price` dollars each (a reported cost wins)."""
    tool = ToolConfig.model_validate(
        {"adapter": parser_of, "binary": "x", "output": output or OutputSpec()}
    )
    parser = get_adapter(parser_of).stream(tool, "m")
    assert parser is not None

    def cost(model: str | None, usage: Usage, reported: float | None) -> float:
        return reported if reported is not None else price * sum(vars(usage).values())

    clock = iter(range(int(NOW), int(NOW) + 10_000))
    return LiveRun(
        parser,
        EventLog(log_path(tmp_path, "t")),
        number=2,
        tool="claude-code",
        model="m",
        price=cost,
        spent=spent or Spent({}, 0.0),
        budget_usd=budget,
        clock=lambda: float(next(clock)),
    )


def attempt_record(
    outcome: str = "succeeded", error: dict[str, str] | None = None
) -> AttemptRecord:
    return AttemptRecord("claude-code", "m", "preferred", "2026-01-01T00:00:00Z", 10, 0,
                         outcome, error=error)  # fmt: skip


def test_a_claude_run_is_logged_as_steps_with_the_usage_and_cost_so_far(tmp_path: Path) -> None:
    live = live_run(tmp_path)
    for line in sample_lines("claude-stream-json-partial-tool"):
        assert live.watch(line) is None
    final = ParsedOutput(usage=live.parser.so_far().usage)
    live.finish(attempt_record(), final, 0.0123)
    logged = records(log_path(tmp_path, "t"))
    kinds = [r["kind"] for r in logged]
    assert kinds[:4] == ["start", "session", "turn", "usage"]
    assert kinds[-1] == "end"
    assert {r["attempt"] for r in logged} == {2}
    steps = [r["step"] for r in logged]
    assert steps[0] == "starting claude-code (m)"
    call = next(r for r in logged if r["kind"] == "tool")
    assert call["name"] == "Read"
    assert call["target"].endswith("/notes.txt")
    assert call["step"] == f"tool call: Read {call['target']}"
    after = [r for r in logged[logged.index(call) + 1 :] if r["kind"] != "usage"]
    assert [r["kind"] for r in after[:2]] == ["tool_done", "turn"]
    assert after[1]["step"] == "waiting for the model (turn 2)"
    text = next(r for r in logged if r["kind"] == "text")
    assert text["text"] == "ACK-claude-stream-json-partial-tool"
    assert logged[-1]["step"] == "attempt 2 succeeded"
    assert logged[-1]["cost_usd"] == 0.0123
    assert logged[-1]["usage"] == {"input_tokens": 2468, "output_tokens": 112,
                                   "cache_read_tokens": 156, "cache_write_tokens": 18}  # fmt: skip
    assert [r["t"] for r in logged] == sorted(r["t"] for r in logged)


def test_the_usage_so_far_counts_the_earlier_attempts(tmp_path: Path) -> None:
    live = live_run(tmp_path, spent=Spent({"input_tokens": 1000}, 0.5))
    for line in sample_lines("claude-stream-json-tool")[:2]:  # init, first message
        live.watch(line)
    usage, cost = live.totals()
    assert usage["input_tokens"] == 1000 + 1234
    assert cost == pytest.approx(0.5 + 1e-6 * (1234 + 1 + 78 + 9))
    unknown = live_run(tmp_path, spent=Spent({"input_tokens": 1000}, None))
    unknown.watch(sample_lines("claude-stream-json-tool")[1])
    assert unknown.totals()[1] is None  # an earlier attempt's cost is unknown


def usage_line(step: int, tokens: int = 100) -> bytes:
    usage = {"input_tokens": step * tokens, "output_tokens": 0}
    return json.dumps({"type": "progress", "text": f"step {step}", "usage": usage}).encode()


def test_the_run_is_stopped_once_its_cost_passes_the_budget(tmp_path: Path) -> None:
    live = live_run(tmp_path, "generic", output=JSONL, budget=0.5, spent=Spent({}, 0.1),
                    price=0.001)  # fmt: skip
    assert [live.watch(usage_line(step)) for step in (1, 2, 3, 4)] == [None] * 4  # $0.1 + 0.4
    failure = live.watch(usage_line(5))  # $0.1 + 0.5
    assert failure is not None
    assert failure.kind is ErrorKind.BUDGET_EXCEEDED
    assert "$0.6000" in failure.message
    assert "budget_usd $0.5" in failure.message
    assert live.watch(b"{}") is failure  # it stays stopped
    assert live.reached().usage == Usage(input_tokens=500)


def test_no_budget_no_stop_and_other_lines_pass(tmp_path: Path) -> None:
    live = live_run(tmp_path, "generic", output=JSONL, price=1.0)
    assert live.watch(usage_line(1000)) is None
    assert live.watch(b"not json at all") is None
    assert live.watch(b"") is None


async def test_events_are_written_within_the_flush_interval_while_the_tool_runs(
    tmp_path: Path,
) -> None:
    live = live_run(tmp_path, "generic", output=JSONL)
    live.log.flush_s = 0.05
    path = log_path(tmp_path, "t")
    async with live.flushing():
        live.watch(usage_line(1))
        assert not path.exists()  # batched: not at once
        await anyio.sleep(0.2)
        first = len(records(path))  # written meanwhile, by the flusher
        live.watch(usage_line(2))
        live.watch(usage_line(3))
        await anyio.sleep(0.2)
        assert [r["kind"] for r in records(path)[first:]] == ["text", "usage", "text", "usage"]
        live.watch(usage_line(4))
    assert records(path)[-1]["usage"] == {"input_tokens": 400}  # flushed on the way out


# --- what status and logs read --------------------------------------------------------


def write_log(work: Path, task: str, *lines: dict[str, Any] | str) -> Path:
    path = log_path(work, task)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "".join(line if isinstance(line, str) else json.dumps(line) + "\n" for line in lines)
    path.write_text(text)
    return path


def test_status_reads_the_last_whole_record_of_a_running_tasks_log(tmp_path: Path) -> None:
    usage = {"input_tokens": 1500, "output_tokens": 20, "cache_read_tokens": 3}
    step = "tool call: Edit src/app.py"
    write_log(tmp_path, "a", {"t": NOW - 30, "step": "old"},
              {"t": NOW - 4, "step": step, "usage": usage, "cost_usd": 0.01},
              '{"t": 1800000000, "step": "being writ')  # fmt: skip
    write_log(tmp_path, "stale", {"t": NOW - 500, "step": "from an earlier run"})
    running: list[dict[str, Any]] = [
        {"id": "a", "elapsed_s": 60.0},
        {"id": "stale", "elapsed_s": 10.0},
        {"id": "none", "elapsed_s": 1.0},
    ]
    add_progress(tmp_path, running, NOW)
    a, stale, none = running
    assert a == {"id": "a", "elapsed_s": 60.0, "idle_s": 4.0, "step": "tool call: Edit src/app.py",
                 "tokens": 1523, "usage": usage, "cost_usd": 0.01}  # fmt: skip
    assert stale["step"] is None
    assert stale["idle_s"] is None
    assert none == {"id": "none", "elapsed_s": 1.0, "idle_s": None, "step": None, "tokens": None,
                    "usage": None, "cost_usd": None}  # fmt: skip
    assert progress_text(a) == "  (idle 4s)  tool call: Edit src/app.py  1.5k tokens  $0.0100"
    assert progress_text(none) == ""
    assert last_record(tmp_path / "missing.jsonl") is None


def test_each_kind_of_record_reads_as_a_line() -> None:
    usage = {"input_tokens": 10, "output_tokens": 2}
    cases: list[tuple[str, dict[str, Any]]] = [
        ("start", {"tool": "claude-code", "model": "sonnet"}),
        ("session", {"session_id": "s-1", "name": "opus"}),
        ("turn", {"step": "waiting for the model (turn 2)"}),
        ("tool", {"step": "tool call: Bash ls"}),
        ("tool_done", {"name": "Bash", "ok": False}),
        ("text", {"text": "Hi\nthere"}),
        ("text", {"text": "hmm", "name": "reasoning"}),
        ("usage", {}),
        ("end", {"outcome": "failed", "error": "timeout", "text": "no answer within 4s"}),
    ]
    lines = [
        render({"t": NOW, "attempt": 1, "kind": kind, **fields, "usage": usage, "cost_usd": 0.5})
        for kind, fields in cases
    ]
    assert [line.split(" ", 2)[2] for line in lines] == [
        "started claude-code (sonnet)",
        "session s-1 (opus)",
        "waiting for the model (turn 2)",
        "tool call: Bash ls",
        "tool done: Bash failed",
        "text: Hi there",
        "thinking: hmm",
        "usage: 12 tokens (10 input, 2 output), $0.5000 so far",
        "ended: failed (timeout): no answer within 4s"
        " [12 tokens (10 input, 2 output), $0.5000 so far]",
    ]
    assert all(line.split(" ")[1] == "#1" for line in lines)


# --- through the daemon ---------------------------------------------------------------


def stream_files(**budgets: Any) -> dict[str, dict[str, Any]]:
    """base_config with a `stream` tool (stream_tool.py, jsonl), agent `streamer` preferring
    it on fake-large ($2 in, $10 out per MTok), falling back to fake:fake-small."""
    files = base_config()
    files["tools.yaml"]["tools"]["stream"] = fake_tool(
        args=[STREAM_TOOL], output=JSONL.model_dump(exclude_none=True), models=["fake-large"]
    )
    files["agents.yaml"]["agents"]["streamer"] = {
        "preferred_tool": "stream",
        "preferred_model": "fake-large",
        "fallback_chain": ["fake:fake-small"],
    }
    files["policies.yaml"]["retries"]["max_attempts"] = 2
    return files


@pytest.fixture
def streaming(workspace: Path) -> Path:
    write_config(workspace, stream_files())
    return workspace


def run_once(root: Path) -> None:
    done = orchestrator(root, "run", "--once")
    assert done.returncode == 0, done.stderr


def telemetry_rows(root: Path, task: str) -> list[dict[str, Any]]:
    with sqlite3.connect(root / "work" / "telemetry.db") as db:
        db.row_factory = sqlite3.Row
        rows = db.execute("SELECT * FROM invocations WHERE task_id = ? ORDER BY attempt", (task,))
        return [dict(row) for row in rows]


def test_a_run_killed_by_its_timeout_records_the_usage_it_had_reached(streaming: Path) -> None:
    drop_task(streaming, "slow.yaml", {"agent": "streamer", "timeout": "2s",
                                       "prompt": "LINES=3 TOKENS=1000 THEN_SLEEP=60"})  # fmt: skip
    run_once(streaming)
    res = result(streaming, "slow")
    first = res["attempts"][0]
    assert (first["tool"], first["error"]["kind"]) == ("stream", "timeout")
    assert first["usage"] == {"input_tokens": 3000, "output_tokens": 300,
                              "cache_read_tokens": 0, "cache_write_tokens": 0}  # fmt: skip
    assert first["cost_usd"] == pytest.approx(3000 * 2e-6 + 300 * 10e-6)
    assert first["cost_source"] == "partial"
    assert res["usage"]["input_tokens"] >= 3000  # the task's sum counts it
    assert res["cost_source"] == "partial"  # and says a part of it is as far as it got
    (row, *_) = telemetry_rows(streaming, "slow")
    assert (row["outcome"], row["error_kind"], row["cost_source"]) == (
        "failed",
        "timeout",
        "partial",
    )
    assert (row["input_tokens"], row["output_tokens"]) == (3000, 300)
    assert row["cost_usd"] == pytest.approx(0.009)
    ends = [r for r in records(log_path(streaming / "work", "slow")) if r["kind"] == "end"]
    assert (ends[0]["outcome"], ends[0]["error"]) == ("failed", "timeout")


def test_a_budget_passed_mid_run_stops_the_task(workspace: Path) -> None:
    files = stream_files()
    files["models.yaml"]["models"]["fake-large"]["price_per_mtok"] = {"input": 1000, "output": 0}
    write_config(workspace, files)
    # each line: 100 more input tokens, $0.10 more; the whole run would take 4 s
    drop_task(workspace, "b.yaml", {"agent": "streamer", "budget_usd": 0.45,
                                    "prompt": "LINES=20 EVERY=0.2 TOKENS=100"})  # fmt: skip
    started = time.monotonic()
    run_once(workspace)
    assert time.monotonic() - started < 20
    res = result(workspace, "b")
    assert res["status"] == "failed"
    assert res["error"]["kind"] == "budget_exceeded"
    assert "passed its budget_usd $0.45" in res["error"]["message"]
    (attempt,) = res["attempts"]  # the fallback is not tried: the budget is spent
    assert attempt["usage"]["input_tokens"] == 500  # stopped at the line that passed it
    assert attempt["cost_usd"] == pytest.approx(0.5)
    assert attempt["cost_source"] == "partial"
    assert attempt["duration_ms"] < 3500
    (row,) = telemetry_rows(workspace, "b")
    assert (row["error_kind"], row["cost_source"]) == ("budget_exceeded", "partial")


def test_a_stream_cut_off_mid_line_fails_with_the_usage_reached(streaming: Path) -> None:
    drop_task(streaming, "cut.yaml", {"agent": "streamer", "prompt": "LINES=2 TOKENS=10 CUT"})
    run_once(streaming)
    first = result(streaming, "cut")["attempts"][0]
    assert first["error"]["kind"] == "bad_output"
    assert "cut off mid-line" in first["error"]["message"]
    assert first["usage"]["input_tokens"] == 20
    assert first["cost_source"] == "computed"  # it ended on its own: not partial


def test_logs_after_the_end_in_text_and_json(streaming: Path) -> None:
    drop_task(streaming, "done.yaml", {"agent": "streamer", "prompt": "LINES=2 ANSWER=fine"})
    drop_task(streaming, "plain.yaml", {"agent": "worker", "prompt": "no stream here"})
    run_once(streaming)
    shown = orchestrator(streaming, "logs", "done")
    assert shown.returncode == 0, shown.stderr
    lines = [line.split(" ", 2)[2] for line in shown.stdout.splitlines()[:-1]]
    assert lines[0] == "started stream (fake-large)"
    assert "text: step 1" in lines
    assert "text: fine" in lines
    assert lines[-1].startswith("ended: succeeded [220 tokens")
    assert (
        shown.stdout.splitlines()[-1] == "done: succeeded; result in work/outbox/done.result.yaml"
    )
    as_json = orchestrator(streaming, "logs", "done", "--json")
    kinds = [json.loads(line)["kind"] for line in as_json.stdout.splitlines()]
    assert kinds[0] == "start"
    assert kinds[-1] == "end"
    plain = orchestrator(streaming, "logs", "plain")  # a tool whose output is not a stream
    assert plain.stdout.splitlines() == [
        "plain: succeeded (no events: its tool's output is not a stream); "
        "result in work/outbox/plain.result.yaml"
    ]
    assert not log_path(streaming / "work", "plain").exists()


def test_logs_of_an_unknown_task_is_an_error(streaming: Path) -> None:
    done = orchestrator(streaming, "logs", "nope", "--follow")
    assert done.returncode == 1
    assert done.stderr.startswith("error: no task 'nope' in ")
    assert done.stdout == ""
    bad = orchestrator(streaming, "logs", "../x")
    assert bad.returncode == 1
    assert bad.stderr.startswith("error: task id '../x'")


@pytest.fixture
def live_daemon(streaming: Path) -> Iterator[Daemon]:
    daemon = Daemon(streaming)
    yield daemon
    daemon.stop()


def status_json(root: Path) -> dict[str, Any]:
    done = orchestrator(root, "status", "--json")
    assert done.returncode == 0, done.stderr
    data: dict[str, Any] = json.loads(done.stdout)
    return data


def test_status_shows_a_running_tasks_progress(streaming: Path, live_daemon: Daemon) -> None:
    prompt = "LINES=3 EVERY=0.2 TOKENS=1000 THEN_SLEEP=4"
    drop_task(streaming, "run.yaml", {"agent": "streamer", "prompt": prompt})
    seen: list[dict[str, Any]] = []

    def at_step_3() -> bool:
        running = status_json(streaming)["running"]
        seen[:] = running
        return bool(running) and running[0]["step"] == "writing: step 3"

    wait_for(at_step_3, 20, "status to show the third step")
    (task,) = seen
    assert task["id"] == "run"
    assert task["tokens"] == 3300
    assert task["usage"] == {"input_tokens": 3000, "output_tokens": 300}
    assert task["cost_usd"] == pytest.approx(0.009)
    assert 0 <= task["idle_s"] <= task["elapsed_s"] + 1
    text = orchestrator(streaming, "status").stdout
    assert "writing: step 3  3.3k tokens  $0.0090" in text
    time.sleep(1.2)
    (later,) = status_json(streaming)["running"]
    assert later["idle_s"] >= task["idle_s"] + 1  # silent since: idle grows
    wait_for(lambda: (streaming / "work" / "outbox" / "run.result.yaml").exists(), 30, "the end")


def test_logs_follow_prints_events_as_they_happen_until_the_task_ends(
    streaming: Path, live_daemon: Daemon
) -> None:
    drop_task(streaming, "f.yaml", {"agent": "streamer", "prompt": "LINES=4 EVERY=0.5"})
    follower = subprocess.Popen(
        [sys.executable, "-m", "orchestrator", "--root", str(streaming), "logs", "f", "--follow"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env(streaming.parent),
    )
    assert follower.stdout is not None
    outbox = streaming / "work" / "outbox" / "f.result.yaml"
    with follower:  # each line, and whether the result existed when it arrived
        arrived = [(line.rstrip("\n"), outbox.exists()) for line in follower.stdout]
    assert follower.returncode == 0
    lines = [line for line, _ in arrived]
    assert [line.split(" ", 2)[2] for line in lines if " #1 text: " in line] == [
        f"text: step {n}" for n in (1, 2, 3, 4)
    ] + ["text: done"]
    assert lines[-1] == "f: succeeded; result in work/outbox/f.result.yaml"
    live = [line for line, ended in arrived if not ended]
    assert any("text: step 1" in line for line in live)  # shown while the task ran
