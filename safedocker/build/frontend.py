"""The Dockerfile frontend: the image BuildKit pulls and runs before it reads the file.

parser.DetectSyntax (buildkit v0.32.2 frontend/dockerfile/parser/directives.go) looks, after
a UTF-8 BOM and a ``#!`` line, for a ``# syntax=`` directive, then a ``// syntax=`` one, then
a whole-file JSON object ``{"syntax": …}``; ``--build-arg BUILDKIT_SYNTAX=…`` overrides all
of them (dockerfile/builder/build.go). The image is the value up to the first space.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from safedocker.build.parser import BOM, decode, lstrip
from safedocker.errors import Refused, UsageError
from safedocker.reference import parse_reference

if TYPE_CHECKING:
    from collections.abc import Mapping

    from safedocker.reference import ImageRef

SYNTAX_ARG = "BUILDKIT_SYNTAX"
DOCKERFILE_FRONTENDS = ("docker.io/docker/dockerfile", "docker.io/docker/dockerfile-upstream")
_SYNTAX_LINE = re.compile(rb"([a-zA-Z][a-zA-Z0-9]*)[\t\n\f\r ]*=[\t\n\f\r ]*(.+?)[\t\n\f\r ]*\Z")
_VERSION = re.compile(r"(\d+)(?:\.(\d+))?(?:\.\d+)?(?:-labs)?\Z")


@dataclass(frozen=True)
class Frontend:
    """The ``# syntax`` image and whether safe-docker knows how it reads Dockerfiles."""

    ref: ImageRef
    cmdline: str
    line: int  # 0 when it came from --build-arg BUILDKIT_SYNTAX
    official: bool  # docker/dockerfile[-upstream]: parses as modelled here
    named_contexts: bool | None  # honours --build-context (Dockerfile 1.4+); None: unknown


def detect_frontend(data: bytes, build_args: Mapping[str, str | None]) -> Frontend | None:
    """The image BuildKit runs as the Dockerfile frontend (dockerfile/builder/build.go)."""
    arg = build_args.get(SYNTAX_ARG)
    if arg is not None:
        cmdline = arg.strip(" \t\n\v\f\r")
        return _frontend(cmdline.split(" ", 1)[0], cmdline, 0)
    found = _detect_syntax(data)
    if found is None:
        return None
    image, cmdline, line = found
    return _frontend(image, cmdline, line)


def _frontend(image: str, cmdline: str, line: int) -> Frontend:
    where = f"Dockerfile line {line}" if line else f"--build-arg {SYNTAX_ARG}"
    ref = _frontend_ref(image, where)
    official = ref.name in DOCKERFILE_FRONTENDS
    return Frontend(ref, cmdline, line, official, _named_contexts(ref) if official else None)


def _named_contexts(ref: ImageRef) -> bool | None:
    """Named contexts arrived in Dockerfile frontend 1.4; channels track the newest. A
    digest is what BuildKit runs, whatever tag is written beside it: unknown."""
    if ref.digest is not None:
        return None
    tag = ref.tag or "latest"
    if tag in ("latest", "labs", "1", "1-labs", "master", "master-labs"):
        return True
    match = _VERSION.match(tag)
    if match is None:
        return None
    major, minor = int(match.group(1)), int(match.group(2) or 0)
    return major > 1 or (major == 1 and minor >= 4)


def _detect_syntax(data: bytes) -> tuple[str, str, int] | None:
    """parser.DetectSyntax: ``#`` directives, then ``//`` ones, then a JSON object."""
    data = data.removeprefix(BOM)
    first, nl, rest = data.partition(b"\n")
    line = 0
    if first.startswith(b"#!"):
        data, line = (rest if nl else b""), 1
    for prefix in (b"#", b"//"):
        found = _syntax_directive(data, prefix, line)
        if found is not None:
            return found
    try:
        value = json.loads(decode(data), parse_constant=_no_constant)
    except ValueError:
        return None
    if isinstance(value, dict) and isinstance(value.get("syntax"), str):
        text = value["syntax"]
        return text, text, line
    return None


def _no_constant(name: str) -> object:
    raise ValueError(name)


def _syntax_directive(data: bytes, prefix: bytes, line: int) -> tuple[str, str, int] | None:
    seen: set[str] = set()
    for raw in data.split(b"\n"):
        line += 1
        raw = raw.removesuffix(b"\r")  # bufio.ScanLines
        if not raw.startswith(prefix):
            return None
        match = _SYNTAX_LINE.match(lstrip(raw[len(prefix) :]))
        if match is None:
            return None
        name = decode(match.group(1)).lower()
        if name not in ("syntax", "escape", "check") or name in seen:
            return None  # an unknown name ends the directives; a repeat is an error
        seen.add(name)
        if name == "syntax":
            value = decode(match.group(2))
            return value.split(" ", 1)[0], value, line
    return None




def _frontend_ref(text: str, where: str) -> ImageRef:
    if text.startswith("sha256:"):
        raise Refused(f"{where}: the Dockerfile frontend {text!r} is an image ID",
                      hint="name it as repository[:tag] or repository@sha256:…")
    try:
        return parse_reference(text)
    except UsageError as e:
        raise UsageError(f"{where} (# syntax): {e.what}", why=e.why, hint=e.hint) from None
