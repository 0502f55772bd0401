"""The TOML configuration: read, validate, combine system + user (the lock), write.

Two files are read: the system file (``/etc/safe-docker/config.toml``; admins, GPU
nodes) and the user file (platformdirs' user config dir); :mod:`safedocker.policy.paths`
says where they are. Each file's ``[keys.NAME]`` table pins a trusted key's fingerprint;
the key files themselves are the key store's (:mod:`safedocker.trust.keystore`). Any
unknown key, wrong type or unreadable file is a :class:`ConfigError` (exit 78) naming
the file, the line and the key, so a typo never silently weakens the policy.

The lock (``locked = true`` in the system file): no variable and no user file makes a
decision weaker, and system rules are checked with system trust anchors only (system
keys, system Rekor keys, system or built-in trusted roots). Each setting the lock
overrides becomes one line on stderr when the config is read (``Config.notes``).
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from safedocker._internal import environment
from safedocker._internal.files import atomic_write
from safedocker._internal.timefmt import parse_duration
from safedocker.errors import ConfigError
from safedocker.policy.model import (
    Action,
    Attestation,
    GpuPolicy,
    Identity,
    Mode,
    Policy,
    ReferenceCheck,
    Remap,
    Rule,
    SignedIdentity,
    Tlog,
    Unmatched,
    normalize_scope,
    stricter_mode,
    stricter_unmatched,
)
from safedocker.policy.parsed import REGISTRY_TIMEOUT_MAX, FileConfig
from safedocker.policy.parsed import KeyEntry as KeyEntry  # where callers import it from
from safedocker.policy.paths import Paths, paths

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping
    from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib  # type: ignore[import-not-found, unused-ignore]

KEY_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
DEFAULT_OFFLINE_MAX_AGE = 30 * 86400.0
# One verification's registry traffic, every request together (each request is also
# capped on its own: oci/transport.py's REQUEST_TIMEOUT).
DEFAULT_REGISTRY_TIMEOUT = 60.0
MAX_CONFIG_BYTES = 4 * 1024 * 1024
SCHEMA_HINT = "fix the file; `safe-docker policy schema` shows every key and its values"
_TOML_WHERE = re.compile(r"\s*\(at (?:line (\d+), column (\d+)|end of document)\)\s*$")


@dataclass(frozen=True)
class Anchors:
    """The trust anchors one rule is checked with: keys and Rekor keys by name, and where
    its Sigstore trusted roots may come from."""

    keys: Mapping[str, KeyEntry] = field(default_factory=dict)
    rekor_keys: tuple[str, ...] = ()
    removed_keys: frozenset[str] = frozenset()  # `keys remove`d: rules naming them refuse
    # Set for the system rules of a locked policy: trusted roots come only from this
    # directory (or the built-in public-good root), never from the user's.
    system_roots_dir: Path | None = None


@dataclass(frozen=True)
class Config:
    mode: Mode = Mode.ENFORCE
    offline_max_age: float = DEFAULT_OFFLINE_MAX_AGE  # seconds
    registry_timeout: float = DEFAULT_REGISTRY_TIMEOUT  # seconds, per verification
    insecure_registries: tuple[str, ...] = ()
    rekor_keys: tuple[str, ...] = ()
    keys: Mapping[str, KeyEntry] = field(default_factory=dict)
    policy: Policy = field(default_factory=Policy)
    files: tuple[Path, ...] = ()  # the files that were read, for `policy check`
    removed_keys: frozenset[str] = frozenset()
    system_anchors: Anchors | None = None  # locked: the only anchors system rules get
    notes: tuple[str, ...] = ()  # one line for each setting the lock overrode
    passthrough: frozenset[str] = frozenset()  # CLI plugins docker may run unchecked

    @property
    def unmatched(self) -> Unmatched:
        return self.policy.unmatched

    def anchors(self, rule: Rule) -> Anchors:
        """What ``rule`` is checked with. Under a lock, every rule that is not one of the
        user's (system rules, and the lock's own) gets the system anchors only."""
        if self.system_anchors is not None and not any(
            rule == mine for mine in self.policy.user_rules
        ):
            return self.system_anchors
        return Anchors(self.keys, self.rekor_keys, self.removed_keys)


# --- parsing ----------------------------------------------------------------------------

_TOP_KEYS = {
    "mode", "unmatched", "offline_max_age", "insecure_registries", "keys", "policy",
    "locked", "rekor_keys", "registry_timeout", "passthrough",
}
_KEY_KEYS = {"fingerprint", "source", "removed"}
_RULE_KEYS = {
    "scope", "action", "keys", "identities", "threshold", "tlog", "reference", "gpu",
    "annotations", "trust_root", "pki_roots", "pki_intermediates", "attestations",
    "signed_identity", "signatures_repository",
}
_SIGNED_IDENTITY_KEYS = {"remap", "exact_reference", "exact_repository"}
_REMAP_KEYS = {"prefix", "signed_prefix", "signed_prefix_regexp"}
_IDENTITY_KEYS = {
    "issuer", "subject", "issuer_regexp", "subject_regexp", "github_workflow_repository",
    "github_workflow_ref", "github_workflow_trigger",
}
_ATTESTATION_KEYS = {"predicate_type", "identities", "keys"}
class _Reader:
    """Reads one TOML document and reports errors with file, line and key."""

    def __init__(self, path: Path, text: str) -> None:
        self.path = path
        self.lines = text.splitlines()

    def line_of(self, key: str) -> int | None:
        bare = key.rsplit(".", 1)[-1]
        pattern = re.compile(
            rf"^\s*(?:\[+\s*[\w.\"-]*{re.escape(bare)}[\w.\"-]*\s*\]+|\"?{re.escape(bare)}\"?\s*=)"
        )
        for number, line in enumerate(self.lines, start=1):
            if pattern.search(line):
                return number
        return None

    def error(self, key: str, why: str, hint: str = "") -> ConfigKeyError:
        line = self.line_of(key)
        where = f"{self.path}:{line}" if line else str(self.path)
        return ConfigKeyError(f"invalid configuration in {where}", key=key, reason=why,
                              hint=hint or SCHEMA_HINT)

    def check_keys(self, table: Mapping[str, Any], allowed: set[str], prefix: str) -> None:
        for key in table:
            if key not in allowed:
                raise self.error(
                    f"{prefix}{key}", "unknown key",
                    hint=f"allowed here: {', '.join(sorted(allowed))}",
                )

    def enum(self, table: Mapping[str, Any], key: str, kind: type[Any], prefix: str,
             default: Any) -> Any:
        if key not in table:
            return default
        value = table[key]
        try:
            return kind(value)
        except ValueError:
            allowed = " | ".join(member.value for member in kind)
            raise self.error(f"{prefix}{key}", f"{value!r} is not one of {allowed}") from None

    def string_list(self, table: Mapping[str, Any], key: str, prefix: str) -> tuple[str, ...]:
        value = table.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.error(f"{prefix}{key}", "must be a list of strings")
        return tuple(value)


class ConfigKeyError(ConfigError):
    """A configuration error at one key (``policy[0].tlog``): file, line, key and why."""

    def __init__(self, what: str, *, key: str, reason: str, hint: str = "") -> None:
        super().__init__(what, why=f"{key}: {reason}", hint=hint)
        self.key = key
        self.reason = reason


def read_document(path: Path) -> dict[str, Any]:
    """The raw TOML of one config file; ``{}`` when it does not exist."""
    data = _read_bytes(path)
    return {} if data is None else _parse_toml(path, data)


def _read_bytes(path: Path) -> bytes | None:
    """One config file's bytes; None when it does not exist."""
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_CONFIG_BYTES + 1)
    except FileNotFoundError:
        return None
    except OSError as e:
        raise ConfigError(f"cannot read {path}", why=e.strerror or str(e),
                          hint="check the file's permissions") from e
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigError(f"invalid configuration in {path}", why="file is too large")
    return data


