"""Memory: the resident set (VmRSS in /proc/<pid>/status) of a live daemon (`orchestrator
run`) when idle after start-up, then after N tasks with a no-op tool (`cat`), dropped into
its inbox in batches (each batch renamed in, then its results awaited). Growth is the RSS
after the last batch minus the RSS after the first tenth of the tasks (by then caches and
allocator arenas are warm): a leak shows as growth, warm-up does not. The floor: the RSS
of a bare `python -c` that imports what the daemon imports, and nothing else.

    uv run python -m bench.memory [--quick] [--tasks N] [--batch B]
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from typing import TYPE_CHECKING

from bench._common import (
    PYTHON,
    DaemonProcess,
    Target,
    count_results,
    figure,
    header,
    info,
    noop_config,
    parser,
    rss_kb,
    size,
    stage_task,
    wait_until,
    which,
    workspace,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

NAME = "memory"
RSS_TARGET_MB = 60.0
GROWTH_TARGET_MB = 2.0  # "no growth", with room for allocator noise
SETTLE_S = 1.0
IMPORTS = (
    "import anyio, pydantic, yaml, aiosqlite, watchfiles, sqlite3, orchestrator.daemon, "
    "orchestrator.cli; import sys; sys.stdout.write(open('/proc/self/status').read())"
)


def floor_rss_mb(env: dict[str, str]) -> float:
    done = subprocess.run([PYTHON, "-c", IMPORTS], env=env, capture_output=True, text=True,
                          check=True, timeout=60)  # fmt: skip
    for line in done.stdout.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in the floor's /proc/self/status")


def main(argv: Sequence[str] | None = None) -> int:
    p = parser(__doc__ or NAME)
    p.add_argument("--tasks", type=int)
    p.add_argument("--batch", type=int)
    args = p.parse_args(argv)
    tasks = size(args.tasks, args.quick, 100, 10_000)
    batch = size(args.batch, args.quick, 50, 500)
    concurrency = 8
    header(NAME, {"tasks": tasks, "batch": batch, "concurrency": concurrency})
    samples: list[tuple[int, float]] = []  # (tasks done, RSS MB)
    with workspace(NAME) as ws:
        ws.configure(noop_config([which("cat")], concurrency))
        ws.warm_up()
        floor = floor_rss_mb(ws.env)
        with DaemonProcess(ws) as daemon:
            daemon.wait_ready()
            time.sleep(SETTLE_S)
            idle = rss_kb(daemon.pid) / 1024
            done = 0
            started = time.perf_counter()
            while done < tasks:
                count = min(batch, tasks - done)
                staged = [stage_task(ws.inbox, f"m{done + i:06d}") for i in range(count)]
                for tmp, target in staged:
                    os.rename(tmp, target)
                done += count
                wait_until(
                    lambda target=done: count_results(ws.outbox) >= target,
                    120,
                    f"{done} results",
                    step=0.02,
                )
                daemon.check_alive()
                samples.append((done, rss_kb(daemon.pid) / 1024))
            elapsed = time.perf_counter() - started
            time.sleep(SETTLE_S)
            after = rss_kb(daemon.pid) / 1024
            peak = rss_kb(daemon.pid, "VmHWM") / 1024
    warm = next(rss for n, rss in samples if n >= tasks // 10)
    info(NAME, f"{tasks} tasks in {elapsed:.1f} s")
    info(NAME, "RSS MB by tasks done: " + ", ".join(f"{n}: {rss:.1f}" for n, rss in samples))
    figure(f"{NAME}.idle", idle, "MB", floor=floor, target=Target(RSS_TARGET_MB),
           note="after start-up")  # fmt: skip
    figure(f"{NAME}.after_tasks", after, "MB", floor=floor, target=Target(RSS_TARGET_MB),
           note=f"after {tasks} tasks, peak {peak:.1f} MB")  # fmt: skip
    figure(f"{NAME}.growth", after - warm, "MB", target=Target(GROWTH_TARGET_MB),
           note=f"RSS after {tasks} tasks minus after {tasks // 10}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
