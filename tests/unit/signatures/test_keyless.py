"""Keyless (Fulcio) and private-PKI cosign signatures: real cosign vectors and a test world."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from safedocker.policy.model import Identity, Tlog
from safedocker.reference import Digest
from safedocker.signatures.cosign import from_layer
from safedocker.signatures.keyless import (
    certificate_claims,
    verify_keyless,
    verify_pki,
)
from safedocker.trust.roots import embedded_trust_root, parse_trust_root, trust_root_from_parts
from tests.sigstore_world import SigstoreWorld
from tests.unit.signatures import cosign_real

if TYPE_CHECKING:


    from safedocker.signatures.cosign import CosignSignature
    from safedocker.trust.keys import PublicKey
    from safedocker.trust.roots import TrustRoot
    from tests.sigstore_world import Leaf


FULCIO_DIR = "dir-img-cosign-fulcio-rekor-valid"
PKI_DIR = "dir-img-cosign-pki-valid"
MITR = Identity(issuer="https://github.com/login/oauth", subject="mitr@redhat.com")
QIWAN = Identity(subject="qiwan@redhat.com")


def fulcio_v1_root(rekor: PublicKey | None=None) -> TrustRoot:
    """The README's trust: fulcio_v1.crt.pem (root only) and the public-good Rekor key."""
    certs = x509.load_pem_x509_certificates(cosign_real.read("fulcio_v1.crt.pem"))
    return trust_root_from_parts(ca_chains=[certs], rekor_keys=[rekor or cosign_real.rekor_key()])


def fulcio_sig() -> tuple[CosignSignature, Digest]:
    (sig,) = cosign_real.signatures(FULCIO_DIR)
    return sig, cosign_real.manifest_digest(FULCIO_DIR)


# --- conformance: the fixture README rows ----------------------------------------------


def test_fulcio_rekor_valid_is_accepted_at_integrated_time_not_now() -> None:
    sig, digest = fulcio_sig()
    result = verify_keyless(sig, digest, [MITR], fulcio_v1_root())
    assert result.verified, result.reason
    assert (result.subject, result.issuer) == ("mitr@redhat.com", "https://github.com/login/oauth")
    assert result.integrated_time is not None and result.integrated_time.year == 2023


def test_fulcio_fixture_verifies_with_the_embedded_root_including_its_sct() -> None:
    sig, digest = fulcio_sig()
    root = embedded_trust_root()
    assert root.has_ctlogs  # so require_sct defaults to True
    result = verify_keyless(sig, digest, [MITR], root)
    assert result.verified, result.reason


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"bundle_json": None}, "no transparency-log proof"),
        ({"certificate_pem": None}, "no certificate"),
        ({"chain_pem": None}, "no path"),
    ],
)
def test_fulcio_rekor_valid_without_set_certificate_or_chain_is_rejected(change: dict[str, Any],
                                                                         why: str) -> None:
    sig, digest = fulcio_sig()
    result = verify_keyless(replace(sig, **change), digest, [MITR], fulcio_v1_root())
    assert not result.verified
    assert why in result.reason


def test_fulcio_rekor_valid_with_the_wrong_rekor_key_is_rejected() -> None:
    sig, digest = fulcio_sig()
    result = verify_keyless(sig, digest, [MITR], fulcio_v1_root(cosign_real.key("cosign.pub")))
    assert not result.verified
    assert "matches no trusted Rekor key" in result.reason


@pytest.mark.parametrize(
    "identity",
    [
        Identity(issuer="https://github.com/login/oauth", subject="someone@redhat.com"),
        Identity(issuer="https://accounts.google.com", subject="mitr@redhat.com"),
        Identity(subject="mitr@redhat.com"),  # keyless needs an issuer constraint
    ],
)
def test_fulcio_signature_with_another_identity_is_rejected(identity: Identity) -> None:
    sig, digest = fulcio_sig()
    result = verify_keyless(sig, digest, [identity], fulcio_v1_root())
    assert not result.verified


def test_identity_regexps_are_searched_like_cosign() -> None:
    sig, digest = fulcio_sig()
    search = Identity(issuer_regexp="github\\.com", subject_regexp="@redhat\\.com$")
    assert verify_keyless(sig, digest, [search], fulcio_v1_root()).verified
    anchored = Identity(issuer_regexp="^github", subject_regexp="mitr")
    assert not verify_keyless(sig, digest, [anchored], fulcio_v1_root()).verified


