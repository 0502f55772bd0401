"""What a Dockerfile makes the builder pull: every external image, with line and instruction.

Read with buildkit's own rules (parser/, instructions/, dockerfile2llb/ of buildkit v0.32.2)
and, for the legacy builder, moby's (daemon/builder/dockerfile). Where the two differ the
``Builder`` decides:

* Global ``ARG``s (before the first FROM) and ``--build-arg`` feed FROM's image and
  ``--platform``. BuildKit adds BUILDPLATFORM/TARGETPLATFORM & co. and keeps a default when
  an ARG is declared again without one; the legacy builder has no platform ARGs, forgets
  the default, expands ARG names too and sees ARGs of the same line only from the next.
* A FROM names a stage when an earlier stage has that name: BuildKit compares exactly with
  the (lowercased) stage names, the legacy builder case-insensitively. ``FROM evil AS
  alpine`` then ``FROM alpine`` is the stage; ``FROM alpine`` before it is the image.
* ``COPY --from=X``: a stage of that name anywhere (BuildKit) or before this stage
  (legacy), a stage index, ``scratch``, or an image. ``ADD`` has no ``--from``.
* ``RUN --mount=…,from=X`` (BuildKit only; the legacy builder stops there): a stage or an
  image, for every mount type; a number is an image name here, not an index.
* ``ONBUILD COPY --from``/``RUN --mount`` run in each stage built FROM that stage.
* ``# syntax=`` (also ``// syntax=``, a JSON ``{"syntax": …}``, after a ``#!`` line, or
  ``--build-arg BUILDKIT_SYNTAX``) is an image BuildKit pulls and runs before it reads
  anything else. The legacy builder ignores it.
* Heredocs: builders before Dockerfile 1.4 read a heredoc body as instructions, before 1.16
  ``<< EOF`` was no heredoc. For BuildKit every reading that parses is scanned and the
  images of all are listed; the legacy builder's reading depends on the daemon version,
  so a heredoc there is refused.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace

from safedocker.build.frontend import Frontend, detect_frontend
from safedocker.build.lex import Lexer, LexError, go_space
from safedocker.build.model import Builder, Platform, context_key
from safedocker.build.parser import (
    INSTRUCTIONS,
    DockerfileSyntaxError,
    HeredocMode,
    Node,
    Parsed,
    decode,
    encode,
    parse,
)
from safedocker.errors import Refused, UsageError
from safedocker.reference import ImageRef, parse_reference

MAX_DOCKERFILE = 256 * 1024  # the largest real ones are tens of KiB
MAX_PLATFORMS = 32
SCRATCH = "scratch"
# moby builtinAllowedBuildArgs: usable in the legacy builder's FROM without an ARG.
_PROXY_ARGS = ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "FTP_PROXY",
               "ftp_proxy", "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy")
_PLATFORM_ARGS = ("BUILDPLATFORM", "BUILDOS", "BUILDOSVERSION", "BUILDARCH", "BUILDVARIANT",
                  "TARGETPLATFORM", "TARGETOS", "TARGETOSVERSION", "TARGETARCH",
                  "TARGETVARIANT")
_STAGE_NAME = re.compile(r"[a-z][a-z0-9-_.]*\Z")
_INTEGER = re.compile(r"[+-]?[0-9]+\Z")  # strconv.Atoi / ParseInt(s, 10, 0)


class Use(enum.Enum):
    """How an instruction uses an image."""

    FRONTEND = "# syntax"  # the Dockerfile frontend BuildKit runs
    FROM = "FROM"
    COPY_FROM = "COPY --from"
    MOUNT_FROM = "RUN --mount"
    ONBUILD_COPY_FROM = "ONBUILD COPY --from"
    ONBUILD_MOUNT_FROM = "ONBUILD RUN --mount"


@dataclass(frozen=True)
class ImageUse:
    """One place the builder pulls an image."""

    use: Use
    line: int  # 1-based line of the instruction
    written: str  # the token as written ("${BASE}", "--from=alpine")
    text: str  # what the builder resolves after substitution ("alpine:3.19")
    ref: ImageRef
    platform: str | None = None  # FROM --platform, evaluated; None: the build's platform
    target_platform: str | None = None  # the target this reading was for (multi-platform)
    span: tuple[int, int] | None = None  # bytes of ``written`` in the file, if rewritable

    @property
    def context_key(self) -> str:
        return context_key(self.ref)

    @property
    def where(self) -> str:
        return f"Dockerfile line {self.line} ({self.use.value} {self.text})"


@dataclass(frozen=True)
class Stage:
    index: int
    name: str | None  # lowercased, as the builder keeps it
    line: int
    base: str  # evaluated base name (for the first target platform)
    base_stage: int | None  # the stage it builds on, if any
    scratch: bool


@dataclass(frozen=True)
class Platforms:
    """The builder's platform (BUILDPLATFORM) and the targets asked for (--platform)."""

    build: str | None = None  # None: unknown; a Dockerfile that needs it is refused
    targets: tuple[str, ...] = ()


