"""cosign's password-protected private key files: generate, read, and sign with them.

The PEM body is go-securesystemslib's ``encrypted`` envelope, compact JSON
``{"kdf":{"name":"scrypt","params":{"N","r","p"},"salt"},"cipher":{"name":"nacl/secretbox",
"nonce"},"ciphertext"}`` (byte fields in standard base64), sealing the PKCS#8 DER of the key.
Current cosign writes ``ENCRYPTED SIGSTORE PRIVATE KEY`` with N=65536; older releases wrote
``ENCRYPTED COSIGN PRIVATE KEY`` with N=32768. Both are read.
"""

from __future__ import annotations

import binascii
import hashlib
import json
import os
from typing import TYPE_CHECKING

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

from safedocker._internal.encoding import b64decode, b64encode
from safedocker._internal.strictjson import loads_strict
from safedocker.errors import ConfigError, VerificationError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

SIGSTORE_PEM_TYPE = "ENCRYPTED SIGSTORE PRIVATE KEY"  # what cosign writes today
COSIGN_PEM_TYPE = "ENCRYPTED COSIGN PRIVATE KEY"  # legacy, still read
MAX_KEY_FILE_SIZE = 64 * 1024

# go-securesystemslib accepts exactly these (legacy, standard, OWASP): refusing others keeps
# a tampered file from making us spend unbounded memory or time in scrypt.
_SCRYPT_PARAMS = ((32768, 8, 1), (65536, 8, 1), (131072, 8, 1))
_WRITE_PARAMS = (65536, 8, 1)  # go-securesystemslib's default since v0.10, used by cosign
_SALT_SIZE = 32
_NONCE_SIZE = 24
_KEY_SIZE = 32

SigningKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey


def _bad(why: str, hint: str = "") -> ConfigError:
    return ConfigError("cannot read the cosign private key", why=why, hint=hint)


