"""Shared fixtures: a real workspace on disk, and the real `orchestrator` command."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml

if TYPE_CHECKING:
    from collections.abc import Iterator

REPO = Path(__file__).resolve().parents[1]
FAKE_TOOL = str(Path(__file__).parent / "tools" / "fake_tool.py")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True, scope="session")
def no_user_config(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Config loaded inside the test process never reads the user's own config folder."""
    saved = {name: os.environ.get(name) for name in ("XDG_CONFIG_HOME", "ORCHESTRATOR_CONFIG_DIR")}
    os.environ["XDG_CONFIG_HOME"] = str(tmp_path_factory.mktemp("xdg-config"))
    os.environ.pop("ORCHESTRATOR_CONFIG_DIR", None)
    yield
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def fake_tool(**overrides: Any) -> dict[str, Any]:
    tool: dict[str, Any] = {
        "adapter": "generic",
        "binary": sys.executable,
        "args": [FAKE_TOOL, "--model", "{model}", "--task", "{task_id}"],
        "prompt": "stdin",
        "output": {
            "format": "json",
            "text": "result",
            "model": "model",
            "input_tokens": "usage.input_tokens",
            "output_tokens": "usage.output_tokens",
        },
        "models": ["fake-large", "fake-small"],
        "env": ["FAKE_DECLARED"],
        "timeout": "30s",
        "max_concurrency": 8,
    }
    tool.update(overrides)
    return tool


def base_config() -> dict[str, dict[str, Any]]:
    return {
        "tools.yaml": {
            "tools": {
                "fake": fake_tool(),
                "fake-arg": fake_tool(
                    prompt="arg", args=[FAKE_TOOL, "--model", "{model}", "--prompt", "{prompt}"]
                ),
                "fake-file": fake_tool(
                    prompt="file", args=[FAKE_TOOL, "--prompt-file", "{prompt_file}"]
                ),
                "missing": fake_tool(binary="definitely-not-an-installed-tool", args=[]),
                "failing": fake_tool(args=["-c", "import sys; sys.exit(3)"]),
            }
        },
        "agents.yaml": {
            "agents": {
                "worker": {"preferred_tool": "fake", "preferred_model": "fake-large"},
                "chain-missing": {
                    "preferred_tool": "missing",
                    "fallback_chain": ["fake:fake-small"],
                },
                "chain-exit": {"preferred_tool": "failing", "fallback_chain": ["fake:fake-small"]},
                "arg-agent": {"preferred_tool": "fake-arg"},
                "file-agent": {"preferred_tool": "fake-file"},
            }
        },
        "models.yaml": {
            "models": {
                "fake-large": {"provider": "test", "price_per_mtok": {"input": 2, "output": 10}},
                "fake-small": {"provider": "test", "price_per_mtok": {"input": 0.5, "output": 1}},
            }
        },
        "policies.yaml": {"retries": {"max_attempts": 3, "backoff": "10ms"}},
    }


def pricey_files(**budgets: Any) -> dict[str, dict[str, Any]]:
    """base_config with agent `worker` preferring `pricey` ($1000 per million tokens in and
    out), budget estimates counting 100 output tokens, and `budgets` on top."""
    files = base_config()
    files["models.yaml"]["models"]["pricey"] = {
        "provider": "test",
        "price_per_mtok": {"input": 1000, "output": 1000},
    }
    files["tools.yaml"]["tools"]["fake"]["models"].append("pricey")
    files["agents.yaml"]["agents"]["worker"]["preferred_model"] = "pricey"
    files["policies.yaml"]["budgets"] = {"estimated_output_tokens": 100, **budgets}
    return files


def write_config(root: Path, files: dict[str, Any]) -> None:
    (root / "config").mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (root / "config" / name).write_text(yaml.safe_dump(data, sort_keys=False))


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    write_config(root, base_config())
    for folder in ("inbox", "outbox", "running", "archive"):
        (root / "work" / folder).mkdir(parents=True)
    return root


