"""``evaluate_rule`` on certificate signatures: keyless `.sig` layers, a private PKI,
sigstore bundles, and thresholds that mix key and keyless signers.

The material is built in memory: keyless signatures come from the independent
SigstoreWorld (tests/sigstore_world.py), the PKI signature is the real cosign fixture
in ../shared/fixtures/cosign-real, key signatures are made with safe-docker's cosign key
code as in test_rules.py.
"""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from typing import TYPE_CHECKING

import pytest

from safedocker.policy.config import Config, KeyEntry
from safedocker.policy.model import Action, Identity, Rule, Tlog
from safedocker.reference import Digest, parse_reference
from safedocker.signatures.cosign import SIGNATURE_ANNOTATION, SIMPLE_SIGNING_MEDIA_TYPE
from safedocker.signatures.cosignkey import generate_key_pair, load_private_key, sign
from safedocker.signatures.simplesigning import make_payload
from safedocker.trust.keys import load_public_key
from safedocker.trust.roots import parse_trust_root
from safedocker.verify.material import SignatureMaterial
from safedocker.verify.rules import evaluate_rule
from tests.sigstore_world import SigstoreWorld, public_pem
from tests.unit.signatures import cosign_real

if TYPE_CHECKING:
    from collections.abc import Callable

    from cryptography.hazmat.primitives.asymmetric import ec

    from safedocker.trust.roots import TrustRoot


if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from pathlib import Path

    from cryptography.hazmat.primitives.asymmetric import ec

    from safedocker.trust.roots import TrustRoot

IMAGE = parse_reference("127.0.0.1:5000/team/app:v1")
DIGEST = Digest.of(b"the image manifest")
OTHER = Digest.of(b"another manifest")
ISSUER = "https://issuer.example"
DEV = Identity(issuer=ISSUER, subject="dev@example.com")
ROOT_NAME = "world"

Layer = tuple[dict[str, object], bytes]


# --- material ------------------------------------------------------------------------------


def descriptor(annotations: Mapping[str, str], media_type: str, blob: bytes) -> Layer:
    return ({"mediaType": media_type, "size": len(blob), "digest": str(Digest.of(blob)),
             "annotations": dict(annotations)}, blob)


def material(digest: Digest, *layers: Layer, bundles: tuple[bytes, ...] = ()
             ) -> SignatureMaterial:
    sig_manifest = None
    if layers:
        sig_manifest = json.dumps({
            "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "size": 2,
                       "digest": str(Digest.of(b"{}"))},
            "layers": [d for d, _ in layers],
        }).encode()
    return SignatureMaterial(digest, sig_manifest, {str(Digest.of(b)): b for _, b in layers},
                             bundles=bundles, bundles_fetched=bool(bundles))


@pytest.fixture(scope="module")
def world() -> SigstoreWorld:
    return SigstoreWorld()


@pytest.fixture(scope="module")
def roots(world: SigstoreWorld) -> Callable[[str], TrustRoot]:
    root = parse_trust_root(world.trusted_root_json(), name=ROOT_NAME)

    def by_name(name: str) -> TrustRoot:
        assert name == ROOT_NAME, f"rule asked for trust root {name!r}"
        return root

    return by_name


def keyless_layer(world: SigstoreWorld, digest: Digest = DIGEST, **issue: object) -> Layer:
    leaf = world.issue(**issue)  # type: ignore[arg-type]
    return descriptor(*world.cosign_layer(leaf, world.simple_signing(str(digest), IMAGE.name)))


def rule(**kw: object) -> Rule:
    kw.setdefault("trust_root", ROOT_NAME)
    return Rule(scope="127.0.0.1:5000/team/*", action=Action.VERIFY, **kw)  # type: ignore[arg-type]


class KeySigner:
    """A cosign key pair trusted under ``name``; signs `.sig` layers and key bundles."""

    def __init__(self, tmp_path: Path, name: str) -> None:
        private_pem, public = generate_key_pair(b"pw")
        self.private: ec.EllipticCurvePrivateKey = load_private_key(private_pem, b"pw")  # type: ignore[assignment]
        self.name = name
        path = tmp_path / f"{name}.pub"
        path.write_bytes(public)
        self.entry = KeyEntry(name, load_public_key(public, name).fingerprint, path)
        assert public_pem(self.private) == public

    def layer(self, digest: Digest) -> Layer:
        payload = make_payload(IMAGE.name, digest)
        signature = base64.b64encode(sign(self.private, payload)).decode()
        return descriptor({SIGNATURE_ANNOTATION: signature}, SIMPLE_SIGNING_MEDIA_TYPE, payload)


