"""bounded_map: never more than N at once, answers in the order asked, one deadline."""

from __future__ import annotations

import threading
import time

import pytest

from safedocker._internal.deadline import Deadline
from safedocker._internal.pool import Done, Failed, bounded_map


def test_answers_come_in_the_order_asked_whatever_order_the_work_finishes_in() -> None:
    def slower_first(n: int) -> int:
        time.sleep(0.01 * (8 - n))
        return n * n

    answers = bounded_map(slower_first, list(range(8)), workers=4)
    assert answers == [Done(n * n) for n in range(8)]


def test_never_more_than_the_bound_is_in_flight() -> None:
    lock = threading.Lock()
    now = peak = 0

    def work(_: int) -> None:
        nonlocal now, peak
        with lock:
            now += 1
            peak = max(peak, now)
        time.sleep(0.02)
        with lock:
            now -= 1

    bounded_map(work, list(range(20)), workers=3)
    assert peak == 3


def test_what_a_piece_raises_stands_in_its_place_and_the_rest_still_run() -> None:
    def work(n: int) -> int:
        if n == 1:
            raise ValueError("one")
        return n

    answers = bounded_map(work, [0, 1, 2], workers=2)
    assert answers[0] == Done(0) and answers[2] == Done(2)
    assert isinstance(answers[1], Failed) and str(answers[1].error) == "one"


def test_the_deadline_bounds_the_whole_set_even_when_the_work_never_ends() -> None:
    stuck = threading.Event()
    started = time.monotonic()
    answers = bounded_map(lambda _: stuck.wait(60), list(range(6)), workers=2,
                          deadline=Deadline.after(0.3))
    stuck.set()
    assert time.monotonic() - started < 5
    assert all(isinstance(a, Failed) and isinstance(a.error, TimeoutError) for a in answers)


def test_one_item_without_a_deadline_runs_in_the_calling_thread() -> None:
    assert bounded_map(lambda _: threading.current_thread(), [0], workers=4) == [
        Done(threading.current_thread())]


@pytest.mark.parametrize(("items", "workers"), [(1, 4), (3, 1)])
def test_the_deadline_bounds_one_item_and_one_worker_too(items: int, workers: int) -> None:
    # In the calling thread, work that did not end outlived it.
    stuck = threading.Event()
    started = time.monotonic()
    answers = bounded_map(lambda _: stuck.wait(60), list(range(items)), workers=workers,
                          deadline=Deadline.after(0.3))
    stuck.set()
    assert time.monotonic() - started < 5
    assert len(answers) == items
    assert all(isinstance(a, Failed) and isinstance(a.error, TimeoutError) for a in answers)


def test_no_worker_is_a_usage_error() -> None:
    with pytest.raises(ValueError, match="worker"):
        bounded_map(str, [1], workers=0)
