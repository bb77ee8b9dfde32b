"""Policy: budgets, rate limits and the prompt-size estimate behind cost optimisation.

The decisions are pure functions of their inputs (`now` is passed in). Two small stateful
objects keep what must be shared between concurrent tasks, and change it without awaiting,
so a check and its reservation are one atomic step on the event loop:

- `BudgetLedger`: spend per budget window (loaded once from telemetry) plus the estimates
  reserved by running attempts. 50 tasks dispatched at once each reserve before they start,
  so together they never pass a hard budget by more than one estimate's error.
- `RateLimiter`: a token bucket per tool and per model, and a cool-down per tool after a
  429 (for its retry-after).
"""

from __future__ import annotations

import math
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Literal
from zoneinfo import ZoneInfo

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping

    from orchestrator.config import Budgets, Config, RateLimit

Period = Literal["daily", "monthly"]
CHARS_PER_TOKEN = 4


def estimate_tokens(text: str) -> int:
    """Prompt tokens, estimated as characters / 4.

    For English prose and code this lands within about 25% of the providers' tokenizers
    (BPE vocabularies of ~100-200k entries average 3.5-4.5 characters per token); text in
    scripts with many multi-byte characters can be underestimated up to 2-3x.
    """
    return math.ceil(len(text) / CHARS_PER_TOKEN)


# --- budget windows (pure) -------------------------------------------------------------


def period_bounds(now: datetime, zone: ZoneInfo, period: Period) -> tuple[datetime, datetime]:
    """The calendar day or month containing `now` in `zone`, as UTC [start, end)."""
    local = now.astimezone(zone)
    if period == "daily":
        start = datetime(local.year, local.month, local.day, tzinfo=zone)
        following = start.date() + timedelta(days=1)
    else:
        start = datetime(local.year, local.month, 1, tzinfo=zone)
        following = (start.date().replace(day=28) + timedelta(days=4)).replace(day=1)
    end = datetime(following.year, following.month, following.day, tzinfo=zone)
    return start.astimezone(UTC), end.astimezone(UTC)


@dataclass(frozen=True)
class Window:
    scope: str  # "global" or an agent name
    period: Period
    limit_usd: float
    start: datetime  # UTC
    end: datetime

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.scope, self.period, self.start.isoformat())

    def describe(self) -> str:
        who = "the global" if self.scope == "global" else f"agent {self.scope}'s"
        return f"{who} {self.period} budget"


def windows_for(budgets: Budgets, agent: str | None, now: datetime) -> list[Window]:
    zone = ZoneInfo(budgets.timezone)
    found = []
    scopes: list[tuple[str, float | None, float | None]] = [
        ("global", budgets.daily_usd, budgets.monthly_usd)
    ]
    if agent is not None and agent in budgets.per_agent:
        own = budgets.per_agent[agent]
        scopes.append((agent, own.daily_usd, own.monthly_usd))
    for scope, daily, monthly in scopes:
        for period, limit in (("daily", daily), ("monthly", monthly)):
            if limit is not None:
                start, end = period_bounds(now, zone, period)  # type: ignore[arg-type]
                found.append(Window(scope, period, limit, start, end))  # type: ignore[arg-type]
    return found


@dataclass(frozen=True)
class BudgetDecision:
    allowed: bool
    warnings: tuple[str, ...] = ()
    blocked_by: Window | None = None
    message: str = ""
    hint: str = ""


def decide(
    windows: Iterable[Window],
    committed: Mapping[tuple[str, str, str], float],
    estimate: float,
    budgets: Budgets,
) -> BudgetDecision:
    """May an attempt estimated at `estimate` USD start, given what is spent + reserved?"""
    warnings = []
    for window in windows:
        used = committed.get(window.key, 0.0)
        after = used + estimate
        if budgets.mode == "hard" and after > window.limit_usd:
            return BudgetDecision(
                allowed=False,
                blocked_by=window,
                message=(
                    f"{window.describe()} is ${window.limit_usd:.2f}; ${used:.4f} is spent or "
                    f"reserved and this task needs about ${estimate:.4f}"
                ),
                hint=(
                    f"wait until it resets at {window.end.isoformat()}, raise it in "
                    "config/policies.yaml (budgets), or pin a cheaper model"
                ),
            )
        if after >= window.limit_usd * budgets.warn_at_percent / 100:
            percent = 100 * after / window.limit_usd if window.limit_usd else 100.0
            warnings.append(
                f"{window.describe()}: ${after:.4f} of ${window.limit_usd:.2f} "
                f"({percent:.0f}%) with this task"
            )
    return BudgetDecision(allowed=True, warnings=tuple(warnings))


# --- the ledger (state shared by concurrent tasks) -------------------------------------


@dataclass
class Reservation:
    windows: list[Window]
    amount: float
    leases: tuple[int, ...] = ()  # its rows in work/ledger.db (the shared ledger's)


