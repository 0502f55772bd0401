"""Sigstore bundles (v0.1-v0.3) attached to an image through OCI referrers.

``cosign sign --new-bundle-format`` (cosign v3's default) attaches an OCI artifact whose
``subject`` is the image manifest and whose single layer is the bundle JSON; registries
without the referrers API get the ``sha256-<hex>`` tag-schema index, which
:meth:`RegistryClient.referrers` already falls back to. Fetching them is
:mod:`safedocker.verify.material`'s job: this module does no I/O.

What a bundle must prove for an image:
- a DSSE envelope (``application/vnd.in-toto+json``) holding an in-toto statement with a
  subject whose digest equals the image digest, and the wanted ``predicateType``
  (``https://sigstore.dev/cosign/sign/v1`` for a signature, e.g.
  ``https://slsa.dev/provenance/v1`` for an attestation); or, for signatures only, a
  message signature whose messageDigest is the image manifest digest itself;
- keyless (a certificate): sigstore-python's ``Verifier`` with OUR trust root (never a
  TUF fetch) and a policy that is our identity matching (cosign's regexp semantics);
- a plain key (``publicKey`` hint; sigstore-python cannot): our DSSE check (PAE, a
  trusted key), and the Rekor SET per the rule's ``tlog``.

sigstore is imported inside the functions that need it: it takes ~0.7 s to import.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from safedocker._internal.encoding import b64decode
from safedocker._internal.strictjson import loads_strict
from safedocker.errors import VerificationError
from safedocker.policy.model import Tlog
from safedocker.signatures.canonicaljson import canonicalize

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from safedocker.policy.model import Identity
    from safedocker.reference import Digest
    from safedocker.trust.keys import PublicKey
    from safedocker.trust.roots import TrustRoot

BUNDLE_V01 = "application/vnd.dev.sigstore.bundle+json;version=0.1"
BUNDLE_V02 = "application/vnd.dev.sigstore.bundle+json;version=0.2"
BUNDLE_V03 = "application/vnd.dev.sigstore.bundle.v0.3+json"
BUNDLE_V03_ALT = "application/vnd.dev.sigstore.bundle+json;version=0.3"
BUNDLE_MEDIA_TYPES = (BUNDLE_V03, BUNDLE_V03_ALT, BUNDLE_V02, BUNDLE_V01)
SIGN_PREDICATE = "https://sigstore.dev/cosign/sign/v1"
IN_TOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"
STATEMENT_TYPES = ("https://in-toto.io/Statement/v1", "https://in-toto.io/Statement/v0.1")
MAX_BUNDLE_SIZE = 1024 * 1024
MAX_BUNDLES = 32


@dataclass(frozen=True)
class BundleResult:
    """The outcome of one bundle; ``signer`` describes who signed, ``reason`` why not."""

    verified: bool
    signer: str = ""
    reason: str = ""
    kind: str = ""  # "keyless" or "key"
    subject: str | None = None  # certificate identity (keyless)
    issuer: str | None = None
    key_name: str | None = None  # trusted key (key bundles)
    predicate_type: str | None = None
    statement: Mapping[str, Any] | None = field(default=None, repr=False)
    integrated_time: datetime | None = None


def _fail(why: str) -> VerificationError:
    return VerificationError("sigstore bundle does not verify", why=why)


# --- parsing ------------------------------------------------------------------------------


def _b64(value: object, what: str) -> bytes:
    if not isinstance(value, str):
        raise _fail(f"{what} is not a base64 string")
    try:  # protobuf JSON may also write URL-safe base64
        return b64decode(value, urlsafe=True)
    except (binascii.Error, ValueError) as e:
        raise _fail(f"{what} is not valid base64") from e


def _obj(value: object, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _fail(f"{what} is missing or not an object")
    return value


def parse_statement(payload: bytes, digest: Digest, predicate_type: str) -> dict[str, Any]:
    """The in-toto statement, checked to name ``digest`` and ``predicate_type``."""
    try:
        statement = _obj(loads_strict(payload, "in-toto statement"), "statement")
    except VerificationError as e:
        raise _fail(e.why) from e
    if statement.get("_type") not in STATEMENT_TYPES:
        raise _fail(f"payload is not an in-toto statement ({statement.get('_type')!r})")
    if statement.get("predicateType") != predicate_type:
        raise _fail(
            f"predicate type is {statement.get('predicateType')!r}, not {predicate_type!r}"
        )
    subjects = statement.get("subject")
    if not isinstance(subjects, list):
        raise _fail("statement has no subject list")
    for subject in subjects:
        digests = subject.get("digest") if isinstance(subject, dict) else None
        if isinstance(digests, dict) and digests.get(digest.algorithm) == digest.hex:
            return statement
    raise _fail(f"statement subject does not name {digest}")


def _content(document: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    if "dsseEnvelope" in document and "messageSignature" in document:
        raise _fail("bundle holds both a DSSE envelope and a message signature")
    if "dsseEnvelope" in document:
        return "dsse", _obj(document["dsseEnvelope"], "dsseEnvelope")
    if "messageSignature" in document:
        return "message", _obj(document["messageSignature"], "messageSignature")
    raise _fail("bundle holds neither a DSSE envelope nor a message signature")


def _parse(bundle_bytes: bytes) -> dict[str, Any]:
    if len(bundle_bytes) > MAX_BUNDLE_SIZE:
        raise _fail(f"larger than {MAX_BUNDLE_SIZE} bytes")
    try:
        document = _obj(loads_strict(bundle_bytes, "sigstore bundle"), "bundle")
    except VerificationError as e:
        raise _fail(e.why) from e
    if document.get("mediaType") not in BUNDLE_MEDIA_TYPES:
        raise _fail(f"unknown bundle media type {document.get('mediaType')!r}")
    return document


# --- verification -------------------------------------------------------------------------


def verify_bundle(
    bundle_bytes: bytes,
    digest: Digest,
    *,
    keys: Sequence[PublicKey] = (),
    identities: Sequence[Identity] = (),
    trust_root: TrustRoot | None = None,
    tlog: Tlog = Tlog.OPTIONAL,
    predicate_type: str = SIGN_PREDICATE,
    claims: Mapping[str, str] | None = None,
) -> BundleResult:
    """Verify one bundle for the image ``digest``; never raises.

    A certificate bundle needs ``trust_root`` and ``identities`` (its transparency-log
    entry is always required: it is the signing time); a key bundle needs ``keys`` and
    honours ``tlog`` (``trust_root`` supplies the Rekor keys).
    """
    try:
        document = _parse(bundle_bytes)
        material = _obj(document.get("verificationMaterial"), "verificationMaterial")
        if "certificate" in material or "x509CertificateChain" in material:
            return _verify_keyless(bundle_bytes, document, digest, identities, trust_root,
                                   predicate_type, claims)
        if "publicKey" in material:
            return _verify_with_key(document, material, digest, keys, trust_root, tlog,
                                    predicate_type)
        raise _fail("bundle has no certificate and no public key")
    except VerificationError as e:
        return BundleResult(False, reason=e.why or e.what)


class _IdentityPolicy:
    """A sigstore-python VerificationPolicy that applies our identity matching."""

    def __init__(self, identities: Sequence[Identity], claims: Mapping[str, str] | None):
        self.identities = identities
        self.claims = claims
        self.subject: str | None = None
        self.issuer: str | None = None

    def verify(self, cert: Any) -> None:
        from sigstore.errors import VerificationError as SigstoreVerificationError

        from safedocker.signatures.keyless import match_identity

        subject, issuer, why = match_identity(cert, self.identities, require_issuer=True,
                                              claims=self.claims)
        if why:
            raise SigstoreVerificationError(why)
        self.subject, self.issuer = subject, issuer


def sigstore_trusted_root(trust_root: TrustRoot) -> Any:
    """sigstore-python's TrustedRoot built from our trust root's bytes (no TUF, no network)."""
    from sigstore.models import TrustedRoot as SigstoreTrustedRoot
    from sigstore_models.trustroot.v1 import TrustedRoot as InnerTrustedRoot

    return SigstoreTrustedRoot(InnerTrustedRoot.from_json(trust_root.raw))


def _verify_keyless(
    bundle_bytes: bytes,
    document: dict[str, Any],
    digest: Digest,
    identities: Sequence[Identity],
    trust_root: TrustRoot | None,
    predicate_type: str,
    claims: Mapping[str, str] | None,
) -> BundleResult:
    if trust_root is None:
        raise _fail("a certificate bundle needs a Sigstore trust root")
    if not identities:
        raise _fail("no identities are configured for certificate signatures")
    kind, content = _content(document)
    if kind == "message" and predicate_type != SIGN_PREDICATE:
        raise _fail(f"a message signature is not a {predicate_type} attestation")
    from sigstore.models import Bundle
    from sigstore.verify import Verifier

    policy = _IdentityPolicy(identities, claims)
    statement: dict[str, Any] | None = None
    try:
        bundle = Bundle.from_json(bundle_bytes)
        verifier = Verifier(trusted_root=sigstore_trusted_root(trust_root))
        if kind == "dsse":
            payload_type, payload = verifier.verify_dsse(bundle, policy)
            if payload_type != IN_TOTO_PAYLOAD_TYPE:
                raise _fail(f"DSSE payload type is {payload_type!r}, not in-toto")
        else:
            wanted = _message_digest(content, digest)
            from sigstore.hashes import Hashed
            from sigstore_models.common.v1 import HashAlgorithm

            verifier.verify_artifact(
                Hashed(algorithm=HashAlgorithm.SHA2_256, digest=wanted), bundle, policy
            )
    except VerificationError:
        raise
    except Exception as e:  # sigstore raises its own, pydantic and ValueError errors
        from sigstore.errors import Error as SigstoreError

        # sigstore's own errors carry a user-facing message; others need their type named.
        raise _fail(str(e) if isinstance(e, SigstoreError) else f"{type(e).__name__}: {e}") from e
    if kind == "dsse":
        statement = parse_statement(payload, digest, predicate_type)
    integrated = _integrated_time(document)
    return BundleResult(
        True,
        signer=f"{policy.subject} (issuer {policy.issuer})",
        kind="keyless",
        subject=policy.subject,
        issuer=policy.issuer,
        predicate_type=predicate_type,
        statement=statement,
        integrated_time=integrated,
    )


def _message_digest(content: dict[str, Any], digest: Digest) -> bytes:
    if digest.algorithm != "sha256":
        raise _fail("message-signature bundles are supported for sha256 images only")
    wanted = bytes.fromhex(digest.hex)
    md = content.get("messageDigest")
    if isinstance(md, dict):
        if md.get("algorithm") != "SHA2_256" or _b64(md.get("digest"), "digest") != wanted:
            raise _fail(f"message signature is not over {digest}")
    return wanted


def _integrated_time(document: dict[str, Any]) -> datetime | None:
    entries = document.get("verificationMaterial", {}).get("tlogEntries") or []
    try:
        seconds = int(entries[0]["integratedTime"])
        return datetime.fromtimestamp(seconds, tz=timezone.utc)
    except (IndexError, KeyError, TypeError, ValueError, OverflowError, OSError):
        return None


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding."""
    t = payload_type.encode("utf-8")
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(payload), payload)


