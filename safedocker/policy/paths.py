"""Where safe-docker's files live: one function, platformdirs overridden by env vars."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from safedocker._internal import environment

if TYPE_CHECKING:
    from collections.abc import Mapping

APP_NAME = "safe-docker"
CONFIG_FILE = "config.toml"
DEFAULT_SYSTEM_CONFIG_DIR = "/etc/safe-docker"


@dataclass(frozen=True)
class Paths:
    """Every location safe-docker reads or writes; see :func:`paths`."""

    config_dir: Path
    cache_dir: Path
    state_dir: Path
    system_config_dir: Path

    @property
    def user_config_file(self) -> Path:
        return self.config_dir / CONFIG_FILE

    @property
    def system_config_file(self) -> Path:
        return self.system_config_dir / CONFIG_FILE

    @property
    def user_keys_dir(self) -> Path:
        return self.config_dir / "keys"

    @property
    def system_keys_dir(self) -> Path:
        return self.system_config_dir / "keys"

    @property
    def trust_roots_dir(self) -> Path:
        return self.config_dir / "trust-roots"

    @property
    def system_trust_roots_dir(self) -> Path:
        return self.system_config_dir / "trust-roots"


def paths(environ: Mapping[str, str] | None = None) -> Paths:
    """The one place that knows where files live: platformdirs, overridden by env vars."""
    def pick(variable: str, default: str) -> Path:
        value = environment.value(variable, environ)
        return Path(value) if value else Path(default)

    import platformdirs  # only needed when no override is given for some path

    return Paths(
        config_dir=pick(environment.CONFIG_DIR, platformdirs.user_config_dir(APP_NAME)),
        cache_dir=pick(environment.CACHE_DIR, platformdirs.user_cache_dir(APP_NAME)),
        state_dir=pick(environment.STATE_DIR, platformdirs.user_state_dir(APP_NAME)),
        system_config_dir=pick(environment.SYSTEM_CONFIG_DIR, DEFAULT_SYSTEM_CONFIG_DIR),
    )
