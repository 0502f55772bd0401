"""Cosign "classic" signatures: the layers of a ``sha256-<hex>.sig`` manifest.

Each layer is one signature: its blob is the simple-signing payload, its annotations
carry the base64 signature and, for keyless or PKI signing, the certificate, chain and
Rekor bundle. Verification order follows cosign and containers/image: check the media
type, verify the signature over the exact blob bytes, and only then parse the payload.
"""

from __future__ import annotations

import binascii
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Literal

from safedocker._internal.encoding import b64decode
from safedocker._internal.strictjson import loads_strict
from safedocker.errors import UsageError, VerificationError
from safedocker.reference import Digest, parse_reference
from safedocker.signatures.simplesigning import (
    MAX_PAYLOAD_SIZE,
    SimpleSigningPayload,
    parse_payload,
)

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from safedocker.reference import ImageRef
    from safedocker.trust.keys import PublicKey

SIMPLE_SIGNING_MEDIA_TYPE = "application/vnd.dev.cosign.simplesigning.v1+json"
SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature"
CERTIFICATE_ANNOTATION = "dev.sigstore.cosign/certificate"
CHAIN_ANNOTATION = "dev.sigstore.cosign/chain"
BUNDLE_ANNOTATION = "dev.sigstore.cosign/bundle"
# cosign's "experimental OCI 1.1" mode (--registry-referrers-mode=oci-1-1): the `.sig`
# manifest pushed as a referrer of the image, with this artifact type.
SIGNATURE_ARTIFACT_TYPE = "application/vnd.dev.cosign.artifact.sig.v1+json"

MAX_MANIFEST_SIZE = 4 * 1024 * 1024
MAX_LAYERS = 100
MAX_SIGNATURE_SIZE = 16 * 1024  # base64 text; RSA-16384 signatures are ~2.8 KiB

ReferenceMode = Literal["digest", "repository", "exact"]


@dataclass(frozen=True)
class LayerDescriptor:
    """One layer of a ``.sig`` manifest; its blob is fetched by ``digest``."""

    media_type: str
    digest: Digest
    size: int
    annotations: Mapping[str, str] = field(compare=False)

    @property
    def oversized(self) -> bool:
        """Too large to be a signature payload: do not fetch it."""
        return self.size > MAX_PAYLOAD_SIZE


@dataclass(frozen=True)
class CosignSignature:
    """One cosign signature as found in a registry, not yet verified."""

    media_type: str
    payload: bytes = field(repr=False)  # the layer blob, signed byte for byte
    signature_b64: str  # "" when the layer carries no signature annotation
    certificate_pem: bytes | None = field(default=None, repr=False)
    chain_pem: bytes | None = field(default=None, repr=False)
    bundle_json: bytes | None = field(default=None, repr=False)
    annotations: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)

    @property
    def signature(self) -> bytes:
        """The raw signature bytes, or raise :class:`VerificationError`."""
        return decode_signature(self.signature_b64)

    @property
    def is_simple_signing(self) -> bool:
        return self.media_type == SIMPLE_SIGNING_MEDIA_TYPE


@dataclass(frozen=True)
class KeySignatureResult:
    """The outcome of one signature against the trusted keys; ``reason`` says why not."""

    verified: bool
    key_name: str | None = None
    payload: SimpleSigningPayload | None = None
    reason: str = ""


def decode_signature(text: str) -> bytes:
    """Base64 as Go's StdEncoding reads it (line breaks ignored), strictly otherwise."""
    if not text:
        raise VerificationError("invalid cosign signature", why="no signature annotation")
    if len(text) > MAX_SIGNATURE_SIZE:
        raise VerificationError("invalid cosign signature", why="signature is too large")
    try:
        return b64decode(text, ignore_newlines=True)
    except (binascii.Error, ValueError) as e:
        raise VerificationError("invalid cosign signature", why="signature is not base64") from e