def _parse_toml(path: Path, data: bytes) -> dict[str, Any]:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(f"invalid configuration in {path}", why="the file is not UTF-8 text",
                          hint="the file must be valid TOML") from e
    try:
        document: dict[str, Any] = tomllib.loads(text)
        return document
    except tomllib.TOMLDecodeError as e:
        raise _toml_error(path, text, e) from e
    except RecursionError as e:  # arrays or inline tables nested thousands deep
        raise ConfigError(f"invalid configuration in {path}", why="values are nested too "
                          "deeply", hint="the file must be a safe-docker config") from e


def _toml_error(path: Path, text: str, error: Exception) -> ConfigError:
    """A TOML syntax error as ``invalid configuration in FILE:LINE — why``."""
    message = str(error).splitlines()[0] if str(error) else "not valid TOML"
    found = _TOML_WHERE.search(message)
    line = str(max(1, len(text.splitlines()))) if found else ""
    if found and found.group(1):
        line = found.group(1)
        message = message[: found.start()] + f" (column {found.group(2)})"
    elif found:
        message = message[: found.start()] + " (at the end of the file)"
    where = f"{path}:{line}" if line else str(path)
    why = message[:1].lower() + message[1:]
    return ConfigError(f"invalid configuration in {where}", why=f"not valid TOML: {why}",
                       hint="fix the file; TOML is described at https://toml.io")


