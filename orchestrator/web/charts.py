"""Charts drawn on the server as inline SVG: no script, no library, nothing fetched. Pure
functions of their numbers; the pages put the same numbers in a table beside each."""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

if TYPE_CHECKING:
    from collections.abc import Sequence

# Distinguishable on white and for the common colour blindnesses (Okabe-Ito), then greys.
PALETTE = ("#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00", "#f0e442",
           "#000000", "#777777", "#bbbbbb")  # fmt: skip
OTHER = "other"


def colour(index: int) -> str:
    return PALETTE[min(index, len(PALETTE) - 1)]


def _money(value: float) -> str:
    return f"${value:.2f}" if value >= 1 else f"${value:.4f}"


def stacked_bars(
    days: Sequence[str],
    groups: Sequence[str],
    values: dict[tuple[str, str], float],
    *,
    title: str,
    width: int = 760,
    height: int = 240,
) -> str:
    """Cost per day, each day's bar stacked by group (in `groups` order, bottom up);
    `values[(day, group)]`. A day without spend has no bar; an empty chart says so."""
    left, bottom, top = 56, 22, 10
    plot_w, plot_h = width - left - 8, height - bottom - top
    totals = [sum(values.get((d, g), 0.0) for g in groups) for d in days]
    peak = max(totals, default=0.0)
    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'role="img" aria-label="{escape(title)}"><title>{escape(title)}</title>',
        f'<line x1="{left}" y1="{top + plot_h}" x2="{width - 8}" y2="{top + plot_h}" '
        'stroke="#888"/>',
    ]
    if peak <= 0:
        parts.append(f'<text x="{left + 10}" y="{top + plot_h / 2}">no spend recorded</text>')
        return "".join([*parts, "</svg>"])
    for fraction in (0.5, 1.0):
        y = top + plot_h * (1 - fraction)
        parts.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{width - 8}" y2="{y:.1f}" stroke="#ddd"/>'
            f'<text x="{left - 4}" y="{y + 4:.1f}" text-anchor="end" class="axis">'
            f"{_money(peak * fraction)}</text>"
        )
    step = plot_w / max(len(days), 1)
    bar = max(step * 0.8, 1.0)
    for i, day in enumerate(days):
        x = left + i * step + (step - bar) / 2
        y = top + plot_h
        for g, group in enumerate(groups):
            value = values.get((day, group), 0.0)
            if value <= 0:
                continue
            h = plot_h * value / peak
            y -= h
            parts.append(
                f'<rect class="bar" x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{h:.1f}" '
                f'fill="{colour(g)}"><title>{escape(day)} {escape(group)}: {_money(value)}'
                "</title></rect>"
            )
        if i % max(len(days) // 6, 1) == 0:
            parts.append(
                f'<text x="{left + i * step + step / 2:.1f}" y="{height - 6}" '
                f'text-anchor="middle" class="axis">{escape(day[5:])}</text>'
            )
    return "".join([*parts, "</svg>"])


def legend(groups: Sequence[str]) -> str:
    items = "".join(
        f'<li><span class="swatch" style="background:{colour(i)}"></span>{escape(g)}</li>'
        for i, g in enumerate(groups)
    )
    return f'<ul class="legend">{items}</ul>'


def hbars(items: Sequence[tuple[str, float]], *, title: str, width: int = 420) -> str:
    """One horizontal bar per item, its length to scale, its value written after it."""
    row, label_w = 26, 130
    height = row * max(len(items), 1) + 6
    peak = max((v for _, v in items), default=0.0)
    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'role="img" aria-label="{escape(title)}"><title>{escape(title)}</title>'
    ]
    for i, (label, value) in enumerate(items):
        y = 4 + i * row
        w = (width - label_w - 90) * value / peak if peak > 0 else 0.0
        parts.append(
            f'<text x="{label_w - 6}" y="{y + 15}" text-anchor="end">{escape(label)}</text>'
            f'<rect class="bar" x="{label_w}" y="{y + 2}" width="{w:.1f}" height="{row - 8}" '
            f'fill="{colour(i)}"><title>{escape(label)}: {value:,.0f}</title></rect>'
            f'<text x="{label_w + w + 6:.1f}" y="{y + 15}">{value:,.0f}</text>'
        )
    return "".join([*parts, "</svg>"])


def share_ring(share: float, *, title: str, size: int = 120) -> str:
    """A ring filled to `share` (0..1), the percentage in its middle."""
    share = min(max(share, 0.0), 1.0)
    r = size / 2 - 10
    circumference = 2 * 3.141592653589793 * r
    c = size / 2
    return (
        f'<svg class="chart" viewBox="0 0 {size} {size}" width="{size}" height="{size}" '
        f'role="img" aria-label="{escape(title)}"><title>{escape(title)}</title>'
        f'<circle cx="{c}" cy="{c}" r="{r}" fill="none" stroke="#ddd" stroke-width="14"/>'
        f'<circle class="bar" cx="{c}" cy="{c}" r="{r}" fill="none" stroke="{colour(2)}" '
        f'stroke-width="14" stroke-dasharray="{circumference * share:.1f} {circumference:.1f}" '
        f'transform="rotate(-90 {c} {c})"/>'
        f'<text x="{c}" y="{c + 6}" text-anchor="middle" class="big">{100 * share:.0f}%</text>'
        "</svg>"
    )


def task_graph(graph: dict[str, Any]) -> str:
    """The task in the middle; what it depends on and the task that handed it over on the
    left; the handoffs it made on the right. Each node links to its task."""
    left = [(d, "depends on") for d in graph["depends_on"]]
    if graph["parent"]:
        left.append((graph["parent"], "handed over"))
    right = [(h["id"], h.get("state") or "") for h in graph["handoffs"]]
    if not left and not right:
        return '<p class="empty">no dependencies and no handoffs</p>'
    node_w, node_h, gap, col = 210, 34, 12, 280
    rows = max(len(left), len(right), 1)
    height = rows * (node_h + gap) + gap
    width = 2 * col + node_w
    middle_y = height / 2 - node_h / 2
    parts = [
        f'<svg class="graph" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        'role="img" aria-label="dependencies and handoffs">'
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="8" '
        'markerHeight="8" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#666"/></marker></defs>'
    ]

    def node(x: float, y: float, task_id: str, note: str, cls: str) -> str:
        shown = task_id if len(task_id) <= 28 else task_id[:27] + "…"
        link = "/tasks/" + quote(task_id, safe="")
        return (
            f'<a href="{escape(link)}"><rect class="node {cls}" x="{x}" y="{y:.1f}" '
            f'width="{node_w}" height="{node_h}" rx="6"/>'
            f'<text x="{x + 8}" y="{y + 15:.1f}">{escape(shown)}</text>'
            f'<text x="{x + 8}" y="{y + 28:.1f}" class="axis">{escape(note)}</text>'
            f"<title>{escape(task_id)}</title></a>"
        )

    for side, items, x in (("left", left, 0), ("right", right, 2 * col)):
        for i, (task_id, note) in enumerate(items):
            y = gap + i * (node_h + gap)
            start, end = ((x + node_w, y), (col, middle_y)) if side == "left" else (
                (col + node_w, middle_y), (x, y))  # fmt: skip
            parts.append(
                f'<line x1="{start[0]}" y1="{start[1] + node_h / 2:.1f}" x2="{end[0]}" '
                f'y2="{end[1] + node_h / 2:.1f}" stroke="#666" marker-end="url(#arrow)"/>'
            )
            parts.append(node(x, y, task_id, note, "other"))
    parts.append(node(col, middle_y, graph["id"], "this task", "this"))
    return "".join([*parts, "</svg>"])
