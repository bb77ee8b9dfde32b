"""End to end: the two adapter plugins of plugins/ (opencode, Qwen Code), installed into the
project's environment as packages of their own and found through their entry points, drive
the real CLIs (pinned in tests/clis) through the daemon against the fake LLM API's Chat
Completions endpoint. The CLIs come from scripts/install-test-clis: these tests fail, never
skip, when they cannot be installed."""

from __future__ import annotations

import json
import uuid
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any

import pytest

from orchestrator.adapters import GROUP
from tests import realcli
from tests.conftest import drop_task, orchestrator, result, write_config
from tests.fake_llm_api import FakeLLMAPI

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

OPENCODE, QWEN, CLAUDE = "opencode", "qwen-code", "claude-code"
BINARIES = {OPENCODE: "opencode", QWEN: "qwen", CLAUDE: "claude"}
MODELS = {OPENCODE: "oc-model", QWEN: "qwen-model", CLAUDE: "claude-sonnet-4-5"}
PRICES = {  # USD per million tokens, distinct per kind so a wrong mapping shows in the cost
    OPENCODE: {"input": 2.0, "output": 8.0, "cache_read": 0.5},
    QWEN: {"input": 0.4, "output": 1.2, "cache_read": 0.1},
}
INPUT, OUTPUT, CACHE_READ = 1234, 56, 78  # normalised, as FAKE_USAGE takes them
USAGE_MARKER = f"FAKE_USAGE={INPUT},{OUTPUT},{CACHE_READ},0"


@pytest.fixture(scope="module")
def api() -> Iterator[FakeLLMAPI]:
    with FakeLLMAPI() as server:
        yield server


def workspace(tmp_path: Path, api: FakeLLMAPI) -> tuple[Path, dict[str, str]]:
    """Tools opencode, qwen-code and claude-code on the real CLIs; agent `via-<tool>`
    prefers each, opencode's falling back to claude."""
    bin_dir = realcli.cli_bin_dir()
    missing = [b for b in BINARIES.values() if not (bin_dir / b).exists()]
    assert not missing, f"{bin_dir} lacks {missing}: run scripts/install-test-clis"
    root = tmp_path / "ws"
    for folder in ("inbox", "outbox", "running", "archive"):
        (root / "work" / folder).mkdir(parents=True)
    env = realcli.isolated_env(tmp_path / "home", api.base_url)
    for name in ("ANTHROPIC_BASE_URL", "OPENAI_BASE_URL", "GOOGLE_GEMINI_BASE_URL"):
        del env[name]  # the CLIs find the API through tools.yaml alone

    def tool(name: str, **more: Any) -> dict[str, Any]:
        binary = str(bin_dir / BINARIES[name])
        return {"adapter": name, "binary": binary, "models": [MODELS[name]], "timeout": "100s",
                **more}  # fmt: skip

    tools = {
        OPENCODE: tool(OPENCODE, base_url=f"{api.base_url}/v1", env=["OPENAI_API_KEY"]),
        QWEN: tool(QWEN, base_url=f"{api.base_url}/v1", env=["OPENAI_API_KEY"]),
        CLAUDE: tool(CLAUDE, base_url=api.base_url, env=["ANTHROPIC_API_KEY"]),
    }
    agents: dict[str, dict[str, Any]] = {f"via-{name}": {"preferred_tool": name} for name in tools}
    agents[f"via-{OPENCODE}"]["fallback_chain"] = [f"{CLAUDE}:{MODELS[CLAUDE]}"]
    models = {MODELS[name]: {"price_per_mtok": PRICES[name]} for name in PRICES}
    write_config(root, {
        "tools.yaml": {"tools": tools},
        "agents.yaml": {"agents": agents},
        "models.yaml": {"models": models},
        "policies.yaml": {"retries": {"max_attempts": 2, "backoff": "10ms"}},
    })  # fmt: skip
    return root, env


def test_the_plugins_are_installed_packages_with_entry_points() -> None:
    found = {p.name: p.dist.name if p.dist else None for p in entry_points(group=GROUP)}
    assert found[OPENCODE] == "orchestrator-opencode"
    assert found[QWEN] == "orchestrator-qwen"


