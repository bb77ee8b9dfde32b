"""Who may use the dashboard: one secret token, given in the start URL (`?token=`), kept in
a cookie after the first visit, or sent by API clients as `Authorization: Bearer`. Actions
also need a CSRF token derived from it, which a cross-site page cannot read; requests
authenticated by the Authorization header need none (a browser never adds that header to
a cross-site request). Pure functions: no Starlette here."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING

from orchestrator.errors import UsageError

if TYPE_CHECKING:
    from collections.abc import Mapping

TOKEN_ENV = "ORCHESTRATOR_DASHBOARD_TOKEN"
MIN_TOKEN_CHARS = 16
CSRF_FIELD = "csrf"
CSRF_HEADER = "x-csrf-token"


def new_token() -> str:
    return secrets.token_urlsafe(24)


def token_from(environ: Mapping[str, str]) -> str | None:
    """The token ORCHESTRATOR_DASHBOARD_TOKEN sets, checked; None when it is not set."""
    token = environ.get(TOKEN_ENV)
    if token is None or token == "":
        return None
    if len(token) < MIN_TOKEN_CHARS or not token.isascii() or not token.isprintable():
        raise UsageError(
            f"{TOKEN_ENV} must be at least {MIN_TOKEN_CHARS} printable ASCII characters "
            f"(got {len(token)}); make one with `python3 -c 'import secrets; "
            "print(secrets.token_urlsafe(24))'`"
        )
    if any(c in token for c in " ;,\"'\\"):
        raise UsageError(f"{TOKEN_ENV} must not hold spaces, quotes, commas or semicolons")
    return token


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_host(host: str, explicit_token: bool) -> str | None:
    """Whether the dashboard may listen on `host`: a UsageError for a non-local one without
    a token of the user's own; for one with it, the warning to print."""
    if is_loopback(host):
        return None
    if not explicit_token:
        raise UsageError(
            f"--host {host} is not a local address: the dashboard would be reachable from "
            f"other machines; set {TOKEN_ENV} to a secret of your own to allow it"
        )
    return (
        f"warning: the dashboard listens on {host}, reachable from other machines; anyone "
        "with the token can see the tasks and spend, and submit, cancel and retry tasks "
        "(the traffic is not encrypted: prefer an SSH tunnel to 127.0.0.1)"
    )


def cookie_name(port: int) -> str:
    """Cookies do not tell ports apart: one name per port, so two dashboards on one host
    do not log each other out."""
    return f"orchestrator_dashboard_{port}"


def csrf_token(token: str) -> str:
    return hmac.new(token.encode(), b"csrf", hashlib.sha256).hexdigest()


def same(given: str | None, expected: str) -> bool:
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


@dataclass(frozen=True)
class Credentials:
    """What a request carries: the query's token, the cookie's, the Bearer header's."""

    query: str | None
    cookie: str | None
    bearer: str | None

    def via(self, token: str) -> str | None:
        """How the request proves it knows `token` ("bearer", "cookie", "query"), or None."""
        for name, given in (("bearer", self.bearer), ("cookie", self.cookie),
                            ("query", self.query)):  # fmt: skip
            if same(given, token):
                return name
        return None


def bearer_of(header: str | None) -> str | None:
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def csrf_ok(token: str, via: str, given: str | None) -> bool:
    """Whether an action may go ahead: always for a Bearer client, else with the CSRF
    token in the form or the X-CSRF-Token header."""
    return via == "bearer" or same(given, csrf_token(token))
