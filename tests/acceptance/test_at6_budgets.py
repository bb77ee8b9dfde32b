"""AT-6: budgets warn at warn_at_percent and, in mode hard, block the task.

`exec`'s side (a warning on stderr, a refusal that runs nothing) is checked by the steps
named "exec warned on stderr …" and "exec said on stderr … blocks the task".
"""

from __future__ import annotations

import re

from pytest_bdd import given, parsers, scenarios, then

from tests.acceptance.world import World
from tests.conftest import result

scenarios("features/at6_budgets.feature")


@given(parsers.parse('a "{mode}" daily budget of ${limit:g} that warns at {percent:d}%'))
def daily_budget(world: World, mode: str, limit: float, percent: int) -> None:
    world.policies["budgets"] = {"daily_usd": limit, "warn_at_percent": percent, "mode": mode}


@given(parsers.parse('"{agent}" already spent ${cost:g} today on "{prompt}"'))
def spent(world: World, agent: str, cost: float, prompt: str) -> None:
    done = world.run("exec", "--agent", agent, "--prompt", prompt)
    assert done.returncode == 0, world.explain()
    recorded = sum(row["cost_usd"] for row in world.invocations())
    assert abs(recorded - cost) < 1e-9, world.invocations()


@then(parsers.parse('the error in the result file of "{task_id}" mentions "{text}"'))
def error_mentions(world: World, task_id: str, text: str) -> None:
    error = result(world.root, task_id)["error"]
    assert text in error["message"], error


def budget_lines(world: World) -> list[str]:
    return [line for line in world.last.stderr.splitlines() if "budget" in line.lower()]


@then(
    parsers.parse(
        "exec warned on stderr that the daily budget of ${limit} is at {percent:d}% or more"
    )
)
def warned(world: World, limit: str, percent: int) -> None:
    """A line names the daily budget, its limit and how much of it is used, in percent."""
    for line in budget_lines(world):
        used = [int(p) for p in re.findall(r"(\d+)%", line)]
        if "daily" in line and f"${limit}" in line and any(p >= percent for p in used):
            return
    raise AssertionError(f"no budget warning at {percent}%\n{world.explain()}")


@then("stderr says nothing about a budget")
def no_budget_word(world: World) -> None:
    assert not budget_lines(world), world.explain()


@then(parsers.parse("exec said on stderr that the daily budget of ${limit} blocks the task"))
def refused(world: World, limit: str) -> None:
    lines = [line for line in budget_lines(world) if "daily" in line and f"${limit}" in line]
    assert lines, world.explain()
