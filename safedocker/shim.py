"""Entry point of ``safe-docker``: standard library only, and nothing imports it.

This module runs on every docker call, so it decides with pure functions
(:mod:`safedocker._docker.route`) whether argv is an intercepted command (pull/run/create),
one of safe-docker's own commands, or anything else; anything else is ``os.execv`` of the
real docker with argv unchanged. Heavy modules are imported only past that decision.
SAFE_DOCKER_MODE=off skips verification here only when no system policy exists at the
default location (a locked one must not be escaped by a variable).
"""

from __future__ import annotations

import sys
from typing import NoReturn

from safedocker._docker.binary import exec_docker
from safedocker._docker.route import Route, classify
from safedocker._internal import environment

_BUILD_WORDS = frozenset({"build", "image", "builder", "buildx"})


def _is_build(argv: list[str]) -> bool:
    """``build``, ``image build``, ``builder build``, ``buildx build`` (a cheap look first:
    the build grammar is imported only for those words). The routing table replaces this."""
    from safedocker._docker.argv import split_globals

    index = split_globals(argv).command_index
    if index >= len(argv) or argv[index] not in _BUILD_WORDS:
        return False
    from safedocker.build.argv import find_build_command

    return find_build_command(argv) is not None


def main() -> NoReturn:
    argv = sys.argv[1:]
    route = classify(argv)
    if route is Route.PASSTHROUGH and _is_build(argv) and not (
        environment.mode() == "off" and not environment.system_policy_present()
    ):
        from safedocker.gate.build import run as run_build  # verification of every image

        run_build(argv)
    if route is Route.PASSTHROUGH or (
        route is Route.INTERCEPT and environment.mode() == "off"
        # A system file may lock the mode: then the config
        # decides (and says that the lock won). Without one, off costs one stat.
        and not environment.system_policy_present()
    ):
        exec_docker(argv)
    if route is Route.INTERCEPT:
        from safedocker.gate.warm import answer  # the verdict cache: standard library only

        answer(argv)  # returns on a miss
        from safedocker.gate.intercept import run  # verification: no typer on this path

        run(argv)
    if route is Route.OWN and argv[:1] == ["verify"]:
        from safedocker.gate.warm import answer_verify

        answer_verify(argv)  # the verdict cache; returns on a miss
    from safedocker.cli import main as cli_main  # heavy imports start here

    cli_main(route.value, argv)
