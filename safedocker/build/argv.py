"""The build command lines, parsed as docker does, with an allowlist of options.

Commands: ``docker build``, ``docker image build``, ``docker builder build`` and
``docker buildx build`` (also ``buildx b``), after docker's global flags.

Which grammar applies is the builder docker picks (docker/cli v28.2.2 cmd/docker/builder.go,
``select_builder``): the legacy builder's ``docker build`` (cli/command/image/build.go,
v28.2.2) or, when BuildKit is used, buildx's ``build`` — ``docker build`` is then forwarded
to the buildx plugin, which parses it (docker/buildx v0.36.1 commands/build.go, root.go).
Options of older buildx releases that v0.36.1 no longer has are refused as unknown.

pflag rules, as in ``safedocker._docker.argv``: ``--opt=value``, ``--opt value``, ``-t v``,
``-tv``, ``-t=v``, combined shorts (``-qt name``), a bool takes a value only through ``=``,
``--`` ends options, options and the one PATH|URL|- argument may be interleaved.
"""

from __future__ import annotations

import enum
import os
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from safedocker._docker.argv import split_globals
from safedocker.build.model import Builder, context_key
from safedocker.errors import UsageError
from safedocker.reference import ImageRef, parse_reference

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

_TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})  # strconv.ParseBool
_FALSE = frozenset({"0", "f", "F", "FALSE", "false", "False"})
DEFAULT_SBOM_GENERATOR = "docker/buildkit-syft-scanner:stable-1"  # buildkit attestations


class Kind(enum.Enum):
    BOOL = "bool"  # --x, --x=false
    VALUE = "value"  # --x v, --x=v
    OPTIONAL = "optional"  # NoOptDefVal: --x alone, or --x=v; never takes the next word


@dataclass(frozen=True)
class _Flag:
    name: str
    short: str | None
    kind: Kind


def _flags(spec: str) -> dict[str, _Flag]:
    """``name/s`` takes a value, ``name!`` is a bool, ``name?`` an optional value."""
    out: dict[str, _Flag] = {}
    for word in spec.split():
        kind = Kind.BOOL if word.endswith("!") else Kind.OPTIONAL if word.endswith("?") else (
            Kind.VALUE
        )
        long, _, short = word.rstrip("!?").partition("/")
        out[long] = _Flag(long, short or None, kind)
    return out


# docker/cli v28.2.2 cli/command/image/build.go NewBuildCommand (+ the root's -h/--help).
LEGACY_FLAGS = _flags(
    "tag/t build-arg ulimit file/f memory/m memory-swap shm-size cpu-shares/c cpu-period "
    "cpu-quota cpuset-cpus cpuset-mems cgroup-parent isolation label no-cache! rm! force-rm! "
    "quiet/q! pull! cache-from compress! security-opt network add-host target iidfile "
    "disable-content-trust! platform squash! help/h!"
)
# docker/buildx v0.36.1 commands/build.go buildCmd (hidden ones too) + commonBuildFlags,
# and the persistent --builder/--debug of the buildx root (commands/root.go).
BUILDX_FLAGS = _flags(
    "add-host allow annotation build-arg cache-from cache-to cgroup-parent build-context "
    "file/f iidfile label load! network no-cache-filter output/o platform policy push! "
    "quiet/q! secret shm-size ssh tag/t target ulimit resource attest sbom provenance call "
    "check? print memory/m memory-swap cpu-shares/c cpu-period cpu-quota cpuset-cpus "
    "cpuset-mems compress! isolation security-opt squash! rm! force-rm! no-cache! progress "
    "pull! metadata-file builder debug/D! help/h!"
)
# docker/cli v20.10's `docker build`: the legacy flags, plus those of its built-in BuildKit
# client (DOCKER_BUILDKIT=1 without buildx); it has no --build-context.
BUILTIN_FLAGS = {**LEGACY_FLAGS, **_flags("progress secret ssh output/o stream!")}
_BUILDX_ROOT = _flags("builder debug/D! help/h!")
_GROUP = _flags("help/h!")
# pflag StringSlice flags: each value is a CSV list.
_SLICES = {Builder.LEGACY: frozenset({"cache-from", "security-opt"}),
           Builder.BUILDKIT: frozenset({"add-host", "security-opt"})}


