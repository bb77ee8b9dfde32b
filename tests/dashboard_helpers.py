"""The real `orchestrator dashboard` for the tests: a subprocess on 127.0.0.1 (any free
port), its own HOME and TMPDIR, and small HTTP helpers that speak to it with the token in
the ways a browser or an API client would."""

from __future__ import annotations

import http.client
import json
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from tests.conftest import cli_env, wait_for

if TYPE_CHECKING:
    from pathlib import Path

TOKEN = "test-token-0123456789abcdef"
URL = re.compile(r"(http://127\.0\.0\.1:(\d+)/\?token=(\S+))")


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8")

    def json(self) -> Any:
        return json.loads(self.body)


class Dashboard:
    """`orchestrator dashboard --port 0` in the background; `stop()` ends it."""

    def __init__(self, root: Path, *args: str, token: str | None = TOKEN,
                 extra_env: dict[str, str] | None = None) -> None:  # fmt: skip
        env = cli_env(root.parent, extra_env)
        if token is not None:
            env["ORCHESTRATOR_DASHBOARD_TOKEN"] = token
        self.log = root.parent / "dashboard.log"
        self._log_file = self.log.open("w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "orchestrator", "--root", str(root), "dashboard",
             "--port", "0", *args],
            stdout=self._log_file, stderr=subprocess.STDOUT, env=env, cwd=root,
        )  # fmt: skip
        wait_for(
            lambda: URL.search(self.text()) is not None or self.process.poll() is not None,
            what="the dashboard to start",
        )
        found = URL.search(self.text())
        assert found is not None, self.text()
        self.url, self.port, self.token = found[1], int(found[2]), found[3]
        self.base = f"http://127.0.0.1:{self.port}"

    def text(self) -> str:
        return self.log.read_text()

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.terminate()
        code = self.process.wait(timeout=30)
        self._log_file.close()
        return code

    @property
    def cookie(self) -> str:
        return f"orchestrator_dashboard_{self.port}={self.token}"

    def request(
        self, method: str, path: str, *, body: bytes | None = None,
        headers: dict[str, str] | None = None, timeout: float = 30,
    ) -> Answer:  # fmt: skip
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            answer = conn.getresponse()
            return Answer(answer.status, {k.lower(): v for k, v in answer.getheaders()},
                          answer.read())  # fmt: skip
        finally:
            conn.close()

    def api(self, path: str, method: str = "GET", data: Any = None) -> Answer:
        """As an API client: the token as a Bearer header, a JSON body."""
        headers = {"Authorization": f"Bearer {self.token}"}
        body = None
        if data is not None:
            headers["Content-Type"] = "application/json"
            body = json.dumps(data).encode()
        return self.request(method, path, body=body, headers=headers)

    def browse(self, path: str, method: str = "GET", form: str | None = None,
               headers: dict[str, str] | None = None) -> Answer:  # fmt: skip
        """As the browser after the first visit: the cookie only."""
        sent = {"Cookie": self.cookie, **(headers or {})}
        if form is not None:
            sent.setdefault("Content-Type", "application/x-www-form-urlencoded")
        return self.request(method, path, body=form.encode() if form else None, headers=sent)

    def csrf(self) -> str:
        page = self.browse("/tasks").text
        found = re.search(r'<meta name="csrf" content="([0-9a-f]+)">', page)
        assert found is not None, page[:500]
        return found[1]


class EventStream:
    """A reader of /api/events: (event, data) pairs as they come."""

    def __init__(self, dashboard: Dashboard) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", dashboard.port, timeout=10)
        self.conn.request("GET", "/api/events",
                          headers={"Authorization": f"Bearer {dashboard.token}"})  # fmt: skip
        self.answer = self.conn.getresponse()

    def next(self, deadline: float) -> tuple[str, Any] | None:
        kind, data = "message", []
        while time.monotonic() < deadline:
            line = self.answer.readline().decode()
            if line == "":
                return None
            line = line.rstrip("\n")
            if line.startswith("event: "):
                kind = line[7:]
            elif line.startswith("data: "):
                data.append(line[6:])
            elif line == "" and data:
                return kind, json.loads("\n".join(data))
        return None

    def until(self, predicate: Any, timeout: float = 20) -> list[tuple[str, Any]]:
        """Events up to the first for which `predicate(kind, data)` holds."""
        seen: list[tuple[str, Any]] = []
        deadline = time.monotonic() + timeout
        while True:
            event = self.next(deadline)
            if event is None:
                raise AssertionError(f"no such event within {timeout}s; saw {seen[-10:]}")
            seen.append(event)
            if predicate(*event):
                return seen

    def close(self) -> None:
        self.conn.close()


def path_of(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")
