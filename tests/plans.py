"""What the express path's tests build: a record, a plan for an argv, and the private
locations (a temporary HOME and SAFE_DOCKER_* dirs) a plan is kept in."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from safedocker.cache.verdicts import SignatureListing, WarmRecord, locations
from safedocker.gate.express import Plan

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    from safedocker.cache.verdicts import Where

NAME = "registry.test:5000/team/app"
DIGEST = "sha256:" + "a" * 64


def record() -> WarmRecord:
    return WarmRecord(
        digest=DIGEST, covered=DIGEST, config_digest=None,
        signatures=(SignatureListing(NAME, DIGEST, "b" * 64),), anchors=(),
        material_time=1.0, offline_max_age=2.0, valid_until=None, gpu="never",
        scheme="http", rule=NAME, rule_source="config.toml", signers=("demo",), material="m")


def plan(argv: Sequence[str], **changes: object) -> Plan:
    """The plan a warm hit on ``argv`` (naming ``NAME:v1``) would leave."""
    image = list(argv).index(f"{NAME}:v1")
    command = (*argv[:image], f"{NAME}@{DIGEST}", *argv[image + 1:])
    made = Plan(inputs="i" * 64, records=(("/x/verdicts/a.json", "c" * 64),), record=record(),
                platform="any", name=NAME, tag="v1", shown=f"{NAME}:v1", config=None,
                globals=(("--host", "unix:///run/docker.sock"),), socket="/run/docker.sock",
                target=f"{NAME}@{DIGEST}", audit=',"outcome":"accepted"}', output=None,
                command=command)
    return made._replace(**changes)  # type: ignore[arg-type]


def private_env(tmp_path: Path) -> dict[str, str]:
    return {"HOME": str(tmp_path), "SAFE_DOCKER_CONFIG_DIR": str(tmp_path / "config"),
            "SAFE_DOCKER_CACHE_DIR": str(tmp_path / "cache"),
            "SAFE_DOCKER_STATE_DIR": str(tmp_path / "state"),
            "SAFE_DOCKER_SYSTEM_CONFIG_DIR": str(tmp_path / "system")}


def private_where(env: dict[str, str]) -> Where:
    """The locations of ``env``, with the cache dir made (0700)."""
    found = locations(env)
    assert found is not None
    os.makedirs(found.cache_dir, mode=0o700)
    return found
