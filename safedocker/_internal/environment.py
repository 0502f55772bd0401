"""Every ``SAFE_DOCKER_*`` variable, read in one place and one way.

Standard library only (the shim reads SAFE_DOCKER_MODE on every docker call). Each reader
takes an optional ``environ`` (tests, and callers that carry the environment of another
command); the default is ``os.environ``. An empty value is the same as unset.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False  # not typing's: importing typing costs the passthrough too much
if TYPE_CHECKING:
    from collections.abc import Mapping

MODE = "SAFE_DOCKER_MODE"  # enforce | warn | off; checked against the lock by the config
OFFLINE = "SAFE_DOCKER_OFFLINE"  # "1": decide from the cache, contact no registry
DRY_RUN = "SAFE_DOCKER_DRY_RUN"  # "1": print the docker argv instead of running it
REAL_DOCKER = "SAFE_DOCKER_REAL_DOCKER"  # the docker binary to hand off to
LOG = "SAFE_DOCKER_LOG"  # debug | info | warning | error
GPU = "SAFE_DOCKER_GPU"  # auto | always | never, over the policy's gpu
GPUS = "SAFE_DOCKER_GPUS"  # device selection: 0,1 | GPU-uuid,… | all
CONFIG_DIR = "SAFE_DOCKER_CONFIG_DIR"
CACHE_DIR = "SAFE_DOCKER_CACHE_DIR"
STATE_DIR = "SAFE_DOCKER_STATE_DIR"
SYSTEM_CONFIG_DIR = "SAFE_DOCKER_SYSTEM_CONFIG_DIR"  # ignored under a lock at the default

# The system policy's default location. A file here with ``locked = true`` cannot be
# escaped through SYSTEM_CONFIG_DIR (policy/paths.py) nor MODE=off (the shim).
DEFAULT_SYSTEM_CONFIG_DIR = "/etc/safe-docker"
SYSTEM_CONFIG_FILE_NAME = "config.toml"


def value(name: str, environ: Mapping[str, str] | None = None) -> str | None:
    """The variable's value, or None when it is unset or empty."""
    found = (os.environ if environ is None else environ).get(name)
    return found or None


def mode(environ: Mapping[str, str] | None = None) -> str | None:
    return value(MODE, environ)


def system_policy_present(environ: Mapping[str, str] | None = None) -> bool:
    """Whether a system config file exists, at the default location or in
    SAFE_DOCKER_SYSTEM_CONFIG_DIR (a ``stat`` or two).

    The shim asks this only for pull/run/create under SAFE_DOCKER_MODE=off: such a file
    may lock the mode, so the command goes through the config instead of straight to
    docker.
    """
    dirs = (DEFAULT_SYSTEM_CONFIG_DIR, value(SYSTEM_CONFIG_DIR, environ))
    return any(os.path.lexists(os.path.join(d, SYSTEM_CONFIG_FILE_NAME)) for d in dirs if d)


def offline(environ: Mapping[str, str] | None = None) -> bool:
    return value(OFFLINE, environ) == "1"


def dry_run(environ: Mapping[str, str] | None = None) -> bool:
    return value(DRY_RUN, environ) == "1"


def real_docker(environ: Mapping[str, str] | None = None) -> str | None:
    return value(REAL_DOCKER, environ)


def log_level(environ: Mapping[str, str] | None = None) -> str:
    """The level asked for, upper-cased ("" when unset); the caller checks it."""
    return (value(LOG, environ) or "").upper()


def gpu_mode(environ: Mapping[str, str] | None = None) -> str | None:
    return value(GPU, environ)


def gpu_devices(environ: Mapping[str, str] | None = None) -> str | None:
    return value(GPUS, environ)
