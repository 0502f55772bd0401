"""OCI distribution v2 client: manifests, blobs, referrers, push.

Everything a registry says is checked here before anyone else sees it: manifest and blob
bytes are hashed locally (a tag resolves to *our* hash of the bytes, never to a header),
sizes are capped while streaming (:mod:`.transport`), JSON is parsed strictly
(:mod:`.manifest`). Authentication is :mod:`.auth`'s, HTTP :mod:`.transport`'s.

Request economy (a benchmark counts ``RegistryClient.requests_made``): no ``/v2/`` ping and
no HEAD before GET.
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Protocol
from urllib.parse import urlencode, urljoin, urlsplit

from safedocker.errors import RegistryError, SafeDockerError, UsageError
from safedocker.oci.auth import AuthCache, Authenticator, denied, parse_challenge
from safedocker.oci.hosts import api_host, origin, redact
from safedocker.oci.manifest import (
    Descriptor,
    Manifest,
    Referrers,
    Resolved,
    parse_manifest,
)
from safedocker.oci.media import (
    MANIFEST_ACCEPT,
    MANIFEST_MAX,
    OCI_INDEX,
    PAGES_MAX,
    bare_content_type,
)
from safedocker.oci.platform import select_platform
from safedocker.oci.transport import (
    DEFAULT_TIMEOUT,
    DEFAULT_TRIES,
    Transport,
    error_summary,
    read_capped,
)
from safedocker.reference import Digest, is_valid_tag

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

    import requests

    from safedocker.oci.platform import Platform

log = logging.getLogger(__name__)

_REPOSITORY_RE = re.compile(
    r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$"
)
_LINK_NEXT_RE = re.compile(r'<([^>]*)>\s*;\s*rel="?next"?')


class ManifestNotFound(RegistryError):
    """The registry has no manifest under that tag or digest (HTTP 404)."""


class BlobNotFound(RegistryError):
    """The registry has no blob with that digest (HTTP 404)."""



class RegistryReader(Protocol):
    """What verification reads from a registry; :class:`RegistryClient` is the
    implementation, tests bring fakes. Every answer is checked as the client checks it:
    manifests and blobs hash to what was asked for."""

    def get_manifest(self, repository: str, reference: str | Digest, *,
                     accept: str = ..., max_size: int = ...) -> Manifest: ...

    def get_blob(self, repository: str, blob: Digest | Descriptor, max_size: int) -> bytes: ...

    def referrers(self, repository: str, digest: Digest,
                  artifact_type: str | None = None) -> Referrers: ...


def _claimed_digest(header: str, where: str) -> Digest:
    """The Docker-Content-Digest a registry sent: a claim to check, never to trust."""
    try:
        return Digest.parse(header.strip())
    except SafeDockerError as e:
        raise RegistryError("registry sent an invalid Docker-Content-Digest", why=where) from e


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
        auth_cache: AuthCache | None = None,
    ) -> None:
        """``auth_cache``: challenges and tokens shared with other clients of the same run
        (default: this client's own)."""
        self.registry = registry
        self.host = api_host(registry)
        self._transport = Transport(registry, self.host, insecure_registries=insecure_registries,
                                    timeout=timeout, tries=tries)
        self.scheme = self._transport.scheme
        self.base_url = self._transport.base_url
        self._auth = Authenticator(self._transport, docker_config_dir, auth_cache)

    @property
    def requests_made(self) -> int:
        return self._transport.requests_made

    # -- life cycle --

    def close(self) -> None:
        self._transport.close()

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
                raise ManifestNotFound(f"manifest unknown: {where}", why=error_summary(resp))
            self._expect(resp, (200,), f"fetch the manifest {where}", repository)
            raw = read_capped(resp, max_size, f"manifest {where}", self.host)
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
            data = read_capped(resp, max_size, f"blob {digest}", self.host)
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
                content_type = bare_content_type(resp.headers.get("Content-Type"))
                raw = read_capped(resp, MANIFEST_MAX, f"referrers of {digest}", self.host)
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
        if origin(nxt) != origin(self.base_url):
            raise RegistryError("registry paginated to another host", why=redact(nxt))
        return nxt

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
        authorization = self._auth.header(scope)
        resp = self._transport.send(method, url, headers, data, authorization)
        if resp.status_code != 401:
            return resp
        challenge = parse_challenge(resp.headers.get("WWW-Authenticate", ""))
        summary = error_summary(resp)
        resp.close()
        if challenge is None:
            raise denied(self.registry, 401, scope, summary)
        self._auth.learn(challenge)
        if authorization is not None and challenge.scheme == "bearer":
            self._auth.forget_token(scope)  # expired or too narrow: ask once more
        elif authorization is not None:
            raise denied(self.registry, 401, scope, summary)
        authorization = self._auth.header(scope)
        if authorization is None:
            raise denied(self.registry, 401, scope, summary)
        resp = self._transport.send(method, url, headers, data, authorization)
        if resp.status_code == 401:
            summary = error_summary(resp)
            resp.close()
            raise denied(self.registry, 401, scope, summary)
        return resp

    def _expect(
        self, resp: requests.Response, ok: tuple[int, ...], doing: str, repository: str
    ) -> None:
        if resp.status_code in ok:
            return
        if resp.status_code in (401, 403):
            raise denied(self.registry, resp.status_code, _pull(repository), error_summary(resp))
        raise self._transport.unexpected(resp, doing)


def _pull(repository: str) -> str:
    return f"repository:{repository}:pull"


def _push(repository: str) -> str:
    return f"repository:{repository}:pull,push"


def _filter(descriptors: Iterable[Descriptor], artifact_type: str | None) -> tuple[Descriptor, ...]:
    if not artifact_type:
        return tuple(descriptors)
    return tuple(d for d in descriptors if d.artifact_type == artifact_type)

