"""`load`: an archive is checked completely before docker is called at all.

Archives are built here from scratch (a synthetic image, signed with a throwaway key); the
real docker is replaced by a script that records its argv, so "nothing was loaded" means
the script never ran.
"""

from __future__ import annotations

import base64
import gzip
import io
import json
import os
import stat
import tarfile
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pytest

from safedocker import airgap
from safedocker._docker.engine import DockerCLI
from safedocker.airgap import load_archive
from safedocker.cache.store import Cache
from safedocker.errors import ExitCode, SafeDockerError
from safedocker.oci.media import DOCKER_MANIFEST, MANIFEST_MAX
from safedocker.policy.config import Config, KeyEntry
from safedocker.policy.model import Action, Policy, Rule
from safedocker.reference import Digest
from safedocker.signatures.cosign import SIGNATURE_ANNOTATION, SIMPLE_SIGNING_MEDIA_TYPE
from safedocker.signatures.cosignkey import generate_key_pair, load_private_key, sign
from safedocker.signatures.simplesigning import make_payload
from safedocker.trust.keys import load_public_key
from safedocker.verify.material import SignatureMaterial

if TYPE_CHECKING:
    from pathlib import Path

NAME = "127.0.0.1:5000/team/app"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


# --- a synthetic signed image and its archive ------------------------------------------------


class Key:
    def __init__(self, tmp_path: Path, name: str) -> None:
        private_pem, public_pem = generate_key_pair(b"pw")
        self.private = load_private_key(private_pem, b"pw")
        self.name = name
        path = tmp_path / f"{name}.pub"
        path.write_bytes(public_pem)
        self.entry = KeyEntry(name, load_public_key(public_pem, name).fingerprint, path)

    def material(self, digest: Digest) -> bytes:
        payload = make_payload(NAME, digest, None)
        signature = base64.b64encode(sign(self.private, payload)).decode()
        layer = {"mediaType": SIMPLE_SIGNING_MEDIA_TYPE, "size": len(payload),
                 "digest": str(Digest.of(payload)),
                 "annotations": {SIGNATURE_ANNOTATION: signature}}
        manifest = json.dumps({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "size": 2,
                       "digest": str(Digest.of(b"{}"))},
            "layers": [layer]}).encode()
        return SignatureMaterial(digest, manifest, {str(Digest.of(payload)): payload}).to_bytes()


