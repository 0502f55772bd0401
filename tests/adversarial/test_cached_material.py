"""Cached signature material decides nothing online, and offline only within
offline_max_age by a date that is not in the future (A2-3, A2-4); through the real shim,
docker and registry.

A refused run is checked the same way everywhere: the documented exit code, and docker
itself asked whether the image is there (nothing pulled) and whether a container of it
exists (nothing started).
"""

from __future__ import annotations

import json
import sqlite3
import time
import urllib.request
from typing import TYPE_CHECKING

from tests.e2e.conftest import ok, trust_new_key_and_sign

if TYPE_CHECKING:
    from pathlib import Path

    from tests.e2e.conftest import SafeDocker
    from tests.world import Image, World


def _withdraw_signature(world: World, image: Image) -> None:
    """What a publisher does to withdraw a key signature: delete the `.sig` manifest."""
    repository = image.repo.partition("/")[2]
    tag = image.digest.replace(":", "-") + ".sig"
    base = f"http://{world.registry}/v2/{repository}/manifests"
    request = urllib.request.Request(  # noqa: S310 - the test registry on loopback
        f"{base}/{tag}", headers={"Accept": "application/vnd.oci.image.manifest.v1+json"})
    with urllib.request.urlopen(request, timeout=30) as resp:  # noqa: S310 - loopback
        digest = resp.headers["Docker-Content-Digest"]
    delete = urllib.request.Request(f"{base}/{digest}", method="DELETE")  # noqa: S310
    urllib.request.urlopen(delete, timeout=30).close()  # noqa: S310 - loopback


def _nothing_of(world: World, image: Image) -> None:
    assert not world.has_image(image.pinned) and not world.has_image(image.tagged)
    containers = world.run_docker("ps", "-aq", "--filter", f"ancestor={image.pinned}")
    assert containers.stdout.strip() == b""


def _verified_then_withdrawn(world: World, safe_docker: SafeDocker, tmp_path: Path,
                             name: str) -> Image:
    image = world.push_image(name)
    trust_new_key_and_sign(safe_docker, tmp_path, f"{world.registry}/{name}", image)
    ok(safe_docker, "pull", image.tagged)  # verified online: material now cached
    _withdraw_signature(world, image)
    world.remove_images(image.pinned, image.tagged)
    return image


def test_an_online_run_refuses_an_image_whose_signature_the_registry_no_longer_has(
        world: World, safe_docker: SafeDocker, tmp_path: Path) -> None:
    # A2-4: the warm path reused the cached material with no age bound.
    image = _verified_then_withdrawn(world, safe_docker, tmp_path, "a2warm/app")
    result = safe_docker("run", "--rm", "--network", "none", image.tagged, "true")
    assert result.exit_code == 77, result.stderr
    assert "no signature" in result.stderr
    _nothing_of(world, image)


def test_offline_a_cache_dated_in_the_future_decides_nothing(
        world: World, safe_docker: SafeDocker, tmp_path: Path) -> None:
    # A2-3: a future `fetched_at` written into the user's own cache never aged.
    image = _verified_then_withdrawn(world, safe_docker, tmp_path, "a2future/app")
    (safe_docker.config_dir / "config.toml").write_text(
        'offline_max_age = "1h"\n' + (safe_docker.config_dir / "config.toml").read_text())
    db = sqlite3.connect(safe_docker.cache_dir / "cache.sqlite3")
    with db:
        for rowid, data in db.execute("SELECT rowid, data FROM material").fetchall():
            doc = json.loads(data)
            doc["fetched_at"] = time.time() + 10 * 365 * 86400
            db.execute("UPDATE material SET data=? WHERE rowid=?",
                       (json.dumps(doc).encode(), rowid))
    db.close()
    result = safe_docker("run", "--rm", "--network", "none", image.tagged, "true",
                         env={"SAFE_DOCKER_OFFLINE": "1"})
    assert result.exit_code == 69, result.stderr
    assert "in the future" in result.stderr
    _nothing_of(world, image)
