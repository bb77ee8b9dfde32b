"""End to end: the daemon (`orchestrator run --once`) drives the real claude, codex and gemini
CLIs against the fake LLM API on 127.0.0.1.

Every test has its own workspace, HOME and TMPDIR under ``tmp_path``; all tests share one
fake API (module scope), and the markers in each prompt (see ``tests/fake_llm_api.py``)
decide what it answers, so the tests do not depend on each other. A tag unique to the test
in every prompt finds that test's requests among the server's recordings.

The CLIs come from ``scripts/install-test-clis`` (or ``$ORCHESTRATOR_TEST_CLI_BIN``): when
they cannot be installed these tests fail, they never skip.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pytest

from tests import realcli
from tests.conftest import (
    Daemon,
    drop_task,
    orchestrator,
    result,
    results,
    wait_for,
    write_config,
)
from tests.fake_llm_api import FakeLLMAPI, RecordedRequest

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

CLAUDE, CODEX, GEMINI = "claude-code", "codex", "gemini"
TOOLS = (CLAUDE, CODEX, GEMINI)
BINARIES = {CLAUDE: "claude", CODEX: "codex", GEMINI: "gemini"}
PROVIDERS = {CLAUDE: "anthropic", CODEX: "openai", GEMINI: "gemini"}
MODELS = {CLAUDE: "claude-sonnet-4-5", CODEX: "gpt-5-codex", GEMINI: "gemini-2.5-flash"}
# Distinct prices per token kind, so a wrong mapping shows in the cost (USD per MTok).
PRICES = {
    CODEX: {"input": 2.0, "output": 8.0, "cache_read": 0.5, "cache_write": 2.5},
    GEMINI: {"input": 0.3, "output": 2.5, "cache_read": 0.075, "cache_write": 0.6},
}
# What FAKE_USAGE reports, normalised: input excludes cache reads and writes.
INPUT, OUTPUT, CACHE_READ, CACHE_WRITE = 1234, 56, 78, 9
USAGE_MARKER = f"FAKE_USAGE={INPUT},{OUTPUT},{CACHE_READ},{CACHE_WRITE}"
TOOL_TIMEOUT_S = 120
PROVIDER_URL_VARS = ("ANTHROPIC_BASE_URL", "OPENAI_BASE_URL", "GOOGLE_GEMINI_BASE_URL")


@pytest.fixture(scope="module")
def api() -> Iterator[FakeLLMAPI]:
    with FakeLLMAPI() as server:
        yield server


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@dataclass
class Workspace:
    """A workspace whose tools are the real CLIs, and the environment its daemon runs in."""

    root: Path
    home: Path
    env: dict[str, str]
    bin_dir: Path
    base_url: str
    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:12])

    @classmethod
    def create(cls, tmp_path: Path, api: FakeLLMAPI) -> Workspace:
        bin_dir = realcli.cli_bin_dir()  # raises (the test fails) when the CLIs are missing
        root = tmp_path / "ws"
        for folder in ("inbox", "outbox", "running", "archive"):
            (root / "work" / folder).mkdir(parents=True)
        home = tmp_path / "home"
        env = realcli.isolated_env(home, api.base_url, extra={"PYTHONDONTWRITEBYTECODE": "1"})
        for name in PROVIDER_URL_VARS:  # the CLIs must find the API through tools.yaml alone
            del env[name]
        return cls(root, home, env, bin_dir, api.base_url)

    def binary(self, tool: str) -> str:
        return str(self.bin_dir / BINARIES[tool])

    def tool(self, tool: str, *, base_url: str | None = None) -> dict[str, Any]:
        url = base_url or self.base_url
        config: dict[str, Any] = {
            "adapter": tool,
            "binary": self.binary(tool),
            "models": [MODELS[tool]],
            "timeout": f"{TOOL_TIMEOUT_S}s",
            "max_concurrency": 2,
        }
        if tool == CLAUDE:
            config["base_url"] = url
            config["env"] = ["ANTHROPIC_API_KEY", "DISABLE_AUTOUPDATER", "DISABLE_TELEMETRY"]
        elif tool == CODEX:
            config["base_url"] = f"{url}/v1"  # codex appends /responses
            config["env"] = ["OPENAI_API_KEY"]
            # `-c` options, valid after `exec`: no plugin catalogue or metrics lookups
            config["extra_args"] = list(realcli.CODEX_OFFLINE_ARGS)
        else:
            config["base_url"] = url
            config["env"] = ["GEMINI_API_KEY"]
        return config

    def configure(self, *, codex_url: str | None = None, max_attempts: int = 1) -> None:
        """Three tools, one agent preferring each (with a fallback chain), priced models."""
        write_config(
            self.root,
            {
                "tools.yaml": {
                    "tools": {
                        CLAUDE: self.tool(CLAUDE),
                        CODEX: self.tool(CODEX, base_url=codex_url),
                        GEMINI: self.tool(GEMINI),
                    }
                },
                "agents.yaml": {
                    "agents": {
                        "use-claude": {
                            "preferred_tool": CLAUDE,
                            "preferred_model": MODELS[CLAUDE],
                            "fallback_chain": [f"{CODEX}:{MODELS[CODEX]}"],
                        },
                        "use-codex": {
                            "preferred_tool": CODEX,
                            "preferred_model": MODELS[CODEX],
                            "fallback_chain": [f"{CLAUDE}:{MODELS[CLAUDE]}"],
                        },
                        "use-gemini": {
                            "preferred_tool": GEMINI,
                            "preferred_model": MODELS[GEMINI],
                            "fallback_chain": [f"{CLAUDE}:{MODELS[CLAUDE]}"],
                        },
                    }
                },
                "models.yaml": {
                    "models": {
                        MODELS[CODEX]: {"provider": "openai", "price_per_mtok": PRICES[CODEX]},
                        MODELS[GEMINI]: {"provider": "google", "price_per_mtok": PRICES[GEMINI]},
                    }
                },
                "policies.yaml": {"retries": {"max_attempts": max_attempts, "backoff": "10ms"}},
            },
        )

    def prompt(self, *markers: str) -> str:
        return f"e2e {self.tag}: {' '.join(markers)}"

    def run(self, *args: str) -> str:
        done = orchestrator(self.root, "run", *args, env=self.env, timeout=60)
        assert done.returncode == 0, f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
        return done.stdout

    def requests(self, api: FakeLLMAPI) -> list[RecordedRequest]:
        """This test's requests to the fake API."""
        return [r for r in api.requests if self.tag in r.prompt]


