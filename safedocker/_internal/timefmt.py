"""Durations as users write them (``30d``) and times as messages print them.

One format for a moment everywhere a message or table shows one: ``2026-11-01 09:30:00Z``
(UTC), from :func:`stamp`; with how long ago (or ahead) it is from :func:`age_of`.
"""

from __future__ import annotations

import re
import time
from datetime import datetime, timezone

_DURATION_RE = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration(text: str) -> float:
    """``30d``, ``12h``, ``90m``, ``3600s``, ``2w`` → seconds; ValueError otherwise."""
    match = _DURATION_RE.match(text)
    if not match:
        raise ValueError(f"invalid duration {text!r}: expected a number and s/m/h/d/w, e.g. 30d")
    return float(int(match.group(1)) * _DURATION_UNITS[match.group(2)])


def stamp(timestamp: float | None) -> str:
    """A time for tables and notes: ``2026-11-01 09:30:00Z`` (``-`` when unknown)."""
    if timestamp is None:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(timestamp))


def duration(seconds: float) -> str:
    """A length of time in words, rounded down to its largest unit: ``3 days``."""
    seconds = abs(seconds)
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            count = int(seconds // size)
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return "less than a minute"


def age_of(moment: float | str | datetime | None, *, now: float | None = None) -> str:
    """``2026-11-01 09:30:00Z (3 days ago)``, or ``(in 2 days)`` for a time ahead.

    Takes a timestamp, an aware datetime, or ISO 8601 text (naive means UTC).
    """
    if moment is None:
        return "-"
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment.replace("Z", "+00:00"))
    if isinstance(moment, datetime):
        aware = moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
        moment = aware.timestamp()
    delta = (time.time() if now is None else now) - moment
    when = f"{duration(delta)} ago" if delta >= 0 else f"in {duration(delta)}"
    return f"{stamp(moment)} ({when})"
