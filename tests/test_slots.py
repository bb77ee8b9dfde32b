"""A tool's slots: by priority, then first come; a waiter cancelled before or as it is
served gives its place or its slot to the next."""

from __future__ import annotations

import anyio
import anyio.lowlevel
import pytest

from orchestrator.slots import Slots

pytestmark = pytest.mark.anyio


class Scene:
    """One slot, held by a normal task until `release` is set; `served` lists who got it
    after."""

    def __init__(self) -> None:
        self.slots = Slots(1)
        self.served: list[str] = []
        self.release = anyio.Event()

    async def holder(self) -> None:
        async with self.slots.hold(2):
            await self.release.wait()

    async def waiter(self, name: str, rank: int) -> None:
        async with self.slots.hold(rank):
            self.served.append(name)


async def test_waiters_are_served_by_priority_then_in_order() -> None:
    scene = Scene()
    slots, served, release, waiter = scene.slots, scene.served, scene.release, scene.waiter
    async with anyio.create_task_group() as tg:
        tg.start_soon(scene.holder)
        await anyio.wait_all_tasks_blocked()
        for name, rank in [("n1", 2), ("low", 3), ("n2", 2), ("critical", 0), ("high", 1)]:
            tg.start_soon(waiter, name, rank)
            await anyio.wait_all_tasks_blocked()
        release.set()
    assert served == ["critical", "high", "n1", "n2", "low"]
    assert slots.busy == 0


async def test_never_more_than_total_at_once() -> None:
    slots, now, most = Slots(3), 0, 0

    async def work(rank: int) -> None:
        nonlocal now, most
        async with slots.hold(rank):
            now += 1
            most = max(most, now)
            await anyio.sleep(0.01)
            now -= 1

    async with anyio.create_task_group() as tg:
        for n in range(20):
            tg.start_soon(work, n % 4)
    assert most == 3 and slots.busy == 0


async def test_a_cancelled_waiter_gives_way() -> None:
    scene = Scene()
    slots, served, release, waiter = scene.slots, scene.served, scene.release, scene.waiter
    async with anyio.create_task_group() as tg:
        tg.start_soon(scene.holder)
        await anyio.wait_all_tasks_blocked()
        with anyio.CancelScope() as scope:
            async with anyio.create_task_group() as doomed:
                doomed.start_soon(waiter, "cancelled", 0)
                await anyio.wait_all_tasks_blocked()
                scope.cancel()
        tg.start_soon(waiter, "next", 3)
        await anyio.wait_all_tasks_blocked()
        release.set()
    assert served == ["next"] and slots.busy == 0


async def test_a_waiter_cancelled_once_it_is_handed_the_slot_passes_it_on() -> None:
    slots, served = Slots(1), []
    release = anyio.Event()
    scope = anyio.CancelScope()

    async def holder() -> None:
        async with slots.hold(2):
            await release.wait()
        scope.cancel()  # the slot is handed over, then its new owner is cancelled

    async def doomed() -> None:
        with scope:
            async with slots.hold(0):
                await anyio.lowlevel.checkpoint()  # the cancellation lands here
                served.append("doomed")

    async def waiter() -> None:
        async with slots.hold(3):
            served.append("next")

    async with anyio.create_task_group() as tg:
        tg.start_soon(holder)
        await anyio.wait_all_tasks_blocked()
        tg.start_soon(doomed)
        await anyio.wait_all_tasks_blocked()
        tg.start_soon(waiter)
        await anyio.wait_all_tasks_blocked()
        release.set()
    assert served == ["next"] and slots.busy == 0
