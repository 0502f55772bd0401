"""Bundles logged in Rekor v2 with an RFC 3161 timestamp, through safe-docker's bundle code.

The world (tests/sigstore_world.py, tests/sigstore_v2.py) runs a Rekor v2 log and a TSA
independently of the verifier; sigstore-python, a second verifier, accepts its bundles too.
"""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from typing import TypedDict

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from safedocker.policy.model import Identity, Tlog
from safedocker.reference import Digest
from safedocker.signatures.bundle import BundleResult, verify_bundle
from safedocker.trust.keys import PublicKey, load_public_key
from safedocker.trust.roots import TrustRoot, embedded_trust_root, parse_trust_root
from tests.sigstore_v2 import TimestampAuthority
from tests.sigstore_world import SigstoreWorld, public_pem

DIGEST = Digest.of(b"rekor v2 world manifest")
ALICE = Identity(issuer="https://issuer.example", subject="dev@example.com")


class RekorV2Variant(TypedDict, total=False):
    """The options of :meth:`SigstoreWorld.sign_bundle_rekor_v2` the accepted cases vary."""

    dsse_entry: str
    message: bool
    cosigners: int


@pytest.fixture(scope="module")
def world() -> SigstoreWorld:
    return SigstoreWorld()


@pytest.fixture(scope="module")
def root(world: SigstoreWorld) -> TrustRoot:
    return parse_trust_root(world.trusted_root_json(with_rekor_v2=True, with_tsa=True),
                            name="world")


@pytest.fixture(scope="module")
def signing_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture(scope="module")
def team(signing_key: ec.EllipticCurvePrivateKey) -> PublicKey:
    return load_public_key(public_pem(signing_key), "team")


def keyless(raw: bytes, root: TrustRoot) -> BundleResult:
    return verify_bundle(raw, DIGEST, identities=[ALICE], trust_root=root)


def keyed(raw: bytes, root: TrustRoot, team: PublicKey, tlog: Tlog = Tlog.REQUIRED) -> BundleResult:
    return verify_bundle(raw, DIGEST, keys=[team], trust_root=root, tlog=tlog)


def test_trusted_roots_list_rekor_v2_shards_and_timestamp_authorities(world: SigstoreWorld,
                                                                      root: TrustRoot) -> None:
    shard = root.tlog(world.rekor_v2.log_id.hex())
    assert shard is not None and shard.key.algorithm == "ed25519"
    assert shard.base_url == world.rekor_v2.base_url
    (tsa,) = root.timestamp_authorities
    assert tsa.uri == world.tsa.uri and tsa.chain == (world.tsa.cert, world.tsa.root)
    public_good = embedded_trust_root()
    assert any(log.key.algorithm == "ed25519" for log in public_good.tlogs)  # Rekor v2
    assert public_good.timestamp_authorities


# --- accepted ---------------------------------------------------------------------------------


@pytest.mark.parametrize("variant", [{}, {"dsse_entry": "dsse"}, {"message": True},
                                     {"cosigners": 2}],
                         ids=["dsse-as-hashedrekord", "dsse-entry", "message", "witnessed"])
def test_keyless_bundle_on_rekor_v2_with_a_timestamp_is_accepted(world: SigstoreWorld,
                                                                 root: TrustRoot,
                                                                 variant: RekorV2Variant) -> None:
    result = keyless(world.sign_bundle_rekor_v2(str(DIGEST), identity="dev@example.com",
                                                **variant), root)
    assert result.verified, result.reason
    assert result.kind == "keyless" and result.subject == "dev@example.com"
    assert result.log == world.rekor_v2.base_url
    assert result.timestamp_authorities == (world.tsa.uri,)
    assert result.integrated_time == world.now  # the TSA's time: Rekor v2 has none


@pytest.mark.parametrize("variant", [{}, {"dsse_entry": "dsse"}, {"message": True}],
                         ids=["dsse-as-hashedrekord", "dsse-entry", "message"])
