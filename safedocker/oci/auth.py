"""Registry authentication: WWW-Authenticate challenges, Bearer tokens and Basic auth.

The first request goes out anonymously; a 401 challenge is answered (Bearer token or
Basic) and remembered per registry in an :class:`AuthCache`, as are tokens per (registry,
scope), so later requests and the other clients sharing that cache (one verification
run) authenticate up front. Nothing is remembered in module globals. Credentials come
from the docker config as docker finds them (:mod:`safedocker._docker.credentials`), and
only once a registry asks for them. No credential, token or Authorization header ever
reaches a log line or an exception message.
"""

from __future__ import annotations

import os
import re
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING
from urllib.parse import urlencode, urlsplit

from safedocker._docker.credentials import HELPER_TIMEOUT, Credentials, lookup
from safedocker._internal import strictjson
from safedocker._internal.encoding import b64encode
from safedocker.errors import RegistryError
from safedocker.oci.hosts import origin, redact
from safedocker.oci.media import TOKEN_RESPONSE_MAX

if TYPE_CHECKING:
    from collections.abc import Hashable, Iterator, Mapping

    from safedocker.oci.transport import Transport


@dataclass(frozen=True)
class Challenge:
    scheme: str  # "bearer" | "basic"
    params: Mapping[str, str] = field(hash=False)


@dataclass(frozen=True)
class Token:
    value: str = field(repr=False)
    expires_at: float


# The longest a request waits for another thread's first contact or token request for the
# same registry when it has no deadline of its own (the other is bounded by its own).
FLIGHT_WAIT_MAX = 120.0

# The longest WWW-Authenticate read: finditer retries the parameter pattern at every
# position of a run it cannot match, so its time grows with the square of the length (a
# 60 KiB header held the CPU for a minute, past every deadline). Registries' challenges
# are a few hundred bytes.
CHALLENGE_MAX = 4096
_CHALLENGE_PARAM_RE = re.compile(
    r'\s*([A-Za-z0-9_-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))\s*,?'
)

