"""Record what the pinned claude, codex and gemini CLIs print against the fake LLM API, for
the parser tests (tests/test_adapter_parsers.py), into ``tests/samples/``; and the CLIs of
the adapter plugins (opencode, Qwen Code: :data:`PLUGIN_CASES`, run as their adapters set
them up) into ``tests/samples/plugins/``, with an index of their own
(tests/test_plugin_parsers.py).

Run it as ``scripts/capture-samples`` (or ``python -m tests.capture_samples [--only NAME]
[--jobs N] [--out DIR]``). It needs only what ``scripts/test`` installs: the CLIs of
``tests/clis/package-lock.json`` (through ``tests/realcli.py``), and talks to nothing but
127.0.0.1. Each case gets its own fake API (so request ids restart at 1), HOME, TMPDIR and
working folder; the "server-down" cases point the CLI at a closed port instead.

For every case in :data:`CASES` it writes ``NAME.stdout.txt`` and ``NAME.stderr.txt``, the
help texts go to ``help/``, and ``index.json`` says, per case: the CLI and its version, the
argv and stdin, what the fake API was told to answer (``fake``: a reply and usage, an HTTP
status, or ``down``; ``tool`` when it answered the first call with a call of that tool, see
FAKE_TOOL), the requests it received (model, status, whether it was a utility call asking
for JSON by schema), and the exit code (``"timeout"`` when the capture killed it). A case
with a tool call finds a ``notes.txt`` in its working folder.

Re-running it gives equivalent files, not identical ones. What varies from run to run:
session, thread and message ids, process ids (claude's socket path), timestamps and
durations (``duration_ms``, ``ttft_ms``, gemini's error-report file names), the number of
retries a CLI squeezes into its own backoff timers in the ``-default-retries`` cases, and
stack-trace details. Before the files are written, the temporary folder becomes
``/tmp/samples`` (also in claude's project folder name), the ports ``127.0.0.1:8080`` (the
fake API) and ``127.0.0.1:9`` (nothing listening), the CLIs' install folder (in stack
traces) ``/opt/agent-clis``. The claude ``bypass-mode`` and ``skip-permissions`` cases
record claude's refusal to run as root: run the capture as root (as in the test container)
or those cases record a success, which the parser tests then reject.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tests import realcli
from tests.fake_llm_api import FakeLLMAPI, RecordedRequest, Usage

if TYPE_CHECKING:
    from tests.fake_llm_api import Call, JsonObject, Route

SAMPLES = realcli.REPO_ROOT / "tests" / "samples"
INDEX = "index.json"
TMP_PLACEHOLDER = "/tmp/samples"
CLIS_PLACEHOLDER = "/opt/agent-clis"  # the folder scripts/install-test-clis installed into
API_PORT_PLACEHOLDER = 8080
DOWN_PORT_PLACEHOLDER = 9
# What each success case asks the fake API for: FAKE_USAGE's normalised numbers.
USAGE = (1234, 56, 78, 9)  # input, output, cache read, cache write
# What a utility call (gemini's `auto` router) reports instead: see CaptureAPI.
UTILITY_USAGE = Usage(input=321, output=4)
FAST_TIMEOUT_S = 150.0  # every CLI with its retries off ends well within this
SLOW_TIMEOUT_S = 420.0  # a CLI's own default retries take up to ~5 minutes
CODEX_DOWN_TIMEOUT_S = 20.0  # codex never exits while the API is unreachable
KILL_GRACE_S = 3.0

CLAUDE_JSON = ("--output-format", "json")
CLAUDE_STREAM = ("--output-format", "stream-json", "--verbose")
CLAUDE_PARTIAL = (*CLAUDE_STREAM, "--include-partial-messages")  # what the adapter runs
GEMINI_JSON = ("-o", "json", "--skip-trust")
GEMINI_STREAM = ("-o", "stream-json", "--skip-trust")
GEMINI_FLASH = ("-m", "gemini-2.5-flash")
STATUSES = (401, 429, 500, 503, 529)
SUBSCRIPTION_TOKEN = "sk-ant-oat01-fake"  # claude reads plan limits only when signed in so
WEEK_S = 3 * 86400  # a closed window that reopens on another day
WINDOW_S = 7200  # a closed usage window (FAKE_LIMIT) reopens this long after the first call
WORK = "{work}"  # in a tool call's arguments: the case's working folder
NOTES = "hello from notes.txt\n"  # what a tool call reads
READ_NOTES = ("Read", '{"file_path":"' + WORK + '/notes.txt"}')  # claude's tools


@dataclass(frozen=True)
class Case:
    """One run of one CLI.

    ``status`` makes the fake API answer that HTTP error, ``down`` points the CLI at a closed
    port, neither asks for a reply (``ACK-<name>``) with :data:`USAGE`. ``args`` follow the
    prompt (claude, gemini) or ``exec`` (codex); ``before_exec`` are codex's top-level
    options. ``default_retries`` leaves the CLI's own retry loop as it ships. ``tool`` is a
    FAKE_TOOL call, (name, arguments as JSON with no whitespace; ``{work}`` stands for the
    working folder), answered before the reply.
    """

    name: str
    cli: str
    args: tuple[str, ...] = ()
    status: int | None = None
    down: bool = False
    stdin: bool = False
    default_retries: bool = False
    before_exec: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    last_message: bool = False  # codex -o FILE: keep the file as NAME.last-message.txt
    timeout: float = FAST_TIMEOUT_S
    tool: tuple[str, str] | None = None
    limit: int | None = None  # FAKE_LIMIT: a usage window closed for this many seconds
    subscription: bool = False  # claude signed in with a plan's token instead of an API key

    @property
    def fake(self) -> dict[str, Any]:
        """What the fake API was told to answer (recorded in the index)."""
        if self.down:
            return {"down": True}
        if self.status is not None:
            return {"status": self.status}
        if self.limit is not None:
            return {"limit_closed_for_s": self.limit}
        called = {"tool": self.tool[0]} if self.tool else {}
        return {"reply": f"ACK-{self.name}", "usage": list(USAGE), **called}

    def prompt(self, work: Path) -> str:
        """The prompt, for a run in the working folder `work`."""
        if self.down:
            return f"case={self.name} the server is down"
        if self.status is not None:
            retry = " FAKE_RETRY_AFTER=1" if self.default_retries else ""
            return f"case={self.name} FAKE_STATUS={self.status}{retry} please fail"
        if self.limit is not None:
            return f"case={self.name} FAKE_LIMIT={self.name}:{self.limit} the window is closed"
        usage = ",".join(str(n) for n in USAGE)
        call = ""
        if self.tool is not None:
            name, arguments = self.tool
            call = f" FAKE_TOOL={name}:{arguments.replace(WORK, str(work))}"
        return (
            f"case={self.name} Reply with a word. FAKE_REPLY=ACK-{self.name} FAKE_USAGE={usage}"
            + call
        )


def _failures(prefix: str, cli: str, args: tuple[str, ...], **options: Any) -> list[Case]:
    """The five HTTP errors and the unreachable server, for one CLI and output mode."""
    cases = [Case(f"{prefix}-http{s}", cli, args, status=s, **options) for s in STATUSES]
    return [*cases, Case(f"{prefix}-server-down", cli, args, down=True, **options)]


def _slow(prefix: str, cli: str, args: tuple[str, ...], **options: Any) -> list[Case]:
    """429, 500 and the unreachable server with the CLI's own retries left on."""
    kw: dict[str, Any] = {"default_retries": True, "timeout": SLOW_TIMEOUT_S, **options}
    return [
        Case(f"{prefix}-http429-default-retries", cli, args, status=429, **kw),
        Case(f"{prefix}-http500-default-retries", cli, args, status=500, **kw),
        Case(f"{prefix}-server-down-default-retries", cli, args, down=True, **kw),
    ]