def _parse_file(path: Path, keys_dir: Path, origin: str, data: bytes | None = None,
                doc: dict[str, Any] | None = None) -> FileConfig:
    """One file (``data``: its bytes, already read; ``doc``: their TOML) checked."""
    if data is None:
        data = _read_bytes(path)
    if doc is None:
        doc = {} if data is None else _parse_toml(path, data)
    text = data.decode("utf-8") if doc and data is not None else ""
    return _parse_document(path, doc, text, keys_dir, origin)


def _parse_document(path: Path, doc: Mapping[str, Any], text: str, keys_dir: Path,
                    origin: str) -> FileConfig:
    reader = _Reader(path, text)
    reader.check_keys(doc, _TOP_KEYS, "")

    offline_max_age = None
    if "offline_max_age" in doc:
        raw = doc["offline_max_age"]
        try:
            offline_max_age = parse_duration(raw) if isinstance(raw, str) else None
        except ValueError as e:
            raise reader.error("offline_max_age", str(e)) from None
        if offline_max_age is None:
            raise reader.error("offline_max_age", "must be a string such as \"30d\"")
    registry_timeout = None
    if "registry_timeout" in doc:
        raw = doc["registry_timeout"]
        try:
            registry_timeout = parse_duration(raw) if isinstance(raw, str) else None
        except ValueError as e:
            raise reader.error("registry_timeout", str(e)) from None
        if registry_timeout is None:
            raise reader.error("registry_timeout", "must be a string such as \"60s\"")
        if not 1.0 <= registry_timeout <= REGISTRY_TIMEOUT_MAX:
            raise reader.error("registry_timeout", "must be between 1s and 1h")
    locked = doc.get("locked", False)
    if not isinstance(locked, bool):
        raise reader.error("locked", "must be true or false")
    if locked and origin != "system":
        raise reader.error("locked", "only the system file can lock the policy")

    keys_table = doc.get("keys", {})
    if not isinstance(keys_table, dict):
        raise reader.error("keys", "must be a table of [keys.NAME] entries")
    keys: dict[str, KeyEntry] = {}
    removed_keys: set[str] = set()
    for name, entry in keys_table.items():
        prefix = f"keys.{name}."
        if not KEY_NAME_RE.match(name):
            raise reader.error(f"keys.{name}", "invalid key name")
        if not isinstance(entry, dict):
            raise reader.error(f"keys.{name}", "must be a table")
        reader.check_keys(entry, _KEY_KEYS, prefix)
        removed = entry.get("removed", False)
        if not isinstance(removed, bool):
            raise reader.error(f"{prefix}removed", "must be true or false")
        fingerprint = entry.get("fingerprint")
        if removed and fingerprint is None:
            removed_keys.add(name)  # `keys remove`: rules keep the name and refuse
            continue
        if not isinstance(fingerprint, str) or not re.match(r"^sha256:[0-9a-f]{64}$", fingerprint):
            raise reader.error(f"{prefix}fingerprint", "must be sha256:<64 lowercase hex>")
        if removed:
            raise reader.error(f"{prefix}removed", "a removed key has no fingerprint",
                               hint=f"re-add it with `safe-docker keys add {name} FILE`")
        source = entry.get("source", "")
        if not isinstance(source, str):
            raise reader.error(f"{prefix}source", "must be a string")
        keys[name] = KeyEntry(name, fingerprint, keys_dir / f"{name}.pub", source, origin)

    rules_list = doc.get("policy", [])
    if not isinstance(rules_list, list):
        raise reader.error("policy", "must be an array of [[policy]] tables")
    rules = tuple(_parse_rule(reader, entry, index, str(path))
                  for index, entry in enumerate(rules_list))

    return FileConfig(
        path=path,
        mode=reader.enum(doc, "mode", Mode, "", None),
        unmatched=reader.enum(doc, "unmatched", Unmatched, "", None),
        offline_max_age=offline_max_age,
        registry_timeout=registry_timeout,
        insecure_registries=reader.string_list(doc, "insecure_registries", ""),
        rekor_keys=reader.string_list(doc, "rekor_keys", ""),
        locked=locked,
        keys=keys,
        rules=rules,
        removed_keys=frozenset(removed_keys),
        passthrough=_passthrough(reader, doc),
    )


def _passthrough(reader: _Reader, doc: Mapping[str, Any]) -> tuple[str, ...]:
    """``passthrough``: docker CLI plugins (by name) docker may run without the gate."""
    from safedocker._docker.commands import DOCKER

    names = reader.string_list(doc, "passthrough", "")
    for name in names:
        if not re.fullmatch(r"[a-z][a-z0-9]*", name):
            raise reader.error("passthrough", f"{name!r} is not a docker CLI plugin name")
        if name in DOCKER:
            raise reader.error("passthrough", f"{name!r} is a docker command safe-docker "
                               "decides itself", hint="list only CLI plugins, e.g. \"scout\"")
    return names


