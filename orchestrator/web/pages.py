"""The task pages as HTML: the overview (its live part also served alone, for the script to
swap in), the tasks list and one task. Pure functions of the data they are given."""

from __future__ import annotations

import shlex
from typing import TYPE_CHECKING, Any

from orchestrator.web.charts import task_graph
from orchestrator.web.html import (
    action_button,
    badge,
    dl,
    esc,
    hidden_csrf,
    meter,
    money,
    options,
    pre,
    seconds,
    section,
    table,
    task_href,
    task_link,
)
from orchestrator.web.queries import LIVE_STATES, STATES

if TYPE_CHECKING:
    from orchestrator.web.queries import TaskFilter

FINISHED = tuple(s for s in STATES if s not in LIVE_STATES)


def overview_live(status: dict[str, Any], recent: list[dict[str, Any]]) -> str:
    """What the overview shows that changes: queue, running, waiting, spend, warnings and
    the latest tasks (the whole of #live; /fragments/overview serves it alone)."""
    queue = status["queue"]
    counts = "".join(
        f'<div class="count" data-count="{esc(k)}"><b>{v}</b><span>{esc(k)}</span></div>'
        for k, v in queue.items()
    )
    running = table(
        ["task", "agent", "tool / model", "step", "elapsed", "idle", "tokens", "cost so far"],
        [
            [task_link(t["id"]), esc(t["agent"]), esc(f"{t['tool']} / {t['model'] or '-'}"),
             esc(t.get("step") or "-"), seconds(t["elapsed_s"]), seconds(t.get("idle_s")),
             esc(t.get("tokens") if t.get("tokens") is not None else "-"),
             money(t.get("cost_usd")) if t.get("cost_usd") is not None else "-"]
            for t in status["running"]
        ],
        attrs=[f'data-task="{esc(t["id"])}" data-state="running"' for t in status["running"]],
        empty="nothing running",
    )  # fmt: skip
    quota = status.get("waiting_quota", [])
    waiting = table(
        ["task", "agent", "waits for"],
        [[task_link(t["id"]), esc(t["agent"]), esc(t["waiting_for"])] for t in status["waiting"]]
        + [[task_link(t["id"]), esc(t["agent"]), esc(t["detail"])] for t in status["scheduled"]]
        + [[task_link(t["id"]), esc(t["agent"]),
            esc(f"quota, until {t.get('resume_at') or '?'}: {t.get('detail') or ''}")]
           for t in quota],
        empty="nothing waiting or scheduled",
    )  # fmt: skip
    return "".join([
        f'<div class="counts">{counts}</div>',
        _spend(status),
        _warnings(status),
        section("Running", running),
        section("Waiting and scheduled", waiting),
        section("Latest tasks", tasks_table(recent)),
    ])  # fmt: skip


def _spend(status: dict[str, Any]) -> str:
    spend = status["spend"]
    budgets = spend["budgets"]
    warn = float(budgets["warn_at_percent"])
    rows = [
        ["today", meter(spend["today_usd"], budgets["daily_usd"], warn)],
        ["this month", meter(spend["month_usd"], budgets["monthly_usd"], warn)],
    ]
    note = f'<p class="muted">budgets: {esc(budgets["mode"])}, {esc(budgets["timezone"])}</p>'
    return section("Spend", table(["", "against the budget"], rows, cls="spend") + note)


def _warnings(status: dict[str, Any]) -> str:
    found = list(status["spend"]["warnings"])
    health = status["telemetry"]
    if health.get("unreadable"):
        found.append(f"telemetry: {health['error']} (the spend shown is not known)")
    elif not health.get("ok", True):
        found.append(
            f"telemetry: {health.get('buffered', 0)} rows waiting, "
            f"{health.get('dropped', 0)} dropped"
            + (f": {health['error']}" if health["error"] else "")
        )
    found += [f"out of quota: {w['key']} until {w['until']}: {w['why']}"
              for w in status.get("windows", [])]  # fmt: skip
    for key, circuit in (status.get("circuits") or {}).items():
        found.append(f"circuit {key} is open after {circuit.get('failures')} failures")
    if not found:
        return ""
    items = "".join(f"<li>{esc(w)}</li>" for w in found)
    return f'<section class="warnings"><h2>Warnings</h2><ul>{items}</ul></section>'


def overview(status: dict[str, Any], recent: list[dict[str, Any]]) -> str:
    return f'<div id="live">{overview_live(status, recent)}</div>'


def tasks_table(tasks: list[dict[str, Any]]) -> str:
    return table(
        ["task", "state", "agent", "tool / model", "updated"],
        [
            [task_link(t["id"]), badge(t["state"]), esc(t.get("agent") or "-"),
             esc(f"{t.get('tool') or '-'} / {t.get('model') or '-'}"),
             esc((t.get("updated_at") or "")[:19].replace("T", " "))]
            for t in tasks
        ],
        attrs=[f'data-task="{esc(t["id"])}" data-state="{esc(t["state"])}"' for t in tasks],
        empty="no tasks",
        cls="tasks",
    )  # fmt: skip


def tasks_page(tasks: list[dict[str, Any]], flt: TaskFilter, agents: list[str], csrf: str,
               full: bool) -> str:  # fmt: skip
    form = (
        '<form method="get" action="/tasks" class="filters">'
        f'<label>state <select name="state">{options(("inbox", *STATES), flt.state)}'
        "</select></label>"
        f'<label>agent <select name="agent">{options(agents, flt.agent)}</select></label>'
        f'<label>day <input type="date" name="day" value="{esc(flt.day)}"></label>'
        f'<label>id <input type="search" name="q" value="{esc(flt.search)}" '
        'placeholder="part of the id"></label><button type="submit">Show</button></form>'
    )
    return form + tasks_table(tasks) + submit_form(agents, csrf, full)


