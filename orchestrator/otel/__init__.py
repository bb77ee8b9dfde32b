"""OpenTelemetry export of tasks and attempts (spans and GenAI metrics over OTLP/HTTP)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping

    from orchestrator.observers import Observer


def exporter_from_environment(env: Mapping[str, str]) -> Observer:
    """The exporter the `OTEL_EXPORTER_OTLP_*` variables describe."""
    raise ImportError("the OpenTelemetry exporter is being written (issue 16)")
