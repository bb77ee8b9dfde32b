"""AT-3: a missing preferred tool gives way to the next in the chain; a spent chain fails.

Two steps check what `exec` prints on stderr: one line per fallback ("… trying
tool:model") and, when the chain is spent, a listing of every attempt.
"""

from __future__ import annotations

from pytest_bdd import parsers, scenarios, then

from tests.acceptance.conftest import table
from tests.acceptance.world import World
from tests.conftest import result

scenarios("features/at3_fallback.feature")


@then(
    parsers.parse(
        'exec warned on stderr, in one line, that "{failed}" gave way and it is "{trying}"'
    )
)
def fallback_line(world: World, failed: str, trying: str) -> None:
    lines = [line for line in world.last.stderr.splitlines() if "trying" in line]
    assert len(lines) == 1, world.explain()
    assert failed in lines[0], world.explain()
    assert trying in lines[0], world.explain()


@then("exec listed on stderr every attempt of the exhausted chain:")
def attempts_listed(world: World, datatable: list[list[str]]) -> None:
    """After the error line, each attempt on a line of its own as tool:model, in order."""
    lines = world.last.stderr.splitlines()
    errors = [i for i, line in enumerate(lines) if line.startswith("error:")]
    assert errors, world.explain()
    position = errors[0] + 1
    for row in table(datatable):
        name = f"{row['tool']}:{row['model']}"
        found = [i for i, line in enumerate(lines) if i >= position and name in line]
        assert found, f"no line for {name} after the error, in order\n{world.explain()}"
        position = found[0] + 1


@then(parsers.parse('the attempts in the result file of "{task_id}" are:'))
def result_attempts(world: World, task_id: str, datatable: list[list[str]]) -> None:
    attempts = result(world.root, task_id)["attempts"]
    actual = [{key: str(a[key]) for key in ("tool", "model", "outcome")} for a in attempts]
    assert actual == table(datatable)
