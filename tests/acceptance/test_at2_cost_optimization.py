"""AT-2: prompts under the threshold go to the cheap model; the reason is recorded."""

from __future__ import annotations

from pytest_bdd import given, parsers, scenarios

from tests.acceptance.world import World
from tests.conftest import drop_task

scenarios("features/at2_cost_optimization.feature")


@given(parsers.parse('prompts under {tokens:d} tokens go to the cheap model "{target}"'))
def cheap_under(world: World, tokens: int, target: str) -> None:
    world.policies["cost_optimization"] = {
        "simple_task_threshold_tokens": tokens,
        "simple_task_models": [target],
    }


@given(parsers.parse('the task "{task_id}" for "{agent}" pinned to "{model}" is in the inbox'))
def pinned_task(world: World, task_id: str, agent: str, model: str) -> None:
    task = {"id": task_id, "agent": agent, "model": model, "prompt": "A short one."}
    drop_task(world.root, f"{task_id}.yaml", task)