@dataclass(frozen=True)
class ScanInputs:
    """What a scan was made with, so a rewritten file can be scanned the same way."""

    build_args: tuple[tuple[str, str | None], ...] = ()
    platforms: Platforms = Platforms()
    target: str | None = None


@dataclass(frozen=True)
class DockerfileScan:
    builder: Builder
    escape: str
    stages: tuple[Stage, ...]
    images: tuple[ImageUse, ...]  # every external image, the frontend first
    frontend: Frontend | None
    heredoc_lines: tuple[int, ...]  # lines of instructions that carry heredocs
    readings: int  # how many heredoc readings were scanned (1 when heredocs do not matter)
    notes: tuple[str, ...] = field(default=())
    inputs: ScanInputs = ScanInputs()

    @property
    def references(self) -> tuple[ImageRef, ...]:
        """Each external image once, in order of first use."""
        seen: dict[ImageRef, None] = {}
        for use in self.images:
            seen.setdefault(use.ref, None)
        return tuple(seen)

    @property
    def stage_names(self) -> frozenset[str]:
        return frozenset(s.name for s in self.stages if s.name)

    def shadows(self) -> tuple[ImageUse, ...]:
        """Images whose named-context key is also a stage name: a ``--build-context`` of that
        name would replace the stage, so BuildKit cannot be pinned that way for them."""
        names = self.stage_names
        return tuple(u for u in self.images if u.use is not Use.FRONTEND
                     and u.context_key in names)


# --------------------------------------------------------------------------- scan


def scan(
    data: bytes,
    *,
    builder: Builder,
    build_args: Mapping[str, str | None] | None = None,
    platforms: Platforms | None = None,
    target: str | None = None,
) -> DockerfileScan:
    """Every external image the build would use, read as ``builder`` reads the file.

    ``build_args`` are the effective ``--build-arg`` values (None: given without a value and
    not in the environment). Raises UsageError for a file docker rejects too, Refused for one
    docker would build but whose images cannot be known for sure.
    """
    if len(data) > MAX_DOCKERFILE:
        raise UsageError(
            f"the Dockerfile is larger than {MAX_DOCKERFILE // 1024} KiB",
            hint=f"safe-docker reads Dockerfiles up to {MAX_DOCKERFILE // 1024} KiB",
        )
    args = dict(build_args or {})
    plats = platforms or Platforms()
    if len(plats.targets) > MAX_PLATFORMS:
        raise UsageError(f"more than {MAX_PLATFORMS} target platforms")
    frontend = detect_frontend(data, args) if builder is Builder.BUILDKIT else None
    ignored = detect_frontend(data, args) if builder is Builder.LEGACY else None
    if frontend is not None and not frontend.official:
        raise Refused(
            f"the Dockerfile frontend {frontend.ref} is not docker/dockerfile",
            why="a custom frontend decides itself which images it pulls; safe-docker cannot "
            "see them",
            hint="remove the '# syntax' line or use docker/dockerfile",
        )
    primary = parse(data, heredocs=HeredocMode.SPACED)
    _check_directives(primary)
    heredoc_lines = tuple(n.start_line for n in primary.nodes if n.heredocs)
    readings: list[Parsed] = [primary]
    if heredoc_lines and builder is Builder.LEGACY:
        raise Refused(
            f"Dockerfile line {heredoc_lines[0]}: a heredoc is read differently by legacy "
            "builders of different Docker versions",
            why="Docker 20.10 reads its body as instructions",
            hint="build with BuildKit (install buildx), or write the heredoc as a file",
        )
    if heredoc_lines:
        readings += _other_readings(data)
    images: list[ImageUse] = []
    seen: set[ImageUse] = set()
    notes: list[str] = []
    stages: tuple[Stage, ...] = ()
    scanned = 0
    for index, parsed in enumerate(readings):
        unknown = [n for n in parsed.nodes if n.command not in INSTRUCTIONS]
        if unknown:
            if index == 0:
                raise DockerfileSyntaxError(
                    f"Dockerfile line {unknown[0].start_line}: unknown instruction: "
                    f"{unknown[0].keyword}"
                )
            continue
        reader = _Reader(parsed, builder, args, plats, target)
        try:
            found = reader.run()
        except (DockerfileSyntaxError, LexError):
            if index == 0:
                raise
            continue  # this reading fails in the builders that have it: nothing pulled
        scanned += 1
        if index == 0:
            stages, notes = reader.stages_out, list(reader.notes)
        for use in found:
            if use not in seen:  # the same use found by several readings or platforms
                seen.add(use)
                images.append(use)
    if ignored is not None:
        notes.append(f"the legacy builder ignores the Dockerfile frontend {ignored.ref}")
    if frontend is not None:
        images.insert(0, ImageUse(Use.FRONTEND, frontend.line, frontend.cmdline,
                                  str(frontend.ref), frontend.ref))
    inputs = ScanInputs(tuple(sorted(args.items())), plats, target)
    return DockerfileScan(
        builder, primary.escape, stages, tuple(images), frontend, heredoc_lines, scanned,
        tuple(notes), inputs,
    )


