"""A real Dask cluster on 127.0.0.1 for the tests: `dask scheduler` and `dask worker`
processes (the commands the `dask` extra installs, which scripts/test installs), each
worker advertising the tools it can run as resources. Every process has its own HOME and
TMPDIR; all of them are killed at the end."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from tests.conftest import cli_env, wait_for
from tests.test_real_clis import closed_port

if TYPE_CHECKING:
    from collections.abc import Iterator

DASK = Path(sys.executable).parent / "dask"
free_port = closed_port  # nothing listens there: free for a scheduler to take
_ADDRESS = re.compile(r"Start worker at:\s+(tcp://\S+)")


@dataclass
class Cluster:
    folder: Path
    port: int
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    addresses: dict[str, str] = field(default_factory=dict)  # worker name -> tcp://...

    @property
    def address(self) -> str:
        return f"tcp://127.0.0.1:{self.port}"

    def log(self, name: str) -> str:
        return (self.folder / f"{name}.log").read_text(errors="replace")

    def _start(self, name: str, argv: list[str]) -> None:
        if not DASK.exists():
            raise RuntimeError(f"{DASK} is missing: scripts/test installs the dask extra")
        with (self.folder / f"{name}.log").open("wb") as log:  # the child keeps its copy
            self.processes[name] = subprocess.Popen(
                [str(DASK), *argv],
                env=cli_env(self.folder / name),
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.folder,
                start_new_session=True,
            )

    def start_scheduler(self) -> None:
        self._start(
            "scheduler",
            ["scheduler", "--host", "127.0.0.1", "--port", str(self.port), "--no-dashboard"],
        )
        wait_for(lambda: "Scheduler at:" in self.log("scheduler"), what="the dask scheduler")

    def start_worker(self, name: str, resources: str, threads: int = 4) -> None:
        self._start(
            name,
            ["worker", self.address, "--name", name, "--host", "127.0.0.1", "--nthreads",
             str(threads), "--resources", resources, "--no-dashboard", "--no-nanny"],
        )  # fmt: skip
        wait_for(lambda: "Registered to:" in self.log(name), timeout=60, what=f"worker {name}")
        found = _ADDRESS.search(self.log(name))
        assert found is not None, self.log(name)
        self.addresses[name] = found.group(1)

    def kill(self, name: str, sig: signal.Signals = signal.SIGKILL) -> None:
        process = self.processes.pop(name)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        process.wait(timeout=30)

    def stop(self) -> None:
        for name in list(self.processes):
            self.kill(name, signal.SIGTERM if name == "scheduler" else signal.SIGKILL)


@contextlib.contextmanager
def cluster(folder: Path, workers: dict[str, str], port: int | None = None) -> Iterator[Cluster]:
    """A scheduler and the `workers` (name -> resources, "fake=4 fake-arg=2")."""
    folder.mkdir(parents=True, exist_ok=True)
    running = Cluster(folder, port or free_port())
    try:
        running.start_scheduler()
        for name, resources in workers.items():
            running.start_worker(name, resources)
        yield running
    finally:
        running.stop()


def read_json(path: Path) -> dict[str, object]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