def _tar(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


@dataclass
class Image:
    tag: str = "v1"
    layer: bytes = field(default_factory=lambda: _tar({"marker": os.urandom(16)}))

    @property
    def config(self) -> bytes:
        return json.dumps({"architecture": "amd64", "os": "linux",
                           "rootfs": {"type": "layers",
                                      "diff_ids": [str(Digest.of(self.layer))]}}).encode()

    @property
    def config_digest(self) -> Digest:
        return Digest.of(self.config)

    @property
    def manifest(self) -> bytes:
        compressed = gzip.compress(self.layer, mtime=0)
        return json.dumps({
            "schemaVersion": 2, "mediaType": DOCKER_MANIFEST,
            "config": {"mediaType": "application/vnd.docker.container.image.v1+json",
                       "size": len(self.config), "digest": str(self.config_digest)},
            "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                        "size": len(compressed), "digest": str(Digest.of(compressed))}],
        }).encode()

    @property
    def digest(self) -> Digest:
        return Digest.of(self.manifest)

    def docker_files(self) -> dict[str, bytes]:
        layer_dir = Digest.of(self.layer).hex
        return {f"{self.config_digest.hex}.json": self.config,
                f"{layer_dir}/VERSION": b"1.0", f"{layer_dir}/layer.tar": self.layer}

    def docker_entry(self) -> dict[str, object]:
        return {"Config": f"{self.config_digest.hex}.json", "RepoTags": None,
                "Layers": [f"{Digest.of(self.layer).hex}/layer.tar"]}


def docker_tar(images: list[Image], entries: list[dict[str, object]] | None = None) -> bytes:
    files: dict[str, bytes] = {}
    for image in images:
        files.update(image.docker_files())
    files["manifest.json"] = json.dumps(entries or [i.docker_entry() for i in images]).encode()
    return _tar(files)


def archive_files(images: list[Image], key: Key, inner: bytes | None = None
                  ) -> dict[str, bytes]:
    inner = docker_tar(images) if inner is None else inner
    files: dict[str, bytes] = {}
    for image in images:
        files[f"registry/{image.digest.tag_prefix}.manifest"] = image.manifest
        files[f"registry/{image.config_digest.tag_prefix}.config"] = image.config
        files[f"signatures/{image.digest.tag_prefix}.json"] = key.material(image.digest)
    index = {
        "format": "safe-docker-airgap", "version": 1, "created": 0,
        "images": [{"reference": f"{NAME}:{i.tag}", "name": NAME, "tag": i.tag,
                    "digest": str(i.digest), "platform_digest": str(i.digest),
                    "config_digest": str(i.config_digest)} for i in images],
        "media_types": {str(i.digest): DOCKER_MANIFEST for i in images},
        "docker_tar": {"sha256": str(Digest.of(inner)), "size": len(inner)},
    }
    return {"index.json": json.dumps(index).encode(), **files, "docker/image.tar": inner}


def write_archive(path: Path, files: dict[str, bytes],
                  extra: tuple[tarfile.TarInfo, ...] = ()) -> Path:
    with tarfile.open(path, "w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for info in extra:
            tar.addfile(info, io.BytesIO(b"x" * info.size) if info.size else None)
    return path


# --- fixtures: a recording docker, a cache, the local policy ---------------------------------


@dataclass
class FakeDocker:
    path: Path
    log: Path

    @property
    def calls(self) -> list[list[str]]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines()]


@pytest.fixture
def docker(tmp_path: Path) -> FakeDocker:
    log = tmp_path / "docker-calls.jsonl"
    script = tmp_path / "docker"
    script.write_text(
        "#!/usr/bin/env python3\n"
        "import json, sys\n"
        f"open({str(log)!r}, 'a').write(json.dumps(sys.argv[1:]) + '\\n')\n"
        "if sys.argv[1:3] == ['image', 'inspect']:\n"
        "    print(sys.argv[-1])\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return FakeDocker(script, log)


@pytest.fixture
def key(tmp_path: Path) -> Key:
    return Key(tmp_path, "alice")


@pytest.fixture
def config(key: Key) -> Config:
    rule = Rule(scope="127.0.0.1:5000/team/*", action=Action.VERIFY, keys=("alice",))
    return Config(keys={key.name: key.entry}, policy=Policy(user_rules=(rule,)))


@pytest.fixture
def cache(tmp_path: Path) -> Cache:
    return Cache.open(tmp_path / "cache")


def load(path: Path, config: Config, cache: Cache, docker: FakeDocker) -> airgap.LoadSummary:
    return load_archive(path, config=config, cache=cache, docker=DockerCLI(str(docker.path)))


def refused(path: Path, config: Config, cache: Cache, docker: FakeDocker,
            why: str) -> SafeDockerError:
    with pytest.raises(SafeDockerError) as info:
        load(path, config, cache, docker)
    assert info.value.exit_code == ExitCode.REFUSED, info.value.line()
    assert why in info.value.line(), info.value.line()
    assert "nothing was loaded" in info.value.line()
    assert docker.calls == []
    assert cache.lookup_tag(NAME, "v1") is None
    return info.value


# --- the good archive -------------------------------------------------------------------------


def test_signed_archive_is_loaded_tagged_and_recorded(tmp_path: Path, key: Key, config: Config,
                                                      cache: Cache, docker: FakeDocker) -> None:
    image = Image()
    path = write_archive(tmp_path / "a.tar", archive_files([image], key))
    summary = load(path, config, cache, docker)
    image_id = str(image.config_digest)
    assert [c[0] for c in docker.calls] == ["load", "image", "tag"]
    assert docker.calls[-1] == ["tag", image_id, f"{NAME}:v1"]
    assert [i.digest for i in summary.images] == [image.digest]
    record = cache.lookup_tag(NAME, "v1")
    assert record is not None and record.digest == image.digest
    assert cache.get_manifest(image.digest) is not None
    assert cache.get_config(image.config_digest) is not None
    assert cache.get_material(NAME, image.digest, "cosign-sig") is not None


# --- archive structure -------------------------------------------------------------------------


def test_path_traversal_member_is_refused(tmp_path: Path, key: Key, config: Config,
                                          cache: Cache, docker: FakeDocker) -> None:
    files = archive_files([Image()], key)
    files["../../etc/evil"] = b"x"
    refused(write_archive(tmp_path / "a.tar", files), config, cache, docker, "unexpected member")


def test_symlink_member_is_refused(tmp_path: Path, key: Key, config: Config, cache: Cache,
                                   docker: FakeDocker) -> None:
    link = tarfile.TarInfo("registry/link")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    path = write_archive(tmp_path / "a.tar", archive_files([Image()], key), (link,))
    refused(path, config, cache, docker, "not a regular file")


def test_duplicate_member_is_refused(tmp_path: Path, key: Key, config: Config, cache: Cache,
                                     docker: FakeDocker) -> None:
    files = archive_files([Image()], key)
    dup = tarfile.TarInfo("index.json")
    dup.size = 3
    refused(write_archive(tmp_path / "a.tar", files, (dup,)), config, cache, docker,
            "duplicate member")


def test_oversized_manifest_member_is_refused(tmp_path: Path, key: Key, config: Config,
                                              cache: Cache, docker: FakeDocker) -> None:
    image = Image()
    files = archive_files([image], key)
    files[f"registry/{image.digest.tag_prefix}.manifest"] = b" " * (MANIFEST_MAX + 1)
    refused(write_archive(tmp_path / "a.tar", files), config, cache, docker, "too large")


def test_oversized_docker_tar_is_refused(tmp_path: Path, key: Key, config: Config, cache: Cache,
                                         docker: FakeDocker, monkeypatch: pytest.MonkeyPatch
                                         ) -> None:
    monkeypatch.setattr(airgap, "DOCKER_TAR_MAX", 1024)
    path = write_archive(tmp_path / "a.tar", archive_files([Image()], key))
    refused(path, config, cache, docker, "larger than 1024 bytes")


@pytest.mark.parametrize(("missing", "why"), [
    ("index.json", "no index.json"),
    ("docker/image.tar", "no docker/image.tar"),
    (".manifest", "is missing"),
    (".config", "is missing"),
    ("signatures/", "no signature found"),
])
def test_missing_member_is_refused(tmp_path: Path, key: Key, config: Config, cache: Cache,
                                   docker: FakeDocker, missing: str, why: str) -> None:
    files = archive_files([Image()], key)
    victim = next(name for name in files if name.endswith(missing) or name.startswith(missing))
    del files[victim]
    refused(write_archive(tmp_path / "a.tar", files), config, cache, docker, why)


def test_compressed_archive_is_refused_with_a_hint(tmp_path: Path, key: Key, config: Config,
                                                   cache: Cache, docker: FakeDocker) -> None:
    plain = write_archive(tmp_path / "a.tar", archive_files([Image()], key))
    packed = tmp_path / "a.tar.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    error = refused(packed, config, cache, docker, "not a readable tar")
    assert "decompress" in error.hint


# --- digests and signatures ---------------------------------------------------------------------


def test_altered_manifest_is_refused(tmp_path: Path, key: Key, config: Config, cache: Cache,
                                     docker: FakeDocker) -> None:
    image = Image()
    files = archive_files([image], key)
    name = f"registry/{image.digest.tag_prefix}.manifest"
    files[name] = files[name].replace(b'"schemaVersion": 2', b'"schemaVersion":  2')
    refused(write_archive(tmp_path / "a.tar", files), config, cache, docker,
            "do not match the digest")


def test_altered_config_is_refused(tmp_path: Path, key: Key, config: Config, cache: Cache,
                                   docker: FakeDocker) -> None:
    image = Image()
    files = archive_files([image], key)
    name = f"registry/{image.config_digest.tag_prefix}.config"
    files[name] = files[name].replace(b"amd64", b"arm64")
    refused(write_archive(tmp_path / "a.tar", files), config, cache, docker,
            "do not hash to")


def test_signature_by_an_untrusted_key_is_refused(tmp_path: Path, config: Config, cache: Cache,
                                                  docker: FakeDocker) -> None:
    stranger = Key(tmp_path, "stranger")
    path = write_archive(tmp_path / "a.tar", archive_files([Image()], stranger))
    refused(path, config, cache, docker, "does not verify with any trusted key")


def test_one_bad_image_loads_nothing(tmp_path: Path, key: Key, config: Config, cache: Cache,
                                     docker: FakeDocker) -> None:
    good, bad = Image("v1"), Image("v2")
    files = archive_files([good, bad], key)
    files[f"signatures/{bad.digest.tag_prefix}.json"] = Key(tmp_path, "x").material(bad.digest)
    refused(write_archive(tmp_path / "a.tar", files), config, cache, docker,
            f"refused {NAME}:v2")


# --- the docker save tar ------------------------------------------------------------------


def _with_inner(images: list[Image], key: Key, inner: bytes) -> dict[str, bytes]:
    """An archive whose index.json agrees with ``inner`` (so the inner checks are reached)."""
    return archive_files(images, key, inner)


def test_flipped_byte_in_a_layer_is_refused(tmp_path: Path, key: Key, config: Config,
                                            cache: Cache, docker: FakeDocker) -> None:
    image = Image()
    inner = bytearray(docker_tar([image]))
    offset = inner.find(image.layer[512:528])  # the marker file's random content
    assert offset > 0
    inner[offset] ^= 0x01
    path = write_archive(tmp_path / "a.tar", _with_inner([image], key, bytes(inner)))
    refused(path, config, cache, docker, "was altered")


def test_docker_tar_changed_in_transit_is_refused(tmp_path: Path, key: Key, config: Config,
                                                  cache: Cache, docker: FakeDocker) -> None:
    image = Image()
    files = archive_files([image], key)
    inner = bytearray(files["docker/image.tar"])
    inner[-2000] ^= 0x01
    files["docker/image.tar"] = bytes(inner)
    refused(write_archive(tmp_path / "a.tar", files), config, cache, docker,
            "does not match index.json")


def test_docker_tar_with_an_unverified_image_is_refused(tmp_path: Path, key: Key,
                                                        config: Config, cache: Cache,
                                                        docker: FakeDocker) -> None:
    image, smuggled = Image(), Image("evil")
    inner = docker_tar([image, smuggled])
    path = write_archive(tmp_path / "a.tar", _with_inner([image], key, inner))
    refused(path, config, cache, docker, "not verified")


def test_docker_tar_retagging_other_names_is_refused(tmp_path: Path, key: Key, config: Config,
                                                     cache: Cache, docker: FakeDocker) -> None:
    image = Image()
    entry = {**image.docker_entry(), "RepoTags": ["docker.io/library/ubuntu:latest"]}
    inner = docker_tar([image], [entry])
    path = write_archive(tmp_path / "a.tar", _with_inner([image], key, inner))
    refused(path, config, cache, docker, "names that were not verified")


def test_docker_tar_with_traversal_or_escaping_link_is_refused(tmp_path: Path, key: Key,
                                                               config: Config, cache: Cache,
                                                               docker: FakeDocker) -> None:
    image = Image()
    files = image.docker_files()
    files["manifest.json"] = json.dumps([image.docker_entry()]).encode()
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo(f"{'a' * 64}/layer.tar")
        link.type, link.linkname = tarfile.SYMTYPE, "../../../etc/shadow"
        tar.addfile(link)
    path = write_archive(tmp_path / "a.tar", _with_inner([image], key, raw.getvalue()))
    refused(path, config, cache, docker, "link out of the archive")


def test_load_without_a_cache_refuses_before_docker(tmp_path: Path, key: Key, config: Config,
                                                    docker: FakeDocker) -> None:
    path = write_archive(tmp_path / "a.tar", archive_files([Image()], key))
    with pytest.raises(SafeDockerError) as info:
        load_archive(path, config=config, cache=None, docker=DockerCLI(str(docker.path)))
    assert info.value.exit_code == ExitCode.UNAVAILABLE
    assert docker.calls == []


def test_check_docker_tar_accepts_a_docker_save_tar_of_the_verified_image(
        tmp_path: Path) -> None:
    """A tar laid out as `docker save` writes it (not one written by `safe-docker save`)."""
    image = Image()
    inner = tmp_path / "inner.tar"
    inner.write_bytes(docker_tar([image]))
    airgap.check_docker_tar(inner, [airgap.AirgapImage(
        f"{NAME}:v1", NAME, "v1", image.digest, image.digest, image.config_digest)])


# --- multi-platform: the pinned digest is an index ----------------------------------------------


def _index_over(*images: Image) -> bytes:
    return json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{"mediaType": DOCKER_MANIFEST, "size": len(i.manifest),
                       "digest": str(i.digest),
                       "platform": {"architecture": "amd64", "os": "linux"}} for i in images],
    }).encode()


