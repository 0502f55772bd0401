"""The verifier's decisions that need no registry: reject, unmatched warn and reject, and
which digest the accepted signatures cover (what docker is handed)."""

from __future__ import annotations

import base64
import json
import time
from dataclasses import replace
from typing import TYPE_CHECKING

import pytest

from safedocker.cache.store import Cache
from safedocker.errors import RegistryTimedOut, RegistryUnavailable
from safedocker.oci.media import OCI_MANIFEST
from safedocker.policy.config import Config, KeyEntry
from safedocker.policy.model import Action, Decision, Policy, Rule, Unmatched
from safedocker.reference import Digest, parse_reference
from safedocker.signatures.cosign import SIGNATURE_ANNOTATION, SIMPLE_SIGNING_MEDIA_TYPE
from safedocker.signatures.cosignkey import generate_key_pair, load_private_key, sign
from safedocker.signatures.simplesigning import make_payload
from safedocker.trust.keys import load_public_key
from safedocker.verify.material import MATERIAL_KIND_COSIGN, SignatureMaterial
from safedocker.verify.verifier import Located, Verifier

if TYPE_CHECKING:
    from pathlib import Path

    from safedocker.verify.verdict import Verdict

IMAGE = parse_reference("127.0.0.1:5000/team/app:v1")


def test_policy_decisions_without_registry() -> None:
    deny = Rule(scope="127.0.0.1:5000/team/*", action=Action.REJECT)
    verifier = Verifier(Config(policy=Policy(user_rules=(deny,))))
    verdict = verifier.verify(IMAGE)
    assert not verdict.accepted and "denied by policy" in verdict.reasons[0]
    assert verdict.refusal().exit_code == 77
    unmatched = Verifier(Config(policy=Policy(unmatched=Unmatched.WARN))).verify(IMAGE)
    assert unmatched.accepted and unmatched.warned
    refused = Verifier(Config()).verify(IMAGE)
    assert not refused.accepted and "policy add" in refused.refusal().line()
    assert isinstance(Verifier(Config()).config.policy.decide(IMAGE), Decision)


# --- what the accepted signatures cover -------------------------------------------------------

INDEX = Digest.of(b"an index")
CHILD = Digest.of(b"its linux/amd64 child")


class _Key:
    """A cosign key pair whose signatures come as `.sig` material."""

    def __init__(self, tmp_path: Path, name: str) -> None:
        private_pem, public_pem = generate_key_pair(b"pw")
        self.private = load_private_key(private_pem, b"pw")
        path = tmp_path / f"{name}.pub"
        path.write_bytes(public_pem)
        self.entry = KeyEntry(name, load_public_key(public_pem, name).fingerprint, path)

    def signs(self, digest: Digest) -> SignatureMaterial:
        payload = make_payload(IMAGE.name, digest, None)
        signature = base64.b64encode(sign(self.private, payload)).decode()
        layer = {"mediaType": SIMPLE_SIGNING_MEDIA_TYPE, "size": len(payload),
                 "digest": str(Digest.of(payload)),
                 "annotations": {SIGNATURE_ANNOTATION: signature}}
        manifest = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                               "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                          "size": 2, "digest": str(Digest.of(b"{}"))},
                               "layers": [layer]}).encode()
        return SignatureMaterial(digest, manifest, {str(Digest.of(payload)): payload})


def _judge(tmp_path: Path, index: bool, child: bool, threshold: int = 1) -> Verdict:
    alice, bob = _Key(tmp_path, "alice"), _Key(tmp_path, "bob")
    keys = ("alice", "bob") if threshold == 2 else ("alice",)
    rule = Rule(scope="127.0.0.1:5000/team/*", action=Action.VERIFY, keys=keys,
                threshold=threshold)
    config = Config(keys={"alice": alice.entry, "bob": bob.entry},
                    policy=Policy(user_rules=(rule,)))
    candidates = [
        (INDEX, alice.signs(INDEX) if index else SignatureMaterial(INDEX, None)),
        (CHILD, (bob if threshold == 2 else alice).signs(CHILD) if child
         else SignatureMaterial(CHILD, None)),
    ]
    located = Located(INDEX, CHILD, Digest.of(b"config"))
    return Verifier(config).judge(IMAGE, config.policy.decide(IMAGE), located, candidates)


def test_an_index_signature_covers_the_index(tmp_path: Path) -> None:
    verdict = _judge(tmp_path, index=True, child=True)
    assert verdict.accepted and verdict.covered == INDEX
    assert verdict.pinned == f"{IMAGE.name}@{INDEX}"


