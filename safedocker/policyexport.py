"""Policy exchange: export to Kyverno, Sigstore policy-controller and containers-policy.json;
import from containers-policy.json.

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

import base64
import binascii
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from safedocker.errors import ConfigError, UsageError
from safedocker.policy import (
    Action,
    Identity,
    ReferenceCheck,
    Rule,
    Tlog,
    Unmatched,
    normalize_scope,
)

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

    from safedocker.config import Config, Paths

FORMATS = ("kyverno", "policy-controller", "containers-policy")
PUBLIC_REKOR_URL = "https://rekor.sigstore.dev"
POLICY_NAME = "safe-docker"
MAX_IMPORT_BYTES = 4 * 1024 * 1024


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


# --- YAML output (block style; every string quoted, so nothing is mis-typed) ---------------

_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")


def _scalar(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return json.dumps(str(value))  # a JSON string is a valid YAML double-quoted scalar


def _key(key: str) -> str:
    return key if _PLAIN_KEY.match(key) else json.dumps(key)


def _literal_ok(text: str) -> bool:
    return (
        "\n" in text.rstrip("\n")
        and text.isascii()
        and all(line == line.strip() and line for line in text.rstrip("\n").split("\n"))
    )


def _emit(value: object, indent: int, out: list[str]) -> None:
    pad = " " * indent
    if isinstance(value, dict):
        if not value:
            out[-1] += " {}"
            return
        for key, item in value.items():
            out.append(f"{pad}{_key(str(key))}:")
            _emit_child(item, indent, out)
    elif isinstance(value, list):
        if not value:
            out[-1] += " []"
            return
        for item in value:
            if isinstance(item, dict) and item:
                first = True
                for key, sub in item.items():
                    prefix = f"{pad}- " if first else f"{pad}  "
                    out.append(f"{prefix}{_key(str(key))}:")
                    _emit_child(sub, indent + 2, out)
                    first = False
            else:
                out.append(f"{pad}-")
                _emit_child(item, indent, out)
    else:  # pragma: no cover - callers pass containers
        out.append(pad + _scalar(value))


def _emit_child(item: object, indent: int, out: list[str]) -> None:
    if isinstance(item, (dict, list)):
        if item:
            _emit(item, indent + 2, out)
        else:
            out[-1] += " {}" if isinstance(item, dict) else " []"
    elif isinstance(item, str) and _literal_ok(item):
        chomp = "" if item.endswith("\n") and not item.endswith("\n\n") else "-"
        out[-1] += f" |{chomp}"
        out.extend(" " * (indent + 2) + line for line in item.rstrip("\n").split("\n"))
    else:
        out[-1] += " " + _scalar(item)


def dump_yaml(document: Mapping[str, Any]) -> str:
    out: list[str] = [""]
    _emit(dict(document), 0, out)
    return "\n".join(line for line in out if line != "") + "\n"


def dump_yaml_stream(documents: Iterable[Mapping[str, Any]]) -> str:
    return "".join(f"---\n{dump_yaml(document)}" for document in documents)


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
    from safedocker.keystore import load_trusted_keys

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
    if rule.reference is not ReferenceCheck.DIGEST and not relax_reference:
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
            rule.reference, tuple(sorted(rule.annotations.items())))


def _pc_authorities(config: Config, rule: Rule) -> list[dict[str, Any]]:
    ctlog = {"ctlog": {"url": PUBLIC_REKOR_URL}} if rule.tlog is Tlog.REQUIRED else {}
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
_WILDCARD_DOMAIN = re.compile(r"^\*\.[A-Za-z0-9.-]+$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


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
    if s.kind == "glob" and rule.scope.endswith("/*") and _WILDCARD_DOMAIN.match(rule.scope[:-2]):
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
        return {"rekorPublicKeyData": _b64(next(iter(pems.values())).encode())}
    return {"rekorPublicKeyDatas": [_b64(pem.encode()) for pem in pems.values()]}


def _fulcio_requirement(config: Config, rule: Rule, identity: Identity,
                        identity_rule: dict[str, str]) -> dict[str, Any]:
    if identity.issuer is None or identity.subject is None:
        raise _cannot(CP, rule, "containers-policy fulcio requirements take an exact issuer "
                      "and subject, not regular expressions")
    if not _EMAIL.match(identity.subject):
        raise _cannot(CP, rule, f"containers-policy fulcio matches only e-mail subjects "
                      f"(subjectEmail); {identity.subject!r} is not one")
    from cryptography.hazmat.primitives import serialization

    from safedocker.config import paths
    from safedocker.trustroot import trust_root

    root = trust_root(paths())
    ca_pem = b"".join(cert.public_bytes(serialization.Encoding.PEM)
                      for ca in root.certificate_authorities for cert in ca.chain)
    if config.rekor_keys:
        rekor = _rekor_data(config, rule)
    else:
        rekor = {"rekorPublicKeyData": _b64(b"".join(log.key.pem for log in root.tlogs[:1]))}
    return {"type": "sigstoreSigned",
            "fulcio": {"caData": _b64(ca_pem), "oidcIssuer": identity.issuer,
                       "subjectEmail": identity.subject},
            **rekor, "signedIdentity": identity_rule}


def _containers_requirements(config: Config, rule: Rule) -> list[dict[str, Any]]:
    if rule.action is Action.REJECT:
        return [{"type": "reject"}]
    if rule.action is Action.ACCEPT:
        return [{"type": "insecureAcceptAnything"}]
    if rule.annotations:
        raise _cannot(CP, rule, "containers-policy cannot require signed annotations")
    if rule.reference is ReferenceCheck.DIGEST:
        raise _cannot(CP, rule, "reference = 'digest' (signed name ignored) has no "
                      "containers-policy signedIdentity",
                      hint='set reference = "repository" (matchRepository)')
    identity_rule = {"type": "matchExact" if rule.reference is ReferenceCheck.EXACT
                     else "matchRepository"}
    rekor = _rekor_data(config, rule) if rule.tlog is Tlog.REQUIRED else {}
    pems = _pems(config, rule.keys)
    signers = len(pems) + len(rule.identities)

    def key_requirement(datas: list[str]) -> dict[str, Any]:
        keys: dict[str, Any] = ({"keyData": datas[0]} if len(datas) == 1
                                else {"keyDatas": datas})
        return {"type": "sigstoreSigned", **keys, **rekor, "signedIdentity": identity_rule}

    encoded = [_b64(pem.encode()) for pem in pems.values()]
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


# --- import --------------------------------------------------------------------------------


if TYPE_CHECKING:
    from safedocker.reference import ImageRef


class UnimportablePolicy(ConfigError):
    """A containers-policy.json that safe-docker cannot represent (nothing is written)."""


_REQUIREMENT_FIELDS = {
    "reject": {"type"},
    "insecureAcceptAnything": {"type"},
    "sigstoreSigned": {"type", "keyPath", "keyPaths", "keyData", "keyDatas", "fulcio", "pki",
                       "rekorPublicKeyPath", "rekorPublicKeyPaths", "rekorPublicKeyData",
                       "rekorPublicKeyDatas", "signedIdentity"},
}
# containers/image (newPRSigstoreSigned): exactly one key source, at most one Rekor source.
_KEY_SOURCES = ("keyPath", "keyPaths", "keyData", "keyDatas", "fulcio", "pki")
_REKOR_SOURCES = ("rekorPublicKeyPath", "rekorPublicKeyPaths", "rekorPublicKeyData",
                  "rekorPublicKeyDatas")
_MAX_KEY_FILE_BYTES = 1024 * 1024
# Every signedIdentity type and exactly the fields it takes.
_IDENTITY_FIELDS = {
    "matchRepository": {"type"},
    "matchExact": {"type"},
    "matchRepoDigestOrExact": {"type"},
    "exactReference": {"type", "dockerReference"},
    "exactRepository": {"type", "dockerRepository"},
    "remapIdentity": {"type", "prefix", "signedPrefix"},
}
_IDENTITY_TYPES = {
    "matchRepository": ReferenceCheck.REPOSITORY,
    "matchExact": ReferenceCheck.EXACT,
    # By tag: the exact reference; by digest: the repository. safe-docker's "exact" is
    # the stricter of the two, so the import never accepts what podman refuses.
    "matchRepoDigestOrExact": ReferenceCheck.EXACT,
}


@dataclass
class _Imported:
    """What one scope becomes, before it is written."""

    scope: str
    action: Action
    keys: list[str]
    identities: list[dict[str, str]]
    threshold: int
    tlog: Tlog
    reference: ReferenceCheck

    def document(self) -> dict[str, Any]:
        if self.action is not Action.VERIFY:
            return {"scope": self.scope, "action": self.action.value}
        rule: dict[str, Any] = {"scope": self.scope, "action": "verify", "keys": self.keys,
                                "threshold": self.threshold, "tlog": self.tlog.value,
                                "reference": self.reference.value}
        if self.identities:
            rule["identities"] = self.identities
        return rule


class _Importer:
    def __init__(self, where: Paths, source: Path) -> None:
        from safedocker.config import load_user_document

        self.where = where
        self.source = source
        self.document = load_user_document(where)
        self.existing = {str(entry.get("fingerprint")): name
                         for name, entry in self.document.get("keys", {}).items()
                         if isinstance(entry, dict)}
        self.new_keys: dict[str, tuple[bytes, str]] = {}  # name -> (pem, fingerprint)
        self.rekor: dict[str, str] = {}  # fingerprint -> key name

    def refuse(self, where: str, why: str, hint: str = "") -> UnimportablePolicy:
        return UnimportablePolicy(
            f"cannot import {self.source}", why=f"{where}: {why}",
            hint=hint or "nothing was written; edit the file or add the rule by hand")

    # keys -----------------------------------------------------------------------------

    def _name(self, where: str, path: object) -> str:
        if not isinstance(path, str) or not path:
            raise self.refuse(where, "must be a file name (a non-empty string)")
        return path

    def _check_name(self, where: str, path: object) -> bytes:
        self._name(where, path)
        return b""  # podman reads the file only when it verifies

    def _read(self, where: str, path: object) -> bytes:
        name = self._name(where, path)
        try:
            with Path(name).open("rb") as file:
                data = file.read(_MAX_KEY_FILE_BYTES + 1)
        except OSError as e:
            raise self.refuse(where, f"cannot read {path}: {e.strerror or e}") from e
        if len(data) > _MAX_KEY_FILE_BYTES:
            raise self.refuse(where, f"{path} is too large for a key or certificate file")
        return data

    def _decode(self, where: str, data: object) -> bytes:
        if not isinstance(data, str):
            raise self.refuse(where, "key data must be a base64 string")
        try:
            return base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError) as e:
            raise self.refuse(where, "key data is not valid base64") from e

    def key_name(self, where: str, pem: bytes, prefix: str = "imported") -> str:
        from safedocker.signatures.keys import load_public_key

        try:
            fingerprint = load_public_key(pem, "imported").fingerprint
        except ConfigError as e:
            raise self.refuse(where, e.what, e.hint) from None
        if fingerprint in self.existing:
            return str(self.existing[fingerprint])
        name = f"{prefix}-{fingerprint[7:19]}"
        self.new_keys[name] = (pem, fingerprint)
        self.existing[fingerprint] = name
        return name

    def keys_of(self, where: str, item: Mapping[str, Any], single: str, plural: str,
                prefix: str = "imported") -> list[str]:
        return [self.key_name(where, pem, prefix)
                for pem in self.pems_of(where, item, single, plural)]

    def pems_of(self, where: str, item: Mapping[str, Any], single: str, plural: str,
                *, read_files: bool = True) -> list[bytes]:
        """The PEMs of the ``{single}Path/Data`` and ``{plural}Paths/Datas`` fields; without
        ``read_files`` only checked as podman loads them (paths are names, data base64)."""
        pems: list[bytes] = []
        path_reader = self._read if read_files else self._check_name
        for field_name, read in ((f"{single}Path", path_reader), (f"{single}Data", self._decode)):
            if field_name in item:
                pems.append(read(f"{where}.{field_name}", item[field_name]))
        for field_name, read in ((f"{plural}Paths", path_reader),
                                 (f"{plural}Datas", self._decode)):
            if field_name in item:
                values = item[field_name]
                if not isinstance(values, list) or not values:
                    raise self.refuse(f"{where}.{field_name}", "must be a non-empty list")
                pems.extend(read(f"{where}.{field_name}", v) for v in values)
        return pems

    # requirements -----------------------------------------------------------------------

    def scope(self, key: str) -> str:
        where = f"transports.docker[{key!r}]"
        if _WILDCARD_DOMAIN.match(key):
            return f"{key}/*"
        if "*" in key or key != key.strip():
            raise self.refuse(where, "not a valid containers-policy scope")
        if "/" not in key:
            candidate = f"{key}/*"
            if normalize_scope(candidate) != candidate:
                raise self.refuse(where, f"safe-docker would read host {key!r} as a Docker "
                                  "Hub name")
            return key
        if normalize_scope(key) != key:
            raise self.refuse(where, "containers-policy scopes are fully qualified; "
                              f"safe-docker would read {key!r} as {normalize_scope(key)!r}")
        return key

    def rule(self, scope: str, where: str, requirements: object) -> _Imported:
        if not isinstance(requirements, list) or not requirements:
            raise self.refuse(where, "must be a non-empty list of requirements")
        kinds = []
        for number, item in enumerate(requirements):
            item_where = f"{where}[{number}]"
            kind = item.get("type") if isinstance(item, dict) else item
            if kind == "signedBy":
                raise self.refuse(item_where, "signedBy (GPG or X.509 signatures) is not "
                                  "supported: safe-docker verifies sigstore signatures",
                                  hint="nothing was written; sign the images with cosign and "
                                  "use sigstoreSigned")
            if not isinstance(item, dict) or not isinstance(kind, str) \
                    or kind not in _REQUIREMENT_FIELDS:
                what = "has no type" if kind is None else f"type {kind!r} is not supported"
                raise self.refuse(item_where, f"the requirement {what}",
                                  hint="safe-docker imports sigstoreSigned, reject and "
                                  "insecureAcceptAnything (not signedBy GPG signatures)")
            unknown = set(item) - _REQUIREMENT_FIELDS[kind]
            if unknown:
                raise self.refuse(item_where, f"unsupported fields {sorted(unknown)}")
            if kind == "sigstoreSigned":
                self.check_sigstore(item_where, item, scope)
            kinds.append(kind)
        if "reject" in kinds:
            return _Imported(scope, Action.REJECT, [], [], 1, Tlog.OFF, ReferenceCheck.REPOSITORY)
        signed = [(n, i) for n, i in enumerate(requirements) if i["type"] == "sigstoreSigned"]
        if not signed:
            return _Imported(scope, Action.ACCEPT, [], [], 1, Tlog.OFF, ReferenceCheck.REPOSITORY)
        keys: list[str] = []
        identities: list[dict[str, str]] = []
        references: list[ReferenceCheck] = []
        tlog = Tlog.OFF
        any_of = False
        for number, item in signed:
            item_where = f"{where}[{number}]"
            references.append(self.identity(item_where, item.get("signedIdentity"), scope))
            rekor = self.keys_of(item_where, item, "rekorPublicKey", "rekorPublicKey", "rekor")
            if rekor:
                tlog = Tlog.REQUIRED
                for name in rekor:
                    self.rekor[name] = name
            item_keys = self.keys_of(item_where, item, "key", "key")
            if "fulcio" in item:
                if item_keys:
                    raise self.refuse(item_where, "both keys and fulcio")
                identities.append(self.fulcio(f"{item_where}.fulcio", item["fulcio"]))
            elif not item_keys:
                raise self.refuse(item_where, "sigstoreSigned needs a key or fulcio")
            if len(item_keys) > 1:
                any_of = True
            keys.extend(item_keys)
        signers = len(keys) + len(identities)
        if len(set(keys)) != len(keys):
            raise self.refuse(where, "the same key is required twice")
        if any_of and len(signed) > 1:
            raise self.refuse(where, "an AND of requirements where one lists several keys "
                              "(any of them) cannot be expressed as one threshold")
        if tlog is Tlog.REQUIRED and any(not self.keys_of("", i, "rekorPublicKey",
                                                          "rekorPublicKey", "rekor")
                                         for _, i in signed):
            raise self.refuse(where, "a Rekor key on some requirements only")
        threshold = 1 if any_of or signers == 1 else signers
        reference = (ReferenceCheck.EXACT if ReferenceCheck.EXACT in references
                     else ReferenceCheck.REPOSITORY)
        return _Imported(scope, Action.VERIFY, keys, identities, threshold, tlog, reference)

    def check_sigstore(self, where: str, item: Mapping[str, Any], scope: str) -> None:
        """containers/image's rules for one sigstoreSigned requirement (newPRSigstoreSigned),
        checked whole even where a reject next to it decides (podman refuses the file)."""
        sources = [name for name in _KEY_SOURCES if name in item]
        if len(sources) != 1:
            given = f" (given: {', '.join(sources)})" if sources else ""
            raise self.refuse(where, "exactly one of keyPath, keyPaths, keyData, keyDatas, "
                              f"fulcio and pki must be given{given}")
        rekor = [name for name in _REKOR_SOURCES if name in item]
        if len(rekor) > 1:
            raise self.refuse(where, f"at most one Rekor key field may be given (given: "
                              f"{', '.join(rekor)})")
        if "pki" in item:
            raise self.refuse(f"{where}.pki", "pki (certificates from a private CA) cannot "
                              "be imported", hint="nothing was written; write a rule with "
                              "pki_roots and identities by hand")
        if "fulcio" in item and not rekor:
            raise self.refuse(where, "fulcio needs a Rekor public key (rekorPublicKeyPath, "
                              "rekorPublicKeyPaths, rekorPublicKeyData or rekorPublicKeyDatas)")
        if "signedIdentity" in item and item["signedIdentity"] is None:
            raise self.refuse(f"{where}.signedIdentity", "must be an object, not null")
        self.check_identity(f"{where}.signedIdentity", item.get("signedIdentity"))
        self.pems_of(where, item, "key", "key", read_files=False)
        self.pems_of(where, item, "rekorPublicKey", "rekorPublicKey", read_files=False)
        if "fulcio" in item:
            self.fulcio(f"{where}.fulcio", item["fulcio"], read_files=False)

    def check_identity(self, where: str, value: object) -> tuple[str, Mapping[str, object]] | None:
        """The signedIdentity's type and fields once their shape is valid (None: absent)."""
        if value is None:
            return None
        kind = value.get("type") if isinstance(value, dict) else value
        if not isinstance(value, dict) or not isinstance(kind, str) \
                or kind not in _IDENTITY_FIELDS:
            what = "has no type" if kind is None else f"type {kind!r} is not supported"
            raise self.refuse(where, f"the signedIdentity {what}",
                              hint="use matchRepository, matchExact, matchRepoDigestOrExact, "
                              "exactReference or exactRepository")
        if set(value) != _IDENTITY_FIELDS[kind]:
            raise self.refuse(where, f"{kind} takes exactly the fields "
                              f"{sorted(_IDENTITY_FIELDS[kind])}")
        if kind in ("exactReference", "exactRepository"):
            self.fixed_reference(where, kind, value)
        if kind == "remapIdentity" and not all(isinstance(value[name], str) and value[name]
                                               for name in ("prefix", "signedPrefix")):
            raise self.refuse(where, "remapIdentity needs a prefix and a signedPrefix")
        return kind, value

    def identity(self, where: str, value: object, scope: str) -> ReferenceCheck:
        """The reference check for a signedIdentity (None: absent) under ``scope``."""
        where = f"{where}.signedIdentity"
        checked = self.check_identity(where, value)
        if checked is None:
            return ReferenceCheck.EXACT  # podman's default: matchRepoDigestOrExact
        kind, fields = checked
        if kind in _IDENTITY_TYPES:
            return _IDENTITY_TYPES[kind]
        if kind == "remapIdentity":
            raise self.refuse(where, "remapIdentity (signatures naming another prefix) cannot "
                              "be represented yet", hint="nothing was written; remove it or "
                              "add the rule by hand")
        return self.fixed_identity(where, kind, fields, scope)

    def fixed_reference(self, where: str, kind: str, value: Mapping[str, object]) -> ImageRef:
        """The reference an exactReference / exactRepository names, once it is valid."""
        from safedocker.reference import parse_reference

        field_name = "dockerReference" if kind == "exactReference" else "dockerRepository"
        text = value[field_name]
        if not isinstance(text, str):
            raise self.refuse(f"{where}.{field_name}", "must be a string")
        try:
            fixed = parse_reference(text)
        except UsageError as e:
            raise self.refuse(f"{where}.{field_name}", f"{kind} {text!r} is not a valid "
                              f"reference ({e.what})") from None
        if kind == "exactReference" and fixed.tag is None and fixed.digest is None:
            raise self.refuse(f"{where}.{field_name}", f"{kind} {text!r} has neither a tag "
                              "nor a digest")
        return fixed

    def fixed_identity(self, where: str, kind: str, value: Mapping[str, object],
                       scope: str) -> ReferenceCheck:
        """exactReference / exactRepository name what every signature must say. safe-docker
        checks the signed name against the pulled image, so they are imported only where
        the two coincide: a tag or digest scope that is that reference (exact), or a
        reference in that repository (repository)."""
        fixed = self.fixed_reference(where, kind, value)
        text = str(value["dockerReference" if kind == "exactReference" else "dockerRepository"])
        pulled = _scope_reference(scope)
        if kind == "exactReference" and pulled is not None and str(pulled) == str(fixed):
            return ReferenceCheck.EXACT
        if kind == "exactRepository" and pulled is not None and pulled.name == fixed.name:
            return ReferenceCheck.REPOSITORY
        raise self.refuse(where, f"{kind} {text!r} applies to images other than the one it "
                          "names; safe-docker compares a signature's name with the pulled "
                          "image and cannot require another name yet",
                          hint="nothing was written; scope the requirement to exactly that "
                          "image (repository:tag or @digest), or use matchRepository")

    def fulcio(self, where: str, value: object, *, read_files: bool = True) -> dict[str, str]:
        if not isinstance(value, dict) or set(value) - {"caPath", "caData", "oidcIssuer",
                                                          "subjectEmail"}:
            raise self.refuse(where, "unsupported fulcio fields")
        issuer, email = value.get("oidcIssuer"), value.get("subjectEmail")
        if not isinstance(issuer, str) or not isinstance(email, str) or not issuer or not email:
            raise self.refuse(where, "oidcIssuer and subjectEmail are required")
        if "caPath" in value and "caData" in value:
            raise self.refuse(where, "caPath and caData cannot both be given")
        if "caPath" in value:
            ca = (self._read if read_files else self._check_name)(f"{where}.caPath",
                                                                  value["caPath"])
        elif "caData" in value:
            ca = self._decode(f"{where}.caData", value["caData"])
        else:
            raise self.refuse(where, "caPath or caData is required")
        if read_files:
            self.check_ca(where, ca)
        return {"issuer": issuer, "subject": email}

    def check_ca(self, where: str, ca_pem: bytes) -> None:
        """The Fulcio CA must be one safe-docker's trust root already trusts."""
        from cryptography import x509
        from cryptography.hazmat.primitives import serialization

        from safedocker.trustroot import trust_root

        try:
            certs = x509.load_pem_x509_certificates(ca_pem)
        except ValueError as e:
            raise self.refuse(where, "the Fulcio CA is not PEM certificates") from e
        known = {cert.public_bytes(serialization.Encoding.DER)
                 for ca in trust_root(self.where).certificate_authorities for cert in ca.chain}
        if not any(cert.public_bytes(serialization.Encoding.DER) in known for cert in certs):
            raise self.refuse(where, "its Fulcio CA is not in safe-docker's trust root",
                              hint="import that Sigstore instance first with "
                              "`safe-docker trust-root import`")

    def run(self, data: object) -> tuple[list[_Imported], Unmatched | None, list[str]]:
        if not isinstance(data, dict) or "default" not in data:
            raise self.refuse("policy", "not a containers-policy.json (no \"default\")")
        unknown = set(data) - {"default", "transports"}
        if unknown:
            raise self.refuse("policy", f"unknown top-level fields {sorted(unknown)}")
        rules: list[_Imported] = []
        unmatched: Unmatched | None = None
        default = self.rule("*", "default", data["default"])
        if default.action is Action.VERIFY:
            rules.append(default)
        else:
            unmatched = Unmatched.REJECT if default.action is Action.REJECT else Unmatched.ACCEPT
        ignored: list[str] = []
        transports = data.get("transports", {})
        if not isinstance(transports, dict):
            raise self.refuse("transports", "must be an object")
        for transport, table in transports.items():
            if not isinstance(table, dict):
                raise self.refuse(f"transports.{transport}", "must be an object")
            if transport != "docker":
                # Checked like docker's (podman would refuse a broken one), then ignored
                # only when it accepts anything.
                actions = {self.rule("*", f"transports.{transport}[{key!r}]", value).action
                           for key, value in table.items()}
                if actions <= {Action.ACCEPT}:
                    ignored.append(transport)
                    continue
                raise self.refuse(f"transports.{transport}", "requirements for transports "
                                  "other than docker (registries) cannot be represented")
            for key, requirements in table.items():
                where = f"transports.docker[{key!r}]"
                if key == "":
                    rule = self.rule("*", where, requirements)
                    rules = [r for r in rules if r.scope != "*"]
                    if rule.action is Action.VERIFY:
                        rules.append(rule)
                    else:
                        unmatched = (Unmatched.REJECT if rule.action is Action.REJECT
                                     else Unmatched.ACCEPT)
                    continue
                rules.append(self.rule(self.scope(key), where, requirements))
        return rules, unmatched, ignored


