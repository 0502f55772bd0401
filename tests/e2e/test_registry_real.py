"""The registry client against the real docker-registry (distribution 2.8) on loopback."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

from safedocker.oci.client import ManifestNotFound, RegistryClient
from safedocker.oci.media import (
    CONFIG_MAX,
    DOCKER_MANIFEST,
    OCI_INDEX,
    OCI_MANIFEST,
    SIGNATURE_LAYER_MAX,
)
from safedocker.reference import Digest

if TYPE_CHECKING:
    from tests.world import Image, World


@pytest.fixture(scope="module")
def image(world: World) -> Image:
    return world.push_image("registry-e2e/app", "v1")


def _repository(image: Image) -> str:
    return image.repo.split("/", 1)[1]


def test_tag_resolves_to_the_digest_docker_push_reported(world: World, image: Image) -> None:
    with RegistryClient(world.registry) as client:
        manifest = client.get_manifest(_repository(image), image.tag)
        assert str(manifest.digest) == image.digest
        assert manifest.media_type == DOCKER_MANIFEST  # dockerd 20.10 pushes schema 2
        assert client.requests_made == 1  # no ping, no HEAD: one GET
        resolved = client.resolve(_repository(image), image.tag)
        assert str(resolved.digest) == image.digest and resolved.index is None


def test_config_blob_is_fetched_and_hash_checked(world: World, image: Image) -> None:
    with RegistryClient(world.registry) as client:
        manifest = client.get_manifest(_repository(image), Digest.parse(image.digest))
        assert manifest.config is not None
        config = json.loads(client.get_blob(_repository(image), manifest.config, CONFIG_MAX))
        assert config["os"] == "linux"
        assert client.requests_made == 2


def test_push_a_signature_manifest_under_the_sig_tag_and_read_it_back(
    world: World, image: Image
) -> None:
    repository = _repository(image)
    subject = Digest.parse(image.digest)
    payload = json.dumps({"critical": {"image": {"docker-manifest-digest": image.digest}}})
    with RegistryClient(world.registry) as client:
        layer = client.push_blob(repository, payload.encode())
        config = client.push_blob(repository, b"{}")
        doc = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                       "digest": str(config), "size": 2},
            "layers": [{"mediaType": "application/vnd.dev.cosign.simplesigning.v1+json",
                        "digest": str(layer), "size": len(payload),
                        "annotations": {"dev.cosignproject.cosign/signature": "MEUC"}}],
        }
        raw = json.dumps(doc).encode()
        tag = f"{subject.tag_prefix}.sig"
        pushed = client.push_manifest(repository, tag, raw, OCI_MANIFEST)
        back = client.get_manifest(repository, tag)
        assert back.digest == pushed == Digest.of(raw)
        assert back.layers[0].annotations["dev.cosignproject.cosign/signature"] == "MEUC"
        assert client.get_blob(repository, back.layers[0], SIGNATURE_LAYER_MAX) == (
            payload.encode()
        )
    # What a cold key-signed verification needs: tag → digest, .sig manifest, signature layer.
    with RegistryClient(world.registry) as cold:
        resolved = cold.get_manifest(repository, image.tag)
        sig = cold.get_manifest(repository, f"{resolved.digest.tag_prefix}.sig")
        cold.get_blob(repository, sig.layers[0], SIGNATURE_LAYER_MAX)
        assert cold.requests_made == 3
    with RegistryClient(world.registry) as client, pytest.raises(ManifestNotFound):
        client.get_manifest(repository, f"{Digest.of(b'unsigned').tag_prefix}.sig")


def test_referrers_fall_back_to_the_tag_schema_on_distribution_2_8(
    world: World, image: Image
) -> None:
    repository = _repository(image)
    subject = Digest.parse(image.digest)
    with RegistryClient(world.registry) as client:
        none_yet = client.referrers(repository, subject)
        assert none_yet.source == "tag" and none_yet.descriptors == ()
        artifact = client.push_manifest(
            repository, "artifact", json.dumps({
                "schemaVersion": 2, "mediaType": OCI_MANIFEST,
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                           "digest": str(client.push_blob(repository, b"{}")), "size": 2},
                "layers": [],
            }).encode(), OCI_MANIFEST,
        )
        index = json.dumps({
            "schemaVersion": 2, "mediaType": OCI_INDEX,
            "manifests": [{"mediaType": OCI_MANIFEST, "digest": str(artifact), "size": 1,
                           "artifactType": "application/vnd.example+json"}],
        }).encode()
        client.push_manifest(repository, subject.tag_prefix, index, OCI_INDEX)
        found = client.referrers(repository, subject, "application/vnd.example+json")
        assert found.source == "tag"
        assert [d.digest for d in found.descriptors] == [artifact]
