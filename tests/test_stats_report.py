"""The AT-5 spend report: `orchestrator stats` with totals, spend by agent and by model,
filters, unknown costs, and the JSON and CSV shapes, through the real command.

One workspace for the module: `run --once` drains four tasks through the generic fake
tool, which leaves five invocations with known figures:

| task | agent | tool / model | tokens in / out | cost |
| --- | --- | --- | --- | --- |
| w1, w2 | worker | fake / fake-large ($2 / $10 per MTok) | 100 / 100 | $0.0012 each |
| c1 | chain-missing | missing / fake-large (no binary: failed, no usage) | 0 / 0 | $0 |
| c1 | chain-missing | fake / fake-small ($0.5 / $1 per MTok) | 100 / 100 | $0.00015 |
| u1 | worker | fake / mystery-model (no price) | 100 / 100 | unknown |
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest

from orchestrator.telemetry.store import connect
from tests.conftest import base_config, drop_task, orchestrator, write_config

KNOWN_COST = 2 * 0.0012 + 0.00015
PROMPT = "x" * 400  # 100 tokens in, and the echo 100 out


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("stats") / "ws"
    files = base_config()
    files["tools.yaml"]["tools"]["fake"]["models"].append("mystery-model")
    write_config(root, files)
    for folder in ("inbox", "outbox", "running", "archive"):
        (root / "work" / folder).mkdir(parents=True)
    drop_task(root, "w1.yaml", {"agent": "worker", "prompt": PROMPT})
    drop_task(root, "w2.yaml", {"agent": "worker", "prompt": PROMPT})
    drop_task(root, "c1.yaml", {"agent": "chain-missing", "prompt": PROMPT})
    drop_task(root, "u1.yaml", {"agent": "worker", "model": "mystery-model", "prompt": PROMPT})
    done = orchestrator(root, "run", "--once")
    assert done.returncode == 0, done.stderr
    return root


def stats(root: Path, *args: str) -> str:
    done = orchestrator(root, "stats", *args)
    assert done.returncode == 0, done.stderr
    return done.stdout


def report(root: Path, *args: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(stats(root, "--json", "--totals", *args))
    return data


def section(text: str, title: str) -> list[str]:
    """The lines of a text block that starts with `title`, up to the next empty line."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(title))
    end = lines.index("", start)
    return lines[start + 1 : end]


@pytest.mark.parametrize("period", ["daily", "weekly", "monthly"])
def test_the_report_opens_with_the_totals_of_the_period(ws: Path, period: str) -> None:
    text = stats(ws, f"--{period}", "--by", "tool")
    lines = text.splitlines()
    assert lines[0].startswith("totals, ") and lines[0].endswith(f"({period})")
    assert lines[1:7] == [
        "  invocations   5 (1 failed)",
        "  tokens        input 400, output 400, cache read 0, cache write 0",
        "  cost          $0.0026 + unknown",  # $0.00255
        "  1 invocations of models with unknown prices (cost unknown)",
        "  per call      $0.0006 (over the 4 with a known cost)",
        "cost optimisation saved $0.0000 against the preferred models",
    ]
    # then spend by agent, by model, and the main table grouped by --by
    order = [text.index(s) for s in ("by agent", "by model", "period     tool", "spend per")]
    assert order == sorted(order)
    totals = report(ws, f"--{period}")["totals"]
    assert totals == {
        "invocations": 5,
        "failures": 1,
        "input_tokens": 400,
        "output_tokens": 400,
        "cache_read_tokens": 0,
        "cache_write_tokens": 0,
        "cost_usd": pytest.approx(KNOWN_COST),
        "unpriced": 1,
        "saved_usd": 0.0,
        "avg_cost_usd": pytest.approx(KNOWN_COST / 4),
    }


def test_spend_by_agent_and_by_model_with_shares_summing_to_100(ws: Path) -> None:
    data = report(ws, "--monthly")
    agents = {r["agent"]: r for r in data["by_agent"]}
    assert {a: r["invocations"] for a, r in agents.items()} == {"worker": 3, "chain-missing": 2}
    assert agents["worker"]["share"] == pytest.approx(0.0024 / KNOWN_COST, abs=1e-4)
    assert sum(r["share"] for r in data["by_agent"]) == pytest.approx(1.0, abs=1e-3)
    models = {r["model"]: r for r in data["by_model"]}
    assert {m: r["invocations"] for m, r in models.items()} == {
        "fake-large": 3,
        "fake-small": 1,
        "mystery-model": 1,
    }
    assert models["mystery-model"]["share"] is None  # its part of the cost is not known
    known = [r["share"] for r in data["by_model"] if r["share"] is not None]
    assert sum(known) == pytest.approx(1.0, abs=1e-3)
    text = stats(ws, "--monthly")
    for title in ("by agent", "by model"):
        shares = [line.split()[-1] for line in section(text, title)]
        percent = [float(s.rstrip("%")) for s in shares if s != "?"]
        assert sum(percent) == pytest.approx(100.0, abs=0.2), (title, shares)
    assert section(text, "by model")[-1].split() == ["mystery-model", "1", "unknown", "?"]


