"""What every benchmark shares: a throw-away workspace whose tool is a no-op, a daemon process
that is always stopped, timing helpers, and one line per figure.

A figure line reads

    <bench>.<figure>: <value> <unit> [floor <value> <unit> ratio <r>x added <d> <unit>]
        [(target <what> <= <limit>) ok|MISS]

on one line, so `grep MISS` finds what misses its target. The floor is measured in the same
run as the figure, on the same machine, so ratios stay comparable between machines.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import platform
import random
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import yaml

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping, Sequence

REPO = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
NOOP_TOOL = "noop"
AGENT = "bench"


# --- figures ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """`limit` for the value itself, its ratio to the floor, or what it adds to the floor."""

    limit: float
    on: Literal["value", "ratio", "added"] = "value"

    def met(self, value: float, floor: float | None) -> bool:
        if self.on == "value":
            return value <= self.limit
        if floor is None:
            raise ValueError(f"a target on the {self.on} needs a floor")
        return (value / floor if self.on == "ratio" else value - floor) <= self.limit


def _number(value: float) -> str:
    if value == 0 or abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}" if abs(value) >= 1 else f"{value:.3f}"


def figure(
    name: str,
    value: float,
    unit: str,
    *,
    floor: float | None = None,
    target: Target | None = None,
    note: str = "",
) -> bool:
    """Print one figure line; True when it meets its target (or has none)."""
    parts = [f"{name}: {_number(value)} {unit}"]
    if floor is not None:
        ratio = value / floor if floor else math.inf
        added = value - floor
        sign = "+" if added >= 0 else "-"
        parts.append(f"floor {_number(floor)} {unit} ratio {ratio:.2f}x")
        parts.append(f"added {sign}{_number(abs(added))} {unit}")
    ok = True
    if target is not None:
        ok = target.met(value, floor)
        limit = f"{_number(target.limit)}{'x' if target.on == 'ratio' else ' ' + unit}"
        what = "" if target.on == "value" else f"{target.on} "
        parts.append(f"(target {what}<= {limit}) {'ok' if ok else 'MISS'}")
    if note:
        parts.append(f"[{note}]")
    print(" ".join(parts), flush=True)
    return ok


def info(name: str, text: str) -> None:
    """A line that is not a figure (sizes, set-up times)."""
    print(f"# {name}: {text}", flush=True)


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def percentile(values: Sequence[float], p: float) -> float:
    """The p-th percentile (0-100), linearly interpolated between the closest ranks."""
    ordered = sorted(values)
    if not ordered:
        raise ValueError("no values")
    rank = (len(ordered) - 1) * p / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def machine() -> dict[str, str]:
    """The machine the figures were measured on."""
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    ram = "unknown"
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    load = "unknown"
    with contextlib.suppress(OSError):
        load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    return {
        "cores": str(os.cpu_count()),
        "cpu": cpu,
        "ram": ram,
        "python": platform.python_version(),
        "load": load,
    }


def filesystem(folder: Path) -> str:
    """The mount a folder is on: its type and source, from /proc/self/mounts (where
    spaces and other odd characters in a mount point are octal escapes), or "unknown"."""
    folder = folder.resolve()
    best, found = Path("/"), "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/mounts").read_text().splitlines():
            source, point, kind = line.split()[:3]
            mount = Path(re.sub(r"\\([0-7]{3})", lambda m: chr(int(m[1], 8)), point))
            if folder.is_relative_to(mount) and len(mount.parts) >= len(best.parts):
                best, found = mount, f"{kind} on {source}"
    return found


def file_create_us(folder: Path, count: int = 200) -> float:
    """Mean cost of creating one empty file in a fresh folder under `folder`, in µs: the
    one piece of a result's file work that no writer can skip (one new file per task)."""
    probe = Path(tempfile.mkdtemp(prefix="orchestrator-bench-probe-", dir=folder))
    try:
        started = time.perf_counter()
        for i in range(count):
            os.close(os.open(probe / f"f{i}", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
        return (time.perf_counter() - started) / count * 1e6
    finally:
        shutil.rmtree(probe, ignore_errors=True)


def header(name: str, sizes: Mapping[str, object]) -> None:
    m = machine()
    info(
        name,
        f"{m['cores']} cores, {m['cpu']}, {m['ram']} RAM, Python {m['python']}, "
        f"load average {m['load']}",
    )
    temp = Path(tempfile.gettempdir())
    info(
        name,
        f"workspaces in {temp} ({filesystem(temp)}; set TMPDIR to move them), "
        f"creating an empty file there takes {file_create_us(temp):.0f} µs",
    )
    info(name, ", ".join(f"{k} {v}" for k, v in sizes.items()))


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--quick", action="store_true", help="small sizes (the smoke test)")
    return p


def size(given: int | None, quick: bool, quick_value: int, full_value: int) -> int:
    if given is not None:
        return given
    return quick_value if quick else full_value


# --- workspace -------------------------------------------------------------------------


@dataclass(frozen=True)
class Workspace:
    """A temp folder holding the workspace (`root`), a HOME with its TMPDIR, and the
    environment every process of the run gets (nothing inherited but PATH)."""

    tmp: Path
    root: Path
    home: Path
    env: dict[str, str]

    @property
    def inbox(self) -> Path:
        return self.root / "work" / "inbox"

    @property
    def outbox(self) -> Path:
        return self.root / "work" / "outbox"

    @property
    def database(self) -> Path:
        return self.root / "work" / "telemetry.db"

    def configure(self, files: Mapping[str, Any]) -> None:
        folder = self.root / "config"
        folder.mkdir(parents=True, exist_ok=True)
        for name, data in files.items():
            (folder / name).write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")

    def command(self, *args: str, root: Path | None = None) -> list[str]:
        """argv of `orchestrator --root ROOT ARGS` (the installed console script)."""
        script = Path(PYTHON).parent / "orchestrator"
        head = [str(script)] if script.exists() else [PYTHON, "-m", "orchestrator"]
        return [*head, "--root", str(root or self.root), *args]

    def warm_up(self) -> None:
        """Fill this run's bytecode cache: one task through `run --once`, `status` and
        `stats`, in a copy of the workspace's config beside it (the workspace is untouched)."""
        root = self.tmp / "warm-up"
        shutil.copytree(self.root / "config", root / "config")
        (root / "work" / "inbox").mkdir(parents=True)
        write_tasks(root / "work" / "inbox", ["warm-up"])
        for args in (("run", "--once"), ("status",), ("stats",), ("version",)):
            run_checked(self.command(*args, root=root), self.env, root)


@contextlib.contextmanager
def workspace(name: str, extra_env: Mapping[str, str] | None = None) -> Iterator[Workspace]:
    """A fresh workspace (with work/ folders, no config yet), removed afterwards."""
    tmp = Path(tempfile.mkdtemp(prefix=f"orchestrator-bench-{name}-"))
    try:
        root = tmp / "ws"
        for folder in ("inbox", "outbox", "running", "archive"):
            (root / "work" / folder).mkdir(parents=True)
        home = tmp / "home"
        (home / "tmp").mkdir(parents=True)
        env = {
            "PATH": os.environ.get("PATH", os.defpath),
            "HOME": str(home),
            "TMPDIR": str(home / "tmp"),
            "LANG": "C.UTF-8",
            # An installed package has its bytecode compiled; this run's own cache stands in
            # for it (warmed by the first runs) without writing into the source tree.
            "PYTHONPYCACHEPREFIX": str(tmp / "pycache"),
        }
        env.update(extra_env or {})
        yield Workspace(tmp, root, home, env)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def noop_tool(argv: Sequence[str], concurrency: int) -> dict[str, Any]:
    """A generic tool: `argv`, the prompt on stdin, its stdout taken as the answer."""
    return {
        "adapter": "generic",
        "binary": argv[0],
        "args": list(argv[1:]),
        "prompt": "stdin",
        "output": {"format": "text"},
        "timeout": "60s",
        "max_concurrency": concurrency,
    }


def noop_config(argv: Sequence[str], concurrency: int = 8) -> dict[str, Any]:
    """One agent whose one tool is `argv`; one attempt per task, no budgets."""
    return {
        "tools.yaml": {"tools": {NOOP_TOOL: noop_tool(argv, concurrency)}},
        "agents.yaml": {"agents": {AGENT: {"preferred_tool": NOOP_TOOL}}},
        "models.yaml": {"models": {}},
        "policies.yaml": {"retries": {"max_attempts": 1, "backoff": "10ms"}},
    }


def which(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise SystemExit(f"error: {name} not found on PATH")
    return found


def task_text(task_id: str, prompt: str = "hello") -> str:
    return f"id: {task_id}\nagent: {AGENT}\nprompt: {prompt}\n"


def write_tasks(inbox: Path, ids: Sequence[str], prompt: str = "hello") -> None:
    """Write task files straight into the inbox (for a daemon that is not running yet)."""
    for task_id in ids:
        (inbox / f"{task_id}.yaml").write_text(task_text(task_id, prompt), encoding="utf-8")


def stage_task(inbox: Path, task_id: str, prompt: str = "hello") -> tuple[Path, Path]:
    """Write a task as a dotfile in the inbox (ignored until renamed); (temp, final) paths."""
    tmp = inbox / f".{task_id}.yaml.tmp"
    tmp.write_text(task_text(task_id, prompt), encoding="utf-8")
    return tmp, inbox / f"{task_id}.yaml"


def count_results(outbox: Path) -> int:
    with os.scandir(outbox) as entries:
        return sum(1 for e in entries if e.name.endswith(".result.yaml"))


def wait_until(predicate: Any, timeout: float, what: str, step: float = 0.005) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(step)


def result_status(outbox: Path, task_id: str) -> dict[str, Any]:
    data = yaml.safe_load((outbox / f"{task_id}.result.yaml").read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise RuntimeError(f"result of {task_id} is not a mapping: {data!r}")
    return data


# --- processes -------------------------------------------------------------------------


def run_measured(
    argv: Sequence[str], env: Mapping[str, str], cwd: Path, timeout: float = 600
) -> tuple[float, float]:
    """Run a command to completion; (wall seconds, CPU seconds of it and its children)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall = run_checked(argv, env, cwd, timeout)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return wall, cpu


def run_checked(
    argv: Sequence[str], env: Mapping[str, str], cwd: Path, timeout: float = 600
) -> float:
    """Run a command to completion (stdout discarded); its wall time in seconds. Raises
    RuntimeError with its stderr when it fails."""
    started = time.perf_counter()
    done = subprocess.run(
        list(argv),
        env=dict(env),
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        timeout=timeout,
        check=False,
    )
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(
            f"{' '.join(argv)} exited {done.returncode}: {done.stderr.decode(errors='replace')}"
        )
    return elapsed


def time_runs(
    argv: Sequence[str], env: Mapping[str, str], cwd: Path, *, runs: int, warmup: int = 2
) -> list[float]:
    """Like hyperfine: `warmup` runs thrown away, then `runs` wall times in seconds."""
    for _ in range(warmup):
        run_checked(argv, env, cwd)
    return [run_checked(argv, env, cwd) for _ in range(runs)]


def time_in_turns(
    commands: Mapping[str, Sequence[str]], ws: Workspace, *, runs: int, warmup: int
) -> dict[str, list[float]]:
    """Wall times in ms of each command, the commands taking turns run by run (so a burst
    of load from another process hits them alike); `warmup` rounds are thrown away."""
    times: dict[str, list[float]] = {name: [] for name in commands}
    for round_number in range(warmup + runs):
        for name, command in commands.items():
            elapsed = run_checked(command, ws.env, ws.root)
            if round_number >= warmup:
                times[name].append(1000 * elapsed)
    return times


@contextlib.contextmanager
def database_workspace(name: str, invocations: int, days: float) -> Iterator[Workspace]:
    """A workspace (no-op tool, budgets) whose telemetry database holds `invocations`."""
    with workspace(name) as ws:
        files = noop_config([which("cat")])
        files["policies.yaml"].update(budgets_config())
        ws.configure(files)
        started = time.perf_counter()
        build_database(ws.database, invocations, days)
        size_mb = ws.database.stat().st_size / 1e6
        info(name, f"database built in {time.perf_counter() - started:.1f} s: {size_mb:.0f} MB")
        yield ws


def rss_kb(pid: int, field: str = "VmRSS") -> int:
    """A memory figure of a live process from /proc/<pid>/status, in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/{pid}/status")


class DaemonProcess:
    """`orchestrator run` in the background, its log in the temp folder; always stopped
    (SIGTERM, then SIGKILL) when the `with` block ends, whatever happened in it."""

    def __init__(self, ws: Workspace, *args: str) -> None:
        self.ws = ws
        self.log = ws.tmp / "daemon.log"
        self._log_file = self.log.open("wb")
        self.process = subprocess.Popen(
            ws.command("run", *args),
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            env=ws.env,
            cwd=ws.root,
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def wait_ready(self, timeout: float = 60) -> None:
        wait_until(
            lambda: "daemon ready" in self.text() or self.process.poll() is not None,
            timeout,
            "the daemon to start",
            step=0.01,
        )
        if self.process.poll() is not None:
            raise RuntimeError(f"the daemon exited {self.process.returncode}:\n{self.text()}")

    def check_alive(self) -> None:
        if self.process.poll() is not None:
            raise RuntimeError(f"the daemon exited {self.process.returncode}:\n{self.text()}")

    def stop(self, timeout: float = 30) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self._log_file.close()

    def __enter__(self) -> DaemonProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


# --- a telemetry database of a given size ----------------------------------------------

# (agent, tool, model, weight): each agent mostly on its preferred model, some cheap-model
# routing and some fallbacks, as the daemon records them.
MIX = (
    ("architect", "claude-code", "claude-opus-4-5", 6),
    ("architect", "codex", "gpt-5-codex", 1),
    ("backend-dev", "claude-code", "claude-sonnet-4-5", 20),
    ("backend-dev", "claude-code", "claude-haiku-4-5", 6),
    ("backend-dev", "codex", "gpt-5-codex", 3),
    ("backend-dev", "gemini", "gemini-2.5-flash", 1),
    ("frontend-dev", "claude-code", "claude-sonnet-4-5", 15),
    ("frontend-dev", "claude-code", "claude-haiku-4-5", 5),
    ("reviewer", "codex", "gpt-5-codex", 10),
    ("reviewer", "codex", "gpt-5-mini", 4),
    ("writer", "gemini", "gemini-2.5-flash", 8),
    ("writer", "claude-code", "claude-haiku-4-5", 2),
    ("scripts", "local", "", 3),
)
PRICE_PER_MTOK = {
    "claude-opus-4-5": (5.0, 25.0),
    "claude-sonnet-4-5": (3.0, 15.0),
    "claude-haiku-4-5": (1.0, 5.0),
    "gpt-5-codex": (1.25, 10.0),
    "gpt-5-mini": (0.25, 2.0),
    "gemini-2.5-flash": (0.3, 2.5),
    "": (0.0, 0.0),
}
CHUNK = 50_000


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _invocation(
    number: int, started: datetime, pick: tuple[str, str, str, int], rng: random.Random
) -> dict[str, Any]:
    agent, tool, model, _ = pick
    failed = rng.random() < 0.04
    duration = rng.randint(800, 90_000)
    tokens_in = 0 if failed else rng.randint(500, 40_000)
    tokens_out = 0 if failed else rng.randint(50, 4_000)
    cache_read = 0 if failed else rng.randint(0, 60_000)
    price_in, price_out = PRICE_PER_MTOK[model]
    cost = (tokens_in * price_in + tokens_out * price_out + cache_read * price_in / 10) / 1e6
    task_id = f"2026-task-{number:08d}"
    return {
        "task_id": task_id,
        "attempt": 1,
        "chain_id": task_id,
        "agent": agent,
        "tool": tool,
        "model": model or None,
        "route_reason": "preferred",
        "fallback_from": None,
        "started_at": _iso(started),
        "ended_at": _iso(started + timedelta(milliseconds=duration)),
        "duration_ms": duration,
        "exit_code": 1 if failed else 0,
        "outcome": "failed" if failed else "succeeded",
        "error_kind": "rate_limit" if failed else None,
        "input_tokens": tokens_in,
        "output_tokens": tokens_out,
        "cache_read_tokens": cache_read,
        "cache_write_tokens": 0,
        "reasoning_tokens": 0,
        "cost_usd": cost if model else None,
        "cost_source": "computed" if model else None,
        "price_version": "bench",
        "baseline_cost_usd": None,
        "session_id": None,
        "prompt_hash": None,
        "prompt_text": None,
        "output_text": None,
    }


def build_database(path: Path, invocations: int, days: float, seed: int = 7) -> None:
    """A telemetry database as the daemon leaves it after `invocations` tasks (one attempt
    each) spread uniformly over the last `days` days: the `invocations` rows with their
    `usage_rollup` buckets (made by the writer's own rollup code), a `tasks` row and three
    `task_events` per task, and a few tasks queued, waiting and running now."""
    from orchestrator.telemetry.store import (
        INVOCATION_COLUMNS,
        ROLLUP_UPSERT,
        connect,
        ensure_daily,
    )
    from orchestrator.telemetry.writer import rollup_key, sum_rows

    rng = random.Random(seed)
    now = datetime.now(UTC)
    span_s = days * 86400
    marks = ", ".join("?" for _ in INVOCATION_COLUMNS)
    insert = f"INSERT INTO invocations ({', '.join(INVOCATION_COLUMNS)}) VALUES ({marks})"
    weights = [m[3] for m in MIX]
    db = connect(path)
    try:
        db.execute("PRAGMA synchronous = OFF")
        for first in range(0, invocations, CHUNK):
            count = min(CHUNK, invocations - first)
            picks = rng.choices(MIX, weights=weights, k=count)
            rows = [
                _invocation(
                    first + i, now - timedelta(seconds=rng.random() * span_s), picks[i], rng
                )
                for i in range(count)
            ]
            db.execute("BEGIN")
            db.executemany(insert, [tuple(r[c] for c in INVOCATION_COLUMNS) for r in rows])
            db.executemany(ROLLUP_UPSERT, sum_rows(rows, rollup_key))
            db.executemany(
                "INSERT INTO tasks (task_id, agent, state, priority, tool, model, updated_at, "
                "started_at, chain_id, detail) VALUES (?, ?, ?, 'normal', ?, ?, ?, ?, ?, ?)",
                [
                    (r["task_id"], r["agent"], r["outcome"], r["tool"], r["model"],
                     r["ended_at"], r["started_at"], r["chain_id"], r["error_kind"])
                    for r in rows
                ],
            )  # fmt: skip
            db.executemany(
                "INSERT INTO task_events (task_id, state, at, detail) VALUES (?, ?, ?, ?)",
                [
                    event
                    for r in rows
                    for event in (
                        (r["task_id"], "queued", r["started_at"], None),
                        (r["task_id"], "running", r["started_at"], None),
                        (r["task_id"], r["outcome"], r["ended_at"], r["error_kind"]),
                    )
                ],
            )
            db.execute("COMMIT")
        stamp = _iso(now)
        live = [(f"live-{state}-{i}", state) for state in ("queued", "waiting", "running")
                for i in range(3)]  # fmt: skip
        db.executemany(
            "INSERT INTO tasks (task_id, agent, state, priority, tool, model, updated_at, "
            "started_at, waiting_for) VALUES (?, 'backend-dev', ?, 'normal', 'claude-code', "
            "'claude-sonnet-4-5', ?, ?, ?)",
            [(task_id, state, stamp, stamp if state == "running" else None,
              "live-queued-0" if state == "waiting" else None) for task_id, state in live],
        )  # fmt: skip
        ensure_daily(db, "UTC")  # as the daemon does at start (budgets_config's zone)
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        db.close()


def budgets_config() -> dict[str, Any]:
    return {"budgets": {"daily_usd": 100, "monthly_usd": 3000, "timezone": "UTC"}}