CLAUDE_CASES = [
    Case("claude-json", "claude", CLAUDE_JSON),
    Case("claude-json-stdin", "claude", CLAUDE_JSON, stdin=True),
    Case("claude-json-verbose", "claude", (*CLAUDE_JSON, "--verbose")),
    Case("claude-json-model-sonnet", "claude",
         (*CLAUDE_JSON, "--model", "sonnet", "--max-turns", "3")),
    Case("claude-json-bypass-mode", "claude",
         (*CLAUDE_JSON, "--permission-mode", "bypassPermissions")),
    Case("claude-json-skip-permissions", "claude",
         (*CLAUDE_JSON, "--dangerously-skip-permissions")),
    Case("claude-json-skip-permissions-is-sandbox", "claude",
         (*CLAUDE_JSON, "--dangerously-skip-permissions"), env={"IS_SANDBOX": "1"}),
    Case("claude-text", "claude"),
    *_failures("claude-json", "claude", CLAUDE_JSON),
    Case("claude-stream-json", "claude", CLAUDE_STREAM),
    Case("claude-stream-json-partial", "claude", (*CLAUDE_STREAM, "--include-partial-messages")),
    Case("claude-stream-json-no-verbose", "claude", ("--output-format", "stream-json")),
    *_failures("claude-stream-json", "claude", CLAUDE_STREAM),
    Case("claude-stream-json-http529-fallback-model-sonnet", "claude",
         (*CLAUDE_STREAM, "--fallback-model", "sonnet"), status=529),
    *_slow("claude-stream-json", "claude", CLAUDE_STREAM),
    Case("claude-json-usage-limit", "claude", CLAUDE_JSON, limit=WINDOW_S),
    Case("claude-stream-json-usage-limit", "claude", CLAUDE_PARTIAL, limit=WINDOW_S),
    Case("claude-json-subscription-usage-limit", "claude", CLAUDE_JSON, limit=WINDOW_S,
         subscription=True),
    Case("claude-json-subscription-usage-limit-days", "claude", CLAUDE_JSON, limit=WEEK_S,
         subscription=True),
    Case("claude-stream-json-subscription-usage-limit", "claude", CLAUDE_PARTIAL,
         limit=WINDOW_S, subscription=True),
    Case("claude-stream-json-tool", "claude", CLAUDE_STREAM, tool=READ_NOTES),
    Case("claude-stream-json-partial-tool", "claude", CLAUDE_PARTIAL, tool=READ_NOTES, stdin=True),
    Case("claude-stream-json-max-turns", "claude", (*CLAUDE_PARTIAL, "--max-turns", "1"),
         tool=READ_NOTES),
    Case("claude-stream-json-max-budget", "claude", (*CLAUDE_PARTIAL, "--max-budget-usd", "0.001"),
         tool=READ_NOTES),
]  # fmt: skip

