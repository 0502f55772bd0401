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
import re
import sys
from collections.abc import Iterator, Mapping, Sequence

from safedocker._internal.lean import LazyPattern
from safedocker._internal.logfile import (
    AUDIT_BACKUPS,
    AUDIT_MAX_BYTES,
    RotatingLog,
    stamped,
    utc_now,
)
from safedocker._internal.logfile import (
    AUDIT_NAME as AUDIT_NAME,  # the audit log's file name, for the audit's readers
)
from safedocker.errors import UsageError, reason_of

TYPE_CHECKING = False
if TYPE_CHECKING:
    from datetime import datetime
    from pathlib import Path
    from typing import IO

    from safedocker._internal.logfile import Locked
    from safedocker.errors import SafeDockerError
    from safedocker.reference import ImageRef
    from safedocker.verify.verdict import Verdict

DEFAULT_MAX_BYTES = AUDIT_MAX_BYTES
DEFAULT_BACKUPS = AUDIT_BACKUPS
MAX_LINE_BYTES = 64 * 1024  # a longer line is not ours: skipped as corrupt on read
MAX_STRING = 2048  # longest string value recorded
MAX_ITEMS = 64  # longest list recorded
MAX_ARGS = 128  # longest argv summary
MASK = "***"

# What makes a name secret-looking, in free text (reasons, errors): a last line of defence.
# Command lines are not scrubbed with it: they are summarized with an allowlist.
_SECRET_WORD = LazyPattern(
    r"pass|pwd|secret|token|key|auth|cred|private|session|cookie|signature", re.IGNORECASE
)
# KEY= inside a longer text and the value after it; the lookbehind makes each token one
# match attempt, keeping this linear.
_INLINE_KEY = LazyPattern(r"(?<![A-Za-z0-9_.\-])([A-Za-z0-9_.\-]+)=")
_INLINE_VALUE = LazyPattern(r"\"[^\"]*\"|'[^']*'|[^\s;&|]*")
# scheme://userinfo@host → scheme://***@host
_URL_USERINFO = LazyPattern(r"(?<![A-Za-z0-9+.\-])([A-Za-z][A-Za-z0-9+.\-]*://)[^/\s@]+@")
# Authorization header values.
_AUTH_SCHEME = LazyPattern(r"\b(bearer|basic|token)\s+[A-Za-z0-9._~+/=\-]+", re.IGNORECASE)

# --- the allowlist of what a command line may leave in the log --------------------------
# docker options whose values an auditor needs and that carry no secret: where the
# container runs, what it may touch, which image and platform. Every other value is masked.
_HARMLESS_VALUES = frozenset(
    f"--{name}" for name in (
        # global flags (the daemon: URL userinfo is masked below)
        "host", "context", "config", "log-level", "tlscacert", "tlscert", "tlskey",
        # pull/run/create
        "platform", "pull", "name", "network", "network-alias", "gpus", "runtime", "user",
        "workdir", "restart", "hostname", "domainname", "isolation", "entrypoint", "volume",
        "volumes-from", "tmpfs", "device", "device-cgroup-rule", "cap-add",
        "cap-drop", "security-opt", "userns", "cgroupns", "ipc", "pid", "uts", "group-add",
        "memory", "memory-swap", "memory-reservation", "cpus", "cpu-shares", "cpuset-cpus",
        "shm-size", "pids-limit", "ulimit", "env-file", "label-file", "publish", "expose",
        "attach", "stop-signal", "stop-timeout", "log-driver", "cgroup-parent", "cidfile",
    )
)
# KEY=VALUE options: the key is kept (which variable, which label), never the value.
_NAMED_VALUES = frozenset({"--env", "--label", "--annotation", "--log-opt", "--sysctl",
                           "--storage-opt", "--build-arg", "--secret"})
# Words that name a command (docker's, compose's, safe-docker's own): safe to keep when a
# command line is not one docker's grammar here can read.
_COMMAND_WORDS = frozenset({
    "run", "create", "pull", "push", "container", "image", "compose", "up", "start",
    "restart", "scale", "watch", "build", "buildx", "builder", "bake", "stack", "deploy",
    "service", "update", "plugin", "install", "upgrade", "verify", "airgap", "save", "load",
    "gpu", "sign", "exec", "down", "stop", "config",
})
_PROGRAM = LazyPattern(r"[A-Za-z0-9_./+-]{1,256}", re.ASCII)  # a container command's program
_FLAG = LazyPattern(r"--?[A-Za-z][A-Za-z0-9-]{0,63}", re.ASCII)  # a flag's name alone


