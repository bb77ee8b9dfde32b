"""The Starlette application: the pages, the JSON API, the event stream and the actions,
each handler reading its parameters, calling the library (reports, control, submit) in a
worker thread, and rendering. Errors of the user's own (a bad filter, an unknown id, a
task that cannot be cancelled) are 4xx answers with the library's message."""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, quote

import anyio.to_thread
from starlette.applications import Starlette
from starlette.responses import (
    HTMLResponse,
    JSONResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Route

from orchestrator.errors import FileSystemError, OrchestratorError, UsageError, WorkspaceError
from orchestrator.web import actions, pages
from orchestrator.web.auth import CSRF_FIELD, CSRF_HEADER, cookie_name, csrf_ok, csrf_token
from orchestrator.web.configview import ConfigCache, config_page, tools_page
from orchestrator.web.guard import Guard
from orchestrator.web.html import esc, page
from orchestrator.web.live import event_stream, snapshot
from orchestrator.web.queries import TaskFilter, list_tasks
from orchestrator.web.spend import SpendQuery, spend_data, spend_page

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable
    from pathlib import Path

    from starlette.requests import Request

STATIC = {"dashboard.css": "text/css", "dashboard.js": "text/javascript"}
MAX_BODY = 1024 * 1024


@dataclass
class Site:
    """What every handler needs: the workspace, the token, the config."""

    root: Path
    token: str
    config: ConfigCache
    poll_s: float

    @property
    def csrf(self) -> str:
        return csrf_token(self.token)


def _status_of(exc: OrchestratorError) -> int:
    return 503 if isinstance(exc, WorkspaceError) else 400


def _not_found(site: Site, request: Request, task_id: str) -> Response:
    text = f"no task {task_id!r} here: no result, no task file, no telemetry row"
    if _wants_json(request):
        return JSONResponse({"error": text}, status_code=404)
    body = f'<p class="error" id="error">{esc(text)}</p>'
    return HTMLResponse(page("Not found", body, active="", csrf=site.csrf), status_code=404)


def _wants_json(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def handled(
    fn: Callable[[Site, Request], Awaitable[Response]], site: Site
) -> Callable[[Request], Awaitable[Response]]:
    """A handler whose errors of ours become an answer: JSON under /api/, a page else. An
    OSError (a full disk, a folder made unreadable) is told as one too, not as a 500."""

    async def endpoint(request: Request) -> Response:
        try:
            return await fn(site, request)
        except OSError as exc:
            what = f"{request.method} {request.url.path} stopped on a file system error"
            return refusal(site, request, FileSystemError(what, exc, where=site.root))
        except OrchestratorError as exc:
            return refusal(site, request, exc)

    return endpoint


def refusal(site: Site, request: Request, exc: OrchestratorError) -> Response:
    status = _status_of(exc)
    if _wants_json(request):
        return JSONResponse({"error": str(exc)}, status_code=status)
    body = f'<p class="error" id="error">{esc(str(exc))}</p>'
    return HTMLResponse(page("Error", body, active="", csrf=site.csrf), status_code=status)


async def _sync(fn: Callable[..., Any], *args: Any) -> Any:
    return await anyio.to_thread.run_sync(lambda: fn(*args))


def _filter(request: Request) -> TaskFilter:
    q = request.query_params
    try:
        limit = int(q.get("limit") or 100)
    except ValueError:
        raise UsageError(f"limit {q.get('limit')!r}: a whole number") from None
    return TaskFilter(state=q.get("state") or None, agent=q.get("agent") or None,
                      day=q.get("day") or None, search=q.get("q") or None, limit=limit)  # fmt: skip


# --- pages -----------------------------------------------------------------------------


async def overview(site: Site, request: Request) -> Response:
    snap = await _sync(snapshot, site.root)
    body = pages.overview(snap["status"], snap["recent"])
    return HTMLResponse(page("Overview", body, active="/", csrf=site.csrf, live=True))


async def overview_fragment(site: Site, request: Request) -> Response:
    snap = await _sync(snapshot, site.root)
    return HTMLResponse(pages.overview_live(snap["status"], snap["recent"]))


async def tasks(site: Site, request: Request) -> Response:
    flt = _filter(request)
    found = await _sync(list_tasks, site.root, flt)
    loaded = site.config.get()
    body = pages.tasks_page(found, flt, loaded.agents, site.csrf, loaded.full_prompts)
    return HTMLResponse(page("Tasks", body, active="/tasks", csrf=site.csrf,
                             notice=request.query_params.get("said")))  # fmt: skip


async def task(site: Site, request: Request) -> Response:
    task_id = request.path_params["task_id"]
    detail = await _sync(actions.detail, site, task_id)
    if detail is None:
        return _not_found(site, request, task_id)
    argvs, events = await _sync(actions.extras, site, detail)
    body = pages.task_page(detail, argvs, events, site.csrf)
    return HTMLResponse(page(f"Task {task_id}", body, active="/tasks", csrf=site.csrf,
                             notice=request.query_params.get("said"), live=True))  # fmt: skip


async def spend(site: Site, request: Request) -> Response:
    q = request.query_params
    try:
        query = SpendQuery(days=int(q.get("days") or 30), by=q.get("by") or "model")
    except ValueError:
        raise UsageError(f"days {q.get('days')!r}: 30 or 90") from None
    data = await _sync(spend_data, site.root, query)
    return HTMLResponse(page("Spend", spend_page(data), active="/spend", csrf=site.csrf))


async def config(site: Site, request: Request) -> Response:
    loaded = await _sync(site.config.get)
    return HTMLResponse(page("Config", config_page(loaded), active="/config", csrf=site.csrf))


async def tools(site: Site, request: Request) -> Response:
    checks, text = await _sync(actions.doctor, site)
    return HTMLResponse(page("Tools", tools_page(checks, text), active="/tools", csrf=site.csrf))


async def static(site: Site, request: Request) -> Response:
    name = request.path_params["name"]
    if name not in STATIC:
        return Response("not found\n", status_code=404, media_type="text/plain")
    data = resources.files("orchestrator.web").joinpath("static", name).read_bytes()
    return Response(data, media_type=STATIC[name])


# --- actions (forms and API) -------------------------------------------------------------


async def _form(request: Request) -> dict[str, str]:
    """The body as a form (urlencoded) or a JSON object, one value per field."""
    body = await request.body()
    if len(body) > MAX_BODY:
        raise UsageError(f"the request body is over {MAX_BODY} bytes")
    kind = request.headers.get("content-type", "").split(";")[0].strip()
    if kind == "application/json":
        try:
            data = json.loads(body or b"{}")
        except ValueError as exc:
            raise UsageError(f"the body is not JSON: {exc}") from None
        if not isinstance(data, dict):
            raise UsageError("the body must be a JSON object")
        return {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in data.items()}
    if kind in ("application/x-www-form-urlencoded", ""):
        fields = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
        return {k: v[-1] for k, v in fields.items()}
    raise UsageError(f"content type {kind!r}: send a form or application/json")


def _check_csrf(site: Site, request: Request, form: dict[str, str]) -> Response | None:
    given = request.headers.get(CSRF_HEADER) or form.get(CSRF_FIELD)
    if csrf_ok(site.token, request.state.auth, given):
        return None
    text = "403 forbidden: this action needs the page's CSRF token (reload the page)"
    if _wants_json(request):
        return JSONResponse({"error": text}, status_code=403)
    return Response(text + "\n", status_code=403, media_type="text/plain")


def action(kind: str) -> Callable[[Site, Request], Awaitable[Response]]:
    async def handler(site: Site, request: Request) -> Response:
        form = await _form(request)
        refused = _check_csrf(site, request, form)
        if refused is not None:
            return refused
        if kind == "submit":
            task_id = await _sync(actions.submit, site, form)
            said = f"submitted {task_id}"
        else:
            task_id = request.path_params["task_id"]
            said = await _sync(actions.control, site, kind, task_id)
        if _wants_json(request):
            return JSONResponse({"id": task_id, "said": said})
        target = "/tasks/" + quote(task_id, safe="") + "?said=" + quote(said)
        return RedirectResponse(target, status_code=303)

    return handler


# --- API -----------------------------------------------------------------------------------


async def api_status(site: Site, request: Request) -> Response:
    from orchestrator.reports.status import status_data

    return JSONResponse(await _sync(status_data, site.root))


async def api_tasks(site: Site, request: Request) -> Response:
    return JSONResponse(await _sync(list_tasks, site.root, _filter(request)))


async def api_task(site: Site, request: Request) -> Response:
    task_id = request.path_params["task_id"]
    detail = await _sync(actions.detail, site, task_id)
    return _not_found(site, request, task_id) if detail is None else JSONResponse(detail)


async def api_stats(site: Site, request: Request) -> Response:
    rows = await _sync(actions.stats, site, dict(request.query_params))
    return JSONResponse(rows)


async def api_events(site: Site, request: Request) -> Response:
    return StreamingResponse(
        event_stream(site.root, site.poll_s),
        media_type="text/event-stream",
        headers={"x-accel-buffering": "no"},
    )


def create_app(root: Path, token: str, *, port: int, poll_s: float = 0.3,
               profile: str | None = None) -> Guard:  # fmt: skip
    """The dashboard of the workspace `root`, behind its guard (the token)."""
    site = Site(root, token, ConfigCache(root, profile), poll_s)
    get: list[tuple[str, Callable[[Site, Request], Awaitable[Response]]]] = [
        ("/", overview), ("/fragments/overview", overview_fragment), ("/tasks", tasks),
        ("/tasks/{task_id}", task), ("/spend", spend), ("/config", config), ("/tools", tools),
        ("/static/{name}", static), ("/api/status", api_status), ("/api/tasks", api_tasks),
        ("/api/tasks/{task_id}", api_task), ("/api/stats", api_stats),
        ("/api/events", api_events),
    ]  # fmt: skip
    post = [
        ("/actions/submit", action("submit")), ("/api/tasks", action("submit")),
        ("/tasks/{task_id}/cancel", action("cancel")), ("/tasks/{task_id}/retry", action("retry")),
        ("/api/tasks/{task_id}/cancel", action("cancel")),
        ("/api/tasks/{task_id}/retry", action("retry")),
    ]  # fmt: skip
    routes = [Route(p, handled(fn, site), methods=["GET"]) for p, fn in get]
    routes += [Route(p, handled(fn, site), methods=["POST"]) for p, fn in post]
    return Guard(Starlette(routes=routes), token, cookie_name(port))
