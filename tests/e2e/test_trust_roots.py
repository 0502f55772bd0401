"""Two Sigstore deployments side by side (issue 12), end to end: two independent worlds
(tests/sigstore_world.py), images signed keylessly by each, the same identity in both.

An unnamed import of a second deployment never displaces the first; named, each rule
chooses its root with ``policy add --trust-root``, both deployments' images verify, and
neither verifies under the other's rule (docker shows nothing pulled).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import pytest

from safedocker.oci.client import RegistryClient
from tests.e2e.test_keyless import attach_sig_layer
from tests.sigstore_world import SigstoreWorld

if TYPE_CHECKING:
    from pathlib import Path

    from tests.e2e.conftest import Result, SafeDocker
    from tests.world import Image, World

ISSUER = "https://issuer.example"
DEV = "dev@example.com"


def sign_with(world: World, sigstore: SigstoreWorld, image: Image) -> None:
    """A keyless `.sig` layer by DEV (issuer ISSUER) from ``sigstore``, with its SET."""
    leaf = sigstore.issue(email=DEV, issuer=ISSUER)
    with RegistryClient(world.registry) as client:
        attach_sig_layer(client, image,
                         sigstore.cosign_layer(leaf, sigstore.simple_signing(image.digest,
                                                                             image.repo)))


@dataclass(frozen=True)
class Deployment:
    root_file: Path
    good: Image  # in this deployment's scope, signed by it
    cross: Image  # in this deployment's scope, signed by the other deployment


@pytest.fixture(scope="module")
def deployments(world: World, tmp_path_factory: pytest.TempPathFactory
                ) -> tuple[Deployment, Deployment]:
    first, second = SigstoreWorld(), SigstoreWorld()
    files = tmp_path_factory.mktemp("roots")
    made = []
    for name, own, other in (("a", first, second), ("b", second, first)):
        good = world.push_image(f"roots-{name}/good")
        cross = world.push_image(f"roots-{name}/cross")
        sign_with(world, own, good)
        sign_with(world, other, cross)
        root_file = files / f"{name}.json"
        root_file.write_bytes(own.trusted_root_json())
        made.append(Deployment(root_file, good, cross))
    return made[0], made[1]


def run(sd: SafeDocker, *args: str, code: int = 0) -> Result:
    result = sd(*args)
    assert result.exit_code == code, (args, result.stdout, result.stderr)
    return result


def pulled(world: World, sd: SafeDocker, image: Image) -> None:
    run(sd, "pull", image.tagged)
    assert world.has_image(image.pinned)
    world.remove_images(image.pinned)


def refused_under(world: World, sd: SafeDocker, image: Image, root: str) -> None:
    result = run(sd, "pull", image.tagged, code=77)
    assert f"trusted root '{root}'" in result.stderr and "--trust-root NAME" in result.stderr
    assert not world.has_image(image.pinned) and not world.has_image(image.tagged)


def test_two_deployments_each_verify_under_their_own_root_and_never_under_the_other(
        world: World, safe_docker: SafeDocker, deployments: tuple[Deployment, Deployment],
) -> None:
    a, b = deployments
    identity = f"{ISSUER}={DEV}"
    # Unnamed, a private deployment would displace the built-in public-good root.
    displaced = run(safe_docker, "trust-root", "import", str(a.root_file), code=78)
    assert "refusing to replace the trusted root 'default'" in displaced.stderr
    assert "--name NAME" in displaced.stderr and "--replace" in displaced.stderr
    run(safe_docker, "trust-root", "import", str(a.root_file), "--replace")
    run(safe_docker, "policy", "add", f"{world.registry}/roots-a/*", "--identity", identity,
        "--tlog", "required")
    pulled(world, safe_docker, a.good)

    # A second deployment, unnamed: refused, and the first still verifies.
    second = run(safe_docker, "trust-root", "import", str(b.root_file), code=78)
    assert "another Sigstore deployment" in second.stderr
    pulled(world, safe_docker, a.good)

    # Named, and chosen by its own rule.
    run(safe_docker, "trust-root", "import", str(b.root_file), "--name", "b")
    run(safe_docker, "policy", "add", f"{world.registry}/roots-b/*", "--identity", identity,
        "--tlog", "required", "--trust-root", "b")
    listed = run(safe_docker, "policy", "list").stdout
    assert f"{world.registry}/roots-b/*\tverify" in listed and "trust_root=b" in listed
    roots = run(safe_docker, "trust-root", "list").stdout
    assert "default\tuser" in roots and "b\tuser" in roots
    pulled(world, safe_docker, a.good)
    pulled(world, safe_docker, b.good)
    refused_under(world, safe_docker, a.cross, "default")
    refused_under(world, safe_docker, b.cross, "b")

    # The same deployment again updates it (no --replace needed).
    again = run(safe_docker, "trust-root", "import", str(b.root_file), "--name", "b")
    assert again.stdout.startswith("updated trusted root 'b'")
