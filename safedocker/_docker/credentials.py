"""Registry credentials from the docker config, found as the docker CLI finds them.

The config directory is ``--config``, else ``DOCKER_CONFIG``, else ``~/.docker``; its
``config.json`` says where credentials live: a helper for this registry
(``credHelpers``), else the default helper (``credsStore``), else the file itself
(``auths``: ``auth`` is base64 of ``user:password``; ``identitytoken`` is an OAuth
refresh token). A helper is the program ``docker-credential-<name>``, asked with ``get``
and the server address on stdin. Docker Hub's server address is
``https://index.docker.io/v1/``.

Standard library only, and only read once a registry asks for credentials. No
credential ever reaches a log line or an error message: errors name the file or the
helper, never what they hold.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from safedocker._internal import strictjson
from safedocker._internal.encoding import b64decode
from safedocker._internal.processes import OutputTooLarge, run_bounded
from safedocker.errors import ConfigError, reason_of

if TYPE_CHECKING:
    from collections.abc import Mapping

CONFIG_FILE = "config.json"
DOCKER_HUB_SERVER = "https://index.docker.io/v1/"
_DOCKER_HUB_NAMES = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})
TOKEN_USERNAME = "<token>"  # noqa: S105 - a marker: the helper's secret is an identity token
MAX_CONFIG_BYTES = 4 * 1024 * 1024
MAX_HELPER_OUTPUT = 1024 * 1024
HELPER_TIMEOUT = 30.0  # a helper waiting on a locked keyring or a prompt must not hang us
_HINT = ("check the docker config (DOCKER_CONFIG or ~/.docker/config.json) and its "
         "credential helper")


@dataclass(frozen=True)
class Credentials:
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    identity_token: str | None = field(default=None, repr=False)


def config_dir(config: str | None = None, environ: Mapping[str, str] | None = None) -> Path:
    """Where the docker CLI reads its config: ``--config``, DOCKER_CONFIG, ~/.docker."""
    env = os.environ if environ is None else environ
    chosen = config or env.get("DOCKER_CONFIG")
    return Path(chosen) if chosen else Path.home() / ".docker"


def server_address(registry: str) -> str:
    """The key docker files a registry's credentials under."""
    return DOCKER_HUB_SERVER if registry in _DOCKER_HUB_NAMES else registry


def _hostname(key: str) -> str:
    """docker's ConvertToHostname: the host of an ``auths`` key written as a URL."""
    for prefix in ("http://", "https://"):
        if key.startswith(prefix):
            key = key[len(prefix):]
            break
    return key.split("/", 1)[0]


def _unreadable(registry: str, why: str) -> ConfigError:
    return ConfigError(f"cannot read docker credentials for {registry}", why=why, hint=_HINT)


def _read_config(path: Path, registry: str) -> dict[str, Any]:
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_CONFIG_BYTES + 1)
    except FileNotFoundError:
        return {}
    except OSError as e:
        raise _unreadable(registry, f"{path}: {reason_of(e, 'unreadable')}") from e
    if len(data) > MAX_CONFIG_BYTES:
        raise _unreadable(registry, f"{path} is too large")
    try:
        document = strictjson.loads(data)
    except (ValueError, RecursionError) as e:
        raise _unreadable(registry, f"{path} is not JSON") from e
    if not isinstance(document, dict):
        raise _unreadable(registry, f"{path} is not a JSON object")
    return document


def _from_auths(auths: object, server: str, path: Path, registry: str) -> Credentials | None:
    if not isinstance(auths, dict):
        raise _unreadable(registry, f"auths in {path} is not an object")
    entry = auths.get(server)
    if entry is None:
        entry = next((v for k, v in auths.items() if _hostname(k) == server), None)
    if entry is None:
        return None
    if not isinstance(entry, dict):
        raise _unreadable(registry, f"the auths entry for {server} in {path} is not an object")
    username, password = entry.get("username"), entry.get("password")
    encoded = entry.get("auth")
    if isinstance(encoded, str) and encoded:
        try:
            username, _, password = b64decode(encoded, ignore_newlines=True).decode(
                "utf-8").partition(":")
        except (ValueError, UnicodeDecodeError) as e:
            raise _unreadable(registry, f"the auth of {server} in {path} is not base64 "
                              "of user:password") from e
    token = entry.get("identitytoken")
    if isinstance(token, str) and token:
        return Credentials(username=username or None, identity_token=token)
    if isinstance(username, str) and username and isinstance(password, str) and password:
        return Credentials(username=username, password=password)
    return None


def _from_helper(helper: str, server: str, registry: str,
                 environ: Mapping[str, str] | None, timeout: float) -> Credentials | None:
    program = f"docker-credential-{helper}"
    try:
        proc = run_bounded([program, "get"], what=f"{program} get", input=server.encode(),
                           timeout=timeout, max_stdout=MAX_HELPER_OUTPUT, env=environ,
                           hint=f"check {program} (a locked keyring or a password prompt "
                                "can keep it waiting)")
    except FileNotFoundError as e:
        raise _unreadable(registry, f"{program} is not installed or not on PATH") from e
    except OutputTooLarge as e:
        raise _unreadable(registry, f"{program} answered too much") from e
    except OSError as e:
        raise _unreadable(registry, f"{program} could not be run ({e.strerror or e})") from e
    if proc.returncode != 0:
        said = (proc.stdout + proc.stderr).decode("utf-8", "replace")
        if "credentials not found" in said:
            return None
        raise _unreadable(registry, f"{program} get failed (exit {proc.returncode})")
    try:
        answer = strictjson.loads(proc.stdout)
    except (ValueError, RecursionError) as e:
        raise _unreadable(registry, f"{program} did not answer JSON") from e
    if not isinstance(answer, dict):
        raise _unreadable(registry, f"{program} did not answer a JSON object")
    username, secret = answer.get("Username"), answer.get("Secret")
    if not isinstance(secret, str) or not secret:
        return None
    if username == TOKEN_USERNAME:
        return Credentials(identity_token=secret)
    if isinstance(username, str) and username:
        return Credentials(username=username, password=secret)
    return None


def lookup(registry: str, config: str | None = None, *,
           environ: Mapping[str, str] | None = None,
           timeout: float = HELPER_TIMEOUT) -> Credentials | None:
    """The credentials docker would use for ``registry`` (``docker.io``, ``ghcr.io``,
    ``127.0.0.1:5000``), or None; ``config`` is a ``--config`` directory. A credential
    helper gets at most ``timeout`` seconds (then :class:`TimedOut`, exit 69)."""
    directory = config_dir(config, environ)
    path = directory / CONFIG_FILE
    document = _read_config(path, registry)
    server = server_address(registry)
    helpers = document.get("credHelpers") or {}
    if not isinstance(helpers, dict):
        raise _unreadable(registry, f"credHelpers in {path} is not an object")
    helper = helpers.get(server) or document.get("credsStore")
    if helper:
        if not isinstance(helper, str):
            raise _unreadable(registry, f"the credential helper in {path} is not a name")
        return _from_helper(helper, server, registry, environ, timeout)
    return _from_auths(document.get("auths") or {}, server, path, registry)
