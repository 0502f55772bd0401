"""Run a helper program with an end and a size: credential helpers, docker, compose.

``subprocess.run(capture_output=True, timeout=…)`` holds everything a program prints
before anyone can look at its size; :func:`run_bounded` reads both pipes as they fill,
stops the program as soon as its output passes the cap or its time is up, and keeps
only the tail of standard error (for the one-line message). Standard library only.
"""

from __future__ import annotations

import os
import selectors
import subprocess
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING

from safedocker._internal.deadline import Deadline
from safedocker.errors import SafeDockerError, TimedOut

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

STDERR_TAIL = 64 * 1024
_READ = 64 * 1024


class OutputTooLarge(SafeDockerError):
    """The program printed more than the cap on standard output; it has been stopped.
    (Callers usually re-word it: ``raise ConfigError(…) from e``.)"""

    def __init__(self, what: str, cap: int) -> None:
        super().__init__(f"{what} printed too much", why=f"more than {cap} bytes")
        self.cap = cap


@dataclass(frozen=True)
class Finished:
    returncode: int
    stdout: bytes
    stderr: bytes  # its last STDERR_TAIL bytes


def run_bounded(argv: Sequence[str], *, what: str, timeout: float, max_stdout: int,
                input: bytes | None = None, stdin: IO[bytes] | None = None,  # noqa: A002
                env: Mapping[str, str] | None = None, hint: str = "") -> Finished:
    """Run ``argv`` to its end, at most ``timeout`` seconds and ``max_stdout`` bytes.

    ``input`` (small: it is written before reading) or ``stdin`` (a file) feeds it;
    neither: it inherits ours. Raises :class:`TimedOut` (exit 69) naming ``what`` when
    the time is up, :class:`OutputTooLarge` past the cap, OSError when it cannot start.
    The program is killed and reaped on every way out.
    """
    deadline = Deadline.after(timeout)
    proc = subprocess.Popen(  # noqa: S603 - callers name their own programs
        list(argv), stdin=subprocess.PIPE if input is not None else stdin,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env=None if env is None else dict(env),
    )
    try:
        if input is not None and proc.stdin is not None:
            try:
                proc.stdin.write(input)
            except BrokenPipeError:
                pass  # it stopped reading; its answer says the rest
            finally:
                proc.stdin.close()
        out, err = _drain(proc, deadline, max_stdout, what, hint)
        try:
            returncode = proc.wait(deadline.remaining())
        except subprocess.TimeoutExpired:
            raise _timed_out(what, timeout, hint) from None
        return Finished(returncode, out, err)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for pipe in (proc.stdin, proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()


def _drain(proc: subprocess.Popen[bytes], deadline: Deadline, max_stdout: int, what: str,
           hint: str) -> tuple[bytes, bytes]:
    """Both pipes, read as they fill, until both are closed."""
    assert proc.stdout is not None and proc.stderr is not None  # noqa: S101 - both PIPE
    out, err = bytearray(), bytearray()
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ, out)
        selector.register(proc.stderr, selectors.EVENT_READ, err)
        while selector.get_map():
            remaining = deadline.remaining()
            if remaining <= 0:
                raise _timed_out(what, deadline.seconds, hint)
            for key, _ in selector.select(remaining):
                chunk = os.read(key.fd, _READ)
                if not chunk:
                    selector.unregister(key.fileobj)
                    continue
                buffer: bytearray = key.data
                buffer += chunk
                if buffer is out and len(out) > max_stdout:
                    raise OutputTooLarge(what, max_stdout)
                if buffer is err and len(err) > STDERR_TAIL:
                    del err[:-STDERR_TAIL]
    return bytes(out), bytes(err)


def _timed_out(what: str, seconds: float, hint: str) -> TimedOut:
    return TimedOut(f"{what} timed out", why=f"no answer within {seconds:g} s", hint=hint)
