"""A2-1: `trust-root import` of the public-good root PLUS a foreign CA, Rekor and CT log
is no update of `default`: refused (78) without --replace, and the foreign CA's
certificate for a public GitHub identity then runs nothing. Through the real shim, docker
and registry."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from safedocker.oci.client import RegistryClient
from safedocker.trust.roots import embedded_trust_root_bytes
from tests.e2e.test_keyless import attach_sig_layer
from tests.sigstore_world import SigstoreWorld

if TYPE_CHECKING:
    from pathlib import Path

    from tests.e2e.conftest import SafeDocker
    from tests.world import World

IDENTITY = "https://github.com/sigstore/cosign/.github/workflows/release.yml@refs/tags/v2.4.0"
GITHUB = "https://token.actions.githubusercontent.com"


def test_a_superset_of_the_public_good_root_is_refused_and_its_foreign_ca_runs_nothing(
        world: World, safe_docker: SafeDocker, tmp_path: Path) -> None:
    attacker = SigstoreWorld()
    superset = json.loads(embedded_trust_root_bytes())
    theirs = json.loads(attacker.trusted_root_json())
    for key in ("certificateAuthorities", "tlogs", "ctlogs"):
        superset[key] = superset.get(key, []) + theirs[key]
    root_file = tmp_path / "corp-trusted-root.json"
    root_file.write_text(json.dumps(superset))

    safe_docker.config_dir.mkdir(parents=True, exist_ok=True)
    (safe_docker.config_dir / "config.toml").write_text(
        "[[policy]]\n"
        f'scope = "{world.registry}/a2root/*"\n'
        f'identities = [{{ issuer = "{GITHUB}", '
        'subject_regexp = "^https://github\\\\.com/sigstore/cosign/" }]\n'
        'tlog = "required"\n')
    image = world.push_image("a2root/app")
    leaf = attacker.issue(email=None, uri=IDENTITY, issuer=GITHUB)
    payload = attacker.simple_signing(image.digest, image.repo)
    with RegistryClient(world.registry) as client:
        attach_sig_layer(client, image, attacker.cosign_layer(leaf, payload))

    imported = safe_docker("trust-root", "import", str(root_file))
    assert imported.exit_code == 78, imported.stderr
    assert "adds 3 trust anchors" in imported.stderr and "--replace" in imported.stderr
    assert not (safe_docker.config_dir / "trust-roots" / "default.json").exists()

    refused = safe_docker("run", "--rm", "--network", "none", image.tagged, "true")
    assert refused.exit_code == 77, refused.stderr
    assert not world.has_image(image.pinned) and not world.has_image(image.tagged)
    containers = world.run_docker("ps", "-aq", "--filter", f"ancestor={image.pinned}")
    assert containers.stdout.strip() == b""

    # What --replace is consent to: the foreign CA now vouches for the GitHub identity.
    replaced = safe_docker("trust-root", "import", str(root_file), "--replace")
    assert replaced.exit_code == 0, replaced.stderr
    accepted = safe_docker("run", "--rm", "--network", "none", image.tagged, "true")
    assert accepted.exit_code == 0, accepted.stderr