@dataclass
class BudgetLedger:
    budgets: Budgets
    load_spent: Callable[[Window], float]  # spend already recorded in telemetry
    spent: dict[tuple[str, str, str], float] = field(default_factory=dict)
    reserved: dict[tuple[str, str, str], float] = field(default_factory=dict)

    def _committed(self, windows: list[Window]) -> dict[tuple[str, str, str], float]:
        for window in windows:
            if window.key not in self.spent:
                self.spent[window.key] = self.load_spent(window)
        return {w.key: self.spent[w.key] + self.reserved.get(w.key, 0.0) for w in windows}

    def reserve(
        self, agent: str, estimate: float, now: datetime
    ) -> tuple[BudgetDecision, Reservation | None]:
        """Check and, when allowed, reserve `estimate` in every window (no await inside)."""
        windows = windows_for(self.budgets, agent, now)
        decision = decide(windows, self._committed(windows), estimate, self.budgets)
        if not decision.allowed:
            return decision, None
        for window in windows:
            self.reserved[window.key] = self.reserved.get(window.key, 0.0) + estimate
        return decision, Reservation(windows, estimate)

    def settle(self, reservation: Reservation | None, actual: float | None) -> None:
        """Replace the reservation by the actual cost. An unknown cost (None), or one no
        run can have (negative, NaN, infinite), counts as the estimate: never as a credit."""
        if reservation is None:
            return
        cost = reservation.amount
        if actual is not None and math.isfinite(actual) and actual >= 0:
            cost = actual
        for window in reservation.windows:
            self.reserved[window.key] = self.reserved.get(window.key, 0.0) - reservation.amount
            self.spent[window.key] = self.spent.get(window.key, 0.0) + cost


# --- retries ---------------------------------------------------------------------------


def retry_backoff(base: float, cap: float, passes: int, draw: float) -> float:
    """The wait before pass `passes` (0 first) over a chain: `base` doubled each pass up to
    `cap`, then "equal jitter" (half of it fixed, half drawn: `draw` in [0, 1)), so tasks
    that failed together do not all come back at the same instant."""
    grown = min(cap, base * 2.0 ** min(passes, 32))
    return grown / 2 + grown / 2 * draw


# --- rate limits -----------------------------------------------------------------------


@dataclass
class Bucket:
    """A token bucket: `rate` tokens per second, holding at most `capacity`."""

    rate: float
    capacity: float
    tokens: float
    updated: float

    def refill(self, now: float) -> None:
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now

    def wait(self, now: float) -> float:
        self.refill(now)
        return 0.0 if self.tokens >= 1 else (1 - self.tokens) / self.rate


@dataclass
class StartLog:
    """At most `limit` starts in any `span` seconds: the start times still inside it."""

    limit: int
    span: float
    starts: deque[float] = field(default_factory=deque)

    def wait(self, now: float) -> float:
        while self.starts and self.starts[0] <= now - self.span:
            self.starts.popleft()
        return 0.0 if len(self.starts) < self.limit else self.starts[0] + self.span - now

    def take(self, now: float) -> None:
        self.starts.append(now)


class RateLimiter:
    """Requests per minute (a token bucket, bursts of up to 10 seconds' worth) and per hour
    (at most that many starts in any hour), per tool and per model."""

    def __init__(self, config: Config, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.buckets: dict[str, Bucket] = {}
        self.windows: dict[str, StartLog] = {}
        self.cooldown_until: dict[str, float] = {}
        self.providers = {name: m.provider for name, m in config.models.items() if m.provider}
        limits: list[tuple[str, RateLimit | None]] = []
        limits += [(f"tool:{n}", t.rate_limit) for n, t in config.tools.items()]
        limits += [(f"model:{n}", m.rate_limit) for n, m in config.models.items()]
        for name, rule in config.policies.rate_limits.items():  # checked: each name exists
            kind = "tool" if name in config.tools else "model"
            kind = "provider" if name not in config.known_models() and kind == "model" else kind
            limits.append((f"policy:{kind}:{name}", rule))
        for key, limit in limits:
            if limit is not None and limit.requests_per_minute is not None:
                per_minute = limit.requests_per_minute
                capacity = max(1.0, per_minute / 6)
                self.buckets[key] = Bucket(per_minute / 60, capacity, capacity, self.clock())
            if limit is not None and limit.requests_per_hour is not None:
                self.windows[key] = StartLog(max(1, int(limit.requests_per_hour)), 3600.0)

    def _keys(self, tool: str, model: str | None) -> list[str]:
        provider = self.providers.get(model) if model else None
        return [f"tool:{tool}", f"model:{model}", f"policy:tool:{tool}",
                f"policy:model:{model}", f"policy:provider:{provider}"]  # fmt: skip

    def delay(self, tool: str, model: str | None) -> float:
        """Seconds until an attempt on (tool, model) may start; 0 means now."""
        now = self.clock()
        keys = self._keys(tool, model)
        waits = [self.buckets[k].wait(now) for k in keys if k in self.buckets]
        waits += [self.windows[k].wait(now) for k in keys if k in self.windows]
        waits.append(max(0.0, self.cooldown_until.get(tool, 0.0) - now))
        return max(waits)

    def take(self, tool: str, model: str | None) -> None:
        now = self.clock()
        for key in self._keys(tool, model):
            if key in self.buckets:
                bucket = self.buckets[key]
                bucket.refill(now)
                bucket.tokens -= 1
            if key in self.windows:
                self.windows[key].take(now)

    def cool_down(self, tool: str, seconds: float) -> None:
        until = self.clock() + seconds
        self.cooldown_until[tool] = max(until, self.cooldown_until.get(tool, 0.0))
