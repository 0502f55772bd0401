"""The publisher catalogue: who signs their images today, and exactly how.

``catalog.json`` (shipped in this package, reviewed and versioned) lists three kinds of
publisher: ``publishers`` who sign (keyless identities or keys, transparency log, where
signatures live, which names they sign), ``pending`` ones that sign but could not be
confirmed well enough to trust, and ``unsigned`` ones known to publish without signatures
(Docker Official Images, PyTorch). It is read with the strict JSON reader and checked as
strictly as a config file: an unknown member, a key whose PEM does not match its pinned
fingerprint, or a regexp RE2 reads otherwise makes the whole catalogue invalid.

:func:`rule_tables` turns a publisher into the ordinary ``[[policy]]`` tables that
``policy catalog add`` writes; an entry that needs a verifier feature this version lacks
(``requires``) is refused there, never written as a rule that cannot verify.
"""

from __future__ import annotations

import enum
import functools
import re
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING, Any

from safedocker.errors import ConfigError, UsageError
from safedocker.policy.model import Identity, Remap, Tlog, normalize_scope, scope_matches

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from safedocker.reference import ImageRef

MAX_CATALOG_BYTES = 1024 * 1024
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
FINGERPRINT_RE = re.compile(r"^sha256:[0-9a-f]{64}$")

# What the verifier can do that an entry may need. An entry naming anything else in
# ``requires`` (or needing it through its fields) is shown but refused by ``add``.
SUPPORTED_FEATURES = frozenset({
    "keyless", "key", "remap", "remap-regexp", "signatures-repository",
    "workflow-claims", "oci-referrers", "sha384", "sha512",
})

_TOP = {"version", "reviewed", "about", "publishers", "pending", "unsigned"}
_COMMON = {"name", "title", "scopes", "source", "sources", "notes"}
_PUBLISHER = _COMMON | {"signing", "identities", "keys", "tlog", "signed_identity",
                        "signature_repository", "signature_digest_algorithm", "storage",
                        "requires"}
_PENDING = _COMMON | {"signing", "key_urls", "why"}
_IDENTITY = {"issuer", "subject", "issuer_regexp", "subject_regexp",
             "github_workflow_repository", "github_workflow_ref", "github_workflow_trigger"}
_SIGNED_IDENTITY = {"remaps", "confidence", "notes"}
_REMAP = {"prefix", "signed_prefix", "signed_prefix_regexp"}
_KEY = {"fingerprint", "pem"}
_STORAGE = {"sig-tag": (), "oci-referrers": ("oci-referrers",)}
_DIGESTS = {"sha256": (), "sha384": ("sha384",), "sha512": ("sha512",)}


class Signing(enum.Enum):
    KEYLESS = "keyless"
    KEY = "key"


class Kind(enum.Enum):
    SIGNED = "signed"
    PENDING = "pending"
    UNSIGNED = "unsigned"


@dataclass(frozen=True)
class CatalogKey:
    """A publisher's public key, pinned by the fingerprint the catalogue was reviewed with."""

    name: str
    fingerprint: str
    pem: str


@dataclass(frozen=True)
class Entry:
    """One catalogue entry: a signing publisher, a pending one, or a known unsigned one."""

    name: str
    title: str
    kind: Kind
    scopes: tuple[str, ...]
    source: str
    sources: tuple[str, ...] = ()
    notes: str = ""
    signing: Signing | None = None
    identities: tuple[Identity, ...] = ()
    keys: tuple[CatalogKey, ...] = ()
    tlog: Tlog = Tlog.OPTIONAL
    remaps: tuple[Remap, ...] = ()
    remap_confidence: str = ""
    signatures_repository: str | None = None
    digest_algorithm: str = "sha256"
    storage: str = "sig-tag"
    requires: tuple[str, ...] = ()  # verifier features the entry needs
    why: str = ""  # pending: why it is not trusted yet
    key_urls: Mapping[str, str] | None = None  # pending: where the keys would come from

    @property
    def missing_features(self) -> tuple[str, ...]:
        return tuple(f for f in self.requires if f not in SUPPORTED_FEATURES)

    def covers(self, ref: ImageRef) -> bool:
        return any(scope_matches(scope, ref) for scope in self.scopes)


