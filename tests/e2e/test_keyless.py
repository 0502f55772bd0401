"""Keyless "must show" (issue 3/7), end to end: a real dockerd, a real registry, and an
independent Sigstore (tests/sigstore_world.py: a private Fulcio-like CA, a CT log and a
Rekor-like log) whose trusted_root.json is imported with ``safe-docker trust-root import``.

Signatures are attached as cosign does: a classic ``sha256-<hex>.sig`` manifest whose
layer carries certificate, chain and SET annotations, or sigstore bundles attached
through OCI referrers. distribution 2.8 has no referrers API, so the bundles are listed
in the tag-schema fallback: an OCI index under the tag ``sha256-<hex>``.

The module shares one safe-docker home (the trust root is imported once); each test
writes the policy it needs into the user config.toml.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from contextlib import contextmanager
from dataclasses import dataclass, fields
from datetime import timedelta
from typing import TYPE_CHECKING

import pytest

from safedocker.oci.client import RegistryClient
from safedocker.oci.media import OCI_INDEX
from safedocker.reference import Digest
from tests.e2e.conftest import Result, SafeDocker
from tests.sigstore_world import BUNDLE_V03, SigstoreWorld
from tests.world import free_port

if TYPE_CHECKING:
    from collections.abc import Iterator

    from tests.sigstore_world import Leaf
    from tests.world import Image, World

ROOT_NAME = "world-sigstore"
ISSUER = "https://issuer.example"
DEV = "dev@example.com"
BUILDER = "builder@ci.example"
SLSA = "https://slsa.dev/provenance/v1"
SIGN = "https://sigstore.dev/cosign/sign/v1"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
SPACE = "keyless"


@dataclass(frozen=True)
class Images:
    bundled: Image  # keyless signature as a referrer bundle only
    classic: Image  # keyless signature as a `.sig` layer (certificate, chain, SET)
    expired: Image  # `.sig` layer whose certificate expired before the SET's time
    misdirected: Image  # a referrer bundle whose statement names another digest
    attested: Image  # a signature bundle plus an SLSA provenance bundle by the builder


class Home(SafeDocker):
    def policy(self, *, subject: str = DEV, attestation: str | None = None) -> None:
        """One rule for the module's namespace, trusting ``subject`` from the private CA."""
        lines = [
            "[[policy]]",
            f'scope = "{self.world.registry}/{SPACE}/*"',
            'action = "verify"',
            f'identities = [{{ issuer = "{ISSUER}", subject = "{subject}" }}]',
            'tlog = "required"',
            f'trust_root = "{ROOT_NAME}"',
        ]
        if attestation:
            lines.append(f'attestations = [{{ predicate_type = "{attestation}", identities = '
                         f'[{{ issuer = "{ISSUER}", subject = "{BUILDER}" }}] }}]')
        self.config_dir.mkdir(parents=True, exist_ok=True)
        (self.config_dir / "config.toml").write_text("\n".join(lines) + "\n")


def refused(result: Result, *why: str) -> None:
    assert result.exit_code == 77, (result.stdout, result.stderr)
    line = next(ln for ln in result.stderr.splitlines() if ln.startswith("safe-docker: refused"))
    for part in why:
        assert part in line, (part, result.stderr)


# --- attaching signatures as cosign does ---------------------------------------------------


def _repository(image: Image) -> str:
    return image.repo.split("/", 1)[1]


def attach_sig_layer(client: RegistryClient, image: Image,
                     layer: tuple[dict[str, str], str, bytes]) -> None:
    """Push the cosign ``sha256-<hex>.sig`` manifest holding one signature layer."""
    annotations, media_type, blob = layer
    repository = _repository(image)
    config = b"{}"
    manifest = {
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": str(client.push_blob(repository, config)), "size": len(config)},
        "layers": [{"mediaType": media_type, "digest": str(client.push_blob(repository, blob)),
                    "size": len(blob), "annotations": annotations}],
    }
    tag = Digest.parse(image.digest).tag_prefix + ".sig"
    client.push_manifest(repository, tag, json.dumps(manifest).encode(), OCI_MANIFEST)


