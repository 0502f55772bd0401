"""run_bounded: a helper program's output is capped while it is read, and its wait ends."""

from __future__ import annotations

import sys
import time

import pytest

from safedocker._internal.processes import STDERR_TAIL, OutputTooLarge, run_bounded
from safedocker.errors import ExitCode, TimedOut

PY = sys.executable


def test_output_and_status_come_back() -> None:
    done = run_bounded([PY, "-c", "import sys; sys.stdout.write(sys.stdin.read().upper());"
                        "sys.stderr.write('note'); sys.exit(3)"],
                       what="helper", timeout=10, max_stdout=100, input=b"abc")
    assert (done.returncode, done.stdout, done.stderr) == (3, b"ABC", b"note")


def test_a_flood_is_stopped_at_the_cap_without_reading_it_all() -> None:
    started = time.monotonic()
    with pytest.raises(OutputTooLarge) as err:
        run_bounded([PY, "-c", "import sys\nwhile True: sys.stdout.write('x' * 65536)"],
                    what="flood", timeout=30, max_stdout=1024 * 1024)
    assert err.value.cap == 1024 * 1024
    assert time.monotonic() - started < 10


def test_a_program_that_never_answers_times_out_with_exit_69() -> None:
    started = time.monotonic()
    with pytest.raises(TimedOut) as err:
        run_bounded([PY, "-c", "import time; time.sleep(60)"], what="docker-credential-x get",
                    timeout=1.0, max_stdout=100, hint="check the helper")
    assert time.monotonic() - started < 5
    assert err.value.exit_code == ExitCode.UNAVAILABLE
    assert err.value.line() == ("safe-docker: docker-credential-x get timed out — no answer "
                                "within 1 s (hint: check the helper)")


def test_a_program_that_drips_output_times_out_too() -> None:
    with pytest.raises(TimedOut):
        run_bounded([PY, "-u", "-c", "import time\nwhile True: print('.'); time.sleep(0.1)"],
                    what="drip", timeout=1.0, max_stdout=10**6)


def test_a_program_that_closes_its_output_but_stays_is_not_waited_for() -> None:
    with pytest.raises(TimedOut):
        run_bounded([PY, "-c", "import os, time; os.close(1); os.close(2); time.sleep(60)"],
                    what="lingering", timeout=1.0, max_stdout=100)


def test_only_the_tail_of_standard_error_is_kept() -> None:
    done = run_bounded([PY, "-c", f"import sys; sys.stderr.write('a' * {STDERR_TAIL * 3} + 'END')"],
                       what="noisy", timeout=10, max_stdout=100)
    assert len(done.stderr) == STDERR_TAIL and done.stderr.endswith(b"END")
