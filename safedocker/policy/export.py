"""Policy export to Kyverno, Sigstore policy-controller and containers-policy.json (the
import of containers-policy.json is :mod:`safedocker.policy.containers`).

Each target has its own matching rules, so an export translates scopes exactly or refuses:
a rule the target cannot express as strictly as safe-docker enforces it raises
:class:`UnexportablePolicy` naming the rule and what is missing. Never silently weaker.

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


def _cannot(fmt: str, rule: Rule | None, what: str, hint: str = "") -> UnexportablePolicy:
    subject = f"rule {rule.scope!r} ({rule.action.value})" if rule else "the policy"
    return UnexportablePolicy(
        f"cannot export {subject} to {fmt}",
        why=what,
        hint=hint or "change the rule, or export to another format",
    )


def export_policy(config: Config, fmt: str, *, relax_reference: bool = False) -> str:
    """The policy as a ``fmt`` document (YAML for Kubernetes, JSON for containers-policy).

    ``relax_reference``: let Kyverno/policy-controller exports drop the check of the signed
    repository name (they verify the digest only); an explicit opt-in, never the default.
    """
    if fmt == "kyverno":
        return dump_yaml(kyverno_policy(config, relax_reference=relax_reference))
    if fmt == "policy-controller":
        return dump_yaml_stream(policy_controller_policies(config,
                                                           relax_reference=relax_reference))
    if fmt == "containers-policy":
        return json.dumps(containers_policy(config), indent=2) + "\n"
    raise UsageError(f"unknown export format {fmt!r}", hint=f"use one of {', '.join(FORMATS)}")


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


def kyverno_patterns(rule: Rule) -> list[str]:
    """``imageReferences`` matching exactly the images ``rule.scope`` covers."""
    s = shape(rule.scope)
    short = s.short_official
    if s.kind == "all":
        return ["*"]
    if s.kind == "host":
        return [f"{s.name}/*"]
    if s.kind == "repo":
        if s.name == "docker.io/library":
            raise _cannot(KYVERNO, rule, "Kyverno names official images docker.io/NAME, and "
                          "no wildcard matches exactly the one-component names",
                          hint="list the official repositories you mean one by one")
        out = [f"{s.name}:*", f"{s.name}@*", f"{s.name}/*"]
        return out + ([f"{short}:*", f"{short}@*"] if short else [])
    if s.kind == "digest":
        return [f"{s.name}@{s.suffix}"] + ([f"{short}@{s.suffix}"] if short else [])
    if s.kind == "tag":
        raise _cannot(KYVERNO, rule, "Kyverno matches an image given with a digest by its "
                      "digest alone (repo@sha256:…), so a tag scope would not cover "
                      "repo:tag@sha256:…", hint="use a repository scope or a digest scope")
    if s.kind == "beneath":
        if s.name == "docker.io/library":
            raise _cannot(KYVERNO, rule, "Kyverno names official images docker.io/NAME, and "
                          "no wildcard matches exactly the one-component names",
                          hint="list the official repositories you mean one by one")
        return [f"{s.name}/*"]
    raise _cannot(KYVERNO, rule, "a '*' inside a path component has no exact Kyverno "
                  "equivalent (Kyverno's '*' also matches '/')",
                  hint="use a repository scope or a trailing /* scope")


def _check_reference(fmt: str, rule: Rule, relax_reference: bool) -> None:
    if relax_reference:
        return
    if not rule.signed_identity.is_default:
        raise _cannot(fmt, rule, f"signed_identity ({rule.signed_identity.describe()}): {fmt} "
                      "checks only the signed digest, not the name in the signature",
                      hint="export with the reference check relaxed, or to containers-policy")
    if rule.reference is not ReferenceCheck.DIGEST:
        raise _cannot(fmt, rule, f"reference = {rule.reference.value!r}: {fmt} checks only the "
                      "signed digest, not the repository named in the signature",
                      hint='set reference = "digest" on this rule to export it')


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


def kyverno_policy(config: Config, *, relax_reference: bool = False) -> dict[str, Any]:
    """One ``ClusterPolicy``: a verifyImages rule per verify rule, a deny rule per reject
    rule, and a deny rule for images no rule covers (``unmatched``)."""
    rules: list[dict[str, Any]] = []
    covered: list[str] = []
    for group, group_rules in _groups(config):
        indexed = list(enumerate(group_rules))
        patterns = {index: kyverno_patterns(rule) for index, rule in indexed}
        for index, rule in indexed:
            mine = patterns[index]
            skip = [p for other in indexed if other[0] != index
                    and _precedes(other, (index, rule)) and _overlap(patterns[other[0]], mine)
                    for p in patterns[other[0]]]
            skip = list(dict.fromkeys(skip))
            name = f"{group}-{index}-{rule.action.value}"
            if rule.action is Action.VERIFY:
                _check_reference(KYVERNO, rule, relax_reference)
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


def policy_controller_globs(rule: Rule) -> list[str]:
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
        raise _cannot(PC, rule, "'**' in a scope")
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


def policy_controller_policies(config: Config, *, relax_reference: bool = False,
                               namespace: str = "cosign-system") -> list[dict[str, Any]]:
    """``ClusterImagePolicy`` objects (and the ``no-match-policy`` ConfigMap)."""
    docs: list[dict[str, Any]] = []
    if config.policy.locked and config.policy.user_rules and config.unmatched is Unmatched.REJECT \
            and not any(r.scope == "*" for r in config.policy.system_rules):
        raise _cannot(PC, None, "a locked system policy rejects images no system rule covers, "
                      "even where a user rule matches; policy-controller's no-match policy "
                      "applies only where no policy matches",
                      hint="add a system rule for '*'")
    for group, group_rules in _groups(config):
        indexed = list(enumerate(group_rules))
        globs = {index: policy_controller_globs(rule) for index, rule in indexed}
        for index, rule in indexed:
            for other in indexed:
                if (other[0] != index and _precedes(other, (index, rule))
                        and rule.action is not Action.ACCEPT
                        and _requirements(other[1]) != _requirements(rule)
                        and _overlap(kyverno_like(globs[other[0]]), kyverno_like(globs[index]))):
                    raise _cannot(PC, rule, f"it covers the more specific scope "
                                  f"{other[1].scope!r}, and policy-controller applies every "
                                  "matching policy (no exclusions), so this rule would also "
                                  f"apply to {other[1].scope!r}",
                                  hint="give both rules the same requirements, or split "
                                  "the broader scope")
            base = f"{POLICY_NAME}-{group}-{index}-{_dns_label(rule.scope) or 'all'}"
            images = [{"glob": glob} for glob in globs[index]]
            if rule.action is not Action.VERIFY:
                action = "pass" if rule.action is Action.ACCEPT else "fail"
                docs.append(_cip(base, images, [{"name": action, "static": {"action": action}}]))
                continue
            _check_reference(PC, rule, relax_reference)
            if rule.annotations:
                raise _cannot(PC, rule, "policy-controller authorities cannot require signed "
                              "annotations without a CUE/Rego policy")
            authorities = _pc_authorities(config, rule)
            if rule.threshold == 1:
                docs.append(_cip(base, images, authorities))
            elif rule.threshold == len(authorities):
                # Every matching ClusterImagePolicy must pass: one per signer is an AND.
                docs.extend(_cip(f"{base}-{number}", images, [authority])
                            for number, authority in enumerate(authorities))
            else:
                raise _cannot(PC, rule, f"threshold {rule.threshold} of {len(authorities)} "
                              "signers needs a CUE/Rego policy (one authority passes a policy)",
                              hint="use threshold 1, or list exactly as many signers")
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


def containers_scope(rule: Rule, config: Config) -> str:
    """The ``transports.docker`` key for ``rule.scope`` ("" for the default)."""
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
        # the namespace; that is fine unless safe-docker would treat that one more strictly.
        _check_bare_repository(rule, s.name, config)
        return s.name
    if s.kind == "glob" and rule.scope.endswith("/*") and WILDCARD_DOMAIN.match(rule.scope[:-2]):
        return rule.scope[:-2]
    raise _cannot(CP, rule, "containers-policy scopes are not globs (only a leading *. in a "
                  "host, for every image beneath it)",
                  hint="use a host, repository, namespace, tag or digest scope")


def _check_bare_repository(rule: Rule, name: str, config: Config) -> None:
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
    raise _cannot(CP, rule, f"the containers-policy scope {name!r} would also cover the "
                  f"repository {name!r} itself, which safe-docker treats more strictly "
                  f"({decision.explain()})", hint=f"add a rule for {name!r} with the same "
                  "requirements, or use repository scopes")


def _rekor_data(config: Config, rule: Rule) -> dict[str, Any]:
    if not config.rekor_keys:
        raise _cannot(CP, rule, "tlog = 'required' needs a Rekor public key, and the "
                      "configuration lists no rekor_keys",
                      hint="add the Rekor key with `safe-docker keys add` and list it in "
                      "rekor_keys")
    pems = _pems(config, config.rekor_keys)
    if len(pems) == 1:
        return {"rekorPublicKeyData": b64encode(next(iter(pems.values())).encode())}
    return {"rekorPublicKeyDatas": [b64encode(pem.encode()) for pem in pems.values()]}


def _fulcio_requirement(config: Config, rule: Rule, identity: Identity,
                        identity_rule: dict[str, str]) -> dict[str, Any]:
    if identity.issuer is None or identity.subject is None:
        raise _cannot(CP, rule, "containers-policy fulcio requirements take an exact issuer "
                      "and subject, not regular expressions")
    if not _EMAIL.match(identity.subject):
        raise _cannot(CP, rule, f"containers-policy fulcio matches only e-mail subjects "
                      f"(subjectEmail); {identity.subject!r} is not one")
    from cryptography.hazmat.primitives import serialization

    from safedocker.policy.paths import paths
    from safedocker.trust.roots import trust_root

    root = trust_root(paths())
    ca_pem = b"".join(cert.public_bytes(serialization.Encoding.PEM)
                      for ca in root.certificate_authorities for cert in ca.chain)
    if config.rekor_keys:
        rekor = _rekor_data(config, rule)
    else:
        rekor = {"rekorPublicKeyData": b64encode(b"".join(log.key.pem for log in root.tlogs[:1]))}
    return {"type": "sigstoreSigned",
            "fulcio": {"caData": b64encode(ca_pem), "oidcIssuer": identity.issuer,
                       "subjectEmail": identity.subject},
            **rekor, "signedIdentity": identity_rule}


def _containers_requirements(config: Config, rule: Rule) -> list[dict[str, Any]]:
    if rule.action is Action.REJECT:
        return [{"type": "reject"}]
    if rule.action is Action.ACCEPT:
        return [{"type": "insecureAcceptAnything"}]
    if rule.annotations:
        raise _cannot(CP, rule, "containers-policy cannot require signed annotations")
    if rule.signatures_repository is not None:
        raise _cannot(CP, rule, f"signatures_repository = {rule.signatures_repository!r}: "
                      "containers/image reads sigstore signatures from the image's own "
                      "repository only")
    identity_rule = _containers_identity(rule)
    rekor = _rekor_data(config, rule) if rule.tlog is Tlog.REQUIRED else {}
    pems = _pems(config, rule.keys)
    signers = len(pems) + len(rule.identities)

    def key_requirement(datas: list[str]) -> dict[str, Any]:
        keys: dict[str, Any] = ({"keyData": datas[0]} if len(datas) == 1
                                else {"keyDatas": datas})
        return {"type": "sigstoreSigned", **keys, **rekor, "signedIdentity": identity_rule}

    encoded = [b64encode(pem.encode()) for pem in pems.values()]
    if rule.threshold == 1 and not rule.identities:
        return [key_requirement(encoded)]  # keyDatas: any one of the keys
    if rule.threshold == 1 and signers == 1:
        return [_fulcio_requirement(config, rule, rule.identities[0], identity_rule)]
    if rule.threshold == signers:  # requirements are ANDed: one per signer
        return ([key_requirement([data]) for data in encoded]
                + [_fulcio_requirement(config, rule, identity, identity_rule)
                   for identity in rule.identities])
    raise _cannot(CP, rule, f"threshold {rule.threshold} of {signers} signers: containers-"
                  "policy ANDs requirements (all signers) or lists keys of which one suffices",
                  hint="use threshold 1 with keys only, or a threshold equal to the signers")


def _containers_identity(rule: Rule) -> dict[str, str]:
    """The signedIdentity that is as strict as the rule's reference check, or stricter."""
    signed = rule.signed_identity
    if signed.exact_reference is not None:
        return {"type": "exactReference", "dockerReference": signed.exact_reference}
    if signed.exact_repository is not None:
        return {"type": "exactRepository", "dockerRepository": signed.exact_repository}
    if signed.remaps:
        remap = signed.remaps[0]
        if len(signed.remaps) > 1 or remap.signed_prefix is None:
            raise _cannot(CP, rule, f"signed_identity ({signed.describe()}): remapIdentity "
                          "takes one plain prefix, not several or a regexp")
        # podman then requires the remapped name (and by tag, the tag): never looser.
        return {"type": "remapIdentity", "prefix": remap.prefix,
                "signedPrefix": remap.signed_prefix}
    if rule.reference is ReferenceCheck.DIGEST:
        raise _cannot(CP, rule, "reference = 'digest' (signed name ignored) has no "
                      "containers-policy signedIdentity",
                      hint='set reference = "repository" (matchRepository)')
    return {"type": "matchExact" if rule.reference is ReferenceCheck.EXACT
            else "matchRepository"}


