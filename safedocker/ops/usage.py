"""click's own errors (usage, bad parameter) as safe-docker's one line.

No typer or click import: the errors are recognised by what they carry.
"""

from __future__ import annotations

from typing import Protocol, TypeGuard

from safedocker.errors import SafeDockerError


class ClickError(Protocol):
    """click's own errors (usage, bad parameter). typer vendors click from 0.26 on, so the
    class is not importable under one public name in every typer; each carries these."""

    exit_code: int

    def format_message(self) -> str: ...

    def show(self) -> None: ...


def is_click_error(error: BaseException) -> TypeGuard[ClickError]:
    return callable(getattr(error, "format_message", None)) and isinstance(
        getattr(error, "exit_code", None), int)


def usage_line(error: ClickError) -> str:
    """click's usage error (``Error: Invalid value for '--x': …``) as our one line."""
    message = error.format_message().strip().rstrip(".")
    ctx = getattr(error, "ctx", None)
    where = f"`{ctx.command_path} --help`" if ctx is not None else "`safe-docker --help`"
    hint = f"see {where}"
    for marker in (" (Possible options: ", " (Did you mean "):
        message, found, guesses = message.partition(marker)
        if found and "," not in guesses:  # one close match; several are difflib's noise
            hint = f"did you mean {guesses.rstrip(')?')}? {hint}"
    what, sep, why = message.partition(": ")
    if not sep or not what.startswith(("Invalid value", "Got unexpected")):
        what, why = message, ""
    what = what[:1].lower() + what[1:]
    return SafeDockerError(what.replace("Error: ", ""), why=why, hint=hint).line()