def test_key_bundle_on_rekor_v2_with_a_timestamp_meets_a_required_tlog(
        world: SigstoreWorld, root: TrustRoot, team: PublicKey,
        signing_key: ec.EllipticCurvePrivateKey, variant: RekorV2Variant,
) -> None:
    result = keyed(world.sign_bundle_rekor_v2(str(DIGEST), key=signing_key, **variant), root,
                   team)
    assert result.verified, result.reason
    assert (result.kind, result.key_name, result.log) == ("key", "team", world.rekor_v2.base_url)
    assert result.integrated_time == world.now


def test_world_rekor_v2_bundles_are_accepted_by_sigstore_python_too(world: SigstoreWorld) -> None:
    """An independent verifier agrees that the world's bundles are well made."""
    from sigstore.hashes import Hashed
    from sigstore.models import Bundle, TrustedRoot
    from sigstore.verify import Verifier
    from sigstore.verify.policy import Identity as SigstoreIdentity
    from sigstore_models.common.v1 import HashAlgorithm
    from sigstore_models.trustroot.v1 import TrustedRoot as InnerTrustedRoot

    verifier = Verifier(trusted_root=TrustedRoot(
        InnerTrustedRoot.from_json(world.trusted_root_json(with_rekor_v2=True, with_tsa=True))))
    policy = SigstoreIdentity(identity="dev@example.com", issuer="https://issuer.example")
    dsse = Bundle.from_json(world.sign_bundle_rekor_v2(str(DIGEST), identity="dev@example.com"))
    assert verifier.verify_dsse(dsse, policy)[0] == "application/vnd.in-toto+json"
    message = Bundle.from_json(world.sign_bundle_rekor_v2(str(DIGEST), identity="dev@example.com",
                                                          message=True))
    verifier.verify_artifact(Hashed(algorithm=HashAlgorithm.SHA2_256,
                                    digest=bytes.fromhex(DIGEST.hex)), message, policy)


# --- refused ----------------------------------------------------------------------------------


def test_keyless_bundle_without_a_timestamp_is_refused(world: SigstoreWorld,
                                                       root: TrustRoot) -> None:
    result = keyless(world.sign_bundle_rekor_v2(str(DIGEST), identity="dev@example.com",
                                                timestamp=False), root)
    assert not result.verified
    assert "no verified signing time" in result.reason and "RFC 3161" in result.reason


def test_key_bundle_without_a_timestamp_does_not_meet_a_required_tlog(
        world: SigstoreWorld, root: TrustRoot, team: PublicKey,
        signing_key: ec.EllipticCurvePrivateKey,
) -> None:
    raw = world.sign_bundle_rekor_v2(str(DIGEST), key=signing_key, timestamp=False)
    required = keyed(raw, root, team)
    assert not required.verified and "no SET and no RFC 3161 timestamp" in required.reason
    # optional: the entry that is there verified; there is just no signed time
    assert keyed(raw, root, team, Tlog.OPTIONAL).verified


def test_timestamp_outside_the_certificates_validity_is_refused(world: SigstoreWorld,
                                                                root: TrustRoot) -> None:
    leaf = world.issue()
    raw = world.sign_bundle_rekor_v2(str(DIGEST), identity=leaf,
                                     timestamp_at=leaf.cert.not_valid_after_utc
                                     + timedelta(hours=1))
    result = keyless(raw, root)
    assert not result.verified
    assert "outside the signing certificate's validity" in result.reason


def test_checkpoint_signed_by_an_unknown_log_key_is_refused(
        world: SigstoreWorld, root: TrustRoot, team: PublicKey,
        signing_key: ec.EllipticCurvePrivateKey,
) -> None:
    stranger = ed25519.Ed25519PrivateKey.generate()
    for raw in (world.sign_bundle_rekor_v2(str(DIGEST), identity="dev@example.com",
                                           checkpoint_signer=stranger),
                world.sign_bundle_rekor_v2(str(DIGEST), key=signing_key,
                                           checkpoint_signer=stranger)):
        result = verify_bundle(raw, DIGEST, identities=[ALICE], keys=[team], trust_root=root,
                               tlog=Tlog.REQUIRED)
        assert not result.verified
        assert "not signed by log rekor-v2.world.test (unknown log key)" in result.reason


