"""Airgap transfer end to end: `save` on the session engine, `load` on a second, fresh
engine whose safe-docker home has only the key and the policy, with the registry stopped.

A loaded image must then run pinned and offline; an archive with a flipped byte (in a
registry manifest or in a layer) must be refused with 77 and leave the fresh engine empty.
"""

from __future__ import annotations

import io
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
    ok(source, "save", image.tagged, "-o", str(archive))

    target = SafeDocker(world=fresh_world, home=tmp_path_factory.mktemp("sd-target"))
    ok(target, "keys", "add", "demo", str(keys / "demo.pub"))
    ok(target, "policy", "add", scope, "--key", "demo")
    return Transfer(source, target, image, archive)


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
        names = sorted(tar.getnames())
        index = json.loads(tar.extractfile("index.json").read())  # type: ignore[union-attr]
    digest = Digest.parse(transfer.image.digest)
    assert f"registry/{digest.tag_prefix}.manifest" in names
    assert f"signatures/{digest.tag_prefix}.json" in names
    assert "docker/image.tar" in names
    [entry] = index["images"]
    assert entry["reference"] == transfer.image.tagged
    assert entry["digest"] == transfer.image.digest


def test_save_refuses_an_unsigned_image_and_writes_nothing(transfer: Transfer, world: World,
                                                           tmp_path: Path) -> None:
    unsigned = world.push_image(f"{SPACE}/unsigned")
    out = tmp_path / "never.tar"
    result = transfer.source("save", unsigned.tagged, "-o", str(out))
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
        result = transfer.target("load", "-i", str(bad))
    assert result.exit_code == 77, (result.stdout, result.stderr)
    assert "nothing was loaded" in result.stderr
    assert engine_images(fresh_world) == []


def _rebuilt_with_flipped_layer(archive: Path, out: Path) -> None:
    """Flip a byte inside a layer tar and fix index.json's checksum of the docker tar, as
    an attacker who rewrites the whole archive would: only the signed chain can tell."""
    with tarfile.open(archive) as tar:
        files = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}  # type: ignore[union-attr]
    inner = bytearray(files["docker/image.tar"])
    with tarfile.open(fileobj=io.BytesIO(bytes(inner))) as tar:
        layer = _member(tar, "layer.tar")
    flip(inner, layer.offset_data + layer.size // 2)
    files["docker/image.tar"] = bytes(inner)
    index = json.loads(files["index.json"])
    index["docker_tar"] = {"sha256": str(Digest.of(bytes(inner))), "size": len(inner)}
    files["index.json"] = json.dumps(index).encode()
    with tarfile.open(out, "w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def test_flipped_layer_byte_loads_nothing(transfer: Transfer, fresh_world: World,
                                          tmp_path: Path, world: World) -> None:
    wipe(fresh_world)
    rebuilt = tmp_path / "layer.tar"
    _rebuilt_with_flipped_layer(transfer.archive, rebuilt)
    raw = bytearray(transfer.archive.read_bytes())  # and the plain flip, index untouched
    with tarfile.open(transfer.archive) as tar:
        docker_tar = _member(tar, "docker/image.tar")
    flip(raw, docker_tar.offset_data + docker_tar.size // 2)
    plain = tmp_path / "plain.tar"
    plain.write_bytes(bytes(raw))
    with registry_down(world):
        for bad, why in ((rebuilt, "was altered"), (plain, "does not match index.json")):
            result = transfer.target("load", "-i", str(bad))
            assert result.exit_code == 77, (bad, result.stdout, result.stderr)
            assert why in result.stderr, result.stderr
            assert engine_images(fresh_world) == []


def test_load_on_a_fresh_engine_then_run_pinned_offline(transfer: Transfer,
                                                        fresh_world: World,
                                                        world: World) -> None:
    wipe(fresh_world)
    image = transfer.image
    with registry_down(world):
        loaded = transfer.target("load", "-i", str(transfer.archive))
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
