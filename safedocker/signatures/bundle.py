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
  message signature over the image manifest digest itself;
- keyless (a certificate): a verified signing time (a Rekor v1 SET's integratedTime or an
  RFC 3161 timestamp of a trusted TSA, each inside the log's validity), at which the
  certificate chains to a Fulcio CA of OUR trust root (never a TUF fetch), an SCT, our
  identity matching (cosign's regexp semantics), and the log entry with its inclusion
  proof and signed checkpoint (:mod:`safedocker.signatures.tlog`);
- a plain key (``publicKey`` hint, never trusted): a trusted key verifies the signature;
  per the rule's ``tlog`` the log entry and timestamps are checked the same way, and
  ``required`` needs a verified entry with a signed time (Rekor v1 SET, or a Rekor v2
  inclusion proof plus an RFC 3161 timestamp).

Everything is verified by our code, offline, from the rule's trusted root.
"""

from __future__ import annotations

import binascii
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils

from safedocker._internal.encoding import b64decode_protojson
from safedocker._internal.strictjson import loads_strict
from safedocker.errors import ConfigError, VerificationError
from safedocker.policy.model import Tlog
from safedocker.signatures.timestamp import timestamps_of, verify_timestamps
from safedocker.signatures.tlog import Signed, pae, verify_entry

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence
    from datetime import datetime

    from safedocker.policy.model import Identity
    from safedocker.reference import Digest
    from safedocker.signatures.tlog import LogProof
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
    integrated_time: datetime | None = None  # the verified signing time (SET, else RFC 3161)
    log: str | None = None  # base URL of the log whose entry verified
    timestamp_authorities: tuple[str, ...] = ()  # TSAs whose timestamps verified
    content: str = ""  # "dsse" (an in-toto statement) or "message" (a message signature)
    certificate: x509.Certificate | None = field(default=None, repr=False, compare=False)


_DOES_NOT_VERIFY = "sigstore bundle does not verify"


def _fail(why: str) -> VerificationError:
    return VerificationError(_DOES_NOT_VERIFY, why=why)


# --- parsing ------------------------------------------------------------------------------

_VERSIONS = {BUNDLE_V01: "0.1", BUNDLE_V02: "0.2", BUNDLE_V03: "0.3", BUNDLE_V03_ALT: "0.3"}
MAX_CHAIN_CERTIFICATES = 10


def _b64(value: object, what: str) -> bytes:
    if not isinstance(value, str):
        raise _fail(f"{what} is not a base64 string")
    try:
        return b64decode_protojson(value)
    except (binascii.Error, ValueError) as e:
        raise _fail(f"{what} is not valid base64") from e


def _obj(value: object, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _fail(f"{what} is missing or not an object")
    return value


def parse_statement(payload: bytes, digest: Digest,
                    predicate_type: str | None) -> dict[str, Any]:
    """The in-toto statement, checked to name ``digest`` and ``predicate_type`` (None: any)."""
    try:
        statement = _obj(loads_strict(payload, "in-toto statement"), "statement")
    except VerificationError as e:
        raise _fail(e.why) from e
    if statement.get("_type") not in STATEMENT_TYPES:
        raise _fail(f"payload is not an in-toto statement ({statement.get('_type')!r})")
    if predicate_type is not None and statement.get("predicateType") != predicate_type:
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


@dataclass(frozen=True)
class ParsedBundle:
    """A bundle's parts, well-formed but not yet verified."""

    version: str  # "0.1", "0.2" or "0.3"
    certificate: x509.Certificate | None  # the signing certificate; None for a key bundle
    kind: Literal["dsse", "message"]
    signature: bytes = field(repr=False)
    payload_type: str | None = None  # DSSE
    payload: bytes | None = field(default=None, repr=False)  # DSSE
    message_digest: bytes | None = None  # messageSignature.messageDigest (SHA2_256), a hint
    entries: tuple[object, ...] = field(default=(), repr=False)
    timestamps: tuple[bytes, ...] = field(default=(), repr=False)


def _load_der(raw: bytes, what: str) -> x509.Certificate:
    try:
        return x509.load_der_x509_certificate(raw)
    except ValueError as e:
        raise _fail(f"{what} is not a DER X.509 certificate") from e


def _self_signed(cert: x509.Certificate) -> bool:
    if cert.subject != cert.issuer:
        return False
    try:
        cert.verify_directly_issued_by(cert)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False
    return True


def _certificate(material: dict[str, Any], version: str) -> x509.Certificate | None:
    present = [k for k in ("certificate", "x509CertificateChain", "publicKey") if k in material]
    if len(present) != 1:
        raise _fail("verificationMaterial must hold exactly one of certificate, "
                    "x509CertificateChain and publicKey")
    match present[0], version:
        case "publicKey", _:
            return None
        case "certificate", "0.3":
            raw = _obj(material["certificate"], "certificate").get("rawBytes")
            return _load_der(_b64(raw, "certificate"), "the signing certificate")
        case "x509CertificateChain", "0.1" | "0.2":
            items = _obj(material["x509CertificateChain"], "x509CertificateChain").get(
                "certificates")
            if not isinstance(items, list) or not items:
                raise _fail("the certificate chain is empty")
            if len(items) > MAX_CHAIN_CERTIFICATES:
                raise _fail("the certificate chain is too long")
            certs = [_load_der(_b64(_obj(c, "certificate").get("rawBytes"), "certificate"),
                               "a chain certificate") for c in items]
            # Only the trusted root anchors trust: a root shipped inside the bundle is a
            # sign of misuse (protobuf-specs forbids it), never a reason to trust more.
            if any(_self_signed(c) for c in certs[1:]):
                raise _fail("the bundle's certificate chain contains a root certificate")
            return certs[0]
        case field_name, _:
            raise _fail(f"a v{version} bundle may not carry {field_name}")


def _content(document: dict[str, Any]) -> dict[str, Any]:
    if ("dsseEnvelope" in document) == ("messageSignature" in document):
        raise _fail("bundle must hold exactly one of a DSSE envelope and a message signature")
    if "dsseEnvelope" in document:
        envelope = _obj(document["dsseEnvelope"], "dsseEnvelope")
        payload_type = envelope.get("payloadType")
        if not isinstance(payload_type, str):
            raise _fail("DSSE envelope has no payloadType")
        signatures = envelope.get("signatures")
        if not isinstance(signatures, list) or len(signatures) != 1:
            raise _fail("DSSE envelope must carry exactly one signature")
        return {"kind": "dsse", "payload_type": payload_type,
                "payload": _b64(envelope.get("payload"), "DSSE payload"),
                "signature": _b64(_obj(signatures[0], "DSSE signature").get("sig"),
                                  "DSSE signature")}
    message = _obj(document["messageSignature"], "messageSignature")
    out: dict[str, Any] = {"kind": "message",
                           "signature": _b64(message.get("signature"), "signature")}
    if message.get("messageDigest") is not None:
        md = _obj(message["messageDigest"], "messageDigest")
        if md.get("algorithm") != "SHA2_256":
            raise _fail(f"unsupported message digest algorithm {md.get('algorithm')!r}")
        out["message_digest"] = _b64(md.get("digest"), "messageDigest")
    return out


def parse_bundle(bundle_bytes: bytes) -> ParsedBundle:
    """Parse a sigstore bundle (strict JSON, known media types), or raise."""
    if len(bundle_bytes) > MAX_BUNDLE_SIZE:
        raise _fail(f"larger than {MAX_BUNDLE_SIZE} bytes")
    try:
        document = _obj(loads_strict(bundle_bytes, "sigstore bundle"), "bundle")
    except VerificationError as e:
        raise _fail(e.why) from e
    version = _VERSIONS.get(str(document.get("mediaType")))
    if version is None:
        raise _fail(f"unknown bundle media type {document.get('mediaType')!r}")
    material = _obj(document.get("verificationMaterial"), "verificationMaterial")
    certificate = _certificate(material, version)
    entries = material.get("tlogEntries", [])
    if not isinstance(entries, list):
        raise _fail("tlogEntries is not a list")
    if len(entries) > 1:
        raise _fail("bundle holds more than one transparency-log entry")
    return ParsedBundle(version=version, certificate=certificate, entries=tuple(entries),
                        timestamps=tuple(timestamps_of(material)), **_content(document))


# --- signatures ---------------------------------------------------------------------------


def _verify_prehashed(key: PublicKey, signature: bytes, digest: bytes) -> bool:
    """A message signature: the key signed the artifact's SHA-256 (cosign sign-blob)."""
    prehashed = utils.Prehashed(hashes.SHA256())
    public = key.key
    checks: list[Callable[[], None]] = []
    if isinstance(public, ec.EllipticCurvePublicKey):
        checks.append(lambda: public.verify(signature, digest, ec.ECDSA(prehashed)))
    elif isinstance(public, rsa.RSAPublicKey):
        pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.AUTO)
        checks += [lambda: public.verify(signature, digest, padding.PKCS1v15(), prehashed),
                   lambda: public.verify(signature, digest, pss, prehashed)]
    # Ed25519 signs whole messages: a digest alone cannot be checked (no check: False).
    return any(_passes(check) for check in checks)


def _passes(check: Callable[[], None]) -> bool:
    try:
        check()
    except (InvalidSignature, ValueError, TypeError, UnsupportedAlgorithm):
        return False
    return True


def _wanted_digest(bundle: ParsedBundle, digest: Digest) -> bytes:
    """The SHA-256 a message signature must be over: the image (or artifact) digest."""
    if digest.algorithm != "sha256":
        raise _fail("message-signature bundles are supported for sha256 digests only")
    wanted = bytes.fromhex(digest.hex)
    if bundle.message_digest is not None and bundle.message_digest != wanted:
        raise _fail(f"message signature is not over {digest}")
    return wanted


def _signature_ok(bundle: ParsedBundle, key: PublicKey, wanted: bytes | None) -> bool:
    if bundle.kind == "dsse":
        assert bundle.payload_type is not None and bundle.payload is not None  # noqa: S101
        return key.verify(bundle.signature, pae(bundle.payload_type, bundle.payload))
    assert wanted is not None  # noqa: S101 - set for message signatures
    return _verify_prehashed(key, bundle.signature, wanted)


def _signed(bundle: ParsedBundle, signer_der: bytes, is_certificate: bool,
            wanted: bytes | None) -> Signed:
    return Signed(bundle.signature, signer_der, is_certificate, message_digest=wanted,
                  payload_type=bundle.payload_type, payload=bundle.payload)


def _check_content_type(bundle: ParsedBundle, predicate_type: str | None) -> None:
    if bundle.kind == "message":
        if predicate_type not in (SIGN_PREDICATE, None):
            raise _fail(f"a message signature is not a {predicate_type} attestation")
    elif bundle.payload_type != IN_TOTO_PAYLOAD_TYPE:
        raise _fail(f"DSSE payload type is {bundle.payload_type!r}, not in-toto")


# --- times and the log ----------------------------------------------------------------------


def _log_entry(bundle: ParsedBundle, trust_root: TrustRoot, signed: Signed) -> LogProof:
    return verify_entry(bundle.entries[0], trust_root, signed,
                        require_proof=bundle.version != "0.1",
                        require_set=bundle.version == "0.1")


def _signing_times(bundle: ParsedBundle, proof: LogProof | None,
                   trust_root: TrustRoot | None) -> tuple[list[datetime], tuple[str, ...]]:
    """Every verified signing time (SET first, then RFC 3161), each inside the log's window."""
    sources: list[tuple[datetime, str]] = []
    if proof is not None and proof.integrated_time is not None:
        sources.append((proof.integrated_time, "the SET's integratedTime"))
    stamps = verify_timestamps(list(bundle.timestamps), bundle.signature, trust_root)
    sources += [(s.time, f"the timestamp of {s.authority}") for s in stamps]
    if proof is not None:
        for when, source in sources:
            if not proof.log.validity.contains(when):
                raise _fail(f"{source} ({when.isoformat()}) is outside the validity of log "
                            f"{proof.log.base_url} in the trust root "
                            f"({proof.log.validity.describe()})")
    return [when for when, _ in sources], tuple(s.authority for s in stamps)


# --- verification -------------------------------------------------------------------------


def verify_bundle(
    bundle_bytes: bytes,
    digest: Digest,
    *,
    keys: Sequence[PublicKey] = (),
    identities: Sequence[Identity] = (),
    trust_root: TrustRoot | None = None,
    tlog: Tlog = Tlog.OPTIONAL,
    predicate_type: str | None = SIGN_PREDICATE,
    claims: Mapping[str, str] | None = None,
) -> BundleResult:
    """Verify one bundle for ``digest`` (an image manifest, or any artifact's sha256).

    Never raises. A certificate bundle needs ``trust_root`` and ``identities``: its log
    entry and a verified signing time are always required. A key bundle needs ``keys`` and
    honours ``tlog`` (``trust_root`` supplies the logs and timestamp authorities).
    ``predicate_type`` None accepts any in-toto statement (artifact verification).
    """
    try:
        bundle = parse_bundle(bundle_bytes)
        if bundle.certificate is not None:
            return _verify_keyless(bundle, bundle.certificate, digest, identities,
                                   trust_root, predicate_type, claims)
        return _verify_with_key(bundle, digest, keys, trust_root, tlog, predicate_type)
    except VerificationError as e:
        # Our own refusals are reasons already; the parts' errors say which part failed.
        reason = e.why if e.what == _DOES_NOT_VERIFY else f"{e.what}: {e.why}"
        return BundleResult(False, reason=reason)


def _verify_keyless(
    bundle: ParsedBundle,
    leaf: x509.Certificate,
    digest: Digest,
    identities: Sequence[Identity],
    trust_root: TrustRoot | None,
    predicate_type: str | None,
    claims: Mapping[str, str] | None,
) -> BundleResult:
    from safedocker.signatures.keyless import match_identity, verify_fulcio_chain, verify_sct
    from safedocker.trust.keys import load_public_key

    if trust_root is None:
        raise _fail("a certificate bundle needs a Sigstore trust root")
    if not identities:
        raise _fail("no identities are configured for certificate signatures")
    _check_content_type(bundle, predicate_type)
    wanted = _wanted_digest(bundle, digest) if bundle.kind == "message" else None
    pem = leaf.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)
    try:
        key = load_public_key(pem, "signing certificate")
    except ConfigError as e:
        raise _fail(f"the signing certificate's key is unusable ({e.why or e.what})") from e
    if not _signature_ok(bundle, key, wanted):
        raise _fail("the signature is not made by the signing certificate's key")
    if len(bundle.entries) != 1:
        raise _fail("a certificate bundle needs its transparency-log entry")
    der = leaf.public_bytes(serialization.Encoding.DER)
    proof = _log_entry(bundle, trust_root, _signed(bundle, der, True, wanted))
    times, authorities = _signing_times(bundle, proof, trust_root)
    if not times:
        raise _fail("no verified signing time: the log entry has no SET and the bundle no "
                    "RFC 3161 timestamp (a Rekor v2 entry needs one)")
    path: list[x509.Certificate] = []
    for when in times:
        if not leaf.not_valid_before_utc <= when <= leaf.not_valid_after_utc:
            raise _fail(f"signed at {when.isoformat()}, outside the signing certificate's "
                        f"validity ({leaf.not_valid_before_utc.isoformat()} .. "
                        f"{leaf.not_valid_after_utc.isoformat()})")
        path = verify_fulcio_chain(leaf, trust_root, when)
    if trust_root.has_ctlogs:
        verify_sct(leaf, path[1], trust_root)
    subject, issuer, why = match_identity(leaf, identities, require_issuer=True, claims=claims)
    if why:
        raise _fail(why)
    statement = (parse_statement(bundle.payload or b"", digest, predicate_type)
                 if bundle.kind == "dsse" else None)
    return BundleResult(
        True,
        signer=f"{subject} (issuer {issuer})",
        kind="keyless",
        subject=subject,
        issuer=issuer,
        predicate_type=predicate_type,
        statement=statement,
        integrated_time=times[0],
        log=proof.log.base_url,
        timestamp_authorities=authorities,
        content=bundle.kind,
        certificate=leaf,
    )


