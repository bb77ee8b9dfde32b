"""A stand-in OpenTelemetry collector for the tests: an HTTP server on 127.0.0.1 that takes
OTLP/HTTP posts (`/v1/traces`, `/v1/metrics`, protobuf, gzip or not), decodes them with the
official protobuf classes and keeps them, so tests can read what the exporter really sent."""

from __future__ import annotations

import gzip
import threading
import zlib
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

if TYPE_CHECKING:
    from types import TracebackType

    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
    from opentelemetry.proto.metrics.v1.metrics_pb2 import HistogramDataPoint, Metric
    from opentelemetry.proto.trace.v1.trace_pb2 import Span


def value(any_value: AnyValue) -> Any:
    """An attribute's value as plain Python."""
    which = any_value.WhichOneof("value")
    return None if which is None else getattr(any_value, which)


def attributes(pairs: Any) -> dict[str, Any]:
    found: dict[str, Any] = {}
    pair: KeyValue
    for pair in pairs:
        found[pair.key] = value(pair.value)
    return found


@dataclass
class ReceivedSpan:
    span: Span
    resource: dict[str, Any]
    scope: str

    @property
    def name(self) -> str:
        return self.span.name

    @property
    def attributes(self) -> dict[str, Any]:
        return attributes(self.span.attributes)


@dataclass
class ReceivedMetric:
    metric: Metric
    resource: dict[str, Any]

    def points(self) -> list[HistogramDataPoint]:
        return list(self.metric.histogram.data_points)


class OTLPReceiver:
    """`with OTLPReceiver() as otlp:` listens on a free port of 127.0.0.1 until the block ends."""

    def __init__(self) -> None:
        self.traces: list[ExportTraceServiceRequest] = []
        self.metrics: list[ExportMetricsServiceRequest] = []
        self.paths: list[str] = []
        self.encodings: set[str] = set()
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                encoding = self.headers.get("Content-Encoding", "")
                receiver.encodings.add(encoding)
                if encoding == "gzip":
                    body = gzip.decompress(body)
                elif encoding == "deflate":
                    body = zlib.decompress(body)
                reply = receiver.take(self.path, body)
                if reply is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # quiet

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def take(self, path: str, body: bytes) -> bytes | None:
        reply: bytes
        with self.lock:
            self.paths.append(path)
            if path == "/v1/traces":
                self.traces.append(ExportTraceServiceRequest.FromString(body))
                reply = ExportTraceServiceResponse().SerializeToString()
            elif path == "/v1/metrics":
                self.metrics.append(ExportMetricsServiceRequest.FromString(body))
                reply = ExportMetricsServiceResponse().SerializeToString()
            else:
                return None
        return reply

    def spans(self) -> list[ReceivedSpan]:
        found: list[ReceivedSpan] = []
        with self.lock:
            for request in self.traces:
                for resource_spans in request.resource_spans:
                    resource = attributes(resource_spans.resource.attributes)
                    for scope_spans in resource_spans.scope_spans:
                        found.extend(
                            ReceivedSpan(span, resource, scope_spans.scope.name)
                            for span in scope_spans.spans
                        )
        return found

    def metric(self, name: str) -> list[ReceivedMetric]:
        found: list[ReceivedMetric] = []
        with self.lock:
            for request in self.metrics:
                for resource_metrics in request.resource_metrics:
                    resource = attributes(resource_metrics.resource.attributes)
                    for scope_metrics in resource_metrics.scope_metrics:
                        found.extend(
                            ReceivedMetric(metric, resource)
                            for metric in scope_metrics.metrics
                            if metric.name == name
                        )
        return found

    def __enter__(self) -> OTLPReceiver:
        self.thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)
