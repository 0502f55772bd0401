"""Durations as users write them (``30d``) and times as messages print them."""

from __future__ import annotations

import re
import time

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


def stamp_minutes(timestamp: float) -> str:
    """``2026-11-01 09:30 UTC``: the offline note's form (to be made :func:`stamp`'s)."""
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(timestamp))
