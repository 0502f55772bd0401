"""cosign key files: what we write, cosign reads; what cosign wrote, we read."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from safedocker.errors import ConfigError
from safedocker.signatures.cosignkey import (
    COSIGN_PEM_TYPE,
    SIGSTORE_PEM_TYPE,
    encrypt_private_key,
    generate_key_pair,
    load_private_key,
    public_key_pem,
    sign,
)
from safedocker.trust.keys import load_public_key
from tests.unit.signatures.cosign_real import DATA


def envelope(pem: bytes) -> dict[str, Any]:
    lines = pem.decode().strip().splitlines()
    document: dict[str, Any] = json.loads(base64.b64decode("".join(lines[1:-1])))
    return document


def repem(document: dict[str, object], pem_type: str = SIGSTORE_PEM_TYPE) -> bytes:
    body = base64.b64encode(json.dumps(document, separators=(",", ":")).encode()).decode()
    return f"-----BEGIN {pem_type}-----\n{body}\n-----END {pem_type}-----\n".encode()


def repem_text(body: str) -> bytes:
    return (
        f"-----BEGIN {SIGSTORE_PEM_TYPE}-----\n{body}\n-----END {SIGSTORE_PEM_TYPE}-----\n".encode()
    )


def test_generated_pair_has_cosigns_format() -> None:
    private_pem, public_pem = generate_key_pair(b"s3cret")
    lines = private_pem.decode().splitlines()
    assert lines[0] == f"-----BEGIN {SIGSTORE_PEM_TYPE}-----"
    assert lines[-1] == f"-----END {SIGSTORE_PEM_TYPE}-----"
    assert all(len(line) == 64 for line in lines[1:-2]) and len(lines[-2]) <= 64
    document = envelope(private_pem)
    assert list(document) == ["kdf", "cipher", "ciphertext"]
    assert document["kdf"] == {
        "name": "scrypt",
        "params": {"N": 65536, "r": 8, "p": 1},
        "salt": document["kdf"]["salt"],
    }
    assert len(base64.b64decode(document["kdf"]["salt"])) == 32
    assert len(base64.b64decode(document["cipher"]["nonce"])) == 24
    assert document["cipher"]["name"] == "nacl/secretbox"
    assert public_pem.startswith(b"-----BEGIN PUBLIC KEY-----\n")
    assert load_public_key(public_pem, "p").algorithm == "ecdsa-p256"


def test_round_trip_signs_what_the_public_key_verifies() -> None:
    private_pem, public_pem = generate_key_pair(b"s3cret")
    private = load_private_key(private_pem, b"s3cret")
    signature = sign(private, b"payload")
    key = load_public_key(public_pem, "k")
    assert key.verify(signature, b"payload")
    assert not key.verify(signature, b"other")


def test_an_empty_password_encrypts_and_decrypts_the_key_as_in_cosign() -> None:
    private_pem, public_pem = generate_key_pair(b"")
    private = load_private_key(private_pem, b"")
    assert public_key_pem(private) == public_pem
    payload = b"signed with the key of an empty password"
    assert load_public_key(public_pem, "empty").verify(sign(private, payload), payload)
    with pytest.raises(ConfigError, match="cannot decrypt"):
        load_private_key(private_pem, b"not empty")


def test_wrong_password_is_a_clear_config_error() -> None:
    private_pem, _ = generate_key_pair(b"right")
    with pytest.raises(ConfigError, match="cannot decrypt") as excinfo:
        load_private_key(private_pem, b"wrong")
    assert "password" in excinfo.value.why and "COSIGN_PASSWORD" in excinfo.value.hint


@pytest.mark.parametrize("name", ["sigstore.key", "cosign-legacy-rsa.key"])
def test_keys_written_by_real_cosign_are_read(name: str) -> None:
    private = load_private_key((DATA / name).read_bytes(), b"hello")
    assert isinstance(private, ec.EllipticCurvePrivateKey)
    key = load_public_key(public_key_pem(private), "k")
    assert key.verify(sign(private, b"x"), b"x")
    with pytest.raises(ConfigError, match="cannot decrypt"):
        load_private_key((DATA / name).read_bytes(), b"hell0")


def test_legacy_cosign_pem_type_is_read() -> None:
    assert (
        (DATA / "cosign-legacy-rsa.key")
        .read_bytes()
        .startswith(f"-----BEGIN {COSIGN_PEM_TYPE}-----".encode())
    )


def test_a_non_pkcs8_body_is_refused_as_cosign_refuses_it() -> None:
    with pytest.raises(ConfigError, match="not a PKCS#8"):
        load_private_key((DATA / "cosign-legacy-sec1.key").read_bytes(), b"hello")


@pytest.mark.parametrize(
    "private",
    [
        rsa.generate_private_key(public_exponent=65537, key_size=2048),
        ed25519.Ed25519PrivateKey.generate(),
        ec.generate_private_key(ec.SECP384R1()),
    ],
    ids=["rsa", "ed25519", "p384"],
)
def test_imported_key_types_round_trip(private: object) -> None:
    pem = encrypt_private_key(private, b"pw")  # type: ignore[arg-type]
    loaded = load_private_key(pem, b"pw")
    key = load_public_key(public_key_pem(loaded), "k")
    assert key.verify(sign(loaded, b"data"), b"data")


@pytest.mark.parametrize(
    ("mutate", "why"),
    [
        (lambda d: d["kdf"]["params"].update(N=2**20), "unsupported scrypt parameters"),
        (lambda d: d["kdf"]["params"].update(r=1), "unsupported scrypt parameters"),
        (lambda d: d["kdf"].update(name="argon2"), "scrypt"),
        (lambda d: d["cipher"].update(name="aes"), "secretbox"),
        (lambda d: d["cipher"].update(nonce=base64.b64encode(b"short").decode()), "nonce"),
        (lambda d: d.update(ciphertext="%%%"), "not base64"),
        (lambda d: d.pop("ciphertext"), "lacks ciphertext"),
    ],
)
def test_tampered_envelopes_are_refused(mutate: object, why: str) -> None:
    private_pem, _ = generate_key_pair(b"pw")
    document = envelope(private_pem)
    mutate(document)  # type: ignore[operator]
    with pytest.raises(ConfigError, match=why):
        load_private_key(repem(document), b"pw")


def test_flipped_ciphertext_fails_authentication() -> None:
    private_pem, _ = generate_key_pair(b"pw")
    document = envelope(private_pem)
    sealed = bytearray(base64.b64decode(str(document["ciphertext"])))
    sealed[-1] ^= 1
    document["ciphertext"] = base64.b64encode(bytes(sealed)).decode()
    with pytest.raises(ConfigError, match="cannot decrypt"):
        load_private_key(repem(document), b"pw")


@pytest.mark.parametrize(
    "pem",
    [
        b"",
        b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
        b"-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n",
        f"-----BEGIN {SIGSTORE_PEM_TYPE}-----\n!!\n-----END {SIGSTORE_PEM_TYPE}-----\n".encode(),
        # A well-formed header around a body that is not a key envelope.
        repem_text("bm90IGEga2V5"),
    ],
)
def test_garbage_is_a_config_error(pem: bytes) -> None:
    with pytest.raises(ConfigError, match="cosign private key"):
        load_private_key(pem, b"pw")
