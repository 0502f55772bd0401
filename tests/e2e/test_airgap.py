"""Airgap transfer end to end: `airgap save` on the session engine, `airgap load` on a
second, fresh engine whose safe-docker home has only the key and the policy, with the
registry stopped.

A loaded image must then run pinned and offline; an archive with a flipped byte (in a
registry manifest or in a layer) must be refused with 77 and leave the fresh engine empty.
(The attacks on the archive's tar itself are in tests/adversarial/test_airgap_load.py.)
"""

from __future__ import annotations

import json
import shutil
import tarfile
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from safedocker.reference import Digest
from tests.e2e.conftest import SafeDocker, ok, trust_new_key_and_sign
from tests.world import World

if TYPE_CHECKING:
    from collections.abc import Iterator

    from tests.world import Image

SPACE = "airgap"


@dataclass(frozen=True)
class Transfer:
    source: SafeDocker  # the session engine; online, key pair, policy
    target: SafeDocker  # a fresh engine; public key and policy only
    image: Image
    archive: Path
    keys: Path  # the key pair `demo` (the source's)



@pytest.fixture(scope="module")
def fresh_world() -> Iterator[World]:
    root = Path(tempfile.mkdtemp(prefix="sdf-", dir="/tmp"))
    w = World(root=root).start()
    w.stop_registry()  # the fresh machine has no registry to reach
    try:
        yield w
    finally:
        w.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def transfer(world: World, fresh_world: World, tmp_path_factory: pytest.TempPathFactory
             ) -> Transfer:
    keys = tmp_path_factory.mktemp("airgap-keys")
    source = SafeDocker(world=world, home=tmp_path_factory.mktemp("sd-source"))
    scope = f"{world.registry}/{SPACE}/*"
    image = world.push_image(f"{SPACE}/app")
    trust_new_key_and_sign(source, keys, scope, image)
    archive = tmp_path_factory.mktemp("airgap") / "images.tar"
    ok(source, "airgap", "save", image.tagged, "-o", str(archive))

    target = SafeDocker(world=fresh_world, home=tmp_path_factory.mktemp("sd-target"))
    ok(target, "keys", "add", "demo", str(keys / "demo.pub"))
    ok(target, "policy", "add", scope, "--key", "demo")
    return Transfer(source, target, image, archive, keys)


@contextmanager
def registry_down(world: World) -> Iterator[None]:
    port = world.registry_port
    world.stop_registry()
    try:
        yield
    finally:
        world.start_registry(port)


def wipe(engine: World) -> None:
    ids = engine.run_docker("images", "-aq").stdout.decode().split()
    if ids:
        engine.run_docker("rmi", "-f", *ids)


def engine_images(engine: World) -> list[str]:
    return engine.run_docker("images", "-aq").stdout.decode().split()


def _member(tar: tarfile.TarFile, predicate: str) -> tarfile.TarInfo:
    return next(m for m in tar.getmembers() if predicate in m.name)


def flip(data: bytearray, offset: int) -> None:
    data[offset] ^= 0x01


def test_save_writes_one_archive_with_the_signed_bytes(transfer: Transfer) -> None:
    with tarfile.open(transfer.archive) as tar:
        names = tar.getnames()
        index = json.loads(tar.extractfile("index.json").read())  # type: ignore[union-attr]
        members = tar.getmembers()
    digest = Digest.parse(transfer.image.digest)
    [entry] = index["images"]
    config = Digest.parse(entry["config_digest"])
    diff_ids = json.loads(transfer.source.world.run_docker(  # the engine that saved it
        "image", "inspect", "--format", "{{json .RootFS.Layers}}", str(config)).stdout)
    assert names[0] == "index.json"
    assert f"registry/{digest.tag_prefix}.manifest" in names
    assert f"registry/{config.tag_prefix}.config" in names
    assert f"signatures/{digest.tag_prefix}.json" in names
    layers = [n for n in names if n.startswith("layers/")]
    assert layers == [f"layers/{Digest.parse(d).tag_prefix}" for d in diff_ids]
    assert names[-1] == layers[-1]
    assert all(m.isfile() and not m.pax_headers for m in members)
    assert entry["reference"] == transfer.image.tagged
    assert entry["digest"] == transfer.image.digest
    assert index["version"] == 2


def test_save_refuses_an_unsigned_image_and_writes_nothing(transfer: Transfer, world: World,
                                                           tmp_path: Path) -> None:
    unsigned = world.push_image(f"{SPACE}/unsigned")
    out = tmp_path / "never.tar"
    result = transfer.source("airgap", "save", unsigned.tagged, "-o", str(out))
    assert result.exit_code == 77, (result.stdout, result.stderr)
    assert "no signature" in result.stderr
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


