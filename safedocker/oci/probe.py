"""What the warm and express paths ask a registry: manifests' digests by HEAD (minihttp).

Standard library only (the verdict cache's hit path imports this and nothing heavy). A
Bearer token is fetched once per (registry, docker config, scope) and kept until it
expires in ``tokens.json`` in the cache dir (mode 0600, never logged). Anything this
small client does not handle (identity tokens, redirects, odd answers) is a
:class:`ProbeFailed`: the caller then takes the full path, which does.
"""

from __future__ import annotations

import os
import time

from safedocker._internal.lean import loads, sha256
from safedocker._internal.minihttp import Connection, HttpFailed, form, quote, tcp
from safedocker.oci.hosts import api_host
from safedocker.oci.media import MANIFEST_ACCEPT, TOKEN_RESPONSE_MAX

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from pathlib import Path

PROBE_TIMEOUT = 5.0  # one request; the warm path makes a handful, the full path may retry
# A proxy is the full path's (requests honours these variables); the warm path never
# bypasses one.
PROXY_VARIABLES = ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "https_proxy", "http_proxy",
                   "all_proxy")
TOKENS_NAME = "tokens.json"
TOKENS_MAX = 256 * 1024
TOKENS_KEPT = 64
_COSIGN_ACCEPT = MANIFEST_ACCEPT
PARALLEL_MAX = 4  # connections to one registry at once


def _named(path: str, status: int, answer: Mapping[str, str]) -> tuple[str, str] | None:
    """A HEAD's answer: (digest, media type), None for 404, else ProbeFailed."""
    if status == 404:
        return None
    digest = answer.get("docker-content-digest", "")
    if status != 200 or not digest.startswith("sha256:") or len(digest) != 71:
        raise ProbeFailed(f"HEAD {path}: status {status}")
    return digest, answer.get("content-type", "").split(";")[0].strip()


class ProbeFailed(Exception):
    """The registry's answer is not one the warm path understands: take the full path."""


class TokenCache:
    """Bearer tokens by (registry, docker config, scope), on disk with their expiry."""

    def __init__(self, cache_dir: str | Path) -> None:
        self.path = os.path.join(cache_dir, TOKENS_NAME)

    def _load(self) -> dict[str, dict[str, object]]:
        try:
            with open(self.path, "rb") as f:
                if os.fstat(f.fileno()).st_mode & 0o077:
                    return {}  # readable by others: not ours, never trusted
                data = f.read(TOKENS_MAX + 1)
            found = loads(data) if len(data) <= TOKENS_MAX else {}
        except (OSError, ValueError, RecursionError):
            return {}
        return found if isinstance(found, dict) else {}

    @staticmethod
    def key(registry: str, docker_config: str, scope: str) -> str:
        return sha256(f"{registry}\0{docker_config}\0{scope}".encode()).hexdigest()

    def get(self, key: str, now: float) -> str | None:
        entry = self._load().get(key)
        if not isinstance(entry, dict):
            return None
        token, expires = entry.get("token"), entry.get("expires_at")
        if isinstance(token, str) and isinstance(expires, (int, float)) and expires > now:
            return token
        return None

    def put(self, key: str, token: str, expires_at: float, now: float) -> None:
        entries = {k: v for k, v in self._load().items()
                   if isinstance(v, dict) and isinstance(v.get("expires_at"), (int, float))
                   and float(v["expires_at"]) > now}  # type: ignore[arg-type]
        entries[key] = {"token": token, "expires_at": expires_at}
        newest = sorted(entries.items(), key=lambda kv: -float(kv[1]["expires_at"]))  # type: ignore[arg-type]
        import json  # only when a token was fetched
        from pathlib import Path

        from safedocker._internal.files import atomic_write

        try:
            atomic_write(Path(self.path), json.dumps(dict(newest[:TOKENS_KEPT])).encode(),
                         mode=0o600)
        except OSError:
            pass  # a token not kept only costs the next hit a token request