def test_a_child_signature_covers_only_the_child(tmp_path: Path) -> None:
    verdict = _judge(tmp_path, index=False, child=True)
    assert verdict.accepted and verdict.covered == CHILD and verdict.digest == INDEX
    assert verdict.pinned == f"{IMAGE.name}@{CHILD}"


def test_acceptance_that_needs_both_signatures_covers_the_child(tmp_path: Path) -> None:
    verdict = _judge(tmp_path, index=True, child=True, threshold=2)
    assert verdict.accepted and verdict.covered == CHILD


def test_a_refusal_covers_nothing_and_pins_what_was_resolved(tmp_path: Path) -> None:
    verdict = _judge(tmp_path, index=False, child=False)
    assert not verdict.accepted and verdict.covered is None
    assert verdict.pinned == f"{IMAGE.name}@{INDEX}"  # what warn mode hands docker


# --- offline: the cache's dates are the user's file, never proof of freshness (A2-3) --------

MANIFEST = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                       "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                  "size": 2, "digest": str(Digest.of(b"{}"))},
                       "layers": []}).encode()


def _offline(tmp_path: Path, fetched_at: float, max_age: float) -> Verdict:
    return _offline_verifier(tmp_path, fetched_at, max_age, offline=True).verify(IMAGE)


def _offline_verifier(tmp_path: Path, fetched_at: float, max_age: float, *,
                      offline: bool) -> Verifier:
    alice = _Key(tmp_path, "alice")
    rule = Rule(scope="127.0.0.1:5000/team/*", action=Action.VERIFY, keys=("alice",))
    config = Config(keys={"alice": alice.entry}, policy=Policy(user_rules=(rule,)),
                    offline_max_age=max_age)
    cache = Cache.open(tmp_path / "cache")
    digest = Digest.of(MANIFEST)
    cache.put_manifest(digest, OCI_MANIFEST, MANIFEST)
    cache.record_tag(IMAGE.name, "v1", digest)
    material = replace(alice.signs(digest), fetched_at=fetched_at)
    cache.put_material(IMAGE.name, digest, MATERIAL_KIND_COSIGN, material.to_bytes())
    return Verifier(config, offline=offline, cache=cache)


def test_offline_decides_from_material_younger_than_offline_max_age(tmp_path: Path) -> None:
    verdict = _offline(tmp_path, time.time() - 60, max_age=3600)
    assert verdict.accepted and verdict.offline


def test_offline_refuses_material_older_than_offline_max_age(tmp_path: Path) -> None:
    with pytest.raises(RegistryUnavailable, match="offline_max_age"):
        _offline(tmp_path, time.time() - 7200, max_age=3600)


@pytest.mark.parametrize("max_age", [0.0, 3600.0])
def test_offline_refuses_material_dated_in_the_future(tmp_path: Path, max_age: float) -> None:
    # A2-3: a future `fetched_at` gave a negative age, never "older than" even "0s".
    with pytest.raises(RegistryUnavailable) as refused:
        _offline(tmp_path, time.time() + 10 * 365 * 86400, max_age=max_age)
    assert refused.value.exit_code == 69
    assert "in the future" in refused.value.line()


# --- a set's deadline: each image cut short decides as one image alone does (gate/decide) ---

TIMED_OUT = RegistryTimedOut("127.0.0.1:5000 timed out", why="no complete answer within 10s",
                             hint="raise registry_timeout")


def test_an_image_cut_short_is_decided_from_material_younger_than_offline_max_age(
        tmp_path: Path) -> None:
    verifier = _offline_verifier(tmp_path, time.time() - 60, 3600, offline=False)
    verdict = verifier.verify_cached(IMAGE, None, TIMED_OUT)
    assert verdict.accepted and verdict.offline
    assert verdict.offline_cause == ("registry unreachable: 127.0.0.1:5000 timed out, "
                                     "no complete answer within 10s")


def test_an_image_cut_short_with_material_too_old_is_refused_naming_the_timeout(
        tmp_path: Path) -> None:
    verifier = _offline_verifier(tmp_path, time.time() - 7200, 3600, offline=False)
    with pytest.raises(RegistryUnavailable) as refused:
        verifier.verify_cached(IMAGE, None, TIMED_OUT)
    assert refused.value.exit_code == 69
    line = refused.value.line()
    assert "no complete answer within 10s" in line and "offline_max_age" in line
    assert "registry_timeout" in line  # the timeout's own hint


def test_an_image_cut_short_that_policy_rejects_is_still_rejected(tmp_path: Path) -> None:
    deny = Rule(scope="127.0.0.1:5000/team/*", action=Action.REJECT)
    verdict = Verifier(Config(policy=Policy(user_rules=(deny,)))).verify_cached(
        IMAGE, None, TIMED_OUT)
    assert not verdict.accepted and "denied by policy" in verdict.reasons[0]