@dataclass(frozen=True)
class Catalog:
    version: str
    reviewed: str
    entries: tuple[Entry, ...]

    def get(self, name: str) -> Entry:
        for entry in self.entries:
            if entry.name == name:
                return entry
        raise UsageError(f"no publisher {name!r} in the catalogue",
                         hint="`safe-docker policy catalog list` shows the names")

    def covering(self, ref: ImageRef) -> Entry | None:
        """The entry whose scope covers ``ref`` most specifically, or None."""
        best: tuple[tuple[int, int], Entry] | None = None
        for entry in self.entries:
            for scope in entry.scopes:
                if scope_matches(scope, ref):
                    rank = (len(scope.replace("*", "")), 0 if "*" in scope else 1)
                    if best is None or rank > best[0]:
                        best = (rank, entry)
        return best[1] if best else None


    def signed_under(self, name: str) -> Entry | None:
        """A signing publisher with a scope inside repository ``name`` (``ghcr.io/kyverno``
        holds ``ghcr.io/kyverno/*``): a rule for ``name`` covers that publisher's images."""
        inside = name + "/"
        return next((entry for entry in self.entries if entry.kind is Kind.SIGNED
                     and any(scope.startswith(inside) for scope in entry.scopes)), None)


class _Checker:
    """Field checks that name the entry and member at fault."""

    def __init__(self, where: str) -> None:
        self.where = where

    def fail(self, why: str) -> ConfigError:
        return ConfigError("the publisher catalogue is invalid", why=f"{self.where}: {why}",
                           hint="reinstall safe-docker; the catalogue ships with it")

    def table(self, value: object, allowed: set[str], required: Sequence[str]) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail("must be an object")
        unknown = sorted(set(value) - allowed)
        if unknown:
            raise self.fail(f"unknown member {unknown[0]!r}")
        missing = [k for k in required if k not in value]
        if missing:
            raise self.fail(f"missing member {missing[0]!r}")
        return value

    def text(self, table: Mapping[str, Any], key: str, default: str = "") -> str:
        value = table.get(key, default)
        if not isinstance(value, str):
            raise self.fail(f"{key} must be a string")
        return value

    def texts(self, table: Mapping[str, Any], key: str) -> tuple[str, ...]:
        value = table.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise self.fail(f"{key} must be a list of strings")
        return tuple(value)


def parse(data: bytes) -> Catalog:
    """The catalogue in ``data``, checked; a :class:`ConfigError` on anything unexpected."""
    from safedocker._internal.strictjson import loads

    top = _Checker("catalog.json")
    try:
        doc = loads(data, max_bytes=MAX_CATALOG_BYTES)
    except (ValueError, RecursionError) as e:
        raise top.fail(f"not strict JSON ({e})") from None
    doc = top.table(doc, _TOP, ("version", "publishers"))
    entries: list[Entry] = []
    for kind, member in ((Kind.SIGNED, "publishers"), (Kind.PENDING, "pending"),
                         (Kind.UNSIGNED, "unsigned")):
        items = doc.get(member, [])
        if not isinstance(items, list):
            raise top.fail(f"{member} must be a list")
        entries += [_entry(kind, item, f"{member}[{n}]") for n, item in enumerate(items)]
    names = [e.name for e in entries]
    duplicate = next((n for n in names if names.count(n) > 1), None)
    if duplicate:
        raise top.fail(f"publisher {duplicate!r} appears twice")
    return Catalog(top.text(doc, "version"), top.text(doc, "reviewed"), tuple(entries))


