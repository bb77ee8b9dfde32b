"""What a user installs: the wheel and the sdist carry what runs; the wheel installed as a
uv tool and the standalone executable each run the demo in a folder outside any
repository; the executable serves the dashboard; install.sh installs, keeps and removes.

Nothing here uses the network. Every command gets its own HOME and TMPDIR, except that uv
is pointed at its usual cache (UV_CACHE_DIR, which would otherwise follow HOME): the
packages `uv sync` put there are what the installs below take, offline. Installing a
wheel as a uv tool resolves its dependencies, and uv's resolver needs each wheel's
metadata for this platform, which `uv sync` (working from uv.lock) never fetched:
scripts/test fetches it once, with the locked versions, before the suite runs.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import urllib.error
import urllib.request
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml

from orchestrator import __version__

if TYPE_CHECKING:
    from collections.abc import Iterator

REPO = Path(__file__).resolve().parents[1]
SYSTEM_PATH = "/usr/bin:/bin"
PROMPT = "hello from the packaged orchestrator"
AGENT_CLIS = {
    "claude": "@anthropic-ai/claude-code",
    "codex": "@openai/codex",
    "gemini": "@google/gemini-cli",
}
RUNTIME_FILES = (
    "orchestrator/__main__.py",
    "orchestrator/py.typed",
    "orchestrator/defaults/agents.yaml",
    "orchestrator/defaults/models.yaml",
    "orchestrator/defaults/policies.yaml",
    "orchestrator/defaults/tools.yaml",
    "orchestrator/web/static/dashboard.css",
    "orchestrator/web/static/dashboard.js",
)
BUILD_BINARY_S = 600  # the executable's build, in the first test that needs it


def _uv() -> str:
    found = shutil.which("uv")
    assert found is not None, "uv is not on PATH (scripts/test installs it)"
    return found


def run(
    argv: list[str], env: dict[str, str], cwd: Path, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
    )


def ok(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, (
        f"{' '.join(done.args)} exited {done.returncode}\n{done.stdout}\n{done.stderr}"
    )
    return done.stdout


def clean_env(tmp: Path, path: str, **extra: str) -> dict[str, str]:
    """Only PATH, a HOME and TMPDIR of the test's own, and `extra` (as `env -i` gives)."""
    home = tmp / "home"
    (home / "tmp").mkdir(parents=True, exist_ok=True)
    return {"PATH": path, "HOME": str(home), "TMPDIR": str(home / "tmp"), **extra}


@pytest.fixture(scope="module")
def uv_env() -> dict[str, str]:
    """What every uv command here gets besides clean_env: the usual cache, no network, no
    Python download."""
    cache = ok(run([_uv(), "cache", "dir"], dict(os.environ), REPO)).strip()
    return {"UV_CACHE_DIR": cache, "UV_OFFLINE": "1", "UV_PYTHON_DOWNLOADS": "never"}


def uv_path(tmp: Path) -> str:
    """A PATH holding uv and the system's commands only (no venv, no agent CLIs)."""
    links = tmp / "uv-only"
    links.mkdir(exist_ok=True)
    (links / "uv").symlink_to(_uv())
    return f"{links}:{SYSTEM_PATH}"


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory: pytest.TempPathFactory, uv_env: dict[str, str]) -> Path:
    """The wheel and the sdist of this checkout, built once with the venv's hatchling."""
    tmp = tmp_path_factory.mktemp("build")
    out = tmp / "dist"
    env = clean_env(tmp, uv_path(tmp), **uv_env)
    argv = [_uv(), "build", "--no-build-isolation", "--python", sys.executable, "-o", str(out)]
    ok(run(argv, env, REPO))
    return out


@pytest.fixture(scope="module")
def constraints(tmp_path_factory: pytest.TempPathFactory, uv_env: dict[str, str]) -> Path:
    """The locked versions of the runtime dependencies, as a constraints file: resolved
    with them, an install needs only what uv's cache holds."""
    tmp = tmp_path_factory.mktemp("constraints")
    target = tmp / "constraints.txt"
    argv = [_uv(), "export", "--frozen", "--no-hashes", "--no-dev", "--no-emit-project",
            "--no-emit-workspace", "--extra", "web", "--quiet", "-o", str(target)]  # fmt: skip
    ok(run(argv, clean_env(tmp, uv_path(tmp), **uv_env), REPO))
    return target


