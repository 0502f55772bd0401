"""Policy export to Kyverno, Sigstore policy-controller and containers-policy.json (the
import of containers-policy.json is :mod:`safedocker.policy.containers`).

Each target has its own matching rules. An export is the closest policy the target can
express: every check it cannot express is a :class:`Gap`, named on stderr and, in the YAML
formats, as a comment at the top of the output (containers-policy.json has no comments:
podman refuses unknown keys). Where a choice exists the closer policy is the stricter one
(a threshold becomes "all signers", a digest-only check a repository check, a keyless
signer the target cannot name drops out of an any-of list, an inexpressible requirement
becomes ``reject``); where none does, the check is dropped and named. With ``strict`` a
gap raises :class:`UnexportablePolicy` (exit 78) instead. Never silently weaker.

Semantics the translation relies on:

* **safe-docker**: the most specific scope wins; a locked system policy ANDs the system
  rule and the user rule.
* **Kyverno** (``ClusterPolicy``): every matching rule applies; images are matched as
  ``registry/path:tag`` or ``registry/path@digest`` (the tag dropped when there is a digest;
  ``nginx`` is ``docker.io/nginx``, not ``docker.io/library/nginx``) with ``*`` matching
  any run of characters, ``/`` included. Precedence is expressed with
  ``skipImageReferences`` (a rule skips images that a more specific rule governs).
* **policy-controller** (``ClusterImagePolicy``): every matching policy must pass; within
  one policy, one authority suffices; ``*`` does not cross ``/``, ``**`` does; images are
  matched as ``index.docker.io/library/nginx:latest``. There is no exclusion, so a less
  specific verify/reject rule that covers a more specific, different rule cannot be
  expressed.
* **containers-policy.json**: the most specific scope wins (exact reference, repository,
  namespaces, host, ``*.domain``, default); the requirements of a scope are ANDed.

``tlog = "optional"`` (a transparency-log entry that is present must verify) is exported
as "not checked" in all three targets: the signature itself is still verified against the
key or certificate, which is what makes an image trusted.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import yaml

from safedocker._internal.encoding import b64encode
from safedocker.errors import ConfigError, UsageError
from safedocker.policy.model import (
    Action,
    Identity,
    ReferenceCheck,
    Rule,
    Tlog,
    Unmatched,
)

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

    from safedocker.policy.config import Config

FORMATS = ("kyverno", "policy-controller", "containers-policy")
PUBLIC_REKOR_URL = "https://rekor.sigstore.dev"
POLICY_NAME = "safe-docker"


class UnexportablePolicy(ConfigError):
    """A rule the target format cannot express without weakening it (exit 78)."""


@dataclass(frozen=True)
class Gap:
    """A check of the policy that the target cannot express, and what the export does."""

    target: str
    scope: str | None  # the rule's scope; None for the policy as a whole
    check: str  # what cannot be expressed, in the user's words
    instead: str  # what the export does instead
    hint: str = ""

    @property
    def subject(self) -> str:
        return f"rule {self.scope!r}" if self.scope is not None else "the policy"

    def line(self) -> str:
        """``<target> cannot express <check> of rule '<scope>' — <instead> (hint: …)``."""
        return (f"{self.target} cannot express {self.subject}: {self.check} \u2014 "
                f"{self.instead} (hint: {self.hint or '--strict refuses instead'})")

    def comment(self) -> str:
        return f"# - {self.subject}: {self.check}; {self.instead}"


class Gaps:
    """The gaps of one export; with ``strict`` the first one refuses the export."""

    def __init__(self, target: str, *, strict: bool = True) -> None:
        self.target = target
        self.strict = strict
        self.found: list[Gap] = []

    def add(self, rule: Rule | None, check: str, instead: str, hint: str = "") -> None:
        gap = Gap(self.target, rule.scope if rule else None, check, instead, hint)
        if self.strict:
            subject = f"rule {rule.scope!r} ({rule.action.value})" if rule else "the policy"
            raise UnexportablePolicy(f"cannot export {subject} to {self.target}", why=check,
                                     hint=hint or "change the rule, export to another format, "
                                     "or export without --strict (the closest policy)")
        if gap not in self.found:
            self.found.append(gap)


@dataclass(frozen=True)
class Exported:
    """An export's text, and the checks the target cannot express (empty: exact)."""

    text: str
    gaps: tuple[Gap, ...] = ()


