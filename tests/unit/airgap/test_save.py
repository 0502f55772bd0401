"""`airgap save` reads docker's tar by content only: whichever layout `docker save` wrote
(20.10's `<id>/layer.tar` with symlinks, 25+'s OCI `blobs/sha256/…`, the containerd store's
compressed blobs), the layers are the members that hash to the signed digests; what it
writes is loaded back by `airgap load`."""

from __future__ import annotations

import io
import json
import tarfile
from typing import TYPE_CHECKING

import pytest

from safedocker._docker.engine import DockerCLI
from safedocker.airgap.archive import AirgapImage, Packed, locate
from safedocker.airgap.load import load_archive
from safedocker.airgap.save import choose_layers, scan_docker_tar, write_archive
from safedocker.cache.store import Cache
from safedocker.errors import Refused
from safedocker.oci.media import DOCKER_MANIFEST
from safedocker.policy.config import Config
from safedocker.policy.model import Action, Policy, Rule
from safedocker.reference import Digest
from tests.unit.airgap.synthetic import NAME, FakeDocker, Image, Key, random_layer

if TYPE_CHECKING:
    from pathlib import Path


def packed(image: Image, key: Key) -> Packed:
    entry = AirgapImage(f"{NAME}:{image.tag}", NAME, image.tag, image.digest, image.digest,
                        image.config_digest)
    return Packed(entry, {image.digest: (DOCKER_MANIFEST, image.manifest)}, image.config,
                  {NAME: {image.digest: key.material(image.digest)}})


def _docker_tar(members: list[tarfile.TarInfo], data: dict[str, bytes]) -> io.BytesIO:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for info in members:
            payload = data.get(info.name)
            if payload is not None:
                info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload) if payload is not None else None)
    out.seek(0)
    return out


def _file(name: str) -> tarfile.TarInfo:
    return tarfile.TarInfo(name)


def _dir(name: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    return info


def legacy_save(image: Image) -> io.BytesIO:
    """As docker 20.10 writes it: v1 directories; a repeated diff ID is a symlink."""
    members, data = [], {}
    seen: dict[Digest, str] = {}
    for i, (layer, diff_id) in enumerate(zip(image.layers, image.diff_ids, strict=True)):
        v1 = f"{i:064x}"
        members += [_dir(v1), _file(f"{v1}/VERSION"), _file(f"{v1}/json")]
        data[f"{v1}/VERSION"], data[f"{v1}/json"] = b"1.0", b"{}"
        if diff_id in seen:
            link = tarfile.TarInfo(f"{v1}/layer.tar")
            link.type, link.linkname = tarfile.SYMTYPE, f"../{seen[diff_id]}/layer.tar"
            members.append(link)
        else:
            seen[diff_id] = v1
            members.append(_file(f"{v1}/layer.tar"))
            data[f"{v1}/layer.tar"] = layer
    config = f"{image.config_digest.hex}.json"
    members += [_file(config), _file("manifest.json"), _file("repositories")]
    data[config] = image.config
    data["manifest.json"] = json.dumps([{"Config": config, "RepoTags": None, "Layers": []}]
                                       ).encode()
    data["repositories"] = b"{}"
    return _docker_tar(members, data)


def oci_save(image: Image, *, compressed: bool) -> io.BytesIO:
    """As docker 25+ writes it: an OCI layout; the containerd store keeps the gzip blobs."""
    blobs = image.blobs if compressed else image.layers
    members = [_dir("blobs"), _dir("blobs/sha256")]
    data = {f"blobs/sha256/{Digest.of(b).hex}": b for b in [*blobs, image.config]}
    members += [_file(name) for name in data]
    for name in ("index.json", "manifest.json", "oci-layout"):
        members.append(_file(name))
        data[name] = b"{}"
    return _docker_tar(members, data)


@pytest.fixture(scope="module")
def key(tmp_path_factory: pytest.TempPathFactory) -> Key:
    return Key(tmp_path_factory.mktemp("keys"), "alice")


def _save_and_load(tmp_path: Path, image: Image, key: Key, docker_tar: io.BytesIO
                   ) -> dict[str, bytes]:
    item = packed(image, key)
    _, slots = locate(item)
    layers = choose_layers([item], [slots], scan_docker_tar(docker_tar))
    archive = tmp_path / "airgap.tar"
    with open(archive, "wb") as out:
        write_archive(out, [item], docker_tar, layers)
    docker = FakeDocker.make(tmp_path)
    rule = Rule(scope="127.0.0.1:5000/team/*", action=Action.VERIFY, keys=("alice",))
    config = Config(keys={key.name: key.entry}, policy=Policy(user_rules=(rule,)))
    load_archive(archive, config=config, cache=Cache.open(tmp_path / "cache"),
                 docker=DockerCLI(str(docker.path)))
    with tarfile.open(archive) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers()}  # type: ignore[union-attr]


def test_a_docker_20_10_save_with_a_repeated_layer_gives_each_layer_once(
        tmp_path: Path, key: Key) -> None:
    same = random_layer()
    image = Image(layers=[same, random_layer(), same])
    members = _save_and_load(tmp_path, image, key, legacy_save(image))
    layers = [name for name in members if name.startswith("layers/")]
    assert layers == [f"layers/{d.tag_prefix}" for d in image.diff_ids[:2]]
    assert list(members)[0] == "index.json"
    assert not any(name.endswith(("manifest.json", "repositories", "VERSION")) for name in members)


@pytest.mark.parametrize("compressed", [False, True], ids=["graphdriver", "containerd"])
def test_a_docker_25_oci_layout_save_is_read_by_content(tmp_path: Path, key: Key,
                                                        compressed: bool) -> None:
    image = Image(layers=[random_layer(), random_layer()])
    members = _save_and_load(tmp_path, image, key, oci_save(image, compressed=compressed))
    expected = image.blobs if compressed else image.layers
    assert [members[f"layers/{Digest.of(b).tag_prefix}"] for b in expected] == expected


def test_a_save_that_lacks_a_signed_layer_is_refused(key: Key) -> None:
    image = Image(layers=[random_layer(), random_layer()])
    other = Image(layers=[image.layers[0]])
    item = packed(image, key)
    _, slots = locate(item)
    with pytest.raises(Refused, match="docker save wrote no layer 2"):
        choose_layers([item], [slots], scan_docker_tar(legacy_save(other)))


def test_docker_tar_with_a_renaming_pax_header_is_refused() -> None:
    out = io.BytesIO()
    info = tarfile.TarInfo("layer.tar")
    info.pax_headers = {"path": "manifest.json"}
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        tar.addfile(info)
    out.seek(0)
    with pytest.raises(ValueError, match="sets 'path'"):
        scan_docker_tar(out)
