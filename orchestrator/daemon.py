"""The daemon: wires the stages (watcher → claim → intake: parse, validate, queue →
execute → outbox: the result) with one anyio task group tree, and shuts down gracefully.

    outer ── telemetry writer (outlives the jobs, drains at the end), signals
      └── finishing ── the finisher: writes results in batches (outlives the jobs)
            └── jobs ── one task per running job (global concurrency via a semaphore)
                  └── feeding ── watcher (or the --once drain), ingest, deferred
                                files, dispatcher (the first to stop on a signal)

A job holds its concurrency slot while its tool runs; then it hands its result to the
finisher, which writes every result that is ready in one worker-thread call, after one
wait for the telemetry of all of them to be committed.

SIGINT/SIGTERM: stop claiming, put queued (not started) tasks back into the inbox, let
running tasks finish within the grace period, then cancel them (their process groups are
killed; their files stay in running/ and are re-queued at the next start). A second
signal cancels at once. The signals are POSIX: Linux (WSL 2 too) and macOS; the daemon does
not run on native Windows (docs/platforms.md).
"""

from __future__ import annotations

import logging
import math
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import anyio

from orchestrator import control, pricing, reaper
from orchestrator.cancelling import Cancelling
from orchestrator.circuits import STATE_FILE as CIRCUITS_FILE
from orchestrator.engine import Engine, iso, now_utc
from orchestrator.execute import execute
from orchestrator.executors import dask_executor
from orchestrator.intake import DEFER_POLL_S, Intake
from orchestrator.isolation.worktree import Worktrees
from orchestrator.jobs import Job, JobQueue
from orchestrator.journal import Journal, kill_groups, quarantined
from orchestrator.outbox import Finished, write_results
from orchestrator.process import LIVE_TOOLS
from orchestrator.quota import WAITING, give_up, local_time, resume_epoch, wait_note
from orchestrator.results import Result, internal_error, workspace_fields
from orchestrator.schedules import Scheduler
from orchestrator.taskbook import TaskBook
from orchestrator.telemetry.store import prepare
from orchestrator.telemetry.writer import TelemetryWriter
from orchestrator.watcher import watch_inbox
from orchestrator.workdir import Workdir

if TYPE_CHECKING:
    from anyio.abc import TaskGroup
    from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

    from orchestrator.config import Config
    from orchestrator.routing import Attempt

log = logging.getLogger(__name__)

DEFAULT_GRACE_S = 30.0
CONTROL_POLL_S = 0.1  # --once: how often cancel requests are looked for while tasks run


@dataclass
class Options:
    once: bool = False
    concurrency: int = 8
    force_polling: bool = False
    grace_s: float = DEFAULT_GRACE_S
    debounce_ms: int = 50
    rescan_s: float = 3.0
    control_poll_s: float = CONTROL_POLL_S
    dask: str | None = None  # a Dask scheduler's address: the tools run on its workers


