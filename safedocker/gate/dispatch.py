"""Every docker command the router sends to the gate: found in docker's command tree
(:mod:`safedocker._docker.commands`), then planned by the path that knows its grammar.

* VERIFY: ``run``/``create``/``pull`` (gate/intercept.py), ``service create|update``
  (gate/service.py), ``plugin install|upgrade`` (gate/plugins.py), ``buildx create``
  (gate/buildx.py), builds (gate/build.py); ``stack deploy|up``
  (gate/stack.py).
* REFUSE (``buildx bake``…) and UNKNOWN (a CLI plugin, a newer docker's word): refused
  in enforce mode, one warning line in warn mode, nothing with mode = off. A plugin the
  config's ``passthrough`` list names goes to docker unchanged.

Help forms (``docker service create --help``) go to docker: they print usage and run
nothing. Each path returns a :class:`Plan`; nothing here decides about an image itself.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NoReturn

from safedocker._docker.commands import Found, Kind, lookup
from safedocker.errors import Refused
from safedocker.gate.handoff import Plan

if TYPE_CHECKING:
    from collections.abc import Sequence

    from safedocker.gate.decide import Gate
    from safedocker.policy.config import Config
    from safedocker.policy.paths import Paths

HELP_FLAGS = frozenset({"--help", "-h", "--help=true"})
# The words of run/create/pull, handled by gate/intercept.py.
_INTERCEPT = frozenset({("run",), ("create",), ("pull",), ("container", "run"),
                        ("container", "create"), ("image", "pull")})
_BUILD = frozenset({("build",), ("image", "build"), ("builder", "build"), ("buildx", "build"),
                    ("buildx", "b")})
_STACK = frozenset({("stack", "deploy"), ("stack", "up")})


class Opener:
    """Opens the gate for one command only when a decision is needed (and once)."""

    def __init__(self, argv: Sequence[str], config: Config | None, where: Paths | None,
                 gate: Gate | None) -> None:
        self.argv, self.config, self.where, self._gate = argv, config, where, gate
        self.given = gate  # a gate the caller brought (tests), else None

    def __call__(self) -> Gate:
        if self._gate is None:
            self._gate = open_gate(self.argv, config=self.config, where=self.where)
        return self._gate


def open_gate(argv: Sequence[str], *, config: Config | None = None,
              where: Paths | None = None) -> Gate:
    """The gate for a docker command: the daemon its -H/--context names, its --config."""
    from safedocker._docker.argv import global_options
    from safedocker._docker.binary import real_docker
    from safedocker._docker.engine import DockerCLI
    from safedocker.gate.decide import Gate

    given = [o.value for o in global_options(argv) if o.name == "--config"]
    engine = DockerCLI.for_command(real_docker(), argv)
    return Gate.open(engine, config=config, where=where,
                     docker_config=given[-1] if given else None)


def plan(argv: Sequence[str], *, config: Config | None = None, where: Paths | None = None,
         gate: Gate | None = None) -> Plan:
    """The docker commands for ``argv``; raises :class:`SafeDockerError` to refuse."""
    found = lookup(argv)
    opener = Opener(argv, config, where, gate)
    unchanged = Plan((tuple(argv),))
    match found.kind:
        case Kind.PASS:
            return unchanged
        case Kind.VERIFY:
            return _verify(argv, found, opener, config=config, where=where)
        case Kind.REFUSE:
            if _asks_help(argv, found):
                return unchanged
            opener().refuse(argv, _cannot_verify(found))
            return unchanged
        case Kind.UNKNOWN:
            if _asks_help(argv, found) and not found.note:
                return unchanged
            gate_ = opener()
            if found.plugin and found.plugin in gate_.config.passthrough:
                return unchanged
            gate_.refuse(argv, _unknown(found))
            return unchanged


def _verify(argv: Sequence[str], found: Found, opener: Opener, *, config: Config | None,
            where: Paths | None) -> Plan:
    words = found.words
    if words in _INTERCEPT:
        from safedocker.gate.intercept import plan_intercept

        return plan_intercept(argv, config=config, where=where, gate=opener.given).plan
    if words[0] == "service":
        from safedocker.gate.service import plan_service

        return plan_service(argv, found, opener)
    if words[0] == "plugin":
        from safedocker.gate.plugins import plan_plugin

        return plan_plugin(argv, found, opener)
    if words == ("buildx", "create"):
        from safedocker.gate.buildx import plan_buildx_create

        return plan_buildx_create(argv, found, opener)
    if words in _BUILD:
        from safedocker.gate.build import plan_build

        return plan_build(argv, config=config, where=where, gate=opener.given)
    if words in _STACK:
        if _asks_help(argv, found):
            return Plan((tuple(argv),))
        from safedocker.gate.stack import plan_stack

        return plan_stack(argv, config=config, where=where, gate=opener.given)
    raise AssertionError(f"no planner for {' '.join(words)}")  # the table names only these


def _asks_help(argv: Sequence[str], found: Found) -> bool:
    """The first word after the command is its help flag (a bool: it takes no value, so it
    cannot be another option's), so docker prints usage and runs nothing; unless a later
    word may set help again (pflag keeps the last value: `--help --help=false` runs)."""
    if found.end >= len(argv) or argv[found.end] not in HELP_FLAGS:
        return False
    for word in argv[found.end + 1:]:
        if word == "--":
            break
        if word.startswith("--help") or (
                word.startswith("-") and not word.startswith("--") and "h" in word):
            return False
    return True


def _spelled(found: Found) -> str:
    return "docker " + " ".join(found.words)


def _cannot_verify(found: Found) -> Refused:
    if found.words[-1:] == ("dial-stdio",):
        return Refused(f"refused {_spelled(found)}",
                       why="it is a raw connection to the engine; what passes through it "
                           "cannot be verified",
                       hint="an ssh:// docker context needs it on the far host: there, "
                            "run safe-docker in mode = \"off\" or call the real docker")
    if found.words == ("plugin", "create"):
        return Refused(f"refused {_spelled(found)}",
                       why="the plugin is made of a local directory, with no signature to "
                           "verify, and `plugin enable` runs it as root",
                       hint="push the plugin, sign it, and `docker plugin install` it")
    return Refused(f"refused {_spelled(found)}",
                   why="it builds and runs images safe-docker cannot verify before they start",
                   hint="build each target with `docker buildx build` instead")


def _unknown(found: Found) -> Refused:
    command = " ".join(found.words) or "(none)"
    if found.note:
        return Refused(f"refused docker {command}", why=found.note,
                       hint="remove the builder alias from docker's config.json (`docker "
                            "buildx uninstall`), or list the plugin in passthrough")
    if found.plugin:
        return Refused(
            f"refused docker {command}",
            why=f"{found.plugin!r} is not a docker command safe-docker knows (a CLI plugin?)",
            hint=f"if the plugin {found.plugin!r} never starts images, add it to "
                 f"passthrough = [\"{found.plugin}\"] in the config")
    return Refused(f"refused docker {command}",
                   why="not a docker command safe-docker knows",
                   hint="check the command; safe-docker knows the commands of docker CLI 28")


def run(argv: Sequence[str]) -> NoReturn:
    """The shim's entry for every command the gate decides: plan, then exec docker."""
    from safedocker.console import run_guarded, setup_logging
    from safedocker.gate.handoff import execute

    setup_logging(0)
    run_guarded(lambda: execute(plan(argv)))
