"""One exception root for everything safe-docker refuses, each error knowing its exit code.

Library code raises these; :func:`safedocker.console.run_guarded` (for the own commands
and for pull/run/create alike) turns them into one stderr line and an exit status. Errors
from third-party libraries are converted where they enter our code (``raise ... from e``)
so that no foreign exception reaches the user.
"""

from __future__ import annotations

import enum

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import ClassVar


class ExitCode(enum.IntEnum):
    """The exit statuses of DESIGN.md's contract; anything else is docker's own."""

    OK = 0
    USAGE = 2
    UNAVAILABLE = 69  # registry unreachable and no usable offline record
    REFUSED = 77  # image refused by policy or verification
    CONFIG = 78  # configuration error
    GPU_UNMET = 125  # GPU requirement of the image not met by the host
    NO_DOCKER = 127  # real docker not found


class SafeDockerError(Exception):
    """Root of every error safe-docker reports.

    The default exit status is REFUSED: an error nobody classified must still fail closed.
    """

    exit_code: ClassVar[int] = ExitCode.REFUSED

    def __init__(self, what: str, *, why: str = "", hint: str = "") -> None:
        super().__init__(what)
        self.what = what
        self.why = why
        self.hint = hint

    def line(self) -> str:
        """The one stderr line: ``safe-docker: <what> — <why> (hint: <what to do>)``.

        One line whatever the parts hold: a line break inside one (a library's multi-line
        message) is shown as a space, and any other control or format character (text a
        registry chose: terminal escape sequences, bidi overrides) as its escape
        (:func:`printable`).
        """
        text = f"safe-docker: {self.what}"
        if self.why:
            text += f" \u2014 {self.why}"
        if self.hint:
            text += f" (hint: {self.hint})"
        return printable(text)

    def __str__(self) -> str:
        return self.line()


def printable(text: str) -> str:
    """``text`` safe to write to a terminal, on one line: line breaks become spaces, every
    other character Python does not call printable (C0/C1 controls, DEL, format characters
    such as bidi overrides, unassigned code points) its escape (``\\x1b``, ``\\u202e``).

    THE escaper of messages: untrusted text (a registry's header, a bundle's field, a
    file name) reaches stderr only through it, so an ESC/OSC sequence is shown, never
    obeyed.
    """
    out = []
    for char in " ".join(text.splitlines()):
        if char.isprintable():
            out.append(char)
        elif ord(char) <= 0xFF:
            out.append(f"\\x{ord(char):02x}")
        elif ord(char) <= 0xFFFF:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(f"\\U{ord(char):08x}")
    return "".join(out)


class UsageError(SafeDockerError):
    """The command line itself is wrong (bad flag, invalid image reference)."""

    exit_code = ExitCode.USAGE


class Refused(SafeDockerError):
    """The image is refused by policy or by verification."""

    exit_code = ExitCode.REFUSED


class VerificationError(Refused):
    """A signature, certificate or transparency-log proof did not verify."""


class RegistryError(Refused):
    """The registry answered, but with something we cannot trust (bad digest, bad JSON, too big)."""


class RegistryUnavailable(SafeDockerError):
    """The registry could not be reached and no usable offline record exists."""

    exit_code = ExitCode.UNAVAILABLE


class RegistryTimedOut(RegistryUnavailable):
    """The registry did not answer in time (a request's cap or the verification's
    deadline, ``registry_timeout``)."""


class TimedOut(SafeDockerError):
    """A wait reached its end: a credential helper, docker or compose did not answer in time.

    (A registry that does not answer in time is a :class:`RegistryUnavailable`, so that
    verification can still decide from the cache.)"""

    exit_code = ExitCode.UNAVAILABLE


class ConfigError(SafeDockerError):
    """The configuration, trust store or a key file is wrong or unreadable."""

    exit_code = ExitCode.CONFIG


class CacheError(SafeDockerError):
    """The local verification cache is unusable; never grounds for accepting an image."""

    exit_code = ExitCode.UNAVAILABLE


class GpuRequirementUnmet(SafeDockerError):
    """The image needs a CUDA/driver/architecture this host does not provide."""

    exit_code = ExitCode.GPU_UNMET


class DockerNotFound(SafeDockerError):
    """No real docker binary could be found (or only this shim was found)."""

    exit_code = ExitCode.NO_DOCKER


def reason_of(error: BaseException, fallback: str = "an unexpected failure") -> str:
    """Why ``error`` happened, in the user's words: never the exception's class name.

    For the ``why`` of a :class:`SafeDockerError` made from a foreign exception: the OS's
    own text for file and network errors (``No such file or directory``), a plain phrase
    for the few kinds whose text is meaningless to a user, else the first line of the
    exception's message, else ``fallback``.
    """
    if isinstance(error, UnicodeError):
        return "not UTF-8 text"
    if isinstance(error, RecursionError):
        return "nested too deeply"
    if isinstance(error, MemoryError):
        return "too large to hold in memory"
    if isinstance(error, OSError) and error.strerror:
        return error.strerror  # the message names the file already
    try:
        text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    except Exception:  # noqa: BLE001 - a broken __str__ must not hide the real error
        text = ""
    if not text or text.startswith(("<", "'")):  # a repr, or a KeyError's quoted key
        return fallback
    return text[:300]
