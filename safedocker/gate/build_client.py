"""Which builder reads a build, found by asking the user's docker CLI what it has.

* ``docker buildx build``, and ``docker build`` on a CLI 23+ with buildx installed (unless
  ``DOCKER_BUILDKIT=0``): BuildKit through buildx. Pinned with ``--build-context``, which
  needs BuildKit 0.10+ in the builder (or a ``# syntax`` frontend 1.4+).
* A CLI 23+ without buildx, or ``DOCKER_BUILDKIT=0``: the legacy builder. Pinned by a
  rewritten Dockerfile.
* docker CLI 20.10-22 with ``DOCKER_BUILDKIT=1`` and no ``builder`` alias: its built-in
  BuildKit client, which has no ``--build-context``: a BuildKit reading of the file, pinned
  by the rewrite. Without DOCKER_BUILDKIT the daemon's configuration decides, which the
  CLI does not show: that is refused, asking for the variable.
"""

from __future__ import annotations

import enum
import json
import re
from typing import TYPE_CHECKING, Protocol

from safedocker._docker.argv import global_options
from safedocker._docker.engine import connection_globals
from safedocker._internal import strictjson
from safedocker._internal.processes import run_bounded
from safedocker.build.argv import parse_bool, select_builder
from safedocker.build.model import Builder
from safedocker.errors import Refused, SafeDockerError, UsageError

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

QUERY_TIMEOUT = 60.0
OUTPUT_MAX = 1024 * 1024
_VERSION = re.compile(r"\s*v?(\d+)\.(\d+)")
_DRIVER_LINE = re.compile(r"(?im)^\s*driver\s*:\s*(\S+)\s*$")
_BUILDKIT_LINE = re.compile(r"(?im)^\s*buildkit(?: version)?\s*:\s*v?(\d+)\.(\d+)")


class Kind(enum.Enum):
    """Who reads the command line and the Dockerfile, and how the build is pinned."""

    LEGACY = "the legacy builder"
    BUILDX = "BuildKit (buildx)"
    BUILTIN = "the docker CLI's built-in BuildKit"  # CLI 20.10-22, DOCKER_BUILDKIT=1

    @property
    def grammar(self) -> Builder:
        """Whose command-line options apply."""
        return Builder.BUILDKIT if self is Kind.BUILDX else Builder.LEGACY

    @property
    def reader(self) -> Builder:
        """Who reads the Dockerfile."""
        return Builder.LEGACY if self is Kind.LEGACY else Builder.BUILDKIT

    @property
    def rewrites(self) -> bool:
        """Pinned by a rewritten Dockerfile (no named contexts)."""
        return self is not Kind.BUILDX


class BuildClient(Protocol):
    """What the build path asks the user's docker CLI (tests bring their own)."""

    def cli_version(self) -> tuple[int, int] | None:
        """The docker CLI's major.minor, None when it does not say."""
        ...

    def buildx_installed(self) -> bool: ...

    def builder_alias(self) -> str | None:
        """The docker config's ``aliases.builder``."""
        ...

    def named_contexts(self, builder: str | None) -> bool:
        """Whether the buildx builder's BuildKit honours --build-context (0.10+)."""
        ...

    def proxy_build_args(self) -> tuple[dict[str, str], ...]:
        """The build args each ``proxies`` entry of the docker config would add."""
        ...

    def native_platform(self, builder: str | None) -> bool:
        """Whether the buildx builder is the daemon's own BuildKit (the ``docker``
        driver), whose BUILDPLATFORM and default target are the daemon's platform."""
        ...


