"""Routing is a pure function: a table of cases."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from orchestrator.config import load_config
from orchestrator.routing import route
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
