"""Throughput: N tasks with a no-op tool (`cat`: the prompt on stdin, echoed as the answer)
through `orchestrator run --once --concurrency C`, inbox → outbox + telemetry, against the
floor: a bare anyio loop spawning the same tool with the same stdin at the same
concurrency. Both are timed as whole processes (interpreter start-up included), taking
turns for R rounds (a fresh workspace each round); the medians are compared. CPU time
(user + system, the tools included) is printed too: it is steadier than wall time on a
busy machine.

    uv run python -m bench.throughput [--quick] [--tasks N] [--concurrency C] [--rounds R]
"""

from __future__ import annotations

import sqlite3
import sys
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


def floor_main(argv: Sequence[str]) -> int:
    """`python -m bench.throughput --floor-run COUNT CONCURRENCY TOOL...` (a subprocess)."""
    count, concurrency, *tool = argv
    anyio.run(bare_loop, tool, int(count), int(concurrency))
    return 0


def one_round(tasks: int, concurrency: int, tool: list[str]) -> tuple[float, float, float, float]:
    """(floor wall, floor CPU, daemon wall, daemon CPU) in seconds, in a fresh workspace."""
    with workspace(NAME) as ws:
        ws.configure(noop_config(tool, concurrency))
        write_tasks(ws.inbox, [f"t{i:06d}" for i in range(tasks)], PROMPT)
        ws.warm_up()

        def bare(count: int) -> list[str]:
            return [PYTHON, "-m", "bench.throughput", "--floor-run", str(count), str(concurrency),
                    *tool]  # fmt: skip

        run_checked(bare(1), ws.env, REPO)  # its bytecode cache too
        floor_wall, floor_cpu = run_measured(bare(tasks), ws.env, REPO)
        wall, cpu = run_measured(
            ws.command("run", "--once", "--concurrency", str(concurrency)), ws.env, ws.root
        )
        done = count_results(ws.outbox)
        with sqlite3.connect(f"file:{ws.database}?mode=ro", uri=True) as db:
            rows = db.execute("SELECT COUNT(*) FROM invocations").fetchone()[0]
        if done != tasks or rows != tasks:
            raise RuntimeError(f"{done} results and {rows} telemetry rows for {tasks} tasks")
    info(NAME, f"round: floor {floor_wall:.2f} s, daemon {wall:.2f} s, {done} results, {rows} rows")
    return floor_wall, floor_cpu, wall, cpu


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
    floor, floor_cpu, wall, cpu = (median([r[i] for r in runs]) for i in range(4))
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
