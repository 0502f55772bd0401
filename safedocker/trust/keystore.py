"""The trusted-key store: ``keys add|list|remove|generate``.

A key is its PEM file in ``<config>/keys/<name>.pub`` plus an entry in the config file
pinning its fingerprint (sha256 of the DER SubjectPublicKeyInfo). Loading re-checks the
pin, so a key file swapped on disk is a configuration error, never a new trusted signer.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from safedocker._internal.files import atomic_write
from safedocker.errors import ConfigError, Refused, RegistryUnavailable, UsageError, reason_of
from safedocker.policy.config import (
    KEY_NAME_RE,
    Config,
    KeyEntry,
    load_user_document,
    save_user_document,
)

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from safedocker.policy.paths import Paths
    from safedocker.trust.keys import PublicKey

log = logging.getLogger(__name__)

MAX_KEY_BYTES = 64 * 1024
FETCH_TIMEOUT = (5.0, 15.0)
FETCH_DEADLINE = 30.0  # the whole fetch


def _check_name(name: str) -> None:
    if not KEY_NAME_RE.match(name):
        raise UsageError(
            f"invalid key name {name!r}",
            hint="use letters, digits, '.', '_' and '-' (at most 64 characters)",
        )


def fetch_key_text(source: str) -> bytes:
    """Read a key from a file path or an ``https://`` URL (never plain HTTP)."""
    if source.startswith("http://"):
        raise UsageError(f"refusing to fetch a key over plain HTTP: {source}",
                         hint="use an https:// URL or a local file")
    if source.startswith("https://"):
        import requests

        from safedocker._internal.deadline import call_within

        def fetch() -> bytes:
            with requests.get(source, timeout=FETCH_TIMEOUT, stream=True) as response:
                response.raise_for_status()
                return bytes(response.raw.read(MAX_KEY_BYTES + 1, decode_content=True))

        try:  # socket timeouts alone never end a server that drips bytes
            data = call_within(FETCH_DEADLINE, fetch, name=f"fetching {source}")
        except TimeoutError as e:
            raise RegistryUnavailable(f"fetching the key from {source} timed out",
                                      why=f"no answer within {FETCH_DEADLINE:g} s",
                                      hint="check the URL and the network") from e
        except requests.RequestException as e:
            raise RegistryUnavailable(f"cannot fetch key from {source}",
                                      why=reason_of(e, "the download failed"),
                                      hint="check the URL and the network") from e
    else:
        try:
            with open(source, "rb") as handle:
                data = handle.read(MAX_KEY_BYTES + 1)
        except OSError as e:
            raise UsageError(f"cannot read key file {source}", why=e.strerror or str(e)) from e
    if len(data) > MAX_KEY_BYTES:
        raise ConfigError(f"key at {source} is too large", hint="expected one PEM public key")
    return bytes(data)


def add_key(where: Paths, name: str, source: str, fingerprint: str | None = None) -> KeyEntry:
    _check_name(name)
    recorded = ""
    if source.startswith("https://") or Path(source).exists():
        recorded = source if source.startswith("https://") else str(Path(source).resolve())
    return trust_key(where, name, fetch_key_text(source), recorded, fingerprint)


def trust_key(where: Paths, name: str, pem: bytes, source: str = "",
              fingerprint: str | None = None) -> KeyEntry:
    """Trust ``pem`` under ``name`` in the user store (``source`` says where it came from);
    a key that does not match ``fingerprint`` is refused and nothing is written."""
    from safedocker.trust.keys import load_public_key

    _check_name(name)
    key = load_public_key(pem, name)
    if fingerprint is not None and fingerprint.lower() != key.fingerprint:
        raise ConfigError(
            f"key {name!r} does not match the pinned fingerprint",
            why=f"expected {fingerprint}, got {key.fingerprint}",
            hint="check where the key came from; it was not added",
        )
    document = load_user_document(where)
    keys = document.setdefault("keys", {})
    entry: dict[str, str] = {"fingerprint": key.fingerprint}
    if source:
        entry["source"] = source
    keys[name] = entry
    key_path = where.user_keys_dir / f"{name}.pub"
    atomic_write(key_path, key.pem, 0o644)
    save_user_document(where, document)
    return KeyEntry(name, key.fingerprint, key_path, entry.get("source", ""), "user")