def agent_of(tool: str) -> str:
    return {CLAUDE: "use-claude", CODEX: "use-codex", GEMINI: "use-gemini"}[tool]


def expected_usage(tool: str) -> dict[str, int]:
    """FAKE_USAGE after the provider's convention and the adapter's normalisation."""
    if tool == GEMINI:  # no cache-write count: cache writes are plain prompt tokens
        return {
            "input_tokens": INPUT + CACHE_WRITE,
            "output_tokens": OUTPUT,
            "cache_read_tokens": CACHE_READ,
            "cache_write_tokens": 0,
        }
    return {
        "input_tokens": INPUT,
        "output_tokens": OUTPUT,
        "cache_read_tokens": CACHE_READ,
        "cache_write_tokens": CACHE_WRITE,
    }


def expected_cost(tool: str) -> float:
    prices, usage = PRICES[tool], expected_usage(tool)
    return (
        usage["input_tokens"] * prices["input"]
        + usage["output_tokens"] * prices["output"]
        + usage["cache_read_tokens"] * prices["cache_read"]
        + usage["cache_write_tokens"] * prices["cache_write"]
    ) / 1_000_000


# --------------------------------------------------------------------------- 1. success


@pytest.mark.real_cli
@pytest.mark.parametrize("tool", TOOLS)
def test_each_cli_completes_a_task(tmp_path: Path, api: FakeLLMAPI, tool: str) -> None:
    ws = Workspace.create(tmp_path, api)
    ws.configure()
    reply = f"done-{tool}"
    drop_task(
        ws.root,
        "t.yaml",
        {"agent": agent_of(tool), "prompt": ws.prompt(f"FAKE_REPLY={reply}", USAGE_MARKER)},
    )

    ws.run("--once")

    res = result(ws.root, "t")
    assert res["status"] == "succeeded", res
    assert res["output"] == reply
    assert (res["tool"], res["model"], res["route_reason"]) == (tool, MODELS[tool], "preferred")
    (attempt,) = res["attempts"]
    assert (attempt["tool"], attempt["outcome"], attempt["exit_code"]) == (tool, "succeeded", 0)
    assert res["usage"] == expected_usage(tool)
    if tool == CLAUDE:  # claude's own total_cost_usd, from its own price list
        assert res["cost_source"] == "reported"
        assert isinstance(res["cost_usd"], float)
        assert res["cost_usd"] > 0
    else:
        assert res["cost_source"] == "computed"
        assert res["cost_usd"] == pytest.approx(expected_cost(tool), rel=1e-6, abs=1e-9)
    (request,) = ws.requests(api)
    assert (request.provider, request.model, request.status) == (PROVIDERS[tool], MODELS[tool], 200)
    assert request.stream
    key = {
        CLAUDE: ("x-api-key", "sk-ant-fake"),
        CODEX: ("authorization", "Bearer sk-fake-openai"),
        GEMINI: ("x-goog-api-key", "fake-gemini-key"),
    }[tool]
    assert request.headers.get(key[0]) == key[1]  # the key reached the CLI through `env:`
    # state went to this test's HOME (gemini's to its own home in the run folder), and the
    # run folder is gone
    state = {CLAUDE: ".claude.json", CODEX: ".codex", GEMINI: None}[tool]
    assert state is None or (ws.home / state).exists()
    assert not (ws.home / ".gemini").exists()
    assert list((ws.root / "work" / "running").iterdir()) == []
    assert list((ws.root / "work" / "runs").iterdir()) == []


