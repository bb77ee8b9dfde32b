"""Fuzzing the task parser: any input gives a Task or a clear TaskRejected, nothing else."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orchestrator.config import Config, load_config
from orchestrator.errors import TaskRejected
from orchestrator.results import dump_yaml
from orchestrator.tasks import Task, compose_prompt, load_mapping, parse_task
from tests.conftest import base_config, write_config

FIELDS = [
    "id", "agent", "title", "description", "artefacts", "artifacts", "priority", "task_type",
    "prompt", "prompt_file", "context", "context_files", "dependencies", "tool", "model",
    "timeout", "budget_usd", "chain_id", "on_dependency_failure", "retry", "handoff_depth",
    "previous_output", "result", "status", "mode",
]  # fmt: skip

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=40),
    st.sampled_from(["worker", "high", "15m", "../x", "fake", "fake-large", "-1", "1e9"]),
)  # fmt: skip
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=12,
)  # fmt: skip
documents = st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=10), values, max_size=8)


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Config:
    root = tmp_path_factory.mktemp("fuzz")
    write_config(root, base_config())
    (root / "notes.md").write_text("notes\n")
    return load_config(root)


def check(config: Config, data: bytes) -> None:
    try:
        task = parse_task(load_mapping(data, "f.yaml"), "f", "f.yaml", config)
        assert isinstance(task, Task)
        compose_prompt(task, config.root, "f.yaml")
        dump_yaml({"task": task.extra_fields()})  # what a result would carry
    except TaskRejected as rejected:
        assert rejected.kind and rejected.message and rejected.hint is not None


def check_document(config: Config, doc: dict[str, Any]) -> None:
    """A generated mapping, as a task file would carry it (when YAML can write it)."""
    try:
        data = yaml.safe_dump(doc, allow_unicode=True).encode("utf-8", "surrogateescape")
    except (yaml.YAMLError, UnicodeEncodeError):
        return
    check(config, data)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300))
def test_any_bytes(config: Config, data: bytes) -> None:
    check(config, data)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents)
def test_any_mapping(config: Config, doc: dict[str, Any]) -> None:
    check_document(config, doc)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents.map(lambda d: {"agent": "worker", **d}))
def test_mappings_with_a_valid_agent(config: Config, doc: dict[str, Any]) -> None:
    check_document(config, doc)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_any_text(config: Config, text: str) -> None:
    check(config, text.encode("utf-8", "surrogatepass"))
