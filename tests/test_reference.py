"""docs/reference/: the pages are the generated text, every key has a description, the
examples load with the real loader, the lists of words (statuses, error kinds, ...) are
the ones the code writes, and a real result file has no key the page leaves out."""

from __future__ import annotations

import ast
import typing
from pathlib import Path
from typing import Any

import pytest
import yaml

from orchestrator import configagents, configpolicies
from orchestrator.adapters.base import ErrorKind
from orchestrator.config import Strict, load_config
from orchestrator.configdirs import CONFIG_FILES, OPTIONAL_FILES, locate
from orchestrator.reference import config as config_page
from orchestrator.reference import config_reference, tasks_reference
from orchestrator.reference import tasks as tasks_page
from orchestrator.reference.tables import keys_of, seconds, type_name
from orchestrator.results import AttemptRecord, Result
from orchestrator.routing import RouteReason
from orchestrator.tasks import Context, Dependency, Task
from orchestrator.values import Duration, IdleTimeout
from orchestrator.workflow import HANDOFF_KEYS
from tests.conftest import REPO, drop_task, orchestrator, results
from tests.test_isolation import make_repo

PAGES = {
    "config": (REPO / "docs" / "reference" / "config.md", config_reference, config_page.COMMAND),
    "tasks": (REPO / "docs" / "reference" / "tasks.md", tasks_reference, tasks_page.COMMAND),
}
SOURCES = [REPO / "orchestrator", *REPO.glob("plugins/*/orchestrator_*")]


@pytest.mark.parametrize("page", PAGES)
def test_the_page_is_the_generated_text(page: str, tmp_path: Path) -> None:
    path, render, command = PAGES[page]
    assert path.name in command
    assert path.is_file(), f"{path} is missing: run `{command}`"
    printed = orchestrator(tmp_path, "config", "reference", page)  # the command's own output
    assert printed.returncode == 0, printed.stderr
    assert printed.stdout == render()
    assert path.read_text(encoding="utf-8") == printed.stdout, (
        f"{path.relative_to(REPO)} is stale: run `{command}`"
    )


def _strict_models() -> list[type[Strict]]:
    found, stack = [], [Strict]
    while stack:
        model = stack.pop()
        found.append(model)
        stack += model.__subclasses__()
    return found


def test_every_key_of_every_model_has_a_description() -> None:
    models: list[type] = [*_strict_models(), Task, Dependency, Context, Result, AttemptRecord]
    assert {configagents.ToolConfig, configpolicies.ExecutorSettings} <= set(models)
    missing = [
        f"{model.__module__}.{model.__name__}.{key.name}"
        for model in models
        for key in keys_of(model)
        if not key.description.strip()
    ]
    assert not missing, f"give these fields a description: {missing}"
    undocumented = [model.__name__ for model in models if not (model.__doc__ or "").strip()]
    assert not undocumented, f"give these models a docstring: {undocumented}"


def test_every_config_file_has_its_section() -> None:
    files = {file.name: file.model for file in config_page.FILES}
    assert set(files) == {*CONFIG_FILES, *OPTIONAL_FILES}
    file_models = {m for m in _strict_models() if m.__name__.endswith("File")}
    assert set(files.values()) == file_models


def test_the_examples_load_with_the_real_loader(tmp_path: Path) -> None:
    """All six examples together: each validates, and the names one uses exist in the
    others (the cross-checks run too)."""
    (tmp_path / "config").mkdir()
    for file in config_page.FILES:
        (tmp_path / "config" / file.name).write_text(file.example, encoding="utf-8")
        data = yaml.safe_load(file.example)
        file.model.model_validate(data)  # each one alone, too
    (tmp_path / "agents").mkdir()
    (tmp_path / "agents" / "reviewer.md").write_text("You review.\n")
    assert not locate(tmp_path).legacy  # read as the native schema, not converted
    config = load_config(tmp_path)
    assert set(config.tools) == {"claude-code", "my-cli"}
    assert config.agents["reviewer"].profile == "agents/reviewer.md"
    assert config.policies.budgets.timezone == "Europe/Berlin"
    assert config.schedules["nightly-review"].cron == "0 2 * * *"
    assert config.executor.kind == "dask"


@pytest.mark.parametrize(
    ("value", "shown"),
    [(600.0, "10m"), (300.0, "5m"), (8 * 86400.0, "8d"), (3600.0, "1h"), (2.0, "2s"),
     (90.0, "90s"), (1.5, "1500ms"), (0.0, "0s"), (5400.0, "90m")],
)  # fmt: skip
def test_durations_are_shown_as_written(value: float, shown: str) -> None:
    assert seconds(value) == shown


@pytest.mark.parametrize(
    ("annotation", "shown"),
    [
        (Duration, "duration (`30s`, `15m`, `2h`)"),
        (IdleTimeout | None, "duration (`30s`, `5m`) or `off`"),
        (typing.Literal["a", "b"], "one of `a`, `b`"),
        (list[str], "list of text"),
        (dict[str, int] | None, "mapping → integer"),
        (int | None, "integer"),
    ],
)
def test_types_are_told_in_yaml_words(annotation: Any, shown: str) -> None:
    assert type_name(annotation) == shown


# --- the words the code writes ---------------------------------------------------------


