"""Reports: `orchestrator stats --monthly --by model` over a telemetry database of N
invocations spread over the last 365 days (with their rollups, task rows and events),
against the floor `python -c pass`. Median wall time of R runs after warm-up runs, the two
commands taking turns.

    uv run python -m bench.reports [--quick] [--invocations N] [--runs R]
"""

from __future__ import annotations

import sqlite3
import sys
import time
from typing import TYPE_CHECKING

from bench._common import (
    PYTHON,
    Target,
    budgets_config,
    build_database,
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
    with workspace(NAME) as ws:
        files = noop_config([which("cat")])
        files["policies.yaml"].update(budgets_config())
        ws.configure(files)
        started = time.perf_counter()
        build_database(ws.database, invocations, DAYS)
        with sqlite3.connect(f"file:{ws.database}?mode=ro", uri=True) as db:
            rollups = db.execute("SELECT COUNT(*) FROM usage_rollup").fetchone()[0]
        size_mb = ws.database.stat().st_size / 1e6
        info(
            NAME,
            f"database built in {time.perf_counter() - started:.1f} s: {size_mb:.0f} MB, "
            f"{rollups} usage_rollup rows",
        )
        commands = {
            "floor": [PYTHON, "-c", "pass"],
            "stats": ws.command("stats", "--monthly", "--by", "model"),
        }
        times: dict[str, list[float]] = {name: [] for name in commands}
        for round_number in range(WARMUP + runs):
            for name, command in commands.items():
                elapsed = run_checked(command, ws.env, ws.root)
                if round_number >= WARMUP:
                    times[name].append(1000 * elapsed)
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
