"""Which registry requests one online verification makes, in which order, and that the
cache's memos change only that: never a verdict.

A fake registry over real HTTP on 127.0.0.1 (tests/unit/oci/test_client.py's) holds an
image signed with a generated key, as a cosign ``.sig`` tag or as a cosign OCI 1.1
signature referrer (listed in the ``sha256-<hex>`` tag-schema index, or through the
referrers API), or keylessly (tests/sigstore_world.py's private Sigstore): a certificate
in a ``.sig`` layer, or a sigstore bundle referrer. A rule with keys reads the ``.sig`` tag
first; a rule with identities reads the tag-schema referrers first, then the ``.sig``
tag, and asks the referrers API only before a refusal (unless the registry is known to
have it).
"""

from __future__ import annotations

import base64
import functools
import json
from typing import TYPE_CHECKING, Any

import pytest

from safedocker.cache.memos import Memo, note_memo, recall_memo
from safedocker.cache.store import Cache
from safedocker.oci.media import OCI_INDEX, OCI_MANIFEST
from safedocker.policy.config import Config, KeyEntry
from safedocker.policy.model import Action, Identity, Policy, Rule, Tlog
from safedocker.reference import Digest, parse_reference
from safedocker.signatures.cosign import (
    SIGNATURE_ANNOTATION,
    SIGNATURE_ARTIFACT_TYPE,
    SIMPLE_SIGNING_MEDIA_TYPE,
)
from safedocker.signatures.cosignkey import generate_key_pair, load_private_key, sign
from safedocker.signatures.simplesigning import make_payload
from safedocker.trust.keys import load_public_key
from safedocker.trust.roots import parse_trust_root
from safedocker.verify.verifier import Verifier
from tests.sigstore_world import BUNDLE_V03, SigstoreWorld
from tests.unit.oci.test_client import REPO, FakeRegistry, push_image, serve

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from safedocker.trust.roots import TrustRoot
    from safedocker.verify.verdict import Verdict

Layer = tuple[dict[str, str], str, bytes]
ISSUER = "https://issuer.example"
ROOT_NAME = "world"


@pytest.fixture(autouse=True)
def _no_docker_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "docker-config").mkdir()
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker-config"))


@pytest.fixture
def fake() -> Iterator[FakeRegistry]:
    registry = FakeRegistry()  # no referrers API, like distribution 2.8
    server, registry.port = serve(registry.handle)
    yield registry
    server.shutdown()
    server.server_close()


@functools.cache
def _sigstore() -> tuple[SigstoreWorld, TrustRoot]:
    """One private Sigstore for the whole module, and its trusted root."""
    world = SigstoreWorld()
    return world, parse_trust_root(world.trusted_root_json(), name=ROOT_NAME)


@functools.cache
def _key_pair(name: str) -> tuple[object, bytes]:
    """One generated cosign key per name for the whole module (scrypt is slow): the
    private key, and the public key's PEM."""
    private_pem, public_pem = generate_key_pair(b"pw")
    return load_private_key(private_pem, b"pw"), public_pem


