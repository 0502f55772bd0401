"""`safe-docker policy init` against a real dockerd: proposals from the local store, written
only with --yes, never touching a rule that already covers an image."""

from __future__ import annotations

import json
import uuid
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tests.e2e.conftest import SafeDocker
    from tests.world import World


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
