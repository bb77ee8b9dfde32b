"""The scalar values of config and task files: durations (`90`, `15m`, `8d`), an idle
timeout that may be `off`, `tool:model` targets, a tool's binary as it is run."""

from __future__ import annotations

import math
import os
import re
from typing import TYPE_CHECKING, Annotated

from pydantic import BeforeValidator

if TYPE_CHECKING:
    from pathlib import Path

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


def parse_duration(value: object, *, zero: bool = False) -> float:
    """`90`, `"90s"`, `"15m"`, `"1.5h"`, `"8d"`, `"250ms"` → seconds (finite, and positive, or
    not negative with `zero`)."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 30s, 15m or 1h")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and (match := _DURATION.match(value)):
        seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    else:
        raise ValueError(f"{value!a} is not a duration: write it as 30s, 15m or 1h")
    if not math.isfinite(seconds):
        raise ValueError("a duration must be a finite number, such as 30s, 15m or 1h")
    if seconds < 0 or (seconds == 0 and not zero):
        raise ValueError("a duration must be positive" + (" or 0" if zero else ""))
    return seconds


Duration = Annotated[float, BeforeValidator(parse_duration)]
# A wait that may be none at all (retries.backoff: 0s retries at once).
Pause = Annotated[float, BeforeValidator(lambda value: parse_duration(value, zero=True))]


def parse_idle(value: object) -> float:
    """idle_timeout: a duration, or `off` (YAML reads a bare off as false) or 0 → 0.0, no
    limit but the timeout."""
    if value is False or value == "off":
        return 0.0
    try:
        return parse_duration(value, zero=True)
    except ValueError as exc:
        raise ValueError(f"{exc}; or off for no limit but the timeout") from None


IdleTimeout = Annotated[float, BeforeValidator(parse_idle)]


def split_target(target: str) -> tuple[str | None, str]:
    """`tool:model` → (tool, model), split on the first colon; a bare model → (None, model)."""
    tool, sep, model = target.partition(":")
    return (tool, model) if sep else (None, target)


def resolve_binary(binary: str, root: Path) -> str:
    """A tool's binary as run: a bare name is looked up on PATH, an absolute path is kept,
    and a relative path (`bin/tool.sh`, `./x`) is taken from the workspace `root`."""
    if os.sep not in binary or os.path.isabs(binary):
        return binary
    return str(root / binary)