@pytest.fixture(scope="module")
def binary(tmp_path_factory: pytest.TempPathFactory, uv_env: dict[str, str]) -> Path:
    """The standalone executable, built once by scripts/build-binary into a temp folder."""
    tmp = tmp_path_factory.mktemp("binary")
    env = clean_env(tmp, uv_path(tmp), **uv_env)
    argv = ["scripts/build-binary", "--dist", str(tmp / "dist"), "--work", str(tmp / "work")]
    out = ok(run(argv, env, REPO, timeout=BUILD_BINARY_S - 60))
    built = tmp / "dist" / "orchestrator"
    assert f"built {built} (" in out, out
    assert built.is_file() and os.access(built, os.X_OK)
    return built


def wheel_of(folder: Path) -> Path:
    (wheel,) = folder.glob("agent_orchestrator-*.whl")
    return wheel


# --- the changelog ---------------------------------------------------------------------


def test_the_changelog_has_an_entry_for_this_version() -> None:
    text = (REPO / "CHANGELOG.md").read_text(encoding="utf-8")
    headings = re.findall(r"^## (.+)$", text, re.MULTILINE)
    assert headings[0] == "[Unreleased]", headings
    entry = re.compile(rf"\[{re.escape(__version__)}\] - \d{{4}}-\d{{2}}-\d{{2}}")
    assert any(entry.fullmatch(h) for h in headings), (
        f"CHANGELOG.md has no '## [{__version__}] - YYYY-MM-DD' entry: {headings}"
    )


# --- wheel and sdist -------------------------------------------------------------------


@pytest.mark.packaging
def test_the_wheel_carries_the_package_its_data_and_entry_points(artifacts: Path) -> None:
    with zipfile.ZipFile(wheel_of(artifacts)) as wheel:
        names = set(wheel.namelist())
        info = f"agent_orchestrator-{__version__}.dist-info"
        metadata = wheel.read(f"{info}/METADATA").decode()
        entry_points = wheel.read(f"{info}/entry_points.txt").decode()
    tracked = ok(run(["git", "ls-files", "orchestrator"], dict(os.environ), REPO)).split()
    missing = [p for p in [*tracked, *RUNTIME_FILES] if (REPO / p).exists() and p not in names]
    assert not missing, f"not in the wheel: {missing}"
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    assert f"\nVersion: {__version__}\n" in metadata
    assert "\nLicense-Expression: MIT\n" in metadata
    assert f"{info}/licenses/LICENSE" in names
    for extra in ("web", "otel", "dask"):
        assert f"Provides-Extra: {extra}\n" in metadata
    assert "orchestrator = orchestrator.cli:main" in entry_points
    for adapter in ("claude-code", "codex", "gemini", "generic"):
        assert re.search(rf"^{adapter} = orchestrator\.adapters\.", entry_points, re.MULTILINE)


@pytest.mark.packaging
def test_the_sdist_carries_the_sources_and_docs_but_no_runtime_files(artifacts: Path) -> None:
    (sdist,) = artifacts.glob("agent_orchestrator-*.tar.gz")
    top = f"agent_orchestrator-{__version__}/"
    with tarfile.open(sdist) as archive:
        names = {m.name.removeprefix(top) for m in archive.getmembers() if m.isfile()}
    for name in (*RUNTIME_FILES, "pyproject.toml", "PKG-INFO", "README.md", "CHANGELOG.md",
                 "LICENSE"):  # fmt: skip
        assert name in names, name
    assert "docs/dashboard.md" in names
    folders = {name.split("/")[0] for name in names}
    assert folders <= {"orchestrator", "docs", "pyproject.toml", "PKG-INFO", "README.md",
                       "CHANGELOG.md", "LICENSE", ".gitignore"}, folders  # fmt: skip
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]


