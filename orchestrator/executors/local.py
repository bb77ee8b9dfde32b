"""The local executor: the tool's process runs here, as a child of this process."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from orchestrator.process import MAX_STREAM_BYTES, run_process
from orchestrator.safefile import read_head

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from orchestrator.adapters.base import ToolFailure
    from orchestrator.engine import Engine
    from orchestrator.executors import RunRequest
    from orchestrator.process import ProcessResult


def environment(request: RunRequest, source: Mapping[str, str] | None = None) -> dict[str, str]:
    """The whole environment of the tool: the names it may see, read from `source` (this
    machine's), then TMPDIR (its run folder) and the adapter's own variables."""
    source = os.environ if source is None else source
    env = {name: source[name] for name in request.env_names if name in source}
    env.setdefault("PATH", os.defpath)
    env["TMPDIR"] = request.run_dir
    env.update(request.env)
    return env


class LocalExecutor:
    kind = "local"

    def check(self, engine: Engine, request: RunRequest) -> ToolFailure | None:
        path = environment(request)["PATH"]
        return engine.check_binary(request.argv[0], path, request.tool)

    async def run(
        self,
        request: RunRequest,
        watch: Callable[[bytes], bool] | None,
        on_start: Callable[[int], None] | None,
    ) -> ProcessResult:
        run_dir = Path(request.run_dir)
        for name, data in request.files.items():
            target = run_dir / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        proc = await run_process(
            request.argv,
            env=environment(request),
            cwd=Path(request.cwd),
            stdin=request.stdin,
            limit_s=request.limit_s,
            idle_s=request.idle_s,
            watch=watch,
            on_start=on_start,
        )
        if request.answer_file is None:
            return proc
        return answer_from_file(proc, run_dir / request.answer_file)

    async def close(self) -> None:
        return None


def answer_from_file(proc: ProcessResult, path: Path) -> ProcessResult:
    """The process's result with the answer it wrote to `path` as its stdout: its first
    MAX_STREAM_BYTES, as for stdout; empty when it wrote none (or not a regular file)."""
    answer = read_head(path, MAX_STREAM_BYTES + 1)
    truncated = answer is not None and len(answer) > MAX_STREAM_BYTES
    return replace(proc, stdout=(answer or b"")[:MAX_STREAM_BYTES], truncated=truncated)