def attach_bundles(client: RegistryClient, image: Image,
                   *bundles: tuple[bytes, str]) -> None:
    """Push one referrer artifact per (bundle, predicate type) and the tag-schema index."""
    repository = _repository(image)
    subject = client.get_manifest(repository, Digest.parse(image.digest))
    entries = []
    for bundle, predicate_type in bundles:
        raw, config = SigstoreWorld.referrer_manifest(bundle, image.digest, len(subject.raw),
                                                      subject.media_type)
        document = json.loads(raw)
        document["annotations"]["dev.sigstore.bundle.predicateType"] = predicate_type
        raw = json.dumps(document).encode()
        client.push_blob(repository, config)
        client.push_blob(repository, bundle)
        digest = client.push_manifest(repository, Digest.of(raw), raw, OCI_MANIFEST)
        entries.append({"mediaType": OCI_MANIFEST, "digest": str(digest), "size": len(raw),
                        "artifactType": BUNDLE_V03, "annotations": document["annotations"]})
    index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries})
    client.push_manifest(repository, Digest.parse(image.digest).tag_prefix, index.encode(),
                         OCI_INDEX)


# --- fixtures ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sigstore() -> SigstoreWorld:
    return SigstoreWorld()


@pytest.fixture(scope="module")
def home(world: World, sigstore: SigstoreWorld, tmp_path_factory: pytest.TempPathFactory
         ) -> Home:
    home = Home(world=world, home=tmp_path_factory.mktemp("sd-keyless"))
    root_file = home.home / "trusted_root.json"
    root_file.write_bytes(sigstore.trusted_root_json())
    imported = home.ok("trust-root", "import", str(root_file), "--name", ROOT_NAME)
    assert "1 CA(s), 1 transparency log(s), 1 CT log(s)" in imported.stdout
    return home


@pytest.fixture(scope="module")
def images(world: World, sigstore: SigstoreWorld) -> Images:
    def leaf(subject: str = DEV, **kw: object) -> Leaf:
        return sigstore.issue(email=subject, issuer=ISSUER, **kw)  # type: ignore[arg-type]

    names = [f.name for f in fields(Images)]
    pushed = {name: world.push_image(f"{SPACE}/{name}") for name in names}
    with RegistryClient(world.registry) as client:
        image = pushed["bundled"]
        attach_bundles(client, image, (sigstore.bundle(leaf(), image.digest), SIGN))

        image = pushed["classic"]
        payload = sigstore.simple_signing(image.digest, image.repo)
        attach_sig_layer(client, image, sigstore.cosign_layer(leaf(), payload))

        image = pushed["expired"]
        payload = sigstore.simple_signing(image.digest, image.repo)
        stale = leaf(not_before=sigstore.now - timedelta(hours=2))  # valid for 10 minutes
        attach_sig_layer(client, image, sigstore.cosign_layer(stale, payload))

        image = pushed["misdirected"]
        other = pushed["classic"].digest
        attach_bundles(client, image, (sigstore.bundle(leaf(), other), SIGN))

        image = pushed["attested"]
        attach_bundles(client, image, (sigstore.bundle(leaf(), image.digest), SIGN),
                       (sigstore.bundle(leaf(BUILDER), image.digest, predicate_type=SLSA), SLSA))
    return Images(**pushed)


# --- accepted --------------------------------------------------------------------------------


def test_referrer_bundle_image_is_pulled_run_and_created_pinned(world: World, home: Home,
                                                                images: Images) -> None:
    home.policy()
    image = images.bundled
    try:
        pulled = home.ok("pull", image.tagged)
        assert world.has_image(image.pinned)
        assert image.digest in pulled.stdout + pulled.stderr
        ran = home.ok("run", "--rm", "--network", "none", image.tagged, "echo", "hi")
        assert ran.stdout.strip() == "hi"
        created = home.ok("create", "--network", "none", image.tagged, "true")
        container = created.stdout.strip().splitlines()[-1]
        inspected = world.run_docker("inspect", "--format", "{{.Config.Image}}", container)
        world.run_docker("rm", container)
        assert inspected.stdout.decode().strip() == image.pinned
        verified = home.ok("verify", image.tagged)
        assert f"signer:    {DEV} (keyless, issuer {ISSUER})" in verified.stdout
    finally:
        world.remove_images(image.tagged, image.pinned)