class Signed:
    """An image in the fake and the keys (alice, bob) that may sign it."""

    def __init__(self, fake: FakeRegistry, tmp_path: Path) -> None:
        self.fake = fake
        self.registry = f"127.0.0.1:{fake.port}"
        self.ref = parse_reference(f"{self.registry}/{REPO}:v1")
        self.digest, _ = push_image(fake)
        self.keys: dict[str, tuple[object, KeyEntry]] = {}
        for name in ("alice", "bob"):
            private, public_pem = _key_pair(name)
            path = tmp_path / f"{name}.pub"
            path.write_bytes(public_pem)
            self.keys[name] = (private, KeyEntry(
                name, load_public_key(public_pem, name).fingerprint, path))
        self.tmp = tmp_path
        self.cache = Cache.open(tmp_path / "cache")

    def layer(self, signer: str) -> Layer:
        payload = make_payload(self.ref.name, self.digest, None)
        signature = base64.b64encode(sign(self.keys[signer][0], payload)).decode()  # type: ignore[arg-type]
        return {SIGNATURE_ANNOTATION: signature}, SIMPLE_SIGNING_MEDIA_TYPE, payload

    def sig_tag(self, signer: str) -> None:
        """A cosign ``sha256-<hex>.sig`` manifest with one layer."""
        annotations, media_type, payload = self.layer(signer)
        config = self.fake.put_blob(b"{}")
        self.fake.put_blob(payload)
        self.fake.put_manifest(REPO, self.digest.tag_prefix + ".sig", {
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                       "digest": str(config), "size": 2},
            "layers": [{"mediaType": media_type, "digest": str(Digest.of(payload)),
                        "size": len(payload), "annotations": annotations}]})

    def referrer(self, signer: str, *, tag_schema: bool = True) -> None:
        """A cosign OCI 1.1 signature referrer; listed in the tag-schema index unless
        ``tag_schema`` is False (then only the referrers API lists it)."""
        manifest, blobs = SigstoreWorld.cosign_referrer_manifest(
            [self.layer(signer)], str(self.digest), 100)
        for blob in blobs.values():
            self.fake.put_blob(blob)
        pushed = self.fake.put_manifest(REPO, None, manifest, OCI_MANIFEST)
        if tag_schema:
            entry = {"mediaType": OCI_MANIFEST, "digest": str(pushed), "size": len(manifest),
                     "artifactType": SIGNATURE_ARTIFACT_TYPE}
            self.fake.put_manifest(REPO, self.digest.tag_prefix, {
                "schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [entry]})

    def keyless_sig(self, email: str) -> None:
        """A cosign ``.sig`` manifest with one keyless layer (certificate, chain, SET)."""
        world, _ = _sigstore()
        leaf = world.issue(email=email, issuer=ISSUER)
        annotations, media_type, payload = world.cosign_layer(
            leaf, world.simple_signing(str(self.digest), self.ref.name))
        config = self.fake.put_blob(b"{}")
        self.fake.put_blob(payload)
        self.fake.put_manifest(REPO, self.digest.tag_prefix + ".sig", {
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                       "digest": str(config), "size": 2},
            "layers": [{"mediaType": media_type, "digest": str(Digest.of(payload)),
                        "size": len(payload), "annotations": annotations}]})

    def bundle(self, email: str, *, tag_schema: bool = True) -> None:
        """A sigstore bundle referrer (cosign v3); listed in the tag-schema index unless
        ``tag_schema`` is False (then only the referrers API lists it)."""
        world, _ = _sigstore()
        bundle = world.bundle(world.issue(email=email, issuer=ISSUER), str(self.digest))
        subject = self.fake.manifests[REPO, str(self.digest)][1]
        raw, config = SigstoreWorld.referrer_manifest(bundle, str(self.digest), len(subject))
        self.fake.put_blob(config)
        self.fake.put_blob(bundle)
        pushed = self.fake.put_manifest(REPO, None, raw, OCI_MANIFEST)
        if tag_schema:
            self._list({"mediaType": OCI_MANIFEST, "digest": str(pushed), "size": len(raw),
                        "artifactType": BUNDLE_V03})

    def unrelated(self, count: int) -> None:
        """``count`` SBOM-like artifacts listed in the tag-schema index."""
        for n in range(count):
            raw = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "n": n}).encode()
            pushed = self.fake.put_manifest(REPO, None, raw, OCI_MANIFEST)
            self._list({"mediaType": OCI_MANIFEST, "digest": str(pushed), "size": len(raw),
                        "artifactType": "application/vnd.example.sbom+json"})

    def _list(self, entry: dict[str, object]) -> None:
        """Add ``entry`` to the tag-schema index ``sha256-<hex>``."""
        tag = self.digest.tag_prefix
        index: dict[str, Any] = (json.loads(self.fake.manifests[REPO, tag][1])
                 if (REPO, tag) in self.fake.manifests
                 else {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []})
        index["manifests"].append(entry)
        self.fake.put_manifest(REPO, tag, index)

    def verify(self, *signers: str, threshold: int = 1, keyless: str | None = None
               ) -> Verdict:
        """One verification in a new verifier (a new process) sharing the cache; with
        ``keyless``, under a rule that wants that identity instead of keys."""
        if keyless is None:
            rule = Rule(scope=f"{self.registry}/team/*", action=Action.VERIFY,
                        keys=signers or ("alice",), threshold=threshold)
        else:
            rule = Rule(scope=f"{self.registry}/team/*", action=Action.VERIFY,
                        identities=(Identity(issuer=ISSUER, subject=keyless),),
                        tlog=Tlog.REQUIRED, trust_root=ROOT_NAME)
        config = Config(keys={name: entry for name, (_, entry) in self.keys.items()},
                        policy=Policy(user_rules=(rule,)))
        self.fake.log.clear()
        root = _sigstore()[1]
        verifier = Verifier(config, cache=self.cache, trust_roots=lambda _name: root)
        verdict = verifier.verify(self.ref)
        assert verifier.requests_made == len(self.fake.log)
        return verdict

    def requests(self) -> list[str]:
        """The requests of the last verification, named by what they asked for."""
        names = {f"/v2/{REPO}/manifests/v1": "tag",
                 f"/v2/{REPO}/manifests/{self.digest.tag_prefix}.sig": ".sig",
                 f"/v2/{REPO}/manifests/{self.digest.tag_prefix}": "index",
                 f"/v2/{REPO}/referrers/{self.digest}": "api"}
        out = []
        for method, path, _ in self.fake.log:
            assert method == "GET"  # no HEAD before a GET, no /v2/ ping
            out.append(names.get(path) or ("manifest" if "/manifests/sha256:" in path
                                           else "blob" if "/blobs/" in path else path))
        return out

    def memo(self, memo: Memo, subject: str | None = None) -> bool:
        return recall_memo(self.cache, memo, subject or self._subject(memo))

    def note(self, memo: Memo) -> None:
        note_memo(self.cache, memo, self._subject(memo))

    def _subject(self, memo: Memo) -> str:
        return self.ref.name if memo is Memo.REFERRERS_FIRST else self.registry


