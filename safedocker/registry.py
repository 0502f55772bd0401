"""OCI distribution v2 client: auth, manifests, blobs, referrers, tags, push.

Everything a registry says is checked here before anyone else sees it: manifest and blob
bytes are hashed locally (a tag resolves to *our* hash of the bytes, never to a header),
sizes are capped while streaming, JSON is parsed strictly. One ``requests.Session`` per
client; plain HTTP only for loopback registries and the configured insecure ones.

Request economy (a benchmark counts ``RegistryClient.requests_made``): no ``/v2/`` ping and
no HEAD before GET. The first request goes out anonymously; a 401 challenge is answered
(Bearer token or Basic) and remembered per registry for the process, as are tokens per
(registry, scope), so later clients authenticate up front.

Credentials come from the docker config exactly as docker finds them (docker-py's
``load_config``/``resolve_authconfig``: ``DOCKER_CONFIG`` or ``~/.docker/config.json``,
``auths``, ``credsStore``, ``credHelpers``). No credential, token or Authorization header
ever reaches a log line or an exception message.
"""

from __future__ import annotations

import base64
import email.utils
import ipaddress
import json
import logging
import os
import platform as _platform
import re
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any
from urllib.parse import urlencode, urljoin, urlsplit, urlunsplit

import requests
import requests.auth

from safedocker import __version__
from safedocker.errors import (
    ConfigError,
    RegistryError,
    RegistryUnavailable,
    SafeDockerError,
    UsageError,
)
from safedocker.reference import Digest, is_valid_tag

log = logging.getLogger(__name__)

# --- media types and limits -----------------------------------------------------------

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_SCHEMA1 = "application/vnd.docker.distribution.manifest.v1+json"
DOCKER_SCHEMA1_SIGNED = "application/vnd.docker.distribution.manifest.v1+prettyjws"

INDEX_MEDIA_TYPES = frozenset({OCI_INDEX, DOCKER_MANIFEST_LIST})
IMAGE_MEDIA_TYPES = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})
MANIFEST_MEDIA_TYPES = INDEX_MEDIA_TYPES | IMAGE_MEDIA_TYPES
SCHEMA1_MEDIA_TYPES = frozenset({DOCKER_SCHEMA1, DOCKER_SCHEMA1_SIGNED})
MANIFEST_ACCEPT = ", ".join((OCI_INDEX, OCI_MANIFEST, DOCKER_MANIFEST_LIST, DOCKER_MANIFEST))
# Content types that say nothing; the JSON's own mediaType must then name the type.
_GENERIC_CONTENT_TYPES = frozenset(
    {"", "application/json", "application/octet-stream", "text/plain"}
)

MiB = 1024 * 1024
MANIFEST_MAX = 4 * MiB
CONFIG_MAX = 4 * MiB
SIGNATURE_LAYER_MAX = 1 * MiB
TOKEN_RESPONSE_MAX = 1 * MiB
TAGS_PAGE_MAX = 4 * MiB
ERROR_BODY_MAX = 64 * 1024
TAGS_MAX = 10_000
PAGES_MAX = 100
REDIRECTS_MAX = 5

DEFAULT_TIMEOUT: tuple[float, float] = (5.0, 30.0)  # connect, read
DEFAULT_TRIES = 3
BACKOFF_BASE = 0.5  # seconds; doubles on each retry
RETRY_WAIT_MAX = 10.0  # a Retry-After above this is cut down to it
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})

DOCKER_HUB = "docker.io"
DOCKER_HUB_API = "registry-1.docker.io"
_DOCKER_HUB_ALIASES = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})

NETWORK_HINT = "check the network, or use SAFE_DOCKER_OFFLINE=1"

_REPOSITORY_RE = re.compile(
    r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$"
)
_LINK_NEXT_RE = re.compile(r'<([^>]*)>\s*;\s*rel="?next"?')


# --- errors ---------------------------------------------------------------------------


class ManifestNotFound(RegistryError):
    """The registry has no manifest under that tag or digest (HTTP 404)."""


class BlobNotFound(RegistryError):
    """The registry has no blob with that digest (HTTP 404)."""


class NoMatchingPlatform(RegistryError):
    """An image index has no manifest for the requested platform."""


# --- platforms ------------------------------------------------------------------------

_ARCH_ALIASES = {
    "x86_64": "amd64",
    "x86-64": "amd64",
    "amd64": "amd64",
    "aarch64": "arm64",
    "arm64": "arm64",
    "i386": "386",
    "i486": "386",
    "i586": "386",
    "i686": "386",
    "386": "386",
}
_MACHINE_TO_PLATFORM = {
    "x86_64": ("amd64", None),
    "amd64": ("amd64", None),
    "aarch64": ("arm64", "v8"),
    "arm64": ("arm64", "v8"),
    "armv8l": ("arm", "v7"),
    "armv7l": ("arm", "v7"),
    "armv6l": ("arm", "v6"),
    "armv5tel": ("arm", "v5"),
    "i386": ("386", None),
    "i686": ("386", None),
    "ppc64le": ("ppc64le", None),
    "s390x": ("s390x", None),
    "riscv64": ("riscv64", None),
}


