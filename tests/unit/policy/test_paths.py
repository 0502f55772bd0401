from __future__ import annotations

from pathlib import Path

from safedocker.policy.paths import paths


def test_paths_come_from_the_environment_first(tmp_path: Path) -> None:
    env = {"SAFE_DOCKER_CONFIG_DIR": str(tmp_path / "c"), "SAFE_DOCKER_CACHE_DIR": "/x/cache",
           "SAFE_DOCKER_STATE_DIR": "/x/state", "SAFE_DOCKER_SYSTEM_CONFIG_DIR": "/x/sys"}
    where = paths(env)
    assert where.user_config_file == tmp_path / "c" / "config.toml"
    assert where.cache_dir == Path("/x/cache")
    assert where.system_config_file == Path("/x/sys/config.toml")
    assert paths({}).system_config_dir == Path("/etc/safe-docker")
