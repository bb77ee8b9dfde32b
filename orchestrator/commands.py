"""The handlers of the `orchestrator` commands: each reads its options, calls one library
function and prints what it returns. Imports are lazy, so that `version` and `status`
start fast; the parser and the error reporting are orchestrator.cli's."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import argparse

    from orchestrator.config import Config


def root_of(args: argparse.Namespace) -> Path:
    return Path(args.root).resolve()


def _workspace(args: argparse.Namespace) -> Path:
    """The workspace to report on; an error when the folder is none (an empty report
    would look like an idle workspace)."""
    root = root_of(args)
    if not (root / "work").is_dir() and not (root / "config").is_dir():
        from orchestrator.errors import WorkspaceError

        raise WorkspaceError(
            f"{root} is not a workspace (no config/ or work/ here): run `orchestrator init` "
            "there, or pass --root WORKSPACE"
        )
    return root


def _load(args: argparse.Namespace) -> Config:
    from orchestrator.config import load_config

    return load_config(root_of(args), profile=args.profile)


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

    written = write_defaults(root_of(args), force=args.force)
    for path in written:
        print(f"wrote {path}")
    print("config is ready: `orchestrator config validate`, then `orchestrator run`")
    return 0


def cmd_config_validate(args: argparse.Namespace) -> int:
    from orchestrator.config import load_config, summary
    from orchestrator.configdirs import locate
    from orchestrator.errors import ConfigError
    from orchestrator.reports.configinfo import describe

    sources = locate(root_of(args))
    try:
        config = load_config(root_of(args), sources, profile=args.profile)
    except ConfigError:
        print(*(f"read {path}" for path in sources.files), sep="\n")  # problems: on stderr
        raise
    counts = summary(config)
    print(
        f"config OK: {counts['agents']} agents, {counts['tools']} tools, {counts['models']} models"
    )
    print(*describe(config, sources, verbose=args.verbose > 0), sep="\n")
    return 0


def cmd_config_reference(args: argparse.Namespace) -> int:
    from orchestrator.reference import config_reference, tasks_reference

    print(config_reference() if args.page == "config" else tasks_reference(), end="")
    return 0


def cmd_config_migrate(args: argparse.Namespace) -> int:
    from orchestrator.configdirs import locate
    from orchestrator.legacy import migrate

    root = root_of(args)
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
        dask=args.dask or (config.executor.scheduler if config.executor.kind == "dask" else None),
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
    from orchestrator.submit import pins

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
    from orchestrator.tasks import SESSION_RULE, valid_session

    if args.session is not None and not valid_session(args.session):
        args.usage_error(f"--session {args.session!a}: use {SESSION_RULE}")

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
            session=args.session,
            pins=pins(config, args.tool, args.model),
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

    print(cancel(root_of(args), args.id))
    return 0


def cmd_retry(args: argparse.Namespace) -> int:
    from orchestrator.control import retry, retry_failed
    from orchestrator.errors import UsageError

    if args.failed == (args.id is not None):
        raise UsageError("retry takes a task id, or --failed (every failed task), not both")
    if args.id is not None:
        if args.since or args.agent:
            raise UsageError("--since and --agent go with --failed")
        print(retry(root_of(args), args.id))
        return 0
    said = retry_failed(_workspace(args), _day(args.since), args.agent)
    print("\n".join(said) or "no failed tasks to re-queue")
    return 1 if any(": not re-queued: " in line for line in said) else 0


def cmd_failed(args: argparse.Namespace) -> int:
    from orchestrator.reports.failed import dead_letters, render_failed

    letters = dead_letters(_workspace(args), _day(args.since), args.agent)
    print(render_failed(letters, as_json=args.json))
    return 0


def cmd_sessions(args: argparse.Namespace) -> int:
    from orchestrator.reports.sessions import render_sessions, sessions_data

    print(render_sessions(sessions_data(_workspace(args)), as_json=args.json))
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


def cmd_dashboard(args: argparse.Namespace) -> int:
    import os

    from orchestrator.web.server import serve

    def say(line: str) -> None:
        print(line, flush=True)

    serve(_workspace(args), args.host, args.port, profile=args.profile, environ=os.environ, say=say)
    return 0


def _prompt(args: argparse.Namespace) -> str:
    from orchestrator.errors import UsageError

    if args.prompt is not None:
        return str(args.prompt)
    try:
        return Path(args.prompt_file).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"--prompt-file {args.prompt_file}: {exc}") from None
