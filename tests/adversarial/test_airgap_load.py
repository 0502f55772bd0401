"""`airgap load` against archives an attacker made (issue 11 item 5, attack N4), with the
real dockerd: each is refused with 77, and docker itself shows that nothing was loaded.

The attacker holds a genuine archive of a signed image (from `airgap save`) and an
unsigned image of their own (from the real `docker save`), and rewrites the archive so
that a tar or JSON reader other than safe-docker's would see the unsigned image.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tarfile
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pytest

from safedocker._internal import ustar
from safedocker.reference import Digest
from tests.e2e.conftest import SafeDocker, ok, safe_docker_command, trust_new_key_and_sign

if TYPE_CHECKING:
    from pathlib import Path

    from tests.e2e.conftest import Result
    from tests.world import World

pytestmark = pytest.mark.e2e

SPACE = "adv-airgap"
PWNED = "atk-pwned:latest"
RSS_BOUND_KIB = 96 * 1024  # the whole safe-docker process (~37 MiB); the attack made 1.09 GB


@dataclass(frozen=True)
class Scene:
    world: World
    target: SafeDocker  # the receiving machine: public key and policy only
    good: dict[str, bytes]  # the genuine archive's members, in order
    good_id: str
    evil: dict[str, bytes]  # the unsigned image as the real `docker save` wrote it
    evil_id: str
    evil_diff_ids: list[str]


def _members(data: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return {m.name: (tar.extractfile(m).read() if m.isfile() else b"")  # type: ignore[union-attr]
                for m in tar.getmembers()}


def _image_id(world: World, ref: str) -> str:
    return world.run_docker("image", "inspect", "--format", "{{.Id}}", ref
                            ).stdout.decode().strip()


@pytest.fixture(scope="module")
def scene(world: World, tmp_path_factory: pytest.TempPathFactory) -> Scene:
    keys = tmp_path_factory.mktemp("adv-keys")
    source = SafeDocker(world=world, home=tmp_path_factory.mktemp("adv-source"))
    scope = f"{world.registry}/{SPACE}/*"
    good = world.push_image(f"{SPACE}/good")
    trust_new_key_and_sign(source, keys, scope, good)
    archive = tmp_path_factory.mktemp("adv-archive") / "good.tar"
    ok(source, "airgap", "save", good.tagged, "-o", str(archive))
    good_id = _image_id(world, good.pinned)

    evil = world.push_image(f"{SPACE}/evil")
    world.run_docker("pull", "-q", evil.tagged)
    evil_id = _image_id(world, evil.tagged)
    evil_tar = world.run_docker("save", evil.tagged).stdout
    diff_ids = json.loads(world.run_docker("image", "inspect", "--format",
                                           "{{json .RootFS.Layers}}", evil.tagged).stdout)

    target = SafeDocker(world=world, home=tmp_path_factory.mktemp("adv-target"))
    ok(target, "keys", "add", "demo", str(keys / "demo.pub"))
    ok(target, "policy", "add", scope, "--key", "demo")
    return Scene(world, target, _members(archive.read_bytes()), good_id,
                 _members(evil_tar), evil_id, diff_ids)


def _clean(scene: Scene) -> set[str]:
    """Neither image in docker; what docker has now."""
    scene.world.run_docker("rmi", "-f", scene.good_id, scene.evil_id, PWNED, check=False)
    return _images(scene.world)


def _images(world: World) -> set[str]:
    return set(world.run_docker("images", "-aq", "--no-trunc").stdout.decode().split())


def assert_nothing_loaded(scene: Scene, before: set[str]) -> None:
    world = scene.world
    assert _images(world) == before
    for ref in (scene.good_id, scene.evil_id, PWNED):
        assert world.run_docker("image", "inspect", ref, check=False).returncode != 0, ref


def assert_refused(result: Result, why: str) -> None:
    assert result.exit_code == 77, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert why in lines[0] and "nothing was loaded" in lines[0], lines[0]


def _write(target: Path, members: dict[str, bytes], fmt: int = tarfile.USTAR_FORMAT,
           pax: dict[str, str] | None = None) -> Path:
    with tarfile.open(target, "w", format=fmt, pax_headers=pax) as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return target


def _evil_parts(scene: Scene) -> tuple[str, bytes, list[tuple[str, bytes]]]:
    """The unsigned image's config (name, bytes) and layers as docker 20.10 saved them."""
    [entry] = json.loads(scene.evil["manifest.json"])
    layers = [(name, scene.evil[name]) for name in entry["Layers"]]
    return entry["Config"], scene.evil[entry["Config"]], layers