def _normalize_arch(architecture: str, variant: str | None) -> tuple[str, str | None]:
    """containerd's normalization: ``aarch64`` → ``arm64``, ``armhf`` → ``arm/v7`` …"""
    arch = architecture.lower()
    var = variant.lower() if variant else None
    if arch == "armhf":
        return "arm", "v7"
    if arch == "armel":
        return "arm", "v6"
    arch = _ARCH_ALIASES.get(arch, arch)
    if var and var[0].isdigit():
        var = "v" + var
    if arch == "arm64" and var in ("v8", "v8.0"):
        var = "v8"
    return arch, var


@dataclass(frozen=True)
class Platform:
    """An OCI platform: ``linux/amd64``, ``linux/arm64/v8``, ``linux/arm/v7``."""

    os: str
    architecture: str
    variant: str | None = None

    @classmethod
    def parse(cls, text: str) -> Platform:
        """Parse like docker's ``--platform``: ``os[/arch[/variant]]`` or a bare ``arch``."""
        parts = [p.strip() for p in text.strip().split("/")]
        if not parts or any(not p for p in parts) or len(parts) > 3:
            raise UsageError(
                f"invalid platform {text!r}", hint="use os/arch[/variant], e.g. linux/arm64"
            )
        host = host_platform()
        if len(parts) == 1:
            word = parts[0].lower()
            if word in ("linux", "windows", "darwin", "freebsd"):
                return cls(word, host.architecture, host.variant)
            arch, variant = _normalize_arch(word, None)
            return cls("linux", arch, variant)
        arch, variant = _normalize_arch(parts[1], parts[2] if len(parts) == 3 else None)
        return cls(parts[0].lower(), arch, variant)

    @classmethod
    def from_json(cls, obj: object, where: str) -> Platform:
        if not isinstance(obj, Mapping):
            raise _malformed(where, "platform is not an object")
        os_name, arch, variant = obj.get("os"), obj.get("architecture"), obj.get("variant")
        if not isinstance(os_name, str) or not isinstance(arch, str):
            raise _malformed(where, "platform lacks os or architecture")
        if variant is not None and not isinstance(variant, str):
            raise _malformed(where, "platform variant is not a string")
        return cls(os_name, arch, variant or None)

    def matches(self, other: Platform) -> bool:
        """Whether an index entry for ``other`` runs where ``self`` is wanted (exactly)."""
        if self.os.lower() != other.os.lower():
            return False
        mine = _normalize_arch(self.architecture, self.variant)
        theirs = _normalize_arch(other.architecture, other.variant)
        if mine[0] != theirs[0]:
            return False
        return _default_variant(*mine) == _default_variant(*theirs)

    def __str__(self) -> str:
        text = f"{self.os}/{self.architecture}"
        return f"{text}/{self.variant}" if self.variant else text


def _default_variant(arch: str, variant: str | None) -> str | None:
    if arch == "arm64":
        return variant or "v8"
    if arch == "arm":
        return variant or "v7"
    if arch == "amd64":
        return None if variant in (None, "v1") else variant
    return variant


def host_platform() -> Platform:
    """The platform docker would pull for on this host (images are linux images)."""
    machine = _platform.machine().lower()
    arch, variant = _MACHINE_TO_PLATFORM.get(machine, (_normalize_arch(machine, None)[0], None))
    return Platform("linux", arch, variant)


def _platform_preferences(wanted: Platform) -> list[Platform]:
    """The wanted platform, then what it can also run: arm/v7 runs v6 and v5 images."""
    arch, variant = _normalize_arch(wanted.architecture, wanted.variant)
    prefs = [wanted]
    if arch == "arm":
        order = ["v8", "v7", "v6", "v5"]
        current = _default_variant(arch, variant)
        if current in order:
            prefs += [Platform(wanted.os, "arm", v) for v in order[order.index(current) + 1 :]]
    return prefs


# --- values ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Descriptor:
    """An OCI content descriptor."""

    media_type: str
    digest: Digest
    size: int
    annotations: Mapping[str, str] = field(default_factory=dict, hash=False)
    artifact_type: str | None = None
    platform: Platform | None = None

    @classmethod
    def from_json(cls, obj: object, where: str) -> Descriptor:
        if not isinstance(obj, Mapping):
            raise _malformed(where, "descriptor is not an object")
        media_type, digest_text, size = obj.get("mediaType"), obj.get("digest"), obj.get("size")
        if not isinstance(media_type, str) or not media_type:
            raise _malformed(where, "descriptor lacks mediaType")
        if not isinstance(digest_text, str):
            raise _malformed(where, "descriptor lacks digest")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise _malformed(where, "descriptor size is not a non-negative integer")
        try:
            digest = Digest.parse(digest_text)
        except SafeDockerError as e:
            raise _malformed(where, "descriptor digest is invalid") from e
        annotations = obj.get("annotations") or {}
        if not isinstance(annotations, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in annotations.items()
        ):
            raise _malformed(where, "annotations are not a string map")
        artifact_type = obj.get("artifactType")
        if artifact_type is not None and not isinstance(artifact_type, str):
            raise _malformed(where, "artifactType is not a string")
        plat = obj.get("platform")
        return cls(
            media_type=media_type,
            digest=digest,
            size=size,
            annotations=MappingProxyType(dict(annotations)),
            artifact_type=artifact_type or None,
            platform=Platform.from_json(plat, where) if plat is not None else None,
        )

    def to_json(self) -> dict[str, Any]:
        obj: dict[str, Any] = {
            "mediaType": self.media_type,
            "digest": str(self.digest),
            "size": self.size,
        }
        if self.artifact_type:
            obj["artifactType"] = self.artifact_type
        if self.annotations:
            obj["annotations"] = dict(self.annotations)
        if self.platform:
            plat = {"architecture": self.platform.architecture, "os": self.platform.os}
            if self.platform.variant:
                plat["variant"] = self.platform.variant
            obj["platform"] = plat
        return obj


