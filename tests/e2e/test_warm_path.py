"""The warm path against the real dockerd and registry: a tag verified before is answered
from the verdict cache with no docker process for `pull`, one exec for `run`, nothing
heavy imported; and any change (a rule, a new signature, a moved tag) goes the full way.

Which docker commands ran is seen through a wrapper on SAFE_DOCKER_REAL_DOCKER that
logs its argv and execs the real docker.
"""

from __future__ import annotations

import os
import subprocess
import sys
from typing import TYPE_CHECKING

from tests.e2e.conftest import Warm, _audit, _command, ok

if TYPE_CHECKING:

    from tests.world import World

HEAVY = ("requests", "urllib3", "cryptography", "sigstore", "typer", "click", "pynvml",
         "rfc3161_client", "yaml", "nacl", "platformdirs", "tomli_w")
# Standard-library modules that cost a hit a large part of an interpreter start: dataclasses
# (inspect, ast, dis, tokenize), http.client (the email package), logging; and those that
# each cost a hit several ms of its ≈50 (typing, pathlib with urllib.parse and ipaddress,
# sqlite3, socket's enums and selectors, OpenSSL's libcrypto through hashlib, datetime).
SLOW = ("dataclasses", "inspect", "http", "email", "logging", "typing", "pathlib", "urllib",
        "ipaddress", "sqlite3", "socket", "selectors", "_hashlib", "datetime")


def test_a_second_pull_of_a_verified_tag_runs_no_docker_process_and_prints_dockers_lines(
        warm: Warm, world: World) -> None:
    cold = warm.run("pull", warm.image.tagged)
    assert cold.returncode == 0, cold.stderr
    assert [c[0] for c in warm.docker_calls()] == ["pull", "tag"]
    again = warm.run("pull", warm.image.tagged)
    assert again.returncode == 0, again.stderr
    assert warm.docker_calls() == []
    assert again.stdout == cold.stdout.replace("Downloaded newer image", "Image is up to date"
                                               ).replace(_progress(cold.stdout), "")
    events = _audit(warm.sd)
    assert events[-1]["outcome"] == "accepted"
    assert events[-1]["target"] == f"{warm.image.repo}@{warm.image.digest}"
    assert {k: v for k, v in events[-1].items() if k not in ("time", "pid")} == \
        {k: v for k, v in events[-2].items() if k not in ("time", "pid")}
    assert world.has_image(warm.image.tagged)


def _progress(stdout: str) -> str:
    """The layer lines of a real download (absent when docker has the image)."""
    return "".join(line + "\n" for line in stdout.splitlines()
                   if line.split(":")[0].strip().isalnum() and len(line.split(":")[0]) == 12)


def test_a_warm_run_execs_docker_once_with_the_verified_digest(warm: Warm) -> None:
    assert warm.run("pull", warm.image.tagged).returncode == 0
    ran = warm.run("run", "--rm", "--network", "none", warm.image.tagged, "echo", "hi")
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout == "hi\n"
    assert warm.docker_calls() == [["run", "--rm", "--network", "none",
                                    f"{warm.image.repo}@{warm.image.digest}", "echo", "hi"]]


def test_a_warm_hit_imports_nothing_heavy(warm: Warm) -> None:
    assert warm.run("pull", warm.image.tagged).returncode == 0
    warm.log.unlink(missing_ok=True)
    done = subprocess.run([sys.executable, "-X", "importtime", *_command()[1:], "pull",
                           warm.image.tagged], env=warm.env, capture_output=True, text=True,
                          timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    assert warm.docker_calls() == []  # it was a hit
    imported = {line.split("|")[-1].strip().split(".")[0]
                for line in done.stderr.splitlines() if line.startswith("import time:")}
    assert imported & set(HEAVY) == set()
    assert imported & set(SLOW) == set()


def test_a_policy_edit_misses_and_the_full_path_decides(warm: Warm, world: World) -> None:
    assert warm.run("pull", warm.image.tagged).returncode == 0
    ok(warm.sd, "policy", "deny", f"{warm.image.repo}")
    refused = warm.run("pull", warm.image.tagged)
    assert refused.returncode == 77, refused.stderr
    assert warm.docker_calls() == []


def test_a_new_signature_misses_and_a_moved_tag_is_verified_again(warm: Warm,
                                                                   world: World) -> None:
    assert warm.run("pull", warm.image.tagged).returncode == 0
    ok(warm.sd, "sign", "--key", str(warm.key), warm.image.tagged)
    again = warm.run("pull", warm.image.tagged)
    assert again.returncode == 0, again.stderr
    assert [c[0] for c in warm.docker_calls()] == ["pull", "tag"]  # the full path ran
    moved = world.push_image(warm.image.repo.split("/", 1)[1], warm.image.tag)
    refused = warm.run("pull", warm.image.tagged)
    assert moved.digest != warm.image.digest
    assert refused.returncode == 77, refused.stderr
    assert warm.docker_calls() == []


def test_offline_a_warm_hit_says_it_decided_offline(warm: Warm) -> None:
    assert warm.run("pull", warm.image.tagged).returncode == 0
    env = dict(warm.env, SAFE_DOCKER_OFFLINE="1")
    warm.log.unlink(missing_ok=True)
    done = subprocess.run([*_command(), "run", "--rm", "--network", "none",
                           warm.image.tagged, "true"], env=env, capture_output=True,
                          text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    assert "decided offline" in done.stderr
    assert [c[0] for c in warm.docker_calls()] == ["run"]
    assert os.environ.get("SAFE_DOCKER_OFFLINE") is None


def test_a_warm_verify_prints_the_same_report_without_typer_or_crypto(warm: Warm) -> None:
    cold = warm.run("verify", warm.image.tagged)
    assert cold.returncode == 0, cold.stderr
    done = subprocess.run([sys.executable, "-X", "importtime", *_command()[1:], "verify",
                           warm.image.tagged], env=warm.env, capture_output=True, text=True,
                          timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout == cold.stdout
    imported = {line.split("|")[-1].strip().split(".")[0]
                for line in done.stderr.splitlines() if line.startswith("import time:")}
    assert imported & set(HEAVY) == set()
    assert imported & set(SLOW) == set()
    events = _audit(warm.sd)
    assert {k: v for k, v in events[-1].items() if k not in ("time", "pid")} == \
        {k: v for k, v in events[-2].items() if k not in ("time", "pid")}


def test_an_image_mount_beside_a_warm_tag_is_verified_and_an_unsigned_one_refused(
        warm: Warm, world: World) -> None:
    """The record covers the container's own image only: a `--mount type=image` source
    beside a warm tag takes the full path, which refuses an unsigned one (77)."""
    assert warm.run("pull", warm.image.tagged).returncode == 0
    evil = world.push_image(f"{warm.image.repo.split('/')[1]}-evil/mounted")
    ran = warm.run("run", "--rm", "--mount", f"type=image,source={evil.tagged},target=/x",
                   warm.image.tagged, "true")
    assert ran.returncode == 77, ran.stderr
    assert evil.tagged in ran.stderr
    assert not world.has_image(evil.tagged)
    assert not any(c[:1] == ["run"] for c in warm.docker_calls())
