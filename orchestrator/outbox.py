"""The last stage: decided results become files in outbox/, and their task files leave
running/ for the archive.

Runs in a worker thread, a batch at a time. For each result, in this order: the follow-up
task file (if the result hands off), a large output's own file, the result file, then the
task file's move to the archive. A crash between any two steps repeats no step's effect at
the next start: a task file still in running/ whose result exists is only archived.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from orchestrator.engine import now_utc
from orchestrator.results import Result, dump_yaml, internal_error
from orchestrator.workdir import atomic_write, atomic_write_many

if TYPE_CHECKING:
    from pathlib import Path

    from orchestrator.jobs import Job
    from orchestrator.workdir import Workdir

log = logging.getLogger(__name__)

LARGE_OUTPUT_BYTES = 256 * 1024  # a longer output goes to <id>.output.txt beside the result


@dataclass
class Finished:
    """A job whose result is decided, on its way to outbox/."""

    job: Job
    result: Result
    follow_up: tuple[Path, str] | None = None  # (task file, its text) of a handoff
    written: bool = False


def write_results(workdir: Workdir, batch: list[Finished]) -> None:
    """Write a batch; each that made it is marked `written`. The result files are written
    as one group (all written before the first fsync, so their data goes to the disk
    together). A result that cannot be written (the disk is full) leaves its task file
    in running/, to be tried again at the next start; one that cannot be rendered
    becomes a failed result. Nothing here raises: the daemon goes on."""
    texts = []
    for done in batch:
        try:
            texts.append((done, _render(workdir, done.result, done.follow_up)))
        except OSError as exc:  # the disk is full: one line, the task runs again later
            log.error("cannot write the follow-up or output of %s: %s", done.result.id, exc)
        except Exception as exc:  # a bug of ours (a value YAML cannot represent)
            log.exception("cannot render the result of %s", done.result.id)
            texts.append((done, _unrenderable(done.result, exc)))
    files = [(workdir.result_path(done.result.id), text) for done, text in texts]
    for (done, _), error in zip(texts, atomic_write_many(files), strict=True):
        try:
            if error is not None:
                raise error
            workdir.archive_file(done.job.path, now_utc())
        except OSError as exc:
            log.error(
                "cannot write the result %s (%s); it is written at the next start",
                workdir.result_path(done.result.id),
                exc,
            )
        else:
            done.written = True


def _render(workdir: Workdir, result: Result, follow_up: tuple[Path, str] | None) -> bytes:
    """Write the follow-up's task file and a large output's file; return the bytes of
    the result file."""
    if follow_up is not None:
        atomic_write(follow_up[0], follow_up[1].encode("utf-8"))
    if result.output is not None and len(result.output) > LARGE_OUTPUT_BYTES:
        out = workdir.outbox / f"{result.id}.output.txt"
        atomic_write(out, result.output.encode("utf-8", "backslashreplace"))
        result.output, result.output_file = None, out.name
    return dump_yaml(result.document()).encode("utf-8")


def _unrenderable(result: Result, exc: Exception) -> bytes:
    """The failed result that stands in for one that could not be rendered."""
    failed = internal_error(
        result.id, result.agent, f"result not renderable: {type(exc).__name__}: {exc}"
    )
    return dump_yaml(failed.document()).encode("utf-8", "backslashreplace")
