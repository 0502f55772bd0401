"""The configuration cached by its files' content (issue 16): a cached read equals a parse,
any change to a file misses, a damaged or forged cache file is ignored, a locked policy is
never cached, and concurrent writers leave a whole file.

Real TOML files and real key files; the cache file is the one load_config writes.
"""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING

import pytest

from safedocker.errors import ConfigError
from safedocker.policy import compiled
from safedocker.policy.config import load_config
from safedocker.policy.model import Action, Mode
from safedocker.reference import parse_reference
from safedocker.trust.keys import fingerprint_of
from tests.unit.policy.support import fresh_dirs, new_pem

if TYPE_CHECKING:
    from pathlib import Path

    from safedocker.policy.paths import Paths

GH = "https://token.actions.githubusercontent.com"
SHA = "sha256:" + "ab" * 32

# Every kind of value a file may hold, so that a cached read is compared field by field.
USER_BODY = f"""
mode = "warn"
unmatched = "warn"
offline_max_age = "7d"
registry_timeout = "90s"
insecure_registries = ["10.0.0.1:5000"]
rekor_keys = ["alpha"]
passthrough = ["scout"]

[[policy]]
scope = "ghcr.io/org/*"
keys = ["alpha", "beta"]
threshold = 2
tlog = "required"
reference = "exact"
gpu = "never"
annotations = {{ team = "ml", env = "prod" }}
signatures_repository = "ghcr.io/org/signatures"

[[policy]]
scope = "docker.io/pytorch"
trust_root = "staging"

[[policy.identities]]
issuer = "{GH}"
subject_regexp = "^https://github.com/pytorch/"
github_workflow_ref = "refs/heads/main"

[[policy.identities]]
issuer_regexp = "^https://.*"
subject = "dev@example.com"

[[policy.signed_identity.remap]]
prefix = "docker.io/pytorch"
signed_prefix = "ghcr.io/pytorch"

[[policy.signed_identity.remap]]
prefix = "docker.io/pytorch/x"
signed_prefix_regexp = "ghcr\\\\.io/.*"

[[policy]]
scope = "quay.io/org/app"
keys = ["gone"]
pki_roots = ["roots/ca.pem"]
pki_intermediates = ["roots/int.pem"]
identities = [ {{ subject = "ci@example.com" }} ]

[[policy.attestations]]
predicate_type = "https://slsa.dev/provenance/v1"
identities = [ {{ issuer = "{GH}", subject = "x" }} ]
keys = ["alpha"]

[[policy]]
scope = "registry.example.com/app:1.0"
action = "accept"
signed_identity = {{ exact_reference = "registry.example.com/app:1.0" }}

[[policy]]
scope = "registry.example.com/lib@{SHA}"
action = "reject"

[[policy]]
scope = "docker.io/library/ubuntu"
keys = ["beta"]
signed_identity = {{ exact_repository = "docker.io/library/base" }}

[keys.gone]
removed = true
"""

SYSTEM_BODY = """
mode = "enforce"
unmatched = "reject"

[[policy]]
scope = "*"
action = "reject"

[[policy]]
scope = "127.0.0.1:5000/team/*"
keys = ["sys"]
"""


def write_key(directory: Path, name: str) -> str:
    pem = new_pem()
    (directory / "keys").mkdir(exist_ok=True)
    (directory / "keys" / f"{name}.pub").write_bytes(pem)
    return f'\n[keys.{name}]\nfingerprint = "{fingerprint_of(pem)}"\nsource = "test"\n'


