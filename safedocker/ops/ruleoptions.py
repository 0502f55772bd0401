"""``policy add``'s options → the rule table the config writes, every value checked first.

The checks run in the order the options are read, so the first bad option is the one named.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from safedocker.errors import UsageError
from safedocker.ops.args import choice, count, key_value
from safedocker.policy.config import regexp_problem
from safedocker.policy.model import GpuPolicy, ReferenceCheck, Tlog

if TYPE_CHECKING:
    from collections.abc import Sequence

    from safedocker.policy.paths import Paths


@dataclass(frozen=True)
class RuleOptions:
    """What ``policy add`` was given, as typed (repeatable options as sequences)."""

    keys: Sequence[str] = ()
    threshold: str = "1"
    tlog: str = "optional"
    reference: str = "repository"
    gpu: str = "auto"
    annotations: Sequence[str] = ()
    identities: Sequence[str] = ()
    identity_regexps: Sequence[str] = ()
    signatures_repository: str | None = None
    remaps: Sequence[str] = ()
    remap_regexps: Sequence[str] = ()
    trust_root: str | None = None


def verify_rule(options: RuleOptions) -> dict[str, Any]:
    """The ``action = "verify"`` rule table, or a usage error naming the first bad option."""
    annotations = dict(key_value(item, "--annotation") for item in options.annotations)
    identities = [{"issuer": i, "subject": s}
                  for i, s in (key_value(item, "--identity") for item in options.identities)]
    identities += [{"issuer_regexp": i, "subject_regexp": s}
                   for i, s in (key_value(item, "--identity-regexp")
                                for item in options.identity_regexps)]
    _check_regexps(identities)
    if not options.keys and not identities:
        raise UsageError("policy add needs a signer", why="no --key, --identity or "
                         "--identity-regexp given",
                         hint="name a trusted key with --key NAME, or use "
                              "`safe-docker policy allow SCOPE` to accept without signatures")
    signers = len(options.keys) + len(identities)
    rule: dict[str, Any] = {
        "action": "verify", "keys": list(options.keys),
        "threshold": count("--threshold", options.threshold, signers),
        "tlog": choice("--tlog", options.tlog, Tlog),
        "reference": choice("--reference", options.reference, ReferenceCheck),
        "gpu": choice("--gpu", options.gpu, GpuPolicy),
    }
    if identities:
        rule["identities"] = identities
    if annotations:
        rule["annotations"] = annotations
    if options.signatures_repository:
        rule["signatures_repository"] = options.signatures_repository
    remaps = [{"prefix": p, "signed_prefix": v}
              for p, v in (key_value(item, "--remap") for item in options.remaps)]
    remaps += [{"prefix": p, "signed_prefix_regexp": v}
               for p, v in (key_value(item, "--remap-regexp") for item in options.remap_regexps)]
    if remaps:
        if options.reference == "digest":
            raise UsageError("--remap needs the signed reference checked",
                             hint="use --reference repository or exact")
        for item in remaps:
            why = (regexp_problem(item["signed_prefix_regexp"])
                   if "signed_prefix_regexp" in item else None)
            if why:
                raise UsageError(f"invalid --remap-regexp {item['signed_prefix_regexp']!r}",
                                 why=why)
        rule["signed_identity"] = {"remap": remaps}
    if options.trust_root is not None:
        rule["trust_root"] = options.trust_root
    return rule


def _check_regexps(identities: list[dict[str, str]]) -> None:
    """A regexp cosign (RE2) would refuse or read otherwise is a usage error here."""
    for identity in identities:
        for name in ("issuer_regexp", "subject_regexp"):
            why = regexp_problem(identity[name]) if name in identity else None
            if why:
                raise UsageError(f"invalid --identity-regexp {identity[name]!r}", why=why,
                                 hint="identity regexps use Go's RE2 syntax, as cosign: no "
                                      "look-arounds, back-references or possessive repeats")


def missing_root_warnings(where: Paths, name: str | None) -> list[str]:
    """A rule may name a root before it is imported: the line saying it refuses until then."""
    from safedocker.trust.roots import DEFAULT_NAME, trust_root_path

    if name is None or name == DEFAULT_NAME or any(
        trust_root_path(where, name, system=system).is_file() for system in (True, False)
    ):
        return []
    return [f"safe-docker: no trusted root named {name!r} yet \u2014 the rule refuses "
            f"until it is imported (hint: `safe-docker trust-root import FILE --name {name}`)"]
