"""HTTP to one registry (requests): caps, deadlines, retries, redirects, errors in user words.

One ``requests.Session`` per registry; plain HTTP only for loopback registries and the
configured insecure ones. Redirects are followed by hand (GET/HEAD only), an Authorization
header goes only to the registry's own origin, and a body is refused as soon as it
outgrows its cap.

Every exchange has an end: socket timeouts alone do not give one (a registry that drips a
byte every few seconds never trips a read timeout), so each attempt (connect, headers and
body) runs in a short-lived worker thread that the caller waits for at most
``min(request cap, deadline.remaining())`` seconds, where the deadline is the
verification's (:class:`~safedocker._internal.deadline.Deadline`, set by the verifier).
A late worker is abandoned (its socket shut), never waited for. What a caller gets back is
a :class:`Reply` whose body is already read: nothing streams past the wait.

Request economy: ``requests_made`` counts every exchange (a benchmark reads it).
"""

from __future__ import annotations

import email.utils
import json
import logging
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlsplit

import requests
import requests.adapters
import requests.auth

from safedocker import __version__
from safedocker.errors import (
    RegistryError,
    RegistryTimedOut,
    RegistryUnavailable,
    SafeDockerError,
    reason_of,
)
from safedocker.oci.hosts import is_loopback, origin, redact, registry_scheme
from safedocker.oci.media import ERROR_BODY_MAX, REDIRECTS_MAX

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from safedocker._internal.deadline import Deadline

log = logging.getLogger(__name__)

REQUEST_TIMEOUT = 30.0  # one attempt, connect + headers + body together (seconds)
CONNECT_TIMEOUT = 5.0
DEFAULT_TRIES = 3
BACKOFF_BASE = 0.5  # seconds; doubles on each retry
RETRY_WAIT_MAX = 10.0  # a Retry-After above this is cut down to it
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
CHUNK = 64 * 1024

NETWORK_HINT = "check the network, or use SAFE_DOCKER_OFFLINE=1"
TIMEOUT_HINT = ("check the network and the registry; raise registry_timeout in the config if "
                "it is only slow, or use SAFE_DOCKER_OFFLINE=1")


def _sleep(seconds: float) -> None:
    time.sleep(seconds)


class _DockerTrust(requests.adapters.HTTPAdapter):
    """HTTPS trusting what dockerd trusts for the registry: the system's CAs (as the warm
    path reads them, minihttp.configure_client) and the registry's own in docker's
    certs.d, where requests would trust certifi's bundle alone. REQUESTS_CA_BUNDLE, when
    set, adds its CAs."""

    def __init__(self, context: ssl.SSLContext) -> None:
        self._context = context  # before super().__init__, which makes the pool manager
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["ssl_context"] = self._context
        super().init_poolmanager(*args, **kwargs)

    def proxy_manager_for(self, proxy: str, **kwargs: Any) -> Any:
        kwargs["ssl_context"] = self._context
        return super().proxy_manager_for(proxy, **kwargs)

    def cert_verify(self, conn: Any, url: str, verify: Any, cert: Any) -> None:
        super().cert_verify(conn, url, verify, cert)  # type: ignore[no-untyped-call]
        if verify is True:
            # requests points the pool at certifi's bundle, which urllib3 then loads into
            # our context: docker trusts the system's CAs, never certifi's on top of them.
            conn.ca_certs = None
            conn.ca_cert_dir = None


def docker_trust(registry: str) -> ssl.SSLContext:
    """The TLS client context for ``registry``: see :class:`_DockerTrust`. A CA file that
    cannot be read makes the registry unreachable, as it does for docker."""
    from safedocker._internal.minihttp import configure_client
    from safedocker.oci.certs import registry_cas

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    try:
        configure_client(context, registry_cas(registry))
        paths = ssl.get_default_verify_paths()
        if paths.cafile is None and paths.capath is None:
            # An OpenSSL that finds no CAs at all (python.org's Python on macOS before its
            # Install Certificates step): requests' own bundle, as requests alone trusts.
            import requests.utils

            context.load_verify_locations(requests.utils.DEFAULT_CA_BUNDLE_PATH)
    except OSError as e:
        raise RegistryUnavailable(
            f"cannot reach {registry}",
            why=f"a CA in docker's certs.d for it cannot be read ({reason_of(e)})",
            hint=f"fix or remove the *.crt files in /etc/docker/certs.d/{registry}/") from e
    return context


