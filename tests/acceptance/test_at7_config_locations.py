"""AT-7: config read from the user's folder or ORCHESTRATOR_CONFIG_DIR, the workspace's
config/ merged over it. In expected text, USER stands for the user config folder, FILES for
the scenario's folder beside the workspace and WORKSPACE for the workspace."""

from __future__ import annotations

import shutil
from typing import TYPE_CHECKING

import yaml
from pytest_bdd import given, parsers, scenarios, then, when

from tests.conftest import cli_env, orchestrator, write_config

if TYPE_CHECKING:
    from pathlib import Path

    from tests.acceptance.world import World

scenarios("features/at7_config_locations.feature")


def user_folder(world: World) -> Path:
    """The user config folder of the HOME the command runs with (tests/conftest.py)."""
    return world.root.parent / "home" / ".config" / "orchestrator"


def expand(world: World, text: str) -> str:
    return (
        text.replace("USER", str(user_folder(world)))
        .replace("FILES", str(world.file("x").parent))
        .replace("WORKSPACE", str(world.root))
    )


def move_config(world: World, folder: Path) -> None:
    """The scenario's config, as built so far, written to `folder`; none in the workspace."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in world.config.items():
        (folder / name).write_text(yaml.safe_dump(data, sort_keys=False))
    shutil.rmtree(world.root / "config", ignore_errors=True)
    world.writes_config = False


@given("the configuration is kept in the user config folder")
def in_user_folder(world: World) -> None:
    move_config(world, user_folder(world))


@given(parsers.parse('the configuration is kept in the folder "{name}"'))
def in_named_folder(world: World, name: str) -> None:
    move_config(world, world.file(name))


@given(parsers.parse('the workspace\'s config/agents.yaml gives "{agent}" the model "{model}"'))
def workspace_override(world: World, agent: str, model: str) -> None:
    write_config(world.root, {"agents.yaml": {"agents": {agent: {"preferred_model": model}}}})


@when(parsers.parse('I run "orchestrator {command}" with ORCHESTRATOR_CONFIG_DIR set to "{name}"'))
def run_with_config_dir(world: World, command: str, name: str) -> None:
    extra = {"ORCHESTRATOR_CONFIG_DIR": str(world.file(name))}
    env = cli_env(world.root.parent, extra)
    world.runs.append(orchestrator(world.root, *command.split(), env=env))


@then(parsers.parse('stdout says "{text}"'))
def stdout_says(world: World, text: str) -> None:
    assert expand(world, text) in world.last.stdout, world.explain()


@then(parsers.parse('stderr says "{text}"'))
def stderr_says(world: World, text: str) -> None:
    assert expand(world, text) in world.last.stderr, world.explain()
