"""Adapter plugins through real entry points: each plugin here is a package installed into a
folder of its own (its module and a `.dist-info` with `entry_points.txt`, as pip lays them
out) that the orchestrator's process gets on PYTHONPATH, so importlib.metadata finds it the
way it finds any installed package."""

from __future__ import annotations

import json
import re
import sys
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from orchestrator.adapters import BUILTIN, GROUP, PACKAGE
from tests.conftest import base_config, cli_env, drop_task, orchestrator, result, write_config

EXAMPLE = Path(__file__).parent / "plugin_example" / "orchestrator_shout.py"
DOCS = Path(__file__).parent.parent / "docs" / "plugins.md"

# The `shout` CLI the example plugin of docs/plugins.md drives: prompt on stdin, JSON lines
# out; SHOUT_STATUS=NNN in the prompt makes it report that API error and exit 1.
SHOUT = r"""
import json, re, sys
prompt = sys.stdin.read()
status = re.search(r"SHOUT_STATUS=(\d+)", prompt)
def say(**event): print(json.dumps(event), flush=True)
if status:
    say(type="error", status=int(status.group(1)), message="the API said no")
    sys.exit(1)
model = sys.argv[sys.argv.index("--model") + 1] if "--model" in sys.argv else "none"
say(type="text", text=prompt.strip().upper())
say(type="text", text=f" ({model})")
say(type="usage", input=1000, output=200)
say(type="done", session="shout-session-1")
"""


def install(site: Path, package: str, version: str, module: str, source: str, names: str) -> None:
    """Install `package` into `site`: its module and its metadata, with entry points."""
    site.mkdir(parents=True, exist_ok=True)
    (site / f"{module}.py").write_text(source)
    info = site / f"{package.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {package}\nVersion: {version}\n")
    points = "".join(f"{name} = {module}:ADAPTER\n" for name in names.split())
    (info / "entry_points.txt").write_text(f"[{GROUP}]\n{points}")


def with_plugins(tmp_path: Path, *, broken: bool = False) -> tuple[Path, dict[str, str]]:
    """A workspace whose config has tool `loud` (the docs' example plugin) and, with
    `broken`, tool `cracked` whose plugin raises on import; the environment that sees them."""
    site = tmp_path / "site"
    install(site, "orchestrator-shout", "0.3.1", "orchestrator_shout", EXAMPLE.read_text(), "shout")
    if broken:
        source = "raise RuntimeError('this plugin is broken on purpose')\n"
        install(site, "orchestrator-cracked", "2.0.0", "orchestrator_cracked", source, "cracked")
    shout = tmp_path / "shout.py"
    shout.write_text(SHOUT)
    shout_bin = tmp_path / "shout"
    shout_bin.write_text(f'#!/bin/sh\nexec {sys.executable} {shout} "$@"\n')
    shout_bin.chmod(0o755)
    files = base_config()
    tools = files["tools.yaml"]["tools"]
    tools["loud"] = {"adapter": "shout", "binary": str(shout_bin), "models": ["shout-1"]}
    agents = files["agents.yaml"]["agents"]
    agents["shouter"] = {"preferred_tool": "loud", "fallback_chain": ["fake:fake-small"]}
    if broken:
        tools["cracked"] = {"adapter": "cracked", "binary": "cat", "models": ["fake-large"]}
        chain = ["fake:fake-small"]
        agents["uses-cracked"] = {"preferred_tool": "cracked", "fallback_chain": chain}
        agents["only-cracked"] = {"preferred_tool": "cracked"}
    files["models.yaml"]["models"]["shout-1"] = {"price_per_mtok": {"input": 3, "output": 15}}
    root = tmp_path / "ws"
    write_config(root, files)
    for folder in ("inbox", "outbox", "running", "archive"):
        (root / "work" / folder).mkdir(parents=True)
    return root, cli_env(tmp_path, {"PYTHONPATH": str(site)})


def test_the_builtin_adapters_are_entry_points_of_this_package() -> None:
    points = {p.name: p for p in entry_points(group=GROUP) if p.dist and p.dist.name == PACKAGE}
    assert sorted(points) == sorted(BUILTIN)
    for name, point in points.items():
        module = {"claude-code": "claude"}.get(name, name)
        assert point.value == f"orchestrator.adapters.{module}:ADAPTER"
        assert callable(point.load().build)


def test_the_docs_example_is_the_plugin_tested_here() -> None:
    """docs/plugins.md shows the example plugin whole: a third party has all of it."""
    blocks = re.findall(r"```python\n(.*?)```", DOCS.read_text(), re.S)
    assert EXAMPLE.read_text() in blocks


def test_a_plugin_from_the_docs_validates_and_runs(tmp_path: Path) -> None:
    root, env = with_plugins(tmp_path)
    done = orchestrator(root, "config", "validate", env=env)
    assert done.returncode == 0, done.stderr + done.stdout
    drop_task(root, "hello.yaml", {"agent": "shouter", "prompt": "hello there"})
    ran = orchestrator(root, "run", "--once", env=env)
    assert ran.returncode == 0, ran.stderr
    got = result(root, "hello")
    assert got["status"] == "succeeded", got
    assert (got["tool"], got["model"]) == ("loud", "shout-1")
    assert "HELLO THERE (shout-1)" in got["output"]
    assert got["usage"]["input_tokens"] == 1000 and got["usage"]["output_tokens"] == 200
    assert got["cost_usd"] == 0.006  # 1000 in at $3, 200 out at $15 a million
    doctor = orchestrator(root, "doctor", env=env)
    assert "ok shout: orchestrator-shout 0.3.1" in doctor.stdout, doctor.stdout
    assert "ok codex: agent-orchestrator" in doctor.stdout


