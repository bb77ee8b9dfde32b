"""A finished task in the terms of the OpenTelemetry GenAI semantic conventions: the spans
(one per task, one per attempt) and the metric points it makes. Plain data and plain
functions of the result and the config: no SDK here, so this reads and tests as a table.

Token counts: the orchestrator's `Usage` leaves cache reads and writes out of
`input_tokens`; the conventions count them in (`gen_ai.usage.input_tokens` SHOULD include
cached tokens, and both cache counts are parts of it). `semconv_usage` adds them back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Literal
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from collections.abc import Mapping

    from orchestrator.config import Config
    from orchestrator.results import AttemptRecord, Result

Value = str | int | float | bool
Attributes = dict[str, Value]

OPERATION = "invoke_agent"
# gen_ai.provider.name for each built-in adapter (the registry's well-known values).
ADAPTER_PROVIDERS = {"claude-code": "anthropic", "codex": "openai", "gemini": "gcp.gemini"}
# A models.yaml `provider:` spelled otherwise than the registry's value for it.
PROVIDER_ALIASES = {"google": "gcp.gemini", "gemini": "gcp.gemini", "vertex_ai": "gcp.vertex_ai"}
# Runs whose length is not known (lost with their Dask worker): no duration point.
UNTIMED = frozenset({"worker_lost"})
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class SpanPlan:
    """One span to create after the fact, with its own start and end (ns since the epoch)."""

    name: str
    kind: Literal["internal", "client"]
    start_ns: int
    end_ns: int
    attributes: Attributes
    error: str | None = None  # the span's status description when it ended in an error


@dataclass(frozen=True)
class Point:
    """One value recorded into a histogram, with its attributes."""

    value: float
    attributes: Attributes


@dataclass(frozen=True)
class TaskTelemetry:
    task: SpanPlan
    attempts: list[SpanPlan] = field(default_factory=list)
    tokens: list[Point] = field(default_factory=list)  # gen_ai.client.token.usage
    durations: list[Point] = field(default_factory=list)  # gen_ai.client.operation.duration


def semconv_usage(usage: Mapping[str, int]) -> Attributes:
    """The `gen_ai.usage.*` attributes of a normalised usage (docs/opentelemetry.md)."""
    read = usage.get("cache_read_tokens", 0)
    written = usage.get("cache_write_tokens", 0)
    attributes: Attributes = {
        "gen_ai.usage.input_tokens": usage.get("input_tokens", 0) + read + written,
        "gen_ai.usage.output_tokens": usage.get("output_tokens", 0),
        "gen_ai.usage.cache_read.input_tokens": read,
        "gen_ai.usage.cache_creation.input_tokens": written,
    }
    if usage.get("reasoning_tokens"):
        attributes["gen_ai.usage.reasoning.output_tokens"] = usage["reasoning_tokens"]
    return attributes


def provider_name(tool: str, model: str | None, config: Config) -> str:
    """The model's `provider:` in models.yaml when it has one, else the tool's adapter's
    provider, else (a generic tool) the tool's own name."""
    known = config.models.get(model) if model else None
    if known is not None and known.provider:
        name = known.provider.strip().lower()
        return PROVIDER_ALIASES.get(name, name)
    tool_config = config.tools.get(tool)
    if tool_config is not None and tool_config.adapter in ADAPTER_PROVIDERS:
        return ADAPTER_PROVIDERS[tool_config.adapter]
    return tool


def server_address(tool: str, config: Config) -> Attributes:
    """`server.address` and `server.port` of the tool's `base_url`, when it has one (without
    one the CLI talks to its provider's public API, which it does not say)."""
    tool_config = config.tools.get(tool)
    if tool_config is None or not tool_config.base_url:
        return {}
    try:
        url = urlsplit(tool_config.base_url)
        port = url.port or {"https": 443, "http": 80}.get(url.scheme)
    except ValueError:
        return {}
    if not url.hostname:
        return {}
    return {"server.address": url.hostname, **({"server.port": port} if port else {})}


