"""The `orchestrator` command: the parser, the dispatch to a handler (orchestrator.commands),
and how errors are reported: one line, never a traceback for what is not a bug of ours.

Imports are lazy so that `orchestrator version` and `status` start fast.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING

from orchestrator.commands import (
    cmd_cancel,
    cmd_config_migrate,
    cmd_config_reference,
    cmd_config_validate,
    cmd_dashboard,
    cmd_doctor,
    cmd_exec,
    cmd_failed,
    cmd_init,
    cmd_logs,
    cmd_retry,
    cmd_run,
    cmd_sessions,
    cmd_stats,
    cmd_status,
    cmd_submit,
    cmd_version,
    root_of,
)
from orchestrator.helptext import epilog

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence


# --- parser ----------------------------------------------------------------------------

# The examples at the foot of each --help keep their lines (orchestrator.helptext)
_FORMAT = argparse.RawDescriptionHelpFormatter
_MORE = "see `%(prog)s COMMAND --help` for its options and examples"


def build_parser() -> argparse.ArgumentParser:
    """The whole command line: every command, its options, and examples at the foot of each
    `--help` (orchestrator.helptext)."""
    parser = argparse.ArgumentParser(
        prog="orchestrator",
        description="Runs agent CLIs for the YAML task files dropped into work/inbox/.",
        epilog=epilog(""),
        formatter_class=_FORMAT,
    )
    parser.add_argument(
        "--root",
        default=os.environ.get("ORCHESTRATOR_ROOT", "."),
        help="the workspace holding config/ and work/ (env ORCHESTRATOR_ROOT; default .)",
    )
    parser.add_argument(
        "--profile",
        help="the policies profile (config/policies.yaml `profiles:`; env ORCHESTRATOR_PROFILE)",
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", help=_MORE)
    # --root is accepted after the command too (`orchestrator status --root W`)
    anywhere = argparse.ArgumentParser(add_help=False)
    anywhere.add_argument(
        "--root", default=argparse.SUPPRESS, help="the workspace (env ORCHESTRATOR_ROOT; default .)"
    )
    anywhere.add_argument(
        "--profile",
        default=argparse.SUPPRESS,
        help="the policies profile (env ORCHESTRATOR_PROFILE)",
    )

    def add(
        name: str,
        handler: Callable[[argparse.Namespace], int],
        text: str,
        under: argparse._SubParsersAction[argparse.ArgumentParser] = sub,
    ) -> argparse.ArgumentParser:
        words = name if under is sub else f"config {name}"  # the key of its examples
        command = under.add_parser(
            name,
            help=text,
            description=text,
            parents=[anywhere],
            epilog=epilog(words),
            formatter_class=_FORMAT,
        )
        command.set_defaults(handler=handler)
        return command

    add("version", cmd_version, "print the version")
    init = add("init", cmd_init, "write a default config/ and create work/")
    init.add_argument("--force", action="store_true", help="overwrite existing config files")

    config = sub.add_parser(
        "config",
        help="check the configuration",
        description="check the configuration, or rewrite it in the native schema",
        epilog=epilog("config"),
        formatter_class=_FORMAT,
    )
    config_sub = config.add_subparsers(
        dest="config_command",
        metavar="ACTION",
        required=True,
        help=_MORE.replace("COMMAND", "ACTION"),
    )
    add(
        "validate",
        cmd_config_validate,
        "validate the config (config/*.yaml over the user config folder); list files read",
        under=config_sub,
    )
    migrate = add(
        "migrate",
        cmd_config_migrate,
        "rewrite config in the older LLM Service Layer schema in the native one "
        "(the originals are backed up)",
        under=config_sub,
    )
    migrate.add_argument("--dry-run", action="store_true", help="print the new files only")
    reference = add(
        "reference",
        cmd_config_reference,
        "print the reference of every config key, or of the task and result files "
        "(markdown: docs/reference/)",
        under=config_sub,
    )
    reference.add_argument(
        "page",
        nargs="?",
        choices=["config", "tasks"],
        default="config",
        help="config: every key of every config file (default); tasks: every task-file "
        "and result-file field",
    )

    run = add("run", cmd_run, "run the daemon: watch the inbox and run its tasks")
    run.add_argument("--once", action="store_true", help="drain the inbox, then exit")
    run.add_argument("--dry-run", action="store_true", help="print the plan; run nothing")
    run.add_argument(
        "--concurrency", type=_positive_int, metavar="N", help="tasks at once (default 8)"
    )
    run.add_argument(
        "--poll",
        action="store_true",
        help="poll the inbox (network filesystems; env ORCHESTRATOR_FORCE_POLLING=1)",
    )
    run.add_argument(
        "--grace",
        type=float,
        metavar="SECONDS",
        default=30.0,
        help="seconds running tasks get to finish after SIGTERM (default 30)",
    )
    run.add_argument(
        "--dask",
        metavar="ADDRESS",
        help="run the tools on the workers of this Dask scheduler (tcp://host:port); "
        "config/executor.yaml says it too (docs/scale-out.md)",
    )

    cancel = add("cancel", cmd_cancel, "stop a queued or running task (result: cancelled)")
    cancel.add_argument("id", help="the task's id (its file name without .yaml by default)")
    retry = add("retry", cmd_retry, "run a finished task again, keeping its earlier results")
    retry.add_argument("id", nargs="?", help="the finished task to run again (or --failed)")
    retry.add_argument("--failed", action="store_true", help="every failed task (see `failed`)")
    failed = add("failed", cmd_failed, "tasks that failed, timed out or were quarantined")
    for command in (retry, failed):
        command.add_argument("--since", metavar="DATE", help="finished since (YYYY-MM-DD)")
        command.add_argument("--agent", metavar="NAME", help="only this agent's tasks")
    failed.add_argument("--json", action="store_true", help="machine-readable output")
    sessions = add("sessions", cmd_sessions, "conversations: tool, turns, tokens, cost, cache")
    sessions.add_argument("--json", action="store_true", help="machine-readable output")
    add("doctor", cmd_doctor, "which tools are installed, their versions and env vars")
    status = add("status", cmd_status, "the queue, running tasks and spend against budgets")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.add_argument("--watch", action="store_true", help="refresh until Ctrl-C")
    status.add_argument("--interval", type=float, default=2.0, help=argparse.SUPPRESS)

    logs = add(
        "logs",
        cmd_logs,
        "a task's progress events: tool calls, text, usage, as they happen",
    )
    logs.add_argument("id", help="the task's id, running or finished")
    logs.add_argument("--follow", "-f", action="store_true", help="until the task ends")
    logs.add_argument("--json", action="store_true", help="the records as JSON lines")
    logs.add_argument("--interval", type=float, default=0.2, help=argparse.SUPPRESS)

    stats = add("stats", cmd_stats, "spend reports from the telemetry database")
    period = stats.add_mutually_exclusive_group()
    for name, span in (("daily", "day (default)"), ("weekly", "week"), ("monthly", "month")):
        period.add_argument(
            f"--{name}", dest="period", action="store_const", const=name, help=f"a row per {span}"
        )
    stats.set_defaults(period="daily")
    stats.add_argument(
        "--by",
        choices=["agent", "model", "tool"],
        default="model",
        help="the main table: a row per period and agent, model or tool (default model)",
    )
    stats.add_argument("--since", metavar="DATE", help="first day (YYYY-MM-DD, budget zone)")
    stats.add_argument("--until", metavar="DATE", help="last day, included")
    for name in ("agent", "model", "tool"):
        stats.add_argument(f"--{name}", metavar="NAME", help=f"only the invocations of this {name}")
    fmt = stats.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="the main table as a list of rows")
    fmt.add_argument("--csv", action="store_true", help="the main table as CSV")
    stats.add_argument(
        "--totals",
        action="store_true",
        help="--json: one object (totals, by_agent, by_model, rows, note) instead of the list; "
        "--csv: a last line whose period is 'total'",
    )

    dashboard = add("dashboard", cmd_dashboard, "serve the local web dashboard (docs/dashboard.md)")
    dashboard.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)"
    )
    dashboard.add_argument(
        "--port", type=_port, default=8765, help="port (default 8765; 0: any free one)"
    )

    submit = add("submit", cmd_submit, "write a task file into the inbox, print its id")
    _task_options(submit)
    submit.add_argument(
        "--task-type", metavar="TYPE", help="picks the agent's model for it (task_types:)"
    )
    submit.add_argument(
        "--priority", help="critical, high, normal or low (any case; synonyms: urgent, p1, ...)"
    )
    submit.add_argument("--id", help="the task id (default: time, agent and a random suffix)")
    submit.add_argument("--title", metavar="TEXT", help="a one-line summary (status, results)")
    _pin_options(submit)
    submit.add_argument("--timeout", metavar="DURATION", help="wall clock limit: 90s, 15m, 1h")
    submit.add_argument(
        "--depends-on",
        action="append",
        default=[],
        metavar="ID",
        help="a task that must succeed first (repeatable)",
    )
    submit.add_argument(
        "--justification",
        metavar="TEXT",
        help="why it may cost more than budgets.require_justification_over_usd",
    )

    exe = add("exec", cmd_exec, "run one task now and print its answer")
    _task_options(exe)
    _pin_options(exe)
    exe.add_argument(
        "--context",
        action="append",
        default=[],
        metavar="FILE",
        help="a file appended to the prompt under its path (repeatable)",
    )
    exe.add_argument("--output", metavar="FILE", help="write the answer to FILE")
    exe.add_argument(
        "--chain",
        metavar="ID",
        help="the chain id to record (default: the "
        "chain of a --context file an earlier exec wrote, else a new one)",
    )
    exe.add_argument(
        "--session",
        metavar="NAME",
        help="continue the conversation NAME (the CLI's own session; tasks' session: too)",
    )
    exe.add_argument("--yes", action="store_true", help="run without asking when a budget warns")
    exe.add_argument(
        "--force",
        action="store_true",
        help="run even past a hard budget (needs --justification; recorded)",
    )
    exe.add_argument(
        "--justification",
        metavar="TEXT",
        help="why --force is needed (also passes require_justification_over_usd; recorded)",
    )
    exe.set_defaults(usage_error=exe.error)
    return parser


def _task_options(command: argparse.ArgumentParser) -> None:
    command.add_argument("--agent", required=True, metavar="NAME", help="the agent (agents.yaml)")
    group = command.add_mutually_exclusive_group(required=True)
    group.add_argument("--prompt", metavar="TEXT", help="what to do")
    group.add_argument("--prompt-file", metavar="FILE", help="read the prompt from FILE")


def _pin_options(command: argparse.ArgumentParser) -> None:
    command.add_argument("--tool", metavar="NAME", help="run it with this tool (tools.yaml)")
    command.add_argument("--model", metavar="NAME", help="run it with this model (or tool:model)")


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _port(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError("must be between 0 and 65535")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.version:
        return cmd_version(args)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    if args.profile:  # for every part that reads policies, and for a daemon's children
        os.environ["ORCHESTRATOR_PROFILE"] = args.profile
    try:
        code: int = args.handler(args)
        sys.stdout.flush()  # a reader that has gone shows here, not in a warning at exit
    except BrokenPipeError:
        return _reader_gone()
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        reported = _report(exc, args)
        if reported is None:
            raise  # a bug of ours: the traceback is what helps
        return reported
    return code


# What a shell reports for a program that SIGPIPE ended (128 + 13), as `yes | head` does:
# the output was cut short, which 0 would hide from `set -o pipefail` scripts.
READER_GONE = 141


def _reader_gone() -> int:
    """stdout's reader has gone (`orchestrator status --watch | head`): stop quietly.
    Python ignores SIGPIPE, so a write raises BrokenPipeError instead; stdout then points
    at /dev/null, so that the flush at exit cannot fail a second time."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return READER_GONE


