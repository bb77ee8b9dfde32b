"""Who else hears of each finished task, beside telemetry: exporters chosen by the
environment (OpenTelemetry, when its extra is installed and an `OTEL_EXPORTER_OTLP_*`
endpoint is set). An observer is told once per task that ran (not for a task that waits
for quota), after its result is complete; it must never fail the task: what it raises is
logged and dropped. Built once per Engine, so the daemon and `exec` export alike.
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING, Protocol

from orchestrator.errors import install_extra

if TYPE_CHECKING:
    from collections.abc import Mapping

    from orchestrator.config import Config
    from orchestrator.results import Result

log = logging.getLogger(__name__)

# Any of these set asks for the OpenTelemetry export (the standard SDK variables).
OTEL_ENDPOINTS = (
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
)


class Observer(Protocol):
    def task_finished(self, result: Result, config: Config) -> None:
        """A task's final result (every attempt in it)."""

    def shutdown(self) -> None:
        """The process is ending: send what is buffered (bounded in time)."""


def from_environment(env: Mapping[str, str] | None = None) -> list[Observer]:
    """The observers the environment asks for; none when it asks for none (the usual
    case, which imports nothing)."""
    env = os.environ if env is None else env
    if env.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return []
    if not any(env.get(name) for name in OTEL_ENDPOINTS):
        return []
    try:
        from orchestrator.otel import exporter_from_environment
    except ImportError as exc:
        log.warning(
            "OpenTelemetry export is asked for but not installed (%s): %s",
            exc,
            install_extra("otel"),
        )
        return []
    return [exporter_from_environment(env)]


def tell(observers: list[Observer], result: Result, config: Config) -> None:
    for observer in observers:
        try:
            observer.task_finished(result, config)
        except Exception:  # an exporter's bug must not fail the task
            log.exception("an observer failed on task %s; the task is not affected", result.id)


def shut_down(observers: list[Observer]) -> None:
    for observer in observers:
        try:
            observer.shutdown()
        except Exception:
            log.exception("an observer failed while shutting down")
