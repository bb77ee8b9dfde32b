"""The OpenTelemetry SDK side: a tracer and a meter provider of our own (the global ones
are left alone), each with the SDK's OTLP/HTTP exporter, fed the plans of `genai`.

Spans go out in batches (BatchSpanProcessor, every few seconds and at shutdown); metrics
every OTEL_METRIC_EXPORT_INTERVAL (60 s by default) and at shutdown. The SDK reads its
settings (endpoints, headers, timeout, compression, resource) from the environment.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import SERVICE_NAME, SERVICE_VERSION, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode

from orchestrator import __version__
from orchestrator.otel.genai import describe

if TYPE_CHECKING:
    from collections.abc import Mapping

    from opentelemetry.context import Context

    from orchestrator.config import Config
    from orchestrator.otel.genai import SpanPlan
    from orchestrator.results import Result

log = logging.getLogger(__name__)

SCOPE = "orchestrator"
SERVICE = "agent-orchestrator"
# Histogram buckets: the conventions' advice, stretched for agent runs that last minutes.
TOKEN_BUCKETS = [4.0**n for n in range(14)]  # 1 … 67,108,864 tokens
SECONDS_BUCKETS = [0.01 * 2**n for n in range(19)]  # 10 ms … 43.7 min
_KINDS = {"internal": SpanKind.INTERNAL, "client": SpanKind.CLIENT}


def signals(env: Mapping[str, str]) -> tuple[bool, bool]:
    """Whether traces and metrics are asked for: a signal goes out when its own endpoint or
    the common one is set, unless OTEL_TRACES_EXPORTER / OTEL_METRICS_EXPORTER is `none`."""
    common = bool(env.get("OTEL_EXPORTER_OTLP_ENDPOINT"))

    def wanted(signal: str) -> bool:
        if env.get(f"OTEL_{signal}_EXPORTER", "").strip().lower() == "none":
            return False
        return common or bool(env.get(f"OTEL_EXPORTER_OTLP_{signal}_ENDPOINT"))

    return wanted("TRACES"), wanted("METRICS")


def resource() -> Resource:
    """The SDK's resource (OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES), named
    agent-orchestrator when the environment gives no service name."""
    found = Resource.create({SERVICE_VERSION: __version__})
    if str(found.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        found = found.merge(Resource({SERVICE_NAME: SERVICE}))
    return found


class OtelExporter:
    """An observer (orchestrator.observers.Observer) that exports each finished task."""

    def __init__(self, *, traces: bool, metrics: bool) -> None:
        self.tracer_provider: TracerProvider | None = None
        self.meter_provider: MeterProvider | None = None
        try:
            self._start(resource(), traces, metrics)
        except ValueError:  # a setting the SDK refuses: stop what had started
            self.shutdown()
            raise

    def _start(self, where: Resource, traces: bool, metrics: bool) -> None:
        if traces:
            self.tracer_provider = TracerProvider(resource=where)
            self.tracer_provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
            self.tracer = self.tracer_provider.get_tracer(SCOPE, __version__)
        if metrics:
            reader = PeriodicExportingMetricReader(OTLPMetricExporter())
            self.meter_provider = MeterProvider(resource=where, metric_readers=[reader])
            meter = self.meter_provider.get_meter(SCOPE, __version__)
            self.tokens = meter.create_histogram(
                "gen_ai.client.token.usage",
                unit="{token}",
                description="Number of input and output tokens used.",
                explicit_bucket_boundaries_advisory=TOKEN_BUCKETS,
            )
            self.durations = meter.create_histogram(
                "gen_ai.client.operation.duration",
                unit="s",
                description="GenAI operation duration.",
                explicit_bucket_boundaries_advisory=SECONDS_BUCKETS,
            )

    def task_finished(self, result: Result, config: Config) -> None:
        told = describe(result, config)
        if self.tracer_provider is not None:
            parent = self._span(told.task, None)
            context = trace.set_span_in_context(parent)
            for plan in told.attempts:
                self._span(plan, context).end(end_time=plan.end_ns)
            parent.end(end_time=told.task.end_ns)
        if self.meter_provider is not None:
            for point in told.tokens:
                self.tokens.record(int(point.value), point.attributes)
            for point in told.durations:
                self.durations.record(point.value, point.attributes)

    def _span(self, plan: SpanPlan, context: Context | None) -> trace.Span:
        span = self.tracer.start_span(
            plan.name,
            context=context,
            kind=_KINDS[plan.kind],
            attributes=plan.attributes,
            start_time=plan.start_ns,
        )
        if plan.error is not None:
            span.set_status(Status(StatusCode.ERROR, plan.error))
        return span

    def shutdown(self) -> None:
        """Send what is left, both signals at once: each export gives up after
        OTEL_EXPORTER_OTLP_TIMEOUT (10 s by default), retries included."""
        spans = None
        if self.tracer_provider is not None:
            spans = threading.Thread(target=self.tracer_provider.shutdown, name="otel-spans")
            spans.start()
        if self.meter_provider is not None:
            self.meter_provider.shutdown()
        if spans is not None:
            spans.join()


def exporter_from_environment(env: Mapping[str, str]) -> OtelExporter:
    traces, metrics = signals(env)
    protocol = env.get("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf").strip()
    if protocol not in ("", "http/protobuf"):
        log.warning(
            "OTEL_EXPORTER_OTLP_PROTOCOL=%s is not supported: exporting over http/protobuf",
            protocol,
        )
    sent = " and ".join(name for name, on in (("spans", traces), ("metrics", metrics)) if on)
    try:
        exporter = OtelExporter(traces=traces, metrics=metrics)
    except ValueError as exc:  # e.g. OTEL_BSP_SCHEDULE_DELAY=0: the tasks run all the same
        log.warning("OpenTelemetry export is off: the SDK refused an OTEL_* setting: %s", exc)
        return OtelExporter(traces=False, metrics=False)
    log.info("OpenTelemetry: exporting %s over OTLP/HTTP", sent or "nothing")
    return exporter
