"""What one config file says once read and checked (:mod:`safedocker.policy.config`
parses it, :mod:`safedocker.policy.compiled` caches it)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

    from safedocker.policy.model import Mode, Rule, Unmatched


REGISTRY_TIMEOUT_MAX = 3600.0  # seconds: the longest registry_timeout a file may set


@dataclass(frozen=True)
class KeyEntry:
    """A trusted public key: its name, pinned fingerprint and where its PEM lives."""

    name: str
    fingerprint: str
    path: Path
    source: str = ""
    origin: str = "user"  # "system" or "user"


@dataclass(frozen=True)
class FileConfig:
    """One file's settings, keys and rules; combined with the other file's by
    ``config._combine`` (where the lock applies)."""

    path: Path
    mode: Mode | None
    unmatched: Unmatched | None
    offline_max_age: float | None
    registry_timeout: float | None
    insecure_registries: tuple[str, ...]
    rekor_keys: tuple[str, ...]
    locked: bool
    keys: Mapping[str, KeyEntry]
    rules: tuple[Rule, ...]
    removed_keys: frozenset[str] = frozenset()
    passthrough: tuple[str, ...] = ()
