"""Conversations that continue: tasks that name the same `session:` resume the CLI's own
session (claude `--resume ID`, codex `exec resume ID`, gemini `--resume latest` in a home
of the session's own), so the earlier turns come from the CLI's history and the provider's
prompt cache can serve them.

A session is tied to its tool. A turn that must run on another tool (routing, a fallback)
starts a new session there, its prompt opened by a summary of the earlier turns (each
turn's title or first words, and the start of its answer, from the archive and outbox);
the session then belongs to the new tool, and the move is recorded in the session and in
the result. Tasks of one session run one at a time (a lock per name, first come first
served, shared with `exec` through a lock file).

State: work/sessions.json (merged under a lock, like the usage windows), and a folder per
session under work/sessions/ (its lock file, gemini's home).
"""

from __future__ import annotations

import contextlib
import fcntl  # flock(2), on Linux and macOS; native Windows has none (docs/platforms.md)
import json
import logging
import os
import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import anyio

from orchestrator.safefile import read_regular

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator
    from pathlib import Path

log = logging.getLogger(__name__)

STATE_FILE = "sessions.json"
FOLDER = "sessions"
MAX_STATE_BYTES = 4 << 20
LOCK_POLL_S = 0.1
SEED_TURNS = 5  # the latest turns a seed summarises
SEED_CHARS = 600  # of each turn's answer
KEEP_TASKS = 50  # task ids kept per session (for seeds and `sessions`)


@dataclass
class Session:
    name: str
    tool: str
    model: str | None = None
    cli_id: str | None = None  # the CLI's own session id (claude, codex; gemini's own)
    turns: int = 0
    last_used: str = ""
    tasks: list[str] = field(default_factory=list)
    cli_ids: list[str] = field(default_factory=list)  # every CLI session it has had
    moves: list[str] = field(default_factory=list)  # "claude-code -> codex at <time>"
    reported: dict[str, float] = field(default_factory=dict)  # a cumulative report's last


class Sessions:
    def __init__(self, work: Path) -> None:
        self.work = work
        self.path = work / STATE_FILE
        self.locks: dict[str, anyio.Lock] = {}

    def folder(self, name: str) -> Path:
        return self.work / FOLDER / name

    def get(self, name: str) -> Session | None:
        return read_sessions(self.path).get(name)

    def save(self, session: Session) -> None:
        """Merge one session into the file, under the file's lock."""
        from orchestrator.workdir import atomic_write

        self.path.parent.mkdir(parents=True, exist_ok=True)
        with _flocked(self.path.with_suffix(".lock")):
            found = read_sessions(self.path)
            found[session.name] = session
            body = {name: asdict(s) for name, s in sorted(found.items())}
            atomic_write(self.path, json.dumps(body, indent=1).encode(), durable=False)

    @contextlib.asynccontextmanager
    async def turn(self, name: str) -> AsyncIterator[None]:
        """Hold the session for one task: first come, first served in this process (a
        fair lock), and across processes (`exec`) through the session's lock file."""
        lock = self.locks.setdefault(name, anyio.Lock())
        async with lock:
            folder = self.folder(name)
            folder.mkdir(parents=True, exist_ok=True)
            fd = os.open(folder / "lock", os.O_RDWR | os.O_CREAT, 0o644)
            try:
                while True:
                    try:
                        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                        break
                    except BlockingIOError:
                        await anyio.sleep(LOCK_POLL_S)
                yield
            finally:
                os.close(fd)


@contextlib.contextmanager
def _flocked(path: Path) -> Iterator[None]:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def read_sessions(path: Path) -> dict[str, Session]:
    """The sessions a state file holds; what cannot be read is left out."""
    try:
        data: Any = json.loads(read_regular(path, MAX_STATE_BYTES))
    except (OSError, ValueError):
        return {}
    found: dict[str, Session] = {}
    for name, entry in (data if isinstance(data, dict) else {}).items():
        try:
            found[str(name)] = Session(**entry)
        except TypeError:
            continue
    return found


def after_turn(
    session: Session,
    tool: str,
    model: str | None,
    cli_id: str | None,
    task_id: str,
    reported: dict[str, float] | None = None,
) -> Session:
    """The session after a turn that succeeded on `tool` (a move when the tool changed)."""
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    if session.turns and tool != session.tool:
        session.moves.append(f"{session.tool} -> {tool} at {now}")
        session.reported = {}
    session.tool, session.model = tool, model
    if cli_id and cli_id != session.cli_id:
        session.cli_id = cli_id
        session.cli_ids.append(cli_id)
    session.turns += 1
    session.last_used = now
    session.tasks = [*session.tasks, task_id][-KEEP_TASKS:]
    if reported is not None:
        session.reported = reported
    return session


def turn_usage(reported: dict[str, float], before: dict[str, float]) -> dict[str, float]:
    """This turn's usage (and cost) from a CLI that reports its session's running totals
    (claude's modelUsage and total_cost_usd, codex's resumed `turn.completed`): the totals
    less the last ones seen."""
    return {key: max(0.0, value - before.get(key, 0)) for key, value in reported.items()}


def seed(session: Session, outbox: Path, archive: Path) -> str:
    """The opening of a new session's first prompt on another tool: the earlier turns,
    each as its title (or first words) and the start of its answer."""
    lines = [
        f"(This conversation, session {session.name!r}, continues from {session.turns} "
        f"earlier turns on {session.tool}. A summary of the latest:)"
    ]
    for task_id in session.tasks[-SEED_TURNS:]:
        asked, answered = _turn_text(task_id, outbox, archive)
        lines.append(f"- asked: {asked}")
        lines.append(f"  answered: {answered}")
    return "\n".join(lines) + "\n\n"


def _turn_text(task_id: str, outbox: Path, archive: Path) -> tuple[str, str]:
    import yaml

    answer, name = "", f"{task_id}.yaml"
    try:
        result = yaml.safe_load(read_regular(outbox / f"{task_id}.result.yaml", 1 << 20)) or {}
        answer, name = str(result.get("output") or ""), str(result.get("task_file") or name)
    except (OSError, ValueError, yaml.YAMLError, AttributeError):
        pass
    asked = task_id
    for path in sorted(archive.glob(f"*/{name}"))[-1:]:
        with contextlib.suppress(OSError, ValueError, yaml.YAMLError):
            doc = yaml.safe_load(read_regular(path, 1 << 20)) or {}
            text = doc.get("title") or doc.get("prompt") or task_id
            asked = " ".join(str(text).split())[:200]
    answer = " ".join(answer.split())
    return asked, answer[:SEED_CHARS] + ("…" if len(answer) > SEED_CHARS else "")


@dataclass(frozen=True)
class AttemptSession:
    """What one attempt of a session task needs: the CLI session to resume, the home of
    the session's own (gemini), and the summary opening its prompt on a new tool."""

    resume: str | None = None
    home: Path | None = None
    opening: str = ""
    moved_from: str | None = None


def for_attempt(session: Session | None, tool: str, sessions: Sessions) -> AttemptSession:
    if session is None:
        return AttemptSession()
    home = sessions.folder(session.name) / f"{tool}-home"
    if session.turns == 0:
        return AttemptSession(home=home)
    if tool == session.tool and session.cli_id:
        return AttemptSession(resume=session.cli_id, home=home)
    outbox, archive = sessions.work / "outbox", sessions.work / "archive"
    return AttemptSession(home=home, opening=seed(session, outbox, archive),
                          moved_from=session.tool)  # fmt: skip