class Daemon(Cancelling):
    def __init__(self, config: Config, options: Options) -> None:
        self.config = config
        self.options = options
        self.workdir = Workdir(config.root)
        self.telemetry = TelemetryWriter(
            self.workdir.work / "telemetry.db", zone=config.policies.budgets.timezone
        )
        self.journal = Journal(self.workdir.work / ".journal")
        self.worktrees = Worktrees(config.root, self.workdir.work / "worktrees")
        self.engine = Engine(
            config,
            self.workdir.runs,
            telemetry=self.telemetry,
            on_group=self.journal.group,
        )
        # The daemon's circuits are what status shows (a stale file from the last run goes).
        self.engine.breakers.state_path = self.workdir.work / CIRCUITS_FILE
        if options.dask is not None:
            self.engine.executor = dask_executor(options.dask, config.root)
        self.queue = JobQueue()
        self.slots = anyio.Semaphore(options.concurrency)
        self.active = 0
        self.book = TaskBook(config, self.workdir)
        self.intake = Intake(
            config, self.workdir, self.book, self.queue, self.telemetry, self._deliver
        )
        self.idle = anyio.Event()
        # Tasks from their dispatch until their result is written, for `cancel`.
        self.running_scopes: dict[str, anyio.CancelScope] = {}
        self.feeding: TaskGroup
        self.jobs: TaskGroup
        self.finished: MemoryObjectSendStream[Finished]
        self.jobs_started = False

    # --- lifecycle ----------------------------------------------------------------------

    async def run(self) -> None:
        self.workdir.ensure()
        with self.workdir.lock():
            reaper.adopt_orphans()  # what escapes a tool's group becomes ours to sweep
            zone = self.config.policies.budgets.timezone
            await anyio.to_thread.run_sync(prepare, self.telemetry.path, zone)
            self.workdir.clean_up()
            self.journal.load()
            reaper.kill_strays(self.workdir.runs)  # before work/runs is emptied
            kill_groups(self.journal)
            self.workdir.empty_runs()
            await self.worktrees.recover()  # their tools are dead: commit what they left
            self.journal.open({p.name for p in self.workdir.in_running()})
            self.engine.breakers.publish()
            for path in self.workdir.in_running():
                log.warning("re-queueing %s, left in running/ by an earlier stop", path.name)
                self.intake.admit(path, recovered=True)
            async with anyio.create_task_group() as outer:
                outer.start_soon(self.telemetry.run)
                outer.start_soon(anyio.to_thread.run_sync, pricing.warm_up)
                signals, executor = anyio.CancelScope(), anyio.CancelScope()
                outer.start_soon(self._signals, signals)
                outer.start_soon(self._publish_executor, executor)
                send, receive = anyio.create_memory_object_stream[Finished](math.inf)
                async with anyio.create_task_group() as finishing:
                    finishing.start_soon(self._finisher, receive)
                    with send:
                        self.finished = send
                        await self._run_jobs()
                signals.cancel()
                executor.cancel()
                self.telemetry.close()
            await reaper.sweep(LIVE_TOOLS)  # no run is left: every orphan goes
            self.journal.close()
            self.engine.close()
            await self.engine.executor.close()
            for task_id, (_, job) in self.intake.timed.items():
                later = "waits for quota" if job.carried else "is scheduled for later"
                log.warning("%s %s; left in the inbox", task_id, later)
                self.workdir.unclaim(job.path)
            for task_id, job in self.book.waiting.items():  # back to the inbox for the next run
                log.warning("%s still waits for its dependencies; left in the inbox", task_id)
                self.workdir.unclaim(job.path)

    async def _run_jobs(self) -> None:
        async with anyio.create_task_group() as jobs, anyio.create_task_group() as feeding:
            self.feeding, self.jobs = feeding, jobs
            self.jobs_started = True
            feeding.start_soon(self._dispatch, jobs)
            feeding.start_soon(self.intake.retry_deferred)
            feeding.start_soon(self.intake.release_timed)
            scheduler = Scheduler(self.config, self.workdir)
            if self.options.once:
                await anyio.to_thread.run_sync(scheduler.tick)  # slots due now, once
                feeding.start_soon(self._drain_once, feeding)
            else:
                send, receive = anyio.create_memory_object_stream[Path](math.inf)
                feeding.start_soon(self._ingest, receive)
                feeding.start_soon(scheduler.run)
                await feeding.start(
                    lambda task_status: watch_inbox(
                        self.workdir,
                        send,
                        force_polling=self.options.force_polling,
                        debounce_ms=self.options.debounce_ms,
                        rescan_s=self.options.rescan_s,
                        task_status=task_status,
                    )
                )
                log.info("daemon ready: %s", self.workdir.inbox)

    async def _publish_executor(self, scope: anyio.CancelScope) -> None:
        """A remote executor's state (its workers, what runs where) for `status`."""
        publish = getattr(self.engine.executor, "publish", None)
        if publish is not None:
            with scope:
                await publish()

    async def _signals(self, scope: anyio.CancelScope) -> None:
        with scope, anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for signum in signals:
                log.warning(
                    "%s: no new tasks; waiting up to %gs for %d running (signal again to stop now)",
                    signal.Signals(signum).name,
                    self.options.grace_s,
                    self.active,
                )
                self.feeding.cancel_scope.cancel()
                break
            with anyio.move_on_after(self.options.grace_s):
                async for _ in signals:
                    break
            log.warning("stopping running tasks; they are re-queued at the next start")
            self.jobs.cancel_scope.cancel()

    # --- feeding ------------------------------------------------------------------------

    async def _ingest(self, receive: MemoryObjectReceiveStream[Path]) -> None:
        async with receive:
            async for path in receive:
                self._take(path)

    def _take(self, path: Path) -> None:
        if path.parent == self.workdir.control:
            self._control(path)
            return
        claimed = self.workdir.claim(path)
        if claimed is not None:
            self.intake.admit(claimed)

    async def _drain_once(self, feeding: TaskGroup) -> None:
        """--once: take what is in the inbox (and what the tasks hand off), then stop."""
        while True:
            for path in [*self.workdir.control_requests(), *self.workdir.pending()]:
                self._take(path)
            if not len(self.queue) and not self.active and not self.intake.deferred:
                if not self.workdir.pending():
                    break
                continue
            self.idle = anyio.Event()
            with anyio.move_on_after(DEFER_POLL_S if self.intake.deferred else math.inf):
                await self._serve_control_until_idle()
        feeding.cancel_scope.cancel()

    async def _serve_control_until_idle(self) -> None:
        """--once has no watcher: while tasks run, cancel requests are looked for every
        `control_poll_s` (a listing of a small folder)."""
        while not self.idle.is_set():
            with anyio.move_on_after(self.options.control_poll_s):
                await self.idle.wait()
            for path in self.workdir.control_requests():
                self._control(path)

    async def _dispatch(self, jobs: TaskGroup) -> None:
        try:
            while True:
                await self.slots.acquire()
                try:
                    job = await self.queue.get()
                except BaseException:
                    self.slots.release()
                    raise
                self.active += 1
                if job.task is not None and job.verdict is None:  # cancellable from now on
                    self.running_scopes[job.task.id] = anyio.CancelScope()
                jobs.start_soon(self._run_job, job)
        finally:
            for job in self.queue.drain():  # claimed but never started: back to the inbox
                self.workdir.unclaim(job.path)
                if job.task is not None:
                    self.book.in_flight.discard(job.task.id)

    # --- running ------------------------------------------------------------------------

    def _deliver(self, verdict: Job) -> None:
        """A result decided without running (rejection, cancellation) is written at once,
        without waiting for a free slot; before the job group exists it is queued."""
        if self.jobs_started:
            self.active += 1
            self.jobs.start_soon(self._run_job, verdict, False)
        else:
            self.queue.put(verdict)

    async def _run_job(self, job: Job, holds_slot: bool = True) -> None:
        """Run a job (or take its verdict) and hand the result to the finisher; the slot
        is free as soon as the tool has ended."""
        handed_over = False
        try:
            result = await self._result_of(job)
            if result.status == WAITING and self._wait_for_quota(job, result):
                handed_over = True  # parked: its file stays claimed, its id in flight
                return
            result.task_file = os.fsencode(job.path.name).decode("utf-8", "backslashreplace")
            follow_up = self.book.handoff(job, result)
            if job.verdict is None:  # its tool has ended and its answer is read: what is
                self.journal.ran(job.path.name)  # left (writing the result) cannot fail it
            self.finished.send_nowait(Finished(job, result, follow_up))
            handed_over = True
        finally:
            if holds_slot:
                self.slots.release()
            if not handed_over:  # cancelled: the file stays in running/
                self._done(job)

    def _wait_for_quota(self, job: Job, result: Result) -> bool:
        """Park a job whose tools are all out of quota until the first window opens; False
        when it has waited `max_wait` already (its result then says it failed)."""
        assert job.task is not None
        settings = self.config.policies.usage_windows
        now = time.time()
        job.waiting_since = job.waiting_since or now
        if give_up(result, job.waiting_since, settings):
            return False
        self.journal.ran(job.path.name)  # a wait is not a run that may have crashed us
        until = resume_epoch(result)
        error = result.error or {}
        result.warnings.append(wait_note(now, until, error.get("message", "")))
        job.carried = result
        self.intake.wait_for_quota(job, until, error.get("windows", ""))
        log.warning("%s waits for quota until %s", job.task.id, local_time(until))
        self._done(job, parked=True)
        return True

    def _done(self, job: Job, *, parked: bool = False) -> None:
        if job.task is not None:
            if not parked:
                self.book.in_flight.discard(job.task.id)
            self.running_scopes.pop(job.task.id, None)
        self.active -= 1
        if not self.active and not len(self.queue):
            self.idle.set()

    async def _finisher(self, receive: MemoryObjectReceiveStream[Finished]) -> None:
        """Write results in batches: whatever is ready, after one wait for its telemetry
        (a result never exists without its rows), in one worker-thread call."""
        async with receive:
            while True:
                try:
                    batch = [await receive.receive()]
                except anyio.EndOfStream:
                    return
                while True:
                    try:
                        batch.append(receive.receive_nowait())
                    except (anyio.WouldBlock, anyio.EndOfStream):
                        break
                with anyio.CancelScope(shield=True):
                    await self.telemetry.settled()
                    await anyio.to_thread.run_sync(write_results, self.workdir, batch)
                self.journal.done(*(done.job.path.name for done in batch if done.written))
                for done in batch:
                    self._finished(done)

    def _finished(self, done: Finished) -> None:
        """After the result is written (or could not be): state, log, dependants."""
        job, result = done.job, done.result
        try:
            if not done.written:
                return
            self.telemetry.task_state(
                result.id,
                result.status,
                result.finished_at or iso(now_utc()),
                agent=result.agent,
                tool=result.tool,
                model=result.model,
                detail=(result.error or {}).get("kind"),
                **workspace_fields(result),
            )
            log.info(
                "%s: %s%s",
                result.id,
                result.status,
                f" via {result.tool}/{result.model}" if result.tool else "",
            )
            if job.task is not None:
                for woken in self.book.finish(result.id, result.status):
                    self.intake.schedule(woken)
        finally:
            self._done(job)

    async def _result_of(self, job: Job) -> Result:
        if job.verdict is not None:
            return job.verdict
        task = job.task
        assert task is not None
        scope = self.running_scopes.setdefault(task.id, anyio.CancelScope())
        if scope.cancel_called:  # between its dispatch and now
            return control.cancelled_result(task.id, task.agent, "queued")
        runs = self.journal.start(job.path.name)  # counted before running: see quarantine
        verdict = quarantined(task.id, task.agent, runs, self.config.policies.retries)
        if verdict is not None:
            return verdict
        log.debug("running %s (agent %s)", task.id, task.agent)

        def started(attempt: Attempt) -> None:
            self.telemetry.task_state(
                task.id,
                "running",
                iso(now_utc()),
                tool=attempt.tool,
                model=attempt.model,
                started_at=iso(now_utc()),
            )

        try:
            with scope:
                result = await execute(
                    self.engine,
                    task,
                    job.prompt,
                    on_start=started,
                    worktrees=self.worktrees,
                    carried=job.carried,
                )
            if scope.cancelled_caught:
                result = control.cancelled_result(task.id, task.agent, "running")
        except Exception as exc:  # a bug of ours must fail this task, not the daemon
            log.exception("internal error while running %s", task.id)
            result = internal_error(task.id, task.agent, f"{type(exc).__name__}: {exc}")
        result.task = task.extra_fields() or None
        if task.retry:
            history = self.workdir.outbox / "history"
            result.previous_results = [
                f"history/{task.id}.{n}.result.yaml"
                for n in range(1, task.retry + 1)
                if (history / f"{task.id}.{n}.result.yaml").exists()
            ]
        return result