def _trees() -> list[ast.Module]:
    return [ast.parse(p.read_text(encoding="utf-8")) for d in SOURCES for p in d.rglob("*.py")]


def _constants(trees: list[ast.Module]) -> dict[str, str]:
    """Module-level `NAME = "text"` constants, by name (`WAITING`, `COOLDOWN`, ...)."""
    found = {}
    for tree in trees:
        for node in tree.body:
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant):
                for target in node.targets:
                    if isinstance(target, ast.Name) and isinstance(node.value.value, str):
                        found[target.id] = node.value.value
    return found


def _texts(node: ast.expr, constants: dict[str, str]) -> list[str]:
    """The strings an expression can be: a literal, a constant, either arm of `a if c else b`."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.Name) and node.id in constants:
        return [constants[node.id]]
    if isinstance(node, ast.IfExp):
        return _texts(node.body, constants) + _texts(node.orelse, constants)
    return []


def _called(node: ast.Call) -> str:
    return str(getattr(node.func, "id", getattr(node.func, "attr", "")))


def test_every_error_kind_the_code_writes_is_listed() -> None:
    """The kinds given to TaskRejected, error_info and a skipped attempt as literals or
    constants, and every ErrorKind: each has its line, and no line is for a kind no code
    writes."""
    trees = _trees()
    constants = _constants(trees)
    argument = {"TaskRejected": 0, "error_info": 0, "skipped": 1}
    written = {kind.value for kind in ErrorKind}
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and len(node.args) > argument.get(_called(node), 99):
                written.update(_texts(node.args[argument[_called(node)]], constants))
    assert {"unsafe_id", "worker_lost", "cooldown", "usage_window", "quarantined"} <= written
    listed = set(tasks_page.ERROR_KINDS)
    assert written - listed == set(), "add these kinds to ERROR_KINDS in reference/tasks.py"
    assert listed - written == {"unknown"}, "ERROR_KINDS lists kinds no code writes"


def test_every_status_the_code_writes_is_listed() -> None:
    trees = _trees()
    constants = _constants(trees)
    written: set[str] = set()
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and _called(node) == "Result":
                for keyword in node.keywords:
                    if keyword.arg == "status":
                        written.update(_texts(keyword.value, constants))
            elif isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Attribute) and t.attr == "status" for t in node.targets
            ):
                written.update(_texts(node.value, constants))
    assert {"succeeded", "timed_out", "waiting_quota"} <= written
    assert written == set(tasks_page.STATUSES) | set(tasks_page.STATES)


def test_the_other_word_lists_are_the_codes() -> None:
    assert list(tasks_page.ROUTE_REASONS) == list(typing.get_args(RouteReason))
    assert tuple(tasks_page.HANDOFF) == HANDOFF_KEYS
    result_keys = next(k for k in keys_of(Result) if k.name == "result").keys
    assert set(result_keys) == {*HANDOFF_KEYS, "next_task_id"}


# --- a real result ---------------------------------------------------------------------


def _documented_result_keys() -> set[str]:
    page = (REPO / "docs" / "reference" / "tasks.md").read_text(encoding="utf-8")
    section = page.split("## Result file", 1)[1].split("\n### ", 1)[0]
    return {line.split("`")[1] for line in section.splitlines() if line.startswith("| `")}


def _key_paths(document: dict[str, Any], prefix: str = "") -> set[str]:
    """Every key of a result file as a dotted path (`attempts[].error.kind`); the keys
    under `task:` are the task file's own and are not ours to document."""
    found = set()
    for key, value in document.items():
        path = f"{prefix}{key}"
        found.add(path)
        if isinstance(value, dict) and path != "task":
            found |= _key_paths(value, f"{path}.")
        elif isinstance(value, list):
            for item in value:
                if isinstance(item, dict):
                    found |= _key_paths(item, f"{path}[].")
    return found


def test_every_key_of_real_result_files_is_documented(tmp_path: Path) -> None:
    """A run of tasks that between them write most keys a result can have: usage, a
    fallback, a handoff from the task file's `result:` block, an isolated task's
    `workspace:`, a rejection with warnings, the task file's own keys."""
    root = tmp_path / "ws"
    make_repo(root, root)
    tasks: dict[str, dict[str, Any]] = {
        "plain": {"agent": "worker", "prompt": "hello", "status": "pending",
                  "result": {"next_agent": "worker", "next_task_title": "go on",
                             "summary": "said hello"}},
        "chain": {"agent": "chain-missing", "prompt": "fall back", "dependancies": "none"},
        "isolated": {"agent": "iso", "prompt": "APPEND=notes.txt:more"},
        "bad": {"agent": "nobody", "prompt": "x"},
    }  # fmt: skip
    for name, task in tasks.items():
        drop_task(root, f"{name}.yaml", task)
    done = orchestrator(root, "run", "--once")
    assert done.returncode == 0, done.stderr
    written = results(root)
    assert {*tasks, "plain--to-worker"} <= set(written)
    found = set().union(*(_key_paths(doc) for doc in written.values()))
    assert {"workspace.branch", "result.next_task_id", "attempts[].error.kind",
            "fallback_from", "usage.input_tokens", "warnings", "task"} <= found  # fmt: skip
    undocumented = found - _documented_result_keys()
    assert not undocumented, f"document these result keys (results.py): {undocumented}"
