"""A tool's slots (`max_concurrency`): the attempts waiting for one are served by task
priority, then in the order they came. A FIFO limiter would keep a `critical` task behind
every `normal` one queued for the same tool when the daemon's concurrency is above the
tool's."""

from __future__ import annotations

import contextlib
import heapq
import itertools
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import anyio

if TYPE_CHECKING:
    from collections.abc import AsyncIterator


@dataclass(order=True)
class _Waiter:
    rank: int
    seq: int
    event: anyio.Event = field(compare=False)
    gone: bool = field(default=False, compare=False)  # cancelled while waiting


@dataclass
class Slots:
    total: int
    busy: int = 0
    _waiting: list[_Waiter] = field(default_factory=list)
    _order: itertools.count[int] = field(default_factory=itertools.count)

    @contextlib.asynccontextmanager
    async def hold(self, rank: int) -> AsyncIterator[None]:
        """One slot for the body; `rank` 0 (critical) goes before 3 (low)."""
        if self.busy < self.total and not self._waiting:
            self.busy += 1
        else:
            waiter = _Waiter(rank, next(self._order), anyio.Event())
            heapq.heappush(self._waiting, waiter)
            try:
                await waiter.event.wait()
            except BaseException:
                if waiter.event.is_set():  # handed a slot as it was cancelled: pass it on
                    self._release()
                else:
                    waiter.gone = True
                raise
        try:
            yield
        finally:
            self._release()

    def _release(self) -> None:
        """Hand the slot to the first waiter still there (it stays busy), else free it."""
        while self._waiting:
            waiter = heapq.heappop(self._waiting)
            if not waiter.gone:
                waiter.event.set()
                return
        self.busy -= 1