class _OwnAuthorization(requests.auth.AuthBase):
    """Leaves the request as we built it: keeps requests from adding ~/.netrc credentials
    (which would also replace our Bearer header)."""

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        return r


@dataclass(frozen=True)
class Reply:
    """One HTTP answer with its body read: up to the caller's cap for a 2xx answer, the
    first ``ERROR_BODY_MAX`` bytes of anything else (for :func:`error_summary`)."""

    status_code: int
    headers: Mapping[str, str] = field(repr=False)  # case-insensitive (requests')
    content: bytes = field(repr=False)
    url: str

    @property
    def is_redirect(self) -> bool:
        return self.status_code in REDIRECT_STATUSES and "Location" in self.headers


@dataclass
class _Attempt:
    """What one worker thread hands back, and how the caller tells it to stop."""

    reply: Reply | None = None
    error: BaseException | None = None
    response: requests.Response | None = None
    cancelled: threading.Event = field(default_factory=threading.Event)

    def abandon(self) -> None:
        """Stop the worker: it checks ``cancelled`` between chunks, and a shut socket
        wakes it from a blocked read (shutdown, not close: the descriptor stays its own)."""
        self.cancelled.set()
        raw = getattr(self.response, "raw", None)
        sock = getattr(getattr(raw, "connection", None), "sock", None)
        if isinstance(sock, socket.socket):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # already gone