def export_policy(config: Config, fmt: str, *, strict: bool = False) -> Exported:
    """The policy as a ``fmt`` document (YAML for Kubernetes, JSON for containers-policy):
    the closest the target can express, or, with ``strict``, exact or refused."""
    if fmt == "kyverno":
        gaps = Gaps(KYVERNO, strict=strict)
        document = kyverno_policy(config, gaps)
        return Exported(_notes(gaps, fmt) + dump_yaml(document), tuple(gaps.found))
    if fmt == "policy-controller":
        gaps = Gaps(PC, strict=strict)
        documents = policy_controller_policies(config, gaps)
        return Exported(_notes(gaps, fmt) + dump_yaml_stream(documents), tuple(gaps.found))
    if fmt == "containers-policy":
        gaps = Gaps(CP, strict=strict)
        data = containers_policy(config, gaps)
        return Exported(json.dumps(data, indent=2) + "\n", tuple(gaps.found))
    raise UsageError(f"invalid --format {fmt!r}", why=f"expected {' | '.join(FORMATS)}",
                     hint="see `safe-docker policy export --help`")


def _notes(gaps: Gaps, fmt: str) -> str:
    """The YAML comment naming every gap (empty when the export is exact)."""
    if not gaps.found:
        return ""
    lines = [f"# Exported by `safe-docker policy export --format {fmt}`. {gaps.target} cannot",
             "# express these checks of the safe-docker policy:",
             *(gap.comment() for gap in gaps.found)]
    return "\n".join(lines) + "\n"


# --- YAML output -------------------------------------------------------------------------


