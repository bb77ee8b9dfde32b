"""The ASGI middleware in front of every route: 401 without the token (page, API, static
file and event stream alike), the cookie set on a visit that brought the token in its URL,
and headers that keep pages from being framed, sniffed or leaking their URL (the token)
to other sites."""

from __future__ import annotations

import json
from http.cookies import CookieError, SimpleCookie
from typing import TYPE_CHECKING
from urllib.parse import parse_qs

from orchestrator.web.auth import Credentials, bearer_of

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

SECURITY_HEADERS = [
    (b"content-security-policy",
     b"default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
     b"script-src 'self'; connect-src 'self'; frame-ancestors 'none'; form-action 'self'; "
     b"base-uri 'none'"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cache-control", b"no-store"),
]  # fmt: skip

REFUSED_TEXT = (
    "401 unauthorized: open the dashboard with the URL `orchestrator dashboard` printed "
    "(it carries ?token=...), or send Authorization: Bearer TOKEN"
)


def credentials(scope: Scope, cookie: str) -> Credentials:
    headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
    query = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("token")
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(headers.get("cookie", ""))
    except CookieError:  # a header that is not cookies: as if there were none
        jar = SimpleCookie()
    kept = jar.get(cookie)
    return Credentials(
        query=query[0] if query else None,
        cookie=kept.value if kept is not None else None,
        bearer=bearer_of(headers.get("authorization")),
    )


class Guard:
    def __init__(self, app: ASGIApp, token: str, cookie: str) -> None:
        self.app = app
        self.token = token
        self.cookie = cookie

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        via = credentials(scope, self.cookie).via(self.token)
        if via is None:
            await self._refuse(scope, send)
            return
        scope.setdefault("state", {})["auth"] = via
        set_cookie = via == "query"

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {k.lower() for k, _ in headers}
                headers += [(k, v) for k, v in SECURITY_HEADERS if k not in names]
                if set_cookie:
                    headers.append((b"set-cookie", (
                        f"{self.cookie}={self.token}; Path=/; HttpOnly; SameSite=Strict"
                    ).encode()))  # fmt: skip
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)

    async def _refuse(self, scope: Scope, send: Send) -> None:
        api = str(scope.get("path", "")).startswith("/api/")
        body = (json.dumps({"error": REFUSED_TEXT}) if api else REFUSED_TEXT + "\n").encode()
        kind = b"application/json" if api else b"text/plain; charset=utf-8"
        await send({
            "type": "http.response.start",
            "status": 401,
            "headers": [(b"content-type", kind), (b"content-length", str(len(body)).encode()),
                        (b"www-authenticate", b'Bearer realm="orchestrator"'),
                        *SECURITY_HEADERS],
        })  # fmt: skip
        await send({"type": "http.response.body", "body": body})
