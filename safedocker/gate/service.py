"""Swarm services: ``service create IMAGE`` and ``service update --image IMAGE`` (attack N1).

The command line is read with the commands' own flags (an allowlist); every image it
names (IMAGE or ``--image``, and the source of each ``--mount type=image``) is decided by
the gate, and docker is handed the command with each replaced by what the gate says:
``repo@sha256:…``. The swarm keeps a digest it is given and never re-resolves it, so
every task on every node runs what was verified, with or without ``--no-resolve-image``
(which only stops docker from asking the registry again). ``service update`` without
``--image`` keeps the service's image (set by an earlier, verified create or update):
it goes to docker unchanged, as do ``rollback`` and ``scale``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from safedocker._docker.grammar import (
    SERVICE_CREATE,
    SERVICE_UPDATE,
    image_mounts,
    parse_command,
    with_value,
)
from safedocker.errors import UsageError
from safedocker.gate.decide import ImageRequest, Origin, Outcome
from safedocker.gate.handoff import Plan

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from safedocker._docker.commands import Found
    from safedocker.gate.decide import Gate


def plan_service(argv: Sequence[str], found: Found, gate: Callable[[], Gate]) -> Plan:
    """The docker command for ``service create|update``; raises to refuse."""
    create = found.words[1] == "create"
    command = parse_command(argv, found, SERVICE_CREATE if create else SERVICE_UPDATE)
    if command.help:
        return Plan((tuple(argv),))
    if create and not command.positionals:
        raise UsageError(f"{command.name}: requires at least 1 argument",
                         hint=f"usage: {command.name} [OPTIONS] IMAGE [COMMAND] [ARG...]")
    if not create and len(command.positionals) != 1:
        raise UsageError(f"{command.name}: requires exactly 1 argument",
                         hint=f"usage: {command.name} [OPTIONS] SERVICE")
    images = command.values("image") if not create else []
    mounts = image_mounts(command.options, ("--mount",) if create else ("--mount-add",))
    if create:
        image = command.argv[command.positionals[0]]
    elif images:
        image = images[-1].value or ""  # pflag's string: the last --image is the image
    else:
        image = None
    texts = ([image] if image is not None else []) + [m.source for m in mounts]
    if not texts:
        return Plan((tuple(argv),))  # the service keeps the image it has
    labels = ([""] if image is not None else []) + ["--mount source"] * len(mounts)
    requests = [ImageRequest.parse(text, command=argv, origin=Origin.SERVICE, label=label)
                for text, label in zip(texts, labels, strict=True)]
    admissions = gate().admit_all(requests)
    if any(a.outcome is Outcome.UNCHECKED for a in admissions):
        return Plan((tuple(argv),))
    tokens = list(argv)
    if image is not None:
        target = admissions[0].target
        if create:
            tokens[command.positionals[0]] = target
        else:
            for option in reversed(images):  # each spelling keeps its place
                tokens = with_value(tokens, option, target)
        admissions = admissions[1:]
    for mount, admission in zip(reversed(mounts), reversed(admissions), strict=True):
        tokens = with_value(tokens, mount.option, mount.with_source(admission.target))
    return Plan((tuple(tokens),))
