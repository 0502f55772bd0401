"""The gate under attack (issue 11 items 1 and 4, attack N3, issue 14's tag, warn and moved
tag), against the real dockerd and registry.

Every refusal is checked the same way: the documented exit code, one line on stderr, and
nothing of the image in docker afterwards (neither pulled nor a container), asked of
docker itself. Images carry a marker file so that what ran is known, not guessed.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.e2e.conftest import Result, SigningHome, safe_docker_command
from tests.world import BUSYBOX_APPLETS, BUSYBOX_CANDIDATES

if TYPE_CHECKING:
    from tests.world import World

pytestmark = pytest.mark.e2e

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"


@dataclass
class Home(SigningHome):
    """A home with key `k` required for REG/adv/* and `policy allow docker.io/library/*`."""


    def setarch_i686(self, *args: str, env: dict[str, str]) -> Result:
        """safe-docker run as a 32-bit x86 process: the client machine says i686."""
        proc = subprocess.run(["setarch", "i686", *safe_docker_command(), *args], env=env,
                              capture_output=True, text=True, timeout=300, check=False)
        return Result(proc.returncode, proc.stdout, proc.stderr)


@pytest.fixture(scope="module")
def sd(world: World, tmp_path_factory: pytest.TempPathFactory) -> Home:
    home = Home(world=world, home=tmp_path_factory.mktemp("sd-gate"))
    home.ok("keys", "generate", "k", "--dir", str(home.home / "keys"))
    home.ok("policy", "add", f"{world.registry}/adv/*", "--key", "k")
    home.ok("policy", "allow", "docker.io/library/*")
    return home


# --- images with markers, and indexes written by hand -----------------------------------------


def push_marked(world: World, name: str, marker: str) -> str:
    """Push a busybox image whose /marker says ``marker`` as REG/``name``; its digest."""
    busybox = next(p for p in BUSYBOX_CANDIDATES if Path(p).exists())
    reference = f"{world.registry}/{name}"
    with tempfile.TemporaryDirectory(dir=world.root) as tmp:
        root = Path(tmp) / "root"
        (root / "bin").mkdir(parents=True)
        shutil.copy2(busybox, root / "bin" / "busybox")
        for applet in BUSYBOX_APPLETS:
            (root / "bin" / applet).symlink_to("busybox")
        (root / "marker").write_text(marker + "\n")
        archive = Path(tmp) / "root.tar"
        subprocess.run(["tar", "-C", str(root), "-cf", str(archive), "."], check=True)
        world.run_docker("import", str(archive), reference)
    out = world.run_docker("push", reference).stdout.decode()
    world.run_docker("rmi", reference)
    return next(word for line in out.splitlines() if "digest:" in line
                for word in line.split() if word.startswith("sha256:"))


def manifest_size(world: World, repo: str, digest: str) -> int:
    request = urllib.request.Request(f"http://{world.registry}/v2/{repo}/manifests/{digest}",
                                     headers={"Accept": DOCKER_MANIFEST})
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - loopback
        return len(response.read())


def entry(world: World, repo: str, digest: str, os_name: str = "linux",
          arch: str = "amd64") -> dict[str, Any]:
    return {"mediaType": DOCKER_MANIFEST, "digest": digest,
            "size": manifest_size(world, repo, digest),
            "platform": {"architecture": arch, "os": os_name}}


def push_index(world: World, repo: str, tag: str, body: str) -> str:
    """PUT an index whose members are written exactly as ``body`` says; its digest."""
    raw = f'{{"schemaVersion":2,"mediaType":"{MANIFEST_LIST}",{body}}}'.encode()
    request = urllib.request.Request(
        f"http://{world.registry}/v2/{repo}/manifests/{tag}", data=raw, method="PUT",
        headers={"Content-Type": MANIFEST_LIST})
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - loopback
        return str(response.headers["Docker-Content-Digest"])


def children(world: World, repo: str, signed: str = "GOOD-CHILD",
             unsigned: str = "EVIL-CHILD") -> tuple[str, str]:
    """Two children in ``repo``: the first signed by the publisher, the second not."""
    return push_marked(world, f"{repo}:g", signed), push_marked(world, f"{repo}:b", unsigned)


# --- what docker has, asked of docker ---------------------------------------------------------


def containers(world: World) -> set[str]:
    out = world.run_docker("ps", "-a", "--no-trunc", "--format", "{{.ID}} {{.Image}}").stdout
    return set(out.decode().splitlines())


def image_id(world: World, reference: str) -> str | None:
    proc = world.run_docker("image", "inspect", "--format", "{{.Id}}", reference, check=False)
    return proc.stdout.decode().strip() if proc.returncode == 0 else None


def assert_refused(world: World, result: Result, *absent: str, code: int = 77,
                   why: str = "", before: set[str] | None = None) -> str:
    """The exit code, one line naming why, nothing on stdout, and none of ``absent`` in
    docker (nor a new container); returns the line."""
    assert result.exit_code == code, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("safe-docker: "), result.stderr
    assert why in lines[0], lines[0]
    assert result.stdout == ""
    for reference in absent:
        assert not world.has_image(reference), reference
    if before is not None:
        assert containers(world) == before
    return lines[0]


def run_marker(sd: Home, image: str, **env: str) -> Result:
    return sd("run", "--rm", "--network", "none", image, "cat", "/marker", env=env)


# --- N3: an index read one way by us and another way by docker --------------------------------


def test_index_whose_keys_differ_only_in_case_is_refused_and_nothing_is_pulled(
        world: World, sd: Home) -> None:
    repo = "adv/keycase"
    good, evil = children(world, repo)
    sd.sign(f"{world.registry}/{repo}@{good}")
    index = push_index(world, repo, "latest",
                       f'"manifests":[{json.dumps(entry(world, repo, good))}],'
                       f'"Manifests":[{json.dumps(entry(world, repo, evil))}]')
    before = containers(world)
    line = assert_refused(world, run_marker(sd, f"{world.registry}/{repo}:latest"),
                          f"{world.registry}/{repo}@{good}", f"{world.registry}/{repo}@{evil}",
                          f"{world.registry}/{repo}@{index}", f"{world.registry}/{repo}:latest",
                          why="malformed manifest", before=before)
    assert "same key to Go" in line


def test_index_with_only_a_differently_spelled_manifests_member_is_refused(
        world: World, sd: Home) -> None:
    repo = "adv/keyspelling"
    good, _ = children(world, repo)
    sd.sign(f"{world.registry}/{repo}@{good}")
    push_index(world, repo, "latest", f'"Manifests":[{json.dumps(entry(world, repo, good))}]')
    assert_refused(world, run_marker(sd, f"{world.registry}/{repo}:latest"),
                   f"{world.registry}/{repo}@{good}", why="'Manifests'")


# --- 11.1: the child docker runs is the child that was verified -------------------------------


def test_child_signature_pins_the_child_digest_so_docker_runs_what_was_verified(
        world: World, sd: Home) -> None:
    """Unsigned index [G linux/amd64 (signed), B {"os": "", amd64} (unsigned)]."""
    repo = "adv/emptyos-first-signed"
    good, evil = children(world, repo)
    sd.sign(f"{world.registry}/{repo}@{good}")
    push_index(world, repo, "latest",
               f'"manifests":[{json.dumps(entry(world, repo, good))},'
               f'{json.dumps(entry(world, repo, evil, os_name=""))}]')
    result = run_marker(sd, f"{world.registry}/{repo}:latest")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "GOOD-CHILD\n"
    container = sd.ok("create", "--network", "none", f"{world.registry}/{repo}:latest",
                      "true").stdout
    try:
        inspected = world.run_docker("inspect", "--format", "{{.Config.Image}}",
                                     container.strip()).stdout.decode().strip()
        assert inspected == f"{world.registry}/{repo}@{good}"
    finally:
        world.run_docker("rm", "-f", container.strip(), check=False)
    assert not world.has_image(f"{world.registry}/{repo}@{evil}")


def test_empty_os_child_first_is_the_daemons_pick_and_refused_when_unsigned(
        world: World, sd: Home) -> None:
    """The issue's index [B {"os": "", amd64}, G linux/amd64]: docker would run B."""
    repo = "adv/emptyos-first-unsigned"
    good, evil = children(world, repo)
    sd.sign(f"{world.registry}/{repo}@{good}")
    index = push_index(world, repo, "latest",
                       f'"manifests":[{json.dumps(entry(world, repo, evil, os_name=""))},'
                       f'{json.dumps(entry(world, repo, good))}]')
    before = containers(world)
    assert_refused(world, run_marker(sd, f"{world.registry}/{repo}:latest"),
                   f"{world.registry}/{repo}@{evil}", f"{world.registry}/{repo}@{good}",
                   f"{world.registry}/{repo}@{index}", why="no signature", before=before)


@pytest.fixture(scope="module")
def by_platform(world: World, sd: Home) -> tuple[str, str, str]:
    """An unsigned index [linux/386 → I386 (unsigned), linux/amd64 → AMD64 (signed)]."""
    repo = "adv/platform"
    amd64, i386 = children(world, repo, signed="AMD64-CHILD", unsigned="I386-CHILD")
    sd.sign(f"{world.registry}/{repo}@{amd64}")
    push_index(world, repo, "latest",
               f'"manifests":[{json.dumps(entry(world, repo, i386, arch="386"))},'
               f'{json.dumps(entry(world, repo, amd64))}]')
    return f"{world.registry}/{repo}", amd64, i386


def test_platform_is_the_daemons_not_the_i686_clients(
        world: World, sd: Home, by_platform: tuple[str, str, str]) -> None:
    repo, amd64, i386 = by_platform
    result = sd.setarch_i686("run", "--rm", "--network", "none", f"{repo}:latest",
                             "cat", "/marker", env=sd.env())
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "AMD64-CHILD\n"
    assert world.has_image(f"{repo}@{amd64}") and not world.has_image(f"{repo}@{i386}")


def test_platform_is_the_daemons_that_h_names(
        world: World, sd: Home, by_platform: tuple[str, str, str]) -> None:
    """No DOCKER_HOST: the daemon is the one -H names, and it is asked for its platform."""
    repo, _, i386 = by_platform
    env = {k: v for k, v in sd.env().items() if k != "DOCKER_HOST"}
    result = sd.setarch_i686("-H", world.docker_host, "run", "--rm", "--network", "none",
                             f"{repo}:latest", "cat", "/marker", env=env)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "AMD64-CHILD\n"
    assert not world.has_image(f"{repo}@{i386}")


def test_an_explicit_platform_still_wins_and_its_unsigned_child_is_refused(
        world: World, sd: Home, by_platform: tuple[str, str, str]) -> None:
    repo, _, i386 = by_platform
    result = sd("run", "--rm", "--platform", "linux/386", f"{repo}:latest", "true")
    assert_refused(world, result, f"{repo}@{i386}", why="no signature")
    with_env = sd("run", "--rm", f"{repo}:latest", "true",
                  env={"DOCKER_DEFAULT_PLATFORM": "linux/386"})
    assert_refused(world, with_env, f"{repo}@{i386}", why="no signature")


# --- 11.4: image IDs ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def local_unsigned(world: World) -> str:
    """An unsigned image docker has locally (by ID and a library name the policy allows)."""
    world.make_local_image("docker.io/library/adv-unsigned:latest")
    found = image_id(world, "docker.io/library/adv-unsigned:latest")
    assert found is not None
    return found


@pytest.mark.parametrize("form", ["sha256", "hex64", "short"])
def test_an_unsigned_local_image_named_by_id_is_refused_under_an_allow_rule(
        world: World, sd: Home, local_unsigned: str, form: str) -> None:
    hexid = local_unsigned.removeprefix("sha256:")
    text = {"sha256": local_unsigned, "hex64": hexid, "short": hexid[:12]}[form]
    before = containers(world)
    line = assert_refused(world, sd("run", "--rm", "--network", "none", text, "true"),
                          why="not the image of any reference verified", before=before)
    assert "run it by name" in line


def test_a_verified_image_runs_by_its_id(world: World, sd: Home) -> None:
    tagged = f"{world.registry}/adv/byid:v1"
    digest = push_marked(world, "adv/byid:v1", "BY-ID")
    sd.sign(tagged)
    sd.ok("pull", tagged)
    found = image_id(world, tagged)
    assert found is not None and world.has_image(f"{world.registry}/adv/byid@{digest}")
    for text in (found, found.removeprefix("sha256:")[:12]):
        result = sd.ok("run", "--rm", "--network", "none", text, "cat", "/marker")
        assert result.stdout == "BY-ID\n"


# --- issue 14: run/create leave the tag, warn pins, a moved tag is named ----------------------


def dangling(world: World) -> set[str]:
    out = world.run_docker("images", "-q", "--no-trunc", "--filter", "dangling=true").stdout
    return set(out.decode().split())


@pytest.mark.parametrize("command", ["run", "create"])
def test_run_and_create_leave_the_verified_image_tagged_not_dangling(
        world: World, sd: Home, command: str) -> None:
    tagged = f"{world.registry}/adv/tagged-{command}:v1"
    digest = push_marked(world, f"adv/tagged-{command}:v1", "TAGGED")
    sd.sign(tagged)
    assert not world.has_image(tagged)
    if command == "run":
        result = run_marker(sd, tagged)
        assert result.exit_code == 0, result.stderr
        assert result.stdout == "TAGGED\n"  # the pull's progress went to stderr
    else:
        result = sd.ok("create", "--network", "none", tagged, "true")
        assert len(result.stdout.strip()) == 64  # the container ID alone
        world.run_docker("rm", "-f", result.stdout.strip())
    pinned_id = image_id(world, f"{world.registry}/adv/tagged-{command}@{digest}")
    assert pinned_id is not None and image_id(world, tagged) == pinned_id
    assert pinned_id not in dangling(world)


def test_warn_mode_pins_the_digest_it_resolved_and_prints_one_line(
        world: World, sd: Home) -> None:
    tagged = f"{world.registry}/adv/warned:v1"
    digest = push_marked(world, "adv/warned:v1", "WARNED")
    result = sd("create", "--network", "none", tagged, "true",
                env={"SAFE_DOCKER_MODE": "warn"})
    assert result.exit_code == 0, result.stderr
    ours = [line for line in result.stderr.splitlines() if line.startswith("safe-docker")]
    assert len(ours) == 1, result.stderr
    assert ours[0].startswith(f"safe-docker: warning: refused {tagged} \u2014 ")
    assert ours[0].endswith(" (continuing: mode = warn)") and "no signature" in ours[0]
    container = result.stdout.strip()
    try:
        image = world.run_docker("inspect", "--format", "{{.Config.Image}}", container)
        assert image.stdout.decode().strip() == f"{world.registry}/adv/warned@{digest}"
    finally:
        world.run_docker("rm", "-f", container, check=False)
    assert image_id(world, tagged) is not None


def test_a_refusal_after_the_tag_moved_names_the_verified_digest_and_when(
        world: World, sd: Home) -> None:
    tagged = f"{world.registry}/adv/moved:v1"
    verified = push_marked(world, "adv/moved:v1", "FIRST")
    sd.sign(tagged)
    assert run_marker(sd, tagged).stdout == "FIRST\n"
    moved = push_marked(world, "adv/moved:v1", "SECOND")  # the tag now names an unsigned image
    line = assert_refused(world, run_marker(sd, tagged),
                          f"{world.registry}/adv/moved@{moved}", why="moved")
    assert f"{world.registry}/adv/moved:v1 moved: it was {verified} when verified " in line
    assert f"{world.registry}/adv/moved@{verified}" in line  # the hint: what was verified

