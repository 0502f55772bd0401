"""Registry credentials found as the docker CLI finds them (config dir, auths, helpers)."""

from __future__ import annotations

import base64
import json
import os
from typing import TYPE_CHECKING, Any

import pytest

from safedocker._docker.credentials import Credentials, config_dir, lookup
from safedocker.errors import ConfigError, ExitCode, TimedOut

if TYPE_CHECKING:
    from pathlib import Path

SECRET = "s3cret-never-shown"


def _auth(user: str, password: str) -> str:
    return base64.b64encode(f"{user}:{password}".encode()).decode()


def _config(directory: Path, document: dict[str, Any]) -> dict[str, str]:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.json").write_text(json.dumps(document))
    return {"DOCKER_CONFIG": str(directory), "PATH": os.environ.get("PATH", "")}


def _helper(bindir: Path, name: str, server: str, username: str) -> None:
    bindir.mkdir(parents=True, exist_ok=True)
    script = bindir / f"docker-credential-{name}"
    script.write_text(
        "#!/bin/sh\nread server\n"
        f'if [ "$1" = get ] && [ "$server" = "{server}" ]; then\n'
        f"  printf '%s' '{{\"ServerURL\":\"{server}\",\"Username\":\"{username}\","
        f"\"Secret\":\"{SECRET}\"}}'; exit 0\nfi\n"
        "echo 'credentials not found in native keychain'; exit 1\n")
    script.chmod(0o755)


def test_config_dir_is_flag_then_environment_then_home(tmp_path: Path) -> None:
    env = {"DOCKER_CONFIG": str(tmp_path / "env")}
    assert config_dir(str(tmp_path / "flag"), env) == tmp_path / "flag"
    assert config_dir(None, env) == tmp_path / "env"
    assert config_dir(None, {}).name == ".docker"


def test_auths_entry_by_host_or_by_url(tmp_path: Path) -> None:
    env = _config(tmp_path / "c", {"auths": {
        "127.0.0.1:5000": {"auth": _auth("alice", SECRET)},
        "https://ghcr.io/v2/": {"auth": _auth("bob", SECRET)},
        "https://index.docker.io/v1/": {"identitytoken": SECRET},
    }})
    assert lookup("127.0.0.1:5000", environ=env) == Credentials("alice", SECRET)
    assert lookup("ghcr.io", environ=env) == Credentials("bob", SECRET)
    assert lookup("docker.io", environ=env) == Credentials(identity_token=SECRET)
    assert lookup("quay.io", environ=env) is None


def test_config_flag_wins_over_docker_config(tmp_path: Path) -> None:
    env = _config(tmp_path / "env", {"auths": {"r.example": {"auth": _auth("env", SECRET)}}})
    _config(tmp_path / "flag", {"auths": {"r.example": {"auth": _auth("flag", SECRET)}}})
    found = lookup("r.example", str(tmp_path / "flag"), environ=env)
    assert found is not None and found.username == "flag"


def test_a_missing_config_means_no_credentials(tmp_path: Path) -> None:
    assert lookup("r.example", environ={"DOCKER_CONFIG": str(tmp_path / "none")}) is None


def test_cred_helpers_win_over_creds_store(tmp_path: Path) -> None:
    env = _config(tmp_path / "c", {"credsStore": "store",
                                   "credHelpers": {"r.example": "special"}})
    env["PATH"] = f"{tmp_path / 'bin'}{os.pathsep}{env['PATH']}"
    _helper(tmp_path / "bin", "special", "r.example", "carol")
    _helper(tmp_path / "bin", "store", "https://index.docker.io/v1/", "<token>")
    assert lookup("r.example", environ=env) == Credentials("carol", SECRET)
    assert lookup("docker.io", environ=env) == Credentials(identity_token=SECRET)
    assert lookup("elsewhere.example", environ=env) is None  # "credentials not found"


def test_broken_config_or_helper_is_a_config_error_that_shows_no_secret(tmp_path: Path) -> None:
    env = _config(tmp_path / "c", {"credsStore": "missing"})
    with pytest.raises(ConfigError, match="cannot read docker credentials") as info:
        lookup("r.example", environ=env)
    assert "docker-credential-missing" in info.value.why
    (tmp_path / "c" / "config.json").write_text('{"auths": {"r.example": {"auth": "%%%"}}}')
    with pytest.raises(ConfigError) as info:
        lookup("r.example", environ=env)
    assert "not base64" in info.value.why
    (tmp_path / "c" / "config.json").write_text("{not json")
    with pytest.raises(ConfigError, match="cannot read docker credentials"):
        lookup("r.example", environ=env)
    assert SECRET not in repr(Credentials("u", SECRET, SECRET))


def _script(bindir: Path, name: str, body: str) -> None:
    bindir.mkdir(parents=True, exist_ok=True)
    script = bindir / f"docker-credential-{name}"
    script.write_text("#!/bin/sh\n" + body)
    script.chmod(0o755)


def test_a_helper_that_never_answers_times_out_with_exit_69(tmp_path: Path) -> None:
    env = _config(tmp_path / "c", {"credsStore": "stuck"})
    env["PATH"] = f"{tmp_path / 'bin'}{os.pathsep}{env['PATH']}"
    _script(tmp_path / "bin", "stuck", "exec sleep 60\n")
    with pytest.raises(TimedOut) as info:
        lookup("r.example", environ=env, timeout=0.5)
    assert info.value.exit_code == ExitCode.UNAVAILABLE
    assert "docker-credential-stuck get timed out" in info.value.line()


def test_a_helper_that_floods_is_stopped_at_the_cap(tmp_path: Path) -> None:
    env = _config(tmp_path / "c", {"credsStore": "flood"})
    env["PATH"] = f"{tmp_path / 'bin'}{os.pathsep}{env['PATH']}"
    _script(tmp_path / "bin", "flood", "exec yes '{\"Secret\": \"x\"}'\n")
    with pytest.raises(ConfigError, match="answered too much"):
        lookup("r.example", environ=env)