@pytest.fixture
def where(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Paths:
    result = fresh_dirs(tmp_path, monkeypatch)
    keys = write_key(result.config_dir, "alpha") + write_key(result.config_dir, "beta")
    result.user_config_file.write_text(USER_BODY + keys)
    result.system_config_file.write_text(SYSTEM_BODY + write_key(result.system_config_dir,
                                                                 "sys"))
    return result


def file_bytes(path: Path) -> bytes | None:
    return path.read_bytes() if path.exists() else None


def key_of(where: Paths) -> str:
    return compiled.cache_key(where, file_bytes(where.system_config_file),
                              file_bytes(where.user_config_file))


def cached(where: Paths) -> bool:
    """Whether the cache holds the files as they are now."""
    return compiled.load(where, key_of(where)) is not None


def test_a_cached_read_equals_a_parse_of_every_field(where: Paths) -> None:
    parsed = load_config(where)
    assert cached(where)
    again = load_config(where)
    assert again == parsed
    assert again.policy.rules == parsed.policy.rules  # each field of each rule
    assert [r.source for r in again.policy.rules] == [r.source for r in parsed.policy.rules]
    assert again.keys == parsed.keys and again.removed_keys == frozenset({"gone"})
    assert len(parsed.policy.user_rules) == 6 and parsed.mode is Mode.WARN


def test_a_cached_read_still_applies_safe_docker_mode(where: Paths,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    load_config(where)
    monkeypatch.setenv("SAFE_DOCKER_MODE", "off")
    assert cached(where)
    assert load_config(where).mode is Mode.OFF


@pytest.mark.parametrize("which", ["system", "user"])
def test_any_change_to_a_config_files_bytes_misses(where: Paths, which: str) -> None:
    load_config(where)
    path = where.system_config_file if which == "system" else where.user_config_file
    original = path.read_bytes()
    key = key_of(where)
    # Every byte changed in turn (a sample of positions in the longer file), and the
    # file grown, cut, emptied and removed: each is another key.
    for position in range(0, len(original), max(1, len(original) // 200)):
        changed = bytearray(original)
        changed[position] ^= 0x01
        path.write_bytes(bytes(changed))
        assert key_of(where) != key, position
    for variant in (original + b"\n", original[:-1], b""):
        path.write_bytes(variant)
        assert key_of(where) != key
    path.unlink()
    assert key_of(where) != key
    path.write_bytes(original)
    assert key_of(where) == key


def test_an_edited_rule_is_read_from_the_file_not_the_cache(where: Paths) -> None:
    image = parse_reference("registry.example.com/app:1.0")
    assert load_config(where).policy.decide(image).action is Action.ACCEPT
    text = where.user_config_file.read_text()
    where.user_config_file.write_text(text.replace(
        'scope = "registry.example.com/app:1.0"\naction = "accept"',
        'scope = "registry.example.com/app:1.0"\naction = "reject"'))
    assert load_config(where).policy.decide(image).action is Action.REJECT


def test_the_key_covers_the_places_the_version_and_the_code(
        where: Paths, monkeypatch: pytest.MonkeyPatch) -> None:
    key = key_of(where)
    assert compiled.cache_key(where._replace(config_dir=where.config_dir / "x"),
                              file_bytes(where.system_config_file),
                              file_bytes(where.user_config_file)) != key
    monkeypatch.setattr(compiled, "__version__", "0.0.0-other")
    assert key_of(where) != key
    monkeypatch.undo()
    os.utime(compiled.__file__, ns=(0, os.stat(compiled.__file__).st_mtime_ns + 1))
    assert key_of(where) != key  # an edited module


def test_an_invalid_config_is_never_cached(where: Paths) -> None:
    where.user_config_file.write_text('[[policy]]\nscope = "x"\nkeys = ["nobody"]\n')
    for _ in range(2):
        with pytest.raises(ConfigError, match="unknown key 'nobody'"):
            load_config(where)
    assert not compiled.index_file(where).exists()


def damage(where: Paths, how: str) -> None:
    index = compiled.index_file(where)
    data = index.read_bytes()
    head, _, body = data.partition(b"\n")
    if how == "truncated":
        index.write_bytes(data[: len(data) // 2])
    elif how == "a flipped byte":
        index.write_bytes(data[:-10] + bytes([data[-10] ^ 0x20]) + data[-9:])
    elif how == "garbage":
        index.write_bytes(os.urandom(4096))
    elif how == "empty":
        index.write_bytes(b"")
    elif how == "another format":
        index.write_bytes(head.replace(b"index 1", b"index 9") + b"\n" + body)
    elif how == "a directory":
        index.unlink()
        index.mkdir()
    elif how == "a fifo":
        index.unlink()
        os.mkfifo(index)
    elif how == "a link":
        other = index.with_name("elsewhere.json")
        index.rename(other)
        index.symlink_to(other)
    else:  # forged: a right header over JSON of the wrong shape
        forged = {"forged types": b'{"system":{"rules":"*"},"user":[]}',
                  "forged setting": body.replace(b'"reject"', b'"allow"'),
                  "forged action": body.replace(b'"reject *"', b'"allow *"'),
                  "forged rule": body.replace(b'"reject *"', b'["*","reject"]'),
                  "forged threshold": body.replace(b'"threshold":2', b'"threshold":0'),
                  "forged wait": body.replace(b'"registry_timeout":90.0',
                                              b'"registry_timeout":1e12'),
                  "forged age": body.replace(b'"offline_max_age":604800.0',
                                             b'"offline_max_age":NaN'),
                  "deep nesting": b"[" * 100_000 + b"]" * 100_000}[how]
        assert forged != body
        key = head.split(b" ")[-2].decode()
        index.write_bytes(compiled.header(key, forged) + forged)


@pytest.mark.parametrize("how", [
    "truncated", "a flipped byte", "garbage", "empty", "another format", "a directory",
    "a fifo", "a link", "forged types", "forged setting", "forged action", "forged rule",
    "forged threshold", "forged wait",
    "forged age", "deep nesting",
])
def test_a_damaged_or_forged_cache_file_is_ignored(where: Paths, how: str) -> None:
    parsed = load_config(where)
    damage(where, how)
    assert compiled.load(where, key_of(where)) is None
    assert load_config(where) == parsed  # parsed again (and, for a file, rewritten)
    if how not in ("a directory", "a fifo"):
        assert cached(where)


def test_a_cache_file_over_the_bound_is_ignored(where: Paths,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    load_config(where)
    size = compiled.index_file(where).stat().st_size
    monkeypatch.setattr(compiled, "MAX_INDEX_BYTES", size - 1)
    assert not cached(where)
    compiled.index_file(where).unlink()
    load_config(where)
    assert not compiled.index_file(where).exists()  # too large to be written either


def test_an_unwritable_cache_costs_only_time(where: Paths) -> None:
    where.cache_dir.write_text("not a directory")
    assert load_config(where) == load_config(where)


@pytest.mark.parametrize("lock", ["locked = true\n", '"locked" = true\n',
                                  '"\\u006cocked" = true\n', "locked = 1\n"])
def test_a_locked_system_policy_never_uses_the_cache(where: Paths, lock: str) -> None:
    """Under a lock a cache file the user forged for these very files is not read: the
    decision stays the system's (reject), however the file spells the lock."""
    image = parse_reference("ghcr.io/evil/app:1")
    unlocked = load_config(where)  # caches the unlocked files...
    body = compiled.index_file(where).read_bytes().partition(b"\n")[2]
    where.system_config_file.write_text(lock + where.system_config_file.read_text())
    # ... and the user forges an entry for the locked ones, without the system's rules.
    forged = body.replace(b'"reject *"', b'"accept *"')
    assert forged != body
    compiled.index_file(where).write_bytes(compiled.header(key_of(where), forged) + forged)
    assert compiled.load(where, key_of(where)) is not None  # a well-made forgery
    if lock == "locked = 1\n":
        with pytest.raises(ConfigError, match="locked"):
            load_config(where)
        return
    config = load_config(where)
    assert config.policy.locked and unlocked.policy.system_rules == config.policy.system_rules
    assert config.policy.decide(image).action is Action.REJECT
    assert compiled.index_file(where).read_bytes().endswith(forged)  # nor written


@pytest.mark.parametrize(("text", "may"), [
    (b"", False), (b'mode = "warn"\n', False), (b"locked = false\n", True),
    (b"# locked\n", True), (b'x = "\\t"\n', True), (b"[keys.unlocked]\n", True),
])
def test_only_a_file_that_mentions_locked_or_has_an_escape_may_lock(text: bytes,
                                                                    may: bool) -> None:
    assert compiled.may_lock(text) is may


def test_locked_false_in_the_system_file_still_uses_the_cache(where: Paths) -> None:
    where.system_config_file.write_text("locked = false\n" + where.system_config_file.read_text())
    parsed = load_config(where)
    assert cached(where) and load_config(where) == parsed


def test_concurrent_writers_leave_one_whole_file(where: Paths) -> None:
    load_config(where)
    parsed = compiled.load(where, key_of(where))
    assert parsed is not None
    keys = [f"{n:064x}" for n in range(8)]

    def write(key: str) -> None:
        for _ in range(25):
            compiled.store(where, key, *parsed)
            compiled.load(where, key)  # a reader among the writers

    threads = [threading.Thread(target=write, args=(key,)) for key in keys]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(compiled.load(where, key) is not None for key in keys) == 1
    assert [p.name for p in where.cache_dir.iterdir()] == [compiled.index_file(where).name]


def test_the_values_a_cached_read_builds_without_init_have_no_post_init() -> None:
    """compiled.py builds cached rules and identities with ``object.__new__`` (their
    ``__init__`` alone costs ms for 1,000 rules): a ``__post_init__`` that derives or checks
    a field would be skipped on a cached read, so one must first make that read call it."""
    from safedocker.policy.model import Identity, Rule

    assert not hasattr(Rule, "__post_init__")
    assert not hasattr(Identity, "__post_init__")