def test_timestamp_from_a_tsa_outside_the_trust_root_is_refused(
        world: SigstoreWorld, root: TrustRoot, team: PublicKey,
        signing_key: ec.EllipticCurvePrivateKey,
) -> None:
    rogue = TimestampAuthority(world.now, name="rogue-tsa")
    for raw in (world.sign_bundle_rekor_v2(str(DIGEST), identity="dev@example.com", tsa=rogue),
                world.sign_bundle_rekor_v2(str(DIGEST), key=signing_key, tsa=rogue)):
        result = verify_bundle(raw, DIGEST, identities=[ALICE], keys=[team], trust_root=root,
                               tlog=Tlog.REQUIRED)
        assert not result.verified
        assert "no trusted timestamp authority verifies it" in result.reason


def test_trust_root_without_timestamp_authorities_refuses_timestamped_bundles(
        world: SigstoreWorld, team: PublicKey, signing_key: ec.EllipticCurvePrivateKey,
) -> None:
    bare = parse_trust_root(world.trusted_root_json(with_rekor_v2=True))
    raw = world.sign_bundle_rekor_v2(str(DIGEST), key=signing_key)
    result = keyed(raw, bare, team)
    assert not result.verified and "lists no timestamp authority" in result.reason


def test_key_bundle_timestamp_must_lie_in_the_tsa_and_log_windows(
        world: SigstoreWorld, team: PublicKey, signing_key: ec.EllipticCurvePrivateKey,
) -> None:
    raw = world.sign_bundle_rekor_v2(str(DIGEST), key=signing_key)
    before = world.now - timedelta(days=1)
    tsa_ended = parse_trust_root(world.trusted_root_json(with_rekor_v2=True, with_tsa=True,
                                                         tsa_valid_until=before))
    result = keyed(raw, tsa_ended, team)
    assert not result.verified and "outside its validity in the trust root" in result.reason
    log_ended = parse_trust_root(world.trusted_root_json(with_rekor_v2=True, with_tsa=True,
                                                         rekor_v2_valid_until=before))
    result = keyed(raw, log_ended, team)
    assert not result.verified and "outside the validity of log" in result.reason
    # the windows are closed intervals: a timestamp at the very end still counts
    at_end = parse_trust_root(world.trusted_root_json(with_rekor_v2=True, with_tsa=True,
                                                      tsa_valid_until=world.now,
                                                      rekor_v2_valid_until=world.now))
    assert keyed(raw, at_end, team).verified


def test_trust_root_without_the_rekor_v2_log_refuses_its_entries(
        world: SigstoreWorld, team: PublicKey, signing_key: ec.EllipticCurvePrivateKey,
) -> None:
    v1_only = parse_trust_root(world.trusted_root_json(with_tsa=True))
    result = keyed(world.sign_bundle_rekor_v2(str(DIGEST), key=signing_key), v1_only, team)
    assert not result.verified and "does not list" in result.reason


def _swap(raw_a: bytes, raw_b: bytes, field: str) -> bytes:
    """Bundle a with bundle b's ``field`` (its content, or its timestamps)."""
    a, b = json.loads(raw_a), json.loads(raw_b)
    if field == "timestamps":
        a["verificationMaterial"]["timestampVerificationData"] = \
            b["verificationMaterial"]["timestampVerificationData"]
    else:
        a[field] = b[field]
    return json.dumps(a).encode()


