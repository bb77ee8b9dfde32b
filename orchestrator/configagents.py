"""The models of `config/tools.yaml`, `config/models.yaml` and `config/agents.yaml`: the
CLIs that do the work, the models they run, and the agents that route tasks to them.

Each field's description is the documentation of its key: `orchestrator.reference` renders
them into docs/reference/config.md. `orchestrator.config` re-exports every model here.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from orchestrator.adapters import AdapterName
from orchestrator.values import Duration, IdleTimeout


class Strict(BaseModel):
    """The base of every config model: an unknown key is an error, values are frozen, and
    every number is finite (a NaN or infinite timeout, budget or price would pass the
    checks here and break every task later)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


# --- tools.yaml ------------------------------------------------------------------------


class OutputSpec(Strict):
    """How the generic adapter reads a tool's stdout: its format, and for JSON the dotted
    path (`usage.input_tokens`, `items.0.text`) of each field."""

    format: Literal["text", "json", "jsonl"] = Field(
        "text",
        description="`text`: the whole stdout is the answer; `json`: one JSON object; "
        "`jsonl`: one JSON object per line, read as it comes (each field is the latest "
        "value found at its path, so counts are running totals).",
    )
    text: str | None = Field(None, description="Path of the answer (json, jsonl).")
    input_tokens: str | None = Field(None, description="Path of the input token count.")
    output_tokens: str | None = Field(None, description="Path of the output token count.")
    cache_read_tokens: str | None = Field(
        None, description="Path of the count of input tokens read from the provider's cache."
    )
    cache_write_tokens: str | None = Field(
        None, description="Path of the count of input tokens written to the provider's cache."
    )
    cost_usd: str | None = Field(
        None,
        description="Path of the cost the tool reports, in USD (else it is computed from "
        "the model's prices).",
    )
    model: str | None = Field(
        None, description="Path of the model that answered (else the model asked for)."
    )
    session_id: str | None = Field(
        None, description="Path of the tool's session id (recorded in telemetry)."
    )


class RateLimit(Strict):
    """Starts allowed per minute and per hour; give either or both (both apply)."""

    requests_per_minute: float | None = Field(
        None,
        gt=0,
        description="Starts per minute: a token bucket allowing bursts of ten seconds' worth.",
    )
    requests_per_hour: float | None = Field(
        None, gt=0, description="Starts in any hour (a sliding window)."
    )

    @model_validator(mode="after")
    def _some(self) -> RateLimit:
        if self.requests_per_minute is None and self.requests_per_hour is None:
            raise ValueError("give requests_per_minute, requests_per_hour or both")
        return self


class Platforms(Strict):
    """A tool's binary per operating system, where it differs from `binary`."""

    linux: str | None = Field(None, description="The binary on Linux (WSL included).")
    macos: str | None = Field(None, description="The binary on macOS.")
    windows: str | None = Field(None, description="The binary on Windows.")


class ToolConfig(Strict):
    """One CLI: how to run it, what it may see, and how long and how often it may run."""

    adapter: AdapterName = Field(
        description="How the CLI is driven and its output read: `claude-code`, `codex`, "
        "`gemini`, `generic` (any CLI, with `args` and `output`), or the name an installed "
        "adapter plugin registers (docs/plugins.md)."
    )
    binary: str = Field(
        description="argv[0]: a name looked up on PATH, an absolute path, or a path with a "
        "`/` taken from the workspace (`bin/my-cli`)."
    )
    args: list[str] = Field(
        default_factory=list,
        description="The generic adapter's arguments, one argv element each, never through "
        "a shell. Placeholders: `{model}`, `{prompt}`, `{prompt_file}` (with `prompt: file`), "
        "`{output_file}`, `{task_id}`, `{workspace}`; `{{` and `}}` are literal braces.",
    )
    prompt: Literal["stdin", "arg", "file"] = Field(
        "stdin",
        description="How a generic tool gets the prompt: on stdin; as an argument (`{prompt}` "
        "in args, else last, after `--` when it starts with `-`); or as a file "
        "(`{prompt_file}` in args).",
    )
    output: OutputSpec = Field(
        default_factory=OutputSpec, description="How a generic tool's stdout is read."
    )
    models: list[str] = Field(
        default_factory=list,
        description="The models this tool runs, in order; the first is its default. Empty: "
        "the CLI's own default model.",
    )
    env: list[str] = Field(
        default_factory=list,
        description="Environment variables passed through to the tool (API keys, config "
        "folders). It gets only PATH, HOME, LANG, TMPDIR and the like otherwise.",
    )
    timeout: Duration = Field(
        600.0,
        description="The longest one attempt may take: then its whole process group is "
        "killed and the attempt fails as `timeout`. A task's `timeout` overrides it.",
    )
    idle_timeout: IdleTimeout | None = Field(
        None,
        description="No output byte (stdout or stderr) for this long kills the attempt as "
        "`stalled`; `off` or 0: no limit but `timeout`. Not set: 5m for the agent CLIs' "
        "adapters, none for `generic`. A task's `idle_timeout` overrides it.",
    )
    max_concurrency: int = Field(
        4, ge=1, description="Attempts of this tool that may run at once (per daemon)."
    )
    rate_limit: RateLimit | None = Field(
        None, description="Starts of this tool allowed per minute and per hour."
    )
    base_url: str | None = Field(
        None,
        description="The API the CLI talks to, passed as it expects (docs/tools.md). Not "
        "set: the provider's public API.",
    )
    permission_mode: str | None = Field(
        None,
        description="claude's `--permission-mode` (`acceptEdits`, `auto`, `plan`, ...). Not "
        "set: claude's default mode.",
    )
    sandbox: str | None = Field(
        None,
        description="codex's `--sandbox` (`read-only`, `workspace-write`, "
        "`danger-full-access`). Not set: codex exec's `read-only`.",
    )
    approval_mode: str | None = Field(
        None,
        description="codex's `-a` (`on-request`, `never`) or gemini's and qwen's "
        "`--approval-mode` (`default`, `auto_edit`, `yolo`, `plan`, ...).",
    )
    max_turns: int | None = Field(
        None, ge=1, description="claude's `--max-turns`, qwen's `--max-session-turns`."
    )
    extra_args: list[str] = Field(
        default_factory=list,
        description="Arguments appended after the adapter's own (for codex, before the "
        "final `-`). No output format options: the adapters read their own.",
    )
    prompt_overhead_tokens: int = Field(
        0,
        ge=0,
        description="Tokens the CLI adds to every request (its own system prompt and tool "
        "definitions), counted in budget estimates.",
    )
    platforms: Platforms | None = Field(
        None, description="The binary per operating system, where it differs from `binary`."
    )
    capabilities: list[str] = Field(
        default_factory=list,
        description="Descriptive: shown by `config validate`, not used for routing.",
    )
    note: str | None = Field(None, description="Descriptive: shown by `config validate`.")


