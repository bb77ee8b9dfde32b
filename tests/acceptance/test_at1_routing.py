"""AT-1: an agent's task runs on its preferred tool and model, or on its task type's."""

from __future__ import annotations

from pytest_bdd import parsers, scenarios, when

from tests.acceptance.world import World

scenarios("features/at1_routing.feature")


@when(
    parsers.parse(
        'I submit a "{task_type}" task "{task_id}" for "{agent}" with the prompt "{prompt}"'
    )
)
def submit(world: World, task_type: str, task_id: str, agent: str, prompt: str) -> None:
    done = world.run(
        "submit", "--agent", agent, "--prompt", prompt, "--task-type", task_type, "--id", task_id
    )
    assert done.returncode == 0, world.explain()
    assert done.stdout.strip() == task_id