def _report(exc: Exception, args: argparse.Namespace) -> int | None:
    """Print an error the user can act on as one line (an OSError too: disk full, no
    permission) and return the exit code; None for anything else."""
    from orchestrator.errors import ConfigError, FileSystemError, OrchestratorError

    error = _single(exc)
    if isinstance(error, OSError):
        what = f"orchestrator {args.command} stopped on a file system error"
        error = FileSystemError(what, error, where=root_of(args))
    if isinstance(error, ConfigError):
        count = len(error.problems)
        noun = "problem" if count == 1 else "problems"
        print(f"error: invalid configuration ({count} {noun}):", file=sys.stderr)
        for problem in error.problems:
            print(f"  {problem}", file=sys.stderr)
        return 1
    if isinstance(error, OrchestratorError):
        print(f"error: {error}", file=sys.stderr)
        return 1
    if isinstance(error, ModuleNotFoundError) and error.name in POSIX_ONLY:
        print(f"error: orchestrator {args.command} needs {error.name}, a module of POSIX "
              "systems (Linux, macOS) that native Windows lacks: on Windows, run it inside "
              "WSL (docs/platforms.md)", file=sys.stderr)  # fmt: skip
        return 1
    return None


# The standard modules that exist on Linux and macOS only. The daemon's file locks (fcntl),
# process groups and signals have no native Windows counterpart: WSL is the way there.
POSIX_ONLY = frozenset({"fcntl", "resource", "termios", "pwd", "grp"})


def _single(exc: BaseException) -> BaseException:
    """The first error of a task group's ExceptionGroup when all of them are errors to
    report (an OSError or one of ours); else `exc` itself."""
    from orchestrator.errors import OrchestratorError

    while isinstance(exc, BaseExceptionGroup):
        ours, others = exc.split((OSError, OrchestratorError))
        if others is not None or ours is None:
            return exc
        exc = ours.exceptions[0]
    return exc