class _Dumper(yaml.SafeDumper):
    """PyYAML's safe dumper; multi-line strings (PEM keys) as literal blocks, and every
    value written out where it is (no anchors and aliases for shared objects)."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _string(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", value,
                                   style="|" if "\n" in value.rstrip("\n") else None)


_Dumper.add_representer(str, _string)
# Stable output: block style, keys in the order written, ASCII, no line folding.
_YAML_OPTIONS: dict[str, Any] = {"default_flow_style": False, "sort_keys": False,
                                 "allow_unicode": False, "width": 4096, "indent": 2}


def dump_yaml(document: Mapping[str, Any]) -> str:
    return str(yaml.dump(dict(document), Dumper=_Dumper, **_YAML_OPTIONS))


def dump_yaml_stream(documents: Iterable[Mapping[str, Any]]) -> str:
    return str(yaml.dump_all([dict(d) for d in documents], Dumper=_Dumper, explicit_start=True,
                             **_YAML_OPTIONS))


# --- scopes ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Shape:
    """A normalized scope, classified: what it covers, in terms every target can map."""

    kind: str  # all | host | repo | tag | digest | beneath | glob
    name: str  # host, repository/namespace, or the prefix of ``beneath``
    suffix: str = ""  # the tag or the digest

    @property
    def short_official(self) -> str | None:
        """``docker.io/X`` for a ``docker.io/library/X`` name (Kyverno's form of ``X``)."""
        prefix = "docker.io/library/"
        if self.name.startswith(prefix) and "/" not in self.name[len(prefix):]:
            return "docker.io/" + self.name[len(prefix):]
        return None


def shape(scope: str) -> Shape:
    if scope == "*":
        return Shape("all", "")
    if "*" in scope:
        if scope.endswith("/*") and "*" not in scope[:-2]:
            return Shape("beneath", scope[:-2])
        return Shape("glob", scope)
    if "@" in scope:
        name, _, digest = scope.partition("@")
        return Shape("digest", name, digest)
    if "/" not in scope:
        return Shape("host", scope)
    head, _, last = scope.rpartition("/")
    if ":" in last:
        repo, _, tag = last.partition(":")
        return Shape("tag", f"{head}/{repo}", tag)
    return Shape("repo", scope)


def _precedes(a: tuple[int, Rule], b: tuple[int, Rule]) -> bool:
    """Whether rule ``a`` wins over rule ``b`` where both match (``most_specific``)."""
    (index_a, rule_a), (index_b, rule_b) = a, b
    if rule_a.specificity != rule_b.specificity:
        return rule_a.specificity > rule_b.specificity
    return index_a > index_b


def _groups(config: Config) -> list[tuple[str, tuple[Rule, ...]]]:
    """Rule sets whose decisions are ANDed: system and user when locked, else one set."""
    policy = config.policy
    if policy.locked:
        return [("system", policy.system_rules), ("user", policy.user_rules)]
    return [("all", policy.rules)]


def _wildcard(pattern: str) -> re.Pattern[str]:
    """Kyverno's wildcard (``*`` any run, ``?`` one character) as a regex."""
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(f"^{body}$")


def _overlap(patterns_a: Sequence[str], patterns_b: Sequence[str]) -> bool:
    """Whether some pattern of one set matches (as text) a pattern of the other."""
    return any(_wildcard(a).match(b) or _wildcard(b).match(a)
               for a in patterns_a for b in patterns_b)


def _pems(config: Config, names: Sequence[str]) -> dict[str, str]:
    from safedocker.trust.keystore import load_trusted_keys

    return {key.name: key.pem.decode("ascii").strip() + "\n"
            for key in load_trusted_keys(config, names)}


# --- Kyverno -------------------------------------------------------------------------------

KYVERNO = "Kyverno"
IMAGE_LISTS = "request.object.spec.[ephemeralContainers, initContainers, containers][]"


def kyverno_patterns(rule: Rule, gaps: Gaps | None = None) -> list[str]:
    """``imageReferences`` matching the images ``rule.scope`` covers (exactly, or the
    closest, with a gap)."""
    gaps = gaps or Gaps(KYVERNO)
    s = shape(rule.scope)
    short = s.short_official
    if s.kind == "all":
        return ["*"]
    if s.kind == "host":
        return [f"{s.name}/*"]
    if s.kind in ("repo", "beneath") and s.name == "docker.io/library":
        gaps.add(rule, "official images written without docker.io/library/ (Kyverno names "
                 "them docker.io/NAME, and no wildcard matches exactly the one-component "
                 "names)", "only images written docker.io/library/NAME are covered",
                 hint="list the official repositories you mean one by one")
        return [f"{s.name}/*"]
    if s.kind == "repo":
        out = [f"{s.name}:*", f"{s.name}@*", f"{s.name}/*"]
        return out + ([f"{short}:*", f"{short}@*"] if short else [])
    if s.kind == "digest":
        return [f"{s.name}@{s.suffix}"] + ([f"{short}@{s.suffix}"] if short else [])
    if s.kind == "tag":
        gaps.add(rule, "the tag of an image given with a digest (Kyverno matches "
                 "repo:tag@sha256:… by its digest alone)",
                 "images given as repo:tag@sha256:… are not covered by this rule",
                 hint="use a repository scope or a digest scope")
        return [f"{s.name}:{s.suffix}"] + ([f"{short}:{s.suffix}"] if short else [])
    if s.kind == "beneath":
        return [f"{s.name}/*"]
    gaps.add(rule, "a '*' inside a path component (Kyverno's '*' also matches '/')",
             "the rule also covers deeper repositories that match",
             hint="use a repository scope or a trailing /* scope")
    return [rule.scope]


def _check_reference(gaps: Gaps, rule: Rule) -> None:
    if not rule.signed_identity.is_default:
        gaps.add(rule, f"the signed identity ({rule.signed_identity.describe()})",
                 f"{gaps.target} checks the signed digest only",
                 hint="export to containers-policy to keep the signed-name check")
    elif rule.reference is not ReferenceCheck.DIGEST:
        gaps.add(rule, f"the signed repository name (reference = {rule.reference.value!r})",
                 f"{gaps.target} checks the signed digest only",
                 hint='set reference = "digest" on the rule for an exact export')


def _tlog_settings(rule: Rule) -> dict[str, Any]:
    if rule.tlog is Tlog.REQUIRED:
        return {"url": PUBLIC_REKOR_URL}
    return {"ignoreTlog": True}


def _kyverno_attestor(config: Config, rule: Rule) -> dict[str, Any]:
    rekor = _tlog_settings(rule)
    entries: list[dict[str, Any]] = [{"keys": {"publicKeys": pem, "rekor": rekor}}
                                     for pem in _pems(config, rule.keys).values()]
    for identity in rule.identities:
        keyless: dict[str, Any] = {}
        if identity.subject is not None:
            keyless["subject"] = identity.subject
        if identity.subject_regexp is not None:
            keyless["subjectRegExp"] = identity.subject_regexp
        if identity.issuer is not None:
            keyless["issuer"] = identity.issuer
        if identity.issuer_regexp is not None:
            keyless["issuerRegExp"] = identity.issuer_regexp
        keyless["rekor"] = rekor
        entries.append({"keyless": keyless})
    if rule.annotations:
        for entry in entries:
            entry["annotations"] = dict(sorted(rule.annotations.items()))
    return {"count": rule.threshold, "entries": entries}


def _pods() -> dict[str, Any]:
    return {"any": [{"resources": {"kinds": ["Pod"]}}]}


def _deny_rule(name: str, message: str, conditions: list[dict[str, Any]],
               failure_action: str = "Enforce") -> dict[str, Any]:
    return {
        "name": name,
        "match": _pods(),
        "validate": {
            "failureAction": failure_action,
            "message": message,
            "foreach": [{"list": IMAGE_LISTS, "deny": {"conditions": {"all": conditions}}}],
        },
    }


def _image_condition(operator: str, patterns: Sequence[str]) -> dict[str, Any]:
    return {"key": "{{ image_normalize(element.image) }}", "operator": operator,
            "value": list(patterns)}


def kyverno_policy(config: Config, gaps: Gaps | None = None) -> dict[str, Any]:
    """One ``ClusterPolicy``: a verifyImages rule per verify rule, a deny rule per reject
    rule, and a deny rule for images no rule covers (``unmatched``)."""
    gaps = gaps or Gaps(KYVERNO)
    rules: list[dict[str, Any]] = []
    covered: list[str] = []
    for group, group_rules in _groups(config):
        indexed = list(enumerate(group_rules))
        patterns = {index: kyverno_patterns(rule, gaps) for index, rule in indexed}
        for index, rule in indexed:
            mine = patterns[index]
            skip = [p for other in indexed if other[0] != index
                    and _precedes(other, (index, rule)) and _overlap(patterns[other[0]], mine)
                    for p in patterns[other[0]]]
            skip = list(dict.fromkeys(skip))
            name = f"{group}-{index}-{rule.action.value}"
            if rule.action is Action.VERIFY:
                _check_reference(gaps, rule)
                verify: dict[str, Any] = {"imageReferences": mine}
                if skip:
                    verify["skipImageReferences"] = skip
                if rule.signatures_repository is not None:
                    verify["repository"] = rule.signatures_repository
                verify.update({
                    "failureAction": "Enforce",
                    "mutateDigest": True,
                    "verifyDigest": True,
                    "required": True,
                    "attestors": [_kyverno_attestor(config, rule)],
                })
                rules.append({"name": name, "match": _pods(), "verifyImages": [verify]})
            elif rule.action is Action.REJECT:
                conditions = [_image_condition("AnyIn", mine)]
                if skip:
                    conditions.append(_image_condition("AnyNotIn", skip))
                rules.append(_deny_rule(name, f"safe-docker policy rejects {rule.scope}",
                                        conditions))
            if group != "user" or (config.unmatched is not Unmatched.REJECT
                                   and rule.action is not Action.ACCEPT):
                # Locked: images no system rule covers are unmatched whatever the user says.
                covered.extend(mine)
    if config.unmatched is not Unmatched.ACCEPT:
        rules.append(_deny_rule(
            "unmatched", "no safe-docker policy scope covers this image",
            [_image_condition("AnyNotIn", list(dict.fromkeys(covered)))],
            "Enforce" if config.unmatched is Unmatched.REJECT else "Audit"))
    return {
        "apiVersion": "kyverno.io/v1",
        "kind": "ClusterPolicy",
        "metadata": {
            "name": POLICY_NAME,
            "annotations": {"policies.kyverno.io/description":
                            "Generated by `safe-docker policy export --format kyverno`."},
        },
        "spec": {"background": False, "webhookTimeoutSeconds": 30, "rules": rules},
    }


# --- Sigstore policy-controller ------------------------------------------------------------

PC = "policy-controller"


def _pc_name(name: str) -> str:
    return "index.docker.io" + name[len("docker.io"):] if (
        name == "docker.io" or name.startswith("docker.io/")) else name


def policy_controller_globs(rule: Rule, gaps: Gaps | None = None) -> list[str]:
    """``spec.images[].glob`` values matching exactly the images ``rule.scope`` covers."""
    s = shape(rule.scope)
    name = _pc_name(s.name)
    if s.kind == "all":
        return ["**"]
    if s.kind == "host":
        return [f"{name}/**"]
    if s.kind == "repo":
        return [f"{name}:**", f"{name}@**", f"{name}/**"]
    if s.kind == "digest":
        return [f"{name}@{s.suffix}", f"{name}:*@{s.suffix}"]
    if s.kind == "tag":
        return [f"{name}:{s.suffix}", f"{name}:{s.suffix}@**"]
    if s.kind == "beneath":
        return [f"{name}/**"]
    glob = _pc_name(rule.scope)
    if "**" in glob:  # pragma: no cover - normalize_scope keeps '**' only in odd scopes
        (gaps or Gaps(PC)).add(rule, "'**' in a scope", "exported as policy-controller reads it")
    return [glob, f"{glob}:**", f"{glob}@**"]


def _requirements(rule: Rule) -> tuple[object, ...]:
    return (rule.action, rule.keys, rule.identities, rule.threshold, rule.tlog,
            rule.reference, tuple(sorted(rule.annotations.items())), rule.signed_identity,
            rule.signatures_repository)


def _pc_authorities(config: Config, rule: Rule) -> list[dict[str, Any]]:
    ctlog: dict[str, Any] = ({"ctlog": {"url": PUBLIC_REKOR_URL}}
                             if rule.tlog is Tlog.REQUIRED else {})
    if rule.signatures_repository is not None:  # where the authority finds signatures
        ctlog["source"] = [{"oci": rule.signatures_repository}]
    out: list[dict[str, Any]] = []
    for name, pem in _pems(config, rule.keys).items():
        out.append({"name": f"key-{name}".lower(),
                    "key": {"data": pem, "hashAlgorithm": "sha256"}, **ctlog})
    for number, identity in enumerate(rule.identities):
        item = {k: v for k, v in (("issuer", identity.issuer),
                                  ("issuerRegExp", identity.issuer_regexp),
                                  ("subject", identity.subject),
                                  ("subjectRegExp", identity.subject_regexp)) if v is not None}
        out.append({"name": f"keyless-{number}", "keyless": {"identities": [item]}, **ctlog})
    return out


def _dns_label(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:40].strip("-")


def policy_controller_policies(config: Config, gaps: Gaps | None = None, *,
                               namespace: str = "cosign-system") -> list[dict[str, Any]]:
    """``ClusterImagePolicy`` objects (and the ``no-match-policy`` ConfigMap)."""
    gaps = gaps or Gaps(PC)
    docs: list[dict[str, Any]] = []
    if config.policy.locked and config.policy.user_rules and config.unmatched is Unmatched.REJECT \
            and not any(r.scope == "*" for r in config.policy.system_rules):
        gaps.add(None, "the lock's rejection of images no system rule covers, where a user "
                 "rule matches (policy-controller's no-match policy applies only where no "
                 "policy matches)", "such images get the user rule alone",
                 hint="add a system rule for '*'")
    for group, group_rules in _groups(config):
        indexed = list(enumerate(group_rules))
        globs = {index: policy_controller_globs(rule, gaps) for index, rule in indexed}
        for index, rule in indexed:
            for other in indexed:
                if (other[0] != index and _precedes(other, (index, rule))
                        and rule.action is not Action.ACCEPT
                        and _requirements(other[1]) != _requirements(rule)
                        and _overlap(kyverno_like(globs[other[0]]), kyverno_like(globs[index]))):
                    gaps.add(rule, f"that the more specific scope {other[1].scope!r} is "
                             "governed by its own rule alone (policy-controller applies every "
                             "matching policy)",
                             f"images of {other[1].scope!r} must satisfy both rules",
                             hint="give both rules the same requirements, or split the "
                             "broader scope")
            base = f"{POLICY_NAME}-{group}-{index}-{_dns_label(rule.scope) or 'all'}"
            images = [{"glob": glob} for glob in globs[index]]
            if rule.action is not Action.VERIFY:
                action = "pass" if rule.action is Action.ACCEPT else "fail"
                docs.append(_cip(base, images, [{"name": action, "static": {"action": action}}]))
                continue
            _check_reference(gaps, rule)
            if rule.annotations:
                gaps.add(rule, "the signed annotations "
                         f"{', '.join(sorted(rule.annotations))} (authorities cannot require "
                         "them without a CUE/Rego policy)", "exported without that check")
            authorities = _pc_authorities(config, rule)
            if rule.threshold == 1:
                docs.append(_cip(base, images, authorities))
            else:
                if rule.threshold != len(authorities):
                    gaps.add(rule, f"threshold {rule.threshold} of {len(authorities)} signers "
                             "(needs a CUE/Rego policy: one authority passes a policy)",
                             f"exported as all {len(authorities)} signers",
                             hint="use threshold 1, or list exactly as many signers")
                # Every matching ClusterImagePolicy must pass: one per signer is an AND.
                docs.extend(_cip(f"{base}-{number}", images, [authority])
                            for number, authority in enumerate(authorities))
    no_match = {Unmatched.REJECT: "deny", Unmatched.WARN: "warn", Unmatched.ACCEPT: "allow"}
    docs.append({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "config-policy-controller", "namespace": namespace},
        "data": {"no-match-policy": no_match[config.unmatched]},
    })
    return docs


