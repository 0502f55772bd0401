"""Onboarding under attack: an unsigned image in the local store must not become accepted
by `policy init` unless the user confirms, nor by `policy catalog add` of a publisher the
catalogue knows to be unsigned. Each refusal: the documented exit code, one stderr line,
and the image absent from docker afterwards (asked of docker itself)."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

import pytest

from tests.e2e.test_compose import compose_ready

if TYPE_CHECKING:
    from pathlib import Path

    from tests.e2e.conftest import SafeDocker
    from tests.world import World

pytestmark = pytest.mark.e2e
__all__ = ["compose_ready"]  # the fixture, shared with test_compose


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


def test_init_yes_from_a_hostile_compose_file_accepts_no_signed_publishers_namespace(
        world: World, safe_docker: SafeDocker, compose_ready: None, tmp_path: Path) -> None:
    # "image: ghcr.io/kyverno" is a repository of its own; an accept for it would cover
    # ghcr.io/kyverno/kyverno and every other image of a publisher that signs.
    import json
    import subprocess

    from tests.e2e.conftest import safe_docker_command

    project = tmp_path / "hostile"
    project.mkdir()
    services = {"a": {"image": "ghcr.io/kyverno:latest"}, "b": {"image": "cgr.dev/chainguard"}}
    (project / "docker-compose.yml").write_text(json.dumps({"services": services}))
    before = set(world.run_docker("images", "-q").stdout.decode().split())
    proc = subprocess.run([*safe_docker_command(), "policy", "init", "--compose", "--yes"],
                          env=safe_docker.env(), cwd=project, capture_output=True, text=True,
                          input="", timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "skipped  ghcr.io/kyverno:latest" in proc.stdout
    for image in ("ghcr.io/kyverno/kyverno:v1.13.0", "cgr.dev/chainguard/static:latest"):
        check = json.loads(safe_docker("policy", "check", image, "--json").stdout)
        assert check["action"] != "accept", (image, check)
    assert set(world.run_docker("images", "-q").stdout.decode().split()) == before
