"""The seed's config schema ("LLM Service Layer"), read as it is and rewritten by
`config migrate`. The samples in tests/legacy/seed-config/ are our own, written in the
shapes that schema uses: cost_per_1k_tokens, command_template, platforms, descriptive keys,
named policy profiles and rate_limiting per minute and per hour."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml

from orchestrator.config import THIS_OS, load_config
from orchestrator.configdirs import locate
from orchestrator.legacy.convert import per_mtok, template_args
from orchestrator.policy import RateLimiter
from tests import realcli
from tests.conftest import FAKE_TOOL, cli_env, drop_task, orchestrator, result
from tests.fake_llm_api import FakeLLMAPI

if TYPE_CHECKING:
    from collections.abc import Iterator

SEED = Path(__file__).parent / "legacy" / "seed-config"


@pytest.fixture(scope="module")
def fake_api() -> Iterator[FakeLLMAPI]:
    with FakeLLMAPI() as server:
        yield server


def seed_workspace(tmp_path: Path, **changes: dict[str, Any]) -> Path:
    """A workspace whose config/ is the seed-shaped sample (with `changes` per file)."""
    root = tmp_path / "ws"
    (root / "config").mkdir(parents=True)
    for folder in ("inbox", "outbox", "running", "archive"):
        (root / "work" / folder).mkdir(parents=True)
    for path in SEED.glob("*.yaml"):
        shutil.copy(path, root / "config" / path.name)
    for name, change in changes.items():
        file = root / "config" / f"{name}.yaml"
        data = yaml.safe_load(file.read_text())
        for section, entries in change.items():
            if isinstance(data.get(section), dict) and isinstance(entries, dict):
                data[section].update(entries)
            else:
                data[section] = entries
        file.write_text(yaml.safe_dump(data, sort_keys=False))
    return root


def ok(root: Path, *args: str, env: dict[str, str] | None = None) -> str:
    done = orchestrator(root, *args, env=env)
    assert done.returncode == 0, f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    assert "Traceback" not in done.stderr
    return done.stdout


# --- reading it as it is ---------------------------------------------------------------


def test_seed_config_validates_and_says_it_is_the_older_schema(tmp_path: Path) -> None:
    root = seed_workspace(tmp_path)
    out = ok(root, "config", "validate")
    assert "config OK: 3 agents, 4 tools, 8 models" in out
    older = [line for line in out.splitlines() if "older LLM Service Layer schema" in line]
    assert len(older) == 1
    assert "`orchestrator config migrate`" in older[0]
    # the descriptive keys are kept and shown
    assert "model claude-3-opus: deprecated: routed to claude-3-5-sonnet" in out
    assert "tool claude-code: capabilities code_generation, code_review, refactoring" in out
    assert "agent architect: Long design work; prefers the strongest model" in out
    assert "policies: profile default (of default, production, development" in out
    # -v lists every conversion and every key kept but not acted on
    verbose = ok(root, "-v", "config", "validate")
    assert "cost_per_1k_tokens: price_per_mtok: input 15, output 75" in verbose
    assert "agents.scripter.role: Writes small scripts (kept, not acted on)" in verbose


def test_prices_are_per_million_and_known_clis_get_their_adapters(tmp_path: Path) -> None:
    config = load_config(seed_workspace(tmp_path), profile="default")
    prices = config.models["claude-3-5-sonnet"].price_per_mtok
    assert prices is not None
    assert (prices.input, prices.output) == (3.0, 15.0)
    haiku = config.models["claude-3-haiku"].price_per_mtok
    assert haiku is not None
    assert (haiku.input, haiku.output) == (0.25, 1.25)
    assert per_mtok(0.000075) == 0.075  # no float noise
    assert {name: t.adapter for name, t in config.tools.items()} == {
        "claude-code": "claude-code",
        "codex": "codex",
        "gemini": "gemini",
        "local-llm": "generic",
    }
    # a converted CLI gets the variables it needs passed through, nothing else
    assert "ANTHROPIC_API_KEY" in config.tools["claude-code"].env
    local = config.tools["local-llm"]
    assert local.args == ["--model", "{model}", "--input", "{prompt_file}", "--temperature", "0.2"]
    assert local.prompt == "file"


def test_platforms_pick_the_binary_for_this_os(tmp_path: Path) -> None:
    config = load_config(seed_workspace(tmp_path), profile="default")
    expected = {"linux": "bin/llm-run", "macos": "llm-run", "windows": "llm-run"}[THIS_OS]
    assert config.tools["local-llm"].binary == expected
    claude = {"linux": "claude", "macos": "/opt/homebrew/bin/claude", "windows": "claude.cmd"}
    assert config.tools["claude-code"].binary == claude[THIS_OS]


@pytest.mark.parametrize(
    ("template", "args", "prompt"),
    [
        ("{binary} -p --model {model} < {prompt_file}", ["-p", "--model", "{model}"], "stdin"),
        ("{binary} --model={model} {prompt_file} > {output_file}", ["--model={model}",
                                                                     "{prompt_file}"], "file"),
        ('{binary} ask --model "{model}" "$(cat {prompt_file})"', ["ask", "--model", "{model}"],
         "arg"),
        ("{binary} '{model}' --prompt {prompt} --json", ["{model}", "--prompt", "{prompt}",
                                                          "--json"], "arg"),
        ("{binary} --model {model} --prompt {prompt}", ["--model", "{model}", "--prompt",
                                                         "{prompt}"], "arg"),
        ("{binary} -m {model} --out {output_file} < {prompt_file}", ["-m", "{model}", "--out",
                                                                      "{output_file}"], "stdin"),
    ],
)  # fmt: skip
def test_command_templates_become_argv_templates(
    template: str, args: list[str], prompt: str
) -> None:
    assert template_args(template) == (args, prompt)


@pytest.mark.parametrize(
    ("template", "says"),
    [
        ("{binary} run {prompt_file} | tee out.txt", "needs a shell"),
        ("{binary} run {prompt_file} && echo done", "needs a shell"),
        ("run {prompt_file}", "must start with {binary}"),
        ("{binary} 'unclosed", "No closing quotation"),
    ],
)
def test_templates_that_need_a_shell_are_refused_with_the_reason(
    tmp_path: Path, template: str, says: str
) -> None:
    root = seed_workspace(tmp_path, tools={"tools": {"local-llm": {
        "binary": "llm-run", "command_template": template, "models": ["llama-3-8b"]}}})  # fmt: skip
    done = orchestrator(root, "config", "validate")
    assert done.returncode == 1
    assert "config/tools.yaml: tools.local-llm.command_template:" in done.stderr
    assert says in done.stderr
    assert "Traceback" not in done.stderr


def test_a_prompt_is_one_argv_element_and_never_an_option(tmp_path: Path) -> None:
    """The template is split at load time; the prompt is substituted per element, so
    quotes, spaces and a leading dash in it change nothing."""
    template = f"{{binary}} {FAKE_TOOL} --model '{{model}}' --prompt {{prompt}}"
    tool = {"binary": sys.executable, "command_template": template, "models": ["llama-3-8b"]}
    root = seed_workspace(tmp_path, tools={"tools": {"local-llm": tool}})
    prompt = "--version; echo 'pwned' $(id) \"quoted\""
    drop_task(root, "t.yaml", {"agent": "scripter", "prompt": prompt})
    ok(root, "run", "--once")
    res = result(root, "t")
    assert res["status"] == "succeeded", res
    assert res["model"] == "llama-3-8b"
    # a seed tool's answer is its stdout as text: here the fake tool's JSON, whose `result`
    # echoes the --prompt argument it was given
    assert json.loads(res["output"])["result"].strip() == prompt


def test_a_tool_that_writes_its_answer_to_output_file(tmp_path: Path) -> None:
    """`{output_file}` as an argument: the answer is read from that file, not stdout."""
    template = f"{{binary}} {FAKE_TOOL} --model {{model}} --output-file {{output_file}}"
    template += " < {prompt_file}"
    tool = {"binary": sys.executable, "command_template": template, "models": ["llama-3-8b"]}
    root = seed_workspace(tmp_path, tools={"tools": {"local-llm": tool}})
    drop_task(root, "t.yaml", {"agent": "scripter", "prompt": "answer through a file"})
    ok(root, "run", "--once")
    res = result(root, "t")
    assert res["status"] == "succeeded", res
    assert json.loads(res["output"])["result"].strip() == "answer through a file"
    assert "progress" not in res["output"]  # stdout's chatter is not the answer


def test_the_seed_config_runs_a_task_on_the_real_claude_cli(
    tmp_path: Path, fake_api: FakeLLMAPI
) -> None:
    """The converted claude tool is the real adapter: the CLI from npm, driven with JSON
    output, its key and base URL passed through the converted `env:` list."""
    root = seed_workspace(tmp_path)
    env = realcli.isolated_env(tmp_path / "home", fake_api.base_url)
    env.update(realcli.FAIL_FAST_ENV)
    drop_task(root, "t.yaml", {"agent": "backend-dev", "priority": "medium",
                               "prompt": "seed config e2e: FAKE_REPLY=converted"})  # fmt: skip
    ok(root, "run", "--once", env=env)
    res = result(root, "t")
    assert res["status"] == "succeeded", res
    assert (res["tool"], res["output"]) == ("claude-code", "converted")
    # the prompt is small: the default policy's prefer_cheaper_models_under_tokens routes it
    # to the first simple-task model
    assert (res["model"], res["route_reason"]) == ("claude-3-haiku", "cost_optimization")


# --- profiles and limits ---------------------------------------------------------------


def test_profiles_choose_the_policies(tmp_path: Path) -> None:
    root = seed_workspace(tmp_path)
    base = load_config(root, profile="default").policies.budgets
    assert (base.daily_usd, base.monthly_usd, base.mode, base.warn_at_percent) == (
        10.0, 200.0, "soft", 80,
    )  # fmt: skip
    production = load_config(root, profile="production")
    budgets = production.policies.budgets
    assert (budgets.daily_usd, budgets.mode, budgets.warn_at_percent) == (50.0, "hard", 90)
    assert budgets.require_justification_over_usd == 1.0
    # the older schema's profiles stand alone: production has no monthly limit of its own
    assert budgets.monthly_usd is None
    development = load_config(root, profile="development").policies
    assert development.budgets.daily_usd == 2.0
    assert development.privacy.prompts == "full"  # log_prompts: true
    assert development.budgets.mode == "soft"  # the older default, not production's
    out = ok(root, "config", "validate", env=cli_env(tmp_path, {"ORCHESTRATOR_PROFILE":
                                                                "production"}))  # fmt: skip
    assert "policies: profile production (of default, production, development" in out
    assert "policies: profile development" in ok(root, "--profile", "development", "config",
                                                  "validate")  # fmt: skip
    wrong = orchestrator(root, "config", "validate", "--profile", "producton")
    assert wrong.returncode == 1
    assert "no profile 'producton'" in wrong.stderr
    assert "did you mean 'production'?" in wrong.stderr


def test_status_shows_the_budgets_of_the_profile_in_force(tmp_path: Path) -> None:
    """status reads budgets without validating the config: the older schema and profiles
    must reach it too."""
    root = seed_workspace(tmp_path)
    assert "today       $0.00 / $10.00" in ok(root, "status")
    assert "this month  $0.00 / $200.00" in ok(root, "status")
    production = ok(root, "status", "--profile", "production")
    assert "today       $0.00 / $50.00" in production
    assert "this month  $0.00 (no budget)" in production
    env = cli_env(tmp_path, {"ORCHESTRATOR_PROFILE": "development"})
    assert "today       $0.00 / $2.00" in ok(root, "status", env=env)


def test_rate_limits_per_hour_are_enforced_per_provider(tmp_path: Path) -> None:
    """rate_limiting.max_requests_per_hour: at most that many starts in any hour (here 3
    for the provider openai, whichever of its models)."""
    limits = {"max_requests_per_hour": {"openai": 3}, "max_requests_per_minute": {"codex": 600}}
    root = seed_workspace(tmp_path, policies={"rate_limiting": limits})
    now = [0.0]
    config = load_config(root, profile="default")
    limiter = RateLimiter(config, clock=lambda: now[0])
    for _ in range(3):
        assert limiter.delay("codex", "gpt-4o-mini") == 0
        limiter.take("codex", "gpt-4o-mini")
    assert limiter.delay("codex", "gpt-4o-mini") == pytest.approx(3600)
    assert limiter.delay("claude-code", "claude-3-haiku") == 0  # another provider
    now[0] = 1800.0
    assert limiter.delay("codex", "gpt-4-turbo") == pytest.approx(1800)  # same provider
    now[0] = 3600.5
    assert limiter.delay("codex", "gpt-4o-mini") == 0


# --- config migrate --------------------------------------------------------------------


def plan_of(root: Path, env: dict[str, str] | None = None) -> str:
    """`run --dry-run`: each task's tools, models, reasons, cost estimates and argv."""
    return ok(root, "run", "--dry-run", env=env)


