"""When a closed usage window opens again, read from what a CLI prints: a subscription's
"resets 4:20am (UTC)", codex's "try again at Dec 6th, 2026 2:20 AM", an ISO time after
"resets at", a duration such as "try again in 2 hours 5 minutes" or "retry in 7200s", an
API's "regain access on 2026-01-01 at 00:00 UTC". Pure: the caller gives the time now.

A time written to the minute is taken as the end of that minute, so that a task resumed
then finds the window open rather than a few seconds before it opens.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

MINUTE_MARGIN_S = 60.0
# Google's per-day quotas start again at midnight, Pacific time.
GOOGLE_QUOTA_ZONE = "America/Los_Angeles"
_MONTH_NAMES = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
MONTHS = {name: number for number, name in enumerate(_MONTH_NAMES, 1)}

# Words that say a plan's or an account's usage window closed (not a per-minute rate limit).
USAGE_WORDS = re.compile(
    r"usage limit|hit your (?:[\w-]+ )?limit|exhausted your (?:daily )?quota|"
    r"reached your specified (?:api )?usage limits|spend limit reached|quota exceeded|"
    r"usage_limit_reached|insufficient_quota",
    re.I,
)
_CLOCK = r"(?P<h>\d{1,2})(?::(?P<m>\d{2}))?\s*(?P<ampm>[ap]\.?m\.?)"
_DAY = r"(?P<mon>[a-z]{3})[a-z]*\.?\s+(?P<day>\d{1,2})(?:st|nd|rd|th)?,?\s+(?:(?P<year>\d{4})\s+)?"
# claude: "resets 4:20am (UTC)", "resets Dec 6, 2:20am (Europe/Paris)"; codex: "try again at
# 4:20 AM", "try again at Dec 6th, 2026 2:20 AM" (codex names no zone: its local time)
_WALL = re.compile(
    rf"(?:resets|reset at|resets at|try again at|retry at)\s+(?:{_DAY})?(?:at\s+)?{_CLOCK}"
    r"(?:\s*\((?P<zone>[\w/+-]+)\))?",
    re.I,
)
_ISO = re.compile(
    r"(?:resets?(?: at| on)?|until|try again at|retry at|regain access on)\s+"
    r"(?P<when>\d{4}-\d{2}-\d{2}(?:[T ]|\s+at\s+)\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)"
    r"\s*(?P<zone>Z|UTC|GMT|[+-]\d{2}:?\d{2})?",
    re.I,
)
_UNITS = {"d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
_PART = r"(\d+(?:\.\d+)?)\s*(days?|d|hours?|hrs?|h|minutes?|mins?|m|seconds?|secs?|s|ms)\b"
_DURATION = re.compile(
    rf"(?:resets?|try again|retry|available again|wait)\s+in\s+((?:{_PART}[\s,]*(?:and\s+)?)+)",
    re.I,
)


def reset_time(text: str, now: datetime, local: tzinfo | None = None) -> float | None:
    """The moment (epoch seconds) `text` says a limit resets, or None when it names none
    (a wait such as "in 2 hours" is `wait_named`'s). `local` is the zone of a time that
    names none (the CLI's local time: ours)."""
    found = [f for f in (_iso(text), _wall(text, now, local)) if f]
    return max(found) if found else None


def wait_named(text: str) -> float | None:
    """The wait, in seconds, a text names in words: "try again in 2 days 3 hours",
    "resets in 2h 30m"."""
    match = _DURATION.search(text)
    if match is None:
        return None
    seconds = 0.0
    for amount, unit in re.findall(_PART, match.group(1), re.I):
        unit = unit.lower()
        seconds += float(amount) * _UNITS["ms" if unit == "ms" else unit[0]]
    return seconds or None


def google_daily_reset(now: datetime) -> float:
    """The next midnight in Pacific time, when Google's per-day quotas start again."""
    zone = ZoneInfo(GOOGLE_QUOTA_ZONE)
    here = now.astimezone(zone)
    midnight = datetime.combine(here.date() + timedelta(days=1), datetime.min.time(), zone)
    return midnight.timestamp()


def _iso(text: str) -> float | None:
    match = _ISO.search(text)
    if match is None:
        return None
    when = re.sub(r"\s+at\s+", "T", match.group("when")).replace(" ", "T")
    zone = (match.group("zone") or "UTC").upper()
    offset = "+00:00" if zone in ("Z", "UTC", "GMT") else zone
    try:
        moment = datetime.fromisoformat(when + offset)
    except ValueError:
        return None
    margin = 0.0 if when.count(":") >= 2 else MINUTE_MARGIN_S
    return moment.timestamp() + margin


def _zone(name: str | None, local: tzinfo | None) -> tzinfo | None:
    if name is None:
        return local
    if name.upper() in ("UTC", "GMT", "Z"):
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return local


def _wall(text: str, now: datetime, local: tzinfo | None) -> float | None:
    match = _WALL.search(text)
    if match is None:
        return None
    hour = int(match.group("h")) % 12 + (12 if match.group("ampm")[0].lower() == "p" else 0)
    minute = int(match.group("m") or 0)
    if hour > 23 or minute > 59:
        return None
    zone = _zone(match.group("zone"), local)
    here = now.astimezone(zone)
    on = here.date()
    month = MONTHS.get((match.group("mon") or "").lower()[:3])
    if match.group("mon") and month is None:
        return None
    if month is not None:
        year = int(match.group("year") or here.year)
        try:
            on = date(year, month, int(match.group("day")))
        except ValueError:
            return None
        if not match.group("year") and on < here.date() - timedelta(days=1):
            on = on.replace(year=year + 1)  # "Jan 2" said on Dec 31
    moment = datetime(on.year, on.month, on.day, hour, minute, tzinfo=here.tzinfo)
    if month is None and moment <= here:
        moment += timedelta(days=1)  # a time of day already past: tomorrow's
    return moment.timestamp() + MINUTE_MARGIN_S
