"""containers/image's policy.json tests (policy_vectors.json) against ``policy import``.

Each vector is a whole policy.json and whether podman (containers/image) accepts it. The
Go tests' dummy keys become distinct EC keys generated here (``@KEYn_B64@``: base64 of a
PEM, ``@KEYn_PATH@``: a PEM file); ``@FULCIO_PATH@``/``@FULCIO_B64@`` are the public-good
Fulcio root copied from containers/image. Each vector runs
:func:`import_containers_policy` into an empty configuration:

* podman refuses it → the import refuses it with one :class:`UnimportablePolicy` line
  (a configuration error, exit 78) and writes nothing. Never another exception.
* podman accepts it → the import succeeds; the configuration loads, and its keys and
  Rekor keys are exactly those the document names. Except:
  - a requirement safe-docker does not verify (``signedBy`` GPG, ``signedBaseLayer``,
    ``pki``): refused with a line naming it (DESIGN: unknown formats are refused);
  - XFAIL below: podman features the policy model cannot express (none left: the
    signed identities exactReference, exactRepository and remapIdentity import as
    ``signed_identity``).
"""

from __future__ import annotations

import base64
import json
import re
from typing import TYPE_CHECKING, Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from safedocker.errors import ConfigError
from safedocker.policy.config import load_config
from safedocker.policy.containers import UnimportablePolicy, import_containers_policy
from safedocker.policy.model import Remap, SignedIdentity
from safedocker.policy.paths import Paths
from safedocker.trust.keys import fingerprint_of
from tests.unit.conformance.vectors import CONFORMANCE, load

if TYPE_CHECKING:
    from pathlib import Path

VECTORS = load("policy_vectors.json")
FIXTURES = CONFORMANCE / "containers_image_fixtures"

# Requirements safe-docker refuses by design, and the word its refusal must contain.
UNSUPPORTED = {"signedBy": "signedBy", "signedBaseLayer": "signedBaseLayer", "pki": "pki"}

# podman accepts these; the policy model cannot express them (none today).
XFAIL: dict[str, str] = {}


def _pem() -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[str, bytes]]:
    """Placeholder -> (replacement text, PEM bytes)."""
    folder = tmp_path_factory.mktemp("policy-keys")
    table: dict[str, tuple[str, bytes]] = {}
    for n in range(1, 13):
        pem = _pem()
        path = folder / f"key{n}.pub"
        path.write_bytes(pem)
        table[f"@KEY{n}_B64@"] = (base64.b64encode(pem).decode(), pem)
        table[f"@KEY{n}_PATH@"] = (str(path), pem)
    fulcio = FIXTURES / "fulcio_v1.crt.pem"
    assert fulcio.is_file(), f"missing fixture {fulcio}"
    table["@FULCIO_PATH@"] = (str(fulcio), b"")
    table["@FULCIO_B64@"] = (base64.b64encode(fulcio.read_bytes()).decode(), b"")
    return table


def _params() -> list[Any]:
    params = []
    for i, vector in enumerate(VECTORS["vectors"]):
        marks = []
        if vector["source"] in XFAIL:
            marks.append(pytest.mark.xfail(strict=True, reason=XFAIL[vector["source"]]))
        params.append(pytest.param(vector, id=f"{i}:{vector['source'].split(' ', 1)[-1]}",
                                   marks=marks))
    return params


def _where(tmp_path: Path) -> Paths:
    return Paths(config_dir=tmp_path / "config", cache_dir=tmp_path / "cache",
                 state_dir=tmp_path / "state", system_config_dir=tmp_path / "system")


def _unsupported(document: object) -> str | None:
    """The first requirement type or field safe-docker refuses by design, if any."""
    if isinstance(document, dict):
        for key, value in document.items():
            if key == "type" and value in UNSUPPORTED:
                return str(value)
            if key in UNSUPPORTED and key != "type" and not isinstance(value, str):
                return str(key)
            found = _unsupported(value)
            if found:
                return found
    if isinstance(document, list):
        for item in document:
            found = _unsupported(item)
            if found:
                return found
    return None


def _named_pems(document: object, keys: dict[str, tuple[str, bytes]],
                fields: tuple[str, ...]) -> set[str]:
    """Fingerprints of the keys the document names in ``fields`` (anywhere in it)."""
    found: set[str] = set()
    if isinstance(document, dict):
        for key, value in document.items():
            if key in fields:
                values = value if isinstance(value, list) else [value]
                by_text = dict(keys.values())
                found |= {fingerprint_of(by_text[v]) for v in values}
            else:
                found |= _named_pems(value, keys, fields)
    elif isinstance(document, list):
        for item in document:
            found |= _named_pems(item, keys, fields)
    return found