def test_migrate_rewrites_the_config_and_routing_and_prices_stay_the_same(
    tmp_path: Path,
) -> None:
    root = seed_workspace(tmp_path)
    (root / "bin").mkdir()
    tasks = {
        "small": {"agent": "architect", "prompt": "a short question"},
        "big": {"agent": "architect", "prompt": "design it " * 1500},
        "docs": {"agent": "backend-dev", "task_type": "documentation", "prompt": "x " * 2000},
        "review": {"agent": "backend-dev", "task_type": "code_review", "prompt": "y " * 2000},
        "local": {"agent": "scripter", "prompt": "write a script " * 500},
    }
    for name, task in tasks.items():
        drop_task(root, f"{name}.yaml", task)
    production = cli_env(tmp_path, {"ORCHESTRATOR_PROFILE": "production"})
    before, before_production = plan_of(root), plan_of(root, production)
    assert "claude-3-5-sonnet (preferred (claude-3-opus is deprecated" in before
    originals = {p.name: p.read_text() for p in (root / "config").glob("*.yaml")}

    dry = ok(root, "config", "migrate", "--dry-run")
    assert "dry run: nothing was written" in dry
    assert "adapter: claude-code" in dry
    assert {p.name: p.read_text() for p in (root / "config").glob("*.yaml")} == originals
    assert not list((root / "config").glob("backup-*"))

    out = ok(root, "config", "migrate")
    assert (
        "routing, prices, budgets and limits are identical with the base policies, "
        "profile production, profile development" in out
    )
    assert "cost_optimization.complex_task_models" in out  # kept, not acted on
    (backup,) = (root / "config").glob("backup-*")
    assert {p.name: p.read_text() for p in backup.glob("*.yaml")} == originals
    assert "kept as comments:" in (backup / "MIGRATION.txt").read_text()
    models = (root / "config" / "models.yaml").read_text()
    assert "cost_per_1k_tokens" not in yaml.safe_load(models)["models"]["claude-3-haiku"]
    assert (
        "# role: Writes small scripts  (kept from the older file, not acted on)"
        in (root / "config" / "agents.yaml").read_text()
    )

    validated = ok(root, "config", "validate")
    assert "older LLM Service Layer schema" not in validated
    assert not locate(root).legacy
    assert plan_of(root) == before
    assert plan_of(root, production) == before_production
    # nothing more to do the second time
    assert "nothing to migrate" in ok(root, "config", "migrate")


