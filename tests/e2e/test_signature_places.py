"""Issue 15 "must show": signatures where publishers keep them, end to end.

* cosign's OCI 1.1 mode: the `.sig` layers in an artifact (``artifactType``
  ``application/vnd.dev.cosign.artifact.sig.v1+json``) whose subject is the image, found
  through the referrers tag schema (distribution 2.8 has no referrers API);
* a signature repository (cosign's ``COSIGN_REPOSITORY``; Kyverno keeps its signatures
  in ``ghcr.io/kyverno/signatures``): ``signatures_repository`` in the rule;
* a remapped signed identity (registry.k8s.io signs another repository's name):
  ``signed_identity = { remap = … }``, plain and regexp.

Signatures are keyless `.sig` layers from tests/sigstore_world.py; each accepted image
runs, each refusal is 77 with nothing pulled, checked with docker itself.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING

import pytest

from safedocker.oci.client import RegistryClient
from safedocker.oci.media import OCI_INDEX
from safedocker.reference import Digest
from safedocker.signatures.cosign import SIGNATURE_ARTIFACT_TYPE
from tests.e2e.test_keyless import OCI_MANIFEST, Home, no_network, refused
from tests.sigstore_world import SigstoreWorld

if TYPE_CHECKING:
    from tests.world import Image, World

ROOT_NAME = "world-places"
ISSUER = "https://issuer.example"
DEV = "dev@example.com"
SPACE = "places"
UPSTREAM = "upstream.example/team"
Layer = tuple[dict[str, str], str, bytes]


@dataclass(frozen=True)
class Images:
    oci11: Image  # signature in a cosign OCI 1.1 referrer artifact, no .sig tag
    oci11_elsewhere: Image  # an OCI 1.1 artifact listed for it whose subject is another image
    stored_apart: Image  # signature in the signatures repository only
    mirrored: Image  # signature names UPSTREAM/mirrored:v1 (a remapped identity)
    regional: Image  # signature names us-west2-docker.pkg.dev/prod/images/places/regional:v1


class PlacesHome(Home):
    def rule(self, **fields_: str) -> None:
        """One rule for the namespace trusting DEV; ``fields_`` are raw TOML values."""
        self.config_dir.mkdir(parents=True, exist_ok=True)
        lines = ["[[policy]]", f'scope = "{self.world.registry}/{SPACE}/*"',
                 f'identities = [{{ issuer = "{ISSUER}", subject = "{DEV}" }}]',
                 'tlog = "required"', f'trust_root = "{ROOT_NAME}"']
        lines += [f"{key} = {value}" for key, value in fields_.items()]
        (self.config_dir / "config.toml").write_text("\n".join(lines) + "\n")


def _push_manifest(client: RegistryClient, repository: str, blobs: dict[str, bytes],
                   manifest: bytes, tag: str | None = None) -> Digest:
    for blob in blobs.values():
        client.push_blob(repository, blob)
    return client.push_manifest(repository, tag or Digest.of(manifest), manifest, OCI_MANIFEST)


def push_sig(client: RegistryClient, repository: str, digest: str, layer: Layer) -> None:
    """The cosign ``sha256-<hex>.sig`` manifest with one layer, in ``repository``."""
    annotations, media_type, blob = layer
    config = b"{}"
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": str(Digest.of(config)), "size": len(config)},
        "layers": [{"mediaType": media_type, "digest": str(Digest.of(blob)),
                    "size": len(blob), "annotations": annotations}],
    }).encode()
    _push_manifest(client, repository, {"c": config, "b": blob}, manifest,
                   Digest.parse(digest).tag_prefix + ".sig")


def attach_oci11(client: RegistryClient, image: Image, layer: Layer,
                 subject: str | None = None) -> None:
    """cosign --registry-referrers-mode=oci-1-1: the artifact and the tag-schema index."""
    repository = image.repo.split("/", 1)[1]
    top = client.get_manifest(repository, Digest.parse(image.digest))
    manifest, blobs = SigstoreWorld.cosign_referrer_manifest(
        [layer], subject or image.digest, len(top.raw), top.media_type)
    digest = _push_manifest(client, repository, blobs, manifest)
    index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {"mediaType": OCI_MANIFEST, "digest": str(digest), "size": len(manifest),
         "artifactType": SIGNATURE_ARTIFACT_TYPE}]}).encode()
    client.push_manifest(repository, Digest.parse(image.digest).tag_prefix, index, OCI_INDEX)


@pytest.fixture(scope="module")
def sigstore() -> SigstoreWorld:
    return SigstoreWorld()


@pytest.fixture(scope="module")
def home(world: World, sigstore: SigstoreWorld, tmp_path_factory: pytest.TempPathFactory
         ) -> PlacesHome:
    home = PlacesHome(world=world, home=tmp_path_factory.mktemp("sd-places"))
    root_file = home.home / "trusted_root.json"
    root_file.write_bytes(sigstore.trusted_root_json())
    home.ok("trust-root", "import", str(root_file), "--name", ROOT_NAME)
    return home


@pytest.fixture(scope="module")
def images(world: World, sigstore: SigstoreWorld) -> Images:
    pushed = {f.name: world.push_image(f"{SPACE}/{f.name.replace('_', '-')}")
              for f in fields(Images)}

    def layer(image: Image, reference: str | None = None) -> Layer:
        payload = sigstore.simple_signing(image.digest, reference or image.repo)
        return sigstore.cosign_layer(sigstore.issue(email=DEV, issuer=ISSUER), payload)

    with RegistryClient(world.registry) as client:
        attach_oci11(client, pushed["oci11"], layer(pushed["oci11"]))
        other = pushed["stored_apart"]
        attach_oci11(client, pushed["oci11_elsewhere"], layer(other), subject=other.digest)
        push_sig(client, f"{SPACE}/signatures", other.digest, layer(other))
        image = pushed["mirrored"]
        push_sig(client, image.repo.split("/", 1)[1], image.digest,
                 layer(image, f"{UPSTREAM}/mirrored:v1"))
        image = pushed["regional"]
        push_sig(client, image.repo.split("/", 1)[1], image.digest,
                 layer(image, f"us-west2-docker.pkg.dev/prod/images/{SPACE}/regional:v1"))
    return Images(**pushed)


def _runs(world: World, home: PlacesHome, image: Image, **env: str) -> None:
    ran = home("run", "--rm", "--network", "none", image.tagged, "echo", "hi", env=env)
    assert ran.exit_code == 0, (ran.stdout, ran.stderr)
    assert ran.stdout.strip() == "hi"
    assert world.has_image(image.pinned)


def _refused_and_not_pulled(world: World, home: PlacesHome, image: Image, *why: str) -> None:
    result = home("run", "--rm", "--network", "none", image.tagged, "echo", "hi")
    refused(result, *why)
    assert not world.has_image(image.pinned) and not world.has_image(image.tagged)


def test_oci11_referrer_signature_is_found_verified_and_run_online_and_offline(
        world: World, home: PlacesHome, images: Images) -> None:
    home.rule()
    image = images.oci11
    try:
        _runs(world, home, image)
        with no_network(world) as env:
            _runs(world, home, image, SAFE_DOCKER_OFFLINE="1", **env)
    finally:
        world.remove_images(image.tagged, image.pinned)


def test_oci11_referrer_naming_another_subject_is_refused(
        world: World, home: PlacesHome, images: Images) -> None:
    home.rule()
    _refused_and_not_pulled(world, home, images.oci11_elsewhere,
                            f"not {images.oci11_elsewhere.digest}")


def test_signatures_repository_is_where_the_rule_reads_signatures(
        world: World, home: PlacesHome, images: Images) -> None:
    image = images.stored_apart
    home.rule()
    _refused_and_not_pulled(world, home, image, "no signature found")
    home.rule(signatures_repository=f'"{world.registry}/{SPACE}/signatures"')
    try:
        _runs(world, home, image)
        with no_network(world) as env:  # cached under the signatures repository
            _runs(world, home, image, SAFE_DOCKER_OFFLINE="1", **env)
        listed = home.ok("policy", "list")
        assert f"signatures in {world.registry}/{SPACE}/signatures" in listed.stdout
    finally:
        world.remove_images(image.tagged, image.pinned)


def test_a_remapped_identity_verifies_with_the_reference_check_on(
        world: World, home: PlacesHome, images: Images) -> None:
    image = images.mirrored
    home.rule(reference='"exact"')
    _refused_and_not_pulled(world, home, image, f"signature is for {UPSTREAM}/mirrored")
    home.rule(reference='"exact"', signed_identity=(
        f'{{ remap = {{ prefix = "{world.registry}/{SPACE}", signed_prefix = "{UPSTREAM}" }} }}'))
    try:
        _runs(world, home, image)
    finally:
        world.remove_images(image.tagged, image.pinned)


def test_a_regexp_remap_accepts_a_regional_backend_name_as_registry_k8s_io_needs(
        world: World, home: PlacesHome, images: Images) -> None:
    image = images.regional
    regexp = r"^[a-z0-9-]+-docker\.pkg\.dev/prod/images$"
    home.rule(signed_identity=(f"{{ remap = {{ prefix = \"{world.registry}\", "
                               f"signed_prefix_regexp = '{regexp}' }} }}"))
    try:
        _runs(world, home, image)
    finally:
        world.remove_images(image.tagged, image.pinned)
    home.rule(signed_identity=(f"{{ remap = {{ prefix = \"{world.registry}\", "
                               "signed_prefix_regexp = '^eu-docker\\.pkg\\.dev/prod/images$' } }"))
    _refused_and_not_pulled(world, home, image, "signature is for us-west2-docker.pkg.dev")
