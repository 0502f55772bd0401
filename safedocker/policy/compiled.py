"""The configuration as read, cached by the content of its files (issue 16).

Reading a config with 1,000 rules costs tens of milliseconds (TOML, then checking every
key); the result depends only on the bytes of the two files, where they are, and this
code. So each read that parses stores what it parsed (both files' :class:`FileConfig`)
in ``CACHE_DIR/policy-index-PLACE.json``, keyed by the SHA-256 of all of that; the next read
with the same key takes it from there and only combines the two again (which is cheap,
and is where SAFE_DOCKER_MODE applies).

The cache file is the user's and is untrusted input. It holds JSON after a header that
names its key and the SHA-256 of the JSON: a file that is truncated, corrupt, too large,
of another format or for other files is ignored (and rewritten by the next parse), and
every value in it is type-checked before it is used. It is written atomically (a temp
file renamed over it), so concurrent processes see an old or a new file, never a mix.

Security: the cache is never read or written while the system file may lock the policy.
Under a lock, nothing the user writes may weaken a decision, and a file in the user's
cache could (its key is computable, its content forgeable); so a locked configuration is
always parsed from its files. Without a lock the user's own config file decides anyway,
so a forged cache entry gives its writer nothing they could not write in that file.
"""

from __future__ import annotations

import enum
import gc
import hashlib
import json
import math
import os
import stat
from typing import TYPE_CHECKING, Any

from safedocker import __version__
from safedocker.policy.model import (
    Action,
    Attestation,
    GpuPolicy,
    Identity,
    Mode,
    ReferenceCheck,
    Remap,
    Rule,
    SignedIdentity,
    Tlog,
    Unmatched,
)
from safedocker.policy.parsed import REGISTRY_TIMEOUT_MAX, FileConfig, KeyEntry

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from pathlib import Path

    from safedocker.policy.paths import Paths

FORMAT = "safe-docker policy index 1"
MAX_INDEX_BYTES = 32 * 1024 * 1024  # two config files of at most 4 MiB each, and then some
# The code a parsed file depends on (package-relative): a change to any of them (an edit,
# an upgrade) misses, even where the version stays the same.
_MODULES = ("policy/config.py", "policy/parsed.py", "policy/model.py", "policy/compiled.py",
            "reference.py", "_internal/timefmt.py", "_internal/goregexp.py", "trust/roots.py",
            "_docker/commands.py")


class Corrupt(ValueError):
    """The cache file is not one this code wrote for these files."""


def may_lock(data: bytes) -> bool:
    """Whether a system file with these bytes may say ``locked = true``; when it may, the
    caller parses it to see (and uses no cache if it does, or if it does not parse).

    Sound without parsing: TOML spells the key ``locked`` literally or with an escape
    (``"\\u006cocked"``), so a file holding neither ``locked`` nor a backslash cannot lock.
    """
    return b"locked" in data or b"\\" in data


def cache_key(where: Paths, system: bytes | None, user: bytes | None) -> str:
    """SHA-256 over everything the parsed files depend on: this format and code, where the
    files and key stores are, and each file's bytes (or its absence)."""
    digest = hashlib.sha256()
    here = os.path.dirname(os.path.dirname(__file__))
    stamps = []
    for module in _MODULES:
        found = os.stat(f"{here}/{module}")
        stamps.append(f"{found.st_mtime_ns}:{found.st_size}")
    for text in (FORMAT, __version__, *stamps, str(where.system_config_file),
                 str(where.system_keys_dir), str(where.user_config_file),
                 str(where.user_keys_dir)):
        encoded = text.encode("utf-8", "surrogateescape")
        digest.update(b"%d:" % len(encoded) + encoded)
    for data in (system, user):
        digest.update(b"absent;" if data is None else b"%d:" % len(data) + data)
    return digest.hexdigest()


def header(key: str, body: bytes) -> bytes:
    """The cache file's first line: the format, the key, and the SHA-256 of the rest."""
    return f"{FORMAT} {key} {hashlib.sha256(body).hexdigest()}\n".encode("ascii")


def index_file(where: Paths) -> Path:
    """One cache file for each place the config files may be, so that two configurations
    in use by turns (another SAFE_DOCKER_CONFIG_DIR) do not evict each other."""
    place = f"{where.system_config_file}\0{where.user_config_file}".encode(
        "utf-8", "surrogateescape")
    return where.cache_dir / f"policy-index-{hashlib.sha256(place).hexdigest()[:16]}.json"


