"""Handing work in from the command line: `submit` writes a task file into the inbox
(`exec`, which runs one now, is orchestrator.foreground)."""

from __future__ import annotations

import contextlib
import errno
import logging
import os
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from orchestrator.admission import weigh_justification
from orchestrator.config import Config, parse_duration, split_target, suggest
from orchestrator.engine import Engine
from orchestrator.errors import TaskRejected, UsageError
from orchestrator.policy import estimate_tokens
from orchestrator.results import dump_yaml
from orchestrator.tasks import (
    PRIORITIES,
    PRIORITY_SYNONYMS,
    Task,
    compose_prompt,
    id_problem,
    priority_of,
    read_profile,
)
from orchestrator.workdir import Workdir

if TYPE_CHECKING:
    from pathlib import Path


log = logging.getLogger(__name__)


def new_id(agent: str) -> str:
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H%M%S")
    return f"{stamp}-{agent}-{os.urandom(3).hex()}"


def check_agent(config: Config, agent: str) -> None:
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
    title: str | None = None,
    tool: str | None = None,
    model: str | None = None,
    timeout: str | None = None,
    depends_on: tuple[str, ...] = (),
    justification: str | None = None,
) -> str:
    """Write a task file into the inbox, whole and only if its id is new; return the id.

    Values are checked as the daemon reads them (priority synonyms are written as the
    priority they mean); one it would refuse is a UsageError naming the option. A task
    whose estimate is over `require_justification_over_usd` needs `justification`."""
    check_agent(config, agent)
    task_id = task_id or new_id(agent)
    if (why := id_problem(task_id)) is not None:
        raise UsageError(f"--id {task_id!r} {why}")
    doc: dict[str, object] = {"id": task_id, "agent": agent}
    if title:
        doc["title"] = title
    if task_type:
        doc["task_type"] = task_type
    if priority is not None:
        doc["priority"] = _priority(priority)
    doc.update(pins(config, tool, model))
    if timeout is not None:
        doc["timeout"] = _duration(timeout)
    if depends_on:
        doc["dependencies"] = [_dependency(dep) for dep in depends_on]
    if justification is not None:
        doc["justification"] = _text("--justification", justification)
    doc["created_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    doc["created_by"] = "orchestrator submit"
    doc["prompt"] = prompt
    _require_justification(config, doc)
    workdir = Workdir(config.root)
    workdir.ensure()
    target = workdir.inbox / f"{task_id}.yaml"
    if target.exists() or workdir.result_path(task_id).exists():
        raise UsageError(f"a task with id {task_id!r} exists already; choose another --id")
    if not create_exclusive(target, dump_yaml(doc).encode("utf-8")):
        raise UsageError(f"a task with id {task_id!r} exists already; choose another --id")
    return task_id


def _priority(value: str) -> str:
    if (priority := priority_of(value)) is None:
        synonyms = ", ".join(f"{word} ({meant})" for word, meant in PRIORITY_SYNONYMS.items())
        raise UsageError(
            f"--priority {value!a} is not a priority: use {', '.join(PRIORITIES)} "
            f"or a synonym: {synonyms}; in any case"
        )
    return priority


def pins(config: Config, tool: str | None, model: str | None) -> dict[str, str]:
    """The task's `tool` and `model`, each known to config (`--model tool:model` is split)."""
    named, name = split_target(model) if model is not None else (None, None)
    if named is not None and tool is not None and named != tool:
        raise UsageError(f"--model {model!a} names tool {named!a} but --tool is {tool!a}")
    tool = tool or named
    if tool is not None and tool not in config.tools:
        raise UsageError(f"--tool: unknown tool {tool!a}: {suggest(tool, config.tools)}")
    pins = {"tool": tool} if tool is not None else {}
    if name is None:
        return pins
    known = set(config.models).union(*(t.models for t in config.tools.values()))
    if name not in known:
        raise UsageError(
            f"--model: unknown model {name!a}: {suggest(name, known)} (models are listed "
            "under a tool in config/tools.yaml or in config/models.yaml)"
        )
    listed = config.tools[tool].models if tool is not None else []
    if listed and name not in listed and name not in config.models:
        raise UsageError(f"--model: tool {tool!a} does not list {name!a}: {suggest(name, listed)}")
    return {**pins, "model": name}


def _duration(text: str) -> str:
    try:
        parse_duration(text.strip())
    except ValueError as exc:
        raise UsageError(f"--timeout: {exc} (ms, s, m or h; a bare number is seconds)") from None
    return text.strip()


def _dependency(task_id: str) -> str:
    if (why := id_problem(task_id)) is not None:
        raise UsageError(f"--depends-on {task_id!r} {why}: give the id of a task")
    return task_id


def _text(option: str, value: str) -> str:
    if not value.strip():
        raise UsageError(f"{option} needs a text")
    return value.strip()


def needs_justification(engine: Engine, task: Task, prompt: str, why: str | None) -> str | None:
    """What makes `task` need a justification it lacks: its first attempt's estimate over
    `require_justification_over_usd` (as the daemon weighs it); None when it may go."""
    tokens = estimate_tokens(prompt)
    chain = engine.plan(task, tokens)
    if weigh_justification(engine, chain, tokens, why).refusal is None:
        return None
    threshold = engine.config.policies.budgets.require_justification_over_usd or 0.0
    estimate = engine.estimate(chain[0], tokens) or 0.0
    return (
        f"this request's estimate is ${estimate:.4f} ({chain[0].tool}:{chain[0].model}, "
        f"~{tokens} prompt tokens), over budgets.require_justification_over_usd "
        f"(${threshold:.2f}, config/policies.yaml)"
    )


def _require_justification(config: Config, doc: dict[str, object]) -> None:
    if config.policies.budgets.require_justification_over_usd is None:
        return
    try:
        task = Task.model_validate(doc)
        prompt = compose_prompt(task, config.root, "submit", read_profile(config, task.agent))
    except TaskRejected as exc:
        raise UsageError(str(exc)) from None
    engine = Engine(config, Workdir(config.root).runs)
    if (over := needs_justification(engine, task, prompt, task.justification)) is not None:
        raise UsageError(
            f"{over}: nothing was written; add --justification TEXT (why it is worth it)"
        )


# What link() says on a file system that has no hard links (some network and FAT ones).
NO_HARD_LINKS = frozenset({errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.ENOSYS})


def create_exclusive(target: Path, data: bytes) -> bool:
    """Write a new file `target` whole, or return False when it exists already.

    The data goes to a temp dotfile (which the daemon ignores) that is then hard-linked
    under the name: the link fails when the name is taken, so of two writers racing for
    one name exactly one wins, and a reader never sees a half-written file."""
    tmp = target.with_name(f".submit-{os.getpid()}-{os.urandom(4).hex()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
        finally:
            os.close(fd)
        try:
            os.link(tmp, target)
        except OSError as exc:
            if exc.errno not in NO_HARD_LINKS:
                raise
            if target.exists():  # racy, as well as a file system without links allows
                return False
            os.replace(tmp, target)
    except FileExistsError:
        return False
    except OSError as exc:  # os.write names no file: say which one could not be written
        if exc.filename is None:
            raise OSError(exc.errno, exc.strerror, str(target)) from exc
        raise
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
    return True
