"""cosign's and go-securesystemslib's own key tests (cosignkey_vectors.json).

* cosign ``TestReadingPrivatePemTypes``: :func:`load_private_key` with the test's password;
  a key cosign reads must sign what its public key verifies, a key cosign refuses (an EC
  key in SEC1, not PKCS#8, form) is a :class:`ConfigError`.
* go-securesystemslib ``TestDecrypt``, ``TestKDFSettingVectors`` (legacy, standard and
  OWASP scrypt settings) and ``TestUnsupportedKDFParameters``: ``encrypted.Decrypt`` is
  :func:`decrypt`, the envelope opener :func:`load_private_key` uses; ``Unmarshal`` (the
  KDF vectors) is Decrypt followed by JSON decoding of a Go ``[]byte`` (a base64 string).
* cosign ``TestImportPrivateKey``: the vector file lists the key names only (the keys are
  files in cosign's repository), so there is nothing to run; the test below pins the list.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from safedocker.errors import ConfigError
from safedocker.signatures.cosignkey import decrypt, load_private_key, public_key_pem, sign
from safedocker.trust.keys import load_public_key
from tests.unit.conformance.vectors import load

VECTORS = load("cosignkey_vectors.json")
COSIGN = VECTORS["cosign"]
SSL = VECTORS["securesystemslib"]


@pytest.mark.parametrize("case", [pytest.param(c, id=f"TestReadingPrivatePemTypes/{c['name']}")
                                  for c in COSIGN["TestReadingPrivatePemTypes"]])
def test_reading_private_pem_types(case: dict[str, Any]) -> None:
    pem, password = case["pem"].encode(), case["password"].encode()
    if case["expect"] == "error":
        with pytest.raises(ConfigError, match="cosign private key"):
            load_private_key(pem, password)
        return
    assert case["expect"] == "ok"
    private = load_private_key(pem, password)
    key = load_public_key(public_key_pem(private), case["const"])
    assert key.verify(sign(private, b"payload"), b"payload")
    with pytest.raises(ConfigError, match="cannot decrypt"):
        load_private_key(pem, b"not " + password)


def test_decrypt() -> None:
    opened = decrypt(SSL["TestDecrypt"].encode(), SSL["passphrase"].encode())
    assert opened == SSL["plaintext"].encode()


@pytest.mark.parametrize("setting", sorted(SSL["TestKDFSettingVectors"]))
def test_kdf_setting_vectors(setting: str) -> None:
    envelope = SSL["TestKDFSettingVectors"][setting].encode()
    opened = json.loads(decrypt(envelope, SSL["passphrase"].encode()))
    assert base64.b64decode(opened) == SSL["plaintext"].encode()
    with pytest.raises(ConfigError, match="cannot decrypt"):
        decrypt(envelope, b"wrong")


def test_unsupported_kdf_parameters() -> None:
    case = SSL["TestUnsupportedKDFParameters"]
    with pytest.raises(ConfigError, match=case["error"]):
        decrypt(case["envelope"].encode(), SSL["passphrase"].encode())


def test_import_private_key_names_are_names_only() -> None:
    names = COSIGN["TestImportPrivateKey_not_mapped"]
    assert len(names) == 14 and all(isinstance(name, str) for name in names)
