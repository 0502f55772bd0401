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
    REFERRERS_BYTES_MAX,
    REFERRERS_ENTRIES_MAX,
    REFERRERS_KEPT_MAX,
    REFERRERS_PAGE_MAX,
    REFERRERS_PAGES_MAX,
    bare_content_type,
)
from safedocker.oci.platform import select_platform
from safedocker.oci.transport import (
    DEFAULT_TRIES,
    REQUEST_TIMEOUT,
    Transport,
    error_summary,
)
from safedocker.reference import Digest, is_valid_tag

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping, Sequence

    from safedocker._internal.deadline import Deadline
    from safedocker.oci.platform import Platform
    from safedocker.oci.transport import Reply

log = logging.getLogger(__name__)

_REPOSITORY_RE = re.compile(
    r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$"
)
_LINK_NEXT_RE = re.compile(r'<([^>]*)>\s*;\s*rel="?next"?')
# What a registry without the referrers API answers there: no such route (404; the OCI
# spec forbids a 404 from a registry that has the API), no such method, not implemented.
NO_REFERRERS_API = frozenset({404, 405, 501})


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

    def referrers(self, repository: str, digest: Digest, artifact_type: str | None = None, *,
                  keep: Callable[[Descriptor], bool] | None = None,
                  api: bool = ...) -> Referrers: ...


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
        timeout: float = REQUEST_TIMEOUT,
        tries: int = DEFAULT_TRIES,
        auth_cache: AuthCache | None = None,
    ) -> None:
        """``timeout``: one request's cap (connect, headers and body together);
        ``auth_cache``: challenges and tokens shared with other clients of the same run
        (default: this client's own)."""
        self.registry = registry
        self.host = api_host(registry)
        self._transport = Transport(registry, self.host, insecure_registries=insecure_registries,
                                    timeout=timeout, tries=tries)
        self.scheme = self._transport.scheme
        self.base_url = self._transport.base_url
        self._auth = Authenticator(self._transport, docker_config_dir, auth_cache)
        # What this client saw of the OCI referrers API: True listed, False answered that
        # there is none (a memo's fact), None not asked or no clear answer.
        self.referrers_api: bool | None = None

    @property
    def requests_made(self) -> int:
        return self._transport.requests_made

    @property
    def deadline(self) -> Deadline | None:
        """The end of everything this client still does (one verification's), if any."""
        return self._transport.deadline

    @deadline.setter
    def deadline(self, deadline: Deadline | None) -> None:
        self._transport.deadline = deadline

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
            cap=max_size,
            what=f"manifest {where}",
        )
        if resp.status_code == 404:
            raise ManifestNotFound(f"manifest unknown: {where}", why=error_summary(resp))
        self._expect(resp, (200,), f"fetch the manifest {where}", repository)
        raw = resp.content
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
            "GET", f"/v2/{self._repo(repository)}/blobs/{digest}", scope=_pull(repository),
            cap=max_size, what=f"blob {digest}",
        )
        if resp.status_code == 404:
            raise BlobNotFound(f"blob unknown: {self.registry}/{repository}@{digest}")
        self._expect(resp, (200,), f"fetch the blob {digest}", repository)
        data = resp.content
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
        if resp.status_code == 404:
            return False
        self._expect(resp, (200,), f"look up the blob {digest}", repository)
        return True

    def referrers(
        self, repository: str, digest: Digest, artifact_type: str | None = None, *,
        keep: Callable[[Descriptor], bool] | None = None, api: bool = True,
    ) -> Referrers:
        """What refers to ``digest``: the OCI 1.1 referrers API, else the tag schema;
        ``api=False``: the tag schema only (the registry is known to have no API).

        Only descriptors of ``artifact_type`` that ``keep`` wants are kept, page by page
        as they come; the listing is bounded as a whole (pages, bytes, entries listed and
        kept: :mod:`.media`'s REFERRERS_*), and more than that is a refusal.
        """
        budget = _ReferrersBudget(digest, artifact_type, keep)
        if api and self._referrers_api(repository, digest, artifact_type, budget):
            return Referrers(digest, tuple(budget.kept), "api")
        try:
            index = self.get_manifest(repository, digest.tag_prefix, accept=OCI_INDEX,
                                      max_size=REFERRERS_BYTES_MAX)
        except ManifestNotFound:
            return Referrers(digest, (), "tag")
        if index.media_type != OCI_INDEX:
            raise RegistryError(
                f"the referrers tag {repository}:{digest.tag_prefix} is not an OCI index",
                why=f"it is {index.media_type}",
            )
        budget.take(index.children, len(index.raw))
        return Referrers(digest, tuple(budget.kept), "tag", index=index)

    def api_referrers(
        self, repository: str, digest: Digest, artifact_type: str | None = None, *,
        keep: Callable[[Descriptor], bool] | None = None,
    ) -> Referrers | None:
        """What the OCI 1.1 referrers API lists for ``digest`` (bounded as
        :meth:`referrers`); None: the registry has no usable API (use the tag schema)."""
        budget = _ReferrersBudget(digest, artifact_type, keep)
        if self._referrers_api(repository, digest, artifact_type, budget):
            return Referrers(digest, tuple(budget.kept), "api")
        return None

    def _referrers_api(
        self, repository: str, digest: Digest, artifact_type: str | None,
        budget: _ReferrersBudget,
    ) -> bool:
        """Page through the referrers API into ``budget``; False: the registry has no such
        API (use the tag schema). An answer that says so for certain (404, 405, 501) sets
        :attr:`referrers_api` to False; a listing sets it to True."""
        url = f"{self.base_url}/v2/{self._repo(repository)}/referrers/{digest}"
        if artifact_type:
            url += "?" + urlencode({"artifactType": artifact_type})
        while True:
            budget.next_page()
            resp = self._call("GET", url, scope=_pull(repository), headers={"Accept": OCI_INDEX},
                              cap=budget.page_cap, what=f"page of referrers of {digest}")
            if resp.status_code in (401, 403):
                self._expect(resp, (200,), f"list referrers of {digest}", repository)
            if resp.status_code != 200:
                log.debug("referrers API answered %s; using the tag schema", resp.status_code)
                if resp.status_code in NO_REFERRERS_API:
                    self.referrers_api = False
                return False
            content_type = bare_content_type(resp.headers.get("Content-Type"))
            if content_type != OCI_INDEX:
                log.debug("referrers API answered %r; using the tag schema", content_type)
                return False
            try:
                page = parse_manifest(resp.content, content_type,
                                      where=f"referrers of {digest}")
            except RegistryError:
                log.debug("referrers API answered something not an index; using the tag schema")
                return False
            budget.take(page.children, len(resp.content))
            del page  # one page at a time: only what budget kept outlives it
            self.referrers_api = True
            next_url = self._next_link(url, resp.headers.get("Link"))
            if next_url is None:
                return True
            url = next_url

    # -- writing --

    def push_blob(self, repository: str, data: bytes) -> Digest:
        """Upload ``data`` as a blob (monolithic), unless the registry already has it."""
        digest = Digest.of(data)
        if self.blob_exists(repository, digest, push=True):
            return digest
        repo = self._repo(repository)
        resp = self._call("POST", f"/v2/{repo}/blobs/uploads/", scope=_push(repository),
                          data=b"")
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
        cap: int | None = None,
        what: str = "response",
    ) -> Reply:
        """One request with auth: up-front when the challenge is known, else on a 401.
        A 2xx body is read up to ``cap`` bytes (``None``: not read)."""
        url = self._url(path_or_url)
        with self._auth.first_contact():
            return self._exchange(method, url, scope=scope, headers=headers, data=data,
                                  cap=cap, what=what)

    def _exchange(self, method: str, url: str, *, scope: str,
                  headers: Mapping[str, str] | None, data: bytes | None, cap: int | None,
                  what: str) -> Reply:
        authorization = self._auth.header(scope)
        resp = self._transport.send(method, url, headers, data, authorization, cap=cap,
                                    what=what)
        if resp.status_code != 401:
            return resp
        challenge = parse_challenge(resp.headers.get("WWW-Authenticate", ""))
        summary = error_summary(resp)
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
        resp = self._transport.send(method, url, headers, data, authorization, cap=cap,
                                    what=what)
        if resp.status_code == 401:
            raise denied(self.registry, 401, scope, error_summary(resp))
        return resp

    def _expect(
        self, resp: Reply, ok: tuple[int, ...], doing: str, repository: str
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


class _ReferrersBudget:
    """The referrers of one digest as they come: what is kept, and what the listing has
    cost so far (pages, bytes, entries); past any bound, a refusal."""

    def __init__(self, subject: Digest, artifact_type: str | None,
                 keep: Callable[[Descriptor], bool] | None) -> None:
        self.subject = subject
        self._artifact_type = artifact_type
        self._keep = keep
        self.kept: list[Descriptor] = []
        self.pages = 0
        self.bytes = 0
        self.entries = 0

    def _too_many(self, why: str) -> RegistryError:
        return RegistryError(
            f"too many referrers for {self.subject}", why=why,
            hint="the registry lists more signatures and attachments for this image than "
                 "safe-docker reads; nothing was pulled",
        )

    @property
    def page_cap(self) -> int:
        """The most the next page may hold: one page's cap, or what is left of the total."""
        return max(0, min(REFERRERS_PAGE_MAX, REFERRERS_BYTES_MAX - self.bytes))

    def next_page(self) -> None:
        self.pages += 1
        if self.pages > REFERRERS_PAGES_MAX:
            raise self._too_many(f"more than {REFERRERS_PAGES_MAX} pages")
        if self.page_cap == 0:
            raise self._too_many(f"more than {REFERRERS_BYTES_MAX} bytes in all")

    def take(self, descriptors: Sequence[Descriptor], size: int) -> None:
        self.bytes += size
        self.entries += len(descriptors)
        if self.bytes > REFERRERS_BYTES_MAX:
            raise self._too_many(f"more than {REFERRERS_BYTES_MAX} bytes in all")
        if self.entries > REFERRERS_ENTRIES_MAX:
            raise self._too_many(f"more than {REFERRERS_ENTRIES_MAX} entries")
        for descriptor in _filter(descriptors, self._artifact_type):
            if self._keep is not None and not self._keep(descriptor):
                continue
            self.kept.append(descriptor)
            if len(self.kept) > REFERRERS_KEPT_MAX:
                raise self._too_many(f"more than {REFERRERS_KEPT_MAX} that could be signatures")


def _filter(descriptors: Iterable[Descriptor], artifact_type: str | None) -> tuple[Descriptor, ...]:
    if not artifact_type:
        return tuple(descriptors)
    return tuple(d for d in descriptors if d.artifact_type == artifact_type)
