"""Run one tool process: argv list (never a shell), explicit env and cwd, its own process
group, stdout/stderr read concurrently and bounded, a timeout that kills the whole group
(SIGTERM, grace, SIGKILL), and an early stop when a line proves the run cannot succeed.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import anyio

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from pathlib import Path

    from anyio.abc import ByteReceiveStream, Process

log = logging.getLogger(__name__)

MAX_STREAM_BYTES = 8 * 1024 * 1024  # per stream: the first and last half are kept
DRAIN_AFTER_EXIT_S = 0.5  # a grandchild holding stdout open gets this long, then is killed
KILL_GRACE_S = 3.0


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
            pending += chunk
            *lines, pending = pending.split(b"\n")
            pending = pending[-65536:]
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


if sys.version_info < (3, 12):
    import asyncio
    from typing import TypeVarTuple

    _Ts = TypeVarTuple("_Ts")

    class _PidfdWatcher(asyncio.AbstractChildWatcher):
        """What Python 3.12 does: each child waited for with a pidfd in the running loop."""

        def add_child_handler(
            self, pid: int, callback: Callable[[int, int, *_Ts], object], *args: *_Ts
        ) -> None:
            loop = asyncio.get_running_loop()
            try:
                pidfd = os.pidfd_open(pid)
            except OSError:  # e.g. out of file descriptors: wait in a thread, as 3.11 does
                threading.Thread(
                    target=self._wait_in_thread, args=(loop, pid, callback, args), daemon=True
                ).start()
                return
            loop.add_reader(pidfd, self._reap, loop, pid, pidfd, callback, args)

        @staticmethod
        def _wait_in_thread(
            loop: asyncio.AbstractEventLoop, pid: int, callback: Any, args: Any
        ) -> None:
            loop.call_soon_threadsafe(callback, pid, _exit_code(pid), *args)

        @staticmethod
        def _reap(
            loop: asyncio.AbstractEventLoop, pid: int, pidfd: int, callback: Any, args: Any
        ) -> None:
            loop.remove_reader(pidfd)
            os.close(pidfd)
            callback(pid, _exit_code(pid), *args)

        def remove_child_handler(self, pid: int) -> bool:
            return True

        def attach_loop(self, loop: asyncio.AbstractEventLoop | None) -> None:
            pass

        def is_active(self) -> bool:
            return True

        def close(self) -> None:
            pass

        def __enter__(self) -> _PidfdWatcher:
            return self

        def __exit__(self, *exc_info: object) -> None:
            pass


def _exit_code(pid: int) -> int:
    """Reap child `pid` (waiting for it) and return its exit code, negative for a signal."""
    try:
        _, status = os.waitpid(pid, 0)
    except ChildProcessError:  # reaped elsewhere: its status is lost (asyncio says 255)
        return 255
    return os.waitstatus_to_exitcode(status)


def _watch_children_with_pidfds() -> None:
    """Python 3.11's asyncio waits for each child in a thread of its own, started per
    process; those threads then compete with the event loop for the GIL. A pidfd per child
    in the running loop does the same without threads (Python 3.12 does this itself)."""
    global _pidfds_checked
    _pidfds_checked = True
    if sys.version_info >= (3, 12) or not hasattr(os, "pidfd_open"):
        return
    try:
        asyncio.get_running_loop()
        os.close(os.pidfd_open(os.getpid()))
    except RuntimeError:  # not asyncio (trio does without threads already)
        return
    except OSError:  # a kernel older than 5.3, or a seccomp filter
        return
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        asyncio.set_child_watcher(_PidfdWatcher())


_pidfds_checked = False


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
    if not _pidfds_checked:
        _watch_children_with_pidfds()
    started = time.monotonic()
    out, err = BoundedBuffer(max_bytes), BoundedBuffer(max_bytes)
    timed_out = stopped = False
    process = await anyio.open_process(
        argv,
        stdin=-1,  # subprocess.PIPE
        env=dict(env),
        cwd=cwd,
        start_new_session=True,
    )
    try:
        if on_start is not None:
            on_start(process.pid)  # the process group id: the tool is its group's leader
        out_done, err_done = anyio.Event(), anyio.Event()
        async with anyio.create_task_group() as io:

            def stop_early() -> None:
                nonlocal stopped
                stopped = True
                io.cancel_scope.cancel()

            io.start_soon(_pump, process.stdout, out, watch, stop_early, out_done)
            io.start_soon(_pump, process.stderr, err, watch, stop_early, err_done)
            with anyio.move_on_after(limit_s) as scope:
                await _feed(process, stdin)  # the pumps drain meanwhile: no deadlock
                await process.wait()
                # The tool exited; a grandchild may still hold its pipes open.
                with anyio.move_on_after(DRAIN_AFTER_EXIT_S):
                    await out_done.wait()
                    await err_done.wait()
            timed_out = scope.cancelled_caught
            io.cancel_scope.cancel()
    finally:
        with anyio.CancelScope(shield=True):
            await _stop_group(process, grace if process.returncode is None else 0)
            await process.aclose()
    return ProcessResult(
        exit_code=process.returncode if not (timed_out or stopped) else None,
        stdout=out.value(),
        stderr=err.value(),
        duration_s=time.monotonic() - started,
        timed_out=timed_out,
        stopped_early=stopped,
        truncated=bool(out.dropped or err.dropped),
    )