def parse_bool(value: str | None) -> bool | None:
    if value is None or value in _TRUE:
        return True
    if value in _FALSE:
        return False
    return None


@dataclass(frozen=True)
class Option:
    name: str  # canonical long name without dashes ("file" for -f)
    value: str | None  # None: a bool or optional flag given bare
    start: int  # argv range, end exclusive; combined shorts share their first token
    end: int


class ContextKind(enum.Enum):
    LOCAL_DIR = "local directory"
    STDIN = "stdin"  # a tar archive, or the Dockerfile itself
    REMOTE = "remote"  # git repository or http(s) tarball/Dockerfile URL


class NamedKind(enum.Enum):
    IMAGE = "docker-image"
    LOCAL_DIR = "local directory"
    REMOTE = "remote"
    OCI_LAYOUT = "oci-layout"
    TARGET = "target"  # bake only; buildx build fails on it


@dataclass(frozen=True)
class NamedContext:
    """``--build-context NAME=VALUE``: NAME as buildx normalizes it."""

    key: str
    value: str
    kind: NamedKind
    image: ImageRef | None  # for docker-image://


@dataclass(frozen=True)
class CacheSource:
    text: str
    local: bool  # type=local: the user's own directory


@dataclass(frozen=True)
class Sbom:
    generator: str  # the image BuildKit runs to make the SBOM
    attrs: tuple[tuple[str, str], ...]  # the other attributes, in order


class DockerfileSource(enum.Enum):
    PATH = "path"  # a file (relative to the working directory, as docker takes -f)
    STDIN = "stdin"  # -f -
    IN_STDIN_CONTEXT = "in the stdin context"  # inside the tar on stdin, or stdin itself
    REMOTE = "remote"  # -f http(s)://… (buildx) or inside a remote context


@dataclass(frozen=True)
class DockerfileLocation:
    source: DockerfileSource
    path: str | None  # PATH: the file; IN_STDIN_CONTEXT: the name inside the archive


