"""The standalone executable: its size, how long scripts/build-binary takes, and how long
`orchestrator version` and `status` take to start as the one-file executable, as the
one-folder build (`--onedir`) and as the installed package's console script (the floor:
the same code, started by the Python it was installed into). `python -c pass` is printed
for scale. Commands take turns run by run; median of R runs after warm-up runs.

    uv run python -m bench.binary [--quick] [--binary PATH] [--runs R] [--invocations N]

Without --binary it builds both executables into its temp folder (about a minute);
--binary PATH times that one-file executable instead (no build, no one-folder figures).
The one-file executable unpacks itself into TMPDIR at every start, so TMPDIR's file system
shows in its figures (the header names it).
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from bench._common import (
    PYTHON,
    REPO,
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

NAME = "binary"
DAYS = 30
WARMUP = 2
COMMANDS = ("version", "status")


def build(dist: Path, work: Path, *options: str) -> float:
    """scripts/build-binary into `dist`, in this process's environment (its HOME holds
    PyInstaller's cache of stripped libraries, its uv cache the packages); wall seconds."""
    started = time.perf_counter()
    done = subprocess.run(
        [str(REPO / "scripts" / "build-binary"), "--dist", str(dist), "--work", str(work),
         *options],
        cwd=REPO, capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"scripts/build-binary failed:\n{done.stdout}\n{done.stderr}")
    return time.perf_counter() - started


def folder_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 1e6


def main(argv: Sequence[str] | None = None) -> int:
    p = parser(__doc__ or NAME)
    p.add_argument("--binary", type=Path, help="a one-file executable to time (no build)")
    p.add_argument("--runs", type=int)
    p.add_argument("--invocations", type=int)
    args = p.parse_args(argv)
    runs = size(args.runs, args.quick, 3, 20)
    invocations = size(args.invocations, args.quick, 200, 2_000)
    header(NAME, {"invocations": invocations, "days": DAYS, "runs": runs, "warm-up": WARMUP})
    with database_workspace(NAME, invocations, DAYS) as ws:
        executables = {}
        if args.binary is not None:
            executables["onefile"] = args.binary.resolve()
        else:
            onefile_s = build(ws.tmp / "onefile", ws.tmp / "build")
            executables["onefile"] = ws.tmp / "onefile" / "orchestrator"
            onedir_s = build(ws.tmp / "onedir", ws.tmp / "build", "--onedir")
            executables["onedir"] = ws.tmp / "onedir" / "orchestrator" / "orchestrator"
            figure(f"{NAME}.build", onefile_s, "s", note="scripts/build-binary, one file")
            info(NAME, f"the one-folder build took {onedir_s:.1f} s (after the first: warm)")
            figure(f"{NAME}.onedir_size", folder_mb(executables["onedir"].parent), "MB")
        figure(f"{NAME}.size", executables["onefile"].stat().st_size / 1e6, "MB",
               note=str(executables["onefile"]))  # fmt: skip
        root = ["--root", str(ws.root)]
        commands = {"python": [PYTHON, "-c", "pass"]}
        for command in COMMANDS:
            commands[f"wheel_{command}"] = ws.command(command)
            for kind, path in executables.items():
                commands[f"{kind}_{command}"] = [str(path), *root, command]
        times = time_in_turns(commands, ws, runs=runs, warmup=WARMUP)
    figure(f"{NAME}.python", median(times["python"]), "ms", note="python -c pass")
    for command in COMMANDS:
        floor = median(times[f"wheel_{command}"])
        figure(f"{NAME}.wheel_{command}", floor, "ms", note="the console script")
        for kind in executables:
            figure(f"{NAME}.{kind}_{command}", median(times[f"{kind}_{command}"]), "ms",
                   floor=floor)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
