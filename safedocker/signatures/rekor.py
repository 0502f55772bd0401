"""Offline check of a Rekor Signed Entry Timestamp (SET) in a cosign bundle annotation.

The SET is the log's ECDSA signature over the RFC 8785 form of the bundle's Payload
(body, integratedTime, logIndex, logID). A valid SET proves the log accepted this entry
at integratedTime; the entry body must then describe this very signature, signer key
(or certificate) and payload, or the SET proves nothing about them.
"""

from __future__ import annotations

import binascii
import hashlib
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from safedocker._internal.encoding import b64decode
from safedocker._internal.strictjson import loads_strict
from safedocker.errors import VerificationError
from safedocker.signatures.canonicaljson import canonicalize
from safedocker.trust.keys import spki_der

if TYPE_CHECKING:
    from collections.abc import Sequence

    from safedocker.signatures.cosign import CosignSignature
    from safedocker.trust.keys import PublicKey

MAX_BUNDLE_SIZE = 64 * 1024
_HEX64 = re.compile(r"^[0-9a-fA-F]{64}$")


@dataclass(frozen=True)
class RekorBundle:
    """The parsed ``dev.sigstore.cosign/bundle`` annotation, not yet verified."""

    signed_entry_timestamp: bytes = field(repr=False)
    body: str = field(repr=False)  # base64 of the log entry JSON, as signed
    integrated_time: int
    log_index: int
    log_id: str  # hex sha256 of the log key's DER SubjectPublicKeyInfo, as given (signed)


@dataclass(frozen=True)
class RekorEntry:
    """What a verified SET establishes."""

    integrated_time: datetime  # UTC; certificates are checked at this instant
    log_index: int
    log_id: str
    log_key: str  # name of the trusted Rekor key that signed the SET
    kind: str  # "hashedrekord" or "rekord"


def _fail(why: str) -> VerificationError:
    return VerificationError(
        "transparency-log proof (Rekor SET) does not verify",
        why=why,
        hint="check that the trust root holds the Rekor key of the log that signed it",
    )


def _b64(text: object, what: str) -> bytes:
    if not isinstance(text, str):
        raise _fail(f"{what} is not a base64 string")
    try:
        return b64decode(text, ignore_newlines=True)
    except (binascii.Error, ValueError) as e:
        raise _fail(f"{what} is not valid base64") from e