@dataclass(frozen=True)
class BuildInvocation:
    argv: tuple[str, ...]  # without the program name
    builder: Builder
    command: tuple[str, ...]  # ("build",), ("image", "build"), ("buildx", "build"), …
    options: tuple[Option, ...]  # the build command's (and buildx root's) options, in order
    context_index: int | None  # argv index of PATH | URL | -; None only with --help
    dash_index: int | None  # argv index of a "--" that ended the options
    context: ContextKind | None
    env: tuple[tuple[str, str], ...]  # the environment values the parse used

    # ---- option access

    def values(self, name: str) -> list[str]:
        """Every value of an option; a StringSlice option's values split as CSV."""
        out: list[str] = []
        for option in self.options:
            if option.name != name:
                continue
            value = "true" if option.value is None else option.value
            if name in _SLICES[self.builder]:
                out.extend(_csv(value) if value else [])
            else:
                out.append(value)
        return out

    def last(self, name: str) -> str | None:
        found = self.values(name)
        return found[-1] if found else None

    def flag(self, name: str) -> bool:
        value = self.last(name)
        return value is not None and parse_bool(value) is True

    @property
    def help(self) -> bool:
        return self.flag("help")

    @property
    def context_text(self) -> str:
        if self.context_index is None:
            raise UsageError("docker build: no PATH | URL | - given")
        return self.argv[self.context_index]

    @property
    def dockerfile(self) -> str | None:
        """The -f/--file value as given (last wins), or None."""
        return self.last("file")

    @property
    def target(self) -> str | None:
        return self.last("target")

    @property
    def pull(self) -> bool:
        return self.flag("pull")

    @property
    def secrets(self) -> tuple[str, ...]:
        return tuple(self.values("secret"))

    @property
    def ssh(self) -> tuple[str, ...]:
        return tuple(self.values("ssh"))

    @property
    def outputs(self) -> tuple[str, ...]:
        out = self.values("output")
        if self.flag("load"):
            out.append("type=docker")
        if self.flag("push"):
            out.append("type=registry")
        return tuple(out)

    @property
    def platforms(self) -> tuple[str, ...]:
        """Target platforms; DOCKER_DEFAULT_PLATFORM when none is given (both builders)."""
        given = self.values("platform")
        if not given:
            default = dict(self.env).get("DOCKER_DEFAULT_PLATFORM", "")
            given = [default] if default else []
        if self.builder is Builder.LEGACY:
            return (given[-1],) if given else ()
        out: list[str] = []
        for value in given:
            out.extend(p.strip() for p in value.split(",") if p.strip())
        return tuple(out)

    def build_args(self) -> dict[str, str | None]:
        """``--build-arg`` as the builder receives them: ``K`` takes the environment's value;
        without one the legacy builder gets K unset (nil), buildx drops it; last wins."""
        env = dict(self.env)
        out: dict[str, str | None] = {}
        for spec in self.values("build-arg"):
            key, eq, value = spec.partition("=")
            if not key:
                raise UsageError(f"invalid build argument {spec!r}: empty name")
            if eq:
                out[key] = value
            elif key in env:
                out[key] = env[key]
            elif self.builder is Builder.LEGACY:
                out[key] = None
        return out

    @property
    def named_contexts(self) -> tuple[NamedContext, ...]:
        """``--build-context`` entries; the last one of a name wins, as in buildx."""
        found: dict[str, NamedContext] = {}
        for spec in self.values("build-context"):
            if not spec:
                continue
            name, eq, value = spec.partition("=")
            if not eq:
                raise UsageError(f"invalid context value: {spec}, expected key=value")
            try:
                key = context_key(parse_reference(name))
            except UsageError as e:
                raise UsageError(f"invalid context name {name}: {e.what}") from None
            found[key] = _named_context(key, value)
        return tuple(found.values())

    @property
    def cache_from(self) -> tuple[CacheSource, ...]:
        out: list[CacheSource] = []
        for value in self.values("cache-from"):
            if not value:
                continue
            if self.builder is Builder.LEGACY:
                out.append(CacheSource(value, False))  # an image in the local store
            elif "=" not in value:
                out.extend(CacheSource(ref, False) for ref in _csv(value))
            else:
                fields = dict(_kv(f) for f in _csv(value))
                out.append(CacheSource(value, fields.get("type") == "local"))
        return tuple(out)

    @property
    def sbom(self) -> Sbom | None:
        """The SBOM attestation (the last one of type sbom wins, as in buildx); its
        generator is an image BuildKit runs inside the build."""
        specs = list(self.values("attest"))
        given = self.last("sbom")
        if given:
            truth = parse_bool(given)
            specs.append(f"type=sbom,{given}" if truth is None
                         else f"type=sbom,disabled={'false' if truth else 'true'}")
        effective: list[tuple[str, str]] | None = None
        for spec in specs:
            kind, disabled, attrs = "", False, []
            for item in _csv(spec):
                key, _, value = item.partition("=")
                lowered = key.strip().lower()
                if lowered == "type":
                    kind = value
                elif lowered == "disabled":
                    disabled = parse_bool(value) is True
                else:
                    attrs.append((key, value))  # buildx keeps the key as written
            if kind == "sbom":
                effective = None if disabled else attrs
        if effective is None:
            return None
        generator = DEFAULT_SBOM_GENERATOR
        for key, value in effective:
            if key == "generator":
                generator = value
        return Sbom(generator, tuple((k, v) for k, v in effective if k != "generator"))

    def dockerfile_location(self) -> DockerfileLocation:
        given = self.dockerfile
        if self.context is ContextKind.REMOTE:
            return DockerfileLocation(DockerfileSource.REMOTE, given)
        if self.context is ContextKind.STDIN:
            if given == "-":
                raise UsageError(
                    "invalid argument: can't use stdin for both build context and dockerfile"
                )
            return DockerfileLocation(DockerfileSource.IN_STDIN_CONTEXT, given or "Dockerfile")
        if given == "-":
            return DockerfileLocation(DockerfileSource.STDIN, None)
        if given and self.builder is Builder.BUILDKIT and _is_http(given):
            return DockerfileLocation(DockerfileSource.REMOTE, given)
        if given:
            return DockerfileLocation(DockerfileSource.PATH, given)
        return DockerfileLocation(
            DockerfileSource.PATH, os.path.join(self.context_text, "Dockerfile")
        )

    def unverifiable(self) -> tuple[str, ...]:
        """What the build would take from where safe-docker cannot verify it (each a
        sentence); enforce mode refuses when there is any."""
        reasons: list[str] = []
        if self.context is ContextKind.REMOTE:
            reasons.append(f"the build context {self.context_text} is remote: safe-docker "
                           "cannot read the Dockerfile in it")
        location = self.dockerfile_location() if self.context_index is not None else None
        if location and location.source is DockerfileSource.REMOTE and (
            self.context is not ContextKind.REMOTE
        ):
            reasons.append(f"the Dockerfile {location.path} is remote")
        reasons += [
            f"--build-context {named.key}={named.value} is a {named.kind.value} source "
            "safe-docker cannot verify"
            for named in self.named_contexts
            if named.kind in (NamedKind.REMOTE, NamedKind.OCI_LAYOUT, NamedKind.TARGET)
        ]
        reasons += [
            f"--cache-from {cache.text}: a cache can stand in for build steps, and "
            "safe-docker cannot verify one"
            for cache in self.cache_from
            if not cache.local
        ]
        reasons += [
            f"--policy {policy}: a build policy can replace the images safe-docker pinned"
            for policy in self.values("policy")
            if dict(_kv(f) for f in _csv(policy)).get("disabled") != "true"
        ]
        return tuple(reasons)