class AuthCache:
    """Challenges and tokens remembered across the clients of one run (thread-safe).

    One command verifies several images, often against the same registry and side by
    side: sharing the cache saves the 401 round trip and the token request for each of
    them, and :meth:`flight` lets one thread ask while the others wait for its answer.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._challenges: dict[tuple[str, str], Challenge] = {}
        self._tokens: dict[tuple[str, str, str], Token] = {}
        self._contacted: set[tuple[str, str]] = set()
        self._flights: dict[Hashable, threading.Lock] = {}

    def flight(self, key: Hashable) -> threading.Lock:
        """The lock held by the one thread asking for ``key`` (a token, a first contact)."""
        with self._lock:
            return self._flights.setdefault(key, threading.Lock())

    def contacted(self, key: tuple[str, str]) -> bool:
        """Whether the registry has answered a request of this run (its 401, if any, is
        known: later requests need not wait for a first contact)."""
        with self._lock:
            return key in self._contacted

    def mark_contacted(self, key: tuple[str, str]) -> None:
        with self._lock:
            self._contacted.add(key)

    def challenge(self, key: tuple[str, str]) -> Challenge | None:
        with self._lock:
            return self._challenges.get(key)

    def learn(self, key: tuple[str, str], challenge: Challenge) -> None:
        with self._lock:
            self._challenges[key] = challenge

    def token(self, key: tuple[str, str, str]) -> Token | None:
        with self._lock:
            return self._tokens.get(key)

    def keep(self, key: tuple[str, str, str], token: Token) -> None:
        with self._lock:
            self._tokens[key] = token

    def forget(self, key: tuple[str, str, str]) -> None:
        with self._lock:
            self._tokens.pop(key, None)


def parse_challenge(header: str) -> Challenge | None:
    """``Bearer realm="…",service="…",scope="…"`` or ``Basic realm="…"``; else None (also
    for one longer than CHALLENGE_MAX)."""
    if len(header) > CHALLENGE_MAX:
        return None
    scheme, _, rest = header.strip().partition(" ")
    scheme = scheme.lower()
    if scheme not in ("bearer", "basic"):
        return None
    params: dict[str, str] = {}
    for match in _CHALLENGE_PARAM_RE.finditer(rest):
        quoted, bare = match.group(2), match.group(3)
        value = re.sub(r"\\(.)", r"\1", quoted) if quoted is not None else bare
        params[match.group(1).lower()] = value
    if scheme == "bearer" and not params.get("realm"):
        return None
    return Challenge(scheme, MappingProxyType(params))


def denied(registry: str, status: int, scope: str, summary: str) -> RegistryError:
    why = f"HTTP {status}" + (f": {summary}" if summary else "")
    repository = scope.split(":")[1] if scope.count(":") >= 2 else scope
    return RegistryError(
        f"{registry} denied access to {repository}",
        why=why,
        hint=f"the repository may not exist, or it needs `docker login {registry}`",
    )


class Authenticator:
    """The Authorization header one registry client sends for a scope."""

    def __init__(self, transport: Transport, docker_config_dir: str | None = None,
                 cache: AuthCache | None = None) -> None:
        self._transport = transport
        self._cache = AuthCache() if cache is None else cache
        self.registry = transport.registry
        self._docker_config_dir = docker_config_dir
        self._credentials: Credentials | None = None
        self._credentials_loaded = False
        self._credentials_lock = threading.Lock()  # one credential helper run per client

    @property
    def _challenge_key(self) -> tuple[str, str]:
        return (self._transport.base_url,
                self._docker_config_dir or os.environ.get("DOCKER_CONFIG", ""))

    def _token_key(self, scope: str) -> tuple[str, str, str]:
        return (*self._challenge_key, scope)

    def learn(self, challenge: Challenge) -> None:
        """Remember what the registry asked for, so later requests authenticate up front."""
        self._cache.learn(self._challenge_key, challenge)

    def forget_token(self, scope: str) -> None:
        self._cache.forget(self._token_key(scope))

    @contextmanager
    def first_contact(self) -> Iterator[None]:
        """Until the registry has answered once, its requests go one at a time: the first
        one learns the challenge (a 401) and the others then authenticate up front, so
        images verified side by side cost one 401 round trip per registry, not one each."""
        key = self._challenge_key
        if self._cache.contacted(key):
            yield
            return
        with self._holding(self._cache.flight(("contact", *key))):
            yield
            self._cache.mark_contacted(key)

    @contextmanager
    def _holding(self, lock: threading.Lock) -> Iterator[None]:
        """``lock``, waited for no longer than this thread's deadline allows."""
        deadline = self._transport.deadline
        wait = FLIGHT_WAIT_MAX if deadline is None else deadline.cap(FLIGHT_WAIT_MAX)
        if not lock.acquire(timeout=wait):
            raise self._transport.timed_out()
        try:
            yield
        finally:
            lock.release()

    def _creds(self) -> Credentials | None:
        with self._credentials_lock:
            if not self._credentials_loaded:
                # A credential helper's wait is part of the verification's.
                deadline = self._transport.deadline
                timeout = HELPER_TIMEOUT if deadline is None else max(
                    0.001, deadline.cap(HELPER_TIMEOUT))
                self._credentials = lookup(self.registry, self._docker_config_dir,
                                           timeout=timeout)
                self._credentials_loaded = True
            return self._credentials

    def header(self, scope: str) -> str | None:
        """The Authorization header value for ``scope``, if the registry wants one."""
        challenge = self._cache.challenge(self._challenge_key)
        if challenge is None:
            return None
        if challenge.scheme == "basic":
            creds = self._creds()
            if creds is None or creds.password is None:
                return None
            pair = f"{creds.username}:{creds.password}".encode()
            return "Basic " + b64encode(pair)
        key = self._token_key(scope)
        token = self._cache.token(key)
        if token is not None and token.expires_at > time.monotonic():
            return f"Bearer {token.value}"
        with self._holding(self._cache.flight(key)):  # one token request per scope
            token = self._cache.token(key)
            if token is None or token.expires_at <= time.monotonic():
                token = self._fetch_token(challenge, scope)
                self._cache.keep(key, token)
        return f"Bearer {token.value}"

    def _fetch_token(self, challenge: Challenge, scope: str) -> Token:
        transport = self._transport
        realm = challenge.params["realm"]
        scheme, netloc = origin(realm)
        if scheme not in ("http", "https") or not netloc:
            raise RegistryError(f"{self.registry} named an invalid token realm")
        if scheme == "http" and not transport.plain_http_ok(realm):
            raise RegistryError(
                f"{self.registry} asked for credentials over plain HTTP",
                why=f"token realm {redact(realm)}",
                hint="the registry's token service must use HTTPS",
            )
        creds = self._creds()
        service = challenge.params.get("service")
        query: dict[str, str] = {"scope": scope}
        if service:
            query["service"] = service
        headers: dict[str, str] = {}
        if creds is not None and creds.identity_token:
            form = {
                "grant_type": "refresh_token",
                "refresh_token": creds.identity_token,
                "client_id": "safe-docker",
                **query,
            }
            resp = transport.send(
                "POST",
                realm,
                {"Content-Type": "application/x-www-form-urlencoded"},
                urlencode(form).encode(),
                None,
                follow=False,
                cap=TOKEN_RESPONSE_MAX,
                what="token response",
            )
        else:
            if creds is not None and creds.password is not None:
                pair = f"{creds.username}:{creds.password}".encode()
                headers["Authorization"] = "Basic " + b64encode(pair)
            sep = "&" if urlsplit(realm).query else "?"
            resp = transport.send(
                "GET", realm + sep + urlencode(query), headers, None, None, follow=False,
                cap=TOKEN_RESPONSE_MAX, what="token response",
            )
        if resp.status_code in (401, 403):
            raise RegistryError(
                f"{self.registry} refused the credentials for {scope}",
                why=f"token service answered HTTP {resp.status_code}",
                hint=f"log in again with `docker login {self.registry}`",
            )
        if resp.status_code != 200:
            raise transport.unexpected(resp, "get an access token")
        raw = resp.content
        try:
            doc = strictjson.loads(raw)
        except (UnicodeDecodeError, ValueError, RecursionError) as e:
            raise RegistryError(f"{self.registry}'s token service answered invalid JSON") from e
        if not isinstance(doc, dict):
            raise RegistryError(f"{self.registry}'s token service answered invalid JSON")
        value = doc.get("token") or doc.get("access_token")
        if not isinstance(value, str) or not value:
            raise RegistryError(f"{self.registry}'s token service answered no token")
        expires_in = doc.get("expires_in")
        lifetime = (
            float(expires_in)
            if isinstance(expires_in, (int, float)) and not isinstance(expires_in, bool)
            else 60.0
        )
        lifetime = max(lifetime, 60.0)
        return Token(value, time.monotonic() + lifetime - 10.0)
