"""The state one acceptance scenario builds up: its workspace, its config (written before
every command), the runs of the real `orchestrator` command, and what the tools logged.

The tools are generic tools running a few lines of Python (`ARGV_TOOL`) that append their
argv as one JSON line to a log file and answer JSON with usage, as a real agent CLI does.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tests.conftest import fake_tool, orchestrator, write_config

if TYPE_CHECKING:
    import subprocess
    from pathlib import Path

# argv: <log> <tool name> --model M --task T [--exit-code N]. The answer echoes the prompt;
# its usage is 1000 input and 200 output tokens unless the prompt says `USAGE=<in>/<out>`.
ARGV_TOOL = r"""
import json, re, sys
log, argv = sys.argv[1], sys.argv[2:]
prompt = sys.stdin.read()
with open(log, "a", encoding="utf-8") as f:
    f.write(json.dumps(argv) + "\n")
if "--exit-code" in argv:
    sys.exit(int(argv[argv.index("--exit-code") + 1]))
found = re.search(r"USAGE=(\d+)/(\d+)", prompt)
used = [int(n) for n in found.groups()] if found else [1000, 200]
print(json.dumps({
    "result": argv[0] + " answered: " + prompt.strip(),
    "model": argv[argv.index("--model") + 1],
    "usage": {"input_tokens": used[0], "output_tokens": used[1]},
}))
"""
TASK = "$TASK"  # in an expected argv: the id of the task that made the call


def template(text: str) -> str:
    """`text` as one element of a tool's args, which are templates: braces doubled."""
    return text.replace("{", "{{").replace("}", "}}")


def prompt_of(tokens: int) -> str:
    """A prompt the orchestrator estimates at `tokens` tokens (4 characters each)."""
    words = "please fix the login redirect and add a test for it "
    return (words * (tokens * 4 // len(words) + 1))[: tokens * 4 - 1] + "."


@dataclass
class World:
    root: Path
    config: dict[str, dict[str, Any]]
    log: Path
    runs: list[subprocess.CompletedProcess[str]] = field(default_factory=list)
    writes_config: bool = True  # False once a scenario leaves config/ to the command

    # --- configuration ---------------------------------------------------------------

    @property
    def tools(self) -> dict[str, Any]:
        tools: dict[str, Any] = self.config["tools.yaml"]["tools"]
        return tools

    @property
    def agents(self) -> dict[str, Any]:
        agents: dict[str, Any] = self.config["agents.yaml"]["agents"]
        return agents

    @property
    def models(self) -> dict[str, Any]:
        models: dict[str, Any] = self.config["models.yaml"]["models"]
        return models

    @property
    def policies(self) -> dict[str, Any]:
        policies: dict[str, Any] = self.config["policies.yaml"]
        return policies

    def add_tool(self, name: str, models: list[str]) -> None:
        args = ["-c", template(ARGV_TOOL), str(self.log), name]
        args += ["--model", "{model}", "--task", "{task_id}"]
        self.tools[name] = fake_tool(args=args, models=models)

    def agent(self, name: str) -> dict[str, Any]:
        """The agent's entry in agents.yaml, new and empty when it has none."""
        agent: dict[str, Any] = self.agents.setdefault(name, {})
        return agent

    # --- running the command ---------------------------------------------------------

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        """`orchestrator --root <workspace> <args>`, the config written first."""
        if self.writes_config:
            write_config(self.root, self.config)
        done = orchestrator(self.root, *args)
        self.runs.append(done)
        return done

    @property
    def last(self) -> subprocess.CompletedProcess[str]:
        assert self.runs, "no command was run"
        return self.runs[-1]

    def explain(self) -> str:
        """The last run, for assertion messages."""
        done = self.last
        return f"exit {done.returncode}\nstdout:\n{done.stdout}\nstderr:\n{done.stderr}"

    # --- what happened ---------------------------------------------------------------

    def calls(self) -> list[list[str]]:
        """Every argv the tools logged, in order."""
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines()]

    def invocations(self) -> list[dict[str, Any]]:
        """The rows of the `invocations` table, in the order they were written."""
        path = self.root / "work" / "telemetry.db"
        if not path.exists():
            return []
        with contextlib.closing(sqlite3.connect(path)) as db:
            db.row_factory = sqlite3.Row
            rows = db.execute("SELECT * FROM invocations ORDER BY id").fetchall()
        return [dict(row) for row in rows]

    def file(self, name: str) -> Path:
        """A file of the scenario outside the workspace (--output, --context)."""
        folder = self.root.parent / "files"
        folder.mkdir(exist_ok=True)
        return folder / name