def _indexed_archive(image: Image, listed: Image, key: Key) -> dict[str, bytes]:
    files = archive_files([image], key)
    index_bytes = _index_over(listed)
    index_digest = Digest.of(index_bytes)
    doc = json.loads(files["index.json"])
    doc["images"][0]["digest"] = str(index_digest)
    doc["media_types"][str(index_digest)] = "application/vnd.oci.image.index.v1+json"
    files["index.json"] = json.dumps(doc).encode()
    files[f"registry/{index_digest.tag_prefix}.manifest"] = index_bytes
    del files[f"signatures/{image.digest.tag_prefix}.json"]
    files[f"signatures/{index_digest.tag_prefix}.json"] = key.material(index_digest)
    return files


def test_signed_index_loads_its_platform_image(tmp_path: Path, key: Key, config: Config,
                                               cache: Cache, docker: FakeDocker) -> None:
    image = Image()
    path = write_archive(tmp_path / "a.tar", _indexed_archive(image, image, key))
    summary = load(path, config, cache, docker)
    [loaded] = summary.images
    assert loaded.digest == Digest.of(_index_over(image))
    assert loaded.platform_digest == image.digest
    record = cache.lookup_tag(NAME, "v1")
    assert record is not None and record.digest == loaded.digest
    assert cache.get_manifest(image.digest) is not None


def test_platform_image_not_in_the_signed_index_is_refused(tmp_path: Path, key: Key,
                                                           config: Config, cache: Cache,
                                                           docker: FakeDocker) -> None:
    image, other = Image(), Image()
    path = write_archive(tmp_path / "a.tar", _indexed_archive(image, other, key))
    refused(path, config, cache, docker, "does not list")