def nanoseconds(moment: datetime) -> int:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return ((moment - _EPOCH) // timedelta(microseconds=1)) * 1000


def parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def describe(result: Result, config: Config) -> TaskTelemetry:
    """The spans and metric points of one finished task."""
    start, end = _task_bounds(result)
    agent = result.agent
    common: Attributes = {"gen_ai.operation.name": OPERATION}
    if agent:
        common["gen_ai.agent.name"] = agent
    attempts: list[SpanPlan] = []
    tokens: list[Point] = []
    durations: list[Point] = []
    for number, record in enumerate(result.attempts, 1):
        plan = _attempt_span(record, number, result, config, common, (start, end))
        attempts.append(plan)
        if record.outcome == "skipped":  # never run: no duration, no tokens
            continue
        metric = {k: v for k, v in plan.attributes.items() if k in _METRIC_KEYS}
        if plan.attributes.get("error.type") not in UNTIMED:
            durations.append(Point(max(record.duration_ms, 0) / 1000, metric))
        if record.usage is not None:
            usage = semconv_usage(record.usage)
            for kind in ("input", "output"):
                value = usage[f"gen_ai.usage.{kind}_tokens"]
                point = {k: v for k, v in metric.items() if k != "error.type"}
                tokens.append(Point(float(value), {**point, "gen_ai.token.type": kind}))
    return TaskTelemetry(
        _task_span(result, config, common, (start, end)), attempts, tokens, durations
    )


# Attributes the metrics carry (the spans carry more).
_METRIC_KEYS = frozenset(
    {
        "gen_ai.operation.name",
        "gen_ai.provider.name",
        "gen_ai.request.model",
        "gen_ai.response.model",
        "gen_ai.agent.name",
        "server.address",
        "server.port",
        "error.type",
    }
)


def _task_bounds(result: Result) -> tuple[int, int]:
    started = parse_time(result.started_at)
    finished = parse_time(result.finished_at)
    if started is None:
        firsts = [t for t in (parse_time(a.started_at) for a in result.attempts) if t]
        started = min(firsts) if firsts else finished or datetime.now(UTC)
    if finished is None:
        finished = started + timedelta(milliseconds=result.duration_ms or 0)
    start = nanoseconds(started)
    return start, max(start, nanoseconds(finished))


def _task_span(
    result: Result, config: Config, common: Attributes, bounds: tuple[int, int]
) -> SpanPlan:
    attributes: Attributes = {**common, "orchestrator.task.id": result.id}
    attributes["orchestrator.task.status"] = result.status
    made = [a for a in result.attempts if a.outcome != "skipped"]
    answered = next((a for a in made if a.outcome == "succeeded"), None)
    deciding = answered or (made[-1] if made else None)
    if deciding is not None:
        attributes["gen_ai.provider.name"] = provider_name(deciding.tool, deciding.model, config)
        attributes["orchestrator.tool"] = deciding.tool
        if deciding.model:
            attributes["gen_ai.request.model"] = deciding.model
    if answered is not None and result.model:
        attributes["gen_ai.response.model"] = result.model
    if result.session_id:
        attributes["gen_ai.conversation.id"] = result.session_id
    usages = [a.usage for a in result.attempts if a.usage is not None]
    if usages:
        totals: dict[str, int] = {}
        for usage in usages:
            for name, count in usage.items():
                totals[name] = totals.get(name, 0) + count
        attributes.update(semconv_usage(totals))
    _put(attributes, "orchestrator.route_reason", result.route_reason)
    _put(attributes, "orchestrator.fallback_from", result.fallback_from)
    _put(attributes, "orchestrator.cost_usd", result.cost_usd)
    attributes["orchestrator.attempts"] = len(made)
    error = None
    if result.status != "succeeded":
        kind = (result.error or {}).get("kind") or result.status
        attributes["error.type"] = kind
        error = f"{result.status}: {kind}"
    name = f"{OPERATION} {result.agent}" if result.agent else OPERATION
    return SpanPlan(name, "internal", bounds[0], bounds[1], attributes, error)


def _attempt_span(
    record: AttemptRecord,
    number: int,
    result: Result,
    config: Config,
    common: Attributes,
    bounds: tuple[int, int],
) -> SpanPlan:
    started = parse_time(record.started_at)
    start = nanoseconds(started) if started else bounds[0]
    start = min(max(start, bounds[0]), bounds[1])
    end = min(start + max(record.duration_ms, 0) * 1_000_000, bounds[1])
    attributes: Attributes = {**common, "orchestrator.task.id": result.id}
    attributes["gen_ai.provider.name"] = provider_name(record.tool, record.model, config)
    if record.model:
        attributes["gen_ai.request.model"] = record.model
    attributes.update(server_address(record.tool, config))
    attributes["orchestrator.tool"] = record.tool
    attributes["orchestrator.attempt.number"] = number
    attributes["orchestrator.attempt.outcome"] = record.outcome
    _put(attributes, "orchestrator.attempt.reason", record.reason or None)
    _put(attributes, "process.exit.code", record.exit_code)
    _put(attributes, "orchestrator.worker", record.worker)  # the Dask worker that ran it
    _put(attributes, "orchestrator.cost_usd", record.cost_usd)
    if record.usage is not None:
        attributes.update(semconv_usage(record.usage))
    kind = (record.error or {}).get("kind")
    error = None
    if record.outcome == "succeeded":  # the one attempt that answered
        _put(attributes, "gen_ai.response.model", record.model)
        _put(attributes, "gen_ai.conversation.id", result.session_id)
    elif record.outcome == "skipped":
        _put(attributes, "orchestrator.attempt.skipped_because", kind)
    else:
        error = str(kind or "failed")
        attributes["error.type"] = error
    return SpanPlan(f"attempt {record.tool}", "client", start, end, attributes, error)


def _put(attributes: Attributes, key: str, value: Value | None) -> None:
    if value is not None:
        attributes[key] = value
