"""Certificate-based cosign signatures: keyless (Fulcio) and private PKI.

A classic ``.sig`` layer signed keylessly carries the leaf certificate, its chain and a
Rekor bundle (SET) in annotations. It is accepted only when, in this order:

1. the payload signature verifies with the leaf certificate's public key;
2. the SET verifies with a trusted Rekor key (Fulcio: always required, since the
   certificate lives ten minutes and the SET's integratedTime is the only trusted time;
   private PKI: per the rule's ``tlog``) and the log key was valid at that time;
3. the leaf chains to a trusted root, every certificate valid at that time (integrated
   time, or now for PKI without a SET), CA constraints and code-signing usage respected;
4. (Fulcio, when the trust root has CT logs) an embedded SCT verifies with a CT log key;
5. the certificate's identity matches one of the policy identities;
6. the simple-signing payload names the expected image digest.

Identity matching follows cosign: exact strings compare equal; ``*_regexp`` values are
searched, unanchored, like Go's ``regexp.MatchString`` (write ``^...$`` to anchor). The
subject is any SAN e-mail address or URI; the issuer is the Fulcio extension
1.3.6.1.4.1.57264.1.8 (DER UTF8String), falling back to the older 1.3.6.1.4.1.57264.1.1.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.x509 import certificate_transparency as ct
from cryptography.x509.oid import ExtendedKeyUsageOID, ExtensionOID

from safedocker._internal.goregexp import GoRegexpError, compile_go
from safedocker.errors import ConfigError, VerificationError
from safedocker.policy.model import Tlog
from safedocker.signatures.rekor import verify_set
from safedocker.signatures.simplesigning import parse_payload
from safedocker.trust.keys import load_public_key, spki_der

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

    from safedocker.policy.model import Identity
    from safedocker.reference import Digest
    from safedocker.signatures.cosign import CosignSignature
    from safedocker.signatures.rekor import RekorEntry
    from safedocker.signatures.simplesigning import SimpleSigningPayload
    from safedocker.trust.keys import PublicKey
    from safedocker.trust.roots import TrustRoot

MAX_CERT_PEM = 64 * 1024
MAX_CHAIN_CERTS = 10
MAX_PATH_DEPTH = 6

OID_ISSUER_V1 = "1.3.6.1.4.1.57264.1.1"  # raw bytes
OID_ISSUER_V2 = "1.3.6.1.4.1.57264.1.8"  # DER UTF8String

# claim name -> (deprecated raw-value OID, current DER-UTF8String OID)
CLAIM_OIDS: dict[str, tuple[str, str]] = {
    "github_workflow_trigger": ("1.3.6.1.4.1.57264.1.2", "1.3.6.1.4.1.57264.1.20"),
    "github_workflow_sha": ("1.3.6.1.4.1.57264.1.3", "1.3.6.1.4.1.57264.1.13"),
    "github_workflow_name": ("1.3.6.1.4.1.57264.1.4", ""),
    "github_workflow_repository": ("1.3.6.1.4.1.57264.1.5", "1.3.6.1.4.1.57264.1.12"),
    "github_workflow_ref": ("1.3.6.1.4.1.57264.1.6", "1.3.6.1.4.1.57264.1.14"),
}

# Extensions whose meaning we enforce; any other critical extension refuses the chain
# (the CT poison of a precertificate included: a precertificate is not a certificate).
_HANDLED_CRITICAL = {
    ExtensionOID.BASIC_CONSTRAINTS,
    ExtensionOID.KEY_USAGE,
    ExtensionOID.EXTENDED_KEY_USAGE,
    ExtensionOID.SUBJECT_ALTERNATIVE_NAME,
    ExtensionOID.AUTHORITY_KEY_IDENTIFIER,
    ExtensionOID.SUBJECT_KEY_IDENTIFIER,
}


@dataclass(frozen=True)
class KeylessResult:
    """The outcome of one certificate-based signature; ``reason`` says why not."""

    verified: bool
    subject: str | None = None
    issuer: str | None = None
    reason: str = ""
    payload: SimpleSigningPayload | None = None
    integrated_time: datetime | None = None  # the SET's time when one verified
    log_index: int | None = None
    claims: Mapping[str, str] = field(default_factory=dict)
    certificate: x509.Certificate | None = field(default=None, repr=False, compare=False)

    def describe(self) -> str:
        """``subject (issuer ...)``, as :meth:`Identity.describe` words it."""
        return f"{self.subject} (issuer {self.issuer or 'none'})"


def _fail(what: str, why: str) -> VerificationError:
    return VerificationError(what, why=why)


# --- certificates ------------------------------------------------------------------------


def load_pem_certificates(pem: bytes, what: str) -> list[x509.Certificate]:
    """All certificates of a PEM text, bounded; raises :class:`VerificationError`."""
    if len(pem) > MAX_CERT_PEM:
        raise _fail(f"invalid {what}", f"larger than {MAX_CERT_PEM} bytes")
    try:
        certs = x509.load_pem_x509_certificates(pem)
    except ValueError as e:
        raise _fail(f"invalid {what}", "not PEM X.509 certificates") from e
    if len(certs) > MAX_CHAIN_CERTS:
        raise _fail(f"invalid {what}", f"more than {MAX_CHAIN_CERTS} certificates")
    return certs


def load_certificate_file(pem: bytes, what: str) -> list[x509.Certificate]:
    """PEM roots or intermediates from the policy; a :class:`ConfigError` when wrong."""
    try:
        certs = load_pem_certificates(pem, what)
    except VerificationError as e:
        raise ConfigError(f"{what} is not a PEM certificate list", why=e.why) from e
    if not certs:
        raise ConfigError(f"{what} holds no certificate")
    return certs


def _der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def _ext(
    cert: x509.Certificate, oid: x509.ObjectIdentifier
) -> x509.Extension[x509.ExtensionType] | None:
    try:
        return cert.extensions.get_extension_for_oid(oid)
    except x509.ExtensionNotFound:
        return None


def _check_common(cert: x509.Certificate, when: datetime, role: str) -> None:
    if not cert.not_valid_before_utc <= when <= cert.not_valid_after_utc:
        raise _fail(
            "certificate chain does not verify",
            f"{role} {cert.subject.rfc4514_string() or '(empty subject)'} is not valid at "
            f"{when.isoformat()} (valid {cert.not_valid_before_utc.isoformat()} .. "
            f"{cert.not_valid_after_utc.isoformat()})",
        )
    for ext in cert.extensions:
        if ext.critical and ext.oid not in _HANDLED_CRITICAL:
            raise _fail(
                "certificate chain does not verify",
                f"{role} has an unhandled critical extension {ext.oid.dotted_string}",
            )
    eku = _ext(cert, ExtensionOID.EXTENDED_KEY_USAGE)
    if eku is not None:
        usages = list(eku.value)  # type: ignore[call-overload]
        if (
            ExtendedKeyUsageOID.CODE_SIGNING not in usages
            and ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE not in usages
        ):
            raise _fail("certificate chain does not verify", f"{role} is not for code signing")


def _check_leaf(cert: x509.Certificate, when: datetime, *, fulcio: bool) -> None:
    _check_common(cert, when, "signing certificate")
    bc = _ext(cert, ExtensionOID.BASIC_CONSTRAINTS)
    if bc is not None and bc.value.ca:  # type: ignore[attr-defined]
        raise _fail("invalid signing certificate", "it is a CA certificate")
    ku = _ext(cert, ExtensionOID.KEY_USAGE)
    if ku is None and fulcio:
        raise _fail("invalid signing certificate", "no key usage extension")
    if ku is not None and not ku.value.digital_signature:  # type: ignore[attr-defined]
        raise _fail("invalid signing certificate", "key usage lacks digitalSignature")
    if fulcio and _ext(cert, ExtensionOID.EXTENDED_KEY_USAGE) is None:
        raise _fail("invalid signing certificate", "no code-signing extended key usage")


def _check_ca(cert: x509.Certificate, when: datetime, below: int) -> None:
    """``below``: how many CA certificates sit between this one and the leaf."""
    _check_common(cert, when, "CA certificate")
    bc = _ext(cert, ExtensionOID.BASIC_CONSTRAINTS)
    if bc is None or not bc.value.ca:  # type: ignore[attr-defined]
        raise _fail(
            "certificate chain does not verify",
            f"{cert.subject.rfc4514_string()} is not a CA (basicConstraints)",
        )
    path_length = bc.value.path_length  # type: ignore[attr-defined]
    if path_length is not None and below > path_length:
        raise _fail(
            "certificate chain does not verify",
            f"{cert.subject.rfc4514_string()} allows a path length of {path_length}",
        )
    ku = _ext(cert, ExtensionOID.KEY_USAGE)
    if ku is not None and not ku.value.key_cert_sign:  # type: ignore[attr-defined]
        raise _fail(
            "certificate chain does not verify",
            f"{cert.subject.rfc4514_string()} may not sign certificates (keyUsage)",
        )


def _issued_by(child: x509.Certificate, parent: x509.Certificate) -> bool:
    try:
        child.verify_directly_issued_by(parent)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False
    return True


def verify_chain(
    leaf: x509.Certificate,
    intermediates: Iterable[x509.Certificate],
    roots: Iterable[x509.Certificate],
    when: datetime,
    *,
    fulcio: bool,
) -> list[x509.Certificate]:
    """The verified path ``[leaf, ..., root]`` at ``when``, or raise.

    ``intermediates`` are untrusted helpers (the chain annotation, the trust root's
    intermediates); only ``roots`` anchor trust, compared byte for byte.
    """
    _check_leaf(leaf, when, fulcio=fulcio)
    root_ders = {_der(r): r for r in roots}
    pool = list({_der(c): c for c in (*intermediates, *root_ders.values())}.values())
    errors: list[str] = []

    def extend(path: list[x509.Certificate]) -> list[x509.Certificate] | None:
        current = path[-1]
        if _der(current) in root_ders and len(path) > 1:
            return path
        if len(path) > MAX_PATH_DEPTH:
            return None
        for candidate in pool:
            if candidate.subject != current.issuer or any(c is candidate for c in path):
                continue
            if not _issued_by(current, candidate):
                continue
            try:
                _check_ca(candidate, when, below=len(path) - 1)
            except VerificationError as e:
                errors.append(e.why)
                continue
            found = extend([*path, candidate])
            if found is not None:
                return found
        return None

    if _der(leaf) in root_ders:
        raise _fail("certificate chain does not verify", "the signing certificate is a root")
    found = extend([leaf])
    if found is None:
        why = errors[0] if errors else "no path from the signing certificate to a trusted root"
        raise _fail("certificate chain does not verify", why)
    return found


def verify_fulcio_chain(leaf: x509.Certificate, trust_root: TrustRoot, when: datetime,
                        extra: Iterable[x509.Certificate] = ()) -> list[x509.Certificate]:
    """The path from a Fulcio leaf to a CA of ``trust_root`` valid at ``when``, or raise.

    Only the trust root's CAs anchor trust; ``extra`` (a signature's own chain) may only
    help to build the path.
    """
    roots = [ca.root for ca in trust_root.certificate_authorities if ca.validity.contains(when)]
    if not roots:
        raise _fail("certificate chain does not verify",
                    f"no Fulcio CA of trust root {trust_root.name!r} is valid at "
                    f"{when.isoformat()}")
    intermediates = [c for ca in trust_root.certificate_authorities for c in ca.intermediates]
    return verify_chain(leaf, [*intermediates, *extra], roots, when, fulcio=True)


# --- Fulcio extensions, identity ---------------------------------------------------------


def _der_utf8(value: bytes) -> str | None:
    """Decode a DER UTF8String (tag 0x0c), or None."""
    if len(value) < 2 or value[0] != 0x0C:
        return None
    length, offset = value[1], 2
    if length & 0x80:
        count = length & 0x7F
        if count == 0 or count > 4 or len(value) < 2 + count:
            return None
        length = int.from_bytes(value[2 : 2 + count], "big")
        offset = 2 + count
    if offset + length != len(value):
        return None
    try:
        return value[offset:].decode("utf-8")
    except UnicodeDecodeError:
        return None


def _raw_ext(cert: x509.Certificate, oid: str) -> bytes | None:
    ext = _ext(cert, x509.ObjectIdentifier(oid))
    if ext is None or not isinstance(ext.value, x509.UnrecognizedExtension):
        return None
    return ext.value.value


def _claim(cert: x509.Certificate, raw_oid: str, der_oid: str) -> str | None:
    if der_oid:
        value = _raw_ext(cert, der_oid)
        if value is not None:
            return _der_utf8(value)
    value = _raw_ext(cert, raw_oid) if raw_oid else None
    if value is None:
        return None
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return None


def certificate_issuer(cert: x509.Certificate) -> str | None:
    """The OIDC issuer Fulcio recorded (1.3.6.1.4.1.57264.1.8, else .1.1)."""
    return _claim(cert, OID_ISSUER_V1, OID_ISSUER_V2)


def certificate_subjects(cert: x509.Certificate) -> list[str]:
    """SAN e-mail addresses and URIs, the identities cosign matches against."""
    ext = _ext(cert, ExtensionOID.SUBJECT_ALTERNATIVE_NAME)
    if ext is None:
        return []
    san = ext.value
    assert isinstance(san, x509.SubjectAlternativeName)  # noqa: S101 - typed by the OID
    return [*san.get_values_for_type(x509.RFC822Name),
            *san.get_values_for_type(x509.UniformResourceIdentifier)]


def certificate_claims(cert: x509.Certificate) -> dict[str, str]:
    """The GitHub workflow claims present in the certificate, by :data:`CLAIM_OIDS` name."""
    out = {}
    for name, (raw_oid, der_oid) in CLAIM_OIDS.items():
        value = _claim(cert, raw_oid, der_oid)
        if value is not None:
            out[name] = value
    return out


def _claim_matches(name: str, wanted: str, cert: x509.Certificate) -> bool:
    raw_oid, der_oid = CLAIM_OIDS[name]
    values = set()
    raw = _raw_ext(cert, raw_oid)
    if raw is not None:
        values.add(raw.decode("utf-8", "replace"))
    der = _raw_ext(cert, der_oid) if der_oid else None
    if der is not None and (text := _der_utf8(der)) is not None:
        values.add(text)
        if name == "github_workflow_repository":  # .12 is a URL, .5 is owner/name
            values.add(text.removeprefix("https://github.com/"))
    return wanted in values


def _matches(exact: str | None, pattern: str | None, values: Sequence[str]) -> bool:
    if exact is not None and exact not in values:
        return False
    if pattern is not None:
        # Go's regexp.MatchString, as cosign: RE2 syntax and meaning, unanchored search.
        try:
            compiled = compile_go(pattern)
        except GoRegexpError:
            return False
        if not any(compiled.search(v) for v in values):
            return False
    return True


def matching_identities(cert: x509.Certificate, identities: Sequence[Identity], *,
                        require_issuer: bool) -> list[int]:
    """The indexes of every identity the certificate satisfies: subject, issuer and the
    identity's own workflow claims (cosign's --certificate-github-workflow-*)."""
    subjects = certificate_subjects(cert)
    issuer = certificate_issuer(cert)
    found = []
    for index, identity in enumerate(identities):
        has_subject = identity.subject is not None or identity.subject_regexp is not None
        has_issuer = identity.issuer is not None or identity.issuer_regexp is not None
        if not has_subject or (require_issuer and not has_issuer):
            continue  # cosign requires both for keyless; never match "anyone"
        if not _matches(identity.subject, identity.subject_regexp, subjects):
            continue
        if has_issuer and (
            issuer is None
            or not _matches(identity.issuer, identity.issuer_regexp, [issuer])
        ):
            continue
        if not all(name in CLAIM_OIDS and _claim_matches(name, wanted, cert)
                   for name, wanted in identity.claims.items()):
            continue
        found.append(index)
    return found


def match_identity(
    cert: x509.Certificate,
    identities: Sequence[Identity],
    *,
    require_issuer: bool,
    claims: Mapping[str, str] | None = None,
) -> tuple[str | None, str | None, str]:
    """(subject, issuer, "") for the first identity that matches, else (.., .., reason)."""
    subjects = certificate_subjects(cert)
    issuer = certificate_issuer(cert)
    subject_text = ", ".join(subjects) or "none"
    if not identities:
        return None, issuer, "no identities are configured for certificate signatures"
    for name, wanted in sorted((claims or {}).items()):
        if name not in CLAIM_OIDS:
            return None, issuer, f"unknown certificate claim {name!r}"
        if not _claim_matches(name, wanted, cert):
            return None, issuer, f"certificate claim {name} is not {wanted!r}"
    for index in matching_identities(cert, identities, require_issuer=require_issuer):
        identity = identities[index]
        subject = next(
            (s for s in subjects if _matches(identity.subject, identity.subject_regexp, [s])),
            subjects[0] if subjects else None,
        )
        return subject, issuer, ""
    wanted_text = "; ".join(i.describe() for i in identities)
    return None, issuer, (
        f"certificate identity {subject_text} (issuer {issuer or 'none'}) "
        f"matches no trusted identity ({wanted_text})"
    )


# --- SCT (RFC 6962) ---------------------------------------------------------------------


def _sct_signed_data(sct: ct.SignedCertificateTimestamp, leaf: x509.Certificate,
                     issuer: x509.Certificate) -> bytes:
    """The ``digitally-signed`` struct of a precertificate SCT (RFC 6962 3.2)."""
    tbs = leaf.tbs_precertificate_bytes  # without the SCT list; the poison never was there
    issuer_key_hash = hashlib.sha256(spki_der(issuer.public_key())).digest()
    timestamp_ms = int(sct.timestamp.replace(tzinfo=timezone.utc).timestamp() * 1000)
    extensions = sct.extension_bytes
    return b"".join([
        b"\x00",  # sct_version v1
        b"\x00",  # signature_type certificate_timestamp
        struct.pack(">Q", timestamp_ms),
        struct.pack(">H", 1),  # entry_type precert_entry
        issuer_key_hash,
        len(tbs).to_bytes(3, "big"),
        tbs,
        len(extensions).to_bytes(2, "big"),
        extensions,
    ])


def verify_sct(leaf: x509.Certificate, issuer: x509.Certificate, trust_root: TrustRoot) -> str:
    """Verify an embedded SCT by a trusted CT log; returns the log URL, or raises."""
    ext = _ext(leaf, ExtensionOID.PRECERT_SIGNED_CERTIFICATE_TIMESTAMPS)
    if ext is None:
        raise _fail("certificate transparency proof does not verify",
                    "the certificate has no embedded SCT")
    scts = list(ext.value)  # type: ignore[call-overload]
    reasons = []
    for sct in scts:
        if sct.version != ct.Version.v1 or sct.entry_type != ct.LogEntryType.PRE_CERTIFICATE:
            reasons.append("unsupported SCT version or entry type")
            continue
        log = trust_root.ctlog(sct.log_id.hex())
        if log is None:
            reasons.append(f"SCT from unknown CT log {sct.log_id.hex()}")
            continue
        when = sct.timestamp.replace(tzinfo=timezone.utc)
        if not log.validity.contains(when):
            reasons.append(f"SCT from {log.base_url} outside its key's validity")
            continue
        if log.key.verify(sct.signature, _sct_signed_data(sct, leaf, issuer)):
            return log.base_url
        reasons.append(f"SCT signature by {log.base_url} does not verify")
    raise _fail("certificate transparency proof does not verify",
                "; ".join(reasons) or "empty SCT list")


# --- the verifiers ------------------------------------------------------------------------


def _leaf(sig: CosignSignature) -> x509.Certificate:
    if sig.certificate_pem is None:
        raise _fail("not a certificate signature", "the signature carries no certificate")
    certs = load_pem_certificates(sig.certificate_pem, "signing certificate")
    if len(certs) != 1:
        raise _fail("invalid signing certificate", f"{len(certs)} certificates, expected one")
    return certs[0]


def _check_payload_signature(sig: CosignSignature, leaf: x509.Certificate) -> PublicKey:
    pem = leaf.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    try:
        key = load_public_key(pem, "signing certificate")
    except ConfigError as e:
        raise _fail("invalid signing certificate", f"{e.what} ({e.why})") from e
    if not key.verify(sig.signature, sig.payload):
        raise _fail("signature does not verify", "not signed by the certificate's key")
    return key


def _set_time(sig: CosignSignature, rekor_keys: Sequence[PublicKey],
              trust_root: TrustRoot | None) -> RekorEntry:
    assert sig.certificate_pem is not None  # noqa: S101 - checked by _leaf
    entry = verify_set(sig, rekor_keys, sig.certificate_pem)
    if trust_root is not None:
        log = trust_root.tlog(entry.log_id)
        wanted = f"sha256:{entry.log_id.lower()}"
        log = log or next((t for t in trust_root.tlogs if t.key.fingerprint == wanted), None)
        if log is not None and not log.validity.contains(entry.integrated_time):
            raise _fail(
                "transparency-log proof (Rekor SET) does not verify",
                f"integratedTime is outside the validity of Rekor key {log.base_url}",
            )
    return entry


def _finish(sig: CosignSignature, digest: Digest, subject: str | None, issuer: str | None,
            entry: RekorEntry | None, leaf: x509.Certificate) -> KeylessResult:
    payload = parse_payload(sig.payload)
    common = {
        "subject": subject, "issuer": issuer, "payload": payload,
        "claims": certificate_claims(leaf), "certificate": leaf,
        "integrated_time": entry.integrated_time if entry else None,
        "log_index": entry.log_index if entry else None,
    }
    if payload.manifest_digest != digest:
        return KeylessResult(
            False, reason=f"signed payload names digest {payload.manifest_digest}, not {digest}",
            **common,  # type: ignore[arg-type]
        )
    return KeylessResult(True, **common)  # type: ignore[arg-type]


def verify_keyless(
    sig: CosignSignature,
    digest: Digest,
    identities: Sequence[Identity],
    trust_root: TrustRoot,
    *,
    tlog: Tlog = Tlog.REQUIRED,
    require_sct: bool | None = None,
    claims: Mapping[str, str] | None = None,
) -> KeylessResult:
    """Verify a Fulcio (keyless) ``.sig`` layer against ``trust_root``; never raises.

    The Rekor SET is always required (it is the only trusted signing time), whatever
    ``tlog`` says; ``tlog`` is accepted for symmetry with :func:`verify_pki`.
    ``require_sct`` defaults to ``trust_root.has_ctlogs``. ``claims`` are optional
    GitHub workflow claims (names of :data:`CLAIM_OIDS`) that must all match exactly.
    """
    del tlog  # keyless without a log entry has no trusted time: always required
    if require_sct is None:
        require_sct = trust_root.has_ctlogs
    try:
        if not sig.is_simple_signing:
            raise _fail("not a cosign signature", f"layer media type {sig.media_type!r}")
        leaf = _leaf(sig)
        _check_payload_signature(sig, leaf)
        if sig.bundle_json is None:
            raise _fail("keyless signature has no transparency-log proof",
                        "a Fulcio certificate needs the Rekor SET for its signing time")
        entry = _set_time(sig, trust_root.rekor_keys, trust_root)
        extra = (load_pem_certificates(sig.chain_pem, "certificate chain")
                 if sig.chain_pem is not None else [])
        path = verify_fulcio_chain(leaf, trust_root, entry.integrated_time, extra)
        if require_sct:
            verify_sct(leaf, path[1], trust_root)
        subject, issuer, why = match_identity(leaf, identities, require_issuer=True,
                                              claims=claims)
        if why:
            return KeylessResult(False, subject, issuer, why)
        return _finish(sig, digest, subject, issuer, entry, leaf)
    except VerificationError as e:
        return KeylessResult(False, reason=f"{e.what}: {e.why}" if e.why else e.what)


def verify_pki(
    sig: CosignSignature,
    digest: Digest,
    identities: Sequence[Identity],
    roots: Sequence[x509.Certificate],
    intermediates: Sequence[x509.Certificate] = (),
    rekor_keys: Sequence[PublicKey] = (),
    tlog: Tlog = Tlog.OPTIONAL,
    *,
    now: datetime | None = None,
) -> KeylessResult:
    """Verify a ``cosign sign --certificate`` signature against a private PKI; never raises.

    No Fulcio extensions or SCT are needed. With a verified SET the chain is checked at
    its integratedTime, otherwise at ``now``. ``tlog``: required = a SET must verify;
    optional = a SET that is present must verify; off = any SET is ignored.
    """
    try:
        if not sig.is_simple_signing:
            raise _fail("not a cosign signature", f"layer media type {sig.media_type!r}")
        if not roots:
            raise _fail("certificate chain does not verify", "no trusted root certificates")
        leaf = _leaf(sig)
        _check_payload_signature(sig, leaf)
        entry = None
        if tlog is Tlog.REQUIRED or (tlog is Tlog.OPTIONAL and sig.bundle_json is not None):
            entry = _set_time(sig, rekor_keys, None)
        when = entry.integrated_time if entry else (now or datetime.now(timezone.utc))
        pool = list(intermediates)
        if sig.chain_pem is not None:
            pool += load_pem_certificates(sig.chain_pem, "certificate chain")
        verify_chain(leaf, pool, roots, when, fulcio=False)
        subject, issuer, why = match_identity(leaf, identities, require_issuer=False)
        if why:
            return KeylessResult(False, subject, issuer, why)
        return _finish(sig, digest, subject, issuer, entry, leaf)
    except VerificationError as e:
        return KeylessResult(False, reason=f"{e.what}: {e.why}" if e.why else e.what)


