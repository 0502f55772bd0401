"""Trust policy: which rule covers an image, and what that rule requires.

Scopes match like containers-policy.json: the most specific scope wins. A scope is a
registry host (``127.0.0.1:5000``), a repository or namespace (``docker.io/pytorch`` also
covers ``docker.io/pytorch/pytorch``), a repository with a tag (``ubuntu:22.04``), or a
glob: ``*`` matches within one path component, a trailing ``/*`` anything beneath.
Scopes are normalized like image references (``ubuntu`` → ``docker.io/library/ubuntu``).

With a locked system policy, the system rules and the user rules are both applied and an
image must satisfy each: users can add requirements, never remove one.
"""

from __future__ import annotations

import enum
import functools
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from safedocker._internal.names import DEFAULT_REGISTRY, OFFICIAL_PREFIX

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from safedocker.policy.ruleindex import RuleIndex
    from safedocker.reference import ImageRef


class Mode(enum.Enum):
    ENFORCE = "enforce"
    WARN = "warn"
    OFF = "off"


class Unmatched(enum.Enum):
    REJECT = "reject"
    WARN = "warn"
    ACCEPT = "accept"


class Action(enum.Enum):
    VERIFY = "verify"
    ACCEPT = "accept"
    REJECT = "reject"


class Tlog(enum.Enum):
    REQUIRED = "required"
    OPTIONAL = "optional"  # a SET that is present must verify; absence is fine
    OFF = "off"


class ReferenceCheck(enum.Enum):
    DIGEST = "digest"  # ignore the signed docker-reference, as cosign does
    REPOSITORY = "repository"  # the signed reference must name the same repository
    EXACT = "exact"  # ... and the same tag or digest


class GpuPolicy(enum.Enum):
    AUTO = "auto"
    ALWAYS = "always"
    NEVER = "never"


# Strictness orders, used to combine a locked system file with a user file.
_MODE_STRICTNESS = {Mode.OFF: 0, Mode.WARN: 1, Mode.ENFORCE: 2}
_UNMATCHED_STRICTNESS = {Unmatched.ACCEPT: 0, Unmatched.WARN: 1, Unmatched.REJECT: 2}


def stricter_mode(a: Mode, b: Mode) -> Mode:
    return a if _MODE_STRICTNESS[a] >= _MODE_STRICTNESS[b] else b


def stricter_unmatched(a: Unmatched, b: Unmatched) -> Unmatched:
    return a if _UNMATCHED_STRICTNESS[a] >= _UNMATCHED_STRICTNESS[b] else b


@dataclass(frozen=True)
class Identity:
    """A certificate signer: issuer and subject, each exact or a regular expression (an
    unanchored search, as cosign does), plus optional GitHub workflow claims."""

    issuer: str | None = None
    subject: str | None = None
    issuer_regexp: str | None = None
    subject_regexp: str | None = None
    github_workflow_repository: str | None = None
    github_workflow_ref: str | None = None
    github_workflow_trigger: str | None = None

    @property
    def claims(self) -> dict[str, str]:
        """The workflow claims this identity requires, by the names keyless.py uses."""
        wanted = {
            "github_workflow_repository": self.github_workflow_repository,
            "github_workflow_ref": self.github_workflow_ref,
            "github_workflow_trigger": self.github_workflow_trigger,
        }
        return {k: v for k, v in wanted.items() if v is not None}

    def describe(self) -> str:
        subject = self.subject or f"/{self.subject_regexp}/"
        if self.issuer is None and self.issuer_regexp is None:
            return subject
        issuer = self.issuer or f"/{self.issuer_regexp}/"
        return f"{subject} (issuer {issuer})"


@dataclass(frozen=True)
class Attestation:
    """An in-toto attestation the image must carry (e.g. SLSA provenance), and its signers."""

    predicate_type: str
    identities: tuple[Identity, ...] = ()
    keys: tuple[str, ...] = ()


