"""Routing is a pure function: a table of cases."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from orchestrator.config import load_config
from orchestrator.routing import MAX_SUCCESSORS, route, successors
from tests.conftest import base_config, write_config

if TYPE_CHECKING:
    from pathlib import Path


@pytest.fixture
def config(tmp_path: Path) -> Any:
    files = base_config()
    tools = files["tools.yaml"]["tools"]
    tools["other"] = {"adapter": "generic", "binary": "other", "models": ["o-1", "shared"]}
    tools["fake"]["models"].append("shared")
    files["agents.yaml"]["agents"]["router"] = {
        "preferred_tool": "fake",
        "preferred_model": "fake-large",
        "task_types": {"docs": "fake-small", "review": "other:o-1", "mixed": "o-1"},
        "fallback_chain": ["other:o-1", "fake:fake-large", "other", "fake-small"],
    }
    write_config(tmp_path, files)
    return load_config(tmp_path)


def steps(config: Any, **kwargs: Any) -> list[tuple[str, str | None, str]]:
    return [(a.tool, a.model, a.reason) for a in route(config, "router", **kwargs)]


CASES = [
    (
        {},
        [
            ("fake", "fake-large", "preferred"),
            ("other", "o-1", "fallback"),
            ("fake", "fake-small", "fallback"),
        ],
    ),
    (
        {"task_type": "docs"},
        [
            ("fake", "fake-small", "task_type"),
            ("fake", "fake-large", "preferred"),
            ("other", "o-1", "fallback"),
        ],
    ),
    (
        {"task_type": "review"},
        [
            ("other", "o-1", "task_type"),
            ("fake", "fake-large", "preferred"),
            ("fake", "fake-small", "fallback"),
        ],
    ),
    # a bare model the preferred tool does not list goes to the first tool listing it
    (
        {"task_type": "mixed"},
        [
            ("other", "o-1", "task_type"),
            ("fake", "fake-large", "preferred"),
            ("fake", "fake-small", "fallback"),
        ],
    ),
    (
        {"task_type": "unknown-type"},
        [
            ("fake", "fake-large", "preferred"),
            ("other", "o-1", "fallback"),
            ("fake", "fake-small", "fallback"),
        ],
    ),
    (
        {"tool": "other"},
        [
            ("other", "o-1", "pinned"),
            ("fake", "fake-large", "preferred"),
            ("fake", "fake-small", "fallback"),
        ],
    ),
    (
        {"model": "fake-small"},
        [
            ("fake", "fake-small", "pinned"),
            ("fake", "fake-large", "preferred"),
            ("other", "o-1", "fallback"),
        ],
    ),
    # a bare model both tools list goes with the preferred tool
    (
        {"model": "shared"},
        [
            ("fake", "shared", "pinned"),
            ("fake", "fake-large", "preferred"),
            ("other", "o-1", "fallback"),
            ("fake", "fake-small", "fallback"),
        ],
    ),
    (
        {"model": "other:shared"},
        [
            ("other", "shared", "pinned"),
            ("fake", "fake-large", "preferred"),
            ("other", "o-1", "fallback"),
            ("fake", "fake-small", "fallback"),
        ],
    ),
    (
        {"tool": "other", "model": "shared"},
        [
            ("other", "shared", "pinned"),
            ("fake", "fake-large", "preferred"),
            ("other", "o-1", "fallback"),
            ("fake", "fake-small", "fallback"),
        ],
    ),
    (
        {"cheap_model": "fake-small"},
        [
            ("fake", "fake-small", "cost_optimization"),
            ("fake", "fake-large", "preferred"),
            ("other", "o-1", "fallback"),
        ],
    ),
]


@pytest.mark.parametrize(("kwargs", "expected"), CASES)
def test_route(config: Any, kwargs: dict[str, Any], expected: list[Any]) -> None:
    assert steps(config, **kwargs) == expected


def test_agent_without_model_uses_tool_default(config: Any) -> None:
    assert [(a.tool, a.model) for a in route(config, "chain-missing")] == [
        ("missing", "fake-large"),
        ("fake", "fake-small"),
    ]


# --- deprecated models: routed to their successor ----------------------------------------


@pytest.fixture
def retired(tmp_path: Path) -> Any:
    """Agent `router` names `old` everywhere routing picks a model; `old` → `mid` → `new`
    (which only tool `other` lists); `alone` is deprecated with no successor; `loop-a` and
    `loop-b` supersede each other (added after loading: `config validate` refuses loops,
    routing must still end on one)."""
    files = base_config()
    tools = files["tools.yaml"]["tools"]
    tools["fake"]["models"] += ["old", "mid", "alone", "loop-a", "loop-b", "stale"]
    tools["other"] = {"adapter": "generic", "binary": "other", "models": ["new", "o-1"]}
    models = files["models.yaml"]["models"]
    models["old"] = {"provider": "test", "deprecated": True, "superseded_by": "mid"}
    models["mid"] = {"provider": "test", "deprecated": True, "superseded_by": "new"}
    models["new"] = {"provider": "test"}
    models["stale"] = {"provider": "test", "deprecated": True, "superseded_by": "fake-small"}
    models["alone"] = {"provider": "test", "deprecated": True}
    models["loop-a"] = {"provider": "test"}
    models["loop-b"] = {"provider": "test"}
    files["agents.yaml"]["agents"]["router"] = {
        "preferred_tool": "fake",
        "preferred_model": "stale",
        "task_types": {"docs": "old", "solo": "alone", "loop": "fake:loop-a"},
        "fallback_chain": ["fake:old", "fake-large", "new"],
    }
    write_config(tmp_path, files)
    config = load_config(tmp_path)
    return with_models(
        config,
        **{
            "loop-a": {"deprecated": True, "superseded_by": "loop-b"},
            "loop-b": {"deprecated": True, "superseded_by": "loop-a"},
        },
    )


def with_models(config: Any, **changes: dict[str, Any]) -> Any:
    """`config` with models changed or added, past the checks of loading."""
    models = dict(config.models)
    for name, fields in changes.items():
        models[name] = (models.get(name) or models["new"]).model_copy(update=fields)
    return config.model_copy(update={"models": models})


STALE = "stale is deprecated: superseded by fake-small"
OLD = "old is deprecated: superseded by new (via mid)"

RETIRED_CASES = [
    # preferred: the successor keeps the tool that lists it; a fallback `fake:old` goes to
    # `other`, the first tool listing `new`; the plain `new` entry is then a duplicate
    (
        {},
        [
            ("fake", "fake-small", f"preferred ({STALE})"),
            ("other", "new", f"fallback ({OLD})"),
            ("fake", "fake-large", "fallback"),
        ],
    ),
    (
        {"task_type": "docs"},
        [
            ("other", "new", f"task_type ({OLD})"),
            ("fake", "fake-small", f"preferred ({STALE})"),
            ("fake", "fake-large", "fallback"),
        ],
    ),
    # deprecated with no successor: used as it is, and said so
    (
        {"task_type": "solo"},
        [
            ("fake", "alone", "task_type (alone is deprecated, with no superseded_by)"),
            ("fake", "fake-small", f"preferred ({STALE})"),
            ("other", "new", f"fallback ({OLD})"),
            ("fake", "fake-large", "fallback"),
        ],
    ),
    # a loop ends at the last model before it comes round again
    (
        {"task_type": "loop"},
        [
            (
                "fake",
                "loop-b",
                "task_type (loop-a is deprecated: superseded by loop-b; superseded_by "
                "loops from loop-b back to loop-a: fix config/models.yaml)",
            ),
            ("fake", "fake-small", f"preferred ({STALE})"),
            ("other", "new", f"fallback ({OLD})"),
            ("fake", "fake-large", "fallback"),
        ],
    ),
    (
        {"model": "old"},
        [
            ("other", "new", f"pinned ({OLD})"),
            ("fake", "fake-small", f"preferred ({STALE})"),
            ("fake", "fake-large", "fallback"),
        ],
    ),
    (
        {"tool": "fake", "model": "mid"},
        [
            ("other", "new", "pinned (mid is deprecated: superseded by new)"),
            ("fake", "fake-small", f"preferred ({STALE})"),
            ("fake", "fake-large", "fallback"),
        ],
    ),
    (
        {"cheap_model": "fake:old"},
        [
            ("other", "new", f"cost_optimization ({OLD})"),
            ("fake", "fake-small", f"preferred ({STALE})"),
            ("fake", "fake-large", "fallback"),
        ],
    ),
]


@pytest.mark.parametrize(("kwargs", "expected"), RETIRED_CASES)
def test_deprecated_models_route_to_their_successor(
    retired: Any, kwargs: dict[str, Any], expected: list[Any]
) -> None:
    found = [(a.tool, a.model, a.why) for a in route(retired, "router", **kwargs)]
    assert found == expected


def test_a_successor_names_both_models_in_its_warning(retired: Any) -> None:
    first = route(retired, "router", model="old")[0]
    assert first.reason == "pinned"  # telemetry's route_reason keeps its plain word
    assert "model old is deprecated: new was used instead (via mid)" in first.warning


def test_a_long_superseded_by_chain_is_cut_short(retired: Any) -> None:
    """200 models each superseded by the next: routing follows at most MAX_SUCCESSORS."""
    chain = {f"m{n}": {"deprecated": True, "superseded_by": f"m{n + 1}"} for n in range(200)}
    config = with_models(retired, **chain)
    assert successors(config, "m0") == [f"m{n}" for n in range(MAX_SUCCESSORS + 1)]
    first = route(config, "router", tool="fake", model="m0")[0]
    assert first.model == f"m{MAX_SUCCESSORS}"
    assert "superseded_by chains on past" in first.note