class Transport:
    """The HTTP side of one registry client: ``base_url`` is its own origin.

    ``timeout`` caps one attempt (connect, headers and body); ``deadline``, when set,
    caps everything still to come (the verifier sets one per verification).
    """

    def __init__(self, registry: str, host: str, *, insecure_registries: Sequence[str] = (),
                 timeout: float = REQUEST_TIMEOUT, tries: int = DEFAULT_TRIES,
                 deadline: Deadline | None = None) -> None:
        self.registry = registry
        self.host = host
        self.scheme = registry_scheme(host, insecure_registries)
        self.base_url = f"{self.scheme}://{host}"
        self._insecure = tuple(insecure_registries)
        self._timeout = float(timeout)
        self._tries = max(1, tries)
        self._local = threading.local()  # the deadline is the verifying thread's own
        self._count = threading.Lock()
        self.deadline = deadline
        self.requests_made = 0
        self._session = requests.Session()
        if self.scheme == "https":
            self._session.mount("https://", _DockerTrust(docker_trust(host)))
        self._session.auth = _OwnAuthorization()
        self._session.headers.update(
            {"User-Agent": f"safe-docker/{__version__}", "Accept-Encoding": "identity"}
        )

    @property
    def deadline(self) -> Deadline | None:
        """The end of everything this thread still asks (set per verification)."""
        found: Deadline | None = getattr(self._local, "deadline", None)
        return found

    @deadline.setter
    def deadline(self, deadline: Deadline | None) -> None:
        self._local.deadline = deadline

    def close(self) -> None:
        self._session.close()

    def plain_http_ok(self, url: str) -> bool:
        netloc = urlsplit(url).netloc.rpartition("@")[2]
        return registry_scheme(netloc, self._insecure) == "http"

    def send(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str] | None,
        data: bytes | None,
        authorization: str | None,
        *,
        follow: bool = True,
        cap: int | None = None,
        what: str = "response",
    ) -> Reply:
        """One exchange: retries on 429/5xx, redirects followed by hand (GET/HEAD only);
        Authorization goes only to the registry's own origin. A 2xx body is read up to
        ``cap`` bytes (more is a refusal naming ``what``); ``cap=None``: not read."""
        home = origin(self.base_url)
        for _ in range(REDIRECTS_MAX + 1):
            sent = dict(headers or {})
            if authorization is not None and origin(url) == home:
                sent["Authorization"] = authorization
            redirectable = follow and method in ("GET", "HEAD")
            reply = self._exchange(method, url, sent, data, cap, what,
                                   redirectable=redirectable)
            if not (redirectable and reply.is_redirect):
                return reply
            target = urljoin(url, reply.headers.get("Location", ""))
            scheme = urlsplit(target).scheme.lower()
            if scheme not in ("http", "https") or (
                scheme == "http" and not self.plain_http_ok(target)
            ):
                raise RegistryError(
                    f"{self.registry} redirected to an insecure location", why=redact(target)
                )
            log.debug("redirected to %s", redact(target))
            url = target
        raise RegistryError(f"{self.registry} redirected too many times", why=redact(url))

    def _exchange(self, method: str, url: str, headers: dict[str, str], data: bytes | None,
                  cap: int | None, what: str, *, redirectable: bool) -> Reply:
        for attempt in range(1, self._tries + 1):
            with self._count:
                self.requests_made += 1
            reply = self._attempt(method, url, headers, data, cap, what,
                                  redirectable=redirectable)
            log.debug("%s %s -> %s", method, redact(url), reply.status_code)
            if reply.status_code not in RETRY_STATUSES or attempt == self._tries:
                return reply
            delay = _retry_delay(reply, attempt)
            if self.deadline is not None and delay >= self.deadline.remaining():
                raise self.timed_out()
            log.debug("retrying in %.2fs", delay)
            _sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    def _limit(self) -> float:
        """This attempt's budget: the per-request cap, cut to what the deadline leaves."""
        limit = self._timeout
        if self.deadline is not None:
            limit = self.deadline.cap(limit)
            if limit <= 0:
                raise self.timed_out()
        return limit

    def timed_out(self, limit: float | None = None) -> RegistryTimedOut:
        """The error for a wait that reached its end (exit 69: the registry did not answer
        in time, so verification may still decide from the cache)."""
        if limit is None and self.deadline is not None:
            why = f"no complete answer {self.deadline.describe()}"
        else:
            why = f"no complete answer within {limit or self._timeout:g} s"
        return RegistryTimedOut(f"{self.registry} timed out", why=why, hint=TIMEOUT_HINT)

    def _attempt(self, method: str, url: str, headers: dict[str, str], data: bytes | None,
                 cap: int | None, what: str, *, redirectable: bool) -> Reply:
        limit = self._limit()
        box = _Attempt()
        worker = threading.Thread(
            target=self._fetch, args=(box, method, url, headers, data, cap, what, limit,
                                      redirectable),
            name=f"safe-docker {method} {self.host}", daemon=True,
        )
        worker.start()
        worker.join(limit)
        if worker.is_alive():
            box.abandon()
            deadline_hit = self.deadline is not None and self.deadline.expired
            raise self.timed_out(None if deadline_hit else limit)
        if box.error is not None:
            raise box.error
        if box.reply is None:  # pragma: no cover - the worker always sets one of them
            raise RegistryError(f"no answer from {self.registry}")
        return box.reply

    def _fetch(self, box: _Attempt, method: str, url: str, headers: dict[str, str],
               data: bytes | None, cap: int | None, what: str, limit: float,
               redirectable: bool) -> None:
        """The worker: one request and its body (runs in its own thread)."""
        # Like docker (Go's ProxyFromEnvironment), never send loopback traffic to a proxy.
        loopback = is_loopback(urlsplit(url).netloc.rpartition("@")[2])
        proxies = {"http": None, "https": None} if loopback else None
        try:
            try:
                resp = self._session.request(
                    method, url, headers=headers, data=data,
                    timeout=(min(CONNECT_TIMEOUT, limit), limit),  # and the caller's wait
                    stream=True, allow_redirects=False,
                    proxies=proxies,  # type: ignore[arg-type]
                )
            except requests.RequestException as e:
                raise connection_error(self.host, e) from e
            except OSError as e:  # requests' own for a CA bundle path that is not there
                raise RegistryUnavailable(f"cannot reach {self.host}", why=reason_of(e),
                                          hint="check REQUESTS_CA_BUNDLE and CURL_CA_BUNDLE"
                                          ) from e
            except UnicodeError as e:  # requests reads a redirect's Location as UTF-8
                raise RegistryError(f"{self.registry} answered {what} with a header that "
                                    "is not UTF-8 text") from e
            box.response = resp
            with resp:
                status = resp.status_code
                if method == "HEAD" or (redirectable and resp.is_redirect):
                    body = b""
                elif 200 <= status < 300:
                    body = b"" if cap is None else _read_capped(resp, cap, what, self.host,
                                                                box.cancelled)
                else:
                    body = _read_error_body(resp, box.cancelled)
                box.reply = Reply(status, resp.headers, body, url)
        except Exception as e:  # noqa: BLE001 - handed to the caller's thread, raised there
            box.error = e

    def unexpected(self, resp: Reply, doing: str) -> SafeDockerError:
        """The error for a status nobody expected, in the user's words."""
        status = resp.status_code
        why = f"HTTP {status}"
        summary = error_summary(resp)
        if summary:
            why += f": {summary}"
        if status == 429:
            return RegistryUnavailable(
                f"{self.registry} is rate limiting us; could not {doing}",
                why=why,
                hint="wait and retry, or `docker login` for a higher limit, or use "
                "SAFE_DOCKER_OFFLINE=1",
            )
        if status >= 500:
            return RegistryUnavailable(
                f"{self.registry} is failing; could not {doing}", why=why, hint=NETWORK_HINT
            )
        return RegistryError(f"{self.registry} answered unexpectedly; could not {doing}", why=why)


