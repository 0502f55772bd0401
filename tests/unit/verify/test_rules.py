from __future__ import annotations

import base64
import json
from typing import TYPE_CHECKING

import pytest

from safedocker.policy.config import Config, KeyEntry
from safedocker.policy.model import Action, ReferenceCheck, Rule, Tlog
from safedocker.reference import Digest, parse_reference
from safedocker.signatures.cosign import SIGNATURE_ANNOTATION, SIMPLE_SIGNING_MEDIA_TYPE
from safedocker.signatures.cosignkey import generate_key_pair, load_private_key, sign
from safedocker.signatures.simplesigning import make_payload
from safedocker.trust.keys import load_public_key
from safedocker.verify.material import SignatureMaterial
from safedocker.verify.rules import evaluate_rule

if TYPE_CHECKING:
    from pathlib import Path

IMAGE = parse_reference("127.0.0.1:5000/team/app:v1")
DIGEST = Digest.of(b"the image manifest")
OTHER = Digest.of(b"another manifest")


class Signer:
    def __init__(self, tmp_path: Path, name: str) -> None:
        private_pem, public_pem = generate_key_pair(b"pw")
        self.private = load_private_key(private_pem, b"pw")
        self.name = name
        self.path = tmp_path / f"{name}.pub"
        self.path.write_bytes(public_pem)
        self.entry = KeyEntry(name, load_public_key(public_pem, name).fingerprint, self.path)

    def layer(self, digest: Digest, reference: str = IMAGE.name,
              annotations: dict[str, object] | None = None) -> tuple[dict[str, object], bytes]:
        payload = make_payload(reference, digest, annotations)
        signature = base64.b64encode(sign(self.private, payload)).decode()
        descriptor = {"mediaType": SIMPLE_SIGNING_MEDIA_TYPE, "size": len(payload),
                      "digest": str(Digest.of(payload)),
                      "annotations": {SIGNATURE_ANNOTATION: signature}}
        return descriptor, payload


def material(digest: Digest, *layers: tuple[dict[str, object], bytes]) -> SignatureMaterial:
    manifest = json.dumps({"schemaVersion": 2,
                           "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                      "size": 2, "digest": str(Digest.of(b"{}"))},
                           "layers": [d for d, _ in layers]}).encode()
    return SignatureMaterial(digest, manifest, {str(Digest.of(p)): p for _, p in layers})


@pytest.fixture
def alice(tmp_path: Path) -> Signer:
    return Signer(tmp_path, "alice")


@pytest.fixture
def bob(tmp_path: Path) -> Signer:
    return Signer(tmp_path, "bob")


def config_for(*signers: Signer) -> Config:
    return Config(keys={s.name: s.entry for s in signers})


def rule(*keys: str, **kw: object) -> Rule:
    return Rule(scope="127.0.0.1:5000/team/*", action=Action.VERIFY, keys=keys, **kw)  # type: ignore[arg-type]


def test_signature_by_trusted_key_over_the_digest_is_accepted(alice: Signer) -> None:
    outcome = evaluate_rule(rule("alice"), IMAGE, [(DIGEST, material(DIGEST, alice.layer(DIGEST)))],
                            config_for(alice))
    assert outcome.satisfied
    assert [s.name for s in outcome.signers] == ["alice"]


def test_untrusted_key_is_refused(alice: Signer, bob: Signer) -> None:
    outcome = evaluate_rule(rule("alice"), IMAGE, [(DIGEST, material(DIGEST, bob.layer(DIGEST)))],
                            config_for(alice, bob))
    assert not outcome.satisfied
    assert "does not verify with any trusted key" in outcome.reasons[0]


def test_payload_naming_another_digest_is_refused(alice: Signer) -> None:
    outcome = evaluate_rule(rule("alice"), IMAGE, [(DIGEST, material(DIGEST, alice.layer(OTHER)))],
                            config_for(alice))
    assert not outcome.satisfied
    assert f"names digest {OTHER}" in outcome.reasons[0]