def _named_context(key: str, value: str) -> NamedContext:
    """buildx loadInputs' order: remote, docker-image://, target:, oci-layout://, a dir."""
    if value.startswith("docker-image://"):
        ref_text = value.removeprefix("docker-image://")
        try:
            return NamedContext(key, value, NamedKind.IMAGE, parse_reference(ref_text))
        except UsageError as e:
            raise UsageError(f"--build-context {key}: {e.what}", hint=e.hint) from None
    if is_remote(value):
        return NamedContext(key, value, NamedKind.REMOTE, None)
    if value.startswith("target:"):
        return NamedContext(key, value, NamedKind.TARGET, None)
    if value.startswith("oci-layout://"):
        return NamedContext(key, value, NamedKind.OCI_LAYOUT, None)
    return NamedContext(key, value, NamedKind.LOCAL_DIR, None)


_PROTO = re.compile(r"[a-zA-Z0-9]+://")
_SCP = re.compile(r"[a-zA-Z0-9-_]+@[a-zA-Z0-9-.]+:")


def _is_http(text: str) -> bool:
    return text.startswith(("http://", "https://"))


def is_remote(text: str) -> bool:
    """buildx's urlutil.IsRemoteURL: http(s), git:// or ssh://, ``user@host:path``, or the
    legacy ``github.com/`` prefix (dfgitutil.ParseGitRef)."""
    if _is_http(text) or text.startswith("github.com/"):
        return True
    proto = _PROTO.match(text)
    if proto is not None:
        return proto.group(0)[:-3].lower() in ("git", "ssh", "http", "https")
    return _SCP.match(text) is not None


def _legacy_remote(text: str) -> bool:
    """moby's urlutil.IsGitURL or IsURL, which the legacy CLI checks after the local path."""
    return _is_http(text) or text.startswith(("git://", "github.com/", "git@"))


def _csv(text: str) -> list[str]:
    """A CSV record as pflag's StringSlice and buildx's csvvalue read it."""
    fields: list[str] = []
    buf: list[str] = []
    i = 0
    quoted = False
    at_start = True
    while i < len(text):
        ch = text[i]
        if at_start and ch == '"':
            quoted, at_start = True, False
            i += 1
            continue
        at_start = False
        if quoted:
            if ch == '"':
                if i + 1 < len(text) and text[i + 1] == '"':
                    buf.append('"')
                    i += 2
                    continue
                quoted = False
                i += 1
                continue
            buf.append(ch)
        elif ch == ",":
            fields.append("".join(buf))
            buf, at_start = [], True
        elif ch == '"':
            raise UsageError(f'bare " in non-quoted field: {text}')
        else:
            buf.append(ch)
        i += 1
    if quoted:
        raise UsageError(f'extraneous or missing " in quoted field: {text}')
    fields.append("".join(buf))
    return fields


def _kv(field: str) -> tuple[str, str]:
    key, _, value = field.partition("=")
    return key.strip().lower(), value