# ------------------------------------------------------------------------------ scrubbing


def scrub_text(text: str) -> str:
    """Mask credentials inside free text: URL userinfo, auth headers, secret KEY=VALUE."""
    # Each pattern needs a literal the text may lack: skip compiling and running it then
    # (an audit line of a warm hit scrubs a few short strings).
    if "://" in text:
        text = _URL_USERINFO.sub(rf"\g<1>{MASK}@", text)
    lowered = text.lower()
    # Not ASCII: the pattern's IGNORECASE also matches letters such as U+017F for 's'.
    if not text.isascii() or "bearer" in lowered or "basic" in lowered or "token" in lowered:
        text = _AUTH_SCHEME.sub(rf"\g<1> {MASK}", text)
    if "=" not in text:
        return text
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


def _option_tokens(name: str, value: str | None, *, boolean: bool) -> list[str]:
    """One parsed docker option as recorded: its name, and its value only if harmless."""
    if value is None:
        return [name]
    if boolean:
        return [f"{name}={value}"]  # --rm=false: pflag accepted it, so it is a bool word
    if name in _NAMED_VALUES:
        key, sep, _ = value.partition("=")
        return [name, f"{key}={MASK}" if sep else key] if _FLAG_KEY.fullmatch(key) else [
            name, MASK]
    if name in _HARMLESS_VALUES:
        return [name, _URL_USERINFO.sub(rf"\g<1>{MASK}@", value)]
    if name == "--mount":
        return [name, _mount_summary(value)]
    return [name, MASK]


# --mount fields (docker/cli opts/mount.go) whose values say where and how, never a secret.
# A volume driver's options (`volume-opt=`, e.g. rclone's SAS URL, CIFS passwords) and
# labels keep their name only; an unknown field keeps nothing but its name.
_MOUNT_SHAPE = frozenset({
    "type", "source", "src", "target", "dst", "destination", "readonly", "ro",
    "consistency", "bind-propagation", "bind-nonrecursive", "bind-recursive",
    "volume-subpath", "volume-nocopy", "volume-driver", "image-subpath", "tmpfs-size",
    "tmpfs-mode",
})
_MOUNT_NAMED = frozenset({"volume-opt", "volume-label"})
_USERINFO_MASK = rf"\g<1>{MASK}@"


def _mount_summary(value: str) -> str:
    """A ``--mount`` value as recorded: its fields read as docker reads them (CSV), each
    kept, reduced to ``name=KEY=***``, or to ``name=***`` (see :data:`_MOUNT_SHAPE`)."""
    import csv

    try:
        rows = list(csv.reader([value], strict=True))
    except csv.Error:
        return MASK
    if len(rows) != 1:
        return MASK
    fields: list[str] = []
    for item in rows[0]:
        key, eq, rest = item.partition("=")
        if not _FLAG_KEY.fullmatch(key):
            fields.append(MASK)
        elif not eq:
            fields.append(key)
        elif key.lower() in _MOUNT_SHAPE and not any(c in rest for c in ',"'):
            fields.append(f"{key}={_URL_USERINFO.sub(_USERINFO_MASK, rest)}")
        elif key.lower() in _MOUNT_NAMED:
            option, sep, _ = rest.partition("=")
            shown = option if sep and _FLAG_KEY.fullmatch(option) else ""
            fields.append(f"{key}={shown}={MASK}" if shown else f"{key}={MASK}")
        else:
            fields.append(f"{key}={MASK}")
    return ",".join(fields)


_FLAG_KEY = LazyPattern(r"[A-Za-z0-9_.\-]{1,256}", re.ASCII)  # an env/label key
_GLOBAL_BOOLEANS = frozenset({"--debug", "--tls", "--tlsverify", "--version", "--help"})


