"""Run one tool process: argv list (never a shell), explicit env and cwd, its own process
group, stdout/stderr read concurrently and bounded, a timeout that kills the whole group
(SIGTERM, grace, SIGKILL), and an early stop when a line proves the run cannot succeed.

On Linux under asyncio a run is driven by event-loop callbacks on its pipes and a pidfd
(`_Run`); elsewhere (trio, no pidfds) by anyio's processes. Both behave the same.

The tools running now are registered in `LIVE_TOOLS`; when a run ends, what escaped its
process group is swept (see reaper.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import anyio

from orchestrator import reaper

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
    truncated: bool = False


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


async def _pump(
    stream: ByteReceiveStream | None,
    buffer: BoundedBuffer,
    watch: Callable[[bytes], bool] | None,
    on_stop: Callable[[], None],
    done: anyio.Event,
) -> None:
    try:
        if stream is None:
            return
        pending = b""
        async for chunk in stream:
            buffer.add(chunk)
            if watch is None:
                continue
            lines, pending = _whole_lines(pending, chunk)
            if any(watch(line) for line in lines):
                on_stop()
                return
    finally:
        done.set()


async def _feed(process: Process, data: bytes | None) -> None:
    stdin = process.stdin
    if stdin is None:
        return
    with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
        if data:
            await stdin.send(data)
    with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
        await stdin.aclose()


def _whole_lines(partial: bytes, chunk: bytes) -> tuple[list[bytes], bytes]:
    """The lines `chunk` completes, and what is left of a line not yet ended (its last
    64 KiB: `watch` looks at the start of lines, as errors put them)."""
    *lines, rest = (partial + chunk).split(b"\n")
    return lines, rest[-65536:]


def _exit_code(pid: int) -> int:
    """Reap child `pid` (waiting for it) and return its exit code, negative for a signal."""
    try:
        _, status = os.waitpid(pid, 0)
    except ChildProcessError:  # reaped elsewhere: its status is lost (asyncio says 255)
        return 255
    return os.waitstatus_to_exitcode(status)


class _Run:
    """One tool process driven by event-loop callbacks (Linux, asyncio): its pipes and a
    pidfd sit in the loop's selector, with no task per stream and no thread per child.
    This costs the event loop about half of what asyncio's subprocess transports do."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        proc: subprocess.Popen[bytes],
        buffers: tuple[BoundedBuffer, BoundedBuffer],
        watch: Callable[[bytes], bool] | None,
        stdin: bytes,
    ) -> None:
        assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
        self.loop = loop
        self.proc = proc
        self.streams = {proc.stdout.fileno(): buffers[0], proc.stderr.fileno(): buffers[1]}
        self.files = {proc.stdout.fileno(): proc.stdout, proc.stderr.fileno(): proc.stderr}
        self.partial = dict.fromkeys(self.streams, b"")  # a line not yet ended, per stream
        self.watch = watch
        self.stdin = memoryview(stdin)
        self.writing = False
        self.code: int | None = None  # the exit code, once reaped
        self.stopped = False  # `watch` asked to stop
        self.watching = False  # for the exit (a pidfd in the loop, or a thread)
        self.wake = anyio.Event()

    def start(self) -> None:
        try:
            pidfd = os.pidfd_open(self.proc.pid)
        except OSError:  # e.g. out of file descriptors: wait in a thread
            threading.Thread(target=self._wait_in_thread, daemon=True).start()
        else:
            self.loop.add_reader(pidfd, self._exited, pidfd)
        self.watching = True
        for fd in self.streams:
            os.set_blocking(fd, False)
            self.loop.add_reader(fd, self._read, fd)
        assert self.proc.stdin is not None
        os.set_blocking(self.proc.stdin.fileno(), False)
        self._write()

    async def until(self, done: Callable[[], bool]) -> None:
        while not done():
            self.wake = anyio.Event()
            await self.wake.wait()

    def _write(self) -> None:
        stdin = self.proc.stdin
        assert stdin is not None
        while self.stdin:
            try:
                written = os.write(stdin.fileno(), self.stdin)
            except BlockingIOError:  # the pipe is full: go on when the tool has read
                if not self.writing:
                    self.loop.add_writer(stdin.fileno(), self._write)
                    self.writing = True
                return
            except OSError:  # the tool closed its stdin (EPIPE)
                break
            self.stdin = self.stdin[written:]
        self._close_stdin()

    def _close_stdin(self) -> None:
        stdin = self.proc.stdin
        if stdin is not None and not stdin.closed:
            if self.writing:
                self.loop.remove_writer(stdin.fileno())
                self.writing = False
            stdin.close()

    def _read(self, fd: int) -> None:
        try:
            chunk = os.read(fd, 65536)
        except BlockingIOError:
            return
        except OSError:
            chunk = b""
        if not chunk:
            self._close_stream(fd)
            self.wake.set()
            return
        self.streams[fd].add(chunk)
        if self.watch is None or self.stopped:
            return
        lines, self.partial[fd] = _whole_lines(self.partial[fd], chunk)
        if any(self.watch(line) for line in lines):
            self.stopped = True
            self.wake.set()

    def _close_stream(self, fd: int) -> None:
        self.loop.remove_reader(fd)
        del self.streams[fd]
        self.files.pop(fd).close()  # through its file object only: never closed twice

    def stop_reading(self) -> None:
        for fd in list(self.streams):
            self._close_stream(fd)
        self._close_stdin()

    def _exited(self, pidfd: int) -> None:
        self.loop.remove_reader(pidfd)
        os.close(pidfd)
        self.reaped(_exit_code(self.proc.pid))

    def _wait_in_thread(self) -> None:
        code = _exit_code(self.proc.pid)
        self.loop.call_soon_threadsafe(self.reaped, code)

    def reaped(self, code: int) -> None:
        self.code = self.proc.returncode = code
        self.wake.set()