def kyverno_like(globs: Sequence[str]) -> list[str]:
    """policy-controller globs as Kyverno wildcards, for the (conservative) overlap test."""
    return [g.replace("**", "*") for g in globs]


def _cip(name: str, images: list[dict[str, str]],
         authorities: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "apiVersion": "policy.sigstore.dev/v1beta1",
        "kind": "ClusterImagePolicy",
        "metadata": {"name": name[:253].strip("-")},
        "spec": {"mode": "enforce", "images": images, "authorities": authorities},
    }


# --- containers-policy.json ----------------------------------------------------------------

CP = "containers-policy.json"
WILDCARD_DOMAIN = re.compile(r"^\*\.[A-Za-z0-9.-]+$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")


def containers_scope(rule: Rule, config: Config, gaps: Gaps | None = None) -> str | None:
    """The ``transports.docker`` key for ``rule.scope`` ("" for the default), or None when
    containers-policy has no scope for it (the rule is left out, with a gap)."""
    gaps = gaps or Gaps(CP)
    s = shape(rule.scope)
    if s.kind == "all":
        return ""
    if s.kind in ("host", "repo"):
        return s.name
    if s.kind == "tag":
        return f"{s.name}:{s.suffix}"
    if s.kind == "digest":
        return f"{s.name}@{s.suffix}"
    if s.kind == "beneath":
        if "/" not in s.name:
            return s.name  # a host scope covers everything beneath the host
        # containers-policy's namespace scope also covers a repository named exactly like
        # the namespace; that is fine unless safe-docker would treat that one differently.
        _check_bare_repository(rule, s.name, config, gaps)
        return s.name
    if s.kind == "glob" and rule.scope.endswith("/*") and WILDCARD_DOMAIN.match(rule.scope[:-2]):
        return rule.scope[:-2]
    gaps.add(rule, "its scope (containers-policy scopes are not globs, except a leading *. "
             "in a host)", "the rule is left out: its images get the default requirement",
             hint="use a host, repository, namespace, tag or digest scope")
    return None


