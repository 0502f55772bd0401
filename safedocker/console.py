"""What the user sees on stderr: log set-up, and errors turned into one line and a status.

Shared by the typer app (own commands) and the intercept path, which must not pay for
importing typer on every ``docker run``.
"""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING, NoReturn

from safedocker._internal import environment
from safedocker.errors import ExitCode, SafeDockerError, printable, reason_of

if TYPE_CHECKING:
    from collections.abc import Callable

log = logging.getLogger("safedocker")


class _LineFormatter(logging.Formatter):
    """``safe-docker: warning: …``: log lines look like every other message."""

    def format(self, record: logging.LogRecord) -> str:
        return printable(f"safe-docker: {record.levelname.lower()}: {super().format(record)}")


def setup_logging(verbosity: int = 0) -> None:
    """Log to stderr: warnings by default, ``-v`` info, ``-vv`` debug (or SAFE_DOCKER_LOG)."""
    level = {0: logging.WARNING, 1: logging.INFO}.get(verbosity, logging.DEBUG)
    env_level = environment.log_level()
    if env_level in ("DEBUG", "INFO", "WARNING", "ERROR"):
        level = getattr(logging, env_level)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_LineFormatter("%(message)s"))
    log.handlers[:] = [handler]
    log.setLevel(level)


def run_guarded(action: Callable[[], int | None]) -> NoReturn:
    """Run ``action`` and exit with its status; every error becomes one line and its code.

    An unexpected exception still fails closed: nothing has been handed to docker, and the
    status is the refusal code, never 0.
    """
    try:
        status = int(action() or 0)
    except SafeDockerError as e:
        sys.stderr.write(e.line() + "\n")
        status = int(e.exit_code)
    except KeyboardInterrupt:
        status = 130
    except Exception as e:
        log.debug("internal error", exc_info=True)
        sys.stderr.write(
            f"safe-docker: internal error \u2014 {printable(reason_of(e))} "
            "(hint: nothing was run; rerun with SAFE_DOCKER_LOG=debug to see where, and "
            "report it)\n"
        )
        status = ExitCode.REFUSED
    sys.stdout.flush()
    sys.exit(status)
