"""Helpers for the build tests: a home whose key `k` signs REG/build/*, images with markers,
and what docker has afterwards, asked of docker itself."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from tests.e2e.conftest import Result, SigningHome
from tests.world import BUSYBOX_APPLETS, BUSYBOX_CANDIDATES

if TYPE_CHECKING:
    from tests.world import World

LEGACY = {"DOCKER_BUILDKIT": "0"}  # docker 20.10's daemon: the legacy builder


@dataclass
class BuildHome(SigningHome):
    """A home with key `k` required for REG/build/* (and nothing else allowed)."""


    def build(self, context: Path, *args: str, tag: str = "", stdin: str | None = None,
              **env: str) -> Result:
        """`safe-docker build` with the legacy builder, no network in RUN steps."""
        tagging = ("-t", tag) if tag else ()
        where = () if args[-1:] == ("-",) else (str(context),)
        return self("build", "--network", "none", *tagging, *args, *where,
                    env={**LEGACY, **env}, input=stdin)


def make_home(world: World, home: Path) -> BuildHome:
    sd = BuildHome(world=world, home=home)
    sd.ok("keys", "generate", "k", "--dir", str(home / "keys"))
    sd.ok("policy", "add", f"{world.registry}/build/*", "--key", "k")
    return sd


def marked_image(world: World, reference: str, marker: str) -> None:
    """A local busybox image whose /marker says ``marker``, as ``reference``."""
    busybox = next(p for p in BUSYBOX_CANDIDATES if Path(p).exists())
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


def push_marked(world: World, name: str, marker: str) -> str:
    """Push a busybox image whose /marker says ``marker`` as REG/``name``; its digest. The
    local copy is removed, so a build has to pull it."""
    reference = f"{world.registry}/{name}"
    marked_image(world, reference, marker)
    out = world.run_docker("push", reference).stdout.decode()
    world.run_docker("rmi", reference)
    return next(word for line in out.splitlines() if "digest:" in line
                for word in line.split() if word.startswith("sha256:"))


def images(world: World) -> set[str]:
    """Every image docker has (IDs), and every container."""
    out = world.run_docker("images", "-a", "-q", "--no-trunc").stdout.decode()
    ps = world.run_docker("ps", "-a", "-q", "--no-trunc").stdout.decode()
    return set(out.split()) | {f"container {c}" for c in ps.split()}


def marker_of(world: World, image: str) -> str:
    out = world.run_docker("run", "--rm", "--network", "none", image, "cat", "/marker")
    return out.stdout.decode().strip()


def repo_pulled(world: World, repo: str) -> bool:
    """Whether docker has any image of ``repo`` (by tag or by digest)."""
    out = world.run_docker("images", "--digests", "--format", "{{.Repository}}").stdout
    return repo in out.decode().split()
