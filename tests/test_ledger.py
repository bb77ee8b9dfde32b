"""The budget ledger shared by every process on a workspace (orchestrator/ledger.py):
leases taken in a write transaction, released when settled and recorded, when their owner
dies, or when they expire."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from orchestrator.config import Budgets
from orchestrator.ledger import SharedLedger
from tests.conftest import base_config, cli_env, drop_task, results, write_config

if TYPE_CHECKING:
    from pathlib import Path

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


def ledger(work: Path, **budgets: object) -> SharedLedger:
    limits = Budgets.model_validate({"daily_usd": 1.0, "mode": "hard", **budgets})
    return SharedLedger(
        limits, work / "ledger.db", work / "telemetry.db", lease_s=600, clock=NOW.timestamp
    )  # the ledger's clock and the moment its reservations name agree, whatever the date


def test_two_ledgers_on_one_workspace_share_the_budget(tmp_path: Path) -> None:
    first, second = ledger(tmp_path), ledger(tmp_path)
    allowed = []
    for i in range(6):  # two "processes" taking turns, $0.30 each, under $1
        decision, reservation = (first, second)[i % 2].reserve("a", 0.3, NOW)
        allowed.append(decision.allowed)
        assert (reservation is not None) == decision.allowed
    assert allowed == [True, True, True, False, False, False]
    decision, _ = second.reserve("a", 0.3, NOW)
    assert "the global daily budget is $1.00; $0.9000 is spent or reserved" in decision.message


def test_a_settled_lease_holds_its_actual_cost(tmp_path: Path) -> None:
    one = ledger(tmp_path)
    _, cheap = one.reserve("a", 0.5, NOW, task_id="t", attempt=1)
    _, dear = one.reserve("a", 0.5, NOW, task_id="u", attempt=1)
    assert not one.reserve("a", 0.1, NOW)[0].allowed
    one.settle(cheap, 0.1)  # it cost less than its estimate: room for one more
    one.settle(dear, float("nan"))  # an impossible cost counts as the estimate
    assert one.reserve("a", 0.35, NOW)[0].allowed
    assert not one.reserve("a", 0.1, NOW)[0].allowed


def test_a_settled_lease_without_its_row_counts_until_its_window_ends(tmp_path: Path) -> None:
    clock = [NOW.timestamp()]
    one = ledger(tmp_path)
    one.clock = lambda: clock[0]
    _, held = one.reserve("a", 0.9, NOW, task_id="t", attempt=1)
    one.settle(held, 0.9)  # telemetry never gets the row (it cannot be written, say)
    clock[0] += 11 * 3600
    assert not one.reserve("a", 0.2, NOW)[0].allowed  # 23:00: still the same day's spend
    clock[0] += 3600 + 1  # the day is over: its lease goes
    assert one.reserve("a", 0.2, NOW)[0].allowed


HOLDER = """
import sys, time
from datetime import UTC, datetime
from pathlib import Path
from orchestrator.config import Budgets
from orchestrator.ledger import SharedLedger
from tests.conftest import base_config, cli_env, drop_task, results, write_config
work = Path(sys.argv[1])
limits = Budgets.model_validate({"daily_usd": 1.0, "mode": "hard"})
now = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
ledger = SharedLedger(
    limits, work / "ledger.db", work / "telemetry.db", lease_s=600, clock=now.timestamp
)
decision, _ = ledger.reserve("a", 0.9, now)
print("held" if decision.allowed else "refused", flush=True)
time.sleep(600)
"""


def test_a_crashed_holder_gives_its_budget_back(tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        mine = ledger(tmp_path)
        assert not mine.reserve("a", 0.5, NOW)[0].allowed  # its lease counts while it lives
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.communicate()
    assert mine.reserve("a", 0.5, NOW)[0].allowed  # dead: its unsettled lease is released


def test_no_limit_no_transaction(tmp_path: Path) -> None:
    free = SharedLedger(
        Budgets.model_validate({}), tmp_path / "ledger.db", tmp_path / "telemetry.db", 600
    )
    decision, reservation = free.reserve("a", 5.0, NOW)
    assert decision.allowed and reservation is not None
    free.settle(reservation, 5.0)
    assert not (tmp_path / "ledger.db").exists()


def test_an_unusable_ledger_falls_back_to_this_process(tmp_path: Path) -> None:
    (tmp_path / "ledger.db").write_bytes(b"not a database at all" * 100)
    one = ledger(tmp_path)
    assert one.reserve("a", 0.6, NOW)[0].allowed
    assert not one.reserve("a", 0.6, NOW)[0].allowed  # still counted, in this process


# --- every entry point at once ----------------------------------------------------------

SLOW = "SLEEP=2\n" + "x" * 3990  # about 1000 prompt tokens; its answer echoes it


def test_a_daemon_and_concurrent_execs_never_pass_one_hard_budget(workspace: Path) -> None:
    """Each run costs what it is estimated at, $0.012 (1000 tokens in at $2/M, 1000 out at
    $10/M): $0.065 fits five. A daemon running eight and six `exec` calls, all at once."""
    files = base_config()
    files["policies.yaml"]["budgets"] = {
        "daily_usd": 0.065,
        "mode": "hard",
        "estimated_output_tokens": 1000,
    }
    write_config(workspace, files)
    for i in range(8):
        drop_task(workspace, f"d{i}.yaml", {"agent": "worker", "prompt": SLOW})
    command = [sys.executable, "-m", "orchestrator", "--root", str(workspace)]
    env = cli_env(workspace.parent)
    daemon = subprocess.Popen(
        [*command, "run", "--once", "--concurrency", "8"], env=env, stderr=subprocess.PIPE
    )
    execs = [
        subprocess.Popen(
            [*command, "exec", "--agent", "worker", "--prompt", SLOW],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for _ in range(6)
    ]
    exec_codes = [p.wait(timeout=120) for p in execs]
    for p in execs:
        p.communicate()
    daemon.communicate(timeout=120)
    assert daemon.returncode == 0
    ran = sum(r["status"] == "succeeded" for r in results(workspace).values())
    ran += exec_codes.count(0)
    assert 1 <= ran <= 5, (ran, exec_codes)
    with sqlite3.connect(workspace / "work" / "telemetry.db") as db:
        spent = db.execute("SELECT SUM(cost_usd) FROM invocations").fetchone()[0]
    assert spent <= 0.065 + 1e-9
    assert not [row for row in leases(workspace) if row[1] == 0]  # no lease left unsettled


def leases(workspace: Path) -> list[tuple[float, int]]:
    with sqlite3.connect(workspace / "work" / "ledger.db") as db:
        return list(db.execute("SELECT amount, settled FROM leases"))