def _load(scene: Scene, path: Path) -> Result:
    return scene.target("airgap", "load", "-i", str(path))


# --- the attacks ------------------------------------------------------------------------------


def test_pax_global_path_header_is_refused_and_nothing_is_loaded(scene: Scene,
                                                                 tmp_path: Path) -> None:
    """The original finding: Python applies a PAX global `path`, Go ignores it, so the
    checked index.json and the one docker read were different members."""
    before = _clean(scene)
    config_name, config, layers = _evil_parts(scene)
    forged_index = json.loads(scene.good["index.json"])
    forged_index["images"][0]["config_digest"] = str(Digest.of(config))
    members = {"decoy": json.dumps(forged_index).encode(), **scene.good,
               config_name: config, **dict(layers)}
    path = _write(tmp_path / "pax-global.tar", members, tarfile.PAX_FORMAT,
                  {"path": "index.json"})
    with tarfile.open(path) as tar:  # what Python's tarfile would have seen first
        assert tar.getnames()[0] == "index.json"
    assert_refused(_load(scene, path), "PAX global header")
    assert_nothing_loaded(scene, before)


def test_sparse_archive_with_a_huge_pax_header_is_refused_in_bounded_memory(
        scene: Scene, tmp_path: Path) -> None:
    before = _clean(scene)
    path = tmp_path / "sparse.tar"
    for typeflag, why in ((b"x", "PAX extended header"), (b"0", "index.json is larger")):
        block = bytearray(ustar.header("index.json", 1 << 30))
        block[156:157] = typeflag
        block[148:156] = b" " * 8
        block[148:156] = b"%06o\x00 " % sum(block)
        with open(path, "wb") as out:
            out.write(bytes(block))
            out.truncate(ustar.BLOCK + (1 << 30) + 1024)  # 1 GiB that takes 8 KiB on disk
        assert path.stat().st_blocks * 512 < 64 * 1024
        probe = ("import resource, subprocess, sys\n"
                 "rc = subprocess.run(sys.argv[1:], capture_output=True).returncode\n"
                 "print(rc, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n")
        proc = subprocess.run(
            [sys.executable, "-c", probe, *safe_docker_command(), "airgap", "load", "-i",
             str(path)], env=scene.target.env(), capture_output=True, text=True, timeout=120)
        rc, peak_kib = (int(word) for word in proc.stdout.split())
        assert rc == 77, proc
        assert peak_kib < RSS_BOUND_KIB, f"peak RSS {peak_kib} KiB"
        assert_refused(_load(scene, path), why)
    assert_nothing_loaded(scene, before)


def test_manifest_json_keys_differing_in_case_are_refused_and_nothing_is_loaded(
        scene: Scene, tmp_path: Path) -> None:
    """Attack N4, ported: `Config`/`Layers` name the signed image, `config`/`layers`/
    `repotags` (what Go's case-insensitive decoder keeps) the unsigned one."""
    before = _clean(scene)
    config_name, config, layers = _evil_parts(scene)
    good_index = json.loads(scene.good["index.json"])
    good_config = Digest.parse(good_index["images"][0]["config_digest"])
    good_layers = [n for n in scene.good if n.startswith("layers/")]
    checked = {"Config": f"registry/{good_config.tag_prefix}.config", "RepoTags": None,
               "Layers": good_layers}
    loaded = {"config": config_name, "repotags": [PWNED], "layers": [n for n, _ in layers]}
    manifest = json.dumps([{**checked, **loaded}]).encode()  # Go keeps the last of each
    smuggled = {"index.json": scene.good["index.json"], "manifest.json": manifest,
                config_name: config, **dict(layers),
                **{k: v for k, v in scene.good.items() if k != "index.json"}}
    assert_refused(_load(scene, _write(tmp_path / "n4-manifest.tar", smuggled)),
                   "is not listed in index.json")

    # The same trick inside index.json: `config_digest` checked, `Config_digest` smuggled.
    index = json.loads(scene.good["index.json"])
    text = json.dumps(index)
    text = text.replace('"config_digest":', f'"Config_digest": "{Digest.of(config)}", '
                                           '"config_digest":', 1)
    evil_layers = {f"layers/{Digest.parse(d).tag_prefix}": data
                   for d, (_, data) in zip(scene.evil_diff_ids, layers, strict=True)}
    folded = {"index.json": text.encode(),
              f"registry/{Digest.of(config).tag_prefix}.config": config,
              **{k: v for k, v in scene.good.items() if k != "index.json"}, **evil_layers}
    assert_refused(_load(scene, _write(tmp_path / "n4-index.tar", folded)),
                   "differ only in case")
    assert_nothing_loaded(scene, before)


