"""Dependencies, handoffs, context chaining and profiles, through the real command."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
import yaml

from orchestrator.workflow import find_cycle, parse_handoff
from tests.conftest import (
    Daemon,
    base_config,
    drop_task,
    orchestrator,
    result,
    results,
    wait_for,
    write_config,
)


def run_once(root: Path) -> str:
    done = orchestrator(root, "run", "--once")
    assert done.returncode == 0, done.stderr
    return done.stderr


def three_agents(files: dict[str, Any]) -> None:
    agents = files["agents.yaml"]["agents"]
    agents["architect"] = {"preferred_tool": "fake", "handoff_to": ["backend-dev"]}
    agents["backend-dev"] = {"preferred_tool": "fake", "handoff_to": ["writer"]}
    agents["writer"] = {"preferred_tool": "fake"}


def started_order(log: Path) -> list[str]:
    return [line.split()[0] for line in log.read_text().splitlines()]


def test_three_agent_chain_with_handoffs(workspace: Path) -> None:
    files = base_config()
    three_agents(files)
    write_config(workspace, files)
    drop_task(
        workspace,
        "design.yaml",
        {
            "agent": "architect",
            "prompt": "HANDOFF=backend-dev|Build the API|HANDOFF=writer|Document the API|",
        },
    )
    run_once(workspace)  # waits for the whole chain
    design = result(workspace, "design")
    build_id = "design--to-backend-dev"
    docs_id = "design--to-backend-dev--to-writer"
    assert design["result"]["next_agent"] == "backend-dev"
    assert design["result"]["next_task_id"] == build_id
    build, docs = result(workspace, build_id), result(workspace, docs_id)
    assert build["status"] == docs["status"] == "succeeded"
    assert build["agent"] == "backend-dev" and docs["agent"] == "writer"
    assert "result" not in docs  # the writer's answer asks for no handoff
    archived = next((workspace / "work" / "archive").glob(f"*/{build_id}.yaml"))
    follow_up = yaml.safe_load(archived.read_text())
    assert follow_up["previous_task"] == "design"
    assert follow_up["previous_agent"] == "architect"
    assert follow_up["title"] == "Build the API"
    assert follow_up["artefacts"] == ["docs/out.md"]
    assert "Done with my part." in follow_up["previous_output"]
    # the writer (an echo) got the previous output, and no handoff instructions
    assert f"## Output of the previous task, {build_id} (backend-dev)" in docs["output"]
    assert "If another agent should continue" not in docs["output"]
    with sqlite3.connect(workspace / "work" / "telemetry.db") as db:
        chains = {r[0]: r[1] for r in db.execute("SELECT task_id, chain_id FROM invocations")}
    assert chains == {"design": "design", build_id: "design", docs_id: "design"}
    status = json.loads(orchestrator(workspace, "status", "--json").stdout)
    assert {(c["from"], c["to"]) for c in status["chains"]} == {
        ("design", build_id),
        (build_id, docs_id),
    }
    assert (
        "design -> design--to-backend-dev (backend-dev): succeeded"
        in orchestrator(workspace, "status").stdout
    )


def test_handoff_instructions_are_in_the_prompt(workspace: Path) -> None:
    files = base_config()
    three_agents(files)
    write_config(workspace, files)
    drop_task(workspace, "ask.yaml", {"agent": "architect", "prompt": "Plan it."})
    run_once(workspace)
    out = result(workspace, "ask")["output"]  # the fake tool answers with its prompt
    assert out.startswith("Plan it.\n\nIf another agent should continue this work")
    assert "next_agent: <one of: backend-dev>" in out
    # the example in the instructions is not taken for a handoff
    assert "design--to" not in " ".join(results(workspace))
    assert len(results(workspace)) == 1


def test_handoff_from_the_task_file_and_to_an_unknown_agent(workspace: Path) -> None:
    drop_task(
        workspace,
        "src.yaml",
        {
            "agent": "worker",
            "prompt": "hi",
            "result": {
                "next_agent": "arg-agent",
                "next_task_title": "Go on",
                "next_artefacts": ["docs/a.md"],
            },
        },
    )
    drop_task(
        workspace,
        "bad.yaml",
        {"agent": "worker", "prompt": "hi", "result": {"next_agent": "nobody"}},
    )
    drop_task(  # worker has no handoff_to: a block in its answer is just text
        workspace, "quiet.yaml", {"agent": "worker", "prompt": "HANDOFF=arg-agent|x|y"}
    )
    run_once(workspace)
    assert result(workspace, "src--to-arg-agent")["status"] == "succeeded"
    # the block is under `task:` and `result:`: written out twice, not as a YAML alias
    text = (workspace / "work" / "outbox" / "src.result.yaml").read_text()
    assert text.count("docs/a.md") == 2 and "*id" not in text, text
    bad = result(workspace, "bad")
    assert bad["status"] == "succeeded"
    assert any("handoff to 'nobody' ignored" in w for w in bad["warnings"])
    assert "result" not in result(workspace, "quiet")
    assert sorted(results(workspace)) == ["bad", "quiet", "src", "src--to-arg-agent"]


def test_crash_between_result_and_follow_up_writes_exactly_one(workspace: Path) -> None:
    """The daemon died after writing the result, before the follow-up and the archive."""
    source = {
        "id": "crashed",
        "agent": "worker",
        "prompt": "x",
        "result": {"next_agent": "arg-agent", "next_task_title": "Next"},
    }
    (workspace / "work" / "running" / "crashed.yaml").write_text(yaml.safe_dump(source))
    (workspace / "work" / "outbox" / "crashed.result.yaml").write_text(
        yaml.safe_dump(
            {
                "id": "crashed",
                "status": "succeeded",
                "agent": "worker",
                "output": "the answer",
                "result": {
                    "next_agent": "arg-agent",
                    "next_task_title": "Next",
                    "next_task_id": "crashed--to-arg-agent",
                },
            },
            sort_keys=False,
        )
    )
    run_once(workspace)
    assert sorted(results(workspace)) == ["crashed", "crashed--to-arg-agent"]
    assert result(workspace, "crashed")["output"] == "the answer"  # not run again
    # and once more: nothing new
    (workspace / "work" / "running" / "crashed.yaml").write_text(yaml.safe_dump(source))
    run_once(workspace)
    assert sorted(results(workspace)) == ["crashed", "crashed--to-arg-agent"]


def test_crash_after_follow_up_before_result_does_not_duplicate(workspace: Path) -> None:
    source = {
        "id": "half",
        "agent": "worker",
        "prompt": "x",
        "result": {"next_agent": "arg-agent", "next_task_title": "Next"},
    }
    (workspace / "work" / "running" / "half.yaml").write_text(yaml.safe_dump(source))
    drop_task(
        workspace,
        "half--to-arg-agent.yaml",
        {
            "id": "half--to-arg-agent",
            "agent": "arg-agent",
            "prompt": "written before the crash",
        },
    )
    run_once(workspace)
    assert sorted(results(workspace)) == ["half", "half--to-arg-agent"]
    assert result(workspace, "half--to-arg-agent")["output"] == "written before the crash\n"


def test_diamond_of_dependencies(workspace: Path) -> None:
    log = workspace.parent / "started.log"
    tasks = {"d": ["b", "c"], "b": ["a"], "c": ["a"], "a": []}
    for name, deps in tasks.items():  # the last one first
        drop_task(
            workspace,
            f"{name}.yaml",
            {
                "agent": "worker",
                "dependencies": deps,
                "prompt": f"STARTED={log}",
            },
        )
    run_once(workspace)
    order = started_order(log)
    assert order[0] == "a" and order[-1] == "d" and set(order[1:3]) == {"b", "c"}
    assert all(r["status"] == "succeeded" for r in results(workspace).values())


def test_failed_dependency_rejects_the_waiting_task(workspace: Path) -> None:
    drop_task(workspace, "base.yaml", {"agent": "worker", "prompt": "EXIT=1"})
    drop_task(
        workspace,
        "next.yaml",
        {"agent": "worker", "dependencies": [{"task_id": "base"}], "prompt": "never"},
    )
    drop_task(
        workspace,
        "anyway.yaml",
        {
            "agent": "worker",
            "dependencies": ["base"],
            "on_dependency_failure": "run",
            "prompt": "still",
        },
    )
    run_once(workspace)
    assert result(workspace, "base")["status"] == "failed"
    rejected = result(workspace, "next")
    assert rejected["status"] == "rejected"
    assert rejected["error"]["kind"] == "dependency_failed"
    assert "dependency 'base' ended as failed" in rejected["error"]["message"]
    assert "orchestrator retry base" in rejected["error"]["hint"]
    assert result(workspace, "anyway")["status"] == "succeeded"


def test_cycle_is_rejected_with_the_cycle_named(workspace: Path) -> None:
    drop_task(workspace, "x.yaml", {"agent": "worker", "dependencies": ["y"], "prompt": "x"})
    drop_task(workspace, "y.yaml", {"agent": "worker", "dependencies": ["z"], "prompt": "y"})
    drop_task(workspace, "z.yaml", {"agent": "worker", "dependencies": ["x"], "prompt": "z"})
    drop_task(workspace, "me.yaml", {"agent": "worker", "dependencies": ["me"], "prompt": "m"})
    run_once(workspace)
    found = results(workspace)
    assert {k: v["status"] for k, v in found.items()} == dict.fromkeys("xyz", "rejected") | {
        "me": "rejected"
    }
    assert all(v["error"]["kind"] == "dependency_cycle" for v in found.values())
    assert "cycle: me -> me" in found["me"]["error"]["message"]
    assert any(
        " -> ".join(c) in found["z"]["error"]["message"]
        for c in (["z", "x", "y", "z"], ["x", "y", "z", "x"], ["y", "z", "x", "y"])
    )


@pytest.mark.watcher
def test_unknown_dependency_waits_and_starts_when_it_appears(workspace: Path) -> None:
    d = Daemon(workspace)
    try:
        drop_task(
            workspace,
            "w.yaml",
            {"agent": "worker", "dependencies": ["later"], "prompt": "after later"},
        )

        def waiting() -> list[dict[str, Any]]:
            data = json.loads(orchestrator(workspace, "status", "--json").stdout)
            return data["waiting"]  # type: ignore[no-any-return]

        wait_for(lambda: waiting() != [], what="the task to wait")
        assert waiting() == [{"id": "w", "agent": "worker", "waiting_for": "later (unknown)"}]
        assert "w  waits for later (unknown)" in orchestrator(workspace, "status").stdout
        drop_task(workspace, "later.yaml", {"agent": "worker", "prompt": "first"})
        wait_for(lambda: "w" in results(workspace), what="the waiting task to run")
    finally:
        d.stop()
    assert result(workspace, "w")["status"] == "succeeded"


def test_run_once_leaves_tasks_with_unknown_dependencies_in_the_inbox(workspace: Path) -> None:
    drop_task(
        workspace, "orphan.yaml", {"agent": "worker", "dependencies": ["ghost"], "prompt": "x"}
    )
    stderr = run_once(workspace)
    assert "orphan still waits for its dependencies" in stderr
    assert (workspace / "work" / "inbox" / "orphan.yaml").exists()
    assert not results(workspace)


def test_profile_is_prepended(workspace: Path) -> None:
    (workspace / "agents").mkdir()
    (workspace / "agents" / "worker.md").write_text("You are the worker. Be brief.\n")
    files = base_config()
    files["agents.yaml"]["agents"]["worker"]["profile"] = "agents/worker.md"
    write_config(workspace, files)
    drop_task(workspace, "p.yaml", {"agent": "worker", "prompt": "Do it."})
    run_once(workspace)
    assert result(workspace, "p")["output"] == "You are the worker. Be brief.\n\nDo it.\n"
    out = orchestrator(workspace, "exec", "--agent", "worker", "--prompt", "Now.")
    assert out.stdout == "You are the worker. Be brief.\n\nNow.\n\n"


def test_exec_chain_at8(workspace: Path, tmp_path: Path) -> None:
    """AT-8: three exec calls chained through --output/--context: three files, three rows,
    one chain id."""
    a, b, c = (tmp_path / f"{n}.md" for n in "abc")
    steps = [
        ["--prompt", "Step one."],
        ["--prompt", "Step two.", "--context", str(a)],
        ["--prompt", "Step three.", "--context", str(b)],
    ]
    for args, out in zip(steps, (a, b, c), strict=True):
        done = orchestrator(workspace, "exec", "--agent", "worker", *args, "--output", str(out))
        assert done.returncode == 0, done.stderr
        assert out.exists()
    assert c.read_text().startswith("Step three.\n\n## ")
    with sqlite3.connect(workspace / "work" / "telemetry.db") as db:
        found = db.execute("SELECT task_id, chain_id FROM invocations ORDER BY id").fetchall()
    assert len(found) == 3
    assert len({chain for _, chain in found}) == 1
    assert found[0][1] == found[0][0]  # the chain is named after its first task
    alone = orchestrator(workspace, "exec", "--agent", "worker", "--prompt", "unrelated")
    assert alone.returncode == 0
    with sqlite3.connect(workspace / "work" / "telemetry.db") as db:
        chains = {r[0] for r in db.execute("SELECT chain_id FROM invocations")}
    assert len(chains) == 2


# 21 anchors, each naming the one before twice: 2**21 values once expanded
ALIAS_BOMB = "a: &a [x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}]\n" for i in range(20)
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("no block", None),
        (
            "```handoff\nnext_agent: w\nnext_task_title: T\n```\n",
            {"next_agent": "w", "next_task_title": "T"},
        ),
        ("```handoff\nnot: yaml: [\n```\n", None),
        ("```handoff\n- a list\n```\n", None),
        (
            "```handoff\nnext_agent: a\n```\nthen\n```handoff\nnext_agent: b\n```\n",
            {"next_agent": "b"},
        ),
        ("```yaml\nnext_agent: w\n```\n", None),
        ("```handoff\n" + "[" * 5000 + "\n```\n", None),  # nested too deeply
        (f"```handoff\n{ALIAS_BOMB}next_agent: w\n```\n", None),
    ],
)
def test_parse_handoff(text: str, expected: dict[str, Any] | None) -> None:
    assert parse_handoff(text) == expected


def test_a_hostile_handoff_block_does_not_stop_the_daemon(workspace: Path) -> None:
    """An agent's answer is untrusted: a handoff block nested too deeply is no handoff,
    and the task still gets its result."""
    files = base_config()
    files["agents.yaml"]["agents"]["worker"]["handoff_to"] = ["worker"]
    write_config(workspace, files)
    hostile = "```handoff\n" + "[" * 5000 + "\n```"
    drop_task(workspace, "deep.yaml", {"agent": "worker", "prompt": hostile})
    drop_task(workspace, "after.yaml", {"agent": "worker", "prompt": "fine"})
    run_once(workspace)  # fails the test if the daemon does not exit 0
    assert result(workspace, "deep")["status"] == "succeeded"
    assert "result" not in result(workspace, "deep")
    assert result(workspace, "after")["status"] == "succeeded"
    assert set(results(workspace)) == {"deep", "after"}


def test_find_cycle() -> None:
    assert find_cycle("a", {"a": ["b"], "b": ["c"], "c": []}) is None
    assert find_cycle("a", {"a": ["b"], "b": ["a"]}) == ["a", "b", "a"]
    assert find_cycle("a", {"a": ["b", "c"], "c": ["d"], "d": ["a"]}) == ["a", "c", "d", "a"]


def test_a_handoff_loop_stops(workspace: Path) -> None:
    files = base_config()
    files["agents.yaml"]["agents"]["worker"]["handoff_to"] = ["worker"]
    write_config(workspace, files)
    # the echo tool repeats the previous output, so every answer hands off again
    drop_task(workspace, "loop.yaml", {"agent": "worker", "prompt": "HANDOFF=worker|again|"})
    run_once(workspace)
    found = results(workspace)
    assert len(found) == 21
    [last] = [r for r in found.values() if r.get("warnings")]
    assert "the chain is 20 handoffs long (at most 20)" in last["warnings"][0]
    assert all(len(task_id) <= 200 for task_id in found)