def trigger_images(
    triggers: Sequence[str], scanned: DockerfileScan, *, stage: int
) -> tuple[ImageUse, ...]:
    """Images the ONBUILD triggers of stage ``stage``'s external base image pull (read from
    that image's verified config). BuildKit pins them by name like the Dockerfile's own; the
    legacy builder cannot pin them, so a gate refuses any there."""
    found: list[ImageUse] = []
    inputs = scanned.inputs
    line = scanned.stages[stage].line
    for trigger in triggers:
        parsed = parse(encode(trigger) + b"\n")  # a fresh file: default escape, as builders do
        node = parsed.nodes[0]
        if node.command in ("onbuild", "from", "maintainer"):
            raise DockerfileSyntaxError(f"{node.keyword} isn't allowed as an ONBUILD trigger")
        reader = _Reader(parsed, scanned.builder, dict(inputs.build_args), inputs.platforms,
                         inputs.target)
        for known in scanned.stages:
            if known.name is not None:
                reader.first.setdefault(known.name, known.index)
        before = len(found)
        reader.sources(node, node, stage, scanned.stages, None, found, onbuild=True)
        found[before:] = [replace(u, line=line, span=None) for u in found[before:]]
    return tuple(found)


def _other_readings(data: bytes) -> list[Parsed]:
    """The file as older builders read it; one that fails there pulls nothing there."""
    found = (_try_parse(data, mode) for mode in (HeredocMode.TIGHT, HeredocMode.NONE))
    return [parsed for parsed in found if parsed is not None]


def _try_parse(data: bytes, mode: HeredocMode) -> Parsed | None:
    try:
        return parse(data, heredocs=mode)
    except DockerfileSyntaxError:
        return None


def _check_directives(parsed: Parsed) -> None:
    names = [d.name for d in parsed.directives]
    if "check" in names and "escape" in names and names.index("check") < names.index("escape"):
        raise Refused(
            "a '# check' directive before '# escape' makes Dockerfile frontends before 1.8 "
            "ignore the escape directive",
            why="the file then means different things to different builders",
            hint="put '# escape' first",
        )


def image_ref(text: str, where: str) -> ImageRef:
    if text.startswith("sha256:"):
        raise Refused(
            f"{where}: {text!r} is an image ID",
            why="an image ID names a local image that carries no signature",
            hint="name the image as repository[:tag] or repository@sha256:…",
        )
    try:
        return parse_reference(text)
    except UsageError as e:
        raise UsageError(f"{where}: {e.what}", why=e.why, hint=e.hint) from None