def _parse_rule(reader: _Reader, entry: Any, index: int, source: str) -> Rule:
    prefix = f"policy[{index}]."
    if not isinstance(entry, dict):
        raise reader.error(f"policy[{index}]", "must be a table")
    reader.check_keys(entry, _RULE_KEYS, prefix)
    scope = entry.get("scope")
    if not isinstance(scope, str) or not scope.strip():
        raise reader.error(f"{prefix}scope", "is required and must be a non-empty string")
    action = reader.enum(entry, "action", Action, prefix, Action.VERIFY)
    keys = reader.string_list(entry, "keys", prefix)
    threshold = entry.get("threshold", 1)
    if not isinstance(threshold, int) or isinstance(threshold, bool) or threshold < 1:
        raise reader.error(f"{prefix}threshold", "must be an integer >= 1")
    pki_roots = _paths(reader, entry, "pki_roots", prefix)
    pki_intermediates = _paths(reader, entry, "pki_intermediates", prefix)
    identities = _parse_identities(reader, entry, prefix, issuer_required=not pki_roots)
    attestations = []
    for item_prefix, item in _tables(reader, entry, "attestations", prefix):
        reader.check_keys(item, _ATTESTATION_KEYS, item_prefix)
        predicate_type = item.get("predicate_type")
        if not isinstance(predicate_type, str) or not predicate_type:
            raise reader.error(f"{item_prefix}predicate_type", "is required (a URI string)")
        att_keys = reader.string_list(item, "keys", item_prefix)
        att_identities = _parse_identities(reader, item, item_prefix, issuer_required=True)
        if not att_keys and not att_identities:
            raise reader.error(f"{item_prefix}identities", "an attestation needs keys or "
                               "identities")
        attestations.append(Attestation(predicate_type, tuple(att_identities), att_keys))
    trust_root_name = entry.get("trust_root", "default")
    if "trust_root" in entry:  # trust/roots.py's rule; imported only when a rule names one
        from safedocker.trust.roots import is_root_name

        if not is_root_name(trust_root_name):
            raise reader.error(f"{prefix}trust_root",
                               "must be the name of an imported trusted root")
    annotations = entry.get("annotations", {})
    if not isinstance(annotations, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in annotations.items()
    ):
        raise reader.error(f"{prefix}annotations", "must be a table of string values")
    if action is Action.VERIFY and not keys and not identities:
        raise reader.error(
            f"{prefix}keys", "a verify rule needs keys or identities",
            hint="add keys = [\"NAME\"] or identities, or use action = \"accept\"",
        )
    if action is Action.VERIFY and threshold > len(keys) + len(identities):
        raise reader.error(f"{prefix}threshold", "is larger than the number of signers listed")
    reference = reader.enum(entry, "reference", ReferenceCheck, prefix,
                            ReferenceCheck.REPOSITORY)
    signed_identity = _parse_signed_identity(reader, entry, prefix, reference)
    return Rule(
        scope=normalize_scope(scope),
        action=action,
        keys=keys,
        identities=tuple(identities),
        threshold=threshold,
        tlog=reader.enum(entry, "tlog", Tlog, prefix, Tlog.OPTIONAL),
        reference=reference,
        gpu=reader.enum(entry, "gpu", GpuPolicy, prefix, GpuPolicy.AUTO),
        annotations=dict(annotations),
        trust_root=trust_root_name,
        pki_roots=pki_roots,
        pki_intermediates=pki_intermediates,
        attestations=tuple(attestations),
        signed_identity=signed_identity,
        signatures_repository=_parse_signatures_repository(reader, entry, prefix),
        source=source,
    )


def _parse_signatures_repository(reader: _Reader, entry: Mapping[str, Any],
                                 prefix: str) -> str | None:
    """``signatures_repository``: a repository name (no tag or digest), normalized."""
    from safedocker.errors import UsageError
    from safedocker.reference import parse_reference

    if "signatures_repository" not in entry:
        return None
    value = entry["signatures_repository"]
    key = f"{prefix}signatures_repository"
    if not isinstance(value, str):
        raise reader.error(key, "must be a repository name such as \"ghcr.io/org/signatures\"")
    try:
        ref = parse_reference(value)
    except UsageError as e:
        raise reader.error(key, f"{value!r} is not a repository name ({e.what})") from None
    if ref.tag is not None or ref.digest is not None:
        raise reader.error(key, "names a repository, without a tag or digest")
    return ref.name