CODEX_JSON = ("--json",)
CODEX_CASES = [
    Case("codex-exec-json", "codex", CODEX_JSON),
    Case("codex-exec-json-stdin", "codex", CODEX_JSON, stdin=True),
    Case("codex-exec-json-model", "codex", (*CODEX_JSON, "-m", "gpt-6.2-sol")),
    Case("codex-exec-json-unknown-model", "codex", (*CODEX_JSON, "-m", "my-local-model")),
    Case("codex-exec-json-ephemeral", "codex", (*CODEX_JSON, "--ephemeral")),
    Case("codex-exec-json-bypass-sandbox", "codex",
         (*CODEX_JSON, "--dangerously-bypass-approvals-and-sandbox")),
    Case("codex-exec-json-workspace-write", "codex", (*CODEX_JSON, "--sandbox", "workspace-write"),
         before_exec=("-a", "never")),
    Case("codex-exec-json-last-message", "codex", CODEX_JSON, last_message=True),
    Case("codex-exec-json-approval-flag-after-exec", "codex", (*CODEX_JSON, "-a", "never")),
    Case("codex-exec-text", "codex"),
    *_failures("codex-exec-json", "codex", CODEX_JSON, timeout=CODEX_DOWN_TIMEOUT_S),
    Case("codex-exec-json-usage-limit", "codex", CODEX_JSON, limit=WINDOW_S),
    Case("codex-exec-json-usage-limit-days", "codex", CODEX_JSON, limit=WEEK_S),
    Case("codex-exec-json-usage-limit-default-retries", "codex", CODEX_JSON, limit=WINDOW_S,
         default_retries=True, timeout=SLOW_TIMEOUT_S),
    Case("codex-exec-json-http429-default-retries", "codex", CODEX_JSON, status=429,
         default_retries=True),
    Case("codex-exec-json-http500-default-retries", "codex", CODEX_JSON, status=500,
         default_retries=True, timeout=SLOW_TIMEOUT_S),
    Case("codex-exec-json-server-down-default-retries", "codex", CODEX_JSON, down=True,
         default_retries=True, timeout=3 * CODEX_DOWN_TIMEOUT_S),
    # codex's shell tool; "\u0020": a space, as the marker's JSON may hold no whitespace
    Case("codex-exec-json-tool", "codex", CODEX_JSON,
         tool=("exec_command", '{"cmd":"cat\\u0020notes.txt"}')),
]  # fmt: skip