@dataclass(frozen=True)
class Manifest:
    """A manifest or index whose bytes we hashed ourselves (``digest`` is our hash)."""

    digest: Digest
    media_type: str
    raw: bytes = field(repr=False)
    json: Mapping[str, Any] = field(repr=False, hash=False, compare=False)
    config: Descriptor | None = field(default=None, repr=False)
    layers: tuple[Descriptor, ...] = field(default=(), repr=False)
    children: tuple[Descriptor, ...] = field(default=(), repr=False)
    subject: Descriptor | None = field(default=None, repr=False)

    @property
    def is_index(self) -> bool:
        return self.media_type in INDEX_MEDIA_TYPES

    @property
    def size(self) -> int:
        return len(self.raw)

    @property
    def descriptor(self) -> Descriptor:
        return Descriptor(self.media_type, self.digest, len(self.raw))

    @property
    def artifact_type(self) -> str | None:
        value = self.json.get("artifactType")
        return value if isinstance(value, str) and value else None

    @property
    def annotations(self) -> Mapping[str, str]:
        value = self.json.get("annotations")
        return value if isinstance(value, Mapping) else {}

    @classmethod
    def parse(
        cls, raw: bytes, content_type: str = "", *, digest: Digest | None = None
    ) -> Manifest:
        """Parse manifest bytes strictly; ``digest`` (if given) must be the bytes' hash."""
        return parse_manifest(raw, content_type, expected=digest)


@dataclass(frozen=True)
class Referrers:
    """What refers to ``subject``, and which path answered: ``"api"`` or ``"tag"``."""

    subject: Digest
    descriptors: tuple[Descriptor, ...]
    source: str  # "api": OCI 1.1 referrers API; "tag": the sha256-<hex> tag schema
    index: Manifest | None = field(default=None, repr=False)  # the tag schema's index


@dataclass(frozen=True)
class Resolved:
    """A reference resolved: ``digest`` is what the reference names (pin this); ``manifest``
    is the image manifest for the platform; ``index`` the index it was picked from, if any."""

    digest: Digest
    manifest: Manifest
    index: Manifest | None = None


# --- strict parsing ---------------------------------------------------------------------


def _malformed(where: str, why: str) -> RegistryError:
    return RegistryError(f"registry served a malformed manifest for {where}", why=why)


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key!r}")
        result[key] = value
    return result


def _reject_constant(name: str) -> Any:
    raise ValueError(f"invalid JSON constant {name}")


def strict_json(raw: bytes) -> Any:
    """JSON as UTF-8 with no duplicate keys and no NaN/Infinity, or ValueError."""
    text = raw.decode("utf-8")
    return json.loads(
        text, object_pairs_hook=_reject_duplicates, parse_constant=_reject_constant
    )


def _bare_content_type(value: str | None) -> str:
    return (value or "").split(";", 1)[0].strip().lower()


def parse_manifest(
    raw: bytes, content_type: str = "", *, expected: Digest | None = None, where: str = "image"
) -> Manifest:
    """Parse and check manifest bytes. ``expected``: the digest the bytes must hash to."""
    if expected is not None and not expected.matches(raw):
        raise RegistryError(
            "registry served manifest bytes that do not match the digest",
            why=f"expected {expected}, got {Digest.of(raw, expected.algorithm)}",
        )
    digest = expected or Digest.of(raw)
    declared = _bare_content_type(content_type)
    if declared in SCHEMA1_MEDIA_TYPES:
        raise _schema1(where)
    try:
        doc = strict_json(raw)
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise _malformed(where, f"invalid JSON ({e.__class__.__name__})") from e
    if not isinstance(doc, dict):
        raise _malformed(where, "manifest is not a JSON object")
    schema = doc.get("schemaVersion")
    if schema == 1:
        raise _schema1(where)
    if schema != 2 or isinstance(schema, bool):
        raise _malformed(where, f"unsupported schemaVersion {schema!r}")
    in_json = doc.get("mediaType")
    if in_json is not None and not isinstance(in_json, str):
        raise _malformed(where, "mediaType is not a string")
    if in_json and declared not in _GENERIC_CONTENT_TYPES and in_json != declared:
        raise _malformed(where, f"mediaType {in_json!r} disagrees with Content-Type {declared!r}")
    media_type = in_json or declared
    if media_type in SCHEMA1_MEDIA_TYPES:
        raise _schema1(where)
    if media_type in _GENERIC_CONTENT_TYPES:
        raise _malformed(where, "neither Content-Type nor mediaType names a manifest type")
    if media_type not in MANIFEST_MEDIA_TYPES:
        raise _malformed(where, f"unsupported media type {media_type!r}")
    subject_json = doc.get("subject")
    subject = Descriptor.from_json(subject_json, where) if subject_json is not None else None
    if media_type in INDEX_MEDIA_TYPES:
        entries = doc.get("manifests")
        if not isinstance(entries, list):
            raise _malformed(where, "index has no manifests list")
        children = tuple(Descriptor.from_json(e, where) for e in entries)
        return Manifest(digest, media_type, raw, MappingProxyType(doc), children=children,
                        subject=subject)
    config_json, layers_json = doc.get("config"), doc.get("layers")
    if not isinstance(layers_json, list):
        raise _malformed(where, "manifest has no layers list")
    return Manifest(
        digest,
        media_type,
        raw,
        MappingProxyType(doc),
        config=Descriptor.from_json(config_json, where),
        layers=tuple(Descriptor.from_json(e, where) for e in layers_json),
        subject=subject,
    )