# --- the demo, installed ---------------------------------------------------------------


def run_demo(command: list[str], folder: Path, env: dict[str, str]) -> dict[str, Any]:
    """The README's no-key example in a fresh folder: init, validate, submit to the demo
    agent, run --once, status; the result of the task."""
    assert not [p for p in (folder, *folder.parents) if (p / ".git").exists()], "in a repository"
    folder.mkdir()

    def orchestrator(*args: str) -> str:
        return ok(run([*command, *args], env, folder))

    assert "config is ready" in orchestrator("init")
    assert "config OK: 4 agents, 4 tools" in orchestrator("config", "validate")
    task_id = orchestrator("submit", "--agent", "demo", "--prompt", PROMPT).strip()
    orchestrator("run", "--once")
    assert re.search(r"succeeded 1\b", orchestrator("status"))
    result_file = folder / "work" / "outbox" / f"{task_id}.result.yaml"
    result: dict[str, Any] = yaml.safe_load(result_file.read_text(encoding="utf-8"))
    assert result["status"] == "succeeded", result
    assert result["output"].strip() == PROMPT
    assert result["tool"] == "local-echo"
    return result


@pytest.mark.packaging
def test_the_wheel_installed_as_a_uv_tool_runs_the_demo(
    artifacts: Path, constraints: Path, uv_env: dict[str, str], tmp_path: Path
) -> None:
    tools, bin_dir = tmp_path / "uv-tools", tmp_path / "bin"
    env = clean_env(tmp_path, uv_path(tmp_path), UV_TOOL_DIR=str(tools),
                    UV_TOOL_BIN_DIR=str(bin_dir), **uv_env)  # fmt: skip
    argv = [_uv(), "tool", "install", "--python", sys.executable, "-c", str(constraints),
            str(wheel_of(artifacts))]  # fmt: skip
    done = run(argv, env, tmp_path)
    if "needs to be downloaded" in done.stderr:
        pytest.fail(
            "uv's cache lacks this platform's wheel metadata for an offline install: "
            f"run scripts/test once (it fetches it)\n{done.stderr}"
        )
    ok(done)
    command = [str(bin_dir / "orchestrator")]
    demo_env = clean_env(tmp_path, f"{bin_dir}:{SYSTEM_PATH}")
    assert ok(run([*command, "version"], demo_env, tmp_path)) == f"orchestrator {__version__}\n"
    run_demo(command, tmp_path / "demo", demo_env)


# --- the standalone executable ---------------------------------------------------------


def priced_config(folder: Path) -> None:
    """Beside the demo: an agent whose tool answers with JSON naming a model and its
    tokens, so the cost is looked up in genai-prices' tables."""
    tools_file, agents_file = folder / "config" / "tools.yaml", folder / "config" / "agents.yaml"
    tools = yaml.safe_load(tools_file.read_text(encoding="utf-8"))
    tools["tools"]["priced-echo"] = {
        "adapter": "generic",
        "binary": "cat",
        "prompt": "stdin",
        "models": ["claude-haiku-4-5"],
        "output": {"format": "json", "text": "result", "model": "model",
                   "input_tokens": "usage.input_tokens",
                   "output_tokens": "usage.output_tokens"},
    }  # fmt: skip
    tools_file.write_text(yaml.safe_dump(tools), encoding="utf-8")
    tools["tools"]["env"] = {  # prints the environment it was given
        "adapter": "generic",
        "binary": "env",
        "prompt": "stdin",
        "output": {"format": "text"},
        "env": ["LD_LIBRARY_PATH"],
    }
    tools_file.write_text(yaml.safe_dump(tools), encoding="utf-8")
    agents = yaml.safe_load(agents_file.read_text(encoding="utf-8"))
    agents["agents"]["priced"] = {"preferred_tool": "priced-echo"}
    agents["agents"]["env"] = {"preferred_tool": "env"}
    agents_file.write_text(yaml.safe_dump(agents), encoding="utf-8")


