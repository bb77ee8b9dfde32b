"""`orchestrator dashboard`: checks the address and the token, binds the socket (so a busy
port is one clear error), prints the start URL and runs uvicorn until Ctrl-C/SIGTERM."""

from __future__ import annotations

import importlib.util
import socket
from typing import TYPE_CHECKING

from orchestrator.errors import UsageError, install_extra
from orchestrator.web.auth import TOKEN_ENV, check_host, new_token, token_from

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from pathlib import Path
    from types import FrameType

GRACE_S = 1  # open event streams get this long to end at shutdown


def need_extra() -> None:
    missing = [m for m in ("starlette", "uvicorn") if importlib.util.find_spec(m) is None]
    if missing:
        raise UsageError(f"the dashboard needs {' and '.join(missing)}: {install_extra('web')}")


def bind(host: str, port: int) -> socket.socket:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise UsageError(
            f"--host {host}: not an address of this machine ({exc.strerror})"
        ) from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise UsageError(
            f"cannot listen on {host}:{port} ({exc.strerror}): another program uses the port? "
            "choose another with --port"
        ) from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def start_url(host: str, port: int, token: str) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/?token={token}"


def serve(
    root: Path,
    host: str,
    port: int,
    *,
    profile: str | None,
    environ: Mapping[str, str],
    say: Callable[[str], None],
    poll_s: float = 0.3,
) -> None:
    need_extra()
    explicit = token_from(environ)
    warning = check_host(host, explicit is not None)
    token = explicit or new_token()
    sock = bind(host, port)
    port = sock.getsockname()[1]

    import uvicorn

    from orchestrator.web.app import create_app

    app = create_app(root, token, port=port, poll_s=poll_s, profile=profile)
    config = uvicorn.Config(app, log_level="warning", lifespan="off",
                            timeout_graceful_shutdown=GRACE_S, access_log=False)  # fmt: skip
    if warning:
        say(warning)
    say(f"dashboard of {root}: {start_url(host, port, token)}")
    if not explicit:
        say(f"(a new token each start; set {TOKEN_ENV} to keep one)")
    say("Ctrl-C stops it")

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            """Ctrl-C or SIGTERM: stop, then exit 0 (uvicorn raises the signal again at
            the end, which would end the process by it)."""
            super().handle_exit(sig, frame)
            self._captured_signals.clear()

    try:
        Server(config).run(sockets=[sock])
    finally:
        sock.close()
    say("dashboard stopped")