# --------------------------------------------------------------------------- selection


def select_builder(
    command: Sequence[str],
    env: Mapping[str, str],
    *,
    buildx_installed: bool,
    builder_alias: str | None = None,
) -> Builder:
    """Which builder docker uses for this build command (cmd/docker/builder.go, CLI 23+).

    ``builder_alias`` is the docker config's ``aliases.builder``. A Windows daemon without
    BuildKit also means the legacy builder; safe-docker targets Linux daemons.
    """
    if command and command[0] == "buildx":
        return Builder.BUILDKIT
    use_builder = False
    disabled = False
    value = env.get("DOCKER_BUILDKIT", "")
    if value:
        enabled = parse_bool(value)
        if enabled is None:
            raise UsageError(
                f"DOCKER_BUILDKIT environment variable expects boolean value: {value!r}"
            )
        disabled, use_builder = not enabled, enabled
    if builder_alias is not None:
        if builder_alias != "buildx":
            raise UsageError(
                f"the docker builder alias {builder_alias!r} is not buildx",
                hint="safe-docker knows the build options of buildx and the legacy builder",
            )
        use_builder = True
    if disabled:
        return Builder.LEGACY
    if not buildx_installed:
        if use_builder:
            raise UsageError(
                "BuildKit is enabled but the buildx component is missing or broken",
                hint="install buildx, or set DOCKER_BUILDKIT=0",
            )
        return Builder.LEGACY
    return Builder.BUILDKIT


# --------------------------------------------------------------------------- parsing


def find_build_command(argv: Sequence[str]) -> tuple[tuple[str, ...], int, int] | None:
    """(command words, index of the first word, index after the last) or None."""
    index = split_globals(argv).command_index
    if index >= len(argv):
        return None
    word = argv[index]
    if word == "build":
        return ("build",), index, index + 1
    # `builder` is read with buildx's root flags: docker forwards it to buildx under
    # BuildKit (`docker builder --builder b build .`); parse() refuses them otherwise.
    groups = {"image": _GROUP, "builder": _BUILDX_ROOT, "buildx": _BUILDX_ROOT}
    flags = groups.get(word)
    if flags is None:
        return None
    j = index + 1
    while j < len(argv) and argv[j].startswith("-") and argv[j] != "-":
        if argv[j] == "--":
            j += 1
            break
        j = _skip_flag(argv, j, flags)
    if j < len(argv) and (argv[j] == "build" or (word == "buildx" and argv[j] == "b")):
        return (word, "build"), index, j + 1
    return None


def _skip_flag(argv: Sequence[str], j: int, flags: dict[str, _Flag]) -> int:
    arg = argv[j]
    if arg.startswith("--"):
        name, eq, _ = arg[2:].partition("=")
        flag = flags.get(name)
        return j + 2 if flag and flag.kind is Kind.VALUE and not eq else j + 1
    last = next((f for f in flags.values() if f.short == arg[-1:]), None)
    return j + 2 if last and last.kind is Kind.VALUE and len(arg) == 2 else j + 1


