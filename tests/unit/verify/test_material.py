"""Fetching signature material: sigstore bundles through OCI referrers."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from safedocker.oci.manifest import Descriptor, Manifest, Referrers
from safedocker.policy.model import Identity
from safedocker.reference import Digest
from safedocker.signatures.bundle import verify_bundle
from safedocker.trust.roots import parse_trust_root
from safedocker.verify.material import fetch_bundles
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
                  keep: Callable[[Descriptor], bool] | None = None) -> Referrers:
        assert digest == self.subject
        return Referrers(digest, tuple(d for d in self.descriptors if keep is None or keep(d)),
                         "api")

    def get_manifest(self, repository: str, reference: str | Digest, *,
                     accept: str = "", max_size: int = 0) -> Manifest:
        assert isinstance(reference, Digest)
        return Manifest.parse(self.manifests[reference], digest=reference)

    def get_blob(self, repository: str, blob: Digest | Descriptor, max_size: int) -> bytes:
        assert isinstance(blob, Descriptor)
        return self.blobs[blob.digest]


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
