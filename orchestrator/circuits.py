"""Circuit breakers per tool:model, shared by every task of a daemon: a run of transient
failures (connection, 5xx, overloaded, timeout, stalled) opens the circuit, and while it is
open attempts skip to their fallback (`skipped: cooldown`). When the wait is over, one
attempt is let through as a probe: success closes the circuit, failure opens it again for
twice as long (up to a cap), each wait jittered so that circuits opened together do not
probe together. The open circuits are written to work/circuits.json for `status`."""

from __future__ import annotations

import json
import logging
import random
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from orchestrator.adapters.base import ErrorKind
from orchestrator.policy import retry_backoff

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from orchestrator.config import CircuitBreaker

log = logging.getLogger(__name__)

TRANSIENT = frozenset(
    {
        ErrorKind.CONNECTION,
        ErrorKind.SERVER,
        ErrorKind.OVERLOADED,
        ErrorKind.TIMEOUT,
        ErrorKind.STALLED,
    }
)
STATE_FILE = "circuits.json"


@dataclass
class Circuit:
    failures: int = 0  # transient failures in a row
    opened: int = 0  # times opened in a row (the wait doubles each time)
    open_until: float = 0.0  # 0: closed
    probing: bool = False  # the one attempt let through after the wait is running


class Breakers:
    def __init__(
        self,
        settings: CircuitBreaker,
        state_path: Path | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        draw: Callable[[], float] = random.random,
    ) -> None:
        self.settings = settings
        self.state_path = state_path
        self.clock, self.wall, self.draw = clock, wall, draw
        self.circuits: dict[str, Circuit] = {}

    def allow(self, key: str) -> bool:
        """Whether an attempt on `key` (tool:model) may start now; after the wait, the
        first caller gets True (the probe) and the others False until it ends."""
        circuit = self.circuits.get(key)
        if circuit is None or not circuit.open_until:
            return True
        if self.clock() < circuit.open_until or circuit.probing:
            return False
        circuit.probing = True
        log.info("circuit %s: probing", key)
        return True

    def retry_at(self, key: str) -> float | None:
        """Seconds from now until `key` lets a probe through (None: closed)."""
        circuit = self.circuits.get(key)
        if circuit is None or not circuit.open_until:
            return None
        return max(0.0, circuit.open_until - self.clock())

    def succeeded(self, key: str) -> None:
        circuit = self.circuits.pop(key, None)
        if circuit is not None and circuit.open_until:
            log.warning("circuit %s: closed again", key)
            self._save()

    def failed(self, key: str, kind: ErrorKind | str) -> None:
        """An attempt on `key` failed: a transient failure counts toward opening (and a
        failed probe reopens at once); any other failure says nothing about the provider."""
        circuit = self.circuits.setdefault(key, Circuit())
        if kind not in TRANSIENT:
            circuit.probing = False
            return
        circuit.failures += 1
        if circuit.probing or circuit.failures >= self.settings.failures:
            wait = retry_backoff(
                self.settings.backoff, self.settings.backoff_max, circuit.opened, self.draw()
            )
            circuit.open_until = self.clock() + wait
            circuit.opened += 1
            circuit.probing = False
            log.warning(
                "circuit %s: open for %.0fs after %d transient failures in a row",
                key, wait, circuit.failures,
            )  # fmt: skip
            self._save()

    def open_circuits(self) -> dict[str, dict[str, object]]:
        """For `status`: each open circuit, its failures and when it lets a probe through."""
        now, wall = self.clock(), self.wall()
        return {
            key: {"failures": c.failures, "retry_at": wall + max(0.0, c.open_until - now)}
            for key, c in self.circuits.items()
            if c.open_until
        }

    def publish(self) -> None:
        """Write the open circuits for `status` (with a state file set)."""
        self._save()

    def _save(self) -> None:
        if self.state_path is None:
            return
        from orchestrator.workdir import atomic_write

        try:
            atomic_write(self.state_path, json.dumps(self.open_circuits()).encode(), durable=False)
        except OSError as exc:  # status shows less; the breakers work on
            log.warning("cannot write %s: %s", self.state_path, exc)
