"""HTTP to one registry (requests): caps, retries, redirects, and errors in user words.

One ``requests.Session`` per registry; plain HTTP only for loopback registries and the
configured insecure ones. Redirects are followed by hand (GET/HEAD only), an Authorization
header goes only to the registry's own origin, and a body is refused as soon as it
outgrows its cap. Request economy: ``requests_made`` counts every exchange (a benchmark
reads it).
"""

from __future__ import annotations

import email.utils
import json
import logging
import time
from typing import TYPE_CHECKING
from urllib.parse import urljoin, urlsplit

import requests
import requests.auth

from safedocker import __version__
from safedocker.errors import RegistryError, RegistryUnavailable, SafeDockerError, reason_of
from safedocker.oci.hosts import is_loopback, origin, redact, registry_scheme
from safedocker.oci.media import ERROR_BODY_MAX, REDIRECTS_MAX

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT: tuple[float, float] = (5.0, 30.0)  # connect, read
DEFAULT_TRIES = 3
BACKOFF_BASE = 0.5  # seconds; doubles on each retry
RETRY_WAIT_MAX = 10.0  # a Retry-After above this is cut down to it
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})

NETWORK_HINT = "check the network, or use SAFE_DOCKER_OFFLINE=1"


def _sleep(seconds: float) -> None:
    time.sleep(seconds)


class _OwnAuthorization(requests.auth.AuthBase):
    """Leaves the request as we built it: keeps requests from adding ~/.netrc credentials
    (which would also replace our Bearer header)."""

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        return r


class Transport:
    """The HTTP side of one registry client: ``base_url`` is its own origin."""

    def __init__(self, registry: str, host: str, *, insecure_registries: Sequence[str] = (),
                 timeout: float | tuple[float, float] = DEFAULT_TIMEOUT,
                 tries: int = DEFAULT_TRIES) -> None:
        self.registry = registry
        self.host = host
        self.scheme = registry_scheme(host, insecure_registries)
        self.base_url = f"{self.scheme}://{host}"
        self._insecure = tuple(insecure_registries)
        self._timeout = timeout
        self._tries = max(1, tries)
        self.requests_made = 0
        self._session = requests.Session()
        self._session.auth = _OwnAuthorization()
        self._session.headers.update(
            {"User-Agent": f"safe-docker/{__version__}", "Accept-Encoding": "identity"}
        )

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
    ) -> requests.Response:
        """One exchange: retries on 429/5xx, redirects followed by hand (GET/HEAD only);
        Authorization goes only to the registry's own origin."""
        home = origin(self.base_url)
        for _ in range(REDIRECTS_MAX + 1):
            sent = dict(headers or {})
            if authorization is not None and origin(url) == home:
                sent["Authorization"] = authorization
            resp = self._exchange(method, url, sent, data)
            if not (follow and method in ("GET", "HEAD") and resp.is_redirect):
                return resp
            location = resp.headers.get("Location", "")
            resp.close()
            target = urljoin(url, location)
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

    def _exchange(
        self, method: str, url: str, headers: dict[str, str], data: bytes | None
    ) -> requests.Response:
        # Like docker (Go's ProxyFromEnvironment), never send loopback traffic to a proxy.
        loopback = is_loopback(urlsplit(url).netloc.rpartition("@")[2])
        proxies = {"http": None, "https": None} if loopback else None
        for attempt in range(1, self._tries + 1):
            self.requests_made += 1
            try:
                resp = self._session.request(
                    method,
                    url,
                    headers=headers,
                    data=data,
                    timeout=self._timeout,
                    stream=True,
                    allow_redirects=False,
                    proxies=proxies,  # type: ignore[arg-type]
                )
            except requests.RequestException as e:
                raise connection_error(self.host, e) from e
            log.debug("%s %s -> %s", method, redact(url), resp.status_code)
            if resp.status_code not in RETRY_STATUSES or attempt == self._tries:
                return resp
            delay = _retry_delay(resp, attempt)
            resp.close()
            log.debug("retrying in %.2fs", delay)
            _sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    def unexpected(self, resp: requests.Response, doing: str) -> SafeDockerError:
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


def _retry_delay(resp: requests.Response, attempt: int) -> float:
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


def read_capped(resp: requests.Response, cap: int, what: str, host: str) -> bytes:
    """The body, refused as soon as it exceeds ``cap`` (Content-Length is only a hint)."""
    declared = resp.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > cap:
        raise RegistryError(f"registry served an oversized {what}", why=f"more than {cap} bytes")
    body = bytearray()
    try:
        for chunk in resp.iter_content(chunk_size=64 * 1024):
            body += chunk
            if len(body) > cap:
                raise RegistryError(
                    f"registry served an oversized {what}", why=f"more than {cap} bytes"
                )
    except requests.RequestException as e:
        raise connection_error(host, e) from e
    return bytes(body)


def error_summary(resp: requests.Response) -> str:
    """The registry's own error codes (``MANIFEST_UNKNOWN: …``), short and printable."""
    try:
        raw = resp.raw.read(ERROR_BODY_MAX, decode_content=True) if resp.raw else b""
    except Exception:  # noqa: BLE001 - an error body is best effort
        return ""
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