def test_classic_keyless_sig_layer_is_accepted(home: Home, images: Images) -> None:
    home.policy()
    verified = home.ok("verify", images.classic.tagged)
    assert f"digest:    {images.classic.digest}" in verified.stdout
    assert f"{DEV} (keyless, issuer {ISSUER})" in verified.stdout


def test_a_classic_keyless_pull_is_kept_for_the_warm_path_a_bundle_pull_is_not(
        world: World, home: Home, images: Images) -> None:
    """The tag-schema referrers are read first for a keyless rule; where they list no
    signature the verdict rests on the `.sig` tag alone, which a warm hit re-checks."""
    home.policy()
    records = home.cache_dir / "verdicts"
    for image, kept in ((images.classic, True), (images.bundled, False)):
        shutil.rmtree(records, ignore_errors=True)
        try:
            home.ok("pull", image.tagged)
            assert any(records.glob("*.json")) is kept, image.tagged
        finally:
            world.remove_images(image.tagged, image.pinned)


# --- refused ---------------------------------------------------------------------------------


def test_another_identity_is_refused(world: World, home: Home, images: Images) -> None:
    home.policy(subject="ops@example.com")
    for image in (images.bundled, images.classic):
        result = home("pull", image.tagged)
        refused(result, f"certificate identity {DEV}", "matches no trusted identity",
                "ops@example.com")
        assert not world.has_image(image.pinned)


def test_certificate_expired_at_the_set_time_is_refused(world: World, home: Home,
                                                         images: Images) -> None:
    home.policy()
    result = home("pull", images.expired.tagged)
    refused(result, "signing certificate", "is not valid at")
    assert not world.has_image(images.expired.pinned)


def test_bundle_for_another_digest_is_refused(world: World, home: Home, images: Images) -> None:
    home.policy()
    result = home("pull", images.misdirected.tagged)
    refused(result, f"statement subject does not name {images.misdirected.digest}")
    assert not world.has_image(images.misdirected.pinned)


# --- attestations ----------------------------------------------------------------------------


def test_required_provenance_attestation(world: World, home: Home, images: Images) -> None:
    home.policy(attestation=SLSA)
    home.ok("verify", images.attested.tagged)
    result = home("pull", images.bundled.tagged)
    refused(result, f"no verified {SLSA} attestation")
    assert not world.has_image(images.bundled.pinned)


# --- offline ---------------------------------------------------------------------------------


@contextmanager
def no_network(world: World) -> Iterator[dict[str, str]]:
    """The registry stopped, and every proxy variable pointing at a closed local port: any
    outbound HTTP(S) attempt (a registry, TUF, Fulcio, Rekor) fails."""
    port = world.registry_port
    closed = f"http://127.0.0.1:{free_port()}"
    world.stop_registry()
    try:
        yield {"HTTPS_PROXY": closed, "https_proxy": closed, "HTTP_PROXY": closed,
               "http_proxy": closed, "ALL_PROXY": closed, "all_proxy": closed,
               "NO_PROXY": "", "no_proxy": ""}
    finally:
        world.start_registry(port)


def test_offline_verification_uses_only_local_trust_material(world: World, home: Home,
                                                             images: Images) -> None:
    home.policy()
    for image in (images.bundled, images.classic):
        home.ok("verify", image.tagged)
    with no_network(world) as env:
        # Without SAFE_DOCKER_OFFLINE the network is tried and it fails: the guard works.
        probe = subprocess.run(
            [sys.executable, "-c", "import requests; requests.get('https://example.com', "
             "timeout=5)"], env=home.env(**env), capture_output=True, text=True, timeout=60)
        assert probe.returncode != 0 and "ProxyError" in probe.stderr
        for image in (images.bundled, images.classic):
            offline = home("verify", image.tagged, env={"SAFE_DOCKER_OFFLINE": "1", **env})
            assert offline.exit_code == 0, (offline.stdout, offline.stderr)
            assert "decided offline" in offline.stderr
            assert f"{DEV} (keyless, issuer {ISSUER})" in offline.stdout
        # Offline is no weaker: the cached material is judged under today's policy.
        home.policy(subject="ops@example.com")
        again = home("verify", images.bundled.tagged, env={"SAFE_DOCKER_OFFLINE": "1", **env})
        refused(again, "matches no trusted identity")
