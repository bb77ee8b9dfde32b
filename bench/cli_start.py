"""CLI start: `orchestrator status` on a telemetry database of N invocations (spread over
the last 90 days, with their rollups, task rows and events), and `orchestrator version`,
against the floor `python -c pass` with the same interpreter and environment. Like
hyperfine: warm-up runs, then the median wall time of R runs of each command (the three
commands take turns, so noise from other processes hits them alike).

    uv run python -m bench.cli_start [--quick] [--invocations N] [--runs R]
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from bench._common import (
    PYTHON,
    Target,
    database_workspace,
    figure,
    header,
    median,
    parser,
    size,
    time_in_turns,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

NAME = "cli_start"
STATUS_TARGET_MS = 120.0
DAYS = 90
WARMUP = 3


def main(argv: Sequence[str] | None = None) -> int:
    p = parser(__doc__ or NAME)
    p.add_argument("--invocations", type=int)
    p.add_argument("--runs", type=int)
    args = p.parse_args(argv)
    invocations = size(args.invocations, args.quick, 2_000, 100_000)
    runs = size(args.runs, args.quick, 3, 30)
    header(NAME, {"invocations": invocations, "days": DAYS, "runs": runs, "warm-up": WARMUP})
    with database_workspace(NAME, invocations, DAYS) as ws:
        commands = {
            "floor": [PYTHON, "-c", "pass"],
            "version": ws.command("version"),
            "status": ws.command("status"),
        }
        times = time_in_turns(commands, ws, runs=runs, warmup=WARMUP)
    floor = median(times["floor"])
    figure(f"{NAME}.python", floor, "ms", note="python -c pass")
    figure(f"{NAME}.version", median(times["version"]), "ms", floor=floor)
    figure(
        f"{NAME}.status",
        median(times["status"]),
        "ms",
        floor=floor,
        target=Target(STATUS_TARGET_MS),
        note=f"{invocations} invocations, min {min(times['status']):.1f} ms",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
