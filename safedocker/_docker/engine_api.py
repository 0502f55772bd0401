"""The Engine API over a unix socket: the hot questions without a second docker process.

Used only when the user's docker command reaches its daemon through a unix socket, found
as the docker CLI finds it: ``-H``, else ``--context``, else DOCKER_HOST, else
DOCKER_CONTEXT, else the docker config's ``currentContext`` (its endpoint in
``contexts/meta/<sha256(name)>/meta.json``), else ``/var/run/docker.sock``. Anything
else (tcp, ssh, TLS, a context we cannot read) answers None, and the caller uses the
docker CLI (:mod:`safedocker._docker.engine`). Standard library only; every call has a
timeout and a cap on what it reads.
"""

from __future__ import annotations

import os

from safedocker._internal.lean import NamedTuple, loads, sha256
from safedocker._internal.minihttp import Connection, HttpFailed, form, quote, unix

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

API_TIMEOUT = 10.0
ANSWER_MAX = 4 * 1024 * 1024
DEFAULT_SOCKET = "/var/run/docker.sock"
_TLS_FLAGS = frozenset({"--tls", "--tlsverify", "--tlscacert", "--tlscert", "--tlskey"})
META_MAX = 1024 * 1024


class EngineUnanswered(Exception):
    """The socket did not answer as expected; the caller falls back to the docker CLI."""


class ImageNames(NamedTuple):
    """An image the daemon has: its ID and names (as engine.py's LocalImage)."""

    id: str
    repo_tags: tuple[str, ...] = ()
    repo_digests: tuple[str, ...] = ()


def _config_dir(config: str | None, env: Mapping[str, str]) -> str:
    """Where the docker CLI reads its config: --config, DOCKER_CONFIG, ~/.docker."""
    chosen = config or env.get("DOCKER_CONFIG")
    return chosen if chosen else os.path.join(os.path.expanduser("~"), ".docker")


def unix_socket(argv: Sequence[str], environ: Mapping[str, str] | None = None) -> str | None:
    """The unix socket path the docker command ``argv`` reaches, or None (see module)."""
    return socket_for(global_options_of(argv), environ)


def global_options_of(argv: Sequence[str]) -> tuple[tuple[str, str | None], ...]:
    """docker's global options in ``argv`` as (name, value): all :func:`socket_for` reads."""
    from safedocker._docker.argv import global_options

    return tuple((option.name, option.value) for option in global_options(argv))


def socket_for(options: Iterable[tuple[str, str | None]],
               environ: Mapping[str, str] | None = None) -> str | None:
    """:func:`unix_socket` from the global options already read (the express path keeps
    them; the docker config and contexts it names are read again every time)."""
    env = os.environ if environ is None else environ
    hosts: list[str] = []
    context = config = None
    for name, value in options:
        if name in _TLS_FLAGS:
            return None
        if name == "--host" and value is not None:
            hosts.append(value)
        elif name == "--context":
            context = value
        elif name == "--config":
            config = value
    if env.get("DOCKER_TLS_VERIFY") or env.get("DOCKER_CERT_PATH") or len(hosts) > 1:
        return None
    if hosts and context:
        return None  # docker refuses -H together with --context
    if hosts:
        return _unix_path(hosts[0])
    if context is None and env.get("DOCKER_HOST"):
        return _unix_path(env["DOCKER_HOST"])
    if context is None:
        context = env.get("DOCKER_CONTEXT") or _current_context(config, env)
    if context in (None, "", "default"):
        return DEFAULT_SOCKET
    return _context_socket(context, config, env)


def _unix_path(host: str) -> str | None:
    if not host.startswith("unix://"):
        return None
    path = host[len("unix://"):]
    return path or None


def _read_json(path: str) -> object:
    try:
        with open(path, "rb") as f:
            data = f.read(META_MAX + 1)
    except FileNotFoundError:
        return {}
    except OSError:
        return None
    if len(data) > META_MAX:
        return None
    try:
        return loads(data)
    except (ValueError, RecursionError):  # docker reads nesting Python cannot: not ours to read
        return None


def _current_context(config: str | None, env: Mapping[str, str]) -> str | None:
    document = _read_json(os.path.join(_config_dir(config, env), "config.json"))
    if not isinstance(document, dict):
        return "?"  # unreadable: not the default, and no context of that name
    current = document.get("currentContext")
    return current if isinstance(current, str) else None


