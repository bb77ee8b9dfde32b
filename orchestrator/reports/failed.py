"""Dead letters: `failed` lists the tasks whose result says they failed, timed out or were
quarantined (the result files in work/outbox/ are the record: what `retry` replays), each
with its last error; `retry --failed` re-queues them all."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from orchestrator.reports.stats import parse_day
from orchestrator.reports.status import read_budgets

if TYPE_CHECKING:
    from pathlib import Path

DEAD_STATES = ("failed", "timed_out")
RESULT_SUFFIX = ".result.yaml"
MAX_RESULT_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class DeadLetter:
    id: str
    status: str  # failed | timed_out | quarantined
    agent: str | None
    finished_at: str | None
    kind: str | None
    message: str | None


def dead_letters(
    root: Path, since: str | None = None, agent: str | None = None
) -> list[DeadLetter]:
    """The tasks in outbox/ that ended failed, timed out or quarantined, oldest first;
    `since` is a day (YYYY-MM-DD in the budgets' time zone) or an ISO time."""
    start = parse_day(since, read_budgets(root).timezone) if since else None
    outbox = root / "work" / "outbox"
    found = []
    for path in sorted(outbox.glob(f"*{RESULT_SUFFIX}")) if outbox.is_dir() else []:
        doc = _read(path)
        if doc is None or doc.get("status") not in DEAD_STATES:
            continue
        error = doc.get("error")
        error = error if isinstance(error, dict) else {}
        letter = DeadLetter(
            id=str(doc.get("id") or path.name.removesuffix(RESULT_SUFFIX)),
            status="quarantined" if error.get("kind") == "quarantined" else str(doc["status"]),
            agent=doc.get("agent"),
            finished_at=_text(doc.get("finished_at")),
            kind=_text(error.get("kind")),
            message=_text(error.get("message")),
        )
        if agent is not None and letter.agent != agent:
            continue
        if start is not None and (_moment(letter.finished_at) or start) < start:
            continue
        found.append(letter)
    return sorted(found, key=lambda letter: letter.finished_at or "")


def _read(path: Path) -> dict[str, Any] | None:
    """A result file's mapping, read as the task files are (bounded, safe YAML); None for
    one that cannot be read (it is not a dead letter we can replay)."""
    from orchestrator.errors import TaskRejected
    from orchestrator.safefile import read_regular
    from orchestrator.taskyaml import load_mapping

    try:
        return load_mapping(read_regular(path, MAX_RESULT_BYTES), path.name)
    except (OSError, TaskRejected):
        return None


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def _moment(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def render_failed(letters: list[DeadLetter], *, as_json: bool = False) -> str:
    if as_json:
        return json.dumps([asdict(letter) for letter in letters], indent=2)
    if not letters:
        return "no failed tasks"
    lines = []
    for letter in letters:
        when = (letter.finished_at or "-")[:19].replace("T", " ")
        first = (letter.message or "").strip().splitlines()[:1]
        said = f"{letter.kind}: {first[0][:120]}" if first else (letter.kind or "")
        lines.append(f"{letter.id}  {letter.status}  {letter.agent or '-'}  {when}  {said}")
    lines.append(f"{len(letters)} failed; `orchestrator retry --failed` re-queues them all")
    return "\n".join(lines)
