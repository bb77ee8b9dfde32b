"""`python -m orchestrator.reference config|tasks`: print a reference page."""

import sys

from orchestrator.reference import config_reference, tasks_reference

PAGES = {"config": config_reference, "tasks": tasks_reference}


def main(argv: list[str]) -> int:
    if len(argv) != 1 or argv[0] not in PAGES:
        sys.stderr.write(f"usage: python -m orchestrator.reference {'|'.join(PAGES)}\n")
        return 2
    sys.stdout.write(PAGES[argv[0]]())
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
