"""Dashboard: how long the overview and spend pages take to answer over a telemetry
database of N invocations spread over the last 90 days (with their rollups, task rows and
events), against the floor of the same server answering for its stylesheet. A real
`orchestrator dashboard` process on 127.0.0.1; one keep-alive connection sends the requests
in turns; median of R runs after warm-up runs.

    uv run python -m bench.dashboard [--quick] [--invocations N] [--runs R]
"""

from __future__ import annotations

import http.client
import re
import subprocess
import sys
import time
from typing import TYPE_CHECKING

from bench._common import (
    Target,
    Workspace,
    database_workspace,
    figure,
    header,
    info,
    median,
    parser,
    percentile,
    size,
    wait_until,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

NAME = "dashboard"
TARGET_MS = 150.0
DAYS = 90
WARMUP = 3
TOKEN = "bench-token-0123456789abcdef"
PAGES = {
    "floor": "/static/dashboard.css",
    "overview": "/",
    "overview_live": "/fragments/overview",
    "spend_30_days": "/spend?days=30&by=model",
    "spend_90_days": "/spend?days=90&by=agent",
    "api_status": "/api/status",
    "tasks": "/tasks",
}
TARGETED = ("overview", "spend_30_days", "spend_90_days")


def start(ws: Workspace) -> tuple[subprocess.Popen[bytes], int]:
    log = ws.tmp / "dashboard.log"
    process = subprocess.Popen(
        ws.command("dashboard", "--port", "0"),
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        env={**ws.env, "ORCHESTRATOR_DASHBOARD_TOKEN": TOKEN},
        cwd=ws.root,
    )
    found: list[int] = []

    def ready() -> bool:
        match = re.search(r"http://127\.0\.0\.1:(\d+)/", log.read_text(errors="replace"))
        if match:
            found.append(int(match[1]))
        return bool(match) or process.poll() is not None

    wait_until(ready, 60, "the dashboard to start", step=0.02)
    if not found:
        raise RuntimeError(f"the dashboard exited:\n{log.read_text(errors='replace')}")
    return process, found[0]


def fetch(conn: http.client.HTTPConnection, path: str) -> float:
    """Milliseconds from sending the request to the last byte of the answer."""
    started = time.perf_counter()
    conn.request("GET", path, headers={"Authorization": f"Bearer {TOKEN}"})
    answer = conn.getresponse()
    body = answer.read()
    elapsed = (time.perf_counter() - started) * 1000
    if answer.status != 200 or not body:
        raise RuntimeError(f"{path}: {answer.status} {body[:200]!r}")
    return elapsed


def main(argv: Sequence[str] | None = None) -> int:
    p = parser(__doc__ or NAME)
    p.add_argument("--invocations", type=int)
    p.add_argument("--runs", type=int)
    args = p.parse_args(argv)
    invocations = size(args.invocations, args.quick, 5_000, 1_000_000)
    runs = size(args.runs, args.quick, 3, 30)
    header(NAME, {"invocations": invocations, "days": DAYS, "runs": runs, "warm-up": WARMUP})
    with database_workspace(NAME, invocations, DAYS) as ws:
        process, port = start(ws)
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            times: dict[str, list[float]] = {name: [] for name in PAGES}
            for n in range(WARMUP + runs):
                for name, path in PAGES.items():
                    elapsed = fetch(conn, path)
                    if n >= WARMUP:
                        times[name].append(elapsed)
            conn.close()
        finally:
            process.terminate()
            process.wait(timeout=30)
    info(NAME, "each figure: request sent to answer read, one keep-alive connection")
    floor = median(times["floor"])
    figure(f"{NAME}.floor", floor, "ms", note="the stylesheet, as the same server sends it")
    for name in PAGES:
        if name == "floor":
            continue
        figure(
            f"{NAME}.{name}",
            median(times[name]),
            "ms",
            floor=floor,
            target=Target(TARGET_MS) if name in TARGETED else None,
            note=f"{PAGES[name]}, {invocations} invocations, p95 "
            f"{percentile(times[name], 95):.1f} ms",
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
