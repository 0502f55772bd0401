"""Bounded concurrency: at most N pieces of work in flight, answers in the order asked.

A command that names several images (compose services, a stack, a build's stages) verifies
them side by side; :func:`bounded_map` is the one way it does so. The work runs on daemon
threads (I/O-bound: registry round trips), never more than ``workers`` of them; what each
piece returned or raised comes back in the order of ``items``, whatever order they
finished in, so that messages and audit records do not depend on timing. A ``deadline``
bounds the whole set: work not started by then is not started, and the caller stops
waiting for work still running (those pieces answer :class:`TimeoutError`; their threads
are abandoned and end with the process). Standard library only.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Generic, TypeVar

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from safedocker._internal.deadline import Deadline

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class Done(Generic[R]):
    """What one piece of work returned."""

    value: R


@dataclass(frozen=True)
class Failed:
    """What one piece of work raised (``TimeoutError``: not done within the deadline)."""

    error: BaseException


def bounded_map(work: Callable[[T], R], items: Sequence[T], *, workers: int,
                deadline: Deadline | None = None, name: str = "safe-docker work"
                ) -> list[Done[R] | Failed]:
    """``work(item)`` for every item, at most ``workers`` at a time; the answers in the
    order of ``items``. Without a deadline, one item (or one worker) runs in the calling
    thread; with one, on a worker as a set does, so that the deadline holds whatever the
    work does (a part that does not honour a deadline of its own cannot outlast it)."""
    if workers < 1:
        raise ValueError("at least one worker")
    if deadline is None and (len(items) <= 1 or workers == 1):
        return [_one(work, item, deadline) for item in items]
    answers: list[Done[R] | Failed | None] = [None] * len(items)
    lock = threading.Condition()
    state = {"next": 0, "left": len(items)}

    def run() -> None:
        while True:
            with lock:
                index = state["next"]
                if index >= len(items):
                    return
                state["next"] = index + 1
            answer = _one(work, items[index], deadline)
            with lock:
                answers[index] = answer
                state["left"] -= 1
                lock.notify_all()

    for n in range(min(workers, len(items))):
        threading.Thread(target=run, name=f"{name} {n + 1}", daemon=True).start()
    with lock:
        while state["left"]:
            if deadline is None:
                lock.wait()
            elif not lock.wait(deadline.remaining()) and deadline.expired:
                break
        return [answer if answer is not None else Failed(_late(deadline))
                for answer in answers]


def _one(work: Callable[[T], R], item: T, deadline: Deadline | None) -> Done[R] | Failed:
    if deadline is not None and deadline.expired:
        return Failed(_late(deadline))
    try:
        return Done(work(item))
    except BaseException as error:  # noqa: BLE001 - handed to the caller, in its order
        return Failed(error)


def _late(deadline: Deadline | None) -> TimeoutError:
    return TimeoutError("not done " + (deadline.describe() if deadline else "in time"))