@pytest.mark.parametrize("vector", _params())
def test_containers_policy_vector(vector: dict[str, Any], keys: dict[str, tuple[str, bytes]],
                                  tmp_path: Path) -> None:
    text = vector["text"]
    for placeholder in set(re.findall(r"@[A-Z0-9_]+@", text)):
        text = text.replace(placeholder, keys[placeholder][0])
    source = tmp_path / "policy.json"
    source.write_text(text)
    where = _where(tmp_path)

    if vector["podman"] == "invalid":
        with pytest.raises(UnimportablePolicy) as refused:
            import_containers_policy(where, source)
        assert isinstance(refused.value, ConfigError) and refused.value.exit_code == 78
        assert "\n" not in refused.value.line()
        assert not where.user_config_file.exists()
        assert not where.user_keys_dir.exists() or not any(where.user_keys_dir.iterdir())
        return

    assert vector["podman"] == "valid"
    document = json.loads(text)
    unsupported = _unsupported(document)
    if unsupported and vector["source"] not in XFAIL:
        with pytest.raises(UnimportablePolicy) as refused:
            import_containers_policy(where, source)
        assert UNSUPPORTED[unsupported] in refused.value.line()
        assert not where.user_config_file.exists()
        return

    summary = import_containers_policy(where, source)
    assert summary.startswith("imported ")
    config = load_config(where)
    fingerprints = {config.keys[name].fingerprint for rule in config.policy.rules
                    for name in rule.keys}
    assert fingerprints == _named_pems(document, keys, ("keyData", "keyPath", "keyDatas",
                                                        "keyPaths"))
    rekor = {config.keys[name].fingerprint for name in config.rekor_keys}
    assert rekor == _named_pems(document, keys, ("rekorPublicKeyData", "rekorPublicKeyPath",
                                                 "rekorPublicKeyDatas", "rekorPublicKeyPaths"))


def test_the_fixture_policy_is_the_one_the_vectors_embed() -> None:
    """TestNewPolicyFromFile's vector is containers/image's fixtures/policy.json itself."""
    [vector] = [v for v in VECTORS["vectors"] if "TestNewPolicyFromFile" in v["source"]]
    assert json.loads(vector["text"]) == json.loads((FIXTURES / "policy.json").read_text())


def test_every_unmapped_go_test_is_explained() -> None:
    assert len(VECTORS["not_mapped"]) == 7


# --- the cases issue 15 names, and exactReference/exactRepository where they import --------


def _import(tmp_path: Path, document: object) -> Paths:
    source = tmp_path / "policy.json"
    source.write_text(document if isinstance(document, str) else json.dumps(document))
    where = _where(tmp_path)
    import_containers_policy(where, source)
    return where


def test_duplicate_type_is_refused_not_read_as_its_last_value(tmp_path: Path) -> None:
    text = ('{"default":[{"type":"reject"}],"transports":{"docker":{"example.com/app":'
            '[{"type":"reject","type":"insecureAcceptAnything"}]}}}')
    with pytest.raises(UnimportablePolicy, match="duplicate key 'type'"):
        _import(tmp_path, text)
    assert not _where(tmp_path).user_config_file.exists()


@pytest.mark.parametrize(("requirement", "why"), [
    ({"keyPath": 1}, "keyPath: must be a file name"),
    ({"keyPaths": [2]}, "keyPaths: must be a file name"),
    ({"keyData": "QUJD", "keyPath": "/k"}, "exactly one of"),
    ({"keyDatas": ["QUJD"], "keyData": "QUJD"}, "exactly one of"),
    ({"keyData": "QUJD", "rekorPublicKeyData": "QUJD", "rekorPublicKeyDatas": ["QUJD"]},
     "at most one Rekor key"),
    ({"keyData": "QUJD", "signedIdentity": None}, "not null"),
    ({"fulcio": {"caPath": "/ca", "caData": "", "oidcIssuer": "https://i",
                 "subjectEmail": "a@b"}, "rekorPublicKeyData": "@REKOR@"}, "caPath and caData"),
])
def test_conflicting_fields_and_wrong_types_are_refused_in_one_line(
        tmp_path: Path, requirement: dict[str, object], why: str) -> None:
    rekor = base64.b64encode(_pem()).decode()
    requirement = {k: rekor if v == "@REKOR@" else v for k, v in requirement.items()}
    document = {"default": [{"type": "reject"}], "transports": {"docker": {
        "example.com/app": [{"type": "sigstoreSigned", **requirement}]}}}
    with pytest.raises(UnimportablePolicy) as refused:
        _import(tmp_path, document)
    assert why in refused.value.line()