class _Env(Mapping[str, str]):
    """Arguments for the lexer; a platform ARG nobody told us the value of is refused."""

    def __init__(self, data: Mapping[str, str], unknown: frozenset[str]) -> None:
        self.data = data
        self.unknown = unknown

    def __getitem__(self, key: str) -> str:
        if key in self.unknown:
            raise Refused(
                f"the Dockerfile uses ${key}, and the builder's platform is not known",
                hint="give --platform, or report this with the docker version you use",
            )
        return self.data[key]

    def __contains__(self, key: object) -> bool:
        if key in self.unknown:
            self[str(key)]
        return key in self.data

    def __iter__(self) -> Iterator[str]:
        return iter(self.data)

    def __len__(self) -> int:
        return len(self.data)


@dataclass
class _FromLine:
    node: Node
    name: str | None
    base_written: str
    base_span: tuple[int, int]
    platform: str | None


class _Reader:
    """One reading of one parsed file, for each target platform."""

    def __init__(
        self,
        parsed: Parsed,
        builder: Builder,
        build_args: dict[str, str | None],
        platforms: Platforms,
        target: str | None,
    ) -> None:
        self.parsed = parsed
        self.builder = builder
        self.args = build_args
        self.platforms = platforms
        self.target = target
        self.lexer = Lexer(parsed.escape)
        self.notes: list[str] = []
        self.stages_out: tuple[Stage, ...] = ()
        self.first: dict[str, int] = {}  # stage name -> its first stage

    def run(self) -> list[ImageUse]:
        metas: list[Node] = []
        froms: list[_FromLine] = []
        body: list[list[Node]] = []
        for node in self.parsed.nodes:
            if node.command == "from":
                froms.append(self._from_line(node))
                body.append([])
            elif not froms:
                if node.command != "arg":
                    raise DockerfileSyntaxError(
                        f"Dockerfile line {node.start_line}: {node.keyword} before the first "
                        "FROM (no build stage in current context)"
                    )
                metas.append(node)
            else:
                body[-1].append(node)
        if not froms:
            raise DockerfileSyntaxError("the Dockerfile contains no stages to build")
        targets: list[str | None]
        if self.builder is Builder.LEGACY:
            targets = [str(Platform.parse(self.platforms.targets[0]))
                       if self.platforms.targets else None]
        else:
            targets = [str(Platform.parse(t)) for t in self.platforms.targets] or [None]
        found: list[ImageUse] = []
        for number, tplat in enumerate(targets):
            env = self._env(metas, froms, tplat)
            these: list[ImageUse] = []
            stages = self._stages(froms, env, tplat, these)
            if number == 0:
                self.stages_out = stages
            self._commands(froms, body, stages, tplat, these)
            found += sorted(these, key=lambda u: u.line)  # stable: FROM before its COPY
        return found

    # ---- ARGs

    def _env(self, metas: list[Node], froms: list[_FromLine], tplat: str | None) -> _Env:
        if self.builder is Builder.LEGACY:
            return _Env(self._legacy_args(metas), frozenset())
        values: dict[str, str] = {}
        unknown: set[str] = set()
        build = self.platforms.build
        target = tplat or build
        stage = self.target or froms[-1].name or "default"
        defaults = _platform_args(build, target)
        for key in _PLATFORM_ARGS:
            override = self.args.get(key)
            if override is not None:
                values[key] = override
            elif key in defaults:
                values[key] = defaults[key]
            else:
                unknown.add(key)
        given_stage = self.args.get("TARGETSTAGE")
        values["TARGETSTAGE"] = stage if given_stage is None else given_stage
        env = _Env(values, frozenset(unknown))
        for node in metas:
            for key, value in _arg_pairs(node, self.parsed.escape):
                given = self.args.get(key)
                if key in self.args and given is not None:
                    values[key] = given
                elif value is not None:
                    values[key] = self._expand(value, env, node.start_line)
                env.unknown = env.unknown - {key} if key in values else env.unknown
        return env

    def _legacy_args(self, metas: list[Node]) -> dict[str, str]:
        declared: dict[str, str | None] = {}

        def visible() -> dict[str, str]:
            out: dict[str, str] = {}
            for key in (*declared, *_PROXY_ARGS):
                given = self.args.get(key)
                if given is not None:
                    out[key] = given
                elif (value := declared.get(key)) is not None:
                    out[key] = value
            return out

        for node in metas:
            env = visible()  # moby expands a whole ARG line before adding any of it
            pairs = [
                (self._expand(k, env, node.start_line),
                 None if v is None else self._expand(v, env, node.start_line))
                for k, v in _arg_pairs(node, self.parsed.escape)
            ]
            declared.update(pairs)
        return visible()

    def _expand(self, word: str, env: Mapping[str, str], line: int) -> str:
        try:
            return self.lexer.process_word(word, env)
        except LexError as e:
            raise LexError(f"Dockerfile line {line}: {e.what}") from None

    # ---- stages

    def _from_line(self, node: Node) -> _FromLine:
        platform = None
        for flag in node.flags:
            if flag.name != "platform":
                raise DockerfileSyntaxError(
                    f"Dockerfile line {node.start_line}: unknown flag: --{flag.name}"
                )
            if flag.value is None:
                raise DockerfileSyntaxError(
                    f"Dockerfile line {node.start_line}: missing a value on flag: --platform"
                )
            if platform is not None:
                raise DockerfileSyntaxError(
                    f"Dockerfile line {node.start_line}: duplicate flag specified: --platform"
                )
            platform = flag.value
        words = node.words()
        name = None
        if len(words) == 3 and words[1][0].lower() == "as":
            name = words[2][0].lower()
            if not _STAGE_NAME.match(name):
                raise DockerfileSyntaxError(
                    f"Dockerfile line {node.start_line}: invalid name for build stage: "
                    f"{words[2][0]!r}, name can't start with a number or contain symbols"
                )
        elif len(words) != 1:
            raise DockerfileSyntaxError(
                f"Dockerfile line {node.start_line}: FROM requires either one or three arguments"
            )
        text, start, end = words[0]
        span = node.file_span(start, end)
        return _FromLine(node, name, text, span if span else (-1, -1), platform)

    def _stages(
        self, froms: list[_FromLine], env: _Env, tplat: str | None, found: list[ImageUse]
    ) -> tuple[Stage, ...]:
        stages: list[Stage] = []
        latest: dict[str, int] = {}  # stage name -> the last stage of that name so far
        for index, line in enumerate(froms):
            number = line.node.start_line
            base = self._expand(line.base_written, env, number)
            if not base:
                raise DockerfileSyntaxError(
                    f"Dockerfile line {number}: base name ({line.base_written}) should not be "
                    "blank"
                )
            platform = None
            if line.platform is not None:
                value = self._expand(line.platform, env, number)
                if not value:
                    raise DockerfileSyntaxError(
                        f"Dockerfile line {number}: empty platform value from expression "
                        f"{line.platform}"
                    )
                platform = str(Platform.parse(value))
            # BuildKit compares exactly with the lowercased names, moby case-insensitively.
            base_stage = latest.get(base if self.builder is Builder.BUILDKIT else base.lower())
            scratch = base_stage is None and base == SCRATCH
            if base_stage is None and not scratch:
                where = f"Dockerfile line {number} (FROM)"
                span = line.base_span if line.base_span[0] >= 0 else None
                found_use = ImageUse(Use.FROM, number, line.base_written, base,
                                     image_ref(base, where), platform, tplat, span)
                found.append(found_use)
            stages.append(Stage(index, line.name, number, base, base_stage, scratch))
            if line.name is not None:
                latest[line.name] = index
                self.first.setdefault(line.name, index)
        return tuple(stages)

    def _named_before(self, name: str, stage: int | None = None) -> bool:
        """A stage of that name (lowercased) exists, before stage ``stage`` if given."""
        first = self.first.get(name.lower())
        return first is not None and (stage is None or first < stage)

    # ---- COPY --from, RUN --mount, ONBUILD

    def _commands(
        self,
        froms: list[_FromLine],
        body: list[list[Node]],
        stages: tuple[Stage, ...],
        tplat: str | None,
        found: list[ImageUse],
    ) -> None:
        for index, nodes in enumerate(body):
            for node in nodes:
                self.sources(node, node, index, stages, tplat, found, onbuild=False)
            base = stages[index].base_stage
            if base is None:
                continue
            for node in body[base]:
                if node.command == "onbuild" and node.sub is not None:
                    trigger = self._trigger(node)
                    self.sources(trigger, node, index, stages, tplat, found, onbuild=True)

    def _trigger(self, node: Node) -> Node:
        """The ONBUILD expression as the child stage parses it: a fresh file, default escape."""
        sub = node.sub
        if sub is None:
            raise DockerfileSyntaxError(f"Dockerfile line {node.start_line}: empty ONBUILD")
        expression = re.sub(rb"(?i)\A[\t\n\f\r ]*ONBUILD[\t\n\f\r ]*", b"", node.line)
        fresh = parse(expression + b"\n", heredocs=HeredocMode.NONE).nodes[0]
        ours = [(f.name, f.value) for f in sub.flags]
        if [(f.name, f.value) for f in fresh.flags] != ours:
            raise Refused(
                f"Dockerfile line {node.start_line}: the ONBUILD flags read differently under "
                "the file's escape character and the default one",
                hint="avoid escape characters in ONBUILD flags",
            )
        return sub

    def sources(
        self,
        node: Node,
        located: Node,
        stage: int,
        stages: tuple[Stage, ...],
        tplat: str | None,
        found: list[ImageUse],
        *,
        onbuild: bool,
    ) -> None:
        number = located.start_line
        if node.command == "copy":
            froms = [f for f in node.flags if f.name == "from"]
            if len(froms) > 1:
                raise DockerfileSyntaxError(
                    f"Dockerfile line {number}: duplicate flag specified: --from"
                )
            if not froms or not froms[0].value:
                return
            flag = froms[0]
            value = flag.value or ""
            if self._copy_source_is_stage(value, stage, stages, number, onbuild):
                return
            use = Use.ONBUILD_COPY_FROM if onbuild else Use.COPY_FROM
            span = located.file_span(flag.start, flag.end)
            where = f"Dockerfile line {number} ({use.value})"
            found.append(ImageUse(use, number, decode(located.line[flag.start:flag.end]), value,
                                  image_ref(value, where), None, tplat, span))
        elif node.command == "run":
            mounts = [f.value for f in node.flags if f.name == "mount" and f.value is not None]
            if mounts and self.builder is Builder.LEGACY:
                note = (f"Dockerfile line {number}: RUN --mount needs BuildKit; the legacy "
                        "builder stops there")
                if note not in self.notes:
                    self.notes.append(note)
                return
            for spec in mounts:
                source = _mount_from(spec, number) or SCRATCH
                if self._named_before(source):
                    continue
                if source == SCRATCH:
                    continue
                use = Use.ONBUILD_MOUNT_FROM if onbuild else Use.MOUNT_FROM
                where = f"Dockerfile line {number} ({use.value})"
                found.append(ImageUse(use, number, spec, source, image_ref(source, where), None,
                                      tplat, None))

    def _copy_source_is_stage(
        self, value: str, stage: int, stages: tuple[Stage, ...], number: int, onbuild: bool
    ) -> bool:
        if self.builder is Builder.BUILDKIT:
            try:
                same = Lexer(self.parsed.escape).process_word(value, {}) == value
            except LexError:
                same = False
            if not same:
                raise DockerfileSyntaxError(
                    f"Dockerfile line {number}: variable expansion is not supported for --from"
                )
            if _INTEGER.match(value):
                return True  # a stage index (or an image already listed)
            return self._named_before(value) or value == SCRATCH
        # legacy: stages committed before this one, by name, then by index
        if value == SCRATCH:
            return True  # never an image: the daemon refuses to pull "scratch"
        if self._named_before(value, stage):
            if onbuild:
                self._check_onbuild_order(value, stages, number)
            return True
        if _INTEGER.match(value):
            return True  # an index; an invalid one fails the build
        if onbuild and self._named_before(value):
            self._check_onbuild_order(value, stages, number)
        return False

    def _check_onbuild_order(self, value: str, stages: tuple[Stage, ...], number: int) -> None:
        named = [s for s in stages if s.name == value.lower()]
        if named and named[0].line > number:
            raise Refused(
                f"Dockerfile line {number}: ONBUILD COPY --from={value} names a stage defined "
                "after it",
                why="the legacy builder then reads it as a stage or as an image depending on "
                "which stage triggers it",
                hint="define that stage before the ONBUILD",
            )


