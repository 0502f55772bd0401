"""Deadline arithmetic: what is left, what a step may take, when it is over."""

from __future__ import annotations

import pytest

from safedocker._internal.deadline import Deadline, earliest


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


def test_earliest_is_the_one_with_least_left() -> None:
    clock = Clock()
    long, short = Deadline.after(60, clock=clock), Deadline.after(5, clock=clock)
    assert earliest(long, None, short) is short
    assert earliest(None) is None
