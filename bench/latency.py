"""Latency: an idle live daemon (`orchestrator run`, inotify watcher); a task file renamed
into its inbox → the tool process started. The tool is `bash -c 'echo $EPOCHREALTIME'`: it
prints the wall clock as its first act (no fork, no interpreter start-up), and that answer
lands in the result file. One task at a time: the next rename waits for the previous
result and a short idle pause.

The floor: the same tool spawned straight from this process (subprocess.Popen), from the
call to the tool's own clock reading.

    uv run python -m bench.latency [--quick] [--tasks N]
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from typing import TYPE_CHECKING

from bench._common import (
    DaemonProcess,
    Target,
    figure,
    header,
    info,
    median,
    noop_config,
    parser,
    percentile,
    result_status,
    size,
    stage_task,
    wait_until,
    which,
    workspace,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

NAME = "latency"
P50_TARGET_MS = 15.0
P99_TARGET_MS = 50.0
IDLE_PAUSE_S = 0.05
CLOCK = "echo $EPOCHREALTIME"


def direct_latencies(tool: Sequence[str], env: dict[str, str], count: int) -> list[float]:
    """The floor: Popen → the tool's clock reading, in ms."""
    values = []
    for _ in range(count):
        started = time.time()
        done = subprocess.run(
            list(tool), env=env, capture_output=True, text=True, check=True, timeout=10
        )
        values.append(1000 * (float(done.stdout) - started))
    return values


def main(argv: Sequence[str] | None = None) -> int:
    p = parser(__doc__ or NAME)
    p.add_argument("--tasks", type=int)
    args = p.parse_args(argv)
    tasks = size(args.tasks, args.quick, 10, 200)
    tool = [which("bash"), "-c", CLOCK]
    header(NAME, {"tasks": tasks, "tool": " ".join(tool[:2]) + f" '{CLOCK}'"})
    values: list[float] = []
    with workspace(NAME) as ws:
        ws.configure(noop_config(tool, 8))
        floor = direct_latencies(tool, ws.env, tasks)
        ws.warm_up()
        with DaemonProcess(ws) as daemon:
            daemon.wait_ready()
            time.sleep(0.5)  # let start-up work (price warm-up, first scan) settle
            for i in range(-3, tasks):  # three warm-up tasks first
                task_id = f"lat{i + 3:05d}"
                tmp, target = stage_task(ws.inbox, task_id)
                result = ws.outbox / f"{task_id}.result.yaml"
                started = time.time()
                os.rename(tmp, target)
                wait_until(result.exists, 30, f"the result of {task_id}", step=0.002)
                data = result_status(ws.outbox, task_id)
                if data.get("status") != "succeeded":
                    raise RuntimeError(f"{task_id}: {data}")
                if i >= 0:
                    values.append(1000 * (float(str(data["output"])) - started))
                daemon.check_alive()
                time.sleep(IDLE_PAUSE_S)
    info(NAME, f"{len(values)} tasks, min {min(values):.2f} ms, max {max(values):.2f} ms")
    figure(
        f"{NAME}.p50",
        median(values),
        "ms",
        floor=median(floor),
        target=Target(P50_TARGET_MS),
        note="rename -> tool started",
    )
    figure(
        f"{NAME}.p99",
        percentile(values, 99),
        "ms",
        floor=percentile(floor, 99),
        target=Target(P99_TARGET_MS),
        note="rename -> tool started",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