def _check_bare_repository(rule: Rule, name: str, config: Config, gaps: Gaps) -> None:
    from safedocker.reference import parse_reference

    if rule.action is Action.REJECT:
        return
    decision = config.policy.decide(parse_reference(name))
    if decision.action is Action.ACCEPT or (
        decision.action is None and config.unmatched is not Unmatched.REJECT
    ):
        return
    if len(decision.rules) == 1 and _requirements(decision.rules[0]) == _requirements(rule):
        return
    gaps.add(rule, f"that it does not cover the repository {name!r} itself (the "
             f"containers-policy scope {name!r} is both; safe-docker: "
             f"{decision.explain()})", f"the repository {name!r} gets this rule's requirements",
             hint=f"add a rule for {name!r} with the same requirements, or use repository "
             "scopes")


def _rekor_data(config: Config, rule: Rule, gaps: Gaps) -> dict[str, Any]:
    if not config.rekor_keys:
        gaps.add(rule, "tlog = 'required' without rekor_keys (containers-policy needs the "
                 "Rekor public key)", "exported without the transparency-log requirement",
                 hint="add the Rekor key with `safe-docker keys add` and list it in rekor_keys")
        return {}
    pems = _pems(config, config.rekor_keys)
    if len(pems) == 1:
        return {"rekorPublicKeyData": b64encode(next(iter(pems.values())).encode())}
    return {"rekorPublicKeyDatas": [b64encode(pem.encode()) for pem in pems.values()]}