@pytest.fixture
def image(fake: FakeRegistry, tmp_path: Path) -> Signed:
    return Signed(fake, tmp_path)


# --- the plans -----------------------------------------------------------------------------


def test_a_sig_signed_image_costs_three_requests_and_never_lists_referrers(image: Signed) -> None:
    image.sig_tag("alice")
    assert image.verify().accepted
    assert image.requests() == ["tag", ".sig", "blob"]
    assert image.verify().accepted and image.requests() == ["tag", ".sig", "blob"]
    assert not image.memo(Memo.NO_REFERRERS_API) and not image.memo(Memo.REFERRERS_FIRST)


def test_a_referrer_signed_image_costs_six_requests_cold_then_four(image: Signed) -> None:
    image.referrer("alice")
    assert image.verify().accepted
    # Nothing known: the .sig tag first, then the referrers API, then its tag-schema fallback.
    assert image.requests() == ["tag", ".sig", "api", "index", "manifest", "blob"]
    assert image.memo(Memo.NO_REFERRERS_API) and image.memo(Memo.REFERRERS_FIRST)
    assert image.verify().accepted
    assert image.requests() == ["tag", "index", "manifest", "blob"]


def test_the_no_api_memo_alone_skips_only_the_api_request(image: Signed) -> None:
    image.referrer("alice")
    image.note(Memo.NO_REFERRERS_API)
    assert image.verify().accepted
    assert image.requests() == ["tag", ".sig", "index", "manifest", "blob"]


def test_a_new_digest_of_a_repository_signed_by_referrers_costs_four(image: Signed) -> None:
    image.referrer("alice")
    assert image.verify().accepted
    image.digest, _ = push_image(image.fake)  # v1 now names another image
    image.fake.put_manifest(REPO, "v1", json.loads(image.fake.manifests[REPO, "v1"][1]))
    image.referrer("alice")
    assert image.verify().accepted
    assert image.requests() == ["tag", "index", "manifest", "blob"]


# --- keyless rules: the tag-schema referrers first ----------------------------------------

DEV = "dev@example.com"


def test_a_keyless_bundle_image_costs_four_requests_cold_and_warm(image: Signed) -> None:
    image.bundle(DEV)
    assert image.verify(keyless=DEV).accepted
    assert image.requests() == ["tag", "index", "manifest", "blob"]
    assert image.memo(Memo.REFERRERS_FIRST) and not image.memo(Memo.NO_REFERRERS_API)
    assert image.verify(keyless=DEV).accepted
    assert image.requests() == ["tag", "index", "manifest", "blob"]


def test_a_classic_keyless_image_costs_four_requests_cold_and_warm(image: Signed) -> None:
    image.keyless_sig(DEV)
    assert image.verify(keyless=DEV).accepted
    assert image.requests() == ["tag", "index", ".sig", "blob"]  # the index is a 404
    assert not image.memo(Memo.REFERRERS_FIRST)
    assert image.verify(keyless=DEV).accepted
    assert image.requests() == ["tag", "index", ".sig", "blob"]


def test_a_key_rule_still_reads_the_sig_tag_first_in_three_requests(image: Signed) -> None:
    image.sig_tag("alice")
    image.bundle(DEV)  # beside it, never fetched
    assert image.verify("alice").accepted
    assert image.requests() == ["tag", ".sig", "blob"]


@pytest.mark.parametrize("signed", ["bundle", "classic"])
def test_twenty_unrelated_referrers_cost_a_keyless_verify_no_request(
        image: Signed, signed: str) -> None:
    (image.bundle if signed == "bundle" else image.keyless_sig)(DEV)
    assert image.verify(keyless=DEV).accepted
    before = image.requests()
    image.cache = Cache.open(image.tmp / "cold")  # no memos: cold again
    image.unrelated(20)
    assert image.verify(keyless=DEV).accepted
    assert image.requests() == before and len(before) == 4


def test_a_keyless_bundle_at_a_registry_with_the_api_costs_six_cold_then_four(
        image: Signed) -> None:
    image.fake.referrers_api = True  # cosign v3 there lists nothing in the tag schema
    image.bundle(DEV, tag_schema=False)
    assert image.verify(keyless=DEV).accepted
    assert image.requests() == ["tag", "index", ".sig", "api", "manifest", "blob"]
    assert image.memo(Memo.REFERRERS_API) and image.memo(Memo.REFERRERS_FIRST)
    assert image.verify(keyless=DEV).accepted
    assert image.requests() == ["tag", "api", "manifest", "blob"]


