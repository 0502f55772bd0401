"""``buildx create``: the BuildKit image a builder runs (attack R2).

The ``docker-container`` driver (buildx's default) pulls a BuildKit image and runs it as
a privileged container; the ``kubernetes`` driver deploys it to a cluster (and, with
``qemu.install=true``, a binfmt image too). The image is ``--driver-opt image=…``, else
buildx's default (driver/bkimage in docker/buildx v0.29.1). Each is decided by the gate,
and docker is handed one more ``--driver-opt image=repo@sha256:…`` after the user's
(buildx keeps the last value of a key). ``remote`` connects to a BuildKit already running
and ``docker`` uses the daemon's own: no image, nothing to verify. A driver safe-docker
does not know is refused in enforce mode. ``--leave`` removes a node: it passes.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from safedocker._docker.argv import parse_bool
from safedocker._docker.grammar import (
    BUILDX_CREATE,
    csv_join,
    driver_opts,
    insert_options,
    parse_command,
)
from safedocker.errors import Refused
from safedocker.gate.decide import ImageRequest, Origin, Outcome
from safedocker.gate.handoff import Plan

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from safedocker._docker.commands import Found
    from safedocker.gate.decide import Gate

DEFAULT_IMAGE = "moby/buildkit:buildx-stable-1"
DEFAULT_ROOTLESS_IMAGE = DEFAULT_IMAGE + "-rootless"
QEMU_IMAGE = "tonistiigi/binfmt:latest"
IMAGE_DRIVERS = frozenset({"docker-container", "kubernetes"})
NO_IMAGE_DRIVERS = frozenset({"remote", "docker"})


def builder_images(driver: str, opts: Mapping[str, str]) -> list[tuple[str, str]]:
    """(driver option, image) for each image the builder will run."""
    if driver == "kubernetes" and parse_bool(opts.get("rootless", "false")):
        default = DEFAULT_ROOTLESS_IMAGE
    else:
        default = DEFAULT_IMAGE
    images = [("image", opts.get("image") or default)]
    if driver == "kubernetes" and parse_bool(opts.get("qemu.install", "false")):
        images.append(("qemu.image", opts.get("qemu.image") or QEMU_IMAGE))
    return images


def plan_buildx_create(argv: Sequence[str], found: Found, gate: Callable[[], Gate], *,
                       environ: Mapping[str, str] | None = None) -> Plan:
    """The docker command for ``buildx create``; raises to refuse."""
    env = os.environ if environ is None else environ
    command = parse_command(argv, found, BUILDX_CREATE)
    unchanged = Plan((tuple(argv),))
    if command.help or command.flag("leave"):
        return unchanged
    driver = command.value("driver") or ""
    if not driver:
        # buildx: an existing builder's driver (appending), BUILDKIT_HOST → remote, else
        # the default factory: docker-container. An existing remote builder refuses the
        # image option we add, so a wrong guess fails closed.
        endpoint = command.positional(0)
        driver = "remote" if env.get("BUILDKIT_HOST") and not endpoint else "docker-container"
    if driver in NO_IMAGE_DRIVERS:
        return unchanged
    if driver not in IMAGE_DRIVERS:
        gate().refuse(argv, Refused(
            f"refused docker buildx create --driver {driver}",
            why="safe-docker does not know which images this driver runs",
            hint="use the docker-container or kubernetes driver"))
        return unchanged
    opts = driver_opts([o.value or "" for o in command.values("driver-opt")])
    origin = Origin.CREATE if driver == "docker-container" else Origin.PULL
    images = builder_images(driver, opts)
    requests = [ImageRequest.parse(image, command=argv, origin=origin,
                                   label=f"buildx driver {key}")
                for key, image in images]
    admissions = gate().admit_all(requests)
    if any(a.outcome is Outcome.UNCHECKED for a in admissions):
        return unchanged
    extra = [token for (key, _), admission in zip(images, admissions, strict=True)
             for token in ("--driver-opt", csv_join([f"{key}={admission.target}"]))]
    return Plan((tuple(insert_options(argv, command, extra)),))
