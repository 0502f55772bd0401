"""Onboarding under attack: an unsigned image in the local store must not become accepted
by `policy init` unless the user confirms, nor by `policy catalog add` of a publisher the
catalogue knows to be unsigned. Each refusal: the documented exit code, one stderr line,
and the image absent from docker afterwards (asked of docker itself)."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from tests.e2e.conftest import SafeDocker
    from tests.world import World

pytestmark = pytest.mark.e2e


def test_unconfirmed_init_leaves_an_unsigned_local_image_refused(
        world: World, safe_docker: SafeDocker) -> None:
    repo = f"{world.registry}/adv-init-{uuid.uuid4().hex[:10]}/app"
    world.make_local_image(f"{repo}:v1")
    world.run_docker("push", f"{repo}:v1")
    try:
        shown = safe_docker("policy", "init", input="")  # no terminal, no --yes
        assert shown.exit_code == 0, shown.stderr
        assert f"UNSIGNED allow {repo}" in shown.stdout
        assert "nothing written" in shown.stderr
        assert not safe_docker.config_dir.joinpath("config.toml").exists()
        world.remove_images(f"{repo}:v1")

        pulled = safe_docker("pull", f"{repo}:v1")
        assert pulled.exit_code == 77, (pulled.stdout, pulled.stderr)
        assert len(pulled.stderr.strip().splitlines()) == 1, pulled.stderr
        assert not world.has_image(f"{repo}:v1")
    finally:
        world.remove_images(f"{repo}:v1")


def test_catalog_add_of_an_unsigned_publisher_writes_nothing(safe_docker: SafeDocker) -> None:
    for name in ("docker-official-images", "pytorch"):
        added = safe_docker("policy", "catalog", "add", name)
        assert added.exit_code == 2
        assert added.stderr.startswith(f"safe-docker: {name} publishes its images unsigned — ")
        assert len(added.stderr.strip().splitlines()) == 1
    assert not safe_docker.config_dir.joinpath("config.toml").exists()
    checked = safe_docker("policy", "check", "pytorch/pytorch:latest")
    assert "unmatched (reject)" in checked.stdout
