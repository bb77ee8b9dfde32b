"""docs/reference/tasks.md: every key of a task file (the Task model's descriptions) and of
a result file (the Result dataclass's), with the words each takes: priorities, statuses,
route reasons and error kinds. tests/test_reference.py checks the lists here against the
code that writes those words, and a real result's keys against the page."""

from __future__ import annotations

import typing

from orchestrator.adapters.base import FALLBACK_KINDS, ErrorKind
from orchestrator.reference.tables import markdown, rows
from orchestrator.results import Result
from orchestrator.routing import RouteReason
from orchestrator.tasks import MAX_INPUT_BYTES, MAX_TASK_BYTES, PRIORITIES, PRIORITY_SYNONYMS, Task
from orchestrator.workflow import MAX_HANDOFF_DEPTH

COMMAND = "orchestrator config reference tasks > docs/reference/tasks.md"
TASK_MIB = MAX_TASK_BYTES // (1024 * 1024)
INPUT_MIB = MAX_INPUT_BYTES // (1024 * 1024)

# Keys of a task file that are not fields of the Task model, and what they do.
OTHER_KEYS = {
    "artifacts": "The same as `artefacts` (when a file has both, `artefacts` is used).",
    "result": "A handoff block, acted on when the task succeeds: the keys below, as in an "
    "answer's `handoff` block (docs/workflows.md); `next_agent` is required.",
    "created_by": "Written on follow-up tasks (`handoff from <agent>`); kept, not used.",
    "depends_on": "Not a key (it is kept as an unknown one): write `dependencies`. "
    "`orchestrator submit --depends-on ID` writes `dependencies` for you.",
    "any other key": "Kept, and copied into the result's `task:`. One that looks like a "
    "misspelt key of ours (`promt`, `agnet`) gets a warning in the result.",
}
HANDOFF = {
    "next_agent": "The agent the follow-up task goes to.",
    "next_task_title": "The follow-up's title.",
    "next_task_notes": "The follow-up's notes (`context.notes`).",
    "next_artefacts": "The follow-up's artefacts.",
    "summary": "What this task did (kept in the result's `result:`).",
    "session": "`inherit`: the follow-up continues this task's session.",
}
STATUSES = {
    "succeeded": "An attempt gave an answer: `output`, `tool`, `model`.",
    "failed": "Every attempt the task had failed (`error` is the last failure); also a task "
    "quarantined, out of quota past `usage_windows.max_wait`, or whose worktree failed.",
    "timed_out": "As failed, when the last failure was the attempt's `timeout`.",
    "rejected": "The file cannot run (its YAML, a field, a file it names, a failed or "
    "cyclic dependency, a duplicate id, a missing justification): nothing ran.",
    "blocked_by_budget": "A hard budget would be passed (kind `budget_exhausted`): nothing "
    "more ran.",
    "cancelled": "Stopped by `orchestrator cancel` (or an `exec` whose budget warning was "
    "not confirmed).",
}
STATES = {  # what `status` shows of a task before it has a result
    "waiting_quota": "Every tool it may use is out of quota until a known time: it waits, "
    "then runs again. A state `orchestrator status` shows, never in a result file.",
}
OUTCOMES = {
    "succeeded": "It gave the answer.",
    "failed": "It ran, and failed (`error`).",
    "skipped": "It was not run (`error` says why: a rate limit, a closed usage window, an "
    "open circuit, a tool found unusable earlier, no justification); it used no attempt.",
}
ROUTE_REASONS = {
    "pinned": "The task's `tool` or `model`.",
    "task_type": "The agent's `task_types` entry for the task's `task_type`.",
    "cost_optimization": "A small prompt: `cost_optimization.simple_task_models`.",
    "preferred": "The agent's preferred tool and model.",
    "fallback": "An entry of the fallback chain (in `route_reason`: any target tried after "
    "a failure).",
    "budget_downgrade": "A cheaper model because the budget was spent "
    "(`on_budget_exhausted: downgrade`).",
}
# Every `error.kind`: (where it is met, what it means).
_ATTEMPT = "attempt"
_TASK = "task"
_FILE = "rejected"
ERROR_KINDS: dict[str, tuple[str, str]] = {
    "rate_limit": (_ATTEMPT, "The provider's rate limit (429); a skipped attempt gave its "
                   "turn to the next tool because of one."),
    "usage_limit": (_ATTEMPT, "A plan's usage window or a used-up quota, with the time it "
                    "opens: the chain falls back, or the task waits; past "
                    "`usage_windows.max_wait` the task fails with it."),
    "overloaded": (_ATTEMPT, "The provider is overloaded (529)."),
    "server_error": (_ATTEMPT, "A 5xx (or 408) from the provider."),
    "connection": (_ATTEMPT, "The API could not be reached."),
    "auth": (_ATTEMPT, "No key, or a refused one (401, 403): set it and list it in the "
             "tool's `env:`."),
    "bad_request": (_ATTEMPT, "The provider refused the request (400, 404, an unknown "
                    "model, a prompt too long)."),
    "cli_usage": (_ATTEMPT, "The CLI refused its command line or its config."),
    "timeout": (_ATTEMPT, "The attempt ran past its `timeout`; its process group was "
                "killed."),
    "missing_binary": (_ATTEMPT, "The tool's binary is not installed."),
    "not_executable": (_ATTEMPT, "The tool's binary cannot be executed."),
    "nonzero_exit": (_ATTEMPT, "The tool exited non-zero, or stopped early (max turns)."),
    "killed_by_signal": (_ATTEMPT, "The tool died of a signal."),
    "bad_output": (_ATTEMPT, "The output is not what the adapter reads (not JSON, a "
                   "stream cut off)."),
    "cancelled": (_ATTEMPT + ", " + _TASK, "The CLI was interrupted; or, for the task, "
                  "`orchestrator cancel` stopped it."),
    "stalled": (_ATTEMPT, "No output for `idle_timeout`: killed like a timeout."),
    "budget_exceeded": (_ATTEMPT, "The task's `budget_usd` was passed mid-run: the run "
                        "was stopped."),
    "usage_window": (_ATTEMPT, "Skipped: the tool:model's usage window is closed."),
    "cooldown": (_ATTEMPT, "Skipped: the tool:model's circuit is open."),
    "needs_justification": (_ATTEMPT + ", " + _FILE, "Estimated above "
                            "`budgets.require_justification_over_usd` with no "
                            "`justification`: the task is rejected, or that fallback "
                            "skipped."),
    "worker_lost": (_ATTEMPT, "The Dask worker running it died; Dask ran it again "
                    "elsewhere."),
    "budget_exhausted": (_TASK, "A hard budget would be passed (`blocked_by_budget`)."),
    "declined": (_TASK, "`exec`: the budget warning was not confirmed."),
    "no_route": (_TASK, "The agent's route has no tool to run."),
    "quarantined": (_TASK, "Started more than `retries.quarantine_after` times without "
                    "finishing: it is not run again."),
    "workspace_error": (_TASK, "Its git worktree could not be made, committed or removed."),
    "internal_error": (_TASK, "A bug of the orchestrator: please report it."),
    "unknown": (_TASK, "The last attempt's error said no kind."),
    "dependency_failed": (_FILE, "A dependency ended failed, rejected, cancelled, timed "
                          "out or blocked (and `on_dependency_failure` is `reject`)."),
    "dependency_cycle": (_FILE, "The dependencies form a cycle."),
    "duplicate_id": (_FILE, "Its id is queued already, or has a result (`retry` runs it "
                     "again)."),
    "unknown_base": (_FILE, "`base` names no branch, tag or commit."),
    "binary": (_FILE, "The file is binary, not YAML text."),
    "not_utf8": (_FILE, "The file is not UTF-8."),
    "too_large": (_FILE, f"The file (over {TASK_MIB} MiB), or a file it names (over "
                  f"{INPUT_MIB} MiB), is too large."),
    "yaml_syntax": (_FILE, "The YAML does not parse."),
    "yaml_aliases": (_FILE, "Its YAML aliases expand too far."),
    "not_a_mapping": (_FILE, "The file is not a mapping of keys."),
    "symlink": (_FILE, "The task file is a symbolic link."),
    "not_a_regular_file": (_FILE, "The task file, or a file it names, is not a regular "
                           "file."),
    "unreadable_file": (_FILE, "The task file, or a file it names, cannot be read."),
    "unsafe_id": (_FILE, "The id is not a safe file name."),
    "missing_agent": (_FILE, "No `agent`."),
    "unknown_agent": (_FILE, "The agent is not in config/agents.yaml."),
    "unknown_tool": (_FILE, "The pinned tool is not in config/tools.yaml."),
    "invalid_field": (_FILE, "A field's value is not what it takes (the message names "
                      "the field and the value)."),
    "empty_prompt": (_FILE, "Nothing to do: no prompt, prompt_file, title or "
                     "description."),
    "file_not_found": (_FILE, "A file it names does not exist."),
    "path_outside_workspace": (_FILE, "A file it names is outside the workspace."),
    "hard_link": (_FILE, "A file it names has other hard links (maybe outside the "
                  "workspace)."),
    "profile_unreadable": (_FILE, "The agent's profile file cannot be read."),
}  # fmt: skip


