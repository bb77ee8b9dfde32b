"""Recurring tasks: each schedule of config/schedules.yaml writes its task into the inbox at
every slot of its cron expression, in the budgets' time zone (expressions are read by
cronsim, a maintained library).

Exactly one task per slot: its id is `<schedule>-<slot time>`, the file is created
exclusively (of two writers, one wins), and the last slot written is kept in
work/schedules.json, saved before the file is written (a crash between the two loses that
slot rather than writing it twice). After downtime only the latest missed slot runs: once,
not once per slot missed. A schedule seen for the first time starts from now (no slot of
the past).
"""

from __future__ import annotations

import json
import logging
import time
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import anyio
from cronsim import CronSim

from orchestrator.results import dump_yaml
from orchestrator.workdir import atomic_write

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from orchestrator.config import Config, Schedule
    from orchestrator.workdir import Workdir

log = logging.getLogger(__name__)

STATE_FILE = "schedules.json"
MAX_SLEEP_S = 60.0  # look again at least this often (the clock may be set, or jump)


def latest_slot(expr: str, zone: ZoneInfo, now: datetime) -> datetime:
    """The latest slot of `expr` at or before `now`."""
    return next(CronSim(expr, now.astimezone(zone) + timedelta(seconds=1), reverse=True))


def next_slot(expr: str, zone: ZoneInfo, now: datetime) -> datetime:
    return next(CronSim(expr, now.astimezone(zone)))


def due(expr: str, zone: ZoneInfo, last: datetime, now: datetime) -> datetime | None:
    """The slot to write now: the latest one after `last` (the last written), or None."""
    slot = latest_slot(expr, zone, now)
    return slot if slot > last else None


def task_for(name: str, schedule: Schedule, slot: datetime) -> tuple[str, dict[str, Any]]:
    """The id and task mapping a schedule writes for `slot`."""
    task_id = f"{name}-{slot.strftime('%Y%m%dT%H%M')}"
    doc = {"id": task_id, **schedule.task, "created_by": f"schedule {name}"}
    doc.setdefault("scheduled_for", slot.isoformat())
    return task_id, doc


class Scheduler:
    """The schedules of one daemon, and the state that keeps them to one task a slot."""

    def __init__(
        self, config: Config, workdir: Workdir, clock: Callable[[], float] = time.time
    ) -> None:
        self.schedules = {n: s for n, s in config.schedules.items() if s.enabled}
        self.zone = ZoneInfo(config.policies.budgets.timezone)
        self.workdir = workdir
        self.clock = clock
        self.state_path = workdir.work / STATE_FILE
        self.last = self._load()

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), self.zone)

    def _load(self) -> dict[str, datetime]:
        try:
            raw = json.loads(self.state_path.read_text(encoding="utf-8"))
            return {str(k): datetime.fromisoformat(v) for k, v in dict(raw).items()}
        except FileNotFoundError:
            return {}
        except (OSError, ValueError, TypeError, AttributeError) as exc:
            log.warning("%s cannot be read (%s): schedules start from now", self.state_path, exc)
            return {}

    def _save(self) -> None:
        data = {name: slot.isoformat() for name, slot in self.last.items()}
        atomic_write(self.state_path, json.dumps(data, indent=1).encode("utf-8"))

    def tick(self) -> list[Path]:
        """Write the task of every schedule that has a slot due; the files written."""
        now = self._now()
        first_seen = [name for name in self.schedules if name not in self.last]
        slots = {}
        for name, schedule in self.schedules.items():
            slot = due(schedule.cron, self.zone, self.last.setdefault(name, now), now)
            if slot is not None:
                slots[name] = self.last[name] = slot
        if not slots and not first_seen:
            return []
        # The state first: a crash between the two loses a slot rather than writing it twice.
        try:
            self._save()
        except OSError as exc:
            log.error("cannot write %s: %s; the schedules wait", self.state_path, exc)
            return []
        written = [self._write(name, self.schedules[name], slot) for name, slot in slots.items()]
        return [path for path in written if path is not None]

    def _write(self, name: str, schedule: Schedule, slot: datetime) -> Path | None:
        from orchestrator.submit import create_exclusive

        task_id, doc = task_for(name, schedule, slot)
        target = self.workdir.inbox / f"{task_id}.yaml"
        try:
            if not create_exclusive(target, dump_yaml(doc).encode("utf-8")):
                log.info("schedule %s: %s is in the inbox already", name, target.name)
                return None
        except OSError as exc:  # the slot is lost, and said so; the next one is tried
            log.error("schedule %s: cannot write %s: %s", name, target.name, exc)
            return None
        log.info("schedule %s: wrote %s for %s", name, target.name, slot.isoformat())
        return target

    def seconds_to_next(self) -> float:
        now = self._now()
        waits = [
            (next_slot(s.cron, self.zone, now) - now).total_seconds()
            for s in self.schedules.values()
        ]
        return max(0.05, min([MAX_SLEEP_S, *waits]))

    async def run(self) -> None:
        """Write each slot's task as it comes, for as long as the daemon runs."""
        if not self.schedules:
            return
        while True:
            await anyio.to_thread.run_sync(self.tick)
            await anyio.sleep(self.seconds_to_next())
