"""Sessions: a 5-turn conversation resumed in the CLI's own session, against the same 5
turns sent fresh, each with the whole history pasted into its prompt.

The real claude CLI (pinned npm package, isolated HOME) answers through `orchestrator exec`
against the fake LLM API, whose FAKE_CACHE marker measures each request (about 4
characters a token) and reads the prefix an earlier request sent from the cache, as a
provider's prompt cache would. Prints the tokens and cost of each turn in both ways (from
the telemetry rows, cost as claude reports it at list prices), and the totals.
"""

from __future__ import annotations

import sqlite3
import sys
from typing import TYPE_CHECKING, Any

from bench._common import AGENT, figure, header, info, parser, run_checked, size, workspace
from bench.real_tool import PROVIDER_URL_VARS, claude_config

if TYPE_CHECKING:
    from collections.abc import Sequence

NAME = "sessions"
QUESTIONS = (
    "Name a prime number between 10 and 20.",
    "Add 4 to it.",
    "Is the result even?",
    "Write it in binary.",
    "Now summarise this conversation in one line.",
)
ANSWER = "an-answer-of-a-realistic-length-" * 40  # one word (FAKE_REPLY), 1,280 characters


def turns(ws: Any, session: bool, count: int) -> list[dict[str, Any]]:
    """Run `count` turns by exec; each turn's telemetry row (tokens, cost)."""
    history: list[str] = []
    rows = []
    for n, question in enumerate(QUESTIONS[:count], 1):
        marker = f"FAKE_CACHE FAKE_REPLY={ANSWER}{n}"
        if session:
            prompt = f"{question} {marker}"
            extra = ["--session", "bench"]
        else:
            pasted = "\n".join(history)
            prompt = f"The conversation so far:\n{pasted}\n\nNow: {question} {marker}"
            extra = []
        run_checked(ws.command("exec", "--agent", AGENT, *extra, "--prompt", prompt),
                    ws.env, ws.root)  # fmt: skip
        history += [f"User: {question}", f"Assistant: {ANSWER}{n}"]
        with sqlite3.connect(ws.database) as db:
            db.row_factory = sqlite3.Row
            row = db.execute(
                "SELECT input_tokens, cache_read_tokens, output_tokens, cost_usd "
                "FROM invocations ORDER BY id DESC LIMIT 1"
            ).fetchone()
        rows.append(dict(row))
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    from tests import realcli
    from tests.fake_llm_api import FakeLLMAPI

    p = parser(__doc__ or NAME)
    p.add_argument("--turns", type=int)
    args = p.parse_args(list(sys.argv[1:] if argv is None else argv))
    count = min(size(args.turns, args.quick, 2, 5), len(QUESTIONS))
    binary = realcli.cli_path("claude")
    header(NAME, {"turns": count, "claude": binary})
    found: dict[str, list[dict[str, Any]]] = {}
    for way, session in (("resumed", True), ("fresh", False)):
        with FakeLLMAPI() as api, workspace(f"{NAME}-{way}") as ws:
            cache = {"PYTHONPYCACHEPREFIX": ws.env["PYTHONPYCACHEPREFIX"]}
            env = realcli.isolated_env(ws.home, api.base_url, extra=cache)
            for name in PROVIDER_URL_VARS:
                del env[name]
            ws.env.clear()
            ws.env.update(env)
            ws.configure(claude_config(binary, api.base_url))
            found[way] = turns(ws, session, count)
    for way, rows in found.items():
        for n, row in enumerate(rows, 1):
            info(NAME, f"{way} turn {n}: input {row['input_tokens']}, cache read "
                       f"{row['cache_read_tokens']}, output {row['output_tokens']}, "
                       f"${row['cost_usd'] or 0:.5f}")  # fmt: skip
    cost = {way: sum(r["cost_usd"] or 0.0 for r in rows) for way, rows in found.items()}
    fresh_input = sum(r["input_tokens"] for r in found["fresh"])
    resumed_input = sum(r["input_tokens"] for r in found["resumed"])
    pasted = f"{count} turns, the history pasted each time; {fresh_input} uncached input tokens"
    figure(f"{NAME}.fresh_cost", cost["fresh"], "usd", note=pasted)
    figure(
        f"{NAME}.resumed_cost",
        cost["resumed"],
        "usd",
        floor=cost["fresh"],
        note=f"{count} turns in one session; {resumed_input} uncached input tokens",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
