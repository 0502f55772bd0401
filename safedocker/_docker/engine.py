"""ONE way to talk to the docker daemon: the user's docker CLI, with the user's global flags.

The daemon a command means is the one its docker CLI would reach: ``-H/--host``,
``--context``, ``--config`` and the TLS flags of the user's command line, else
DOCKER_HOST, DOCKER_CONTEXT and the rest of the environment, as docker itself reads
them. So every question safe-docker asks the daemon (an image's ID, tagging, loading, the
daemon's facts) goes through that CLI with those flags; nothing else (no engine API
client of our own) can end up asking another daemon.

``DockerEngine`` is what the rest of safe-docker needs; :class:`DockerCLI` is the
implementation, and tests may bring their own. Standard library only.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any, Protocol

from safedocker._docker.argv import global_options
from safedocker._internal import strictjson
from safedocker._internal.processes import Finished, OutputTooLarge, run_bounded
from safedocker.errors import SafeDockerError, reason_of

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from pathlib import Path

QUERY_TIMEOUT = 60.0  # inspect, tag, info, version: quick questions, bounded
# pull, save, load: as long as moving many gigabytes may take, but not for ever.
TRANSFER_TIMEOUT = 2 * 3600.0
INFO_MAX = 4 * 1024 * 1024
OUTPUT_MAX = INFO_MAX  # what one docker command may print before it is stopped
ENGINE_HINT = "check that the docker daemon is running and answering (`docker info`)"
# The global flags that choose the daemon and how to reach it (docker/cli's flags).
CONNECTION_FLAGS = frozenset({"--host", "--context", "--config", "--tls", "--tlsverify",
                              "--tlscacert", "--tlscert", "--tlskey"})


@dataclass(frozen=True)
class EngineInfo:
    """What ``docker info`` says about the daemon; ``raw`` is its whole answer."""

    raw: Mapping[str, Any]

    def _text(self, key: str) -> str:
        value = self.raw.get(key)
        return value if isinstance(value, str) else ""

    @property
    def os_type(self) -> str:
        """``linux`` or ``windows``: the OS of the images the daemon runs."""
        return self._text("OSType")

    @property
    def architecture(self) -> str:
        """The daemon host's machine as ``uname -m`` says it (``x86_64``, ``aarch64``)."""
        return self._text("Architecture")

    @property
    def server_version(self) -> str:
        return self._text("ServerVersion")


@dataclass(frozen=True)
class LocalImage:
    """An image the daemon has: its ID (``sha256:<config digest>``), the names docker
    keeps for it (``repo:tag``, ``repo@sha256:<manifest>``) and its run config (``Env``,
    ``Labels``…; None when it has none), as ``image inspect`` says."""

    id: str
    repo_tags: tuple[str, ...] = ()
    repo_digests: tuple[str, ...] = ()
    config: Mapping[str, Any] | None = field(default=None, compare=False, hash=False)


@dataclass(frozen=True)
class ServerPlatform:
    """What the daemon pulls for: its Go os and architecture (``docker version``'s Server
    Os/Arch) and, for ARM only, its machine (``docker info``'s Architecture: the variant)."""

    os: str
    arch: str
    machine: str = ""


class DockerEngine(Protocol):
    """What safe-docker asks the daemon; raises :class:`SafeDockerError` when docker fails."""

    def image_id(self, reference: str) -> str | None:
        """The ID of the local image ``reference`` names, or None when docker has none."""
        ...

    def inspect_image(self, reference: str, *, config: bool = False) -> LocalImage | None:
        """The local image ``reference`` names as docker resolves it (a name, then an ID
        or ID prefix), or None when docker has none; its run config only with ``config``
        (it may be megabytes: whether an image is present must not hang on its size)."""
        ...

    def server_platform(self) -> ServerPlatform:
        """The daemon's platform; raises :class:`SafeDockerError` when docker cannot say."""
        ...

    def tag(self, source: str, target: str) -> None: ...

    def pull(self, reference: str) -> None: ...

    def save(self, output: Path, images: Sequence[str]) -> None: ...

    def load(self, archive: Path | IO[bytes]) -> None:
        """``docker load`` of a file, or of a stream given on its standard input."""
        ...

    def info(self) -> EngineInfo: ...

    def server_version(self) -> str: ...