def _schema1(where: str) -> RegistryError:
    return RegistryError(
        f"registry served a Docker schema 1 manifest for {where}",
        why="schema 1 manifests are deprecated and cannot be verified",
        hint="re-push the image with a current docker (schema 2 / OCI)",
    )


def select_platform(index: Manifest, platform: Platform | str | None = None) -> Descriptor:
    """The child of ``index`` for ``platform`` (default: this host), like docker picks it."""
    if not index.is_index:
        raise UsageError(f"{index.digest} is not an image index")
    wanted = (
        Platform.parse(platform) if isinstance(platform, str) else platform or host_platform()
    )
    for candidate in _platform_preferences(wanted):
        for child in index.children:
            if child.platform is not None and candidate.matches(child.platform):
                return child
    available = sorted({str(c.platform) for c in index.children if c.platform is not None})
    raise NoMatchingPlatform(
        f"no matching manifest for {wanted} in the manifest list entries",
        why=f"the image offers {', '.join(available) or 'no platforms'}",
        hint="choose one of these with --platform",
    )


# --- hosts and schemes ----------------------------------------------------------------


def api_host(registry: str) -> str:
    """The host:port to talk to: ``docker.io`` → ``registry-1.docker.io``."""
    return DOCKER_HUB_API if registry in _DOCKER_HUB_ALIASES else registry


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
    host, _ = _split_host_port(registry)
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _is_insecure(registry: str, insecure_registries: Iterable[str]) -> bool:
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


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme.lower(), parts.netloc.lower()


def _redact(url: str) -> str:
    """A URL for log lines: no query (upload state, pagination cursors), no userinfo."""
    parts = urlsplit(url)
    netloc = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


# --- auth -----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Challenge:
    scheme: str  # "bearer" | "basic"
    params: Mapping[str, str] = field(hash=False)


@dataclass(frozen=True)
class _Token:
    value: str = field(repr=False)
    expires_at: float


@dataclass(frozen=True)
class _Credentials:
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    identity_token: str | None = field(default=None, repr=False)


_CHALLENGE_PARAM_RE = re.compile(
    r'\s*([A-Za-z0-9_-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))\s*,?'
)

# Process-wide: one shell command verifies several things against the same registry.
_lock = threading.Lock()
_challenges: dict[tuple[str, str], _Challenge] = {}
_tokens: dict[tuple[str, str, str], _Token] = {}


def clear_auth_caches() -> None:
    """Forget remembered challenges and tokens (tests; after ``docker login``)."""
    with _lock:
        _challenges.clear()
        _tokens.clear()


def parse_challenge(header: str) -> _Challenge | None:
    """``Bearer realm="…",service="…",scope="…"`` or ``Basic realm="…"``; else None."""
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
    return _Challenge(scheme, MappingProxyType(params))


def _load_credentials(registry: str, docker_config_dir: str | None) -> _Credentials | None:
    """Credentials docker would use for ``registry``, via docker-py's own lookup."""
    import docker.auth  # heavy; only once a registry asks for authentication
    import docker.errors

    config_path = os.path.join(docker_config_dir, "config.json") if docker_config_dir else None
    try:
        config = docker.auth.load_config(config_path=config_path)
        found = docker.auth.resolve_authconfig(config, registry)
    except (docker.errors.DockerException, OSError, ValueError) as e:
        raise ConfigError(
            f"cannot read docker credentials for {registry}",
            why=e.__class__.__name__,
            hint="check the docker config (DOCKER_CONFIG or ~/.docker/config.json) and its "
            "credential helper",
        ) from e
    if not found:
        return None
    username = found.get("username") or found.get("Username")
    password = found.get("password") or found.get("Password")
    identity = found.get("IdentityToken") or found.get("identitytoken")
    if identity:
        return _Credentials(username=username or None, identity_token=str(identity))
    if username and password:
        return _Credentials(username=str(username), password=str(password))
    return None


# --- the client -----------------------------------------------------------------------


