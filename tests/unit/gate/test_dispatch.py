"""The router's gate side: every command the table does not pass goes through
gate/dispatch.py, over fakes (no docker runs): unknown words, services, plugins,
buildx create, image mounts."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pytest

from safedocker.errors import Refused, UsageError
from safedocker.gate.decide import Gate
from safedocker.gate.dispatch import plan
from safedocker.gate.handoff import Plan
from safedocker.oci.media import PLUGIN_CONFIG
from safedocker.policy.config import Config
from safedocker.policy.model import Mode
from tests.unit.gate.fakes import INDEX, REG, FakeEngine, World, verdict

if TYPE_CHECKING:
    from collections.abc import Sequence

APP = f"{REG}/ns/app:v1"
PINNED = f"{REG}/ns/app@{INDEX}"
BAD = f"{REG}/ns/unsigned:v1"
PLUGIN = f"{REG}/ns/plugin:v1"
BUILDKIT = f"{REG}/moby/buildkit:v0.23"


@dataclass
class PluginEngine(FakeEngine):
    """A daemon with installed plugins (name → the reference it was pulled from)."""

    plugins: dict[str, str] = field(default_factory=dict)
    version: str = "28.5.1"

    def server_version(self) -> str:
        return self.version

    def plugin_reference(self, name: str) -> str | None:
        return self.plugins.get(name)


@pytest.fixture
def world() -> World:
    w = World(engine=PluginEngine())
    w.verifier.verdicts[APP] = dataclasses.replace(
        verdict(APP), config_media_type="application/vnd.oci.image.config.v1+json")
    w.verifier.verdicts[BAD] = verdict(BAD, accepted=False, reasons=("no signature",))
    w.verifier.verdicts[PLUGIN] = dataclasses.replace(verdict(PLUGIN),
                                                      config_media_type=PLUGIN_CONFIG)
    w.verifier.verdicts[BUILDKIT] = verdict(BUILDKIT)
    return w


def gate(world: World, *, passthrough: frozenset[str] = frozenset()) -> Gate:
    return Gate(Config(mode=world.mode, passthrough=passthrough), world.engine,
                world.verifier, world.audit, environ=world.environ, stderr=world.stderr)


def commands(world: World, *argv: str, passthrough: frozenset[str] = frozenset()
             ) -> tuple[tuple[str, ...], ...]:
    return plan(list(argv), gate=gate(world, passthrough=passthrough)).commands


def refusal(world: World, *argv: str) -> str:
    with pytest.raises(Refused) as info:
        commands(world, *argv)
    assert info.value.exit_code == 77
    return info.value.line()


# --- words safe-docker does not know ---------------------------------------------------------


def test_an_unknown_plugin_is_refused_in_enforce_with_a_passthrough_hint(world: World) -> None:
    line = refusal(world, "scout", "cves", APP)
    assert "refused docker scout" in line
    assert 'passthrough = ["scout"]' in line
    assert world.audit.entries[-1]["outcome"] == "refused"


def test_a_plugin_the_passthrough_list_names_goes_to_docker_unchanged(world: World) -> None:
    argv = ("-D", "scout", "cves", APP)
    assert commands(world, *argv, passthrough=frozenset({"scout"})) == (argv,)


def test_passthrough_names_a_plugin_not_a_subcommand(world: World) -> None:
    with pytest.raises(Refused):
        commands(world, "container", "scout", passthrough=frozenset({"scout"}))


def test_in_warn_mode_an_unknown_word_runs_with_one_warning(world: World) -> None:
    world.mode = Mode.WARN
    assert commands(world, "scout", "cves") == (("scout", "cves"),)
    assert len(world.lines) == 1
    assert "scout" in world.lines[0]


def test_with_mode_off_an_unknown_word_is_not_recorded(world: World) -> None:
    world.mode = Mode.OFF
    assert commands(world, "scout") == (("scout",),)
    assert world.audit.entries == []


@pytest.mark.parametrize("argv", [("system", "dial-stdio"), ("buildx", "dial-stdio"),
                                  ("--context", "x", "system", "dial-stdio")])
def test_raw_pipes_to_the_engine_or_buildkit_are_refused(world: World,
                                                         argv: tuple[str, ...]) -> None:
    line = refusal(world, *argv)
    assert "raw connection to the engine" in line and "hint:" in line
    assert world.verifier.asked == []


def test_buildx_bake_is_refused_with_a_hint(world: World) -> None:
    line = refusal(world, "buildx", "bake", "all")
    assert "hint:" in line


@pytest.mark.parametrize("word", ["deploy", "up"])
def test_stack_deploy_and_up_are_planned_by_the_stack_planner_with_the_same_gate(
        world: World, monkeypatch: pytest.MonkeyPatch, word: str) -> None:
    import safedocker.gate.stack as stack

    seen: list[tuple[tuple[str, ...], Gate | None]] = []

    def planner(argv: Sequence[str], *, config: Config | None = None, where: object = None,
                gate: Gate | None = None) -> Plan:
        seen.append((tuple(argv), gate))
        return Plan((("stack", word, "-c", "ours.yml", "s"),))

    monkeypatch.setattr(stack, "plan_stack", planner)
    given = gate(world)
    result = plan(["stack", word, "-c", "stack.yml", "s"], gate=given)
    assert result.commands == (("stack", word, "-c", "ours.yml", "s"),)
    assert seen == [(("stack", word, "-c", "stack.yml", "s"), given)]


@pytest.mark.parametrize("argv", [
    ("service", "create", "--help"), ("plugin", "install", "-h"), ("buildx", "bake", "--help"),
    ("scout", "--help"), ("stack", "deploy", "--help"), ("service", "update", "-h"),
])
def test_help_forms_go_to_docker_unchanged(world: World, argv: tuple[str, ...]) -> None:
    assert commands(world, *argv) == (argv,)
    assert world.verifier.asked == []


@pytest.mark.parametrize("argv", [
    ("system", "dial-stdio", "--help", "--help=false"), ("buildx", "bake", "-h", "-h=0"),
    ("scout", "--help", "--help=false", "cves"), ("system", "dial-stdio", "--help", "-xh=f"),
])
def test_a_help_flag_a_later_one_turns_off_is_no_help_form(world: World,
                                                           argv: tuple[str, ...]) -> None:
    """pflag keeps the last value: `--help --help=false` runs the command (docker does)."""
    assert refusal(world, *argv).startswith("safe-docker: refused")


def test_stack_deploy_with_help_turned_off_again_goes_to_the_stack_planner(
        world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    import safedocker.gate.stack as stack

    seen: list[tuple[str, ...]] = []

    def planner(argv: Sequence[str], **_: object) -> Plan:
        seen.append(tuple(argv))
        return Plan((("stack", "deploy", "-c", "ours.yml", "s"),))

    monkeypatch.setattr(stack, "plan_stack", planner)
    argv = ["stack", "deploy", "--help", "--help=false", "-c", "stack.yml", "s"]
    assert plan(argv, gate=gate(world)).commands == (("stack", "deploy", "-c", "ours.yml", "s"),)
    assert seen == [tuple(argv)]


# --- swarm services (attack N1) -------------------------------------------------------------


def test_service_create_hands_docker_the_pinned_digest(world: World) -> None:
    assert commands(world, "service", "create", "--name", "web", "-p", "80:80", APP, "sh",
                    "-c", "echo hi") == (
        ("service", "create", "--name", "web", "-p", "80:80", PINNED, "sh", "-c", "echo hi"),)


def test_service_create_of_an_unsigned_image_is_refused(world: World) -> None:
    refusal(world, "service", "create", "--no-resolve-image", BAD)


def test_service_create_flags_after_the_image_belong_to_the_container(world: World) -> None:
    # `--image x` after IMAGE is the container's argument, not a flag of create.
    assert commands(world, "service", "create", APP, "--image", BAD) == (
        ("service", "create", PINNED, "--image", BAD),)


def test_service_create_with_an_unknown_flag_is_a_usage_error(world: World) -> None:
    with pytest.raises(UsageError):
        commands(world, "service", "create", "--frobnicate", APP)
    assert world.verifier.asked == []


@pytest.mark.parametrize(("given", "expected"), [
    (("--image", APP), ("--image", PINNED)),
    ((f"--image={APP}",), (f"--image={PINNED}",)),
])
def test_service_update_image_is_pinned_in_the_users_spelling(
        world: World, given: tuple[str, ...], expected: tuple[str, ...]) -> None:
    assert commands(world, "service", "update", *given, "web") == (
        ("service", "update", *expected, "web"),)


def test_service_update_checks_the_last_image_pflag_keeps(world: World) -> None:
    refusal(world, "service", "update", "--image", APP, "--image", BAD, "web")


def test_service_update_without_image_keeps_the_service_image(world: World) -> None:
    argv = ("service", "update", "--replicas", "3", "web")
    assert commands(world, *argv) == (argv,)
    assert world.verifier.asked == []


def test_service_create_image_mount_is_verified_and_pinned(world: World) -> None:
    refusal(world, "service", "create", "--mount", f"type=image,source={BAD},target=/d", APP)
    assert commands(world, "service", "create", "--mount",
                    f"type=image,src={APP},target=/d", APP) == (
        ("service", "create", "--mount", f"type=image,src={PINNED},target=/d", PINNED),)


@pytest.mark.parametrize("argv", [("service", "rollback", "web"), ("service", "scale", "w=3"),
                                  ("swarm", "init"), ("service", "ls")])
def test_other_service_and_swarm_commands_pass(world: World, argv: tuple[str, ...]) -> None:
    from safedocker._docker.route import Route, classify

    assert classify(list(argv)) is Route.PASSTHROUGH


# --- plugins (attack N2) --------------------------------------------------------------------


def test_plugin_install_pins_the_verified_digest_keeping_the_name(world: World) -> None:
    assert commands(world, "plugin", "install", "--grant-all-permissions", PLUGIN,
                    "DEBUG=1") == (
        ("plugin", "install", "--alias", PLUGIN, "--grant-all-permissions",
         f"{REG}/ns/plugin@{INDEX}", "DEBUG=1"),)


def test_plugin_install_by_digest_takes_the_daemons_name(world: World) -> None:
    pinned = f"{REG}/ns/plugin@{INDEX}"
    world.verifier.verdicts[pinned] = world.verifier.verdicts[PLUGIN]
    assert commands(world, "plugin", "install", pinned) == (("plugin", "install", pinned),)


@pytest.mark.parametrize("version", ["20.10.24+dfsg1", "25.0.2", "weird"])
def test_plugin_install_is_refused_on_an_engine_that_crashes_on_digests(
        world: World, version: str) -> None:
    assert isinstance(world.engine, PluginEngine)
    world.engine.version = version
    assert "25.0.3" in refusal(world, "plugin", "install", PLUGIN)


def test_plugin_install_of_an_unsigned_plugin_is_refused(world: World) -> None:
    refusal(world, "plugin", "install", "--grant-all-permissions", BAD)


def test_plugin_install_of_an_image_that_is_no_plugin_is_refused(world: World) -> None:
    assert "not a docker plugin" in refusal(world, "plugin", "install", APP)


def test_an_image_command_refuses_a_plugin_manifest(world: World) -> None:
    assert "not an image" in refusal(world, "pull", PLUGIN)


def test_plugin_upgrade_verifies_the_remote(world: World) -> None:
    assert isinstance(world.engine, PluginEngine)
    world.engine.plugins["p"] = PLUGIN
    assert commands(world, "plugin", "upgrade", "p", PLUGIN) == (
        ("plugin", "upgrade", "p", f"{REG}/ns/plugin@{INDEX}", "--skip-remote-check"),)


def test_plugin_upgrade_without_remote_verifies_the_installed_reference(world: World) -> None:
    assert isinstance(world.engine, PluginEngine)
    world.engine.plugins["p"] = BAD
    refusal(world, "plugin", "upgrade", "p")


# --- buildx create (attack R2) --------------------------------------------------------------


def test_buildx_create_pins_the_driver_image(world: World) -> None:
    assert commands(world, "buildx", "create", "--driver-opt", f"image={BUILDKIT}",
                    "--name", "b") == (
        ("buildx", "create", "--driver-opt", f"image={BUILDKIT}", "--name", "b",
         "--driver-opt", f"image={REG}/moby/buildkit@{INDEX}"),)


def test_buildx_create_of_an_unsigned_driver_image_is_refused(world: World) -> None:
    refusal(world, "buildx", "create", "--driver", "docker-container", "--driver-opt",
            f"image={BAD}")


def test_buildx_create_with_the_default_image_verifies_buildkits(world: World) -> None:
    from safedocker.errors import SafeDockerError

    world.verifier.verdicts["docker.io/moby/buildkit:buildx-stable-1"] = SafeDockerError(
        "no signature")
    with pytest.raises(SafeDockerError):
        commands(world, "buildx", "create", "--name", "b")
    assert world.verifier.asked[0][0] == "docker.io/moby/buildkit:buildx-stable-1"


@pytest.mark.parametrize("driver", ["remote", "docker"])
def test_buildx_create_of_a_driver_without_an_image_passes(world: World, driver: str) -> None:
    argv = ("buildx", "create", "--driver", driver, "tcp://b:1234")
    assert commands(world, *argv) == (argv,)


def test_buildx_create_of_a_driver_safe_docker_does_not_know_is_refused(world: World) -> None:
    refusal(world, "buildx", "create", "--driver", "exotic")


# --- run/create --mount type=image (attack R3) ------------------------------------------------


def test_run_with_an_unsigned_image_mount_is_refused(world: World) -> None:
    refusal(world, "run", "--mount", f"type=image,source={BAD},target=/x", APP)


def test_run_with_a_signed_image_mount_mounts_the_digest(world: World) -> None:
    found = commands(world, "run", "--mount", f"TYPE=Image,source={APP},target=/x", APP)
    assert ("--mount", f"TYPE=Image,source={PINNED},target=/x") == found[-1][1:3]


def test_a_quoted_mount_source_is_read_as_docker_reads_csv(world: World) -> None:
    refusal(world, "create", "--mount", f'type=image,"source={BAD}",target=/x', APP)
