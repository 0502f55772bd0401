"""Durations as users write them, and times as messages print them."""

from __future__ import annotations

import pytest

from safedocker._internal.timefmt import parse_duration, stamp, stamp_minutes


@pytest.mark.parametrize(("text", "seconds"), [("30d", 2592000), ("12h", 43200), ("90m", 5400),
                                               ("3600s", 3600), ("2w", 1209600)])
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["30", "d", "1.5h", "-1d", "30D", "1y"])
def test_what_is_not_a_duration(text: str) -> None:
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration(text)


def test_times_are_utc() -> None:
    assert stamp(0) == "1970-01-01 00:00:00Z"
    assert stamp(None) == "-"
    assert stamp_minutes(90) == "1970-01-01 00:01 UTC"