def parse(
    argv: Sequence[str],
    *,
    builder: Builder,
    env: Mapping[str, str] | None = None,
    path_exists: Callable[[str], bool] = os.path.exists,
    path_is_dir: Callable[[str], bool] = os.path.isdir,
    builtin_buildkit: bool = False,
) -> BuildInvocation:
    """Parse a build command line as ``builder``'s CLI would; unknown options are refused.

    ``builtin_buildkit``: docker CLI 20.10's own BuildKit client reads the command line
    (the legacy grammar and its four BuildKit options); ``builder`` is then LEGACY."""
    argv = tuple(argv)
    environ = dict(os.environ if env is None else env)
    found = find_build_command(argv)
    if found is None:
        raise UsageError("not a build command", hint="safe-docker checks docker build, "
                         "docker image build, docker builder build and docker buildx build")
    command, first, after = found
    if command[0] == "buildx" and builder is not Builder.BUILDKIT:
        raise UsageError("docker buildx build always builds with BuildKit")
    if builtin_buildkit and (builder is not Builder.LEGACY or command[0] == "buildx"):
        raise UsageError("docker CLI 20.10's built-in BuildKit reads `docker build` only")
    flags = BUILDX_FLAGS if builder is Builder.BUILDKIT else (
        BUILTIN_FLAGS if builtin_buildkit else LEGACY_FLAGS)
    name = "docker " + " ".join(command)
    options: list[Option] = []
    if command[0] in ("buildx", "builder"):  # the group's own flags before "build": buildx's
        # root flags where docker runs `builder` as buildx (BuildKit), else help alone
        root = _BUILDX_ROOT if builder is Builder.BUILDKIT else _GROUP
        options.extend(_parse_options(argv, first + 1, after - 1, root, name)[0])
    more, positionals, dash = _parse_options(argv, after, len(argv), flags, name)
    options.extend(more)
    invocation = BuildInvocation(
        argv, builder, command, tuple(options), positionals[0] if positionals else None,
        dash, None, tuple(sorted((k, v) for k, v in environ.items()
                                 if k == "DOCKER_DEFAULT_PLATFORM" or k in _arg_keys(more))),
    )
    if invocation.help:
        return invocation
    if len(positionals) != 1:
        raise UsageError(
            f'{name}: "{name}" requires exactly 1 argument, got {len(positionals)}',
            hint=f"usage: {name} [OPTIONS] PATH | URL | -",
        )
    context = _classify(argv[positionals[0]], builder, path_exists, path_is_dir)
    invocation = BuildInvocation(
        invocation.argv, builder, command, invocation.options, invocation.context_index,
        dash, context, invocation.env,
    )
    invocation.build_args()  # refuse an empty name now
    invocation.named_contexts  # noqa: B018 - refuse bad names now, as buildx does
    return invocation


def _arg_keys(options: Sequence[Option]) -> set[str]:
    """Names of ``--build-arg K`` given without a value (their value comes from the env)."""
    return {o.value for o in options if o.name == "build-arg" and o.value and "=" not in o.value}


def _classify(
    text: str,
    builder: Builder,
    path_exists: Callable[[str], bool],
    path_is_dir: Callable[[str], bool],
) -> ContextKind:
    if text == "-":
        return ContextKind.STDIN
    if builder is Builder.LEGACY:
        if path_exists(text):
            return ContextKind.LOCAL_DIR
        if _legacy_remote(text):
            return ContextKind.REMOTE
    else:
        if path_is_dir(text):
            return ContextKind.LOCAL_DIR
        if is_remote(text):
            return ContextKind.REMOTE
    raise UsageError(f"unable to prepare context: path {text!r} not found")


def _parse_options(
    argv: Sequence[str], start: int, stop: int, flags: dict[str, _Flag], name: str
) -> tuple[list[Option], list[int], int | None]:
    """pflag, interspersed: options, positional indices, the index of ``--``."""
    shorts = {f.short: f for f in flags.values() if f.short}
    options: list[Option] = []
    positionals: list[int] = []
    i = start
    while i < stop:
        arg = argv[i]
        if len(arg) < 2 or arg[0] != "-":
            positionals.append(i)
            i += 1
            continue
        if arg == "--":
            positionals.extend(range(i + 1, stop))
            return options, positionals, i
        if arg[1] == "-":
            long, eq, attached = arg[2:].partition("=")
            if not long or long[0] in "-=":
                raise UsageError(f"{name}: bad flag syntax: {arg}")
            flag = flags.get(long)
            if flag is None:
                raise _unknown(name, f"--{long}", flags)
            if eq:
                value: str | None = attached
                end = i + 1
            elif flag.kind is not Kind.VALUE:
                value, end = None, i + 1
            elif i + 1 < stop:
                value, end = argv[i + 1], i + 2
            else:
                raise UsageError(f"{name}: flag needs an argument: {arg}")
            _check_bool(flag, value, arg, name)
            options.append(Option(flag.name, value, i, end))
            i = end
            continue
        rest = arg[1:]
        end = i + 1
        while rest:
            if rest.startswith("test."):
                break  # pflag ignores Go test flags silently
            letter, tail = rest[0], rest[1:]
            flag = shorts.get(letter)
            if flag is None:
                raise _unknown(name, f"-{letter}", flags, shorthand_in=arg)
            if len(rest) > 2 and rest[1] == "=":
                value, rest = rest[2:], ""
            elif flag.kind is not Kind.VALUE:
                value, rest = None, tail
            elif tail:
                value, rest = tail, ""
            elif i + 1 < stop:
                value, end, rest = argv[i + 1], i + 2, ""
            else:
                raise UsageError(f"{name}: flag needs an argument: {letter!r} in {arg}")
            _check_bool(flag, value, arg, name)
            options.append(Option(flag.name, value, i, end))
        i = end
    return options, positionals, None