@pytest.mark.parametrize(("scope", "identity", "reference"), [
    ("example.com/app:1.0", {"type": "exactReference", "dockerReference": "example.com/app:1.0"},
     "exact"),
    (f"example.com/app@sha256:{'a' * 64}",
     {"type": "exactReference", "dockerReference": f"example.com/app@sha256:{'a' * 64}"},
     "exact"),
    ("docker.io/library/busybox:1", {"type": "exactRepository", "dockerRepository": "busybox"},
     "repository"),
])
def test_a_fixed_signed_identity_imports_where_it_is_the_scopes_image(
        tmp_path: Path, scope: str, identity: dict[str, str], reference: str) -> None:
    pem = _pem()
    where = _import(tmp_path, {"default": [{"type": "reject"}], "transports": {"docker": {
        scope: [{"type": "sigstoreSigned", "keyData": base64.b64encode(pem).decode(),
                 "signedIdentity": identity}]}}})
    [rule] = load_config(where).policy.rules
    assert rule.scope == scope and rule.reference.value == reference


@pytest.mark.parametrize(("scope", "identity", "signed_identity", "reference"), [
    ("example.com/app", {"type": "exactRepository", "dockerRepository": "example.com/app"},
     SignedIdentity(exact_repository="example.com/app"), None),
    ("example.com/app:1.0", {"type": "exactReference", "dockerReference": "example.com/app:2"},
     SignedIdentity(exact_reference="example.com/app:2"), None),
    ("example.com/app:1.0", {"type": "exactRepository", "dockerRepository": "example.com/b"},
     SignedIdentity(exact_repository="example.com/b"), None),
    ("example.com/app:1.0", {"type": "remapIdentity", "prefix": "example.com",
                             "signedPrefix": "docker.io"},
     SignedIdentity(remaps=(Remap("example.com", "docker.io"),)), "exact"),
])
def test_a_fixed_or_remapped_identity_for_other_images_imports_as_signed_identity(
        tmp_path: Path, scope: str, identity: dict[str, str], signed_identity: SignedIdentity,
        reference: str | None) -> None:
    document = {"default": [{"type": "reject"}], "transports": {"docker": {
        scope: [{"type": "sigstoreSigned", "keyData": base64.b64encode(_pem()).decode(),
                 "signedIdentity": identity}]}}}
    [rule] = load_config(_import(tmp_path, document)).policy.rules
    assert rule.signed_identity == signed_identity
    if reference is not None:
        assert rule.reference.value == reference


@pytest.mark.parametrize("identity", [
    {"type": "exactReference", "dockerReference": "example.com/app"},  # no tag, no digest
    {"type": "remapIdentity", "prefix": "example", "signedPrefix": "docker.io"},  # no host
    {"type": "remapIdentity", "prefix": "example.com/app:1", "signedPrefix": "docker.io"},
])
def test_an_invalid_fixed_or_remapped_identity_is_refused(
        tmp_path: Path, identity: dict[str, str]) -> None:
    document = {"default": [{"type": "reject"}], "transports": {"docker": {
        "example.com/app": [{"type": "sigstoreSigned",
                             "keyData": base64.b64encode(_pem()).decode(),
                             "signedIdentity": identity}]}}}
    with pytest.raises(UnimportablePolicy) as refused:
        _import(tmp_path, document)
    assert refused.value.exit_code == 78 and not _where(tmp_path).user_config_file.exists()


def test_a_broken_requirement_next_to_reject_is_refused_as_podman_refuses_the_file(
        tmp_path: Path) -> None:
    document = {"default": [{"type": "reject"}], "transports": {"docker": {
        "example.com/app": [{"type": "reject"},
                            {"type": "sigstoreSigned", "keyData": "not base64!"}]}}}
    with pytest.raises(UnimportablePolicy, match="base64"):
        _import(tmp_path, document)


def test_an_unrepresentable_identity_next_to_reject_still_imports_the_reject(
        tmp_path: Path) -> None:
    where = _import(tmp_path, {"default": [{"type": "reject"}], "transports": {"docker": {
        "example.com/app": [{"type": "reject"}, {
            "type": "sigstoreSigned", "keyPath": "/nonexistent/key.pub",
            "signedIdentity": {"type": "remapIdentity", "prefix": "example.com",
                               "signedPrefix": "docker.io"}}]}}})
    [rule] = load_config(where).policy.rules
    assert rule.action.value == "reject"
