"""Each catalogue entry's rule, as ``policy catalog add`` writes it, accepts a signature
shaped like its publisher's and refuses another signer.

The rules are the tables :func:`rule_tables` makes, written to a real user config and read
back with ``load_config`` (so the entry's scope must also cover the image). Keyless
signatures come from the private Sigstore in tests/sigstore_world.py with the publisher's
exact issuer and subject (and workflow claims where the entry pins them); key entries are
signed with a generated key of the publisher's kind trusted under the catalogue's key name
(the shipped PEMs are checked to load and match their pins in
tests/unit/policy/test_catalog.py). Formats follow the publishers: cosign `.sig` layers,
cosign v3 bundles (Envoy Gateway, cosign's own releases), an OCI 1.1 referrer artifact
(Docker Hardened Images), RSA-4096 over SHA-512 (cert-manager).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pytest
import tomli_w
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from safedocker.policy.catalog import Kind, load, rule_tables
from safedocker.policy.config import load_config
from safedocker.policy.paths import Paths
from safedocker.reference import Digest, parse_reference
from safedocker.signatures.cosign import SIGNATURE_ANNOTATION, SIMPLE_SIGNING_MEDIA_TYPE
from safedocker.signatures.simplesigning import make_payload
from safedocker.trust.keys import fingerprint_of
from safedocker.trust.roots import parse_trust_root
from safedocker.verify.material import SignatureMaterial
from safedocker.verify.rules import evaluate_rule
from tests.sigstore_world import SigstoreWorld

if TYPE_CHECKING:
    from pathlib import Path

    from safedocker.policy.config import Config
    from safedocker.policy.model import Rule
    from tests.unit.verify.test_rules_keyless import Layer

from tests.unit.verify.test_rules_keyless import descriptor, material

GH = "https://token.actions.githubusercontent.com"
GOOGLE = "https://accounts.google.com"
REPO_CLAIM = "1.3.6.1.4.1.57264.1.12"  # Fulcio's source repository URI
DIGEST = Digest.of(b"a publisher's image manifest")


@dataclass(frozen=True)
class Signer:
    subject: str
    issuer: str
    claims: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Shape:
    """A publisher's signing as the world sees it: the image, its real signer, where the
    signature names it (the image itself and any remapped name), signers to refuse."""

    image: str
    signer: Signer | None  # None: a key entry
    others: tuple[Signer, ...] = ()
    signed_names: tuple[str, ...] = ()
    bundle: bool = False  # also cosign v3's Sigstore bundle (the only format refused in)


def gh(repo: str, workflow: str, ref: str, claim: str | None = None) -> Signer:
    claims = {REPO_CLAIM: f"https://github.com/{claim}"} if claim else {}
    return Signer(f"https://github.com/{repo}/.github/workflows/{workflow}@{ref}", GH, claims)


CG = "https://github.com/chainguard-images/images/.github/workflows/release.yaml@refs/heads/main"
SHAPES = {
    "chainguard": Shape(
        "cgr.dev/chainguard/static", Signer(CG, GH),
        (Signer(CG.replace("refs/heads/main", "refs/heads/pr-42"), GH),
         Signer(CG, GOOGLE),
         gh("attacker/images", "release.yaml", "refs/heads/main"))),
    "sigstore-cosign": Shape(
        "ghcr.io/sigstore/cosign/cosign", Signer("keyless@projectsigstore.iam.gserviceaccount.com",
                                                 GOOGLE),
        (Signer("keyless@distroless.iam.gserviceaccount.com", GOOGLE),
         Signer("keyless@projectsigstore.iam.gserviceaccount.com", GH)),
        signed_names=("gcr.io/projectsigstore/cosign",), bundle=True),
    "kubernetes": Shape(
        "registry.k8s.io/kube-apiserver",
        Signer("krel-trust@k8s-releng-prod.iam.gserviceaccount.com", GOOGLE),
        (Signer("krel-staging@k8s-releng-prod.iam.gserviceaccount.com", GOOGLE),),
        signed_names=("us-west2-docker.pkg.dev/k8s-artifacts-prod/images/kube-apiserver",
                      "europe-west1-docker.pkg.dev/k8s-artifacts-prod/images/kube-apiserver")),
    "distroless": Shape(
        "gcr.io/distroless/static-debian12",
        Signer("keyless@distroless.iam.gserviceaccount.com", GOOGLE),
        (Signer("keyless@projectsigstore.iam.gserviceaccount.com", GOOGLE),)),
    "kyverno": Shape(
        "ghcr.io/kyverno/kyverno", gh("kyverno/kyverno", "release.yaml", "refs/tags/v1.11.2"),
        (gh("kyverno/kyverno", "helm-release.yaml", "refs/tags/v1.11.2"),
         gh("kyverno/kyverno", "release.yaml", "refs/heads/main"))),
    "argo-cd": Shape(
        "quay.io/argoproj/argocd",
        gh("argoproj/argo-cd", "image-reuse.yaml", "refs/tags/v2.9.3", claim="argoproj/argo-cd"),
        (gh("argoproj/argo-cd", "image-reuse.yaml", "refs/tags/v2.9.3", claim="evil/argo-cd"),
         gh("argoproj/argo-cd", "image-reuse.yaml", "refs/heads/master",
            claim="argoproj/argo-cd"))),
    "flux": Shape(
        "ghcr.io/fluxcd/source-controller",
        gh("fluxcd/source-controller", "release.yml", "refs/tags/v1.2.0"),
        (gh("fluxcdx/source-controller", "release.yml", "refs/tags/v1.2.0"),
         Signer("https://github.com/fluxcd/source-controller/.github/workflows/release.yml"
                "@refs/tags/v1.2.0", "https://gitlab.com"))),
    "cilium": Shape(
        "quay.io/cilium/cilium",
        gh("cilium/cilium", "build-images-releases.yaml", "refs/tags/v1.15.0",
           claim="cilium/cilium"),
        (gh("cilium/cilium", "build-images-ci.yaml", "refs/heads/main", claim="cilium/cilium"),
         gh("cilium/cilium", "build-images-releases.yaml", "refs/tags/v1.15.0",
            claim="attacker/cilium"))),
    "envoy-gateway": Shape(
        "docker.io/envoyproxy/gateway",
        gh("envoyproxy/gateway", "release.yaml", "refs/tags/v1.3.0"),
        (gh("envoyproxy/gateway", "build_and_test.yaml", "refs/heads/main"),), bundle=True),
    "docker-hardened-images": Shape(
        "dhi.io/python", None, signed_names=("registry.scout.docker.com/dhi/python",)),
    "cert-manager": Shape("quay.io/jetstack/cert-manager-controller", None),
}


def test_every_signing_publisher_has_a_shape() -> None:
    signing = {e.name for e in load().entries if e.kind is Kind.SIGNED}
    assert signing == set(SHAPES)


@pytest.fixture(scope="module")
def world() -> SigstoreWorld:
    return SigstoreWorld()


def _configured(tmp_path: Path, name: str, pems: dict[str, bytes]) -> tuple[Rule, Config]:
    """The entry's rule as written to and read back from a user config; ``pems`` stand in
    for the publisher's keys under the catalogue's key names."""
    entry = load().get(name)
    where = Paths(config_dir=tmp_path / "c", cache_dir=tmp_path / "k", state_dir=tmp_path / "s",
                  system_config_dir=tmp_path / "sys")
    where.user_keys_dir.mkdir(parents=True)
    for key_name, pem in pems.items():
        (where.user_keys_dir / f"{key_name}.pub").write_bytes(pem)
    document = {"keys": {k: {"fingerprint": fingerprint_of(p)} for k, p in pems.items()},
                "policy": [{"scope": s, **t} for s, t in zip(entry.scopes, rule_tables(entry),
                                                             strict=True)]}
    where.user_config_file.write_text(tomli_w.dumps(document))
    config = load_config(where)
    [rule] = config.policy.decide(parse_reference(SHAPES[name].image)).rules
    return rule, config


def _judge(world: SigstoreWorld, rule: Rule, config: Config, image: str,
           found: SignatureMaterial) -> tuple[bool, tuple[str, ...]]:
    root = parse_trust_root(world.trusted_root_json(), name="default")
    outcome = evaluate_rule(rule, parse_reference(image), [(DIGEST, found)], config,
                            lambda name: root)
    return outcome.satisfied, outcome.reasons


def _keyless(world: SigstoreWorld, signer: Signer, signed_name: str,
             bundle: bool) -> SignatureMaterial:
    email = signer.subject if "://" not in signer.subject else None
    leaf = world.issue(email=email, uri=None if email else signer.subject,
                       issuer=signer.issuer, claims=signer.claims or None)
    if bundle:
        return material(DIGEST, bundles=(world.bundle(leaf, str(DIGEST)),))
    layer: Layer = descriptor(*world.cosign_layer(leaf, world.simple_signing(str(DIGEST),
                                                                           signed_name)))
    return material(DIGEST, layer)


KEYLESS = [n for n, s in SHAPES.items() if s.signer is not None]


@pytest.mark.parametrize("name", KEYLESS)
def test_keyless_entry_accepts_the_publishers_signer(world: SigstoreWorld, tmp_path: Path,
                                                    name: str) -> None:
    shape = SHAPES[name]
    assert shape.signer is not None
    rule, config = _configured(tmp_path, name, {})
    for signed_name in (parse_reference(shape.image).name, *shape.signed_names):
        ok, why = _judge(world, rule, config, shape.image,
                         _keyless(world, shape.signer, signed_name, False))
        assert ok, (signed_name, why)
    if shape.bundle:
        ok, why = _judge(world, rule, config, shape.image,
                         _keyless(world, shape.signer, shape.image, True))
        assert ok, why


@pytest.mark.parametrize(("name", "other"), [(n, o) for n in KEYLESS for o in SHAPES[n].others])
def test_keyless_entry_refuses_another_signer(world: SigstoreWorld, tmp_path: Path, name: str,
                                              other: Signer) -> None:
    shape = SHAPES[name]
    rule, config = _configured(tmp_path, name, {})
    ok, why = _judge(world, rule, config, shape.image,
                     _keyless(world, other, parse_reference(shape.image).name, shape.bundle))
    assert not ok
    assert any("matches no trusted identity" in r or "claim" in r for r in why), why


@pytest.mark.parametrize("name", KEYLESS)
def test_keyless_entry_refuses_its_signer_naming_another_image(
        world: SigstoreWorld, tmp_path: Path, name: str) -> None:
    shape = SHAPES[name]
    assert shape.signer is not None
    rule, config = _configured(tmp_path, name, {})
    ok, why = _judge(world, rule, config, shape.image,
                     _keyless(world, shape.signer, "ghcr.io/attacker/backdoor", False))
    assert not ok and any("signature is for ghcr.io/attacker/backdoor" in r for r in why), why


def _ec_pem(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)


def _key_layer(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey, signed_name: str) -> Layer:
    payload = make_payload(signed_name, DIGEST)
    if isinstance(key, rsa.RSAPrivateKey):  # cert-manager: --signature-digest-algorithm sha512
        signature = key.sign(payload, padding.PKCS1v15(), hashes.SHA512())
    else:
        signature = key.sign(payload, ec.ECDSA(hashes.SHA256()))
    return descriptor({SIGNATURE_ANNOTATION: base64.b64encode(signature).decode()},
                      SIMPLE_SIGNING_MEDIA_TYPE, payload)


def _dhi_referrer(world: SigstoreWorld, layer: Layer) -> SignatureMaterial:
    """cosign --experimental-oci11: the .sig manifest as a referrer of the image."""
    annotations = {k: str(v) for k, v in (layer[0].get("annotations") or {}).items()}  # type: ignore[attr-defined]
    manifest, blobs = world.cosign_referrer_manifest(
        [(annotations, str(layer[0]["mediaType"]), layer[1])], str(DIGEST), 1234)
    return SignatureMaterial(DIGEST, None, blobs, sig_referrers=(manifest,),
                             bundles_fetched=True)


@pytest.fixture(scope="module")
def rsa_keys() -> tuple[rsa.RSAPrivateKey, rsa.RSAPrivateKey]:
    return (rsa.generate_private_key(public_exponent=65537, key_size=4096),
            rsa.generate_private_key(public_exponent=65537, key_size=2048))


@pytest.mark.parametrize("name", ["docker-hardened-images", "cert-manager"])
def test_key_entry_accepts_its_key_and_refuses_another(
        world: SigstoreWorld, tmp_path: Path, name: str,
        rsa_keys: tuple[rsa.RSAPrivateKey, rsa.RSAPrivateKey]) -> None:
    shape = SHAPES[name]
    entry = load().get(name)
    [key_name] = [k.name for k in entry.keys]
    mine: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
    stranger: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
    if name == "cert-manager":
        mine, stranger = rsa_keys
    else:
        mine, stranger = ec.generate_private_key(ec.SECP256R1()), \
            ec.generate_private_key(ec.SECP256R1())
    rule, config = _configured(tmp_path, name, {key_name: _ec_pem(mine)})
    assert rule.keys == (key_name,)

    def shaped(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey,
               signed_name: str) -> SignatureMaterial:
        layer = _key_layer(key, signed_name)
        return _dhi_referrer(world, layer) if entry.storage == "oci-referrers" else \
            material(DIGEST, layer)

    for signed_name in (parse_reference(shape.image).name, *shape.signed_names):
        ok, why = _judge(world, rule, config, shape.image, shaped(mine, signed_name))
        assert ok, (signed_name, why)
    ok, why = _judge(world, rule, config, shape.image,
                     shaped(stranger, parse_reference(shape.image).name))
    assert not ok, why
    ok, why = _judge(world, rule, config, shape.image, shaped(mine, "dhi.io/other"))
    assert not ok, why


def test_kyverno_rule_reads_signatures_from_the_publishers_signature_repository(
        tmp_path: Path) -> None:
    rule, _ = _configured(tmp_path, "kyverno", {})
    assert rule.signatures_repository == "ghcr.io/kyverno/signatures"
