"""`stats`: spend reports from the telemetry rollups (totals, by agent and by model with
shares, a table per period, a chart), as text, JSON or CSV."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any, Literal
from zoneinfo import ZoneInfo

from orchestrator.reports.status import BAR_WIDTH, database, read_budgets
from orchestrator.telemetry.store import (
    SUMS,
    LocalDays,
    bucket_of,
    has_daily,
)

if TYPE_CHECKING:
    import sqlite3
    from collections.abc import Callable
    from pathlib import Path

Period = Literal["daily", "weekly", "monthly"]
GroupBy = Literal["agent", "model", "tool"]

STAT_FIELDS = SUMS  # the rollups' columns
FILTERS = ("agent", "model", "tool")
_CALLS, _COST, _UNPRICED = (SUMS.index(f) for f in ("invocations", "cost_usd", "unpriced"))


@dataclass(frozen=True)
class StatsQuery:
    """What `stats` reports: periods, the main table's grouping, a range of days (or ISO
    times) and filters on agent, model and tool (all must match)."""

    period: Period = "daily"
    by: GroupBy = "model"
    since: str | None = None
    until: str | None = None
    agent: str | None = None
    model: str | None = None
    tool: str | None = None

    def filters(self) -> dict[str, str]:
        """The filters given, as stored: a model shown as "-" (none) is stored as ""."""
        given = {name: getattr(self, name) for name in FILTERS}
        return {k: "" if v == "-" else v for k, v in given.items() if v is not None}


def _period_of_day(day: str, period: Period) -> str:
    if period == "daily":
        return day
    if period == "weekly":
        year, week, _ = date.fromisoformat(day).isocalendar()
        return f"{year}-W{week:02d}"
    return day[:7]


def _sum_sql(table: str, keys: str, where: str) -> str:
    sums = ", ".join(f"SUM({f})" for f in STAT_FIELDS)
    return f"SELECT {keys}, {sums} FROM {table} WHERE {where} GROUP BY {keys}"


def _add(sums: dict[Any, list[float]], key: Any, values: list[float]) -> None:
    acc = sums.get(key)
    if acc is None:
        acc = sums[key] = [0.0] * len(STAT_FIELDS)
    for i, value in enumerate(values):
        acc[i] += value or 0


def stats_rows(root: Path, **query: Any) -> list[dict[str, Any]]:
    """The main table of `stats_report` (what `stats --json` prints)."""
    rows: list[dict[str, Any]] = stats_report(root, StatsQuery(**query))["rows"]
    return rows


def stats_report(root: Path, query: StatsQuery) -> dict[str, Any]:
    """Totals, spend by agent and by model, and the main table: rows of (period, group)
    with invocations, tokens by kind, cost, average and share; all of them restricted to
    the invocations that match the query's filters.

    `since` and `until` (included) are days, YYYY-MM-DD in the budgets' time zone, or ISO
    times; they raise ValueError otherwise. Whole days are read from the daily rollup,
    the parts of days at either end of a range of times from the 15-minute buckets. The
    sums are grouped in SQLite, so a year of a million invocations is a few thousand rows.
    """
    zone_name = read_budgets(root).timezone
    bounds = (parse_day(query.since, zone_name) if query.since else None,
              parse_day(query.until, zone_name, end=True) if query.until else None)  # fmt: skip
    filters = query.filters()
    main: dict[tuple[str, str], list[float]] = {}
    groups: dict[str, dict[str, list[float]]] = {"agent": {}, "model": {}}
    note = None
    with database(root) as db:
        if db is not None:
            sources = _sources(db, zone_name, *bounds)
            for source in sources:
                _sum_source(db, source, filters, query, main, groups)
            if not main and filters:
                note = _unknown_names(db, sources[0].table, zone_name, filters)
    if query.by in groups:  # the main table has it, per period
        for (_, group), acc in main.items():
            _add(groups[query.by], group, acc)
    total = [sum(kind) for kind in zip(*groups["agent"].values(), strict=True)]
    total = total or [0.0] * len(STAT_FIELDS)
    return {
        "period": query.period,
        "by": query.by,
        "since": query.since,
        "until": query.until,
        "filters": {name: getattr(query, name) for name in FILTERS},
        "totals": _totals(total),
        "by_agent": _breakdown(groups["agent"], "agent", total[_COST]),
        "by_model": _breakdown(groups["model"], "model", total[_COST]),
        "rows": _rows(main, query.by),
        "note": note,
    }


@dataclass(frozen=True)
class _Source:
    """Part of a range in one rollup table: its time column, the condition on it (with
    its arguments) and how a value of the time column maps to a local day."""

    table: str
    moment: str
    where: str
    args: tuple[str, ...]
    day_of: Callable[[str], str]


def _sources(
    db: sqlite3.Connection, zone_name: str, low: datetime | None, high: datetime | None
) -> list[_Source]:
    """Where the invocations started in [low, high) are summed: the whole local days in
    the daily rollup (when it is built for the zone), the rest from the 15-minute buckets
    (bucket-exact: every local midnight is a bucket boundary)."""
    of_bucket = LocalDays(zone_name).of_bucket

    def buckets(start: str, end: str) -> _Source:
        return _Source("usage_rollup", "bucket", "bucket >= ? AND bucket < ?", (start, end),
                       of_bucket)  # fmt: skip

    start, end = bucket_of(low) if low else "", bucket_of(high) if high else "9999"
    if not has_daily(db, zone_name):
        return [buckets(start, end)]
    zone = ZoneInfo(zone_name)
    first = last = None  # the first whole day, the day after the last one
    if low:
        local = low.astimezone(zone)
        whole = local.time() == time(0) and not local.fold  # low is the day's start
        first = local.date() if whole else local.date() + timedelta(days=1)
    if high:
        last = high.astimezone(zone).date()
    if first and last and first >= last:
        return [buckets(start, end)]
    days = (zone_name, first.isoformat() if first else "", last.isoformat() if last else "9999")
    found = [_Source("usage_daily", "day", "zone = ? AND day >= ? AND day < ?", days, str)]
    if first:
        found.append(buckets(start, bucket_of(datetime.combine(first, time(0), zone))))
    if last:
        found.append(buckets(bucket_of(datetime.combine(last, time(0), zone)), end))
    return [s for s in found if s.table == "usage_daily" or s.args[0] < s.args[1]]


def _sum_source(
    db: sqlite3.Connection,
    source: _Source,
    filters: dict[str, str],
    query: StatsQuery,
    main: dict[tuple[str, str], list[float]],
    groups: dict[str, dict[str, list[float]]],
) -> None:
    """Add one source's sums to the main table (per period and group) and to the
    breakdowns other than the main table's grouping (one GROUP BY each: cheaper than
    one over both)."""
    where = source.where + "".join(f" AND {name} = ?" for name in filters)
    args = [*source.args, *filters.values()]
    column = {"agent": "agent", "model": "model", "tool": "tool"}[query.by]
    found = db.execute(_sum_sql(source.table, f"{source.moment}, {column}", where), args)
    for when, group, *values in found:
        _add(main, (_period_of_day(source.day_of(when), query.period), group or "-"), values)
    for key, sums in groups.items():
        if key != query.by:
            for group, *values in db.execute(_sum_sql(source.table, key, where), args):
                _add(sums, group or "-", values)


def _unknown_names(
    db: sqlite3.Connection, table: str, zone_name: str, filters: dict[str, str]
) -> str | None:
    """A note for each filter whose name no invocation has, with the recorded names."""
    from orchestrator.config import suggest  # pydantic: only on this rare path

    where, args = ("zone = ?", [zone_name]) if table == "usage_daily" else ("1", [])
    notes = []
    for name, value in filters.items():
        sql = f"SELECT 1 FROM {table} WHERE {where} AND {name} = ? LIMIT 1"
        if db.execute(sql, [*args, value]).fetchone():
            continue
        found = db.execute(f"SELECT DISTINCT {name} FROM {table} WHERE {where}", args)
        known = [str(v) or "-" for (v,) in found]
        if known:  # an empty database knows no names: "no invocations" says it all
            notes.append(f"no invocations recorded for {name} {value!r} ({suggest(value, known)})")
    return "; ".join(notes) or None


def _cost_known(acc: list[float]) -> bool:
    """Whether any of the cost is known: all of it is, or a part above 0 (invocations
    without usage, such as a missing binary, cost 0 and are not unpriced)."""
    return not acc[_UNPRICED] or acc[_COST] > 0


def _figures(acc: list[float], total_cost: float) -> dict[str, Any]:
    """Sums, with the average cost per invocation whose cost is known and the share of
    `total_cost`; both are None when no cost is known (unknown, never 0)."""
    row: dict[str, Any] = {f: (round(v, 8) if f in ("cost_usd", "saved_usd") else int(v))
                           for f, v in zip(STAT_FIELDS, acc, strict=True)}  # fmt: skip
    priced = acc[_CALLS] - acc[_UNPRICED]
    known = _cost_known(acc) and priced > 0
    row["avg_cost_usd"] = round(acc[_COST] / priced, 8) if known else None
    row["share"] = round(acc[_COST] / total_cost if total_cost else 0.0, 4) if known else None
    return row


def _rows(sums: dict[tuple[str, str], list[float]], by: GroupBy) -> list[dict[str, Any]]:
    per_period: dict[str, float] = {}
    for (when, _), acc in sums.items():
        per_period[when] = per_period.get(when, 0.0) + acc[_COST]
    return [{"period": when, by: group, **_figures(acc, per_period[when])}
            for (when, group), acc in sorted(sums.items())]  # fmt: skip


def _breakdown(sums: dict[str, list[float]], key: str, total_cost: float) -> list[dict[str, Any]]:
    """Rows of one grouping over the whole range, the most expensive first."""
    order = sorted(sums.items(), key=lambda item: (-item[1][_COST], item[0]))
    return [{key: group, **_figures(acc, total_cost)} for group, acc in order]


def _totals(acc: list[float]) -> dict[str, Any]:
    """The sums over the range; `cost_usd` is the known part (None when no invocation's
    cost is known) and `unpriced` counts the invocations whose cost is unknown."""
    totals = _figures(acc, acc[_COST])
    del totals["share"]
    if not _cost_known(acc):
        totals["cost_usd"] = None
    return totals


def render_stats_csv(report: dict[str, Any], *, totals: bool = False) -> str:
    """The main table; with `totals`, a last line whose period is "total"."""
    rows = list(report["rows"])
    if not rows:
        return ""
    if totals:
        rows.append({"period": "total", report["by"]: "*", **report["totals"], "share": None})
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def render_stats_json(report: dict[str, Any], *, totals: bool = False) -> str:
    """The list of rows (what scripts read since the start), or with `totals` the whole
    report as one object."""
    return json.dumps(report if totals else report["rows"], indent=2)


def _cost(value: float | None, unpriced: int, width: int = 0) -> str:
    """Cost in the tables: "unknown" when none is known, "+?" when part is unknown."""
    text = "unknown" if value is None else f"{value:.4f}" + ("+?" if unpriced else "")
    return f"{text:>{width}}"


def _average(row: dict[str, Any], width: int) -> str:
    avg = row["avg_cost_usd"]
    return f"{'unknown':>{width}}" if avg is None else f"{avg:>{width}.4f}"


def _share(row: dict[str, Any]) -> str:
    return f"{'?':>6}" if row["share"] is None else f"{100 * row['share']:>5.1f}%"


def _unknown_cost(row: dict[str, Any]) -> float | None:
    return None if row["avg_cost_usd"] is None else row["cost_usd"]


def _filters_text(report: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v}" for k, v in report["filters"].items() if v is not None)


def _render_totals(report: dict[str, Any]) -> list[str]:
    t = report["totals"]
    rows = report["rows"]
    first = report["since"] or rows[0]["period"]
    last = report["until"] or rows[-1]["period"]
    span = first if first == last else f"{first} to {last}"
    only = _filters_text(report)
    lines = [f"totals, {span} ({report['period']})" + (f", {only}" if only else "")]
    failed = f" ({t['failures']} failed)" if t["failures"] else ""
    lines.append(f"  invocations   {t['invocations']}{failed}")
    lines.append(
        f"  tokens        input {t['input_tokens']}, output {t['output_tokens']}, "
        f"cache read {t['cache_read_tokens']}, cache write {t['cache_write_tokens']}"
    )
    cost, avg, unpriced = t["cost_usd"], t["avg_cost_usd"], t["unpriced"]
    known = "unknown" if cost is None else f"${cost:.4f}" + (" + unknown" if unpriced else "")
    lines.append(f"  cost          {known}")
    if unpriced:
        lines.append(f"  {unpriced} invocations of models with unknown prices (cost unknown)")
    per_call = "unknown" if avg is None else f"${avg:.4f}"
    if avg is not None and unpriced:
        per_call += f" (over the {t['invocations'] - unpriced} with a known cost)"
    lines.append(f"  per call      {per_call}")
    lines.append(f"cost optimisation saved ${t['saved_usd']:.4f} against the preferred models")
    return lines


def _render_breakdown(rows: list[dict[str, Any]], key: str) -> list[str]:
    header = f"by {key:<23} {'calls':>6} {'cost $':>12} {'share':>6}"
    lines = [header]
    for r in rows:
        cost = _cost(_unknown_cost(r), r["unpriced"], 12)
        lines.append(f"  {str(r[key])[:24]:<24} {r['invocations']:>6} {cost} {_share(r)}")
    return lines


def render_stats(report: dict[str, Any]) -> str:
    """Totals, spend by agent and by model, the main table and a chart of spend per period."""
    rows, by = report["rows"], report["by"]
    if not rows:
        only = _filters_text(report)
        text = "no invocations recorded in this range" + (f" for {only}" if only else "")
        return text + (f"\nnote: {report['note']}" if report["note"] else "")
    lines = _render_totals(report)
    lines += ["", *_render_breakdown(report["by_agent"], "agent")]
    lines += ["", *_render_breakdown(report["by_model"], "model"), ""]
    header = (
        f"{'period':<10} {by:<22} {'calls':>6} {'input':>10} {'output':>9} {'cache r':>9} "
        f"{'cache w':>8} {'cost $':>10} {'avg $':>9} {'share':>6}"
    )
    lines += [header, "-" * len(header)]
    for r in rows:
        lines.append(
            f"{r['period']:<10} {str(r[by])[:22]:<22} {r['invocations']:>6} "
            f"{r['input_tokens']:>10} {r['output_tokens']:>9} {r['cache_read_tokens']:>9} "
            f"{r['cache_write_tokens']:>8} {_cost(_unknown_cost(r), r['unpriced'], 10)} "
            f"{_average(r, 9)} {_share(r)}"
        )
    lines += ["", _chart(rows)]
    return "\n".join(lines)


def _chart(rows: list[dict[str, Any]]) -> str:
    per_period: dict[str, list[float]] = {}
    for r in rows:
        acc = per_period.setdefault(r["period"], [0.0, 0.0])
        acc[0] += r["cost_usd"]
        acc[1] += r["unpriced"]
    top = max((cost for cost, _ in per_period.values()), default=0.0)
    lines = ["spend per period:"]
    for when, (cost, unpriced) in sorted(per_period.items()):
        width = round(BAR_WIDTH * cost / top) if top else 0
        known = "unknown" if unpriced and not cost else f"${cost:.4f}" + ("+?" if unpriced else "")
        lines.append(f"  {when:<10} {'█' * width:<{BAR_WIDTH}} {known}")
    return "\n".join(lines)


def parse_day(text: str, zone_name: str, *, end: bool = False) -> datetime:
    """`YYYY-MM-DD` (local, in the budget time zone) or an ISO time → UTC."""
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo(zone_name))
        if end and len(text) == 10:
            moment += timedelta(days=1)
    return moment.astimezone(UTC)
