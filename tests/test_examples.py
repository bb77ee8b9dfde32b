"""The workspaces of examples/ run as their users would run them, with the real claude,
codex and gemini CLIs against the fake LLM API on 127.0.0.1.

Each example is copied to a temporary folder (a git repository where it needs one) and
left as it is, but for its tools' `base_url`: that comes from the user config folder of the
test's own HOME (`~/.config/orchestrator/tools.yaml`, merged under the example's config,
as a user with a gateway would write it), with codex's offline switches. The API keys
reach the CLIs through the `env:` lists of each example's tools.yaml. Then `config
validate`, `run --once` (and the power user's `bin/ask`), and the checks of what each
README promises: one result per task file, the routes, the order of dependent tasks, the
worktrees, the schedules, and the spend in `status --json` and `stats --json`.
"""

from __future__ import annotations

import itertools
import json
import re
import shutil
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml

from tests import realcli
from tests.conftest import orchestrator, results
from tests.fake_llm_api import FakeLLMAPI
from tests.test_real_clis import closed_port

if TYPE_CHECKING:
    from collections.abc import Iterator

EXAMPLES = realcli.REPO_ROOT / "examples"
NAMES = ("ai-power-user", "software-engineer", "process-architect")
CLAUDE_SAYS, CODEX_SAYS = "Hello from the fake anthropic API.", "Hello from the fake openai API."
# How each provider's key arrives, with the fake keys of realcli.isolated_env
KEY_HEADERS = {
    "anthropic": ("x-api-key", realcli.ANTHROPIC_FAKE_KEY),
    "openai": ("authorization", f"Bearer {realcli.OPENAI_FAKE_KEY}"),
    "gemini": ("x-goog-api-key", realcli.GEMINI_FAKE_KEY),
}
TIMEOUT_S = 300  # three to six real CLI runs per example, a few seconds each


@pytest.fixture
def api() -> Iterator[FakeLLMAPI]:
    """A fake API of the test's own, so its recorded requests are the example's alone."""
    with FakeLLMAPI() as server:
        yield server


def inbox_files(folder: Path) -> dict[str, str]:
    """The task files in `folder`/work/inbox: file name → the task's id."""
    tasks = {}
    for path in sorted((folder / "work" / "inbox").glob("*.yaml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        tasks[path.name] = str(data.get("id") or path.stem)
    return tasks


@dataclass
class Example:
    """A copy of an example, and the environment its commands run in."""

    root: Path
    env: dict[str, str]
    tasks: dict[str, str]  # its inbox as shipped: file name → task id

    @classmethod
    def copy(cls, name: str, tmp_path: Path, api: FakeLLMAPI) -> Example:
        root = tmp_path / name
        shutil.copytree(EXAMPLES / name, root)
        env = realcli.isolated_env(tmp_path / "home", api.base_url,
                                   extra={"PYTHONDONTWRITEBYTECODE": "1"})  # fmt: skip
        # bin/ask calls `orchestrator`: the one installed beside this Python
        venv_bin = Path(sys.executable).parent
        assert (venv_bin / "orchestrator").exists(), f"no orchestrator command in {venv_bin}"
        env["PATH"] = f"{venv_bin}:{env['PATH']}"
        example = cls(root, env, inbox_files(root))
        example.point_tools_at(api.base_url)
        return example

    @property
    def user_config(self) -> Path:
        return Path(self.env["XDG_CONFIG_HOME"]) / "orchestrator"

    def point_tools_at(self, base_url: str, *, claude_url: str | None = None) -> None:
        """The tools' base URLs, in the user config folder (merged under the example's)."""
        tools = {
            "claude-code": {"base_url": claude_url or base_url},
            "codex": {"base_url": f"{base_url}/v1", "extra_args": [*realcli.CODEX_OFFLINE_ARGS]},
            "gemini": {"base_url": base_url},
        }
        self.user_config.mkdir(parents=True, exist_ok=True)
        (self.user_config / "tools.yaml").write_text(yaml.safe_dump({"tools": tools}))

    def git(self, *args: str) -> str:
        done = subprocess.run(
            ["git", "-c", "user.name=Sam", "-c", "user.email=sam@example.com", *args],
            cwd=self.root,
            env=self.env,
            capture_output=True,
            text=True,
            check=True,
        )
        return done.stdout.strip()

    def command(self, *args: str) -> str:
        done = orchestrator(self.root, *args, env=self.env, timeout=TIMEOUT_S)
        assert done.returncode == 0, f"{args}:\nstdout:\n{done.stdout}\nstderr:\n{done.stderr}"
        return done.stdout

    def json(self, *args: str) -> Any:
        return json.loads(self.command(*args, "--json"))

    def validate_and_run(self) -> dict[str, dict[str, Any]]:
        """`config validate`, then `run --once`; the results, by task id."""
        assert self.command("config", "validate").startswith("config OK")
        self.command("run", "--once")
        return results(self.root)

    def ask(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.root / "bin" / "ask"), *args],
            cwd=self.root,
            env=self.env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
            check=False,
        )


