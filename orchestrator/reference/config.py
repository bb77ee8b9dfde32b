"""docs/reference/config.md: every key of every config file, from the models' own
descriptions, with an example of each file (tests/test_reference.py loads the examples
with the real loader)."""

from __future__ import annotations

from dataclasses import dataclass

from orchestrator.config import (
    AgentsFile,
    ExecutorFile,
    ModelsFile,
    PoliciesFile,
    SchedulesFile,
    Strict,
    ToolsFile,
)
from orchestrator.configdirs import ENV_VAR, PROFILE_ENV
from orchestrator.reference.tables import markdown, rows

COMMAND = "orchestrator config reference > docs/reference/config.md"


@dataclass(frozen=True)
class ConfigFile:
    name: str
    model: type[Strict]
    required: bool
    example: str


TOOLS = """\
tools:
  claude-code:
    adapter: claude-code
    binary: claude
    models: [claude-sonnet-4-5, claude-haiku-4-5]   # the first is the default
    env: [ANTHROPIC_API_KEY]
    timeout: 15m
    idle_timeout: 5m
    max_concurrency: 4
    rate_limit: {requests_per_minute: 50}
    permission_mode: acceptEdits
    prompt_overhead_tokens: 12000
  my-cli:
    adapter: generic
    binary: bin/my-cli              # a path with a / is taken from the workspace
    platforms: {windows: bin/my-cli.exe}
    args: [--model, "{model}", --json]
    prompt: stdin
    output:
      format: json
      text: result
      input_tokens: usage.input_tokens
      output_tokens: usage.output_tokens
    models: [local-model]
    timeout: 90s
    idle_timeout: off
    note: our own CLI
"""

MODELS = """\
models:
  claude-sonnet-4-5: {provider: anthropic, context_window: 200000}
  claude-haiku-4-5:
    provider: anthropic
    rate_limit: {requests_per_hour: 3000}
  claude-sonnet-4:
    deprecated: true
    superseded_by: claude-sonnet-4-5  # tasks and chains naming it get claude-sonnet-4-5
  local-model:
    price_per_mtok: {input: 0.5, output: 1.5, cache_read: 0.05}
    task_suitability: [small edits]
"""

AGENTS = """\
agents:
  backend-dev:
    preferred_tool: claude-code
    preferred_model: claude-sonnet-4-5
    task_types:
      docs: claude-haiku-4-5          # task_type: docs goes to claude-code:claude-haiku-4-5
      quick: "my-cli:local-model"
    fallback_chain: ["my-cli:local-model"]
    handoff_to: [reviewer]
    isolation: none                   # worktree: a git branch per task
  reviewer:
    preferred_tool: my-cli
    profile: agents/reviewer.md       # put before every prompt of this agent
    capabilities: [review]
"""

POLICIES = """\
budgets:
  daily_usd: 10
  monthly_usd: 200
  warn_at_percent: 80
  mode: hard
  timezone: Europe/Berlin
  per_agent:
    backend-dev: {daily_usd: 5}
  on_budget_exhausted: downgrade
  require_justification_over_usd: 2
cost_optimization:
  simple_task_threshold_tokens: 1500
  simple_task_models: [claude-haiku-4-5]
retries: {max_attempts: 3, backoff: 2s, backoff_max: 5m}
circuit_breaker: {failures: 3, backoff: 30s, backoff_max: 10m}
usage_windows: {max_wait: 8d, unknown_reset: 1h}
privacy: {prompts: metadata}
concurrency: 8
tasks: {strict_dependencies: false}
rate_limits:
  anthropic: {requests_per_minute: 100}   # a provider: every model it serves
profiles:
  night:                                  # --profile night
    budgets: {daily_usd: 50, mode: soft}
"""

SCHEDULES = """\
schedules:
  nightly-review:
    cron: "0 2 * * *"                 # 02:00 every day, in budgets.timezone
    task: {agent: reviewer, prompt: "Review yesterday's commits", priority: low}
    note: the day's changes, reviewed before morning
"""

EXECUTOR = """\
executor:
  kind: dask
  scheduler: tcp://10.0.0.5:8786
"""

FILES = (
    ConfigFile("tools.yaml", ToolsFile, True, TOOLS),
    ConfigFile("models.yaml", ModelsFile, True, MODELS),
    ConfigFile("agents.yaml", AgentsFile, True, AGENTS),
    ConfigFile("policies.yaml", PoliciesFile, True, POLICIES),
    ConfigFile("schedules.yaml", SchedulesFile, False, SCHEDULES),
    ConfigFile("executor.yaml", ExecutorFile, False, EXECUTOR),
)

INTRO = f"""\
# Config reference

> Generated from the config models (`orchestrator/configagents.py`,
> `orchestrator/configpolicies.py`): do not edit by hand. Regenerate with
> `{COMMAND}`.

A workspace's config is four files, `tools.yaml`, `models.yaml`, `agents.yaml` and
`policies.yaml`, and optionally `schedules.yaml` and `executor.yaml`. `orchestrator init`
writes a default set; `orchestrator config validate` checks them and lists every problem
with its file, key, value and a suggestion.

**Where they are read from.** The workspace's `config/` is read over your user config
folder (`$XDG_CONFIG_HOME/orchestrator`, else `~/.config/orchestrator` on Linux,
`~/Library/Application Support/orchestrator` on macOS, `%APPDATA%\\orchestrator` on
Windows; `{ENV_VAR}` names another folder instead). Each file may be in either folder;
when both have it, they merge key by key and the workspace wins: a mapping merges, a list
replaces the whole list (README, "Where config is read from").

**Strict.** An unknown key is an error that names the closest valid one; numbers must be
finite. Durations are written `90` (seconds), `90s`, `15m`, `1.5h`, `8d` or `250ms`.
A target is `tool:model` (split at the first colon) or a bare model.

**Profiles.** `profiles:` in `policies.yaml` holds named overlays of the policies, chosen
with `--profile NAME` or `{PROFILE_ENV}=NAME`.

**The older schema.** A `config/` written for the LLM Service Layer (`cost_per_1k_tokens`,
`command_template`, `policies:`, `rate_limiting:`) is read as it is and converted in
memory; `orchestrator config migrate` rewrites it in the schema below. Each older key and
what it becomes: [docs/migrating.md](../migrating.md).

In the tables, `<tool>`, `<agent>`, ... stand for any name of yours, and `[]` for each
entry of a list.
"""


def config_reference() -> str:
    """The markdown of docs/reference/config.md."""
    parts = [INTRO, "Files: " + ", ".join(f"[{f.name}](#{_anchor(f.name)})" for f in FILES)]
    for file in FILES:
        needed = "required" if file.required else "optional"
        doc = " ".join((file.model.__doc__ or "").split())
        parts.append(
            f"## {file.name}\n\n`config/{file.name}` ({needed}). {doc}\n\n"
            + markdown(rows(file.model))
            + f"\nExample:\n\n```yaml\n{file.example}```"
        )
    return "\n\n".join(part.rstrip("\n") for part in parts) + "\n"


def _anchor(title: str) -> str:
    """GitHub's anchor of a heading: lower case, dots and other punctuation dropped."""
    return "".join(c for c in title.lower() if c.isalnum() or c in "-_ ").replace(" ", "-")
