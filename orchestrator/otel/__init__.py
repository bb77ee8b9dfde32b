"""OpenTelemetry export of tasks and attempts (spans and GenAI metrics over OTLP/HTTP)."""

from __future__ import annotations

# Importing this package imports the SDK: observers.py does it only when the environment
# asks for the export, and tells how to install the extra when the import fails.
from orchestrator.otel.exporter import OtelExporter, exporter_from_environment

__all__ = ["OtelExporter", "exporter_from_environment"]
