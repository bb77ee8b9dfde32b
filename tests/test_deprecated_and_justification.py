"""Configs carried over from an older tool: deprecated models run their successor (with
the reason and a warning), and `budgets.require_justification_over_usd` holds a task file
whose estimate is above it until it says why. Through `orchestrator run --once` and
`run --dry-run`; the telemetry database read back."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from orchestrator.telemetry.store import connect
from tests.conftest import base_config, drop_task, orchestrator, result, write_config
from tests.conftest import pricey_files as base_pricey_files

# 401 characters once composed: 101 prompt tokens + 100 estimated output tokens at $1000
# per million: an estimate of $0.2010 (the fake tool reports 100 + 100 tokens: $0.2000).
PROMPT = "x" * 400
ESTIMATE = "$0.2010"
HINT = "add justification: <why> to the task file and submit it again"


def run_once(root: Path) -> str:
    done = orchestrator(root, "run", "--once")
    assert done.returncode == 0, done.stderr
    return done.stderr


def dry_run(root: Path) -> str:
    done = orchestrator(root, "run", "--dry-run")
    assert done.returncode == 0, done.stderr
    return done.stdout


def rows(root: Path) -> list[dict[str, Any]]:
    with connect(root / "work" / "telemetry.db", readonly=True) as db:
        db.row_factory = sqlite3.Row
        return [dict(r) for r in db.execute("SELECT * FROM invocations ORDER BY id")]


# --- deprecated models ------------------------------------------------------------------


def retired_config(root: Path, models: dict[str, dict[str, Any]], **worker: Any) -> None:
    """`models` added to models.yaml and to the fake tool's list; `worker` changed."""
    files = base_config()
    files["tools.yaml"]["tools"]["fake"]["models"] += list(models)
    for entry in models.values():
        entry.setdefault("provider", "test")
    files["models.yaml"]["models"].update(models)
    files["agents.yaml"]["agents"]["worker"].update(worker)
    write_config(root, files)


OLD_TO_NEW = {
    "old-model": {"deprecated": True, "superseded_by": "new-model"},
    "new-model": {},
}


def test_a_deprecated_preferred_model_runs_its_successor(workspace: Path) -> None:
    retired_config(workspace, OLD_TO_NEW, preferred_model="old-model")
    drop_task(workspace, "t.yaml", {"agent": "worker", "prompt": "hello"})
    stderr = run_once(workspace)
    res = result(workspace, "t")
    assert res["status"] == "succeeded", res
    assert (res["tool"], res["model"]) == ("fake", "new-model")
    assert res["route_reason"] == "preferred (old-model is deprecated: superseded by new-model)"
    assert res["attempts"][0]["reason"] == res["route_reason"]
    warning = (
        "model old-model is deprecated: new-model was used instead; "
        "name new-model where old-model is named"
    )
    assert warning in res["warnings"]
    assert warning in stderr  # the daemon's log says it too
    [row] = rows(workspace)
    assert (row["model"], row["route_reason"]) == ("new-model", "preferred")


def test_dry_run_shows_the_successor_and_why(workspace: Path) -> None:
    retired_config(workspace, OLD_TO_NEW, fallback_chain=["fake:old-model"])
    drop_task(workspace, "t.yaml", {"agent": "worker", "prompt": "hello"})
    out = dry_run(workspace)
    assert "1. fake / fake-large (preferred, " in out
    assert (
        "2. fake / new-model (fallback (old-model is deprecated: superseded by new-model), "
        "price unknown): "
    ) in out
    assert "--model new-model --task t" in out
    assert "old-model" not in out.split("price unknown): ", 1)[1]  # never run as old-model
    assert [p.name for p in (workspace / "work" / "inbox").iterdir()] == ["t.yaml"]


def test_a_pinned_model_follows_a_chain_of_successors(workspace: Path) -> None:
    retired_config(
        workspace,
        {
            "old-model": {"deprecated": True, "superseded_by": "mid-model"},
            "mid-model": {"deprecated": True, "superseded_by": "new-model"},
            "new-model": {},
        },
    )
    drop_task(workspace, "t.yaml", {"agent": "worker", "prompt": "hi", "model": "old-model"})
    run_once(workspace)
    res = result(workspace, "t")
    assert (res["status"], res["model"]) == ("succeeded", "new-model")
    assert res["route_reason"] == (
        "pinned (old-model is deprecated: superseded by new-model (via mid-model))"
    )
    assert any("old-model" in w and "new-model" in w for w in res["warnings"])


def test_a_successor_only_another_tool_lists_goes_with_that_tool(workspace: Path) -> None:
    files = base_config()
    tools = files["tools.yaml"]["tools"]
    tools["fake"]["models"].append("old-model")
    tools["fake-arg"]["models"] = ["new-model"]
    models = files["models.yaml"]["models"]
    models["old-model"] = {"provider": "test", "deprecated": True, "superseded_by": "new-model"}
    models["new-model"] = {"provider": "test"}
    files["agents.yaml"]["agents"]["worker"]["preferred_model"] = "old-model"
    write_config(workspace, files)
    drop_task(workspace, "t.yaml", {"agent": "worker", "prompt": "hi"})
    run_once(workspace)
    res = result(workspace, "t")
    assert (res["status"], res["tool"], res["model"]) == ("succeeded", "fake-arg", "new-model")


