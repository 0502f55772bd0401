"""`docker save` and `docker load` keep docker's meaning behind safe-docker (issue 14,
attack N10): through the real docker CLI with `eval "$(safe-docker shell-init bash)"` and
with a plain `alias docker=safe-docker`, each spelling prints, exits and leaves docker's
images exactly as the real docker does."""

from __future__ import annotations

import hashlib
import os
import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.e2e.conftest import SafeDocker, safe_docker_command

if TYPE_CHECKING:
    from tests.world import World

WAYS = ("real", "shell-init", "alias")


@dataclass(frozen=True)
class Outcome:
    exit_code: int
    stdout: str
    stderr: str
    files: dict[str, str]  # name → sha256 of what the script wrote
    image_id: str  # what docker has under the image's name afterwards ("" if none)


@pytest.fixture(scope="module")
def home(world: World, tmp_path_factory: pytest.TempPathFactory) -> SafeDocker:
    return SafeDocker(world=world, home=tmp_path_factory.mktemp("sd-save-load"))


@dataclass(frozen=True)
class Local:
    ref: str
    saved: Path  # the real docker's save of it, to start every way from the same docker


@pytest.fixture(scope="module")
def image(world: World, tmp_path_factory: pytest.TempPathFactory) -> Local:
    ref = world.make_local_image("saveload/app:v1")
    saved = tmp_path_factory.mktemp("saveload") / "baseline.tar"
    world.run_docker("save", "-o", str(saved), ref)
    return Local(ref, saved)


def run_as(way: str, home: SafeDocker, script: str, workdir: Path, image: Local) -> Outcome:
    """``script`` in bash, where `docker` is the real docker, the shell function, or the
    alias; each way starts with the same image in docker."""
    home.world.run_docker("load", "-i", str(image.saved))
    init = workdir / "init.bash"
    init.write_text(home("shell-init", "bash").stdout)
    prelude = {
        "real": "",
        "shell-init": f'eval "$(cat {shlex.quote(str(init))})"\n',
        # Aliases apply from the next line on, in a non-interactive shell only when asked.
        "alias": "shopt -s expand_aliases\nalias docker=safe-docker\n",
    }[way]
    env = home.env()
    env["PATH"] = os.pathsep.join([str(Path(safe_docker_command()[0]).parent),
                                   str(Path(home.world.docker).parent), "/usr/bin", "/bin"])
    proc = subprocess.run(["bash", "--norc", "--noprofile", "-c", prelude + script],
                          cwd=workdir, env=env, capture_output=True, text=True, timeout=300)
    files = {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
             for p in sorted(workdir.glob("*.tar"))}
    inspect = home.world.run_docker("image", "inspect", "--format", "{{.Id}}", image.ref,
                                    check=False)
    return Outcome(proc.returncode, proc.stdout, proc.stderr, files,
                   inspect.stdout.decode().strip())


SCRIPT = """\
type -t docker
docker save {image} > stdout.tar; echo "save > file: $?"
docker image save -o image-save.tar {image}; echo "image save -o: $?"
docker rmi {image} >/dev/null
docker load -i stdout.tar; echo "load -i: $?"
docker rmi {image} >/dev/null
docker load < stdout.tar; echo "load <: $?"
docker rmi {image} >/dev/null
docker -D image load --input image-save.tar 2>/dev/null; echo "-D image load: $?"
docker load -i missing.tar; echo "load missing: $?"
docker save; echo "save nothing: $?"
"""


def test_save_and_load_behave_exactly_as_the_real_dockers(home: SafeDocker, image: Local,
                                                          tmp_path: Path) -> None:
    outcomes = {}
    for way in WAYS:
        workdir = tmp_path / way
        workdir.mkdir()
        outcomes[way] = run_as(way, home, SCRIPT.format(image=image.ref), workdir, image)
    real = outcomes["real"]
    assert "save > file: 0" in real.stdout and "load <: 0" in real.stdout, real
    assert "-D image load: 0" in real.stdout and "load missing: 1" in real.stdout, real
    assert f"Loaded image: {image.ref}" in real.stdout
    assert real.image_id.startswith("sha256:")
    assert real.files["stdout.tar"] == real.files["image-save.tar"]  # docker's own bytes
    for way in ("shell-init", "alias"):
        got = outcomes[way]
        first, rest = got.stdout.split("\n", 1)
        assert first == ("function" if way == "shell-init" else "alias"), got.stdout
        assert rest == real.stdout.split("\n", 1)[1], (way, got.stdout, real.stdout)
        assert got.stderr == real.stderr, (way, got.stderr, real.stderr)
        assert got.exit_code == real.exit_code
        assert got.files == real.files, way
        assert got.image_id == real.image_id, way


def test_airgap_commands_still_reach_safe_docker_through_both_ways(
        home: SafeDocker, image: Local, tmp_path: Path) -> None:
    for way in ("shell-init", "alias"):
        workdir = tmp_path / way
        workdir.mkdir()
        result = run_as(way, home, "docker airgap load -i missing.tar; echo \"rc=$?\"",
                        workdir, image)
        assert result.stdout.strip() == "rc=2", (way, result.stdout)
        assert result.stderr.startswith("safe-docker: cannot read"), (way, result.stderr)