def _lean_runs() -> bool:
    """Can tools run as `_Run`s here: an asyncio loop, and pidfds (Linux 5.3+)?"""
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
) -> ProcessResult:
    """Run `argv` to completion or for at most `limit_s` seconds.

    Raises OSError when it cannot start.

    On cancellation (shutdown, `cancel`), the process group is killed before returning.
    """
    spec = _Spec(argv, env, cwd, stdin or b"", limit_s, watch, grace, on_start)
    started = time.monotonic()
    out, err = BoundedBuffer(max_bytes), BoundedBuffer(max_bytes)
    run = _run_lean if _lean_runs() else _run_portable
    run_dir = env.get("TMPDIR", "")
    LIVE_TOOLS.run_dirs[run_dir] += 1
    try:
        code, timed_out, stopped = await run(spec, out, err)
    finally:
        LIVE_TOOLS.run_dirs[run_dir] -= 1
        if not LIVE_TOOLS.run_dirs[run_dir]:
            del LIVE_TOOLS.run_dirs[run_dir]
        with anyio.CancelScope(shield=True):
            await reaper.sweep(LIVE_TOOLS)  # what left the group: detached, or orphaned
    return ProcessResult(
        exit_code=code if not (timed_out or stopped) else None,
        stdout=out.value(),
        stderr=err.value(),
        duration_s=time.monotonic() - started,
        timed_out=timed_out,
        stopped_early=stopped,
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


_Outcome = tuple[int | None, bool, bool]  # exit code, timed out, stopped early


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
    run = _Run(asyncio.get_running_loop(), proc, (out, err), spec.watch, spec.stdin)
    timed_out = False
    try:
        run.start()
        if spec.on_start is not None:
            spec.on_start(proc.pid)  # the process group id: the tool is its group's leader
        with anyio.move_on_after(spec.limit_s) as scope:
            await run.until(lambda: run.stopped or run.code is not None)
            # The tool exited; a grandchild may still hold its pipes open.
            with anyio.move_on_after(DRAIN_AFTER_EXIT_S):
                await run.until(lambda: run.stopped or not run.streams)
        timed_out = scope.cancelled_caught
    finally:
        with anyio.CancelScope(shield=True):
            run.stop_reading()
            if kill_group(proc.pid, signal.SIGTERM) and run.code is None:
                with anyio.move_on_after(spec.grace):
                    await run.until(lambda: run.code is not None)
            kill_group(proc.pid, signal.SIGKILL)
            if not run.watching:  # start() failed before it watched for the exit
                run.reaped(_exit_code(proc.pid))
            await run.until(lambda: run.code is not None)
            LIVE_TOOLS.leaders.discard(proc.pid)
    return run.code, timed_out, run.stopped


async def _run_portable(spec: _Spec, out: BoundedBuffer, err: BoundedBuffer) -> _Outcome:
    """The same with anyio's processes (trio, or where there are no pidfds)."""
    timed_out = stopped = False
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
        async with anyio.create_task_group() as io:

            def stop_early() -> None:
                nonlocal stopped
                stopped = True
                io.cancel_scope.cancel()

            io.start_soon(_pump, process.stdout, out, spec.watch, stop_early, out_done)
            io.start_soon(_pump, process.stderr, err, spec.watch, stop_early, err_done)
            with anyio.move_on_after(spec.limit_s) as scope:
                await _feed(process, spec.stdin)  # the pumps drain meanwhile: no deadlock
                await process.wait()
                # The tool exited; a grandchild may still hold its pipes open.
                with anyio.move_on_after(DRAIN_AFTER_EXIT_S):
                    await out_done.wait()
                    await err_done.wait()
            timed_out = scope.cancelled_caught
            io.cancel_scope.cancel()
    finally:
        with anyio.CancelScope(shield=True):
            await _stop_group(process, spec.grace if process.returncode is None else 0)
            await process.aclose()
            LIVE_TOOLS.leaders.discard(process.pid)
    return process.returncode, timed_out, stopped
