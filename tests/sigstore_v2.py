"""The newer half of the private Sigstore for tests: a Rekor v2 log and an RFC 3161 TSA.

Made independently of safe-docker's verifiers (cryptography and a small DER writer only),
so that they are tested against bytes produced separately:

- :class:`RekorV2Log` keeps an RFC 6962 Merkle tree of the entries it logs and answers
  each with an inclusion proof and a C2SP signed checkpoint, as Rekor v2 (tiles) does; no
  SET, no integrated time. Its key is Ed25519 (the log ID is the C2SP key ID, sha256 of
  ``origin || 0x0A || 0x01 || key``) or ECDSA P-256 (log ID sha256 of the DER key).
- :class:`TimestampAuthority` is a root CA and a timestamping certificate (critical
  id-kp-timeStamping EKU); :meth:`TimestampAuthority.timestamp` returns a DER
  TimeStampResp whose CMS SignedData signs a TSTInfo over SHA-256 of the message.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

OID_SHA256 = "2.16.840.1.101.3.4.2.1"
OID_ECDSA_SHA256 = "1.2.840.10045.4.3.2"
OID_SIGNED_DATA = "1.2.840.113549.1.7.2"
OID_TST_INFO = "1.2.840.113549.1.9.16.1.4"
OID_CONTENT_TYPE = "1.2.840.113549.1.9.3"
OID_MESSAGE_DIGEST = "1.2.840.113549.1.9.4"
OID_SIGNING_CERTIFICATE_V2 = "1.2.840.113549.1.9.16.2.47"
TSA_POLICY = "1.3.6.1.4.1.57264.2"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


# --- a small DER writer ---------------------------------------------------------------------


def der(tag: int, content: bytes) -> bytes:
    size = len(content)
    if size < 0x80:
        return bytes([tag, size]) + content
    raw = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(raw)]) + raw + content


def seq(*parts: bytes) -> bytes:
    return der(0x30, b"".join(parts))


def set_of(*parts: bytes) -> bytes:
    return der(0x31, b"".join(sorted(parts)))  # DER sorts SET OF elements


def integer(value: int) -> bytes:
    return der(0x02, value.to_bytes(value.bit_length() // 8 + 1, "big", signed=True))


def oid(dotted: str) -> bytes:
    first, second, *rest = (int(p) for p in dotted.split("."))
    out = bytearray([40 * first + second])
    for number in rest:
        chunk = [number & 0x7F]
        number >>= 7
        while number:
            chunk.append(0x80 | (number & 0x7F))
            number >>= 7
        out += bytes(reversed(chunk))
    return der(0x06, bytes(out))


def octets(data: bytes) -> bytes:
    return der(0x04, data)


def generalized_time(when: datetime) -> bytes:
    return der(0x18, when.strftime("%Y%m%d%H%M%SZ").encode())


# --- RFC 6962 Merkle trees ------------------------------------------------------------------


def _leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two smaller than n (n > 1)."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def tree_hash(leaves: list[bytes]) -> bytes:
    if len(leaves) == 1:
        return leaves[0]
    k = _split(len(leaves))
    return _node(tree_hash(leaves[:k]), tree_hash(leaves[k:]))


def inclusion_path(index: int, leaves: list[bytes]) -> list[bytes]:
    """RFC 6962 PATH(m, D[n]): sibling hashes from the leaf up to the root."""
    if len(leaves) == 1:
        return []
    k = _split(len(leaves))
    if index < k:
        return [*inclusion_path(index, leaves[:k]), tree_hash(leaves[k:])]
    return [*inclusion_path(index - k, leaves[k:]), tree_hash(leaves[:k])]


# --- Rekor v2 ---------------------------------------------------------------------------------

LogKey = ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey
LogPublicKey = ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey


def _spki(key: LogPublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.DER,
                            serialization.PublicFormat.SubjectPublicKeyInfo)


def log_id_for(origin: str, key: LogKey) -> bytes:
    """The C2SP signed-note key ID Rekor v2 uses as log ID (rekor-tiles pkg/note)."""
    public = key.public_key()
    if isinstance(public, ed25519.Ed25519PublicKey):
        raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return hashlib.sha256(origin.encode() + b"\n\x01" + raw).digest()
    return hashlib.sha256(_spki(public)).digest()


def _note_sign(key: LogKey, data: bytes) -> bytes:
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return key.sign(data)
    return key.sign(data, ec.ECDSA(hashes.SHA256()))


@dataclass
class RekorV2Log:
    """A Rekor v2 shard: entries in a Merkle tree, proofs and signed checkpoints."""

    origin: str = "rekor-v2.world.test"
    key: LogKey = field(default_factory=ed25519.Ed25519PrivateKey.generate, repr=False)
    leaves: list[bytes] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        # A few earlier entries, so that proofs are real paths, not a one-leaf tree.
        for i in range(5):
            self.leaves.append(_leaf_hash(b"earlier entry %d" % i))

    @property
    def base_url(self) -> str:
        return f"https://{self.origin}"

    @property
    def log_id(self) -> bytes:
        return log_id_for(self.origin, self.key)

    @property
    def key_details(self) -> str:
        return "PKIX_ED25519" if isinstance(self.key, ed25519.Ed25519PrivateKey) \
            else "PKIX_ECDSA_P256_SHA_256"

    def checkpoint(self, size: int, root: bytes, *, signer: LogKey | None = None,
                   name: str | None = None, cosigners: int = 0) -> str:
        """The signed note; ``signer``/``name`` forge one by an unknown key or name."""
        key = signer or self.key
        note = f"{self.origin}\n{size}\n{_b64(root)}\n"
        hint = log_id_for(name or self.origin, key)[:4]
        lines = [f"\u2014 {name or self.origin} {_b64(hint + _note_sign(key, note.encode()))}"]
        for i in range(cosigners):  # witness cosignatures a verifier does not know
            witness = ed25519.Ed25519PrivateKey.generate()
            lines.append(f"\u2014 witness{i}.world.test "
                         f"{_b64(b'wtns' + bytes(8) + witness.sign(note.encode()))}")
        return note + "\n" + "".join(line + "\n" for line in lines)

    def log(self, body: dict[str, Any], *, checkpoint_signer: LogKey | None = None,
            cosigners: int = 0) -> dict[str, Any]:
        """Append ``body`` and return its bundle ``tlogEntries`` item (no SET, no time)."""
        canonical = json.dumps(body, separators=(",", ":")).encode()
        index = len(self.leaves)
        self.leaves.append(_leaf_hash(canonical))
        size = len(self.leaves)
        root = tree_hash(self.leaves)
        return {
            "logIndex": str(index),
            "logId": {"keyId": _b64(self.log_id)},
            "kindVersion": {"kind": body["kind"], "version": body["apiVersion"]},
            "inclusionProof": {
                "logIndex": str(index),
                "rootHash": _b64(root),
                "treeSize": str(size),
                "hashes": [_b64(h) for h in inclusion_path(index, self.leaves)],
                "checkpoint": {"envelope": self.checkpoint(size, root, signer=checkpoint_signer,
                                                           cosigners=cosigners)},
            },
            "canonicalizedBody": _b64(canonical),
        }

    def trusted_root_entry(self, start: str, end: str | None = None) -> dict[str, Any]:
        valid: dict[str, str] = {"start": start}
        if end:
            valid["end"] = end
        return {
            "baseUrl": self.base_url,
            "hashAlgorithm": "SHA2_256",
            "publicKey": {"rawBytes": _b64(_spki(self.key.public_key())),
                          "keyDetails": self.key_details, "validFor": valid},
            "logId": {"keyId": _b64(self.log_id)},
        }


def verifier(signer_der: bytes, *, certificate: bool) -> dict[str, Any]:
    """A Rekor v2 ``verifier``: the signing certificate or public key (DER)."""
    field_name = "x509Certificate" if certificate else "publicKey"
    return {field_name: {"rawBytes": _b64(signer_der)}, "keyDetails": "PKIX_ECDSA_P256_SHA_256"}


def hashedrekord_v2(digest: bytes, signature: bytes, signer: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "0.0.2", "kind": "hashedrekord", "spec": {"hashedRekordV002": {
        "data": {"algorithm": "SHA2_256", "digest": _b64(digest)},
        "signature": {"content": _b64(signature), "verifier": signer}}}}


def dsse_v2(payload: bytes, signature: bytes, signer: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "0.0.2", "kind": "dsse", "spec": {"dsseV002": {
        "payloadHash": {"algorithm": "SHA2_256", "digest": _b64(hashlib.sha256(payload).digest())},
        "signatures": [{"content": _b64(signature), "verifier": signer}]}}}


# --- RFC 3161 -------------------------------------------------------------------------------


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "world.test"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


class TimestampAuthority:
    """A TSA: a root CA and its timestamping certificate, both P-256."""

    def __init__(self, now: datetime, *, name: str = "world-tsa",
                 cert_lifetime: timedelta = timedelta(days=3650)) -> None:
        self.uri = f"https://{name}.world.test/api/v1/timestamp"
        self.root_key = ec.generate_private_key(ec.SECP256R1())
        self.key = ec.generate_private_key(ec.SECP256R1())
        start = now - timedelta(days=365)
        self.root = (
            x509.CertificateBuilder()
            .subject_name(_name(f"{name}-root")).issuer_name(_name(f"{name}-root"))
            .public_key(self.root_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(now + timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(
                digital_signature=False, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .sign(self.root_key, hashes.SHA256())
        )
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(_name(name)).issuer_name(self.root.subject)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(start + cert_lifetime)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=False,
                crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]),
                           critical=True)
            .sign(self.root_key, hashes.SHA256())
        )

    def trusted_root_entry(self, start: str, end: str | None = None) -> dict[str, Any]:
        valid: dict[str, str] = {"start": start}
        if end:
            valid["end"] = end
        chain = [self.cert, self.root]
        return {
            "subject": {"organization": "world.test", "commonName": "world-tsa"},
            "uri": self.uri,
            "certChain": {"certificates": [
                {"rawBytes": _b64(c.public_bytes(serialization.Encoding.DER))} for c in chain]},
            "validFor": valid,
        }

    def timestamp(self, message: bytes, when: datetime, *, embed_certificate: bool = True,
                  serial: int = 1) -> bytes:
        """A DER TimeStampResp (status granted) over SHA-256 of ``message`` at ``when``."""
        algorithm = seq(oid(OID_SHA256))
        tst_info = seq(
            integer(1), oid(TSA_POLICY),
            seq(algorithm, octets(hashlib.sha256(message).digest())),
            integer(serial), generalized_time(when),
        )
        cert_der = self.cert.public_bytes(serialization.Encoding.DER)
        attributes = [
            seq(oid(OID_CONTENT_TYPE), set_of(oid(OID_TST_INFO))),
            seq(oid(OID_MESSAGE_DIGEST), set_of(octets(hashlib.sha256(tst_info).digest()))),
            seq(oid(OID_SIGNING_CERTIFICATE_V2),
                set_of(seq(seq(seq(octets(hashlib.sha256(cert_der).digest())))))),
        ]
        signed_attributes = b"".join(sorted(attributes))
        signature = self.key.sign(der(0x31, signed_attributes), ec.ECDSA(hashes.SHA256()))
        signer_info = seq(
            integer(1),
            seq(self.cert.issuer.public_bytes(), integer(self.cert.serial_number)),
            algorithm,
            der(0xA0, signed_attributes),  # [0] IMPLICIT SET OF Attribute
            seq(oid(OID_ECDSA_SHA256)),
            octets(signature),
        )
        parts = [integer(3), set_of(algorithm),
                 seq(oid(OID_TST_INFO), der(0xA0, octets(tst_info)))]
        if embed_certificate:
            parts.append(der(0xA0, cert_der))  # [0] IMPLICIT CertificateSet
        parts.append(set_of(signer_info))
        token = seq(oid(OID_SIGNED_DATA), der(0xA0, seq(*parts)))
        return seq(seq(integer(0)), token)
