"""`airgap load`: an archive is checked completely before docker is called at all, and
docker is handed a tar written here from the verified bytes, never the user's archive."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
import time
import tracemalloc
from typing import TYPE_CHECKING

import pytest

from safedocker._docker.engine import DockerCLI
from safedocker._internal import ustar
from safedocker.airgap import archive as airgap_archive
from safedocker.airgap.load import LoadSummary, load_archive
from safedocker.cache.store import Cache
from safedocker.errors import ExitCode, SafeDockerError
from safedocker.oci.media import MANIFEST_MAX
from safedocker.policy.config import Config
from safedocker.policy.model import Action, Mode, Policy, Rule
from safedocker.reference import Digest
from safedocker.verify.material import SignatureMaterial
from tests.unit.airgap.synthetic import (
    NAME,
    FakeDocker,
    Image,
    Key,
    archive_files,
    index_json,
    random_layer,
    tar_of,
    write_archive,
)

if TYPE_CHECKING:
    from pathlib import Path


@pytest.fixture
def docker(tmp_path: Path) -> FakeDocker:
    return FakeDocker.make(tmp_path)


@pytest.fixture(scope="module")
def key(tmp_path_factory: pytest.TempPathFactory) -> Key:
    return Key(tmp_path_factory.mktemp("keys"), "alice")


@pytest.fixture
def config(key: Key) -> Config:
    rule = Rule(scope="127.0.0.1:5000/team/*", action=Action.VERIFY, keys=("alice",))
    return Config(keys={key.name: key.entry}, policy=Policy(user_rules=(rule,)))


@pytest.fixture
def cache(tmp_path: Path) -> Cache:
    return Cache.open(tmp_path / "cache")


def load(path: Path, config: Config, cache: Cache, docker: FakeDocker) -> LoadSummary:
    return load_archive(path, config=config, cache=cache, docker=DockerCLI(str(docker.path)))


def refused(path: Path, config: Config, cache: Cache, docker: FakeDocker,
            why: str) -> SafeDockerError:
    with pytest.raises(SafeDockerError) as info:
        load(path, config, cache, docker)
    assert info.value.exit_code == ExitCode.REFUSED, info.value.line()
    assert why in info.value.line(), info.value.line()
    assert "nothing was loaded" in info.value.line()
    assert "\n" not in info.value.line()
    assert docker.calls == []
    assert cache.lookup_tag(NAME, "v1") is None
    return info.value


def loaded_members(docker: FakeDocker) -> dict[str, bytes]:
    with tarfile.open(docker.loaded) as tar:
        return {m.name: (tar.extractfile(m).read() if m.isfile() else b"")  # type: ignore[union-attr]
                for m in tar.getmembers()}


# --- the good archive -------------------------------------------------------------------------


def test_signed_archive_is_loaded_from_a_tar_written_here_then_tagged_and_recorded(
        tmp_path: Path, key: Key, config: Config, cache: Cache, docker: FakeDocker) -> None:
    image = Image(layers=[random_layer(), random_layer()])
    path = write_archive(tmp_path / "a.tar", archive_files([image], key))
    summary = load(path, config, cache, docker)
    image_id = str(image.config_digest)
    assert [c[0] for c in docker.calls] == ["load", "image", "tag"]
    assert docker.calls[0][:3] == ["load", "--quiet", "--input"]
    assert docker.calls[0][3] != str(path)  # never the user's archive
    assert docker.calls[-1] == ["tag", image_id, f"{NAME}:v1"]
    assert [i.digest for i in summary.images] == [image.digest]
    record = cache.lookup_tag(NAME, "v1")
    assert record is not None and record.digest == image.digest
    assert cache.get_manifest(image.digest) is not None
    assert cache.get_config(image.config_digest) is not None
    assert cache.get_material(NAME, image.digest, "cosign-sig") is not None


def test_docker_is_handed_exactly_the_verified_config_layers_and_a_manifest_written_here(
        tmp_path: Path, key: Key, config: Config, cache: Cache, docker: FakeDocker) -> None:
    image = Image(layers=[random_layer(), random_layer()])
    load(write_archive(tmp_path / "a.tar", archive_files([image], key)), config, cache, docker)
    members = loaded_members(docker)
    config_name = f"blobs/sha256/{image.config_digest.hex}"
    layer_names = [f"blobs/sha256/{d.hex}" for d in image.diff_ids]
    assert set(members) == {"blobs", "blobs/sha256", "blobs/sha512", config_name,
                            *layer_names, "manifest.json"}
    assert members[config_name] == image.config
    assert [members[n] for n in layer_names] == image.layers
    assert json.loads(members["manifest.json"]) == [
        {"Config": config_name, "RepoTags": [], "Layers": layer_names}]
    with tarfile.open(docker.loaded) as tar:  # plain ustar: no PAX, no GNU records, no links
        assert all(m.pax_headers == {} and (m.isfile() or m.isdir()) for m in tar.getmembers())
    raw = docker.loaded.read_bytes()
    assert raw[257:263] == b"ustar\x00"


def test_compressed_layer_blobs_named_by_the_signed_manifest_are_accepted(
        tmp_path: Path, key: Key, config: Config, cache: Cache, docker: FakeDocker) -> None:
    image = Image()
    load(write_archive(tmp_path / "a.tar", archive_files([image], key, compressed=True)),
         config, cache, docker)
    members = loaded_members(docker)
    [blob] = image.blobs
    assert members[f"blobs/sha256/{Digest.of(blob).hex}"] == blob
    assert gzip.decompress(blob) == image.layers[0]


def test_a_layer_shared_by_two_images_travels_once_and_serves_both(
        tmp_path: Path, key: Key, config: Config, cache: Cache, docker: FakeDocker) -> None:
    base = random_layer()
    one, two = Image("v1", [base, random_layer()]), Image("v2", [base])
    files = archive_files([one, two], key)
    assert list(files).count(f"layers/{Digest.of(base).tag_prefix}") == 1
    summary = load(write_archive(tmp_path / "a.tar", files), config, cache, docker)
    assert [i.tag for i in summary.images] == ["v1", "v2"]
    manifest = json.loads(loaded_members(docker)["manifest.json"])
    assert [len(entry["Layers"]) for entry in manifest] == [2, 1]
    assert manifest[0]["Layers"][0] == manifest[1]["Layers"][0]


# --- the attacks: the user's tar must mean one thing ----------------------------------------------


def test_a_pax_global_path_header_is_refused_before_anything_is_read(
        tmp_path: Path, key: Key, config: Config, cache: Cache, docker: FakeDocker) -> None:
    # Python's tarfile would read the next member as `index.json`; Go would not.
    files = archive_files([Image()], key)
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT,
                      pax_headers={"path": "index.json"}) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    path = tmp_path / "a.tar"
    path.write_bytes(out.getvalue())
    refused(path, config, cache, docker, "PAX global header")


def test_a_sparse_archive_with_a_huge_header_is_refused_in_constant_memory(
        tmp_path: Path, key: Key, config: Config, cache: Cache, docker: FakeDocker) -> None:
    path = tmp_path / "sparse.tar"
    for typeflag in (b"x", b"0"):  # a PAX header, then an index.json of 1 GiB
        block = bytearray(ustar.header("index.json", 1 << 30))
        block[156:157] = typeflag
        block[148:156] = b" " * 8
        block[148:156] = b"%06o\x00 " % sum(block)
        with open(path, "wb") as out:
            out.write(bytes(block))
            out.truncate(ustar.BLOCK + (1 << 30) + 1024)
        tracemalloc.start()
        try:
            refused(path, config, cache, docker, "PAX extended header" if typeflag == b"x"
                    else "index.json is larger")
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert peak < 8 * 1024 * 1024, peak


def test_an_unlisted_image_beside_the_verified_one_is_refused(
        tmp_path: Path, key: Key, config: Config, cache: Cache, docker: FakeDocker) -> None:
    good, smuggled = Image(), Image("evil")
    files = archive_files([good], key)
    files = {"index.json": files.pop("index.json"),
             f"registry/{smuggled.config_digest.tag_prefix}.config": smuggled.config, **files}
    refused(write_archive(tmp_path / "a.tar", files), config, cache, docker,
            "is not listed in index.json")
    files = archive_files([good], key)
    files[f"layers/{smuggled.diff_ids[0].tag_prefix}"] = smuggled.layers[0]
    refused(write_archive(tmp_path / "b.tar", files), config, cache, docker,
            "not a layer of any verified image")


def test_a_docker_manifest_json_in_the_archive_is_refused(
        tmp_path: Path, key: Key, config: Config, cache: Cache, docker: FakeDocker) -> None:
    files = archive_files([Image()], key)
    files = {"index.json": files.pop("index.json"), "manifest.json": b"[]", **files}
    refused(write_archive(tmp_path / "a.tar", files), config, cache, docker,
            "'manifest.json' is not listed")


@pytest.mark.parametrize("collision", ["top", "entry", "config"])
def test_json_keys_that_go_folds_together_are_refused(
        tmp_path: Path, key: Key, config: Config, cache: Cache, docker: FakeDocker,
        collision: str) -> None:
    if collision == "config":
        image = Image()
        diff_ids = json.dumps([str(d) for d in image.diff_ids])
        other = json.dumps([str(Digest.of(random_layer()))])
        # Signed by the publisher, yet Go would read RootFS (the last), Python rootfs.
        image.config_text = (f'{{"os":"linux","rootfs":{{"type":"layers","diff_ids":'
                             f'{diff_ids}}},"RootFS":{{"type":"layers","diff_ids":{other}}}}}')
        files = archive_files([image], key)
        why = "keys that differ only in case"
    else:
        image = Image()
        files = archive_files([image], key)
        doc = json.loads(files["index.json"])
        if collision == "top":
            doc["Images"] = [Image("evil").entry()]
        else:
            doc["images"][0]["Config_digest"] = str(Image("evil").config_digest)
        files["index.json"] = json.dumps(doc).encode()
        why = "differ only in case"
    refused(write_archive(tmp_path / "a.tar", files), config, cache, docker, why)


def test_kelvin_sign_and_long_s_fold_like_go() -> None:
    with pytest.raises(SafeDockerError, match="differ only in case"):
        airgap_archive.check_go_keys({"kind": 1, "\u212aind": 2}, "x")
    with pytest.raises(SafeDockerError, match="differ only in case"):
        airgap_archive.check_go_keys({"size": 1, "\u017fize": 2}, "x")
    airgap_archive.check_go_keys({"Labels": 1, "Label": 2}, "x")


# --- archive structure -------------------------------------------------------------------------


def test_path_traversal_member_is_refused(tmp_path: Path, key: Key, config: Config,
                                          cache: Cache, docker: FakeDocker) -> None:
    files = archive_files([Image()], key)
    files["../../etc/evil"] = b"x"
    refused(write_archive(tmp_path / "a.tar", files), config, cache, docker,
            "not a plain relative path")


def test_symlink_member_is_refused(tmp_path: Path, key: Key, config: Config, cache: Cache,
                                   docker: FakeDocker) -> None:
    link = tarfile.TarInfo("registry/link")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    path = write_archive(tmp_path / "a.tar", archive_files([Image()], key), (link,))
    refused(path, config, cache, docker, "symbolic link")


def test_duplicate_member_is_refused(tmp_path: Path, key: Key, config: Config, cache: Cache,
                                     docker: FakeDocker) -> None:
    image = Image()
    files = archive_files([image], key)
    manifest = f"registry/{image.digest.tag_prefix}.manifest"
    dup = tarfile.TarInfo(manifest)
    dup.size = 3
    metadata = {k: v for k, v in files.items() if not k.startswith("layers/")}
    path = tmp_path / "a.tar"
    write_archive(path, metadata, (dup,))
    refused(path, config, cache, docker, "duplicate member")


def test_the_same_layer_twice_is_refused(tmp_path: Path, key: Key, config: Config,
                                         cache: Cache, docker: FakeDocker) -> None:
    image = Image()
    files = archive_files([image], key)  # the uncompressed layer
    [blob] = image.blobs
    files[f"layers/{Digest.of(blob).tag_prefix}"] = blob  # and the same layer compressed
    refused(write_archive(tmp_path / "a.tar", files), config, cache, docker,
            "in the archive twice")


def test_index_json_must_come_first_and_metadata_before_layers(
        tmp_path: Path, key: Key, config: Config, cache: Cache, docker: FakeDocker) -> None:
    image = Image()
    files = archive_files([image], key)
    reordered = {"registry/x": b"", **files}
    refused(write_archive(tmp_path / "a.tar", reordered), config, cache, docker,
            "first member is not index.json")
    manifest = f"registry/{image.digest.tag_prefix}.manifest"
    late = dict(files)
    extra = tarfile.TarInfo(manifest)  # again, after the layers
    extra.size = 1
    refused(write_archive(tmp_path / "b.tar", late, (extra,)), config, cache, docker,
            "comes after the layers")


def test_oversized_manifest_member_is_refused(tmp_path: Path, key: Key, config: Config,
                                              cache: Cache, docker: FakeDocker) -> None:
    image = Image()
    files = archive_files([image], key)
    files[f"registry/{image.digest.tag_prefix}.manifest"] = b" " * (MANIFEST_MAX + 1)
    refused(write_archive(tmp_path / "a.tar", files), config, cache, docker, "too large")


def test_metadata_held_in_memory_is_capped_in_all(tmp_path: Path, key: Key, config: Config,
                                                  cache: Cache, docker: FakeDocker,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("safedocker.airgap.load.METADATA_MAX", 1000)
    refused(write_archive(tmp_path / "a.tar", archive_files([Image()], key)), config, cache,
            docker, "exceed 1000 bytes")


@pytest.mark.parametrize(("missing", "why"), [
    ("index.json", "first member is not index.json"),
    (".manifest", "is missing"),
    (".config", "is missing"),
    ("signatures/", "no signature found"),
    ("layers/", "is missing"),
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
    error = refused(packed, config, cache, docker, "compressed")
    assert "decompress" in error.hint


def test_an_image_listed_twice_is_refused(tmp_path: Path, key: Key, config: Config,
                                         cache: Cache, docker: FakeDocker) -> None:
    first, second = Image("v1"), Image("v1")  # the same name and tag, two images
    files = archive_files([first, second], key)
    refused(write_archive(tmp_path / "a.tar", files), config, cache, docker,
            "lists an image twice")


def test_a_version_1_archive_is_refused_with_a_hint(tmp_path: Path, key: Key, config: Config,
                                                    cache: Cache, docker: FakeDocker) -> None:
    image = Image()
    files = archive_files([image], key)
    files["index.json"] = index_json([image], version=1)
    error = refused(write_archive(tmp_path / "a.tar", files), config, cache, docker,
                    "archive version 1")
    assert "airgap save" in error.hint


# --- digests and signatures ---------------------------------------------------------------------


def test_flipped_byte_in_a_layer_is_refused(tmp_path: Path, key: Key, config: Config,
                                            cache: Cache, docker: FakeDocker) -> None:
    image = Image()
    files = archive_files([image], key)
    name = f"layers/{image.diff_ids[0].tag_prefix}"
    layer = bytearray(files[name])
    layer[520] ^= 0x01
    files[name] = bytes(layer)
    refused(write_archive(tmp_path / "a.tar", files), config, cache, docker, "was altered")


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


def test_an_unsigned_image_loads_in_warn_mode_with_a_warning(
        tmp_path: Path, key: Key, config: Config, cache: Cache, docker: FakeDocker,
        capsys: pytest.CaptureFixture[str]) -> None:
    stranger = Key(tmp_path, "stranger")
    warn = Config(keys=config.keys, policy=config.policy, mode=Mode.WARN)
    summary = load(write_archive(tmp_path / "a.tar", archive_files([Image()], stranger)),
                   warn, cache, docker)
    assert summary.warnings and [c[0] for c in docker.calls] == ["load", "image", "tag"]
    assert "WARNING" in capsys.readouterr().err


def test_load_without_a_cache_refuses_before_docker(tmp_path: Path, key: Key, config: Config,
                                                    docker: FakeDocker) -> None:
    path = write_archive(tmp_path / "a.tar", archive_files([Image()], key))
    with pytest.raises(SafeDockerError) as info:
        load_archive(path, config=config, cache=None, docker=DockerCLI(str(docker.path)))
    assert info.value.exit_code == ExitCode.UNAVAILABLE
    assert docker.calls == []


# --- multi-platform: the pinned digest is an index ----------------------------------------------


def _index_over(*images: Image) -> bytes:
    return json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{"mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                       "size": len(i.manifest), "digest": str(i.digest),
                       "platform": {"architecture": "amd64", "os": "linux"}} for i in images],
    }).encode()


def _indexed_archive(image: Image, listed: Image, key: Key) -> dict[str, bytes]:
    files = archive_files([image], key)
    index_bytes = _index_over(listed)
    index_digest = Digest.of(index_bytes)
    doc = json.loads(files["index.json"])
    doc["images"][0]["digest"] = str(index_digest)
    doc["media_types"][str(index_digest)] = "application/vnd.oci.image.index.v1+json"
    out = {"index.json": json.dumps(doc).encode(),
           f"registry/{index_digest.tag_prefix}.manifest": index_bytes}
    out.update({k: v for k, v in files.items() if k != "index.json"
                and k != f"signatures/{image.digest.tag_prefix}.json"})
    layers = {k: out.pop(k) for k in list(out) if k.startswith("layers/")}
    out[f"signatures/{index_digest.tag_prefix}.json"] = key.material(index_digest)
    out.update(layers)
    return out


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


def test_a_tar_of_anything_else_is_refused(tmp_path: Path, config: Config, cache: Cache,
                                           docker: FakeDocker) -> None:
    path = tmp_path / "docker-save.tar"
    path.write_bytes(tar_of({"manifest.json": b"[]", "repositories": b"{}"}))
    refused(path, config, cache, docker, "first member is not index.json")


def test_an_archive_that_cannot_be_opened_is_a_usage_error(tmp_path: Path, config: Config,
                                                           cache: Cache, docker: FakeDocker
                                                           ) -> None:
    with pytest.raises(SafeDockerError) as info:
        load(tmp_path / "missing.tar", config, cache, docker)
    assert info.value.exit_code == ExitCode.USAGE
    assert info.value.line().startswith(f"safe-docker: cannot read {tmp_path}/missing.tar")
    assert docker.calls == []


# --- dates from another machine are clamped to the time of the load (issue 11 item 3) -------


def _with_material(image: Image, key: Key, **material: object) -> dict[str, bytes]:
    files = archive_files([image], key)
    files[f"signatures/{image.digest.tag_prefix}.json"] = key.material(
        image.digest, **material)  # type: ignore[arg-type]
    return files


def test_a_future_fetched_at_in_the_archive_is_recorded_as_the_time_of_the_load(
        tmp_path: Path, key: Key, config: Config, cache: Cache, docker: FakeDocker) -> None:
    image = Image()
    ten_years = time.time() + 10 * 365 * 86400
    before = time.time()
    load(write_archive(tmp_path / "a.tar", _with_material(image, key, fetched_at=ten_years)),
         config, cache, docker)
    record = cache.get_material(NAME, image.digest, "cosign-sig")
    assert record is not None
    recorded = SignatureMaterial.from_bytes(record.data)
    assert before <= recorded.fetched_at <= time.time()
    assert before <= record.fetched_at <= time.time()
    assert recorded.sig_manifest is not None


def test_a_past_fetched_at_in_the_archive_is_kept_as_it_is(
        tmp_path: Path, key: Key, config: Config, cache: Cache, docker: FakeDocker) -> None:
    image = Image()
    load(write_archive(tmp_path / "a.tar", _with_material(image, key, fetched_at=1_000_000.0)),
         config, cache, docker)
    record = cache.get_material(NAME, image.digest, "cosign-sig")
    assert record is not None
    assert SignatureMaterial.from_bytes(record.data).fetched_at == 1_000_000.0


def test_clamping_a_future_date_keeps_oci11_signature_artifacts_and_the_image_loads(
        tmp_path: Path, key: Key, config: Config, cache: Cache, docker: FakeDocker) -> None:
    # A2-7: the clamp rebuilt the material without `sig_referrers`, so an image signed only
    # by a cosign OCI 1.1 artifact, archived on a machine whose clock runs ahead, was refused.
    image = Image()
    ahead = time.time() + 120
    files = _with_material(image, key, fetched_at=ahead, referrer=True)
    summary = load(write_archive(tmp_path / "a.tar", files), config, cache, docker)
    assert [i.digest for i in summary.images] == [image.digest]
    record = cache.get_material(NAME, image.digest, "cosign-sig")
    assert record is not None
    recorded = SignatureMaterial.from_bytes(record.data)
    assert len(recorded.sig_referrers) == 1 and recorded.fetched_at <= time.time()
