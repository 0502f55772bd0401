"""An independent, offline Sigstore for tests: a Fulcio-like CA, a CT log and a Rekor log.

Everything is ECDSA P-256 made with cryptography; nothing here uses safe-docker's
verification code, so the verifiers are tested against bytes produced separately.

    world = SigstoreWorld()
    leaf = world.issue(email="dev@example.com", issuer="https://issuer.example")
    layer = world.cosign_layer(leaf, world.simple_signing(digest, "reg/repo:tag"))
    bundle = world.bundle(leaf, digest)                  # v0.3, DSSE in-toto statement
    root = world.trusted_root_json()                     # sigstore's JSON shape
    v2 = world.sign_bundle_rekor_v2(digest, identity="dev@example.com")  # Rekor v2 + TSA
    root = world.trusted_root_json(with_rekor_v2=True, with_tsa=True)  # that verifies it
    v2 = world.sign_bundle_rekor_v2(digest, key=private_key, timestamp=False)  # a bad one

Certificates follow the Fulcio profile: an empty subject, a critical SAN (e-mail or
URI), codeSigning EKU, the issuer in 1.3.6.1.4.1.57264.1.8 (DER UTF8String) and
1.3.6.1.4.1.57264.1.1 (raw), and an embedded precertificate SCT signed per RFC 6962.
Rekor entries carry a SET and a one-leaf inclusion proof with a signed checkpoint
(sigstore-python 4.x requires an inclusion proof with a checkpoint in every bundle).
The world also runs a Rekor v2 log and a timestamp authority (tests/sigstore_v2.py);
``trusted_root_json(with_rekor_v2=True, with_tsa=True)`` lists them, as the public-good
root does.
"""

from __future__ import annotations

import base64
import hashlib
import json
import struct
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.sigstore_v2 import (
    LogKey,
    RekorV2Log,
    TimestampAuthority,
    dsse_v2,
    hashedrekord_v2,
    verifier,
)

SCT_LIST_OID = x509.ObjectIdentifier("1.3.6.1.4.1.11129.2.4.2")
ISSUER_V1_OID = x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.1")
ISSUER_V2_OID = x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.8")
SIGN_PREDICATE = "https://sigstore.dev/cosign/sign/v1"
IN_TOTO_TYPE = "application/vnd.in-toto+json"
BUNDLE_V03 = "application/vnd.dev.sigstore.bundle.v0.3+json"
SIMPLE_SIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"
SIG_ANNOTATION = "dev.cosignproject.cosign/signature"
CERT_ANNOTATION = "dev.sigstore.cosign/certificate"
CHAIN_ANNOTATION = "dev.sigstore.cosign/chain"
BUNDLE_ANNOTATION = "dev.sigstore.cosign/bundle"
LOG_ORIGIN = "rekor.world.test - 1"
COSIGN_SIG_ARTIFACT = "application/vnd.dev.cosign.artifact.sig.v1+json"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def _spki(key: ec.EllipticCurvePublicKey) -> bytes:
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def public_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _canonical(obj: Any) -> bytes:
    # Equal to RFC 8785 for the ASCII strings and integers used here.
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def _der_utf8(text: str) -> bytes:
    raw = text.encode()
    assert len(raw) < 128
    return bytes([0x0C, len(raw)]) + raw