def _fulcio_problem(identity: Identity) -> str:
    """Why containers-policy cannot name this keyless signer ("" when it can)."""
    if identity.issuer is None or identity.subject is None:
        return ("containers-policy fulcio requirements take an exact issuer and subject, "
                "not regular expressions")
    if not _EMAIL.match(identity.subject):
        return (f"containers-policy fulcio matches only e-mail subjects (subjectEmail); "
                f"{identity.subject!r} is not one")
    return ""


def _fulcio_requirement(config: Config, rule: Rule, identity: Identity,
                        identity_rule: dict[str, str], gaps: Gaps) -> dict[str, Any]:
    from cryptography.hazmat.primitives import serialization

    from safedocker.policy.paths import paths
    from safedocker.trust.roots import trust_root

    assert identity.issuer is not None and identity.subject is not None  # noqa: S101
    root = trust_root(paths())
    ca_pem = b"".join(cert.public_bytes(serialization.Encoding.PEM)
                      for ca in root.certificate_authorities for cert in ca.chain)
    if config.rekor_keys:
        rekor = _rekor_data(config, rule, gaps)
    else:
        rekor = {"rekorPublicKeyData": b64encode(b"".join(log.key.pem for log in root.tlogs[:1]))}
    return {"type": "sigstoreSigned",
            "fulcio": {"caData": b64encode(ca_pem), "oidcIssuer": identity.issuer,
                       "subjectEmail": identity.subject},
            **rekor, "signedIdentity": identity_rule}


