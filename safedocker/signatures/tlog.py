"""The transparency-log entry of a sigstore bundle: Rekor v1 and Rekor v2, offline.

An entry (``verificationMaterial.tlogEntries[0]``) is accepted when:

- its ``logId`` names a log of the trusted root (``tlogs``), whose key then checks it;
- its kind is one we know: ``hashedrekord`` 0.0.1 / ``dsse`` 0.0.1 / ``intoto`` 0.0.2
  (Rekor v1) or ``hashedrekord`` 0.0.2 / ``dsse`` 0.0.2 (Rekor v2);
- a Signed Entry Timestamp (SET, Rekor v1 only) verifies over the entry and its
  integratedTime; Rekor v2 gives no SET and no integrated time, the bundle's RFC 3161
  timestamp stands in for it (see :mod:`safedocker.signatures.timestamp`);
- its inclusion proof leads from the entry body to a root hash that a checkpoint signed
  by the log's key commits to (:mod:`safedocker.signatures.checkpoint`);
- the entry body records exactly this signature, by this signer, over this content: a
  valid log entry for some other signature proves nothing about this one.

Rekor v2 logs a DSSE envelope either as ``dsse`` 0.0.2 or as a ``hashedrekord`` 0.0.2 over
the envelope's PAE encoding (rekor-v2-spec 6.1.4; what sigstore-python 4.x writes).
"""

from __future__ import annotations

import binascii
import hashlib
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from safedocker._internal.encoding import b64decode, b64decode_protojson, b64encode
from safedocker._internal.strictjson import loads_strict
from safedocker.errors import VerificationError
from safedocker.signatures.canonicaljson import canonicalize
from safedocker.signatures.checkpoint import verify_checkpoint, verify_inclusion
from safedocker.trust.keys import spki_der

if TYPE_CHECKING:
    from safedocker.signatures.checkpoint import Checkpoint
    from safedocker.trust.roots import LogInstance, TrustRoot

REKOR_V1_KINDS = frozenset({("hashedrekord", "0.0.1"), ("dsse", "0.0.1"), ("intoto", "0.0.2")})
REKOR_V2_KINDS = frozenset({("hashedrekord", "0.0.2"), ("dsse", "0.0.2")})
MAX_BODY_SIZE = 512 * 1024
_HASHES = {"SHA2_256": hashlib.sha256, "SHA2_384": hashlib.sha384, "SHA2_512": hashlib.sha512}


