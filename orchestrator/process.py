"""Run one tool process: argv list (never a shell), explicit env and cwd, its own process
group, stdout/stderr read concurrently and bounded, a timeout that kills the whole group
(SIGTERM, grace, SIGKILL), the same kill when the tool has written nothing (stdout or
stderr) for `idle_s` (a stall), and an early stop when a line proves the run cannot succeed.

On Linux under asyncio a run is driven by event-loop callbacks on its pipes and a pidfd
(`leanrun.LeanRun`); elsewhere (trio; macOS, no pidfds) by anyio's processes. Both behave
the same.

The tools running now are registered in `LIVE_TOOLS`; when a run ends, what escaped its
process group is swept (see reaper.py).

Linux (WSL 2 included) and macOS: `start_new_session=True` is setsid(2), so the tool leads
a new session and process group and `os.killpg` reaches all it starts there. Native
Windows has no process groups to kill nor SIGKILL: not supported, use WSL (docs/platforms.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Literal

import anyio

from orchestrator import reaper
from orchestrator.leanrun import LeanRun, reap, whole_lines

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from pathlib import Path

    from anyio.abc import ByteReceiveStream, Process

log = logging.getLogger(__name__)

MAX_STREAM_BYTES = 8 * 1024 * 1024  # per stream: the first and last half are kept
DRAIN_AFTER_EXIT_S = 0.5  # a grandchild holding stdout open gets this long, then is killed
KILL_GRACE_S = 3.0
LIVE_TOOLS = reaper.LiveTools()  # what a sweep after a run must leave alone


@dataclass(frozen=True)
class ProcessResult:
    exit_code: int | None  # negative: killed by that signal
    stdout: bytes
    stderr: bytes
    duration_s: float
    timed_out: bool = False
    stopped_early: bool = False  # `watch` asked to stop
    stalled: bool = False  # silent (no byte on stdout or stderr) for `idle_s`: killed
    truncated: bool = False
    ran_on: str | None = None  # the Dask worker that ran it (None: here)
    lost_on: tuple[str, ...] = ()  # Dask workers that died while running it before


class BoundedBuffer:
    """Keeps the head and the tail of a stream; the middle of a flood is dropped."""

    def __init__(self, limit: int) -> None:
        self.half = limit // 2
        self.head = bytearray()
        self.tail = bytearray()
        self.dropped = 0

    def add(self, chunk: bytes) -> None:
        room = self.half - len(self.head)
        if room > 0:
            self.head += chunk[:room]
            chunk = chunk[room:]
        if chunk:
            self.tail += chunk
            excess = len(self.tail) - self.half
            if excess > 0:
                del self.tail[:excess]
                self.dropped += excess

    def value(self) -> bytes:
        if not self.dropped:
            return bytes(self.head + self.tail)
        marker = f"\n[... {self.dropped} bytes dropped ...]\n".encode()
        return bytes(self.head) + marker + bytes(self.tail)


def kill_group(pgid: int, sig: signal.Signals) -> bool:
    """Signal a whole process group; False when no process of it is left."""
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        return False
    except PermissionError:  # pgid reused by someone else's group: not ours to kill
        return False
    return True


async def _stop_group(process: Process, grace: float) -> None:
    pgid = process.pid
    if kill_group(pgid, signal.SIGTERM):
        log.debug("sent SIGTERM to process group %d", pgid)
        with anyio.move_on_after(grace):
            await process.wait()
    if kill_group(pgid, signal.SIGKILL):
        log.debug("sent SIGKILL to process group %d", pgid)


@dataclass
class _Heard:
    at: float  # when the tool last wrote a byte (or started), on time.monotonic()


async def _pump(
    stream: ByteReceiveStream | None,
    buffer: BoundedBuffer,
    watch: Callable[[bytes], bool] | None,
    on_stop: Callable[[], None],
    done: anyio.Event,
    heard: _Heard,
) -> None:
    try:
        if stream is None:
            return
        pending = b""
        async for chunk in stream:
            heard.at = time.monotonic()  # no wakeup per chunk: `_silence` reads this
            buffer.add(chunk)
            if watch is None:
                continue
            lines, pending = whole_lines(pending, chunk)
            if any(watch(line) for line in lines):
                on_stop()
                return
    finally:
        done.set()


async def _silence(
    idle_s: float, heard: _Heard, on_stall: Callable[[], None], scope: anyio.CancelScope
) -> None:
    """Call `on_stall` once the tool has written nothing for `idle_s`: one sleep per
    `idle_s` however much it writes. `scope` ends the watch when the tool exits."""
    with scope:
        left = idle_s
        while left > 0:
            await anyio.sleep(left)
            left = heard.at + idle_s - time.monotonic()
        on_stall()


async def _feed(process: Process, data: bytes | None) -> None:
    stdin = process.stdin
    if stdin is None:
        return
    with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
        if data:
            await stdin.send(data)
    with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
        await stdin.aclose()


def _lean_runs() -> bool:
    """Can tools run as `LeanRun`s here: an asyncio loop, and pidfds (Linux 5.3+)?"""
    global _PIDFDS
    try:
        asyncio.get_running_loop()
    except RuntimeError:  # trio
        return False
    if _PIDFDS is None:
        try:
            os.close(os.pidfd_open(os.getpid()))  # type: ignore[attr-defined,unused-ignore]
            _PIDFDS = True
        except (AttributeError, OSError):  # not Linux, an old kernel, a seccomp filter
            _PIDFDS = False
    return _PIDFDS


_PIDFDS: bool | None = None


async def run_process(
    argv: list[str],
    *,
    env: Mapping[str, str],
    cwd: Path,
    stdin: bytes | None,
    limit_s: float,
    watch: Callable[[bytes], bool] | None = None,
    max_bytes: int = MAX_STREAM_BYTES,
    grace: float = KILL_GRACE_S,
    on_start: Callable[[int], None] | None = None,
    idle_s: float | None = None,
) -> ProcessResult:
    """Run `argv` to completion or for at most `limit_s` seconds, and no longer than
    `idle_s` without a byte on its stdout or stderr (None: no limit; a limit of `limit_s`
    or more could never come first, so it is none either).

    Raises OSError when it cannot start.

    On cancellation (shutdown, `cancel`), the process group is killed before returning.
    """
    if idle_s is not None and idle_s >= limit_s:
        idle_s = None
    spec = _Spec(argv, env, cwd, stdin or b"", limit_s, watch, grace, on_start, idle_s)
    started = time.monotonic()
    out, err = BoundedBuffer(max_bytes), BoundedBuffer(max_bytes)
    run = _run_lean if _lean_runs() else _run_portable
    run_dir = env.get("TMPDIR", "")
    LIVE_TOOLS.run_dirs[run_dir] += 1
    try:
        code, end = await run(spec, out, err)
    finally:
        LIVE_TOOLS.run_dirs[run_dir] -= 1
        if not LIVE_TOOLS.run_dirs[run_dir]:
            del LIVE_TOOLS.run_dirs[run_dir]
        with anyio.CancelScope(shield=True):
            await reaper.sweep(LIVE_TOOLS)  # what left the group: detached, or orphaned
    return ProcessResult(
        exit_code=code if end == "exited" else None,
        stdout=out.value(),
        stderr=err.value(),
        duration_s=time.monotonic() - started,
        timed_out=end == "timed_out",
        stopped_early=end == "stopped",
        stalled=end == "stalled",
        truncated=bool(out.dropped or err.dropped),
    )


@dataclass(frozen=True)
class _Spec:
    """What `run_process` was asked to run, for the two ways of running it."""

    argv: list[str]
    env: Mapping[str, str]
    cwd: Path
    stdin: bytes
    limit_s: float
    watch: Callable[[bytes], bool] | None
    grace: float
    on_start: Callable[[int], None] | None
    idle_s: float | None


_End = Literal["exited", "timed_out", "stopped", "stalled"]  # why a run ended
_Outcome = tuple[int | None, _End]  # and its exit code


async def _run_lean(spec: _Spec, out: BoundedBuffer, err: BoundedBuffer) -> _Outcome:
    # Popen blocks only while the child starts (as inside asyncio's own subprocesses).
    proc = subprocess.Popen(  # noqa: ASYNC220
        spec.argv,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=dict(spec.env),
        cwd=spec.cwd,
        start_new_session=True,
        bufsize=0,
    )
    LIVE_TOOLS.leaders.add(proc.pid)
    loop = asyncio.get_running_loop()
    run = LeanRun(loop, proc, (out, err), spec.watch, spec.stdin, spec.idle_s)
    timed_out = False
    try:
        run.start()
        if spec.on_start is not None:
            spec.on_start(proc.pid)  # the process group id: the tool is its group's leader
        with anyio.move_on_after(spec.limit_s) as scope:
            await run.until(lambda: run.stopped or run.stalled or run.code is not None)
            # The tool exited; a grandchild may still hold its pipes open.
            with anyio.move_on_after(DRAIN_AFTER_EXIT_S):
                await run.until(lambda: run.stopped or run.stalled or not run.streams)
        timed_out = scope.cancelled_caught
    finally:
        with anyio.CancelScope(shield=True):
            run.stop_reading()
            if kill_group(proc.pid, signal.SIGTERM) and run.code is None:
                with anyio.move_on_after(spec.grace):
                    await run.until(lambda: run.code is not None)
            kill_group(proc.pid, signal.SIGKILL)
            if not run.watching:  # start() failed before it watched for the exit
                run.reaped(reap(proc.pid))
            await run.until(lambda: run.code is not None)
            LIVE_TOOLS.leaders.discard(proc.pid)
    if timed_out:
        return None, "timed_out"
    return run.code, "stopped" if run.stopped else "stalled" if run.stalled else "exited"


async def _run_portable(spec: _Spec, out: BoundedBuffer, err: BoundedBuffer) -> _Outcome:
    """The same with anyio's processes (trio, or where there are no pidfds)."""
    end: _End = "exited"
    LIVE_TOOLS.starting += 1  # not yet a known leader: no sweep meanwhile
    try:
        with anyio.CancelScope(shield=True):  # a cancel now would lose the started process
            process = await anyio.open_process(
                spec.argv,
                stdin=-1,  # subprocess.PIPE
                env=dict(spec.env),
                cwd=spec.cwd,
                start_new_session=True,
            )
        LIVE_TOOLS.leaders.add(process.pid)
    finally:
        LIVE_TOOLS.starting -= 1
    try:
        if spec.on_start is not None:
            spec.on_start(process.pid)  # the process group id: the tool is its group's leader
        out_done, err_done = anyio.Event(), anyio.Event()
        heard, quiet = _Heard(time.monotonic()), anyio.CancelScope()
        async with anyio.create_task_group() as io:

            def stop(why: _End) -> None:
                nonlocal end
                end = why
                io.cancel_scope.cancel()

            stop_early = partial(stop, "stopped")
            io.start_soon(_pump, process.stdout, out, spec.watch, stop_early, out_done, heard)
            io.start_soon(_pump, process.stderr, err, spec.watch, stop_early, err_done, heard)
            if spec.idle_s is not None:
                io.start_soon(_silence, spec.idle_s, heard, partial(stop, "stalled"), quiet)
            with anyio.move_on_after(spec.limit_s) as scope:
                await _feed(process, spec.stdin)  # the pumps drain meanwhile: no deadlock
                await process.wait()
                quiet.cancel()  # its pipes draining is no stall
                # The tool exited; a grandchild may still hold its pipes open.
                with anyio.move_on_after(DRAIN_AFTER_EXIT_S):
                    await out_done.wait()
                    await err_done.wait()
            if scope.cancelled_caught:
                end = "timed_out"
            io.cancel_scope.cancel()
    finally:
        with anyio.CancelScope(shield=True):
            await _stop_group(process, spec.grace if process.returncode is None else 0)
            await process.aclose()
            LIVE_TOOLS.leaders.discard(process.pid)
    return process.returncode, end
