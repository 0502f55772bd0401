"""Deadlines: every wait has an end.

A :class:`Deadline` is a point on the monotonic clock. One is made per verification (the
config's ``registry_timeout``) and handed down to the registry transport, which gives each
request ``min(its own cap, deadline.remaining())``; subprocess waits (credential helpers,
docker, compose) take one too. Standard library only.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable


@dataclass(frozen=True)
class Deadline:
    """The end of a wait: ``at`` on ``clock`` (``time.monotonic`` unless a test brings one).

    ``seconds`` is the whole length and ``setting`` the config key that sets it, both only
    for messages ("… within 60 s (registry_timeout)").
    """

    at: float
    seconds: float
    setting: str = ""
    clock: Callable[[], float] = field(default=time.monotonic, repr=False, compare=False)

    @classmethod
    def after(cls, seconds: float, *, setting: str = "",
              clock: Callable[[], float] = time.monotonic) -> Deadline:
        """The deadline ``seconds`` from now."""
        if seconds < 0:
            raise ValueError("a deadline cannot lie in the past")
        return cls(clock() + seconds, seconds, setting, clock)

    def remaining(self) -> float:
        """Seconds left, never negative."""
        return max(0.0, self.at - self.clock())

    @property
    def expired(self) -> bool:
        return self.remaining() <= 0.0

    def cap(self, limit: float) -> float:
        """``limit`` cut down to what is left: the budget of one step of the wait."""
        return min(limit, self.remaining())

    def describe(self) -> str:
        """``within 60 s (registry_timeout)``: for the why of a timeout."""
        text = f"within {self.seconds:g} s"
        return f"{text} ({self.setting})" if self.setting else text


def earliest(*deadlines: Deadline | None) -> Deadline | None:
    """The deadline that ends first (None: none given)."""
    found = [d for d in deadlines if d is not None]
    return min(found, key=lambda d: d.remaining()) if found else None