def _parse_signed_identity(reader: _Reader, entry: Mapping[str, Any], prefix: str,
                           reference: ReferenceCheck) -> SignedIdentity:
    """``signed_identity = { remap = … }`` (a table or a list of tables), or
    ``{ exact_reference = "…" }``, or ``{ exact_repository = "…" }``."""
    from safedocker.errors import UsageError
    from safedocker.reference import is_name_prefix, parse_reference

    if "signed_identity" not in entry:
        return SignedIdentity()
    table = entry["signed_identity"]
    key = f"{prefix}signed_identity"
    if not isinstance(table, dict):
        raise reader.error(key, "must be a table: { remap = … }, { exact_reference = … } or "
                                "{ exact_repository = … }")
    reader.check_keys(table, _SIGNED_IDENTITY_KEYS, f"{key}.")
    if len(table) != 1:
        raise reader.error(key, "needs exactly one of remap, exact_reference and "
                                "exact_repository")
    if "reference" in entry and reference is ReferenceCheck.DIGEST:
        raise reader.error(f"{prefix}reference", "\"digest\" ignores the signed reference, "
                           "so signed_identity would never be checked",
                           hint="use reference = \"repository\" or \"exact\"")
    for fixed in ("exact_reference", "exact_repository"):
        if fixed not in table:
            continue
        if "reference" in entry:
            raise reader.error(f"{prefix}reference", f"does not apply with {fixed}: the "
                               "signature must name that reference whatever was pulled")
        text = table[fixed]
        try:
            ref = parse_reference(text) if isinstance(text, str) else None
        except UsageError as e:
            raise reader.error(f"{key}.{fixed}", f"{text!r} is not a reference ({e.what})"
                               ) from None
        if ref is None:
            raise reader.error(f"{key}.{fixed}", "must be a string")
        if fixed == "exact_reference":
            if ref.tag is None and ref.digest is None:
                raise reader.error(f"{key}.{fixed}", f"{text!r} has neither a tag nor a "
                                   "digest")
            return SignedIdentity(exact_reference=str(ref))
        return SignedIdentity(exact_repository=ref.name)
    items = table["remap"]
    items = [items] if isinstance(items, dict) else items
    if not isinstance(items, list) or not items or not all(isinstance(i, dict) for i in items):
        raise reader.error(f"{key}.remap", "must be a table or a list of tables")
    remaps = []
    for number, item in enumerate(items):
        where = f"{key}.remap[{number}]."
        reader.check_keys(item, _REMAP_KEYS, where)
        if "prefix" not in item or ("signed_prefix" in item) == ("signed_prefix_regexp" in
                                                                  item):
            raise reader.error(f"{key}.remap", "each remap needs prefix and exactly one of "
                                               "signed_prefix and signed_prefix_regexp")
        for name in ("prefix", "signed_prefix"):
            value = item.get(name, "registry.example")
            if not isinstance(value, str) or not is_name_prefix(value):
                raise reader.error(f"{where}{name}", f"{value!r} is not a registry host or "
                                   "a fully qualified repository (no tag, no digest)")
        pattern = item.get("signed_prefix_regexp")
        if pattern is not None:
            why = regexp_problem(pattern) if isinstance(pattern, str) else "must be a string"
            if why:
                raise reader.error(f"{where}signed_prefix_regexp", why)
        remaps.append(Remap(item["prefix"], item.get("signed_prefix"), pattern))
    return SignedIdentity(remaps=tuple(remaps))


def _paths(reader: _Reader, entry: Mapping[str, Any], key: str, prefix: str) -> tuple[str, ...]:
    """File names in the config, relative to the config file's directory."""
    base = reader.path.parent
    return tuple(str(base / item) for item in reader.string_list(entry, key, prefix))


