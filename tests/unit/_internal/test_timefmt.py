"""Durations as users write them, and times as messages print them."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from safedocker._internal.timefmt import age_of, duration, parse_duration, stamp


@pytest.mark.parametrize(("text", "seconds"), [("30d", 2592000), ("12h", 43200), ("90m", 5400),
                                               ("3600s", 3600), ("2w", 1209600)])
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["30", "d", "1.5h", "-1d", "30D", "1y"])
def test_what_is_not_a_duration(text: str) -> None:
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration(text)


def test_times_are_utc_in_one_format() -> None:
    assert stamp(0) == "1970-01-01 00:00:00Z"
    assert stamp(None) == "-"


@pytest.mark.parametrize(("seconds", "words"), [(0, "less than a minute"), (61, "1 minute"),
                                                (7200, "2 hours"), (86400 * 71.5, "71 days")])
def test_durations_in_words(seconds: float, words: str) -> None:
    assert duration(seconds) == words


def test_ages_say_when_and_how_long_ago_or_ahead() -> None:
    now = datetime(2026, 12, 3, tzinfo=timezone.utc).timestamp()
    assert age_of("2026-11-30T00:00:00+00:00", now=now) == "2026-11-30 00:00:00Z (3 days ago)"
    assert age_of("2026-12-05T00:00:00Z", now=now) == "2026-12-05 00:00:00Z (in 2 days)"
    assert age_of(now - 3600, now=now) == "2026-12-02 23:00:00Z (1 hour ago)"
    assert age_of(None) == "-"
