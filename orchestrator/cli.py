"""The `orchestrator` command: parse options, call one library function, render.

Imports are lazy so that `orchestrator version` and `status` start fast.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from orchestrator.config import Config


def _root(args: argparse.Namespace) -> Path:
    return Path(args.root).resolve()


def _workspace(args: argparse.Namespace) -> Path:
    """The workspace to report on; an error when the folder is none (an empty report
    would look like an idle workspace)."""
    root = _root(args)
    if not (root / "work").is_dir() and not (root / "config").is_dir():
        from orchestrator.errors import WorkspaceError

        raise WorkspaceError(
            f"{root} is not a workspace (no config/ or work/ here): run `orchestrator init` "
            "there, or pass --root WORKSPACE"
        )
    return root


def _load(args: argparse.Namespace) -> Config:
    from orchestrator.config import load_config

    return load_config(_root(args), profile=args.profile)


LOG_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


def _setup_logging(verbose: int, default: str = "WARNING", fmt: str = LOG_FORMAT) -> None:
    import logging

    level = {0: default, 1: "INFO"}.get(verbose, "DEBUG")
    logging.basicConfig(level=level, format=fmt if verbose == 0 else LOG_FORMAT, stream=sys.stderr)


# --- commands --------------------------------------------------------------------------


def cmd_version(args: argparse.Namespace) -> int:
    from orchestrator import __version__

    print(f"orchestrator {__version__}")
    return 0


def cmd_init(args: argparse.Namespace) -> int:
    from orchestrator.scaffold import write_defaults

    written = write_defaults(_root(args), force=args.force)
    for path in written:
        print(f"wrote {path}")
    print("config is ready: `orchestrator config validate`, then `orchestrator run`")
    return 0


def cmd_config_validate(args: argparse.Namespace) -> int:
    from orchestrator.config import load_config, summary
    from orchestrator.configdirs import locate
    from orchestrator.errors import ConfigError
    from orchestrator.reports.configinfo import describe

    sources = locate(_root(args))
    try:
        config = load_config(_root(args), sources, profile=args.profile)
    except ConfigError:
        print(*(f"read {path}" for path in sources.files), sep="\n")  # problems: on stderr
        raise
    counts = summary(config)
    print(
        f"config OK: {counts['agents']} agents, {counts['tools']} tools, {counts['models']} models"
    )
    print(*describe(config, sources, verbose=args.verbose > 0), sep="\n")
    return 0


def cmd_config_migrate(args: argparse.Namespace) -> int:
    from orchestrator.configdirs import locate
    from orchestrator.legacy import migrate

    root = _root(args)
    sources = locate(root)
    if not sources.legacy:
        print("nothing to migrate: the config is in the native schema already")
        return 0
    stamp = migrate.now_stamp()
    plan = migrate.plan(sources, stamp)
    migrate.verify(root, sources, plan)
    if args.dry_run:
        for rewrite in plan.rewrites:
            print(f"--- {rewrite.path} (would be) ---", rewrite.text, sep="\n")
        print(plan.report())
        print("dry run: nothing was written")
        return 0
    migrate.apply(plan, stamp)
    print(plan.report())
    for rewrite in plan.rewrites:
        print(f"rewrote {rewrite.path}")
    print(f"the originals and this report are in {plan.backup}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    import anyio

    from orchestrator.daemon import Daemon, Options
    from orchestrator.watcher import polling_from_env

    config = _load(args)
    if args.dry_run:
        from orchestrator.plan import plan_inbox, render_plan

        print(render_plan(plan_inbox(config)))
        return 0
    _setup_logging(args.verbose, "INFO")
    concurrency = args.concurrency or config.policies.concurrency or 8
    options = Options(
        once=args.once,
        concurrency=concurrency,
        force_polling=args.poll or polling_from_env(),
        grace_s=args.grace,
    )
    anyio.run(Daemon(config, options).run)
    return 0


def cmd_submit(args: argparse.Namespace) -> int:
    from orchestrator.submit import submit

    config = _load(args)
    task_id = submit(
        config,
        agent=args.agent,
        prompt=_prompt(args),
        task_type=args.task_type,
        priority=args.priority,
        task_id=args.id,
        title=args.title,
        tool=args.tool,
        model=args.model,
        timeout=args.timeout,
        depends_on=tuple(args.depends_on),
        justification=args.justification,
    )
    print(task_id)
    return 0


def cmd_exec(args: argparse.Namespace) -> int:
    import anyio

    from orchestrator import reaper
    from orchestrator.foreground import exec_task, failure_lines

    if args.force != (args.justification is not None):
        args.usage_error("--force and --justification TEXT go together")
    if args.justification is not None and not args.justification.strip():
        args.usage_error("--justification needs a text: why this run may pass the budget")
    _setup_logging(args.verbose, fmt="%(levelname)s: %(message)s")  # one short line each
    config = _load(args)
    contexts = [Path(p) for p in args.context]
    output = Path(args.output) if args.output else None
    if output is not None and not output.resolve().parent.is_dir():
        from orchestrator.errors import UsageError

        raise UsageError(
            f"--output {output}: the folder {output.resolve().parent} does not exist; "
            "create it first (checked before the tool runs, so no answer is lost)"
        )
    prompt = _prompt(args)

    def say(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    def confirm() -> bool:
        print("Proceed? [y/N] ", end="", file=sys.stderr, flush=True)
        return sys.stdin.readline().strip().lower() in ("y", "yes")

    terminal = sys.stdin.isatty() and sys.stderr.isatty()
    reaper.adopt_orphans()  # what escapes a tool's process group comes back to be killed
    result = anyio.run(
        lambda: exec_task(
            config,
            args.agent,
            prompt,
            contexts,
            output,
            args.chain,
            justification=args.justification,
            confirm=confirm if terminal and not args.yes else None,
            say=say,
        )
    )
    if result.status == "succeeded":
        if output is None:
            print(result.output or "")
        return 0
    for line in failure_lines(result):
        say(line)
    return 1


def cmd_doctor(args: argparse.Namespace) -> int:
    from orchestrator.doctor import check_tools, render

    checks = check_tools(_load(args))
    print(render(checks))
    return 1 if any(c.needs_attention for c in checks) else 0  # an unchecked login passes


def cmd_cancel(args: argparse.Namespace) -> int:
    from orchestrator.control import cancel

    print(cancel(_root(args), args.id))
    return 0


def cmd_retry(args: argparse.Namespace) -> int:
    from orchestrator.control import retry, retry_failed
    from orchestrator.errors import UsageError

    if args.failed == (args.id is not None):
        raise UsageError("retry takes a task id, or --failed (every failed task), not both")
    if args.id is not None:
        if args.since or args.agent:
            raise UsageError("--since and --agent go with --failed")
        print(retry(_root(args), args.id))
        return 0
    said = retry_failed(_workspace(args), _day(args.since), args.agent)
    print("\n".join(said) or "no failed tasks to re-queue")
    return 1 if any(": not re-queued: " in line for line in said) else 0


def cmd_failed(args: argparse.Namespace) -> int:
    from orchestrator.reports.failed import dead_letters, render_failed

    letters = dead_letters(_workspace(args), _day(args.since), args.agent)
    print(render_failed(letters, as_json=args.json))
    return 0


def _day(text: str | None) -> str | None:
    """--since: a day (YYYY-MM-DD) or an ISO time; a usage error otherwise."""
    from datetime import datetime

    from orchestrator.errors import UsageError

    if text is not None:
        try:
            datetime.fromisoformat(text)
        except ValueError:
            raise UsageError(f"--since {text!r}: write a day (2026-12-01) or an ISO time") from None
    return text


def cmd_status(args: argparse.Namespace) -> int:
    import json
    import time

    from orchestrator.reports.status import render_status, status_data

    root = _workspace(args)
    while True:
        data = status_data(root)
        text = json.dumps(data, indent=2) if args.json else render_status(data)
        if not args.watch:
            print(text)
            return 0
        print("\x1b[2J\x1b[H" + text, flush=True)
        time.sleep(args.interval)


def cmd_logs(args: argparse.Namespace) -> int:
    from orchestrator.progress.view import show_log

    def write(line: str) -> None:
        print(line, flush=True)

    root = _workspace(args)
    return show_log(
        root, args.id, write, follow=args.follow, as_json=args.json, poll_s=args.interval
    )


def cmd_stats(args: argparse.Namespace) -> int:
    from orchestrator.reports.stats import (
        StatsQuery,
        render_stats,
        render_stats_csv,
        render_stats_json,
        stats_report,
    )

    root = _workspace(args)
    query = StatsQuery(period=args.period, by=args.by, since=args.since, until=args.until,
                       agent=args.agent, model=args.model, tool=args.tool)  # fmt: skip
    try:
        report = stats_report(root, query)
    except ValueError as exc:
        from orchestrator.errors import UsageError

        raise UsageError(f"--since/--until: {exc} (write YYYY-MM-DD)") from None
    if args.json:
        print(render_stats_json(report, totals=args.totals))
    elif args.csv:
        print(render_stats_csv(report, totals=args.totals), end="")
    else:
        print(render_stats(report))
    if report["note"] and (args.csv or (args.json and not args.totals)):
        print(f"note: {report['note']}", file=sys.stderr)  # stdout stays machine-readable
    return 0


def _prompt(args: argparse.Namespace) -> str:
    from orchestrator.errors import UsageError

    if args.prompt is not None:
        return str(args.prompt)
    try:
        return Path(args.prompt_file).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"--prompt-file {args.prompt_file}: {exc}") from None


# --- parser ----------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="orchestrator",
        description="Runs agent CLIs for the YAML task files dropped into work/inbox/.",
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
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    # --root is accepted after the command too (`orchestrator status --root W`)
    anywhere = argparse.ArgumentParser(add_help=False)
    anywhere.add_argument("--root", default=argparse.SUPPRESS, help="the workspace (as above)")
    anywhere.add_argument("--profile", default=argparse.SUPPRESS, help="policies profile")

    def add(
        name: str, handler: Callable[[argparse.Namespace], int], text: str
    ) -> argparse.ArgumentParser:
        command = sub.add_parser(name, help=text, description=text, parents=[anywhere])
        command.set_defaults(handler=handler)
        return command

    add("version", cmd_version, "print the version")
    init = add("init", cmd_init, "write a default config/ and create work/")
    init.add_argument("--force", action="store_true", help="overwrite existing config files")

    config = sub.add_parser("config", help="check the configuration")
    config_sub = config.add_subparsers(dest="config_command", metavar="ACTION", required=True)
    validate = config_sub.add_parser(
        "validate",
        parents=[anywhere],
        help="validate the config (config/*.yaml over the user config folder); list files read",
    )
    validate.set_defaults(handler=cmd_config_validate)
    migrate = config_sub.add_parser(
        "migrate",
        parents=[anywhere],
        help="rewrite config in the older LLM Service Layer schema in the native one "
        "(the originals are backed up)",
    )
    migrate.add_argument("--dry-run", action="store_true", help="print the new files only")
    migrate.set_defaults(handler=cmd_config_migrate)

    run = add("run", cmd_run, "run the daemon: watch the inbox and run its tasks")
    run.add_argument("--once", action="store_true", help="drain the inbox, then exit")
    run.add_argument("--dry-run", action="store_true", help="print the plan; run nothing")
    run.add_argument("--concurrency", type=_positive_int, help="tasks at once (default 8)")
    run.add_argument(
        "--poll",
        action="store_true",
        help="poll the inbox (network filesystems; env ORCHESTRATOR_FORCE_POLLING=1)",
    )
    run.add_argument(
        "--grace",
        type=float,
        default=30.0,
        help="seconds running tasks get to finish after SIGTERM (default 30)",
    )

    cancel = add("cancel", cmd_cancel, "stop a queued or running task (result: cancelled)")
    cancel.add_argument("id")
    retry = add("retry", cmd_retry, "run a finished task again, keeping its earlier results")
    retry.add_argument("id", nargs="?")
    retry.add_argument("--failed", action="store_true", help="every failed task (see `failed`)")
    failed = add("failed", cmd_failed, "tasks that failed, timed out or were quarantined")
    for command in (retry, failed):
        command.add_argument("--since", metavar="DATE", help="finished since (YYYY-MM-DD)")
        command.add_argument("--agent", metavar="NAME", help="only this agent's tasks")
    failed.add_argument("--json", action="store_true", help="machine-readable output")
    add("doctor", cmd_doctor, "which tools are installed, their versions and env vars")
    status = add("status", cmd_status, "the queue, running tasks and spend against budgets")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.add_argument("--watch", action="store_true", help="refresh until Ctrl-C")
    status.add_argument("--interval", type=float, default=2.0, help=argparse.SUPPRESS)

    logs = add(
        "logs", cmd_logs, "a task's progress events: tool calls, text, usage, as they happen"
    )
    logs.add_argument("id")
    logs.add_argument("--follow", "-f", action="store_true", help="until the task ends")
    logs.add_argument("--json", action="store_true", help="the records as JSON lines")
    logs.add_argument("--interval", type=float, default=0.2, help=argparse.SUPPRESS)

    stats = add("stats", cmd_stats, "spend reports from the telemetry database")
    period = stats.add_mutually_exclusive_group()
    for name in ("daily", "weekly", "monthly"):
        period.add_argument(f"--{name}", dest="period", action="store_const", const=name)
    stats.set_defaults(period="daily")
    stats.add_argument("--by", choices=["agent", "model", "tool"], default="model")
    stats.add_argument("--since", metavar="DATE", help="first day (YYYY-MM-DD, budget zone)")
    stats.add_argument("--until", metavar="DATE", help="last day, included")
    for name in ("agent", "model", "tool"):
        stats.add_argument(f"--{name}", metavar="NAME", help=f"only the invocations of this {name}")
    fmt = stats.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="the main table as a list of rows")
    fmt.add_argument("--csv", action="store_true")
    stats.add_argument(
        "--totals",
        action="store_true",
        help="--json: one object (totals, by_agent, by_model, rows, note) instead of the list; "
        "--csv: a last line whose period is 'total'",
    )

    submit = add("submit", cmd_submit, "write a task file into the inbox, print its id")
    _task_options(submit)
    submit.add_argument("--task-type")
    submit.add_argument(
        "--priority", help="critical, high, normal or low (any case; synonyms: urgent, p1, ...)"
    )
    submit.add_argument("--id", help="the task id (default: time, agent and a random suffix)")
    submit.add_argument("--title")
    submit.add_argument("--tool", metavar="NAME", help="run it with this tool (tools.yaml)")
    submit.add_argument("--model", metavar="NAME", help="run it with this model (or tool:model)")
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
    command.add_argument("--agent", required=True)
    group = command.add_mutually_exclusive_group(required=True)
    group.add_argument("--prompt")
    group.add_argument("--prompt-file")


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
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
        error = FileSystemError(what, error, where=_root(args))
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
    return None


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