def _retry_delay(resp: Reply, attempt: int) -> float:
    backoff: float = BACKOFF_BASE * 2.0 ** (attempt - 1)
    header = resp.headers.get("Retry-After", "").strip()
    if not header:
        return backoff
    seconds: float | None
    if header.isdigit():
        seconds = float(header)
    else:
        try:
            when = email.utils.parsedate_to_datetime(header)
            seconds = when.timestamp() - time.time()
        except (TypeError, ValueError):
            seconds = None
    if seconds is None:
        return backoff
    return min(max(seconds, 0.0), RETRY_WAIT_MAX)


class _Cancelled(Exception):
    """The caller stopped waiting; the worker stops reading."""


def _read_capped(resp: requests.Response, cap: int, what: str, host: str,
                 cancelled: threading.Event) -> bytes:
    """The body, refused as soon as it exceeds ``cap`` (Content-Length is only a hint)."""
    declared = resp.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > cap:
        raise RegistryError(f"registry served an oversized {what}", why=f"more than {cap} bytes")
    body = bytearray()
    try:
        for chunk in resp.iter_content(chunk_size=CHUNK):
            if cancelled.is_set():
                raise _Cancelled
            body += chunk
            if len(body) > cap:
                raise RegistryError(
                    f"registry served an oversized {what}", why=f"more than {cap} bytes"
                )
    except requests.RequestException as e:
        raise connection_error(host, e) from e
    return bytes(body)


def _read_error_body(resp: requests.Response, cancelled: threading.Event) -> bytes:
    """The start of an error answer's body, best effort (it only feeds a message)."""
    body = bytearray()
    try:
        for chunk in resp.iter_content(chunk_size=4096):
            if cancelled.is_set():
                break
            body += chunk
            if len(body) >= ERROR_BODY_MAX:
                break
    except (requests.RequestException, OSError):
        pass
    return bytes(body[:ERROR_BODY_MAX])


def error_summary(resp: Reply) -> str:
    """The registry's own error codes (``MANIFEST_UNKNOWN: …``), short and printable."""
    raw = resp.content[:ERROR_BODY_MAX]
    try:
        doc = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return ""
    errors = doc.get("errors") if isinstance(doc, dict) else None
    if not isinstance(errors, list):
        return ""
    parts = []
    for entry in errors[:3]:
        if isinstance(entry, dict):
            code, message = entry.get("code"), entry.get("message")
            text = ": ".join(str(x) for x in (code, message) if isinstance(x, str) and x)
            if text:
                parts.append(text)
    summary = "; ".join(parts)
    return "".join(c for c in summary if c.isprintable())[:200]


def connection_error(host: str, e: requests.RequestException) -> SafeDockerError:
    if isinstance(e, requests.exceptions.SSLError):
        why = "TLS handshake or certificate verification failed"
    elif isinstance(e, requests.exceptions.Timeout):
        why = "timed out"
    elif isinstance(e, (requests.exceptions.ChunkedEncodingError,
                        requests.exceptions.ContentDecodingError)):
        why = "the connection broke off"
    elif isinstance(e, requests.exceptions.ConnectionError):
        text = str(e)
        if "Name or service not known" in text or "name resolution" in text.lower() or (
            "nodename nor servname" in text
        ):
            why = "the host name does not resolve"
        elif "refused" in text.lower():
            why = "connection refused"
        else:
            why = "connection failed"
    else:
        return RegistryError(f"cannot talk to {host}",
                             why=reason_of(e, "the HTTP request failed"))
    return RegistryUnavailable(f"cannot reach {host}", why=why, hint=NETWORK_HINT)