def _verify_with_key(
    bundle: ParsedBundle,
    digest: Digest,
    keys: Sequence[PublicKey],
    trust_root: TrustRoot | None,
    tlog: Tlog,
    predicate_type: str | None,
) -> BundleResult:
    if not keys:
        raise _fail("the bundle is signed with a key, and the rule trusts no key")
    _check_content_type(bundle, predicate_type)
    wanted = _wanted_digest(bundle, digest) if bundle.kind == "message" else None
    signer = next((k for k in keys if _signature_ok(bundle, k, wanted)), None)
    if signer is None:
        names = ", ".join(k.name for k in keys)
        what = "DSSE signature" if bundle.kind == "dsse" else "message signature"
        raise _fail(f"{what} does not verify with any trusted key ({names})")
    statement = (parse_statement(bundle.payload or b"", digest, predicate_type)
                 if bundle.kind == "dsse" else None)
    proof = None
    times: list[datetime] = []
    authorities: tuple[str, ...] = ()
    if tlog is not Tlog.OFF:
        if (bundle.entries or bundle.timestamps) and trust_root is None:
            raise _fail("no trust root to verify the transparency-log entry with")
        if bundle.entries:
            assert trust_root is not None  # noqa: S101 - checked above
            proof = _log_entry(bundle, trust_root, _signed(bundle, signer.der, False, wanted))
        elif tlog is Tlog.REQUIRED:
            raise _fail("the rule requires a transparency-log entry and the bundle has none")
        times, authorities = _signing_times(bundle, proof, trust_root)
        if tlog is Tlog.REQUIRED and not times:
            raise _fail("the rule requires a transparency log, and the log entry has no "
                        "signed time: no SET and no RFC 3161 timestamp (a Rekor v2 entry "
                        "needs one)")
    return BundleResult(
        True,
        signer=f"key {signer.name}",
        kind="key",
        key_name=signer.name,
        predicate_type=predicate_type,
        statement=statement,
        integrated_time=times[0] if times else None,
        log=proof.log.base_url if proof else None,
        timestamp_authorities=authorities,
        content=bundle.kind,
    )
