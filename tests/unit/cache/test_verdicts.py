"""The verdict cache is sound: a stored acceptance is reused only while every input it
depends on is unchanged, and its time-dependent checks are redone on every hit.

Real files in a temporary config/system dir and a real sqlite cache; the registry is faked
at its boundary (what a HEAD answers).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pytest

from safedocker import __version__
from safedocker.cache import verdicts
from safedocker.cache.store import Cache
from safedocker.cache.verdicts import (
    SignatureListing,
    WarmRecord,
    find,
    inputs_digest,
    locations,
    store,
    warm_key,
)

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

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
    where: Paths
    env: dict[str, str]
    cache: Cache
    registry: FakeRegistry
    anchor: Path
    platform: str = "daemon:linux/amd64"


@pytest.fixture
def world(tmp_path: Path) -> World:
    env = {"HOME": str(tmp_path), "SAFE_DOCKER_CONFIG_DIR": str(tmp_path / "config"),
           "SAFE_DOCKER_CACHE_DIR": str(tmp_path / "cache"),
           "SAFE_DOCKER_STATE_DIR": str(tmp_path / "state"),
           "SAFE_DOCKER_SYSTEM_CONFIG_DIR": str(tmp_path / "system")}
    where = locations(env)
    assert where is not None
    (where.user_keys_dir).mkdir(parents=True)
    where.user_config_file.write_text(
        f'[keys.demo]\nfingerprint = "sha256:00"\n[[policy]]\nscope = "{NAME}"\n'
        'action = "verify"\nkeys = ["demo"]\n')
    (where.user_keys_dir / "demo.pub").write_text("PEM demo\n")
    where.trust_roots_dir.mkdir(parents=True)
    (where.trust_roots_dir / "default.json").write_text('{"root": 1}')
    anchor = tmp_path / "pki" / "root.pem"
    anchor.parent.mkdir()
    anchor.write_text("PKI ROOT\n")
    registry = FakeRegistry({TAG: DIGEST, "sha256-" + "a" * 64 + ".sig": "sha256:" + SIG})
    return World(where, env, Cache.open(where.cache_dir), registry, anchor)


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
        return find(world.cache, key(world), NAME, TAG, now=now, registry=None,
                    offline_digest=DIGEST)
    return find(world.cache, key(world), NAME, TAG, now=now,
                registry=lambda host, scheme: world.registry)


def remember(world: World, **changes: object) -> WarmRecord:
    stored = record(world, **changes)
    store(world.cache, key(world), NAME, stored)
    return stored


def test_an_unchanged_world_hits_with_one_head_for_the_tag_and_one_per_sig_listing(
        world: World) -> None:
    stored = remember(world)
    assert lookup(world) == stored
    assert world.registry.asked == ["team/app:v1", f"team/app:sha256-{'a' * 64}.sig"]


def _remove_key(w: World) -> None:
    (w.where.user_keys_dir / "demo.pub").unlink()


def _rotate_root(w: World) -> None:
    (w.where.trust_roots_dir / "default.json").write_text('{"root": 2}')


def _edit_rule(w: World) -> None:
    w.where.user_config_file.write_text(
        w.where.user_config_file.read_text().replace('keys = ["demo"]',
                                                     'keys = ["demo"]\nthreshold = 1'))


def _new_signature(w: World) -> None:
    w.registry.manifests["sha256-" + "a" * 64 + ".sig"] = "sha256:" + "c" * 64


def _deleted_signature(w: World) -> None:
    del w.registry.manifests["sha256-" + "a" * 64 + ".sig"]


def _lock_system(w: World) -> None:
    w.where.system_config_dir.mkdir(parents=True, exist_ok=True)
    w.where.system_config_file.write_text("locked = true\n")


def _system_key(w: World) -> None:
    w.where.system_keys_dir.mkdir(parents=True, exist_ok=True)
    (w.where.system_keys_dir / "ops.pub").write_text("PEM ops\n")


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
    w.where = moved


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
    world.cache.put_verdict(DIGEST, key(world), NAME, {"v": 99})
    assert lookup(world) is None


@pytest.mark.parametrize("what", ["dir", "database"])
def test_a_cache_others_may_write_is_never_read_by_the_warm_path(world: World,
                                                                 what: str) -> None:
    """A shared SAFE_DOCKER_CACHE_DIR: another user could write a record naming any digest,
    and the warm path hands docker a record's digest without verifying anything."""
    remember(world)
    target = world.where.cache_dir if what == "dir" else world.cache.path
    target.chmod(target.stat().st_mode | 0o022)
    with pytest.raises(verdicts.Unkeyable):
        verdicts.ReadOnly(world.where.cache_dir)


def test_a_cache_of_ones_own_is_read(world: World) -> None:
    remember(world)
    reader = verdicts.ReadOnly(world.where.cache_dir)
    try:
        assert reader.verdicts_for(key(world), NAME, 8)
    finally:
        reader.close()