def _docker_summary(argv: Sequence[str]) -> tuple[list[str], str] | None:
    """(summary, command) of a docker pull/run/create line, or None if it is not one."""
    from safedocker._docker.argv import global_options, parse

    try:
        invocation = parse(argv)
    except UsageError:
        return None
    out: list[str] = []
    for option in global_options(argv):
        out += _option_tokens(option.name, option.value,
                              boolean=option.name in _GLOBAL_BOOLEANS)
    out += invocation.command
    for option in invocation.options:
        out += _option_tokens(option.name, option.value,
                              boolean=invocation.flagset.lookup(option.name).boolean)
    if invocation.image_index is not None:
        out.append(invocation.image)
    program, *args = invocation.container_command or ("",)
    if program:
        out.append(program if _PROGRAM.fullmatch(program) else MASK)
    out += [MASK] * len(args)
    return out, " ".join(invocation.command)


def _is_image(token: str, image: ImageRef | None) -> bool:
    if image is None or len(token) > 512:
        return False
    from safedocker.reference import parse_reference

    try:
        return parse_reference(token) == image
    except UsageError:
        return False


def _generic_token(token: str, image: ImageRef | None) -> str:
    if token in _COMMAND_WORDS or _FLAG.fullmatch(token) or _is_image(token, image):
        return token
    name, eq, _ = token.partition("=")
    if eq and name.startswith("-") and _FLAG.fullmatch(name):
        return f"{name}={MASK}"
    return MASK


def summarize_argv(argv: Sequence[str], *, image: ImageRef | None = None) -> list[str]:
    """The argv to record: what an auditor needs, never a value that may be a secret.

    An allowlist (attack N11: a list of secret-looking words let ``-e MYSQL_ROOT_PW=…``
    through). A docker pull/run/create line is read with docker's grammar and kept as:
    the command, every option's canonical name, the values of options known to carry no
    secret (platform, network, volumes, …; URL userinfo masked), only the key of
    ``KEY=VALUE`` options (``--env K=***``, labels; ``--env-file`` is never read), the
    image, and the container command's program with its arguments masked. Any other
    line keeps command words, flag names and ``image``; everything else is ``***``.
    Bounded in count and length.
    """
    bounded_in = [_bound_string(str(a)) for a in argv[: MAX_ARGS + 1]]
    docker = _docker_summary(bounded_in) if len(argv) <= MAX_ARGS else None
    if docker is not None:
        out = docker[0]
    else:
        out = [_generic_token(token, image) for token in bounded_in]
    bounded = out[:MAX_ARGS]
    if len(argv) > MAX_ARGS:
        bounded.append(f"… (+{len(argv) - MAX_ARGS} more)")
    return bounded


def command_of(argv: Sequence[str]) -> str:
    """The command a line ran, for the audit view: ``run``, ``image pull``, ``compose up``."""
    docker = _docker_summary([str(a) for a in argv[:MAX_ARGS]])
    if docker is not None:
        return docker[1]
    from safedocker._docker.argv import split_globals

    words = [str(a) for a in argv[split_globals(argv).command_index:][:MAX_ARGS]]
    if not words or words[0] not in _COMMAND_WORDS:
        return "-"
    second = next((w for w in words[1:] if w in _COMMAND_WORDS), None)
    return " ".join(w for w in (words[0], second) if w)


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
    # datetime is not imported to write a record (the warm path); a value can be one only
    # where the module is loaded.
    moments = sys.modules.get("datetime")
    if moments is not None and isinstance(value, moments.datetime):
        return _iso(value)
    return scrub_text(_bound_string(str(value)))


# ------------------------------------------------------------------------------ times


def _iso(moment: datetime) -> str:
    from datetime import timezone

    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    text = moment.astimezone(timezone.utc).isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z")


def _now() -> str:
    """The current UTC time as :func:`_iso` writes it (milliseconds, ``Z``)."""
    return utc_now()


def _parse_time(text: str) -> datetime:
    """ISO 8601 as we write it (``…Z``) or with an offset; naive means UTC."""
    from datetime import datetime, timezone

    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment


_RELATIVE = LazyPattern(r"^\s*(\d{1,9})\s*([smhdw])\s*$", re.IGNORECASE)
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_since(text: str, *, now: datetime | None = None) -> datetime:
    """``24h``, ``30m``, ``7d``, ``2w`` (ago), ``2026-11-01`` (midnight UTC) or an ISO
    8601 time → an aware UTC datetime. Anything else is a :class:`UsageError`."""
    from datetime import date, datetime, timedelta, timezone

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


