"""Where safe-docker's files live: one function, platformdirs overridden by env vars.

One exception: SAFE_DOCKER_SYSTEM_CONFIG_DIR is ignored while the system file at the
default location (``/etc/safe-docker/config.toml``) says ``locked = true``; otherwise any
user could drop the admin's policy by pointing the variable at an empty directory.
"""

from __future__ import annotations

import os
import sys

from safedocker._internal import environment
from safedocker._internal.lean import NamedTuple

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

APP_NAME = "safe-docker"
CONFIG_FILE = environment.SYSTEM_CONFIG_FILE_NAME
DEFAULT_SYSTEM_CONFIG_DIR = environment.DEFAULT_SYSTEM_CONFIG_DIR
LOCK_FILE_MAX = 4 * 1024 * 1024  # a system file larger than this counts as locked


class Paths(NamedTuple):  # not a dataclass: that module costs the warm path too much
    """Every location safe-docker reads or writes; see :func:`paths`."""

    config_dir: Path
    cache_dir: Path
    state_dir: Path
    system_config_dir: Path
    # SAFE_DOCKER_SYSTEM_CONFIG_DIR when it was ignored because the default is locked.
    ignored_system_config_dir: Path | None = None

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


def default_system_is_locked() -> bool:
    """Whether the system file at the default location locks the policy.

    Fails closed: a file that exists but cannot be read or parsed counts as locked, so
    the default location is used and reading the config reports the problem (exit 78).
    """
    path = os.path.join(environment.DEFAULT_SYSTEM_CONFIG_DIR, CONFIG_FILE)
    try:
        with open(path, "rb") as f:
            data = f.read(LOCK_FILE_MAX + 1)
    except FileNotFoundError:
        return False
    except OSError:
        return True
    if len(data) > LOCK_FILE_MAX:
        return True
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - exercised on 3.10 only
        import tomli as tomllib  # type: ignore[import-not-found, unused-ignore]

    try:
        # Absent or false: not locked; true or anything invalid: locked (fail closed).
        return tomllib.loads(data.decode("utf-8")).get("locked", False) is not False
    except (tomllib.TOMLDecodeError, UnicodeDecodeError, RecursionError):
        return True


def user_dirs(environ: Mapping[str, str] | None = None) -> tuple[str, str, str] | None:
    """The default config, cache and state dirs on Linux (XDG base directories: an
    absolute ``XDG_*_HOME``, else under HOME; an empty or relative HOME counts as unset,
    and the password database's home is used), or None elsewhere or without a home.

    Computed here rather than by platformdirs, whose versions disagree on an empty HOME,
    so that the warm path (which cannot import platformdirs) and :func:`paths` name the
    same places whatever is installed."""
    env = os.environ if environ is None else environ
    if sys.platform != "linux":
        return None
    home = env.get("HOME", "")
    if not os.path.isabs(home):
        import pwd

        try:
            home = pwd.getpwuid(os.getuid()).pw_dir
        except KeyError:
            return None
        if not os.path.isabs(home):
            return None

    def xdg(variable: str, fallback: str) -> str:
        chosen = env.get(variable, "")
        base = chosen if os.path.isabs(chosen) else os.path.join(home, fallback)
        return os.path.join(base, APP_NAME)

    return (xdg("XDG_CONFIG_HOME", ".config"), xdg("XDG_CACHE_HOME", ".cache"),
            xdg("XDG_STATE_HOME", ".local/state"))


def paths(environ: Mapping[str, str] | None = None) -> Paths:
    """The one place that knows where files live: the variables, else :func:`user_dirs`
    on Linux, else platformdirs."""
    from pathlib import Path  # not at import: the warm path reads the lock without it

    def pick(variable: str, default: str) -> Path:
        value = environment.value(variable, environ)
        return Path(value) if value else Path(default)

    defaults = user_dirs(environ)
    if defaults is None:
        import platformdirs  # not Linux, or no home to find

        defaults = (platformdirs.user_config_dir(APP_NAME),
                    platformdirs.user_cache_dir(APP_NAME),
                    platformdirs.user_state_dir(APP_NAME))
    system_dir = pick(environment.SYSTEM_CONFIG_DIR, environment.DEFAULT_SYSTEM_CONFIG_DIR)
    ignored = None
    default_dir = Path(environment.DEFAULT_SYSTEM_CONFIG_DIR)
    if os.path.normpath(system_dir) != os.path.normpath(default_dir) and (
        default_system_is_locked()
    ):
        system_dir, ignored = default_dir, system_dir
    return Paths(
        config_dir=pick(environment.CONFIG_DIR, defaults[0]),
        cache_dir=pick(environment.CACHE_DIR, defaults[1]),
        state_dir=pick(environment.STATE_DIR, defaults[2]),
        system_config_dir=system_dir,
        ignored_system_config_dir=ignored,
    )
