"""The lean way to run a tool (Linux, asyncio): `LeanRun`, driven by event-loop callbacks.
`process.run_process` chooses it, waits on it and stops it; the helpers here serve both
ways of running a tool."""

from __future__ import annotations

import os
import threading
import time
from typing import TYPE_CHECKING

import anyio

if TYPE_CHECKING:
    import asyncio
    import subprocess
    from collections.abc import Callable

    from orchestrator.process import BoundedBuffer


def whole_lines(partial: bytes, chunk: bytes) -> tuple[list[bytes], bytes]:
    """The lines `chunk` completes, and what is left of a line not yet ended (its last
    64 KiB: `watch` looks at the start of lines, as errors put them)."""
    *lines, rest = (partial + chunk).split(b"\n")
    return lines, rest[-65536:]


def reap(pid: int) -> int:
    """Reap child `pid` (waiting for it) and return its exit code, negative for a signal."""
    try:
        _, status = os.waitpid(pid, 0)
    except ChildProcessError:  # reaped elsewhere: its status is lost (asyncio says 255)
        return 255
    return os.waitstatus_to_exitcode(status)


class LeanRun:
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
        idle_s: float | None = None,
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
        self.idle_s = idle_s  # silence that ends the run as stalled (None: never)
        self.heard = time.monotonic()  # when the tool last wrote a byte, or started
        self.stalled = False
        self.silence: asyncio.TimerHandle | None = None

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
        if self.idle_s is not None:
            self.heard = time.monotonic()
            self.silence = self.loop.call_later(self.idle_s, self._check_silence)

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
        self.heard = time.monotonic()  # no timer per read: `_check_silence` reads this
        self.streams[fd].add(chunk)
        if self.watch is None or self.stopped:
            return
        lines, self.partial[fd] = whole_lines(self.partial[fd], chunk)
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
        if self.silence is not None:
            self.silence.cancel()

    def _check_silence(self) -> None:
        """Due when the tool would have been silent for `idle_s`: a stall, unless it wrote
        meanwhile (then due again that long after its last byte). So a talkative tool
        costs one timer per `idle_s`, not one per read."""
        assert self.idle_s is not None
        self.silence = None
        if self.code is not None:  # it exited: its pipes are draining, not silent
            return
        left = self.heard + self.idle_s - time.monotonic()
        if left > 0:
            self.silence = self.loop.call_later(left, self._check_silence)
        else:
            self.stalled = True
            self.wake.set()

    def _exited(self, pidfd: int) -> None:
        self.loop.remove_reader(pidfd)
        os.close(pidfd)
        self.reaped(reap(self.proc.pid))

    def _wait_in_thread(self) -> None:
        code = reap(self.proc.pid)
        self.loop.call_soon_threadsafe(self.reaped, code)

    def reaped(self, code: int) -> None:
        self.code = self.proc.returncode = code
        self.wake.set()