@dataclass(frozen=True)
class _Answer:
    """What a docker command said, as text."""

    returncode: int
    stdout: str
    stderr: str

    @classmethod
    def of(cls, done: Finished) -> _Answer:
        return cls(done.returncode, done.stdout.decode("utf-8", "replace"),
                   done.stderr.decode("utf-8", "replace"))


def connection_globals(argv: Sequence[str]) -> tuple[str, ...]:
    """The global flags of a docker command line that choose the daemon, as ``--name=value``
    (``docker -H x -D run …`` → ``("--host=x",)``)."""
    return tuple(option.name if option.value is None else f"{option.name}={option.value}"
                 for option in global_options(argv) if option.name in CONNECTION_FLAGS)


class DockerCLI:
    """The daemon through the real docker CLI at ``binary``, run with ``globals`` first."""

    def __init__(self, binary: str, globals: Sequence[str] = (), *,
                 environ: Mapping[str, str] | None = None,
                 query_timeout: float = QUERY_TIMEOUT) -> None:
        self.binary = binary
        self.query_timeout = query_timeout
        self.globals = tuple(globals)
        self._environ = None if environ is None else dict(environ)
        self.calls: list[tuple[str, ...]] = []  # every command run, for tests and debugging

    @classmethod
    def for_command(cls, binary: str, argv: Sequence[str]) -> DockerCLI:
        """The engine a user's docker command line (without the program name) talks to."""
        return cls(binary, connection_globals(argv))

    def _run(self, *args: str, check: bool = True, timeout: float | None = None,
             stdin: IO[bytes] | None = None) -> _Answer:
        """docker with our globals; every run has an end (TimedOut, exit 69; default: the
        quick-question timeout) and a cap on what it may print."""
        timeout = self.query_timeout if timeout is None else timeout
        command = (self.binary, *self.globals, *args)
        self.calls.append(command)
        try:
            done = run_bounded(command, what=f"docker {args[0]}", timeout=timeout,
                               max_stdout=OUTPUT_MAX, stdin=stdin, env=self._environ,
                               hint=ENGINE_HINT)
        except OutputTooLarge as e:
            raise SafeDockerError(f"docker {args[0]} failed", why=f"it printed {e.why}") from e
        except OSError as e:
            raise SafeDockerError(f"cannot run docker ({self.binary})", why=reason_of(e)) from e
        proc = _Answer.of(done)
        if check and proc.returncode != 0:
            last = ((proc.stderr or "").strip().splitlines() or ["no message"])[-1]
            raise SafeDockerError(f"docker {args[0]} failed", why=last[:500])
        return proc

    def image_id(self, reference: str) -> str | None:
        proc = self._run("image", "inspect", "--format", "{{.Id}}", reference, check=False)
        return proc.stdout.strip() if proc.returncode == 0 else None

    def image_names(self) -> tuple[str, ...]:
        """The ``repo:tag`` names of the local images (dangling and digest-only ones have
        none), as ``docker image ls`` lists them, each once."""
        proc = self._run("image", "ls", "--format", "[{{json .Repository}},{{json .Tag}}]")
        names: list[str] = []
        for line in proc.stdout.splitlines():
            try:
                pair = strictjson.loads(line.encode(), max_bytes=INFO_MAX) if line else None
            except (ValueError, RecursionError) as e:
                raise SafeDockerError("docker image ls failed",
                                      why="its answer is not JSON") from e
            if isinstance(pair, list) and len(pair) == 2 and all(
                    isinstance(v, str) and v and v != "<none>" for v in pair):
                names.append(f"{pair[0]}:{pair[1]}")
        return tuple(dict.fromkeys(names))

    def inspect_image(self, reference: str, *, config: bool = False) -> LocalImage | None:
        fields = "{{json .Id}},{{json .RepoTags}},{{json .RepoDigests}}"
        if config:
            fields += ",{{json .Config}}"
        proc = self._run("image", "inspect", "--format", f"[{fields}]", reference,
                         check=False)
        if proc.returncode != 0:
            return None
        try:
            found = strictjson.loads(proc.stdout.encode(), max_bytes=INFO_MAX)
        except (ValueError, RecursionError) as e:
            raise SafeDockerError("docker image inspect failed",
                                  why="its answer is not JSON") from e
        if not (isinstance(found, list) and len(found) == 3 + config
                and isinstance(found[0], str)):
            raise SafeDockerError("docker image inspect failed", why="unexpected answer")

        def names(value: object) -> tuple[str, ...]:
            return tuple(v for v in value if isinstance(v, str)) if isinstance(value, list) \
                else ()

        run_config = found[3] if config and isinstance(found[3], dict) else None
        return LocalImage(found[0], names(found[1]), names(found[2]), run_config)

    def server_platform(self) -> ServerPlatform:
        proc = self._run("version", "--format", "[{{json .Server.Os}},{{json .Server.Arch}}]",
                         check=False)
        said = (proc.stderr or proc.stdout or "").strip().splitlines() or ["no message"]
        if proc.returncode != 0:
            raise SafeDockerError("cannot tell the daemon's platform",
                                  why=f"docker version failed: {said[-1][:300]}",
                                  hint="choose one with --platform")
        try:
            found = strictjson.loads(proc.stdout.encode(), max_bytes=INFO_MAX)
        except (ValueError, RecursionError) as e:
            raise SafeDockerError("cannot tell the daemon's platform",
                                  why="docker version's answer is not JSON") from e
        if not (isinstance(found, list) and len(found) == 2
                and all(isinstance(v, str) and v for v in found)):
            raise SafeDockerError("cannot tell the daemon's platform",
                                  why="docker version names no os and architecture",
                                  hint="choose one with --platform")
        os_name, arch = str(found[0]), str(found[1])
        # The ARM variant is the daemon host's CPU: only `docker info` says it (uname -m).
        machine = self.info().architecture if arch == "arm" else ""
        return ServerPlatform(os_name, arch, machine)

    def tag(self, source: str, target: str) -> None:
        self._run("tag", source, target)

    def pull(self, reference: str) -> None:
        self._run("pull", "--quiet", reference, timeout=TRANSFER_TIMEOUT)

    def save(self, output: Path, images: Sequence[str]) -> None:
        self._run("save", "-o", str(output), *images, timeout=TRANSFER_TIMEOUT)

    def load(self, archive: Path | IO[bytes]) -> None:
        if isinstance(archive, (str, os.PathLike)):
            self._run("load", "--quiet", "--input", str(archive), timeout=TRANSFER_TIMEOUT)
        else:
            self._run("load", "--quiet", timeout=TRANSFER_TIMEOUT, stdin=archive)

    def info(self) -> EngineInfo:
        proc = self._run("info", "--format", "{{json .}}", check=False)
        if proc.returncode != 0:
            said = (proc.stderr or proc.stdout or "").strip().splitlines() or ["no message"]
            raise SafeDockerError("docker info failed", why=said[-1][:500])
        try:
            raw = strictjson.loads(proc.stdout.encode(), max_bytes=INFO_MAX)
        except (ValueError, RecursionError) as e:
            raise SafeDockerError("docker info failed", why="its answer is not JSON") from e
        if not isinstance(raw, dict):
            raise SafeDockerError("docker info failed", why="its answer is not an object")
        return EngineInfo(raw)

    def plugin_reference(self, name: str) -> str | None:
        """The reference the installed plugin ``name`` was pulled from, or None."""
        proc = self._run("plugin", "inspect", "--format", "{{.PluginReference}}", "--", name,
                         check=False)
        return proc.stdout.strip() or None if proc.returncode == 0 else None

    def server_version(self) -> str:
        """The daemon's version; the error's ``why`` is what docker said."""
        proc = self._run("version", "--format", "{{.Server.Version}}", check=False,
                         timeout=20.0)
        detail = proc.stdout.strip() or proc.stderr.strip()
        if proc.returncode != 0:
            raise SafeDockerError("docker version failed", why=detail)
        return detail