def _containers_requirements(config: Config, rule: Rule, gaps: Gaps) -> list[dict[str, Any]]:
    if rule.action is Action.REJECT:
        return [{"type": "reject"}]
    if rule.action is Action.ACCEPT:
        return [{"type": "insecureAcceptAnything"}]
    if rule.annotations:
        gaps.add(rule, f"the signed annotations {', '.join(sorted(rule.annotations))} "
                 "(containers-policy cannot require annotations)", "exported without that check")
    if rule.signatures_repository is not None:
        gaps.add(rule, f"signatures_repository = {rule.signatures_repository!r} "
                 "(containers/image reads sigstore signatures from the image's own repository "
                 "only)", "podman finds no signature there and refuses these images, stricter")
    identity_rule = _containers_identity(rule, gaps)
    rekor = _rekor_data(config, rule, gaps) if rule.tlog is Tlog.REQUIRED else {}
    pems = _pems(config, rule.keys)
    signers = len(pems) + len(rule.identities)
    identities = []
    for identity in rule.identities:
        problem = _fulcio_problem(identity)
        if not problem:
            identities.append(identity)
        elif rule.threshold == 1 and signers > 1:
            gaps.add(rule, f"the keyless signer {identity.describe()} ({problem})",
                     "that signer is left out (the others still sign), stricter")
        else:
            gaps.add(rule, f"the keyless signer {identity.describe()} ({problem})",
                     "the scope is exported as reject, stricter")
            return [{"type": "reject"}]

    def key_requirement(datas: list[str]) -> dict[str, Any]:
        keys: dict[str, Any] = ({"keyData": datas[0]} if len(datas) == 1
                                else {"keyDatas": datas})
        return {"type": "sigstoreSigned", **keys, **rekor, "signedIdentity": identity_rule}

    def fulcio(identity: Identity) -> dict[str, Any]:
        return _fulcio_requirement(config, rule, identity, identity_rule, gaps)

    encoded = [b64encode(pem.encode()) for pem in pems.values()]
    if not encoded and not identities:
        return [{"type": "reject"}]  # every signer was left out above
    if rule.threshold == 1 and not identities:
        return [key_requirement(encoded)]  # keyDatas: any one of the keys
    if rule.threshold == 1 and not encoded and len(identities) == 1:
        return [fulcio(identities[0])]
    if rule.threshold != signers:
        gaps.add(rule, f"threshold {rule.threshold} of {signers} signers (containers-policy "
                 "ANDs requirements, or lists keys of which one suffices)",
                 f"exported as all {len(encoded) + len(identities)} signers, stricter",
                 hint="use threshold 1 with keys only, or a threshold equal to the signers")
    # Requirements are ANDed: one per signer.
    return [key_requirement([data]) for data in encoded] + [fulcio(i) for i in identities]


