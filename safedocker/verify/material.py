"""Signature material: the raw bytes fetched for one digest, and the ways to fetch it.

The cosign ``.sig`` tag (``sha256-<hex>.sig``: a manifest whose layers are simple-signing
payloads), and what OCI referrers attach (referrers API or the ``sha256-<hex>`` tag
schema, which :meth:`RegistryClient.referrers` falls back to): sigstore bundles, and
cosign's "experimental OCI 1.1" signature artifacts (the same layers as a ``.sig``
manifest, artifact type ``application/vnd.dev.cosign.artifact.sig.v1+json``), both found
in one referrers listing. The material is kept byte for byte so the check can be re-done
offline; nothing here decides.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from safedocker._internal import strictjson
from safedocker._internal.encoding import b64decode, b64encode
from safedocker.errors import SafeDockerError, VerificationError

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from safedocker.cache.store import Cache
    from safedocker.oci.client import RegistryClient, RegistryReader
    from safedocker.oci.manifest import Descriptor, Referrers
    from safedocker.reference import Digest
    from safedocker.signatures.cosign import CosignSignature
    from safedocker.verify.claims import ClaimFormat

SIG_TAG_SUFFIX = ".sig"
MATERIAL_KIND_COSIGN = "cosign-sig"


@dataclass(frozen=True)
class SignatureMaterial:
    """The raw bytes fetched for one digest, kept so the check can be re-done offline.

    ``bundles_fetched`` says whether the OCI referrers were looked at: the verifier stops
    looking once what it has satisfies the policy (verifier.py's ``_Lookup``), so under a
    rule with keys they are not fetched when the `.sig` signatures do, which keeps a cold
    key-signed verify at three registry requests. Where the referrers came first (a
    keyless rule, a memo) and satisfied the policy, the `.sig` tag was not looked at
    either: ``sig_manifest`` is then None.
    """

    digest: Digest
    sig_manifest: bytes | None  # the `sha256-<hex>.sig` manifest; None: no such tag
    blobs: Mapping[str, bytes] = field(default_factory=dict)
    fetched_at: float = field(default_factory=time.time)
    bundles: tuple[bytes, ...] = ()  # sigstore bundles attached through OCI referrers
    bundle_errors: tuple[str, ...] = ()  # referrers that announced a bundle but were unusable
    bundles_fetched: bool = False  # the referrers were looked at (bundles and sig artifacts)
    # cosign OCI 1.1 signature artifacts (manifests); their layer blobs are in ``blobs``
    sig_referrers: tuple[bytes, ...] = ()

    @property
    def from_referrers(self) -> bool:
        """Whether the referrers listed anything that may be a signature (a bundle, an OCI
        1.1 signature, or one that could not be read)."""
        return bool(self.bundles or self.bundle_errors or self.sig_referrers)

    @property
    def empty(self) -> bool:
        return (self.sig_manifest is None and not self.bundles and not self.bundle_errors
                and not self.sig_referrers)

    def with_bundles(self, bundles: Sequence[bytes], errors: Sequence[str],
                     sig_referrers: Sequence[tuple[bytes, Mapping[str, bytes]]] = (),
                     ) -> SignatureMaterial:
        """This material plus what the referrers listing brought."""
        blobs = dict(self.blobs)
        for _manifest, layer_blobs in sig_referrers:
            blobs.update(layer_blobs)
        return SignatureMaterial(self.digest, self.sig_manifest, blobs, self.fetched_at,
                                 tuple(bundles), tuple(errors), bundles_fetched=True,
                                 sig_referrers=tuple(m for m, _ in sig_referrers))

    def with_sig(self, found: SignatureMaterial) -> SignatureMaterial:
        """This material (referrers looked at first) plus the `.sig` lookup ``found``."""
        return replace(self, sig_manifest=found.sig_manifest, blobs={**self.blobs, **found.blobs},
                       fetched_at=min(self.fetched_at, found.fetched_at))

    def to_bytes(self) -> bytes:
        return json.dumps({
            "digest": str(self.digest),
            "sig_manifest": _b64(self.sig_manifest),
            "blobs": {k: _b64(v) for k, v in sorted(self.blobs.items())},
            "fetched_at": self.fetched_at,
            "bundles": [_b64(b) for b in self.bundles],
            "bundle_errors": list(self.bundle_errors),
            "bundles_fetched": self.bundles_fetched,
            "sig_referrers": [_b64(m) for m in self.sig_referrers],
        }, sort_keys=True).encode()

    def clamped(self, ceiling: float) -> SignatureMaterial:
        """This material with ``fetched_at`` no later than ``ceiling`` (see
        :func:`clamp_material_time`)."""
        when = self.fetched_at if self.fetched_at <= ceiling else ceiling  # NaN: ceiling
        # `replace`, never a field list: a field left out here is a signature dropped.
        return replace(self, fetched_at=when)

    @classmethod
    def from_bytes(cls, data: bytes) -> SignatureMaterial:
        """Parse cached material; everything in it is re-verified, never trusted."""
        from safedocker.reference import Digest

        try:
            obj: Any = strictjson.loads(data)
            blobs = {str(k): b64decode(v) for k, v in obj["blobs"].items()}
            manifest = obj["sig_manifest"]
            errors = obj.get("bundle_errors", [])
            if not all(isinstance(e, str) for e in errors):
                raise TypeError("bundle_errors")
            return cls(
                digest=Digest.parse(obj["digest"]),
                sig_manifest=(
                    None if manifest is None else b64decode(manifest)
                ),
                blobs=blobs,
                fetched_at=_finite(obj["fetched_at"]),
                bundles=tuple(b64decode(b)
                              for b in obj.get("bundles", [])),
                bundle_errors=tuple(errors),
                bundles_fetched=bool(obj.get("bundles_fetched", False)),
                sig_referrers=tuple(b64decode(m) for m in obj.get("sig_referrers", [])),
            )
        except (ValueError, KeyError, TypeError, AttributeError, RecursionError,
                SafeDockerError) as e:
            raise VerificationError(
                "cached signature material is unreadable",
                hint="run online once, or `safe-docker cache prune --all`") from e

    def signatures(self) -> tuple[list[tuple[ClaimFormat, CosignSignature]], list[str]]:
        """The cosign signatures in this material (`.sig` layers, then OCI 1.1 referrer
        layers), each with its format, and why any layer or artifact was skipped."""
        from safedocker.signatures.cosign import referrer_signatures, signatures_from_manifest
        from safedocker.verify.claims import ClaimFormat

        found: list[tuple[ClaimFormat, CosignSignature]] = []
        skipped: list[str] = []
        if self.sig_manifest is not None:
            signatures, why = signatures_from_manifest(self.sig_manifest, self.blobs)
            found += [(ClaimFormat.SIG_TAG, sig) for sig in signatures]
            skipped += why
        for manifest in self.sig_referrers:
            try:
                signatures, why = referrer_signatures(manifest, self.digest, self.blobs)
            except VerificationError as e:
                skipped.append(f"{e.what}: {e.why}")
                continue
            found += [(ClaimFormat.REFERRER, sig) for sig in signatures]
            skipped += why
        return found, skipped


def _finite(value: object) -> float:
    """A time as JSON writes it: a finite number (no "inf", no "nan" strings)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError("fetched_at is not a finite number")
    return float(value)


def clamp_material_time(data: bytes, ceiling: float) -> bytes:
    """Material bytes (``SignatureMaterial.to_bytes``) from outside this machine (a cache
    import, an airgap archive) with their ``fetched_at`` clamped: never later than
    ``ceiling`` (the time of the import), so never in the future. The offline age counts
    from ``fetched_at``; a forged future time would keep stale signatures usable forever.

    Material that does not parse is returned as it is: it is never used (reading it
    refuses).
    """
    try:
        material = SignatureMaterial.from_bytes(data)
    except VerificationError:
        return data
    if material.fetched_at <= ceiling:
        return data
    return material.clamped(ceiling).to_bytes()


def _b64(data: bytes | None) -> str | None:
    return None if data is None else b64encode(data)


def fetch_material(client: RegistryReader, repository: str, digest: Digest) -> SignatureMaterial:
    """Fetch the cosign `.sig` manifest for ``digest`` and its signature layers."""
    from safedocker.oci.client import ManifestNotFound
    from safedocker.oci.media import SIGNATURE_LAYER_MAX
    from safedocker.signatures.cosign import signature_layers

    try:
        manifest = client.get_manifest(repository, digest.tag_prefix + SIG_TAG_SUFFIX)
    except ManifestNotFound:
        return SignatureMaterial(digest, None)
    blobs = {}
    for layer in signature_layers(manifest.raw):
        if layer.oversized:
            continue  # not a signature payload; never download it
        blobs[str(layer.digest)] = client.get_blob(repository, layer.digest, SIGNATURE_LAYER_MAX)
    return SignatureMaterial(digest, manifest.raw, blobs)


def fetch_bundle_material(client: RegistryReader, repository: str,
                          material: SignatureMaterial) -> SignatureMaterial:
    """Add what OCI referrers attach to ``material.digest``: sigstore bundles and cosign
    OCI 1.1 signature artifacts, from one referrers listing."""
    return bundle_material(client, repository, material,
                           list_signature_referrers(client, repository, material.digest))


def list_signature_referrers(client: RegistryReader, repository: str, digest: Digest, *,
                             api: bool = True) -> Referrers:
    """What refers to ``digest`` that may be a signature: the referrers API, else the tag
    schema (``api=False``: the tag schema alone)."""
    return client.referrers(repository, digest, keep=_is_signature, api=api)


def api_signature_referrers(client: RegistryClient, repository: str, digest: Digest
                            ) -> Referrers | None:
    """What the referrers API alone lists for ``digest`` that may be a signature; None:
    the registry has no usable API."""
    return client.api_referrers(repository, digest, keep=_is_signature)


def bundle_material(client: RegistryReader, repository: str, material: SignatureMaterial,
                    referrers: Referrers, *, add: bool = False) -> SignatureMaterial:
    """``material`` with what ``referrers`` lists (bundles, signature artifacts) fetched, in
    place of any referrers it held, or beside them (``add``: a second listing, the
    referrers API's after the tag schema's; the bounds count both)."""
    from safedocker.signatures.bundle import MAX_BUNDLES
    from safedocker.signatures.cosign import SIGNATURE_ARTIFACT_TYPE

    held = material if add else SignatureMaterial(material.digest, None)
    # An unreadable bundle cost its requests as a readable one did: both count.
    fetched = len(held.bundles) + sum(e.startswith(_BUNDLE_ERROR) for e in held.bundle_errors)
    candidates = _bundles_listed(client, repository, material.digest, referrers,
                                 max(0, MAX_BUNDLES - fetched))
    bundles = [*held.bundles, *(c.raw for c in candidates if not c.error)]
    errors = [*held.bundle_errors,
              *(f"{_BUNDLE_ERROR}{c.referrer}: {c.error}" for c in candidates if c.error)]
    artifacts: list[tuple[bytes, Mapping[str, bytes]]] = [(m, {}) for m in held.sig_referrers]
    for desc in referrers.descriptors:
        if desc.artifact_type != SIGNATURE_ARTIFACT_TYPE:
            continue
        if len(artifacts) >= MAX_SIGNATURE_REFERRERS:
            errors.append(f"more than {MAX_SIGNATURE_REFERRERS} signature referrers; the "
                          "rest were not read")
            break
        try:
            artifacts.append(_fetch_signature_referrer(client, repository, material.digest,
                                                       desc))
        except VerificationError as e:
            errors.append(f"signature referrer {desc.digest}: {e.why or e.what}")
    return material.with_bundles(bundles, errors, artifacts)


MAX_SIGNATURE_REFERRERS = 16
_BUNDLE_ERROR = "bundle "  # how an unreadable bundle's error begins (bundle_material)


def _fetch_signature_referrer(client: RegistryReader, repository: str, digest: Digest,
                              desc: Descriptor) -> tuple[bytes, dict[str, bytes]]:
    """One cosign OCI 1.1 signature artifact: its manifest and its signature layers."""
    from safedocker.oci.client import BlobNotFound, ManifestNotFound
    from safedocker.oci.media import SIGNATURE_LAYER_MAX
    from safedocker.signatures.cosign import referrer_signatures, signature_layers

    try:
        manifest = client.get_manifest(repository, desc.digest)
        referrer_signatures(manifest.raw, digest, {})  # the artifact type and the subject
        blobs = {}
        for layer in signature_layers(manifest.raw):
            if not layer.oversized:  # not a signature payload; never download it
                blobs[str(layer.digest)] = client.get_blob(repository, layer.digest,
                                                           SIGNATURE_LAYER_MAX)
    except (ManifestNotFound, BlobNotFound) as e:
        raise VerificationError("signature referrer is unusable", why=e.what) from e
    return manifest.raw, blobs


@dataclass(frozen=True)
class BundleCandidate:
    """One bundle found for an image; ``raw`` is kept byte for byte so it can be cached.

    ``error`` is set (and ``raw`` empty) when a referrer announced a bundle that could
    not be read as one: the caller reports it, it is never silently dropped.
    """

    referrer: Digest  # the referrer (artifact) manifest digest
    media_type: str
    raw: bytes = field(repr=False)
    source: str  # "api" or "tag", as Referrers says
    error: str = ""


def fetch_bundles(client: RegistryReader, repository: str, digest: Digest) -> list[BundleCandidate]:
    """The sigstore bundles that refer to ``digest`` (referrers API or tag schema).

    Registry failures propagate (RegistryUnavailable, RegistryError); a referrer that
    claims to be a bundle but cannot be read comes back with ``error`` set.
    """
    return _bundles_listed(client, repository, digest,
                           client.referrers(repository, digest, keep=_is_bundle))


def _bundles_listed(client: RegistryReader, repository: str, digest: Digest,
                    referrers: Referrers, room: int | None = None) -> list[BundleCandidate]:
    """The bundles ``referrers`` lists, at most ``room`` of them (MAX_BUNDLES)."""
    from safedocker.signatures.bundle import MAX_BUNDLES

    out: list[BundleCandidate] = []
    for desc in referrers.descriptors:
        if not _is_bundle(desc):
            continue
        if len(out) >= (MAX_BUNDLES if room is None else room):
            break
        out.append(_fetch_one(client, repository, digest, desc, referrers.source))
    return out


def _unusable(why: str) -> VerificationError:
    return VerificationError("sigstore bundle does not verify", why=why)


def _is_signature(desc: Descriptor) -> bool:
    """What the referrers listing keeps: bundles and cosign OCI 1.1 signatures (the rest of a
    listing is dropped page by page, never held)."""
    from safedocker.signatures.cosign import SIGNATURE_ARTIFACT_TYPE

    return desc.artifact_type == SIGNATURE_ARTIFACT_TYPE or _is_bundle(desc)


def _is_bundle(desc: Descriptor) -> bool:
    kind = desc.artifact_type or ""
    from safedocker.signatures.bundle import BUNDLE_MEDIA_TYPES

    return any(kind.startswith(t.split(";")[0]) for t in BUNDLE_MEDIA_TYPES)


def _fetch_one(client: RegistryReader, repository: str, digest: Digest, desc: Descriptor,
               source: str) -> BundleCandidate:
    from safedocker.oci.client import BlobNotFound, ManifestNotFound
    from safedocker.signatures.bundle import BUNDLE_MEDIA_TYPES, MAX_BUNDLE_SIZE

    media = desc.artifact_type or ""
    try:
        manifest = client.get_manifest(repository, desc.digest)
        if manifest.subject is None or manifest.subject.digest != digest:
            raise _unusable(f"referrer {desc.digest} does not name {digest} as its subject")
        layers = [layer for layer in manifest.layers if layer.media_type in BUNDLE_MEDIA_TYPES]
        if len(layers) != 1:
            raise _unusable(f"referrer {desc.digest} has {len(layers)} bundle layers, not one")
        raw = client.get_blob(repository, layers[0], MAX_BUNDLE_SIZE)
        return BundleCandidate(desc.digest, layers[0].media_type, raw, source)
    except VerificationError as e:
        return BundleCandidate(desc.digest, media, b"", source, error=e.why)
    except (ManifestNotFound, BlobNotFound) as e:
        return BundleCandidate(desc.digest, media, b"", source, error=e.what)


def cached_signatures(cache: Cache, name: str, digest: Digest) -> int | None:
    """How many signatures the cached material for ``name@digest`` holds (``.sig`` layers
    and bundles), 0 when none were found there, None when nothing usable is cached."""
    from safedocker.cache.store import recall

    record = recall(cache, lambda c: c.get_material(name, digest, MATERIAL_KIND_COSIGN))
    if record is None:
        return None
    try:
        material = SignatureMaterial.from_bytes(record.data)
        manifest: Any = ({} if material.sig_manifest is None
                         else strictjson.loads(material.sig_manifest))
    except VerificationError:
        return None
    layers = manifest.get("layers") if isinstance(manifest, dict) else None
    return (len(layers) if isinstance(layers, list) else 0) + len(material.bundles)
