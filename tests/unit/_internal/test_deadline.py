"""Deadline arithmetic: what is left, what a step may take, when it is over."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import pytest

from safedocker._internal.deadline import Deadline, call_within

if TYPE_CHECKING:
    from pathlib import Path


class Clock:
    def __init__(self, now: float = 100.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_remaining_counts_down_with_the_clock_and_never_goes_negative() -> None:
    clock = Clock()
    deadline = Deadline.after(60, clock=clock)
    assert deadline.remaining() == 60
    clock.now += 45
    assert deadline.remaining() == 15
    assert not deadline.expired
    clock.now += 15
    assert deadline.remaining() == 0 and deadline.expired
    clock.now += 1000
    assert deadline.remaining() == 0


def test_a_step_gets_the_smaller_of_its_own_cap_and_what_is_left() -> None:
    clock = Clock()
    deadline = Deadline.after(60, clock=clock)
    assert deadline.cap(30) == 30  # early: the per-request cap rules
    clock.now += 50
    assert deadline.cap(30) == 10  # late: what the verification has left rules
    clock.now += 20
    assert deadline.cap(30) == 0


def test_a_deadline_cannot_start_in_the_past() -> None:
    with pytest.raises(ValueError, match="past"):
        Deadline.after(-1)


def test_describe_names_the_length_and_the_setting() -> None:
    assert Deadline.after(60, setting="registry_timeout").describe() == (
        "within 60 s (registry_timeout)")
    assert Deadline.after(2.5).describe() == "within 2.5 s"


def test_call_within_returns_raises_or_gives_up_in_time() -> None:
    assert call_within(5, lambda: 42) == 42
    def missing() -> int:
        raise KeyError("missing")

    with pytest.raises(KeyError):
        call_within(5, missing)
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        call_within(0.3, lambda: time.sleep(30))
    assert time.monotonic() - started < 2


def test_a_lock_held_elsewhere_is_waited_for_only_so_long(tmp_path: Path) -> None:
    import fcntl
    import os

    from safedocker._internal.files import flock_within

    path = tmp_path / "lock"
    holder = os.open(path, os.O_RDWR | os.O_CREAT)
    waiter = os.open(path, os.O_RDWR)
    try:
        fcntl.flock(holder, fcntl.LOCK_EX)
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            flock_within(waiter, fcntl.LOCK_EX, seconds=0.3)
        assert time.monotonic() - started < 2
        fcntl.flock(holder, fcntl.LOCK_UN)
        flock_within(waiter, fcntl.LOCK_EX, seconds=0.3)  # free: taken at once
    finally:
        os.close(holder)
        os.close(waiter)