def test_tampered_manifest_loads_nothing(transfer: Transfer, fresh_world: World,
                                         tmp_path: Path, world: World) -> None:
    wipe(fresh_world)
    data = bytearray(transfer.archive.read_bytes())
    with tarfile.open(transfer.archive) as tar:
        member = _member(tar, ".manifest")
    flip(data, member.offset_data + member.size // 2)
    bad = tmp_path / "bad.tar"
    bad.write_bytes(bytes(data))
    with registry_down(world):
        result = transfer.target("airgap", "load", "-i", str(bad))
    assert result.exit_code == 77, (result.stdout, result.stderr)
    assert "nothing was loaded" in result.stderr
    assert engine_images(fresh_world) == []


def test_flipped_layer_byte_loads_nothing(transfer: Transfer, fresh_world: World,
                                          tmp_path: Path, world: World) -> None:
    wipe(fresh_world)
    raw = bytearray(transfer.archive.read_bytes())
    with tarfile.open(transfer.archive) as tar:
        layer = _member(tar, "layers/")
    flip(raw, layer.offset_data + layer.size // 2)
    bad = tmp_path / "layer.tar"
    bad.write_bytes(bytes(raw))
    with registry_down(world):
        result = transfer.target("airgap", "load", "-i", str(bad))
    assert result.exit_code == 77, (result.stdout, result.stderr)
    assert "was altered" in result.stderr, result.stderr
    assert engine_images(fresh_world) == []


def test_load_on_a_fresh_engine_then_run_pinned_offline(transfer: Transfer,
                                                        fresh_world: World,
                                                        world: World) -> None:
    wipe(fresh_world)
    image = transfer.image
    with registry_down(world):
        loaded = transfer.target("airgap", "load", "-i", str(transfer.archive))
        assert loaded.exit_code == 0, (loaded.stdout, loaded.stderr)
        assert image.digest in loaded.stdout
        assert fresh_world.has_image(image.tagged)

        verified = transfer.target("verify", image.tagged, env={"SAFE_DOCKER_OFFLINE": "1"})
        assert verified.exit_code == 0, verified.stderr

        dry = transfer.target("run", "--rm", "--network", "none", image.tagged, "echo", "hi",
                              env={"SAFE_DOCKER_OFFLINE": "1", "SAFE_DOCKER_DRY_RUN": "1"})
        assert dry.exit_code == 0, dry.stderr
        [argv] = dry.dry_run_argvs
        config_digest = json.loads(fresh_world.run_docker(
            "image", "inspect", "--format", "{{json .Id}}", image.tagged).stdout)
        assert config_digest in argv or image.pinned in argv, argv
        assert "--pull=never" in argv
        assert image.tagged not in argv

        run = transfer.target("run", "--rm", "--network", "none", image.tagged, "echo", "hi",
                              env={"SAFE_DOCKER_OFFLINE": "1"})
        assert run.exit_code == 0, run.stderr
        assert run.stdout.strip() == "hi"
        assert "decided offline" in run.stderr


def test_two_images_sharing_a_base_layer_travel_in_one_archive_and_run_offline(
        transfer: Transfer, fresh_world: World, world: World, tmp_path: Path) -> None:
    """A two-layer image (committed on top of the first) and its base, in one archive:
    the shared layer travels once, docker loads both from safe-docker's own tar."""
    base = transfer.image
    world.run_docker("pull", "-q", base.pinned)
    container = f"airgap-commit-{tmp_path.name[-8:]}"
    world.run_docker("run", "--name", container, "--network", "none", base.pinned,
                     "sh", "-c", "echo second > /second")
    top_ref = f"{world.registry}/{SPACE}/top:v1"
    world.run_docker("commit", container, top_ref)
    world.run_docker("rm", container)
    pushed = world.run_docker("push", top_ref).stdout.decode()
    digest = next(w for line in pushed.splitlines() if "digest:" in line
                  for w in line.split() if w.startswith("sha256:"))
    ok(transfer.source, "sign", "--key", str(transfer.keys / "demo.key"), top_ref)
    archive = tmp_path / "two.tar"
    ok(transfer.source, "airgap", "save", base.tagged, top_ref, "-o", str(archive))
    with tarfile.open(archive) as tar:
        layers = [n for n in tar.getnames() if n.startswith("layers/")]
    assert len(layers) == 2  # base layer once, the committed layer once

    wipe(fresh_world)
    with registry_down(world):
        loaded = transfer.target("airgap", "load", "-i", str(archive))
        assert loaded.exit_code == 0, (loaded.stdout, loaded.stderr)
        assert digest in loaded.stdout
        run = transfer.target("run", "--rm", "--network", "none", top_ref, "cat", "/second",
                              env={"SAFE_DOCKER_OFFLINE": "1"})
        assert run.exit_code == 0, run.stderr
        assert run.stdout.strip() == "second"