class RegistryProbe:
    """HEAD requests to one registry on one kept-alive connection."""

    def __init__(self, registry: str, scheme: str, *, tokens: TokenCache | None = None,
                 docker_config: str | None = None, timeout: float = PROBE_TIMEOUT) -> None:
        if scheme not in ("http", "https"):
            raise ProbeFailed(f"scheme {scheme!r}")
        if any(os.environ.get(name) for name in PROXY_VARIABLES):
            raise ProbeFailed("a proxy is configured")
        self.registry = registry
        self.scheme = scheme
        self.host = api_host(registry)
        self.tokens = tokens
        self.docker_config = docker_config
        self.timeout = timeout
        self.requests_made = 0
        # The CAs dockerd trusts for this registry besides the system's (its certs.d), for
        # its token service too, as docker's one transport per registry does.
        self._cas: tuple[str, ...] = ()
        if scheme == "https":  # an http hit need not load the module
            from safedocker.oci.certs import registry_cas

            self._cas = registry_cas(self.host)
        self._conn = self._connection(self.host, scheme)
        self._auth: dict[str, str] = {}  # scope -> Authorization header value
        self._extra: list[Connection] = []  # side-by-side connections not yet closed

    def _connection(self, netloc: str, scheme: str) -> Connection:
        if netloc.startswith("["):  # an IPv6 address, as a reference writes one: [::1]:5000
            host, _, rest = netloc[1:].partition("]")
            port = rest[1:] if rest.startswith(":") else rest
        else:
            host, _, port = netloc.rpartition(":") if ":" in netloc else (netloc, "", "")
        # A port as Go dials one: ASCII digits, 1 to 65535 (getaddrinfo would take 99999
        # modulo 65536, and raise OverflowError past a C long).
        if port and not (port.isascii() and port.isdigit() and len(port) <= 5
                         and 0 < int(port) < 65536):
            raise ProbeFailed(f"{netloc!r}: not host[:port]")
        number = int(port) if port else (443 if scheme == "https" else 80)
        return Connection(tcp(host, number, self.timeout, tls=scheme == "https",
                              cas=self._cas), netloc)

    def close(self) -> None:
        self._close_extra()
        self._conn.close()

    def _send(self, method: str, path: str, headers: dict[str, str]) -> tuple[int, dict[str, str]]:
        self.requests_made += 1
        try:
            answer = self._conn.request(method, path, headers, body_max=TOKEN_RESPONSE_MAX)
        except HttpFailed as e:
            raise ProbeFailed(f"{method} {self.host}: {e}") from e
        return answer.status, dict(answer.headers)

    @staticmethod
    def _manifest_path(repository: str, reference: str) -> str:
        return f"/v2/{quote(repository, safe='/')}/manifests/{quote(reference, safe=':')}"

    def _headers(self, scope: str) -> dict[str, str]:
        headers = {"Accept": _COSIGN_ACCEPT}
        if scope not in self._auth:
            self._keep_token(scope)
        if scope in self._auth:
            headers["Authorization"] = self._auth[scope]
        return headers

    def _token_key(self, scope: str) -> str:
        return TokenCache.key(self.registry, self.docker_config or
                              os.environ.get("DOCKER_CONFIG", ""), scope)

    def _keep_token(self, scope: str) -> None:
        """Send a Bearer token kept from an earlier run (for this registry, docker config
        and scope, unexpired) with the first question: a registry that asks for one
        (Docker Hub) then answers at once, not after a 401 and a second round trip. One
        it no longer takes is a 401 sent with a token: a failed probe (the full path)."""
        if self.tokens is not None:
            token = self.tokens.get(self._token_key(scope), time.time())
            if token is not None:
                self._auth[scope] = f"Bearer {token}"

    def manifest_digest(self, repository: str, reference: str) -> tuple[str, str] | None:
        """(digest, media type) the registry names for ``repository:reference``; None when
        it has no such manifest."""
        path = self._manifest_path(repository, reference)
        scope = f"repository:{repository}:pull"
        headers = self._headers(scope)
        status, answer = self._send("HEAD", path, headers)
        if status == 401 and "Authorization" not in headers:
            headers["Authorization"] = self._authorize(answer, scope)
            status, answer = self._send("HEAD", path, headers)
        return _named(path, status, answer)

    @property
    def at_once(self) -> int:
        """How many questions go out before an answer is read. Over TLS, one: each further
        connection is set up after the last (its handshake a round trip of its own, and a
        key exchange), which costs more than asking on the kept-alive one in turn."""
        return PARALLEL_MAX if self.scheme == "http" else 1

    def manifest_digests(self, wanted: Sequence[tuple[str, str]]
                         ) -> list[tuple[str, str] | None]:
        """:meth:`manifest_digest` of each (repository, reference), asked side by side over
        http: each question after the first on a connection of its own (at most
        PARALLEL_MAX at once), every question sent before any answer is read; over https
        one after another on the kept-alive connection (:attr:`at_once`). One that needs a
        token first is asked again on the kept-alive connection, as manifest_digest asks
        it."""
        return self.ask(wanted).answers()

    def ask(self, wanted: Sequence[tuple[str, str]]) -> Asked:
        """Send the questions of :meth:`manifest_digests` now (the first :attr:`at_once` of
        them) and read their answers at :meth:`Asked.answers`: the caller's own work runs
        while the registry answers. :meth:`close` closes what was never read."""
        return Asked(self, wanted)

    def _send_batch(self, wanted: Sequence[tuple[str, str]]
                    ) -> list[tuple[Connection, str, bool]]:
        """Each question sent, the first on the kept-alive connection and each other on
        one of its own: (connection, path, sent with a token)."""
        sent: list[tuple[Connection, str, bool]] = []
        try:
            for i, (repository, reference) in enumerate(wanted):
                conn = self._conn if i == 0 else self._connection(self.host, self.scheme)
                if i:
                    self._extra.append(conn)
                path = self._manifest_path(repository, reference)
                headers = self._headers(f"repository:{repository}:pull")
                self.requests_made += 1
                conn.send("HEAD", path, headers)
                sent.append((conn, path, "Authorization" in headers))
        except HttpFailed as e:
            self._close_extra()
            raise ProbeFailed(f"HEAD {self.host}: {e}") from e
        return sent

    def _receive_batch(self, sent: Sequence[tuple[Connection, str, bool]],
                       wanted: Sequence[tuple[str, str]]) -> list[tuple[str, str] | None]:
        found: list[tuple[str, str] | None] = []
        again: list[int] = []  # asked without a token and answered 401
        try:
            for conn, path, authorized in sent:  # one each of wanted, in its order
                answer = conn.receive("HEAD", body_max=TOKEN_RESPONSE_MAX)
                if answer.status == 401 and not authorized:
                    again.append(len(found))
                    found.append(None)
                else:
                    found.append(_named(path, answer.status, dict(answer.headers)))
        except HttpFailed as e:
            raise ProbeFailed(f"HEAD {self.host}: {e}") from e
        finally:
            self._close_extra()
        # Once the batch's connections are closed: the token service is asked on one more,
        # which would make PARALLEL_MAX + 1 at once.
        for i in again:
            found[i] = self.manifest_digest(*wanted[i])
        return found

    def _close_extra(self) -> None:
        for conn in self._extra:
            conn.close()
        self._extra.clear()

    def _authorize(self, answer: Mapping[str, str], scope: str) -> str:
        from safedocker._docker.credentials import lookup
        from safedocker._internal.encoding import b64encode
        from safedocker.errors import SafeDockerError
        from safedocker.oci.auth import parse_challenge

        challenge = parse_challenge(answer.get("www-authenticate", ""))
        if challenge is None:
            raise ProbeFailed("401 without a usable challenge")
        try:
            creds = lookup(self.registry, self.docker_config)
        except SafeDockerError as e:
            raise ProbeFailed("credentials") from e
        if creds is not None and creds.identity_token:
            raise ProbeFailed("identity tokens are the full path's")
        basic = None
        if creds is not None and creds.password is not None:
            basic = "Basic " + b64encode(f"{creds.username}:{creds.password}".encode())
        if challenge.scheme == "basic":
            if basic is None:
                raise ProbeFailed("basic auth without credentials")
            self._auth[scope] = basic
            return basic
        now = time.time()
        key = self._token_key(scope)
        token = self.tokens.get(key, now) if self.tokens is not None else None
        if token is None:
            token, expires_at = self._fetch_token(challenge.params, scope, basic, now)
            if self.tokens is not None:
                self.tokens.put(key, token, expires_at, now)
        self._auth[scope] = f"Bearer {token}"
        return self._auth[scope]

    def _fetch_token(self, params: Mapping[str, str], scope: str, basic: str | None,
                     now: float) -> tuple[str, float]:
        realm = params.get("realm", "")
        from urllib.parse import urlsplit  # only when a token is fetched

        parts = urlsplit(realm)
        if parts.scheme != "https" and not (parts.scheme == "http" and self.scheme == "http"
                                            and parts.netloc == self.host):
            raise ProbeFailed("token realm is not one the warm path uses")
        query = {"scope": scope}
        service = params.get("service")
        if service:
            query["service"] = service
        conn = self._connection(parts.netloc, parts.scheme)
        headers = {"Authorization": basic} if basic else {}
        target = (parts.path or "/") + "?" + (parts.query + "&" if parts.query else "") + \
            form(query)
        self.requests_made += 1
        try:
            answer = conn.request("GET", target, headers, body_max=TOKEN_RESPONSE_MAX)
        except HttpFailed as e:
            raise ProbeFailed("token service") from e
        finally:
            conn.close()
        status, body = answer.status, answer.body
        if status != 200:
            raise ProbeFailed(f"token service status {status}")
        try:
            doc = loads(body)
        except (ValueError, RecursionError) as e:  # nesting deeper than Python reads
            raise ProbeFailed("token service answered no JSON") from e
        if not isinstance(doc, dict):
            raise ProbeFailed("token service answered no token")
        value = doc.get("token") or doc.get("access_token")
        if not isinstance(value, str) or not value:
            raise ProbeFailed("token service answered no token")
        return value, now + max(_lifetime(doc.get("expires_in")), 60.0) - 10.0


