"""Public keys: every supported type verifies what it should and nothing else."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed25519, padding, rsa

from safedocker.errors import ConfigError
from safedocker.trust.keys import fingerprint_of, load_public_key

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

DATA = b"payload bytes"


def pem_of(private_key: PrivateKeyTypes) -> bytes:
    return private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


@pytest.mark.parametrize(
    ("curve", "algorithm"),
    [
        (ec.SECP256R1(), hashes.SHA256()),
        (ec.SECP384R1(), hashes.SHA384()),
        (ec.SECP521R1(), hashes.SHA512()),
    ],
)
def test_ecdsa_verifies_with_the_curve_hash(
    curve: ec.EllipticCurve, algorithm: hashes.HashAlgorithm
) -> None:
    private = ec.generate_private_key(curve)
    key = load_public_key(pem_of(private), "k")
    signature = private.sign(DATA, ec.ECDSA(algorithm))
    assert key.verify(signature, DATA)
    assert not key.verify(signature, DATA + b"!")


def test_ecdsa_p384_also_accepts_sha256_as_older_cosign_signed() -> None:
    private = ec.generate_private_key(ec.SECP384R1())
    key = load_public_key(pem_of(private), "k")
    assert key.verify(private.sign(DATA, ec.ECDSA(hashes.SHA256())), DATA)
    assert not key.verify(private.sign(DATA, ec.ECDSA(hashes.SHA1())), DATA)  # noqa: S303


def test_rsa_pkcs1v15_and_pss() -> None:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    key = load_public_key(pem_of(private), "r")
    pkcs1 = private.sign(DATA, padding.PKCS1v15(), hashes.SHA256())
    pss = private.sign(
        DATA, padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32), hashes.SHA256()
    )
    assert key.verify(pkcs1, DATA)
    assert key.verify(pss, DATA)
    assert not key.verify(pkcs1, b"other")
    assert not key.verify(private.sign(DATA, padding.PKCS1v15(), hashes.SHA1()), DATA)  # noqa: S303
    assert key.algorithm == "rsa-2048"


@pytest.mark.parametrize("algorithm", [hashes.SHA384(), hashes.SHA512()],
                         ids=["sha384", "sha512"])
def test_rsa_signed_with_sha384_or_sha512_verifies_as_cosign_allows(
        algorithm: hashes.HashAlgorithm) -> None:
    """cert-manager signs with RSA-4096 and `--signature-digest-algorithm sha512`."""
    private = rsa.generate_private_key(public_exponent=65537, key_size=4096)
    key = load_public_key(pem_of(private), "cert-manager")
    pkcs1 = private.sign(DATA, padding.PKCS1v15(), algorithm)
    pss = private.sign(DATA, padding.PSS(mgf=padding.MGF1(algorithm), salt_length=32),
                       algorithm)
    assert key.verify(pkcs1, DATA) and key.verify(pss, DATA)
    assert not key.verify(pkcs1, DATA + b"!")
    assert not key.verify(private.sign(DATA, padding.PKCS1v15(), hashes.SHA224()), DATA)


def test_ecdsa_p256_signed_with_sha512_verifies_as_cosign_allows() -> None:
    private = ec.generate_private_key(ec.SECP256R1())
    key = load_public_key(pem_of(private), "k")
    assert key.verify(private.sign(DATA, ec.ECDSA(hashes.SHA512())), DATA)
    assert not key.verify(private.sign(DATA, ec.ECDSA(hashes.SHA224())), DATA)


def test_ed25519_pure() -> None:
    private = ed25519.Ed25519PrivateKey.generate()
    key = load_public_key(pem_of(private), "e")
    assert key.verify(private.sign(DATA), DATA)
    assert not key.verify(private.sign(DATA), b"other")
    assert key.algorithm == "ed25519"


@pytest.mark.parametrize("garbage", [b"", b"\x00\x01", b"not base64 at all", b"A" * 200])
def test_bad_signatures_return_false_never_raise(garbage: bytes) -> None:
    for private in (
        ec.generate_private_key(ec.SECP256R1()),
        rsa.generate_private_key(public_exponent=65537, key_size=2048),
        ed25519.Ed25519PrivateKey.generate(),
    ):
        assert load_public_key(pem_of(private), "k").verify(garbage, DATA) is False


def test_fingerprint_is_sha256_of_der_spki() -> None:
    private = ec.generate_private_key(ec.SECP256R1())
    der = private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    expected = "sha256:" + hashlib.sha256(der).hexdigest()
    assert fingerprint_of(pem_of(private)) == expected
    key = load_public_key(pem_of(private), "k")
    assert key.fingerprint == expected and key.der == der and key.name == "k"


def test_keys_compare_by_value_not_by_object() -> None:
    pem = pem_of(ec.generate_private_key(ec.SECP256R1()))
    assert load_public_key(pem, "a") == load_public_key(pem, "a")


@pytest.mark.parametrize(
    "pem",
    [
        b"",
        b"garbage",
        b"-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----\n",
        b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
        b"x" * 100_000,
    ],
)
def test_garbage_is_a_config_error(pem: bytes) -> None:
    with pytest.raises(ConfigError, match="'bad'"):
        load_public_key(pem, "bad")


def test_private_key_is_refused_with_a_hint() -> None:
    private = ec.generate_private_key(ec.SECP256R1())
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    with pytest.raises(ConfigError, match="private key") as excinfo:
        load_public_key(pem, "k")
    assert ".pub" in excinfo.value.hint


def test_weak_and_unsupported_keys_are_refused() -> None:
    with pytest.raises(ConfigError, match="too weak"):
        weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505
        load_public_key(pem_of(weak), "r")
    with pytest.raises(ConfigError, match="unsupported curve"):
        load_public_key(pem_of(ec.generate_private_key(ec.SECP256K1())), "k1")
    with pytest.raises(ConfigError, match="unsupported type"):
        load_public_key(pem_of(dsa.generate_private_key(key_size=2048)), "d")