def _words(table: typing.Mapping[str, str], heading: str) -> str:
    lines = [f"| {heading} | meaning |", "| --- | --- |"]
    lines += [f"| {_code(word)} | {meaning} |" for word, meaning in table.items()]
    return "\n".join(lines)


def _code(word: str) -> str:
    """A word as code, unless it is words about keys (`any other key`)."""
    return word if " " in word else f"`{word}`"


def _priorities() -> str:
    lines = ["| priority | also written |", "| --- | --- |"]
    for priority in PRIORITIES:
        synonyms = [f"`{s}`" for s, p in PRIORITY_SYNONYMS.items() if p == priority]
        lines.append(f"| `{priority}` | {', '.join(synonyms) or '—'} |")
    return "\n".join(lines)


def _error_kinds() -> str:
    lines = ["| kind | where | falls back | meaning |", "| --- | --- | --- | --- |"]
    for kind, (where, meaning) in ERROR_KINDS.items():
        known = kind in {k.value for k in ErrorKind}
        falls = ("yes" if ErrorKind(kind) in FALLBACK_KINDS else "no") if known else "—"
        lines.append(f"| `{kind}` | {where} | {falls} | {meaning} |")
    return "\n".join(lines)


def tasks_reference() -> str:
    """The markdown of docs/reference/tasks.md."""
    reasons = ", ".join(f"`{r}`" for r in typing.get_args(RouteReason))
    return f"""\
# Task and result file reference

> Generated from the models (`orchestrator/tasks.py`, `orchestrator/results.py`): do not
> edit by hand. Regenerate with `{COMMAND}`.

A task is a YAML file in `work/inbox/` (write it under a dotfile or `*.tmp` name, then
rename it to `*.yaml` or `*.yml`): a mapping of the keys below, UTF-8, at most
{TASK_MIB} MiB. Its result is written once, atomically, to
`work/outbox/<id>.result.yaml`; the task file moves to `work/archive/YYYY-MM-DD/`.
[docs/tasks.md](../tasks.md) shows how loosely written files are read, with examples, and
[config.md](config.md) has the config the keys refer to.

## Task file

Only `agent` is required, with something to do: `prompt`, `prompt_file`, or `title` and
`description`. Texts that YAML reads as numbers or dates (`title: 2026`) are taken as
written.

{markdown(rows(Task)).rstrip()}

### Other keys

{_words(OTHER_KEYS, "key")}

A `result:` block (and an answer's `handoff` block) has these keys:

{_words(HANDOFF, "key")}

A chain stops after {MAX_HANDOFF_DEPTH} handoffs.

### Priorities

In any case (`HIGH`, `Low`); any other word is rejected with a hint listing these.

{_priorities()}

### Dependencies

An entry of `dependencies` (one entry alone needs no list) is:

- an **id** (`build-api`): waited for, even before a task with that id exists; `a, b` in
  one string is two ids when both parts can be ids;
- a **record** naming its task by `task_id`, else `id`, else `task`
  (`{{task_id: schema, reason: tables}}`): waited for; its other keys go into the prompt;
- **prose** or a document (`DDR-011 (completed)`, `docs/adr/0003.md`): whatever cannot be
  a task id (spaces, brackets, a `/`, a symbol, a document's suffix) is a prerequisite in
  the prompt and a warning in the result, not waited on, unless
  `tasks.strict_dependencies` is `true` in config/policies.yaml. A record naming no task
  is prose too.

### Durations and times

A duration is a number of seconds (`90`) or a number with a unit: `250ms`, `90s`, `15m`,
`1.5h`, `8d`. `not_before` takes a duration (a wait from the file's arrival) or an ISO 8601
time with its zone; a time without a zone is rejected.

## Result file

Keys with no value (none, an empty list or mapping) are left out. An attempt is one
tool:model tried for the task.

{markdown(rows(Result), defaults=False).rstrip()}

### Statuses

{_words(STATUSES, "status")}

Before its result, a task can also be in this state:

{_words(STATES, "state")}

### Attempt outcomes

{_words(OUTCOMES, "outcome")}

### Route reasons

`route_reason` and each attempt's `reason` are one of {reasons}, followed by a note in
brackets when the model stands in for a deprecated one.

{_words(ROUTE_REASONS, "reason")}

### Error kinds

`error.kind` of the result and of each attempt. Where: `attempt` in `attempts[].error`
(and the task's `error` when it was the last failure), `task` in the task's `error`,
`rejected` in a rejected task's `error`. "Falls back": the next entry of the chain is
tried after this failure.

{_error_kinds()}
"""
