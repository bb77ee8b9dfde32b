"""Telemetry, budgets, cost optimisation and the reports, through the real command."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from orchestrator.reports.status import status_data
from orchestrator.telemetry.store import MIGRATIONS, connect, migrate
from tests.conftest import (
    base_config,
    cli_env,
    drop_task,
    orchestrator,
    result,
    results,
    write_config,
)


def run_once(root: Path, *args: str) -> None:
    done = orchestrator(root, "run", "--once", *args)
    assert done.returncode == 0, done.stderr


def rows(root: Path, sql: str = "SELECT * FROM invocations ORDER BY id") -> list[dict[str, Any]]:
    with connect(root / "work" / "telemetry.db", readonly=True) as db:
        db.row_factory = sqlite3.Row
        return [dict(r) for r in db.execute(sql)]


def configure(root: Path, edit: Any) -> None:
    files = base_config()
    edit(files)
    write_config(root, files)


def test_migrations_produce_the_schema(tmp_path: Path) -> None:
    db = connect(tmp_path / "t.db")
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"invocations", "task_events", "tasks", "usage_rollup", "_migrations"} <= tables
    columns = [r[1] for r in db.execute("PRAGMA table_info(invocations)")]
    for name in (
        "task_id",
        "attempt",
        "agent",
        "tool",
        "model",
        "route_reason",
        "fallback_from",
        "started_at",
        "ended_at",
        "duration_ms",
        "exit_code",
        "outcome",
        "error_kind",
        "input_tokens",
        "output_tokens",
        "cache_read_tokens",
        "cache_write_tokens",
        "cost_usd",
        "cost_source",
        "price_version",
        "session_id",
        "prompt_hash",
        "prompt_text",
        "chain_id",
    ):
        assert name in columns
    indexes = {r[1] for r in db.execute("PRAGMA index_list(invocations)")}
    assert "invocations_started" in indexes
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    applied = [r[0] for r in db.execute("SELECT name FROM _migrations ORDER BY name")]
    assert applied == [name for name, _ in MIGRATIONS]
    assert migrate(db) == []  # nothing applied twice
    db.close()


def test_every_attempt_is_a_row(workspace: Path) -> None:
    drop_task(workspace, "fb.yaml", {"agent": "chain-exit", "prompt": "hello there"})
    run_once(workspace)
    found = rows(workspace)
    assert [(r["attempt"], r["tool"], r["outcome"], r["error_kind"]) for r in found] == [
        (1, "failing", "failed", "nonzero_exit"),
        (2, "fake", "succeeded", None),
    ]
    ok = found[1]
    assert ok["task_id"] == "fb" and ok["agent"] == "chain-exit"
    assert ok["route_reason"] == "fallback" and ok["fallback_from"] == "failing:fake-large"
    assert ok["model"] == "fake-small" and ok["exit_code"] == 0
    assert ok["input_tokens"] == 3 and ok["output_tokens"] == 3
    assert ok["cost_usd"] == pytest.approx((3 * 0.5 + 3 * 1) / 1e6)
    assert ok["cost_source"] == "computed" and ok["price_version"] == "models.yaml"
    states = [r["state"] for r in rows(workspace, "SELECT state FROM task_events ORDER BY id")]
    assert states == ["queued", "running", "running", "succeeded"]


@pytest.mark.parametrize("mode", ["metadata", "hash", "full"])
def test_privacy_modes(workspace: Path, mode: str) -> None:
    configure(workspace, lambda f: f["policies.yaml"].update(privacy={"prompts": mode}))
    secret = "SECRET-PROMPT-7f3a9c"
    drop_task(workspace, "p.yaml", {"agent": "worker", "prompt": secret})
    run_once(workspace)
    [row] = rows(workspace)
    stored = b"".join(p.read_bytes() for p in (workspace / "work").glob("telemetry.db*"))
    digest = hashlib.sha256(f"{secret}\n".encode()).hexdigest()
    if mode == "metadata":
        assert secret.encode() not in stored
        assert row["prompt_hash"] is None and row["prompt_text"] is None
    elif mode == "hash":
        assert secret.encode() not in stored
        assert row["prompt_hash"] == digest and row["prompt_text"] is None
    else:
        assert row["prompt_text"] == f"{secret}\n" and row["output_text"] == f"{secret}\n"


def pricey(files: dict[str, Any], **budgets: Any) -> None:
    files["models.yaml"]["models"]["pricey"] = {
        "price_per_mtok": {"input": 1000, "output": 1000},
    }
    files["tools.yaml"]["tools"]["fake"]["models"].append("pricey")
    files["agents.yaml"]["agents"]["worker"]["preferred_model"] = "pricey"
    files["policies.yaml"]["budgets"] = {"estimated_output_tokens": 100, **budgets}


def test_fifty_concurrent_tasks_never_pass_a_hard_budget(workspace: Path) -> None:
    configure(workspace, lambda f: pricey(f, daily_usd=2.0, mode="hard"))
    prompt = "x" * 400  # 100 tokens in, 100 out: $0.20 a task, estimated at about that
    for i in range(50):
        drop_task(workspace, f"b{i:02}.yaml", {"agent": "worker", "prompt": prompt})
    run_once(workspace, "--concurrency", "50")
    found = results(workspace)
    done = [r for r in found.values() if r["status"] == "succeeded"]
    blocked = [r for r in found.values() if r["status"] == "blocked_by_budget"]
    assert len(done) + len(blocked) == 50
    spent = sum(r["cost_usd"] for r in done)
    assert spent <= 2.0 + 1e-9
    assert len(done) == 9  # each reserves ~$0.2005 (the estimate rounds up)
    error = blocked[0]["error"]
    assert error["kind"] == "budget_exhausted"
    assert "the global daily budget is $2.00" in error["message"]
    assert "raise it in config/policies.yaml" in error["hint"]
    status = orchestrator(workspace, "status", "--json")
    data = json.loads(status.stdout)
    assert data["spend"]["today_usd"] == pytest.approx(spent)
    assert data["queue"]["blocked_by_budget"] == len(blocked)
    assert data["spend"]["warnings"]


def test_soft_budget_warns_but_runs(workspace: Path) -> None:
    configure(workspace, lambda f: pricey(f, daily_usd=0.5, mode="soft"))
    for i in range(4):
        drop_task(workspace, f"s{i}.yaml", {"agent": "worker", "prompt": "x" * 400})
    run_once(workspace, "--concurrency", "1")
    found = results(workspace)
    assert all(r["status"] == "succeeded" for r in found.values())
    assert any("the global daily budget" in w for r in found.values() for w in r["warnings"])
    text = orchestrator(workspace, "status").stdout
    assert "warning: spend today $0.80 is over the budget of $0.50" in text


def test_per_agent_budget(workspace: Path) -> None:
    def edit(files: dict[str, Any]) -> None:
        pricey(files, daily_usd=100, per_agent={"worker": {"daily_usd": 0.3}})
        files["agents.yaml"]["agents"]["other"] = {
            "preferred_tool": "fake",
            "preferred_model": "pricey",
        }

    configure(workspace, edit)
    for i in range(2):
        drop_task(workspace, f"w{i}.yaml", {"agent": "worker", "prompt": "x" * 400})
        drop_task(workspace, f"o{i}.yaml", {"agent": "other", "prompt": "x" * 400})
    run_once(workspace, "--concurrency", "1")
    statuses = {k: v["status"] for k, v in results(workspace).items()}
    assert statuses == {
        "w0": "succeeded",
        "w1": "blocked_by_budget",
        "o0": "succeeded",
        "o1": "succeeded",
    }
    assert "agent worker's daily budget" in result(workspace, "w1")["error"]["message"]


def test_downgrade_instead_of_blocking(workspace: Path) -> None:
    def edit(files: dict[str, Any]) -> None:
        pricey(files, daily_usd=0.3, on_budget_exhausted="downgrade")
        files["policies.yaml"]["cost_optimization"] = {"simple_task_models": ["fake-small"]}

    configure(workspace, edit)
    for i in range(2):
        drop_task(workspace, f"d{i}.yaml", {"agent": "worker", "prompt": "x" * 400})
    run_once(workspace, "--concurrency", "1")
    assert result(workspace, "d0")["model"] == "pricey"
    second = result(workspace, "d1")
    assert second["status"] == "succeeded"
    assert (second["model"], second["route_reason"]) == ("fake-small", "budget_downgrade")


def test_cost_optimisation_routes_small_prompts_and_counts_the_saving(workspace: Path) -> None:
    def edit(files: dict[str, Any]) -> None:
        files["policies.yaml"]["cost_optimization"] = {
            "simple_task_threshold_tokens": 50,
            "simple_task_models": ["fake-small"],
        }

    configure(workspace, edit)
    drop_task(workspace, "small.yaml", {"agent": "worker", "prompt": "short " * 10})
    drop_task(workspace, "big.yaml", {"agent": "worker", "prompt": "long " * 100})
    run_once(workspace)
    small, big = result(workspace, "small"), result(workspace, "big")
    assert (small["model"], small["route_reason"]) == ("fake-small", "cost_optimization")
    assert (big["model"], big["route_reason"]) == ("fake-large", "preferred")
    [row] = [r for r in rows(workspace) if r["task_id"] == "small"]
    assert row["route_reason"] == "cost_optimization"
    assert row["baseline_cost_usd"] > row["cost_usd"]
    stats = orchestrator(workspace, "stats", "--by", "model")
    assert "cost optimisation saved $0.0002 against the preferred models" in stats.stdout
    data = json.loads(orchestrator(workspace, "stats", "--json").stdout)
    saved = sum(r["saved_usd"] for r in data)
    assert saved == pytest.approx(row["baseline_cost_usd"] - row["cost_usd"])


def test_prices_from_the_library_and_unknown_models(workspace: Path) -> None:
    def edit(files: dict[str, Any]) -> None:
        files["tools.yaml"]["tools"]["fake"]["models"] += ["claude-haiku-4-5", "mystery-model"]

    configure(workspace, edit)
    drop_task(
        workspace,
        "lib.yaml",
        {"agent": "worker", "model": "claude-haiku-4-5", "prompt": "x" * 4000},
    )
    drop_task(
        workspace, "unk.yaml", {"agent": "worker", "model": "mystery-model", "prompt": "x" * 100}
    )
    run_once(workspace)
    lib, unk = result(workspace, "lib"), result(workspace, "unk")
    # claude-haiku-4-5 at $1 / $5 per MTok from genai-prices: 1000 in, 1000 out
    assert lib["cost_usd"] == pytest.approx((1000 * 1 + 1000 * 5) / 1e6)
    [lib_row] = [r for r in rows(workspace) if r["task_id"] == "lib"]
    assert lib_row["price_version"].startswith("genai-prices ")
    assert unk["status"] == "succeeded" and "cost_usd" not in unk
    assert any("no price known for mystery-model" in w for w in unk["warnings"])
    stats = orchestrator(workspace, "stats", "--by", "model").stdout
    assert "invocations of models with unknown prices (cost unknown)" in stats
    assert "+?" in stats


def test_rate_limit_sends_waiting_tasks_to_their_fallback(workspace: Path) -> None:
    def edit(files: dict[str, Any]) -> None:
        files["tools.yaml"]["tools"]["fake"]["rate_limit"] = {"requests_per_minute": 6}
        files["agents.yaml"]["agents"]["worker"]["fallback_chain"] = ["fake-arg"]

    configure(workspace, edit)
    for i in range(2):
        drop_task(workspace, f"r{i}.yaml", {"agent": "worker", "prompt": f"n{i}"})
    run_once(workspace, "--concurrency", "1")
    first, second = result(workspace, "r0"), result(workspace, "r1")
    assert first["tool"] == "fake"
    assert second["tool"] == "fake-arg"
    skipped = second["attempts"][0]
    assert (skipped["tool"], skipped["outcome"]) == ("fake", "skipped")
    assert skipped["error"]["kind"] == "rate_limit"


def test_telemetry_survives_a_restart_and_stats_formats(workspace: Path) -> None:
    drop_task(workspace, "one.yaml", {"agent": "worker", "prompt": "first"})
    run_once(workspace)
    drop_task(workspace, "two.yaml", {"agent": "chain-missing", "prompt": "second"})
    run_once(workspace)
    assert [r["task_id"] for r in rows(workspace)] == ["one", "two", "two"]
    data = json.loads(orchestrator(workspace, "stats", "--json", "--by", "agent").stdout)
    assert {(r["agent"], r["invocations"]) for r in data} == {("worker", 1), ("chain-missing", 2)}
    for row in data:
        for key in (
            "period",
            "invocations",
            "input_tokens",
            "output_tokens",
            "cache_read_tokens",
            "cache_write_tokens",
            "cost_usd",
            "avg_cost_usd",
            "share",
        ):
            assert key in row
    table = list(
        csv.DictReader(
            io.StringIO(
                orchestrator(workspace, "stats", "--csv", "--monthly", "--by", "tool").stdout
            )
        )
    )
    assert {r["tool"] for r in table} == {"fake", "missing"}
    assert table[0]["period"].count("-") == 1  # YYYY-MM
    weekly = orchestrator(workspace, "stats", "--weekly", "--since", "2020-01-01")
    assert "-W" in weekly.stdout and "spend per period:" in weekly.stdout
    empty = orchestrator(workspace, "stats", "--until", "2020-01-01")
    assert "no invocations recorded" in empty.stdout
    bad = orchestrator(workspace, "stats", "--since", "yesterday")
    assert bad.returncode == 1 and "YYYY-MM-DD" in bad.stderr


def test_status_shows_queue_running_and_spend(workspace: Path) -> None:
    for i in range(3):
        drop_task(workspace, f"q{i}.yaml", {"agent": "worker", "prompt": "x"})
    data = json.loads(orchestrator(workspace, "status", "--json").stdout)
    assert data["queue"]["inbox"] == 3
    assert set(data) == {
        "queue", "running", "waiting", "scheduled", "waiting_quota", "windows", "circuits",
        "executor", "chains", "branches", "telemetry", "spend",
    }  # fmt: skip
    assert (data["waiting_quota"], data["windows"], data["executor"]) == ([], [], {})
    assert set(data["spend"]) >= {"today_usd", "month_usd", "budgets", "warnings"}
    run_once(workspace)
    text = orchestrator(workspace, "status").stdout
    assert "queue:   inbox 0" in text and "succeeded 3" in text
    assert "today       $0.00 / " in text or "(no budget)" in text


def test_readers_never_see_a_locked_database(workspace: Path) -> None:
    for i in range(150):
        drop_task(workspace, f"h{i:03}.yaml", {"agent": "worker", "prompt": f"n{i}"})
    errors: list[BaseException] = []
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            try:
                status_data(workspace)
            except sqlite3.Error as exc:  # "database is locked" would land here
                errors.append(exc)

    reader = threading.Thread(target=read)
    reader.start()
    try:
        run_once(workspace, "--concurrency", "16")
    finally:
        stop.set()
        reader.join()
    assert not errors
    assert len(rows(workspace)) == 150


def test_status_watch_refreshes(workspace: Path) -> None:
    watcher = subprocess.Popen(
        [sys.executable, "-m", "orchestrator", "--root", str(workspace), "status", "--watch",
         "--interval", "0.1"],
        stdout=subprocess.PIPE, env=cli_env(workspace.parent), text=True,
    )  # fmt: skip
    try:
        drop_task(workspace, "seen.yaml", {"agent": "worker", "prompt": "x"})
        time.sleep(1.0)
    finally:
        watcher.terminate()
        out, _ = watcher.communicate(timeout=10)
    frames = out.split("\x1b[2J\x1b[H")
    assert len(frames) > 3
    assert "inbox 1" in frames[-1]