def _read_bounded(path: Path) -> bytes:
    """The bytes of the regular file ``path`` (not a link, FIFO or device, which could
    block or never end), at most MAX_INDEX_BYTES."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0))
    try:
        status = os.fstat(fd)
        if not stat.S_ISREG(status.st_mode) or status.st_size > MAX_INDEX_BYTES:
            raise Corrupt("not a regular file of a bounded size")
        with os.fdopen(os.dup(fd), "rb") as handle:
            data = handle.read(MAX_INDEX_BYTES + 1)
    finally:
        os.close(fd)
    if len(data) > MAX_INDEX_BYTES:
        raise Corrupt("too large")
    return data


def load(where: Paths, key: str) -> tuple[FileConfig, FileConfig] | None:
    """The system and user file as parsed before, if the cache holds them for ``key``."""
    collecting = gc.isenabled()
    try:
        raw = _read_bounded(index_file(where))
        head, newline, body = raw.partition(b"\n")
        if not newline or head + newline != header(key, body):
            raise Corrupt("for other files, or damaged")
        # Thousands of small objects at once: the collector would walk them again and
        # again (a third of the time) while none of them can be garbage yet.
        gc.disable()
        document = json.loads(body)
        if type(document) is not dict:
            raise Corrupt("not an object")
        return (_file_config(document["system"], where.system_config_file,
                             where.system_keys_dir, "system"),
                _file_config(document["user"], where.user_config_file,
                             where.user_keys_dir, "user"))
    except (OSError, ValueError, TypeError, KeyError, RecursionError):
        return None  # absent, unreadable or not ours: parse the files instead
    finally:
        if collecting:
            gc.enable()


def store(where: Paths, key: str, system: FileConfig, user: FileConfig) -> None:
    """Keep what was parsed for ``key``; best effort (a read-only cache only costs time)."""
    from safedocker._internal.files import atomic_write

    if system.locked or user.locked:
        return  # never cache a locked policy (see the module's docstring)
    body = json.dumps({"system": _encode_file(system), "user": _encode_file(user)},
                      separators=(",", ":")).encode("utf-8")
    data = header(key, body) + body
    if len(data) > MAX_INDEX_BYTES:
        return
    try:
        atomic_write(index_file(where), data, 0o600)
    except OSError:
        return


# --- encoding: only what differs from the defaults ---------------------------------------

_RULE_DEFAULTS = Rule(scope="*", action=Action.VERIFY).__dict__.copy()


def _encode_file(config: FileConfig) -> dict[str, Any]:
    return {
        "mode": config.mode.value if config.mode else None,
        "unmatched": config.unmatched.value if config.unmatched else None,
        "offline_max_age": config.offline_max_age,
        "registry_timeout": config.registry_timeout,
        "insecure_registries": list(config.insecure_registries),
        "rekor_keys": list(config.rekor_keys),
        "keys": {name: [entry.fingerprint, entry.source] for name, entry in config.keys.items()},
        "removed_keys": sorted(config.removed_keys),
        "passthrough": list(config.passthrough),
        "rules": [_encode_rule(rule) for rule in config.rules],
    }


def _encode_identity(identity: Identity) -> dict[str, str]:
    return {k: v for k, v in identity.__dict__.items() if v is not None}


def _encode_rule(rule: Rule) -> dict[str, Any] | str:
    """``"ACTION SCOPE"`` for a rule that sets nothing else (most of a long list: one
    string is the least to decode and to collect), else a table of what differs from the
    defaults."""
    encoded: dict[str, Any] = {}
    for name, value in rule.__dict__.items():
        if name == "source" or (name != "scope" and value == _RULE_DEFAULTS[name]):
            continue
        if name == "identities":
            value = [_encode_identity(i) for i in value]
        elif name == "attestations":
            value = [{"predicate_type": a.predicate_type, "keys": list(a.keys),
                      "identities": [_encode_identity(i) for i in a.identities]}
                     for a in value]
        elif name == "signed_identity":
            value = {"remaps": [[r.prefix, r.signed_prefix, r.signed_prefix_regexp]
                                for r in value.remaps],
                     "exact_reference": value.exact_reference,
                     "exact_repository": value.exact_repository}
        elif isinstance(value, tuple):
            value = list(value)
        elif isinstance(value, enum.Enum):
            value = value.value
        elif name == "annotations":
            value = dict(value)
        encoded[name] = value
    if set(encoded) <= {"scope", "action"}:
        return f"{rule.action.value} {rule.scope}"
    return encoded


# --- decoding: every value type-checked ----------------------------------------------------

def _str(value: Any) -> str:
    if type(value) is not str:
        raise Corrupt("not a string")
    return value


def _optional_str(value: Any) -> str | None:
    return None if value is None else _str(value)


def _strs(value: Any) -> tuple[str, ...]:
    if type(value) is not list:
        raise Corrupt("not a list")
    return tuple(_str(item) for item in value)


def _optional_seconds(value: Any, least: float, most: float) -> float | None:
    """A duration the file set (or None), within the bounds the reader enforces."""
    if value is None:
        return None
    if type(value) not in (int, float) or not least <= value <= most:  # NaN fails too
        raise Corrupt("not a duration in range")
    return float(value)


def _enum(kind: type[Any]) -> Callable[[Any], Any]:
    members = {member.value: member for member in kind}

    def decode(value: Any) -> Any:
        member = members.get(value) if type(value) is str else None
        if member is None:
            raise Corrupt("not one of the allowed values")
        return member
    return decode


def _threshold(value: Any) -> int:
    if type(value) is not int or value < 1:
        raise Corrupt("not a threshold")
    return value


def _annotations(value: Any) -> dict[str, str]:
    if type(value) is not dict:
        raise Corrupt("not a table")
    return {_str(k): _str(v) for k, v in value.items()}


_IDENTITY_FIELDS = frozenset(Identity().__dict__)


def _identities(value: Any) -> tuple[Identity, ...]:
    if type(value) is not list:
        raise Corrupt("not a list")
    found = []
    for item in value:
        if type(item) is not dict or not _IDENTITY_FIELDS.issuperset(item):
            raise Corrupt("not an identity")
        found.append(Identity(**{k: _str(v) for k, v in item.items()}))
    return tuple(found)


def _attestations(value: Any) -> tuple[Attestation, ...]:
    if type(value) is not list:
        raise Corrupt("not a list")
    found = []
    for item in value:
        if type(item) is not dict or set(item) != {"predicate_type", "keys", "identities"}:
            raise Corrupt("not an attestation")
        found.append(Attestation(_str(item["predicate_type"]),
                                 _identities(item["identities"]), _strs(item["keys"])))
    return tuple(found)


def _signed_identity(value: Any) -> SignedIdentity:
    if type(value) is not dict or set(value) != {"remaps", "exact_reference",
                                                 "exact_repository"}:
        raise Corrupt("not a signed identity")
    remaps = value["remaps"]
    if type(remaps) is not list or not all(type(r) is list and len(r) == 3 for r in remaps):
        raise Corrupt("not a list of remaps")
    return SignedIdentity(
        remaps=tuple(Remap(_str(r[0]), _optional_str(r[1]), _optional_str(r[2]))
                     for r in remaps),
        exact_reference=_optional_str(value["exact_reference"]),
        exact_repository=_optional_str(value["exact_repository"]))


_action = _enum(Action)
_RULE_FIELDS: dict[str, Callable[[Any], Any]] = {
    "scope": _str, "action": _action, "keys": _strs, "identities": _identities,
    "threshold": _threshold, "tlog": _enum(Tlog), "reference": _enum(ReferenceCheck),
    "gpu": _enum(GpuPolicy), "annotations": _annotations, "trust_root": _str,
    "pki_roots": _strs, "pki_intermediates": _strs, "attestations": _attestations,
    "signed_identity": _signed_identity, "signatures_repository": _optional_str,
}
_new, _set = object.__new__, object.__setattr__


_ACTIONS = {action.value: action for action in Action}


def _rules(raw: Any, source: str) -> tuple[Rule, ...]:
    if type(raw) is not list:
        raise Corrupt("not a list of rules")
    rules = []
    # Built as Rule() would build them, without its __init__: that costs more than all
    # the rest of a cached read of 1,000 rules. Rule has no __post_init__ to skip.
    copy_defaults = _RULE_DEFAULTS.copy
    for item in raw:
        values = copy_defaults()
        values["annotations"] = {}
        values["source"] = source
        if type(item) is str:  # "ACTION SCOPE"
            action, _, values["scope"] = item.partition(" ")
            values["action"] = _ACTIONS[action]
        elif type(item) is dict and "scope" in item:
            for name, value in item.items():
                decode = _RULE_FIELDS.get(name)
                if decode is None:
                    raise Corrupt(f"unknown rule field {name!r}")
                values[name] = decode(value)
        else:
            raise Corrupt("not a rule")
        rule = _new(Rule)
        _set(rule, "__dict__", values)
        rules.append(rule)
    return tuple(rules)


_FILE_FIELDS = {"mode", "unmatched", "offline_max_age", "registry_timeout",
                "insecure_registries", "rekor_keys", "keys", "removed_keys", "passthrough",
                "rules"}
_mode, _unmatched = _enum(Mode), _enum(Unmatched)


def _keys(value: Any, keys_dir: Path, origin: str) -> Mapping[str, KeyEntry]:
    if type(value) is not dict:
        raise Corrupt("not a table of keys")
    keys = {}
    for name, entry in value.items():
        if type(entry) is not list or len(entry) != 2:
            raise Corrupt("not a key")
        keys[_str(name)] = KeyEntry(name, _str(entry[0]), keys_dir / f"{name}.pub",
                                    _str(entry[1]), origin)
    return keys


def _file_config(raw: Any, path: Path, keys_dir: Path, origin: str) -> FileConfig:
    if type(raw) is not dict or set(raw) != _FILE_FIELDS:
        raise Corrupt("not a file's configuration")
    return FileConfig(
        path=path,
        mode=None if raw["mode"] is None else _mode(raw["mode"]),
        unmatched=None if raw["unmatched"] is None else _unmatched(raw["unmatched"]),
        offline_max_age=_optional_seconds(raw["offline_max_age"], 0.0, math.inf),
        registry_timeout=_optional_seconds(raw["registry_timeout"], 1.0, REGISTRY_TIMEOUT_MAX),
        insecure_registries=_strs(raw["insecure_registries"]),
        rekor_keys=_strs(raw["rekor_keys"]),
        locked=False,  # a locked policy is never cached
        keys=_keys(raw["keys"], keys_dir, origin),
        rules=_rules(raw["rules"], str(path)),
        removed_keys=frozenset(_strs(raw["removed_keys"])),
        passthrough=_strs(raw["passthrough"]),
    )
