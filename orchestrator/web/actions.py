"""What the handlers call, in a worker thread: the library's own functions (submit,
cancel, retry, stats, doctor) with the dashboard's inputs checked and turned into their
arguments. Blocking I/O is fine here; nothing here knows about HTTP."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from orchestrator.errors import UsageError

if TYPE_CHECKING:
    from orchestrator.doctor import ToolCheck
    from orchestrator.web.app import Site

SUBMIT_FIELDS = ("agent", "prompt", "title", "priority", "task_type", "id", "tool", "model",
                 "timeout", "justification", "csrf")  # fmt: skip
STATS_OPTIONS = ("period", "by", "since", "until", "agent", "model", "tool")


def detail(site: Site, task_id: str) -> dict[str, Any] | None:
    from orchestrator.web.queries import task_detail

    return task_detail(site.root, task_id, full=site.config.get().full_prompts)


def extras(site: Site, found: dict[str, Any]) -> tuple[dict[int, list[str]], list[str]]:
    """A task page's argv per attempt and the tail of its events log."""
    from orchestrator.web.configview import attempt_argvs, latest_events

    attempts = (found["result"] or {}).get("attempts") or []
    argvs = attempt_argvs(site.config.get().config, attempts, found["id"])
    return argvs, latest_events(site.root / "work", found["id"])


def doctor(site: Site) -> tuple[list[ToolCheck], str]:
    from orchestrator.doctor import check_tools, render

    loaded = site.config.get()
    if loaded.config is None:
        raise UsageError("the config does not load, so its tools cannot be checked: see Config")
    checks = check_tools(loaded.config)
    return checks, render(checks)


def submit(site: Site, form: dict[str, str]) -> str:
    from orchestrator.submit import submit as write_task

    unknown = sorted(set(form) - set(SUBMIT_FIELDS))
    if unknown:
        raise UsageError(
            f"unknown field {unknown[0]!r}: the fields are {', '.join(SUBMIT_FIELDS[:-1])}"
        )
    agent, prompt = form.get("agent", "").strip(), form.get("prompt", "")
    if not agent:
        raise UsageError("agent: choose the agent that runs the task")
    if not prompt.strip():
        raise UsageError("prompt: write what the agent should do")
    loaded = site.config.get()
    if loaded.config is None:
        raise UsageError("the config does not load, so no task can be submitted: see Config")

    def given(name: str) -> str | None:
        value = form.get(name, "").strip()
        return value or None

    return write_task(
        loaded.config, agent=agent, prompt=prompt, title=given("title"),
        priority=given("priority"), task_type=given("task_type"), task_id=given("id"),
        tool=given("tool"), model=given("model"), timeout=given("timeout"),
        justification=given("justification"),
    )  # fmt: skip


def control(site: Site, kind: str, task_id: str) -> str:
    from orchestrator.control import cancel, retry

    return cancel(site.root, task_id) if kind == "cancel" else retry(site.root, task_id)


def stats(site: Site, query: dict[str, str]) -> list[dict[str, Any]]:
    """The rows of `stats --json` for the same options (period: daily, weekly, monthly)."""
    from orchestrator.reports.stats import StatsQuery, stats_report

    unknown = sorted(set(query) - set(STATS_OPTIONS) - {"token"})
    if unknown:
        raise UsageError(
            f"unknown option {unknown[0]!r}: the options are {', '.join(STATS_OPTIONS)}"
        )
    period = query.get("period", "daily")
    if period not in ("daily", "weekly", "monthly"):
        raise UsageError(f"period {period!r}: daily, weekly or monthly")
    by = query.get("by", "model")
    if by not in ("agent", "model", "tool"):
        raise UsageError(f"by {by!r}: agent, model or tool")
    options = {k: query.get(k) or None for k in ("since", "until", "agent", "model", "tool")}
    try:
        report = stats_report(site.root, StatsQuery(period=period, by=by, **options))  # type: ignore[arg-type]
    except ValueError as exc:
        raise UsageError(f"since/until: {exc} (write YYYY-MM-DD)") from None
    rows: list[dict[str, Any]] = report["rows"]
    return rows