_STAMPED = frozenset({"time", "user", "pid"})


def _rest(entry: Mapping[str, object]) -> str:
    """``entry`` as the rest of a stamped line: ``,"k":v…}`` (``}`` when empty)."""
    text = json.dumps(entry, separators=(",", ":"), allow_nan=False)
    return "," + text[1:] if entry else "}"


class AuditLog:
    """The audit log in ``state_dir``, rotated past ``max_bytes`` keeping ``backups`` files."""

    def __init__(
        self,
        state_dir: str | Path,
        max_bytes: int = DEFAULT_MAX_BYTES,
        backups: int = DEFAULT_BACKUPS,
    ) -> None:
        if max_bytes <= 0 or backups < 0:
            raise ValueError("max_bytes must be positive and backups not negative")
        # A string inside: writing a record (the warm path) never imports pathlib.
        self._dir = os.fspath(state_dir)
        self.max_bytes = max_bytes
        self.backups = backups
        self.corrupt_lines = 0  # lines skipped by the last read()

    @property
    def state_dir(self) -> Path:
        from pathlib import Path

        return Path(self._dir)

    @property
    def path(self) -> Path:
        return self.state_dir / AUDIT_NAME

    def files(self) -> list[Path]:
        """Existing log files, oldest first (``.N`` … ``.1``, then the current one)."""
        names = [self._backup(i) for i in range(self.backups, 0, -1)] + [self._current]
        return [self.state_dir / os.path.basename(p) for p in names if os.path.exists(p)]

    @property
    def _current(self) -> str:
        return self._log.current

    def _backup(self, index: int) -> str:
        return self._log.backup(index)

    def _locked(self, mode: int) -> Locked:
        return self._log.locked(mode)

    @property
    def _log(self) -> RotatingLog:
        return RotatingLog(self._dir, AUDIT_NAME, self.max_bytes, self.backups)

    # ------------------------------------------------------------------------ write

    def record(self, event: Mapping[str, object]) -> None:
        """Append one event; ``time``, ``user`` and ``pid`` are ours, not the caller's.

        Raises OSError if the state directory or the log cannot be written; callers
        decide whether a decision may proceed without its audit line.
        """
        self.write(self.body(event))

    def write(self, body: str) -> None:
        """Append a line of :meth:`body`'s text, stamped now (the express path keeps the
        text of a decision it replays). Raises OSError as :meth:`record`."""
        self._log.append(stamped(body))

    @staticmethod
    def body(event: Mapping[str, object]) -> str:
        """The line's text after ``time``, ``user`` and ``pid``: the event summarized,
        scrubbed and bounded, as ASCII JSON (C1 controls and bidi overrides a registry
        put in a reason are written as \\u escapes, never raw bytes a terminal would obey
        on ``cat audit.jsonl``)."""
        entry: dict[str, object] = {}
        for key, value in event.items():
            if key in _STAMPED:
                continue
            if key == "argv" and isinstance(value, (list, tuple)):
                entry[key] = summarize_argv([str(a) for a in value],
                                            image=_reference(event.get("reference")))
            else:
                entry[str(key)] = _clean(value)
        body = _rest(entry)
        # Room for the real stamp (a directory service's user name may be long, and
        # escaped), with slack for another process's pid when the express path replays it.
        if len(body.encode()) + len(stamped("")) + 16 > MAX_LINE_BYTES:
            entry = {k: entry[k] for k in ("reference", "digest", "outcome", "offline")
                     if k in entry and len(json.dumps(entry[k])) < 4096}
            entry["truncated"] = True
            body = _rest(entry)
        return body

    # ------------------------------------------------------------------------- read

    def read(self, since: datetime | None = None) -> Iterator[dict[str, object]]:
        """Events oldest first across the rotated files, from ``since`` on (if given).

        Lines that are not JSON objects with a valid ``time`` are skipped and counted in
        :attr:`corrupt_lines`.
        """
        from datetime import timezone

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