@pytest.mark.packaging
@pytest.mark.timeout(BUILD_BINARY_S)
def test_the_executable_runs_the_demo_with_no_python_on_path(binary: Path, tmp_path: Path) -> None:
    env = clean_env(tmp_path, SYSTEM_PATH)  # as `env -i PATH=/usr/bin:/bin HOME=... TMPDIR=...`
    command = [str(binary)]
    assert ok(run([*command, "version"], env, tmp_path)) == f"orchestrator {__version__}\n"
    folder = tmp_path / "demo"
    run_demo(command, folder, env)

    priced_config(folder)
    answer = json.dumps({"result": "priced", "model": "claude-haiku-4-5",
                         "usage": {"input_tokens": 1000, "output_tokens": 100}})  # fmt: skip
    out = ok(run([*command, "exec", "--agent", "priced", "--prompt", answer], env, folder))
    assert out.strip() == "priced"
    stats = json.loads(ok(run([*command, "stats", "--json", "--totals"], env, folder)))
    assert stats["totals"]["cost_usd"] > 0, stats
    # a tool gets the user's LD_LIBRARY_PATH, never the bundle's own libraries
    tool_env = ok(run([*command, "exec", "--agent", "env", "--prompt", "-"], env, folder))
    assert "LD_LIBRARY_PATH" not in tool_env, tool_env
    users = {**env, "LD_LIBRARY_PATH": "/opt/user-libs"}
    tool_env = ok(run([*command, "exec", "--agent", "env", "--prompt", "-"], users, folder))
    assert re.findall(r"^LD_LIBRARY_PATH=.*$", tool_env, re.MULTILINE) == [
        "LD_LIBRARY_PATH=/opt/user-libs"
    ], tool_env

    doctor = run([*command, "doctor"], env, folder).stdout
    for adapter in ("claude-code", "codex", "gemini", "generic"):
        assert f"ok {adapter}: agent-orchestrator {__version__} (built in)" in doctor, doctor

    dask = run([*command, "run", "--once", "--dask", "tcp://127.0.0.1:9"], env, folder)
    assert dask.returncode == 1
    assert "error: running on Dask workers needs Dask" in dask.stderr
    assert "uv tool install '<the release wheel or your clone>[dask]'" in dask.stderr
    assert "Traceback" not in dask.stderr
    otel = {**env, "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9"}
    ok(run([*command, "submit", "--agent", "demo", "--prompt", "traced"], otel, folder))
    traced = run([*command, "run", "--once"], otel, folder)
    assert traced.returncode == 0, traced.stderr
    assert "leaves the otel extra out" in traced.stderr, traced.stderr