def _claimed_digest(header: str, where: str) -> Digest:
    """The Docker-Content-Digest a registry sent: a claim to check, never to trust."""
    try:
        return Digest.parse(header.strip())
    except SafeDockerError as e:
        raise RegistryError("registry sent an invalid Docker-Content-Digest", why=where) from e


def _sleep(seconds: float) -> None:
    time.sleep(seconds)


class _OwnAuthorization(requests.auth.AuthBase):
    """Leaves the request as we built it: keeps requests from adding ~/.netrc credentials
    (which would also replace our Bearer header)."""

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        return r


class RegistryClient:
    """A client for one registry (``docker.io``, ``ghcr.io``, ``127.0.0.1:5000``)."""

    def __init__(
        self,
        registry: str,
        *,
        insecure_registries: Sequence[str] = (),
        docker_config_dir: str | None = None,
        timeout: float | tuple[float, float] = DEFAULT_TIMEOUT,
        tries: int = DEFAULT_TRIES,
    ) -> None:
        self.registry = registry
        self.host = api_host(registry)
        self.scheme = registry_scheme(self.host, insecure_registries)
        self.base_url = f"{self.scheme}://{self.host}"
        self._insecure = tuple(insecure_registries)
        self._docker_config_dir = docker_config_dir
        self._timeout = timeout
        self._tries = max(1, tries)
        self._credentials: _Credentials | None = None
        self._credentials_loaded = False
        self.requests_made = 0
        self._session = requests.Session()
        self._session.auth = _OwnAuthorization()
        self._session.headers.update(
            {"User-Agent": f"safe-docker/{__version__}", "Accept-Encoding": "identity"}
        )

    # -- life cycle --

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"RegistryClient({self.base_url!r})"

    # -- reading --

    def get_manifest(
        self,
        repository: str,
        reference: str | Digest,
        *,
        accept: str = MANIFEST_ACCEPT,
        max_size: int = MANIFEST_MAX,
    ) -> Manifest:
        """The manifest under a tag or digest; its digest is our hash of the bytes."""
        ref = self._reference(reference)
        where = f"{self.registry}/{repository}{'@' if isinstance(ref, Digest) else ':'}{ref}"
        resp = self._call(
            "GET",
            f"/v2/{self._repo(repository)}/manifests/{ref}",
            scope=_pull(repository),
            headers={"Accept": accept},
        )
        with resp:
            if resp.status_code == 404:
                raise ManifestNotFound(f"manifest unknown: {where}", why=_error_summary(resp))
            self._expect(resp, (200,), f"fetch the manifest {where}", repository)
            raw = _read_capped(resp, max_size, f"manifest {where}", self.host)
            content_type = resp.headers.get("Content-Type", "")
            claimed = resp.headers.get("Docker-Content-Digest")
        expected = ref if isinstance(ref, Digest) else None
        if expected is None and claimed:
            claim = _claimed_digest(claimed, where)
            if not claim.matches(raw):
                raise RegistryError(
                    "registry served manifest bytes that do not match the digest",
                    why=f"{where}: the registry says {claim}, the bytes hash to "
                    f"{Digest.of(raw, claim.algorithm)}",
                )
        return parse_manifest(raw, content_type, expected=expected, where=where)

    def head_manifest(self, repository: str, reference: str | Digest) -> Digest | None:
        """The digest the registry *claims* for a tag (not verified), or None if absent.

        For existence and change checks only; never pin what this returns.
        """
        ref = self._reference(reference)
        resp = self._call(
            "HEAD",
            f"/v2/{self._repo(repository)}/manifests/{ref}",
            scope=_pull(repository),
            headers={"Accept": MANIFEST_ACCEPT},
        )
        with resp:
            if resp.status_code == 404:
                return None
            self._expect(resp, (200,), f"look up {repository}:{ref}", repository)
            claimed = resp.headers.get("Docker-Content-Digest", "").strip()
        if isinstance(ref, Digest):
            return ref
        try:
            return Digest.parse(claimed)
        except SafeDockerError as e:
            raise RegistryError(
                f"registry reported no valid digest for {repository}:{ref}"
            ) from e

    def resolve(
        self, repository: str, reference: str | Digest, platform: Platform | str | None = None
    ) -> Resolved:
        """Tag or digest → the digest to pin, plus the image manifest for ``platform``."""
        top = self.get_manifest(repository, reference)
        if not top.is_index:
            return Resolved(top.digest, top)
        child = select_platform(top, platform)
        manifest = self.get_manifest(repository, child.digest)
        if manifest.is_index:
            raise RegistryError(
                f"registry served a nested index for {repository}@{child.digest}",
                why="an index entry for a platform must be an image manifest",
            )
        return Resolved(top.digest, manifest, index=top)

    def get_blob(self, repository: str, blob: Digest | Descriptor, max_size: int) -> bytes:
        """Blob bytes, hash-checked and capped at ``max_size`` while streaming."""
        digest = blob.digest if isinstance(blob, Descriptor) else blob
        if isinstance(blob, Descriptor) and blob.size > max_size:
            raise RegistryError(
                f"blob {digest} is too large", why=f"{blob.size} bytes, at most {max_size}"
            )
        resp = self._call(
            "GET", f"/v2/{self._repo(repository)}/blobs/{digest}", scope=_pull(repository)
        )
        with resp:
            if resp.status_code == 404:
                raise BlobNotFound(f"blob unknown: {self.registry}/{repository}@{digest}")
            self._expect(resp, (200,), f"fetch the blob {digest}", repository)
            data = _read_capped(resp, max_size, f"blob {digest}", self.host)
        if not digest.matches(data):
            raise RegistryError(
                "registry served blob bytes that do not match the digest",
                why=f"{repository}@{digest}",
            )
        if isinstance(blob, Descriptor) and len(data) != blob.size:
            raise RegistryError(
                f"blob {digest} has the wrong size",
                why=f"{len(data)} bytes, the descriptor says {blob.size}",
            )
        return data

    def blob_exists(self, repository: str, digest: Digest, *, push: bool = False) -> bool:
        resp = self._call(
            "HEAD",
            f"/v2/{self._repo(repository)}/blobs/{digest}",
            scope=_push(repository) if push else _pull(repository),
        )
        with resp:
            if resp.status_code == 404:
                return False
            self._expect(resp, (200,), f"look up the blob {digest}", repository)
            return True

    def referrers(
        self, repository: str, digest: Digest, artifact_type: str | None = None
    ) -> Referrers:
        """What refers to ``digest``: the OCI 1.1 referrers API, else the tag schema."""
        found = self._referrers_api(repository, digest, artifact_type)
        if found is not None:
            return found
        try:
            index = self.get_manifest(repository, digest.tag_prefix, accept=OCI_INDEX)
        except ManifestNotFound:
            return Referrers(digest, (), "tag")
        if index.media_type != OCI_INDEX:
            raise RegistryError(
                f"the referrers tag {repository}:{digest.tag_prefix} is not an OCI index",
                why=f"it is {index.media_type}",
            )
        return Referrers(digest, _filter(index.children, artifact_type), "tag", index=index)

    def _referrers_api(
        self, repository: str, digest: Digest, artifact_type: str | None
    ) -> Referrers | None:
        url = f"{self.base_url}/v2/{self._repo(repository)}/referrers/{digest}"
        if artifact_type:
            url += "?" + urlencode({"artifactType": artifact_type})
        found: list[Descriptor] = []
        for _ in range(PAGES_MAX):
            resp = self._call("GET", url, scope=_pull(repository), headers={"Accept": OCI_INDEX})
            with resp:
                if resp.status_code in (401, 403):
                    self._expect(resp, (200,), f"list referrers of {digest}", repository)
                if resp.status_code != 200:
                    log.debug("referrers API answered %s; using the tag schema", resp.status_code)
                    return None
                content_type = _bare_content_type(resp.headers.get("Content-Type"))
                raw = _read_capped(resp, MANIFEST_MAX, f"referrers of {digest}", self.host)
                link = resp.headers.get("Link")
            if content_type != OCI_INDEX:
                log.debug("referrers API answered %r; using the tag schema", content_type)
                return None
            try:
                page = parse_manifest(raw, content_type, where=f"referrers of {digest}")
            except RegistryError:
                log.debug("referrers API answered something not an index; using the tag schema")
                return None
            found.extend(page.children)
            next_url = self._next_link(url, link)
            if next_url is None:
                return Referrers(digest, _filter(found, artifact_type), "api")
            url = next_url
        raise RegistryError(f"too many pages of referrers for {digest}")

    def list_tags(self, repository: str, *, max_tags: int = TAGS_MAX) -> tuple[str, ...]:
        """All tags of ``repository`` (following Link pagination), at most ``max_tags``."""
        url = f"{self.base_url}/v2/{self._repo(repository)}/tags/list"
        tags: list[str] = []
        for _ in range(PAGES_MAX):
            resp = self._call("GET", url, scope=_pull(repository))
            with resp:
                if resp.status_code == 404:
                    raise ManifestNotFound(f"repository unknown: {self.registry}/{repository}")
                self._expect(resp, (200,), f"list the tags of {repository}", repository)
                raw = _read_capped(resp, TAGS_PAGE_MAX, f"tags of {repository}", self.host)
                link = resp.headers.get("Link")
            try:
                doc = strict_json(raw)
            except (UnicodeDecodeError, ValueError, RecursionError) as e:
                raise RegistryError(f"registry served a malformed tag list for {repository}") from e
            page = doc.get("tags") if isinstance(doc, dict) else None
            if page is None and isinstance(doc, dict):
                page = []
            if not isinstance(page, list) or not all(isinstance(t, str) for t in page):
                raise RegistryError(f"registry served a malformed tag list for {repository}")
            tags.extend(page)
            if len(tags) > max_tags:
                raise RegistryError(
                    f"{repository} has too many tags", why=f"more than {max_tags}"
                )
            next_url = self._next_link(url, link)
            if next_url is None:
                return tuple(tags)
            url = next_url
        raise RegistryError(f"too many pages of tags for {repository}")

    # -- writing --

    def push_blob(self, repository: str, data: bytes) -> Digest:
        """Upload ``data`` as a blob (monolithic), unless the registry already has it."""
        digest = Digest.of(data)
        if self.blob_exists(repository, digest, push=True):
            return digest
        repo = self._repo(repository)
        resp = self._call("POST", f"/v2/{repo}/blobs/uploads/", scope=_push(repository),
                          data=b"")
        with resp:
            self._expect(resp, (202,), f"start a blob upload to {repository}", repository)
            location = resp.headers.get("Location")
        if not location:
            raise RegistryError("registry started an upload without a Location")
        upload = urljoin(self.base_url + "/", location)
        sep = "&" if urlsplit(upload).query else "?"
        upload += sep + urlencode({"digest": str(digest)})
        resp = self._call(
            "PUT",
            upload,
            scope=_push(repository),
            headers={"Content-Type": "application/octet-stream"},
            data=data,
        )
        with resp:
            self._expect(resp, (201,), f"upload the blob {digest}", repository)
        return digest

    def push_manifest(
        self, repository: str, reference: str | Digest, raw: bytes, media_type: str
    ) -> Digest:
        """Put ``raw`` under a tag or digest; returns its digest (our hash)."""
        ref = self._reference(reference)
        digest = Digest.of(raw, ref.algorithm if isinstance(ref, Digest) else "sha256")
        if isinstance(ref, Digest) and ref != digest:
            raise UsageError(f"manifest bytes do not hash to {ref}")
        if len(raw) > MANIFEST_MAX:
            raise UsageError(f"manifest is too large ({len(raw)} bytes)")
        resp = self._call(
            "PUT",
            f"/v2/{self._repo(repository)}/manifests/{ref}",
            scope=_push(repository),
            headers={"Content-Type": media_type},
            data=raw,
        )
        with resp:
            self._expect(resp, (200, 201), f"push the manifest {repository}:{ref}", repository)
            claimed = resp.headers.get("Docker-Content-Digest", "").strip()
        if claimed:
            claim = _claimed_digest(claimed, f"{repository}:{ref}")
            if not claim.matches(raw):
                raise RegistryError(
                    "registry stored manifest bytes that do not match the digest",
                    why=f"it says {claim}, we sent {digest}",
                )
        return digest

    # -- plumbing --

    @staticmethod
    def _repo(repository: str) -> str:
        if not _REPOSITORY_RE.match(repository):
            raise UsageError(f"invalid repository name {repository!r}")
        return repository

    @staticmethod
    def _reference(reference: str | Digest) -> str | Digest:
        if isinstance(reference, Digest):
            return reference
        if ":" in reference:
            return Digest.parse(reference)
        if not is_valid_tag(reference):
            raise UsageError(f"invalid tag {reference!r}")
        return reference

    def _url(self, path_or_url: str) -> str:
        return self.base_url + path_or_url if path_or_url.startswith("/") else path_or_url

    def _next_link(self, current: str, link: str | None) -> str | None:
        if not link:
            return None
        match = _LINK_NEXT_RE.search(link)
        if match is None:
            return None
        nxt: str = urljoin(current, str(match.group(1)))
        if _origin(nxt) != _origin(self.base_url):
            raise RegistryError("registry paginated to another host", why=_redact(nxt))
        return nxt

    def _plain_http_ok(self, url: str) -> bool:
        netloc = urlsplit(url).netloc.rpartition("@")[2]
        return registry_scheme(netloc, self._insecure) == "http"

    def _call(
        self,
        method: str,
        path_or_url: str,
        *,
        scope: str,
        headers: Mapping[str, str] | None = None,
        data: bytes | None = None,
    ) -> requests.Response:
        """One request with auth: up-front when the challenge is known, else on a 401."""
        url = self._url(path_or_url)
        authorization = self._authorization(scope)
        resp = self._send(method, url, headers, data, authorization)
        if resp.status_code != 401:
            return resp
        challenge = parse_challenge(resp.headers.get("WWW-Authenticate", ""))
        summary = _error_summary(resp)
        resp.close()
        if challenge is None:
            raise self._denied(401, scope, summary)
        with _lock:
            _challenges[self._challenge_key] = challenge
        if authorization is not None and challenge.scheme == "bearer":
            self._forget_token(scope)  # expired or too narrow: ask once more
        elif authorization is not None:
            raise self._denied(401, scope, summary)
        authorization = self._authorization(scope)
        if authorization is None:
            raise self._denied(401, scope, summary)
        resp = self._send(method, url, headers, data, authorization)
        if resp.status_code == 401:
            summary = _error_summary(resp)
            resp.close()
            raise self._denied(401, scope, summary)
        return resp

    @property
    def _challenge_key(self) -> tuple[str, str]:
        return (self.base_url, self._docker_config_dir or os.environ.get("DOCKER_CONFIG", ""))

    def _token_key(self, scope: str) -> tuple[str, str, str]:
        return (*self._challenge_key, scope)

    def _forget_token(self, scope: str) -> None:
        with _lock:
            _tokens.pop(self._token_key(scope), None)

    def _creds(self) -> _Credentials | None:
        if not self._credentials_loaded:
            self._credentials = _load_credentials(self.registry, self._docker_config_dir)
            self._credentials_loaded = True
        return self._credentials

    def _authorization(self, scope: str) -> str | None:
        """The Authorization header value for ``scope``, if the registry wants one."""
        with _lock:
            challenge = _challenges.get(self._challenge_key)
        if challenge is None:
            return None
        if challenge.scheme == "basic":
            creds = self._creds()
            if creds is None or creds.password is None:
                return None
            pair = f"{creds.username}:{creds.password}".encode()
            return "Basic " + base64.b64encode(pair).decode("ascii")
        key = self._token_key(scope)
        with _lock:
            token = _tokens.get(key)
        if token is not None and token.expires_at > time.monotonic():
            return f"Bearer {token.value}"
        token = self._fetch_token(challenge, scope)
        with _lock:
            _tokens[key] = token
        return f"Bearer {token.value}"

    def _fetch_token(self, challenge: _Challenge, scope: str) -> _Token:
        realm = challenge.params["realm"]
        scheme, netloc = _origin(realm)
        if scheme not in ("http", "https") or not netloc:
            raise RegistryError(f"{self.registry} named an invalid token realm")
        if scheme == "http" and not self._plain_http_ok(realm):
            raise RegistryError(
                f"{self.registry} asked for credentials over plain HTTP",
                why=f"token realm {_redact(realm)}",
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
            resp = self._send(
                "POST",
                realm,
                {"Content-Type": "application/x-www-form-urlencoded"},
                urlencode(form).encode(),
                None,
                follow=False,
            )
        else:
            if creds is not None and creds.password is not None:
                pair = f"{creds.username}:{creds.password}".encode()
                headers["Authorization"] = "Basic " + base64.b64encode(pair).decode("ascii")
            sep = "&" if urlsplit(realm).query else "?"
            resp = self._send(
                "GET", realm + sep + urlencode(query), headers, None, None, follow=False
            )
        with resp:
            if resp.status_code in (401, 403):
                raise RegistryError(
                    f"{self.registry} refused the credentials for {scope}",
                    why=f"token service answered HTTP {resp.status_code}",
                    hint=f"log in again with `docker login {self.registry}`",
                )
            if resp.status_code != 200:
                raise self._unexpected(resp, "get an access token")
            raw = _read_capped(resp, TOKEN_RESPONSE_MAX, "token response", self.host)
        try:
            doc = strict_json(raw)
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
        return _Token(value, time.monotonic() + lifetime - 10.0)

    def _send(
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
        home = _origin(self.base_url)
        for _ in range(REDIRECTS_MAX + 1):
            sent = dict(headers or {})
            if authorization is not None and _origin(url) == home:
                sent["Authorization"] = authorization
            resp = self._exchange(method, url, sent, data)
            if not (follow and method in ("GET", "HEAD") and resp.is_redirect):
                return resp
            location = resp.headers.get("Location", "")
            resp.close()
            target = urljoin(url, location)
            scheme = urlsplit(target).scheme.lower()
            if scheme not in ("http", "https") or (
                scheme == "http" and not self._plain_http_ok(target)
            ):
                raise RegistryError(
                    f"{self.registry} redirected to an insecure location", why=_redact(target)
                )
            log.debug("redirected to %s", _redact(target))
            url = target
        raise RegistryError(f"{self.registry} redirected too many times", why=_redact(url))

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
                raise _connection_error(self.host, e) from e
            log.debug("%s %s -> %s", method, _redact(url), resp.status_code)
            if resp.status_code not in RETRY_STATUSES or attempt == self._tries:
                return resp
            delay = _retry_delay(resp, attempt)
            resp.close()
            log.debug("retrying in %.2fs", delay)
            _sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    def _expect(
        self, resp: requests.Response, ok: tuple[int, ...], doing: str, repository: str
    ) -> None:
        if resp.status_code in ok:
            return
        if resp.status_code in (401, 403):
            raise self._denied(resp.status_code, _pull(repository), _error_summary(resp))
        raise self._unexpected(resp, doing)

    def _unexpected(self, resp: requests.Response, doing: str) -> SafeDockerError:
        status = resp.status_code
        why = f"HTTP {status}"
        summary = _error_summary(resp)
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

    def _denied(self, status: int, scope: str, summary: str) -> RegistryError:
        why = f"HTTP {status}" + (f": {summary}" if summary else "")
        repository = scope.split(":")[1] if scope.count(":") >= 2 else scope
        return RegistryError(
            f"{self.registry} denied access to {repository}",
            why=why,
            hint=f"the repository may not exist, or it needs `docker login {self.registry}`",
        )


def _pull(repository: str) -> str:
    return f"repository:{repository}:pull"


def _push(repository: str) -> str:
    return f"repository:{repository}:pull,push"


def _filter(descriptors: Iterable[Descriptor], artifact_type: str | None) -> tuple[Descriptor, ...]:
    if not artifact_type:
        return tuple(descriptors)
    return tuple(d for d in descriptors if d.artifact_type == artifact_type)


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


def _read_capped(resp: requests.Response, cap: int, what: str, host: str) -> bytes:
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
        raise _connection_error(host, e) from e
    return bytes(body)


def _error_summary(resp: requests.Response) -> str:
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


def _connection_error(host: str, e: requests.RequestException) -> SafeDockerError:
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
        return RegistryError(f"cannot talk to {host}", why=e.__class__.__name__)
    return RegistryUnavailable(f"cannot reach {host}", why=why, hint=NETWORK_HINT)