GEMINI_CASES = [
    Case("gemini-json", "gemini", GEMINI_JSON),
    Case("gemini-json-stdin", "gemini", GEMINI_JSON, stdin=True),
    Case("gemini-json-model-flash", "gemini", (*GEMINI_JSON, *GEMINI_FLASH)),
    Case("gemini-json-yolo", "gemini", (*GEMINI_JSON, "--approval-mode", "yolo")),
    Case("gemini-json-untrusted", "gemini", ("-o", "json")),
    Case("gemini-text", "gemini", ("--skip-trust",)),
    *_failures("gemini-json", "gemini", GEMINI_JSON),
    *_failures("gemini-json-model-flash", "gemini", (*GEMINI_JSON, *GEMINI_FLASH)),
    Case("gemini-json-http429-pro-model-default-retries", "gemini",
         (*GEMINI_JSON, "-m", "gemini-3.1-pro-preview"), status=429, default_retries=True,
         timeout=SLOW_TIMEOUT_S),
    Case("gemini-json-model-flash-usage-limit", "gemini", (*GEMINI_JSON, *GEMINI_FLASH),
         limit=WINDOW_S),
    Case("gemini-stream-json-model-flash-usage-limit", "gemini",
         (*GEMINI_STREAM, *GEMINI_FLASH), limit=WINDOW_S),
    Case("gemini-stream-json-usage-limit", "gemini", GEMINI_STREAM, limit=WINDOW_S),
    Case("gemini-stream-json", "gemini", GEMINI_STREAM),
    *_failures("gemini-stream-json", "gemini", GEMINI_STREAM),
    *_failures("gemini-stream-json-model-flash", "gemini", (*GEMINI_STREAM, *GEMINI_FLASH)),
    *_slow("gemini-stream-json", "gemini", GEMINI_STREAM),
    Case("gemini-stream-json-model-flash", "gemini", (*GEMINI_STREAM, *GEMINI_FLASH)),
    Case("gemini-stream-json-stdin", "gemini", (*GEMINI_STREAM, *GEMINI_FLASH), stdin=True),
    Case("gemini-stream-json-tool", "gemini", (*GEMINI_STREAM, *GEMINI_FLASH),
         tool=("read_file", '{"file_path":"notes.txt"}')),
]  # fmt: skip

CASES: dict[str, Case] = {case.name: case for case in (*CLAUDE_CASES, *CODEX_CASES, *GEMINI_CASES)}

# The CLIs of the adapter plugins (plugins/), recorded into tests/samples/plugins/ with an
# index of their own. opencode cannot turn its own retries off: a 5xx or an unreachable API
# keeps it retrying in silence, so those cases end at PLUGIN_TIMEOUT_S ("timeout").
PLUGINS_FOLDER = "plugins"
PLUGIN_TIMEOUT_S = 60.0
OPENCODE_MODEL, QWEN_MODEL = "oc-model", "qwen-model"
OPENCODE_RUN = ("run", "--format", "json", "-m", f"orchestrator/{OPENCODE_MODEL}")
QWEN_STREAM = ("-o", "stream-json", "-m", QWEN_MODEL)
PLUGIN_CASES: dict[str, Case] = {case.name: case for case in [
    Case("opencode-json", "opencode", OPENCODE_RUN),
    Case("opencode-json-stdin", "opencode", OPENCODE_RUN, stdin=True),
    Case("opencode-json-no-title", "opencode", OPENCODE_RUN),
    *_failures("opencode-json", "opencode", OPENCODE_RUN, timeout=PLUGIN_TIMEOUT_S),
    Case("opencode-json-tool", "opencode", OPENCODE_RUN, stdin=True,  # an argv prompt
         tool=("read", '{"filePath":"' + WORK + '/notes.txt"}')),  # is sent JSON-quoted
    Case("qwen-stream-json", "qwen", QWEN_STREAM),
    Case("qwen-stream-json-stdin", "qwen", QWEN_STREAM, stdin=True),
    Case("qwen-json", "qwen", ("-o", "json", "-m", QWEN_MODEL)),
    *_failures("qwen-stream-json", "qwen", QWEN_STREAM, timeout=PLUGIN_TIMEOUT_S),
    Case("qwen-stream-json-tool", "qwen", QWEN_STREAM,
         tool=("read_file", '{"file_path":"' + WORK + '/notes.txt"}')),
]}  # fmt: skip
HELP: dict[str, tuple[str, ...]] = {
    "claude-help.txt": ("claude", "--help"),
    "codex-help.txt": ("codex", "--help"),
    "codex-exec-help.txt": ("codex", "exec", "--help"),
    "gemini-help.txt": ("gemini", "--help"),
}