def _fail(why: str) -> VerificationError:
    return VerificationError("transparency-log entry does not verify", why=why)


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding: what a DSSE signature signs."""
    kind = payload_type.encode("utf-8")
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


@dataclass(frozen=True)
class Signed:
    """What the log entry must record: this signature, by this signer, over this content."""

    signature: bytes
    signer_der: bytes  # DER certificate (keyless) or DER SubjectPublicKeyInfo (key)
    signer_is_certificate: bool
    message_digest: bytes | None = None  # message signature: SHA-256 of the artifact
    payload_type: str | None = None  # DSSE envelope
    payload: bytes | None = None

    @property
    def is_dsse(self) -> bool:
        return self.payload is not None

    def pae(self) -> bytes:
        """DSSE v1 pre-authentication encoding of the envelope."""
        return pae(self.payload_type or "", self.payload or b"")


@dataclass(frozen=True)
class LogProof:
    """What a verified entry establishes."""

    log: LogInstance
    kind: str  # e.g. "hashedrekord 0.0.2"
    log_index: int
    integrated_time: datetime | None  # only with a verified SET (Rekor v1)
    checkpoint: Checkpoint | None  # None: a v0.1 bundle proved by its SET alone

    @property
    def rekor_v2(self) -> bool:
        return self.kind in {f"{k} {v}" for k, v in REKOR_V2_KINDS}


# --- field readers ------------------------------------------------------------------------


def _obj(value: object, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _fail(f"{what} is missing or not an object")
    return value


def _b64(value: object, what: str) -> bytes:
    if not isinstance(value, str):
        raise _fail(f"{what} is not a base64 string")
    try:
        return b64decode_protojson(value)
    except (binascii.Error, ValueError) as e:
        raise _fail(f"{what} is not valid base64") from e


def _uint(value: object, what: str) -> int:
    """A protobuf int64: JSON number or decimal string, never negative."""
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 20:
        return int(value)
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    raise _fail(f"{what} is not a non-negative integer")


def _hex_digest(value: object, what: str) -> bytes:
    if not isinstance(value, str):
        raise _fail(f"{what} is missing")
    try:
        return bytes.fromhex(value)
    except ValueError as e:
        raise _fail(f"{what} is not hex") from e


# --- who signed -----------------------------------------------------------------------------


def _pem_signer(pem: bytes) -> tuple[bytes, bool]:
    """(DER, is certificate) of a logged PEM certificate or public key."""
    try:
        if b"-----BEGIN CERTIFICATE-----" in pem:
            cert = x509.load_pem_x509_certificate(pem)
            return cert.public_bytes(serialization.Encoding.DER), True
        return spki_der(serialization.load_pem_public_key(pem)), False
    except (ValueError, TypeError) as e:
        raise _fail("the logged verifier is not a PEM certificate or public key") from e


def _check_signer(logged: tuple[bytes, bool], signed: Signed) -> None:
    if logged != (signed.signer_der, signed.signer_is_certificate):
        what = "certificate" if signed.signer_is_certificate else "public key"
        raise _fail(f"the log entry names a different signing {what}")


def _v2_signer(verifier: object) -> tuple[bytes, bool]:
    verifier = _obj(verifier, "signature verifier")
    if "x509Certificate" in verifier and "publicKey" in verifier:
        raise _fail("the logged verifier is both a certificate and a public key")
    if "x509Certificate" in verifier:
        raw = _b64(_obj(verifier["x509Certificate"], "x509Certificate").get("rawBytes"),
                   "logged certificate")
        return raw, True
    raw = _b64(_obj(verifier.get("publicKey"), "logged public key").get("rawBytes"),
               "logged public key")
    return raw, False


def _check_signature(logged: bytes, signed: Signed) -> None:
    if logged != signed.signature:
        raise _fail("the log entry is for a different signature")


# --- body consistency, per kind -------------------------------------------------------------


def _hashedrekord_v1(spec: dict[str, Any], signed: Signed) -> None:
    if signed.is_dsse or signed.message_digest is None:
        raise _fail("a hashedrekord 0.0.1 entry cannot log a DSSE envelope")
    hashed = _obj(_obj(spec.get("data"), "data").get("hash"), "data.hash")
    if hashed.get("algorithm") != "sha256":
        raise _fail("the logged artifact hash is not sha256")
    if _hex_digest(hashed.get("value"), "data.hash.value") != signed.message_digest:
        raise _fail("the log entry is for a different artifact")
    signature = _obj(spec.get("signature"), "signature")
    _check_signature(_b64(signature.get("content"), "logged signature"), signed)
    key = _obj(signature.get("publicKey"), "signature.publicKey")
    _check_signer(_pem_signer(_b64(key.get("content"), "logged public key")), signed)


def _hashedrekord_v2(spec: dict[str, Any], signed: Signed) -> None:
    inner = _obj(spec.get("hashedRekordV002"), "hashedRekordV002")
    data = _obj(inner.get("data"), "data")
    algorithm = data.get("algorithm")
    digest = _b64(data.get("digest"), "data.digest")
    if signed.is_dsse:
        hasher = _HASHES.get(str(algorithm))
        if hasher is None:
            raise _fail(f"unsupported logged hash algorithm {algorithm!r}")
        if digest != hasher(signed.pae()).digest():
            raise _fail("the log entry is for a different DSSE envelope")
    elif algorithm != "SHA2_256" or digest != signed.message_digest:
        raise _fail("the log entry is for a different artifact")
    signature = _obj(inner.get("signature"), "signature")
    _check_signature(_b64(signature.get("content"), "logged signature"), signed)
    _check_signer(_v2_signer(signature.get("verifier")), signed)


def _payload_hash_v1(value: object, signed: Signed) -> None:
    payload_hash = _obj(value, "payloadHash")
    if payload_hash.get("algorithm") != "sha256":
        raise _fail("the logged payload hash is not sha256")
    wanted = hashlib.sha256(signed.payload or b"").digest()
    if _hex_digest(payload_hash.get("value"), "payloadHash.value") != wanted:
        raise _fail("the log entry is for a different DSSE payload")


def _one(items: object, what: str) -> dict[str, Any]:
    if not isinstance(items, list) or len(items) != 1:
        raise _fail(f"the log entry must record exactly one {what}")
    return _obj(items[0], what)


def _dsse_v1(spec: dict[str, Any], signed: Signed) -> None:
    if not signed.is_dsse:
        raise _fail("a dsse entry cannot log a message signature")
    _payload_hash_v1(spec.get("payloadHash"), signed)
    item = _one(spec.get("signatures"), "signature")
    _check_signature(_b64(item.get("signature"), "logged signature"), signed)
    _check_signer(_pem_signer(_b64(item.get("verifier"), "logged verifier")), signed)


def _dsse_v2(spec: dict[str, Any], signed: Signed) -> None:
    if not signed.is_dsse:
        raise _fail("a dsse entry cannot log a message signature")
    inner = _obj(spec.get("dsseV002"), "dsseV002")
    payload_hash = _obj(inner.get("payloadHash"), "payloadHash")
    hasher = _HASHES.get(str(payload_hash.get("algorithm")))
    if hasher is None:
        raise _fail(f"unsupported logged hash algorithm {payload_hash.get('algorithm')!r}")
    if _b64(payload_hash.get("digest"), "payloadHash.digest") != hasher(
            signed.payload or b"").digest():
        raise _fail("the log entry is for a different DSSE payload")
    item = _one(inner.get("signatures"), "signature")
    _check_signature(_b64(item.get("content"), "logged signature"), signed)
    _check_signer(_v2_signer(item.get("verifier")), signed)


def _intoto_v2(spec: dict[str, Any], signed: Signed) -> None:
    if not signed.is_dsse:
        raise _fail("an intoto entry cannot log a message signature")
    content = _obj(spec.get("content"), "content")
    _payload_hash_v1(content.get("payloadHash"), signed)
    envelope = _obj(content.get("envelope"), "envelope")
    if envelope.get("payloadType", signed.payload_type) != signed.payload_type:
        raise _fail("the log entry is for a different DSSE payload type")
    item = _one(envelope.get("signatures"), "signature")
    # intoto 0.0.2 stores the signature base64-encoded twice
    outer = _b64(item.get("sig"), "logged signature")
    try:
        logged = b64decode(outer)
    except (binascii.Error, ValueError) as e:
        raise _fail("the log entry is for a different signature") from e
    _check_signature(logged, signed)
    _check_signer(_pem_signer(_b64(item.get("publicKey"), "logged public key")), signed)


_BODY_CHECKS = {
    ("hashedrekord", "0.0.1"): _hashedrekord_v1,
    ("hashedrekord", "0.0.2"): _hashedrekord_v2,
    ("dsse", "0.0.1"): _dsse_v1,
    ("dsse", "0.0.2"): _dsse_v2,
    ("intoto", "0.0.2"): _intoto_v2,
}


# --- the entry ------------------------------------------------------------------------------


def _set_time(entry: dict[str, Any], log: LogInstance, body: bytes, log_index: int) -> datetime:
    promise = _obj(entry.get("inclusionPromise"), "inclusionPromise")
    integrated = _uint(entry.get("integratedTime"), "integratedTime")
    if integrated == 0:
        raise _fail("the entry has a SET but no integratedTime")
    signed = canonicalize({
        "body": b64encode(body),
        "integratedTime": integrated,
        "logID": log.log_id,
        "logIndex": log_index,
    })
    if not log.key.verify(_b64(promise.get("signedEntryTimestamp"), "SET"), signed):
        raise _fail(f"the SET is not signed by log {log.base_url}")
    try:
        return datetime.fromtimestamp(integrated, tz=timezone.utc)
    except (OverflowError, OSError, ValueError) as e:
        raise _fail("integratedTime is out of range") from e


def _inclusion(entry: dict[str, Any], log: LogInstance, body: bytes, *,
               rekor_v2: bool) -> Checkpoint:
    proof = _obj(entry.get("inclusionProof"), "inclusionProof")
    index = _uint(proof.get("logIndex"), "inclusionProof.logIndex")
    size = _uint(proof.get("treeSize"), "inclusionProof.treeSize")
    root_hash = _b64(proof.get("rootHash"), "inclusionProof.rootHash")
    hashes = proof.get("hashes", [])
    if not isinstance(hashes, list):
        raise _fail("inclusionProof.hashes is not a list")
    path = [_b64(h, "inclusion proof hash") for h in hashes[:65]]
    envelope = _obj(proof.get("checkpoint"), "inclusion proof checkpoint").get("envelope")
    if not isinstance(envelope, str):
        raise _fail("the inclusion proof has no checkpoint")
    verify_inclusion(body, index, size, path, root_hash)
    checkpoint = verify_checkpoint(envelope, log, check_name=rekor_v2)
    if checkpoint.root_hash != root_hash or checkpoint.size != size:
        raise _fail("the checkpoint is for another tree than the inclusion proof "
                    "(root hash or size differ)")
    return checkpoint


def verify_entry(entry: object, trust_root: TrustRoot, signed: Signed, *,
                 require_proof: bool = True, require_set: bool = False) -> LogProof:
    """Verify one ``tlogEntries`` item offline against ``trust_root``; raise if not.

    ``require_proof``: an inclusion proof with a signed checkpoint must be there (bundle
    v0.2 and later); ``require_set``: a SET must be there (bundle v0.1).
    """
    entry = _obj(entry, "tlog entry")
    log_id = _b64(_obj(entry.get("logId"), "logId").get("keyId"), "logId.keyId").hex()
    log = trust_root.tlog(log_id)
    if log is None:
        raise _fail(f"it is from a Rekor log (logID {log_id[:16]}...) that trust root "
                    f"{trust_root.name!r} does not list")
    kind_version = _obj(entry.get("kindVersion"), "kindVersion")
    pair = (str(kind_version.get("kind")), str(kind_version.get("version")))
    if pair not in REKOR_V1_KINDS | REKOR_V2_KINDS:
        raise _fail(f"unsupported entry kind {pair[0]} {pair[1]}")
    log_index = _uint(entry.get("logIndex"), "logIndex")
    body = _b64(entry.get("canonicalizedBody"), "canonicalizedBody")
    if len(body) > MAX_BODY_SIZE:
        raise _fail("the entry body is too large")
    try:
        document = _obj(loads_strict(body, "log entry body"), "log entry body")
    except VerificationError as e:
        raise _fail(e.why) from e
    if (document.get("kind"), document.get("apiVersion")) != pair:
        raise _fail("the entry body's kind differs from its kindVersion")
    _BODY_CHECKS[pair](_obj(document.get("spec"), "spec"), signed)

    integrated = None
    if entry.get("inclusionPromise") is not None:
        if pair in REKOR_V2_KINDS:
            raise _fail("a Rekor v2 entry carries a SET, which Rekor v2 never issues")
        integrated = _set_time(entry, log, body, log_index)
    elif require_set:
        raise _fail("the entry has no SET (inclusionPromise), which a v0.1 bundle needs")
    checkpoint = None
    has_checkpoint = isinstance(entry.get("inclusionProof"), dict) and isinstance(
        entry["inclusionProof"].get("checkpoint"), dict)
    if require_proof or has_checkpoint:
        checkpoint = _inclusion(entry, log, body, rekor_v2=pair in REKOR_V2_KINDS)
    return LogProof(log, f"{pair[0]} {pair[1]}", log_index, integrated, checkpoint)