def _int(value: object, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise _fail(f"{what} is not a non-negative integer")
    return value


def parse_bundle(bundle_json: bytes) -> RekorBundle:
    """Parse the cosign bundle annotation, or raise :class:`VerificationError`."""
    if len(bundle_json) > MAX_BUNDLE_SIZE:
        raise _fail(f"bundle larger than {MAX_BUNDLE_SIZE} bytes")
    try:
        document = loads_strict(bundle_json, "Rekor bundle")
    except VerificationError as e:
        raise _fail(e.why) from e
    if not isinstance(document, dict) or not isinstance(document.get("Payload"), dict):
        raise _fail("bundle has no Payload object")
    payload = document["Payload"]
    body = payload.get("body")
    log_id = payload.get("logID")
    if not isinstance(body, str):
        raise _fail("bundle body is not a string")
    if not isinstance(log_id, str) or not _HEX64.match(log_id):
        raise _fail("bundle logID is not a sha256 hex string")
    return RekorBundle(
        signed_entry_timestamp=_b64(document.get("SignedEntryTimestamp"), "SignedEntryTimestamp"),
        body=body,
        integrated_time=_int(payload.get("integratedTime"), "integratedTime"),
        log_index=_int(payload.get("logIndex"), "logIndex"),
        log_id=log_id,
    )


def _signed_bytes(bundle: RekorBundle) -> bytes:
    # Only the four fields cosign's RekorPayload struct holds are signed; anything else in
    # the annotation is ignored by cosign too, so it must not change what we verify.
    return canonicalize(
        {
            "body": bundle.body,
            "integratedTime": bundle.integrated_time,
            "logID": bundle.log_id,
            "logIndex": bundle.log_index,
        }
    )


def _public_material(pem: bytes, what: str) -> tuple[bytes, bytes | None]:
    """(SPKI DER, certificate DER or None) of a PEM public key or certificate."""
    try:
        if b"-----BEGIN CERTIFICATE-----" in pem:
            cert = x509.load_pem_x509_certificate(pem)
            return spki_der(cert.public_key()), cert.public_bytes(serialization.Encoding.DER)
        return spki_der(serialization.load_pem_public_key(pem)), None
    except (ValueError, TypeError) as e:
        raise _fail(f"{what} is not a PEM public key or certificate") from e


def _check_body(bundle: RekorBundle, sig: CosignSignature, signer_pem: bytes) -> str:
    entry = loads_strict(_b64(bundle.body, "bundle body"), "Rekor entry")
    if not isinstance(entry, dict):
        raise _fail("log entry is not an object")
    kind, spec = entry.get("kind"), entry.get("spec")
    if kind not in ("hashedrekord", "rekord") or not isinstance(spec, dict):
        raise _fail(f"log entry kind {kind!r} is not hashedrekord or rekord")
    signature, data = spec.get("signature"), spec.get("data")
    if not isinstance(signature, dict) or not isinstance(data, dict):
        raise _fail("log entry lacks signature or data")
    try:
        raw_signature = sig.signature
    except VerificationError as e:
        raise _fail(e.why) from e
    if _b64(signature.get("content"), "logged signature") != raw_signature:
        raise _fail("the log entry is for a different signature")
    public_key = signature.get("publicKey")
    if not isinstance(public_key, dict):
        raise _fail("log entry lacks the public key")
    logged_key, logged_cert = _public_material(
        _b64(public_key.get("content"), "logged public key"), "logged public key"
    )
    signer_key, signer_cert = _public_material(signer_pem, "signer")
    if logged_key != signer_key or (logged_cert and signer_cert and logged_cert != signer_cert):
        raise _fail("the log entry names a different signing key or certificate")
    hashed = data.get("hash")
    if isinstance(hashed, dict):
        if hashed.get("algorithm") != "sha256":
            raise _fail("log entry hash algorithm is not sha256")
        if hashed.get("value") != hashlib.sha256(sig.payload).hexdigest():
            raise _fail("the log entry is for a different payload")
    elif kind == "rekord" and "content" in data:
        if _b64(data.get("content"), "logged payload") != sig.payload:
            raise _fail("the log entry is for a different payload")
    else:
        raise _fail("log entry lacks the payload hash")
    return str(kind)


def verify_set(
    sig: CosignSignature, rekor_keys: Sequence[PublicKey], signer_pem: bytes
) -> RekorEntry:
    """Verify ``sig``'s bundle offline; ``signer_pem`` is the trusted key or the certificate.

    The Rekor key is chosen by logID (sha256 of its DER SubjectPublicKeyInfo). Raises
    :class:`VerificationError` with the reason when anything does not match.
    """
    if sig.bundle_json is None:
        raise _fail("the signature carries no Rekor bundle")
    bundle = parse_bundle(sig.bundle_json)
    wanted = f"sha256:{bundle.log_id.lower()}"
    log_key = next((k for k in rekor_keys if k.fingerprint == wanted), None)
    if log_key is None:
        raise _fail(f"logID {bundle.log_id} matches no trusted Rekor key")
    if not log_key.verify(bundle.signed_entry_timestamp, _signed_bytes(bundle)):
        raise _fail(f"the SET is not signed by Rekor key {log_key.name!r}")
    kind = _check_body(bundle, sig, signer_pem)
    try:
        integrated = datetime.fromtimestamp(bundle.integrated_time, tz=timezone.utc)
    except (OverflowError, OSError, ValueError) as e:
        raise _fail("integratedTime is out of range") from e
    return RekorEntry(
        integrated_time=integrated,
        log_index=bundle.log_index,
        log_id=bundle.log_id,
        log_key=log_key.name,
        kind=kind,
    )