@pytest.mark.real_cli
@pytest.mark.parametrize("tool", [OPENCODE, QWEN])
def test_each_plugin_cli_completes_a_task(tmp_path: Path, api: FakeLLMAPI, tool: str) -> None:
    root, env = workspace(tmp_path, api)
    tag = uuid.uuid4().hex[:12]
    assert orchestrator(root, "config", "validate", env=env).returncode == 0
    prompt = f"e2e {tag}: FAKE_REPLY=done-by-{tool} {USAGE_MARKER}"
    drop_task(root, "t.yaml", {"agent": f"via-{tool}", "prompt": prompt})
    ran = orchestrator(root, "run", "--once", env=env, timeout=150)
    assert ran.returncode == 0, ran.stderr
    got = result(root, "t")
    assert got["status"] == "succeeded", got
    assert (got["tool"], got["model"]) == (tool, MODELS[tool])
    assert got["output"].strip() == f"done-by-{tool}"
    calls = [r for r in api.requests if tag in r.prompt]
    assert [(r.path, r.model, r.status) for r in calls] == [
        ("/v1/chat/completions", MODELS[tool], 200)
    ], "one model call: no title or memory calls beside the answer"
    assert got["usage"] == {
        "input_tokens": INPUT,
        "output_tokens": OUTPUT,
        "cache_read_tokens": CACHE_READ,
        "cache_write_tokens": 0,
    }
    price = PRICES[tool]
    cost = INPUT * price["input"] + OUTPUT * price["output"] + CACHE_READ * price["cache_read"]
    assert got["cost_usd"] == pytest.approx(cost / 1e6)


@pytest.mark.real_cli
def test_a_429_on_opencode_falls_back_to_claude(tmp_path: Path, api: FakeLLMAPI) -> None:
    root, env = workspace(tmp_path, api)
    tag = uuid.uuid4().hex[:12]
    # retry-after 0: opencode retries a 429 itself a few times before it gives up
    prompt = f"e2e {tag}: FAKE_STATUS_OPENAI=429 FAKE_RETRY_AFTER=0 FAKE_REPLY=from-claude"
    drop_task(root, "limited.yaml", {"agent": f"via-{OPENCODE}", "prompt": prompt})
    ran = orchestrator(root, "run", "--once", env=env, timeout=150)
    assert ran.returncode == 0, ran.stderr
    got = result(root, "limited")
    assert got["status"] == "succeeded" and got["tool"] == CLAUDE, got
    assert got["output"].strip() == "from-claude"
    first = got["attempts"][0]
    assert first["tool"] == OPENCODE and first["error"]["kind"] == "rate_limit", first
    assert "HTTP 429" in first["error"]["message"]
    statuses = [(r.provider, r.status) for r in api.requests if tag in r.prompt]
    assert ("openai", 429) in statuses and statuses[-1] == ("anthropic", 200)


@pytest.mark.real_cli
@pytest.mark.parametrize("tool", [OPENCODE, QWEN])
def test_a_session_resumes_the_plugin_clis_own_conversation(
    tmp_path: Path, api: FakeLLMAPI, tool: str
) -> None:
    root, env = workspace(tmp_path, api)
    tag = uuid.uuid4().hex[:12]
    for name, reply in (("one", "first-answer"), ("two", "second-answer")):
        prompt = f"e2e {tag} {name}: FAKE_REPLY={reply} {USAGE_MARKER}"
        drop_task(root, f"{name}.yaml", {"agent": f"via-{tool}", "session": "talk",
                                         "prompt": prompt})  # fmt: skip
        assert orchestrator(root, "run", "--once", env=env, timeout=150).returncode == 0
    first, second = result(root, "one"), result(root, "two")
    assert (first["status"], second["status"]) == ("succeeded", "succeeded"), second
    calls = [r for r in api.requests if tag in r.prompt]
    assert len(calls) == 2  # one model call a turn
    assert "first-answer" in json.dumps(calls[-1].body)  # the first turn, from the CLI's history
    assert second["usage"] == first["usage"]  # the turn's own (qwen reports the session's)
