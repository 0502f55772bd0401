"""The verdict cache against the user who owns it (attack round 4), with the real dockerd
and registry: a record is an answer the warm path hands docker without verifying anything,
and the cache is the user's own file, so under a locked system policy a record the user
wrote must not decide; docker itself shows that nothing was started.
"""

from __future__ import annotations

import subprocess
import sys
from typing import TYPE_CHECKING

import pytest

from tests.adversarial.test_lock import _OVERLAY, SPACE, LockedEtc, etc, write_system_policy
from tests.e2e.conftest import Warm, ok, warm

if TYPE_CHECKING:
    from pathlib import Path

    from tests.e2e.conftest import SafeDocker
    from tests.world import World

pytestmark = pytest.mark.e2e
__all__ = ["etc", "warm"]

# What a user can run as themselves: a record of "accepted" for IMAGE with no signature to
# re-check, keyed exactly as the warm path computes its key.
_FORGE = """
import os, sys, time
from safedocker._docker.argv import parse
from safedocker._docker.engine_api import EngineSocket, unix_socket
from safedocker.cache.verdicts import (ANY_PLATFORM, WarmRecord, inputs_digest, locations,
                                       store, warm_key)
from safedocker.gate.warm import _platform
from safedocker.reference import parse_reference

text, digest = sys.argv[1:3]
ref = parse_reference(text)
argv = ["run", text]
where = locations()
engine = EngineSocket(unix_socket(argv))
inputs = inputs_digest(where)
platforms = (ANY_PLATFORM, _platform(parse(argv), os.environ, engine))
record = WarmRecord(digest=digest, covered=digest, config_digest=None, signatures=(),
                    anchors=(), material_time=time.time(), offline_max_age=1e9,
                    valid_until=None, gpu="never", scheme="http", rule=None,
                    rule_source=None, signers=(), material="0" * 64)
for platform in platforms:  # under both keys a hit may try
    store(where.cache_dir, warm_key(inputs, ref.tagged, platform), ref.name, record)
"""


def _in_namespace(etc: LockedEtc, env: dict[str, str], *command: str
                  ) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["unshare", "-m", "--propagation", "private", "sh", "-c", _OVERLAY, "sh",
         str(etc.root / "upper"), str(etc.root / "work"), *command],
        env=env, capture_output=True, text=True, timeout=300, check=False)


def test_a_verdict_the_user_wrote_into_their_cache_never_runs_an_image_under_a_lock(
        world: World, safe_docker: SafeDocker, etc: LockedEtc) -> None:
    evil = world.push_image(f"{SPACE}/evil-forged-verdict")
    write_system_policy(etc.directory, world.registry)
    # Docker's image store is shared by every user of the daemon: the image is there.
    world.run_docker("pull", evil.pinned)
    env = safe_docker.env()
    env.pop("SAFE_DOCKER_SYSTEM_CONFIG_DIR")
    forged = _in_namespace(etc, env, sys.executable, "-c", _FORGE, evil.tagged, evil.digest)
    assert forged.returncode == 0, forged.stderr
    name = "forged-verdict-run"
    result = _in_namespace(etc, env, *_safe_docker(), "run", "--name", name, "--network",
                           "none", evil.tagged, "true")
    assert result.returncode == 77, result.stderr
    assert "safe-docker: refused" in result.stderr
    made = world.run_docker("ps", "-a", "--no-trunc", "--format", "{{.Names}} {{.Image}}")
    assert name not in made.stdout.decode() and evil.repo not in made.stdout.decode()
    assert not world.has_image(evil.tagged)


def _safe_docker() -> list[str]:
    from tests.e2e.conftest import safe_docker_command

    return safe_docker_command()


def test_a_policy_edit_misses_when_the_config_dir_is_named_through_a_symlink_and_dotdot(
        warm: Warm, tmp_path: Path) -> None:
    """SAFE_DOCKER_CONFIG_DIR=<away>/link/../config: the OS resolves the symlink first, so
    the full path reads the real config dir; a lexical normalization (os.path.normpath)
    would key the record on ``<away>/config`` instead, and a deny written into the real
    dir would not be seen by the warm path."""
    real = warm.sd.config_dir
    (real.parent / "inner").mkdir()
    away = tmp_path / "away"
    away.mkdir()
    (away / "link").symlink_to(real.parent / "inner")
    env = dict(warm.env, SAFE_DOCKER_CONFIG_DIR=f"{away}/link/../{real.name}")
    first = subprocess.run([*_safe_docker(), "pull", warm.image.tagged], env=env,
                           capture_output=True, text=True, timeout=300, check=False)
    assert first.returncode == 0, first.stderr
    ok(warm.sd, "policy", "deny", warm.image.repo)  # in the dir the full path reads
    again = subprocess.run([*_safe_docker(), "pull", warm.image.tagged], env=env,
                           capture_output=True, text=True, timeout=300, check=False)
    assert again.returncode == 77, again.stderr