def _octet_string(raw: bytes) -> bytes:
    if len(raw) < 128:
        return bytes([0x04, len(raw)]) + raw
    size = len(raw).to_bytes((len(raw).bit_length() + 7) // 8, "big")
    return bytes([0x04, 0x80 | len(size)]) + size + raw


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE pre-authentication encoding."""
    t = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(payload), payload)


@dataclass
class Leaf:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey = field(repr=False)

    @property
    def pem(self) -> bytes:
        return _pem(self.cert)


@dataclass
class LogEntry:
    """A Rekor v1 entry: body, SET and a one-leaf inclusion proof."""

    body: bytes  # canonicalized entry JSON
    integrated_time: int
    log_index: int
    log_id: bytes
    set: bytes
    root_hash: bytes
    checkpoint: str

    def cosign_bundle_annotation(self) -> str:
        return json.dumps({
            "SignedEntryTimestamp": _b64(self.set),
            "Payload": {
                "body": _b64(self.body),
                "integratedTime": self.integrated_time,
                "logIndex": self.log_index,
                "logID": self.log_id.hex(),
            },
        })

    def tlog_entry(self, kind: str) -> dict[str, Any]:
        return {
            "logIndex": str(self.log_index),
            "logId": {"keyId": _b64(self.log_id)},
            "kindVersion": {"kind": kind, "version": "0.0.1"},
            "integratedTime": str(self.integrated_time),
            "inclusionPromise": {"signedEntryTimestamp": _b64(self.set)},
            "inclusionProof": {
                "logIndex": str(self.log_index),
                "rootHash": _b64(self.root_hash),
                "treeSize": str(self.log_index + 1),
                "hashes": [],
                "checkpoint": {"envelope": self.checkpoint},
            },
            "canonicalizedBody": _b64(self.body),
        }


class SigstoreWorld:
    """A private Fulcio root + intermediate, a CT log key and a Rekor log key."""

    def __init__(self, now: datetime | None = None) -> None:
        self.now = now or datetime.now(timezone.utc).replace(microsecond=0)
        self.root_key = ec.generate_private_key(ec.SECP256R1())
        self.intermediate_key = ec.generate_private_key(ec.SECP256R1())
        self.ct_key = ec.generate_private_key(ec.SECP256R1())
        self.rekor_key = ec.generate_private_key(ec.SECP256R1())
        start = self.now - timedelta(days=365)
        end = self.now + timedelta(days=3650)
        root_name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "world.test"),
                               x509.NameAttribute(NameOID.COMMON_NAME, "world-root")])
        inter_name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "world.test"),
                                x509.NameAttribute(NameOID.COMMON_NAME, "world-intermediate")])
        self.root = self._ca(root_name, root_name, self.root_key, self.root_key, start, end, 1)
        self.intermediate = self._ca(inter_name, root_name, self.intermediate_key,
                                     self.root_key, start, end, 0, code_signing=True)
        self.tsa = TimestampAuthority(self.now)
        self.rekor_v2 = RekorV2Log()

    # --- CA ---------------------------------------------------------------------------

    @staticmethod
    def _ca(subject: x509.Name, issuer: x509.Name, key: ec.EllipticCurvePrivateKey,
            signer: ec.EllipticCurvePrivateKey, start: datetime, end: datetime,
            path_length: int, *, code_signing: bool = False) -> x509.Certificate:
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject).issuer_name(issuer)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(end)
            .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
            .add_extension(x509.KeyUsage(
                digital_signature=False, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                           critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                signer.public_key()), critical=False)
        )
        if code_signing:
            builder = builder.add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False)
        return builder.sign(signer, hashes.SHA256())

    @property
    def log_id(self) -> bytes:
        return hashlib.sha256(_spki(self.rekor_key.public_key())).digest()

    @property
    def ct_log_id(self) -> bytes:
        return hashlib.sha256(_spki(self.ct_key.public_key())).digest()

    def trusted_root_json(self, *, with_ctlog: bool = True, with_rekor_v2: bool = False,
                          with_tsa: bool = False, tsa_valid_until: datetime | None = None,
                          rekor_v2_valid_until: datetime | None = None) -> bytes:
        """The world's trusted root: Fulcio CA, CT log and Rekor v1 log; with ``with_rekor_v2``
        and ``with_tsa`` also the Rekor v2 log and the TSA that :meth:`sign_bundle_rekor_v2`
        uses (off by default: tests written before them count the root's entries)."""
        start = self._rfc3339(self.now - timedelta(days=365))

        def log(key: ec.EllipticCurvePrivateKey, log_id: bytes, url: str) -> dict[str, Any]:
            return {
                "baseUrl": url,
                "hashAlgorithm": "SHA2_256",
                "publicKey": {"rawBytes": _b64(_spki(key.public_key())),
                              "keyDetails": "PKIX_ECDSA_P256_SHA_256",
                              "validFor": {"start": start}},
                "logId": {"keyId": _b64(log_id)},
            }

        tlogs = [log(self.rekor_key, self.log_id, "https://rekor.world.test")]
        if with_rekor_v2:
            tlogs.append(self.rekor_v2.trusted_root_entry(
                start, self._rfc3339(rekor_v2_valid_until) if rekor_v2_valid_until else None))
        document = {
            "mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
            "tlogs": tlogs,
            "certificateAuthorities": [{
                "subject": {"organization": "world.test", "commonName": "world-root"},
                "uri": "https://fulcio.world.test",
                "certChain": {"certificates": [{"rawBytes": _b64(_der(self.intermediate))},
                                               {"rawBytes": _b64(_der(self.root))}]},
                "validFor": {"start": start},
            }],
            "ctlogs": ([log(self.ct_key, self.ct_log_id, "https://ctfe.world.test")]
                       if with_ctlog else []),
            "timestampAuthorities": ([self.tsa.trusted_root_entry(
                start, self._rfc3339(tsa_valid_until) if tsa_valid_until else None)]
                if with_tsa else []),
        }
        return json.dumps(document, indent=2).encode()

    @staticmethod
    def _rfc3339(when: datetime) -> str:
        return when.strftime("%Y-%m-%dT%H:%M:%SZ")

    # --- leaf certificates ------------------------------------------------------------

    def issue(
        self,
        *,
        email: str | None = "dev@example.com",
        uri: str | None = None,
        issuer: str | None = "https://issuer.example",
        not_before: datetime | None = None,
        lifetime: timedelta = timedelta(minutes=10),
        sct: bool = True,
        bad_sct: bool = False,
        claims: dict[str, str] | None = None,
        ca_key: ec.EllipticCurvePrivateKey | None = None,
        ca_cert: x509.Certificate | None = None,
    ) -> Leaf:
        """A Fulcio-like leaf; ``claims`` maps OID strings to DER-UTF8String values."""
        key = ec.generate_private_key(ec.SECP256R1())
        signer_key = ca_key or self.intermediate_key
        signer_cert = ca_cert or self.intermediate
        start = not_before or (self.now - timedelta(minutes=1))
        names: list[x509.GeneralName] = []
        if email:
            names.append(x509.RFC822Name(email))
        if uri:
            names.append(x509.UniformResourceIdentifier(uri))
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([])).issuer_name(signer_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(start + lifetime)
            .add_extension(x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=False,
                crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]),
                           critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                           critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                signer_key.public_key()), critical=False)
            .add_extension(x509.SubjectAlternativeName(names), critical=True)
        )
        if issuer is not None:
            builder = builder.add_extension(
                x509.UnrecognizedExtension(ISSUER_V1_OID, issuer.encode()), critical=False)
            builder = builder.add_extension(
                x509.UnrecognizedExtension(ISSUER_V2_OID, _der_utf8(issuer)), critical=False)
        for oid, value in (claims or {}).items():
            builder = builder.add_extension(
                x509.UnrecognizedExtension(x509.ObjectIdentifier(oid), _der_utf8(value)),
                critical=False)
        if not sct:
            return Leaf(builder.sign(signer_key, hashes.SHA256()), key)
        # The SCT signs the TBS without the SCT list: build that first, then the same
        # TBS with the list appended (the serial, validity and keys stay the same).
        tbs = builder.sign(signer_key, hashes.SHA256()).tbs_certificate_bytes
        sct_list = self._sct_list(tbs, signer_cert, start, bad=bad_sct)
        final = builder.add_extension(
            x509.UnrecognizedExtension(SCT_LIST_OID, _octet_string(sct_list)), critical=False
        ).sign(signer_key, hashes.SHA256())
        assert final.tbs_precertificate_bytes == tbs
        return Leaf(final, key)

    def _sct_list(self, tbs: bytes, issuer: x509.Certificate, when: datetime,
                  *, bad: bool) -> bytes:
        timestamp = int(when.timestamp() * 1000)
        issuer_hash = hashlib.sha256(_spki(issuer.public_key())).digest()  # type: ignore[arg-type]
        signed = b"".join([b"\x00\x00", struct.pack(">Q", timestamp), struct.pack(">H", 1),
                           issuer_hash, len(tbs).to_bytes(3, "big"), tbs, b"\x00\x00"])
        if bad:
            signed += b"x"
        signature = self.ct_key.sign(signed, ec.ECDSA(hashes.SHA256()))
        sct = b"".join([b"\x00", self.ct_log_id, struct.pack(">Q", timestamp), b"\x00\x00",
                        b"\x04\x03", struct.pack(">H", len(signature)), signature])
        item = struct.pack(">H", len(sct)) + sct
        return struct.pack(">H", len(item)) + item

    # --- Rekor ------------------------------------------------------------------------

    def log(self, body: dict[str, Any], *, integrated_time: datetime | None = None,
            rekor_key: ec.EllipticCurvePrivateKey | None = None) -> LogEntry:
        key = rekor_key or self.rekor_key
        canonical = _canonical(body)
        when = int((integrated_time or self.now).timestamp())
        index = 0  # every entry is the only leaf of its own tree: a valid 1-leaf proof
        log_id = self.log_id
        payload = {"body": _b64(canonical), "integratedTime": when,
                   "logID": log_id.hex(), "logIndex": index}
        entry_set = key.sign(_canonical(payload), ec.ECDSA(hashes.SHA256()))
        leaf_hash = hashlib.sha256(b"\x00" + canonical).digest()
        note = f"{LOG_ORIGIN}\n{index + 1}\n{_b64(leaf_hash)}\n"
        note_sig = key.sign(note.encode(), ec.ECDSA(hashes.SHA256()))
        checkpoint = note + "\n" + f"\u2014 {LOG_ORIGIN.split()[0]} {_b64(log_id[:4] + note_sig)}\n"
        return LogEntry(canonical, when, index, log_id, entry_set, leaf_hash, checkpoint)

    @staticmethod
    def hashedrekord_body(signature: bytes, signer_pem: bytes, payload: bytes) -> dict[str, Any]:
        return {
            "apiVersion": "0.0.1",
            "kind": "hashedrekord",
            "spec": {
                "data": {"hash": {"algorithm": "sha256",
                                  "value": hashlib.sha256(payload).hexdigest()}},
                "signature": {"content": _b64(signature),
                              "publicKey": {"content": _b64(signer_pem)}},
            },
        }

    @staticmethod
    def dsse_body(envelope: dict[str, Any], payload: bytes, signature: bytes,
                  verifier_pem: bytes) -> dict[str, Any]:
        return {
            "apiVersion": "0.0.1",
            "kind": "dsse",
            "spec": {
                "envelopeHash": {"algorithm": "sha256",
                                 "value": hashlib.sha256(_canonical(envelope)).hexdigest()},
                "payloadHash": {"algorithm": "sha256",
                                "value": hashlib.sha256(payload).hexdigest()},
                "signatures": [{"signature": _b64(signature), "verifier": _b64(verifier_pem)}],
            },
        }

    # --- cosign classic layers ----------------------------------------------------------

    @staticmethod
    def simple_signing(digest: str, reference: str = "127.0.0.1:5000/world/image") -> bytes:
        return json.dumps({
            "critical": {"identity": {"docker-reference": reference},
                         "image": {"docker-manifest-digest": digest},
                         "type": "cosign container image signature"},
            "optional": None,
        }).encode()

    def cosign_layer(
        self,
        leaf: Leaf,
        payload: bytes,
        *,
        with_chain: bool = True,
        with_set: bool = True,
        integrated_time: datetime | None = None,
        rekor_key: ec.EllipticCurvePrivateKey | None = None,
        chain: list[x509.Certificate] | None = None,
    ) -> tuple[dict[str, str], str, bytes]:
        """(annotations, media type, blob) of one ``.sig`` manifest layer."""
        signature = leaf.key.sign(payload, ec.ECDSA(hashes.SHA256()))
        annotations = {SIG_ANNOTATION: _b64(signature), CERT_ANNOTATION: leaf.pem.decode()}
        if with_chain:
            certs = chain if chain is not None else [self.intermediate, self.root]
            annotations[CHAIN_ANNOTATION] = b"".join(_pem(c) for c in certs).decode()
        if with_set:
            entry = self.log(self.hashedrekord_body(signature, leaf.pem, payload),
                             integrated_time=integrated_time, rekor_key=rekor_key)
            annotations[BUNDLE_ANNOTATION] = entry.cosign_bundle_annotation()
        return annotations, SIMPLE_SIGNING, payload

    # --- sigstore bundles ----------------------------------------------------------------

    @staticmethod
    def statement(digest: str, predicate_type: str = SIGN_PREDICATE,
                  predicate: dict[str, Any] | None = None, *, name: str | None = None,
                  annotations: dict[str, Any] | None = None) -> bytes:
        """An in-toto statement as cosign v3 writes one: the subject is the digest, with
        no name unless ``name`` is given, and ``annotations`` (cosign's ``-a``) on it."""
        algorithm, _, hexpart = digest.partition(":")
        subject: dict[str, Any] = {"digest": {algorithm: hexpart}}
        if name is not None:
            subject["name"] = name
        if annotations is not None:
            subject["annotations"] = annotations
        return json.dumps({
            "_type": "https://in-toto.io/Statement/v1",
            "subject": [subject],
            "predicateType": predicate_type,
            "predicate": predicate or {},
        }).encode()

    def bundle(
        self,
        leaf: Leaf | None,
        digest: str,
        *,
        predicate_type: str = SIGN_PREDICATE,
        message: bool = False,
        key: ec.EllipticCurvePrivateKey | None = None,
        with_tlog: bool = True,
        integrated_time: datetime | None = None,
        payload: bytes | None = None,
        name: str | None = None,
        annotations: dict[str, Any] | None = None,
    ) -> bytes:
        """A v0.3 bundle for ``digest``: DSSE statement (default) or message signature.

        ``leaf`` signs keylessly; ``key`` (with ``leaf=None``) signs with a plain key.
        """
        signer = leaf.key if leaf else key
        assert signer is not None
        verifier_pem = leaf.pem if leaf else public_pem(signer)
        material: dict[str, Any] = (
            {"certificate": {"rawBytes": _b64(_der(leaf.cert))}} if leaf
            else {"publicKey": {"hint": _b64(hashlib.sha256(verifier_pem).digest())}}
        )
        document: dict[str, Any] = {"mediaType": BUNDLE_V03, "verificationMaterial": material}
        if message:
            hexpart = digest.partition(":")[2]
            prehashed = bytes.fromhex(hexpart)
            from cryptography.hazmat.primitives.asymmetric import utils

            signature = signer.sign(prehashed, ec.ECDSA(utils.Prehashed(hashes.SHA256())))
            document["messageSignature"] = {
                "messageDigest": {"algorithm": "SHA2_256", "digest": _b64(prehashed)},
                "signature": _b64(signature),
            }
            body = {
                "apiVersion": "0.0.1", "kind": "hashedrekord",
                "spec": {"data": {"hash": {"algorithm": "sha256", "value": hexpart}},
                         "signature": {"content": _b64(signature),
                                       "publicKey": {"content": _b64(verifier_pem)}}},
            }
            kind = "hashedrekord"
        else:
            statement = payload if payload is not None else self.statement(
                digest, predicate_type, name=name, annotations=annotations)
            signature = signer.sign(pae(IN_TOTO_TYPE, statement), ec.ECDSA(hashes.SHA256()))
            envelope = {"payload": _b64(statement), "payloadType": IN_TOTO_TYPE,
                        "signatures": [{"sig": _b64(signature), "keyid": ""}]}
            document["dsseEnvelope"] = envelope
            body = self.dsse_body(envelope, statement, signature, verifier_pem)
            kind = "dsse"
        material["tlogEntries"] = []
        if with_tlog:
            entry = self.log(body, integrated_time=integrated_time)
            material["tlogEntries"] = [entry.tlog_entry(kind)]
        return json.dumps(document, indent=2).encode()

    # --- OCI referrer artifacts -----------------------------------------------------------

    @staticmethod
    def referrer_manifest(bundle: bytes, subject_digest: str, subject_size: int,
                          subject_media_type: str = "application/vnd.oci.image.manifest.v1+json"
                          ) -> tuple[bytes, bytes]:
        """(manifest bytes, config blob) of the OCI artifact that attaches ``bundle``."""
        config = b"{}"
        manifest = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "artifactType": BUNDLE_V03,
            "config": {"mediaType": "application/vnd.oci.empty.v1+json",
                       "digest": "sha256:" + hashlib.sha256(config).hexdigest(),
                       "size": len(config)},
            "layers": [{"mediaType": BUNDLE_V03,
                        "digest": "sha256:" + hashlib.sha256(bundle).hexdigest(),
                        "size": len(bundle)}],
            "subject": {"mediaType": subject_media_type, "digest": subject_digest,
                        "size": subject_size},
            "annotations": {"dev.sigstore.bundle.content": "dsse-envelope",
                            "dev.sigstore.bundle.predicateType": SIGN_PREDICATE},
        }
        return json.dumps(manifest).encode(), config

    @staticmethod
    def cosign_referrer_manifest(layers: list[tuple[dict[str, str], str, bytes]],
                                 subject_digest: str, subject_size: int,
                                 subject_media_type: str = "application/vnd.oci.image.manifest"
                                                           ".v1+json",
                                 ) -> tuple[bytes, dict[str, bytes]]:
        """cosign's "experimental OCI 1.1" signature artifact: (manifest, blobs by digest).

        ``layers`` are :meth:`cosign_layer` results; like cosign, the artifact type is
        both ``artifactType`` and the config media type, and the subject is the image.
        """
        config = json.dumps({"architecture": "", "os": "", "rootfs": {"type": "layers",
                                                                      "diff_ids": []}}).encode()
        blobs = {"sha256:" + hashlib.sha256(config).hexdigest(): config}
        descriptors = []
        for layer_annotations, media_type, blob in layers:
            digest = "sha256:" + hashlib.sha256(blob).hexdigest()
            blobs[digest] = blob
            descriptors.append({"mediaType": media_type, "size": len(blob), "digest": digest,
                                "annotations": layer_annotations})
        manifest = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "artifactType": COSIGN_SIG_ARTIFACT,
            "config": {"mediaType": COSIGN_SIG_ARTIFACT, "size": len(config),
                       "digest": "sha256:" + hashlib.sha256(config).hexdigest()},
            "layers": descriptors,
            "subject": {"mediaType": subject_media_type, "size": subject_size,
                        "digest": subject_digest},
        }
        return json.dumps(manifest).encode(), blobs

    # --- Rekor v2 + TSA bundles -----------------------------------------------------------

    def sign_bundle_rekor_v2(
        self,
        digest: str,
        *,
        key: ec.EllipticCurvePrivateKey | None = None,
        identity: Leaf | str | None = None,
        issuer: str = "https://issuer.example",
        predicate_type: str = SIGN_PREDICATE,
        message: bool = False,
        dsse_entry: str = "hashedrekord",
        timestamp: bool = True,
        timestamp_at: datetime | None = None,
        tsa: TimestampAuthority | None = None,
        checkpoint_signer: LogKey | None = None,
        cosigners: int = 0,
        name: str | None = None,
        annotations: dict[str, Any] | None = None,
    ) -> bytes:
        """A v0.3 bundle for ``digest`` logged in the world's Rekor v2 log, with a TSA
        timestamp over its signature, as cosign v3 writes against a Rekor v2 instance.

        Sign with a plain ``key`` or keylessly as ``identity`` (a :class:`Leaf`, or an
        e-mail / URI to issue a fresh certificate for, with ``issuer``). A DSSE envelope
        is logged as ``hashedrekord`` 0.0.2 over its PAE (``dsse_entry="dsse"``: as a
        ``dsse`` 0.0.2 entry). Bad variants: ``timestamp=False``; ``timestamp_at`` a
        time outside the certificate's validity; ``tsa`` one the trusted root does not
        list; ``checkpoint_signer`` a log key the trusted root does not list. Verify it
        under ``trusted_root_json(with_rekor_v2=True, with_tsa=True)``.
        """
        if (key is None) == (identity is None):
            raise ValueError("sign with key= or identity=, not both")
        leaf = identity if isinstance(identity, Leaf) else None
        if isinstance(identity, str):
            leaf = (self.issue(email=identity, issuer=issuer) if "@" in identity
                    else self.issue(email=None, uri=identity, issuer=issuer))
        signer = leaf.key if leaf is not None else key
        assert signer is not None
        if leaf is not None:
            signer_der = _der(leaf.cert)
            material: dict[str, Any] = {"certificate": {"rawBytes": _b64(signer_der)}}
        else:
            signer_der = _spki(signer.public_key())
            material = {"publicKey": {"hint": _b64(hashlib.sha256(signer_der).digest())}}
        logged_verifier = verifier(signer_der, certificate=leaf is not None)
        document: dict[str, Any] = {"mediaType": BUNDLE_V03, "verificationMaterial": material}
        if message:
            from cryptography.hazmat.primitives.asymmetric import utils

            prehashed = bytes.fromhex(digest.partition(":")[2])
            signature = signer.sign(prehashed, ec.ECDSA(utils.Prehashed(hashes.SHA256())))
            document["messageSignature"] = {
                "messageDigest": {"algorithm": "SHA2_256", "digest": _b64(prehashed)},
                "signature": _b64(signature),
            }
            body = hashedrekord_v2(prehashed, signature, logged_verifier)
        else:
            statement = self.statement(digest, predicate_type, name=name,
                                       annotations=annotations)
            signed = pae(IN_TOTO_TYPE, statement)
            signature = signer.sign(signed, ec.ECDSA(hashes.SHA256()))
            document["dsseEnvelope"] = {"payload": _b64(statement), "payloadType": IN_TOTO_TYPE,
                                        "signatures": [{"sig": _b64(signature), "keyid": ""}]}
            body = (dsse_v2(statement, signature, logged_verifier) if dsse_entry == "dsse"
                    else hashedrekord_v2(hashlib.sha256(signed).digest(), signature,
                                         logged_verifier))
        material["tlogEntries"] = [self.rekor_v2.log(body, checkpoint_signer=checkpoint_signer,
                                                     cosigners=cosigners)]
        if timestamp:
            response = (tsa or self.tsa).timestamp(signature, timestamp_at or self.now)
            material["timestampVerificationData"] = {
                "rfc3161Timestamps": [{"signedTimestamp": _b64(response)}]}
        return json.dumps(document, indent=2).encode()
