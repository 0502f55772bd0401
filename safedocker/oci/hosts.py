"""Registry hosts: Docker Hub's API host, loopback and insecure-registry rules, the scheme,
and URLs as log lines may show them.

The warm path's probe and certs.py read Docker Hub's names here, so the module imports
only the standard library's cheapest parts at load: ``ipaddress`` and ``urllib.parse``
(which costs a hit more than its own work) are imported where used.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable

DOCKER_HUB = "docker.io"
DOCKER_HUB_API = "registry-1.docker.io"
DOCKER_HUB_ALIASES = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})


def api_host(registry: str) -> str:
    """The host:port to talk to: ``docker.io`` → ``registry-1.docker.io``."""
    return DOCKER_HUB_API if registry in DOCKER_HUB_ALIASES else registry


def _split_host_port(hostport: str) -> tuple[str, str | None]:
    if hostport.startswith("["):
        host, _, rest = hostport[1:].partition("]")
        return host, rest[1:] if rest.startswith(":") else None
    if hostport.count(":") > 1:  # a bare IPv6 address
        return hostport, None
    host, sep, port = hostport.partition(":")
    return host, port if sep else None


def is_loopback(registry: str) -> bool:
    """``localhost``, 127.0.0.0/8 or ::1, with or without a port."""
    import ipaddress

    host, _ = _split_host_port(registry)
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _is_insecure(registry: str, insecure_registries: Iterable[str]) -> bool:
    import ipaddress

    host, _ = _split_host_port(registry)
    for entry in insecure_registries:
        entry = entry.strip().lower()
        for prefix in ("http://", "https://"):
            entry = entry.removeprefix(prefix)
        entry = entry.rstrip("/")
        if not entry:
            continue
        if entry == registry.lower():
            return True
        entry_host, entry_port = _split_host_port(entry)
        if entry_port is None and entry_host == host.lower():
            return True
        if "/" in entry:
            try:
                if ipaddress.ip_address(host) in ipaddress.ip_network(entry, strict=False):
                    return True
            except ValueError:
                continue
    return False


def registry_scheme(registry: str, insecure_registries: Iterable[str] = ()) -> str:
    """``http`` for loopback and insecure-listed registries, otherwise ``https``."""
    if is_loopback(registry) or _is_insecure(registry, insecure_registries):
        return "http"
    return "https"


def origin(url: str) -> tuple[str, str]:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return parts.scheme.lower(), parts.netloc.lower()


def redact(url: str) -> str:
    """A URL for log lines: no query (upload state, pagination cursors), no userinfo."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    netloc = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))