def test_migrate_refuses_a_config_that_does_not_load(tmp_path: Path) -> None:
    root = seed_workspace(tmp_path, agents={"agents": {"broken": {"preferred_tool": "nope"}}})
    originals = {p.name: p.read_text() for p in (root / "config").glob("*.yaml")}
    done = orchestrator(root, "config", "migrate")
    assert done.returncode == 1
    assert "agents.broken.preferred_tool: unknown tool 'nope'" in done.stderr
    assert {p.name: p.read_text() for p in (root / "config").glob("*.yaml")} == originals
    assert not list((root / "config").glob("backup-*"))


# --- messages --------------------------------------------------------------------------


def test_config_messages_are_in_the_users_terms(tmp_path: Path) -> None:
    root = seed_workspace(tmp_path)
    native = tmp_path / "native"
    (native / "config").mkdir(parents=True)
    (native / "config" / "agents.yaml").write_text("agents: {a: {preferred_tool: t}}\n")
    (native / "config" / "tools.yaml").write_text("tools: {t: {adapter: generic, binary: x}}\n")
    (native / "config" / "models.yaml").write_text("models: {}\n")
    (native / "config" / "policies.yaml").write_text(
        "budgets: {daily_usd: ten, mode: strict}\nretries: {max_attempts: 0}\n"
    )
    done = orchestrator(native, "config", "validate")
    assert done.returncode == 1
    for wording in ("Input should be", "Value error", "(fix the value)"):
        assert wording not in done.stderr
    assert "budgets.daily_usd: 'ten' is not a number (write one such as 2.5)" in done.stderr
    assert "budgets.mode: 'strict' is not one of soft or hard" in done.stderr
    assert "retries.max_attempts: 0 is too small (write a number at least 1)" in done.stderr
    del root


def test_a_key_written_twice_in_config_is_an_error(tmp_path: Path) -> None:
    root = seed_workspace(tmp_path)
    path = root / "config" / "policies.yaml"
    once = "    daily_budget_usd: 50.00\n"
    path.write_text(path.read_text().replace(once, once + "    daily_budget_usd: 5\n"))
    done = orchestrator(root, "config", "validate")
    assert done.returncode == 1
    assert "config/policies.yaml: key 'daily_budget_usd' is written twice (lines 13 and 14)" in (
        done.stderr
    )