def signature_layers(manifest_bytes: bytes) -> list[LayerDescriptor]:
    """The layers of a cosign ``.sig`` manifest (OCI or Docker schema 2), bounded."""

    def bad(why: str) -> VerificationError:
        return VerificationError("invalid cosign signature manifest", why=why)

    if len(manifest_bytes) > MAX_MANIFEST_SIZE:
        raise bad(f"larger than {MAX_MANIFEST_SIZE} bytes")
    manifest = loads_strict(manifest_bytes, "cosign signature manifest")
    if not isinstance(manifest, dict) or manifest.get("schemaVersion") != 2:
        raise bad("not a schema 2 image manifest")
    layers = manifest.get("layers")
    if not isinstance(layers, list):
        raise bad("no layers list")
    if len(layers) > MAX_LAYERS:
        raise bad(f"{len(layers)} layers, more than {MAX_LAYERS}")
    out = []
    for index, layer in enumerate(layers):
        if not isinstance(layer, dict):
            raise bad(f"layer {index} is not an object")
        media_type, size = layer.get("mediaType"), layer.get("size")
        digest_text = layer.get("digest")
        annotations = layer.get("annotations") or {}
        if not isinstance(media_type, str) or not isinstance(digest_text, str):
            raise bad(f"layer {index} lacks mediaType or digest")
        # bool is an int in Python; JSON true is not a size.
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise bad(f"layer {index} has an invalid size")
        if not isinstance(annotations, dict) or not all(
            isinstance(v, str) for v in annotations.values()
        ):
            raise bad(f"layer {index} annotations are not strings")
        try:
            digest = Digest.parse(digest_text)
        except UsageError as e:
            raise bad(f"layer {index} digest {digest_text!r} is invalid") from e
        out.append(LayerDescriptor(media_type, digest, size, MappingProxyType(dict(annotations))))
    return out


def from_layer(annotations: Mapping[str, str], media_type: str, blob: bytes) -> CosignSignature:
    """Build the signature value of one layer; raises only for an oversized blob."""
    if len(blob) > MAX_PAYLOAD_SIZE:
        raise VerificationError(
            "invalid cosign signature", why=f"payload larger than {MAX_PAYLOAD_SIZE} bytes"
        )

    def optional_bytes(name: str) -> bytes | None:
        value = annotations.get(name)
        return value.encode("utf-8") if value else None

    return CosignSignature(
        media_type=media_type,
        payload=bytes(blob),
        signature_b64=annotations.get(SIGNATURE_ANNOTATION, ""),
        certificate_pem=optional_bytes(CERTIFICATE_ANNOTATION),
        chain_pem=optional_bytes(CHAIN_ANNOTATION),
        bundle_json=optional_bytes(BUNDLE_ANNOTATION),
        annotations=MappingProxyType(dict(annotations)),
    )


def signatures_from_manifest(manifest_bytes: bytes, blobs: Mapping[str, bytes]
                             ) -> tuple[list[CosignSignature], list[str]]:
    """The signatures of a cosign signature manifest whose layer blobs were fetched into
    ``blobs`` (by digest string), and why any layer was skipped (missing, altered, too big).
    """
    found, skipped = [], []
    for layer in signature_layers(manifest_bytes):
        blob = blobs.get(str(layer.digest))
        if blob is None or not layer.digest.matches(blob):
            skipped.append(f"signature layer {layer.digest} missing or altered")
            continue
        try:
            found.append(from_layer(layer.annotations, layer.media_type, blob))
        except VerificationError as e:
            skipped.append(e.why or e.what)
    return found, skipped


def is_signature_referrer(manifest_bytes: bytes) -> bool:
    """Whether a referrer manifest is a cosign OCI 1.1 signature artifact (``artifactType``,
    or the config media type older cosign releases alone set)."""
    try:
        manifest = loads_strict(manifest_bytes, "referrer manifest")
    except VerificationError:
        return False
    if not isinstance(manifest, dict):
        return False
    config = manifest.get("config")
    config_type = config.get("mediaType") if isinstance(config, dict) else None
    return SIGNATURE_ARTIFACT_TYPE in (manifest.get("artifactType"), config_type)


