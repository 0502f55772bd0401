"""What an early-stopping signature lookup must still find before it refuses: the
referrers the registry holds wherever it holds them, whatever another verification of
the same command (another thread, the same registry client) learned meanwhile, and
whatever the cache's memos say.

Reuses tests/unit/verify/test_lookup_plan.py's fake registry over real HTTP and its
private Sigstore.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

from safedocker.cache.memos import Memo
from safedocker.oci.media import OCI_INDEX, OCI_MANIFEST
from safedocker.signatures.bundle import MAX_BUNDLES
from safedocker.verify import verifier as verifier_module
from safedocker.verify.material import list_signature_referrers
from tests.sigstore_world import BUNDLE_V03
from tests.unit.oci.test_client import REPO, FakeRegistry, Reply, serve
from tests.unit.verify.test_lookup_plan import DEV, Signed

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from safedocker.oci.client import RegistryClient
    from safedocker.oci.manifest import Referrers
    from safedocker.reference import Digest
    from safedocker.verify.verdict import Verdict


@pytest.fixture(autouse=True)
def _no_docker_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "docker-config").mkdir()
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker-config"))


@pytest.fixture
def image(tmp_path: Path) -> Iterator[Signed]:
    registry = FakeRegistry()
    server, registry.port = serve(registry.handle)
    yield Signed(registry, tmp_path)
    server.shutdown()
    server.server_close()


def _empty_listing() -> Reply:
    """The referrers API answering, and listing nothing."""
    return Reply(200, {"Content-Type": OCI_INDEX},
                 json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX,
                             "manifests": []}).encode())


def _api_lists_nothing(image: Signed) -> None:
    """The registry has the referrers API, which does not list what the tag schema does
    (referrers pushed before the registry indexed them, or by a client that wrote the
    tag schema)."""
    image.fake.referrers_api = True
    path = f"/v2/{REPO}/referrers/{image.digest}"
    image.fake.scripted[path] = [_empty_listing() for _ in range(8)]


def test_a_keyless_tag_schema_signature_is_accepted_cold_at_a_registry_whose_api_lists_nothing(
        image: Signed) -> None:
    image.bundle(DEV)
    _api_lists_nothing(image)
    assert image.verify(keyless=DEV).accepted


def test_the_referrers_api_memo_does_not_turn_that_acceptance_into_a_refusal(
        image: Signed) -> None:
    image.bundle(DEV)
    _api_lists_nothing(image)
    image.note(Memo.REFERRERS_API)
    verdict: Verdict = image.verify(keyless=DEV)
    assert verdict.accepted, verdict.reasons
    assert "index" in image.requests()  # the tag schema was read before refusing


def test_a_key_rule_reads_the_tag_schema_too_before_refusing_where_the_api_lists_nothing(
        image: Signed) -> None:
    image.referrer("alice")
    _api_lists_nothing(image)
    verdict = image.verify("alice")
    assert verdict.accepted, verdict.reasons


def test_another_verification_learning_the_api_meanwhile_does_not_skip_it_before_a_refusal(
        image: Signed, monkeypatch: pytest.MonkeyPatch) -> None:
    """A keyless lookup reads the tag schema (nothing known of the API); while it does,
    another image's verification on the same client (Gate.admit_all's threads share it)
    sees the API list referrers. The API must still be asked before this image is
    refused: its bundle is listed only there."""
    image.fake.referrers_api = True
    image.bundle(DEV, tag_schema=False)
    listed = list_signature_referrers

    def meanwhile(client: RegistryClient, repository: str, digest: Digest, *,
                  api: bool = True) -> Referrers:
        found = listed(client, repository, digest, api=api)
        client.referrers_api = True  # what the other thread's API listing taught it
        return found

    monkeypatch.setattr(verifier_module, "list_signature_referrers", meanwhile)
    verdict = image.verify(keyless=DEV)
    assert verdict.accepted, verdict.reasons


def test_the_tag_schema_and_the_api_together_fetch_at_most_max_bundles_bundles(
        image: Signed) -> None:
    """A refusal reads both listings; the bound on bundles fetched counts both, the
    unreadable ones included (each costs a request as a good one does)."""
    image.fake.referrers_api = True
    subject = image.fake.manifests[REPO, str(image.digest)][1]
    for n in range(MAX_BUNDLES):
        # Listed in the tag schema only: no such manifest.
        image._list({"mediaType": OCI_MANIFEST, "digest": "sha256:" + f"{n:064x}",
                     "size": 2, "artifactType": BUNDLE_V03})
        # Listed by the API only: an artifact with no bundle layer.
        image.fake.put_manifest(REPO, None, {
            "schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": BUNDLE_V03,
            "config": {"mediaType": "application/vnd.oci.empty.v1+json",
                       "digest": str(image.fake.put_blob(b"{}")), "size": 2},
            "layers": [], "n": n,
            "subject": {"mediaType": OCI_MANIFEST, "digest": str(image.digest),
                        "size": len(subject)}}, OCI_MANIFEST)
    assert not image.verify(keyless=DEV).accepted
    assert image.requests().count("manifest") <= MAX_BUNDLES