# --------------------------------------------------------------------------- 2. 429 → fallback


@pytest.mark.real_cli
def test_rate_limit_on_claude_falls_back_to_codex(tmp_path: Path, api: FakeLLMAPI) -> None:
    ws = Workspace.create(tmp_path, api)
    ws.configure(max_attempts=2)  # max_attempts counts the fallback too
    prompt = ws.prompt("FAKE_STATUS_ANTHROPIC=429", "FAKE_REPLY=via-codex", USAGE_MARKER)
    drop_task(ws.root, "r.yaml", {"agent": "use-claude", "prompt": prompt})

    ws.run("--once")

    res = result(ws.root, "r")
    assert res["status"] == "succeeded", res
    assert (res["tool"], res["model"], res["output"]) == (CODEX, MODELS[CODEX], "via-codex")
    assert res["route_reason"] == "fallback"
    assert res["fallback_from"] == f"{CLAUDE}:{MODELS[CLAUDE]}"
    first, second = res["attempts"]
    assert (first["tool"], first["outcome"]) == (CLAUDE, "failed")
    assert first["error"]["kind"] == "rate_limit"
    assert "429" in first["error"]["message"]
    assert (second["tool"], second["outcome"], second["reason"]) == (CODEX, "succeeded", "fallback")
    assert second["usage"] == expected_usage(CODEX)
    assert second["cost_usd"] == pytest.approx(expected_cost(CODEX), rel=1e-6, abs=1e-9)
    statuses = [(r.provider, r.status) for r in ws.requests(api)]
    assert statuses == [("anthropic", 429), ("openai", 200)]  # one request each: fail fast


# --------------------------------------------------------------------------- 3. unreachable


