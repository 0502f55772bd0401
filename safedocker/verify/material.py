"""Signature material: the raw bytes fetched for one digest, and the two ways to fetch it.

The cosign ``.sig`` tag (``sha256-<hex>.sig``: a manifest whose layers are simple-signing
payloads) and sigstore bundles attached through OCI referrers (referrers API or the
``sha256-<hex>`` tag schema, which :meth:`RegistryClient.referrers` falls back to). The
material is kept byte for byte so the check can be re-done offline; nothing here decides.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from safedocker._internal import strictjson
from safedocker._internal.encoding import b64decode, b64encode
from safedocker.errors import SafeDockerError, VerificationError

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from safedocker.oci.client import RegistryReader
    from safedocker.oci.manifest import Descriptor
    from safedocker.reference import Digest
    from safedocker.signatures.cosign import CosignSignature

SIG_TAG_SUFFIX = ".sig"
MATERIAL_KIND_COSIGN = "cosign-sig"


@dataclass(frozen=True)
class SignatureMaterial:
    """The raw bytes fetched for one digest, kept so the check can be re-done offline.

    ``bundles_fetched`` says whether the OCI referrers were looked at: they are fetched
    only when the `.sig` signatures alone do not satisfy the policy (or an attestation is
    required), which keeps a cold key-signed verify at three registry requests.
    """

    digest: Digest
    sig_manifest: bytes | None  # the `sha256-<hex>.sig` manifest; None: no such tag
    blobs: Mapping[str, bytes] = field(default_factory=dict)
    fetched_at: float = field(default_factory=time.time)
    bundles: tuple[bytes, ...] = ()  # sigstore bundles attached through OCI referrers
    bundle_errors: tuple[str, ...] = ()  # referrers that announced a bundle but were unusable
    bundles_fetched: bool = False

    @property
    def empty(self) -> bool:
        return self.sig_manifest is None and not self.bundles and not self.bundle_errors

    def with_bundles(self, bundles: Sequence[bytes], errors: Sequence[str]) -> SignatureMaterial:
        return SignatureMaterial(self.digest, self.sig_manifest, self.blobs, self.fetched_at,
                                 tuple(bundles), tuple(errors), bundles_fetched=True)

    def to_bytes(self) -> bytes:
        return json.dumps({
            "digest": str(self.digest),
            "sig_manifest": _b64(self.sig_manifest),
            "blobs": {k: _b64(v) for k, v in sorted(self.blobs.items())},
            "fetched_at": self.fetched_at,
            "bundles": [_b64(b) for b in self.bundles],
            "bundle_errors": list(self.bundle_errors),
            "bundles_fetched": self.bundles_fetched,
        }, sort_keys=True).encode()

    def clamped(self, ceiling: float) -> SignatureMaterial:
        """This material with ``fetched_at`` no later than ``ceiling`` (see
        :func:`clamp_material_time`)."""
        when = self.fetched_at if self.fetched_at <= ceiling else ceiling  # NaN: ceiling
        return SignatureMaterial(self.digest, self.sig_manifest, self.blobs, when,
                                 self.bundles, self.bundle_errors, self.bundles_fetched)

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
            )
        except (ValueError, KeyError, TypeError, AttributeError, RecursionError,
                SafeDockerError) as e:
            raise VerificationError("cached signature material is unreadable",
                                    hint="run online once, or `safe-docker cache prune`") from e

    def signatures(self) -> tuple[list[CosignSignature], list[str]]:
        """The cosign signatures in this material, and why any layer was skipped."""
        from safedocker.signatures.cosign import from_layer, signature_layers

        if self.sig_manifest is None:
            return [], []
        found, skipped = [], []
        for layer in signature_layers(self.sig_manifest):
            blob = self.blobs.get(str(layer.digest))
            if blob is None or not layer.digest.matches(blob):
                skipped.append(f"signature layer {layer.digest} missing or altered")
                continue
            try:
                found.append(from_layer(layer.annotations, layer.media_type, blob))
            except VerificationError as e:
                skipped.append(e.why or e.what)
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
    """Add the sigstore bundles attached to ``material.digest`` through OCI referrers."""
    candidates = fetch_bundles(client, repository, material.digest)
    bundles = [c.raw for c in candidates if not c.error]
    errors = [f"bundle {c.referrer}: {c.error}" for c in candidates if c.error]
    return material.with_bundles(bundles, errors)


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
    from safedocker.signatures.bundle import MAX_BUNDLES

    referrers = client.referrers(repository, digest)
    out: list[BundleCandidate] = []
    for desc in referrers.descriptors:
        if not _is_bundle(desc):
            continue
        if len(out) >= MAX_BUNDLES:
            break
        out.append(_fetch_one(client, repository, digest, desc, referrers.source))
    return out


def _unusable(why: str) -> VerificationError:
    return VerificationError("sigstore bundle does not verify", why=why)


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