def _context_socket(name: str, config: str | None, env: Mapping[str, str]) -> str | None:
    digest = sha256(name.encode()).hexdigest()
    base = os.path.join(_config_dir(config, env), "contexts")
    if os.path.exists(os.path.join(base, "tls", digest)):
        return None
    meta = _read_json(os.path.join(base, "meta", digest, "meta.json"))
    if not isinstance(meta, dict):
        return None
    endpoints = meta.get("Endpoints")
    docker = endpoints.get("docker") if isinstance(endpoints, dict) else None
    host = docker.get("Host") if isinstance(docker, dict) else None
    if not isinstance(host, str) or (isinstance(docker, dict) and docker.get("SkipTLSVerify")):
        return None
    return _unix_path(host)


# Go architectures whose platform has no variant: the daemon's /version says all of it.
_PLAIN_ARCHES = frozenset({"amd64", "386", "ppc64le", "s390x", "riscv64", "mips64le"})


def daemon_platform(engine: EngineSocket) -> str | None:
    """The platform the daemon pulls for, as a verdict key spells it (``daemon:os/arch``),
    or None when /version cannot say all of it (an arch with variants)."""
    version = engine.version()
    os_name, arch = version.get("Os"), version.get("Arch")
    if not isinstance(os_name, str) or not isinstance(arch, str) or arch not in _PLAIN_ARCHES:
        return None
    return f"daemon:{os_name}/{arch}"


class EngineSocket:
    """The daemon at a unix socket: inspect an image, tag it, its version."""

    def __init__(self, path: str, *, timeout: float = API_TIMEOUT) -> None:
        self.path = path
        self._conn = Connection(unix(path, timeout), "docker")
        self.requests_made = 0
        self._asked: str | None = None  # a GET sent by ask_image, its answer not yet read

    def close(self) -> None:
        self._conn.close()

    def _request(self, method: str, path: str) -> tuple[int, bytes]:
        self.requests_made += 1
        try:
            if self._asked is not None:
                raise HttpFailed("an asked question is not answered yet")
            answer = self._conn.request(method, path, body_max=ANSWER_MAX)
        except HttpFailed as e:
            raise EngineUnanswered(f"{method} {path}: {e}") from e
        return answer.status, answer.body

    def _json(self, path: str, answered: tuple[int, bytes] | None = None
              ) -> dict[str, object] | None:
        status, body = self._request("GET", path) if answered is None else answered
        if status == 404:
            return None
        if status != 200:
            raise EngineUnanswered(f"GET {path}: status {status}")
        try:
            found = loads(body)
        except (ValueError, RecursionError) as e:
            raise EngineUnanswered(f"GET {path}: not JSON") from e
        if not isinstance(found, dict):
            raise EngineUnanswered(f"GET {path}: not an object")
        return found

    @staticmethod
    def _image_path(reference: str) -> str:
        return f"/images/{quote(reference, safe='/:@')}/json"

    def ask_image(self, reference: str) -> None:
        """Send :meth:`inspect_image`'s question now and read the answer when it is called
        (the daemon answers while the registry is asked)."""
        self.requests_made += 1
        try:
            self._conn.send("GET", self._image_path(reference))
        except HttpFailed as e:
            raise EngineUnanswered(f"GET image {reference}: {e}") from e
        self._asked = reference

    def inspect_image(self, reference: str) -> ImageNames | None:
        """The local image ``reference`` names (as ``docker image inspect``), or None."""
        path = self._image_path(reference)
        answered = None
        if self._asked is not None:
            if self._asked != reference:
                raise EngineUnanswered("another image's question is unanswered")
            self._asked = None
            try:
                answer = self._conn.receive("GET", body_max=ANSWER_MAX)
            except HttpFailed as e:
                raise EngineUnanswered(f"GET {path}: {e}") from e
            answered = (answer.status, answer.body)
        found = self._json(path, answered)
        if found is None:
            return None
        image_id = found.get("Id")
        if not isinstance(image_id, str):
            raise EngineUnanswered("image inspect: no Id")

        def names(value: object) -> tuple[str, ...]:
            return tuple(v for v in value if isinstance(v, str)) if isinstance(value, list) \
                else ()

        return ImageNames(image_id, names(found.get("RepoTags")),
                          names(found.get("RepoDigests")))

    def tag(self, source: str, repository: str, tag: str) -> None:
        """``docker tag SOURCE repository:tag``."""
        query = form({"repo": repository, "tag": tag})
        status, _ = self._request("POST", f"/images/{quote(source, safe='/:@')}/tag?{query}")
        if status != 201:
            raise EngineUnanswered(f"tag: status {status}")

    def version(self) -> Mapping[str, object]:
        found = self._json("/version")
        if found is None:
            raise EngineUnanswered("version: not found")
        return found
