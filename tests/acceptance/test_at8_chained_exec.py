"""AT-8: three `exec` runs chained through --context/--output files share one chain_id."""

from __future__ import annotations

from pytest_bdd import parsers, scenarios, then, when

from tests.acceptance.world import World

scenarios("features/at8_chained_exec.feature")


@when(parsers.parse('I exec "{prompt}" for "{agent}" with --output "{output}"'))
def exec_to_file(world: World, prompt: str, agent: str, output: str) -> None:
    args = ["exec", "--agent", agent, "--prompt", prompt, "--output", str(world.file(output))]
    done = world.run(*args)
    assert done.returncode == 0, world.explain()


@when(
    parsers.parse(
        'I exec "{prompt}" for "{agent}" with --context "{context}" and --output "{output}"'
    )
)
def exec_chained(world: World, prompt: str, agent: str, context: str, output: str) -> None:
    args = ["exec", "--agent", agent, "--prompt", prompt]
    args += ["--context", str(world.file(context)), "--output", str(world.file(output))]
    done = world.run(*args)
    assert done.returncode == 0, world.explain()


@then(parsers.parse('the files "{first}", "{second}" and "{third}" are written'))
def written(world: World, first: str, second: str, third: str) -> None:
    for name in (first, second, third):
        assert world.file(name).is_file(), name


@then(parsers.parse('the file "{name}" says "{text}"'))
def file_says(world: World, name: str, text: str) -> None:
    content = world.file(name).read_text()
    assert text in content, content


@then("the invocations in telemetry share one chain_id")
def one_chain(world: World) -> None:
    chains = {row["chain_id"] for row in world.invocations()}
    assert len(chains) == 1 and None not in chains, chains


@then(parsers.parse("the invocations in telemetry have {count:d} different chain_ids"))
def chains(world: World, count: int) -> None:
    found = {row["chain_id"] for row in world.invocations()}
    assert len(found) == count and None not in found, found