# --------------------------------------------------------------------------- running


def is_utility(body: object) -> bool:
    """A Gemini call asking for JSON by schema: the `auto` router, not the answer."""
    config = body.get("generationConfig") if isinstance(body, dict) else None
    return isinstance(config, dict) and bool(
        config.get("responseJsonSchema") or config.get("responseSchema")
    )


class CaptureAPI(FakeLLMAPI):
    """The fake API, except that a utility call reports :data:`UTILITY_USAGE` instead of the
    prompt's FAKE_USAGE. A real router prompt is a small fraction of the main call's, and
    gemini's stream-json output (no roles) is only readable when that holds."""

    def _call(self, found: Route, body: JsonObject, query: str) -> Call:
        call = super()._call(found, body, query)
        if not is_utility(body):
            return call
        return replace(call, markers=replace(call.markers, usage=UTILITY_USAGE))


@dataclass(frozen=True)
class Run:
    exit_code: int | None  # None: killed at the case's timeout
    stdout: bytes
    stderr: bytes


def run(argv: list[str], env: dict[str, str], cwd: Path, stdin: str | None, timeout: float) -> Run:
    """Run to completion, or kill the whole process group at ``timeout`` (codex's node
    wrapper leaves its native binary holding the pipes otherwise)."""
    process = subprocess.Popen(
        argv,
        env=env,
        cwd=cwd,
        stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    data = stdin.encode() if stdin is not None else None
    try:
        stdout, stderr = process.communicate(data, timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(process)
        stdout, stderr = process.communicate()
        return Run(None, stdout, stderr)
    return Run(process.returncode, stdout, stderr)


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the group, a grace period, then SIGKILL to whatever is left of it."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        if sig == signal.SIGTERM:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=KILL_GRACE_S)


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def codex_provider_args(base_url: str, default_retries: bool) -> list[str]:
    if not default_retries:
        return realcli.codex_config_args(base_url, retries=0)
    provider = (  # request_max_retries and stream_max_retries left as codex ships them
        f'{{name="fake",base_url="{base_url}/v1",env_key="OPENAI_API_KEY",wire_api="responses"}}'
    )
    return ["-c", "model_provider=fake", "-c", f"model_providers.fake={provider}",
            *realcli.CODEX_OFFLINE_ARGS]  # fmt: skip


def write_gemini_settings(home: Path, default_retries: bool) -> None:
    if not default_retries:
        realcli.write_gemini_settings(home, max_attempts=1)
        return
    settings = {
        "security": {"auth": {"selectedType": "gemini-api-key"}},
        "privacy": {"usageStatisticsEnabled": False},
    }
    path = home / ".gemini" / "settings.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(settings, indent=2) + "\n")


def build_argv(case: Case, base_url: str, last_message: Path, work: Path) -> list[str]:
    prompt = [] if case.stdin else [case.prompt(work)]
    if case.cli == "codex":
        out = ["-o", str(last_message)] if case.last_message else []
        provider = codex_provider_args(base_url, case.default_retries)
        tail = ["-"] if case.stdin else prompt
        return ["codex", *case.before_exec, "exec", "--skip-git-repo-check", *case.args, *out,
                *provider, *tail]  # fmt: skip
    if case.cli == "gemini" and case.stdin:
        return ["gemini", *case.args]  # headless because stdin is not a terminal
    if case.cli == "opencode":  # --title: no second call to name the session
        title = [] if case.name.endswith("-no-title") else ["--title", case.name]
        return ["opencode", *case.args, *title, *prompt]
    if case.cli == "qwen":
        auth = ["--auth-type", "openai", "--openai-base-url", f"{base_url}/v1"]
        return ["qwen", *auth, *case.args, *prompt]
    return [case.cli, "-p", *prompt, *case.args]  # claude -p reads stdin without a prompt


def plugin_env(case: Case, base_url: str, folder: Path) -> dict[str, str]:
    """What the plugins' adapters set for a run (their own provider config and settings)."""
    if case.cli == "opencode":
        from orchestrator_opencode import provider_config

        config = provider_config(f"{base_url}/v1", OPENCODE_MODEL)
        return {"OPENCODE_CONFIG_CONTENT": config, "OPENCODE_DISABLE_AUTOUPDATE": "1",
                "OPENCODE_DISABLE_MODELS_FETCH": "1"}  # fmt: skip
    if case.cli == "qwen":
        from orchestrator_qwen import SETTINGS

        settings = folder / "qwen-settings.json"
        settings.write_text(json.dumps(SETTINGS))
        return {"QWEN_CODE_SYSTEM_SETTINGS_PATH": str(settings)}
    return {}


@dataclass(frozen=True)
class Captured:
    case: Case
    argv: list[str]
    run: Run
    requests: list[RecordedRequest]
    last_message: bytes | None
    replacements: dict[str, str]
    prompt: str


def capture(case: Case, root: Path) -> Captured:
    folder = root / case.name
    home, work = folder / "home", folder / "work"
    work.mkdir(parents=True)
    if case.tool is not None:
        (work / "notes.txt").write_text(NOTES)
    with CaptureAPI() as api:
        down_port = closed_port()
        base_url = f"http://127.0.0.1:{down_port}" if case.down else api.base_url
        extra = dict(realcli.FAIL_FAST_ENV)
        if case.default_retries:
            del extra["CLAUDE_CODE_MAX_RETRIES"]
        env = realcli.isolated_env(home, base_url, extra={**extra, **case.env})
        if case.subscription:  # the key would win over the token
            del env["ANTHROPIC_API_KEY"]
            env["CLAUDE_CODE_OAUTH_TOKEN"] = SUBSCRIPTION_TOKEN
        write_gemini_settings(home, case.default_retries)
        env.update(plugin_env(case, base_url, folder))
        last_message = folder / "last-message.txt"
        argv = build_argv(case, base_url, last_message, work)
        program = [str(realcli.cli_path(argv[0])), *argv[1:]]
        stdin = case.prompt(work) if case.stdin else None
        result = run(program, env, work, stdin, case.timeout)
        requests = api.requests
        installed = realcli.cli_bin_dir().parent.parent  # holds node_modules/
        replacements = {
            str(installed.resolve()): CLIS_PLACEHOLDER,
            str(installed): CLIS_PLACEHOLDER,
            str(root): TMP_PLACEHOLDER,
            str(root).replace("/", "-"): TMP_PLACEHOLDER.replace("/", "-"),  # claude's projects/
            f"127.0.0.1:{api.port}": f"127.0.0.1:{API_PORT_PLACEHOLDER}",
            f"localhost:{api.port}": f"localhost:{API_PORT_PLACEHOLDER}",
            f"127.0.0.1:{down_port}": f"127.0.0.1:{DOWN_PORT_PLACEHOLDER}",
            f"localhost:{down_port}": f"localhost:{DOWN_PORT_PLACEHOLDER}",
        }
    written = last_message.read_bytes() if last_message.exists() else None
    return Captured(case, argv, result, requests, written, replacements, case.prompt(work))


def normalise(data: bytes, replacements: dict[str, str]) -> bytes:
    for old, new in replacements.items():
        data = data.replace(old.encode(), new.encode())
    return data


def request_rows(case: Case, requests: list[RecordedRequest]) -> list[dict[str, Any]]:
    """The case's requests, runs of equal ones as one row with a count; an answered call
    says the usage it reported (input, output, cache read, cache write)."""
    rows: list[dict[str, Any]] = []
    for request in requests:
        if case.name not in request.prompt:
            continue
        utility = is_utility(request.body)
        row: dict[str, Any] = {
            "provider": request.provider,
            "model": request.model,
            "status": request.status,
            "utility": utility,
        }
        if request.status == 200:
            usage = UTILITY_USAGE if utility else Usage(*USAGE)
            row["usage"] = [usage.input, usage.output, usage.cache_read, usage.cache_write]
        if rows and {k: v for k, v in rows[-1].items() if k != "count"} == row:
            rows[-1]["count"] += 1
        else:
            rows.append({**row, "count": 1})
    return rows


def index_entry(captured: Captured, version: str) -> dict[str, Any]:
    case, result = captured.case, captured.run
    entry: dict[str, Any] = {
        "cli": case.cli,
        "version": version,
        "argv": [normalise(arg.encode(), captured.replacements).decode() for arg in captured.argv],
        "stdin": (
            normalise(captured.prompt.encode(), captured.replacements).decode()
            if case.stdin
            else None
        ),
        "env": sorted(case.env),
        "signed_in": "subscription token" if case.subscription else "api key",
        "retries": "default" if case.default_retries else "off",
        "fake": case.fake,
        "requests": request_rows(case, captured.requests),
        "exit_code": "timeout" if result.exit_code is None else result.exit_code,
        "stdout": f"{case.name}.stdout.txt",
        "stderr": f"{case.name}.stderr.txt",
    }
    if case.last_message:
        entry["last_message"] = f"{case.name}.last-message.txt"
    return entry


def cli_version(cli: str, env: dict[str, str], cwd: Path) -> str:
    result = run([str(realcli.cli_path(cli)), "--version"], env, cwd, None, 60)
    return result.stdout.decode().strip()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=SAMPLES, help="default: tests/samples")
    parser.add_argument("--jobs", type=int, default=6, help="CLIs run at once (default 6)")
    parser.add_argument("--only", action="append", default=[], help="record only these cases")
    args = parser.parse_args(argv)
    every = {**CASES, **PLUGIN_CASES}
    unknown = set(args.only) - set(every)
    if unknown:
        parser.error(f"unknown case(s): {', '.join(sorted(unknown))}")
    chosen = [every[name] for name in args.only] or list(every.values())
    # the slowest first, so they overlap with the many quick ones
    chosen.sort(key=lambda case: -case.timeout)
    out: Path = args.out
    (out / "help").mkdir(parents=True, exist_ok=True)
    (out / PLUGINS_FOLDER).mkdir(exist_ok=True)
    indexes = {
        folder: _index(folder / INDEX, bool(args.only)) for folder in (out, out / PLUGINS_FOLDER)
    }
    with tempfile.TemporaryDirectory(prefix="capture-samples-") as tmp:
        root = Path(tmp)
        env = realcli.isolated_env(root / "help-home", "http://127.0.0.1:9")
        versions = {cli: cli_version(cli, env, root) for cli in {c.cli for c in chosen}}
        if not args.only:
            for name, help_argv in HELP.items():
                result = run([str(realcli.cli_path(help_argv[0])), *help_argv[1:]], env, root,
                             None, 60)  # fmt: skip
                (out / "help" / name).write_bytes(result.stdout)
        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=args.jobs) as pool:
            for captured in pool.map(lambda case: capture(case, root), chosen):
                case, repl = captured.case, captured.replacements
                folder = out / PLUGINS_FOLDER if case.name in PLUGIN_CASES else out
                index = indexes[folder]
                stdout, stderr = captured.run.stdout, captured.run.stderr
                (folder / f"{case.name}.stdout.txt").write_bytes(normalise(stdout, repl))
                (folder / f"{case.name}.stderr.txt").write_bytes(normalise(stderr, repl))
                if captured.last_message is not None:
                    path = folder / f"{case.name}.last-message.txt"
                    path.write_bytes(captured.last_message)
                index[case.name] = index_entry(captured, versions[case.cli])
                print(f"{time.monotonic() - started:6.1f}s {case.name}: exit "
                      f"{index[case.name]['exit_code']}", file=sys.stderr, flush=True)  # fmt: skip
    for folder, index in indexes.items():
        ordered = {name: index[name] for name in sorted(index)}
        (folder / INDEX).write_text(json.dumps(ordered, indent=1) + "\n")
    return 0


def _index(path: Path, keep: bool) -> dict[str, Any]:
    """The index at `path` when only some cases are recorded again, else a new one."""
    return json.loads(path.read_text()) if keep and path.exists() else {}


if __name__ == "__main__":
    sys.exit(main())
