"""Where a task's events log is: `work/logs/<task-id>.events.jsonl` (light to import: `status`
reads it)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

LOGS_DIR = "logs"  # under work/
SUFFIX = ".events.jsonl"
NAME_MAX = 255


def log_path(work: Path, task_id: str) -> Path:
    """The events log of a task, in `work/logs/` (a long id shortened as result files are)."""
    name = task_id + SUFFIX
    if len(os.fsencode(name)) > NAME_MAX:
        from orchestrator.safefile import fit_name

        name = fit_name(task_id, SUFFIX)
    return work / LOGS_DIR / name
