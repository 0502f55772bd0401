"""Adversarial, against the real dockerd and registry: a signature format must not skip a
rule's checks (issue 11 item 6), and a threshold counts listed signers (attack N7).

Each refusal is exit 77 with nothing pulled, checked with docker itself; each has a
control case that the same rule accepts, so the refusal is the rule's doing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pytest

from safedocker.oci.client import RegistryClient
from tests.e2e.test_keyless import (
    OCI_MANIFEST,
    SIGN,
    Home,
    attach_bundles,
    refused,
)
from tests.sigstore_world import SigstoreWorld
from tests.world import Image

if TYPE_CHECKING:
    from tests.world import World

ROOT_NAME = "world-adversarial"
ISSUER = "https://issuer.example"
DEV = "dev@example.com"
SPACE = "adv"


@dataclass(frozen=True)
class Images:
    unannotated: Image  # bundle without env=prod
    annotated: Image  # bundle with env=prod (control)
    app: Image  # bundle whose statement names SPACE/app:v1
    other: Image  # the same manifest pushed as SPACE/other:v1, with the same bundle
    message: Image  # message-signature bundle (names nothing)
    ci_only: Image  # .sig layers by ci-build@ and ci-nightly@ only
    ci_and_security: Image  # .sig layers by ci-build@ and security@ (control)


class AdversarialHome(Home):
    def rule(self, *lines: str, identities: str = f'{{ issuer = "{ISSUER}", subject = "{DEV}" }}'
             ) -> None:
        self.config_dir.mkdir(parents=True, exist_ok=True)
        (self.config_dir / "config.toml").write_text("\n".join([
            "[[policy]]", f'scope = "{self.world.registry}/{SPACE}/*"',
            f"identities = [{identities}]", 'tlog = "required"', f'trust_root = "{ROOT_NAME}"',
            *lines]) + "\n")


def _push_twice(world: World, first: str, second: str) -> tuple[Image, Image]:
    """One image pushed under two repositories: the same manifest, the same digest."""
    images = []
    world.make_local_image(f"{world.registry}/{first}:v1")
    world.run_docker("tag", f"{world.registry}/{first}:v1", f"{world.registry}/{second}:v1")
    for name in (first, second):
        repo = f"{world.registry}/{name}"
        out = world.run_docker("push", f"{repo}:v1").stdout.decode()
        digest = next(word for line in out.splitlines() if "digest:" in line
                      for word in line.split() if word.startswith("sha256:"))
        images.append(Image(repo=repo, tag="v1", digest=digest))
    world.run_docker("rmi", *(f"{image.repo}:v1" for image in images))
    assert images[0].digest == images[1].digest
    return images[0], images[1]


@pytest.fixture(scope="module")
def sigstore() -> SigstoreWorld:
    return SigstoreWorld()


@pytest.fixture(scope="module")
def home(world: World, sigstore: SigstoreWorld, tmp_path_factory: pytest.TempPathFactory
         ) -> AdversarialHome:
    home = AdversarialHome(world=world, home=tmp_path_factory.mktemp("sd-adversarial"))
    root_file = home.home / "trusted_root.json"
    root_file.write_bytes(sigstore.trusted_root_json())
    home.ok("trust-root", "import", str(root_file), "--name", ROOT_NAME)
    return home


@pytest.fixture(scope="module")
def images(world: World, sigstore: SigstoreWorld) -> Images:
    app, other = _push_twice(world, f"{SPACE}/app", f"{SPACE}/other")
    pushed = {name: world.push_image(f"{SPACE}/{name.replace('_', '-')}")
              for name in ("unannotated", "annotated", "message", "ci_only",
                           "ci_and_security")}

    def bundle(image: Image, **kw: object) -> bytes:
        return sigstore.bundle(sigstore.issue(email=DEV, issuer=ISSUER), image.digest, **kw)  # type: ignore[arg-type]

    def layers(image: Image, *emails: str) -> None:
        manifest_layers = [sigstore.cosign_layer(
            sigstore.issue(email=email, issuer=ISSUER),
            sigstore.simple_signing(image.digest, image.repo)) for email in emails]
        _sig_manifest(client, image, manifest_layers)

    with RegistryClient(world.registry) as client:
        attach_bundles(client, pushed["unannotated"], (bundle(pushed["unannotated"]), SIGN))
        attach_bundles(client, pushed["annotated"],
                       (bundle(pushed["annotated"], annotations={"env": "prod"}), SIGN))
        for_app = bundle(app, name=f"{app.repo}:v1")
        attach_bundles(client, app, (for_app, SIGN))
        attach_bundles(client, other, (for_app, SIGN))
        attach_bundles(client, pushed["message"], (bundle(pushed["message"], message=True),
                                                   SIGN))
        layers(pushed["ci_only"], "ci-build@example.com", "ci-nightly@example.com")
        layers(pushed["ci_and_security"], "ci-build@example.com", "security@example.com")
    return Images(app=app, other=other, **pushed)


def _sig_manifest(client: RegistryClient, image: Image,
                  layers: list[tuple[dict[str, str], str, bytes]]) -> None:
    from safedocker.reference import Digest

    repository = image.repo.split("/", 1)[1]
    config = b"{}"
    manifest = {
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": str(client.push_blob(repository, config)), "size": len(config)},
        "layers": [{"mediaType": media, "digest": str(client.push_blob(repository, blob)),
                    "size": len(blob), "annotations": annotations}
                   for annotations, media, blob in layers],
    }
    client.push_manifest(repository, Digest.parse(image.digest).tag_prefix + ".sig",
                         json.dumps(manifest).encode(), OCI_MANIFEST)


def _refused_nothing_pulled(world: World, home: AdversarialHome, image: Image, *why: str) -> None:
    result = home("pull", image.tagged)
    refused(result, *why)
    assert not world.has_image(image.pinned) and not world.has_image(image.tagged)


def _accepted(world: World, home: AdversarialHome, image: Image) -> None:
    try:
        ran = home("run", "--rm", "--network", "none", image.tagged, "echo", "ok")
        assert ran.exit_code == 0 and ran.stdout.strip() == "ok", (ran.stdout, ran.stderr)
    finally:
        world.remove_images(image.tagged, image.pinned)


def test_bundle_without_the_required_annotation_is_refused_and_nothing_is_pulled(
        world: World, home: AdversarialHome, images: Images) -> None:
    home.rule('annotations = { env = "prod" }')
    _refused_nothing_pulled(world, home, images.unannotated,
                            "lacks required annotation env=prod")
    _accepted(world, home, images.annotated)


def test_bundle_made_for_another_repository_is_refused_under_exact(
        world: World, home: AdversarialHome, images: Images) -> None:
    home.rule('reference = "exact"')
    _refused_nothing_pulled(world, home, images.other, f"signature is for {images.app.repo}")
    _accepted(world, home, images.app)


def test_message_signature_bundle_cannot_meet_reference_exact(
        world: World, home: AdversarialHome, images: Images) -> None:
    home.rule('reference = "exact"')
    _refused_nothing_pulled(world, home, images.message,
                            "cannot carry a signed docker-reference")


def test_two_subjects_under_one_identity_regexp_do_not_meet_threshold_two(
        world: World, home: AdversarialHome, images: Images) -> None:
    identities = (f'{{ issuer = "{ISSUER}", subject_regexp = "^ci-[a-z]+@example\\\\.com$" }}, '
                  f'{{ issuer = "{ISSUER}", subject = "security@example.com" }}')
    home.rule("threshold = 2", identities=identities)
    _refused_nothing_pulled(world, home, images.ci_only,
                            "1 trusted signer(s), policy requires 2")
    _accepted(world, home, images.ci_and_security)