def _entry(kind: Kind, item: object, where: str) -> Entry:
    check = _Checker(where)
    allowed = {Kind.SIGNED: _PUBLISHER, Kind.PENDING: _PENDING, Kind.UNSIGNED: _COMMON}[kind]
    table = check.table(item, allowed, ("name", "title", "scopes", "source"))
    name = check.text(table, "name")
    if not NAME_RE.match(name):
        raise check.fail(f"invalid name {name!r}")
    check = _Checker(f"{where} ({name})")
    scopes = check.texts(table, "scopes")
    if not scopes or any(normalize_scope(s) != s for s in scopes):
        raise check.fail("scopes must be a non-empty list of normalized scopes")
    source = check.text(table, "source")
    sources = check.texts(table, "sources")
    if not all(s.startswith("https://") for s in (source, *sources)):
        raise check.fail("every source must be an https:// address")
    common: dict[str, Any] = {"name": name, "title": check.text(table, "title"), "kind": kind,
                              "scopes": scopes, "source": source, "sources": sources,
                              "notes": check.text(table, "notes")}
    if kind is Kind.UNSIGNED:
        return Entry(**common)
    try:
        signing = Signing(check.text(table, "signing"))
    except ValueError:
        raise check.fail("signing must be \"keyless\" or \"key\"") from None
    if kind is Kind.PENDING:
        urls = check.table(table.get("key_urls", {}), set(table.get("key_urls", {})), ())
        if not all(isinstance(v, str) and v.startswith("https://") for v in urls.values()):
            raise check.fail("key_urls must map names to https:// addresses")
        why = check.text(table, "why")
        if not why:
            raise check.fail("a pending entry says why")
        return Entry(**common, signing=signing, why=why, key_urls=dict(urls))
    return _signed(check, table, common, signing)


def _signed(check: _Checker, table: Mapping[str, Any], common: dict[str, Any],
            signing: Signing) -> Entry:
    from safedocker.policy.config import regexp_problem

    requires = [signing.value, *check.texts(table, "requires")]
    identities = []
    raw_identities = table.get("identities", [])
    if not isinstance(raw_identities, list):
        raise check.fail("identities must be a list")
    for raw in raw_identities:
        identity = check.table(raw, _IDENTITY, ("issuer",))
        if not all(isinstance(v, str) and v for v in identity.values()) or \
                ("subject" in identity) == ("subject_regexp" in identity):
            raise check.fail("each identity has an issuer and one of subject/subject_regexp")
        for key in ("issuer_regexp", "subject_regexp"):
            why = regexp_problem(identity[key]) if key in identity else None
            if why:
                raise check.fail(f"{key} {identity[key]!r}: {why}")
        if any(k.startswith("github_") for k in identity):
            requires.append("workflow-claims")
        identities.append(Identity(**identity))
    keys = _keys(check, table.get("keys", {}))
    if (signing is Signing.KEYLESS) != bool(identities) or (signing is Signing.KEY) != bool(keys):
        raise check.fail("a keyless entry lists identities only, a key entry keys only")
    try:
        tlog = Tlog(check.text(table, "tlog", "optional"))
    except ValueError:
        raise check.fail("tlog must be required, optional or off") from None
    remaps, confidence = _remaps(check, table.get("signed_identity"))
    requires += ["remap" for r in remaps if r.signed_prefix is not None][:1]
    requires += ["remap-regexp" for r in remaps if r.signed_prefix_regexp is not None][:1]
    repository = table.get("signature_repository")
    if repository is not None:
        from safedocker.reference import is_name_prefix

        if not isinstance(repository, str) or not is_name_prefix(repository) or \
                "/" not in repository:
            raise check.fail("signature_repository must be a fully qualified repository")
        requires.append("signatures-repository")
    storage = check.text(table, "storage", "sig-tag")
    digest = check.text(table, "signature_digest_algorithm", "sha256")
    if storage not in _STORAGE or digest not in _DIGESTS:
        raise check.fail(f"unknown storage {storage!r} or digest algorithm {digest!r}")
    requires += [*_STORAGE[storage], *_DIGESTS[digest]]
    return Entry(**common, signing=signing, identities=tuple(identities), keys=keys,
                 tlog=tlog, remaps=remaps, remap_confidence=confidence,
                 signatures_repository=repository, digest_algorithm=digest, storage=storage,
                 requires=tuple(dict.fromkeys(requires)))