def cli_env(tmp: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    """A clean environment for the command: own HOME and TMPDIR, nothing else inherited."""
    home = tmp / "home"
    (home / "tmp").mkdir(parents=True, exist_ok=True)
    env = {
        "PATH": os.environ.get("PATH", os.defpath),
        "HOME": str(home),
        "TMPDIR": str(home / "tmp"),
        "LANG": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    if "ORCHESTRATOR_FORCE_POLLING" in os.environ:  # the suite's second, polling run
        env["ORCHESTRATOR_FORCE_POLLING"] = os.environ["ORCHESTRATOR_FORCE_POLLING"]
    env.update(extra or {})
    return env


def orchestrator(
    root: Path,
    *args: str,
    env: dict[str, str] | None = None,
    timeout: float = 90,
    max_file_bytes: int | None = None,
) -> subprocess.CompletedProcess[str]:
    """The real command. `max_file_bytes` stands in for a full disk: every file the
    command writes stops at that size (EFBIG, no SIGXFSZ); 0 fails every write."""

    def limit_files() -> None:  # in the child, before it runs
        assert max_file_bytes is not None
        resource.setrlimit(resource.RLIMIT_FSIZE, (max_file_bytes, max_file_bytes))
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)

    return subprocess.run(
        [sys.executable, "-m", "orchestrator", "--root", str(root), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env or cli_env(root.parent),
        cwd=root,
        preexec_fn=None if max_file_bytes is None else limit_files,
        check=False,
    )


def spawn(root: Path, argv: list[str]) -> subprocess.Popen[str]:
    """`python ARGV` started in the workspace, with its own HOME and TMPDIR and text pipes
    on stdin, stdout and stderr (for commands a test must drive while they run)."""
    return subprocess.Popen(
        [sys.executable, *argv],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env(root.parent),
        cwd=root,
    )


def drop_task(root: Path, name: str, data: dict[str, Any] | str) -> Path:
    """Write a task into the inbox the way agents should: a dotfile, then a rename."""
    text = data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False)
    inbox = root / "work" / "inbox"
    tmp = inbox / f".{name}.tmp"
    tmp.write_text(text)
    target = inbox / name
    tmp.rename(target)
    return target


def result(root: Path, task_id: str) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(
        (root / "work" / "outbox" / f"{task_id}.result.yaml").read_text()
    )
    return data


def results(root: Path) -> dict[str, dict[str, Any]]:
    outbox = root / "work" / "outbox"
    return {
        p.name.removesuffix(".result.yaml"): yaml.safe_load(p.read_text())
        for p in outbox.glob("*.result.yaml")
    }


def wait_for(predicate: Any, timeout: float = 30, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


class Daemon:
    def __init__(self, root: Path, *args: str, env: dict[str, str] | None = None) -> None:
        self.log = root.parent / "daemon.log"
        self._log_file = self.log.open("w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "orchestrator", "--root", str(root), "run", *args],
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            env=env or cli_env(root.parent),
            cwd=root,
        )
        wait_for(
            lambda: "daemon ready" in self.text() or self.process.poll() is not None,
            what="the daemon to start",
        )
        assert self.process.poll() is None, self.text()

    def text(self) -> str:
        return self.log.read_text()

    def stop(self) -> int:
        """SIGTERM (unless it has exited already), then wait for the exit."""
        if self.process.poll() is None:
            self.process.terminate()
        return self.wait()

    def wait(self) -> int:
        code = self.process.wait(timeout=60)
        self._log_file.close()
        return code


@pytest.fixture
def daemon(workspace: Path) -> Iterator[Daemon]:
    d = Daemon(workspace)
    yield d
    d.stop()


def tools_of(root: Path) -> list[int]:
    """Live processes whose TMPDIR is a run folder of this workspace (from /proc on Linux,
    from `ps`, which shows a process's environment after its command, on macOS)."""
    marker = f"TMPDIR={root / 'work' / 'runs'}/".encode()
    if not os.path.isdir("/proc"):
        listing = subprocess.run(
            ["ps", "-axeww", "-o", "pid=,command="], capture_output=True, check=True
        ).stdout
        return [
            int(line.split()[0])
            for line in listing.splitlines()
            if any(w.startswith(marker) for w in line.split())
            and not process_gone(int(line.split()[0]))
        ]
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            env = Path(entry.path, "environ").read_bytes()
        except OSError:
            continue
        if any(v.startswith(marker) for v in env.split(b"\0")) and not process_gone(
            int(entry.name)
        ):
            found.append(int(entry.name))
    return found


def process_gone(pid: int) -> bool:
    """True when `pid` has exited (a zombie waiting for its reaper counts as gone)."""
    if not os.path.isdir("/proc"):  # macOS
        state = subprocess.run(["ps", "-o", "stat=", "-p", str(pid)], capture_output=True)
        return not state.stdout.strip() or state.stdout.strip().startswith(b"Z")
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")