@dataclass(frozen=True)
class Remap:
    """containers-policy's ``remapIdentity``: an image whose name is ``prefix`` or lies
    under it may be signed under the same name with ``signed_prefix`` instead (or with any
    prefix that ``signed_prefix_regexp``, Go RE2 syntax, matches whole)."""

    prefix: str
    signed_prefix: str | None = None
    signed_prefix_regexp: str | None = None

    def covers(self, name: str) -> bool:
        return name == self.prefix or name.startswith(self.prefix + "/")

    def allows(self, pulled: str, signed: str) -> bool:
        """Whether a signature naming repository ``signed`` may stand for ``pulled``."""
        if not self.covers(pulled):
            return False
        rest = pulled[len(self.prefix):]
        if self.signed_prefix is not None:
            return signed == self.signed_prefix + rest
        if self.signed_prefix_regexp is None or not signed.endswith(rest):
            return False
        head = signed[:len(signed) - len(rest)]
        from safedocker._internal.goregexp import GoRegexpError, full_match

        try:
            return bool(head) and full_match(self.signed_prefix_regexp, head)
        except GoRegexpError:
            return False  # refused when the config was read; never a match

    def describe(self) -> str:
        signed = self.signed_prefix or f"/{self.signed_prefix_regexp}/"
        return f"{self.prefix} signed as {signed}"


@dataclass(frozen=True)
class SignedIdentity:
    """Which docker-reference a signature may name, beyond the pulled image's own
    (containers-policy's ``signedIdentity``). At most one of the three is set."""

    remaps: tuple[Remap, ...] = ()
    exact_reference: str | None = None  # every signature must name exactly this
    exact_repository: str | None = None  # every signature must name this repository

    @property
    def is_default(self) -> bool:
        return not self.remaps and self.exact_reference is None and \
            self.exact_repository is None

    def describe(self) -> str:
        if self.exact_reference is not None:
            return f"exactly {self.exact_reference}"
        if self.exact_repository is not None:
            return f"repository {self.exact_repository}"
        return "; ".join(remap.describe() for remap in self.remaps) or "the pulled image"


@dataclass(frozen=True)
class Rule:
    """One ``[[policy]]`` entry."""

    scope: str
    action: Action
    keys: tuple[str, ...] = ()
    identities: tuple[Identity, ...] = ()
    threshold: int = 1
    tlog: Tlog = Tlog.OPTIONAL
    reference: ReferenceCheck = ReferenceCheck.REPOSITORY
    gpu: GpuPolicy = GpuPolicy.AUTO
    annotations: Mapping[str, str] = field(default_factory=dict)
    trust_root: str = "default"  # which Sigstore trusted root keyless signatures chain to
    pki_roots: tuple[str, ...] = ()  # PEM files: a private PKI instead of Fulcio
    pki_intermediates: tuple[str, ...] = ()
    attestations: tuple[Attestation, ...] = ()
    signed_identity: SignedIdentity = SignedIdentity()
    # Where the `.sig` tag and the referrers are looked up (cosign's COSIGN_REPOSITORY):
    # a fully qualified repository name; None: the image's own repository.
    signatures_repository: str | None = None
    source: str = ""  # the file the rule came from, for explanations

    @property
    def specificity(self) -> tuple[int, int]:
        literal = len(self.scope.replace("*", ""))
        return (literal, 0 if "*" in self.scope else 1)

    def matches(self, ref: ImageRef) -> bool:
        return scope_matches(self.scope, ref)

    def describe(self) -> str:
        return f"scope {self.scope!r} ({self.action.value}) from {self.source or 'built-in'}"


def normalize_scope(scope: str) -> str:
    """Normalize a scope like an image name: ``ubuntu`` → ``docker.io/library/ubuntu``."""
    scope = scope.strip()
    if scope in ("", "*"):
        return "*"
    first, sep, rest = scope.partition("/")
    is_host = "." in first or ":" in first or first == "localhost" or first != first.lower()
    if not sep:
        if is_host:
            return scope  # a registry host alone
        return f"{DEFAULT_REGISTRY}/{OFFICIAL_PREFIX}{scope}"
    if is_host:
        host = DEFAULT_REGISTRY if first == "index.docker.io" else first
        return f"{host}/{rest}"
    return f"{DEFAULT_REGISTRY}/{scope}"


@functools.lru_cache(maxsize=4096)
def _scope_regex(scope: str) -> re.Pattern[str]:
    if scope.endswith("/*"):
        body, tail = scope[:-2], r"/.+"
    else:
        body, tail = scope, ""
    pattern = "".join("[^/]*" if ch == "*" else re.escape(ch) for ch in body)
    return re.compile(f"^{pattern}{tail}$")