def remove_key(where: Paths, name: str) -> list[str]:
    """Forget a user key; returns the scopes whose rules name it (they now refuse).

    Rules keep naming the key, and the config keeps ``[keys.NAME] removed = true``: every
    image under a rule naming it is refused (fail closed, with a message naming the key)
    until ``keys add NAME`` trusts a key under that name again, which restores the rules.
    It takes effect at once, cached verdicts included. The key also leaves ``rekor_keys``.
    """
    document = load_user_document(where)
    keys = document.get("keys", {})
    entry = keys.get(name)
    if not isinstance(entry, dict) or entry.get("removed") is True:
        raise UsageError(f"no user key named {name!r}", hint="see `safe-docker keys list`")
    naming = [str(rule.get("scope", "?")) for rule in document.get("policy", [])
              if name in rule.get("keys", []) or any(
                  name in a.get("keys", []) for a in rule.get("attestations", [])
                  if isinstance(a, dict))]
    if name in document.get("rekor_keys", []):
        document["rekor_keys"] = [k for k in document["rekor_keys"] if k != name]
    keys[name] = {"removed": True}
    save_user_document(where, document)
    (where.user_keys_dir / f"{name}.pub").unlink(missing_ok=True)
    return naming


class KeySource(Protocol):
    """Where names resolve: a :class:`Config`, or the anchors of one rule."""

    @property
    def keys(self) -> Mapping[str, KeyEntry]: ...

    @property
    def removed_keys(self) -> frozenset[str]: ...


def load_trusted_keys(source: KeySource, names: Sequence[str]) -> list[PublicKey]:
    """The named keys, each re-checked against its pinned fingerprint.

    A name that was removed (``keys remove``) refuses: a rule naming it fails closed.
    """
    from safedocker.trust.keys import load_public_key

    loaded = []
    for name in names:
        entry = source.keys.get(name)
        if entry is None and name in source.removed_keys:
            raise Refused(
                f"refused: a rule names key {name!r}, which was removed",
                why="every image under a rule naming it is refused until it is trusted again",
                hint=f"re-add it with `safe-docker keys add {name} FILE` (its rules come "
                     "back), or drop it from the rule",
            )
        if entry is None:
            raise ConfigError(f"policy names unknown key {name!r}",
                              hint=f"add it with `safe-docker keys add {name} FILE`")
        try:
            pem = entry.path.read_bytes()
        except OSError as e:
            raise ConfigError(f"cannot read key {name!r} at {entry.path}",
                              why=e.strerror or str(e),
                              hint=f"re-add it with `safe-docker keys add {name} FILE`") from e
        key = load_public_key(pem, name)
        if key.fingerprint != entry.fingerprint:
            raise ConfigError(
                f"key {name!r} at {entry.path} does not match its pinned fingerprint",
                why=f"config pins {entry.fingerprint}, file has {key.fingerprint}",
                hint="the key file changed on disk; re-add the key from its source",
            )
        loaded.append(key)
    return loaded


@dataclass(frozen=True)
class GeneratedKey:
    private_path: Path
    public_path: Path
    entry: KeyEntry


def generate_key(where: Paths, name: str, directory: Path, password: bytes) -> GeneratedKey:
    """Write a cosign-compatible key pair to ``directory`` and trust its public half."""
    from safedocker.signatures.cosignkey import generate_key_pair

    _check_name(name)
    private_pem, public_pem = generate_key_pair(password)
    private_path = directory / f"{name}.key"
    public_path = directory / f"{name}.pub"
    if private_path.exists():
        raise UsageError(f"{private_path} already exists", hint="choose another name or directory")
    atomic_write(private_path, private_pem, 0o600)
    atomic_write(public_path, public_pem, 0o644)
    entry = add_key(where, name, str(public_path))
    return GeneratedKey(private_path, public_path, entry)


def describe_keys(config: Config) -> list[Mapping[str, str]]:
    """Trusted keys, and the names removed with ``keys remove`` (their rules refuse)."""
    rows: list[Mapping[str, str]] = [
        {"name": e.name, "fingerprint": e.fingerprint, "origin": e.origin,
         "source": e.source, "path": str(e.path)}
        for e in config.keys.values()
    ]
    rows += [{"name": name, "fingerprint": "-", "origin": "removed", "source": "",
              "path": ""} for name in config.removed_keys]
    return sorted(rows, key=lambda row: row["name"])
