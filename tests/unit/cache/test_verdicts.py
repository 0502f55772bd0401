"""The verdict cache is sound: a stored acceptance is reused only while every input it
depends on is unchanged, and its time-dependent checks are redone on every hit.

Real files in a temporary config/system dir and a real sqlite cache; the registry is faked
at its boundary (what a HEAD answers).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from safedocker import __version__
from safedocker.cache import verdicts
from safedocker.cache.verdicts import (
    SignatureListing,
    WarmRecord,
    find,
    inputs_digest,
    locations,
    store,
    warm_key,
)
from safedocker.policy.paths import paths

if TYPE_CHECKING:
    from collections.abc import Callable

    from safedocker.cache.verdicts import Where
    from safedocker.policy.paths import Paths

NAME = "registry.test:5000/team/app"
TAG = "v1"
DIGEST = "sha256:" + "a" * 64
OTHER = "sha256:" + "b" * 64
SIG = hashlib.sha256(b"sig manifest").hexdigest()
NOW = 1_800_000_000.0
DAY = 86400.0


@dataclass
class FakeRegistry:
    """What the registry names now: tags and `.sig` tags to digests."""

    manifests: dict[str, str] = field(default_factory=dict)
    asked: list[str] = field(default_factory=list)

    def manifest_digest(self, repository: str, reference: str) -> tuple[str, str] | None:
        self.asked.append(f"{repository}:{reference}")
        found = self.manifests.get(reference)
        return None if found is None else (found, "application/vnd.oci.image.manifest.v1+json")


@dataclass
class World:
    where: Where  # the warm path's view of the locations (strings)
    files: Paths  # the same locations as the full path sees them, to edit files
    env: dict[str, str]
    registry: FakeRegistry
    anchor: Path
    platform: str = "daemon:linux/amd64"

    @property
    def records(self) -> verdicts.Records:
        return verdicts.Records(self.where.cache_dir)


@pytest.fixture
def world(tmp_path: Path) -> World:
    env = {"HOME": str(tmp_path), "SAFE_DOCKER_CONFIG_DIR": str(tmp_path / "config"),
           "SAFE_DOCKER_CACHE_DIR": str(tmp_path / "cache"),
           "SAFE_DOCKER_STATE_DIR": str(tmp_path / "state"),
           "SAFE_DOCKER_SYSTEM_CONFIG_DIR": str(tmp_path / "system")}
    where = locations(env)
    assert where is not None
    files = paths(env)
    (files.user_keys_dir).mkdir(parents=True)
    files.user_config_file.write_text(
        f'[keys.demo]\nfingerprint = "sha256:00"\n[[policy]]\nscope = "{NAME}"\n'
        'action = "verify"\nkeys = ["demo"]\n')
    (files.user_keys_dir / "demo.pub").write_text("PEM demo\n")
    files.trust_roots_dir.mkdir(parents=True)
    (files.trust_roots_dir / "default.json").write_text('{"root": 1}')
    anchor = tmp_path / "pki" / "root.pem"
    anchor.parent.mkdir()
    anchor.write_text("PKI ROOT\n")
    registry = FakeRegistry({TAG: DIGEST, "sha256-" + "a" * 64 + ".sig": "sha256:" + SIG})
    return World(where, files, env, registry, anchor)


def record(world: World, **changes: object) -> WarmRecord:
    base = WarmRecord(
        digest=DIGEST, covered=DIGEST, config_digest=None,
        signatures=(SignatureListing(NAME, DIGEST, SIG),),
        anchors=((str(world.anchor), verdicts.file_digest(world.anchor)),),
        material_time=NOW - DAY, offline_max_age=30 * DAY, valid_until=None, gpu="auto",
        scheme="http", rule=NAME, rule_source="config.toml", signers=("demo",), material="m")
    return base._replace(**changes)  # type: ignore[arg-type]


def key(world: World) -> str:
    return warm_key(inputs_digest(world.where, world.env), f"{NAME}:{TAG}", world.platform)


def lookup(world: World, *, now: float = NOW, offline: bool = False) -> WarmRecord | None:
    if offline:
        return find(world.records, key(world), NAME, TAG, now=now, registry=None,
                    offline_digest=DIGEST)
    return find(world.records, key(world), NAME, TAG, now=now,
                registry=lambda host, scheme: world.registry)


def remember(world: World, **changes: object) -> WarmRecord:
    stored = record(world, **changes)
    store(world.where.cache_dir, key(world), NAME, stored)
    return stored


def test_an_unchanged_world_hits_with_one_head_for_the_tag_and_one_per_sig_listing(
        world: World) -> None:
    stored = remember(world)
    assert lookup(world) == stored
    assert world.registry.asked == ["team/app:v1", f"team/app:sha256-{'a' * 64}.sig"]


def _remove_key(w: World) -> None:
    (w.files.user_keys_dir / "demo.pub").unlink()


def _rotate_root(w: World) -> None:
    (w.files.trust_roots_dir / "default.json").write_text('{"root": 2}')


def _edit_rule(w: World) -> None:
    w.files.user_config_file.write_text(
        w.files.user_config_file.read_text().replace('keys = ["demo"]',
                                                     'keys = ["demo"]\nthreshold = 1'))


def _new_signature(w: World) -> None:
    w.registry.manifests["sha256-" + "a" * 64 + ".sig"] = "sha256:" + "c" * 64


def _deleted_signature(w: World) -> None:
    del w.registry.manifests["sha256-" + "a" * 64 + ".sig"]


def _lock_system(w: World) -> None:
    w.files.system_config_dir.mkdir(parents=True, exist_ok=True)
    w.files.system_config_file.write_text("locked = true\n")


def _system_key(w: World) -> None:
    w.files.system_keys_dir.mkdir(parents=True, exist_ok=True)
    (w.files.system_keys_dir / "ops.pub").write_text("PEM ops\n")


def _change_platform(w: World) -> None:
    w.platform = "explicit:linux/arm64"


def _move_tag(w: World) -> None:
    w.registry.manifests[TAG] = OTHER


def _tag_gone(w: World) -> None:
    del w.registry.manifests[TAG]


def _version(w: World) -> None:
    vars(verdicts)["__version__"] = "999.0"


def _mode_variable(w: World) -> None:
    w.env["SAFE_DOCKER_MODE"] = "warn"


def _pki_root_outside_the_dirs(w: World) -> None:
    w.anchor.write_text("ANOTHER PKI ROOT\n")


def _config_dir_moved(w: World) -> None:
    w.env["SAFE_DOCKER_CONFIG_DIR"] = w.env["SAFE_DOCKER_CONFIG_DIR"] + "2"
    moved = locations(w.env)
    assert moved is not None
    w.where, w.files = moved, paths(w.env)


CHANGES: dict[str, Callable[[World], None]] = {
    "remove key": _remove_key,
    "rotate root": _rotate_root,
    "edit rule": _edit_rule,
    "new signature": _new_signature,
    "deleted signature": _deleted_signature,
    "lock system": _lock_system,
    "system key added": _system_key,
    "change platform": _change_platform,
    "move tag": _move_tag,
    "tag deleted": _tag_gone,
    "safe-docker version": _version,
    "SAFE_DOCKER_MODE": _mode_variable,
    "pki root file": _pki_root_outside_the_dirs,
    "config dir": _config_dir_moved,
}


@pytest.mark.parametrize("change", list(CHANGES), ids=list(CHANGES))
def test_any_change_to_an_input_means_the_cached_verdict_is_not_used(
        world: World, change: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(vars(verdicts), "__version__", __version__)
    remember(world)
    assert lookup(world) is not None
    CHANGES[change](world)
    assert lookup(world) is None


def test_offline_age_is_checked_on_every_hit(world: World) -> None:
    remember(world, material_time=NOW - 29 * DAY)
    assert lookup(world, offline=True) is not None
    assert lookup(world, offline=True, now=NOW + 2 * DAY) is None
    assert world.registry.asked == []  # offline: the registry is never asked


def test_a_validity_window_that_ended_misses(world: World) -> None:
    remember(world, valid_until=NOW + 60)
    assert lookup(world) is not None
    assert lookup(world, now=NOW + 61) is None


def test_material_from_the_future_misses(world: World) -> None:
    remember(world, material_time=NOW + DAY)
    assert lookup(world) is None


def test_a_record_for_another_digest_of_the_same_tag_is_not_used(world: World) -> None:
    remember(world, digest=OTHER, covered=OTHER)
    assert lookup(world) is None


def test_a_record_this_version_cannot_read_is_a_miss(world: World) -> None:
    remember(world)
    path = Path(verdicts.records_path(world.where.cache_dir, key(world)))
    document = json.loads(path.read_text())
    document["records"][0]["v"] = 99
    path.write_text(json.dumps(document))
    assert lookup(world) is None


@pytest.mark.parametrize("garbage", [b"", b"{", b"[]", b'{"name": 1}', b"\xff" * 10,
                                     b'{"name": "x", "records": [1, "a"]}',
                                     b"[" * 100_000])
def test_a_records_file_that_is_not_ours_reads_as_nothing(world: World,
                                                           garbage: bytes) -> None:
    remember(world)
    Path(verdicts.records_path(world.where.cache_dir, key(world))).write_bytes(garbage)
    assert lookup(world) is None


def test_a_records_file_over_the_size_cap_is_not_read(world: World) -> None:
    remember(world)
    path = Path(verdicts.records_path(world.where.cache_dir, key(world)))
    path.write_bytes(path.read_bytes() + b" " * verdicts.RECORDS_FILE_MAX)
    assert lookup(world) is None


def test_a_records_file_that_is_a_symlink_is_not_followed(world: World) -> None:
    remember(world)
    path = Path(verdicts.records_path(world.where.cache_dir, key(world)))
    elsewhere = path.with_name("elsewhere")
    path.rename(elsewhere)
    path.symlink_to(elsewhere)
    assert lookup(world) is None


@pytest.mark.parametrize("what", ["dir", "records dir", "records file"])
def test_a_cache_others_may_write_is_never_read_by_the_warm_path(world: World,
                                                                 what: str) -> None:
    """A shared SAFE_DOCKER_CACHE_DIR: another user could write a record naming any digest,
    and the warm path hands docker a record's digest without verifying anything."""
    remember(world)
    records_file = Path(verdicts.records_path(world.where.cache_dir, key(world)))
    target = {"dir": world.files.cache_dir, "records dir": records_file.parent,
              "records file": records_file}[what]
    target.chmod(target.stat().st_mode | 0o022)
    if what == "records file":
        assert lookup(world) is None
        return
    with pytest.raises(verdicts.Unkeyable):
        verdicts.Records(world.where.cache_dir)


def test_a_cache_of_ones_own_is_read(world: World) -> None:
    remember(world)
    assert verdicts.Records(world.where.cache_dir).verdicts_for(key(world), NAME, 8)


def test_records_of_a_key_keep_the_newest_per_digest_and_at_most_the_cap(
        world: World) -> None:
    for n in range(verdicts.CANDIDATES_MAX + 3):
        remember(world, digest=f"sha256:{n:064x}", covered=f"sha256:{n:064x}")
    remember(world)  # the tag's current digest, stored last
    found = verdicts.Records(world.where.cache_dir).verdicts_for(key(world), NAME, 100)
    assert len(found) == verdicts.CANDIDATES_MAX
    assert found[0][0] == DIGEST
    assert len({digest for digest, _ in found}) == len(found)
    assert lookup(world) is not None


def test_prune_removes_record_files_older_than_the_age(world: World) -> None:
    remember(world)
    path = Path(verdicts.records_path(world.where.cache_dir, key(world)))
    assert verdicts.prune(world.where.cache_dir, 3600, now=path.stat().st_mtime + 60) == 0
    assert verdicts.prune(world.where.cache_dir, 3600,
                          now=path.stat().st_mtime + 7200) == 1
    assert not path.exists()
    assert lookup(world) is None