@pytest.mark.real_cli
def test_unreachable_api_makes_codex_fail_fast(tmp_path: Path, api: FakeLLMAPI) -> None:
    ws = Workspace.create(tmp_path, api)
    ws.configure(codex_url=f"http://127.0.0.1:{closed_port()}", max_attempts=2)
    prompt = ws.prompt("FAKE_REPLY=via-claude")
    drop_task(ws.root, "u.yaml", {"agent": "use-codex", "prompt": prompt})

    started = time.monotonic()
    ws.run("--once")
    elapsed = time.monotonic() - started

    res = result(ws.root, "u")
    assert res["status"] == "succeeded", res
    assert (res["tool"], res["output"], res["route_reason"]) == (CLAUDE, "via-claude", "fallback")
    first, second = res["attempts"]
    assert (first["tool"], first["outcome"]) == (CODEX, "failed")
    assert first["error"]["kind"] == "connection", first
    assert first["duration_ms"] < 20_000 < TOOL_TIMEOUT_S * 1000
    assert (second["tool"], second["outcome"]) == (CLAUDE, "succeeded")
    assert elapsed < 40
    assert [r.provider for r in ws.requests(api)] == ["anthropic"]


# --------------------------------------------------------------------------- 4. timeout


def processes_with(needle: str) -> dict[int, str]:
    """Live processes (zombies excluded) whose environment or command line mentions
    `needle`: pid → command line."""
    found: dict[int, str] = {}
    marker = needle.encode()
    if not os.path.isdir("/proc"):  # macOS: ps shows the environment after the command
        listing = subprocess.run(
            ["ps", "-axeww", "-o", "pid=,stat=,command="], capture_output=True, check=True
        ).stdout
        for line in listing.splitlines():
            pid, state, command = line.split(None, 2)
            if marker in command and int(pid) != os.getpid() and not state.startswith(b"Z"):
                found[int(pid)] = command.decode(errors="replace")
        return found
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        proc = f"/proc/{entry}"
        try:
            with open(f"{proc}/stat", "rb") as f:
                state = f.read().rsplit(b")", 1)[1].split()[0]
            if state in (b"Z", b"X"):
                continue
            with open(f"{proc}/cmdline", "rb") as f:
                cmdline = f.read()
            with open(f"{proc}/environ", "rb") as f:
                environ = f.read()
        except OSError:  # gone meanwhile, or not ours to read
            continue
        if marker in cmdline or marker in environ:
            found[int(entry)] = cmdline.replace(b"\0", b" ").decode(errors="replace")
    return found


def wait_until_gone(needle: str, timeout: float) -> dict[int, str]:
    deadline = time.monotonic() + timeout
    left = processes_with(needle)
    while left and time.monotonic() < deadline:
        time.sleep(0.1)
        left = processes_with(needle)
    return left


def assert_scanner_finds_a_process_of(home: Path) -> None:
    """The /proc scan is not vacuous: it sees a process that has this HOME."""
    sleeper = subprocess.Popen(["sleep", "30"], env={"HOME": str(home), "PATH": os.defpath})
    try:
        # Popen returns as exec begins; the new environment shows in /proc a moment later
        wait_for(lambda: sleeper.pid in processes_with(str(home)), 10, "the scan to see it")
    finally:
        sleeper.kill()
        sleeper.wait()
    assert processes_with(str(home)) == {}


@pytest.mark.real_cli
@pytest.mark.parametrize("tool", TOOLS)
def test_timeout_leaves_no_process_behind(tmp_path: Path, api: FakeLLMAPI, tool: str) -> None:
    """Killed mid-request by the task's 4 s timeout, no process of the CLI survives: not
    codex's native binary (its node wrapper, the group leader, orphans it when killed
    alone), not a gemini process (a relaunching gemini parent ignores SIGTERM). The
    timeout leaves a CLI that starts slowly (a cold disk cache, a busy machine) time to
    reach the API, so the kill always lands mid-request."""
    ws = Workspace.create(tmp_path, api)
    ws.configure()  # max_attempts 1: the pinned tool only, its fallback is never tried
    assert_scanner_finds_a_process_of(ws.home)
    task = {
        "agent": agent_of(tool),
        "tool": tool,
        "prompt": ws.prompt("FAKE_DELAY=30", "FAKE_REPLY=too-late"),
        "timeout": "4s",
    }
    drop_task(ws.root, "slow.yaml", task)

    started = time.monotonic()
    ws.run("--once")
    elapsed = time.monotonic() - started

    res = result(ws.root, "slow")
    assert res["status"] == "timed_out", res
    assert res["error"]["kind"] == "timeout"
    (attempt,) = res["attempts"]
    assert attempt["tool"] == tool
    assert 4_000 <= attempt["duration_ms"] < 12_000
    assert elapsed < 27
    # the CLI was killed mid-request, not while starting up
    assert [p for p, prompt in api.arrivals if ws.tag in prompt] == [PROVIDERS[tool]]
    left = wait_until_gone(str(ws.home), timeout=3)
    assert left == {}, f"{tool} left processes behind: {left}"