def scope_matches(scope: str, ref: ImageRef) -> bool:
    if scope == "*":
        return True
    name = ref.name
    if "*" in scope:
        regex = _scope_regex(scope)
        candidates = [name]
        if ref.tag:
            candidates.append(f"{name}:{ref.tag}")
        return any(regex.match(candidate) for candidate in candidates)
    if "@" in scope:
        return ref.digest is not None and scope == f"{name}@{ref.digest}"
    last = scope.rsplit("/", 1)[-1]
    if ":" in last and "/" in scope:  # repository:tag (a bare "host:port" has no "/")
        tag = ref.tag or (None if ref.digest else "latest")
        return tag is not None and scope == f"{name}:{tag}"
    return name == scope or name.startswith(scope + "/")


def most_specific(rules: Sequence[Rule], ref: ImageRef) -> Rule | None:
    """The matching rule with the most specific scope; later rules win exact ties."""
    best: Rule | None = None
    for rule in rules:
        if rule.matches(ref) and (best is None or rule.specificity >= best.specificity):
            best = rule
    return best


@dataclass(frozen=True)
class Decision:
    """What policy requires of one image: every rule in ``rules`` must be satisfied."""

    ref: ImageRef
    rules: tuple[Rule, ...]
    unmatched: Unmatched

    @property
    def action(self) -> Action | None:
        """The combined action: any reject rejects, any verify verifies, else accept."""
        actions = {rule.action for rule in self.rules}
        if not actions:
            return None
        if Action.REJECT in actions:
            return Action.REJECT
        if Action.VERIFY in actions:
            return Action.VERIFY
        return Action.ACCEPT

    @property
    def verify_rules(self) -> tuple[Rule, ...]:
        return tuple(rule for rule in self.rules if rule.action is Action.VERIFY)

    @property
    def gpu(self) -> GpuPolicy:
        """The GPU policy of the most specific rule (the user's where both apply)."""
        return self.rules[-1].gpu if self.rules else GpuPolicy.AUTO

    def explain(self) -> str:
        if not self.rules:
            return f"no scope covers {self.ref.name}; unmatched images: {self.unmatched.value}"
        return "; ".join(rule.describe() for rule in self.rules)


@dataclass(frozen=True)
class Policy:
    """System and user rules, and how to combine them."""

    system_rules: tuple[Rule, ...] = ()
    user_rules: tuple[Rule, ...] = ()
    locked: bool = False
    unmatched: Unmatched = Unmatched.REJECT

    @property
    def rules(self) -> tuple[Rule, ...]:
        return self.system_rules + self.user_rules

    # Built on the first decision, once per Policy (a frozen dataclass still has a
    # __dict__ for cached_property); decide() then tests a few scopes, not all of them.
    @functools.cached_property
    def _indexes(self) -> tuple[RuleIndex, RuleIndex]:
        from safedocker.policy.ruleindex import RuleIndex

        if self.locked:
            return RuleIndex(self.system_rules), RuleIndex(self.user_rules)
        return RuleIndex(self.rules), RuleIndex(())

    def decide(self, ref: ImageRef) -> Decision:
        """Which rules apply to ``ref``: :func:`most_specific` of the rules (of the system's
        and of the user's, each, under a lock), found through an index."""
        first, second = self._indexes
        return self.decided(ref, first.most_specific(ref), second.most_specific(ref))

    def decided(self, ref: ImageRef, first: Rule | None, second: Rule | None) -> Decision:
        """The decision from the most specific rule of each list (the system's and the
        user's under a lock; else of all rules, and ``second`` is None): the lock's
        combination, whichever way the rules were found."""
        if self.locked:
            system, user = first, second
            if system is None and user is not None and user.action is Action.ACCEPT:
                # A user "accept" must not override the system's handling of unmatched images.
                user = None
            if system is None and self.unmatched is Unmatched.REJECT:
                system = Rule(scope="*", action=Action.REJECT, source="locked system policy")
            rules = tuple(rule for rule in (system, user) if rule is not None)
        else:
            rules = (first,) if first is not None else ()
        return Decision(ref=ref, rules=rules, unmatched=self.unmatched)