def _verify_with_key(
    document: dict[str, Any],
    material: dict[str, Any],
    digest: Digest,
    keys: Sequence[PublicKey],
    trust_root: TrustRoot | None,
    tlog: Tlog,
    predicate_type: str,
) -> BundleResult:
    if not keys:
        raise _fail("the bundle is signed with a key, and the rule trusts no key")
    kind, envelope = _content(document)
    if kind != "dsse":
        raise _fail("key-signed message-signature bundles are not supported; use DSSE")
    payload_type = envelope.get("payloadType")
    if payload_type != IN_TOTO_PAYLOAD_TYPE:
        raise _fail(f"DSSE payload type is {payload_type!r}, not in-toto")
    payload = _b64(envelope.get("payload"), "DSSE payload")
    signatures = envelope.get("signatures")
    if not isinstance(signatures, list) or not signatures:
        raise _fail("DSSE envelope has no signatures")
    signed = pae(payload_type, payload)
    signer: PublicKey | None = None
    signature = b""
    for item in signatures[:8]:
        raw = _b64(item.get("sig") if isinstance(item, dict) else None, "DSSE signature")
        signer = next((k for k in keys if k.verify(raw, signed)), None)
        if signer is not None:
            signature = raw
            break
    if signer is None:
        names = ", ".join(k.name for k in keys)
        raise _fail(f"DSSE signature does not verify with any trusted key ({names})")
    statement = parse_statement(payload, digest, predicate_type)
    integrated = None
    entries = material.get("tlogEntries") or []
    if not isinstance(entries, list):
        raise _fail("tlogEntries is not a list")
    if tlog is Tlog.REQUIRED and not entries:
        raise _fail("the rule requires a transparency-log entry and the bundle has none")
    if tlog is not Tlog.OFF and entries:
        if trust_root is None:
            raise _fail("no trust root to verify the transparency-log entry with")
        integrated = _verify_key_tlog_entry(_obj(entries[0], "tlog entry"), payload,
                                            signature, signer, trust_root)
    return BundleResult(
        True,
        signer=f"key {signer.name}",
        kind="key",
        key_name=signer.name,
        predicate_type=predicate_type,
        statement=statement,
        integrated_time=integrated,
    )


