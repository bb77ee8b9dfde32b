"""The older schema → native mappings, one config file at a time; pure.

What changes (each change is reported as a `Note`, so nothing happens silently):

- models: `cost_per_1k_tokens` {input, output} becomes `price_per_mtok` (times 1000);
- tools: a `binary` that is one of the agent CLIs we know gets that CLI's adapter (its
  `command_template` is replaced); any other becomes a `generic` tool whose argv template
  is the `command_template` split once, here, with shell-like quoting. Placeholders are
  filled per argv element when the tool runs, so a prompt is always one element and never
  an option. Shell syntax (pipes, `&&`) cannot run without a shell and is reported.
- policies: `policies: {default: …, <name>: …}` becomes the top-level policies plus named
  `profiles:`; each policy's fields map to `budgets:`, `cost_optimization:` and `privacy:`,
  with the older schema's defaults for what it leaves out ($10 a day, soft limits at 80%);
  `rate_limiting:` per-minute and per-hour limits become `rate_limits:`.

Keys the native schema knows pass through unchanged (a half-migrated file still reads);
keys it does not know are dropped from the native mapping and reported as kept but not
acted on, so `config migrate` can write them back as comments.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from functools import cache
from typing import Any, Literal

import yaml

from orchestrator.errors import ConfigProblem

# The binaries of the agent CLIs that have an adapter of their own.
KNOWN_CLIS = {"claude": "claude-code", "codex": "codex", "gemini": "gemini"}
# What a converted known CLI takes from the default config `orchestrator init` writes.
ADAPTER_DEFAULTS = ("env", "timeout", "max_concurrency", "prompt_overhead_tokens")
# The older schema's defaults for a policy that leaves them out.
SEED_DAILY_USD = 10.0
SEED_LIMIT = {"type": "soft", "threshold_percent": 80}
SEED_SIMPLE_THRESHOLD = 1500

NATIVE_KEYS = {
    "agents.yaml": {
        "preferred_tool", "preferred_model", "task_types", "fallback_chain", "profile",
        "handoff_to", "capabilities", "note",
    },
    "tools.yaml": {
        "adapter", "binary", "args", "prompt", "output", "models", "env", "timeout",
        "max_concurrency", "rate_limit", "base_url", "permission_mode", "sandbox",
        "approval_mode", "max_turns", "extra_args", "prompt_overhead_tokens", "platforms",
        "capabilities", "note",
    },
    "models.yaml": {
        "provider", "price_per_mtok", "context_window", "rate_limit", "deprecated",
        "superseded_by", "task_suitability", "note",
    },
}  # fmt: skip
_SHELL = ("|", "&", ";", "<", ">", "`", "$(")


@dataclass(frozen=True)
class Note:
    """One conversion, or one key kept but not acted on (`field` is the older file's)."""

    file: str
    field: str
    kind: Literal["converted", "kept"]
    text: str

    def __str__(self) -> str:
        return f"{self.file}: {self.field}: {self.text}" + (
            " (kept, not acted on)" if self.kind == "kept" else ""
        )


@dataclass
class Converted:
    """A file's native mapping, with what was done to get it (`display` names the file)."""

    display: str
    data: dict[str, Any] = field(default_factory=dict)
    notes: list[Note] = field(default_factory=list)
    problems: list[ConfigProblem] = field(default_factory=list)

    def did(self, where: str, text: str) -> None:
        self.notes.append(Note(self.display, where, "converted", text))

    def kept(self, where: str, value: Any) -> None:
        self.notes.append(Note(self.display, where, "kept", _short(value)))

    def problem(self, where: str, message: str, hint: str) -> None:
        self.problems.append(ConfigProblem(self.display, where, message, hint))


def is_legacy(files: dict[str, Any]) -> bool:
    """Whether a folder's files (name → mapping) are written in the older schema."""

    def has(name: str, section: str, key: str) -> bool:
        data = files.get(name)
        block = data.get(section) if isinstance(data, dict) else None
        entries = block.values() if isinstance(block, dict) else ()
        return any(isinstance(entry, dict) and key in entry for entry in entries)

    policies = files.get("policies.yaml")
    return (
        has("models.yaml", "models", "cost_per_1k_tokens")
        or has("tools.yaml", "tools", "command_template")
        or (isinstance(policies, dict) and ("policies" in policies or "rate_limiting" in policies))
    )


def convert(name: str, data: dict[str, Any], display: str) -> Converted:
    """The native mapping for the older file `name` (shown as `display` in notes)."""
    out = Converted(display)
    if name == "policies.yaml":
        _policies(data, out)
        return out
    section = name.removesuffix(".yaml")
    for key, value in data.items():
        if key != section:
            out.kept(key, value)
    entries = data.get(section)
    if not isinstance(entries, dict):
        out.data = {section: entries} if entries is not None else {}
        return out  # the native check reports the shape
    converted: dict[str, Any] = {}
    for entry, raw in entries.items():
        where = f"{section}.{entry}"
        if not isinstance(raw, dict):
            converted[entry] = raw
        elif name == "tools.yaml":
            converted[entry] = _tool(raw, where, out)
        elif name == "models.yaml":
            converted[entry] = _model(raw, where, out)
        else:
            converted[entry] = _known_only(raw, NATIVE_KEYS[name], where, out)
    out.data = {section: converted}
    return out


def _known_only(
    raw: dict[str, Any], known: set[str], where: str, out: Converted, *, converting: str = ""
) -> dict[str, Any]:
    """The keys of `raw` the native schema knows; the others are noted as kept (except
    `converting`, the one the caller converts)."""
    for key, value in raw.items():
        if key not in known and key != converting:
            out.kept(f"{where}.{key}", value)
    return {k: v for k, v in raw.items() if k in known}


def _short(value: Any) -> str:
    text = yaml.safe_dump(value, default_flow_style=True, width=10_000).strip()
    text = text.removesuffix("...").strip()
    return text if len(text) <= 60 else text[:57] + "..."


# --- models ----------------------------------------------------------------------------


def _model(raw: dict[str, Any], where: str, out: Converted) -> dict[str, Any]:
    old_key = "cost_per_1k_tokens"
    model = _known_only(raw, NATIVE_KEYS["models.yaml"], where, out, converting=old_key)
    old = raw.get(old_key)
    field = f"{where}.{old_key}"
    if old is None:
        return model
    if not isinstance(old, dict):
        out.problem(field, "expected {input: USD, output: USD}", "fix it")
        return model
    prices: dict[str, Any] = {}
    for kind, value in old.items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            message = f"expected a price in USD per 1000 tokens, got {value!a}"
            out.problem(f"{field}.{kind}", message, "write a number such as 0.003")
        else:
            prices[kind] = per_mtok(value)
    model["price_per_mtok"] = prices
    shown = ", ".join(f"{k} {v:g}" for k, v in prices.items())
    out.did(field, f"price_per_mtok: {shown} (USD per million tokens: times 1000)")
    return model


def per_mtok(per_1k: float) -> float:
    """USD per 1000 tokens → per million, without float noise (0.003 → 3.0, not 3.0000001)."""
    return float(f"{per_1k * 1000:.10g}")


# --- tools -----------------------------------------------------------------------------


@cache
def _adapter_defaults() -> dict[str, dict[str, Any]]:
    from importlib import resources

    text = (resources.files("orchestrator") / "defaults" / "tools.yaml").read_text("utf-8")
    tools = yaml.safe_load(text)["tools"]
    return {
        t["adapter"]: {k: t[k] for k in ADAPTER_DEFAULTS if k in t}
        for t in tools.values()
        if t["adapter"] != "generic"
    }


def _exe_name(binary: object) -> str:
    name = str(binary).replace("\\", "/").rsplit("/", 1)[-1]
    for suffix in (".exe", ".cmd", ".bat", ".ps1"):
        name = name.removesuffix(suffix)
    return name


def _tool(raw: dict[str, Any], where: str, out: Converted) -> dict[str, Any]:
    old_key = "command_template"
    tool = _known_only(raw, NATIVE_KEYS["tools.yaml"], where, out, converting=old_key)
    template = raw.get(old_key)
    field = f"{where}.{old_key}"
    if "adapter" in raw or template is None:
        if template is not None:
            out.kept(field, template)
        return tool  # written natively
    platforms = raw.get("platforms")
    binaries = [raw.get("binary"), *(platforms.values() if isinstance(platforms, dict) else ())]
    adapter = next((KNOWN_CLIS[n] for n in map(_exe_name, binaries) if n in KNOWN_CLIS), None)
    if adapter is not None:
        tool = {"adapter": adapter, **tool}
        for key, value in _adapter_defaults()[adapter].items():
            tool.setdefault(key, value)
        env = ", ".join(tool.get("env", []))
        out.did(field, f"replaced by the {adapter} adapter, which drives the CLI with its "
                f"JSON output (tokens and cost recorded); env: {env}")  # fmt: skip
        return tool
    if not isinstance(template, str):
        out.problem(field, "expected a command line", '"{binary} --model {model} {prompt_file}"')
        return tool
    try:
        args, prompt = template_args(template)
    except ValueError as exc:
        hint = "write a script that does it and name it as the tool's binary"
        out.problem(field, f"{exc} in {template!a}", hint)
        return tool
    tool = {"adapter": "generic", **tool, "args": args, "prompt": prompt}
    out.did(field, f"generic tool: args {args}, prompt on {prompt}; it gets only PATH, HOME "
            "and the like: list the variables it needs (API keys) under env")  # fmt: skip
    return tool


def template_args(template: str) -> tuple[list[str], Literal["stdin", "arg", "file"]]:
    """A `command_template` → (argv template after the binary, how the prompt is given).

    `< {prompt_file}` becomes the prompt on stdin, `> {output_file}` the answer on stdout
    (`--out {output_file}` stays: the answer is read from that file), `"$(cat
    {prompt_file})"` the prompt as that one argument; a trailing positional prompt becomes
    `prompt: arg` (appended after `--` when it starts with '-')."""
    tokens = shlex.split(template)
    if not tokens or tokens[0] != "{binary}":
        raise ValueError("the template must start with {binary}")
    args: list[str] = []
    prompt: Literal["stdin", "arg", "file"] = "stdin"
    rest = tokens[1:]
    skip = False
    for token, after in zip(rest, [*rest[1:], None], strict=True):
        if skip or (token, after) in (("<", "{prompt_file}"), (">", "{output_file}")):
            skip = not skip  # the redirection, then its file
            continue
        if token in ("$(cat {prompt_file})", "`cat {prompt_file}`", "{prompt}"):
            token, prompt = "{prompt}", "arg"
        elif any(mark in token for mark in _SHELL):
            raise ValueError(f"shell syntax {token!a} needs a shell, which tools never get")
        elif "{prompt_file}" in token:
            prompt = "file"
        args.append(token)
    if args[-1:] == ["{prompt}"] and not (len(args) > 1 and args[-2].startswith("-")):
        # positional: the adapter appends it, after "--" when it starts with '-' (an
        # option's value, `--prompt {prompt}`, stays where it is)
        args.pop()
    return args, prompt


# --- policies --------------------------------------------------------------------------

_LEGACY_POLICIES = ("policies", "cost_optimization", "rate_limiting")


def _policies(data: dict[str, Any], out: Converted) -> None:
    native = {k: v for k, v in data.items() if k not in _LEGACY_POLICIES}
    profiles = data.get("policies")
    if isinstance(profiles, dict):
        if "default" not in profiles:
            out.did("policies", "no `default` policy: the native defaults apply unless a "
                    "profile is chosen")  # fmt: skip
        for name, raw in profiles.items():
            converted = _policy(raw, f"policies.{name}", out, whole=name != "default")
            if name == "default":
                native.update(converted)
            else:
                native.setdefault("profiles", {})[name] = converted
    elif profiles is not None:
        out.problem("policies", "expected named policies", "write policies: {default: {...}}")
    _cost_optimization(data.get("cost_optimization"), native, out)
    _rate_limiting(data.get("rate_limiting"), native, out)
    # A profile without its own threshold has the global one, as in the older schema
    # (not the default policy's, which the overlay would otherwise pass on).
    rules = data.get("cost_optimization")
    threshold = "simple_task_threshold_tokens"
    fallback = rules.get(threshold, SEED_SIMPLE_THRESHOLD) if isinstance(rules, dict) else 0
    for profile in native.get("profiles", {}).values():
        profile.setdefault("cost_optimization", {}).setdefault(threshold, fallback)
    out.data = native


_POLICY_FIELDS = {
    "daily_budget_usd": ("budgets", "daily_usd"),
    "monthly_budget_usd": ("budgets", "monthly_usd"),
    "require_justification_over_usd": ("budgets", "require_justification_over_usd"),
    "prefer_cheaper_models_under_tokens": ("cost_optimization", "simple_task_threshold_tokens"),
}


def _policy(raw: Any, where: str, out: Converted, *, whole: bool = False) -> dict[str, Any]:
    """One older policy as native policies; `whole` (a profile, laid over the default
    policy) states every value the older schema defaults, so none is inherited."""
    if not isinstance(raw, dict):
        out.problem(where, "expected a policy mapping", "write daily_budget_usd: 10 and the like")
        return {}
    limit = raw.get("limit")
    limit = limit if isinstance(limit, dict) else {}
    policy: dict[str, Any] = {
        "budgets": {
            "daily_usd": SEED_DAILY_USD,
            "mode": limit.get("type", SEED_LIMIT["type"]),
            "warn_at_percent": limit.get("threshold_percent", SEED_LIMIT["threshold_percent"]),
        }
    }
    if whole:
        policy["budgets"] |= {"monthly_usd": None, "require_justification_over_usd": None}
        policy["privacy"] = {"prompts": "metadata"}
    for key, value in raw.items():
        if key in _POLICY_FIELDS:
            section, native = _POLICY_FIELDS[key]
            policy.setdefault(section, {})[native] = value
            out.did(f"{where}.{key}", f"{section}.{native}")
        elif key == "limit":
            out.did(f"{where}.limit", "budgets.mode (soft warns, hard blocks), warn_at_percent")
        elif key == "log_prompts":
            policy["privacy"] = {"prompts": "full" if value else "metadata"}
            out.did(f"{where}.{key}", f"privacy.prompts: {policy['privacy']['prompts']}")
        elif key == "auto_fallback_on_rate_limit" and value is not False:
            out.did(f"{where}.{key}", "the native behaviour: rate-limited attempts fall back")
        else:
            out.kept(f"{where}.{key}", value)
    if "daily_budget_usd" not in raw:
        out.did(f"{where}.daily_budget_usd", f"not given: the older default, ${SEED_DAILY_USD:g}")
    if set(SEED_LIMIT) - set(limit):
        out.did(f"{where}.limit", "not (fully) given: the older default, soft at 80%")
    return policy


def _cost_optimization(raw: Any, native: dict[str, Any], out: Converted) -> None:
    if not isinstance(raw, dict):
        if raw is not None:
            native["cost_optimization"] = raw  # the native check reports the shape
        return
    rules = native.setdefault("cost_optimization", {})
    threshold = "simple_task_threshold_tokens"
    rules.setdefault(threshold, raw.get(threshold, SEED_SIMPLE_THRESHOLD))
    for key, value in raw.items():
        if key == "simple_task_models":
            rules[key] = value
        elif key != threshold:
            out.kept(f"cost_optimization.{key}", value)


_PERIODS = {
    "max_requests_per_minute": "requests_per_minute",
    "max_requests_per_hour": "requests_per_hour",
}


def _rate_limiting(raw: Any, native: dict[str, Any], out: Converted) -> None:
    if raw is None:
        return
    if not isinstance(raw, dict):
        out.problem("rate_limiting", "expected a mapping", "max_requests_per_minute: {tool: 50}")
        return
    limits = native.setdefault("rate_limits", {})
    for key, per_name in raw.items():
        if key not in _PERIODS or not isinstance(per_name, dict):
            out.kept(f"rate_limiting.{key}", per_name)
            continue
        for name, value in per_name.items():
            limits.setdefault(name, {})[_PERIODS[key]] = value
        out.did(f"rate_limiting.{key}", f"rate_limits.<tool, model or provider>.{_PERIODS[key]}")
