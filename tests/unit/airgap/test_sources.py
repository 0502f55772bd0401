"""Signature material travels under the repository it was read from: a rule with a
``signatures_repository`` finds it there after `airgap load`, offline; material dated in
the future is recorded dated at the load."""

from __future__ import annotations

import dataclasses
import io
import json
import tarfile
import time
from typing import TYPE_CHECKING

import pytest

from safedocker._docker.engine import DockerCLI
from safedocker.airgap.archive import AirgapImage, Packed, locate, read_index
from safedocker.airgap.load import LoadSummary, load_archive
from safedocker.airgap.save import choose_layers, scan_docker_tar
from safedocker.airgap.save import write_archive as save_archive
from safedocker.cache.store import Cache
from safedocker.errors import ExitCode, SafeDockerError
from safedocker.oci.media import DOCKER_MANIFEST
from safedocker.policy.config import Config
from safedocker.policy.model import Action, Policy, Rule
from safedocker.reference import parse_reference
from safedocker.verify.material import SignatureMaterial
from safedocker.verify.verifier import Verifier
from tests.unit.airgap.synthetic import (
    NAME,
    FakeDocker,
    Image,
    Key,
    archive_files,
    index_json,
    write_archive,
)

if TYPE_CHECKING:
    from pathlib import Path

SIGS = "127.0.0.1:5000/team/signatures"
SCOPE = "127.0.0.1:5000/team/*"


@pytest.fixture(scope="module")
def key(tmp_path_factory: pytest.TempPathFactory) -> Key:
    return Key(tmp_path_factory.mktemp("keys"), "alice")


def _config(key: Key, signatures_repository: str | None) -> Config:
    rule = Rule(scope=SCOPE, action=Action.VERIFY, keys=("alice",),
                signatures_repository=signatures_repository)
    return Config(keys={key.name: key.entry}, policy=Policy(user_rules=(rule,)))


def _load(path: Path, config: Config, cache: Cache, tmp_path: Path) -> LoadSummary:
    docker = FakeDocker.make(tmp_path)
    return load_archive(path, config=config, cache=cache, docker=DockerCLI(str(docker.path)))


def _sourced_files(image: Image, material: bytes, sources: list[str]) -> dict[str, bytes]:
    """A version 3 archive: the image's material filed under ``sources[0]``."""
    own = archive_files_without_signatures(image)
    files = {"index.json": index_json([image], version=3, signature_sources=sources)}
    files.update({k: v for k, v in own.items() if k.startswith("registry/")})
    files[f"signatures/0/{image.digest.tag_prefix}.json"] = material
    files.update({k: v for k, v in own.items() if k.startswith("layers/")})
    return files


def archive_files_without_signatures(image: Image) -> dict[str, bytes]:
    files = {f"registry/{image.digest.tag_prefix}.manifest": image.manifest,
             f"registry/{image.config_digest.tag_prefix}.config": image.config}
    files.update({f"layers/{d.tag_prefix}": layer
                  for d, layer in zip(image.diff_ids, image.layers, strict=True)})
    return files


def _offline_verdict_accepted(config: Config, cache: Cache, image: Image) -> bool:
    verifier = Verifier(config, offline=True, cache=cache)
    verdict = verifier.verify(parse_reference(f"{NAME}:{image.tag}"))
    return verdict.accepted and verdict.offline


def test_material_of_a_signatures_repository_is_recorded_there_and_verifies_offline(
        tmp_path: Path, key: Key) -> None:
    image = Image()
    config = _config(key, SIGS)
    cache = Cache.open(tmp_path / "cache")
    path = write_archive(tmp_path / "a.tar",
                         _sourced_files(image, key.material(image.digest), [SIGS]))
    [loaded] = _load(path, config, cache, tmp_path).images
    assert loaded.signers == ("alice",)
    assert cache.get_material(SIGS, image.digest, "cosign-sig") is not None
    assert cache.get_material(NAME, image.digest, "cosign-sig") is None
    assert _offline_verdict_accepted(config, cache, image)


def test_a_version_2_archive_cannot_satisfy_a_rule_that_reads_another_repository(
        tmp_path: Path, key: Key) -> None:
    """Version 2 material is the image repository's: a signatures_repository rule finds
    none in it, so the load refuses (77) and docker is never called."""
    docker = FakeDocker.make(tmp_path)
    path = write_archive(tmp_path / "a.tar", archive_files([Image()], key))
    with pytest.raises(SafeDockerError) as info:
        load_archive(path, config=_config(key, SIGS), cache=Cache.open(tmp_path / "cache"),
                     docker=DockerCLI(str(docker.path)))
    assert info.value.exit_code == ExitCode.REFUSED
    assert docker.calls == []


def _packed(image: Image, materials: dict[str, bytes], name: str = NAME) -> Packed:
    entry = AirgapImage(f"{name}:{image.tag}", name, image.tag, image.digest, image.digest,
                        image.config_digest)
    return Packed(entry, {image.digest: (DOCKER_MANIFEST, image.manifest)}, image.config,
                  {source: {image.digest: data} for source, data in materials.items()})