def test_identity_regexp_dollar_is_the_end_of_the_text_as_in_go() -> None:
    """Attack N13: Python's `$` also matches before a final newline; Go's does not."""
    from safedocker.signatures.keyless import _matches

    assert _matches(None, r"^ci@example\.com$", ["ci@example.com"])
    assert not _matches(None, r"^ci@example\.com$", ["ci@example.com\n"])
    assert not _matches(None, r"^ci-\d+@example\.com$", ["ci-\u0661@example.com"])
    assert not _matches(None, r"^(?!evil).*$", ["dev@example.com"])  # refused by RE2


def test_fulcio_signature_for_another_digest_is_rejected() -> None:
    sig, _ = fulcio_sig()
    result = verify_keyless(sig, Digest.of(b"other"), [MITR], fulcio_v1_root())
    assert not result.verified and "names digest" in result.reason


def test_pki_valid_is_accepted_with_roots_and_intermediates() -> None:
    (sig,) = cosign_real.signatures(PKI_DIR)
    roots = x509.load_pem_x509_certificates(cosign_real.read("pki_root_crts.pem"))
    inter = x509.load_pem_x509_certificates(cosign_real.read("pki_intermediate_crts.pem"))
    result = verify_pki(sig, cosign_real.manifest_digest(PKI_DIR), [QIWAN], roots, inter)
    assert result.verified, result.reason
    assert result.subject == "qiwan@redhat.com"


def test_pki_rejects_another_identity_another_root_and_a_required_missing_set() -> None:
    (sig,) = cosign_real.signatures(PKI_DIR)
    digest = cosign_real.manifest_digest(PKI_DIR)
    roots = x509.load_pem_x509_certificates(cosign_real.read("pki_root_crts.pem"))
    inter = x509.load_pem_x509_certificates(cosign_real.read("pki_intermediate_crts.pem"))
    fulcio = x509.load_pem_x509_certificates(cosign_real.read("fulcio_v1.crt.pem"))
    assert not verify_pki(sig, digest, [Identity(subject="x@redhat.com")], roots, inter).verified
    assert not verify_pki(sig, digest, [QIWAN], fulcio, inter).verified
    required = verify_pki(sig, digest, [QIWAN], roots, inter, tlog=Tlog.REQUIRED)
    assert not required.verified and "no Rekor bundle" in required.reason


def test_fulcio_trust_does_not_accept_the_pki_signature() -> None:
    (sig,) = cosign_real.signatures(PKI_DIR)
    result = verify_keyless(sig, cosign_real.manifest_digest(PKI_DIR),
                            [Identity(issuer_regexp=".*", subject="qiwan@redhat.com")],
                            embedded_trust_root())
    assert not result.verified


# --- the test world ------------------------------------------------------------------------

DIGEST = Digest.of(b"world manifest")
ALICE = Identity(issuer="https://issuer.example", subject="dev@example.com")


@pytest.fixture(scope="module")
def world() -> SigstoreWorld:
    return SigstoreWorld()


@pytest.fixture(scope="module")
def root(world: SigstoreWorld) -> TrustRoot:
    return parse_trust_root(world.trusted_root_json(), name="world")


def layer(world: SigstoreWorld, leaf: Leaf | None = None, digest: Digest = DIGEST,
          **kw: Any) -> CosignSignature:
    leaf = leaf or world.issue()
    return from_layer(*world.cosign_layer(leaf, world.simple_signing(str(digest)), **kw))


def test_world_signature_is_accepted_with_sct_required(
        world: SigstoreWorld, root: TrustRoot,
) -> None:
    result = verify_keyless(layer(world), DIGEST, [ALICE], root, require_sct=True)
    assert result.verified, result.reason