def _tables(reader: _Reader, entry: Mapping[str, Any], key: str,
            prefix: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """The tables of an array-of-tables key, each with its prefix for error messages."""
    raw = entry.get(key, [])
    if not isinstance(raw, list) or not all(isinstance(item, dict) for item in raw):
        raise reader.error(f"{prefix}{key}", "must be a list of tables")
    for number, item in enumerate(raw):
        yield f"{prefix}{key}[{number}].", item


def _parse_identities(reader: _Reader, entry: Mapping[str, Any], prefix: str, *,
                      issuer_required: bool) -> list[Identity]:
    identities = []
    for item_prefix, item in _tables(reader, entry, "identities", prefix):
        reader.check_keys(item, _IDENTITY_KEYS, item_prefix)
        if not all(isinstance(v, str) for v in item.values()):
            raise reader.error(f"{prefix}identities", "values must be strings")
        issuers = ("issuer" in item) + ("issuer_regexp" in item)
        subjects = ("subject" in item) + ("subject_regexp" in item)
        if subjects != 1 or issuers > 1 or (issuer_required and issuers != 1):
            raise reader.error(
                f"{prefix}identities",
                "each identity needs exactly one of subject/subject_regexp and "
                + ("one of issuer/issuer_regexp" if issuer_required
                   else "at most one of issuer/issuer_regexp"),
            )
        for key in ("issuer_regexp", "subject_regexp"):
            if key in item:
                why = regexp_problem(item[key])
                if why:
                    raise reader.error(f"{item_prefix}{key}", why,
                                       hint="identity regexps use Go's RE2 syntax, as cosign")
        identities.append(Identity(**item))
    return identities


def regexp_problem(pattern: str) -> str | None:
    """Why ``pattern`` is not a regexp cosign (Go's RE2) would run the same way, or None."""
    from safedocker._internal.goregexp import GoRegexpError, compile_go

    try:
        compile_go(pattern)
    except GoRegexpError as e:
        return f"invalid regular expression (RE2): {e}"
    return None


def load_config(where: Paths | None = None) -> Config:
    """Read the system and user files and combine them (locked: the user may only add).

    Each setting a locked system policy overrides is said on stderr, one line each.
    """
    from safedocker.policy import compiled

    where = where or paths()
    system_data = _read_bytes(where.system_config_file)
    user_data = _read_bytes(where.user_config_file)
    system_doc, key = None, None
    if system_data is not None and compiled.may_lock(system_data):
        system_doc = _parse_toml(where.system_config_file, system_data)
    # A locked policy is always parsed: the cache is the user's to write.
    if system_doc is None or system_doc.get("locked", False) is False:
        key = compiled.cache_key(where, system_data, user_data)
    cached = None if key is None else compiled.load(where, key)
    if cached is not None:
        system, user = cached
    else:
        system = _parse_file(where.system_config_file, where.system_keys_dir, "system",
                             system_data, system_doc)
        user = _parse_file(where.user_config_file, where.user_keys_dir, "user", user_data)
    config = _combine(system, user, where)
    if cached is None and key is not None:
        compiled.store(where, key, system, user)
    for note in config.notes:
        sys.stderr.write(note + "\n")
    return config


def _lock_note(what: str, system: FileConfig, *, why: str = "",
               hint: str = "") -> str:
    """One line saying that the lock won over ``what``."""
    return (f"safe-docker: {what} ignored \u2014 the system policy is locked{why} "
            f"(hint: {hint or f'{system.path} decides; ask an admin to change it'})")


def _combine(system: FileConfig, user: FileConfig, where: Paths) -> Config:
    if system.locked:
        return _combine_locked(system, user, where)

    def pick(system_value: Any, user_value: Any, default: Any) -> Any:
        if user_value is not None:
            return user_value
        return system_value if system_value is not None else default

    keys = dict(system.keys)
    keys.update(user.keys)
    removed = (system.removed_keys | user.removed_keys) - set(keys)
    for file_config in (system, user):
        _check_key_names(file_config, file_config.rules, set(keys) | removed)
    return Config(
        mode=_env_mode(pick(system.mode, user.mode, Mode.ENFORCE), system, [], locked=False),
        offline_max_age=pick(system.offline_max_age, user.offline_max_age,
                             DEFAULT_OFFLINE_MAX_AGE),
        registry_timeout=pick(system.registry_timeout, user.registry_timeout,
                              DEFAULT_REGISTRY_TIMEOUT),
        insecure_registries=system.insecure_registries + user.insecure_registries,
        rekor_keys=user.rekor_keys or system.rekor_keys,
        keys=keys,
        policy=Policy(system_rules=system.rules, user_rules=user.rules, locked=False,
                      unmatched=pick(system.unmatched, user.unmatched, Unmatched.REJECT)),
        files=tuple(f.path for f in (system, user) if f.path.exists()),
        removed_keys=frozenset(removed),
        passthrough=frozenset(system.passthrough + user.passthrough),
    )


def _combine_locked(system: FileConfig, user: FileConfig, where: Paths) -> Config:
    """The lock: the stricter of each setting, user weakenings ignored (and said so),
    system rules resolved in system anchors only."""
    notes: list[str] = []
    if where.ignored_system_config_dir is not None:
        notes.append(_lock_note(
            f"SAFE_DOCKER_SYSTEM_CONFIG_DIR={where.ignored_system_config_dir}", system))

    system_mode = system.mode or Mode.ENFORCE
    mode = stricter_mode(system_mode, user.mode or Mode.OFF)
    if user.mode is not None and mode is not user.mode:
        notes.append(_lock_note(f'mode = "{user.mode.value}" in {user.path}', system))
    unmatched = stricter_unmatched(system.unmatched or Unmatched.REJECT,
                                   user.unmatched or Unmatched.ACCEPT)
    if user.unmatched is not None and unmatched is not user.unmatched:
        notes.append(_lock_note(f'unmatched = "{user.unmatched.value}" in {user.path}',
                                system))
    offline_max_age = (DEFAULT_OFFLINE_MAX_AGE if system.offline_max_age is None
                       else system.offline_max_age)  # "0s" (never offline) is a value
    if user.offline_max_age is not None:
        if user.offline_max_age > offline_max_age:
            notes.append(_lock_note(f"offline_max_age in {user.path}", system,
                                why=" and allows less (the shorter age wins)"))
        offline_max_age = min(offline_max_age, user.offline_max_age)
    # A locked wait cannot be lengthened by the user (only shortened).
    registry_timeout = (DEFAULT_REGISTRY_TIMEOUT if system.registry_timeout is None
                        else system.registry_timeout)
    if user.registry_timeout is not None:
        if user.registry_timeout > registry_timeout:
            notes.append(_lock_note(f"registry_timeout in {user.path}", system,
                                    why=" and allows less (the shorter wait wins)"))
        registry_timeout = min(registry_timeout, user.registry_timeout)
    if user.insecure_registries:  # plain HTTP is a weakening: system only
        notes.append(_lock_note(f"insecure_registries in {user.path}", system))
    if set(user.passthrough) - set(system.passthrough):  # unchecked plugins: system only
        notes.append(_lock_note(f"passthrough in {user.path}", system))

    # System rules: system keys and system Rekor keys only (attack N8: a user key named
    # like the key a system rule names must not satisfy it).
    system_names = set(system.keys) | system.removed_keys
    _check_key_names(system, system.rules, system_names, locked=True)
    for name in system.rekor_keys:
        if name not in system_names:
            raise _Reader(system.path, _safe_text(system.path)).error(
                "rekor_keys", f"names key {name!r}, which the system file does not define",
                hint=f"add [keys.{name}] to {system.path}: the system policy is locked, so "
                     "a user key never serves the system's rules",
            )
    if set(user.rekor_keys) - set(system.rekor_keys):
        notes.append(_lock_note(
            f"rekor_keys in {user.path} for system rules", system,
            why=" (system rules trust only the system's Rekor keys)",
            hint="your rules may still use them; an admin lists Rekor keys for the "
                 f"system's rules in {system.path}"))
    for name, entry in user.keys.items():
        theirs = system.keys.get(name)
        if theirs is not None and theirs.fingerprint != entry.fingerprint:
            notes.append(_lock_note(f"user key {name!r}", system,
                                    why=f" and defines its own key {name!r}",
                                    hint="give your key another name"))
    notes += _check_system_roots(system, where)

    # User rules: every anchor, the system's winning a name both define.
    keys = dict(user.keys)
    keys.update(system.keys)
    removed = (system.removed_keys | user.removed_keys) - set(keys)
    _check_key_names(user, user.rules, set(keys) | removed)
    rekor_keys = system.rekor_keys + tuple(k for k in user.rekor_keys
                                           if k not in system.rekor_keys)
    return Config(
        mode=_env_mode(mode, system, notes, locked=True),
        offline_max_age=offline_max_age,
        registry_timeout=registry_timeout,
        insecure_registries=system.insecure_registries,
        rekor_keys=rekor_keys,
        keys=keys,
        policy=Policy(system_rules=system.rules, user_rules=user.rules, locked=True,
                      unmatched=unmatched),
        files=tuple(f.path for f in (system, user) if f.path.exists()),
        removed_keys=frozenset(removed),
        system_anchors=Anchors(dict(system.keys), system.rekor_keys, system.removed_keys,
                               system_roots_dir=where.system_trust_roots_dir),
        notes=tuple(dict.fromkeys(notes)),
        passthrough=frozenset(system.passthrough),
    )


def _env_mode(mode: Mode, system: FileConfig, notes: list[str], *, locked: bool) -> Mode:
    """SAFE_DOCKER_MODE over the files' mode; under a lock only when it is stricter."""
    env_mode = environment.mode()
    if not env_mode:
        return mode
    try:
        wanted = Mode(env_mode)
    except ValueError:
        raise ConfigError(
            f"invalid SAFE_DOCKER_MODE={env_mode!r}", hint="use enforce, warn or off"
        ) from None
    if not locked:
        return wanted
    stricter = stricter_mode(mode, wanted)
    if stricter is not wanted:
        notes.append(_lock_note(f"SAFE_DOCKER_MODE={env_mode}", system))
    return stricter


def _check_key_names(file_config: FileConfig, rules: tuple[Rule, ...], known: set[str],
                     *, locked: bool = False) -> None:
    """Every key a rule names is defined (or was removed: then the rule refuses)."""
    for rule in rules:
        if not rule.keys and not rule.attestations:
            continue
        for key in (*rule.keys, *(k for a in rule.attestations for k in a.keys)):
            if key in known:
                continue
            reader = _Reader(file_config.path, _safe_text(file_config.path))
            if locked:
                raise reader.error(
                    "keys", f"rule for {rule.scope!r} names key {key!r}, which the system "
                    "file does not define",
                    hint=f"add [keys.{key}] to {file_config.path}: the system policy is "
                         "locked, so a user key never satisfies a system rule",
                )
            raise reader.error(
                "keys", f"rule for {rule.scope!r} names unknown key {key!r}",
                hint=f"add it with `safe-docker keys add {key} FILE`",
            )


def _check_system_roots(system: FileConfig, where: Paths) -> list[str]:
    """Under a lock: each trusted root a system rule names is the system's (or the
    built-in default); a user root of that name is not used, and a note says so."""
    from safedocker.trust.roots import DEFAULT_NAME

    notes = []
    for rule in system.rules:
        if rule.action is not Action.VERIFY or rule.pki_roots:
            continue
        name = rule.trust_root
        if name != DEFAULT_NAME and not (
            where.system_trust_roots_dir / f"{name}.json"
        ).is_file():
            raise _Reader(system.path, _safe_text(system.path)).error(
                "trust_root", f"rule for {rule.scope!r} names trusted root {name!r}, which "
                "the system does not have",
                hint=f"import it for every user: `safe-docker trust-root import FILE --name "
                     f"{name} --system`; the system policy is locked, so a user root of "
                     "that name is never used for a system rule",
            )
        if (where.trust_roots_dir / f"{name}.json").is_file():
            notes.append(_lock_note(
                f"user trusted root {name!r} for the rule for {rule.scope!r}", system,
                why=" (system rules use system or built-in trusted roots only)",
                hint="see `safe-docker trust-root list`; an admin imports roots for "
                     "system rules with `safe-docker trust-root import FILE --system`"))
    return notes


def _safe_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return ""


# --- writing ----------------------------------------------------------------------------

def save_user_document(where: Paths, document: Mapping[str, Any]) -> None:
    """Validate ``document`` as the user file would be read, then write it atomically."""
    import tomli_w

    text = tomli_w.dumps(dict(document))
    # Validate the new text exactly as `load_config` will read it, before replacing.
    system = _parse_file(where.system_config_file, where.system_keys_dir, "system")
    user = _parse_document(where.user_config_file, _parse_toml(where.user_config_file,
                                                               text.encode("utf-8")),
                           text, where.user_keys_dir, "user")
    _combine(system, user, where)
    atomic_write(where.user_config_file, text.encode("utf-8"), 0o644)


def load_user_document(where: Paths) -> dict[str, Any]:
    return read_document(where.user_config_file)


# The command-line option that sets each rule key (`policy add`), for usage errors.
RULE_OPTIONS = {
    "scope": "SCOPE", "keys": "--key", "identities": "--identity/--identity-regexp",
    "annotations": "--annotation",
}


def rule_option(key: str) -> str:
    """``identities[0].subject_regexp`` → ``--identity/--identity-regexp``, ``tlog`` →
    ``--tlog``: the option of ``policy add`` that sets a rule key."""
    head = re.split(r"[.\[]", key, maxsplit=1)[0]
    return RULE_OPTIONS.get(head, "--" + head.replace("_", "-"))


def set_rule(where: Paths, scope: str, rule: Mapping[str, Any]) -> str:
    """Add or replace the user rule for ``scope``; returns the normalized scope.

    The files as they are are read first: their errors stay configuration errors (exit 78,
    with their own file and line). What is wrong with the new rule is the command line's
    fault: a :class:`UsageError` (exit 2) naming the option, and nothing is written.
    """
    from safedocker.errors import UsageError

    normalized = normalize_scope(scope)
    current = load_config(where)
    unknown = [k for k in rule.get("keys", []) if k not in current.keys]
    if unknown:
        raise UsageError(f"invalid --key {unknown[0]!r}", why="no trusted key has that name",
                         hint=f"trust it first with `safe-docker keys add {unknown[0]} FILE`; "
                              "`safe-docker keys list` shows the names")
    document = load_user_document(where)
    rules = [r for r in document.get("policy", [])
             if normalize_scope(str(r.get("scope", ""))) != normalized]
    rules.append({"scope": scope.strip(), **rule})
    document["policy"] = rules
    try:
        save_user_document(where, document)
    except ConfigKeyError as e:
        prefix = f"policy[{len(rules) - 1}]"
        if e.key != prefix and not e.key.startswith((prefix + ".", prefix + "[")):
            raise
        key = e.key[len(prefix) + 1:]
        raise UsageError(f"invalid {rule_option(key)}", why=e.reason,
                         hint=e.hint if e.hint != SCHEMA_HINT else
                         "see `safe-docker policy add --help`") from None
    return normalized


def remove_rule(where: Paths, scope: str) -> str:
    normalized = normalize_scope(scope)
    document = load_user_document(where)
    rules = document.get("policy", [])
    kept = [r for r in rules if normalize_scope(str(r.get("scope", ""))) != normalized]
    if len(kept) == len(rules):
        from safedocker.errors import UsageError

        raise UsageError(f"no user rule for {normalized}", hint="see `safe-docker policy list`")
    document["policy"] = kept
    save_user_document(where, document)
    return normalized