def test_no_sig_manifest_says_no_signature_found(alice: Signer) -> None:
    outcome = evaluate_rule(rule("alice"), IMAGE, [(DIGEST, SignatureMaterial(DIGEST, None))],
                            config_for(alice))
    assert not outcome.satisfied
    assert outcome.reasons == ("no signature found",)


@pytest.mark.parametrize(("mode", "accepted"), [(ReferenceCheck.REPOSITORY, False),
                                                 (ReferenceCheck.DIGEST, True)])
def test_signed_reference_of_another_repository(alice: Signer, mode: ReferenceCheck,
                                                 accepted: bool) -> None:
    signed = material(DIGEST, alice.layer(DIGEST, reference="127.0.0.1:5000/team/other"))
    outcome = evaluate_rule(rule("alice", reference=mode), IMAGE, [(DIGEST, signed)],
                            config_for(alice))
    assert outcome.satisfied is accepted


def test_threshold_counts_distinct_signers(alice: Signer, bob: Signer) -> None:
    config = config_for(alice, bob)
    twice_alice = material(DIGEST, alice.layer(DIGEST), alice.layer(DIGEST, annotations={"n": "2"}))
    assert not evaluate_rule(rule("alice", "bob", threshold=2), IMAGE, [(DIGEST, twice_alice)],
                             config).satisfied
    both = material(DIGEST, alice.layer(DIGEST), bob.layer(DIGEST))
    assert evaluate_rule(rule("alice", "bob", threshold=2), IMAGE, [(DIGEST, both)],
                         config).satisfied


def test_required_annotations(alice: Signer) -> None:
    config = config_for(alice)
    required = rule("alice", annotations={"team": "ml"})
    assert not evaluate_rule(required, IMAGE, [(DIGEST, material(DIGEST, alice.layer(DIGEST)))],
                             config).satisfied
    tagged = material(DIGEST, alice.layer(DIGEST, annotations={"team": "ml"}))
    assert evaluate_rule(required, IMAGE, [(DIGEST, tagged)], config).satisfied


def test_required_tlog_without_a_set_is_refused(alice: Signer, tmp_path: Path) -> None:
    rekor = Signer(tmp_path, "rekor")
    config = Config(keys={"alice": alice.entry, "rekor": rekor.entry}, rekor_keys=("rekor",))
    outcome = evaluate_rule(rule("alice", tlog=Tlog.REQUIRED), IMAGE,
                            [(DIGEST, material(DIGEST, alice.layer(DIGEST)))], config)
    assert not outcome.satisfied
    assert "no transparency-log entry" in outcome.reasons[0]


def test_a_signature_on_the_platform_child_also_counts(alice: Signer) -> None:
    candidates = [(DIGEST, SignatureMaterial(DIGEST, None)),
                  (OTHER, material(OTHER, alice.layer(OTHER)))]
    outcome = evaluate_rule(rule("alice"), IMAGE, candidates, config_for(alice))
    assert outcome.satisfied
    assert outcome.digests == (OTHER,)  # what the accepted signature covers: the child


def test_material_round_trips_and_altered_blobs_are_ignored(alice: Signer) -> None:
    original = material(DIGEST, alice.layer(DIGEST))
    again = SignatureMaterial.from_bytes(original.to_bytes())
    assert again == original
    altered = SignatureMaterial(DIGEST, original.sig_manifest,
                                {k: v + b" " for k, v in original.blobs.items()})
    signatures, skipped = altered.signatures()
    assert signatures == [] and "missing or altered" in skipped[0]
    outcome = evaluate_rule(rule("alice"), IMAGE, [(DIGEST, altered)], config_for(alice))
    assert not outcome.satisfied


def test_key_file_swapped_on_disk_is_a_config_error(alice: Signer, bob: Signer) -> None:
    from safedocker.errors import ConfigError

    alice.path.write_bytes(bob.path.read_bytes())
    with pytest.raises(ConfigError, match="pinned fingerprint"):
        evaluate_rule(rule("alice"), IMAGE, [(DIGEST, material(DIGEST, bob.layer(DIGEST)))],
                      config_for(alice))