# --------------------------------------------------------------------------- 5. dry run

_HEADER = re.compile(r"^\S+\.yaml: task (?P<task>\S+), agent \S+, prompt ~\d+ tokens$")
_STEP = re.compile(
    r"^  \d+\. (?P<tool>\S+) / (?P<model>\S+) \((?P<reason>\w+), [^)]*\): (?P<argv>.*)$"
)


@pytest.mark.real_cli
def test_dry_run_shows_each_cli_argv(tmp_path: Path, api: FakeLLMAPI) -> None:
    ws = Workspace.create(tmp_path, api)
    ws.configure()
    for tool in TOOLS:
        drop_task(ws.root, f"{tool}.yaml", {"agent": agent_of(tool), "prompt": ws.prompt()})

    out = ws.run("--dry-run")

    plans: dict[str, list[tuple[str, str, str, list[str]]]] = {}
    current = ""
    for line in out.splitlines():
        if header := _HEADER.match(line):
            current = header["task"]
            plans[current] = []
        elif step := _STEP.match(line):
            plans[current].append(
                (step["tool"], step["model"], step["reason"], shlex.split(step["argv"]))
            )
    provider = (
        '{name="orchestrator",base_url="' + api.base_url + '/v1",env_key="OPENAI_API_KEY",'
        'wire_api="responses",request_max_retries=0,stream_max_retries=0}'
    )
    argv = {
        CLAUDE: [
            ws.binary(CLAUDE),
            "-p",
            "--output-format",
            "stream-json",
            "--verbose",
            "--include-partial-messages",
            "--model",
            MODELS[CLAUDE],
        ],
        CODEX: [
            ws.binary(CODEX),
            "-c",
            'model_provider="orchestrator"',
            "-c",
            f"model_providers.orchestrator={provider}",
            "exec",
            "--json",
            "--skip-git-repo-check",
            "-m",
            MODELS[CODEX],
            "-c",
            "features.plugins=false",
            "-c",
            "analytics.enabled=false",
            "-",
        ],
        GEMINI: [ws.binary(GEMINI), "-o", "stream-json", "--skip-trust", "-m", MODELS[GEMINI]],
    }
    fallback = {CLAUDE: CODEX, CODEX: CLAUDE, GEMINI: CLAUDE}
    assert sorted(plans) == sorted(TOOLS), out
    for tool in TOOLS:
        assert plans[tool] == [
            (tool, MODELS[tool], "preferred", argv[tool]),
            (fallback[tool], MODELS[fallback[tool]], "fallback", argv[fallback[tool]]),
        ], out
    # nothing ran: the tasks are still in the inbox, no result, no request
    assert sorted(p.name for p in (ws.root / "work" / "inbox").iterdir()) == sorted(
        f"{tool}.yaml" for tool in TOOLS
    )
    assert results(ws.root) == {}
    assert ws.requests(api) == []


# --------------------------------------------------------------------------- 6. progress


def read_notes_marker(ws: Workspace) -> str:
    """A FAKE_TOOL call of claude's Read tool on a file in the workspace."""
    notes = ws.root / "notes.txt"
    notes.write_text("notes for the agent\n")
    return 'FAKE_TOOL=Read:{"file_path":"' + str(notes) + '"}'


