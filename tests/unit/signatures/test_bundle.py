"""Sigstore bundles attached by OCI referrers: keyless via sigstore-python, keys by us."""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from typing import TYPE_CHECKING

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from safedocker.policy.model import Identity, Tlog
from safedocker.reference import Digest
from safedocker.signatures.bundle import SIGN_PREDICATE, verify_bundle
from safedocker.trust.keys import load_public_key
from safedocker.trust.roots import parse_trust_root
from tests.sigstore_world import SigstoreWorld, public_pem

if TYPE_CHECKING:

    from safedocker.trust.roots import TrustRoot
    from tests.sigstore_world import Leaf


DIGEST = Digest.of(b"bundle world manifest")
ALICE = Identity(issuer="https://issuer.example", subject="dev@example.com")
SLSA = "https://slsa.dev/provenance/v1"


@pytest.fixture(scope="module")
def world() -> SigstoreWorld:
    return SigstoreWorld()


@pytest.fixture(scope="module")
def root(world: SigstoreWorld) -> TrustRoot:
    return parse_trust_root(world.trusted_root_json(), name="world")


@pytest.fixture(scope="module")
def leaf(world: SigstoreWorld) -> Leaf:
    return world.issue()


def test_keyless_dsse_bundle_is_accepted(world: SigstoreWorld, root: TrustRoot, leaf: Leaf) -> None:
    result = verify_bundle(world.bundle(leaf, str(DIGEST)), DIGEST, identities=[ALICE],
                           trust_root=root)
    assert result.verified, result.reason
    assert (result.kind, result.subject, result.issuer) == (
        "keyless", "dev@example.com", "https://issuer.example")
    assert result.statement is not None and result.integrated_time is not None


def test_keyless_message_signature_bundle_over_the_manifest_digest_is_accepted(world: SigstoreWorld,
                                                                               root: TrustRoot,
                                                                               leaf: Leaf) -> None:
    raw = world.bundle(leaf, str(DIGEST), message=True)
    assert verify_bundle(raw, DIGEST, identities=[ALICE], trust_root=root).verified
    other = verify_bundle(raw, Digest.of(b"x"), identities=[ALICE], trust_root=root)
    assert not other.verified and "not over" in other.reason


def test_bundle_for_another_digest_is_rejected(world: SigstoreWorld, root: TrustRoot,
                                               leaf: Leaf) -> None:
    raw = world.bundle(leaf, str(Digest.of(b"another image")))
    result = verify_bundle(raw, DIGEST, identities=[ALICE], trust_root=root)
    assert not result.verified and "subject does not name" in result.reason


def test_attestations_are_selected_by_predicate_type(world: SigstoreWorld, root: TrustRoot,
                                                     leaf: Leaf) -> None:
    raw = world.bundle(leaf, str(DIGEST), predicate_type=SLSA)
    assert verify_bundle(raw, DIGEST, identities=[ALICE], trust_root=root,
                         predicate_type=SLSA).verified
    as_signature = verify_bundle(raw, DIGEST, identities=[ALICE], trust_root=root)
    assert not as_signature.verified and "predicate type" in as_signature.reason


def test_keyless_bundle_with_another_identity_is_rejected(world: SigstoreWorld, root: TrustRoot,
                                                          leaf: Leaf) -> None:
    bob = Identity(issuer="https://issuer.example", subject="bob@example.com")
    result = verify_bundle(world.bundle(leaf, str(DIGEST)), DIGEST, identities=[bob],
                           trust_root=root)
    assert not result.verified and "matches no trusted identity" in result.reason


def test_keyless_bundle_under_another_trust_root_is_rejected(world: SigstoreWorld,
                                                             leaf: Leaf) -> None:
    stranger = parse_trust_root(SigstoreWorld().trusted_root_json())
    result = verify_bundle(world.bundle(leaf, str(DIGEST)), DIGEST, identities=[ALICE],
                           trust_root=stranger)
    assert not result.verified


def test_expired_certificate_bundle_is_rejected(world: SigstoreWorld, root: TrustRoot) -> None:
    old = world.issue(not_before=world.now - timedelta(hours=2))
    result = verify_bundle(world.bundle(old, str(DIGEST)), DIGEST, identities=[ALICE],
                           trust_root=root)
    assert not result.verified