@pytest.fixture
def dashboard(binary: Path, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """`orchestrator dashboard --port 0` of the executable on a fresh workspace: (its base
    URL, its token); stopped with SIGTERM afterwards, which must end it cleanly."""
    env = clean_env(tmp_path, SYSTEM_PATH)
    folder = tmp_path / "ws"
    folder.mkdir()
    ok(run([str(binary), "init"], env, folder))
    process = subprocess.Popen(
        [str(binary), "dashboard", "--port", "0"],
        cwd=folder,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    try:
        found = None
        for line in process.stdout:  # the start URL is printed once the socket listens
            found = re.search(r"(http://127\.0\.0\.1:\d+)/\?token=(\S+)", line)
            if found:
                break
        assert found is not None, f"no start URL; exit {process.wait(timeout=10)}"
        yield found[1], found[2]
    finally:
        process.terminate()
        rest = process.communicate(timeout=30)[0]
    assert process.returncode == 0, rest
    assert "dashboard stopped" in rest


def get(url: str, token: str | None = None) -> tuple[int, bytes]:
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.read()


@pytest.mark.packaging
@pytest.mark.timeout(BUILD_BINARY_S)
def test_the_executable_serves_the_dashboard(dashboard: tuple[str, str]) -> None:
    base, token = dashboard
    code, body = get(f"{base}/api/status", token)
    assert code == 200, body
    assert json.loads(body)["queue"]["inbox"] == 0
    assert get(f"{base}/api/status")[0] == 401
    code, css = get(f"{base}/static/dashboard.css", token)
    assert code == 200 and b"{" in css
    code, page = get(f"{base}/", token)
    assert code == 200 and b"/static/dashboard.js" in page


# --- install.sh ------------------------------------------------------------------------


def install_sh(env: dict[str, str], *args: str, script: Path = REPO / "install.sh") -> str:
    return ok(run([str(script), *args], env, script.parent, timeout=60))


def no_agent_clis_on(path: str) -> None:
    found = [name for name in AGENT_CLIS if shutil.which(name, path=path)]
    assert not found, f"the test needs a PATH without them, but {path} has {found}"


@pytest.mark.packaging
@pytest.mark.timeout(BUILD_BINARY_S)
def test_install_sh_installs_the_executable_once_and_removes_it(
    binary: Path, tmp_path: Path
) -> None:
    no_agent_clis_on(SYSTEM_PATH)
    bin_dir = tmp_path / "bin"
    target = bin_dir / "orchestrator"
    env = clean_env(tmp_path, SYSTEM_PATH)
    first = run([str(REPO / "install.sh"), "--binary", str(binary), "--bin-dir", str(bin_dir)],
                env, tmp_path)  # fmt: skip
    assert f"installed {target} (orchestrator {__version__}" in ok(first)
    assert target.read_bytes() == binary.read_bytes()
    assert f"warning: {bin_dir} is not on PATH" in first.stderr
    for name, package in AGENT_CLIS.items():
        assert re.search(rf"^missing {name} \(.*\): npm install -g {package}$", first.stdout,
                         re.MULTILINE), first.stdout  # fmt: skip

    on_path = clean_env(tmp_path, f"{bin_dir}:{SYSTEM_PATH}", ORCHESTRATOR_BIN_DIR=str(bin_dir))
    again = run([str(REPO / "install.sh"), "--binary", str(binary)], on_path, tmp_path)
    assert f"already installed, unchanged: {target}" in ok(again)
    assert "not on PATH" not in again.stderr

    removed = install_sh(on_path, "--uninstall")
    assert f"removed {target}" in removed
    assert not target.exists()
    assert "nothing to uninstall" in install_sh(on_path, "--uninstall")

    # a download has no execute bit; a relative --bin-dir is recorded as an absolute path
    downloaded = tmp_path / "orchestrator-download"
    shutil.copyfile(binary, downloaded)
    ok(run([str(REPO / "install.sh"), "--binary", str(downloaded), "--bin-dir", "bin"],
           env, tmp_path))  # fmt: skip
    assert os.access(target, os.X_OK)
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "bin").mkdir(parents=True)
    (elsewhere / "bin" / "orchestrator").write_text("not ours")
    ok(run([str(REPO / "install.sh"), "--uninstall"], env, elsewhere))
    assert not target.exists() and (elsewhere / "bin" / "orchestrator").exists()

    # a file that does not run here is not installed
    broken = tmp_path / "broken"
    broken.write_text("#!/bin/sh\nexit 3\n")
    refused = run([str(REPO / "install.sh"), "--binary", str(broken)], on_path, tmp_path)
    assert refused.returncode == 1 and "does not run on this machine" in refused.stderr
    assert not target.exists() and not list(bin_dir.glob("orchestrator.new.*"))


@pytest.mark.packaging
@pytest.mark.timeout(BUILD_BINARY_S)
def test_install_sh_takes_dist_orchestrator_beside_it_and_names_found_clis(
    binary: Path, tmp_path: Path
) -> None:
    checkout = tmp_path / "release"
    (checkout / "dist").mkdir(parents=True)
    shutil.copy2(REPO / "install.sh", checkout / "install.sh")
    shutil.copy2(binary, checkout / "dist" / "orchestrator")
    fake_clis = tmp_path / "clis"
    fake_clis.mkdir()
    claude = fake_clis / "claude"
    claude.write_text("#!/bin/sh\necho 2.0.0\n")
    claude.chmod(0o755)
    bin_dir = tmp_path / "bin"
    env = clean_env(
        tmp_path, f"{fake_clis}:{bin_dir}:{SYSTEM_PATH}", ORCHESTRATOR_BIN_DIR=str(bin_dir)
    )
    out = install_sh(env, script=checkout / "install.sh")
    assert f"installed {bin_dir / 'orchestrator'}" in out
    assert f"found claude (Claude Code): {claude}" in out
    assert "missing codex" in out and "missing claude" not in out
    removed = install_sh(env, "--uninstall", script=checkout / "install.sh")
    assert f"removed {bin_dir / 'orchestrator'}" in removed


@pytest.mark.packaging
@pytest.mark.timeout(BUILD_BINARY_S)
def test_install_sh_installs_the_wheel_as_a_uv_tool_and_replaces_it(
    artifacts: Path,
    constraints: Path,
    binary: Path,
    uv_env: dict[str, str],
    tmp_path: Path,
) -> None:
    bin_dir = tmp_path / "bin"
    target = bin_dir / "orchestrator"
    env = clean_env(tmp_path, f"{uv_path(tmp_path)}:{bin_dir}", UV_TOOL_DIR=str(tmp_path / "t"),
                    UV_CONSTRAINT=str(constraints), UV_PYTHON=sys.executable,
                    ORCHESTRATOR_BIN_DIR=str(bin_dir), **uv_env)  # fmt: skip
    wheel = str(wheel_of(artifacts))
    out = install_sh(env, "--wheel", wheel)
    assert f"installed agent-orchestrator {__version__} as a uv tool ({target})" in out
    assert ok(run([str(target), "version"], env, tmp_path)) == f"orchestrator {__version__}\n"
    assert "already installed, unchanged" in install_sh(env, "--wheel", wheel)
    rebuilt = tmp_path / Path(wheel).name  # the same version, other bytes: taken
    shutil.copyfile(wheel, rebuilt)
    with zipfile.ZipFile(rebuilt, "a") as archive:
        archive.comment = b"rebuilt"
    out = install_sh(env, "--wheel", str(rebuilt))
    assert f"reinstalled agent-orchestrator {__version__} as a uv tool" in out, out

    out = install_sh(env, "--binary", str(binary))
    assert "removed the uv tool agent-orchestrator" in out
    assert f"installed {target}" in out and target.read_bytes() == binary.read_bytes()
    out = install_sh(env, "--wheel", wheel)
    assert f"replaced {target} (the standalone executable) with agent-orchestrator" in out

    assert "removed the uv tool agent-orchestrator" in install_sh(env, "--uninstall")
    assert not target.exists() and not target.is_symlink()
    assert "agent-orchestrator" not in ok(run([_uv(), "tool", "list"], env, tmp_path))


# --- the benchmark ---------------------------------------------------------------------


@pytest.mark.packaging
@pytest.mark.timeout(BUILD_BINARY_S)
def test_the_binary_benchmark_runs_on_the_built_executable(binary: Path, tmp_path: Path) -> None:
    """bench.binary's smoke run (tests/test_bench.py runs the others): on the executable
    built here, so that nothing is built twice."""
    env = clean_env(tmp_path, os.environ.get("PATH", os.defpath), LANG="C.UTF-8")
    env["TMPDIR"] = str(tmp_path)  # where bench's temp folders go, checked below
    argv = [sys.executable, "-m", "bench.binary", "--quick", "--binary", str(binary)]
    out = ok(run(argv, env, REPO))
    for name in ("size", "python", "wheel_version", "onefile_version", "wheel_status",
                 "onefile_status"):  # fmt: skip
        assert re.search(rf"^binary\.{name}: \d+(\.\d+)? (MB|ms)", out, re.MULTILINE), out
    assert re.search(r"^binary\.onefile_status: .* floor .* ratio", out, re.MULTILINE), out
    assert not list(tmp_path.glob("orchestrator-bench-*")), "the benchmark left its temp folder"
