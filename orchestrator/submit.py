"""Handing work in from the command line: `submit` (a task file) and `exec` (run now)."""

from __future__ import annotations

import contextlib
import hashlib
import os
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import anyio

from orchestrator.config import Config, suggest
from orchestrator.errors import UsageError
from orchestrator.execute import Engine, execute
from orchestrator.tasks import Result, Task, compose_prompt, dump_yaml, id_problem
from orchestrator.telemetry.store import chain_of, connect, record_output
from orchestrator.telemetry.writer import TelemetryWriter
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


async def exec_task(
    config: Config,
    agent: str,
    prompt: str,
    contexts: list[Path],
    output: Path | None = None,
    chain: str | None = None,
) -> Result:
    """Run one task now, through the same routing, policy and telemetry as the daemon.

    Context files are appended to the prompt. A context file that an earlier `exec
    --output` wrote puts this task in that task's chain (same chain id in telemetry).
    """
    _check_agent(config, agent)
    parts = [prompt.strip()]
    digests = []
    for path in contexts:
        try:
            data = path.read_bytes()
            text = data.decode("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"--context {path}: {exc}") from None
        digests.append(hashlib.sha256(data).hexdigest())
        parts.append(f"## {path}\n\n{text.strip()}")
    workdir = Workdir(config.root)
    workdir.runs.mkdir(parents=True, exist_ok=True)
    db_path = workdir.work / "telemetry.db"
    task_id = f"exec-{new_id(agent)}"
    with contextlib.closing(connect(db_path)) as db:
        chain = chain or next(filter(None, (chain_of(db, d) for d in digests)), None) or task_id
    task = Task(id=task_id, agent=agent, prompt="\n\n".join(parts) + "\n", chain_id=chain)
    profile_file = config.agents[agent].profile
    profile = (config.root / profile_file).read_text(encoding="utf-8") if profile_file else None
    full_prompt = compose_prompt(task, config.root, "exec", profile)
    telemetry = TelemetryWriter(db_path, zone=config.policies.budgets.timezone)
    async with anyio.create_task_group() as tg:
        tg.start_soon(telemetry.run)
        engine = Engine(config, workdir.runs, telemetry=telemetry)
        result = await execute(engine, task, full_prompt)
        engine.remove_run_dirs()
        telemetry.close()
    if output is not None and result.status == "succeeded":
        data = (result.output or "").encode("utf-8")
        atomic_write(output, data, durable=False)
        with contextlib.closing(connect(db_path)) as db:
            record_output(db, hashlib.sha256(data).hexdigest(), str(output), task_id, chain)
    return result
