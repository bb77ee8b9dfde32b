"""Handing work in from the command line: `submit` (a task file) and `exec` (run now)."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from orchestrator.config import Config, suggest
from orchestrator.errors import UsageError
from orchestrator.execute import Engine, execute
from orchestrator.tasks import Result, Task, dump_yaml, id_problem
from orchestrator.workdir import Workdir, atomic_write

if TYPE_CHECKING:
    from pathlib import Path


def new_id(agent: str) -> str:
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H%M%S")
    return f"{stamp}-{agent}-{os.urandom(3).hex()}"


def _check_agent(config: Config, agent: str) -> None:
    if agent not in config.agents:
        raise UsageError(f"unknown agent {agent!r}: {suggest(agent, config.agents)}")


def submit(
    config: Config,
    *,
    agent: str,
    prompt: str,
    task_type: str | None = None,
    priority: str | None = None,
    task_id: str | None = None,
) -> str:
    """Write a task file atomically into the inbox; return its id."""
    _check_agent(config, agent)
    task_id = task_id or new_id(agent)
    if (why := id_problem(task_id)) is not None:
        raise UsageError(f"--id {task_id!r} {why}")
    workdir = Workdir(config.root)
    workdir.ensure()
    target = workdir.inbox / f"{task_id}.yaml"
    if target.exists() or workdir.result_path(task_id).exists():
        raise UsageError(f"a task with id {task_id!r} exists already; choose another --id")
    doc: dict[str, object] = {"id": task_id, "agent": agent}
    if task_type:
        doc["task_type"] = task_type
    if priority:
        doc["priority"] = priority
    doc["created_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    doc["created_by"] = "orchestrator submit"
    doc["prompt"] = prompt
    atomic_write(target, dump_yaml(doc).encode("utf-8"), durable=False)
    return task_id


async def exec_task(config: Config, agent: str, prompt: str, contexts: list[Path]) -> Result:
    """Run one task now, through the same routing and execution as the daemon."""
    _check_agent(config, agent)
    parts = [prompt.strip()]
    for path in contexts:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"--context {path}: {exc}") from None
        parts.append(f"## {path}\n\n{text.strip()}")
    full_prompt = "\n\n".join(parts) + "\n"
    workdir = Workdir(config.root)
    workdir.runs.mkdir(parents=True, exist_ok=True)
    task = Task(id=f"exec-{new_id(agent)}", agent=agent, prompt=full_prompt)
    return await execute(Engine(config, workdir.runs), task, full_prompt)