@pytest.mark.real_cli
def test_status_shows_a_running_claude_tasks_progress(tmp_path: Path, api: FakeLLMAPI) -> None:
    """A live daemon runs claude: its first call answers with a Read tool call, the second
    (with the file's content) is held 6 s; meanwhile `status --json` shows the task in its
    second turn with the tokens and cost of the first, and `logs` its tool call."""
    ws = Workspace.create(tmp_path, api)
    ws.configure()
    prompt = ws.prompt(read_notes_marker(ws), "FAKE_DELAY_AFTER_TOOL=6", "FAKE_REPLY=read-it",
                       USAGE_MARKER)  # fmt: skip
    daemon = Daemon(ws.root, env=ws.env)
    try:
        drop_task(ws.root, "p.yaml", {"agent": "use-claude", "prompt": prompt})
        seen: list[dict[str, Any]] = []

        def in_second_turn() -> bool:
            done = orchestrator(ws.root, "status", "--json", env=ws.env)
            seen[:] = json.loads(done.stdout)["running"]
            return bool(seen) and seen[0]["step"] == "waiting for the model (turn 2)"

        wait_for(in_second_turn, 60, "status to show claude's second turn")
        (task,) = seen
        assert (task["id"], task["tool"], task["model"]) == ("p", CLAUDE, MODELS[CLAUDE])
        assert task["usage"] == expected_usage(CLAUDE)  # the first call's, from its stream
        assert task["tokens"] == INPUT + OUTPUT + CACHE_READ + CACHE_WRITE
        assert task["cost_usd"] > 0
        assert 0 <= task["idle_s"] <= task["elapsed_s"]
        shown = orchestrator(ws.root, "logs", "p", env=ws.env).stdout
        assert f"tool call: Read {ws.root / 'notes.txt'}" in shown
        assert "tool done: Read ok" in shown
        wait_for(lambda: (ws.root / "work" / "outbox" / "p.result.yaml").exists(), 60, "the end")
    finally:
        assert daemon.stop() == 0
    res = result(ws.root, "p")
    assert (res["status"], res["output"]) == ("succeeded", "read-it")
    assert res["usage"]["input_tokens"] == 2 * INPUT  # both calls


@pytest.mark.real_cli
def test_claude_killed_by_its_timeout_keeps_the_usage_it_had_reached(
    tmp_path: Path, api: FakeLLMAPI
) -> None:
    ws = Workspace.create(tmp_path, api)
    ws.configure()
    prompt = ws.prompt(read_notes_marker(ws), "FAKE_DELAY_AFTER_TOOL=30", USAGE_MARKER)
    drop_task(ws.root, "t.yaml", {"agent": "use-claude", "prompt": prompt, "timeout": "6s"})

    ws.run("--once")

    res = result(ws.root, "t")
    assert res["status"] == "timed_out", res
    (attempt,) = res["attempts"]
    assert attempt["usage"] == expected_usage(CLAUDE)  # the first call, before the kill
    assert attempt["cost_source"] == "partial"
    assert attempt["cost_usd"] > 0
    assert res["usage"] == expected_usage(CLAUDE)
    assert res["cost_usd"] == attempt["cost_usd"]


@pytest.mark.real_cli
def test_claude_stops_itself_at_the_tasks_budget(tmp_path: Path, api: FakeLLMAPI) -> None:
    """budget_usd reaches claude as --max-budget-usd: after its first call (a tool call
    costing more) it stops, and the task fails as budget_exceeded with claude's own cost."""
    ws = Workspace.create(tmp_path, api)
    ws.configure(max_attempts=2)
    prompt = ws.prompt(read_notes_marker(ws), "FAKE_REPLY=never", USAGE_MARKER)
    drop_task(ws.root, "b.yaml", {"agent": "use-claude", "prompt": prompt, "budget_usd": 0.001})

    ws.run("--once")

    res = result(ws.root, "b")
    assert res["status"] == "failed", res
    assert res["error"]["kind"] == "budget_exceeded"
    assert "budget_usd" in res["error"]["hint"]
    (attempt,) = res["attempts"]  # not handed to codex: the budget is spent
    assert (attempt["tool"], attempt["cost_source"]) == (CLAUDE, "reported")
    assert attempt["cost_usd"] > 0.001
    assert [r.provider for r in ws.requests(api)] == ["anthropic"]  # one call, then it stopped
