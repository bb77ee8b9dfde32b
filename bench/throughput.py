"""Throughput: N tasks with a no-op tool (`cat`: the prompt on stdin, echoed as the answer)
through `orchestrator run --once --concurrency C`, inbox → outbox + telemetry, against the
floor: a bare anyio loop spawning the same tool with the same stdin at the same
concurrency. Both are timed as whole processes (interpreter start-up included), taking
turns for R rounds (a fresh workspace each round); the medians are compared. CPU time
(user + system, the tools included) is printed too: it is steadier than wall time on a
busy machine.

A second floor, for what the bare loop leaves out: the file work one result needs at the
least (a result-sized file written, fsynced and renamed into place; the task file renamed
into another folder), done N times by one plain loop. The daemon is then compared with the
sum of the two floors too (no target: an informative figure).

    uv run python -m bench.throughput [--quick] [--tasks N] [--concurrency C] [--rounds R]
"""

from __future__ import annotations

import os
import sqlite3
import sys
import time
from typing import TYPE_CHECKING

import anyio

from bench._common import (
    PYTHON,
    REPO,
    Target,
    count_results,
    figure,
    header,
    info,
    median,
    noop_config,
    parser,
    run_checked,
    run_measured,
    size,
    which,
    workspace,
    write_tasks,
)

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

NAME = "throughput"
TARGET = Target(1.3, "ratio")
PROMPT = "hello"


async def bare_loop(argv: Sequence[str], count: int, concurrency: int) -> None:
    """The floor: spawn `argv` `count` times, `concurrency` at a time, the prompt on stdin,
    in a new session like the daemon's tools."""
    limiter = anyio.CapacityLimiter(concurrency)
    data = PROMPT.encode()

    async def one() -> None:
        async with limiter:
            await anyio.run_process(list(argv), input=data, start_new_session=True)

    async with anyio.create_task_group() as tg:
        for _ in range(count):
            tg.start_soon(one)


RESULT_BYTES = b"x" * 700  # about the size of a result file for a `cat` task


def files_floor(folder: Path, count: int) -> float:
    """The least file work of `count` results, in seconds: each written durably, each task
    file moved (the task files are made beforehand, untimed)."""
    inbox, outbox, archive = (folder / name for name in ("inbox", "outbox", "archive"))
    for name in (inbox, outbox, archive):
        name.mkdir(parents=True)
    write_tasks(inbox, [f"t{i:06d}" for i in range(count)], PROMPT)
    started = time.perf_counter()
    for i in range(count):
        tmp, final = outbox / f".t{i:06d}.tmp", outbox / f"t{i:06d}.result.yaml"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.write(fd, RESULT_BYTES)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, final)
        os.replace(inbox / f"t{i:06d}.yaml", archive / f"t{i:06d}.yaml")
    return time.perf_counter() - started


def floor_main(argv: Sequence[str]) -> int:
    """`python -m bench.throughput --floor-run COUNT CONCURRENCY TOOL...` (a subprocess)."""
    count, concurrency, *tool = argv
    anyio.run(bare_loop, tool, int(count), int(concurrency))
    return 0


def one_round(tasks: int, concurrency: int, tool: list[str]) -> tuple[float, ...]:
    """(floor wall, floor CPU, daemon wall, daemon CPU, files floor wall) in seconds, in a
    fresh workspace."""
    with workspace(NAME) as ws:
        ws.configure(noop_config(tool, concurrency))
        write_tasks(ws.inbox, [f"t{i:06d}" for i in range(tasks)], PROMPT)
        ws.warm_up()

        def bare(count: int) -> list[str]:
            return [PYTHON, "-m", "bench.throughput", "--floor-run", str(count), str(concurrency),
                    *tool]  # fmt: skip

        run_checked(bare(1), ws.env, REPO)  # its bytecode cache too
        floor_wall, floor_cpu = run_measured(bare(tasks), ws.env, REPO)
        files_wall = files_floor(ws.tmp / "files-floor", tasks)
        wall, cpu = run_measured(
            ws.command("run", "--once", "--concurrency", str(concurrency)), ws.env, ws.root
        )
        done = count_results(ws.outbox)
        with sqlite3.connect(f"file:{ws.database}?mode=ro", uri=True) as db:
            rows = db.execute("SELECT COUNT(*) FROM invocations").fetchone()[0]
        if done != tasks or rows != tasks:
            raise RuntimeError(f"{done} results and {rows} telemetry rows for {tasks} tasks")
    info(
        NAME,
        f"round: floor {floor_wall:.2f} s, files floor {files_wall:.2f} s, daemon {wall:.2f} s, "
        f"{done} results, {rows} rows",
    )
    return floor_wall, floor_cpu, wall, cpu, files_wall


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list[:1] == ["--floor-run"]:
        return floor_main(args_list[1:])
    p = parser(__doc__ or NAME)
    p.add_argument("--tasks", type=int)
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--rounds", type=int)
    args = p.parse_args(args_list)
    tasks = size(args.tasks, args.quick, 40, 2000)
    rounds = size(args.rounds, args.quick, 1, 3)
    tool = [which("cat")]
    header(NAME, {"tasks": tasks, "concurrency": args.concurrency, "rounds": rounds,
                  "tool": " ".join(tool)})  # fmt: skip
    runs = [one_round(tasks, args.concurrency, tool) for _ in range(rounds)]
    floor, floor_cpu, wall, cpu, files = (median([r[i] for r in runs]) for i in range(5))
    figure(f"{NAME}.floor", floor, "s", note=f"{tasks / floor:.0f} tasks/s, bare anyio loop")
    figure(
        f"{NAME}.daemon",
        wall,
        "s",
        floor=floor,
        target=TARGET,
        note=f"{tasks / wall:.0f} tasks/s, {1000 * (wall - floor) / tasks:.2f} ms/task added",
    )
    figure(
        f"{NAME}.files_floor",
        files,
        "s",
        note=f"{1000 * files / tasks:.2f} ms/task: result files written, fsynced and renamed, "
        "task files moved, by one plain loop",
    )
    figure(
        f"{NAME}.daemon_vs_both_floors",
        wall,
        "s",
        floor=floor + files,
        note="against the bare loop's time plus the files floor's",
    )
    figure(
        f"{NAME}.daemon_cpu",
        cpu,
        "s",
        floor=floor_cpu,
        note=f"CPU time, tools included: {1000 * cpu / tasks:.2f} ms/task, "
        f"floor {1000 * floor_cpu / tasks:.2f} ms/task",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
