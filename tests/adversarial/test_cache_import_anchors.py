"""``cache import`` of a crafted export that carries a trusted root (issue 11 item 3), with
the real dockerd and registry: the root is never installed, and the identity it would have
vouched for is refused; docker shows that nothing was pulled or started.

The attacker runs their own Sigstore (tests/sigstore_world.py) and signs an image as a
GitHub Actions workflow the victim trusts; only the victim's trusted root stands between
that signature and a run.
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import TYPE_CHECKING

import pytest

from safedocker.oci.client import RegistryClient
from tests.adversarial.test_lock import nothing_of
from tests.e2e.test_keyless import attach_sig_layer
from tests.e2e.test_trust_roots import run
from tests.sigstore_world import SigstoreWorld

if TYPE_CHECKING:
    from pathlib import Path

    from tests.e2e.conftest import SafeDocker
    from tests.world import World

pytestmark = pytest.mark.e2e

GITHUB = "https://token.actions.githubusercontent.com"
WORKFLOW = "https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main"


def crafted_export(path: Path, root: bytes) -> None:
    """A well-formed export (header, checksum, count) whose one record is a root 'default'."""
    def line(record: dict[str, object]) -> bytes:
        return json.dumps(record, sort_keys=True, separators=(",", ":")).encode() + b"\n"

    header = line({"type": "header", "format": "safe-docker-cache-export", "version": 1})
    record = line({"type": "root", "name": "default", "data": base64.b64encode(root).decode()})
    end = line({"type": "end", "records": 1,
                "sha256": hashlib.sha256(header + record).hexdigest()})
    path.write_bytes(header + record + end)


def test_a_root_in_a_cache_export_is_never_installed_and_the_forged_identity_is_refused(
        world: World, safe_docker: SafeDocker, tmp_path: Path) -> None:
    attacker = SigstoreWorld()
    forged = world.push_image("adv-cache-root/app")
    leaf = attacker.issue(email=None, uri=WORKFLOW, issuer=GITHUB)
    with RegistryClient(world.registry) as client:
        attach_sig_layer(client, forged, attacker.cosign_layer(
            leaf, attacker.simple_signing(forged.digest, forged.repo)))
    safe_docker.config_dir.mkdir(parents=True)
    (safe_docker.config_dir / "config.toml").write_text(
        f'[[policy]]\nscope = "{world.registry}/adv-cache-root/*"\n'
        f'identities = [{{ issuer = "{GITHUB}", subject = "{WORKFLOW}" }}]\n'
        'tlog = "required"\n')
    export = tmp_path / "crafted.jsonl"
    crafted_export(export, attacker.trusted_root_json())

    imported = run(safe_docker, "cache", "import", str(export))
    assert "trusted root 'default'" in imported.stderr and "not installed" in imported.stderr
    assert not (safe_docker.config_dir / "trust-roots").exists()
    assert run(safe_docker, "trust-root", "list").stdout.split() == ["default", "built-in", "-"]

    refused = run(safe_docker, "run", "--rm", "--network", "none", forged.tagged, "true",
                  code=77)
    assert "trusted root 'default' (embedded" in refused.stderr, refused.stderr
    nothing_of(world, forged)
