"""The audit log: one JSON object per line in ``<state_dir>/audit.jsonl``.

Every decision safe-docker makes about an image (accepted, refused, warned) is appended
with the time (ISO 8601, UTC), the user, the pid and what the caller passes: an argv
summary, reference, digest, rule, signers, outcome, offline flag, reasons.

Many safe-docker processes append at once: each line is written with one ``write`` on
an ``O_APPEND`` descriptor, so lines never interleave. Rotation by size
(``audit.jsonl.1`` … ``.N``, oldest highest) happens under an exclusive ``flock`` on
``audit.jsonl.lock``; appenders hold the same lock shared while they write.

Credentials are never recorded: :func:`summarize_argv` masks the values of secret-looking
flags and ``KEY=VALUE`` environment settings, and userinfo in URLs; :meth:`AuditLog.record`
applies it to ``argv`` and masks URLs in every string it writes.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import math
import os
import pwd
import re
import sys
from collections.abc import Iterator, Mapping, Sequence
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import IO, TYPE_CHECKING

from safedocker.errors import UsageError

if TYPE_CHECKING:
    from safedocker.errors import SafeDockerError
    from safedocker.verify.verdict import Verdict

AUDIT_NAME = "audit.jsonl"
DEFAULT_MAX_BYTES = 5 * 1024 * 1024
DEFAULT_BACKUPS = 3
MAX_LINE_BYTES = 64 * 1024  # a longer line is not ours: skipped as corrupt on read
MAX_STRING = 2048  # longest string value recorded
MAX_ITEMS = 64  # longest list recorded
MAX_ARGS = 128  # longest argv summary
MASK = "***"

# What makes a name secret-looking: an env key, a flag name.
_SECRET_WORD = re.compile(
    r"pass|pwd|secret|token|key|auth|cred|private|session|cookie|signature", re.IGNORECASE
)
# KEY=VALUE as a whole argument (``-e PASSWORD=x`` gives the argument ``PASSWORD=x``).
_ASSIGNMENT = re.compile(r"^([A-Za-z_][A-Za-z0-9_.\-]*)=(.*)$", re.DOTALL)
# KEY= inside a longer argument (``-ePASSWORD=x``, ``sh -c 'TOKEN=x cmd'``) and the value
# after it; the lookbehind makes each token one match attempt, keeping this linear.
_INLINE_KEY = re.compile(r"(?<![A-Za-z0-9_.\-])([A-Za-z0-9_.\-]+)=")
_INLINE_VALUE = re.compile(r"\"[^\"]*\"|'[^']*'|[^\s;&|]*")
# scheme://userinfo@host → scheme://***@host
_URL_USERINFO = re.compile(r"(?<![A-Za-z0-9+.\-])([A-Za-z][A-Za-z0-9+.\-]*://)[^/\s@]+@")
# Authorization header values.
_AUTH_SCHEME = re.compile(r"\b(bearer|basic|token)\s+[A-Za-z0-9._~+/=\-]+", re.IGNORECASE)
# Flags that look secret but take no value.
_BOOLEAN_SECRET_FLAGS = frozenset({"--password-stdin"})


# ------------------------------------------------------------------------------ scrubbing


def scrub_text(text: str) -> str:
    """Mask credentials inside free text: URL userinfo, auth headers, secret KEY=VALUE."""
    text = _URL_USERINFO.sub(rf"\g<1>{MASK}@", text)
    text = _AUTH_SCHEME.sub(rf"\g<1> {MASK}", text)
    parts: list[str] = []
    pos = 0
    while match := _INLINE_KEY.search(text, pos):
        parts.append(text[pos : match.end()])
        pos = match.end()
        if _SECRET_WORD.search(match.group(1)):
            value = _INLINE_VALUE.match(text, pos)
            if value and value.end() > pos:
                parts.append(MASK)
                pos = value.end()
    parts.append(text[pos:])
    return "".join(parts)


def _scrub_assignment(text: str) -> str:
    match = _ASSIGNMENT.match(text)
    if match and _SECRET_WORD.search(match.group(1)):
        return f"{match.group(1)}={MASK}"
    return scrub_text(text)


def _is_secret_flag(flag: str) -> bool:
    name = flag.lstrip("-")
    return (
        flag.startswith("--")
        and flag not in _BOOLEAN_SECRET_FLAGS
        and bool(_SECRET_WORD.search(name))
    )


def summarize_argv(argv: Sequence[str]) -> list[str]:
    """The argv to record: secrets masked with ``***``, then bounded in count and length.

    Masked: values of ``KEY=VALUE`` settings whose key looks secret (``-e PASSWORD=x``,
    ``--env=TOKEN=x``, ``-eAPI_KEY=x``, bare ``AWS_SECRET=x`` in a command), values of
    secret-looking long flags (``--password x``, ``--token=x``), userinfo in URLs
    (``https://***@host``) and ``Bearer``/``Basic`` credentials.
    """
    out: list[str] = []
    mask_next = False
    for raw in argv[: MAX_ARGS + 1]:
        arg = _bound_string(str(raw))
        if mask_next:
            out.append(MASK)
            mask_next = False
            continue
        flag, eq, value = arg.partition("=")
        if arg.startswith("--") and eq:
            if _is_secret_flag(flag):
                out.append(f"{flag}={MASK}")
            else:
                out.append(f"{flag}={_scrub_assignment(value)}")
            continue
        if arg.startswith("--") and _is_secret_flag(arg):
            out.append(arg)
            mask_next = True
            continue
        if arg.startswith("-") and not arg.startswith("--") and len(arg) > 2 and arg[1] == "e":
            out.append(f"-e{_scrub_assignment(arg[2:])}")  # -eKEY=VALUE
            continue
        out.append(_scrub_assignment(arg))
    bounded = out[:MAX_ARGS]
    if len(argv) > MAX_ARGS:
        bounded.append(f"… (+{len(argv) - MAX_ARGS} more)")
    return bounded


def _bound_string(text: str) -> str:
    return text if len(text) <= MAX_STRING else text[:MAX_STRING] + "…"


def _clean(value: object, depth: int = 0) -> object:
    """A JSON-safe, bounded, scrubbed copy of ``value``."""
    if value is None or isinstance(value, (bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, str):
        return scrub_text(_bound_string(value))
    if depth >= 8:
        return scrub_text(_bound_string(str(value)))
    if isinstance(value, Mapping):
        items = list(value.items())[:MAX_ITEMS]
        return {str(k): _clean(v, depth + 1) for k, v in items}
    if isinstance(value, (list, tuple, set, frozenset)):
        seq = sorted(value, key=str) if isinstance(value, (set, frozenset)) else list(value)
        cleaned = [_clean(v, depth + 1) for v in seq[:MAX_ITEMS]]
        if len(seq) > MAX_ITEMS:
            cleaned.append(f"… (+{len(seq) - MAX_ITEMS} more)")
        return cleaned
    if isinstance(value, datetime):
        return _iso(value)
    return scrub_text(_bound_string(str(value)))


# ------------------------------------------------------------------------------ times


def _iso(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    text = moment.astimezone(timezone.utc).isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z")


def _parse_time(text: str) -> datetime:
    """ISO 8601 as we write it (``…Z``) or with an offset; naive means UTC."""
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment


_RELATIVE = re.compile(r"^\s*(\d{1,9})\s*([smhdw])\s*$", re.IGNORECASE)
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_since(text: str, *, now: datetime | None = None) -> datetime:
    """``24h``, ``30m``, ``7d``, ``2w`` (ago), ``2026-11-01`` (midnight UTC) or an ISO
    8601 time → an aware UTC datetime. Anything else is a :class:`UsageError`."""
    current = now or datetime.now(timezone.utc)
    if current.tzinfo is None:
        current = current.replace(tzinfo=timezone.utc)
    match = _RELATIVE.match(text)
    if match:
        seconds = int(match.group(1)) * _UNITS[match.group(2).lower()]
        try:
            return current.astimezone(timezone.utc) - timedelta(seconds=seconds)
        except OverflowError as e:
            raise UsageError(f"invalid --since {text!r}", why="too far back") from e
    stripped = text.strip()
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", stripped):
            day = date.fromisoformat(stripped)
            return datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
        return _parse_time(stripped).astimezone(timezone.utc)
    except ValueError as e:
        raise UsageError(
            f"invalid --since {text!r}",
            why="expected a duration such as 24h or 7d, a date 2026-11-01, or an ISO 8601 time",
        ) from e


# ------------------------------------------------------------------------------- log


def _user() -> str:
    uid = os.getuid()
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


class AuditLog:
    """The audit log in ``state_dir``, rotated past ``max_bytes`` keeping ``backups`` files."""

    def __init__(
        self,
        state_dir: Path,
        max_bytes: int = DEFAULT_MAX_BYTES,
        backups: int = DEFAULT_BACKUPS,
    ) -> None:
        if max_bytes <= 0 or backups < 0:
            raise ValueError("max_bytes must be positive and backups not negative")
        self.state_dir = Path(state_dir)
        self.max_bytes = max_bytes
        self.backups = backups
        self.corrupt_lines = 0  # lines skipped by the last read()

    @property
    def path(self) -> Path:
        return self.state_dir / AUDIT_NAME

    def files(self) -> list[Path]:
        """Existing log files, oldest first (``.N`` … ``.1``, then the current one)."""
        names = [self._backup(i) for i in range(self.backups, 0, -1)] + [self.path]
        return [p for p in names if p.exists()]

    def _backup(self, index: int) -> Path:
        return self.state_dir / f"{AUDIT_NAME}.{index}"

    @contextlib.contextmanager
    def _locked(self, mode: int) -> Iterator[None]:
        fd = os.open(
            self.state_dir / f"{AUDIT_NAME}.lock",
            os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC,
            0o600,
        )
        try:
            fcntl.flock(fd, mode)
            yield
        finally:
            os.close(fd)

    # ------------------------------------------------------------------------ write

    def record(self, event: Mapping[str, object]) -> None:
        """Append one event; ``time``, ``user`` and ``pid`` are ours, not the caller's.

        Raises OSError if the state directory or the log cannot be written; callers
        decide whether a decision may proceed without its audit line.
        """
        entry: dict[str, object] = {
            "time": _iso(datetime.now(timezone.utc)),
            "user": _user(),
            "pid": os.getpid(),
        }
        for key, value in event.items():
            if key in entry:
                continue
            if key == "argv" and isinstance(value, (list, tuple)):
                entry[key] = summarize_argv([str(a) for a in value])
            else:
                entry[str(key)] = _clean(value)
        line = (
            json.dumps(entry, ensure_ascii=False, separators=(",", ":"), allow_nan=False) + "\n"
        ).encode("utf-8")
        if len(line) > MAX_LINE_BYTES:
            entry = {k: entry[k] for k in ("time", "user", "pid")} | {
                k: entry[k]
                for k in ("reference", "digest", "outcome", "offline")
                if k in entry and len(json.dumps(entry[k])) < 4096
            }
            entry["truncated"] = True
            line = (json.dumps(entry, ensure_ascii=False, separators=(",", ":")) + "\n").encode()

        self.state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        if self._size() + len(line) > self.max_bytes:
            with self._locked(fcntl.LOCK_EX):
                if self._size() + len(line) > self.max_bytes and self._size() > 0:
                    self._rotate()
        with self._locked(fcntl.LOCK_SH):
            fd = os.open(
                self.path,
                os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC,
                0o600,
            )
            try:
                if os.fstat(fd).st_mode & 0o077:
                    with contextlib.suppress(OSError):
                        os.fchmod(fd, 0o600)
                written = os.write(fd, line)
                if written != len(line):  # only on a full disk; finish the line anyway
                    os.write(fd, line[written:])
            finally:
                os.close(fd)

    def _size(self) -> int:
        try:
            return self.path.stat().st_size
        except FileNotFoundError:
            return 0

    def _rotate(self) -> None:
        """Shift ``.i`` to ``.i+1`` (dropping the oldest), current to ``.1``; caller locks."""
        if self.backups == 0:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
            return
        with contextlib.suppress(FileNotFoundError):
            self._backup(self.backups).unlink()
        for index in range(self.backups - 1, 0, -1):
            with contextlib.suppress(FileNotFoundError):
                os.replace(self._backup(index), self._backup(index + 1))
        with contextlib.suppress(FileNotFoundError):
            os.replace(self.path, self._backup(1))

    # ------------------------------------------------------------------------- read

    def read(self, since: datetime | None = None) -> Iterator[dict[str, object]]:
        """Events oldest first across the rotated files, from ``since`` on (if given).

        Lines that are not JSON objects with a valid ``time`` are skipped and counted in
        :attr:`corrupt_lines`.
        """
        self.corrupt_lines = 0
        if since is not None and since.tzinfo is None:
            since = since.replace(tzinfo=timezone.utc)
        handles: list[IO[bytes]] = []
        if self.state_dir.is_dir():
            # Open every file at once under the shared lock, so a rotation cannot shift
            # the files between our opens (open files survive renames).
            with contextlib.ExitStack() as stack:
                # A log we may read but not lock (another user's state dir) is read unlocked.
                with contextlib.suppress(OSError):
                    stack.enter_context(self._locked(fcntl.LOCK_SH))
                for path in self.files():
                    with contextlib.suppress(FileNotFoundError):
                        handles.append(open(path, "rb"))  # closed below
        try:
            for handle in handles:
                yield from self._read_file(handle, since)
        finally:
            for handle in handles:
                handle.close()

    def _read_file(self, handle: IO[bytes], since: datetime | None) -> Iterator[dict[str, object]]:
        while True:
            line = handle.readline(MAX_LINE_BYTES + 1)
            if not line:
                return
            if len(line) > MAX_LINE_BYTES and not line.endswith(b"\n"):
                self.corrupt_lines += 1
                while line and not line.endswith(b"\n"):  # skip the rest of the long line
                    line = handle.readline(MAX_LINE_BYTES + 1)
                continue
            if not line.strip():
                continue
            entry = self._parse_line(line)
            if entry is None:
                self.corrupt_lines += 1
                continue
            moment, event = entry
            if since is None or moment >= since:
                yield event

    @staticmethod
    def _parse_line(line: bytes) -> tuple[datetime, dict[str, object]] | None:
        try:
            event = json.loads(line)
        except (ValueError, UnicodeDecodeError, RecursionError):
            return None
        if not isinstance(event, dict):
            return None
        stamp = event.get("time")
        if not isinstance(stamp, str):
            return None
        try:
            return _parse_time(stamp), event
        except ValueError:
            return None


def verdict_event(argv: Sequence[str], verdict: Verdict | None, outcome: str,
                  error: SafeDockerError | None = None, *,
                  target: str | None = None) -> dict[str, object]:
    """One audit record for a decision (``outcome``: accepted, refused, warned);
    ``target``: what docker was handed in place of IMAGE."""
    event: dict[str, object] = {"argv": list(argv), "outcome": outcome}
    if verdict is not None:
        rule = verdict.rule
        event.update(
            reference=str(verdict.ref),
            digest=str(verdict.digest) if verdict.digest else None,
            rule=rule.scope if rule else None,
            rule_source=rule.source if rule else None,
            signers=[signer.name for signer in verdict.signers],
            offline=verdict.offline,
            reasons=list(verdict.reasons),
        )
    if target is not None:
        event["target"] = target
    if error is not None:
        event["error"] = error.line()
    return event


def record_decision(state_dir: Path, argv: Sequence[str], verdict: Verdict | None, outcome: str,
                    error: SafeDockerError | None = None, *, target: str | None = None) -> None:
    """Append one decision; a log that cannot be written is reported, the decision stands."""
    try:
        AuditLog(state_dir).record(verdict_event(argv, verdict, outcome, error, target=target))
    except OSError as e:
        sys.stderr.write(f"safe-docker: WARNING: could not write the audit log \u2014 {e}\n")