@pytest.fixture
def alice(tmp_path: Path) -> KeySigner:
    return KeySigner(tmp_path, "alice")


# --- keyless .sig layers -----------------------------------------------------------------


def test_keyless_sig_layer_with_the_trusted_identity_is_accepted(
        world: SigstoreWorld, roots: Callable[[str], TrustRoot],
) -> None:
    outcome = evaluate_rule(rule(identities=(DEV,)), IMAGE,
                            [(DIGEST, material(DIGEST, keyless_layer(world)))], Config(), roots)
    assert outcome.satisfied, outcome.reasons
    (signer,) = outcome.signers
    assert (signer.kind, signer.name) == ("keyless", "dev@example.com")
    assert ISSUER in signer.detail


@pytest.mark.parametrize(("identity", "why"), [
    (Identity(issuer=ISSUER, subject="someone@example.com"), "matches no trusted identity"),
    (Identity(issuer="https://other.example", subject="dev@example.com"),
     "matches no trusted identity"),
    (Identity(issuer_regexp="^https://issuer\\.example$", subject_regexp="^admin@"),
     "matches no trusted identity"),
])
def test_keyless_sig_layer_with_another_identity_is_refused(
        world: SigstoreWorld, roots: Callable[[str], TrustRoot], identity: Identity, why: str,
) -> None:
    outcome = evaluate_rule(rule(identities=(identity,)), IMAGE,
                            [(DIGEST, material(DIGEST, keyless_layer(world)))], Config(), roots)
    assert not outcome.satisfied
    assert outcome.signers == ()
    assert any(why in r and "dev@example.com" in r for r in outcome.reasons), outcome.reasons


def test_keyless_identity_regexp_is_searched(world: SigstoreWorld, roots: Callable[[str],
                                             TrustRoot]) -> None:
    identity = Identity(issuer_regexp="issuer\\.example", subject_regexp="@example\\.com$")
    outcome = evaluate_rule(rule(identities=(identity,)), IMAGE,
                            [(DIGEST, material(DIGEST, keyless_layer(world)))], Config(), roots)
    assert outcome.satisfied, outcome.reasons


def test_keyless_certificate_expired_at_integrated_time_is_refused(world: SigstoreWorld,
                                                                   roots: Callable[[str],
                                                                   TrustRoot]) -> None:
    expired = keyless_layer(world, not_before=world.now - timedelta(hours=2))
    outcome = evaluate_rule(rule(identities=(DEV,)), IMAGE, [(DIGEST, material(DIGEST, expired))],
                            Config(), roots)
    assert not outcome.satisfied
    assert any("signing certificate" in r and "is not valid at" in r for r in outcome.reasons)


def test_keyless_signature_over_another_digest_is_refused(
        world: SigstoreWorld, roots: Callable[[str], TrustRoot],
) -> None:
    outcome = evaluate_rule(rule(identities=(DEV,)), IMAGE,
                            [(DIGEST, material(DIGEST, keyless_layer(world, OTHER)))],
                            Config(), roots)
    assert not outcome.satisfied
    assert any(f"names digest {OTHER}" in r for r in outcome.reasons), outcome.reasons


def test_keyless_sig_layer_from_an_untrusted_root_is_refused(
        world: SigstoreWorld, roots: Callable[[str], TrustRoot],
) -> None:
    stranger = SigstoreWorld()
    outcome = evaluate_rule(rule(identities=(DEV,)), IMAGE,
                            [(DIGEST, material(DIGEST, keyless_layer(stranger)))],
                            Config(), roots)
    assert not outcome.satisfied
    assert any("transparency-log" in r or "certificate chain" in r for r in outcome.reasons), (
        outcome.reasons)


# --- private PKI (real cosign fixture) ---------------------------------------------------

PKI_DIR = "dir-img-cosign-pki-valid"
QIWAN = Identity(subject="qiwan@redhat.com")


def pki_layer() -> Layer:
    raw = cosign_real.read(f"{PKI_DIR}/signature-1")
    document = json.loads(raw[raw.index(b"\n") + 1:])
    return descriptor(document["annotations"], document["mimeType"],
                      base64.b64decode(document["payload"]))


