"""Deadlines: every wait has an end.

A :class:`Deadline` is a point on the monotonic clock. One is made per verification (the
config's ``registry_timeout``) and handed down to the registry transport, which gives each
request ``min(its own cap, deadline.remaining())``; subprocess waits (credential helpers,
docker, compose) take one too; :func:`call_within` bounds a library call that has no
deadline of its own. Standard library only.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from collections.abc import Callable

T = TypeVar("T")


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


def call_within(seconds: float, fn: Callable[[], T], *, name: str = "safe-docker wait") -> T:
    """``fn()``, waited for at most ``seconds``: for a library wait we cannot bound from
    inside (a socket read that a drip keeps alive). It runs in a daemon worker; past the
    time, ``TimeoutError`` and the worker is abandoned (it ends with the process).
    Whatever ``fn`` raises is raised here."""
    answer: list[T] = []
    failure: list[BaseException] = []

    def work() -> None:
        try:
            answer.append(fn())
        except BaseException as e:  # noqa: BLE001 - handed to the caller's thread
            failure.append(e)

    worker = threading.Thread(target=work, name=name, daemon=True)
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        raise TimeoutError(f"{name}: no end within {seconds:g} s")
    if failure:
        raise failure[0]
    return answer[0]