_INFINITY = float("inf")


def _lifetime(expires_in: object) -> float:
    """A token's ``expires_in`` in seconds (60 when not given); one no float holds (an
    integer of hundreds of digits: OverflowError) or not finite fails the probe, as Go's
    JSON reader fails docker's token request on it."""
    if not isinstance(expires_in, (int, float)) or isinstance(expires_in, bool):
        return 60.0
    try:
        lifetime = float(expires_in)
    except OverflowError as e:
        raise ProbeFailed("token service answered no usable lifetime") from e
    if not -_INFINITY < lifetime < _INFINITY:  # inf or NaN
        raise ProbeFailed("token service answered no usable lifetime")
    return lifetime


class Asked:
    """Questions :meth:`RegistryProbe.ask` sent; :meth:`answers` reads their answers (and
    asks any past the first :attr:`RegistryProbe.at_once` in turn, as many at once), once."""

    def __init__(self, probe: RegistryProbe, wanted: Sequence[tuple[str, str]]) -> None:
        self._probe = probe
        self._wanted = list(wanted)
        self._size = probe.at_once
        self._sent = probe._send_batch(self._wanted[:self._size])

    def answers(self) -> list[tuple[str, str] | None]:
        probe, wanted, size = self._probe, self._wanted, self._size
        found = probe._receive_batch(self._sent, wanted[:size])
        for start in range(size, len(wanted), size):
            batch = wanted[start:start + size]
            found += probe._receive_batch(probe._send_batch(batch), batch)
        return found


class Probes:
    """One :class:`RegistryProbe` per (registry, scheme), made when first asked for (so one
    connection and one token per registry serve a hit's questions); :meth:`close` closes
    them all."""

    def __init__(self, tokens: TokenCache | None, docker_config: str | None) -> None:
        self.tokens = tokens
        self.docker_config = docker_config
        self._made: dict[tuple[str, str], RegistryProbe] = {}

    def __call__(self, registry: str, scheme: str) -> RegistryProbe:
        if (registry, scheme) not in self._made:
            self._made[(registry, scheme)] = RegistryProbe(
                registry, scheme, tokens=self.tokens, docker_config=self.docker_config)
        return self._made[(registry, scheme)]

    def close(self) -> None:
        for probe in self._made.values():
            probe.close()
