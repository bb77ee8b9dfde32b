"""Reading task files: tolerant of the agents' format, strict about what is unsafe."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from orchestrator.config import Config, load_config
from orchestrator.errors import TaskRejected
from orchestrator.tasks import compose_prompt, load_mapping, parse_task

EXISTING_FORMAT = """\
id: 2026-11-27T1400-backend-dev-auth-endpoints
agent: worker
status: pending
title: Implement the auth endpoints
description: |
  Add /login and /logout to the API.
  Use the session store from the design.
artifacts:
  - docs/auth.md
  - src/api/auth.py
priority: HIGH
mode: autonomous
context:
  notes:
    - The design is in docs/auth.md
    - Keep the tests green
  links: [https://example.invalid/ticket/12]
dependencies:
  - task_id: 2026-11-27T1200-architect-auth-design
    reason: needs the design
  - 2026-11-27T1300-infra-session-store
created_at: 2026-11-27T14:00:00Z
created_by: architect
result:
  summary: null
estimate_hours: 3
"""


@pytest.fixture
def config(workspace: Path) -> Config:
    return load_config(workspace)


def parse(config: Config, text: str | bytes, name: str = "t.yaml") -> Any:
    data = text.encode() if isinstance(text, str) else text
    return parse_task(load_mapping(data, name), Path(name).stem, name, config)


def rejected(config: Config, text: str | bytes, name: str = "t.yaml") -> TaskRejected:
    with pytest.raises(TaskRejected) as info:
        parse(config, text, name)
    return info.value


def test_existing_task_format_is_read_and_unknown_keys_kept(config: Config) -> None:
    task = parse(config, EXISTING_FORMAT)
    assert task.id == "2026-11-27T1400-backend-dev-auth-endpoints"
    assert task.priority == "high"
    assert task.artefacts == ["docs/auth.md", "src/api/auth.py"]
    assert task.dependency_ids == [
        "2026-11-27T1200-architect-auth-design",
        "2026-11-27T1300-infra-session-store",
    ]
    extra = task.extra_fields()
    assert extra["status"] == "pending" and extra["mode"] == "autonomous"
    assert extra["estimate_hours"] == 3 and extra["created_by"] == "architect"


def test_prompt_is_composed_from_the_fields(config: Config, workspace: Path) -> None:
    prompt = compose_prompt(parse(config, EXISTING_FORMAT), workspace, "t.yaml")
    assert prompt.startswith("# Implement the auth endpoints\n\nAdd /login and /logout")
    assert "Notes:\n- The design is in docs/auth.md\n- Keep the tests green" in prompt
    assert "Artefacts:\n- docs/auth.md\n- src/api/auth.py" in prompt


def test_prompt_file_and_context_files(config: Config, workspace: Path) -> None:
    (workspace / "docs").mkdir()
    (workspace / "docs" / "p.md").write_text("Do the thing.\n")
    (workspace / "docs" / "ctx.md").write_text("Background.\n")
    task = parse(config, "agent: worker\nprompt_file: docs/p.md\ncontext_files: [docs/ctx.md]\n")
    assert compose_prompt(task, workspace, "t.yaml", "You are careful.") == (
        "You are careful.\n\nDo the thing.\n\n## docs/ctx.md\n\nBackground.\n"
    )


def test_id_defaults_to_the_file_name(config: Config) -> None:
    assert parse(config, "agent: worker\nprompt: hi\n", "my-task.yml").id == "my-task"


@pytest.mark.parametrize(
    ("text", "kind", "words"),
    [
        ("agent: worker\nprompt: [unclosed\n", "yaml_syntax", "line 3, column 1"),
        ("- a\n- list\n", "not_a_mapping", "got list"),
        ("", "not_a_mapping", "got empty"),
        ("prompt: hi\n", "missing_agent", "agents: arg-agent, chain-exit"),
        ("agent: wroker\nprompt: hi\n", "unknown_agent", "did you mean 'worker'"),
        ("agent: worker\nid: ../../etc/passwd\n", "unsafe_id", "path separator"),
        ("agent: worker\nid: a..b\n", "unsafe_id", "'..'"),
        ('agent: worker\nid: "a\\tb"\n', "unsafe_id", "control character"),
        (f"agent: worker\nid: {'x' * 161}\n", "unsafe_id", "at most 160"),
        (f"agent: worker\nid: {'я' * 81}\n", "unsafe_id", "162 bytes long in UTF-8"),
        ("agent: worker\nid: -rf\n", "unsafe_id", "starts with '-'"),
        ("agent: worker\npriority: someday\n", "invalid_field", "critical, high, normal, low"),
        ("agent: worker\ntimeout: soon\n", "invalid_field", "30s, 15m or 1h"),
        ("agent: worker\ntool: nope\n", "unknown_tool", "valid names"),
        (
            "a: &a [x, x]\nb: &b [*a, *a]\nc: !!python/object:os.system {}\n",
            "yaml_syntax",
            "python/object",
        ),
    ],
)
def test_rejections(config: Config, text: str, kind: str, words: str) -> None:
    error = rejected(config, text)
    assert error.kind == kind
    assert words in str(error)
    assert error.hint


def test_binary_non_utf8_and_oversized(config: Config) -> None:
    assert rejected(config, b"agent: worker\x00\x01").kind == "binary"
    assert rejected(config, b"agent: w\xe9rker\n").kind == "not_utf8"
    big = b"agent: worker\nprompt: " + b"x" * (1024 * 1024) + b"\n"
    assert rejected(config, big).kind == "too_large"


def test_prompt_file_outside_the_workspace(config: Config, workspace: Path) -> None:
    outside = workspace.parent / "secret.txt"
    outside.write_text("secret")
    for path in ("../secret.txt", str(outside)):
        task = parse(config, f"agent: worker\nprompt_file: {path}\n")
        with pytest.raises(TaskRejected) as info:
            compose_prompt(task, workspace, "t.yaml")
        assert info.value.kind == "path_outside_workspace"
    (workspace / "link.txt").symlink_to(outside)
    task = parse(config, "agent: worker\ncontext_files: [link.txt]\nprompt: hi\n")
    with pytest.raises(TaskRejected, match="outside the workspace"):
        compose_prompt(task, workspace, "t.yaml")
