"""One evaluation of a signature against a rule, whatever its format (issue 11 item 6),
and thresholds that count listed signers, not certificate subjects (attack N7).

Signatures come from the independent SigstoreWorld and from cosign keys made here; the
same rule is checked against a `.sig` layer, an OCI 1.1 referrer, a statement bundle and
a message-signature bundle.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from safedocker.policy.config import Config
from safedocker.policy.model import Identity, ReferenceCheck, Remap, SignedIdentity, Tlog
from safedocker.reference import Digest, parse_reference
from safedocker.verify.claims import ClaimFormat
from safedocker.verify.material import SignatureMaterial
from safedocker.verify.rules import evaluate_rule
from tests.unit.verify.test_rules_keyless import (
    DEV,
    DIGEST,
    IMAGE,
    ISSUER,
    KeySigner,
    descriptor,
    keyless_layer,
    material,
    roots,
    rule,
    world,
)

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from safedocker.trust.roots import TrustRoot
    from tests.sigstore_world import SigstoreWorld

__all__ = ["roots", "world"]  # fixtures re-used from test_rules_keyless

OTHER_REPO = "127.0.0.1:5000/team/other"


def bundle_of(world: SigstoreWorld, **kw: object) -> SignatureMaterial:
    return material(DIGEST, bundles=(world.bundle(world.issue(), str(DIGEST), **kw),))  # type: ignore[arg-type]


def judged(world_rule: object, candidates: SignatureMaterial,
           roots: Callable[[str], TrustRoot], config: Config | None = None,
           image: str = str(IMAGE)) -> tuple[bool, tuple[str, ...]]:
    outcome = evaluate_rule(world_rule, parse_reference(image), [(DIGEST, candidates)],  # type: ignore[arg-type]
                            config or Config(), roots)
    return outcome.satisfied, outcome.reasons


# --- annotations -------------------------------------------------------------------------


def test_bundle_without_the_required_annotation_is_refused(
        world: SigstoreWorld, roots: Callable[[str], TrustRoot]) -> None:
    """Issue 11.6: a bundle without env=prod passed `--annotation env=prod`."""
    required = rule(identities=(DEV,), annotations={"env": "prod"})
    ok, why = judged(required, bundle_of(world), roots)
    assert not ok and any("lacks required annotation env=prod" in r for r in why), why
    ok, why = judged(required, bundle_of(world, annotations={"env": "dev"}), roots)
    assert not ok and any("env is 'dev'" in r for r in why), why
    assert judged(required, bundle_of(world, annotations={"env": "prod"}), roots)[0]


def test_message_signature_bundle_cannot_carry_a_required_annotation(
        world: SigstoreWorld, roots: Callable[[str], TrustRoot]) -> None:
    required = rule(identities=(DEV,), annotations={"env": "prod"})
    ok, why = judged(required, bundle_of(world, message=True), roots)
    assert not ok
    assert any("message-signature bundle: it cannot carry annotations" in r for r in why), why
    assert judged(rule(identities=(DEV,)), bundle_of(world, message=True), roots)[0]


# --- the signed reference ----------------------------------------------------------------


def test_bundle_made_for_another_repository_is_refused_under_exact_and_repository(
        world: SigstoreWorld, roots: Callable[[str], TrustRoot]) -> None:
    """Issue 11.6: a bundle made for `app` passed for `other` under reference = exact."""
    for_app = bundle_of(world, name=f"{IMAGE.name}:v1")
    for mode in (ReferenceCheck.EXACT, ReferenceCheck.REPOSITORY):
        ok, why = judged(rule(identities=(DEV,), reference=mode), for_app, roots,
                         image=f"{OTHER_REPO}:v1")
        assert not ok and any(f"signature is for {IMAGE.name}" in r for r in why), why
        assert judged(rule(identities=(DEV,), reference=mode), for_app, roots)[0]
    assert judged(rule(identities=(DEV,), reference=ReferenceCheck.DIGEST), for_app, roots,
                  image=f"{OTHER_REPO}:v1")[0]


def test_exact_needs_the_tag_the_statement_names(
        world: SigstoreWorld, roots: Callable[[str], TrustRoot]) -> None:
    exact = rule(identities=(DEV,), reference=ReferenceCheck.EXACT)
    ok, why = judged(exact, bundle_of(world, name=f"{IMAGE.name}:v2"), roots)
    assert not ok and any("signature is for" in r and ":v2" in r for r in why), why


def test_a_bundle_naming_no_repository_passes_repository_but_not_exact(
        world: SigstoreWorld, roots: Callable[[str], TrustRoot]) -> None:
    """cosign v3 writes statements whose subject has a digest and no name."""
    nameless = bundle_of(world)
    assert judged(rule(identities=(DEV,)), nameless, roots)[0]
    ok, why = judged(rule(identities=(DEV,), reference=ReferenceCheck.EXACT), nameless, roots)
    assert not ok
    assert any("sigstore bundle: it names no docker-reference" in r for r in why), why


def test_message_signature_bundle_under_exact_is_not_satisfied_and_says_why(
        world: SigstoreWorld, roots: Callable[[str], TrustRoot]) -> None:
    ok, why = judged(rule(identities=(DEV,), reference=ReferenceCheck.EXACT),
                     bundle_of(world, message=True), roots)
    assert not ok
    assert any("message-signature bundle: it cannot carry a signed docker-reference" in r
               for r in why), why


def test_the_same_rule_judges_a_sig_layer_a_referrer_and_a_bundle_alike(
        world: SigstoreWorld, roots: Callable[[str], TrustRoot]) -> None:
    """One signature for `other`, in each format, under reference = repository."""
    payload = world.simple_signing(str(DIGEST), OTHER_REPO)
    layer = world.cosign_layer(world.issue(), payload)
    referrer, blobs = world.cosign_referrer_manifest([layer], str(DIGEST), 100)
    formats = {
        ClaimFormat.SIG_TAG: material(DIGEST, descriptor(*layer)),
        ClaimFormat.REFERRER: SignatureMaterial(DIGEST, None, blobs, sig_referrers=(referrer,),
                                                bundles_fetched=True),
        ClaimFormat.STATEMENT: bundle_of(world, name=OTHER_REPO),
    }
    for fmt, found in formats.items():
        ok, why = judged(rule(identities=(DEV,)), found, roots)
        assert not ok, fmt
        assert any(f"signature is for {OTHER_REPO}" in r for r in why), (fmt, why)


# --- signed identity: remaps and fixed references ----------------------------------------


@pytest.mark.parametrize(("remap", "signed", "accepted"), [
    (Remap("127.0.0.1:5000/team", signed_prefix="mirror.example/upstream"),
     "mirror.example/upstream/app", True),
    (Remap("127.0.0.1:5000/team", signed_prefix="mirror.example/upstream"),
     "mirror.example/upstream/evil", False),
    (Remap("127.0.0.1:5000/team", signed_prefix="mirror.example/upstream"),
     "127.0.0.1:5000/team/app", True),  # the pulled name itself stays acceptable
    (Remap("127.0.0.1:5000", signed_prefix_regexp=r"[a-z0-9-]+-docker\.pkg\.dev/prod/images"),
     "us-west2-docker.pkg.dev/prod/images/team/app", True),
    (Remap("127.0.0.1:5000", signed_prefix_regexp=r"[a-z0-9-]+-docker\.pkg\.dev/prod/images"),
     "evil.example/us-docker.pkg.dev/prod/images/team/app", False),
    (Remap("127.0.0.1:5000/other", signed_prefix="mirror.example/upstream"),
     "mirror.example/upstream/app", False),  # the remap does not cover the pulled name
], ids=["prefix", "prefix-other-name", "pulled-name", "regexp", "regexp-anchored",
        "not-covered"])
def test_a_remapped_identity_accepts_the_name_under_the_signed_prefix(
        world: SigstoreWorld, roots: Callable[[str], TrustRoot], remap: Remap, signed: str,
        accepted: bool) -> None:
    remapped = rule(identities=(DEV,), reference=ReferenceCheck.EXACT,
                    signed_identity=SignedIdentity(remaps=(remap,)))
    layer = world.cosign_layer(world.issue(), world.simple_signing(str(DIGEST), f"{signed}:v1"))
    ok, why = judged(remapped, material(DIGEST, descriptor(*layer)), roots)
    assert ok is accepted, why


def test_exact_reference_and_exact_repository_name_what_every_signature_must_say(
        world: SigstoreWorld, roots: Callable[[str], TrustRoot]) -> None:
    fixed = rule(identities=(DEV,),
                 signed_identity=SignedIdentity(exact_reference="docker.io/library/busybox:1"))
    signed_busybox = bundle_of(world, name="docker.io/library/busybox:1")
    assert judged(fixed, signed_busybox, roots)[0]
    assert not judged(fixed, bundle_of(world, name=f"{IMAGE.name}:v1"), roots)[0]
    ok, why = judged(fixed, bundle_of(world), roots)
    assert not ok and any("names no docker-reference" in r for r in why), why
    repository = rule(identities=(DEV,),
                      signed_identity=SignedIdentity(exact_repository="docker.io/library/busybox"))
    assert judged(repository, bundle_of(world, name="busybox:2"), roots)[0]
    assert not judged(repository, bundle_of(world, name="alpine:2"), roots)[0]


# --- thresholds: listed signers, one to one ------------------------------------------------


CI = Identity(issuer=ISSUER, subject_regexp=r"^ci-[a-z]+@example\.com$")
SECURITY = Identity(issuer=ISSUER, subject="security@example.com")


def test_two_subjects_under_one_identity_regexp_are_one_listed_signer(
        world: SigstoreWorld, roots: Callable[[str], TrustRoot]) -> None:
    """Attack N7: ci-build and ci-nightly met threshold 2 without the security team."""
    two = rule(identities=(CI, SECURITY), threshold=2)
    ci_only = material(DIGEST, keyless_layer(world, email="ci-build@example.com"),
                       keyless_layer(world, email="ci-nightly@example.com"))
    ok, why = judged(two, ci_only, roots)
    assert not ok and "1 trusted signer(s), policy requires 2" in why
    with_security = material(DIGEST, keyless_layer(world, email="ci-build@example.com"),
                             keyless_layer(world, email="security@example.com"))
    assert judged(two, with_security, roots)[0]


def test_listed_signers_are_matched_one_to_one(
        world: SigstoreWorld, roots: Callable[[str], TrustRoot]) -> None:
    """security@ matches both listed identities, ci-build@ only the regexp: two signers,
    found whichever order the signatures come in."""
    broad = Identity(issuer=ISSUER, subject_regexp=r"@example\.com$")
    two = rule(identities=(broad, SECURITY), threshold=2)
    for order in (("security", "ci-build"), ("ci-build", "security")):
        layers = [keyless_layer(world, email=f"{name}@example.com") for name in order]
        ok, why = judged(two, material(DIGEST, *layers), roots)
        assert ok, (order, why)
    alone = material(DIGEST, keyless_layer(world, email="security@example.com"))
    assert not judged(two, alone, roots)[0]


def test_one_key_listed_under_two_names_is_one_signer(
        tmp_path: Path, roots: Callable[[str], TrustRoot]) -> None:
    alice = KeySigner(tmp_path, "alice")
    config = Config(keys={"alice": alice.entry, "alias": alice.entry.__class__(
        "alias", alice.entry.fingerprint, alice.entry.path)})
    two = rule(keys=("alice", "alias"), threshold=2)
    ok, why = judged(two, material(DIGEST, alice.layer(DIGEST)), roots, config)
    assert not ok and "1 trusted signer(s), policy requires 2" in why


def test_workflow_claims_of_an_identity_apply_to_bundles_too(
        world: SigstoreWorld, roots: Callable[[str], TrustRoot]) -> None:
    pinned = Identity(issuer=ISSUER, subject="dev@example.com",
                      github_workflow_repository="org/repo")
    ok, why = judged(rule(identities=(pinned,)), bundle_of(world), roots)
    assert not ok, why


def test_tlog_required_is_judged_the_same_for_a_key_bundle_without_an_entry(
        world: SigstoreWorld, roots: Callable[[str], TrustRoot], tmp_path: Path) -> None:
    alice = KeySigner(tmp_path, "alice")
    config = Config(keys={"alice": alice.entry})
    bare = material(DIGEST, bundles=(world.bundle(None, str(DIGEST), key=alice.private,
                                                  with_tlog=False),))
    ok, why = judged(rule(keys=("alice",), tlog=Tlog.REQUIRED), bare, roots, config)
    assert not ok and any("no transparency-log entry" in r for r in why), why
    assert judged(rule(keys=("alice",), tlog=Tlog.OPTIONAL), bare, roots, config)[0]


def test_other_digest_in_material_is_not_a_claim_for_this_digest(
        world: SigstoreWorld, roots: Callable[[str], TrustRoot]) -> None:
    elsewhere = material(DIGEST, bundles=(world.bundle(world.issue(),
                                                       str(Digest.of(b"x"))),))
    assert not judged(rule(identities=(DEV,)), elsewhere, roots)[0]


def test_cert_manager_shaped_rsa4096_sha512_signature_satisfies_a_key_rule(
        tmp_path: Path, roots: Callable[[str], TrustRoot]) -> None:
    """cert-manager signs with RSA-4096 and `--signature-digest-algorithm sha512`."""
    import base64

    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    from safedocker.policy.config import KeyEntry
    from safedocker.signatures.cosign import SIGNATURE_ANNOTATION, SIMPLE_SIGNING_MEDIA_TYPE
    from safedocker.signatures.simplesigning import make_payload
    from safedocker.trust.keys import load_public_key

    private = rsa.generate_private_key(public_exponent=65537, key_size=4096)
    pem = private.public_key().public_bytes(serialization.Encoding.PEM,
                                            serialization.PublicFormat.SubjectPublicKeyInfo)
    path = tmp_path / "cert-manager.pub"
    path.write_bytes(pem)
    entry = KeyEntry("cert-manager", load_public_key(pem, "cert-manager").fingerprint, path)
    payload = make_payload(IMAGE.name, DIGEST)
    signature = private.sign(payload, padding.PKCS1v15(), hashes.SHA512())
    layer = descriptor({SIGNATURE_ANNOTATION: base64.b64encode(signature).decode()},
                       SIMPLE_SIGNING_MEDIA_TYPE, payload)
    ok, why = judged(rule(keys=("cert-manager",)), material(DIGEST, layer), roots,
                     Config(keys={"cert-manager": entry}))
    assert ok, why
