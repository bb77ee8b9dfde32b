"""AT-5: a telemetry row per invocation; `stats --daily` groups the rows and their cost."""

from __future__ import annotations

import json
from datetime import datetime

from pytest_bdd import parsers, scenarios, then

from tests.acceptance.conftest import same, table
from tests.acceptance.world import World

scenarios("features/at5_telemetry.feature")


@then("the last invocation in telemetry took a measured time")
def latency(world: World) -> None:
    row = world.invocations()[-1]
    started = datetime.fromisoformat(row["started_at"])
    ended = datetime.fromisoformat(row["ended_at"])
    assert row["duration_ms"] > 0, row  # a Python process takes some milliseconds
    assert started <= ended, row


@then("the JSON report has these rows:")
def json_rows(world: World, datatable: list[list[str]]) -> None:
    report = json.loads(world.last.stdout)
    expected = table(datatable)
    key = next(iter(expected[0]))  # the grouping column comes first
    by_group = {row[key]: row for row in report}
    assert sorted(by_group) == sorted(row[key] for row in expected), report
    for row in expected:
        for column, value in row.items():
            actual = by_group[row[key]][column]
            assert same(actual, value), f"{row[key]} {column}: {actual!r} in {report}"


@then(
    parsers.parse(
        'the text report has a line for "{group}" with {count:d} invocations costing "{cost}"'
    )
)
def text_line(world: World, group: str, count: int, cost: str) -> None:
    """A line of the report names the group, its number of invocations and its cost."""
    for line in world.last.stdout.splitlines():
        cells = line.split()
        if group in cells and str(count) in cells and cost in cells:
            return
    raise AssertionError(f"no line for {group}\n{world.explain()}")