def test_tampered_statement_is_rejected(world: SigstoreWorld, root: TrustRoot, leaf: Leaf) -> None:
    document = json.loads(world.bundle(leaf, str(DIGEST)))
    forged = world.statement(str(Digest.of(b"evil")))
    document["dsseEnvelope"]["payload"] = base64.b64encode(forged).decode()
    result = verify_bundle(json.dumps(document).encode(), DIGEST, identities=[ALICE],
                           trust_root=root)
    assert not result.verified


def test_bundle_without_tlog_entry_is_rejected_keyless(world: SigstoreWorld, root: TrustRoot,
                                                       leaf: Leaf) -> None:
    raw = world.bundle(leaf, str(DIGEST), with_tlog=False)
    assert not verify_bundle(raw, DIGEST, identities=[ALICE], trust_root=root).verified


def test_garbage_is_a_reason_not_an_exception(root: TrustRoot) -> None:
    for raw in (b"", b"[]", b'{"mediaType": "x"}', b"\xff" * 10):
        result = verify_bundle(raw, DIGEST, identities=[ALICE], trust_root=root)
        assert not result.verified and result.reason


# --- key-signed bundles (verified by our code) ------------------------------------------------


@pytest.fixture(scope="module")
def signing_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def test_key_bundle_is_accepted_and_its_set_checked(
        world: SigstoreWorld, root: TrustRoot, signing_key: ec.EllipticCurvePrivateKey,
) -> None:
    key = load_public_key(public_pem(signing_key), "team")
    raw = world.bundle(None, str(DIGEST), key=signing_key)
    result = verify_bundle(raw, DIGEST, keys=[key], trust_root=root, tlog=Tlog.REQUIRED)
    assert result.verified, result.reason
    assert result.kind == "key" and result.key_name == "team"
    assert result.integrated_time is not None


def test_key_bundle_with_another_key_is_rejected(world: SigstoreWorld, root: TrustRoot,
                                                 signing_key: ec.EllipticCurvePrivateKey) -> None:
    other = load_public_key(public_pem(ec.generate_private_key(ec.SECP256R1())), "other")
    raw = world.bundle(None, str(DIGEST), key=signing_key)
    result = verify_bundle(raw, DIGEST, keys=[other], trust_root=root)
    assert not result.verified and "any trusted key" in result.reason


def test_key_bundle_tlog_policy(world: SigstoreWorld, root: TrustRoot,
                                signing_key: ec.EllipticCurvePrivateKey) -> None:
    key = load_public_key(public_pem(signing_key), "team")
    bare = world.bundle(None, str(DIGEST), key=signing_key, with_tlog=False)
    assert not verify_bundle(bare, DIGEST, keys=[key], trust_root=root,
                             tlog=Tlog.REQUIRED).verified
    assert verify_bundle(bare, DIGEST, keys=[key], trust_root=root, tlog=Tlog.OPTIONAL).verified
    stranger = parse_trust_root(SigstoreWorld().trusted_root_json())
    logged = world.bundle(None, str(DIGEST), key=signing_key)
    bad_log = verify_bundle(logged, DIGEST, keys=[key], trust_root=stranger, tlog=Tlog.OPTIONAL)
    assert not bad_log.verified and "Rekor" in bad_log.reason
    assert verify_bundle(logged, DIGEST, keys=[key], trust_root=stranger, tlog=Tlog.OFF).verified


def test_key_bundle_for_another_digest_is_rejected(world: SigstoreWorld, root: TrustRoot,
                                                   signing_key: ec.EllipticCurvePrivateKey) -> None:
    key = load_public_key(public_pem(signing_key), "team")
    raw = world.bundle(None, str(Digest.of(b"other")), key=signing_key)
    assert not verify_bundle(raw, DIGEST, keys=[key], trust_root=root).verified


def test_sign_predicate_constant_matches_cosign() -> None:
    assert SIGN_PREDICATE == "https://sigstore.dev/cosign/sign/v1"
