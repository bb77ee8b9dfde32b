"""The examples at the foot of each command's `--help`: plain strings, so that building the
parser stays cheap (`version` and `status` start fast). tests/test_cli_help.py parses every
example line with the real parser, so an example that stops parsing fails the suite."""

from __future__ import annotations

# Each key is a command as typed after `orchestrator` ("" for the program itself); each line
# is an invocation with an optional `# comment`, or the rest of one that ended in a `\`.
EXAMPLES: dict[str, tuple[str, ...]] = {
    "": (
        "orchestrator init                         # a default config/ and work/ here",
        "orchestrator run --once                   # run what the inbox holds, then exit",
        "orchestrator --root ~/projects/app status",
    ),
    "version": ("orchestrator version",),
    "init": (
        "orchestrator init",
        "orchestrator --root ~/projects/app init --force   # overwrite config/*.yaml",
    ),
    "config": (
        "orchestrator config validate",
        "orchestrator config migrate --dry-run",
    ),
    "config validate": (
        "orchestrator config validate",
        "orchestrator config validate --root ~/projects/app --profile night",
        "orchestrator -v config validate   # older-schema files: how each of their keys was read",
    ),
    "config reference": (
        "orchestrator config reference             # every config key (docs/reference/config.md)",
        "orchestrator config reference tasks       # every task-file and result-file field",
    ),
    "config migrate": (
        "orchestrator config migrate --dry-run     # print the native files, change nothing",
        "orchestrator config migrate               # rewrite them; originals are backed up",
    ),
    "run": (
        "orchestrator run                          # the daemon, until Ctrl-C or SIGTERM",
        "orchestrator run --once --concurrency 2",
        "orchestrator run --poll --grace 60        # on NFS/SMB, or /mnt/c under WSL",
    ),
    "cancel": ("orchestrator cancel fix-login",),
    "retry": (
        "orchestrator retry fix-login",
        "orchestrator retry --failed --since 2026-12-01 --agent backend-dev",
    ),
    "failed": (
        "orchestrator failed",
        "orchestrator failed --since 2026-12-01 --agent backend-dev --json",
    ),
    "sessions": (
        "orchestrator sessions",
        "orchestrator sessions --json",
    ),
    "doctor": (
        "orchestrator doctor",
        "orchestrator doctor --root ~/projects/app",
    ),
    "status": (
        "orchestrator status",
        "orchestrator status --watch",
        "orchestrator status --json --profile night",
    ),
    "logs": (
        "orchestrator logs fix-login",
        "orchestrator logs fix-login --follow",
        "orchestrator logs fix-login --json        # one JSON record a line",
    ),
    "stats": (
        "orchestrator stats --weekly --by agent",
        "orchestrator stats --since 2026-11-01 --until 2026-11-30 --model claude-sonnet-4-5",
        "orchestrator stats --monthly --json --totals",
    ),
    "dashboard": (
        "orchestrator dashboard                    # http://127.0.0.1:8765/?token=...",
        "orchestrator dashboard --port 0           # any free port",
    ),
    "submit": (
        'orchestrator submit --agent backend-dev --prompt "Fix the login redirect"',
        "orchestrator submit --agent writer --prompt-file notes/release.md --timeout 15m",
        "orchestrator submit --agent backend-dev --task-type review --depends-on fix-login \\",
        '    --priority high --prompt "Review the login fix"',
    ),
    "exec": (
        'orchestrator exec --agent demo --prompt "Say hello"',
        "orchestrator exec --agent writer --prompt-file brief.md --context docs/tasks.md \\",
        "    --output answer.md",
        'orchestrator exec --agent architect --session design --prompt "And the API?"',
        'orchestrator exec --agent backend-dev --tool codex --prompt "Explain src/app.py"',
    ),
}


def epilog(command: str) -> str:
    """The examples of `command` ("config validate"; "" for the whole program) as the
    `--help` epilog (kept line for line by argparse.RawDescriptionHelpFormatter)."""
    return "examples:\n" + "".join(f"  {line}\n" for line in EXAMPLES[command])