def _save(tmp_path: Path, items: list[tuple[Packed, Image]]) -> Path:
    """What `airgap save` writes for ``items`` (docker's tar stands in as a plain stream)."""
    source = io.BytesIO()
    with tarfile.open(fileobj=source, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for _, image in items:
            for layer in image.layers:
                info = tarfile.TarInfo(f"blobs/sha256/{len(tar.getmembers())}")
                info.size = len(layer)
                tar.addfile(info, io.BytesIO(layer))
    source.seek(0)
    packed = [item for item, _ in items]
    layers = choose_layers(packed, [locate(item)[1] for item in packed],
                           scan_docker_tar(source))
    path = tmp_path / "saved.tar"
    with open(path, "wb") as out:
        save_archive(out, packed, source, layers)
    return path


def _index_and_names(path: Path) -> tuple[dict[str, object], list[str]]:
    with tarfile.open(path) as tar:
        index = json.loads(tar.extractfile("index.json").read())  # type: ignore[union-attr]
        return index, tar.getnames()


def test_save_files_material_under_its_source_and_load_records_it_there(
        tmp_path: Path, key: Key) -> None:
    image = Image()
    material = key.material(image.digest)
    path = _save(tmp_path, [(_packed(image, {SIGS: material}), image)])
    index, names = _index_and_names(path)
    assert index["version"] == 3
    assert index["signature_sources"] == [SIGS]
    assert f"signatures/0/{image.digest.tag_prefix}.json" in names
    assert f"signatures/{image.digest.tag_prefix}.json" not in names
    cache = Cache.open(tmp_path / "cache")
    _load(path, _config(key, SIGS), cache, tmp_path)
    record = cache.get_material(SIGS, image.digest, "cosign-sig")
    assert record is not None and record.data == material


def test_save_keeps_version_2_when_every_material_is_the_images_own(
        tmp_path: Path, key: Key) -> None:
    image = Image()
    index, names = _index_and_names(
        _save(tmp_path, [(_packed(image, {NAME: key.material(image.digest)}), image)]))
    assert index["version"] == 2 and "signature_sources" not in index
    assert f"signatures/{image.digest.tag_prefix}.json" in names


def test_one_digest_in_two_repositories_keeps_each_repositorys_material(
        tmp_path: Path, key: Key) -> None:
    """Version 2 would file both under one member name; version 3 keeps them apart."""
    image = Image()
    other = "127.0.0.1:5000/team/copy"
    first, second = key.material(image.digest), Key(tmp_path, "bob").material(image.digest)
    path = _save(tmp_path, [(_packed(image, {NAME: first}), image),
                            (_packed(image, {other: second}, other), image)])
    index, _ = _index_and_names(path)
    assert index["version"] == 3
    assert index["signature_sources"] == sorted([NAME, other])
    cache = Cache.open(tmp_path / "cache")
    config = Config(keys={key.name: key.entry}, policy=Policy(user_rules=(
        Rule(scope=SCOPE, action=Action.ACCEPT),)))
    _load(path, config, cache, tmp_path)
    assert [cache.get_material(n, image.digest, "cosign-sig").data  # type: ignore[union-attr]
            for n in (NAME, other)] == [first, second]


def test_material_dated_in_the_future_is_recorded_dated_at_the_load(
        tmp_path: Path, key: Key) -> None:
    image = Image()
    future = dataclasses.replace(SignatureMaterial.from_bytes(key.material(image.digest)),
                                 fetched_at=time.time() + 10 * 365 * 86400)
    files = archive_files([image], key)
    files[f"signatures/{image.digest.tag_prefix}.json"] = future.to_bytes()
    cache = Cache.open(tmp_path / "cache")
    before = time.time()
    _load(write_archive(tmp_path / "a.tar", files), _config(key, None), cache, tmp_path)
    after = time.time()
    record = cache.get_material(NAME, image.digest, "cosign-sig")
    assert record is not None
    assert before <= SignatureMaterial.from_bytes(record.data).fetched_at <= after


@pytest.mark.parametrize(("index", "why"), [
    ({"version": 2, "signature_sources": [SIGS]}, "version 2 index.json names signature"),
    ({"version": 3}, "names no signature sources"),
    ({"version": 3, "signature_sources": []}, "names no signature sources"),
    ({"version": 3, "signature_sources": ["Not A Repository"]}, "malformed signature source"),
    ({"version": 3, "signature_sources": [f"{SIGS}:v1"]}, "malformed signature source"),
    ({"version": 3, "signature_sources": [SIGS, SIGS]}, "names a signature source twice"),
    ({"version": 4}, "archive version 4, this safe-docker reads versions 2 and 3"),
])
def test_a_malformed_signature_source_list_is_refused(index: dict[str, object],
                                                       why: str) -> None:
    with pytest.raises(SafeDockerError) as info:
        read_index(index_json([Image()], **index), "a.tar")
    assert info.value.exit_code == ExitCode.REFUSED
    assert why in info.value.line()