def _check_bool(flag: _Flag, value: str | None, arg: str, name: str) -> None:
    if flag.kind is Kind.BOOL and parse_bool(value) is None:
        raise UsageError(f'{name}: invalid argument "{value}" for "{arg}" flag')


def _unknown(
    name: str, spelled: str, flags: dict[str, _Flag], *, shorthand_in: str = ""
) -> UsageError:
    other = LEGACY_FLAGS if flags is BUILDX_FLAGS else BUILDX_FLAGS
    bare = spelled.lstrip("-")
    known_elsewhere = bare in other or any(f.short == bare for f in other.values())
    what = f"{name}: unknown flag: {spelled}" + (f" in {shorthand_in}" if shorthand_in else "")
    if known_elsewhere:
        builder = "BuildKit (buildx)" if other is BUILDX_FLAGS else "the legacy builder"
        return UsageError(what, hint=f"{spelled} is an option of {builder}, not of this builder")
    return UsageError(what, hint=f"safe-docker refuses options it does not know; see '{name} "
                      "--help' or report it")


# --------------------------------------------------------------------------- rebuilding


def rebuild(
    inv: BuildInvocation,
    *,
    dockerfile: str | None = None,
    contexts: Sequence[tuple[str, str]] = (),
    build_args: Sequence[tuple[str, str]] = (),
    sbom_generator: str | None = None,
) -> list[str]:
    """The argv with ``-f`` swapped for ``dockerfile``, ``--build-context NAME=VALUE`` and
    ``--build-arg K=V`` set (replacing the user's of the same name) and the SBOM generator
    pinned; every other token unchanged. New options go just before PATH | URL | -."""
    if inv.context_index is None:
        raise UsageError("docker build: no PATH | URL | - given")
    if contexts and inv.builder is not Builder.BUILDKIT:
        raise UsageError("--build-context needs BuildKit")
    context_keys = {context_key(parse_reference(k)) for k, _ in contexts}
    arg_keys = {k for k, _ in build_args}
    sbom = inv.sbom if sbom_generator is not None else None

    def dropped(option: Option) -> bool:
        if option.name == "file":
            return dockerfile is not None
        if option.name == "build-context" and option.value:
            name = option.value.partition("=")[0]
            return context_key(parse_reference(name)) in context_keys
        if option.name == "build-arg" and option.value is not None:
            return option.value.partition("=")[0] in arg_keys
        if sbom_generator is not None and option.name == "sbom":
            return True
        if sbom_generator is not None and option.name == "attest" and option.value:
            return any(_kv(f) == ("type", "sbom") for f in _csv(option.value))
        return False

    added: list[str] = []
    if dockerfile is not None:
        added.append(f"--file={dockerfile}")
    added += [f"--build-context={k}={v}" for k, v in contexts]
    added += [f"--build-arg={k}={v}" for k, v in build_args]
    if sbom_generator is not None and sbom is not None:
        attrs = "".join(f",{k}={v}" for k, v in sbom.attrs)
        added.append(f"--attest=type=sbom,generator={sbom_generator}{attrs}")
    tokens: list[str] = []
    by_start: dict[int, list[Option]] = {}
    for option in inv.options:
        by_start.setdefault(option.start, []).append(option)
    at = inv.context_index
    if inv.dash_index is not None and inv.dash_index < at:
        at = inv.dash_index
    i = 0
    while i < len(inv.argv):
        if i == at:
            tokens += added
        group = by_start.get(i)
        if group is None or not any(dropped(o) for o in group):
            tokens.append(inv.argv[i])
            i += 1
            continue
        for option in group:  # a shared (combined-short) token is re-spelled in long form
            if not dropped(option):
                tokens.append(f"--{option.name}" if option.value is None
                              else f"--{option.name}={option.value}")
        i = max(o.end for o in group)
    return tokens
