"""`orchestrator sessions`: each conversation (orchestrator/sessions.py) with its tool, its
turns, its tokens by kind, cost and cache-read share (from telemetry, every attempt that
ran in one of its CLI sessions), when it was last used, and where it moved."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from orchestrator.reports.status import database
from orchestrator.sessions import STATE_FILE, read_sessions

if TYPE_CHECKING:
    from pathlib import Path

KINDS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens")


def sessions_data(root: Path) -> list[dict[str, Any]]:
    found = read_sessions(root / "work" / STATE_FILE)
    rows = []
    with database(root) as db:
        for name, session in sorted(found.items()):
            totals: dict[str, Any] = dict.fromkeys(KINDS, 0) | {"cost_usd": 0.0, "attempts": 0}
            if db is not None and session.cli_ids:
                marks = ", ".join("?" * len(session.cli_ids))
                sums = ", ".join(f"COALESCE(SUM({kind}), 0)" for kind in KINDS)
                row = db.execute(
                    f"SELECT {sums}, COALESCE(SUM(cost_usd), 0), COUNT(*) FROM invocations "
                    f"WHERE session_id IN ({marks})",
                    session.cli_ids,
                ).fetchone()
                totals = dict(zip((*KINDS, "cost_usd", "attempts"), row, strict=True))
            prompt = sum(totals[k] for k in KINDS if k != "output_tokens")
            rows.append(
                {
                    "name": name,
                    "tool": session.tool,
                    "model": session.model,
                    "turns": session.turns,
                    "last_used": session.last_used,
                    "cli_session": session.cli_id,
                    "tokens": {k.removesuffix("_tokens"): totals[k] for k in KINDS},
                    "cost_usd": round(float(totals["cost_usd"]), 6),
                    "cache_read_share": round(totals["cache_read_tokens"] / prompt, 4)
                    if prompt
                    else None,
                    "attempts": totals["attempts"],
                    "moves": session.moves,
                }
            )
    return rows


def render_sessions(rows: list[dict[str, Any]], *, as_json: bool = False) -> str:
    if as_json:
        return json.dumps(rows, indent=2)
    if not rows:
        return "no sessions yet (a task's session: NAME, or exec --session NAME, starts one)"
    lines = []
    for row in rows:
        tokens = row["tokens"]
        share = row["cache_read_share"]
        lines.append(
            f"{row['name']}  {row['tool']}/{row['model'] or '-'}  {row['turns']} turns  "
            f"in {tokens['input']:,} out {tokens['output']:,} cache read "
            f"{tokens['cache_read']:,} write {tokens['cache_write']:,}  "
            f"${row['cost_usd']:.4f}  cache {f'{share:.0%}' if share is not None else '-'}  "
            f"last used {row['last_used'] or '-'}"
        )
        lines += [f"  moved {move}" for move in row["moves"]]
    return "\n".join(lines)