def test_uri_subjects_and_github_claims_match(world: SigstoreWorld, root: TrustRoot) -> None:
    leaf = world.issue(email=None, uri="https://github.com/org/repo/.github/workflows/b.yml@refs/heads/main",
                       claims={"1.3.6.1.4.1.57264.1.12": "https://github.com/org/repo",
                               "1.3.6.1.4.1.57264.1.14": "refs/heads/main",
                               "1.3.6.1.4.1.57264.1.20": "push"})
    ident = Identity(issuer="https://issuer.example", subject_regexp="^https://github.com/org/")
    sig = layer(world, leaf)
    ok = verify_keyless(sig, DIGEST, [ident], root,
                        claims={"github_workflow_repository": "org/repo",
                                "github_workflow_ref": "refs/heads/main",
                                "github_workflow_trigger": "push"})
    assert ok.verified, ok.reason
    assert certificate_claims(leaf.cert)["github_workflow_trigger"] == "push"
    wrong = verify_keyless(sig, DIGEST, [ident], root,
                           claims={"github_workflow_ref": "refs/tags/x"})
    assert not wrong.verified and "github_workflow_ref" in wrong.reason


def test_certificate_expired_at_integrated_time_is_rejected(
        world: SigstoreWorld, root: TrustRoot,
) -> None:
    leaf = world.issue(not_before=world.now - timedelta(hours=1))  # expired 50 min ago
    result = verify_keyless(layer(world, leaf), DIGEST, [ALICE], root)
    assert not result.verified and "not valid at" in result.reason


def test_certificate_valid_at_an_old_integrated_time_is_accepted(world: SigstoreWorld,
                                                                 root: TrustRoot) -> None:
    old = world.now - timedelta(days=30)
    leaf = world.issue(not_before=old - timedelta(minutes=1))
    result = verify_keyless(layer(world, leaf, integrated_time=old), DIGEST, [ALICE], root)
    assert result.verified, result.reason


def test_missing_or_bad_sct_is_rejected_when_required(
        world: SigstoreWorld, root: TrustRoot,
) -> None:
    no_sct = layer(world, world.issue(sct=False))
    assert "no embedded SCT" in verify_keyless(no_sct, DIGEST, [ALICE], root).reason
    assert verify_keyless(no_sct, DIGEST, [ALICE], root, require_sct=False).verified
    bad = layer(world, world.issue(bad_sct=True))
    assert "does not verify" in verify_keyless(bad, DIGEST, [ALICE], root).reason


def test_set_by_another_log_key_is_rejected(world: SigstoreWorld, root: TrustRoot) -> None:
    sig = layer(world, rekor_key=ec.generate_private_key(ec.SECP256R1()))
    assert "SET is not signed" in verify_keyless(sig, DIGEST, [ALICE], root).reason


def test_a_leaf_from_an_untrusted_ca_with_a_forged_chain_is_rejected(world: SigstoreWorld,
                                                                     root: TrustRoot) -> None:
    other = SigstoreWorld()
    leaf = other.issue()
    # a chain annotation naming the trusted root does not make it the issuer
    sig = layer(world, leaf, chain=[world.intermediate, world.root])
    assert "no path" in verify_keyless(sig, DIGEST, [ALICE], root, require_sct=False).reason


def test_tampered_payload_is_rejected(world: SigstoreWorld, root: TrustRoot) -> None:
    sig = layer(world)
    tampered = replace(sig, payload=sig.payload.replace(b"world/image", b"evil/image"))
    assert "does not verify" in verify_keyless(tampered, DIGEST, [ALICE], root).reason


def test_a_ca_certificate_cannot_be_the_signing_certificate(
        world: SigstoreWorld, root: TrustRoot,
) -> None:
    from tests.sigstore_world import Leaf

    ca_leaf = Leaf(world.intermediate, world.intermediate_key)
    result = verify_keyless(layer(world, ca_leaf), DIGEST, [ALICE], root, require_sct=False)
    assert not result.verified


def test_world_pki_with_and_without_set(world: SigstoreWorld) -> None:
    leaf = world.issue(issuer=None, sct=False, lifetime=timedelta(days=30))
    sig = layer(world, leaf)
    ident = [Identity(subject="dev@example.com")]
    rekor = parse_trust_root(world.trusted_root_json()).rekor_keys
    ok = verify_pki(sig, DIGEST, ident, [world.root], [world.intermediate], rekor, Tlog.REQUIRED)
    assert ok.verified and ok.integrated_time is not None, ok.reason
    assert not verify_pki(sig, DIGEST, ident, [world.root], [], (), Tlog.REQUIRED).verified
    no_set = layer(world, leaf, with_set=False)
    assert verify_pki(no_set, DIGEST, ident, [world.root], [], (), Tlog.OPTIONAL).verified
