"""``keys remove`` (issue 12): rules keep naming the key and refuse, naming it, until the key
is added again, which restores them. Real config files and keys."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from safedocker.errors import Refused, UsageError
from safedocker.policy.config import load_config, load_user_document, set_rule
from safedocker.policy.paths import Paths
from safedocker.trust.keystore import add_key, describe_keys, remove_key
from safedocker.verify.rules import evaluate_rule
from tests.sigstore_world import public_pem
from tests.unit.policy.test_lock import IMAGE, SCOPE, material_signed_by

if TYPE_CHECKING:
    from pathlib import Path


@pytest.fixture
def where(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Paths:
    monkeypatch.delenv("SAFE_DOCKER_MODE", raising=False)
    return Paths(config_dir=tmp_path / "user", cache_dir=tmp_path / "cache",
                 state_dir=tmp_path / "state", system_config_dir=tmp_path / "system")


def key_file(tmp_path: Path, name: str) -> tuple[ec.EllipticCurvePrivateKey, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    path = tmp_path / f"{name}.pem"
    path.write_bytes(public_pem(key))
    return key, str(path)


def test_removing_a_key_keeps_the_rule_which_refuses_naming_it_until_it_is_added_again(
        where: Paths, tmp_path: Path) -> None:
    key, pem = key_file(tmp_path, "corp")
    add_key(where, "corp", pem)
    set_rule(where, SCOPE, {"action": "verify", "keys": ["corp"]})
    signed = material_signed_by(key)
    config = load_config(where)
    assert evaluate_rule(config.policy.rules[0], IMAGE, [signed], config).satisfied

    assert remove_key(where, "corp") == [SCOPE]
    config = load_config(where)  # still a valid config: the name is known as removed
    (rule,) = config.policy.rules
    assert rule.keys == ("corp",)
    with pytest.raises(Refused) as caught:
        evaluate_rule(rule, IMAGE, [signed], config)
    assert caught.value.exit_code == 77
    assert "key 'corp', which was removed" in caught.value.line()
    assert "keys add corp FILE" in caught.value.line()
    assert {"name": "corp", "fingerprint": "-", "origin": "removed", "source": "",
            "path": ""} in describe_keys(config)
    assert not (where.user_keys_dir / "corp.pub").exists()

    add_key(where, "corp", pem)
    config = load_config(where)
    assert evaluate_rule(config.policy.rules[0], IMAGE, [signed], config).satisfied


def test_removing_one_of_two_keys_refuses_even_what_the_other_signed(
        where: Paths, tmp_path: Path) -> None:
    """Fail closed: the rule is not quietly re-read as if the key had never been listed."""
    alice, alice_pem = key_file(tmp_path, "alice")
    add_key(where, "alice", alice_pem)
    add_key(where, "bob", key_file(tmp_path, "bob")[1])
    set_rule(where, SCOPE, {"action": "verify", "keys": ["alice", "bob"]})
    remove_key(where, "bob")
    config = load_config(where)
    with pytest.raises(Refused, match="'bob'"):
        evaluate_rule(config.policy.rules[0], IMAGE, [material_signed_by(alice)], config)


def test_a_removed_key_leaves_the_rekor_keys_and_cannot_be_removed_twice(
        where: Paths, tmp_path: Path) -> None:
    add_key(where, "rekor", key_file(tmp_path, "rekor")[1])
    document = load_user_document(where)
    document["rekor_keys"] = ["rekor"]
    from safedocker.policy.config import save_user_document

    save_user_document(where, document)
    assert remove_key(where, "rekor") == []
    assert load_config(where).rekor_keys == ()
    with pytest.raises(UsageError, match="no user key named 'rekor'"):
        remove_key(where, "rekor")


def test_a_typo_in_a_key_name_is_still_refused_naming_the_option(where: Paths) -> None:
    from safedocker.errors import UsageError

    with pytest.raises(UsageError, match="invalid --key 'crop'"):
        set_rule(where, SCOPE, {"action": "verify", "keys": ["crop"]})
