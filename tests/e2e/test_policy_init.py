"""`safe-docker policy init` against a real dockerd: proposals from the local store, written
only with --yes, never touching a rule that already covers an image."""

from __future__ import annotations

import json
import subprocess
import uuid
from typing import TYPE_CHECKING

from tests.e2e.conftest import safe_docker_command
from tests.e2e.test_compose import compose_ready

if TYPE_CHECKING:
    from pathlib import Path

    from tests.e2e.conftest import SafeDocker
    from tests.world import World

__all__ = ["compose_ready"]  # the fixture, shared with test_compose


def test_init_proposes_from_the_local_store_and_writes_only_when_told(
        world: World, safe_docker: SafeDocker) -> None:
    tag = uuid.uuid4().hex[:12]
    chainguard = world.make_local_image(f"cgr.dev/chainguard/init-e2e:{tag}")
    official = world.make_local_image(f"ubuntu-init-e2e-{tag}:1")
    denied = world.make_local_image(f"{world.registry}/init-e2e-{tag}/app:v1")
    try:
        assert safe_docker("policy", "deny", f"{world.registry}/init-e2e-{tag}").exit_code == 0
        before = safe_docker.config_dir.joinpath("config.toml").read_text()

        shown = safe_docker("policy", "init", "--json", input="")
        assert shown.exit_code == 0, shown.stderr
        plan = json.loads(shown.stdout)
        by_target = {p["target"]: p for p in plan["proposals"]}
        assert by_target["chainguard"]["kind"] == "catalogue"
        assert chainguard in by_target["chainguard"]["images"]
        unsigned = by_target[f"docker.io/library/ubuntu-init-e2e-{tag}"]
        assert unsigned["kind"] == "unsigned"
        assert unsigned["why"].startswith("published unsigned: Docker Official Images")
        assert {c["image"] for c in plan["covered"]} >= {denied}
        assert "nothing written" in shown.stderr
        assert safe_docker.config_dir.joinpath("config.toml").read_text() == before

        written = safe_docker("policy", "init", "--yes")
        assert written.exit_code == 0, written.stderr
        assert "policy for cgr.dev/chainguard/*: verify with https://github.com/" \
               "chainguard-images/images/" in written.stdout
        assert f"policy for docker.io/library/ubuntu-init-e2e-{tag}: accept (UNSIGNED" \
               in written.stdout
        checks = {image: json.loads(safe_docker("policy", "check", image, "--json").stdout)
                  for image in (chainguard, official, denied)}
        assert checks[chainguard]["action"] == "verify"
        assert checks[official]["action"] == "accept"
        assert checks[denied]["action"] == "reject"
    finally:
        world.remove_images(chainguard, official, denied)


def test_init_compose_proposes_for_the_projects_service_images(
        world: World, safe_docker: SafeDocker, compose_ready: None, tmp_path: Path) -> None:
    tag = uuid.uuid4().hex[:12]
    project = tmp_path / f"sd{tag}"
    project.mkdir()
    services = {"web": {"image": f"cgr.dev/chainguard/nginx-init-e2e:{tag}"},
                "cache": {"image": f"redis-init-e2e-{tag}:7"},
                "built": {"build": "."}}
    (project / "docker-compose.yml").write_text(json.dumps({"services": services}))
    proc = subprocess.run([*safe_docker_command(), "policy", "init", "--compose", "--json"],
                          env=safe_docker.env(), cwd=project, capture_output=True, text=True,
                          input="", timeout=300)
    assert proc.returncode == 0, proc.stderr
    proposals = {p["target"]: p for p in json.loads(proc.stdout)["proposals"]}
    assert f"cgr.dev/chainguard/nginx-init-e2e:{tag}" in proposals["chainguard"]["images"]
    assert proposals[f"docker.io/library/redis-init-e2e-{tag}"]["kind"] == "unsigned"
    assert not safe_docker.config_dir.joinpath("config.toml").exists()
