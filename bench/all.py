"""`uv run python -m bench.all [--quick] [--only NAME,...]`: the same as `python -m bench`."""

from __future__ import annotations

import sys

from bench.__main__ import main

if __name__ == "__main__":
    sys.exit(main())
