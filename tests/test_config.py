"""Config loading and `config validate` / `init`, through the real command."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from orchestrator.config import load_config, parse_duration, split_target
from orchestrator.errors import ConfigError
from tests.conftest import REPO, base_config, orchestrator, write_config

if TYPE_CHECKING:
    from pathlib import Path


def problems_for(tmp_path: Path, edit: Any) -> list[str]:
    files = base_config()
    edit(files)
    write_config(tmp_path, files)
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path)
    return [str(p) for p in info.value.problems]


def test_unknown_key_is_named_with_a_suggestion(tmp_path: Path) -> None:
    def edit(files: dict[str, Any]) -> None:
        files["agents.yaml"]["agents"]["worker"]["prefered_model"] = "fake-large"

    [problem] = problems_for(tmp_path, edit)
    assert problem.startswith("config/agents.yaml: agents.worker.prefered_model: unknown key")
    assert "did you mean 'preferred_model'?" in problem


def test_unknown_nested_key_in_tool_output(tmp_path: Path) -> None:
    def edit(files: dict[str, Any]) -> None:
        files["tools.yaml"]["tools"]["fake"]["output"]["txt"] = "result"

    [problem] = problems_for(tmp_path, edit)
    assert "tools.fake.output.txt: unknown key 'txt'" in problem
    assert "did you mean 'text'?" in problem


def test_bad_values_name_field_and_value(tmp_path: Path) -> None:
    def edit(files: dict[str, Any]) -> None:
        files["tools.yaml"]["tools"]["fake"]["timeout"] = "soon"
        files["tools.yaml"]["tools"]["fake"]["adapter"] = "clade"
        files["policies.yaml"]["budgets"] = {"mode": "strict"}

    problems = problems_for(tmp_path, edit)
    text = "\n".join(problems)
    assert "config/tools.yaml: tools.fake.timeout: 'soon' is not a duration" in text
    assert "tools.fake.adapter" in text and "'clade'" in text
    assert "config/policies.yaml: budgets.mode" in text and "'strict'" in text


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (
            lambda f: f["agents.yaml"]["agents"]["worker"].update(preferred_tool="fak"),
            "agents.worker.preferred_tool: unknown tool 'fak' (did you mean 'fake'?)",
        ),
        (
            lambda f: f["agents.yaml"]["agents"]["worker"].update(preferred_model="fake-huge"),
            "model 'fake-huge' is not listed for tool 'fake'",
        ),
        (
            lambda f: f["agents.yaml"]["agents"]["worker"].update(
                fallback_chain=["nope:fake-small"]
            ),
            "agents.worker.fallback_chain[0]: unknown tool 'nope' in 'nope:fake-small'",
        ),
        (
            lambda f: f["agents.yaml"]["agents"]["worker"].update(task_types={"docs": "fake-tiny"}),
            "agents.worker.task_types.docs: unknown model 'fake-tiny'",
        ),
        (
            lambda f: f["agents.yaml"]["agents"]["worker"].update(profile="agents/none.md"),
            "agents.worker.profile: profile file 'agents/none.md' not found",
        ),
        (
            lambda f: f["tools.yaml"]["tools"]["fake"].update(args=["{modle}"]),
            "tools.fake.args[0]: unknown placeholder {modle} (did you mean 'model'?)",
        ),
        (
            lambda f: f["policies.yaml"].update(budgets={"timezone": "Mars/Olympus"}),
            "budgets.timezone: unknown time zone 'Mars/Olympus'",
        ),
        (
            lambda f: f["policies.yaml"].update(budgets={"per_agent": {"wroker": {}}}),
            "budgets.per_agent.wroker: unknown agent 'wroker' (did you mean 'worker'?)",
        ),
    ],
)
def test_cross_references(tmp_path: Path, edit: Any, expected: str) -> None:
    problems = problems_for(tmp_path, edit)
    assert any(expected in p for p in problems), problems


def test_fallback_splits_on_the_first_colon(tmp_path: Path) -> None:
    files = base_config()
    files["tools.yaml"]["tools"]["ollama"] = {
        "adapter": "generic",
        "binary": "ollama",
        "models": ["llama3:8b"],
    }
    files["agents.yaml"]["agents"]["worker"]["fallback_chain"] = ["ollama:llama3:8b"]
    write_config(tmp_path, files)
    assert load_config(tmp_path).agents["worker"].fallback_chain == ["ollama:llama3:8b"]
    assert split_target("ollama:llama3:8b") == ("ollama", "llama3:8b")
    assert split_target("gpt-5") == (None, "gpt-5")


def test_durations() -> None:
    assert parse_duration("15m") == 900
    assert parse_duration("250ms") == 0.25
    assert parse_duration(90) == 90
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration("1 fortnight")


def test_validate_reports_every_problem_and_exits_1(tmp_path: Path) -> None:
    files = base_config()
    files["agents.yaml"]["agents"]["worker"]["preferred_tool"] = "nope"
    files["agents.yaml"]["agents"]["arg-agent"]["preferred_tool"] = "nada"
    write_config(tmp_path / "ws", files)
    done = orchestrator(tmp_path / "ws", "config", "validate")
    assert done.returncode == 1
    assert "unknown tool 'nope'" in done.stderr and "unknown tool 'nada'" in done.stderr
    assert "Traceback" not in done.stderr


def test_missing_file_suggests_init(tmp_path: Path) -> None:
    (tmp_path / "ws").mkdir()
    done = orchestrator(tmp_path / "ws", "config", "validate")
    assert done.returncode == 1
    assert "config: no config folder here (run `orchestrator init`" in done.stderr
    (tmp_path / "ws" / "config").mkdir()
    write_config(tmp_path / "ws", {"agents.yaml": base_config()["agents.yaml"]})
    done = orchestrator(tmp_path / "ws", "config", "validate")
    assert done.returncode == 1
    assert "invalid configuration (3 problems)" in done.stderr
    assert "config/tools.yaml: file not found" in done.stderr
    assert "orchestrator init" in done.stderr
    assert "Traceback" not in done.stderr


def test_yaml_syntax_error_in_config_has_line_and_column(tmp_path: Path) -> None:
    write_config(tmp_path, base_config())
    (tmp_path / "config" / "tools.yaml").write_text("tools:\n  fake: [unclosed\n")
    with pytest.raises(ConfigError, match=r"config/tools.yaml: YAML syntax error at line \d+"):
        load_config(tmp_path)


def test_init_writes_a_config_that_validates(tmp_path: Path) -> None:
    root = tmp_path / "fresh"
    root.mkdir()
    done = orchestrator(root, "init")
    assert done.returncode == 0, done.stderr
    assert (root / "work" / "inbox").is_dir()
    done = orchestrator(root, "config", "validate")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("config OK: 4 agents, 4 tools, ")
    again = orchestrator(root, "init")
    assert again.returncode == 1 and "--force" in again.stderr


def test_the_repository_config_validates() -> None:
    config = load_config(REPO)
    assert {"claude-code", "codex", "gemini"} <= set(config.tools)
    assert any(t.adapter == "generic" for t in config.tools.values())