class DockerClient:
    """The real docker CLI at ``binary``, with the user's connection and config flags."""

    def __init__(self, binary: str, globals: Sequence[str] = (), *,
                 docker_config: str | None = None,
                 environ: Mapping[str, str] | None = None) -> None:
        self.binary = binary
        self.globals = tuple(globals)
        self.docker_config = docker_config
        self.environ = environ

    @classmethod
    def for_command(cls, binary: str, argv: Sequence[str],
                    environ: Mapping[str, str] | None = None) -> DockerClient:
        given = [o.value for o in global_options(argv) if o.name == "--config"]
        return cls(binary, connection_globals(argv), docker_config=given[-1] if given else None,
                   environ=environ)

    def _run(self, *args: str) -> tuple[int, str]:
        try:
            done = run_bounded((self.binary, *self.globals, *args), what=f"docker {args[0]}",
                               timeout=QUERY_TIMEOUT, max_stdout=OUTPUT_MAX, input=b"",
                               env=self.environ)
        except OSError as e:
            raise SafeDockerError(f"cannot run docker ({self.binary})", why=str(e)) from e
        return done.returncode, done.stdout.decode("utf-8", "replace")

    def cli_version(self) -> tuple[int, int] | None:
        # The client's version is printed even when the daemon does not answer.
        _, out = self._run("version", "--format", "{{.Client.Version}}")
        match = _VERSION.match(out)
        return (int(match[1]), int(match[2])) if match else None

    def buildx_installed(self) -> bool:
        status, _ = self._run("buildx", "version")
        return status == 0

    def _config(self) -> object:
        """config.json as docker reads it (Go: member names case-insensitively, the last
        of a repeated one); one Go and this reader could read two ways is refused."""
        from safedocker._docker.credentials import config_dir

        path = config_dir(self.docker_config, self.environ) / "config.json"
        try:
            with path.open("rb") as handle:
                data = handle.read(OUTPUT_MAX + 1)
        except OSError:
            return None  # no config
        try:
            return strictjson.loads(data, max_bytes=OUTPUT_MAX, go_keys=True)
        except (ValueError, RecursionError):
            pass
        try:
            json.loads(data)
        except (ValueError, RecursionError):
            return None  # one docker itself refuses to read (it warns, and goes on without)
        raise Refused(f"cannot read {path} as docker does",
                      why="it repeats a member, or spells one in two cases",
                      hint="write each member once")

    def builder_alias(self) -> str | None:
        document = self._config()
        aliases = _go_member(document, "aliases")
        builder = aliases.get("builder") if isinstance(aliases, dict) else None
        return builder if isinstance(builder, str) else None

    def proxy_build_args(self) -> tuple[dict[str, str], ...]:
        """docker/cli ParseProxyConfig: the CLI adds HTTP_PROXY & co (and their lower-case
        names) from config.json ``proxies`` (the daemon host's entry, else ``default``) to
        a build's args; one mapping per entry, since which entry applies is the CLI's."""
        document = self._config()
        proxies = _go_member(document, "proxies")
        if not isinstance(proxies, dict):
            return ()
        found: list[dict[str, str]] = []
        for entry in proxies.values():
            args: dict[str, str] = {}
            for field, name in _PROXY_FIELDS:
                value = _go_member(entry, field)
                if isinstance(value, str) and value:
                    args[name] = args[name.lower()] = value
            if args:
                found.append(args)
        return tuple(found)

    def _inspect(self, builder: str | None) -> str | None:
        status, out = self._run("buildx", *(("--builder", builder) if builder else ()),
                                "inspect")
        return out if status == 0 else None

    def named_contexts(self, builder: str | None) -> bool:
        out = self._inspect(builder)
        match = _BUILDKIT_LINE.search(out) if out is not None else None
        return match is not None and (int(match[1]), int(match[2])) >= (0, 10)

    def native_platform(self, builder: str | None) -> bool:
        # Another driver (docker-container, kubernetes, remote) runs BuildKit with its own
        # worker platforms: `buildx create --platform linux/arm64` on an amd64 host too.
        out = self._inspect(builder)
        match = _DRIVER_LINE.search(out) if out is not None else None
        return match is not None and match[1] == "docker"


_PROXY_FIELDS = (("httpProxy", "HTTP_PROXY"), ("httpsProxy", "HTTPS_PROXY"),
                 ("noProxy", "NO_PROXY"), ("ftpProxy", "FTP_PROXY"), ("allProxy", "ALL_PROXY"))


def _go_member(document: object, name: str) -> object:
    """``document[name]`` as Go's encoding/json finds it (case-insensitively)."""
    if not isinstance(document, dict):
        return None
    wanted = strictjson.go_fold(name)
    return next((v for k, v in document.items() if strictjson.go_fold(k) == wanted), None)


def choose_builder(command: Sequence[str], env: Mapping[str, str],
                   client: BuildClient) -> Kind:
    """The builder docker will use for ``command`` (``("build",)``, ``("buildx", "build")``)."""
    if command[0] == "buildx":
        return Kind.BUILDX
    version = client.cli_version()
    alias = client.builder_alias()
    if version is not None and version < (23, 0):
        # cmd/docker/docker.go processAliases (20.10): the alias wins over DOCKER_BUILDKIT.
        if alias is not None:
            if alias != "buildx":
                raise UsageError(f"the docker builder alias {alias!r} is not buildx",
                                 hint="safe-docker knows the build options of buildx and the "
                                      "legacy builder")
            return Kind.BUILDX
        value = env.get("DOCKER_BUILDKIT", "")
        enabled = parse_bool(value) if value else None
        if value and enabled is None:
            raise UsageError(f"DOCKER_BUILDKIT environment variable expects boolean value: "
                             f"{value!r}")
        if enabled is None:
            raise Refused("cannot tell which builder docker will use",
                          why=f"docker CLI {version[0]}.{version[1]} asks the daemon's "
                              "configuration when DOCKER_BUILDKIT is not set",
                          hint="set DOCKER_BUILDKIT=0 (the legacy builder) or "
                               "DOCKER_BUILDKIT=1 (BuildKit)")
        return Kind.BUILTIN if enabled else Kind.LEGACY
    builder = select_builder(command, env, buildx_installed=client.buildx_installed(),
                             builder_alias=alias)
    return Kind.BUILDX if builder is Builder.BUILDKIT else Kind.LEGACY
