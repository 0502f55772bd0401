"""Issue 15 "must show": what publishers sign in 2026, end to end against the real
dockerd and registry. Keyless and key-signed sigstore bundles logged in a Rekor v2 log
with an RFC 3161 timestamp (tests/sigstore_world.py), attached as OCI referrers; the
registry (distribution 2.8) has no referrers API, so they are found through the
``sha256-<hex>`` tag-schema index. ``safe-docker run`` verifies them online and then
offline; a bundle without a timestamp, with a timestamp outside the certificate's
validity, or with a checkpoint signed by a log key the trusted root does not list is
refused (77) and nothing is pulled, checked with docker itself.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import timedelta
from typing import TYPE_CHECKING

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from safedocker.oci.client import RegistryClient
from tests.e2e.test_keyless import SIGN, Home, attach_bundles, no_network, refused
from tests.sigstore_world import SigstoreWorld, public_pem

if TYPE_CHECKING:
    from tests.world import Image, World

ROOT_NAME = "world-rekor-v2"
ISSUER = "https://issuer.example"
DEV = "dev@example.com"
SPACE = "rekorv2"


@dataclass(frozen=True)
class Images:
    keyless: Image  # keyless bundle, Rekor v2 entry + TSA timestamp
    keyed: Image  # bundle signed with the trusted key "team", Rekor v2 entry + timestamp
    untimed: Image  # keyless, Rekor v2 entry, no timestamp
    keyed_untimed: Image  # key-signed, Rekor v2 entry, no timestamp
    late: Image  # keyless, timestamp after the certificate expired
    unknown_log: Image  # keyless, checkpoint signed by a key the trusted root lacks


class V2Home(Home):
    def rule(self) -> None:
        """Either signer (the key or the identity) may vouch; the log is required."""
        self.config_dir.mkdir(parents=True, exist_ok=True)
        (self.config_dir / "config.toml").write_text("\n".join([
            f"[keys.team]\nfingerprint = \"{self.team_fingerprint}\"",
            "[[policy]]",
            f'scope = "{self.world.registry}/{SPACE}/*"',
            'keys = ["team"]',
            f'identities = [{{ issuer = "{ISSUER}", subject = "{DEV}" }}]',
            'tlog = "required"',
            f'trust_root = "{ROOT_NAME}"',
        ]) + "\n")

    team_fingerprint: str = ""


@pytest.fixture(scope="module")
def sigstore() -> SigstoreWorld:
    return SigstoreWorld()


@pytest.fixture(scope="module")
def team_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture(scope="module")
def home(world: World, sigstore: SigstoreWorld, team_key: ec.EllipticCurvePrivateKey,
         tmp_path_factory: pytest.TempPathFactory) -> V2Home:
    home = V2Home(world=world, home=tmp_path_factory.mktemp("sd-rekor-v2"))
    root_file = home.home / "trusted_root.json"
    root_file.write_bytes(sigstore.trusted_root_json(with_rekor_v2=True, with_tsa=True))
    home.ok("trust-root", "import", str(root_file), "--name", ROOT_NAME)
    key_file = home.home / "team.pub"
    key_file.write_bytes(public_pem(team_key))
    added = home.ok("keys", "add", "team", str(key_file))
    home.team_fingerprint = next(word for word in added.stdout.split()
                                 if word.startswith("sha256:"))
    return home


@pytest.fixture(scope="module")
def images(world: World, sigstore: SigstoreWorld, team_key: ec.EllipticCurvePrivateKey
           ) -> Images:
    pushed = {f.name: world.push_image(f"{SPACE}/{f.name.replace('_', '-')}")
              for f in fields(Images)}

    def sign(name: str, **kw: object) -> None:
        image = pushed[name]
        bundle = sigstore.sign_bundle_rekor_v2(image.digest, **kw)  # type: ignore[arg-type]
        attach_bundles(client, image, (bundle, SIGN))

    with RegistryClient(world.registry) as client:
        sign("keyless", identity=DEV)
        sign("keyed", key=team_key)
        sign("untimed", identity=DEV, timestamp=False)
        sign("keyed_untimed", key=team_key, timestamp=False)
        leaf = sigstore.issue(email=DEV, issuer=ISSUER)  # valid for ten minutes
        sign("late", identity=leaf, timestamp_at=sigstore.now + timedelta(hours=2))
        sign("unknown_log", identity=DEV, checkpoint_signer=ed25519.Ed25519PrivateKey.generate())
    return Images(**pushed)


def test_keyless_and_key_signed_rekor_v2_bundles_run_online_then_offline(
        world: World, home: V2Home, images: Images) -> None:
    home.rule()
    signers = {"keyless": f"{DEV} (keyless, issuer {ISSUER})", "keyed": "team (key"}
    try:
        for name, signer in signers.items():
            image: Image = getattr(images, name)
            ran = home.ok("run", "--rm", "--network", "none", image.tagged, "echo", "hi")
            assert ran.stdout.strip() == "hi"
            assert world.has_image(image.pinned)
            assert signer in home.ok("verify", image.tagged).stdout
        with no_network(world) as env:
            for name in signers:
                image = getattr(images, name)
                offline = home("run", "--rm", "--network", "none", image.tagged, "echo", "hi",
                               env={"SAFE_DOCKER_OFFLINE": "1", **env})
                assert offline.exit_code == 0, (offline.stdout, offline.stderr)
                assert offline.stdout.strip() == "hi"
    finally:
        for name in signers:
            image = getattr(images, name)
            world.remove_images(image.tagged, image.pinned)


@pytest.mark.parametrize(("name", "why"), [
    ("untimed", "no verified signing time"),
    ("keyed_untimed", "no SET and no RFC 3161 timestamp"),
    ("late", "outside the signing certificate's validity"),
    ("unknown_log", "unknown log key"),
])
def test_rekor_v2_bundle_without_a_sound_time_or_log_is_refused_and_nothing_is_pulled(
        world: World, home: V2Home, images: Images, name: str, why: str) -> None:
    home.rule()
    image: Image = getattr(images, name)
    result = home("run", "--rm", "--network", "none", image.tagged, "echo", "hi")
    refused(result, why)
    assert not world.has_image(image.pinned) and not world.has_image(image.tagged)
