"""Every benchmark in turn, each in its own process: `uv run python -m bench [--quick]
[--only NAME,NAME]`. Exits non-zero when a benchmark fails to run (a missed target is a
MISS in its figure line, not a failure)."""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

BENCHMARKS = ("throughput", "latency", "cli_start", "reports", "memory", "real_tool", "isolation",
              "dashboard", "scale_out", "sessions", "binary")  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--quick", action="store_true", help="small sizes (the smoke test)")
    p.add_argument("--only", help=f"a comma-separated subset of {', '.join(BENCHMARKS)}")
    args = p.parse_args(argv)
    names = args.only.split(",") if args.only else list(BENCHMARKS)
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        p.error(f"unknown benchmark {', '.join(unknown)}: choose from {', '.join(BENCHMARKS)}")
    failed = []
    for name in names:
        print(f"## bench.{name}", flush=True)
        started = time.perf_counter()
        command = [sys.executable, "-m", f"bench.{name}", *(["--quick"] if args.quick else [])]
        if subprocess.run(command, check=False).returncode != 0:
            failed.append(name)
        print(f"# {name}: ran in {time.perf_counter() - started:.1f} s", flush=True)
    if failed:
        print(f"error: {', '.join(failed)} did not run to the end", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
