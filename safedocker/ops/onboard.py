"""``policy init``: rules proposed from the images a team already uses.

The images come from the local docker store (through the engine) and, with ``--compose``,
from the compose project in the current directory (as ``docker compose config`` resolves
it). An image a rule already covers is left alone, whatever that rule says: init never
weakens or replaces a rule. For the rest: a catalogue publisher that signs becomes its
catalogue rules (``policy catalog add``); anything else becomes an ``accept`` for its
repository, marked UNSIGNED, with what the catalogue knows of it. Nothing is written until
the caller confirms; writing goes through the same code as ``policy catalog add`` and
``policy allow``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from safedocker.errors import UsageError
from safedocker.policy.catalog import Kind, load
from safedocker.reference import parse_reference

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence
    from pathlib import Path

    from safedocker.policy.config import Config
    from safedocker.policy.paths import Paths


class ImageLister(Protocol):
    def image_names(self) -> tuple[str, ...]: ...


class Proposed(enum.Enum):
    CATALOGUE = "catalogue"  # the publisher's signed rules
    UNSIGNED = "unsigned"  # accept without signatures


@dataclass(frozen=True)
class Proposal:
    kind: Proposed
    target: str  # the catalogue entry's name, or the repository to accept
    images: tuple[str, ...]
    why: str


@dataclass(frozen=True)
class Plan:
    proposals: tuple[Proposal, ...]
    covered: tuple[tuple[str, str], ...]  # (image, the rule that covers it)
    unusable: tuple[tuple[str, str], ...]  # (name, why it cannot be read as a reference)
    locked: bool  # a locked system policy ignores user accept rules for uncovered images


def compose_images(directory: Path, environ: Mapping[str, str]) -> list[str]:
    """The service images of the compose project in ``directory`` (services that only
    build have none), as compose itself resolves the files."""
    from safedocker.gate.compose import read_project

    project = read_project(directory, environ)
    services = project.get("services") or {}
    return [s["image"] for s in services.values()
            if isinstance(s, dict) and isinstance(s.get("image"), str)]


def propose(config: Config, images: Iterable[str]) -> Plan:
    """What init would write for ``images`` under ``config``; reads nothing else."""
    catalog = load()
    by_target: dict[tuple[Proposed, str], list[str]] = {}
    whys: dict[tuple[Proposed, str], str] = {}
    covered: list[tuple[str, str]] = []
    unusable: list[tuple[str, str]] = []
    for image in dict.fromkeys(images):
        try:
            ref = parse_reference(image)
        except UsageError as e:
            unusable.append((image, e.what))
            continue
        decision = config.policy.decide(ref)
        if decision.rules:
            covered.append((image, decision.explain()))
            continue
        entry = catalog.covering(ref)
        inside = catalog.signed_under(ref.name)
        if inside is not None and (entry is None or entry.kind is not Kind.SIGNED):
            # An accept for this repository would cover every repository under it.
            unusable.append((image, f"an UNSIGNED accept for {ref.name} would also accept "
                                    f"{inside.title}, which is signed, without signatures "
                                    f"(`safe-docker policy catalog add {inside.name}`)"))
            continue
        if entry is not None and entry.kind is Kind.SIGNED and not entry.missing_features:
            key = (Proposed.CATALOGUE, entry.name)
            whys[key] = f"{entry.title}, signed ({entry.source})"
        else:
            key = (Proposed.UNSIGNED, ref.name)
            if entry is None:
                whys[key] = "no known signer"
            elif entry.kind is Kind.UNSIGNED:
                whys[key] = f"published unsigned: {entry.title} ({entry.source})"
            else:
                whys[key] = (f"{entry.title}: its signing is not confirmed in the catalogue "
                             f"yet ({entry.source})")
        by_target.setdefault(key, []).append(image)
    proposals = tuple(Proposal(kind, target, tuple(found), whys[(kind, target)])
                      for (kind, target), found in sorted(by_target.items(),
                                                          key=lambda i: (i[0][0].value, i[0][1])))
    return Plan(proposals, tuple(covered), tuple(unusable), config.policy.locked)


def plan_lines(plan: Plan) -> list[str]:
    lines = []
    for proposal in plan.proposals:
        images = ", ".join(proposal.images)
        if proposal.kind is Proposed.CATALOGUE:
            lines.append(f"verify   catalogue {proposal.target} — {proposal.why} — for {images}")
        elif plan.locked:
            lines.append(f"UNSIGNED {proposal.target} — {proposal.why} — not proposed: the "
                         "system policy is locked (ask an admin for a rule)")
        else:
            lines.append(f"UNSIGNED allow {proposal.target} — accepted WITHOUT any "
                         f"signature; {proposal.why}")
    lines += [f"kept     {image} — {why}" for image, why in plan.covered]
    lines += [f"skipped  {image} — {why}" for image, why in plan.unusable]
    if not plan.proposals:
        lines.append("nothing to propose: every image is covered by a rule")
    return lines


def plan_json(plan: Plan) -> dict[str, Any]:
    return {"proposals": [{"kind": p.kind.value, "target": p.target, "images": list(p.images),
                           "why": p.why, "written": _writable(plan, p)}
                          for p in plan.proposals],
            "covered": [{"image": i, "rule": w} for i, w in plan.covered],
            "skipped": [{"image": i, "why": w} for i, w in plan.unusable],
            "locked": plan.locked}


def _writable(plan: Plan, proposal: Proposal) -> bool:
    return proposal.kind is Proposed.CATALOGUE or not plan.locked


def writable(plan: Plan) -> Sequence[Proposal]:
    return [p for p in plan.proposals if _writable(plan, p)]


def write(where: Paths, plan: Plan) -> list[str]:
    """Write the plan's rules; a rule that appeared since the plan was made is kept (and
    said so), never replaced."""
    from safedocker.ops import catalog
    from safedocker.policy.config import load_config, set_rule

    lines = []
    for proposal in writable(plan):
        if proposal.kind is Proposed.CATALOGUE:
            try:
                lines += catalog.add(where, proposal.target)
            except UsageError as e:
                lines.append(f"kept your rules for {proposal.target}: {e.why or e.what}")
            continue
        if load_config(where).policy.decide(parse_reference(proposal.target)).rules:
            lines.append(f"kept the rule that now covers {proposal.target}")
            continue
        scope = set_rule(where, proposal.target, {"action": "accept"})
        lines.append(f"policy for {scope}: accept (UNSIGNED: no signature is checked)")
    return lines
