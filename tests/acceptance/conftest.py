"""Steps shared by the acceptance features (AT-1..AT-8 of the LLM Service Layer prestudy).

Each step drives the installed `orchestrator` command on a real workspace (tests/conftest.py's
`workspace` fixture and helpers); the tools are small Python programs that log their argv.
"""

from __future__ import annotations

import math
import shlex
import shutil
from typing import TYPE_CHECKING, Any

import pytest
from pytest_bdd import given, parsers, then, when

from tests.acceptance.world import TASK, World, prompt_of
from tests.conftest import base_config, drop_task, result

if TYPE_CHECKING:
    from pathlib import Path


@pytest.fixture
def world(workspace: Path) -> World:
    return World(root=workspace, config=base_config(), log=workspace.parent / "argv.jsonl")


def table(datatable: list[list[str]]) -> list[dict[str, str]]:
    """A data table's rows as dicts keyed by its header row."""
    header, *rows = datatable
    return [dict(zip(header, row, strict=True)) for row in rows]


def same(actual: Any, expected: str) -> bool:
    """A value read back (from YAML, JSON or SQLite) against a table cell: numbers within
    a millionth of a dollar, everything else as text."""
    if isinstance(actual, float | int) and not isinstance(actual, bool):
        return math.isclose(float(actual), float(expected), abs_tol=1e-6)
    return str(actual) == expected


def task_id_of_last_call(world: World) -> str:
    rows = world.invocations()
    assert rows, "no invocation in telemetry"
    return str(rows[-1]["task_id"])


# --- Given -----------------------------------------------------------------------------


@given("a workspace whose tools log their argv:")
def tools_that_log(world: World, datatable: list[list[str]]) -> None:
    by_tool: dict[str, list[str]] = {}
    for row in table(datatable):
        by_tool.setdefault(row["tool"], []).append(row["model"])
        prices = {"input": float(row["input $/Mtok"]), "output": float(row["output $/Mtok"])}
        world.models[row["model"]] = {"provider": "test", "price_per_mtok": prices}
    for name, models in by_tool.items():
        world.add_tool(name, models)


@given(parsers.parse('the agent "{agent}" prefers the tool "{tool}" with the model "{model}"'))
def prefers(world: World, agent: str, tool: str, model: str) -> None:
    world.agent(agent).update(preferred_tool=tool, preferred_model=model)


@given(parsers.parse('the agent "{agent}" falls back to "{targets}"'))
def falls_back(world: World, agent: str, targets: str) -> None:
    world.agent(agent)["fallback_chain"] = [t.strip() for t in targets.split(",")]


@given(parsers.parse('the agent "{agent}" runs "{task_type}" tasks on "{target}"'))
def task_type_target(world: World, agent: str, task_type: str, target: str) -> None:
    world.agent(agent).setdefault("task_types", {})[task_type] = target


@given(parsers.parse('the tool "{tool}" is not installed'))
def not_installed(world: World, tool: str) -> None:
    world.tools[tool]["binary"] = f"not-an-installed-{tool}-cli"


@given(parsers.parse('the tool "{tool}" exits with code {code:d}'))
def exits_with(world: World, tool: str, code: int) -> None:
    world.tools[tool]["args"] += ["--exit-code", str(code)]


@given(
    parsers.parse('the task "{task_id}" for "{agent}" is in the inbox with the prompt "{prompt}"')
)
def task_in_inbox(world: World, task_id: str, agent: str, prompt: str) -> None:
    drop_task(world.root, f"{task_id}.yaml", {"id": task_id, "agent": agent, "prompt": prompt})


@given(
    parsers.parse(
        'the task "{task_id}" for "{agent}" is in the inbox with a prompt of {tokens:d} tokens'
    )
)
def sized_task_in_inbox(world: World, task_id: str, agent: str, tokens: int) -> None:
    task_in_inbox(world, task_id, agent, prompt_of(tokens))


@given("the workspace has no config folder")
def no_config(world: World) -> None:
    shutil.rmtree(world.root / "config")
    world.writes_config = False


# --- When ------------------------------------------------------------------------------


@when(parsers.parse('I run "orchestrator {command}"'))
def run_command(world: World, command: str) -> None:
    world.run(*shlex.split(command))


@when(parsers.parse('I exec a task for "{agent}" with the prompt "{prompt}"'))
def exec_prompt(world: World, agent: str, prompt: str) -> None:
    world.run("exec", "--agent", agent, "--prompt", prompt)


@when(parsers.parse('I exec a task for "{agent}" with a prompt of {tokens:d} tokens'))
def exec_sized(world: World, agent: str, tokens: int) -> None:
    exec_prompt(world, agent, prompt_of(tokens))


@when("the daemon drains the inbox")
def drain(world: World) -> None:
    done = world.run("run", "--once")
    assert done.returncode == 0, world.explain()


# --- Then ------------------------------------------------------------------------------


@then("the command succeeds")
def succeeds(world: World) -> None:
    assert world.last.returncode == 0, world.explain()


@then(parsers.parse("the command fails with exit code {code:d}"))
def fails_with(world: World, code: int) -> None:
    assert world.last.returncode == code, world.explain()


@then(parsers.parse('stdout says "{text}"'))
def stdout_says(world: World, text: str) -> None:
    assert text in world.last.stdout, world.explain()


@then(parsers.parse('stderr says "{text}"'))
def stderr_says(world: World, text: str) -> None:
    assert text in world.last.stderr, world.explain()


@then("the tools were called with exactly these argv:")
def called_with(world: World, datatable: list[list[str]]) -> None:
    """`$TASK` in an expected argv is the id of the task of the last telemetry row."""
    expected = [row["argv"] for row in table(datatable)]
    if any(TASK in argv for argv in expected):
        task_id = task_id_of_last_call(world)
        expected = [argv.replace(TASK, task_id) for argv in expected]
    assert world.calls() == [shlex.split(argv) for argv in expected], world.explain()


@then(parsers.parse("the tools were called {count:d} times"))
def called_times(world: World, count: int) -> None:
    assert len(world.calls()) == count, world.calls()


@then(parsers.parse("the telemetry holds {count:d} invocations"))
def invocation_count(world: World, count: int) -> None:
    assert len(world.invocations()) == count, world.invocations()


@then("the last invocation in telemetry has:")
def last_invocation(world: World, datatable: list[list[str]]) -> None:
    rows = world.invocations()
    assert rows, "no invocation in telemetry"
    for row in table(datatable):
        actual = rows[-1][row["column"]]
        assert same(actual, row["value"]), f"{row['column']}: {actual!r} in {rows[-1]}"


@then(parsers.parse('the result file of "{task_id}" has:'))
def result_has(world: World, task_id: str, datatable: list[list[str]]) -> None:
    found = result(world.root, task_id)
    for row in table(datatable):
        actual = found.get(row["field"])
        assert same(actual, row["value"]), f"{row['field']}: {actual!r} in {found}"


@then(parsers.parse('stderr suggests "{name}"'))
def suggests(world: World, name: str) -> None:
    """The valid name is offered on a line that reads as a suggestion."""
    lines = [line for line in world.last.stderr.splitlines() if name in line]
    assert any(
        word in line.lower() for line in lines for word in ("did you mean", "valid", "known")
    ), world.explain()