def _scrypt(password: bytes, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(
        password, salt=salt, n=n, r=r, p=p, maxmem=256 * 1024 * 1024, dklen=_KEY_SIZE
    )


def _pem(pem_type: str, body: bytes) -> bytes:
    """PEM as Go's encoding/pem writes it: 64-column base64 lines."""
    text = b64encode(body)
    lines = [text[i : i + 64] for i in range(0, len(text), 64)]
    return (
        f"-----BEGIN {pem_type}-----\n" + "\n".join(lines) + f"\n-----END {pem_type}-----\n"
    ).encode()


def encrypt_private_key(private_key: SigningKey, password: bytes) -> bytes:
    """The cosign ``.key`` file for ``private_key``, sealed with ``password`` (may be empty)."""
    import nacl.secret

    der = private_key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    n, r, p = _WRITE_PARAMS
    salt, nonce = os.urandom(_SALT_SIZE), os.urandom(_NONCE_SIZE)
    box = nacl.secret.SecretBox(_scrypt(password, salt, n, r, p))
    sealed = box.encrypt(der, nonce).ciphertext  # MAC || ciphertext, as Go's secretbox.Seal

    envelope = {
        "kdf": {"name": "scrypt", "params": {"N": n, "r": r, "p": p}, "salt": b64encode(salt)},
        "cipher": {"name": "nacl/secretbox", "nonce": b64encode(nonce)},
        "ciphertext": b64encode(sealed),
    }
    return _pem(SIGSTORE_PEM_TYPE, json.dumps(envelope, separators=(",", ":")).encode())


def public_key_pem(private_key: SigningKey) -> bytes:
    return private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def generate_key_pair(password: bytes) -> tuple[bytes, bytes]:
    """A new ECDSA P-256 key pair as cosign writes it: (``cosign.key``, ``cosign.pub``)."""
    private_key = ec.generate_private_key(ec.SECP256R1())
    return encrypt_private_key(private_key, password), public_key_pem(private_key)


def _pem_body(pem: bytes) -> bytes:
    text = pem.decode("ascii", errors="replace").strip()
    for pem_type in (SIGSTORE_PEM_TYPE, COSIGN_PEM_TYPE):
        begin, end = f"-----BEGIN {pem_type}-----", f"-----END {pem_type}-----"
        if text.startswith(begin) and text.endswith(end):
            body = "".join(text[len(begin) : -len(end)].split())
            try:
                return b64decode(body)
            except (binascii.Error, ValueError) as e:
                raise _bad("the PEM body is not base64") from e
    raise _bad(
        "not an encrypted cosign key",
        hint=f"expected -----BEGIN {SIGSTORE_PEM_TYPE}----- (cosign generate-key-pair)",
    )


def _b64_field(obj: object, name: str) -> bytes:
    value = obj.get(name) if isinstance(obj, dict) else None
    if not isinstance(value, str):
        raise _bad(f"the key envelope lacks {name}")
    try:
        return b64decode(value)
    except (binascii.Error, ValueError) as e:
        raise _bad(f"the key envelope's {name} is not base64") from e


def load_private_key(pem: bytes, password: bytes) -> SigningKey:
    """Decrypt a cosign ``.key`` file, or raise :class:`ConfigError` (wrong password, ...)."""
    if len(pem) > MAX_KEY_FILE_SIZE:
        raise _bad("the file is too large")
    return _signing_key(decrypt(_pem_body(pem), password))


def decrypt(sealed: bytes, password: bytes) -> bytes:
    """Open a go-securesystemslib ``encrypted`` envelope (the JSON inside a cosign key's
    PEM): ``encrypted.Decrypt``. :class:`ConfigError` for a wrong password or a bad file."""
    import nacl.exceptions
    import nacl.secret

    if len(sealed) > MAX_KEY_FILE_SIZE:
        raise _bad("the key envelope is too large")
    try:
        envelope = loads_strict(sealed, "cosign key envelope")
    except VerificationError as e:
        raise _bad(e.why) from e
    if not isinstance(envelope, dict):
        raise _bad("the key envelope is not a JSON object")
    kdf, cipher = envelope.get("kdf"), envelope.get("cipher")
    if not isinstance(kdf, dict) or kdf.get("name") != "scrypt":
        raise _bad("the key is not protected with scrypt")
    if not isinstance(cipher, dict) or cipher.get("name") != "nacl/secretbox":
        raise _bad("the key is not sealed with nacl/secretbox")
    params = kdf.get("params")
    triple = (
        (params.get("N"), params.get("r"), params.get("p")) if isinstance(params, dict) else None
    )
    if triple not in _SCRYPT_PARAMS:
        raise _bad(f"unsupported scrypt parameters {triple}")
    n, r, p = triple
    salt, nonce = _b64_field(kdf, "salt"), _b64_field(cipher, "nonce")
    if len(nonce) != _NONCE_SIZE:
        raise _bad("the nonce has the wrong size")
    box = nacl.secret.SecretBox(_scrypt(password, salt, n, r, p))
    try:
        return box.decrypt(_b64_field(envelope, "ciphertext"), nonce)
    except nacl.exceptions.CryptoError as e:
        raise ConfigError(
            "cannot decrypt the cosign private key",
            why="wrong password, or the file is damaged",
            hint="check the password (COSIGN_PASSWORD)",
        ) from e


def _der_length(der: bytes, at: int) -> tuple[int, int]:
    """(length, offset of the contents) of the DER element whose length octets start at ``at``."""
    first = der[at]
    if first < 0x80:
        return first, at + 1
    count = first & 0x7F
    return int.from_bytes(der[at + 1 : at + 1 + count], "big"), at + 1 + count


def _is_pkcs8(der: bytes) -> bool:
    """PrivateKeyInfo is SEQUENCE { INTEGER version, SEQUENCE algorithm, ... }.

    cosign parses with x509.ParsePKCS8PrivateKey only; SEC1 or PKCS#1 bodies (whose
    second element is an OCTET STRING or INTEGER) are refused there and so here.
    """
    try:
        if der[0] != 0x30:
            return False
        _, at = _der_length(der, 1)
        if der[at] != 0x02:
            return False
        length, at = _der_length(der, at + 1)
        return der[at + length] == 0x30
    except IndexError:
        return False


def _signing_key(der: bytes) -> SigningKey:
    if not _is_pkcs8(der):
        raise _bad("the decrypted key is not a PKCS#8 private key")
    try:
        key: PrivateKeyTypes = serialization.load_der_private_key(der, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as e:
        raise _bad("the decrypted key is not a PKCS#8 private key") from e
    if isinstance(key, (ec.EllipticCurvePrivateKey, rsa.RSAPrivateKey, ed25519.Ed25519PrivateKey)):
        return key
    raise _bad("unsupported key type (use ECDSA, RSA or Ed25519)")


_CURVE_HASH: dict[str, type[hashes.HashAlgorithm]] = {
    "secp256r1": hashes.SHA256,
    "secp384r1": hashes.SHA384,
    "secp521r1": hashes.SHA512,
}


def sign(private_key: SigningKey, payload: bytes) -> bytes:
    """Sign as cosign does: ECDSA (DER, SHA-256 for P-256), RSA PKCS#1 v1.5 SHA-256, Ed25519."""
    if isinstance(private_key, ec.EllipticCurvePrivateKey):
        algorithm = _CURVE_HASH.get(private_key.curve.name)
        if algorithm is None:
            raise _bad(f"unsupported curve {private_key.curve.name}")
        return private_key.sign(payload, ec.ECDSA(algorithm()))
    if isinstance(private_key, rsa.RSAPrivateKey):
        return private_key.sign(payload, padding.PKCS1v15(), hashes.SHA256())
    return private_key.sign(payload)
