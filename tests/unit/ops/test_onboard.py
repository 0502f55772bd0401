"""``policy init``'s proposals: catalogue rules for signing publishers, UNSIGNED accepts for
the rest, and never a change to an image a rule already covers."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from safedocker._docker.engine import DockerCLI
from safedocker.ops import onboard
from safedocker.ops.onboard import Proposed
from safedocker.policy.config import load_config, set_rule
from safedocker.policy.model import Action
from safedocker.reference import parse_reference
from tests.unit.policy.support import fresh_dirs

if TYPE_CHECKING:
    from pathlib import Path

    from safedocker.policy.paths import Paths

IMAGES = ["ubuntu:24.04", "cgr.dev/chainguard/python:latest", "cgr.dev/chainguard/static:latest",
          "registry.k8s.io/pause:3.10", "localhost:5000/team/app:v1", "istio/pilot:1.24.0",
          "Bad Name:x"]


@pytest.fixture
def where(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Paths:
    return fresh_dirs(tmp_path, monkeypatch)


def test_signing_publishers_get_catalogue_rules_and_the_rest_unsigned_accepts(
        where: Paths) -> None:
    plan = onboard.propose(load_config(where), IMAGES)
    found = {(p.kind, p.target): p for p in plan.proposals}
    assert found[(Proposed.CATALOGUE, "chainguard")].images == (
        "cgr.dev/chainguard/python:latest", "cgr.dev/chainguard/static:latest")
    assert (Proposed.CATALOGUE, "kubernetes") in found
    assert "published unsigned: Docker Official Images" in found[
        (Proposed.UNSIGNED, "docker.io/library/ubuntu")].why
    assert "not confirmed" in found[(Proposed.UNSIGNED, "docker.io/istio/pilot")].why
    assert found[(Proposed.UNSIGNED, "localhost:5000/team/app")].why == "no known signer"
    assert [image for image, _ in plan.unusable] == ["Bad Name:x"]
    text = "\n".join(onboard.plan_lines(plan))
    assert "UNSIGNED allow docker.io/library/ubuntu — accepted WITHOUT any signature" in text


def test_an_image_a_rule_covers_is_kept_as_it_is(where: Paths) -> None:
    set_rule(where, "localhost:5000/team", {"action": "reject"})
    set_rule(where, "cgr.dev", {"action": "accept"})
    plan = onboard.propose(load_config(where), IMAGES)
    targets = {p.target for p in plan.proposals}
    assert "localhost:5000/team/app" not in targets and "chainguard" not in targets
    assert {image for image, _ in plan.covered} == {
        "localhost:5000/team/app:v1", "cgr.dev/chainguard/python:latest",
        "cgr.dev/chainguard/static:latest"}
    onboard.write(where, plan)
    decide = load_config(where).policy.decide
    assert decide(parse_reference("localhost:5000/team/app:v1")).action is Action.REJECT
    assert decide(parse_reference("ubuntu")).action is Action.ACCEPT
    assert decide(parse_reference("registry.k8s.io/pause")).action is Action.VERIFY


def test_write_keeps_a_rule_that_appeared_after_the_plan(where: Paths) -> None:
    plan = onboard.propose(load_config(where), ["ubuntu:24.04", "cgr.dev/chainguard/static:1"])
    set_rule(where, "docker.io/library", {"action": "reject"})
    set_rule(where, "cgr.dev/chainguard/*", {"action": "reject"})
    lines = onboard.write(where, plan)
    assert "kept the rule that now covers docker.io/library/ubuntu" in lines
    assert any(line.startswith("kept your rules for chainguard") for line in lines)
    decide = load_config(where).policy.decide
    assert decide(parse_reference("ubuntu")).action is Action.REJECT
    assert decide(parse_reference("cgr.dev/chainguard/static")).action is Action.REJECT


def test_under_a_locked_system_policy_no_accept_is_proposed_or_written(where: Paths) -> None:
    """A locked system policy ignores user accepts for images it does not cover."""
    (where.system_config_dir / "config.toml").write_text('locked = true\nunmatched = "warn"\n')
    plan = onboard.propose(load_config(where), ["ubuntu:24.04", "registry.k8s.io/pause:3.10"])
    assert [p.target for p in onboard.writable(plan)] == ["kubernetes"]
    assert "the system policy is locked" in "\n".join(onboard.plan_lines(plan))
    onboard.write(where, plan)
    assert "accept" not in where.user_config_file.read_text()


def test_under_a_locked_policy_that_rejects_unmatched_images_nothing_is_proposed(
        where: Paths) -> None:
    (where.system_config_dir / "config.toml").write_text("locked = true\n")
    plan = onboard.propose(load_config(where), ["ubuntu:24.04", "registry.k8s.io/pause:3.10"])
    assert plan.proposals == ()
    assert all("locked system policy" in why for _, why in plan.covered)


def test_the_engine_lists_local_image_names_skipping_dangling_ones(tmp_path: Path) -> None:
    docker = tmp_path / "docker"
    docker.write_text("#!/bin/sh\nprintf '%s\\n' '[\"localhost:5000/a/b\",\"v1\"]' "
                      "'[\"<none>\",\"<none>\"]' '[\"ubuntu\",\"<none>\"]' "
                      "'[\"ubuntu\",\"24.04\"]' '[\"ubuntu\",\"24.04\"]'\n")
    docker.chmod(0o755)
    assert DockerCLI(str(docker)).image_names() == ("localhost:5000/a/b:v1", "ubuntu:24.04")


@pytest.mark.parametrize("image", ["cgr.dev/chainguard:latest", "ghcr.io/kyverno",
                                   "quay.io/cilium:v1", "ghcr.io/fluxcd:v2"])
def test_an_image_named_like_a_signed_publishers_namespace_gets_no_accept_covering_it(
        where: Paths, image: str) -> None:
    # A scope covers every repository under it: an UNSIGNED accept for "cgr.dev/chainguard"
    # (an image a hostile compose file names) would accept all of Chainguard's images
    # without their signatures, although the catalogue knows who signs them.
    plan = onboard.propose(load_config(where), [image])
    assert not [p for p in plan.proposals if p.kind is Proposed.UNSIGNED], plan.proposals
    assert [i for i, _ in plan.unusable] == [image]
    assert "signed" in plan.unusable[0][1]
    onboard.write(where, plan)
    decide = load_config(where).policy.decide
    for signed in ("cgr.dev/chainguard/static", "ghcr.io/kyverno/kyverno",
                   "quay.io/cilium/cilium", "ghcr.io/fluxcd/flux-cli"):
        assert decide(parse_reference(signed)).action is not Action.ACCEPT, signed
