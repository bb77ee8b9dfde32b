"""Scale-out: what the Dask executor costs per task, and what two workers give.

Starts a real `dask scheduler` and two `dask worker` processes on 127.0.0.1 (each
advertising the tool as a resource), then times `orchestrator run --once` over the same
tasks locally and with `--dask`:

- overhead: a no-op tool (`cat`), so the difference per task is the executor's own cost
  (submit, the round trip through the scheduler, the worker's thread and event loop);
- throughput: a tool that takes 0.2 s, locally at `--concurrency 8` (one machine's share)
  and on two workers of 8 threads each at `--concurrency 16`; its floor is the tasks'
  total sleep spread over the 16 slots.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from bench._common import (
    PYTHON,
    Target,
    count_results,
    figure,
    header,
    info,
    median,
    noop_config,
    parser,
    run_checked,
    size,
    which,
    workspace,
    write_tasks,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

NAME = "scale_out"
SLOW_S = 0.2
SLOW_TOOL = [PYTHON, "-c", f"import sys, time; time.sleep({SLOW_S}); print(sys.stdin.read())"]
OVERHEAD_TARGET = Target(30.0, on="value")  # ms per task the Dask executor adds


def timed(tasks: int, tool: list[str], concurrency: int, dask: str | None) -> float:
    """Seconds for `run --once` to finish `tasks` tasks (all checked)."""
    with workspace(NAME) as ws:
        ws.configure(noop_config(tool, concurrency))
        write_tasks(ws.inbox, [f"t{i:05d}" for i in range(tasks)])
        extra = ["--dask", dask] if dask else []
        run_checked(ws.command("run", "--once", "--concurrency", str(concurrency), *extra),
                    ws.env, ws.root)  # warm: the bytecode cache, the workers' imports  # fmt: skip
        write_tasks(ws.inbox, [f"u{i:05d}" for i in range(tasks)])
        wall = run_checked(
            ws.command("run", "--once", "--concurrency", str(concurrency), *extra),
            ws.env,
            ws.root,
        )
        done = count_results(ws.outbox)
        if done != 2 * tasks:
            raise RuntimeError(f"{done} results for {2 * tasks} tasks")
    return wall


def main(argv: Sequence[str] | None = None) -> int:
    from pathlib import Path
    from tempfile import TemporaryDirectory

    from tests.dask_cluster import cluster

    p = parser(__doc__ or NAME)
    p.add_argument("--tasks", type=int)
    p.add_argument("--rounds", type=int)
    args = p.parse_args(list(sys.argv[1:] if argv is None else argv))
    tasks = size(args.tasks, args.quick, 40, 400)
    rounds = size(args.rounds, args.quick, 1, 3)
    noop = [which("cat")]
    header(NAME, {"tasks": tasks, "rounds": rounds, "workers": "2 x 8 threads"})
    workers = {"w1": "noop=8", "w2": "noop=8"}
    with (
        TemporaryDirectory(prefix=f"orchestrator-bench-{NAME}-cluster-") as folder,
        cluster(Path(folder), workers) as dask,
    ):
        info(NAME, f"scheduler {dask.address}")
        local = median([timed(tasks, noop, 8, None) for _ in range(rounds)])
        remote = median([timed(tasks, noop, 8, dask.address) for _ in range(rounds)])
        figure(f"{NAME}.local", local, "s", note=f"{tasks / local:.0f} tasks/s, no-op tool")
        figure(
            f"{NAME}.dask_overhead",
            1000 * (remote - local) / tasks,
            "ms/task",
            target=OVERHEAD_TARGET,
            note=f"dask {remote:.2f} s against local {local:.2f} s for {tasks} no-op tasks",
        )
        slow_local = median([timed(tasks, SLOW_TOOL, 8, None) for _ in range(rounds)])
        slow_dask = median([timed(tasks, SLOW_TOOL, 16, dask.address) for _ in range(rounds)])
        floor = tasks * SLOW_S / 16
        rate = f"{tasks / slow_local:.1f} tasks/s, concurrency 8, a {SLOW_S} s tool"
        figure(f"{NAME}.slow_local", slow_local, "s", note=rate)
        figure(
            f"{NAME}.slow_two_workers",
            slow_dask,
            "s",
            floor=floor,
            note=f"{tasks / slow_dask:.1f} tasks/s on two workers (concurrency 16); "
            f"{slow_local / slow_dask:.2f}x the local figure",
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