@pytest.fixture
def pki_files(tmp_path: Path) -> tuple[str, str]:
    roots_pem = tmp_path / "pki_root_crts.pem"
    roots_pem.write_bytes(cosign_real.read("pki_root_crts.pem"))
    intermediates_pem = tmp_path / "pki_intermediate_crts.pem"
    intermediates_pem.write_bytes(cosign_real.read("pki_intermediate_crts.pem"))
    return str(roots_pem), str(intermediates_pem)


@pytest.mark.parametrize(("identity", "accepted"), [
    (QIWAN, True),
    (Identity(subject_regexp="^qiwan@redhat\\.com$"), True),
    (Identity(subject="mitr@redhat.com"), False),
])
def test_pki_rule_with_the_real_cosign_fixture(pki_files: tuple[str, str], identity: Identity,
                                               accepted: bool) -> None:
    digest = cosign_real.manifest_digest(PKI_DIR)
    ref = parse_reference("localhost:5000/test:latest")  # the payload's docker-reference
    roots_pem, intermediates_pem = pki_files
    pki = Rule(scope="localhost:5000/*", action=Action.VERIFY, identities=(identity,),
               pki_roots=(roots_pem,), pki_intermediates=(intermediates_pem,))
    outcome = evaluate_rule(pki, ref, [(digest, material(digest, pki_layer()))], Config())
    assert outcome.satisfied is accepted, outcome.reasons
    if accepted:
        assert [(s.kind, s.name) for s in outcome.signers] == [("pki", "qiwan@redhat.com")]
    else:
        assert any("qiwan@redhat.com" in r and "matches no trusted identity" in r
                   for r in outcome.reasons), outcome.reasons


def test_pki_signature_is_refused_under_other_roots_a_required_log_or_fulcio(
        pki_files: tuple[str, str], roots: Callable[[str], TrustRoot], tmp_path: Path) -> None:
    digest = cosign_real.manifest_digest(PKI_DIR)
    ref = parse_reference("localhost:5000/test:latest")
    candidates = [(digest, material(digest, pki_layer()))]
    fulcio_pem = tmp_path / "fulcio.pem"
    fulcio_pem.write_bytes(cosign_real.read("fulcio_v1.crt.pem"))
    other_root = Rule(scope="localhost:5000/*", action=Action.VERIFY, identities=(QIWAN,),
                      pki_roots=(str(fulcio_pem),), pki_intermediates=pki_files[1:])
    outcome = evaluate_rule(other_root, ref, candidates, Config())
    assert not outcome.satisfied
    assert any("certificate chain does not verify" in r for r in outcome.reasons), outcome.reasons
    required = Rule(scope="localhost:5000/*", action=Action.VERIFY, identities=(QIWAN,),
                    pki_roots=pki_files[:1], pki_intermediates=pki_files[1:], tlog=Tlog.REQUIRED)
    outcome = evaluate_rule(required, ref, candidates, Config())
    assert not outcome.satisfied and any("Rekor" in r for r in outcome.reasons), outcome.reasons
    # The same certificate is no Fulcio certificate: a keyless rule refuses it.
    keyless = Rule(scope="localhost:5000/*", action=Action.VERIFY, trust_root=ROOT_NAME,
                   identities=(Identity(issuer_regexp=".", subject="qiwan@redhat.com"),))
    assert not evaluate_rule(keyless, ref, candidates, Config(), roots).satisfied


# --- bundles -------------------------------------------------------------------------------


def test_bundle_signed_with_a_trusted_key_is_accepted(
        roots: Callable[[str], TrustRoot], world: SigstoreWorld, alice: KeySigner,
) -> None:
    bundle = world.bundle(None, str(DIGEST), key=alice.private, with_tlog=False)
    outcome = evaluate_rule(rule(keys=("alice",)), IMAGE,
                            [(DIGEST, material(DIGEST, bundles=(bundle,)))],
                            Config(keys={"alice": alice.entry}), roots)
    assert outcome.satisfied, outcome.reasons
    assert [(s.kind, s.name) for s in outcome.signers] == [("key", "alice")]


def test_bundle_signed_with_a_trusted_key_and_a_tlog_entry_is_accepted(
        world: SigstoreWorld, roots: Callable[[str], TrustRoot], alice: KeySigner) -> None:
    """What cosign v3 writes by default: a key-signed DSSE bundle with a Rekor entry."""
    bundle = world.bundle(None, str(DIGEST), key=alice.private)
    outcome = evaluate_rule(rule(keys=("alice",)), IMAGE,
                            [(DIGEST, material(DIGEST, bundles=(bundle,)))],
                            Config(keys={"alice": alice.entry}), roots)
    assert outcome.satisfied, outcome.reasons