def routes(found: dict[str, dict[str, Any]]) -> dict[str, tuple[str, str, str]]:
    return {i: (r["tool"], r["model"], r["route_reason"]) for i, r in found.items()}


def assert_one_succeeded_result_per_task(ex: Example, found: dict[str, dict[str, Any]]) -> None:
    for name, task_id in ex.tasks.items():
        assert task_id in found, f"{name} has no result"
        assert found[task_id]["task_file"] == name
        assert found[task_id]["status"] == "succeeded", found[task_id]
    assert not list((ex.root / "work" / "inbox").glob("*.yaml"))
    assert not list((ex.root / "work" / "running").iterdir())


def assert_ran_after(found: dict[str, dict[str, Any]], later: str, earlier: str) -> None:
    assert found[later]["started_at"] >= found[earlier]["finished_at"], (later, earlier)


def by(rows: list[dict[str, Any]], key: str) -> dict[str, dict[str, Any]]:
    return {row[key]: row for row in rows}


# --------------------------------------------------------------------------- the READMEs


def anchors(markdown: Path) -> set[str]:
    """The anchors GitHub gives the headings of a markdown file."""
    headings = re.findall(r"^#+ (.+)$", markdown.read_text(encoding="utf-8"), re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


@pytest.mark.parametrize("name", NAMES)
def test_the_readme_tells_of_every_task_file(name: str) -> None:
    readme = (EXAMPLES / name / "README.md").read_text(encoding="utf-8")
    tasks = inbox_files(EXAMPLES / name)
    assert tasks, f"examples/{name}/work/inbox has no task file"
    for file in tasks:
        assert file in readme, f"examples/{name}/README.md does not mention {file}"
        text = (EXAMPLES / name / "work" / "inbox" / file).read_text(encoding="utf-8")
        assert "FAKE_" not in text, f"{file} carries a test marker"
    for target, anchor in re.findall(r"\]\((\.\./\.\./[^)#]+)(?:#([^)]+))?\)", readme):
        linked = (EXAMPLES / name / target).resolve()
        assert linked.is_file(), f"{name}/README.md links to {target}, which is missing"
        if anchor:
            assert anchor in anchors(linked), f"{name}/README.md: no #{anchor} in {target}"


# --------------------------------------------------------------------------- ai-power-user


@pytest.mark.real_cli
@pytest.mark.timeout(TIMEOUT_S)
def test_the_ai_power_user(tmp_path: Path, api: FakeLLMAPI) -> None:
    ex = Example.copy("ai-power-user", tmp_path, api)

    found = ex.validate_and_run()

    assert_one_succeeded_result_per_task(ex, found)
    assert set(found) == set(ex.tasks.values())
    haiku = ("claude-code", "claude-haiku-4-5", "cost_optimization")
    assert routes(found) == {
        "quick-question": haiku,
        "summarise-call-notes": ("claude-code", "claude-sonnet-4-5", "preferred"),
        "refactor-backup-script": ("codex", "gpt-5-codex", "task_type"),
        "compare-vector-stores": ("gemini", "gemini-2.5-pro", "task_type"),
        "blog-outline": haiku,
        "blog-intro": haiku,
    }
    sent = [(r.provider, r.model) for r in api.requests]
    assert sorted(sent) == sorted([("anthropic", "claude-haiku-4-5")] * 3 + [
        ("anthropic", "claude-sonnet-4-5"), ("openai", "gpt-5-codex"),
        ("gemini", "gemini-2.5-pro")])  # fmt: skip
    for request in api.requests:  # each key reached its CLI through the tool's `env:` list
        header, key = KEY_HEADERS[request.provider]
        assert request.headers.get(header) == key, request.provider
    # the second turn waited for the first and resumed its claude session
    assert_ran_after(found, "blog-intro", "blog-outline")
    (session,) = ex.json("sessions")
    assert (session["name"], session["tool"], session["turns"]) == ("blog-post", "claude-code", 2)
    # the spend, by model, and against the budgets
    models = by(ex.json("stats", "--by", "model"), "model")
    assert set(models) == {"claude-haiku-4-5", "claude-sonnet-4-5", "gpt-5-codex",
                           "gemini-2.5-pro"}  # fmt: skip
    assert models["claude-haiku-4-5"]["invocations"] == 3
    assert models["claude-haiku-4-5"]["saved_usd"] > 0  # against sonnet's price
    assert all(row["cost_usd"] > 0 for row in models.values())
    spend = ex.json("status")["spend"]
    assert spend["today_usd"] == pytest.approx(sum(r["cost_usd"] for r in found.values()))
    assert spend["budgets"] | {"timezone": "Europe/Berlin"} == {
        "daily_usd": 5, "monthly_usd": 60, "warn_at_percent": 80.0, "mode": "hard",
        "timezone": "Europe/Berlin"}  # fmt: skip
    assert ex.command("config", "validate", "--profile", "explore").startswith("config OK")

    # bin/ask from a script: a third turn of the session, on the cheap model
    asked = ex.ask("-s", "blog-post", "Make the introduction shorter.")
    assert (asked.returncode, asked.stdout) == (0, CLAUDE_SAYS + "\n"), asked.stderr
    assert ex.json("sessions")[0]["turns"] == 3

    # Anthropic is down: the answer comes from codex, each fallback said on stderr
    ex.point_tools_at(api.base_url, claude_url=f"http://127.0.0.1:{closed_port()}")
    asked = ex.ask("-c", "notes/backup.sh", "Is this script safe to run from cron?")
    assert (asked.returncode, asked.stdout) == (0, CODEX_SAYS + "\n"), asked.stderr
    assert "trying claude-code:claude-sonnet-4-5" in asked.stderr
    assert "trying codex:gpt-5-codex" in asked.stderr
    totals = ex.json("stats", "--totals")["totals"]
    assert (totals["invocations"], totals["failures"]) == (10, 2)
    assert by(ex.json("stats", "--by", "model"), "model")["gpt-5-codex"]["invocations"] == 2


# --------------------------------------------------------------------------- software-engineer


@pytest.mark.real_cli
@pytest.mark.timeout(TIMEOUT_S)
def test_the_software_engineer(tmp_path: Path, api: FakeLLMAPI) -> None:
    ex = Example.copy("software-engineer", tmp_path, api)
    ex.git("init", "-q", "-b", "main")
    (ex.root / ".git" / "info" / "exclude").write_text("/work\n")  # as the README says
    ex.git("add", "--all")
    ex.git("commit", "-q", "-m", "The shop, before discount codes")
    head = ex.git("rev-parse", "HEAD")

    found = ex.validate_and_run()

    assert_one_succeeded_result_per_task(ex, found)
    assert set(found) == set(ex.tasks.values())
    assert routes(found) == {
        "add-discount-codes": ("claude-code", "claude-sonnet-4-5", "preferred"),
        "test-discount-codes": ("codex", "gpt-5-codex", "task_type"),
        "review-discount-codes": ("codex", "gpt-5-codex", "preferred"),
        "document-discount-codes": ("gemini", "gemini-2.5-flash", "preferred"),
        "fix-vat-docstring": ("claude-code", "claude-haiku-4-5", "task_type"),
    }
    chain = ["add-discount-codes", "test-discount-codes", "review-discount-codes",
             "document-discount-codes"]  # fmt: skip
    for earlier, later in itertools.pairwise(chain):
        assert_ran_after(found, later, earlier)
    # each task on its own branch, each step of the chain from the step before
    bases = {"add-discount-codes": "HEAD", "fix-vat-docstring": "HEAD"}
    bases |= {later: f"orchestrator/{earlier}" for earlier, later in itertools.pairwise(chain)}
    for task_id, base in bases.items():
        workspace = found[task_id]["workspace"]
        assert (workspace["branch"], workspace["base"]) == (f"orchestrator/{task_id}", base)
        assert workspace["base_commit"] == head  # the fake API's agents edit nothing
    branches = ex.git("branch", "--list", "orchestrator/*", "--format=%(refname:short)")
    assert sorted(branches.splitlines()) == sorted(f"orchestrator/{t}" for t in bases)
    # the checkout is as it was: same branch and commit, nothing changed, no worktree left
    assert (ex.git("rev-parse", "--abbrev-ref", "HEAD"), ex.git("rev-parse", "HEAD")) == (
        "main", head)  # fmt: skip
    assert ex.git("status", "--porcelain") == ""
    assert len(ex.git("worktree", "list").splitlines()) == 1
    # the profile and the context files reached the CLI
    (implement,) = [r for r in api.requests if r.model == "claude-sonnet-4-5"]
    assert "You are a backend developer" in implement.prompt
    assert "# Architecture of the shop backend" in implement.prompt
    assert "class Cart:" in implement.prompt
    # the dashboard: finished branches, spend by agent
    status = ex.json("status")
    assert {b["id"] for b in status["branches"]["finished"]} == set(bases)
    assert status["spend"]["today_usd"] > 0
    agents = by(ex.json("stats", "--by", "agent"), "agent")
    assert {a: row["invocations"] for a, row in agents.items()} == {
        "backend-dev": 3, "reviewer": 1, "docs-writer": 1}  # fmt: skip


# --------------------------------------------------------------------------- process-architect


def events(ex: Example, task_id: str) -> dict[str, float]:
    """When each kind of progress event of the task's (only) attempt was first written."""
    first: dict[str, float] = {}
    log = ex.root / "work" / "logs" / f"{task_id}.events.jsonl"
    for line in log.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        first.setdefault(record["kind"], record["t"])
    return first


@pytest.mark.real_cli
@pytest.mark.timeout(TIMEOUT_S)
def test_the_process_architect(tmp_path: Path, api: FakeLLMAPI) -> None:
    ex = Example.copy("process-architect", tmp_path, api)
    postmortem = ex.tasks["postmortem-inc-2291.yaml"]
    editing = f"{postmortem}--to-editor"

    found = ex.validate_and_run()

    assert_one_succeeded_result_per_task(ex, found)
    assert set(found) == {*ex.tasks.values(), editing}  # and the handoff's follow-up
    assert found[editing]["status"] == "succeeded"
    assert routes(found) == {
        "triage-inc-2291": ("gemini", "gemini-2.5-flash", "preferred"),
        "triage-inc-2292": ("gemini", "gemini-2.5-flash", "preferred"),
        "investigate-inc-2291": ("claude-code", "claude-sonnet-4-5", "preferred"),
        postmortem: ("codex", "gpt-5-mini", "preferred"),
        editing: ("claude-code", "claude-haiku-4-5", "preferred"),
    }
    assert_ran_after(found, "investigate-inc-2291", "triage-inc-2291")
    assert_ran_after(found, postmortem, "investigate-inc-2291")
    assert_ran_after(found, editing, postmortem)
    # the older task format, read as it is: its keys kept, the prose dependency a warning,
    # its own result: block handed the draft to the editor
    legacy = found[postmortem]
    assert legacy["task"]["created_by"] == "investigator"
    assert any("cannot be a task id" in w for w in legacy["warnings"])
    assert legacy["result"]["next_task_id"] == editing
    # gemini's max_concurrency 1: the triages took turns. The later one's CLI opened its
    # session only after the earlier had ended
    earlier, later = sorted((events(ex, t) for t in ("triage-inc-2291", "triage-inc-2292")),
                            key=lambda e: e["end"])  # fmt: skip
    assert later["session"] > earlier["end"], (earlier, later)
    # privacy: hash: telemetry has the prompts' sha256, never their words
    with sqlite3.connect(ex.root / "work" / "telemetry.db") as db:
        hashes = [h for (h,) in db.execute("SELECT prompt_hash FROM invocations")]
    assert len(hashes) == 5
    assert all(re.fullmatch(r"[0-9a-f]{64}", h) for h in hashes)
    assert any("handshake failure" in r.prompt for r in api.requests)  # it was sent...
    for path in (ex.root / "work").glob("telemetry.db*"):
        assert b"handshake failure" not in path.read_bytes(), path  # ...and not kept

    # the dashboard: the handoff, the spend per stage
    status = ex.json("status")
    assert [(c["from"], c["to"]) for c in status["chains"]] == [(postmortem, editing)]
    assert status["spend"]["today_usd"] > 0
    stages = by(ex.json("stats", "--by", "agent"), "agent")
    assert set(stages) == {"triage", "investigator", "writer", "editor"}
    assert all(row["cost_usd"] > 0 for row in stages.values())

    # the schedules: noted at the first start, no task written; after a week's downtime
    # the next start writes the digest's latest slot, once
    state_file = ex.root / "work" / "schedules.json"
    state = json.loads(state_file.read_text())
    assert set(state) == {"open-incidents-digest", "monthly-process-review"}
    assert not [t for t in results(ex.root) if t.startswith("open-incidents-digest")]
    state["open-incidents-digest"] = (datetime.now(UTC) - timedelta(days=8)).isoformat()
    state_file.write_text(json.dumps(state))
    ex.command("run", "--once")
    digests = {t: r for t, r in results(ex.root).items() if t.startswith("open-incidents-digest")}
    assert len(digests) == 1, digests
    ((digest_id, digest),) = digests.items()
    assert (digest["status"], digest["agent"], digest["tool"]) == ("succeeded", "triage", "gemini")
    assert digest["task"]["created_by"] == "schedule open-incidents-digest"
    assert len(results(ex.root)) == len(found) + 1, digest_id


# --------------------------------------------------------------------------- the keys


@pytest.mark.real_cli
@pytest.mark.parametrize("name", NAMES)
def test_the_keys_the_readme_exports_make_every_tool_ready(name: str, tmp_path: Path) -> None:
    """Without the fake API's base_url (as a user runs it), the variables each README
    exports are the ones its tools list and its CLIs read: doctor finds every tool ready."""
    readme = (EXAMPLES / name / "README.md").read_text(encoding="utf-8")
    exported = set(re.findall(r"^export (\w+)=", readme, re.MULTILINE))
    assert {"ANTHROPIC_API_KEY", "CODEX_API_KEY", "GEMINI_API_KEY"} <= exported, exported
    root = tmp_path / name
    shutil.copytree(EXAMPLES / name, root)
    subprocess.run(["git", "init", "-q", str(root)], check=True)  # for worktree isolation
    home = tmp_path / "home"
    home.mkdir()
    env = {"PATH": f"{realcli.cli_bin_dir()}:/usr/bin:/bin", "HOME": str(home),
           "TMPDIR": str(tmp_path), **dict.fromkeys(exported, "set-by-the-test")}  # fmt: skip
    done = orchestrator(root, "doctor", env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "NOT set (" not in done.stdout and "tools ready" in done.stdout.splitlines()[-1]
