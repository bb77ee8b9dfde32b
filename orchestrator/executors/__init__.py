"""Where a tool's process runs: on this machine (`local`) or on a Dask worker (`dask`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from orchestrator.adapters.base import ToolFailure
    from orchestrator.engine import Engine
    from orchestrator.process import ProcessResult


@dataclass(frozen=True)
class RunRequest:
    """One run of a tool, as any executor needs it: plain data, so it can travel to a
    worker. The environment is named, not given: `env_names` are read from the
    environment of the machine that runs the tool (its keys and logins), `env` (the
    adapter's own variables) is set as it is."""

    key: str  # unique per attempt (the Dask key, the run's topics)
    task_id: str
    tool: str  # the tool's name: a worker advertises it as a Dask resource
    adapter: str
    argv: list[str]
    env_names: list[str]
    env: dict[str, str]
    run_dir: str  # the run's own folder (its TMPDIR), the same path wherever it runs
    cwd: str  # the workspace, or the task's worktree
    limit_s: float
    idle_s: float | None
    stdin: bytes | None = None
    files: dict[str, bytes] = field(default_factory=dict)  # written into run_dir first
    answer_file: str | None = None  # run_dir relative: read in place of stdout
    isolated: bool = False  # cwd is in the task's own git worktree (see executors/snapshot.py)
    # A remote run of an isolated task: the worktree's files (a tar), and where cwd is in it.
    snapshot: bytes | None = None
    prefix: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class Executor(Protocol):
    kind: str

    def check(self, engine: Engine, request: RunRequest) -> ToolFailure | None:
        """A failure known before running (the binary is missing here), else None."""

    async def run(
        self,
        request: RunRequest,
        watch: Callable[[bytes], bool] | None,
        on_start: Callable[[int], None] | None,
    ) -> ProcessResult:
        """Run it to its end; OSError when it cannot start (PermissionError: not
        executable). A cancellation stops it (its process group killed)."""

    async def close(self) -> None:
        """Let go of what the executor holds (a scheduler connection)."""


def dask_executor(scheduler: str, root: Path) -> Executor:
    """The Dask executor for the scheduler at `scheduler`; a clear error without the extra."""
    from orchestrator.errors import UsageError, install_extra

    try:
        import distributed  # noqa: F401
    except ImportError:
        raise UsageError(f"running on Dask workers needs Dask: {install_extra('dask')}") from None
    from orchestrator.executors.dask import DaskExecutor

    return DaskExecutor(scheduler, root)
