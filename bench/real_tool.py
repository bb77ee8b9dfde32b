"""Real tool overhead: one task run through an idle live daemon with the real `claude` CLI
(the pinned npm package of tests/clis) against the test suite's fake LLM API on 127.0.0.1,
from the rename into the inbox to the result file, against the floor: the same `claude`
command run directly (the argv, stdin, environment and working directory the claude-code
adapter builds, taken from the adapter itself), from spawn to exit. The two take turns for
R runs; the medians are compared. Everything runs with an isolated HOME
(tests/realcli.isolated_env).

    uv run python -m bench.real_tool [--quick] [--runs R]
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from typing import TYPE_CHECKING, Any
from unittest import mock

from bench._common import (
    AGENT,
    DaemonProcess,
    Target,
    Workspace,
    figure,
    header,
    info,
    median,
    parser,
    result_status,
    size,
    stage_task,
    wait_until,
    workspace,
)

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

NAME = "real_tool"
TARGET_MS = 30.0
TOOL = "claude-code"
MODEL = "claude-sonnet-4-5"
PROMPT = "FAKE_REPLY=pong"
PROVIDER_URL_VARS = ("ANTHROPIC_BASE_URL", "OPENAI_BASE_URL", "GOOGLE_GEMINI_BASE_URL")


def claude_config(binary: Path, base_url: str) -> dict[str, Any]:
    """Like tests/test_real_clis.py: the API found through tools.yaml's base_url alone."""
    return {
        "tools.yaml": {
            "tools": {
                TOOL: {
                    "adapter": TOOL,
                    "binary": str(binary),
                    "models": [MODEL],
                    "base_url": base_url,
                    "env": ["ANTHROPIC_API_KEY", "DISABLE_AUTOUPDATER", "DISABLE_TELEMETRY"],
                    "timeout": "120s",
                    "max_concurrency": 2,
                }
            }
        },
        "agents.yaml": {"agents": {AGENT: {"preferred_tool": TOOL, "preferred_model": MODEL}}},
        "models.yaml": {"models": {MODEL: {"provider": "anthropic"}}},
        "policies.yaml": {"retries": {"max_attempts": 1, "backoff": "10ms"}},
    }


def direct_command(ws: Workspace) -> tuple[list[str], bytes, dict[str, str]]:
    """argv, stdin and environment of the claude process, as the daemon builds them."""
    from orchestrator.adapters import get_adapter
    from orchestrator.adapters.base import RunContext
    from orchestrator.config import load_config
    from orchestrator.engine import tool_env

    config = load_config(ws.root)
    tool = config.tools[TOOL]
    run_dir = ws.tmp / "direct-run"
    run_dir.mkdir(exist_ok=True)
    ctx = RunContext(task_id="direct", workspace=config.root, run_dir=run_dir)
    invocation = get_adapter(tool.adapter).build(tool, MODEL, PROMPT, ctx)
    with mock.patch.dict(os.environ, ws.env, clear=True):  # the daemon's environment
        env = tool_env(tool, invocation.env, run_dir)
    return invocation.argv, invocation.stdin or b"", env


def run_direct(argv: list[str], stdin: bytes, env: dict[str, str], cwd: Path) -> float:
    started = time.perf_counter()
    done = subprocess.run(argv, input=stdin, env=env, cwd=cwd, capture_output=True,
                          timeout=120, check=False)  # fmt: skip
    elapsed = time.perf_counter() - started
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
    answer = lines[-1] if lines else {}  # the result object: stream-json's last line
    if done.returncode != 0 or answer.get("is_error") or answer.get("result") != "pong":
        raise RuntimeError(f"claude failed ({done.returncode}): {done.stdout!r} {done.stderr!r}")
    return elapsed


def run_daemon(ws: Workspace, daemon: DaemonProcess, task_id: str) -> float:
    tmp, target = stage_task(ws.inbox, task_id, PROMPT)
    result = ws.outbox / f"{task_id}.result.yaml"
    started = time.perf_counter()
    os.rename(tmp, target)
    wait_until(result.exists, 120, f"the result of {task_id}", step=0.001)
    elapsed = time.perf_counter() - started
    data = result_status(ws.outbox, task_id)
    if data.get("status") != "succeeded" or str(data.get("output")).strip() != "pong":
        raise RuntimeError(f"{task_id}: {data}\n{daemon.text()}")
    daemon.check_alive()
    return elapsed


def main(argv: Sequence[str] | None = None) -> int:
    p = parser(__doc__ or NAME)
    p.add_argument("--runs", type=int)
    args = p.parse_args(argv)
    runs = size(args.runs, args.quick, 1, 15)
    from tests import realcli
    from tests.fake_llm_api import FakeLLMAPI

    binary = realcli.cli_path("claude")
    header(NAME, {"runs": runs, "claude": binary, "prompt": PROMPT})
    direct: list[float] = []
    through: list[float] = []
    with FakeLLMAPI() as api, workspace(NAME) as ws:
        cache = {"PYTHONPYCACHEPREFIX": ws.env["PYTHONPYCACHEPREFIX"]}
        env = realcli.isolated_env(ws.home, api.base_url, extra=cache)
        for name in PROVIDER_URL_VARS:  # the CLI must find the API through tools.yaml
            del env[name]
        ws.env.clear()  # the daemon, the warm-up and the direct runs: this environment
        ws.env.update(env)
        ws.configure(claude_config(binary, api.base_url))
        argv_, stdin, tool_env_ = direct_command(ws)
        info(NAME, "direct: " + " ".join(argv_))
        ws.warm_up()
        with DaemonProcess(ws) as daemon:
            daemon.wait_ready()
            run_direct(argv_, stdin, tool_env_, ws.root)  # warm-up of both
            run_daemon(ws, daemon, "warm-up-daemon")
            for i in range(runs):
                direct.append(1000 * run_direct(argv_, stdin, tool_env_, ws.root))
                through.append(1000 * run_daemon(ws, daemon, f"real-{i:03d}"))
    info(NAME, "direct ms: " + ", ".join(f"{v:.0f}" for v in direct))
    info(NAME, "daemon ms: " + ", ".join(f"{v:.0f}" for v in through))
    paired = [t - d for t, d in zip(through, direct, strict=True)]
    figure(f"{NAME}.direct", median(direct), "ms", note="claude run directly")
    figure(f"{NAME}.daemon", median(through), "ms", floor=median(direct),
           note="rename -> result file")  # fmt: skip
    figure(
        f"{NAME}.added",
        median(paired),
        "ms",
        target=Target(TARGET_MS),
        note="median of (daemon - direct) over the pairs of consecutive runs",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
