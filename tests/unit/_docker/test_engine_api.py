"""Which unix socket a docker command reaches, found as the docker CLI finds it; anything
that is not a plain unix socket answers None (the docker CLI is used then)."""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING

from safedocker._docker.engine_api import DEFAULT_SOCKET, unix_socket

if TYPE_CHECKING:
    from pathlib import Path


def context(config: Path, name: str, host: str, *, tls: bool = False) -> None:
    digest = hashlib.sha256(name.encode()).hexdigest()
    meta = config / "contexts" / "meta" / digest
    meta.mkdir(parents=True)
    (meta / "meta.json").write_text(json.dumps(
        {"Name": name, "Endpoints": {"docker": {"Host": host}}}))
    if tls:
        (config / "contexts" / "tls" / digest).mkdir(parents=True)


def test_the_default_is_the_default_socket(tmp_path: Path) -> None:
    assert unix_socket(["run", "x"], {"DOCKER_CONFIG": str(tmp_path)}) == DEFAULT_SOCKET


def test_h_and_docker_host_name_the_socket_and_tcp_is_not_one(tmp_path: Path) -> None:
    env = {"DOCKER_CONFIG": str(tmp_path)}
    assert unix_socket(["-H", "unix:///s", "run", "x"], env) == "/s"
    assert unix_socket(["run", "x"], {**env, "DOCKER_HOST": "unix:///e"}) == "/e"
    assert unix_socket(["-H", "tcp://h:2375", "run", "x"], env) is None
    assert unix_socket(["run", "x"], {**env, "DOCKER_HOST": "ssh://h"}) is None
    assert unix_socket(["--tlsverify", "run", "x"], env) is None
    assert unix_socket(["run", "x"], {**env, "DOCKER_TLS_VERIFY": "1"}) is None


def test_the_current_context_from_the_config_or_the_variable(tmp_path: Path) -> None:
    context(tmp_path, "local", "unix:///ctx.sock")
    context(tmp_path, "remote", "tcp://10.0.0.1:2376")
    context(tmp_path, "secured", "unix:///tls.sock", tls=True)
    env = {"DOCKER_CONFIG": str(tmp_path)}
    (tmp_path / "config.json").write_text(json.dumps({"currentContext": "local"}))
    assert unix_socket(["run", "x"], env) == "/ctx.sock"
    assert unix_socket(["run", "x"], {**env, "DOCKER_CONTEXT": "remote"}) is None
    assert unix_socket(["--context", "secured", "run", "x"], env) is None
    assert unix_socket(["--context", "missing", "run", "x"], env) is None
    # DOCKER_HOST wins over the config's current context, as in the docker CLI.
    assert unix_socket(["run", "x"], {**env, "DOCKER_HOST": "unix:///h"}) == "/h"
