"""OpenTelemetry export (docs/opentelemetry.md): the daemon and `exec` send a span per task
with a child per attempt, GenAI attributes and metrics over OTLP/HTTP to a receiver on
127.0.0.1 (tests/otlp_receiver.py), which decodes the protobuf the SDK really sent."""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from orchestrator import __version__
from orchestrator.config import Config, load_config
from orchestrator.otel.exporter import signals
from orchestrator.otel.genai import describe, provider_name, semconv_usage
from orchestrator.results import AttemptRecord, Result
from tests.conftest import (
    Daemon,
    base_config,
    cli_env,
    drop_task,
    orchestrator,
    result,
    wait_for,
    write_config,
)
from tests.fake_llm_api import FakeLLMAPI
from tests.otlp_receiver import OTLPReceiver, ReceivedSpan, attributes
from tests.test_real_clis import (
    CACHE_READ,
    CACHE_WRITE,
    INPUT,
    MODELS,
    OUTPUT,
    TOOLS,
    USAGE_MARKER,
    Workspace,
    agent_of,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

CLIENT, INTERNAL = 3, 1  # Span.SpanKind values
STATUS_UNSET, STATUS_ERROR = 0, 2

# A generic tool that reports cache reads and writes beside its input, and a session.
CACHEY = (  # no braces: the generic adapter reads {name} in args as a placeholder
    "import json, sys; sys.stdin.read(); print(json.dumps(dict(result='cached answer',"
    " model=sys.argv[1], session='sess-42', usage=dict(i=100, o=20, cr=50, cw=25))))"
)


def otel_files() -> dict[str, dict[str, Any]]:
    files = base_config()
    files["tools.yaml"]["tools"]["cachey"] = {
        "adapter": "generic",
        "binary": sys.executable,
        "args": ["-c", CACHEY, "{model}"],
        "output": {
            "format": "json",
            "text": "result",
            "model": "model",
            "session_id": "session",
            "input_tokens": "usage.i",
            "output_tokens": "usage.o",
            "cache_read_tokens": "usage.cr",
            "cache_write_tokens": "usage.cw",
        },
        "models": ["cache-model"],
    }
    files["models.yaml"]["models"]["cache-model"] = {
        "provider": "google",
        "price_per_mtok": {"input": 1, "output": 2, "cache_read": 0.1, "cache_write": 1.5},
    }
    agents = files["agents.yaml"]["agents"]
    agents["cached"] = {"preferred_tool": "cachey", "preferred_model": "cache-model"}
    agents["broken"] = {"preferred_tool": "failing"}
    return files


@pytest.fixture
def otel_workspace(workspace: Path) -> Path:
    write_config(workspace, otel_files())
    return workspace


def otel_env(tmp: Path, **variables: str) -> dict[str, str]:
    return cli_env(tmp, {"OTEL_SERVICE_NAME": "otel-test", **variables})


def ns(text: str) -> int:
    moment = datetime.fromisoformat(text)
    return int(moment.timestamp()) * 10**9 + moment.microsecond * 1000


def task_tree(spans: list[ReceivedSpan], task_id: str) -> tuple[ReceivedSpan, list[ReceivedSpan]]:
    """A task's span and its attempts' spans, in attempt order; checks they form one tree."""
    mine = [s for s in spans if s.attributes.get("orchestrator.task.id") == task_id]
    roots = [s for s in mine if not s.span.parent_span_id]
    assert len(roots) == 1, [s.name for s in mine]
    root = roots[0]
    children = [s for s in mine if s is not root]
    for child in children:
        assert child.span.parent_span_id == root.span.span_id
        assert child.span.trace_id == root.span.trace_id
        assert root.span.start_time_unix_nano <= child.span.start_time_unix_nano
        assert child.span.end_time_unix_nano <= root.span.end_time_unix_nano
    children.sort(key=lambda s: s.attributes["orchestrator.attempt.number"])
    return root, children


def check_times(span: ReceivedSpan, started_at: str, duration_ms: int) -> None:
    """The span starts when the result says, and lasts as long (to the millisecond)."""
    assert span.span.start_time_unix_nano == ns(started_at)
    length = span.span.end_time_unix_nano - span.span.start_time_unix_nano
    assert abs(length - duration_ms * 1_000_000) <= 1_000_000


def histogram_points(otlp: OTLPReceiver, name: str, unit: str) -> list[dict[str, Any]]:
    """Every data point of a histogram, its attributes with its count and sum."""
    metrics = otlp.metric(name)
    assert metrics, f"no {name} received (paths: {otlp.paths})"
    points: list[dict[str, Any]] = []
    for metric in metrics:
        assert metric.metric.unit == unit
        assert metric.resource["service.name"] == "otel-test"
        points.extend(
            {**attributes(p.attributes), "count": p.count, "sum": p.sum} for p in metric.points()
        )
    return points


def test_the_daemon_exports_a_span_per_task_and_per_attempt(
    otel_workspace: Path, tmp_path: Path
) -> None:
    root = otel_workspace
    drop_task(root, "plain.yaml", {"id": "plain", "agent": "worker", "prompt": "hello there"})
    drop_task(root, "fell.yaml", {"id": "fell", "agent": "chain-exit", "prompt": "try twice"})
    drop_task(root, "dead.yaml", {"id": "dead", "agent": "broken", "prompt": "never works"})
    drop_task(root, "cache.yaml", {"id": "cache", "agent": "cached", "prompt": "use the cache"})
    with OTLPReceiver() as otlp:
        env = otel_env(
            tmp_path, OTEL_EXPORTER_OTLP_ENDPOINT=otlp.url, OTEL_EXPORTER_OTLP_COMPRESSION="gzip"
        )
        done = orchestrator(root, "run", "--once", env=env)
        assert done.returncode == 0, done.stderr
        spans = otlp.spans()
        assert otlp.encodings == {"gzip"}
    assert {s.resource["service.name"] for s in spans} == {"otel-test"}
    assert {s.scope for s in spans} == {"orchestrator"}

    plain = result(root, "plain")
    task, attempts = task_tree(spans, "plain")
    assert task.name == "invoke_agent worker"
    assert task.span.kind == INTERNAL
    assert task.span.status.code == STATUS_UNSET
    check_times(task, plain["started_at"], plain["duration_ms"])
    assert task.span.end_time_unix_nano == ns(plain["finished_at"])
    usage = plain["usage"]
    assert task.attributes == {
        "gen_ai.operation.name": "invoke_agent",
        "gen_ai.agent.name": "worker",
        "gen_ai.provider.name": "test",  # models.yaml's provider of fake-large
        "gen_ai.request.model": "fake-large",
        "gen_ai.response.model": "fake-large",
        "gen_ai.usage.input_tokens": usage["input_tokens"],
        "gen_ai.usage.output_tokens": usage["output_tokens"],
        "gen_ai.usage.cache_read.input_tokens": 0,
        "gen_ai.usage.cache_creation.input_tokens": 0,
        "orchestrator.task.id": "plain",
        "orchestrator.task.status": "succeeded",
        "orchestrator.tool": "fake",
        "orchestrator.route_reason": plain["route_reason"],
        "orchestrator.cost_usd": pytest.approx(plain["cost_usd"]),
        "orchestrator.attempts": 1,
    }
    (attempt,) = attempts
    assert attempt.name == "attempt fake"
    assert attempt.span.kind == CLIENT
    check_times(attempt, plain["attempts"][0]["started_at"], plain["attempts"][0]["duration_ms"])
    assert attempt.attributes["gen_ai.request.model"] == "fake-large"
    assert attempt.attributes["gen_ai.response.model"] == "fake-large"
    assert attempt.attributes["gen_ai.usage.input_tokens"] == usage["input_tokens"]
    assert attempt.attributes["orchestrator.attempt.outcome"] == "succeeded"
    assert attempt.attributes["process.exit.code"] == 0
    assert "error.type" not in attempt.attributes

    # Failed, then succeeded on the fallback: the task is fine, its first attempt is not.
    fell = result(root, "fell")
    task, attempts = task_tree(spans, "fell")
    assert task.name == "invoke_agent chain-exit"
    assert task.span.status.code == STATUS_UNSET
    assert task.attributes["gen_ai.provider.name"] == "test"
    assert task.attributes["gen_ai.response.model"] == "fake-small"
    assert task.attributes["orchestrator.fallback_from"] == fell["fallback_from"]
    assert task.attributes["orchestrator.attempts"] == 2
    assert [a.name for a in attempts] == ["attempt failing", "attempt fake"]
    first, second = attempts
    assert first.span.status.code == STATUS_ERROR
    assert first.attributes["error.type"] == "nonzero_exit"
    assert first.attributes["process.exit.code"] == 3
    assert first.attributes["gen_ai.request.model"] == fell["attempts"][0]["model"]
    assert "gen_ai.response.model" not in first.attributes
    assert second.span.status.code == STATUS_UNSET
    for span, record in zip(attempts, fell["attempts"], strict=True):
        check_times(span, record["started_at"], record["duration_ms"])
    assert first.span.end_time_unix_nano <= second.span.start_time_unix_nano

    # Every attempt failed: the task span is an error, with the kind as error.type.
    dead = result(root, "dead")
    assert dead["status"] == "failed"
    task, attempts = task_tree(spans, "dead")
    assert task.span.status.code == STATUS_ERROR
    assert task.attributes["error.type"] == dead["error"]["kind"] == "nonzero_exit"
    assert task.attributes["orchestrator.task.status"] == "failed"
    assert "gen_ai.response.model" not in task.attributes
    assert len(attempts) == len(dead["attempts"]) == 3
    assert all(a.span.status.code == STATUS_ERROR for a in attempts)

    # Cache reads and writes are counted into input_tokens, as the conventions say.
    cache = result(root, "cache")
    assert cache["usage"]["input_tokens"] == 100  # the orchestrator's own: cache left out
    task, (attempt,) = task_tree(spans, "cache")
    for span in (task, attempt):
        assert span.attributes["gen_ai.usage.input_tokens"] == 175
        assert span.attributes["gen_ai.usage.cache_read.input_tokens"] == 50
        assert span.attributes["gen_ai.usage.cache_creation.input_tokens"] == 25
        assert span.attributes["gen_ai.usage.output_tokens"] == 20
        assert span.attributes["gen_ai.provider.name"] == "gcp.gemini"  # provider: google
        assert span.attributes["gen_ai.conversation.id"] == "sess-42"

    # Metrics: tokens per attempt by type, and each attempt's duration.
    tokens = histogram_points(otlp, "gen_ai.client.token.usage", "{token}")
    cached = [p for p in tokens if p["gen_ai.agent.name"] == "cached"]
    assert {p["gen_ai.token.type"]: p["sum"] for p in cached} == {"input": 175, "output": 20}
    assert all(p["gen_ai.provider.name"] == "gcp.gemini" for p in cached)
    assert all(p["gen_ai.operation.name"] == "invoke_agent" for p in tokens)
    worker = {
        p["gen_ai.token.type"]: p["sum"] for p in tokens if p["gen_ai.agent.name"] == "worker"
    }
    assert worker == {"input": usage["input_tokens"], "output": usage["output_tokens"]}
    durations = histogram_points(otlp, "gen_ai.client.operation.duration", "s")
    assert sum(p["count"] for p in durations) == 1 + 2 + 3 + 1  # attempts made
    failed = [p for p in durations if "error.type" in p]
    assert sum(p["count"] for p in failed) == 1 + 3
    assert {p["error.type"] for p in failed} == {"nonzero_exit"}
    plain_seconds = plain["attempts"][0]["duration_ms"] / 1000
    (worker_duration,) = [p for p in durations if p["gen_ai.agent.name"] == "worker"]
    assert worker_duration["sum"] == pytest.approx(plain_seconds, abs=0.002)


def test_a_running_daemon_exports_as_it_goes_and_flushes_at_sigterm(
    otel_workspace: Path, tmp_path: Path
) -> None:
    with OTLPReceiver() as otlp:
        env = otel_env(
            tmp_path,
            OTEL_EXPORTER_OTLP_ENDPOINT=otlp.url,
            OTEL_BSP_SCHEDULE_DELAY="100",  # ms: spans leave while the daemon runs
            OTEL_METRIC_EXPORT_INTERVAL="3600000",  # metrics only at the end
        )
        daemon = Daemon(otel_workspace, env=env)
        try:
            drop_task(otel_workspace, "a.yaml", {"id": "a", "agent": "worker", "prompt": "one"})
            wait_for(lambda: len(otlp.spans()) == 2, what="the task's two spans")
            assert otlp.metric("gen_ai.client.token.usage") == []
            drop_task(otel_workspace, "b.yaml", {"id": "b", "agent": "cached", "prompt": "two"})
            wait_for(lambda: len(otlp.spans()) == 4, what="the second task's spans")
        finally:
            assert daemon.stop() == 0, daemon.text()
        tokens = histogram_points(otlp, "gen_ai.client.token.usage", "{token}")
    assert {p["gen_ai.agent.name"] for p in tokens} == {"worker", "cached"}
    assert [s.name for s in otlp.spans() if not s.span.parent_span_id] == [
        "invoke_agent worker",
        "invoke_agent cached",
    ]


def test_exec_exports_only_the_signals_whose_endpoint_is_set(
    otel_workspace: Path, tmp_path: Path
) -> None:
    with OTLPReceiver() as otlp:
        env = cli_env(  # no OTEL_SERVICE_NAME: the service is named agent-orchestrator
            tmp_path,
            {
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": f"{otlp.url}/v1/traces",
                "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment.name=test",
            },
        )
        done = orchestrator(
            otel_workspace, "exec", "--agent", "chain-exit", "--prompt", "from exec", env=env
        )
        assert done.returncode == 0, done.stderr
        spans = otlp.spans()
        assert set(otlp.paths) == {"/v1/traces"}  # no metrics endpoint: no metrics
    (resource,) = {tuple(sorted(s.resource.items())) for s in spans}
    assert {
        "service.name": "agent-orchestrator",
        "service.version": __version__,
        "deployment.environment.name": "test",
    }.items() <= dict(resource).items()
    roots = [s for s in spans if not s.span.parent_span_id]
    assert [s.name for s in roots] == ["invoke_agent chain-exit"]
    _, attempts = task_tree(spans, roots[0].attributes["orchestrator.task.id"])
    assert [a.attributes["orchestrator.attempt.outcome"] for a in attempts] == [
        "failed",
        "succeeded",
    ]


def test_nothing_is_exported_when_the_sdk_is_disabled(otel_workspace: Path, tmp_path: Path) -> None:
    with OTLPReceiver() as otlp:
        env = otel_env(tmp_path, OTEL_EXPORTER_OTLP_ENDPOINT=otlp.url, OTEL_SDK_DISABLED="true")
        done = orchestrator(otel_workspace, "exec", "--agent", "worker", "--prompt", "x", env=env)
        assert done.returncode == 0, done.stderr
        assert otlp.paths == []


def test_without_the_extra_a_warning_says_how_to_install_it(
    otel_workspace: Path, tmp_path: Path
) -> None:
    hide = tmp_path / "hide-otel"  # as if the extra were not installed
    hide.mkdir()
    (hide / "sitecustomize.py").write_text("import sys\nsys.modules['opentelemetry'] = None\n")
    env = otel_env(tmp_path, OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:9", PYTHONPATH=str(hide))
    done = orchestrator(otel_workspace, "exec", "--agent", "worker", "--prompt", "x", env=env)
    assert done.returncode == 0, done.stderr
    assert "OpenTelemetry export is asked for but not installed" in done.stderr
    assert "uv sync --extra otel" in done.stderr


@pytest.mark.parametrize("bad", ["OTEL_BSP_SCHEDULE_DELAY", "OTEL_METRIC_EXPORT_INTERVAL"])
def test_a_setting_the_sdk_refuses_turns_the_export_off_not_the_tasks(
    otel_workspace: Path, tmp_path: Path, bad: str
) -> None:
    with OTLPReceiver() as otlp:
        env = otel_env(tmp_path, OTEL_EXPORTER_OTLP_ENDPOINT=otlp.url, **{bad: "-5"})
        done = orchestrator(otel_workspace, "exec", "--agent", "worker", "--prompt", "x", env=env)
        assert done.returncode == 0, done.stderr
        assert "OpenTelemetry export is off: the SDK refused an OTEL_* setting" in done.stderr
        assert otlp.paths == []


def test_an_unreachable_collector_costs_the_tasks_nothing(
    otel_workspace: Path, tmp_path: Path
) -> None:
    with OTLPReceiver() as otlp:
        url = otlp.url  # the port is free again once the receiver has gone
    drop_task(otel_workspace, "t.yaml", {"id": "t", "agent": "worker", "prompt": "hi"})
    env = otel_env(tmp_path, OTEL_EXPORTER_OTLP_ENDPOINT=url, OTEL_EXPORTER_OTLP_TIMEOUT="1")
    began = time.monotonic()
    done = orchestrator(otel_workspace, "run", "--once", env=env)
    assert done.returncode == 0, done.stderr
    assert result(otel_workspace, "t")["status"] == "succeeded"
    assert time.monotonic() - began < 15  # each signal's export gives up after its timeout


@pytest.fixture(scope="module")
def api() -> Iterator[FakeLLMAPI]:
    with FakeLLMAPI() as server:
        yield server


@pytest.mark.real_cli
@pytest.mark.parametrize("tool", TOOLS)
def test_a_real_cli_run_exports_its_provider_model_and_usage(
    tmp_path: Path, api: FakeLLMAPI, tool: str
) -> None:
    """Each vendor counts the cache its own way; the exported input_tokens agree."""
    ws = Workspace.create(tmp_path, api)
    ws.configure()
    drop_task(ws.root, "t.yaml", {"agent": agent_of(tool), "prompt": ws.prompt(USAGE_MARKER)})
    with OTLPReceiver() as otlp:
        ws.env.update(OTEL_EXPORTER_OTLP_ENDPOINT=otlp.url, OTEL_SERVICE_NAME="otel-test")
        ws.run("--once")
        spans = otlp.spans()
        tokens = histogram_points(otlp, "gen_ai.client.token.usage", "{token}")
    res = result(ws.root, "t")
    assert res["status"] == "succeeded", res
    task, (attempt,) = task_tree(spans, "t")
    provider = {"claude-code": "anthropic", "codex": "openai", "gemini": "gcp.gemini"}[tool]
    written = 0 if tool == "gemini" else CACHE_WRITE  # gemini has no cache-write count
    for span in (task, attempt):
        assert span.attributes["gen_ai.provider.name"] == provider
        assert span.attributes["gen_ai.request.model"] == MODELS[tool]
        assert span.attributes["gen_ai.response.model"] == res["model"]
        assert span.attributes["gen_ai.usage.input_tokens"] == INPUT + CACHE_READ + CACHE_WRITE
        assert span.attributes["gen_ai.usage.cache_read.input_tokens"] == CACHE_READ
        assert span.attributes["gen_ai.usage.cache_creation.input_tokens"] == written
        assert span.attributes["gen_ai.usage.output_tokens"] == OUTPUT
        if res.get("session_id"):
            assert span.attributes["gen_ai.conversation.id"] == res["session_id"]
    host, _, port = api.base_url.removeprefix("http://").partition(":")
    assert attempt.attributes["server.address"] == host == "127.0.0.1"
    assert attempt.attributes["server.port"] == int(port)
    by_type = {p["gen_ai.token.type"]: p["sum"] for p in tokens}
    assert by_type == {"input": INPUT + CACHE_READ + CACHE_WRITE, "output": OUTPUT}


def test_without_otel_variables_nothing_of_opentelemetry_is_imported() -> None:
    code = (
        "import sys; from orchestrator import observers, cli;"
        " assert observers.from_environment({'PATH': '/bin'}) == [];"
        " print(sorted(m for m in sys.modules if m.startswith('opentelemetry')))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "[]"


# --- the pure part: a table ------------------------------------------------------------


@pytest.fixture
def config(otel_workspace: Path) -> Config:
    loaded = load_config(otel_workspace)
    return loaded


# The same 1,000-token prompt, 800 of it read from the cache and 150 written to it, as each
# CLI reports it and as the adapters normalise it (docs/opentelemetry.md).
@pytest.mark.parametrize(
    ("vendor", "normalised"),
    [
        ("anthropic", {"input_tokens": 50, "cache_read_tokens": 800, "cache_write_tokens": 150}),
        ("openai", {"input_tokens": 50, "cache_read_tokens": 800, "cache_write_tokens": 150}),
        ("gemini", {"input_tokens": 200, "cache_read_tokens": 800}),
    ],
)
def test_every_vendor_ends_with_input_tokens_counting_the_cache(
    vendor: str, normalised: dict[str, int]
) -> None:
    got = semconv_usage({**normalised, "output_tokens": 30})
    assert got["gen_ai.usage.input_tokens"] == 1000
    assert got["gen_ai.usage.cache_read.input_tokens"] == 800
    assert got["gen_ai.usage.output_tokens"] == 30


@pytest.mark.parametrize(
    ("tool", "model", "expected"),
    [
        ("fake", "fake-large", "test"),  # models.yaml provider
        ("cachey", "cache-model", "gcp.gemini"),  # provider: google, the registry's value
        ("fake", "unknown-model", "fake"),  # generic tool, unknown model: the tool's name
        ("failing", None, "failing"),
    ],
)
def test_provider_name(config: Config, tool: str, model: str | None, expected: str) -> None:
    assert provider_name(tool, model, config) == expected


def test_skipped_and_lost_attempts_become_spans_without_durations(config: Config) -> None:
    start = "2026-01-02T03:04:05.000Z"
    skipped = AttemptRecord(
        tool="missing",
        model=None,
        reason="preferred",
        started_at=start,
        duration_ms=0,
        exit_code=None,
        outcome="skipped",
        error={"kind": "missing_binary", "message": "not found", "hint": ""},
    )
    ran = AttemptRecord(
        tool="fake",
        model="fake-small",
        reason="fallback",
        started_at="2026-01-02T03:04:05.010Z",
        duration_ms=1500,
        exit_code=0,
        outcome="succeeded",
        usage={"input_tokens": 10, "output_tokens": 5},
        worker="tcp://127.0.0.1:4242",
    )
    lost = AttemptRecord(
        tool="fake",
        model="fake-small",
        reason="preferred",
        started_at=start,
        duration_ms=0,
        exit_code=None,
        outcome="failed",
        error={"kind": "worker_lost", "message": "the worker died", "hint": ""},
        worker="tcp://127.0.0.1:4141",
    )
    told = describe(
        Result(
            id="t",
            status="succeeded",
            agent="chain-missing",
            tool="fake",
            model="fake-small",
            attempts=[skipped, lost, ran],
            started_at=start,
            finished_at="2026-01-02T03:04:06.600Z",
        ),
        config,
    )
    assert told.task.end_ns - told.task.start_ns == 1_600_000_000
    first, gone, second = told.attempts
    assert (gone.error, gone.attributes["orchestrator.worker"]) == (
        "worker_lost",
        "tcp://127.0.0.1:4141",
    )
    assert first.error is None
    assert first.attributes["orchestrator.attempt.skipped_because"] == "missing_binary"
    assert first.end_ns == first.start_ns
    assert second.end_ns - second.start_ns == 1_500_000_000
    assert second.attributes["orchestrator.worker"] == "tcp://127.0.0.1:4242"
    assert [p.value for p in told.durations] == [1.5]  # a lost run's length is unknown
    assert [p.attributes["gen_ai.token.type"] for p in told.tokens] == ["input", "output"]
    assert told.task.attributes["orchestrator.attempts"] == 2


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, (True, True)),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces"}, (True, False)),
        ({"OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": "http://c:4318/v1/metrics"}, (False, True)),
        (
            {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_TRACES_EXPORTER": "none"},
            (False, True),
        ),
        (
            {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_METRICS_EXPORTER": "None"},
            (True, False),
        ),
        ({}, (False, False)),
    ],
)
def test_which_signals_the_environment_asks_for(
    env: dict[str, str], expected: tuple[bool, bool]
) -> None:
    assert signals(env) == expected
