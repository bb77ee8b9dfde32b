"""A stand-in streaming CLI for the progress tests: JSON lines on stdout, as they happen.

It reads the prompt on stdin and obeys `KEY=value` words found in it:

    LINES=<n>       print n progress lines first (default 3)
    EVERY=<s>       sleep this long before each progress line (default 0)
    TOKENS=<n>      each progress line reports n more input tokens and n // 10 more output
                    tokens (running totals, as agent CLIs report them; default 100)
    THEN_SLEEP=<s>  after the progress lines, sleep this long before answering
    ANSWER=<word>   the answer (default "done")
    CUT             end with half a line and no answer (a stream cut off mid-line)

A progress line: {"type": "progress", "text": "step K", "usage": {...}}; the answer:
{"type": "result", "text": ANSWER, "usage": {...}} with the usage of the last line.
"""

from __future__ import annotations

import json
import re
import sys
import time


def main() -> int:
    prompt = sys.stdin.read()
    found = dict(re.findall(r"\b([A-Z_]+)=(\S+)", prompt))
    lines, every = int(found.get("LINES", 3)), float(found.get("EVERY", 0))
    tokens = int(found.get("TOKENS", 100))
    usage = {"input_tokens": 0, "output_tokens": 0}
    for step in range(1, lines + 1):
        time.sleep(every)
        usage = {"input_tokens": step * tokens, "output_tokens": step * tokens // 10}
        print(json.dumps({"type": "progress", "text": f"step {step}", "usage": usage}), flush=True)
    time.sleep(float(found.get("THEN_SLEEP", 0)))
    answer = json.dumps({"type": "result", "text": found.get("ANSWER", "done"), "usage": usage})
    if re.search(r"\bCUT\b", prompt):
        sys.stdout.write(answer[: len(answer) // 2])
        return 0
    print(answer, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