def test_a_registry_memo_d_as_api_less_is_never_asked_on_a_keyless_acceptance(
        image: Signed) -> None:
    image.bundle(DEV)
    image.note(Memo.NO_REFERRERS_API)
    assert image.verify(keyless=DEV).accepted
    assert image.requests() == ["tag", "index", "manifest", "blob"]


@pytest.mark.parametrize("memos", [(), (Memo.NO_REFERRERS_API,), (Memo.REFERRERS_FIRST,)])
def test_a_keyless_refusal_asks_everything_the_api_included(
        image: Signed, memos: tuple[Memo, ...]) -> None:
    image.keyless_sig("mallory@example.com")
    image.bundle("mallory@example.com")
    for memo in memos:
        image.note(memo)
    verdict = image.verify(keyless=DEV)
    assert not verdict.accepted
    assert image.requests() == ["tag", "index", "manifest", "blob", ".sig", "blob", "api"]


def test_the_api_asked_before_a_refusal_adds_to_the_tag_schema_and_fetches_nothing_twice(
        image: Signed) -> None:
    image.fake.referrers_api = True
    image.bundle("mallory@example.com")  # the tag schema and the API list it
    image.bundle(DEV, tag_schema=False)  # only the API lists it
    assert image.verify(keyless=DEV).accepted
    assert image.requests() == ["tag", "index", "manifest", "blob", ".sig", "api",
                                "manifest", "blob"]


# --- memos choose where to look, never what is decided -------------------------------------


def test_a_refusal_asks_the_referrers_api_the_memo_skipped(image: Signed) -> None:
    image.fake.referrers_api = True  # the registry gained the API since the memo
    image.referrer("alice", tag_schema=False)
    image.note(Memo.NO_REFERRERS_API)
    assert image.verify().accepted
    assert image.requests() == ["tag", ".sig", "index", "api", "manifest", "blob"]
    assert not image.memo(Memo.NO_REFERRERS_API)  # the API answered: the memo is gone
    assert image.verify().accepted
    assert image.requests() == ["tag", "api", "manifest", "blob"]


def test_a_stale_referrers_first_memo_falls_back_to_the_sig_tag(image: Signed) -> None:
    image.sig_tag("alice")
    image.note(Memo.REFERRERS_FIRST)
    image.note(Memo.NO_REFERRERS_API)
    assert image.verify().accepted
    assert image.requests() == ["tag", "index", ".sig", "blob"]
    assert not image.memo(Memo.REFERRERS_FIRST)
    assert image.verify().accepted and image.requests() == ["tag", ".sig", "blob"]


@pytest.mark.parametrize("memos", [(), (Memo.NO_REFERRERS_API,), (Memo.REFERRERS_FIRST,),
                                   (Memo.NO_REFERRERS_API, Memo.REFERRERS_FIRST)])
def test_an_image_signed_by_someone_else_is_refused_alike_whatever_the_memos(
        image: Signed, memos: tuple[Memo, ...]) -> None:
    image.sig_tag("bob")
    image.referrer("bob")
    for memo in memos:
        image.note(memo)
    verdict = image.verify("alice")
    assert not verdict.accepted
    # Both signatures were judged (the .sig layer's and the referrer's).
    assert verdict.reasons == ("signature does not verify with any trusted key (alice)",) * 2
    # A refusal has looked everywhere: the .sig tag, the API and the tag schema.
    assert sorted(image.requests()) == sorted(
        ["tag", ".sig", "blob", "api", "index", "manifest", "blob"])


@pytest.mark.parametrize("first", [False, True])
def test_a_threshold_of_two_keeps_looking_after_the_first_kind_satisfies_one(
        image: Signed, first: bool) -> None:
    image.sig_tag("alice")
    image.referrer("bob")
    if first:
        image.note(Memo.REFERRERS_FIRST)
    verdict = image.verify("alice", "bob", threshold=2)
    assert verdict.accepted
    assert {s.name for s in verdict.signers} == {"alice", "bob"}
    assert sorted(image.requests()) == sorted(
        ["tag", ".sig", "blob", "api", "index", "manifest", "blob"])


def test_an_unsigned_image_is_refused_with_the_memos_as_without(image: Signed) -> None:
    assert image.verify().reasons == ("no signature found",)
    assert image.requests() == ["tag", ".sig", "api", "index"]
    image.note(Memo.REFERRERS_FIRST)
    assert image.verify().reasons == ("no signature found",)
    assert image.requests() == ["tag", "index", ".sig", "api"]  # memo'd no API: asked last
