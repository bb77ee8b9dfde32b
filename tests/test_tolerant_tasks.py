"""Task files as agents really write them (issue 12): priority words, notes of any shape,
dependencies given as records or prose, misspelt and repeated keys, and rejections told in
the writer's terms. Through `run --once` and the local echo tool: a result's `output` is
the prompt the tool received."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from orchestrator.config import Config, load_config
from orchestrator.errors import TaskRejected
from orchestrator.tasks import load_task, parse_task
from tests.conftest import base_config, drop_task, orchestrator, result, results, write_config


def run_once(root: Path) -> str:
    done = orchestrator(root, "run", "--once")
    assert done.returncode == 0, done.stderr
    return done.stderr


@pytest.fixture
def config(workspace: Path) -> Config:
    return load_config(workspace)


def parse(config: Config, text: str, name: str = "t.yaml") -> Any:
    raw, warnings = load_task(text.encode(), name)
    return parse_task(raw, Path(name).stem, name, config, warnings)


def rejection(config: Config, text: str, name: str = "t.yaml") -> TaskRejected:
    with pytest.raises(TaskRejected) as info:
        parse(config, text, name)
    return info.value


# --- priorities -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "meant"),
    [("medium", "normal"), ("MEDIUM", "normal"), ("HIGH", "high"), ("LOW", "low"),
     ("P1", "high"), ("urgent", "critical"), ("Critical", "critical")],
)  # fmt: skip
def test_priority_words_in_any_case(config: Config, written: str, meant: str) -> None:
    task = parse(config, f"agent: worker\nprompt: x\npriority: {written}\n")
    assert task.priority == meant


def test_a_medium_task_runs_and_a_bad_priority_lists_every_accepted_word(
    workspace: Path,
) -> None:
    drop_task(workspace, "med.yaml", "agent: worker\nprompt: go\npriority: medium\n")
    drop_task(workspace, "bad.yaml", "agent: worker\nprompt: go\npriority: someday\n")
    run_once(workspace)
    assert result(workspace, "med")["status"] == "succeeded"
    bad = result(workspace, "bad")
    assert bad["status"] == "rejected"
    assert bad["error"]["message"] == "bad.yaml: priority is 'someday', not a priority"
    hint = bad["error"]["hint"]
    assert "critical, high, normal, low" in hint
    for word in ("urgent", "p1", "medium", "minor", "any case"):
        assert word in hint


# --- notes --------------------------------------------------------------------------------

NOTES_OF_ANY_SHAPE = """\
agent: worker
priority: medium
title: Measure the start-up
context:
  notes:
    - Expected: 120s
    - [a, b]
    - 3
    - Keep the tests green
  links: [https://example.invalid/12]
"""


def test_notes_of_any_shape_reach_the_prompt_readably(workspace: Path) -> None:
    drop_task(workspace, "notes.yaml", NOTES_OF_ANY_SHAPE)
    run_once(workspace)
    done = result(workspace, "notes")
    assert done["status"] == "succeeded", done
    assert done["output"] == (
        "# Measure the start-up\n\n"
        "Notes:\n- Expected: 120s\n- - a\n  - b\n- 3\n- Keep the tests green\n"
    )
    assert "task" not in done  # context is a field of ours, not an extra key


def test_a_single_mapping_and_nested_notes_beside_a_prompt(workspace: Path) -> None:
    drop_task(
        workspace,
        "map.yaml",
        "agent: worker\nprompt: Check it.\n"
        "context:\n  notes:\n    Expected: 120s\n    Steps: [build, test]\n    retries: 2\n",
    )
    run_once(workspace)
    output = result(workspace, "map")["output"]
    assert output == (
        "Check it.\n\nNotes:\n- Expected: 120s\n- Steps:\n    - build\n    - test\n- retries: 2\n"
    )
    assert "{" not in output and "'" not in output  # no Python reprs


def test_context_as_a_plain_string_is_the_notes(workspace: Path) -> None:
    drop_task(workspace, "plain.yaml", "agent: worker\nprompt: Do X.\ncontext: a plain string\n")
    run_once(workspace)
    done = result(workspace, "plain")
    assert done["status"] == "succeeded"
    assert done["output"] == "Do X.\n\nNotes:\n- a plain string\n"


# --- dependencies ----------------------------------------------------------------------

RECORDS_AND_PROSE = """\
agent: worker
prompt: Build the API.
dependencies:
  - {task_id: T1, reason: needs schema}
  - {id: T2}
  - {task: T3}
  - "✅ Tech stack decision (Python) - RESOLVED"
  - DDR-011 (completed)
  - docs/decisions/ddr-011.md
  - {reason: the ADR, status: accepted}
"""
PROSE = [
    "✅ Tech stack decision (Python) - RESOLVED",
    "DDR-011 (completed)",
    "docs/decisions/ddr-011.md",
]


def test_records_are_waited_for_and_prose_is_a_note_and_a_warning(workspace: Path) -> None:
    drop_task(workspace, "api.yaml", RECORDS_AND_PROSE)
    for dep in ("T1", "T2", "T3"):
        drop_task(workspace, f"{dep}.yaml", {"agent": "worker", "prompt": dep})
    run_once(workspace)
    found = results(workspace)
    assert {k: v["status"] for k, v in found.items()} == dict.fromkeys(
        ["api", "T1", "T2", "T3"], "succeeded"
    )
    api = found["api"]
    assert all(api["started_at"] >= found[t]["finished_at"] for t in ("T1", "T2", "T3"))
    assert api["output"] == (
        "Build the API.\n\n"
        "Dependencies (tasks this one waited for):\n- T1 (reason: needs schema)\n\n"
        "Prerequisites named by the task (not waited on):\n"
        + "".join(f"- {p}\n" for p in PROSE)
        + "- reason: the ADR\n  status: accepted\n"
    )
    warnings = api["warnings"]
    assert len(warnings) == 4
    for prose, warning in zip(PROSE, warnings[:3], strict=True):
        assert warning.startswith(f"dependency {prose!r} cannot be a task id")
        assert "not waited on" in warning and "strict_dependencies: true" in warning
    assert "names no task (no task_id, id or task)" in warnings[3]


def test_strict_dependencies_wait_for_prose(workspace: Path) -> None:
    files = base_config()
    files["policies.yaml"]["tasks"] = {"strict_dependencies": True}
    write_config(workspace, files)
    drop_task(
        workspace,
        "strict.yaml",
        {"agent": "worker", "prompt": "x", "dependencies": ["DDR-011 (completed)"]},
    )
    stderr = run_once(workspace)
    assert "strict waits for DDR-011 (completed) (unknown)" in stderr
    assert "strict still waits for its dependencies" in stderr
    assert not results(workspace)


def test_an_id_shaped_dependency_never_seen_still_waits(workspace: Path) -> None:
    drop_task(workspace, "w.yaml", {"agent": "worker", "prompt": "x", "dependencies": ["DDR-011"]})
    stderr = run_once(workspace)
    assert "w still waits for its dependencies" in stderr
    assert not results(workspace)


@pytest.mark.parametrize(
    ("written", "waited"),
    [("T1", True), ("2026-11-27T1200-architect-auth-design", True), ("DDR-011", True),
     ("design.v2", True), ("DDR-011 (completed)", False), ("docs/adr/0003.md", False),
     ("ADR-0003.md", False), ("✅done", False), ("two words", False), ("f(x)", False),
     ("../up", False), ("-rf", False)],
)  # fmt: skip
def test_what_can_be_a_task_id(config: Config, written: str, waited: bool) -> None:
    task = parse(config, f"agent: worker\nprompt: x\ndependencies: [{written!r}]\n")
    assert task.dependency_ids == ([written] if waited else [])


def test_comma_separated_ids_are_each_waited_for(config: Config) -> None:
    task = parse(config, "agent: worker\nprompt: x\ndependencies: T1, T2\n")
    assert task.dependency_ids == ["T1", "T2"]
    assert task.read_warnings == []


# --- misspelt and repeated keys ---------------------------------------------------------


def test_a_misspelt_key_is_a_warning_and_other_unknown_keys_stay_quiet(workspace: Path) -> None:
    drop_task(
        workspace,
        "typo.yaml",
        "agent: worker\ntitle: Ship it\npromt: never read\ndependancies: [x]\n"
        "context_file: [a.md]\nmode: autonomous\nestimate_hours: 3\nstatus: pending\n",
    )
    run_once(workspace)
    done = result(workspace, "typo")
    assert done["status"] == "succeeded"
    assert done["output"] == "# Ship it\n"
    assert done["warnings"] == [
        "unknown key 'promt': did you mean 'prompt'? (it was not used)",
        "unknown key 'dependancies': did you mean 'dependencies'? (it was not used)",
        "unknown key 'context_file': did you mean 'context_files'? (it was not used)",
    ]
    assert done["task"]["mode"] == "autonomous" and done["task"]["promt"] == "never read"


def test_nothing_to_do_but_a_misspelt_prompt_says_so(workspace: Path) -> None:
    drop_task(workspace, "empty.yaml", "agent: worker\npromt: the real work\n")
    drop_task(workspace, "noagent.yaml", "agnet: worker\nprompt: hi\n")
    run_once(workspace)
    empty = result(workspace, "empty")
    assert empty["error"]["kind"] == "empty_prompt"
    assert empty["error"]["hint"].startswith("the file has 'promt': did you mean 'prompt'?")
    noagent = result(workspace, "noagent")
    assert noagent["error"]["kind"] == "missing_agent"
    assert "the file has 'agnet': did you mean 'agent'?" in noagent["error"]["hint"]


def test_keys_written_twice_are_named_with_their_lines(workspace: Path) -> None:
    drop_task(
        workspace,
        "twice.yaml",
        "agent: worker\nprompt: first\ncontext:\n  notes: old\n  notes: new\nprompt: second\n",
    )
    run_once(workspace)
    done = result(workspace, "twice")
    assert done["output"] == "second\n\nNotes:\n- new\n"  # the last value wins, as before
    assert done["warnings"] == [
        "key 'prompt' is written twice (lines 2 and 6): the value at line 6 is used",
        "key 'notes' is written twice (lines 4 and 5): the value at line 5 is used",
    ]


def test_merge_keys_are_not_duplicates(config: Config) -> None:
    task = parse(
        config,
        "base: &base {agent: worker, prompt: from base}\n<<: *base\nprompt: own\n",
    )
    assert task.prompt == "own" and task.read_warnings == []


def test_a_rejection_keeps_the_warnings_of_reading(workspace: Path) -> None:
    drop_task(workspace, "dup.yaml", "agent: worker\npriority: high\npriority: someday\n")
    run_once(workspace)
    done = result(workspace, "dup")
    assert done["status"] == "rejected"
    assert done["warnings"] == [
        "key 'priority' is written twice (lines 2 and 3): the value at line 3 is used"
    ]


# --- rejections in the writer's terms --------------------------------------------------


@pytest.mark.parametrize(
    ("line", "message", "hint"),
    [
        ("priority: someday", "priority is 'someday', not a priority", "critical, high"),
        ("timeout: soon", "timeout is 'soon', not a duration", "30s, 15m or 1h"),
        ("budget_usd: -1", "budget_usd is -1, not a number of dollars, 0 or more",
         "budget_usd: 2.5"),
        ("budget_usd: lots", "budget_usd is 'lots', not a number of dollars", "budget_usd: 2.5"),
        ("handoff_depth: -2", "handoff_depth is -2, not a whole number, 0 or more",
         "remove it"),
        ("retry: many", "retry is 'many', not a whole number", "orchestrator retry"),
        ("on_dependency_failure: skip", "on_dependency_failure is 'skip', not reject or run",
         "`run`"),
        ("context_files: [docs/a.md, 5]", "context_files[1] is 5, not a file path",
         "docs/design.md"),
        ("context_files: [{path: a.md}]", "context_files[0] is {path: a.md}, not a file path",
         "docs/design.md"),
        ("title: [a, b]", "title is [a, b], not text", "as text"),
        ("tool: {name: fake}", "tool is {name: fake}, not text", "as text"),
    ],
)  # fmt: skip
def test_rejections_name_the_field_as_written_and_what_to_do(
    config: Config, line: str, message: str, hint: str
) -> None:
    error = rejection(config, f"agent: worker\nprompt: x\n{line}\n", "f.yaml")
    assert error.kind == "invalid_field"
    assert error.message.startswith(f"f.yaml: {message}")
    assert hint in error.hint
    for jargon in ("Input should", "Value error", "fix the value of", ".str", "Dependency"):
        assert jargon not in str(error)


def test_shapes_that_used_to_be_rejected_are_read(config: Config) -> None:
    """Each of these was an `invalid_field` rejection in pydantic's words."""
    for text in (
        "context: {notes: [{Expected: 120s}]}",
        "context: {notes: [[a, b], 3]}",
        "context: [one, two]",
        "context: 42",
        "dependencies: [{task: T3, why: [a, b]}, {reason: none}, [T4, [T5]], 7]",
        "artefacts: {path: docs/a.md}",
        "title: 2026",
    ):
        task = parse(config, f"agent: worker\nprompt: x\n{text}\n")
        assert task.id == "t", text


def test_an_id_that_is_not_text_is_shown(config: Config) -> None:
    error = rejection(config, "agent: worker\nprompt: x\nid: [a, b]\n", "f.yaml")
    assert (error.kind, error.message) == ("unsafe_id", "f.yaml: id is [a, b], not text")
    assert "id: my-task" in error.hint


def test_dry_run_shows_what_reading_the_file_noticed(workspace: Path) -> None:
    """`run --dry-run` prints the warnings the result would carry, before anything runs."""
    drop_task(
        workspace,
        "t.yaml",
        "agent: worker\npromt: hi\ntitle: a title\ndependencies: ['DDR-011 (completed)']\n",
    )
    done = orchestrator(workspace, "run", "--dry-run")
    assert done.returncode == 0, done.stderr
    assert "  warning: unknown key 'promt': did you mean 'prompt'?" in done.stdout
    assert "  warning: dependency 'DDR-011 (completed)' cannot be a task id" in done.stdout
