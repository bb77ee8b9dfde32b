"""The spend page: cost per day over 30 or 90 days stacked by model or agent, tokens by
kind, the cache's share of the input, what cost optimisation saved; the numbers beside
each chart. Its figures are `stats`'s (reports.stats over the daily rollup)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from orchestrator.errors import UsageError
from orchestrator.reports.stats import StatsQuery, stats_report
from orchestrator.reports.status import read_budgets
from orchestrator.telemetry.store import TOKEN_KINDS
from orchestrator.web.charts import OTHER, hbars, legend, share_ring, stacked_bars
from orchestrator.web.html import esc, href, money, section, table

if TYPE_CHECKING:
    from pathlib import Path

RANGES = (30, 90)
GROUPINGS = ("model", "agent")
MAX_GROUPS = 8  # the rest is summed as "other"


@dataclass(frozen=True)
class SpendQuery:
    days: int = 30
    by: str = "model"

    def check(self) -> None:
        if self.days not in RANGES:
            raise UsageError(f"days {self.days}: one of {', '.join(map(str, RANGES))}")
        if self.by not in GROUPINGS:
            raise UsageError(f"by {self.by!r}: one of {', '.join(GROUPINGS)}")


def spend_data(root: Path, query: SpendQuery, now: datetime | None = None) -> dict[str, Any]:
    """The report of the last `days` days (today included, in the budgets' time zone),
    with every day of the range listed and the groups in order of cost."""
    query.check()
    zone = ZoneInfo(read_budgets(root).timezone)
    today = (now or datetime.now(UTC)).astimezone(zone).date()
    first = today - timedelta(days=query.days - 1)
    report = stats_report(root, StatsQuery(period="daily", by=query.by,  # type: ignore[arg-type]
                                           since=first.isoformat()))  # fmt: skip
    ranked = [r[query.by] for r in report[f"by_{query.by}"]]
    shown = ranked[:MAX_GROUPS] if len(ranked) <= MAX_GROUPS + 1 else ranked[: MAX_GROUPS - 1]
    values: dict[tuple[str, str], float] = {}
    per_day: dict[str, list[float]] = {}
    for row in report["rows"]:
        group = row[query.by] if row[query.by] in shown else OTHER
        key = (row["period"], group)
        values[key] = values.get(key, 0.0) + row["cost_usd"]
        acc = per_day.setdefault(row["period"], [0.0, 0.0])
        acc[0] += row["cost_usd"]
        acc[1] += row["invocations"]
    groups = shown + ([OTHER] if len(shown) < len(ranked) else [])
    days = [(first + timedelta(days=i)).isoformat() for i in range(query.days)]
    return {"query": query, "days": days, "groups": groups, "values": values,
            "per_day": per_day, "report": report, "today": today}  # fmt: skip


def cache_share(totals: dict[str, Any]) -> float:
    """The share of the input tokens read from the cache (input, cache reads and cache
    writes are the prompt's tokens between them)."""
    prompt = totals["input_tokens"] + totals["cache_read_tokens"] + totals["cache_write_tokens"]
    return totals["cache_read_tokens"] / prompt if prompt else 0.0


def spend_page(data: dict[str, Any]) -> str:
    query: SpendQuery = data["query"]
    report = data["report"]
    totals = report["totals"]
    switch = " ".join(
        f'<a class="{"active" if (d, b) == (query.days, query.by) else ""}" '
        f'href="{esc(href("/spend", days=d, by=b))}">{d} days by {b}</a>'
        for b in GROUPINGS
        for d in RANGES
    )
    title = f"cost per day, last {query.days} days, by {query.by}"
    chart = stacked_bars(data["days"], data["groups"], data["values"], title=title)
    by_group = table(
        [query.by, "calls", "cost", "share"],
        [[esc(r[query.by]), str(r["invocations"]), money(r["cost_usd"] if r["avg_cost_usd"]
          is not None else None), "?" if r["share"] is None else f"{100 * r['share']:.1f}%"]
         for r in report[f"by_{query.by}"]],
        empty="no invocations in this range",
    )  # fmt: skip
    days = table(
        ["day", "calls", "cost"],
        [[esc(day), f"{int(acc[1])}", money(acc[0])]
         for day, acc in sorted(data["per_day"].items(), reverse=True)],
        empty="no spend in this range",
    )  # fmt: skip
    kinds = [(k.removesuffix("_tokens").replace("_", " "), float(totals[k])) for k in TOKEN_KINDS]
    share = cache_share(totals)
    cost = totals["cost_usd"]
    summary = table(
        ["", ""],
        [["invocations", str(totals["invocations"])], ["failed", str(totals["failures"])],
         ["cost", money(cost) + (" + unknown" if totals["unpriced"] else "")],
         ["per call", money(totals["avg_cost_usd"])],
         ["saved by cost optimisation", money(totals["saved_usd"])]],
    )  # fmt: skip
    return "".join([
        f'<p class="switch">{switch}</p>',
        section("Totals", summary, ident="totals"),
        section(title.capitalize(), f'<div class="figure">{chart}{legend(data["groups"])}'
                f'<div class="numbers">{by_group}</div></div>', ident="cost-chart"),
        section("Spend per day", f'<div class="scroll">{days}</div>'),
        section("Tokens by kind", '<div class="figure">' + hbars(kinds, title="tokens by kind")
                + table(["kind", "tokens"], [[esc(k), f"{v:,.0f}"] for k, v in kinds])
                + "</div>", ident="tokens-chart"),
        section("Cache share of the prompt tokens", '<div class="figure">'
                + share_ring(share, title="cache share")
                + f"<p>{totals['cache_read_tokens']:,} of the prompt tokens were read from the "
                f"cache ({100 * share:.1f}%).</p></div>", ident="cache-chart"),
        section("What cost optimisation saved", f"<p><b>{money(totals['saved_usd'])}</b> "
                "against running every task on its agent's preferred model.</p>"),
    ])  # fmt: skip
