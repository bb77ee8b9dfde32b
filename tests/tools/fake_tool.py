"""A stand-in agent CLI for the pipeline tests, driven by directives in its prompt.

It reads the prompt from stdin (or from the file named by --prompt-file, or --prompt) and
obeys lines of the form `DIRECTIVE` or `DIRECTIVE=value`:

    SLEEP=<s>            sleep before answering
    TICK=<s>             while sleeping, write "tick" to stderr every <s> seconds
    SAY=<text>           write this line to stderr just before sleeping
    EXIT=<code>          exit with this code (after printing)
    GRANDCHILD=<pidfile> spawn a grandchild that ignores SIGTERM, write its pid, then sleep
    IGNORE_TERM          ignore SIGTERM itself
    PRINT_ENV            answer with the sorted names of the environment variables
    FLOOD=<bytes>        write this many bytes to stdout and stderr first
    HOLD_STDOUT=<pidfile> leave a grandchild holding stdout open, then exit at once
    STARTED=<file>       append "<task> <time.time()>" to this file when it starts
    KILL_SELF            die by SIGKILL
    KILL_PARENT          SIGKILL its parent (the daemon): a task that crashes the daemon
    GARBAGE              print something that is not JSON
    HANDOFF=<agent>|<title>|<notes>   answer with a handoff block to <agent>
    APPEND=<path>:<text> append a line to a file (relative to its working folder) first
    BARRIER=<dir>:<n>    first leave a file in <dir>, then wait until it holds <n> (max 30 s)
    SLEEP_ONCE=<marker>:<s>  sleep <s> seconds unless <marker> exists (it creates it)
    SHOW=<path>          end the answer with the contents of a file (of its working folder)

Directive lines may start with "- " (as in a composed prompt's notes).

The answer is JSON: {"result": <prompt echo>, "usage": {...}, "model": <--model>}.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time


def directives(prompt: str) -> dict[str, str]:
    found = {}
    for line in prompt.splitlines():
        key, _, value = line.strip().removeprefix("- ").partition("=")
        if key.isupper() and key.replace("_", "").isalpha():
            found[key] = value
    return found


def read_prompt(args: argparse.Namespace) -> str:
    if args.prompt is not None:
        return str(args.prompt)
    if args.prompt_file:
        with open(args.prompt_file, encoding="utf-8") as f:
            return f.read()
    return sys.stdin.read()


def write_pid(path: str, pid: int) -> None:
    """Whole or not at all (a rename): a test that sees the file may read it at once."""
    with open(f"{path}.tmp", "w", encoding="utf-8") as f:
        f.write(str(pid))
    os.rename(f"{path}.tmp", path)


def side_effects(d: dict[str, str], task: str) -> None:
    if "STARTED" in d:
        with open(d["STARTED"], "a", encoding="utf-8") as f:
            f.write(f"{task} {time.time()}\n")
    if "IGNORE_TERM" in d:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if "FLOOD" in d:
        chunk = b"x" * 65536
        for _ in range(int(d["FLOOD"]) // len(chunk)):
            sys.stdout.buffer.write(chunk)
            sys.stderr.buffer.write(chunk)
    if "GRANDCHILD" in d:
        code = "import signal,time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"
        child = subprocess.Popen([sys.executable, "-c", code])
        write_pid(d["GRANDCHILD"], child.pid)
    if "HOLD_STDOUT" in d:
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
        write_pid(d["HOLD_STDOUT"], child.pid)
    if "KILL_SELF" in d:
        os.kill(os.getpid(), signal.SIGKILL)
    if "KILL_PARENT" in d:
        os.kill(os.getppid(), signal.SIGKILL)
    if "SAY" in d:
        sys.stderr.write(d["SAY"] + "\n")
        sys.stderr.flush()
    if "SLEEP" in d:
        sleep(float(d["SLEEP"]), float(d.get("TICK") or 0))


def sleep(seconds: float, tick: float) -> None:
    """Sleep; with a `tick`, write a line to stderr every `tick` seconds meanwhile."""
    end = time.monotonic() + seconds
    while tick and end - time.monotonic() > tick:
        time.sleep(tick)
        sys.stderr.write("tick\n")
        sys.stderr.flush()
    time.sleep(max(0.0, end - time.monotonic()))


def in_working_folder(d: dict[str, str]) -> None:
    """What an agent does to its checkout (APPEND), and ways to hold it while it runs."""
    if "APPEND" in d:
        path, _, text = d["APPEND"].partition(":")
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        with open(path, "a", encoding="utf-8") as f:
            f.write(text + "\n")
    if "BARRIER" in d:
        folder, _, count = d["BARRIER"].rpartition(":")
        open(os.path.join(folder, str(os.getpid())), "w").close()
        deadline = time.monotonic() + 30
        while len(os.listdir(folder)) < int(count):
            if time.monotonic() > deadline:
                sys.exit("barrier: the others never came")
            time.sleep(0.02)
    if "SLEEP_ONCE" in d:
        marker, _, seconds = d["SLEEP_ONCE"].rpartition(":")
        if not os.path.exists(marker):
            open(marker, "w").close()
            time.sleep(float(seconds))


def shown(d: dict[str, str]) -> str:
    if "SHOW" not in d:
        return ""
    try:
        with open(d["SHOW"], encoding="utf-8") as f:
            return f"\n--- {d['SHOW']} ---\n{f.read()}"
    except FileNotFoundError:
        return f"\n--- {d['SHOW']} is missing ---\n"


def answer_text(d: dict[str, str], prompt: str) -> str:
    if "PRINT_ENV" in d:
        return " ".join(sorted(os.environ))
    if "HANDOFF" in d:
        agent, title, notes = [*d["HANDOFF"].split("|", 2), "", ""][:3]
        return (
            f"Done with my part.\n\n```handoff\nnext_agent: {agent}\n"
            f"next_task_title: {json.dumps(title)}\nnext_task_notes: {json.dumps(notes)}\n"
            "next_artefacts: [docs/out.md]\nsummary: handed on\n```\n"
        )
    return prompt


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="")
    parser.add_argument("--prompt")
    parser.add_argument("--prompt-file")
    parser.add_argument("--task", default="")
    parser.add_argument("--output-file", help="write the answer here; stdout gets chatter")
    args = parser.parse_args()
    prompt = read_prompt(args)
    d = directives(prompt)
    in_working_folder(d)
    side_effects(d, args.task)
    code = int(d.get("EXIT", "0") or 0)
    if "GARBAGE" in d:
        sys.stdout.write("this is not json\n")
        return code
    text = answer_text(d, prompt) + shown(d)
    answer = {
        "result": text,
        "model": args.model,
        "usage": {"input_tokens": len(prompt) // 4, "output_tokens": len(text) // 4},
    }
    if args.output_file:
        with open(args.output_file, "w", encoding="utf-8") as f:
            f.write(json.dumps(answer) + "\n")
        sys.stdout.write("progress: wrote the answer to the output file\n")
    else:
        sys.stdout.write(json.dumps(answer) + "\n")
    sys.stdout.flush()
    return code


if __name__ == "__main__":
    raise SystemExit(main())