def test_an_unsigned_image_smuggled_beside_the_verified_one_is_refused(
        scene: Scene, tmp_path: Path) -> None:
    before = _clean(scene)
    _, config, layers = _evil_parts(scene)
    evil_config = f"registry/{Digest.of(config).tag_prefix}.config"
    evil_layers = {f"layers/{Digest.parse(d).tag_prefix}": data
                   for d, (_, data) in zip(scene.evil_diff_ids, layers, strict=True)}
    metadata = {k: v for k, v in scene.good.items() if not k.startswith("layers/")}
    good_layers = {k: v for k, v in scene.good.items() if k.startswith("layers/")}
    unlisted_config = {**metadata, evil_config: config, **good_layers}
    assert_refused(_load(scene, _write(tmp_path / "config.tar", unlisted_config)),
                   "is not listed in index.json")
    unlisted_layer = {**scene.good, **evil_layers}
    assert_refused(_load(scene, _write(tmp_path / "layer.tar", unlisted_layer)),
                   "not a layer of any verified image")
    assert_nothing_loaded(scene, before)


def test_an_unsigned_image_listed_in_the_index_is_refused_with_the_signed_one(
        scene: Scene, tmp_path: Path) -> None:
    """The index may list the attacker's image too: it has no signature, so nothing of
    the archive is loaded, not even the signed image."""
    before = _clean(scene)
    _, config, layers = _evil_parts(scene)
    index = json.loads(scene.good["index.json"])
    good_entry = index["images"][0]
    # A manifest of the attacker's own for the unsigned image (any registry would do).
    manifest = json.dumps({
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json",
                   "size": len(config), "digest": str(Digest.of(config))},
        "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar",
                    "size": len(data), "digest": d}
                   for d, (_, data) in zip(scene.evil_diff_ids, layers, strict=True)],
    }).encode()
    digest = Digest.of(manifest)
    name = good_entry["name"].replace("/good", "/evil")
    index["images"].append({"reference": f"{name}:v1", "name": name, "tag": "v1",
                            "digest": str(digest), "platform_digest": str(digest),
                            "config_digest": str(Digest.of(config))})
    index["media_types"][str(digest)] = "application/vnd.docker.distribution.manifest.v2+json"
    metadata = {k: v for k, v in scene.good.items()
                if k != "index.json" and not k.startswith("layers/")}
    members = {"index.json": json.dumps(index).encode(), **metadata,
               f"registry/{digest.tag_prefix}.manifest": manifest,
               f"registry/{Digest.of(config).tag_prefix}.config": config,
               **{k: v for k, v in scene.good.items() if k.startswith("layers/")},
               **{f"layers/{Digest.parse(d).tag_prefix}": data
                  for d, (_, data) in zip(scene.evil_diff_ids, layers, strict=True)}}
    assert_refused(_load(scene, _write(tmp_path / "listed.tar", members)),
                   "no signature found")
    assert_nothing_loaded(scene, before)


def test_the_genuine_archive_loads_the_signed_image_and_only_it(scene: Scene,
                                                                 tmp_path: Path) -> None:
    """The control: the same scene with the genuine archive loads exactly the signed
    image (so each refusal above is the attack's doing)."""
    before = _clean(scene)
    result = _load(scene, _write(tmp_path / "good.tar", scene.good))
    assert result.exit_code == 0, result.stderr
    assert _images(scene.world) == before | {scene.good_id}
    for ref in (scene.evil_id, PWNED):
        assert scene.world.run_docker("image", "inspect", ref, check=False).returncode != 0