def containers_policy(config: Config) -> dict[str, Any]:
    """``policy.json`` for podman, skopeo, buildah and CRI-O (containers/image)."""
    if config.policy.locked and config.policy.user_rules:
        raise _cannot(CP, None, "a locked system policy applies both the system and the user "
                      "rule for an image; containers-policy applies one scope")
    default: list[dict[str, Any]] | None = None
    scopes: dict[str, list[dict[str, Any]]] = {}
    owners: dict[str, Rule] = {}
    for rule in config.policy.rules:
        key = containers_scope(rule, config)
        requirements = _containers_requirements(config, rule)
        if key == "":
            default = requirements
            continue
        if key in owners and owners[key].scope != rule.scope:
            raise _cannot(CP, rule, f"it maps to the same containers-policy scope {key!r} as "
                          f"rule {owners[key].scope!r}")
        owners[key] = rule
        scopes[key] = requirements
    if default is None:
        if config.unmatched is Unmatched.WARN:
            raise _cannot(CP, None, "unmatched = 'warn' has no containers-policy equivalent",
                          hint="set unmatched to reject or accept")
        default = ([{"type": "reject"}] if config.unmatched is Unmatched.REJECT
                   else [{"type": "insecureAcceptAnything"}])
    return {"default": default, "transports": {"docker": dict(sorted(scopes.items()))}}


__all__ = [
    "FORMATS",
    "UnexportablePolicy",
    "containers_policy",
    "export_policy",
    "kyverno_policy",
    "policy_controller_policies",
]
