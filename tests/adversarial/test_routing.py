"""Routing under attack (N1 swarm services, N2 plugins, R3 image mounts, N10 load
spellings, unknown words), against the real dockerd and registry.

Each refusal: the documented exit code, one line, and nothing created in docker (no
service, task, container, plugin, image), asked of docker itself.
"""

from __future__ import annotations

import json
import random
import shutil
import socket
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.adversarial.test_gate import Home, assert_refused, containers
from tests.e2e.conftest import SafeDocker
from tests.world import BUSYBOX_APPLETS, BUSYBOX_CANDIDATES

if TYPE_CHECKING:
    from collections.abc import Iterator

    from tests.world import Image, World

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def sd(world: World, tmp_path_factory: pytest.TempPathFactory) -> Home:
    home = Home(world=world, home=tmp_path_factory.mktemp("sd-routing"))
    home.ok("keys", "generate", "k", "--dir", str(home.home / "keys"))
    home.ok("policy", "add", f"{world.registry}/adv/*", "--key", "k")
    return home


@pytest.fixture(scope="module")
def signed(world: World, sd: Home) -> Image:
    image = world.push_image("adv/route-signed")
    sd.sign(image.pinned)
    return image


@pytest.fixture(scope="module")
def unsigned(world: World) -> Image:
    return world.push_image("adv/route-unsigned")


# --- N1: swarm services ----------------------------------------------------------------------


def _free_port(kind: socket.SocketKind = socket.SOCK_STREAM) -> int:
    """A free port swarm accepts: its data path port must lie in 1024-49151, and the
    kernel's ephemeral range (where bind(0) picks) is mostly above it."""
    rng = random.SystemRandom()
    for _ in range(200):
        port = rng.randint(20000, 49151)
        with socket.socket(socket.AF_INET, kind) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port in 20000-49151")


@pytest.fixture(scope="module")
def swarm(world: World) -> Iterator[None]:
    # Ports of its own: a second test world (another xdist worker, another run on this
    # host) may hold swarm's default 2377/4789.
    port, data_port = _free_port(), _free_port(socket.SOCK_DGRAM)  # VXLAN is UDP
    init = world.run_docker("swarm", "init", "--advertise-addr", f"127.0.0.1:{port}",
                            "--listen-addr", f"127.0.0.1:{port}",
                            "--data-path-port", str(data_port), check=False)
    if init.returncode != 0:
        pytest.skip(f"the test dockerd cannot start a swarm: {init.stderr.decode()[:200]}")
    try:
        yield
    finally:
        world.run_docker("swarm", "leave", "--force", check=False)


def services(world: World) -> list[str]:
    return world.run_docker("service", "ls", "-q").stdout.decode().split()


def service_image(world: World, name: str) -> str:
    return world.run_docker("service", "inspect", "--format",
                            "{{.Spec.TaskTemplate.ContainerSpec.Image}}", name
                            ).stdout.decode().strip()


def test_service_create_of_an_unsigned_image_is_refused_and_nothing_is_scheduled(
        world: World, sd: Home, unsigned: Image, swarm: None) -> None:
    before = containers(world)
    for extra in ((), ("--no-resolve-image",)):
        result = sd("service", "create", "--detach", *extra, "--name", "evil", unsigned.tagged)
        assert_refused(world, result, unsigned.tagged, unsigned.pinned, before=before)
    assert services(world) == []


def test_service_create_of_a_signed_image_runs_the_verified_digest(
        world: World, sd: Home, signed: Image, unsigned: Image, swarm: None) -> None:
    result = sd("service", "create", "--detach", "--name", "good", signed.tagged, "sleep", "60")
    try:
        assert result.exit_code == 0, result.stderr
        assert service_image(world, "good") == signed.pinned
        # service update --image: the unsigned image is refused, the service keeps its own.
        refused = sd("service", "update", "--detach", "--image", unsigned.tagged, "good")
        assert_refused(world, refused, unsigned.tagged, unsigned.pinned)
        assert service_image(world, "good") == signed.pinned
        assert not [c for c in containers(world) if unsigned.repo in c]
    finally:
        world.run_docker("service", "rm", "good", check=False)


# --- N2: plugins ------------------------------------------------------------------------------


