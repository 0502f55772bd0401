"""Managed plugins: ``plugin install REF`` and ``plugin upgrade NAME [REF]`` (attack N2).

A plugin is an image (its manifest's config is ``application/vnd.docker.plugin.v1+json``)
that the daemon runs as root with the mounts and devices its config asks for: REF is
decided by the gate like any image, and docker is handed ``repo@sha256:…`` with
``--alias repo:tag`` (the name docker would have given the plugin), unless the user gave
``--alias`` or a digest. Engines before 25.0.3 crash on a plugin pulled by digest
(moby#47299): there the command is refused in enforce mode. ``plugin upgrade NAME``
without REF pulls the plugin's own reference again: that reference is asked of docker
and verified, and handed over explicitly.
``enable``/``disable``, ``set``, ``push``, ``rm``, ``ls`` and ``inspect`` run nothing new
and pass; ``plugin create`` (a local rootfs that ``enable`` would run) is refused by the
table.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from safedocker._docker.grammar import PLUGIN_INSTALL, PLUGIN_UPGRADE, parse_command
from safedocker.errors import Refused, SafeDockerError, UsageError
from safedocker.gate.decide import ImageRequest, Origin, Outcome
from safedocker.gate.handoff import Plan
from safedocker.reference import ImageRef, parse_reference

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from safedocker._docker.commands import Found
    from safedocker.gate.decide import Gate


def plan_plugin(argv: Sequence[str], found: Found, gate: Callable[[], Gate]) -> Plan:
    """The docker command for ``plugin install|upgrade``; raises to refuse."""
    install = found.words[1] == "install"
    command = parse_command(argv, found, PLUGIN_INSTALL if install else PLUGIN_UPGRADE)
    unchanged = Plan((tuple(argv),))
    if command.help:
        return unchanged
    count = len(command.positionals)
    if install and count < 1 or not install and not 1 <= count <= 2:
        usage = "PLUGIN [KEY=VALUE...]" if install else "PLUGIN [REMOTE]"
        raise UsageError(f"{command.name}: wrong number of arguments",
                         hint=f"usage: {command.name} [OPTIONS] {usage}")
    tokens = list(argv)
    at: int | None
    if install:
        at, text, current = command.positionals[0], command.argv[command.positionals[0]], None
    else:
        current = _installed_reference(gate(), command.argv[command.positionals[0]])
        at = command.positionals[1] if count == 2 else None
        text = command.argv[at] if at is not None else current
    request = ImageRequest.parse(text, command=argv, origin=Origin.PLUGIN)
    admission = gate().admit(request)
    if admission.outcome is Outcome.UNCHECKED:
        return unchanged
    old = _digest_pull_crashes(gate())
    if old is not None:
        gate().refuse(argv, Refused(
            f"refused docker {' '.join(found.words)} {text}",
            why=f"this docker engine ({old}) crashes when it pulls a plugin by digest, and "
                "by tag it could pull another plugin than the one verified",
            hint="upgrade the docker engine to 25.0.3 or later"))
        return unchanged  # warn mode: docker pulls by tag, as the warning said
    target = admission.target
    if at is None:
        tokens.insert(command.positionals[0] + 1, target)
    else:
        tokens[at] = target
    alias = _alias(request) if install and command.value("alias") is None else None
    if alias is not None:
        # The daemon names a plugin pulled by digest after the digest; the user named a
        # tag, so the plugin keeps the name docker would have given it. Inserted right
        # after the command words: before any `--`, among the options.
        tokens[found.end:found.end] = ["--alias", alias]
    if not install and not command.flag("skip-remote-check") and \
            _same_plugin(text, current):
        # docker asks "are you sure?" when REMOTE differs from the installed reference;
        # the pinned form always differs in spelling, so the question is answered as the
        # user's own REMOTE would have answered it: the same plugin, no question.
        at = command.dash if command.dash is not None else len(tokens)
        tokens.insert(at, "--skip-remote-check")
    return Plan((tuple(tokens),))


# moby#47299 (in 25.0.3): before it, the daemon panics on a plugin reference without a tag.
_DIGEST_PULL_FIXED = (25, 0, 3)


def _digest_pull_crashes(gate: Gate) -> str | None:
    """The daemon's version when it is one that panics on a plugin pulled by digest."""
    version = gate.engine.server_version()
    numbers = re.match(r"(\d+)\.(\d+)\.(\d+)", version)
    if numbers is None:
        return version  # unknown: the pinned pull must not take the daemon down
    found = tuple(int(n) for n in numbers.groups())
    return version if found < _DIGEST_PULL_FIXED else None


def _alias(request: ImageRequest) -> str | None:
    """The plugin's name as docker gives it when installed by tag (``name:tag``), or None
    when the user named a digest."""
    ref = request.ref
    if ref is None or ref.digest is not None:
        return None
    return request.text if ref.tag is not None else f"{request.text}:{ref.tag_or_default}"


def _installed_reference(gate: Gate, name: str) -> str:
    """The reference docker would pull again: the installed plugin's (DockerCLI's
    ``plugin_reference``)."""
    ask = getattr(gate.engine, "plugin_reference", None)
    if ask is None:
        raise SafeDockerError(f"cannot upgrade plugin {name}",
                              why="docker cannot be asked for the plugin's reference")
    reference = ask(name)
    if not isinstance(reference, str) or not reference:
        raise UsageError(f"cannot upgrade plugin {name}", why="docker has no such plugin",
                         hint="see `docker plugin ls`")
    return reference


def _same_plugin(remote: str, current: str | None) -> bool:
    """docker's check: both references, normalized with the default tag, are equal."""
    if current is None:
        return False
    try:
        mine, theirs = parse_reference(remote), parse_reference(current)
    except SafeDockerError:
        return False
    return _tagged(mine) == _tagged(theirs)


def _tagged(ref: ImageRef) -> str:
    return str(ref) if ref.digest is not None else ref.tagged