def referrer_signatures(manifest_bytes: bytes, subject: Digest, blobs: Mapping[str, bytes]
                        ) -> tuple[list[CosignSignature], list[str]]:
    """The cosign signatures of an OCI 1.1 signature referrer of the image ``subject``.

    The artifact must be a cosign signature artifact whose ``subject`` is the image (a
    referrer found for one image and naming another proves nothing about it); its layers
    are read exactly as a ``.sig`` manifest's. Raises :class:`VerificationError` when the
    manifest is not such an artifact; skipped layers are returned with their reasons.
    """
    def bad(why: str) -> VerificationError:
        return VerificationError("invalid cosign signature referrer", why=why)

    if len(manifest_bytes) > MAX_MANIFEST_SIZE:
        raise bad(f"larger than {MAX_MANIFEST_SIZE} bytes")
    if not is_signature_referrer(manifest_bytes):
        raise bad(f"not a cosign signature artifact ({SIGNATURE_ARTIFACT_TYPE})")
    manifest = loads_strict(manifest_bytes, "referrer manifest")
    assert isinstance(manifest, dict)  # noqa: S101 - checked by is_signature_referrer
    named = manifest.get("subject")
    digest_text = named.get("digest") if isinstance(named, dict) else None
    if digest_text != str(subject):
        raise bad(f"it names {digest_text or 'no subject'}, not {subject}")
    return signatures_from_manifest(manifest_bytes, blobs)


def verify_with_keys(
    sig: CosignSignature, keys: Sequence[PublicKey], expected_digest: Digest
) -> KeySignatureResult:
    """Check one signature against the trusted keys and the image digest; never raises."""
    if not sig.is_simple_signing:
        return KeySignatureResult(
            False, reason=f"not a cosign signature (layer media type {sig.media_type!r})"
        )
    try:
        raw = sig.signature
    except VerificationError as e:
        return KeySignatureResult(False, reason=e.why)
    signer = next((key for key in keys if key.verify(raw, sig.payload)), None)
    if signer is None:
        names = ", ".join(key.name for key in keys) or "none configured"
        return KeySignatureResult(
            False, reason=f"signature does not verify with any trusted key ({names})"
        )
    try:
        payload = parse_payload(sig.payload)
    except VerificationError as e:
        return KeySignatureResult(False, key_name=signer.name, reason=f"{e.what}: {e.why}")
    if payload.manifest_digest != expected_digest:
        return KeySignatureResult(
            False,
            key_name=signer.name,
            payload=payload,
            reason=f"signed payload names digest {payload.manifest_digest}, not {expected_digest}",
        )
    return KeySignatureResult(True, key_name=signer.name, payload=payload)


def check_reference(
    payload: SimpleSigningPayload, image_ref: ImageRef, mode: ReferenceMode
) -> str | None:
    """Why the signed docker-reference does not fit ``image_ref`` under ``mode``, or None.

    ``repository``: same registry and repository; ``exact``: the same tag or digest too
    (a reference without either means ``:latest``, as docker reads it).
    """
    if mode == "digest":
        return None
    try:
        signed = parse_reference(payload.docker_reference)
    except UsageError:
        return f"signed docker-reference {payload.docker_reference!r} is not a valid reference"
    if signed.name != image_ref.name:
        return f"signature is for {signed.name}, not {image_ref.name}"
    if mode == "repository":
        return None
    wanted = image_ref
    if wanted.tag is None and wanted.digest is None:
        wanted = wanted.with_tag("latest")
    if (signed.tag, signed.digest) != (wanted.tag, wanted.digest):
        return f"signature is for {signed}, not {wanted}"
    return None


def check_annotations(payload: SimpleSigningPayload, required: Mapping[str, str]) -> str | None:
    """Why the payload's ``optional`` lacks a required ``key=value`` annotation, or None."""
    for key, value in sorted(required.items()):
        found = payload.optional.get(key)
        if found is None:
            return f"signature lacks required annotation {key}={value}"
        # cosign compares JSON values; a number 1 is not the string "1".
        if found != value or not isinstance(found, str):
            return f"signature annotation {key} is {found!r}, not {value!r}"
    return None