class ToolsFile(Strict):
    """The CLIs that do the work, by name. Each runs as a subprocess with an argv list (no
    shell), its own process group and a minimal environment; docs/tools.md has each
    adapter's options."""

    tools: dict[str, ToolConfig] = Field(
        description="The tools by name: the names agents, fallback chains and `tool:model` "
        "targets use."
    )


# --- models.yaml -----------------------------------------------------------------------


class Prices(Strict):
    """USD per million tokens."""

    input: float = Field(ge=0, description="USD per million input tokens.")
    output: float = Field(ge=0, description="USD per million output tokens.")
    cache_read: float | None = Field(
        None, ge=0, description="USD per million tokens read from the cache. Not set: `input`."
    )
    cache_write: float | None = Field(
        None, ge=0, description="USD per million tokens written to the cache. Not set: `input`."
    )


class ModelConfig(Strict):
    """One model: who serves it, its prices and limits, and what replaces it."""

    provider: str | None = Field(
        None,
        description="Who serves it (`anthropic`, `openai`, `google`, ...): picks its prices "
        "in the price library, and names it in `rate_limits:` of policies.yaml.",
    )
    price_per_mtok: Prices | None = Field(
        None,
        description="Prices that override the price library's (genai-prices), or price a "
        "model it does not know. Not set, and unknown there: the cost is recorded as unknown.",
    )
    context_window: int | None = Field(
        None, gt=0, description="Descriptive: the model's context window, in tokens."
    )
    rate_limit: RateLimit | None = Field(
        None, description="Starts on this model allowed per minute and per hour."
    )
    deprecated: bool = Field(
        False,
        description="A deprecated model with `superseded_by` is replaced by its successor "
        "wherever it is picked, with a warning in the result; without one it is used, with "
        "a warning.",
    )
    superseded_by: str | None = Field(
        None, description="The model that replaces this one when it is `deprecated`."
    )
    task_suitability: list[str] = Field(
        default_factory=list,
        description="Descriptive: shown by `config validate`, not used for routing.",
    )
    note: str | None = Field(None, description="Descriptive: shown by `config validate`.")


class ModelsFile(Strict):
    """Models by name: provider, prices, limits and deprecations. A model need not be
    listed here to be used (a tool's `models` is enough): prices then come from the
    genai-prices library, which works offline."""

    models: dict[str, ModelConfig] = Field(
        default_factory=dict, description="The models by name, as tools and agents name them."
    )


# --- agents.yaml -----------------------------------------------------------------------


class AgentConfig(Strict):
    """One agent: where its tasks go first, and where they go when that fails."""

    preferred_tool: str = Field(description="The tool its tasks go to first.")
    preferred_model: str | None = Field(
        None, description="The model of `preferred_tool` to use. Not set: that tool's first."
    )
    task_types: dict[str, str] = Field(
        default_factory=dict,
        description="A task's `task_type` → the target that runs it first: `tool:model` "
        "(split on the first colon) or a model.",
    )
    fallback_chain: list[str] = Field(
        default_factory=list,
        description="Targets tried in order when an attempt fails in a way another tool may "
        "not: `tool:model`, a model, or a tool name (its default model).",
    )
    profile: str | None = Field(
        None,
        description="A file (relative to the workspace) whose text is put before every "
        "prompt of this agent.",
    )
    handoff_to: list[str] = Field(
        default_factory=list,
        description="Agents this one may hand work to: its prompts explain the `handoff` "
        "block, and a block naming one of these writes a follow-up task (docs/workflows.md).",
    )
    isolation: Literal["none", "worktree"] = Field(
        "none",
        description="`worktree`: each task runs in a git worktree of its own and leaves its "
        "work on the branch `orchestrator/<task id>` (docs/isolation.md); `none`: in the "
        "workspace itself.",
    )
    capabilities: list[str] = Field(
        default_factory=list,
        description="Descriptive: shown by `config validate`, not used for routing.",
    )
    note: str | None = Field(None, description="Descriptive: shown by `config validate`.")


class AgentsFile(Strict):
    """Who does the work: the names task files give in `agent:`, each with its route."""

    agents: dict[str, AgentConfig] = Field(description="The agents by name.")
