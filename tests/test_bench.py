"""Smoke runs of the benchmarks (`python -m bench.<name> --quick`), so they do not rot: each
must run to the end and print its figure lines. Their timings are not checked: targets are
goals for the code (docs/benchmarks.md), not assertions."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests import realcli

REPO = Path(__file__).resolve().parents[1]
NUMBER = r"-?\d+(?:\.\d+)?"
# (benchmark, the figures it must print, the ones that carry a target)
FIGURES = {
    "throughput": (
        ("floor", "daemon", "files_floor", "daemon_vs_both_floors", "daemon_cpu"),
        ("daemon",),
    ),
    "latency": (("p50", "p99"), ("p50", "p99")),
    "cli_start": (("python", "version", "status"), ("status",)),
    "reports": (("python", "stats_monthly_by_model"), ("stats_monthly_by_model",)),
    "memory": (("idle", "after_tasks", "growth"), ("idle", "after_tasks", "growth")),
    "real_tool": (("direct", "daemon", "added"), ("added",)),
    "scale_out": (("local", "dask_overhead", "slow_local", "slow_two_workers"), ("dask_overhead",)),
    "sessions": (("fresh_cost", "resumed_cost"), ()),
}


def run_bench(module: str, tmp_path: Path, *args: str) -> str:
    env = {
        "PATH": os.environ.get("PATH", os.defpath),
        "HOME": str(tmp_path),
        "TMPDIR": str(tmp_path),
        "LANG": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1",  # the benchmarks' own processes use their own cache
    }
    if module in ("bench.real_tool", "bench.sessions"):  # the installed CLIs, not a new install
        env[realcli.CLI_BIN_ENV] = str(realcli.cli_bin_dir())
    done = subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
    )
    assert done.returncode == 0, f"{module} exited {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.mark.parametrize("name", list(FIGURES))
def test_benchmark_runs_and_prints_its_figures(name: str, tmp_path: Path) -> None:
    out = run_bench(f"bench.{name}", tmp_path, "--quick")
    figures, targeted = FIGURES[name]
    for figure in figures:
        line = re.search(rf"^{name}\.{figure}: ({NUMBER}) (\S+)(.*)$", out, re.MULTILINE)
        assert line is not None, f"no {name}.{figure} line in:\n{out}"
        if figure in targeted:
            assert re.search(r"\(target .*<= \S+.*\) (ok|MISS)", line.group(3)), line.group(0)
    where = rf"^# {name}: workspaces in {re.escape(str(tmp_path))} \(.+\), creating"
    assert re.search(rf"{where} an empty file there takes \d+ µs$", out, re.MULTILINE), out
    assert not list(tmp_path.glob("orchestrator-bench-*")), "a benchmark left its temp folder"


def test_bench_all_runs_the_chosen_benchmarks(tmp_path: Path) -> None:
    out = run_bench("bench", tmp_path, "--quick", "--only", "cli_start")
    assert "## bench.cli_start" in out
    assert re.search(r"^cli_start\.status: ", out, re.MULTILINE)