def make_plugin(world: World, plugin: str, source: Path, out: Path) -> str:
    """Push a plugin (busybox whose entrypoint writes /marker to ``out``); its digest."""
    plugin_source(source, out)
    made = world.run_docker("plugin", "create", plugin, str(source), check=False)
    if made.returncode != 0:
        pytest.skip(f"the test dockerd cannot create plugins: {made.stderr.decode()[:200]}")
    world.run_docker("plugin", "push", plugin)
    world.run_docker("plugin", "rm", "-f", plugin)
    repo, _, tag = plugin.removeprefix(f"{world.registry}/").rpartition(":")
    request = urllib.request.Request(
        f"http://{world.registry}/v2/{repo}/manifests/{tag}", method="HEAD",
        headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"})
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - loopback
        return str(response.headers["Docker-Content-Digest"])


def plugin_source(source: Path, out: Path) -> None:
    """A plugin's rootfs and config.json: busybox whose entrypoint writes /marker to ``out``."""
    (source / "rootfs" / "bin").mkdir(parents=True)
    busybox = next(p for p in BUSYBOX_CANDIDATES if Path(p).exists())
    shutil.copy2(busybox, source / "rootfs" / "bin" / "busybox")
    for applet in BUSYBOX_APPLETS:
        (source / "rootfs" / "bin" / applet).symlink_to("busybox")
    (source / "rootfs" / "marker").write_text("EVIL-PLUGIN\n")
    (source / "config.json").write_text(json.dumps({
        "description": "unsigned", "documentation": "https://example.invalid",
        "entrypoint": ["/bin/sh", "-c", "cat /marker > /out/ran; sleep 5"],
        "interface": {"types": ["docker.volumedriver/1.0"], "socket": "x.sock"},
        "network": {"type": "host"},
        "mounts": [{"source": str(out), "destination": "/out", "type": "bind",
                    "options": ["rbind", "rw"]}]}))


def plugins(world: World) -> list[str]:
    return world.run_docker("plugin", "ls", "--format", "{{.Name}}").stdout.decode().split()


def test_plugin_install_of_an_unsigned_plugin_is_refused_and_nothing_runs(
        world: World, sd: Home, tmp_path: Path) -> None:
    plugin = f"{world.registry}/adv/evilplugin:v1"
    out = tmp_path / "out"
    out.mkdir()
    make_plugin(world, plugin, tmp_path / "plugin", out)
    try:
        result = sd("plugin", "install", "--grant-all-permissions", plugin, timeout=120)
        assert_refused(world, result)
        assert plugins(world) == []
        assert not (out / "ran").exists()
    finally:
        world.run_docker("plugin", "rm", "-f", plugin, check=False)


def test_plugin_create_from_a_local_rootfs_is_refused_and_nothing_can_be_enabled(
        world: World, sd: Home, tmp_path: Path) -> None:
    """`plugin create` makes a plugin of any local directory, and `plugin enable` (docker's
    `start` of a plugin) runs it as root with the host mounts its config.json asks for:
    nothing was verified, so it is not created."""
    out = tmp_path / "out"
    out.mkdir()
    plugin_source(tmp_path / "plugin", out)
    try:
        for spelling in (("plugin", "create"), ("-D", "plugin", "create")):
            result = sd(*spelling, "adv-local-plugin", str(tmp_path / "plugin"))
            assert_refused(world, result)
            assert plugins(world) == []
        enabled = sd("plugin", "enable", "adv-local-plugin")
        assert enabled.exit_code != 0
        assert not (out / "ran").exists()
    finally:
        world.run_docker("plugin", "rm", "-f", "adv-local-plugin", check=False)


def _engine_version(world: World) -> tuple[int, ...]:
    text = world.run_docker("version", "--format", "{{.Server.Version}}").stdout.decode()
    return tuple(int(n) for n in text.strip().split("+")[0].split("-")[0].split(".")[:3])


def test_plugin_install_of_a_signed_plugin_installs_the_verified_digest(
        world: World, sd: Home, tmp_path: Path) -> None:
    plugin = f"{world.registry}/adv/goodplugin:v1"
    out = tmp_path / "out"
    out.mkdir()
    digest = make_plugin(world, plugin, tmp_path / "plugin", out)
    sd.sign(f"{world.registry}/adv/goodplugin@{digest}")
    try:
        result = sd("plugin", "install", "--disable", "--grant-all-permissions", plugin,
                    timeout=120)
        if _engine_version(world) < (25, 0, 3):
            # This engine panics on a plugin pulled by digest (moby#47299): refused before
            # docker is asked, and the daemon is still up.
            assert "25.0.3" in assert_refused(world, result)
            assert plugins(world) == []
            return
        assert result.exit_code == 0, result.stderr
        assert plugins(world) == [plugin]
        reference = world.run_docker("plugin", "inspect", "--format", "{{.PluginReference}}",
                                     plugin).stdout.decode().strip()
        assert digest in reference, reference
    finally:
        world.run_docker("plugin", "rm", "-f", plugin, check=False)


# --- R3: run/create --mount type=image --------------------------------------------------------


def test_an_unsigned_image_mount_is_refused_before_anything_is_pulled(
        world: World, sd: Home, signed: Image, unsigned: Image) -> None:
    for command in ("run", "create"):
        result = sd(command, "--mount", f"type=image,source={unsigned.tagged},target=/m",
                    signed.tagged, "true")
        assert_refused(world, result, unsigned.tagged, unsigned.pinned)
        assert not [c for c in containers(world) if unsigned.repo in c]


# --- unknown words, passthrough ---------------------------------------------------------------


def _cli_plugin(config: Path, marker: Path) -> None:
    """A docker CLI plugin `hello` (docker-hello) that writes ``marker`` when it runs."""
    plugins = config / "cli-plugins"
    plugins.mkdir(parents=True)
    script = plugins / "docker-hello"
    metadata = json.dumps({"SchemaVersion": "0.1.0", "Vendor": "test", "Version": "1",
                           "ShortDescription": "says hello"})
    script.write_text("#!/bin/sh\n"
                      f"if [ \"$1\" = docker-cli-plugin-metadata ]; then echo '{metadata}'; "
                      "exit 0; fi\n"
                      f"echo HELLO-RAN > '{marker}'\necho hello\n")
    script.chmod(0o755)


def test_an_unknown_command_is_refused_unless_passthrough_names_it(
        world: World, tmp_path: Path) -> None:
    home = SafeDocker(world=world, home=tmp_path / "sd")
    config, marker = tmp_path / "docker-config", tmp_path / "ran"
    _cli_plugin(config, marker)
    env = {"DOCKER_CONFIG": str(config)}
    result = home("hello", "world", env=env)
    line = assert_refused(world, result)
    assert 'passthrough = ["hello"]' in line
    assert not marker.exists()
    home.config_dir.mkdir(parents=True)
    (home.config_dir / "config.toml").write_text('passthrough = ["hello"]\n')
    allowed = home("hello", "world", env=env)
    assert (allowed.exit_code, allowed.stdout) == (0, "hello\n"), allowed.stderr
    assert marker.read_text() == "HELLO-RAN\n"


# --- N10: every spelling of load is docker's load ---------------------------------------------


@pytest.mark.parametrize("spelling", [("load",), ("-D", "load"), ("image", "load"),
                                      ("--log-level", "info", "image", "load")])
def test_every_spelling_of_load_is_docker_load(world: World, tmp_path: Path,
                                               spelling: tuple[str, ...]) -> None:
    name = "route-n10:v1"
    world.make_local_image(name)
    archive = tmp_path / "image.tar"
    world.run_docker("save", "-o", str(archive), name)
    world.remove_images(name)
    home = SafeDocker(world=world, home=tmp_path / "sd")
    try:
        result = home(*spelling, "-i", str(archive))
        assert result.exit_code == 0, result.stderr
        assert world.has_image(name)
    finally:
        world.remove_images(name)



# --- help turned off again (attack round 4) -----------------------------------------------------


def test_a_help_flag_turned_off_again_is_no_help_form_and_the_raw_pipe_is_refused(
        world: World, sd: Home) -> None:
    """pflag keeps the last value: docker runs `system dial-stdio --help --help=false`."""
    for spelling in (("--help", "--help=false"), ("-h", "-h=0")):
        result = sd("system", "dial-stdio", *spelling)
        assert_refused(world, result, why="raw connection")
