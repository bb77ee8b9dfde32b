"""Reading when a closed usage window opens from what the CLIs print (pure: a fixed now)."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from orchestrator.adapters._classify import retry_after
from orchestrator.adapters._resets import USAGE_WORDS, google_daily_reset, reset_time

NOW = datetime(2026, 12, 3, 2, 20, 14, tzinfo=UTC)


def at(text: str) -> str | None:
    found = reset_time(text, NOW, UTC)
    return None if found is None else datetime.fromtimestamp(found, UTC).isoformat()


@pytest.mark.parametrize(
    ("text", "opens"),
    [
        # claude signed in with a plan: the end of the minute it names, in the zone it names
        ("You've hit your 5-hour limit · resets 4:20am (UTC)", "2026-12-03T04:21:00+00:00"),
        ("You've hit your limit · resets Dec 6, 2:20am (UTC)", "2026-12-06T02:21:00+00:00"),
        ("resets 5pm (America/New_York)", "2026-12-03T22:01:00+00:00"),  # 5pm EST: tomorrow
        ("resets 1am (Mars/Olympus)", "2026-12-04T01:01:00+00:00"),  # unknown zone: ours
        # codex: its local time, ours; a time already past today is tomorrow's
        ("Upgrade to Pro ... or try again at 4:20 AM.", "2026-12-03T04:21:00+00:00"),
        ("or try again at 1:00 AM.", "2026-12-04T01:01:00+00:00"),
        ("or try again at Dec 6th, 2026 2:20 AM.", "2026-12-06T02:21:00+00:00"),
        ("try again at Jan 2nd, 3:04 PM", "2027-01-02T15:05:00+00:00"),  # said in December
        # an API's own words, ISO times
        ("You will regain access on 2027-01-01 at 00:00 UTC.", "2027-01-01T00:01:00+00:00"),
        ("limit reached; resets at 2026-12-03T05:00:00Z", "2026-12-03T05:00:00+00:00"),
        ("resets at 2026-12-03T05:00:00+01:00", "2026-12-03T04:00:00+00:00"),
        # no moment named (a wait is retry_after's)
        ("Please retry in 7200s.", None),
        ("resets 25:99pm", None),
        ("try again at Foo 3, 4:00 PM", None),
        ("nothing here", None),
    ],
)
def test_reset_time(text: str, opens: str | None) -> None:
    assert at(text) == opens


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("Please retry in 7200s.", 7200.0),
        ("try again in 2 days 3 hours 4 minutes", 2 * 86400 + 3 * 3600 + 4 * 60),
        ("Your limit resets in 2h 30m", 9000.0),
        ("wait in 90 seconds", 90.0),
        ("retry in soon", None),
    ],
)
def test_waits_named_in_words(text: str, seconds: float | None) -> None:
    assert retry_after(text) == seconds


@pytest.mark.parametrize(
    ("text", "usage"),
    [
        ("You've hit your 5-hour limit · resets 4:20am (UTC)", True),
        ("You\u2019ve hit your usage limit. Upgrade to Pro", True),  # codex: a curly quote
        ("You have exhausted your daily quota on this model.", True),
        ("You have reached your specified API usage limits.", True),
        ("Request rejected (429) · Too Many Requests", False),
        ("Number of request tokens has exceeded your per-minute rate limit", False),
    ],
)
def test_usage_words(text: str, usage: bool) -> None:
    assert bool(USAGE_WORDS.search(text)) == usage


def test_google_daily_quotas_open_at_pacific_midnight() -> None:
    opens = datetime.fromtimestamp(google_daily_reset(NOW), ZoneInfo("America/Los_Angeles"))
    assert opens.isoformat() == "2026-12-03T00:00:00-08:00"  # 18:20 on the 2nd there