def test_entry_for_another_signature_or_artifact_is_refused(
        world: SigstoreWorld, root: TrustRoot, team: PublicKey,
        signing_key: ec.EllipticCurvePrivateKey,
) -> None:
    first = world.sign_bundle_rekor_v2(str(DIGEST), key=signing_key)
    again = world.sign_bundle_rekor_v2(str(DIGEST), key=signing_key)  # ECDSA: a new signature
    swapped = _swap(_swap(first, again, "dsseEnvelope"), again, "timestamps")
    result = keyed(swapped, root, team)
    assert not result.verified and "the log entry is for a different signature" in result.reason
    message = world.sign_bundle_rekor_v2(str(DIGEST), key=signing_key, message=True,
                                         dsse_entry="dsse")
    other = world.sign_bundle_rekor_v2(str(Digest.of(b"other")), key=signing_key, message=True)
    forged = json.loads(message)
    forged["verificationMaterial"]["tlogEntries"] = \
        json.loads(other)["verificationMaterial"]["tlogEntries"]
    result = keyed(json.dumps(forged).encode(), root, team)
    assert not result.verified and "different" in result.reason


def test_timestamp_over_another_signature_is_refused(world: SigstoreWorld, root: TrustRoot) -> None:
    first = world.sign_bundle_rekor_v2(str(DIGEST), identity="dev@example.com")
    second = world.sign_bundle_rekor_v2(str(DIGEST), identity="dev@example.com")
    result = keyless(_swap(first, second, "timestamps"), root)
    assert not result.verified and "Mismatch between messages" in result.reason


def test_inclusion_proof_not_matching_the_checkpoint_is_refused(
        world: SigstoreWorld, root: TrustRoot, team: PublicKey,
        signing_key: ec.EllipticCurvePrivateKey,
) -> None:
    document = json.loads(world.sign_bundle_rekor_v2(str(DIGEST), key=signing_key))
    proof = document["verificationMaterial"]["tlogEntries"][0]["inclusionProof"]
    first = bytearray(base64.b64decode(proof["hashes"][0]))
    first[0] ^= 1
    proof["hashes"][0] = base64.b64encode(bytes(first)).decode()
    result = keyed(json.dumps(document).encode(), root, team)
    assert not result.verified and "does not lead to the logged root hash" in result.reason


def test_proof_for_a_tree_size_other_than_the_checkpoints_is_refused(
        world: SigstoreWorld, root: TrustRoot, team: PublicKey,
        signing_key: ec.EllipticCurvePrivateKey,
) -> None:
    document = json.loads(world.sign_bundle_rekor_v2(str(DIGEST), key=signing_key))
    proof = document["verificationMaterial"]["tlogEntries"][0]["inclusionProof"]
    proof["treeSize"] = str(int(proof["treeSize"]) + 1)
    result = keyed(json.dumps(document).encode(), root, team)
    assert not result.verified
    assert "another tree" in result.reason or "inclusion proof" in result.reason


def test_a_set_on_a_rekor_v2_entry_is_refused(world: SigstoreWorld, root: TrustRoot,
                                              team: PublicKey,
                                              signing_key: ec.EllipticCurvePrivateKey) -> None:
    document = json.loads(world.sign_bundle_rekor_v2(str(DIGEST), key=signing_key))
    entry = document["verificationMaterial"]["tlogEntries"][0]
    entry["integratedTime"] = "1700000000"
    entry["inclusionPromise"] = {"signedEntryTimestamp": "MEUCIQ=="}
    result = keyed(json.dumps(document).encode(), root, team)
    assert not result.verified and "Rekor v2 never issues" in result.reason


def test_tlog_off_ignores_log_and_timestamps_for_key_rules(
        world: SigstoreWorld, root: TrustRoot, team: PublicKey,
        signing_key: ec.EllipticCurvePrivateKey,
) -> None:
    raw = world.sign_bundle_rekor_v2(str(DIGEST), key=signing_key,
                                     checkpoint_signer=ed25519.Ed25519PrivateKey.generate())
    assert not keyed(raw, root, team, Tlog.OPTIONAL).verified
    off = keyed(raw, root, team, Tlog.OFF)
    assert off.verified and off.log is None and off.integrated_time is None