def test_filters_restrict_the_totals_and_every_table(ws: Path) -> None:
    worker = report(ws, "--monthly", "--by", "model", "--agent", "worker")
    assert worker["filters"] == {"agent": "worker", "model": None, "tool": None}
    assert worker["totals"]["invocations"] == 3
    assert worker["totals"]["cost_usd"] == pytest.approx(0.0024)
    assert [r["agent"] for r in worker["by_agent"]] == ["worker"]
    assert {r["model"] for r in worker["by_model"]} == {"fake-large", "mystery-model"}
    assert {r["model"] for r in worker["rows"]} == {"fake-large", "mystery-model"}
    assert "totals, " in stats(ws, "--agent", "worker").splitlines()[0]
    assert stats(ws, "--agent", "worker").splitlines()[0].endswith("(daily), agent worker")

    missing = report(ws, "--tool", "missing")["totals"]
    assert (missing["invocations"], missing["failures"], missing["unpriced"]) == (1, 1, 0)
    assert missing["cost_usd"] == 0.0 and missing["avg_cost_usd"] == 0.0  # known: nothing ran

    small = json.loads(stats(ws, "--json", "--by", "agent", "--model", "fake-small"))
    assert [(r["agent"], r["invocations"]) for r in small] == [("chain-missing", 1)]

    # ranges of times read whole days from the daily rollup and the rest of the days at
    # either end from the 15-minute buckets: the same totals
    whole = report(ws, "--agent", "worker", "--since", "2000-01-01")["totals"]
    assert report(ws, "--agent", "worker", "--since", "2000-01-01T00:00:00")["totals"] == whole
    with connect(ws / "work" / "telemetry.db", readonly=True) as db:
        [(started,)] = db.execute("SELECT MIN(started_at) FROM invocations").fetchall()
    hour = f"{started[:13]}:00:00+00:00"  # inside today: today is read from the buckets
    assert report(ws, "--agent", "worker", "--since", hour)["totals"] == whole
    assert report(ws, "--agent", "worker", "--until", "2999-01-01T12:00")["totals"] == whole

    # known names that never met: an empty report, no suggestion
    none = orchestrator(ws, "stats", "--agent", "worker", "--model", "fake-small")
    assert none.stdout.strip() == (
        "no invocations recorded in this range for agent worker, model fake-small"
    )


def test_an_unknown_name_gives_an_empty_report_with_a_suggestion(ws: Path) -> None:
    typo = orchestrator(ws, "stats", "--agent", "wroker")
    assert typo.returncode == 0
    assert typo.stdout.splitlines() == [
        "no invocations recorded in this range for agent wroker",
        "note: no invocations recorded for agent 'wroker' (did you mean 'worker'?)",
    ]
    far = stats(ws, "--model", "zzz")
    assert "(valid names: fake-large, fake-small, mystery-model)" in far

    listed = orchestrator(ws, "stats", "--json", "--tool", "fkae")
    assert json.loads(listed.stdout) == []  # stdout stays a list for scripts
    assert "did you mean 'fake'?" in listed.stderr
    data = report(ws, "--tool", "fkae")
    assert data["rows"] == data["by_agent"] == data["by_model"] == []
    assert data["totals"]["invocations"] == 0 and data["totals"]["avg_cost_usd"] is None
    assert "did you mean 'fake'?" in data["note"]
    assert orchestrator(ws, "stats", "--csv", "--tool", "fkae").stdout == ""


def test_unknown_costs_are_unknown_never_zero(ws: Path) -> None:
    text = stats(ws, "--model", "mystery-model")
    assert "  cost          unknown" in text.splitlines()
    assert "  per call      unknown" in text.splitlines()
    [row] = [line for line in text.splitlines() if line.startswith("20")]
    assert row.split()[-3:] == ["unknown", "unknown", "?"]
    assert text.splitlines()[-1].split()[-1] == "unknown"  # the chart's bar
    data = report(ws, "--model", "mystery-model")
    assert (data["totals"]["cost_usd"], data["totals"]["avg_cost_usd"]) == (None, None)
    assert data["totals"]["unpriced"] == 1
    [listed] = json.loads(stats(ws, "--json", "--model", "mystery-model"))
    assert (listed["avg_cost_usd"], listed["share"]) == (None, None)
    assert listed["cost_usd"] == 0.0 and listed["unpriced"] == 1  # the known part, as before
    [line] = list(csv.DictReader(io.StringIO(stats(ws, "--csv", "--model", "mystery-model"))))
    assert (line["avg_cost_usd"], line["share"]) == ("", "")
    # a part unknown: the known part, marked
    worker = stats(ws, "--agent", "worker")
    assert "  cost          $0.0024 + unknown" in worker.splitlines()
    assert section(worker, "by agent")[0].split()[:3] == ["worker", "3", "0.0024+?"]


def test_json_stays_a_list_of_rows_and_csv_marks_its_totals_line(ws: Path) -> None:
    rows = json.loads(stats(ws, "--json", "--monthly", "--by", "agent", "--agent", "worker"))
    assert isinstance(rows, list)
    for row in rows:  # the keys ARCHITECTURE.md promises, and no totals row among them
        assert {"period", "agent", "invocations", "cost_usd"} <= set(row)
        assert {"input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens"} <= set(
            row
        )
        assert row["agent"] == "worker"
    assert sum(r["invocations"] for r in rows) == 3
    data = report(ws, "--monthly", "--by", "agent", "--agent", "worker")
    assert set(data) == {
        "period", "by", "since", "until", "filters", "totals", "by_agent", "by_model",
        "rows", "note",
    }  # fmt: skip
    assert data["rows"] == rows

    plain = stats(ws, "--csv", "--monthly", "--by", "tool")
    marked = stats(ws, "--csv", "--totals", "--monthly", "--by", "tool")
    assert marked.startswith(plain)  # the same header and rows, then one line
    table = list(csv.DictReader(io.StringIO(marked)))
    assert all(r["period"] != "total" for r in csv.DictReader(io.StringIO(plain)))
    total = table[-1]
    assert (total["period"], total["tool"], total["invocations"]) == ("total", "*", "5")
    assert float(total["cost_usd"]) == pytest.approx(KNOWN_COST)
    assert (total["unpriced"], total["share"]) == ("1", "")
    assert sum(int(r["invocations"]) for r in table[:-1]) == 5
