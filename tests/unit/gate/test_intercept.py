"""pull/run/create: argv → the gate → the docker commands (over fakes: no docker runs)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from safedocker._docker.engine import LocalImage
from safedocker.errors import Refused
from safedocker.gate.intercept import plan_intercept
from safedocker.policy.model import Mode
from tests.unit.gate.fakes import CHILD, CONFIG, INDEX, REG, World, verdict

if TYPE_CHECKING:
    from safedocker.gate.handoff import Plan

APP = f"{REG}/ns/app:v1"
PINNED = f"{REG}/ns/app@{INDEX}"


def plan(world: World, *argv: str) -> Plan:
    return plan_intercept(list(argv), gate=world.gate).plan


@pytest.fixture
def world() -> World:
    w = World()
    w.verifier.verdicts[APP] = verdict(APP)
    return w


def test_pull_pulls_the_digest_and_leaves_the_tag(world: World) -> None:
    assert plan(world, "pull", "-q", APP).commands == (
        ("pull", "-q", PINNED), ("tag", PINNED, APP))


def test_run_of_a_missing_image_pulls_it_quietly_tags_it_then_runs_it(world: World) -> None:
    result = plan(world, "-D", "run", "--rm", APP, "echo", "hi")
    assert result.commands == (("-D", "pull", PINNED), ("-D", "tag", PINNED, APP),
                               ("-D", "run", "--rm", PINNED, "echo", "hi"))
    assert result.progress == frozenset({0})  # its stdout goes to stderr


def test_run_of_a_present_image_only_restores_the_tag(world: World) -> None:
    world.engine.images[PINNED] = LocalImage(str(CONFIG))
    assert plan(world, "create", APP).commands == (("tag", PINNED, APP), ("create", PINNED))


def test_run_keeps_the_platform_for_the_pull_of_an_index(world: World) -> None:
    commands = plan(world, "run", "--platform=linux/amd64", APP).commands
    assert commands[0] == ("pull", "--platform", "linux/amd64", PINNED)


def test_run_with_pull_never_leaves_a_missing_image_to_docker(world: World) -> None:
    assert plan(world, "run", "--pull=never", APP).commands == (
        ("run", "--pull=never", PINNED),)


def test_run_by_digest_is_one_command(world: World) -> None:
    world.verifier.verdicts[PINNED] = verdict(PINNED)
    assert plan(world, "run", PINNED).commands == (("run", PINNED),)


def test_a_child_signature_runs_the_child(world: World) -> None:
    world.verifier.verdicts[APP] = verdict(APP, covered=CHILD)
    assert plan(world, "run", APP).commands[-1] == ("run", f"{REG}/ns/app@{CHILD}")


def test_a_verified_image_id_runs_by_id_and_never_pulls(world: World) -> None:
    world.engine.images[str(CONFIG)] = LocalImage(str(CONFIG), (), (PINNED,))
    world.verifier.verdicts[PINNED] = verdict(PINNED)
    assert plan(world, "run", CONFIG.hex).commands == (
        ("run", "--pull=never", str(CONFIG)),)


def test_warn_runs_the_resolved_digest(world: World) -> None:
    world.mode = Mode.WARN
    world.verifier.verdicts[APP] = verdict(APP, accepted=False, reasons=("no signature",))
    assert plan(world, "run", APP).commands[-1] == ("run", PINNED)
    assert len(world.lines) == 1 and world.lines[0].startswith("safe-docker: warning: ")


def test_off_and_help_hand_argv_over_unchanged(world: World) -> None:
    assert plan(world, "run", "--help", APP).commands == (("run", "--help", APP),)
    world.mode = Mode.OFF
    assert plan(world, "run", APP).commands == (("run", APP),)
    assert world.verifier.asked == []


def test_pull_all_tags_is_refused(world: World) -> None:
    with pytest.raises(Refused, match="all-tags"):
        plan(world, "pull", "-a", f"{REG}/ns/app")
    assert [e["outcome"] for e in world.audit.entries] == ["refused"]


def test_offline_pull_of_a_present_image_only_tags(world: World) -> None:
    world.verifier.verdicts[APP] = verdict(APP, offline=True)
    world.engine.images[PINNED] = LocalImage(str(CONFIG))
    assert plan(world, "pull", APP).commands == (("tag", PINNED, APP),)


def test_run_of_an_image_already_tagged_is_one_command(world: World) -> None:
    world.engine.images[PINNED] = LocalImage(str(CONFIG), (APP,), (PINNED,))
    assert plan(world, "run", APP).commands == (("run", PINNED),)