def submit_form(agents: list[str], csrf: str, full: bool) -> str:
    note = "" if full else (
        '<p class="muted">The prompt is written into the task file; the dashboard does not '
        "show prompts (privacy.prompts is not <code>full</code>).</p>"
    )  # fmt: skip
    priorities = options(("critical", "high", "normal", "low"), None, blank="")
    return section(
        "New task",
        '<form method="post" action="/actions/submit" class="submit">'
        f"{hidden_csrf(csrf)}"
        f'<label>agent <select name="agent" required>{options(agents, None, blank="")}'
        "</select></label>"
        '<label>title <input name="title"></label>'
        f'<label>priority <select name="priority">{priorities}</select></label>'
        '<label class="wide">prompt <textarea name="prompt" rows="4" required></textarea></label>'
        f'<button type="submit" id="submit">Submit</button></form>{note}',
    )  # fmt: skip


def task_page(detail: dict[str, Any], argvs: dict[int, list[str]], events: list[str],
              csrf: str) -> str:  # fmt: skip
    """One task: state and actions, routing and attempts, output, graph, branch, file."""
    task_id, state = detail["id"], detail["state"]
    result = detail["result"] or {}
    row = detail["row"] or {}
    actions = []
    if state in (*LIVE_STATES, "inbox"):
        actions.append(action_button(f"{task_href(task_id)}/cancel", "Cancel", csrf, name="cancel"))
    if detail["result"] is not None:
        actions.append(action_button(f"{task_href(task_id)}/retry", "Retry", csrf, name="retry"))
    head = (
        f'<p class="task-head" data-task="{esc(task_id)}" data-state="{esc(state)}">'
        f"{badge(state)} {''.join(actions)}</p>"
    )
    summary = dl([
        ("agent", result.get("agent") or row.get("agent")),
        ("tool / model", f"{result.get('tool') or row.get('tool') or '-'} / "
                         f"{result.get('model') or row.get('model') or '-'}"),
        ("route", result.get("route_reason")),
        ("fallback from", result.get("fallback_from")),
        ("waiting for", row.get("waiting_for") if state == "waiting" else None),
        ("cost", money(result["cost_usd"]) if "cost_usd" in result else None),
        ("cost source", result.get("cost_source")),
        ("duration", seconds(result["duration_ms"] / 1000) if result.get("duration_ms") else None),
        ("started", result.get("started_at") or row.get("started_at")),
        ("finished", result.get("finished_at")),
        ("task file", detail["task_file"]),
    ])  # fmt: skip
    parts = [head, summary]
    error = result.get("error")
    if isinstance(error, dict):
        parts.append(section("Error", dl([("kind", error.get("kind")),
                                          ("message", error.get("message")),
                                          ("hint", error.get("hint"))])))  # fmt: skip
    if result.get("warnings"):
        parts.append(section("Warnings", "".join(f"<p>{esc(w)}</p>" for w in result["warnings"])))
    parts.append(section("Attempts", _attempts(result.get("attempts") or [], argvs)))
    if "output" in result or result.get("output_file"):
        text = result.get("output") if "output" in result else f"(in {result['output_file']})"
        parts.append(section("Output", pre(text), ident="output"))
    parts.append(section("Dependencies and handoffs", task_graph(detail["graph"])))
    workspace = result.get("workspace") or (
        {"branch": row["branch"]} if row.get("branch") else None
    )
    if isinstance(workspace, dict):
        parts.append(section("Worktree branch", dl(list(workspace.items()))))
    if events:
        parts.append(section("Progress events (latest)", pre("\n".join(events))))
    if detail["history"]:
        parts.append(
            section("Earlier runs", "".join(f"<p>{esc(h)}</p>" for h in detail["history"]))
        )
    if detail["task"] is not None:
        from orchestrator.results import dump_yaml

        parts.append(section("Task file", pre(dump_yaml(detail["task"]))))
    return "".join(parts)


def _attempts(attempts: list[dict[str, Any]], argvs: dict[int, list[str]]) -> str:
    rows = []
    for n, a in enumerate(attempts, 1):
        usage = a.get("usage") or {}
        error = a.get("error") or {}
        said = ""
        if error:
            said = esc(f"{error.get('kind')}: {error.get('message')}")
            if error.get("hint"):
                said += f'<br><span class="hint">{esc(error["hint"])}</span>'
        argv = argvs.get(n)
        rows.append([
            str(n), esc(f"{a.get('tool')} / {a.get('model') or '-'}"), esc(a.get("reason")),
            badge(a.get("outcome")), esc(a.get("exit_code")),
            esc(", ".join(f"{k.removesuffix('_tokens')} {v}" for k, v in usage.items())),
            money(a.get("cost_usd")) if "cost_usd" in a else "-", said or "-",
            f"<code>{esc(shlex.join(argv))}</code>" if argv else "-",
        ])  # fmt: skip
    return table(
        ["#", "tool / model", "reason", "outcome", "exit", "usage", "cost", "error", "argv"],
        rows,
        empty="no attempt yet",
    ) + ('<p class="muted">argv: as the current config builds it for that tool and model.</p>'
         if argvs else "")  # fmt: skip
