"""Trusted public keys: loading, fingerprints, and signature checks as cosign makes them.

Supported: ECDSA P-256/P-384/P-521, RSA (PKCS#1 v1.5 or PSS, >= 2048 bits), Ed25519
(pure); ECDSA and RSA with SHA-256, SHA-384 or SHA-512 (cosign's
``--signature-digest-algorithm``). A bad signature is a ``False``, never an exception: the
caller tries every trusted key and explains the outcome once.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

from safedocker.errors import ConfigError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes

MIN_RSA_BITS = 2048  # what cosign's goodkey accepts
MAX_PEM_SIZE = 64 * 1024

VerifyingKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey | ed25519.Ed25519PublicKey

# The digest that cosign/sigstore pair with each curve (PKIX_ECDSA_P384_SHA_384, ...).
_CURVE_HASH: dict[str, type[hashes.HashAlgorithm]] = {
    "secp256r1": hashes.SHA256,
    "secp384r1": hashes.SHA384,
    "secp521r1": hashes.SHA512,
}


@dataclass(frozen=True)
class PublicKey:
    """A public key from the trust store (or a Rekor log key), named by the user."""

    name: str
    fingerprint: str  # "sha256:<hex of sha256(DER SubjectPublicKeyInfo)>"
    pem: bytes
    key: VerifyingKey = field(compare=False, repr=False)

    @property
    def der(self) -> bytes:
        """The DER SubjectPublicKeyInfo, the bytes the fingerprint and a Rekor logID hash."""
        return spki_der(self.key)

    @property
    def algorithm(self) -> str:
        """Human description such as ``ecdsa-p256`` or ``rsa-4096``."""
        if isinstance(self.key, ec.EllipticCurvePublicKey):
            return {"secp256r1": "ecdsa-p256", "secp384r1": "ecdsa-p384"}.get(
                self.key.curve.name, "ecdsa-p521"
            )
        if isinstance(self.key, rsa.RSAPublicKey):
            return f"rsa-{self.key.key_size}"
        return "ed25519"

    def verify(self, signature: bytes, data: bytes) -> bool:
        """True when ``signature`` over ``data`` verifies with this key; never raises."""
        try:
            return _verify(self.key, signature, data)
        except (InvalidSignature, ValueError, TypeError, UnsupportedAlgorithm):
            return False


def _ecdsa(
    key: ec.EllipticCurvePublicKey, signature: bytes, data: bytes, algorithm: hashes.HashAlgorithm
) -> bool:
    try:
        key.verify(signature, data, ec.ECDSA(algorithm))
    except InvalidSignature:
        return False
    return True


# cosign's --signature-digest-algorithm: sha256 (default), sha384, sha512. The RSA
# signature names its digest (PKCS#1 v1.5 DigestInfo, PSS's MGF1), so trying each is
# not weaker than knowing it; cert-manager signs with RSA-4096 and SHA-512.
_SIGNATURE_DIGESTS: tuple[type[hashes.HashAlgorithm], ...] = (
    hashes.SHA256, hashes.SHA384, hashes.SHA512)


def _rsa(
    key: rsa.RSAPublicKey, signature: bytes, data: bytes, scheme: padding.AsymmetricPadding,
    algorithm: hashes.HashAlgorithm,
) -> bool:
    try:
        key.verify(signature, data, scheme, algorithm)
    except InvalidSignature:
        return False
    return True


def _verify(key: VerifyingKey, signature: bytes, data: bytes) -> bool:
    if isinstance(key, ec.EllipticCurvePublicKey):
        # The curve's own digest first; cosign before its "auto-detect digest" change
        # (v2.5) signed with SHA-256 whatever the curve, and --signature-digest-algorithm
        # picks SHA-384 or SHA-512: all are still in registries, none is weaker.
        preferred = _CURVE_HASH[key.curve.name]
        algorithms = [preferred, *(a for a in _SIGNATURE_DIGESTS if a is not preferred)]
        return any(_ecdsa(key, signature, data, a()) for a in algorithms)
    if isinstance(key, rsa.RSAPublicKey):
        for algorithm in _SIGNATURE_DIGESTS:
            schemes: list[padding.AsymmetricPadding] = [
                padding.PKCS1v15(),
                padding.PSS(mgf=padding.MGF1(algorithm()), salt_length=padding.PSS.AUTO),
            ]
            if any(_rsa(key, signature, data, scheme, algorithm()) for scheme in schemes):
                return True
        return False
    try:
        key.verify(signature, data)
    except InvalidSignature:
        return False
    return True


def spki_der(key: PublicKeyTypes) -> bytes:
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def fingerprint_der(der: bytes) -> str:
    return "sha256:" + hashlib.sha256(der).hexdigest()


def load_public_key(pem: bytes, name: str) -> PublicKey:
    """Parse one PEM public key, or raise :class:`ConfigError` saying what is wrong."""
    if len(pem) > MAX_PEM_SIZE:
        raise ConfigError(f"key {name!r} is not a public key", why="the file is too large")
    if b"PRIVATE KEY" in pem:
        raise ConfigError(
            f"key {name!r} is a private key",
            why="the trust store holds public keys only",
            hint="use the .pub file (cosign public-key --key cosign.key)",
        )
    try:
        key = serialization.load_pem_public_key(pem)
    except UnsupportedAlgorithm as e:
        raise ConfigError(
            f"key {name!r} has an unsupported type",
            why="its algorithm is not one safe-docker verifies",
            hint="use ECDSA (P-256/384/521), RSA or Ed25519",
        ) from e
    except (ValueError, TypeError) as e:
        raise ConfigError(
            f"key {name!r} is not a PEM public key",
            why="no valid -----BEGIN PUBLIC KEY----- block in the file",
            hint="use the .pub file cosign or openssl wrote (openssl pkey -pubout)",
        ) from e
    checked = _supported(key, name)
    fingerprint = fingerprint_der(spki_der(checked))
    return PublicKey(name=name, fingerprint=fingerprint, pem=pem, key=checked)


def _supported(key: object, name: str) -> VerifyingKey:
    if isinstance(key, ec.EllipticCurvePublicKey):
        if key.curve.name not in _CURVE_HASH:
            raise ConfigError(
                f"key {name!r} uses an unsupported curve",
                why=key.curve.name,
                hint="use ECDSA P-256, P-384 or P-521",
            )
        return key
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < MIN_RSA_BITS:
            raise ConfigError(
                f"key {name!r} is too weak",
                why=f"RSA {key.key_size} bits",
                hint=f"use RSA of at least {MIN_RSA_BITS} bits",
            )
        return key
    if isinstance(key, ed25519.Ed25519PublicKey):
        return key
    raise ConfigError(
        f"key {name!r} has an unsupported type",
        why="it is neither ECDSA, RSA nor Ed25519",
        hint="use ECDSA (P-256/384/521), RSA or Ed25519",
    )


def fingerprint_of(pem: bytes) -> str:
    """``sha256:<hex>`` of the key's DER SubjectPublicKeyInfo, as in the config's keys table."""
    return load_public_key(pem, "key").fingerprint
