"""Hostile input from tools and config: impossible numbers, relative binaries, names
made of confusable characters. Through the real command, except one writer-level test."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
import pytest
import yaml

from orchestrator.config import Budgets
from orchestrator.policy import BudgetLedger
from orchestrator.telemetry.store import connect
from orchestrator.telemetry.writer import TelemetryWriter
from tests.conftest import base_config, cli_env, drop_task, orchestrator, results, write_config

# A generic tool that prints the text after `EMIT ` in its prompt verbatim (so it can
# emit NaN, which json.dumps writes and json.loads reads), else 100 tokens in and out.
# (No braces: the generic adapter reads `{name}` in args as a placeholder.)
EMITTER = (
    "import json, sys\n"
    "prompt = sys.stdin.read()\n"
    "lines = [l[5:] for l in prompt.splitlines() if l.startswith('EMIT ')]\n"
    "normal = dict(result='ok', usage=dict(input_tokens=100, output_tokens=100))\n"
    "print(lines[0] if lines else json.dumps(normal))\n"
)
PROMPT_CHARS = 400  # 100 prompt tokens + 100 estimated output tokens: ~$0.20 a task


def emitter_config(daily_usd: float | None = None) -> dict[str, Any]:
    files = base_config()
    files["tools.yaml"]["tools"]["emitter"] = {
        "adapter": "generic",
        "binary": sys.executable,
        "args": ["-c", EMITTER],
        "output": {
            "format": "json",
            "text": "result",
            "cost_usd": "cost",
            "input_tokens": "usage.input_tokens",
            "output_tokens": "usage.output_tokens",
        },
        "models": ["dear"],
    }
    files["models.yaml"]["models"]["dear"] = {"price_per_mtok": {"input": 1000, "output": 1000}}
    files["agents.yaml"]["agents"]["spender"] = {
        "preferred_tool": "emitter",
        "preferred_model": "dear",
    }
    budgets: dict[str, Any] = {"estimated_output_tokens": 100}
    if daily_usd is not None:
        budgets.update(daily_usd=daily_usd, mode="hard")
    files["policies.yaml"]["budgets"] = budgets
    return files


def prompt_emitting(raw_json: str = "") -> str:
    head = f"EMIT {raw_json}\n" if raw_json else ""
    return head + "x" * (PROMPT_CHARS - len(head))


def invocation_rows(root: Path) -> list[dict[str, Any]]:
    with connect(root / "work" / "telemetry.db", readonly=True) as db:
        db.row_factory = sqlite3.Row
        return [dict(r) for r in db.execute("SELECT * FROM invocations ORDER BY id")]


def run_once(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    done = orchestrator(root, "run", "--once", *args)
    assert done.returncode == 0, done.stderr
    return done


# --- 1. numbers reported by a tool ----------------------------------------------------


@pytest.mark.parametrize(
    ("report", "field", "shown"),
    [
        ('{"result": "ok", "cost": NaN, "usage": {"input_tokens": 1, "output_tokens": 1}}',
         "cost_usd", "nan"),
        ('{"result": "ok", "usage": {"input_tokens": -10000000, "output_tokens": 1}}',
         "input_tokens", "-10000000"),
    ],
)  # fmt: skip
def test_a_bad_report_never_frees_a_hard_budget(
    workspace: Path, report: str, field: str, shown: str
) -> None:
    # $1.05 fits five tasks reserving ~$0.2005 each; the first one reports nonsense
    write_config(workspace, emitter_config(daily_usd=1.05))
    drop_task(
        workspace,
        "bad.yaml",
        {"agent": "spender", "priority": "critical", "prompt": prompt_emitting(report)},
    )
    for i in range(9):
        drop_task(workspace, f"n{i}.yaml", {"agent": "spender", "prompt": prompt_emitting()})
    done = run_once(workspace, "--concurrency", "1")
    found = results(workspace)
    statuses = sorted(r["status"] for r in found.values())
    assert statuses == ["blocked_by_budget"] * 5 + ["succeeded"] * 5, statuses
    bad = found["bad"]
    assert bad["status"] == "succeeded"
    assert bad.get("cost_usd") is None  # unknown, so the estimate stays charged
    warning = next(w for w in bad.get("warnings", []) if "emitter" in w)
    assert field in warning and shown in warning, bad["warnings"]
    assert "emitter" in done.stderr and field in done.stderr  # logged too
    ran = [task_id for task_id, r in found.items() if r["status"] == "succeeded"]
    rows = invocation_rows(workspace)
    assert sorted(row["task_id"] for row in rows) == sorted(ran)
    assert all(row["cost_usd"] is None or row["cost_usd"] >= 0 for row in rows)
    status = json.loads(orchestrator(workspace, "status", "--json").stdout)
    assert 0 <= status["spend"]["today_usd"] <= 1.05


@pytest.mark.parametrize(
    ("report", "field", "shown"),
    [
        ('{"result": "ok", "cost": Infinity, "usage": {"input_tokens": 1}}', "cost_usd", "inf"),
        ('{"result": "ok", "cost": -Infinity, "usage": {"input_tokens": 1}}', "cost_usd",
         "-inf"),
        ('{"result": "ok", "cost": -5, "usage": {"input_tokens": 1}}', "cost_usd", "-5"),
        ('{"result": "ok", "cost": 1e30, "usage": {"input_tokens": 1}}', "cost_usd", "1e+30"),
        ('{"result": "ok", "cost": "nan", "usage": {"input_tokens": 1}}', "cost_usd", "nan"),
        # 999,999,999 tokens may be, but not at $1000 a million: $999,999.999
        ('{"result": "ok", "usage": {"input_tokens": 999999999}}', "computed cost_usd",
         "999999.999"),
        ('{"result": "ok", "usage": {"input_tokens": 1e30}}', "input_tokens", "1000000"),
        ('{"result": "ok", "usage": {"output_tokens": "-7"}}', "output_tokens", "-7"),
        ('{"result": "ok", "usage": {"input_tokens": 10, "output_tokens": 2000000000}}',
         "output_tokens", "2000000000"),
    ],
)  # fmt: skip
def test_impossible_numbers_make_the_cost_unknown(
    workspace: Path, report: str, field: str, shown: str
) -> None:
    write_config(workspace, emitter_config())
    drop_task(workspace, "t.yaml", {"agent": "spender", "prompt": prompt_emitting(report)})
    drop_task(workspace, "u.yaml", {"agent": "spender", "prompt": prompt_emitting()})
    run_once(workspace, "--concurrency", "1")
    found = results(workspace)
    bad = found["t"]
    assert bad["status"] == "succeeded", bad
    assert bad.get("cost_usd") is None
    assert bad["attempts"][0].get("cost_usd") is None
    assert not bad.get("usage") or field not in bad["usage"]
    warning = next(w for w in bad.get("warnings", []) if "emitter" in w)
    assert field in warning and shown in warning, warning
    assert found["u"]["cost_usd"] == pytest.approx(0.2)
    rows = {row["task_id"]: row for row in invocation_rows(workspace)}
    assert set(rows) == {"t", "u"}
    assert rows["t"]["cost_usd"] is None
    if field.endswith("_tokens"):
        assert rows["t"][field] == 0  # dropped


@pytest.mark.parametrize("actual", [None, float("nan"), float("inf"), -1000.0])
def test_the_ledger_never_credits_an_impossible_cost(actual: float | None) -> None:
    budgets = Budgets.model_validate({"daily_usd": 1.0})
    ledger = BudgetLedger(budgets, load_spent=lambda window: 0.0)
    now = datetime(2026, 11, 28, 12, tzinfo=UTC)
    _, reservation = ledger.reserve("a", 0.4, now)
    assert reservation is not None
    ledger.settle(reservation, actual)
    assert ledger.spent[reservation.windows[0].key] == pytest.approx(0.4)  # the estimate
    assert not ledger.reserve("a", 0.7, now)[0].allowed


async def test_the_writer_isolates_a_row_it_cannot_store(tmp_path: Path) -> None:
    def row(name: str | None, **numbers: Any) -> dict[str, Any]:
        base = {
            "task_id": name, "attempt": 1, "agent": "a", "tool": "t", "model": "m",
            "started_at": "2026-01-01T00:00:00.000Z", "ended_at": "2026-01-01T00:00:01.000Z",
            "duration_ms": 1000, "outcome": "succeeded", "input_tokens": 5,
            "output_tokens": 5, "cache_read_tokens": 0, "cache_write_tokens": 0,
            "reasoning_tokens": 0, "cost_usd": 0.25,
        }  # fmt: skip
        return {**base, **numbers}

    path = tmp_path / "telemetry.db"
    writer = TelemetryWriter(path)
    async with anyio.create_task_group() as tg:
        tg.start_soon(writer.run)
        writer.invocation(row("good-1"))
        writer.invocation(row("nan-cost", cost_usd=float("nan")))
        writer.invocation(row("huge-tokens", input_tokens=10**30))
        writer.invocation(row(None))  # task_id is NOT NULL
        writer.invocation(row("good-2"))
        await writer.settled()
        error = writer.health.last_error
        writer.invocation(row("later"))
        await writer.settled()
        writer.close()
    with connect(path, readonly=True) as db:
        db.row_factory = sqlite3.Row
        stored = {r["task_id"]: dict(r) for r in db.execute("SELECT * FROM invocations")}
        spent = db.execute("SELECT SUM(cost_usd), SUM(input_tokens) FROM usage_rollup").fetchone()
    assert set(stored) == {"good-1", "nan-cost", "huge-tokens", "good-2", "later"}
    assert stored["nan-cost"]["cost_usd"] is None
    assert stored["huge-tokens"]["input_tokens"] == 0
    assert spent[0] == pytest.approx(0.25 * 4)
    assert spent[1] == 5 * 4
    assert writer.health.dropped == 1
    assert error is not None and "task_id" in error
    assert writer.health.last_error is None  # the database itself is fine


# --- 2. numbers in config -------------------------------------------------------------


@pytest.mark.parametrize(
    ("file", "edit", "field", "shown"),
    [
        ("tools.yaml", lambda f: f["tools"]["fake"].update(timeout=float("nan")),
         "tools.fake.timeout", "nan"),
        ("tools.yaml", lambda f: f["tools"]["fake"].update(timeout=float("inf")),
         "tools.fake.timeout", "inf"),
        ("tools.yaml",
         lambda f: f["tools"]["fake"].update(rate_limit={"requests_per_minute": float("inf")}),
         "tools.fake.rate_limit.requests_per_minute", "inf"),
        ("policies.yaml", lambda f: f.update(budgets={"daily_usd": float("inf")}),
         "budgets.daily_usd", "inf"),
        ("policies.yaml", lambda f: f.update(budgets={"warn_at_percent": float("nan")}),
         "budgets.warn_at_percent", "nan"),
        ("policies.yaml", lambda f: f.update(retries={"backoff": float("inf")}),
         "retries.backoff", "inf"),
        ("models.yaml",
         lambda f: f["models"]["fake-large"].update(price_per_mtok={"input": float("nan"),
                                                                     "output": 1}),
         "models.fake-large.price_per_mtok.input", "nan"),
    ],
)  # fmt: skip
def test_config_numbers_must_be_finite(
    workspace: Path, file: str, edit: Any, field: str, shown: str
) -> None:
    files = base_config()
    edit(files[file])
    write_config(workspace, files)  # yaml writes .nan and .inf
    done = orchestrator(workspace, "config", "validate")
    assert done.returncode == 1, done.stdout
    line = next(x for x in done.stderr.splitlines() if field in x)
    assert f"config/{file}" in line and shown in line.lower(), done.stderr
    assert "Traceback" not in done.stderr


# --- 3. a tool binary relative to the workspace ---------------------------------------


def run_elsewhere(root: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    cwd.mkdir(exist_ok=True)
    return subprocess.run(
        [sys.executable, "-m", "orchestrator", "--root", str(root), "run", "--once"],
        capture_output=True,
        text=True,
        timeout=90,
        env=cli_env(root.parent),
        cwd=cwd,
        check=False,
    )


@pytest.mark.parametrize("binary", ["bin/tool.sh", "./bin/tool.sh"])
def test_a_relative_binary_is_found_in_the_workspace(
    workspace: Path, tmp_path: Path, binary: str
) -> None:
    script = workspace / "bin" / "tool.sh"
    script.parent.mkdir()
    script.write_text('#!/bin/sh\ncat >/dev/null\necho "ran as $0"\n')
    script.chmod(0o755)
    files = base_config()
    files["tools.yaml"]["tools"]["local"] = {"adapter": "generic", "binary": binary}
    files["agents.yaml"]["agents"]["local"] = {"preferred_tool": "local"}
    write_config(workspace, files)
    drop_task(workspace, "t.yaml", {"agent": "local", "prompt": "hi"})
    done = run_elsewhere(workspace, tmp_path / "elsewhere")
    assert done.returncode == 0, done.stderr
    found = results(workspace)["t"]
    assert found["status"] == "succeeded", found
    assert found["output"] == f"ran as {script}"


def test_a_missing_relative_binary_names_the_resolved_path(workspace: Path, tmp_path: Path) -> None:
    files = base_config()
    files["tools.yaml"]["tools"]["local"] = {"adapter": "generic", "binary": "bin/absent.sh"}
    files["agents.yaml"]["agents"]["local"] = {"preferred_tool": "local"}
    write_config(workspace, files)
    drop_task(workspace, "t.yaml", {"agent": "local", "prompt": "hi"})
    done = run_elsewhere(workspace, tmp_path / "elsewhere")
    assert done.returncode == 0, done.stderr
    found = results(workspace)["t"]
    assert found["status"] == "failed"
    assert found["error"]["kind"] == "missing_binary"
    assert str(workspace / "bin" / "absent.sh") in found["error"]["message"]


# --- 4. names made of confusable characters -------------------------------------------

CYRILLIC_A = "\u0430"  # looks like "a"


def agents_named(root: Path, *names: str) -> None:
    files = base_config()
    files["agents.yaml"]["agents"] = {name: {"preferred_tool": "fake"} for name in names}
    (root / "config").mkdir(parents=True, exist_ok=True)
    for name, data in files.items():  # allow_unicode: the file holds the real characters
        text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
        (root / "config" / name).write_text(text, encoding="utf-8")


def test_a_confusable_agent_name_is_shown_escaped(workspace: Path) -> None:
    agents_named(workspace, "a", "b", f"{CYRILLIC_A}lpha")
    drop_task(workspace, "t.yaml", {"agent": CYRILLIC_A, "prompt": "hi"})
    drop_task(workspace, "u.yaml", {"agent": "alpha", "prompt": "hi"})
    run_once(workspace)
    found = results(workspace)
    error = found["t"]["error"]
    assert found["t"]["status"] == "rejected"
    assert "'\\u0430' has characters that are not plain ASCII" in error["hint"], error
    assert "'\\u0430lpha'" in error["hint"] and CYRILLIC_A not in error["hint"], error
    error = found["u"]["error"]  # the ASCII look-alike of a non-ASCII agent
    assert "did you mean '\\u0430lpha'?" in error["hint"], error


def test_submit_shows_a_confusable_agent_name_escaped(workspace: Path) -> None:
    agents_named(workspace, "a", "b")
    done = orchestrator(workspace, "submit", "--agent", CYRILLIC_A, "--prompt", "hi")
    assert done.returncode != 0
    hint = done.stderr.partition(": ")[2]  # after "error: unknown agent '...'"
    assert "'\\u0430' has characters that are not plain ASCII" in hint, done.stderr
    assert "valid names: a, b" in hint, done.stderr
