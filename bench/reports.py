"""Reports: `orchestrator stats --monthly --by model` over a telemetry database of N
invocations spread over the last 365 days (with their rollups, task rows and events),
against the floor `python -c pass`. Median wall time of R runs after warm-up runs, the two
commands taking turns.

    uv run python -m bench.reports [--quick] [--invocations N] [--runs R]
"""

from __future__ import annotations

import sqlite3
import sys
from typing import TYPE_CHECKING

from bench._common import (
    PYTHON,
    Target,
    database_workspace,
    figure,
    header,
    info,
    median,
    parser,
    size,
    time_in_turns,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

NAME = "reports"
TARGET_MS = 300.0
DAYS = 365
WARMUP = 2


def main(argv: Sequence[str] | None = None) -> int:
    p = parser(__doc__ or NAME)
    p.add_argument("--invocations", type=int)
    p.add_argument("--runs", type=int)
    args = p.parse_args(argv)
    invocations = size(args.invocations, args.quick, 5_000, 1_000_000)
    runs = size(args.runs, args.quick, 3, 15)
    header(NAME, {"invocations": invocations, "days": DAYS, "runs": runs, "warm-up": WARMUP})
    with database_workspace(NAME, invocations, DAYS) as ws:
        with sqlite3.connect(f"file:{ws.database}?mode=ro", uri=True) as db:
            rollups = db.execute("SELECT COUNT(*) FROM usage_rollup").fetchone()[0]
        info(NAME, f"{rollups} usage_rollup rows")
        commands = {
            "floor": [PYTHON, "-c", "pass"],
            "stats": ws.command("stats", "--monthly", "--by", "model"),
        }
        times = time_in_turns(commands, ws, runs=runs, warmup=WARMUP)
    floor = median(times["floor"])
    figure(f"{NAME}.python", floor, "ms", note="python -c pass")
    figure(
        f"{NAME}.stats_monthly_by_model",
        median(times["stats"]),
        "ms",
        floor=floor,
        target=Target(TARGET_MS),
        note=f"{invocations} invocations, min {min(times['stats']):.1f} ms",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