def test_a_plugins_api_error_is_classified_and_falls_back(tmp_path: Path) -> None:
    root, env = with_plugins(tmp_path)
    drop_task(root, "limited.yaml", {"agent": "shouter", "prompt": "hi SHOUT_STATUS=429"})
    orchestrator(root, "run", "--once", env=env)
    got = result(root, "limited")
    assert got["status"] == "succeeded" and got["tool"] == "fake", got
    first = got["attempts"][0]
    assert first["tool"] == "loud" and first["error"]["kind"] == "rate_limit", first


def test_an_unknown_adapter_lists_the_installed_ones(tmp_path: Path) -> None:
    root, env = with_plugins(tmp_path)
    files = base_config()
    files["tools.yaml"]["tools"]["loud"] = {"adapter": "shuot", "binary": "cat"}
    write_config(root, files)
    done = orchestrator(root, "config", "validate", env=env)
    assert done.returncode != 0
    said = done.stderr + done.stdout
    assert "tools.loud.adapter" in said and "'shuot'" in said, said
    listed = said.split("write one of ", 1)[1]
    for name in ("claude-code", "codex", "gemini", "generic", "shout"):
        assert name in listed, said


def test_a_broken_plugin_is_reported_and_the_others_keep_working(tmp_path: Path) -> None:
    root, env = with_plugins(tmp_path, broken=True)
    assert orchestrator(root, "config", "validate", env=env).returncode == 0
    tasks: dict[str, dict[str, Any]] = {
        "falls-back": {"agent": "uses-cracked", "prompt": "FAKE_REPLY=ok"},
        "stuck": {"agent": "only-cracked", "prompt": "x"},
        "other": {"agent": "shouter", "prompt": "still here"},
    }
    for name, task in tasks.items():
        drop_task(root, f"{name}.yaml", task)
    ran = orchestrator(root, "run", "--once", env=env)
    assert ran.returncode == 0, ran.stderr
    why = "adapter 'cracked' from package orchestrator-cracked 2.0.0 cannot be loaded"
    assert why in ran.stderr and "RuntimeError: this plugin is broken" in ran.stderr
    fell = result(root, "falls-back")
    assert fell["status"] == "succeeded" and fell["tool"] == "fake", fell
    assert why in fell["attempts"][0]["error"]["message"]
    assert fell["attempts"][0]["error"]["kind"] == "missing_binary"
    stuck = result(root, "stuck")
    assert stuck["status"] == "failed" and why in json.dumps(stuck["error"]), stuck
    assert "reinstall or upgrade orchestrator-cracked" in stuck["error"]["message"]
    assert result(root, "other")["status"] == "succeeded"
    doctor = orchestrator(root, "doctor", env=env)
    assert doctor.returncode == 1
    assert f"!! cracked: orchestrator-cracked 2.0.0\n     {why}" in doctor.stdout, doctor.stdout
    assert "ok shout: orchestrator-shout 0.3.1" in doctor.stdout


MINIMAL = """
from orchestrator.adapters.base import Invocation, ParsedOutput


class Echo:  # registered as a class: instantiated with no arguments
    def build(self, tool, model, prompt, ctx):
        return Invocation(argv=[tool.binary], stdin=prompt.encode())

    def parse(self, tool, model, stdout, stderr, exit_code):
        return ParsedOutput(text=stdout.decode().strip(), model=model)


ADAPTER = Echo
"""


def test_a_plugin_with_only_build_and_parse_runs(tmp_path: Path) -> None:
    """stream, watch_line and enforces_budget are optional: the defaults stand in."""
    root, env = with_plugins(tmp_path)
    install(tmp_path / "site", "orchestrator-echo", "1.0", "orchestrator_echo", MINIMAL, "echo")
    files = base_config()
    files["tools.yaml"]["tools"]["parrot"] = {"adapter": "echo", "binary": "cat", "models": ["m"]}
    files["agents.yaml"]["agents"]["parroting"] = {"preferred_tool": "parrot"}
    write_config(root, files)
    drop_task(root, "said.yaml", {"agent": "parroting", "prompt": "say it back"})
    ran = orchestrator(root, "run", "--once", env=env)
    assert ran.returncode == 0, ran.stderr
    got = result(root, "said")
    assert (got["status"], got["tool"], got["output"]) == ("succeeded", "parrot", "say it back")


def test_doctor_says_how_to_install_a_plugins_missing_cli(tmp_path: Path) -> None:
    root, env = with_plugins(tmp_path)
    files = base_config()
    files["tools.yaml"]["tools"]["oc"] = {"adapter": "opencode", "binary": "no-such-opencode"}
    write_config(root, files)
    doctor = orchestrator(root, "doctor", env=env)
    assert "!! oc [opencode]: no-such-opencode: not found\n     fix: npm i -g opencode-ai" in (
        doctor.stdout
    ), doctor.stdout
