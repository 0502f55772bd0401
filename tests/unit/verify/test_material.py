"""Fetching signature material: sigstore bundles and cosign OCI 1.1 signature artifacts
through OCI referrers."""

from __future__ import annotations

import dataclasses
import time as clock
from typing import TYPE_CHECKING

import pytest

from safedocker.oci.manifest import Descriptor, Manifest, Referrers
from safedocker.policy.model import Identity
from safedocker.reference import Digest
from safedocker.signatures.bundle import verify_bundle
from safedocker.signatures.cosign import SIGNATURE_ARTIFACT_TYPE
from safedocker.trust.roots import parse_trust_root
from safedocker.verify.claims import ClaimFormat
from safedocker.verify.material import (
    SignatureMaterial,
    clamp_material_time,
    fetch_bundle_material,
    fetch_bundles,
)
from tests.sigstore_world import BUNDLE_V03, SigstoreWorld

if TYPE_CHECKING:
    from collections.abc import Callable

    from safedocker.oci.client import RegistryReader
    from safedocker.trust.roots import TrustRoot
    from tests.sigstore_world import Leaf


DIGEST = Digest.of(b"bundle world manifest")
ALICE = Identity(issuer="https://issuer.example", subject="dev@example.com")


@pytest.fixture(scope="module")
def world() -> SigstoreWorld:
    return SigstoreWorld()


@pytest.fixture(scope="module")
def root(world: SigstoreWorld) -> TrustRoot:
    return parse_trust_root(world.trusted_root_json(), name="world")


@pytest.fixture(scope="module")
def leaf(world: SigstoreWorld) -> Leaf:
    return world.issue()


class FakeClient:
    """Serves referrer manifests and blobs as RegistryClient does (bytes hashed)."""

    def __init__(self, subject: Digest) -> None:
        self.subject = subject
        self.manifests: dict[Digest, bytes] = {}
        self.blobs: dict[Digest, bytes] = {}
        self.descriptors: list[Descriptor] = []

    def attach(self, bundle: bytes, subject: Digest | None = None) -> Digest:
        target = str(subject or self.subject)
        manifest, config = SigstoreWorld.referrer_manifest(bundle, target, 100)
        digest = Digest.of(manifest)
        self.manifests[digest] = manifest
        self.blobs[Digest.of(bundle)] = bundle
        self.blobs[Digest.of(config)] = config
        self.descriptors.append(Descriptor("application/vnd.oci.image.manifest.v1+json", digest,
                                           len(manifest), artifact_type=BUNDLE_V03))
        return digest

    def referrers(self, repository: str, digest: Digest, artifact_type: str | None = None, *,
                  keep: Callable[[Descriptor], bool] | None = None,
                  api: bool = True) -> Referrers:
        assert digest == self.subject
        return Referrers(digest, tuple(d for d in self.descriptors if keep is None or keep(d)),
                         "api")

    def get_manifest(self, repository: str, reference: str | Digest, *,
                     accept: str = "", max_size: int = 0) -> Manifest:
        assert isinstance(reference, Digest)
        return Manifest.parse(self.manifests[reference], digest=reference)

    def get_blob(self, repository: str, blob: Digest | Descriptor, max_size: int) -> bytes:
        return self.blobs[blob.digest if isinstance(blob, Descriptor) else blob]


_check: RegistryReader = FakeClient(DIGEST)  # mypy: the fake reads like a RegistryClient


def test_fetch_bundles_returns_raw_bytes_and_flags_wrong_subjects(
        world: SigstoreWorld, root: TrustRoot, leaf: Leaf,
) -> None:
    client = FakeClient(DIGEST)
    raw = world.bundle(leaf, str(DIGEST))
    client.attach(raw)
    client.attach(world.bundle(leaf, str(DIGEST)), subject=Digest.of(b"elsewhere"))
    client.descriptors.append(Descriptor("application/vnd.oci.image.manifest.v1+json",
                                         Digest.of(b"sbom"), 10, artifact_type="text/spdx"))
    good, wrong = fetch_bundles(client, "world/image", DIGEST)  # the SBOM is skipped
    assert good.raw == raw and good.source == "api" and not good.error
    assert verify_bundle(good.raw, DIGEST, identities=[ALICE], trust_root=root).verified
    assert wrong.raw == b"" and "subject" in wrong.error