def test_bundle_signed_with_an_untrusted_key_or_for_another_digest_is_refused(
        roots: Callable[[str], TrustRoot], world: SigstoreWorld, alice: KeySigner, tmp_path: Path,
) -> None:
    mallory = KeySigner(tmp_path, "mallory")
    config = Config(keys={"alice": alice.entry, "mallory": mallory.entry})
    stranger = world.bundle(None, str(DIGEST), key=mallory.private, with_tlog=False)
    outcome = evaluate_rule(rule(keys=("alice",)), IMAGE,
                            [(DIGEST, material(DIGEST, bundles=(stranger,)))], config, roots)
    assert not outcome.satisfied
    assert any("does not verify with any trusted key" in r for r in outcome.reasons)
    elsewhere = world.bundle(None, str(OTHER), key=alice.private, with_tlog=False)
    outcome = evaluate_rule(rule(keys=("alice",)), IMAGE,
                            [(DIGEST, material(DIGEST, bundles=(elsewhere,)))], config, roots)
    assert not outcome.satisfied
    assert any(f"does not name {DIGEST}" in r for r in outcome.reasons), outcome.reasons


def test_keyless_bundle_is_accepted_and_judged_by_identity(
        world: SigstoreWorld, roots: Callable[[str], TrustRoot],
) -> None:
    bundle = world.bundle(world.issue(), str(DIGEST))
    candidates = [(DIGEST, material(DIGEST, bundles=(bundle,)))]
    ok = evaluate_rule(rule(identities=(DEV,)), IMAGE, candidates, Config(), roots)
    assert ok.satisfied, ok.reasons
    assert [(s.kind, s.name) for s in ok.signers] == [("keyless", "dev@example.com")]
    other = Identity(issuer=ISSUER, subject="ops@example.com")
    refused = evaluate_rule(rule(identities=(other,)), IMAGE, candidates, Config(), roots)
    assert not refused.satisfied
    assert any("matches no trusted identity" in r for r in refused.reasons), refused.reasons


# --- thresholds ----------------------------------------------------------------------------


def test_a_key_signer_and_a_keyless_signer_are_two_distinct_signers(
        world: SigstoreWorld, roots: Callable[[str], TrustRoot], alice: KeySigner,
) -> None:
    config = Config(keys={"alice": alice.entry})
    two = rule(keys=("alice",), identities=(DEV,), threshold=2)
    both = material(DIGEST, alice.layer(DIGEST), keyless_layer(world))
    outcome = evaluate_rule(two, IMAGE, [(DIGEST, both)], config, roots)
    assert outcome.satisfied, outcome.reasons
    assert sorted(s.kind for s in outcome.signers) == ["key", "keyless"]

    # The same keyless identity twice (two certificates) is still one signer.
    twice = material(DIGEST, keyless_layer(world), keyless_layer(world))
    outcome = evaluate_rule(two, IMAGE, [(DIGEST, twice)], config, roots)
    assert not outcome.satisfied
    assert "1 trusted signer(s), policy requires 2" in outcome.reasons

    # A key .sig layer plus a keyless bundle count as two as well.
    mixed = material(DIGEST, alice.layer(DIGEST),
                     bundles=(world.bundle(world.issue(), str(DIGEST)),))
    assert evaluate_rule(two, IMAGE, [(DIGEST, mixed)], config, roots).satisfied


def test_one_key_in_a_sig_layer_and_in_a_bundle_is_one_signer(
        roots: Callable[[str], TrustRoot], world: SigstoreWorld, alice: KeySigner, tmp_path: Path,
) -> None:
    bob = KeySigner(tmp_path, "bob")
    config = Config(keys={"alice": alice.entry, "bob": bob.entry})
    two = rule(keys=("alice", "bob"), threshold=2)
    twice_alice = material(DIGEST, alice.layer(DIGEST), bundles=(
        world.bundle(None, str(DIGEST), key=alice.private, with_tlog=False),))
    outcome = evaluate_rule(two, IMAGE, [(DIGEST, twice_alice)], config, roots)
    assert not outcome.satisfied, outcome.signers
    assert "1 trusted signer(s), policy requires 2" in outcome.reasons
