"""The pages' frame and the small pieces they are built from: every value escaped here, so
that a task id, a file name or an answer cannot become markup."""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

NAV = (("/", "Overview"), ("/tasks", "Tasks"), ("/spend", "Spend"), ("/config", "Config"),
       ("/tools", "Tools"))  # fmt: skip


def esc(value: object) -> str:
    return escape("" if value is None else str(value))


def task_href(task_id: str) -> str:
    return "/tasks/" + quote(task_id, safe="")


def href(path: str, **query: object) -> str:
    given = {k: v for k, v in query.items() if v not in (None, "")}
    return path + ("?" + urlencode(given) if given else "")


def money(value: float | None) -> str:
    return "unknown" if value is None else f"${value:.4f}"


def seconds(value: float | None) -> str:
    if value is None:
        return "-"
    if value < 120:
        return f"{value:.0f}s"
    return f"{value / 60:.0f}m" if value < 7200 else f"{value / 3600:.1f}h"


def badge(state: str | None) -> str:
    state = state or "unknown"
    return f'<span class="state state-{esc(state)}">{esc(state)}</span>'


def task_link(task_id: str) -> str:
    return f'<a href="{esc(task_href(task_id))}">{esc(task_id)}</a>'


def table(
    headers: Sequence[str], rows: Iterable[Sequence[str]], *, empty: str = "none",
    attrs: Sequence[str] | None = None, cls: str = "",
) -> str:  # fmt: skip
    """Cells are markup already (escape them with `esc`); `attrs` are each row's."""
    body = []
    for i, row in enumerate(rows):
        extra = f" {attrs[i]}" if attrs else ""
        body.append(f"<tr{extra}>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>")
    if not body:
        return f'<p class="empty">{esc(empty)}</p>'
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    return (
        f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'
    )


def pre(text: object) -> str:
    return f"<pre>{esc(text)}</pre>"


def section(title: str, body: str, *, ident: str = "") -> str:
    attr = f' id="{esc(ident)}"' if ident else ""
    return f"<section{attr}><h2>{esc(title)}</h2>{body}</section>"


def usd(value: float) -> str:
    """Dollars: cents from a dollar up, tenths of a cent below (small runs show)."""
    return f"${value:,.2f}" if value >= 1 or value == 0 else f"${value:.4f}"


def meter(spent: float, limit: float | None, warn_percent: float) -> str:
    """Spend against a budget as a bar; without a budget, the amount alone."""
    if not limit:
        return f'<span class="amount">{usd(spent)}</span> <span class="muted">(no budget)</span>'
    share = spent / limit
    level = "over" if share >= 1 else ("near" if 100 * share >= warn_percent else "ok")
    width = min(share, 1.0) * 100
    return (
        f'<div class="meter meter-{level}" title="{100 * share:.0f}% of {usd(limit)}">'
        f'<div style="width:{width:.1f}%"></div></div>'
        f'<span class="amount">{usd(spent)} / {usd(limit)} ({100 * share:.0f}%)</span>'
    )


def hidden_csrf(csrf: str) -> str:
    return f'<input type="hidden" name="csrf" value="{esc(csrf)}">'


def action_button(path: str, label: str, csrf: str, *, name: str) -> str:
    return (
        f'<form method="post" action="{esc(path)}" class="inline">{hidden_csrf(csrf)}'
        f'<button type="submit" name="{esc(name)}" id="{esc(name)}">{esc(label)}</button></form>'
    )


def page(title: str, body: str, *, active: str, csrf: str, notice: str | None = None,
         live: bool = False) -> str:  # fmt: skip
    """A whole page: the navigation, a notice (what an action did) and the body. With
    `live`, the script keeps the body's #live part current from /api/events."""
    nav = "".join(
        f'<a href="{path}"{" class=active" if path == active else ""}>{name}</a>'
        for path, name in NAV
    )
    shown = f'<p class="notice" id="notice">{esc(notice)}</p>' if notice else ""
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<meta name="csrf" content="{esc(csrf)}">'
        f"<title>{esc(title)} · orchestrator</title>"
        '<link rel="stylesheet" href="/static/dashboard.css">'
        '<script src="/static/dashboard.js" defer></script></head>'
        f"<body{' data-live=1' if live else ''}><header><strong>orchestrator</strong>"
        f'<nav>{nav}</nav><span id="conn" class="muted"></span></header>'
        f"<main><h1>{esc(title)}</h1>{shown}{body}</main></body></html>"
    )


def options(values: Iterable[str], chosen: str | None, *, blank: str = "any") -> str:
    items = [f'<option value="">{esc(blank)}</option>']
    for value in values:
        selected = " selected" if value == chosen else ""
        items.append(f'<option value="{esc(value)}"{selected}>{esc(value)}</option>')
    return "".join(items)


def dl(pairs: Iterable[tuple[str, Any]]) -> str:
    items = "".join(
        f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in pairs if v not in (None, "", [])
    )
    return f"<dl>{items}</dl>"