def _attach_signature_referrer(client: FakeClient, world: SigstoreWorld, leaf: Leaf,
                               subject: Digest) -> Digest:
    layer = world.cosign_layer(leaf, world.simple_signing(str(subject)))
    manifest, blobs = world.cosign_referrer_manifest([layer], str(subject), 100)
    digest = Digest.of(manifest)
    client.manifests[digest] = manifest
    client.blobs.update({Digest.parse(k): v for k, v in blobs.items()})
    client.descriptors.append(Descriptor("application/vnd.oci.image.manifest.v1+json", digest,
                                         len(manifest), artifact_type=SIGNATURE_ARTIFACT_TYPE))
    return digest


class CountingClient(FakeClient):
    def __init__(self, subject: Digest) -> None:
        super().__init__(subject)
        self.listings = 0

    def referrers(self, repository: str, digest: Digest, artifact_type: str | None = None, *,
                  keep: Callable[[Descriptor], bool] | None = None,
                  api: bool = True) -> Referrers:
        self.listings += 1
        return super().referrers(repository, digest, artifact_type, keep=keep, api=api)


def test_oci11_signature_referrers_come_from_the_same_listing_as_bundles(
        world: SigstoreWorld, leaf: Leaf) -> None:
    client = CountingClient(DIGEST)
    bundle = world.bundle(leaf, str(DIGEST))
    client.attach(bundle)
    _attach_signature_referrer(client, world, leaf, DIGEST)
    material = fetch_bundle_material(client, "world/image", SignatureMaterial(DIGEST, None))
    assert client.listings == 1
    assert material.bundles == (bundle,) and len(material.sig_referrers) == 1
    signatures, skipped = material.signatures()
    assert [fmt for fmt, _ in signatures] == [ClaimFormat.REFERRER] and not skipped
    assert not material.empty


def test_signature_referrer_material_round_trips_through_the_cache_bytes(
        world: SigstoreWorld, leaf: Leaf) -> None:
    client = FakeClient(DIGEST)
    _attach_signature_referrer(client, world, leaf, DIGEST)
    material = fetch_bundle_material(client, "world/image", SignatureMaterial(DIGEST, None))
    again = SignatureMaterial.from_bytes(material.to_bytes())
    assert again == material
    assert [fmt for fmt, _ in again.signatures()[0]] == [ClaimFormat.REFERRER]


def test_signature_referrer_naming_another_subject_is_reported_not_used(
        world: SigstoreWorld, leaf: Leaf) -> None:
    client = FakeClient(DIGEST)
    _attach_signature_referrer(client, world, leaf, Digest.of(b"elsewhere"))
    material = fetch_bundle_material(client, "world/image", SignatureMaterial(DIGEST, None))
    assert material.sig_referrers == ()
    assert any(f"not {DIGEST}" in e for e in material.bundle_errors), material.bundle_errors


def test_clamping_the_date_keeps_every_field_but_the_date() -> None:
    # A2-7: the clamp rebuilt the material field by field and lost `sig_referrers`.
    ahead = SignatureMaterial(Digest.of(b"image"), b"{}", {"sha256:x": b"blob"},
                              clock.time() + 120, (b"bundle",), ("why",), True,
                              (b'{"artifactType":"x"}',))
    now = clock.time()
    clamped = SignatureMaterial.from_bytes(clamp_material_time(ahead.to_bytes(), now))
    assert clamped.fetched_at == now
    assert clamped == dataclasses.replace(ahead, fetched_at=now)