def _scope_reference(scope: str) -> ImageRef | None:
    """The one image a tag or digest scope covers, else None (hosts, namespaces, globs)."""
    from safedocker.reference import parse_reference

    if "*" in scope:
        return None
    try:
        ref = parse_reference(scope)
    except UsageError:
        return None
    return ref if (ref.tag or ref.digest) and str(ref) == scope else None


def import_containers_policy(where: Paths, path: Path) -> str:
    """Read podman's ``policy.json`` into the user configuration; returns a summary."""
    from safedocker.config import atomic_write, save_user_document

    try:
        raw = path.read_bytes()
    except OSError as e:
        raise UnimportablePolicy(f"cannot read {path}", why=e.strerror or str(e)) from e
    if len(raw) > MAX_IMPORT_BYTES:
        raise UnimportablePolicy(f"cannot import {path}", why="the file is too large")
    from safedocker.errors import VerificationError
    from safedocker.signatures.strictjson import loads_strict

    try:
        data = loads_strict(raw, "policy")  # duplicate members refused, as podman does
    except VerificationError as e:
        raise UnimportablePolicy(f"cannot import {path}", why=f"not valid JSON: {e.why}",
                                 hint="nothing was written; fix the file") from e
    importer = _Importer(where, path)
    rules, unmatched, ignored = importer.run(data)

    document = importer.document
    keys_table = dict(document.get("keys", {}))
    for name, (_pem, fingerprint) in importer.new_keys.items():
        keys_table[name] = {"fingerprint": fingerprint, "source": f"imported from {path}"}
    if keys_table:
        document["keys"] = keys_table
    if importer.rekor:
        existing = list(document.get("rekor_keys", []))
        document["rekor_keys"] = existing + [k for k in importer.rekor if k not in existing]
    if unmatched is not None:
        document["unmatched"] = unmatched.value
    scopes = {normalize_scope(r.scope) for r in rules}
    kept = [r for r in document.get("policy", [])
            if normalize_scope(str(r.get("scope", ""))) not in scopes]
    document["policy"] = kept + [r.document() for r in rules]

    written: list[Path] = []
    try:
        for name, (pem, _fingerprint) in importer.new_keys.items():
            target = where.user_keys_dir / f"{name}.pub"
            if not target.exists():
                atomic_write(target, pem, 0o644)
                written.append(target)
        save_user_document(where, document)
    except BaseException:
        for target in written:
            target.unlink(missing_ok=True)
        raise

    actions = {a: sum(1 for r in rules if r.action is a) for a in Action}
    parts = [f"imported {len(rules)} rule(s) from {path}: {actions[Action.VERIFY]} verify, "
             f"{actions[Action.REJECT]} reject, {actions[Action.ACCEPT]} accept"]
    if unmatched is not None:
        parts.append(f"images no scope covers: {unmatched.value}")
    if importer.new_keys:
        parts.append(f"new keys: {', '.join(sorted(importer.new_keys))}")
    if kept:
        parts.append(f"kept {len(kept)} existing rule(s) for other scopes")
    if ignored:
        parts.append(f"ignored accept-anything transports: {', '.join(sorted(ignored))}")
    if any(r.action is Action.VERIFY and r.reference is ReferenceCheck.EXACT for r in rules):
        parts.append("matchRepoDigestOrExact and matchExact became reference = exact (for "
                     "pulls by digest this is stricter than podman)")
    return "; ".join(parts) + "."


__all__ = [
    "FORMATS",
    "UnexportablePolicy",
    "UnimportablePolicy",
    "containers_policy",
    "export_policy",
    "import_containers_policy",
    "kyverno_policy",
    "policy_controller_policies",
]