def _platform_args(build: str | None, target: str | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for prefix, text in (("BUILD", build), ("TARGET", target)):
        if text is None:
            continue
        plat = Platform.parse(text)
        out[prefix + "PLATFORM"] = str(plat)
        out[prefix + "OS"] = plat.os
        out[prefix + "OSVERSION"] = ""
        out[prefix + "ARCH"] = plat.arch
        out[prefix + "VARIANT"] = plat.variant
    return out


def _arg_pairs(node: Node, escape: str) -> list[tuple[str, str | None]]:
    """parseNameOrNameVal + parseArg: ``KEY`` or ``KEY=value`` words, quotes kept raw."""
    pairs: list[tuple[str, str | None]] = []
    for word in _parse_words(node.args, escape):
        key, eq, value = word.partition("=")
        if eq and not key:
            raise DockerfileSyntaxError(
                f"Dockerfile line {node.start_line}: ARG names can not be blank"
            )
        pairs.append((key, value if eq else None))
    if not pairs:
        raise DockerfileSyntaxError(
            f"Dockerfile line {node.start_line}: ARG requires at least one argument"
        )
    return pairs


def _parse_words(rest: str, escape: str) -> list[str]:
    """parser.parseWords: split on spaces outside quotes; quotes and escapes stay."""
    words: list[str] = []
    buf: list[str] = []
    phase = "spaces"
    quote = ""
    blank_ok = False
    pos = 0
    n = len(rest)
    while pos <= n:
        ch = rest[pos] if pos < n else ""
        if phase == "spaces":
            if pos == n:
                break
            if go_space(ch):
                pos += 1
                continue
            phase = "word"
        if pos == n:
            if blank_ok or buf:
                words.append("".join(buf))
            break
        if phase == "word":
            if go_space(ch):
                phase = "spaces"
                if blank_ok or buf:
                    words.append("".join(buf))
                buf, blank_ok = [], False
                pos += 1
                continue
            if ch in ("'", '"'):
                quote, blank_ok, phase = ch, True, "quote"
            if ch == escape:
                if pos + 1 == n:
                    pos += 1
                    continue  # an escape at the end is dropped
                buf.append(ch)
                pos += 1
                ch = rest[pos]
            buf.append(ch)
            pos += 1
            continue
        if ch == quote:
            phase = "word"
        if ch == escape and quote != "'":
            if pos + 1 == n:
                phase = "word"
                pos += 1
                continue
            pos += 1
            buf.append(ch)
            ch = rest[pos]
        buf.append(ch)
        pos += 1
    return words


def _mount_from(spec: str, line: int) -> str:
    """The ``from`` of a ``--mount`` value as buildkit reads it before expansion."""
    source = ""
    for item in _csv_fields(spec, line):
        key, eq, value = item.partition("=")
        if not eq or key.lower() != "from":
            continue
        dollar = value.find("$")
        if dollar != -1 and dollar != len(value) - 1:
            raise DockerfileSyntaxError(
                f"Dockerfile line {line}: 'from' doesn't support variable expansion, define "
                "alias stage instead"
            )
        source = value
    return source


def _csv_fields(text: str, line: int) -> list[str]:
    """One record of encoding/csv (no lazy quotes), as go-csvvalue reads it."""
    fields: list[str] = []
    i = 0
    n = len(text)
    while True:
        if i < n and text[i] == '"':
            i += 1
            buf: list[str] = []
            while True:
                if i >= n:
                    raise DockerfileSyntaxError(
                        f"Dockerfile line {line}: failed to parse csv mounts: extraneous or "
                        'missing " in quoted-field'
                    )
                if text[i] == '"':
                    if i + 1 < n and text[i + 1] == '"':
                        buf.append('"')
                        i += 2
                        continue
                    i += 1
                    break
                buf.append(text[i])
                i += 1
            fields.append("".join(buf))
            if i >= n:
                return fields
            if text[i] != ",":
                raise DockerfileSyntaxError(
                    f"Dockerfile line {line}: failed to parse csv mounts: extraneous or "
                    'missing " in quoted-field'
                )
            i += 1
            continue
        end = text.find(",", i)
        piece = text[i:] if end < 0 else text[i:end]
        if '"' in piece:
            raise DockerfileSyntaxError(
                f'Dockerfile line {line}: failed to parse csv mounts: bare " in non-quoted-field'
            )
        fields.append(piece)
        if end < 0:
            return fields
        i = end + 1
