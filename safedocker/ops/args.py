"""Own commands' option values, checked after parsing: KEY=VALUE pairs, one of an enum's
values, a signer count, a cache age, the private key's password.

Each failure is a :class:`UsageError` that names the option (exit 2), as click's own are.
"""

from __future__ import annotations

import getpass
import os
import sys
from typing import TYPE_CHECKING

from safedocker._internal.timefmt import parse_duration
from safedocker.errors import UsageError

if TYPE_CHECKING:
    import enum


def key_value(item: str, flag: str, command: str = "policy add") -> tuple[str, str]:
    """``KEY=VALUE`` split at the first '=' (KEY not empty), else a usage error."""
    key, sep, value = item.partition("=")
    if not sep or not key:
        raise UsageError(f"invalid {flag} {item!r}", why="expected two parts joined by '='",
                         hint=f"see `safe-docker {command} --help`")
    return key, value


def choice(option: str, value: str, kind: type[enum.Enum], command: str = "policy add") -> str:
    """``value`` if it is one of ``kind``'s values, else a usage error naming ``option``."""
    allowed = [str(member.value) for member in kind]
    if value not in allowed:
        raise UsageError(f"invalid {option} {value!r}", why=f"expected {' | '.join(allowed)}",
                         hint=f"see `safe-docker {command} --help`")
    return value


def count(option: str, value: str, most: int) -> int:
    """A whole number from 1 to ``most``, else a usage error naming ``option``."""
    number = int(value) if value.isascii() and value.isdigit() else 0
    if number > most:
        raise UsageError(f"invalid {option} {value!r}",
                         why=f"only {most} signer{'s' if most != 1 else ''} given",
                         hint="give at least as many --key/--identity/--identity-regexp")
    if number < 1:
        raise UsageError(f"invalid {option} {value!r}",
                         why="expected a whole number of at least 1", hint=f"e.g. {option} 1")
    return number


def prune_age(older_than: str | None, everything: bool) -> float:
    """``cache prune``'s age in seconds: --older-than AGE or --all (0), exactly one."""
    if (older_than is None) == (not everything):
        raise UsageError("cache prune needs --older-than AGE or --all" if older_than is None
                         else "cache prune takes --older-than or --all, not both",
                         hint="e.g. `safe-docker cache prune --older-than 30d`")
    try:
        return 0.0 if everything else parse_duration(older_than or "")
    except ValueError:
        raise UsageError(f"invalid --older-than {older_than!r}",
                         why="expected a number and s, m, h, d or w", hint="e.g. 30d") from None


def password(*, confirm: bool = False) -> bytes:
    """The private key's password: COSIGN_PASSWORD (as cosign), else asked on the terminal."""
    if "COSIGN_PASSWORD" in os.environ:
        return os.environ["COSIGN_PASSWORD"].encode()
    if not sys.stdin.isatty():
        raise UsageError("no password given", hint="set COSIGN_PASSWORD or run on a terminal")
    first = getpass.getpass("Password for the private key: ")
    if confirm and getpass.getpass("Again: ") != first:
        raise UsageError("passwords do not match")
    return first.encode()
