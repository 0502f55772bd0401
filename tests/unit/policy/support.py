"""Configurations for the policy exchange tests: real TOML files and real keys."""

from __future__ import annotations

from typing import TYPE_CHECKING

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from safedocker.policy.config import Config, load_config
from safedocker.policy.paths import Paths
from safedocker.trust.keys import fingerprint_of

if TYPE_CHECKING:
    from pathlib import Path

    import pytest

GH_ISSUER = "https://token.actions.githubusercontent.com"


def new_pem() -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)


def fresh_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Paths:
    """Empty user and system config directories, with no SAFE_DOCKER_MODE set."""
    monkeypatch.delenv("SAFE_DOCKER_MODE", raising=False)
    result = Paths(config_dir=tmp_path / "user", cache_dir=tmp_path / "cache",
                   state_dir=tmp_path / "state", system_config_dir=tmp_path / "system")
    result.config_dir.mkdir()
    result.system_config_dir.mkdir()
    return result


def paths_in(tmp_path: Path) -> Paths:
    return Paths(config_dir=tmp_path / "config", cache_dir=tmp_path / "cache",
                 state_dir=tmp_path / "state", system_config_dir=tmp_path / "system")


def config_from(tmp_path: Path, body: str, keys: tuple[str, ...] = ("alpha", "beta", "gamma"),
            ) -> tuple[Config, dict[str, bytes]]:
    where = paths_in(tmp_path)
    where.user_keys_dir.mkdir(parents=True, exist_ok=True)
    pems = {}
    table = ""
    for name in keys:
        pem = new_pem()
        (where.user_keys_dir / f"{name}.pub").write_bytes(pem)
        pems[name] = pem
        table += f'[keys.{name}]\nfingerprint = "{fingerprint_of(pem)}"\n'
    where.user_config_file.write_text(body + "\n" + table)
    return load_config(where), pems