def test_a_deprecated_model_without_successor_runs_with_a_warning(workspace: Path) -> None:
    retired_config(workspace, {"old-model": {"deprecated": True}}, preferred_model="old-model")
    drop_task(workspace, "t.yaml", {"agent": "worker", "prompt": "hi"})
    run_once(workspace)
    res = result(workspace, "t")
    assert (res["status"], res["model"]) == ("succeeded", "old-model")
    assert res["route_reason"] == "preferred (old-model is deprecated, with no superseded_by)"
    assert any(w.startswith("model old-model is deprecated") for w in res["warnings"])


# --- require_justification_over_usd -----------------------------------------------------


def pricey_files(threshold: float | None, **budgets: Any) -> dict[str, Any]:
    """Agent `worker` prefers `pricey` ($1000 per million tokens in and out)."""
    return base_pricey_files(require_justification_over_usd=threshold, **budgets)


def pricey_config(root: Path, threshold: float | None, **budgets: Any) -> None:
    write_config(root, pricey_files(threshold, **budgets))


@pytest.mark.parametrize("justification", [None, "", "   "])
def test_a_task_over_the_threshold_without_justification_is_rejected(
    workspace: Path, justification: str | None
) -> None:
    pricey_config(workspace, 0.10)
    task: dict[str, Any] = {"agent": "worker", "prompt": PROMPT}
    if justification is not None:
        task["justification"] = justification
    drop_task(workspace, "big.yaml", task)
    run_once(workspace)
    res = result(workspace, "big")
    assert res["status"] == "rejected", res
    error = res["error"]
    assert error["kind"] == "needs_justification"
    assert ESTIMATE in error["message"] and "($0.10)" in error["message"]
    assert "require_justification_over_usd" in error["message"]
    assert error["hint"].startswith(HINT)
    assert "attempts" not in res  # nothing ran
    assert rows(workspace) == []
    assert not list((workspace / "work" / "inbox").iterdir())  # archived, not left behind


def test_a_justified_task_runs_and_its_justification_is_recorded(workspace: Path) -> None:
    pricey_config(workspace, 0.10)
    why = "release blocker, approved by Kim"
    drop_task(workspace, "big.yaml", {"agent": "worker", "prompt": PROMPT, "justification": why})
    run_once(workspace)
    res = result(workspace, "big")
    assert (res["status"], res["model"]) == ("succeeded", "pricey")
    assert f"justification: {why}" in res["warnings"]
    assert any(ESTIMATE in w and "($0.10)" in w for w in res["warnings"])
    [row] = rows(workspace)
    assert row["justification"] == why


def test_a_justification_does_not_pass_a_hard_budget(workspace: Path) -> None:
    """Only `exec --force` runs past a hard budget: a task file's justification is for the
    threshold, and is still recorded in the blocked result."""
    pricey_config(workspace, 0.10, daily_usd=0.15, mode="hard")
    drop_task(workspace, "big.yaml", {"agent": "worker", "prompt": PROMPT, "justification": "x"})
    run_once(workspace)
    res = result(workspace, "big")
    assert (res["status"], res["error"]["kind"]) == ("blocked_by_budget", "budget_exhausted")
    assert "justification: x" in res["warnings"]
    assert not any("forced" in w for w in res["warnings"])


def test_a_fallback_over_the_threshold_is_passed_over(workspace: Path) -> None:
    """The task's estimate (its first entry's) is under the threshold; when that entry
    fails, a fallback over it is not run without a justification."""
    files = pricey_files(0.10)
    files["agents.yaml"]["agents"]["worker"] = {
        "preferred_tool": "failing",
        "preferred_model": "fake-small",
        "fallback_chain": ["fake:pricey", "fake:fake-large"],
    }
    write_config(workspace, files)
    drop_task(workspace, "t.yaml", {"agent": "worker", "prompt": PROMPT})
    run_once(workspace)
    res = result(workspace, "t")
    assert (res["status"], res["model"]) == ("succeeded", "fake-large")
    skipped = [a for a in res["attempts"] if a["outcome"] == "skipped"]
    assert [(a["tool"], a["model"], a["error"]["kind"]) for a in skipped] == [
        ("fake", "pricey", "needs_justification")
    ]
    assert ESTIMATE in skipped[0]["error"]["message"]
    assert [r["model"] for r in rows(workspace)] == ["fake-small", "fake-large"]


def test_an_unknown_price_is_not_blocked_but_warned(workspace: Path) -> None:
    files = base_config()
    files["tools.yaml"]["tools"]["fake"]["models"].append("unpriced-model-x")
    files["models.yaml"]["models"]["unpriced-model-x"] = {"provider": "test"}
    files["agents.yaml"]["agents"]["worker"]["preferred_model"] = "unpriced-model-x"
    files["policies.yaml"]["budgets"] = {"require_justification_over_usd": 0.0}
    write_config(workspace, files)
    drop_task(workspace, "t.yaml", {"agent": "worker", "prompt": PROMPT})
    run_once(workspace)
    res = result(workspace, "t")
    assert (res["status"], res["model"]) == ("succeeded", "unpriced-model-x")
    assert any(
        w.startswith("no price known for unpriced-model-x") and "justification" in w
        for w in res["warnings"]
    )


def test_dry_run_shows_the_rejection(workspace: Path) -> None:
    pricey_config(workspace, 0.10)
    drop_task(workspace, "big.yaml", {"agent": "worker", "prompt": PROMPT})
    drop_task(workspace, "ok.yaml", {"agent": "worker", "prompt": PROMPT, "justification": "y"})
    out = dry_run(workspace)
    assert "big.yaml: would be rejected: needs_justification: " in out
    assert ESTIMATE in out and HINT in out
    assert "ok.yaml: task ok, agent worker" in out
    assert "1. fake / pricey (preferred, ~$0.2010)" in out