def _containers_identity(rule: Rule, gaps: Gaps) -> dict[str, str]:
    """The signedIdentity that is as strict as the rule's reference check, or stricter."""
    signed = rule.signed_identity
    if signed.exact_reference is not None:
        return {"type": "exactReference", "dockerReference": signed.exact_reference}
    if signed.exact_repository is not None:
        return {"type": "exactRepository", "dockerRepository": signed.exact_repository}
    if signed.remaps:
        remap = signed.remaps[0]
        if len(signed.remaps) == 1 and remap.signed_prefix is not None:
            # podman then requires the remapped name (and by tag, the tag): never looser.
            return {"type": "remapIdentity", "prefix": remap.prefix,
                    "signedPrefix": remap.signed_prefix}
        gaps.add(rule, f"signed_identity ({signed.describe()}): remapIdentity takes one plain "
                 "prefix, not several or a regexp",
                 "exported as matchRepository (the signed name must be the pulled one), stricter")
        return {"type": "matchRepository"}
    if rule.reference is ReferenceCheck.DIGEST:
        gaps.add(rule, "reference = 'digest' (containers-policy always checks the signed "
                 "name)", "exported as reference = 'repository' (matchRepository), stricter",
                 hint='set reference = "repository" for an exact export')
    return {"type": "matchExact" if rule.reference is ReferenceCheck.EXACT
            else "matchRepository"}


def containers_policy(config: Config, gaps: Gaps | None = None) -> dict[str, Any]:
    """``policy.json`` for podman, skopeo, buildah and CRI-O (containers/image)."""
    gaps = gaps or Gaps(CP)
    if config.policy.locked and config.policy.user_rules:
        gaps.add(None, "the lock (both the system and the user rule apply to an image; "
                 "containers-policy applies one scope)",
                 "each scope gets its own rule, the system's where both name it")
    default: list[dict[str, Any]] | None = None
    scopes: dict[str, list[dict[str, Any]]] = {}
    owners: dict[str, Rule] = {}
    for rule in config.policy.rules:
        key = containers_scope(rule, config, gaps)
        if key is None:
            continue
        # The same scope twice (system and user file): the later rule wins, as in
        # safe-docker, unless the lock ANDs them (noted above).
        if key in owners and (owners[key].scope != rule.scope or config.policy.locked):
            gaps.add(rule, f"its own scope (it maps to the same containers-policy scope "
                     f"{key!r} as rule {owners[key].scope!r})",
                     f"rule {owners[key].scope!r} is exported for {key!r}")
            continue
        owners[key] = rule
        requirements = _containers_requirements(config, rule, gaps)
        if key == "":
            default = requirements
        else:
            scopes[key] = requirements
    if default is None:
        if config.unmatched is Unmatched.WARN:
            gaps.add(None, "unmatched = 'warn' (containers-policy has no warning)",
                     "images no scope covers are rejected, stricter",
                     hint="set unmatched to reject or accept")
        default = ([{"type": "insecureAcceptAnything"}] if config.unmatched is Unmatched.ACCEPT
                   else [{"type": "reject"}])
    return {"default": default, "transports": {"docker": dict(sorted(scopes.items()))}}


__all__ = [
    "FORMATS",
    "Exported",
    "Gap",
    "Gaps",
    "UnexportablePolicy",
    "containers_policy",
    "export_policy",
    "kyverno_policy",
    "policy_controller_policies",
]