def _keys(check: _Checker, raw: object) -> tuple[CatalogKey, ...]:
    from safedocker.policy.config import KEY_NAME_RE
    from safedocker.trust.keys import load_public_key

    if not isinstance(raw, dict):
        raise check.fail("keys must map names to {fingerprint, pem}")
    keys = []
    for name, value in raw.items():
        table = check.table(value, _KEY, ("fingerprint", "pem"))
        fingerprint, pem = check.text(table, "fingerprint"), check.text(table, "pem")
        if not KEY_NAME_RE.match(name) or not FINGERPRINT_RE.match(fingerprint):
            raise check.fail(f"key {name!r}: bad name or fingerprint")
        try:
            loaded = load_public_key(pem.encode("ascii"), name)
        except (ConfigError, UnicodeEncodeError) as e:
            raise check.fail(f"key {name!r} does not load ({e})") from None
        if loaded.fingerprint != fingerprint:  # the PEM changed since it was reviewed
            raise check.fail(f"key {name!r} does not match its pinned fingerprint")
        keys.append(CatalogKey(name, fingerprint, pem))
    return tuple(keys)


def _remaps(check: _Checker, raw: object) -> tuple[tuple[Remap, ...], str]:
    from safedocker.policy.config import regexp_problem
    from safedocker.reference import is_name_prefix

    if raw is None:
        return (), ""
    table = check.table(raw, _SIGNED_IDENTITY, ("remaps", "confidence"))
    items = table["remaps"]
    if not isinstance(items, list) or not items:
        raise check.fail("signed_identity.remaps must be a non-empty list")
    remaps = []
    for item in items:
        remap = check.table(item, _REMAP, ("prefix",))
        plain, pattern = remap.get("signed_prefix"), remap.get("signed_prefix_regexp")
        if (plain is None) == (pattern is None):
            raise check.fail("a remap has exactly one of signed_prefix, signed_prefix_regexp")
        names = [remap["prefix"]] + ([plain] if plain is not None else [])
        if not all(isinstance(n, str) and is_name_prefix(n) for n in names):
            raise check.fail(f"remap prefixes {names!r} must be qualified names")
        if pattern is not None and (not isinstance(pattern, str) or regexp_problem(pattern)):
            raise check.fail(f"signed_prefix_regexp {pattern!r} is not RE2")
        remaps.append(Remap(remap["prefix"], plain, pattern))
    return tuple(remaps), check.text(table, "confidence")


@functools.lru_cache(maxsize=1)
def load() -> Catalog:
    """The catalogue shipped with this package."""
    data = (resources.files("safedocker.policy") / "catalog.json").read_bytes()
    return parse(data)


def rule_tables(entry: Entry) -> list[dict[str, Any]]:
    """The ``[[policy]]`` tables (without ``scope``) ``add`` writes for ``entry``, one per
    scope; a :class:`UsageError` when the entry cannot become a rule that verifies."""
    if entry.kind is Kind.UNSIGNED:
        raise UsageError(f"{entry.name} publishes its images unsigned",
                         why=f"{entry.title}: no signature to require ({entry.source})",
                         hint=f"accept them knowingly with `safe-docker policy allow "
                              f"{entry.scopes[0]}`, or use a signed alternative")
    if entry.kind is Kind.PENDING:
        raise UsageError(f"{entry.name} is not confirmed in the catalogue yet",
                         why=entry.why, hint=f"see {entry.source}; add a rule yourself "
                                             "with `safe-docker policy add` once checked")
    if entry.missing_features:
        raise UsageError(f"{entry.name} needs {', '.join(entry.missing_features)}",
                         why="this version of safe-docker cannot verify such signatures, "
                             "so the rule would refuse every image",
                         hint="upgrade safe-docker")
    rule: dict[str, Any] = {"action": "verify", "keys": [k.name for k in entry.keys],
                            "tlog": entry.tlog.value, "reference": "repository"}
    if entry.identities:
        rule["identities"] = [{k: v for k, v in vars(i).items() if v is not None}
                              for i in entry.identities]
    if entry.signatures_repository:
        rule["signatures_repository"] = entry.signatures_repository
    if entry.remaps:
        rule["signed_identity"] = {"remap": [
            {k: v for k, v in vars(r).items() if v is not None} for r in entry.remaps]}
    return [dict(rule) for _ in entry.scopes]