def _reference(text: object) -> ImageRef | None:
    """The image a recorded ``reference`` names (lets a summary keep it), if it parses."""
    if not isinstance(text, str):
        return None
    from safedocker.reference import parse_reference

    try:
        return parse_reference(text)
    except UsageError:
        return None


def _argv_image(argv: Sequence[str]) -> str | None:
    """The image of a docker pull/run/create line, normalized, when it has one."""
    from safedocker._docker.argv import parse
    from safedocker.reference import parse_reference

    try:
        return str(parse_reference(parse(argv).image))
    except UsageError:
        return None


def verdict_event(argv: Sequence[str], verdict: Verdict | None, outcome: str,
                  error: SafeDockerError | None = None, *, reference: str | None = None,
                  command: str | None = None, target: str | None = None) -> dict[str, object]:
    """One audit record for a decision (``outcome``: accepted, refused, warned).

    ``reference`` is the image when there is no verdict (a refusal before one was made);
    for a docker pull/run/create line it is read from ``argv`` when not given. ``reason``
    is the why alone: the error's, or the verdict's reasons. ``target``: what docker was
    handed in place of IMAGE.
    """
    event: dict[str, object] = {"argv": list(argv), "command": command or command_of(argv),
                                "outcome": outcome}
    if verdict is None:
        known = reference or _argv_image([str(a) for a in argv[:MAX_ARGS]])
        if known:
            event["reference"] = known
    else:
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
        event["reason"] = error.why or error.what
    elif verdict is not None and verdict.reasons and (not verdict.accepted or verdict.warned):
        event["reason"] = "; ".join(dict.fromkeys(verdict.reasons))
    return event


def record_decision(state_dir: Path, argv: Sequence[str], verdict: Verdict | None, outcome: str,
                    error: SafeDockerError | None = None, *, reference: str | None = None,
                    command: str | None = None, target: str | None = None) -> None:
    """Append one decision; a log that cannot be written is reported, the decision stands."""
    try:
        AuditLog(state_dir).record(verdict_event(argv, verdict, outcome, error,
                                                 reference=reference, command=command,
                                                 target=target))
    except OSError as e:
        sys.stderr.write("safe-docker: warning: could not write the audit log \u2014 "
                         f"{reason_of(e)} (hint: check that {state_dir} is writable, or set "
                         "SAFE_DOCKER_STATE_DIR)\n")


# ------------------------------------------------------------------------- text view

AUDIT_COLUMNS = ("TIME", "COMMAND", "REFERENCE", "DIGEST", "OUTCOME", "RULE", "REASON")


def _text(value: object) -> str:
    text = "-" if value in (None, "", []) else str(value)
    return "".join(c if c.isprintable() else " " for c in text)


def event_row(event: Mapping[str, object]) -> tuple[str, ...]:
    """One event as the text view's columns (see :data:`AUDIT_COLUMNS`)."""
    from safedocker._internal.timefmt import stamp

    try:
        when = stamp(_parse_time(str(event.get("time"))).timestamp())
    except ValueError:
        when = _text(event.get("time"))
    argv = event.get("argv")
    command = event.get("command") or (
        command_of([str(a) for a in argv]) if isinstance(argv, list) else None)
    digest = _text(event.get("digest"))
    if digest.startswith("sha256:"):
        digest = digest[:19]
    outcome = _text(event.get("outcome"))
    if event.get("offline"):
        outcome += " (offline)"
    reason = event.get("reason")
    if not reason and event.get("outcome") != "accepted":
        reasons = event.get("reasons")
        if isinstance(reasons, list) and reasons:
            reason = "; ".join(str(r) for r in reasons)
        elif isinstance(event.get("error"), str):  # older records: the whole line
            what, _, why = str(event["error"]).removeprefix("safe-docker: ").partition(" \u2014 ")
            reason = re.sub(r" \(hint: .*\)$", "", why or what)
    return (when, _text(command), _text(event.get("reference")), digest, outcome,
            _text(event.get("rule")), _text(reason))


def format_table(rows: Sequence[Sequence[str]]) -> Iterator[str]:
    """Rows as aligned columns (two spaces apart, as docker prints); the last unpadded."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)] if rows else []
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row[:-1], widths, strict=True)]
        cells.append(row[-1])
        yield "  ".join(cells).rstrip()