def _verify_key_tlog_entry(entry: dict[str, Any], payload: bytes, signature: bytes,
                           signer: PublicKey, trust_root: TrustRoot) -> datetime:
    """Offline check of a Rekor v1 dsse entry: its SET, and that it logs this signature."""
    from cryptography.hazmat.primitives import serialization

    from safedocker.trust.keys import spki_der

    log_id = _b64(_obj(entry.get("logId"), "logId").get("keyId"), "logId").hex()
    promise = _obj(entry.get("inclusionPromise"), "inclusionPromise (SET)")
    body_bytes = _b64(entry.get("canonicalizedBody"), "canonicalizedBody")
    try:
        integrated_time = int(entry.get("integratedTime", ""))
        log_index = int(entry.get("logIndex", ""))
    except (TypeError, ValueError) as e:
        raise _fail("tlog entry lacks integratedTime or logIndex") from e
    log = trust_root.tlog(log_id)
    if log is None:
        raise _fail(f"logID {log_id} matches no trusted Rekor key")
    signed = canonicalize({
        "body": base64.b64encode(body_bytes).decode(),
        "integratedTime": integrated_time,
        "logID": log_id,
        "logIndex": log_index,
    })
    if not log.key.verify(_b64(promise.get("signedEntryTimestamp"), "SET"), signed):
        raise _fail(f"the SET is not signed by Rekor key {log.base_url}")
    when = datetime.fromtimestamp(integrated_time, tz=timezone.utc)
    if not log.validity.contains(when):
        raise _fail(f"integratedTime is outside the validity of Rekor key {log.base_url}")
    try:
        body = _obj(loads_strict(body_bytes, "Rekor entry"), "Rekor entry")
    except VerificationError as e:
        raise _fail(e.why) from e
    spec = _obj(body.get("spec"), "Rekor entry spec")
    if body.get("kind") != "dsse":
        raise _fail(f"log entry kind {body.get('kind')!r} is not dsse")
    payload_hash = _obj(spec.get("payloadHash"), "payloadHash")
    if payload_hash.get("value") != hashlib.sha256(payload).hexdigest():
        raise _fail("the log entry is for a different payload")
    logged = spec.get("signatures")
    if not isinstance(logged, list):
        raise _fail("the log entry has no signatures")
    for item in logged:
        if not isinstance(item, dict) or _b64(item.get("signature"), "signature") != signature:
            continue
        verifier_pem = _b64(item.get("verifier"), "verifier")
        try:
            logged_key = serialization.load_pem_public_key(verifier_pem)
        except (ValueError, TypeError) as e:
            raise _fail("the logged verifier is not a PEM public key") from e
        if spki_der(logged_key) != signer.der:
            raise _fail("the log entry names a different key")
        return when
    raise _fail("the log entry is for a different signature")
