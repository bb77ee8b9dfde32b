"""Budget windows, budget decisions, the reservation ledger and rate limits: pure tables."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from orchestrator.config import (
    AgentBudget,
    Budgets,
    Config,
    PoliciesFile,
    RateLimit,
    ToolConfig,
)
from orchestrator.policy import (
    BudgetLedger,
    RateLimiter,
    decide,
    estimate_tokens,
    period_bounds,
    windows_for,
)

BERLIN = ZoneInfo("Europe/Berlin")


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("now", "period", "start", "end"),
    [
        # just before and after local midnight (UTC+1 in winter)
        ("2026-11-27T22:59:59", "daily", "2026-11-26T23:00:00", "2026-11-27T23:00:00"),
        ("2026-11-27T23:00:00", "daily", "2026-11-27T23:00:00", "2026-11-28T23:00:00"),
        # the spring-forward day has 23 hours, the fall-back day 25
        ("2026-03-29T12:00:00", "daily", "2026-03-28T23:00:00", "2026-03-29T22:00:00"),
        ("2026-10-25T12:00:00", "daily", "2026-10-24T22:00:00", "2026-10-25T23:00:00"),
        # month ends: February, December into January, and a month that changes offset
        ("2028-02-29T12:00:00", "monthly", "2028-01-31T23:00:00", "2028-02-29T23:00:00"),
        ("2026-12-31T23:30:00", "monthly", "2026-12-31T23:00:00", "2027-01-31T23:00:00"),
        ("2026-03-15T00:00:00", "monthly", "2026-02-28T23:00:00", "2026-03-31T22:00:00"),
        ("2026-10-31T22:59:00", "monthly", "2026-09-30T22:00:00", "2026-10-31T23:00:00"),
    ],
)
def test_period_bounds_in_berlin(now: str, period: str, start: str, end: str) -> None:
    assert period_bounds(utc(now), BERLIN, period) == (utc(start), utc(end))  # type: ignore[arg-type]


def test_period_bounds_utc() -> None:
    assert period_bounds(utc("2026-01-31T23:59:59"), ZoneInfo("UTC"), "monthly") == (
        utc("2026-01-01T00:00:00"),
        utc("2026-02-01T00:00:00"),
    )


def budgets(**kwargs: object) -> Budgets:
    return Budgets.model_validate({"daily_usd": 10, "monthly_usd": 100, **kwargs})


def test_windows_include_the_agents_own() -> None:
    b = budgets(per_agent={"dev": AgentBudget(daily_usd=2)}, timezone="Europe/Berlin")
    found = windows_for(b, "dev", utc("2026-11-28T12:00:00"))
    assert [(w.scope, w.period, w.limit_usd) for w in found] == [
        ("global", "daily", 10),
        ("global", "monthly", 100),
        ("dev", "daily", 2),
    ]
    assert [w.scope for w in windows_for(b, "other", utc("2026-11-28T12:00:00"))] == [
        "global",
        "global",
    ]


@pytest.mark.parametrize(
    ("mode", "spent", "estimate", "allowed", "warned"),
    [
        ("hard", 5.0, 1.0, True, False),
        ("hard", 7.5, 0.5, True, True),  # 80% reached: warn
        ("hard", 9.5, 0.6, False, False),  # would pass 10: block
        ("soft", 9.5, 0.6, True, True),  # soft: warn, never block
        ("soft", 12.0, 1.0, True, True),
    ],
)
def test_decide(mode: str, spent: float, estimate: float, allowed: bool, warned: bool) -> None:
    b = budgets(mode=mode)
    found = windows_for(b, None, utc("2026-11-28T12:00:00"))
    decision = decide(found, {found[0].key: spent}, estimate, b)
    assert decision.allowed is allowed
    assert bool(decision.warnings) is warned
    if not allowed:
        assert "the global daily budget is $10.00" in decision.message
        assert "2026-11-29T00:00:00+00:00" in decision.hint


def test_ledger_reserves_atomically_and_settles() -> None:
    ledger = BudgetLedger(budgets(daily_usd=1.0), load_spent=lambda window: 0.25)
    now = utc("2026-11-28T12:00:00")
    granted = []
    for _ in range(50):  # 50 tasks dispatched at once, each estimated at $0.10
        decision, reservation = ledger.reserve("a", 0.10, now)
        if decision.allowed:
            granted.append(reservation)
    assert len(granted) == 7  # 0.25 + 7 * 0.10 <= 1.0 < 0.25 + 8 * 0.10
    for reservation in granted:
        ledger.settle(reservation, 0.05)
    key = granted[0].windows[0].key  # type: ignore[union-attr]
    assert ledger.spent[key] == pytest.approx(0.25 + 7 * 0.05)
    assert ledger.reserved[key] == pytest.approx(0.0)
    # what settled as cheaper frees room for more
    assert ledger.reserve("a", 0.10, now)[0].allowed


def test_ledger_counts_an_unknown_cost_as_its_estimate() -> None:
    ledger = BudgetLedger(budgets(daily_usd=1.0), load_spent=lambda window: 0.0)
    now = utc("2026-11-28T12:00:00")
    _, reservation = ledger.reserve("a", 0.4, now)
    ledger.settle(reservation, None)
    assert ledger.spent[reservation.windows[0].key] == pytest.approx(0.4)  # type: ignore[union-attr]


def test_estimate_tokens() -> None:
    assert estimate_tokens("") == 0
    assert estimate_tokens("abcd") == 1
    assert estimate_tokens("x" * 4001) == 1001


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def limiter(clock: Clock) -> RateLimiter:
    config = Config.model_construct(
        root=Path("."),
        agents={},
        policies=PoliciesFile(),
        tools={
            "t": ToolConfig(
                adapter="generic", binary="x", rate_limit=RateLimit(requests_per_minute=60)
            )
        },
        models={},
    )
    return RateLimiter(config, clock=clock)


def test_token_bucket_allows_a_burst_then_the_rate() -> None:
    clock = Clock()
    rates = limiter(clock)
    for _ in range(10):  # burst: 10 seconds' worth at 60/min
        assert rates.delay("t", None) == 0
        rates.take("t", None)
    assert rates.delay("t", None) == pytest.approx(1.0)
    clock.now += 0.5
    assert rates.delay("t", None) == pytest.approx(0.5)
    clock.now += 0.5
    assert rates.delay("t", None) == 0
    assert rates.delay("unlimited-tool", "m") == 0


def test_retry_after_cools_the_tool_down() -> None:
    clock = Clock()
    rates = limiter(clock)
    rates.cool_down("t", 7)
    assert rates.delay("t", None) == pytest.approx(7)
    rates.cool_down("t", 2)  # a shorter cool-down does not shorten the longer one
    clock.now += 5
    assert rates.delay("t", None) == pytest.approx(2)
    clock.now += 2
    assert rates.delay("t", None) == 0
